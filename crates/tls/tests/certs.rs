//! Certificate loading and checks (RFC 5280 validity, chain order per RFC 8446
//! §4.4.2, key ↔ certificate), hostname coverage (RFC 6125 §6.4.3 wildcards),
//! impossible server configurations, and the self-signed fallback.
#![allow(clippy::unwrap_used)]

mod common;

use postern_tls::certs::{self, CertError, CertWarning};
use postern_tls::server::server_config;
use postern_tls::{CertSettings, SuiteError, TlsError, TlsSettings, TlsVersion, selfsigned};
use time::Duration;

fn has_warning(warnings: &[CertWarning], pred: impl Fn(&CertWarning) -> bool) -> bool {
    warnings.iter().any(pred)
}

#[test]
fn good_chain_loads_with_summary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let inter = common::intermediate("Test Intermediate", &ca);
    let leaf = common::leaf(&["mx.example.com", "*.example.net"], &inter);
    // Leaf, intermediate and (harmless) root.
    let cs = common::write_pair(
        dir.path(),
        "mx",
        &[&leaf.cert_pem, &inter.pem(), &ca.pem()],
        &leaf.key_pem,
    );
    let loaded = certs::load(std::slice::from_ref(&cs), common::now()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let s = &loaded.store.summaries()[0];
    assert_eq!(s.subject, "CN=mx.example.com");
    assert_eq!(s.issuer, "CN=Test Intermediate");
    assert_eq!(s.sans, vec!["mx.example.com", "*.example.net"]);
    assert_eq!(s.key_type, "ECDSA P-256");
    assert_eq!(s.key_bits, 256);
    assert_eq!(s.chain_len, 3);
    assert!((363..=365).contains(&s.days_left), "{}", s.days_left);
    assert!(s.is_default && !s.self_signed);
    assert_eq!(s.cert_path, cs.cert_path);
    assert!(s.to_string().contains("ECDSA P-256 256 bits"), "{s}");
}

#[test]
fn rsa_key_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let leaf = common::rsa_leaf(&["mx.example.com"], &ca);
    let cs = common::write_pair(dir.path(), "mx", &[&leaf.cert_pem], &leaf.key_pem);
    let s = &certs::load(&[cs], common::now()).unwrap().store.summaries()[0];
    assert_eq!((s.key_type.as_str(), s.key_bits), ("RSA", 2048));
}

#[test]
fn key_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let a = common::leaf(&["a.example.com"], &ca);
    let b = common::leaf(&["b.example.com"], &ca);
    let cs = common::write_pair(dir.path(), "a", &[&a.cert_pem], &b.key_pem);
    let err = certs::load(std::slice::from_ref(&cs), common::now()).unwrap_err();
    assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&cs.cert_path.display().to_string()), "{text}");
    assert!(text.contains(&cs.key_path.display().to_string()), "{text}");
    assert!(text.contains("does not belong to"), "{text}");

    // Key types differ too (RSA key, ECDSA certificate).
    let r = common::rsa_leaf(&["r.example.com"], &ca);
    let cs = common::write_pair(dir.path(), "mixed", &[&a.cert_pem], &r.key_pem);
    assert!(matches!(
        certs::load(&[cs], common::now()),
        Err(CertError::KeyMismatch { .. })
    ));
}

#[test]
fn chain_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let inter = common::intermediate("Test Intermediate", &ca);
    let leaf = common::leaf(&["mx.example.com"], &inter);
    let cs = common::write_pair(
        dir.path(),
        "mx",
        &[&leaf.cert_pem, &ca.pem(), &inter.pem()],
        &leaf.key_pem,
    );
    let err = certs::load(&[cs], common::now()).unwrap_err();
    match &err {
        CertError::ChainOrder {
            index,
            issuer,
            next_subject,
            ..
        } => {
            assert_eq!(*index, 1);
            assert_eq!(issuer, "CN=Test Intermediate");
            assert_eq!(next_subject, "CN=Test Root");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("leaf first"), "{err}");
}

#[test]
fn chain_with_the_wrong_intermediate_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let inter = common::intermediate("Test Intermediate", &ca);
    // Same name, different key: a re-issued intermediate mixed up with the old one.
    let impostor = common::intermediate("Test Intermediate", &ca);
    let leaf = common::leaf(&["mx.example.com"], &inter);
    let cs = common::write_pair(
        dir.path(),
        "mx",
        &[&leaf.cert_pem, &impostor.pem()],
        &leaf.key_pem,
    );
    let err = certs::load(&[cs], common::now()).unwrap_err();
    assert!(
        matches!(err, CertError::ChainSignature { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn expired_is_an_error_expiring_soon_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let now = common::now();

    let expired = common::leaf_with(
        &["old.example.com"],
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        now - Duration::days(400),
        now - Duration::days(2),
    );
    let cs = common::write_pair(dir.path(), "old", &[&expired.cert_pem], &expired.key_pem);
    let err = certs::load(&[cs], now).unwrap_err();
    assert!(matches!(err, CertError::Expired { index: 1, .. }), "{err}");
    assert!(err.to_string().contains("expired on"), "{err}");

    let soon = common::leaf_with(
        &["soon.example.com"],
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        now - Duration::days(80),
        now + Duration::days(10) + Duration::hours(1),
    );
    let cs = common::write_pair(dir.path(), "soon", &[&soon.cert_pem], &soon.key_pem);
    let loaded = certs::load(&[cs], now).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(matches!(
        loaded.warnings[0],
        CertWarning::ExpiresSoon { days_left: 10, .. }
    ));
    let text = loaded.warnings[0].to_string();
    assert!(text.contains("expires in 10 days"), "{text}");
    assert_eq!(loaded.store.summaries()[0].days_left, 10);
}

#[test]
fn not_yet_valid_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let now = common::now();
    let future = common::leaf_with(
        &["new.example.com"],
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        now + Duration::days(3),
        now + Duration::days(90),
    );
    let cs = common::write_pair(dir.path(), "new", &[&future.cert_pem], &future.key_pem);
    let err = certs::load(&[cs], now).unwrap_err();
    assert!(
        matches!(err, CertError::NotYetValid { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("check the system clock"), "{err}");
}

#[test]
fn expired_intermediate_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let now = common::now();
    let ca = common::root("Test Root");
    let inter = common::intermediate_with(
        "Old Intermediate",
        &ca,
        now - Duration::days(800),
        now - Duration::days(1),
    );
    let leaf = common::leaf(&["mx.example.com"], &inter);
    let cs = common::write_pair(
        dir.path(),
        "mx",
        &[&leaf.cert_pem, &inter.pem()],
        &leaf.key_pem,
    );
    let err = certs::load(&[cs], now).unwrap_err();
    match &err {
        CertError::Expired { index, subject, .. } => {
            assert_eq!((*index, subject.as_str()), (2, "CN=Old Intermediate"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn check_hostname_error_text_and_wildcard_cover() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let a = common::leaf(&["mx.example.com"], &ca);
    let w = common::leaf(&["*.example.net"], &ca);
    let certs = vec![
        common::write_pair(dir.path(), "a", &[&a.cert_pem], &a.key_pem),
        common::write_pair(dir.path(), "w", &[&w.cert_pem], &w.key_pem),
    ];
    let store = certs::load(&certs, common::now()).unwrap().store;
    assert_eq!(store.len(), 2);
    assert!(store.covers("mx.example.com"));
    assert!(store.covers("MX.EXAMPLE.COM."));
    assert!(store.covers("smtp.example.net"));
    assert!(!store.covers("example.net"));
    assert!(!store.covers("a.b.example.net"));
    store.check_hostname("smtp.example.net").unwrap();
    let err = store.check_hostname("smtp.yourcorp.com").unwrap_err();
    assert_eq!(
        err.to_string(),
        "No certificates were found matching the Subject 'smtp.yourcorp.com' (certificates \
         loaded cover: mx.example.com, *.example.net)"
    );
}

#[test]
fn configured_hostnames_are_covered_and_checked_against_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::root("Test Root");
    let a = common::leaf(&["mx.example.com"], &ca);
    let mut cs = common::write_pair(dir.path(), "a", &[&a.cert_pem], &a.key_pem);
    cs.hostnames = vec!["mx.example.com".into(), "mail.example.org".into()];
    let loaded = certs::load(&[cs], common::now()).unwrap();
    assert!(loaded.store.covers("mail.example.org"));
    assert!(has_warning(&loaded.warnings, |w| matches!(
        w,
        CertWarning::HostnameNotInCertificate { hostname, .. } if hostname == "mail.example.org"
    )));
    assert_eq!(
        loaded.store.summaries()[0].hostnames,
        vec!["mx.example.com", "mail.example.org"]
    );
}

#[cfg(unix)]
#[test]
fn readable_key_file_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (cs, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    std::fs::set_permissions(&cs.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = certs::load(&[cs], common::now()).unwrap();
    assert!(has_warning(&loaded.warnings, |w| matches!(
        w,
        CertWarning::KeyFileReadable { mode: 0o644, .. }
    )));
    assert!(loaded.warnings[0].to_string().contains("chmod 600"));
}

#[test]
fn unreadable_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = CertSettings {
        cert_path: dir.path().join("nope.crt"),
        key_path: dir.path().join("nope.key"),
        hostnames: Vec::new(),
    };
    let err = certs::load(&[missing], common::now()).unwrap_err();
    assert!(matches!(err, CertError::Read { .. }));
    assert!(err.to_string().contains("nope.crt"), "{err}");

    let (cs, leaf) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    std::fs::write(&cs.cert_path, "not pem at all\n").unwrap();
    let err = certs::load(std::slice::from_ref(&cs), common::now()).unwrap_err();
    assert!(matches!(err, CertError::NoCertificate { .. }), "{err}");

    std::fs::write(&cs.cert_path, &leaf.cert_pem).unwrap();
    std::fs::write(&cs.key_path, &leaf.cert_pem).unwrap();
    let err = certs::load(&[cs], common::now()).unwrap_err();
    assert!(matches!(err, CertError::NoKey { .. }), "{err}");
}

// --- server_config: impossible combinations are errors that say why ---

fn one_store() -> (tempfile::TempDir, certs::CertStore) {
    let dir = tempfile::tempdir().unwrap();
    let (cs, _) = common::simple_chain(dir.path(), "mx", &["mx.example.com"]);
    let store = certs::load(&[cs], common::now()).unwrap().store;
    (dir, store)
}

#[test]
fn max_below_min_is_an_error() {
    let (_dir, store) = one_store();
    let settings = TlsSettings {
        min_version: TlsVersion::Tls13,
        max_version: TlsVersion::Tls12,
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(matches!(err, TlsError::VersionRange { .. }));
    assert_eq!(
        err.to_string(),
        "tls.max_version (\"1.2\") is lower than tls.min_version (\"1.3\"); set max_version to \
         at least min_version"
    );
}

#[test]
fn tls13_only_with_only_tls12_suites_is_an_error() {
    let (_dir, store) = one_store();
    let settings = TlsSettings {
        min_version: TlsVersion::Tls13,
        cipher_suites: vec![0xc02c, 0xc030],
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(matches!(
        err,
        TlsError::NoSuiteForVersion {
            version: TlsVersion::Tls13,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("no TLS 1.3 cipher suite is configured"),
        "{text}"
    );
    assert!(
        text.contains("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        "{text}"
    );
    assert!(text.contains("such as TLS_AES_256_GCM_SHA384"), "{text}");
}

#[test]
fn unsupported_suite_in_settings_is_an_error_with_reason() {
    let (_dir, store) = one_store();
    let settings = TlsSettings {
        cipher_suites: vec![0x1302, 0x009f],
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(matches!(
        err,
        TlsError::Suite(SuiteError::Unsupported { id: 0x009f, .. })
    ));
    assert!(
        err.to_string()
            .contains("DHE key exchange: rustls does not implement finite-field DHE")
    );
}

#[test]
fn tls12_suites_that_fit_no_certificate_are_an_error() {
    let (_dir, store) = one_store(); // ECDSA certificate
    let settings = TlsSettings {
        cipher_suites: vec![0x1302, 0xc030, 0xc02f],
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(
        matches!(err, TlsError::NoSuiteForCertificates { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ECDSA keys"), "{err}");
    // TLS 1.3 only: the key type does not restrict suites.
    let settings = TlsSettings {
        min_version: TlsVersion::Tls13,
        ..settings
    };
    server_config(&settings, &store).unwrap();
}

#[test]
fn groups_must_cover_every_version() {
    let (_dir, store) = one_store();
    let settings = TlsSettings {
        kx_groups: vec![0x0201],
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::NoGroupForVersion {
                version: TlsVersion::Tls12,
                ..
            }
        ),
        "{err}"
    );
    let settings = TlsSettings {
        kx_groups: vec![0x0019],
        ..TlsSettings::default()
    };
    let err = server_config(&settings, &store).unwrap_err();
    assert!(err.to_string().contains("secp521r1"), "{err}");
}

#[test]
fn no_certificates_is_an_error() {
    let err = server_config(&TlsSettings::default(), &certs::CertStore::default()).unwrap_err();
    assert!(matches!(err, TlsError::NoCertificates));
}

#[test]
fn server_config_uses_server_order() {
    let (_dir, store) = one_store();
    let cfg = server_config(&TlsSettings::default(), &store).unwrap();
    assert!(cfg.ignore_client_order);
    let ids: Vec<u16> = cfg
        .crypto_provider()
        .cipher_suites
        .iter()
        .map(|s| u16::from(s.suite()))
        .collect();
    assert_eq!(ids, postern_tls::suites::default_order());
    let groups: Vec<u16> = cfg
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| u16::from(g.name()))
        .collect();
    assert_eq!(groups, postern_tls::groups::default_order());
}

// --- self-signed fallback ---

#[test]
fn selfsigned_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["mx.example.com".to_owned(), "mail.example.com".to_owned()];
    let cs = selfsigned::ensure(dir.path(), &names).unwrap();
    assert_eq!(cs.cert_path, dir.path().join("selfsigned.crt"));
    assert_eq!(cs.key_path, dir.path().join("selfsigned.key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cs.key_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let first = std::fs::read(&cs.cert_path).unwrap();
    let loaded = certs::load(std::slice::from_ref(&cs), common::now()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let s = &loaded.store.summaries()[0];
    assert!(s.self_signed);
    assert_eq!(s.key_type, "ECDSA P-256");
    assert_eq!(s.sans, names);
    assert!((364..=365).contains(&s.days_left));

    // Second call: same files.
    let again = selfsigned::ensure(dir.path(), &names).unwrap();
    assert_eq!(again, cs);
    assert_eq!(std::fs::read(&cs.cert_path).unwrap(), first);
    // A subset of the names is covered too.
    selfsigned::ensure(dir.path(), &names[..1]).unwrap();
    assert_eq!(std::fs::read(&cs.cert_path).unwrap(), first);

    // A new name: regenerated.
    let more = vec!["mx.example.com".to_owned(), "smtp.example.org".to_owned()];
    selfsigned::ensure(dir.path(), &more).unwrap();
    let second = std::fs::read(&cs.cert_path).unwrap();
    assert_ne!(second, first);

    // Close to expiry (fewer than 30 days left): regenerated.
    selfsigned::ensure_at(dir.path(), &more, common::now() + Duration::days(340)).unwrap();
    assert_ne!(std::fs::read(&cs.cert_path).unwrap(), second);

    // Still usable for a handshake configuration.
    let store = certs::load(&[cs], common::now() + Duration::days(340))
        .unwrap()
        .store;
    server_config(&TlsSettings::default(), &store).unwrap();
}

#[test]
fn selfsigned_replaces_a_broken_pair() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["mx.example.com".to_owned()];
    let cs = selfsigned::ensure(dir.path(), &names).unwrap();
    std::fs::write(&cs.key_path, "garbage").unwrap();
    let cs = selfsigned::ensure(dir.path(), &names).unwrap();
    certs::load(&[cs], common::now()).unwrap();
}

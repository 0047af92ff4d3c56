//! DANE TLSA matching against real certificates (TestCa and rcgen chains):
//! RFC 7672 §3.1.1 (DANE-EE: leaf only, names and dates ignored), §3.1.2
//! (DANE-TA: any certificate of the presented chain the leaf chains to,
//! dates checked, name check left to the caller), §3.1.3 (PKIX usages are
//! unusable), §2.2 (only authenticated records count).
#![allow(clippy::unwrap_used)]

use postern_dns::{Tlsa, TlsaLookup};
use postern_testkit::{KeyKind, TestCa};
use postern_tlspolicy::dane::{self, DaneResult, association, authenticated_records};
use postern_tlspolicy::match_tlsa;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn record(usage: u8, selector: u8, matching: u8, cert: &CertificateDer<'_>) -> Tlsa {
    Tlsa {
        usage,
        selector,
        matching,
        data: association(cert, selector, matching).unwrap(),
    }
}

fn matched(r: &DaneResult) -> (u8, usize, bool) {
    match r {
        DaneResult::Matched {
            usage,
            index,
            name_check_required,
            ..
        } => (*usage, *index, *name_check_required),
        other => panic!("expected a match, got {other:?}"),
    }
}

#[test]
fn dane_ee_matches_the_leaf_in_every_form() {
    let ca = TestCa::new();
    let leaf = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let root = der(ca.cert_pem());
    for (selector, matching) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
        let r = match_tlsa(
            &[record(3, selector, matching, &leaf)],
            &[leaf.clone(), root.clone()],
        );
        assert_eq!(matched(&r), (3, 0, false), "3 {selector} {matching}");
    }
    // RSA keys too.
    let rsa = der(&ca
        .issue_with(&["mx1.example.test"], KeyKind::Rsa2048, None)
        .cert_pem);
    assert!(match_tlsa(&[record(3, 1, 1, &rsa)], &[rsa]).is_match());
}

#[test]
fn dane_ee_with_a_bad_hash_does_not_match() {
    let ca = TestCa::new();
    let leaf = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let other = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let mut flipped = record(3, 1, 1, &leaf);
    flipped.data[0] ^= 0xff;
    for records in [vec![record(3, 1, 1, &other)], vec![flipped]] {
        let r = match_tlsa(&records, std::slice::from_ref(&leaf));
        let DaneResult::NoMatch { why } = &r else {
            panic!("{r:?}")
        };
        assert!(why.contains("≠ leaf"), "{why}");
    }
    // The same key in a new certificate still matches a 3 1 1 record (SPKI),
    // not a 3 0 1 record (whole certificate): the reason operators are told
    // to publish 3 1 1.
    let key = rcgen::KeyPair::generate().unwrap();
    let a = rcgen::CertificateParams::new(vec!["mx1.example.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let b = rcgen::CertificateParams::new(vec!["mx2.example.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (a, b) = (a.der().clone(), b.der().clone());
    assert!(match_tlsa(&[record(3, 1, 1, &a)], std::slice::from_ref(&b)).is_match());
    assert!(!match_tlsa(&[record(3, 0, 1, &a)], &[b]).is_match());
}

#[test]
fn dane_ee_ignores_expiry_and_names() {
    let ca = TestCa::new();
    let now = time::OffsetDateTime::now_utc();
    let expired = der(&ca
        .issue_with(
            &["somewhere.else.test"],
            KeyKind::EcdsaP256,
            Some((
                now - time::Duration::days(60),
                now - time::Duration::days(30),
            )),
        )
        .cert_pem);
    let r = match_tlsa(&[record(3, 1, 1, &expired)], &[expired]);
    assert_eq!(matched(&r), (3, 0, false));
}

#[test]
fn dane_ta_matches_the_presented_ca_and_requires_the_name_check() {
    let ca = TestCa::new();
    let leaf = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let root = der(ca.cert_pem());
    for (selector, matching) in [(0, 1), (1, 1), (1, 2), (0, 0)] {
        let r = match_tlsa(
            &[record(2, selector, matching, &root)],
            &[leaf.clone(), root.clone()],
        );
        assert_eq!(matched(&r), (2, 1, true), "2 {selector} {matching}");
    }
    assert!(
        match_tlsa(&[record(2, 0, 1, &root)], &[leaf.clone(), root.clone()])
            .describe()
            .contains("must also match the MX host name")
    );
    // Not presented: DANE-TA needs the anchor in the chain.
    let r = match_tlsa(&[record(2, 0, 1, &root)], std::slice::from_ref(&leaf));
    let DaneResult::NoMatch { why } = &r else {
        panic!("{r:?}")
    };
    assert!(
        why.contains("matches no certificate of the 1 presented"),
        "{why}"
    );
}

#[test]
fn dane_ta_needs_the_leaf_to_chain_to_the_anchor() {
    let ca = TestCa::new();
    let stranger = TestCa::new();
    let leaf = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let stranger_root = der(stranger.cert_pem());
    // The server appends an unrelated CA that the TLSA record names.
    let r = match_tlsa(&[record(2, 0, 1, &stranger_root)], &[leaf, stranger_root]);
    let DaneResult::NoMatch { why } = &r else {
        panic!("{r:?}")
    };
    assert!(why.contains("does not chain to it"), "{why}");
}

#[test]
fn dane_ta_checks_dates_of_the_leaf() {
    let ca = TestCa::new();
    let now = time::OffsetDateTime::now_utc();
    let expired = der(&ca
        .issue_with(
            &["mx1.example.test"],
            KeyKind::EcdsaP256,
            Some((
                now - time::Duration::days(60),
                now - time::Duration::days(30),
            )),
        )
        .cert_pem);
    let root = der(ca.cert_pem());
    let r = match_tlsa(&[record(2, 1, 1, &root)], &[expired, root]);
    assert!(matches!(r, DaneResult::NoMatch { .. }), "{r:?}");
}

#[test]
fn dane_ta_on_an_intermediate() {
    let mut root_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root_cert = root_params.self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let mut inter_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    inter_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    inter_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Intermediate");
    let inter_key = rcgen::KeyPair::generate().unwrap();
    let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
    let inter_issuer = rcgen::Issuer::new(inter_params, inter_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["mx1.example.test".into()])
        .unwrap()
        .signed_by(&leaf_key, &inter_issuer)
        .unwrap();
    let chain = [
        leaf.der().clone(),
        inter.der().clone(),
        root_cert.der().clone(),
    ];
    let r = match_tlsa(&[record(2, 1, 1, inter.der())], &chain);
    assert_eq!(matched(&r), (2, 1, true));
    let r = match_tlsa(&[record(2, 1, 1, root_cert.der())], &chain);
    assert_eq!(matched(&r), (2, 2, true));
}

#[test]
fn unusable_records_are_skipped_and_reported() {
    let ca = TestCa::new();
    let leaf = der(&ca.issue(&["mx1.example.test"]).cert_pem);
    let pkix = record(1, 1, 1, &leaf);
    let good = record(3, 1, 1, &leaf);
    // A usable record among unusable ones still decides.
    assert!(match_tlsa(&[pkix.clone(), good], std::slice::from_ref(&leaf)).is_match());
    // Only unusable ones: TLS without authentication (RFC 7672 §2.2).
    let short = Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![1, 2, 3],
    };
    let r = match_tlsa(&[pkix, short], &[leaf]);
    let DaneResult::Unusable { why } = &r else {
        panic!("{r:?}")
    };
    assert!(why.contains("RFC 7672 §3.1.3"), "{why}");
    assert!(why.contains("must be 32 octets, found 3"), "{why}");
}

#[test]
fn only_authenticated_lookups_count() {
    let lookup = |authenticated| TlsaLookup {
        name: "_25._tcp.mx1.example.test".into(),
        records: vec![Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0; 32],
        }],
        authenticated,
    };
    assert!(authenticated_records(&lookup(false)).is_none());
    assert_eq!(
        authenticated_records(&lookup(true)).map(<[Tlsa]>::len),
        Some(1)
    );
    assert_eq!(dane::usage_name(2), "DANE-TA(2)");
}

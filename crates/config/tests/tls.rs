//! `[tls] cipher_suites` and `groups`: names resolved through the postern-tls
//! catalogues; refusals come with the index of the entry.

mod common;

use common::{error, load, warnings, with};

fn suites(list: &str) -> Vec<u16> {
    load(&with(&format!("[tls]\ncipher_suites = {list}\n")))
        .expect("loads")
        .config
        .server
        .tls
        .cipher_suites
}

#[test]
fn suite_spellings_in_order() {
    assert_eq!(
        suites(
            "[\"TLS_AES_128_GCM_SHA256\", \"ECDHE-RSA-AES256-GCM-SHA384\", \"0xcca8\", \"4866\", 49195]"
        ),
        [0x1301, 0xc030, 0xcca8, 0x1302, 0xc02b]
    );
    assert_eq!(suites("[]"), Vec::<u16>::new());
}

#[test]
fn unsupported_suite_names_its_index_and_reason() {
    let e = error(&with(
        "[tls]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\", \"TLS_RSA_WITH_AES_128_CBC_SHA\"]\n",
    ));
    let prefix =
        "postern.toml:12:85: tls.cipher_suites[2]: TLS_RSA_WITH_AES_128_CBC_SHA (0x002f): ";
    assert!(e.starts_with(prefix), "{e}");
    assert!(e.contains("rustls offers only"), "{e}");
    let e = error(&with("[tls]\ncipher_suites = [\"TLS_FANCY\"]\n"));
    assert!(
        e.starts_with("postern.toml:12:18: tls.cipher_suites[0]: unknown cipher suite 'TLS_FANCY'"),
        "{e}"
    );
}

#[test]
fn duplicate_suite() {
    assert_eq!(
        error(&with(
            "[tls]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\", \"0x1301\"]\n"
        )),
        "postern.toml:12:44: tls.cipher_suites[1]: TLS_AES_128_GCM_SHA256 (0x1301) is listed \
         twice (also tls.cipher_suites[0])"
    );
}

#[test]
fn every_enabled_version_needs_a_suite() {
    // min 1.3 but only TLS 1.2 suites.
    assert_eq!(
        error(&with(
            "[tls]\nmin_version = \"1.3\"\ncipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n"
        )),
        "postern.toml:13:17: tls.cipher_suites: no TLS 1.3 suite is listed, but TLS 1.3 is \
         enabled, so every TLS 1.3 handshake would fail; add one of TLS_AES_256_GCM_SHA384, \
         TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256, or set max_version = \"1.2\""
    );
    // Both versions enabled, TLS 1.3 suites only.
    let e = error(&with(
        "[tls]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\"]\n",
    ));
    assert!(
        e.starts_with(
            "postern.toml:12:17: tls.cipher_suites: no TLS 1.2 suite is listed, but TLS 1.2 is \
             enabled, so every TLS 1.2 handshake would fail; add one of \
             TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "
        ),
        "{e}"
    );
    assert!(e.ends_with(", or set min_version = \"1.3\""), "{e}");
    // TLS 1.3 only with TLS 1.3 suites is fine.
    assert!(
        load(&with(
            "[tls]\nmin_version = \"1.3\"\ncipher_suites = [\"TLS_AES_256_GCM_SHA384\"]\n"
        ))
        .is_ok()
    );
}

#[test]
fn suites_of_a_disabled_version_warn() {
    assert_eq!(
        warnings(&with(
            "[tls]\nmax_version = \"1.2\"\ncipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\", \"TLS_AES_128_GCM_SHA256\"]\n"
        )),
        [
            "postern.toml:13:59: tls.cipher_suites[1]: TLS_AES_128_GCM_SHA256 (0x1301) is a TLS 1.3 \
          suite and is never used: TLS 1.3 is not enabled (min_version \"1.2\", max_version \"1.2\")"
        ]
    );
}

#[test]
fn groups_resolve_in_order() {
    let c = load(&with(
        "[tls]\ngroups = [\"X25519MLKEM768\", \"x25519\", \"P-256\", \"0x0018\", 29]\n",
    ));
    let e = c.unwrap_err().to_string();
    assert_eq!(
        e,
        "postern.toml:12:58: tls.groups[4]: x25519 is listed twice (also tls.groups[1])"
    );
    let c = load(&with(
        "[tls]\ngroups = [\"X25519MLKEM768\", \"x25519\", \"P-256\", \"0x0018\"]\n",
    ))
    .unwrap()
    .config;
    assert_eq!(c.server.tls.kx_groups, [0x11ec, 0x001d, 0x0017, 0x0018]);
}

#[test]
fn unsupported_group() {
    let e = error(&with("[tls]\ngroups = [\"x25519\", \"x448\"]\n"));
    assert!(
        e.starts_with("postern.toml:12:21: tls.groups[1]: key-exchange group x448 (0x001e) is not implemented by rustls; use one of "),
        "{e}"
    );
}

#[test]
fn tls12_needs_a_classic_group() {
    assert_eq!(
        error(&with("[tls]\ngroups = [\"X25519MLKEM768\"]\n")),
        "postern.toml:12:10: tls.groups: only post-quantum groups are listed, and they exist only \
         in TLS 1.3, so every TLS 1.2 handshake would fail; add x25519 or secp256r1, or set \
         min_version = \"1.3\""
    );
    assert!(
        load(&with(
            "[tls]\nmin_version = \"1.3\"\ngroups = [\"X25519MLKEM768\"]\n"
        ))
        .is_ok()
    );
}

/// A list copied from MailSite (decimal ids, `0xC0xx` written `0xCxx`) is
/// explained whole in one error, with the list to paste instead.
#[test]
fn mailsite_list_is_explained_whole() {
    let e = error(&with(
        "[tls]\ncipher_suites = [159, 158, 3112, 3111, 3092, 3091, 57, 51]\n",
    ));
    assert!(
        e.starts_with(
            "postern.toml:12:18: tls.cipher_suites: 8 of 8 suites cannot be used as written:\n"
        ),
        "{e}"
    );
    for want in [
        "  159  = 0x009f TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: cannot be used: DHE key exchange",
        "  3112 = 0xc028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 (read as MailSite's 0xC28 = 3112 \
         for 0xC028): cannot be used: CBC (MAC-then-encrypt)",
        "closest usable: TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (0xc030)",
        "  51   = 0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA: cannot be used: DHE key exchange with \
         CBC",
    ] {
        assert!(e.contains(want), "{want}\n--- in ---\n{e}");
    }
    let paste = "  write instead: cipher_suites = [\"TLS_AES_256_GCM_SHA384\", \
                 \"TLS_CHACHA20_POLY1305_SHA256\", \"TLS_AES_128_GCM_SHA256\", \
                 \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\", \
                 \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]";
    assert!(e.ends_with(paste), "{e}");
    // The line it suggests loads.
    let fixed = paste.trim_start().trim_start_matches("write instead: ");
    assert_eq!(
        load(&with(&format!("[tls]\n{fixed}\n")))
            .unwrap()
            .config
            .server
            .tls
            .cipher_suites,
        [0x1302, 0x1303, 0x1301, 0xc030, 0xc02f]
    );
}

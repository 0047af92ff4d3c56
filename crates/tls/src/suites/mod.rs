//! The cipher-suite catalogue: every suite an operator may name in a config
//! (IANA name, OpenSSL name, hex or decimal id), what it is made of, and whether
//! rustls can negotiate it — and if not, why, in words an operator can act on.
//!
//! This is a lookup table, not a policy: [`usable`] is the gate for server
//! settings, [`lookup`] also resolves legacy suites so errors (and later the TLS
//! scanner) can name and explain them.
//!
//! The table (`table.rs`) is generated from a one-time capture of
//! `openssl ciphers -V -stdname 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'` (OpenSSL 3.0,
//! `data/openssl-ciphers.txt`) plus hand-written legacy rows the Debian build no
//! longer lists (RC4, DES, 3DES, EXPORT, static ECDH; `data/legacy-ciphers.txt`).
//!
//! # Security
//! Parses operator-supplied names only (config files), never peer input. Which
//! suites are *supported* is asked of the rustls aws-lc-rs provider itself, so the
//! table cannot claim a suite rustls would not negotiate.
//!
//! # Standards
//! IANA "TLS Cipher Suites" registry; RFC 8446 §B.4 (TLS 1.3 suites), RFC 5289 and
//! RFC 7905 (ECDHE AES-GCM / ChaCha20-Poly1305 suites for TLS 1.2), RFC 7465
//! (RC4 prohibited), RFC 7457 (attacks on legacy TLS), RFC 9325 (BCP 195).

mod explain;
mod table;

pub use explain::{Entry, ListExplanation, closest, explain_list, explain_one, split_list};

use rustls::SupportedCipherSuite;
use rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES;

/// One cipher suite as the catalogue knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteInfo {
    /// IANA code point.
    pub id: u16,
    /// IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    pub iana: &'static str,
    /// OpenSSL name, e.g. `ECDHE-RSA-AES256-GCM-SHA384`, when OpenSSL has one.
    pub openssl: Option<&'static str>,
    /// A TLS 1.3 suite (key exchange and authentication are negotiated apart).
    pub tls13: bool,
    /// Key exchange: `ECDHE`, `DHE`, `RSA` (static, no forward secrecy), `ECDH`
    /// (static), `PSK`, `DHE-PSK`, `ECDHE-PSK`, `RSA-PSK`, `SRP`, `any` (TLS 1.3)
    /// or `none` (signalling values).
    pub kx: &'static str,
    /// Server authentication: `RSA`, `ECDSA`, `DSS`, `PSK`, `SRP`, `anon` (none at
    /// all), `any` (TLS 1.3) or `none` (signalling values).
    pub auth: &'static str,
    /// Bulk cipher and mode, e.g. `AES-256-GCM`, `CHACHA20-POLY1305`,
    /// `AES-128-CBC`, `3DES-EDE-CBC`, `RC4-128`, `NULL`.
    pub cipher: &'static str,
    /// The cipher is an AEAD (no separate MAC).
    pub aead: bool,
    /// Cipher key bits as OpenSSL reports them (3DES: 168; NULL: 0).
    pub bits: u16,
    /// Record MAC: `AEAD`, `SHA1`, `SHA256`, `SHA384`, `MD5` or `none`.
    pub mac: &'static str,
    /// Oldest protocol version that defines the suite, as OpenSSL labels it
    /// (`SSLv3`, `TLSv1.0`, `TLSv1.2`, `TLSv1.3`).
    pub protocol: &'static str,
}

/// Why a suite name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuiteError {
    /// The name matches nothing in the catalogue.
    #[error(
        "unknown cipher suite '{name}': use an IANA name (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384), \
         an OpenSSL name (ECDHE-RSA-AES256-GCM-SHA384), a hex id (0xc030) or a decimal id (49200)"
    )]
    Unknown {
        /// The name as given.
        name: String,
    },
    /// A real suite that rustls cannot negotiate.
    #[error(
        "{iana} (0x{id:04x}): {reason}; remove it from cipher_suites (rustls offers only: {supported})"
    )]
    Unsupported {
        /// IANA name of the suite.
        iana: &'static str,
        /// Its id.
        id: u16,
        /// Why rustls does not implement it.
        reason: &'static str,
        /// The IANA names rustls does implement, comma-separated.
        supported: String,
    },
}

impl SuiteInfo {
    /// Whether the rustls aws-lc-rs provider implements this suite.
    pub fn is_rustls_supported(&self) -> bool {
        rustls_suite(self.id).is_some()
    }

    /// Why rustls does not implement this suite; `None` when it does.
    ///
    /// The most serious defect is named first (no encryption, no authentication,
    /// export strength, broken cipher) before the structural ones rustls rules out
    /// by design (no forward secrecy, MAC-then-encrypt, finite-field DHE).
    pub fn unsupported_reason(&self) -> Option<&'static str> {
        if self.is_rustls_supported() {
            return None;
        }
        let cbc = self.cipher.ends_with("-CBC");
        let reason = if self.kx == "none" {
            "a signalling value or the null suite, not a cipher suite a server can choose"
        } else if self.cipher == "NULL" {
            "NULL cipher: records are not encrypted at all; rustls implements only AEAD suites"
        } else if self.auth == "anon" {
            "anonymous key exchange: the server is not authenticated, so any man in the middle \
             can read the session; rustls always authenticates the server"
        } else if self.iana.contains("EXPORT") {
            "EXPORT-grade (40/56-bit) cryptography, broken since the 1990s (FREAK, Logjam); \
             rustls does not implement it"
        } else if self.cipher.starts_with("RC4") {
            "RC4 stream cipher: broken and prohibited in TLS by RFC 7465; rustls does not implement it"
        } else if self.cipher.starts_with("DES") || self.cipher.starts_with("3DES") {
            "DES/3DES: 64-bit block cipher (Sweet32, CVE-2016-2183) in CBC mode; rustls \
             implements only AEAD suites"
        } else if self.kx.contains("PSK") || self.kx == "SRP" {
            "pre-shared-key (PSK) or SRP key exchange: rustls implements no TLS 1.2 PSK or SRP \
             suites (TLS 1.3 resumption does not need them)"
        } else if self.kx == "RSA" && cbc {
            "CBC (MAC-then-encrypt) with static RSA key exchange; rustls implements only AEAD \
             suites with (EC)DHE — no forward secrecy otherwise"
        } else if self.kx == "RSA" {
            "static RSA key exchange: no forward secrecy (a stolen server key decrypts every \
             recorded session); rustls implements only ECDHE key exchange in TLS 1.2"
        } else if self.kx == "DHE" && cbc {
            "DHE key exchange with CBC (MAC-then-encrypt): rustls implements neither finite-field \
             DHE nor CBC suites"
        } else if self.kx == "DHE" {
            "DHE key exchange: rustls does not implement finite-field DHE"
        } else if self.kx == "ECDH" {
            "static ECDH key exchange: no forward secrecy; rustls implements only ephemeral ECDHE"
        } else if cbc {
            "CBC (MAC-then-encrypt): rustls implements only AEAD suites (AES-GCM, ChaCha20-Poly1305)"
        } else if self.cipher.contains("CCM") {
            "AES-CCM: the rustls aws-lc-rs provider implements only AES-GCM and ChaCha20-Poly1305"
        } else if self.cipher.starts_with("ARIA") || self.cipher.starts_with("CAMELLIA") {
            "ARIA/Camellia: rustls implements only AES-GCM and ChaCha20-Poly1305"
        } else if self.auth == "DSS" {
            "DSA (DSS) authentication: rustls does not implement DSA"
        } else {
            "not implemented by rustls"
        };
        Some(reason)
    }

    /// Whether the suite provides forward secrecy (ephemeral key exchange).
    pub fn is_forward_secret(&self) -> bool {
        matches!(self.kx, "ECDHE" | "DHE" | "ECDHE-PSK" | "DHE-PSK" | "any")
    }

    /// The rustls suite object for this entry, if rustls implements it.
    pub fn to_rustls(&self) -> Option<SupportedCipherSuite> {
        rustls_suite(self.id)
    }
}

impl std::fmt::Display for SuiteInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (0x{:04x})", self.iana, self.id)
    }
}

/// The whole catalogue, sorted by id.
pub fn all() -> &'static [SuiteInfo] {
    table::SUITES
}

/// The catalogue entry for an IANA id.
pub fn by_id(id: u16) -> Option<&'static SuiteInfo> {
    table::SUITES
        .binary_search_by_key(&id, |s| s.id)
        .ok()
        .and_then(|i| table::SUITES.get(i))
}

/// Extra OpenSSL spellings: OpenSSL 1.1 renamed `EDH-` to `DHE-` for the 3DES
/// suites and kept the old names as aliases.
const OPENSSL_ALIASES: &[(&str, u16)] = &[
    ("EDH-RSA-DES-CBC3-SHA", 0x0016),
    ("EDH-DSS-DES-CBC3-SHA", 0x0013),
];

/// Accepts an IANA name (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, or the rustls
/// spelling `TLS13_AES_256_GCM_SHA384`), an OpenSSL name
/// (`ECDHE-RSA-AES256-GCM-SHA384`), a hex id (`0xc030`, `0xC030`, or OpenSSL's
/// `0xC0,0x30`) or a decimal id (`49200`); case-insensitive, surrounding space
/// ignored.
pub fn lookup(name: &str) -> Result<&'static SuiteInfo, SuiteError> {
    let unknown = || SuiteError::Unknown {
        name: name.to_owned(),
    };
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(unknown());
    }
    if let Some(id) = parse_id(trimmed) {
        return by_id(id).ok_or_else(unknown);
    }
    let upper = trimmed.to_ascii_uppercase();
    let iana = match upper.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => upper.clone(),
    };
    table::SUITES
        .iter()
        .find(|s| {
            s.iana.eq_ignore_ascii_case(&iana)
                || s.openssl.is_some_and(|o| o.eq_ignore_ascii_case(&upper))
        })
        .or_else(|| {
            OPENSSL_ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(&upper))
                .and_then(|(_, id)| by_id(*id))
        })
        .ok_or_else(unknown)
}

/// For server settings: [`lookup`], and the suite must be one rustls implements.
/// [`SuiteError::Unsupported`] names the suite and says why not.
pub fn usable(name: &str) -> Result<&'static SuiteInfo, SuiteError> {
    let info = lookup(name)?;
    match info.unsupported_reason() {
        None => Ok(info),
        Some(reason) => Err(SuiteError::Unsupported {
            iana: info.iana,
            id: info.id,
            reason,
            supported: supported_names(),
        }),
    }
}

/// Like [`usable`] for an id already parsed (settings carry ids).
pub fn usable_id(id: u16) -> Result<&'static SuiteInfo, SuiteError> {
    usable(&format!("0x{id:04x}"))
}

/// The built-in server order: TLS 1.3 suites first (AES-256-GCM, ChaCha20,
/// AES-128-GCM), then TLS 1.2 ECDHE suites, 256-bit before ChaCha20 before
/// 128-bit, ECDSA before RSA at each step.
pub fn default_order() -> Vec<u16> {
    vec![
        0x1302, // TLS_AES_256_GCM_SHA384
        0x1303, // TLS_CHACHA20_POLY1305_SHA256
        0x1301, // TLS_AES_128_GCM_SHA256
        0xc02c, // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        0xc030, // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        0xcca9, // TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        0xcca8, // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        0xc02b, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    ]
}

/// IANA names of every suite rustls implements, in default order.
pub fn supported_names() -> String {
    default_order()
        .into_iter()
        .filter_map(by_id)
        .map(|s| s.iana)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name to show for a suite id seen on the wire: the IANA name, or
/// `unknown (0x1234)` (GREASE values, RFC 8701, land here).
pub fn display_name(id: u16) -> String {
    match by_id(id) {
        Some(s) => s.iana.to_owned(),
        None if is_grease(id) => format!("GREASE (0x{id:04x})"),
        None => format!("unknown (0x{id:04x})"),
    }
}

/// RFC 8701 GREASE values (0x0a0a, 0x1a1a, … 0xfafa).
pub fn is_grease(id: u16) -> bool {
    id & 0x0f0f == 0x0a0a && (id >> 8) == (id & 0xff)
}

fn rustls_suite(id: u16) -> Option<SupportedCipherSuite> {
    ALL_CIPHER_SUITES
        .iter()
        .copied()
        .find(|s| u16::from(s.suite()) == id)
}

/// `0xc030`, `0XC030`, `0xC0,0x30`, `49200`.
pub(crate) fn parse_id(s: &str) -> Option<u16> {
    let lower = s.to_ascii_lowercase();
    if let Some((hi, lo)) = lower.split_once(',') {
        let hi = u8::from_str_radix(hi.trim().strip_prefix("0x")?, 16).ok()?;
        let lo = u8::from_str_radix(lo.trim().strip_prefix("0x")?, 16).ok()?;
        return Some(u16::from_be_bytes([hi, lo]));
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return u16::from_str_radix(hex, 16).ok();
    }
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        return lower.parse().ok();
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let ids: Vec<u16> = all().iter().map(|s| s.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
        assert!(all().len() >= 158 + 60);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = all()
            .iter()
            .flat_map(|s| std::iter::once(s.iana).chain(s.openssl))
            .map(str::to_ascii_uppercase)
            .collect();
        names.sort();
        let n = names.len();
        names.dedup();
        // TLS 1.3 suites carry the same name as IANA and OpenSSL name.
        assert_eq!(n - names.len(), all().iter().filter(|s| s.tls13).count());
    }

    #[test]
    fn every_rustls_suite_is_catalogued_and_in_default_order() {
        for s in ALL_CIPHER_SUITES {
            let id = u16::from(s.suite());
            let info = by_id(id).expect("catalogued");
            assert!(info.is_rustls_supported());
            assert!(info.aead);
            assert!(info.is_forward_secret());
            assert!(default_order().contains(&id), "{info}");
        }
        assert_eq!(all().iter().filter(|s| s.is_rustls_supported()).count(), 9);
        assert_eq!(default_order().len(), 9);
    }

    #[test]
    fn lookup_by_every_spelling() {
        for name in [
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "tls_ecdhe_rsa_with_aes_256_gcm_sha384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ecdhe-rsa-aes256-gcm-sha384",
            "0xc030",
            "0xC030",
            "0XC030",
            "0xC0,0x30",
            "49200",
            "  49200 ",
        ] {
            let s = lookup(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.id, 0xc030, "{name}");
            assert_eq!(s.kx, "ECDHE");
            assert_eq!(s.auth, "RSA");
            assert_eq!(s.cipher, "AES-256-GCM");
            assert_eq!(s.bits, 256);
            assert!(s.aead && !s.tls13);
        }
        assert_eq!(lookup("TLS13_AES_256_GCM_SHA384").unwrap().id, 0x1302);
        assert_eq!(lookup("TLS_AES_256_GCM_SHA384").unwrap().kx, "any");
        assert_eq!(lookup("EDH-RSA-DES-CBC3-SHA").unwrap().id, 0x0016);
        assert_eq!(lookup("DES-CBC3-SHA").unwrap().id, 0x000a);
    }

    #[test]
    fn unknown_names() {
        for name in [
            "",
            "  ",
            "TLS_FOO",
            "AES-512-GCM",
            "0xzz",
            "70000",
            "0x1234",
            "0x",
        ] {
            let err = lookup(name).unwrap_err();
            assert!(matches!(err, SuiteError::Unknown { .. }), "{name}");
            assert!(err.to_string().contains("IANA name"), "{err}");
        }
    }

    #[test]
    fn mailsite_decimal_159_is_dhe_and_unsupported() {
        let s = lookup("159").unwrap();
        assert_eq!(s.openssl, Some("DHE-RSA-AES256-GCM-SHA384"));
        assert_eq!(s.iana, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384");
        assert_eq!(s.kx, "DHE");
        assert!(!s.is_rustls_supported());
        let err = usable("159").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 (0x009f): DHE key exchange: rustls does not \
                 implement finite-field DHE"
            ),
            "{err}"
        );
    }

    #[test]
    fn unsupported_reasons_name_the_defect() {
        let cases = [
            (
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_AES_128_CBC_SHA (0x002f): CBC (MAC-then-encrypt) with static RSA \
                 key exchange; rustls implements only AEAD suites with (EC)DHE — no forward \
                 secrecy otherwise",
            ),
            ("RC4-SHA", "RFC 7465"),
            ("DES-CBC3-SHA", "Sweet32"),
            ("ECDHE-RSA-DES-CBC3-SHA", "Sweet32"),
            (
                "AES256-GCM-SHA384",
                "static RSA key exchange: no forward secrecy",
            ),
            (
                "ECDHE-RSA-AES256-SHA",
                "CBC (MAC-then-encrypt): rustls implements only AEAD",
            ),
            ("DHE-RSA-AES256-SHA", "neither finite-field DHE nor CBC"),
            ("ADH-AES256-GCM-SHA384", "anonymous"),
            ("NULL-SHA256", "NULL cipher"),
            ("EXP-RC4-MD5", "EXPORT"),
            ("PSK-AES128-GCM-SHA256", "PSK"),
            ("TLS_AES_128_CCM_SHA256", "AES-CCM"),
            ("ECDHE-ECDSA-AES128-CCM", "AES-CCM"),
            ("ECDHE-ARIA256-GCM-SHA384", "ARIA"),
            ("ECDH-RSA-AES256-GCM-SHA384", "static ECDH"),
            ("TLS_FALLBACK_SCSV", "signalling"),
        ];
        for (name, want) in cases {
            let err = usable(name).unwrap_err();
            assert!(matches!(err, SuiteError::Unsupported { .. }), "{name}");
            let text = err.to_string();
            assert!(text.contains(want), "{name}: {text}");
            assert!(
                text.contains("rustls offers only: TLS_AES_256_GCM_SHA384"),
                "{text}"
            );
        }
    }

    #[test]
    fn usable_accepts_all_nine() {
        for id in default_order() {
            let s = usable_id(id).unwrap();
            assert!(s.to_rustls().is_some());
            assert_eq!(s.unsupported_reason(), None);
        }
        assert!(usable("ECDHE-ECDSA-CHACHA20-POLY1305").is_ok());
    }

    #[test]
    fn display_names_for_wire_ids() {
        assert_eq!(display_name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(display_name(0x3a3a), "GREASE (0x3a3a)");
        assert_eq!(display_name(0x1234), "unknown (0x1234)");
    }
}

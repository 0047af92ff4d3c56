//! The key-exchange group catalogue: names an operator may write for
//! `kx_groups`, the IANA NamedGroup ids behind them, and which ones rustls
//! (aws-lc-rs provider) implements.
//!
//! # Security
//! Parses operator-supplied names only. Post-quantum hybrid X25519MLKEM768 comes
//! first in the built-in order: it protects recorded sessions against a future
//! quantum computer and costs about 1 KiB per handshake.
//!
//! # Standards
//! IANA "TLS Supported Groups" registry; RFC 8422 (ECC groups), RFC 7748
//! (X25519), RFC 8446 §4.2.7, RFC 7919 (FFDHE), draft-ietf-tls-ecdhe-mlkem
//! (X25519MLKEM768, SecP256r1MLKEM768), draft-ietf-tls-mlkem (pure ML-KEM).

use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::ALL_KX_GROUPS;

/// One key-exchange group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    /// IANA NamedGroup id.
    pub id: u16,
    /// Canonical name (IANA spelling, e.g. `x25519`, `secp256r1`, `X25519MLKEM768`).
    pub name: &'static str,
    /// Other accepted spellings (lower case).
    pub aliases: &'static [&'static str],
    /// A (hybrid) post-quantum group.
    pub post_quantum: bool,
}

/// Why a group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The name matches nothing in the catalogue.
    #[error(
        "unknown key-exchange group '{name}': use one of {supported} (or an IANA id such as 0x001d or 29)"
    )]
    Unknown {
        /// The name as given.
        name: String,
        /// The names rustls implements.
        supported: String,
    },
    /// A real group that rustls does not implement.
    #[error(
        "key-exchange group {name} (0x{id:04x}) is not implemented by rustls; use one of {supported}"
    )]
    Unsupported {
        /// Canonical name.
        name: &'static str,
        /// Its id.
        id: u16,
        /// The names rustls implements.
        supported: String,
    },
}

static GROUPS: &[GroupInfo] = &[
    g(
        0x0017,
        "secp256r1",
        &["p-256", "p256", "prime256v1", "nistp256"],
        false,
    ),
    g(0x0018, "secp384r1", &["p-384", "p384", "nistp384"], false),
    g(0x0019, "secp521r1", &["p-521", "p521", "nistp521"], false),
    g(0x001d, "x25519", &[], false),
    g(0x001e, "x448", &[], false),
    g(0x0100, "ffdhe2048", &[], false),
    g(0x0101, "ffdhe3072", &[], false),
    g(0x0102, "ffdhe4096", &[], false),
    g(0x0103, "ffdhe6144", &[], false),
    g(0x0104, "ffdhe8192", &[], false),
    g(0x0200, "MLKEM512", &["ml-kem-512"], true),
    g(0x0201, "MLKEM768", &["ml-kem-768"], true),
    g(0x0202, "MLKEM1024", &["ml-kem-1024"], true),
    g(
        0x11eb,
        "SecP256r1MLKEM768",
        &["p256mlkem768", "p-256-mlkem768"],
        true,
    ),
    g(0x11ec, "X25519MLKEM768", &["x25519-mlkem768"], true),
    g(0x11ed, "SecP384r1MLKEM1024", &["p384mlkem1024"], true),
];

const fn g(
    id: u16,
    name: &'static str,
    aliases: &'static [&'static str],
    post_quantum: bool,
) -> GroupInfo {
    GroupInfo {
        id,
        name,
        aliases,
        post_quantum,
    }
}

impl GroupInfo {
    /// Whether the rustls aws-lc-rs provider implements this group.
    pub fn is_rustls_supported(&self) -> bool {
        rustls_group(self.id).is_some()
    }

    /// The rustls group object, if rustls implements it.
    pub fn to_rustls(&self) -> Option<&'static dyn SupportedKxGroup> {
        rustls_group(self.id)
    }
}

/// The catalogue entry for an id.
pub fn by_id(id: u16) -> Option<&'static GroupInfo> {
    GROUPS.iter().find(|g| g.id == id)
}

/// Accepts `x25519`, `X25519MLKEM768`, `secp256r1`/`P-256`/`prime256v1`,
/// `secp384r1`/`P-384`, … and hex (`0x001d`) or decimal (`29`) ids;
/// case-insensitive. Groups rustls does not implement are refused with
/// [`GroupError::Unsupported`].
pub fn lookup(name: &str) -> Result<&'static GroupInfo, GroupError> {
    let trimmed = name.trim();
    let found = match crate::suites::parse_id(trimmed) {
        Some(id) => by_id(id),
        None => GROUPS.iter().find(|g| {
            g.name.eq_ignore_ascii_case(trimmed)
                || g.aliases.iter().any(|a| a.eq_ignore_ascii_case(trimmed))
        }),
    };
    let Some(info) = found else {
        return Err(GroupError::Unknown {
            name: name.to_owned(),
            supported: supported_names(),
        });
    };
    if info.is_rustls_supported() {
        Ok(info)
    } else {
        Err(GroupError::Unsupported {
            name: info.name,
            id: info.id,
            supported: supported_names(),
        })
    }
}

/// Built-in order: X25519MLKEM768, X25519, P-256, P-384 (what current browsers
/// and MTAs offer; the pure ML-KEM and P-256 hybrid are left to explicit config).
pub fn default_order() -> Vec<u16> {
    vec![0x11ec, 0x001d, 0x0017, 0x0018]
}

/// Display name for a group id seen on the wire.
pub fn display_name(id: u16) -> String {
    match by_id(id) {
        Some(g) => g.name.to_owned(),
        None if crate::suites::is_grease(id) => format!("GREASE (0x{id:04x})"),
        None => format!("unknown (0x{id:04x})"),
    }
}

/// Names of every group rustls implements, comma-separated.
pub fn supported_names() -> String {
    GROUPS
        .iter()
        .filter(|g| g.is_rustls_supported())
        .map(|g| g.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn rustls_group(id: u16) -> Option<&'static dyn SupportedKxGroup> {
    ALL_KX_GROUPS
        .iter()
        .copied()
        .find(|g| u16::from(g.name()) == id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for (name, id) in [
            ("x25519", 0x001d),
            ("X25519", 0x001d),
            ("X25519MLKEM768", 0x11ec),
            ("x25519mlkem768", 0x11ec),
            ("secp256r1", 0x0017),
            ("P-256", 0x0017),
            ("prime256v1", 0x0017),
            ("secp384r1", 0x0018),
            ("P-384", 0x0018),
            ("0x001d", 0x001d),
            ("29", 0x001d),
            ("4588", 0x11ec),
        ] {
            assert_eq!(lookup(name).unwrap().id, id, "{name}");
        }
    }

    #[test]
    fn unknown_and_unsupported() {
        let e = lookup("curve9999").unwrap_err();
        assert!(matches!(e, GroupError::Unknown { .. }));
        assert!(e.to_string().contains("x25519"), "{e}");
        for name in ["secp521r1", "P-521", "x448", "ffdhe2048", "256"] {
            let e = lookup(name).unwrap_err();
            assert!(matches!(e, GroupError::Unsupported { .. }), "{name}: {e}");
            assert!(e.to_string().contains("not implemented by rustls"));
        }
    }

    #[test]
    fn every_rustls_group_is_catalogued() {
        for g in ALL_KX_GROUPS {
            let id = u16::from(g.name());
            assert!(
                by_id(id).is_some_and(GroupInfo::is_rustls_supported),
                "0x{id:04x}"
            );
        }
        for id in default_order() {
            assert!(by_id(id).unwrap().is_rustls_supported());
        }
    }
}

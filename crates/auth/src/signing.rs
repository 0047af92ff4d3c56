//! Outbound DKIM signing by sender domain: the `[[dkim]]` keys of the
//! configuration, which mail they sign, and the `DKIM-Signature:` fields for
//! one message.
//!
//! A message is signed with every active key whose domain is its `From:`
//! domain or the nearest parent domain that has keys (`d=example.com` for
//! `From: a@mail.example.com` is aligned under DMARC's relaxed mode, RFC 7489
//! §3.1.1). Several keys for one domain all sign: an Ed25519 and an RSA key
//! side by side (RFC 8463 §4 recommends dual signing while verifiers catch
//! up), or the old and the new selector during a rotation. A key kept only
//! so its record stays published (`sign = false`) signs nothing.
//!
//! # Security
//! Only mail from our own users is signed (authenticated submission, relay
//! networks, the pickup folder) unless the operator asks for more: a signing
//! gateway that signs whatever passes through lends its domain's reputation
//! to anyone who can reach it. The `From:` domain is read from the message
//! itself (the header DMARC aligns with); a message with no or several
//! `From:` fields is not signed.
//!
//! # Standards
//! RFC 6376 §5 (signer actions), RFC 8463 (Ed25519), RFC 7489 §3.1.1
//! (alignment), RFC 5322 §3.6.2 (`From:`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::keys::{KeyError, load_key};
use crate::sign::{SignError, SignOptions, Signer};

/// Which mail gets signed (`[authentication] dkim_sign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignFor {
    /// Sessions that authenticated (submission).
    Authenticated,
    /// Clients in `[relay] relay_networks` or under a `relay` mail-flow policy.
    RelayClients,
    /// Messages from the pickup folder.
    Pickup,
    /// Everything, including mail merely passing through (rarely right).
    All,
}

impl SignFor {
    /// The spelling in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SignFor::Authenticated => "authenticated",
            SignFor::RelayClients => "relay-clients",
            SignFor::Pickup => "pickup",
            SignFor::All => "all",
        }
    }
}

/// Where a message came from, for [`SigningTable::applies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An authenticated SMTP session.
    Authenticated,
    /// A relay network or `relay` policy client.
    RelayClient,
    /// The pickup folder.
    Pickup,
    /// Anyone else (inbound, pass-through).
    Other,
}

/// One `[[dkim]]` key as configured (comparable, for reloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSigning {
    /// `d=`, lower case, no trailing dot.
    pub domain: String,
    /// `s=`, lower case.
    pub selector: String,
    /// The PKCS#8 PEM private key (`postern dkim keygen` writes it).
    pub key: PathBuf,
    /// False: the key is kept (its record stays published) but signs nothing.
    pub sign: bool,
    /// Header list, canonicalization, expiry.
    pub options: SignOptions,
}

/// Settings for outbound signing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SigningSettings {
    /// Which mail gets signed (default: authenticated, relay clients, pickup).
    pub sign_for: Vec<SignFor>,
    /// The keys.
    pub keys: Vec<DkimSigning>,
}

impl SigningSettings {
    /// The default scope: our own users' mail, never pass-through.
    pub fn default_sign_for() -> Vec<SignFor> {
        vec![
            SignFor::Authenticated,
            SignFor::RelayClients,
            SignFor::Pickup,
        ]
    }
}

/// A loaded key, ready to sign.
struct Key {
    domain: String,
    selector: String,
    signer: Signer,
}

/// The loaded keys (built at startup and on reload).
#[derive(Clone, Default)]
pub struct SigningTable {
    sign_for: Vec<SignFor>,
    keys: Arc<Vec<Key>>,
}

impl std::fmt::Debug for SigningTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningTable")
            .field("sign_for", &self.sign_for)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| format!("{}:{}", k.domain, k.selector))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("[[dkim]] {domain} selector {selector}: {source}")]
pub struct LoadError {
    /// The key's domain.
    pub domain: String,
    /// The key's selector.
    pub selector: String,
    /// Why.
    #[source]
    pub source: SignError,
}

/// One signature made, for logs and `queue show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
}

impl SigningTable {
    /// Loads every active key.
    pub fn load(settings: &SigningSettings) -> Result<SigningTable, LoadError> {
        let mut keys = Vec::new();
        for k in settings.keys.iter().filter(|k| k.sign) {
            let fail = |source: SignError| LoadError {
                domain: k.domain.clone(),
                selector: k.selector.clone(),
                source,
            };
            let file = load_key(&k.key).map_err(|e: KeyError| fail(e.into()))?;
            let signer = Signer::new(&file, &k.domain, &k.selector, &k.options).map_err(fail)?;
            keys.push(Key {
                domain: k.domain.clone(),
                selector: k.selector.clone(),
                signer,
            });
        }
        Ok(SigningTable {
            sign_for: settings.sign_for.clone(),
            keys: Arc::new(keys),
        })
    }

    /// No key signs anything.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether mail from `origin` is signed at all.
    pub fn applies(&self, origin: Origin) -> bool {
        !self.keys.is_empty()
            && self.sign_for.iter().any(|s| {
                matches!(
                    (s, origin),
                    (SignFor::All, _)
                        | (SignFor::Authenticated, Origin::Authenticated)
                        | (SignFor::RelayClients, Origin::RelayClient)
                        | (SignFor::Pickup, Origin::Pickup)
                )
            })
    }

    /// The keys that sign mail from `from_domain`: those of the domain itself,
    /// else of its nearest parent that has keys.
    fn keys_for(&self, from_domain: &str) -> Vec<&Key> {
        let mut d = from_domain.trim_end_matches('.');
        loop {
            let found: Vec<&Key> = self
                .keys
                .iter()
                .filter(|k| k.domain.eq_ignore_ascii_case(d))
                .collect();
            if !found.is_empty() {
                return found;
            }
            match d.split_once('.') {
                Some((_, parent)) if parent.contains('.') => d = parent,
                _ => return Vec::new(),
            }
        }
    }

    /// The `DKIM-Signature:` fields for `message` (complete, CRLF-terminated,
    /// newest first as they will be prepended), and what was signed. Nothing
    /// when no key covers its `From:` domain.
    pub fn sign(&self, message: &[u8]) -> Result<(String, Vec<Signed>), SignError> {
        let Some(from_domain) = from_domain(message) else {
            return Ok((String::new(), Vec::new()));
        };
        let mut fields = String::new();
        let mut signed = Vec::new();
        for key in self.keys_for(&from_domain) {
            let header = key.signer.signature_header(message)?;
            fields.push_str(&header);
            signed.push(Signed {
                domain: key.domain.clone(),
                selector: key.selector.clone(),
            });
        }
        Ok((fields, signed))
    }
}

/// The authors of a message: how many `From:` fields it has and the
/// domains of every address in them (lower case, in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authors {
    /// `From:` fields in the header section.
    pub fields: usize,
    /// The domain of each address (duplicates kept).
    pub domains: Vec<String>,
}

impl Authors {
    /// Several `From:` fields, or addresses in more than one domain (RFC
    /// 7489 §6.6.1: which one the reader trusts is the sender's choice).
    pub fn is_ambiguous(&self) -> bool {
        self.fields > 1 || self.domains.iter().any(|d| *d != self.domains[0])
    }
}

/// The `From:` fields of `message` and their addresses' domains.
pub fn authors(message: &[u8]) -> Authors {
    let values = postern_proto::header_values(message, "From");
    let domains = values
        .iter()
        .flat_map(|v| mail_parser_addresses(v))
        .filter_map(|a| {
            a.rsplit_once('@')
                .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        })
        .filter(|d| !d.is_empty())
        .collect();
    Authors {
        fields: values.len(),
        domains,
    }
}

/// The domain of the single `From:` field's single address, lower case.
/// `None` when there is no `From:`, more than one, or more than one address
/// (RFC 7489 §6.6.1: such messages are not ours to vouch for).
pub fn from_domain(message: &[u8]) -> Option<String> {
    let a = authors(message);
    match (a.fields, a.domains.as_slice()) {
        (1, [one]) => Some(one.clone()),
        _ => None,
    }
}

/// The addr-specs of an RFC 5322 address list (display names, comments and
/// groups skipped), parsed by `mail-parser` (mail-auth's own parser).
fn mail_parser_addresses(value: &str) -> Vec<String> {
    let raw = format!("From:{value}\r\n\r\n");
    let parsed = mail_parser::MessageParser::new().parse_headers(raw.as_bytes());
    let Some(msg) = parsed else {
        return Vec::new();
    };
    msg.from()
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_of_simple_and_display_name_forms() {
        let m = b"Subject: x\r\nFrom: Alice <alice@Mail.Example.COM>\r\n\r\nbody\r\n";
        assert_eq!(from_domain(m).as_deref(), Some("mail.example.com"));
        let m = b"From: bob@example.org\r\n\r\n";
        assert_eq!(from_domain(m).as_deref(), Some("example.org"));
        let folded = b"From: \"A, B\"\r\n <ab@example.net>\r\nTo: x@y\r\n\r\n";
        assert_eq!(from_domain(folded).as_deref(), Some("example.net"));
    }

    #[test]
    fn no_single_author_no_domain() {
        assert_eq!(from_domain(b"To: a@b.example\r\n\r\n"), None);
        assert_eq!(
            from_domain(b"From: a@b.example\r\nFrom: c@d.example\r\n\r\n"),
            None
        );
        assert_eq!(from_domain(b"From: a@b.example, c@d.example\r\n\r\n"), None);
        assert!(authors(b"From: a@b.example, c@d.example\r\n\r\n").is_ambiguous());
        assert!(authors(b"From: a@b.example\r\nFrom: a@b.example\r\n\r\n").is_ambiguous());
        assert!(!authors(b"From: a@b.example, c@B.example\r\n\r\n").is_ambiguous());
        assert!(!authors(b"To: x@y.example\r\n\r\n").is_ambiguous());
    }
}

//! DKIM signing (RFC 6376 §5): one signature for a domain and selector with
//! a loaded key, `relaxed/relaxed` by default, a header list with `From`
//! oversigned (`h=` names From once more than the message has, so no From
//! can be added after signing).
//!
//! The relaxed body goes through [`crate::canon::relaxed_body`] before
//! `mail-auth` sees it (its 0.13.3 relaxed-body bug, see that module);
//! the message that is sent stays as it was.
//!
//! # Security
//! Oversigning From (and signing absent headers of the list) stops a
//! replayer adding a second From or a Subject the signature then seems to
//! cover (RFC 6376 §8.15). No `l=` (body length) tag: it lets anyone append
//! content (§8.2).
//!
//! # Standards
//! RFC 6376 §3.4 (canonicalization), §3.5 (tags), §5.4 (which headers),
//! RFC 8463 (Ed25519-SHA256), RFC 8301 (RSA-SHA256 only).

use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner};

use crate::canon;
use crate::keys::{DkimKeyFile, KeyError};

/// Headers signed by default (RFC 6376 §5.4.1's list, trimmed to what
/// mail carries). `From` is listed twice: oversigned.
pub const DEFAULT_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Signing errors.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The message has no header of the signed list (at least From is needed).
    #[error("the message has no From header (RFC 5322 §3.6 requires one; nothing to sign)")]
    NoFrom,
    /// `mail-auth` refused to sign.
    #[error("signing failed: {0}")]
    Library(String),
}

/// How to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Header canonicalization (default relaxed).
    pub header_relaxed: bool,
    /// Body canonicalization (default relaxed).
    pub body_relaxed: bool,
    /// Headers to sign; repeat a name to oversign it.
    pub headers: Vec<String>,
    /// Signature lifetime in seconds (`x=`); 0: none.
    pub expire_after: u64,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            header_relaxed: true,
            body_relaxed: true,
            headers: DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
            expire_after: 0,
        }
    }
}

fn canonicalization(relaxed: bool) -> Canonicalization {
    if relaxed {
        Canonicalization::Relaxed
    } else {
        Canonicalization::Simple
    }
}

/// A DKIM signer for one domain and selector.
pub struct Signer {
    inner: DkimSigner<mail_auth::common::crypto::DkimKey, mail_auth::dkim::Done>,
    body_relaxed: bool,
}

impl Signer {
    /// A signer for `domain`/`selector` with `key`.
    pub fn new(
        key: &DkimKeyFile,
        domain: &str,
        selector: &str,
        options: &SignOptions,
    ) -> Result<Signer, SignError> {
        let mut inner = DkimSigner::from_key(key.signing_key()?)
            .domain(domain.trim_end_matches('.').to_ascii_lowercase())
            .selector(selector.to_ascii_lowercase())
            .headers(options.headers.iter().cloned())
            .header_canonicalization(canonicalization(options.header_relaxed))
            .body_canonicalization(canonicalization(options.body_relaxed));
        if options.expire_after > 0 {
            inner = inner.expiration(options.expire_after);
        }
        Ok(Signer {
            inner,
            body_relaxed: options.body_relaxed,
        })
    }

    /// The `DKIM-Signature:` header field for `message` (CRLF line ends),
    /// folded, ending in CRLF: prepend it to the message.
    pub fn signature_header(&self, message: &[u8]) -> Result<String, SignError> {
        let (headers, body) = canon::split_message(message);
        if !has_from(headers) {
            return Err(SignError::NoFrom);
        }
        let signature = if self.body_relaxed {
            // mail-auth 0.13.3 relaxed-body workaround (crate::canon).
            // One buffer: mail-auth's chained iterator loses a body in its own chunk.
            let mut input = Vec::with_capacity(message.len());
            input.extend_from_slice(headers);
            input.extend_from_slice(&canon::relaxed_body(body));
            self.inner.sign(&input)
        } else {
            self.inner.sign(message)
        }
        .map_err(|e| SignError::Library(e.to_string()))?;
        Ok(signature.to_header())
    }

    /// `message` with its DKIM-Signature prepended.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let header = self.signature_header(message)?;
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// Whether the header block has a From field (names compared without case).
fn has_from(headers: &[u8]) -> bool {
    headers.split(|&b| b == b'\n').any(|l| {
        l.len() >= 5 && l[..4].eq_ignore_ascii_case(b"from") && {
            let rest = &l[4..];
            let rest = rest.trim_ascii_start();
            rest.first() == Some(&b':')
        }
    })
}

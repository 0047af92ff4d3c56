//! DKIM private keys: generate (Ed25519, RSA-2048), write as PKCS#8 PEM
//! (0600, never over an existing file), load (PKCS#8, or PKCS#1 `RSA
//! PRIVATE KEY` as `opendkim-genkey` writes), and render the DNS TXT record
//! that publishes the public half.
//!
//! # Security
//! The key file is created with `create_new` and mode 0600 in one step, so
//! it is never readable by others, not even briefly, and an existing key
//! (perhaps the one in DNS right now) is never replaced. RSA keys below
//! 1024 bits are refused (RFC 8301 §3.2); we generate 2048.
//!
//! # Standards
//! RFC 6376 §3.6.1 (key record tags), RFC 8463 §4.2 (Ed25519 `p=` is the
//! raw 32-byte key), RFC 8301, RFC 1035 §3.3.14 (TXT strings ≤ 255 octets).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// Key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519-SHA256 (RFC 8463): short keys and signatures, fast.
    Ed25519,
    /// RSA-SHA256 with a 2048-bit key (RFC 8301): what every verifier knows.
    Rsa,
}

impl Algorithm {
    /// The record's `k=` value.
    pub fn k_tag(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }
}

/// Key file errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file exists already; keys are never overwritten.
    #[error(
        "{0}: a key file exists already (keys are never overwritten; choose another selector or remove it yourself)"
    )]
    Exists(PathBuf),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a PEM private key we understand.
    #[error("{path}: not a PKCS#8 or PKCS#1 PEM private key ({detail})")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A private key, but neither Ed25519 nor usable RSA.
    #[error("{path}: the key is neither Ed25519 nor RSA of 1024 bits or more")]
    Unsupported {
        /// The file.
        path: PathBuf,
    },
    /// Key generation failed in the crypto library.
    #[error("key generation failed")]
    Generate,
    /// A domain or selector that cannot be a DNS label sequence.
    #[error("{what} {value:?} is not a DNS name (letters, digits, '-', '.', '_')")]
    BadName {
        /// "domain" or "selector".
        what: &'static str,
        /// The value given.
        value: String,
    },
}

/// A loaded DKIM private key with its public half.
pub struct DkimKeyFile {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// The PKCS#8 or PKCS#1 DER of the private key.
    der: PrivateKeyDer<'static>,
    /// The `p=` bytes: raw 32 bytes (Ed25519) or SubjectPublicKeyInfo DER (RSA).
    public: Vec<u8>,
}

impl std::fmt::Debug for DkimKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private half.
        f.debug_struct("DkimKeyFile")
            .field("algorithm", &self.algorithm)
            .field("p", &self.public_base64())
            .finish_non_exhaustive()
    }
}

impl DkimKeyFile {
    /// The `p=` value, base64.
    pub fn public_base64(&self) -> String {
        STANDARD.encode(&self.public)
    }

    /// The `p=` bytes.
    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    /// The record's text: `v=DKIM1; k=…; p=…`.
    pub fn record_text(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.k_tag(),
            self.public_base64()
        )
    }

    /// The zone-file line to publish: `SELECTOR._domainkey.DOMAIN. IN TXT
    /// "…"`, the text split into strings of at most 255 octets (RFC 1035
    /// §3.3.14; an RSA-2048 record is about 410 octets).
    pub fn dns_record(&self, domain: &str, selector: &str) -> String {
        let text = self.record_text();
        let strings: Vec<String> = text
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!(
            "{} IN TXT {}",
            record_name(domain, selector),
            strings.join(" ")
        )
    }

    /// The private key for `mail-auth`'s signer.
    pub fn signing_key(&self) -> Result<mail_auth::common::crypto::DkimKey, KeyError> {
        use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
        let bad = || KeyError::Unsupported {
            path: PathBuf::from("(loaded key)"),
        };
        match self.algorithm {
            Algorithm::Ed25519 => {
                let PrivateKeyDer::Pkcs8(p8) = &self.der else {
                    return Err(bad());
                };
                Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der())
                    .map(Into::into)
                    .map_err(|_| bad())
            }
            Algorithm::Rsa => RsaKey::<Sha256>::from_key_der(self.der.clone_key())
                .map(Into::into)
                .map_err(|_| bad()),
        }
    }
}

/// `SELECTOR._domainkey.DOMAIN.` (RFC 6376 §3.6.2.1), lower case.
pub fn record_name(domain: &str, selector: &str) -> String {
    format!(
        "{}._domainkey.{}.",
        selector.to_ascii_lowercase(),
        domain.trim_end_matches('.').to_ascii_lowercase()
    )
}

/// Checks that a domain or selector is a plausible DNS name (it ends up in
/// a file name and a DNS query).
pub fn check_name(what: &'static str, value: &str) -> Result<(), KeyError> {
    let v = value.trim_end_matches('.');
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName {
            what,
            value: value.to_owned(),
        })
    }
}

/// The default key file name: `<domain>.<selector>.key`.
pub fn key_file_name(domain: &str, selector: &str) -> String {
    format!(
        "{}.{}.key",
        domain.trim_end_matches('.').to_ascii_lowercase(),
        selector.to_ascii_lowercase()
    )
}

/// Generates a new key; returns it and its PKCS#8 PEM text.
pub fn generate(algorithm: Algorithm) -> Result<(DkimKeyFile, String), KeyError> {
    let pkcs8: Vec<u8> = match algorithm {
        Algorithm::Ed25519 => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generate)?;
            der.as_ref().to_vec()
        }
        Algorithm::Rsa => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| KeyError::Generate)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generate)?;
            der.as_ref().to_vec()
        }
    };
    let pem = pem_encode("PRIVATE KEY", &pkcs8);
    let key = from_der(
        PrivateKeyDer::Pkcs8(pkcs8.into()),
        Path::new("(generated key)"),
    )?;
    Ok((key, pem))
}

/// Writes `pem` to `path`, mode 0600, failing if the file exists.
/// Creates the parent directory (0700) when missing.
pub fn write_key(path: &Path, pem: &str) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(io)?;
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists(path.to_path_buf()));
        }
        Err(e) => return Err(io(e)),
    };
    f.write_all(pem.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Loads a PEM private key file (PKCS#8 Ed25519 or RSA, or PKCS#1 RSA).
pub fn load_key(path: &Path) -> Result<DkimKeyFile, KeyError> {
    let text = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let der = PrivateKeyDer::from_pem_slice(&text).map_err(|e| KeyError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    from_der(der, path)
}

fn from_der(der: PrivateKeyDer<'static>, path: &Path) -> Result<DkimKeyFile, KeyError> {
    let unsupported = || KeyError::Unsupported {
        path: path.to_path_buf(),
    };
    if let PrivateKeyDer::Pkcs8(p8) = &der
        && let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(p8.secret_pkcs8_der())
    {
        {
            let public = pair.public_key().as_ref().to_vec();
            return Ok(DkimKeyFile {
                algorithm: Algorithm::Ed25519,
                der,
                public,
            });
        }
    }
    let pair = match &der {
        PrivateKeyDer::Pkcs8(p8) => aws_lc_rs::rsa::KeyPair::from_pkcs8(p8.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(p1) => aws_lc_rs::rsa::KeyPair::from_der(p1.secret_pkcs1_der()),
        _ => return Err(unsupported()),
    }
    .map_err(|_| unsupported())?;
    if pair.public_modulus_len() < 128 {
        // RFC 8301 §3.2: keys below 1024 bits must not be used.
        return Err(unsupported());
    }
    let spki: PublicKeyX509Der<'static> = pair.public_key().as_der().map_err(|_| unsupported())?;
    Ok(DkimKeyFile {
        algorithm: Algorithm::Rsa,
        public: spki.as_ref().to_vec(),
        der,
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_roundtrip_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("dkim")
            .join(key_file_name("Example.com", "s2026"));
        let (key, pem) = generate(Algorithm::Ed25519).unwrap();
        write_key(&path, &pem).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(write_key(&path, &pem), Err(KeyError::Exists(_))));
        let loaded = load_key(&path).unwrap();
        assert_eq!(loaded.algorithm, Algorithm::Ed25519);
        assert_eq!(loaded.public_bytes(), key.public_bytes());
        assert_eq!(loaded.public_bytes().len(), 32);
        let rec = loaded.dns_record("Example.com", "s2026");
        assert!(rec.starts_with("s2026._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p="));
        assert!(path.ends_with("example.com.s2026.key"));
    }

    #[test]
    fn rsa_record_is_split_in_255_octet_strings() {
        let (key, pem) = generate(Algorithm::Rsa).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let rec = key.dns_record("example.com", "r1");
        let strings: Vec<&str> = rec.split('"').skip(1).step_by(2).collect();
        assert!(strings.len() >= 2, "{rec}");
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), key.record_text());
        assert!(key.record_text().starts_with("v=DKIM1; k=rsa; p=MIIBIjAN"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("domain", "example.com").is_ok());
        assert!(check_name("domain", "../etc").is_err());
        assert!(check_name("selector", "a/b").is_err());
        assert!(check_name("selector", "").is_err());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.key");
        std::fs::write(&p, "not a key").unwrap();
        let e = load_key(&p).unwrap_err().to_string();
        assert!(e.contains("not a PKCS#8 or PKCS#1 PEM private key"), "{e}");
    }
}

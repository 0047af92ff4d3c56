//! A self-signed certificate for first start and tests: reused while it is
//! valid and covers the hostnames, regenerated otherwise.
//!
//! SMTP between MTAs is mostly opportunistic (RFC 7435): a self-signed
//! certificate still gives encryption against passive attackers, and is far
//! better than no STARTTLS. It is not a substitute for a CA-issued certificate
//! when peers verify (MTA-STS, DANE-TA).
//!
//! # Security
//! Writes a private key: created with mode 0600 before any byte is written,
//! fsynced, then renamed into place, so no other user can ever read it and a
//! crash never leaves half a key.
//!
//! # Standards
//! RFC 5280 (X.509), RFC 6125 (names in subjectAltName), RFC 7435.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::certs;
use crate::error::TlsError;
use crate::settings::CertSettings;

/// File name of the generated certificate inside the directory.
pub const CERT_FILE: &str = "selfsigned.crt";
/// File name of the generated key inside the directory.
pub const KEY_FILE: &str = "selfsigned.key";
/// Validity of a generated certificate.
pub const VALIDITY_DAYS: i64 = 365;
/// A certificate with fewer days left than this is replaced.
pub const RENEW_DAYS: i64 = 30;

/// If `dir/selfsigned.crt` and `dir/selfsigned.key` exist, match, cover every
/// name in `hostnames` and stay valid for more than 30 days, reuse them;
/// otherwise generate an ECDSA P-256 self-signed certificate valid one year with
/// subjectAltName = `hostnames` and write it (key mode 0600).
pub fn ensure(dir: &Path, hostnames: &[String]) -> Result<CertSettings, TlsError> {
    ensure_at(dir, hostnames, OffsetDateTime::now_utc())
}

/// [`ensure`] with the current time injected (tests).
pub fn ensure_at(
    dir: &Path,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<CertSettings, TlsError> {
    if hostnames.is_empty() {
        return Err(TlsError::NoHostnames);
    }
    let settings = CertSettings {
        cert_path: dir.join(CERT_FILE),
        key_path: dir.join(KEY_FILE),
        hostnames: hostnames.to_vec(),
    };
    if reusable(&settings, hostnames, now) {
        tracing::debug!(cert = %settings.cert_path.display(), "reusing self-signed certificate");
        return Ok(settings);
    }
    generate(&settings, hostnames, now)?;
    tracing::warn!(
        cert = %settings.cert_path.display(),
        hostnames = %hostnames.join(", "),
        "generated a self-signed certificate; peers that verify certificates will not trust it"
    );
    Ok(settings)
}

fn reusable(settings: &CertSettings, hostnames: &[String], now: OffsetDateTime) -> bool {
    if !settings.cert_path.exists() || !settings.key_path.exists() {
        return false;
    }
    // Judge coverage by the certificate's own names, not by configured ones.
    let probe = CertSettings {
        hostnames: Vec::new(),
        ..settings.clone()
    };
    match certs::load(&[probe], now) {
        Ok(loaded) => {
            let store = loaded.store;
            let fresh = store
                .summaries()
                .first()
                .is_some_and(|s| s.days_left > RENEW_DAYS);
            fresh && hostnames.iter().all(|h| store.covers(h))
        }
        Err(e) => {
            tracing::info!(error = %e, "existing self-signed certificate not reusable; regenerating");
            false
        }
    }
}

fn generate(
    settings: &CertSettings,
    hostnames: &[String],
    now: OffsetDateTime,
) -> Result<(), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(hostnames.to_vec())?;
    let mut dn = DistinguishedName::new();
    if let Some(first) = hostnames.first() {
        dn.push(DnType::CommonName, first.as_str());
    }
    params.distinguished_name = dn;
    // An hour of slack for peers whose clocks run behind.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(VALIDITY_DAYS);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key)?;

    if let Some(dir) = settings.cert_path.parent() {
        fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    write_atomically(&settings.key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&settings.cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `path.tmp` (created with `mode`), fsyncs it, renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Write { path, source }
    };
    let mut tmp: PathBuf = path.to_owned().into_os_string().into();
    tmp.as_mut_os_string().push(".tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(&tmp)(e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(err(&tmp))?;
    file.write_all(bytes).map_err(err(&tmp))?;
    file.sync_all().map_err(err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(err(path))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_hostname() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            ensure(dir.path(), &[]),
            Err(TlsError::NoHostnames)
        ));
    }
}

//! Builds the rustls `ServerConfig` of a listener from [`TlsSettings`] and a
//! [`CertStore`]: versions, suites and groups in *server* order, the SNI
//! resolver with its default certificate, and session resumption.
//!
//! Impossible combinations (TLS 1.3 only with only TLS 1.2 suites, max below
//! min, TLS 1.2 suites that fit none of the certificates, …) are errors that
//! say why, never a config that fails every handshake at run time.
//!
//! # Security
//! Decides what every inbound TLS peer may negotiate. Only suites the catalogue
//! marks as rustls-supported get through (AEAD, forward secret); the server's
//! order wins over the client's (`ignore_client_order`), so a client cannot steer
//! us to its weakest offer. Session tickets use rustls' rotating ticketer
//! (aws-lc-rs, AES-256-GCM keys rotated every 6 hours).
//!
//! # Standards
//! RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 5077 and RFC 8446 §4.6.1 (tickets),
//! RFC 9325 (BCP 195: recommended suites and server preference).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs;
use rustls::server::ServerSessionMemoryCache;

use crate::certs::CertStore;
use crate::error::TlsError;
use crate::settings::{TlsSettings, TlsVersion};
use crate::{groups, suites};

/// Sessions remembered for TLS 1.2 session-id resumption.
const SESSION_CACHE_SIZE: usize = 4096;
/// TLS 1.3 tickets sent after each full handshake (rustls' default).
const TLS13_TICKETS: usize = 2;

/// Builds the listener config: versions between min and max, suites in
/// settings order (the built-in order when empty), groups likewise,
/// `ignore_client_order = true` (server order wins), and resumption per
/// `session_tickets`: when true, an in-memory session cache, a rotating
/// ticketer and two TLS 1.3 tickets per handshake; when false, no tickets
/// (TLS 1.2 session-id resumption from the cache only).
pub fn server_config(
    settings: &TlsSettings,
    certs: &CertStore,
) -> Result<Arc<ServerConfig>, TlsError> {
    let (min, max) = (settings.min_version, settings.max_version);
    if max < min {
        return Err(TlsError::VersionRange { min, max });
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let versions: Vec<TlsVersion> = TlsVersion::ALL
        .into_iter()
        .filter(|v| (min..=max).contains(v))
        .collect();

    let suite_ids = dedup(if settings.cipher_suites.is_empty() {
        suites::default_order()
    } else {
        settings.cipher_suites.clone()
    });
    let mut cipher_suites = Vec::new();
    for id in &suite_ids {
        let info = suites::usable_id(*id)?;
        // `usable_id` succeeded, so rustls implements the suite.
        if let Some(suite) = info.to_rustls() {
            cipher_suites.push(suite);
        }
    }
    let configured_names = || {
        suite_ids
            .iter()
            .map(|id| suites::display_name(*id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for &version in &versions {
        let has_suite = cipher_suites
            .iter()
            .any(|s| TlsVersion::from_rustls(s.version().version) == Some(version));
        if !has_suite {
            return Err(TlsError::NoSuiteForVersion {
                version,
                min,
                max,
                configured: configured_names(),
                example: match version {
                    TlsVersion::Tls12 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                    TlsVersion::Tls13 => "TLS_AES_256_GCM_SHA384",
                },
            });
        }
    }
    // Suites for a version outside the range would never be chosen; drop them.
    cipher_suites.retain(|s| {
        TlsVersion::from_rustls(s.version().version).is_some_and(|v| versions.contains(&v))
    });

    if versions.contains(&TlsVersion::Tls12) {
        check_tls12_suites_fit_keys(&cipher_suites, certs)?;
    }

    let group_ids = dedup(if settings.kx_groups.is_empty() {
        groups::default_order()
    } else {
        settings.kx_groups.clone()
    });
    let mut kx_groups = Vec::new();
    for id in &group_ids {
        let info = groups::lookup(&format!("0x{id:04x}"))?;
        if let Some(g) = info.to_rustls() {
            kx_groups.push(g);
        }
    }
    for &version in &versions {
        let wire = version.to_rustls().version;
        if !kx_groups.iter().any(|g| g.usable_for_version(wire)) {
            return Err(TlsError::NoGroupForVersion {
                version,
                configured: group_ids
                    .iter()
                    .map(|id| groups::display_name(*id))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }

    let provider = CryptoProvider {
        cipher_suites,
        kx_groups,
        ..aws_lc_rs::default_provider()
    };
    let rustls_versions: Vec<&'static rustls::SupportedProtocolVersion> =
        versions.iter().map(|v| v.to_rustls()).collect();
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&rustls_versions)
        .map_err(|source| TlsError::Rustls {
            context: "protocol versions, cipher suites and groups",
            source,
        })?
        .with_no_client_auth()
        .with_cert_resolver(certs.resolver());
    config.ignore_client_order = true;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    if settings.session_tickets {
        config.ticketer = aws_lc_rs::Ticketer::new().map_err(|source| TlsError::Rustls {
            context: "session ticketer",
            source,
        })?;
        config.send_tls13_tickets = TLS13_TICKETS;
    } else {
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

fn check_tls12_suites_fit_keys(
    cipher_suites: &[rustls::SupportedCipherSuite],
    certs: &CertStore,
) -> Result<(), TlsError> {
    let tls12: Vec<_> = cipher_suites
        .iter()
        .filter(|s| s.version().version == rustls::ProtocolVersion::TLSv1_2)
        .collect();
    let keys = certs.key_algorithms();
    let fits = tls12
        .iter()
        .any(|s| keys.iter().any(|k| s.usable_for_signature_algorithm(*k)));
    if fits {
        return Ok(());
    }
    Err(TlsError::NoSuiteForCertificates {
        suites: tls12
            .iter()
            .map(|s| suites::display_name(u16::from(s.suite())))
            .collect::<Vec<_>>()
            .join(", "),
        keys: {
            let mut names: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
            names.dedup();
            names.join(", ")
        },
    })
}

fn dedup(ids: Vec<u16>) -> Vec<u16> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

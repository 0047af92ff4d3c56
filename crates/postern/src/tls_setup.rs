//! Turns the TLS part of a loaded configuration into a rustls server config:
//! certificates (generated self-signed when none are configured), the checks
//! on them, and the hostname coverage of every TLS listener.

use std::sync::Arc;

use anyhow::Context as _;
use postern_config::Config;
use postern_smtpd::{ListenerKind, TlsMode};

/// The result of building TLS.
pub(crate) struct TlsBuilt {
    /// `None` when no listener uses TLS and no certificate is configured.
    pub(crate) config: Option<Arc<rustls::ServerConfig>>,
    /// Certificate warnings (e.g. expiring soon).
    pub(crate) warnings: Vec<String>,
    /// One line per loaded certificate.
    pub(crate) summaries: Vec<String>,
    /// True when a self-signed certificate is (or would be) used.
    pub(crate) self_signed: bool,
    /// Each loaded certificate's name (its first subjectAltName, else its
    /// subject) and end of validity, for the console's expiry view.
    pub(crate) expiry: Vec<(String, time::OffsetDateTime)>,
}

fn needs_tls(cfg: &Config) -> bool {
    cfg.server
        .listeners
        .iter()
        .any(|l| l.kind == ListenerKind::Submissions || l.tls != TlsMode::Off)
        || (cfg.admin_http.listen.is_some() && cfg.admin_http.tls)
}

/// Builds the TLS configuration. With `generate`, a missing certificate is
/// generated (self-signed, into `<data_dir>/tls`); without it (config check)
/// that is only reported.
pub(crate) fn build(cfg: &mut Config, generate: bool) -> anyhow::Result<TlsBuilt> {
    let mut self_signed = false;
    if cfg.server.tls.certificates.is_empty() {
        if !needs_tls(cfg) {
            return Ok(TlsBuilt {
                config: None,
                warnings: Vec::new(),
                summaries: Vec::new(),
                self_signed,
                expiry: Vec::new(),
            });
        }
        self_signed = true;
        if !generate {
            return Ok(TlsBuilt {
                config: None,
                warnings: vec![format!(
                    "no [[tls.certificate]] configured: a self-signed certificate will be generated into {} at start (clients that verify will refuse it)",
                    cfg.data_dir.join("tls").display()
                )],
                summaries: Vec::new(),
                self_signed,
                expiry: Vec::new(),
            });
        }
        let mut names: Vec<String> = cfg
            .server
            .listeners
            .iter()
            .map(|l| l.hostname.clone())
            .collect();
        names.sort();
        names.dedup();
        let dir = cfg.data_dir.join("tls");
        let cert = postern_tls::selfsigned::ensure(&dir, &names).with_context(|| {
            format!("generating a self-signed certificate in {}", dir.display())
        })?;
        cfg.server.tls.certificates.push(cert);
    }
    let loaded = postern_tls::certs::load(
        &cfg.server.tls.certificates,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(flat)?;
    for l in &cfg.server.listeners {
        if l.kind == ListenerKind::Submissions || l.tls != TlsMode::Off {
            loaded
                .store
                .check_hostname(&l.hostname)
                .map_err(flat)
                .with_context(|| format!("listener {} (hostname {})", l.name, l.hostname))?;
        }
    }
    let config =
        postern_tls::server::server_config(&cfg.server.tls, &loaded.store).map_err(flat)?;
    Ok(TlsBuilt {
        config: Some(config),
        warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
        summaries: loaded
            .store
            .summaries()
            .iter()
            .map(ToString::to_string)
            .collect(),
        expiry: loaded
            .store
            .summaries()
            .iter()
            .map(|c| {
                (
                    c.sans.first().cloned().unwrap_or_else(|| c.subject.clone()),
                    c.not_after,
                )
            })
            .collect(),
        self_signed,
    })
}

/// The tls crate's errors already say everything (path, cause, fix); flatten
/// them so anyhow's chain does not print the cause a second time.
fn flat(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

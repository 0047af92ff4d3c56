//! Starting delivery for `postern serve`: the mail log, the DNS resolver (with
//! `[[dns.static]]` overrides), the SMTP transport with its trust anchors, and
//! the scheduler, which then loads every message already in the spool.
//!
//! Wiring (done in `serve.rs`): open the mail log once ([`open_mail_log`]) and
//! share it (delivery, the smtpd's `received` events, the pickup folder);
//! start this after `Spool::open`, hand `handle.notifier()` to the smtpd so
//! each committed message is announced (`Notifier::notify(queue_id)`), and
//! call `handle.shutdown(grace)` after the listeners have stopped. On `SIGHUP`,
//! [`reload`] hands the scheduler a new configuration and transport.
//!
//! # Security
//! Reads the trust anchors named by the configuration; logs the routing and
//! TLS-policy summary at startup, never smart-host passwords.

use std::sync::Arc;

use anyhow::Context as _;
use postern_delivery::{DeliveryHandle, SmtpTransport, SystemClock};
use postern_track::MailLog;

/// Opens the mail log (`[delivery] mail_log`), or a disabled one.
pub(crate) fn open_mail_log(cfg: &postern_config::Config) -> anyhow::Result<MailLog> {
    Ok(match &cfg.delivery.mail_log {
        Some(path) => MailLog::open(path)
            .with_context(|| format!("opening the mail log {}", path.display()))?,
        None => MailLog::disabled(),
    })
}

/// Builds and starts the delivery scheduler, logging to `log`. The returned
/// handle takes new messages ([`DeliveryHandle::notify`],
/// [`DeliveryHandle::notifier`]) and stops delivery
/// ([`DeliveryHandle::shutdown`]).
pub(crate) async fn start(
    cfg: &postern_config::Config,
    spool: postern_spool::Spool,
    log: MailLog,
) -> anyhow::Result<DeliveryHandle> {
    let transport = transport(cfg, spool.clone(), log.clone()).await?;
    log_summary(&cfg.delivery, "delivery starting");
    Ok(postern_delivery::start(
        cfg.delivery.clone(),
        spool,
        transport,
        log,
        Arc::new(SystemClock),
    ))
}

/// `SIGHUP`, second half: the scheduler takes the new `[delivery]` and
/// `[[route]]` settings and `transport` (built by [`transport`] first, so that
/// an error leaves delivery as it was) for every job it starts from now on.
pub(crate) fn apply_reload(
    cfg: &postern_config::Config,
    handle: &DeliveryHandle,
    transport: Arc<SmtpTransport>,
) {
    log_summary(&cfg.delivery, "delivery reloaded");
    handle.reload(cfg.delivery.clone(), transport);
}

/// The DNS resolver (`[dns]`) and the SMTP transport with its trust anchors.
pub(crate) async fn transport(
    cfg: &postern_config::Config,
    spool: postern_spool::Spool,
    log: MailLog,
) -> anyhow::Result<Arc<SmtpTransport>> {
    let resolver =
        postern_dns::Resolver::new(&cfg.dns).context("setting up the DNS resolver for delivery")?;
    let settings = cfg.delivery.clone();
    // Loading the system roots and CA files reads the disk.
    let transport =
        tokio::task::spawn_blocking(move || SmtpTransport::new(&settings, spool, resolver, log))
            .await
            .context("loading outbound TLS trust anchors")??;
    Ok(Arc::new(transport))
}

/// The routing and TLS-policy summary (never smart-host passwords).
fn log_summary(settings: &postern_delivery::DeliverySettings, what: &str) {
    tracing::info!(
        hostname = %settings.hostname,
        default_tls = %settings.default_tls,
        routes = settings.routes.len(),
        relayhost = settings.relayhost.as_ref().map(postern_delivery::SmartHost::key).unwrap_or_default(),
        retry_schedule = ?settings.retry_schedule,
        max_lifetime = ?settings.max_lifetime,
        mail_log = %settings.mail_log.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "{what}"
    );
    for r in &settings.routes {
        let target = match &r.target {
            postern_delivery::RouteTarget::Mx => "MX".to_owned(),
            postern_delivery::RouteTarget::SmartHost(h) => h.key(),
            postern_delivery::RouteTarget::Maildir(m) => format!("Maildir {}", m.template),
        };
        let domains: Vec<String> = r.domains.iter().map(ToString::to_string).collect();
        tracing::info!(
            route = %r.origin,
            domains = %domains.join(","),
            %target,
            tls = %r.tls.unwrap_or(settings.default_tls),
            "delivery route"
        );
    }
}

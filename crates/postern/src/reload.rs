//! `SIGHUP`: the whole new configuration, live.
//!
//! The file is read and checked, the TLS configuration and delivery's new
//! resolver and transport are built — any error here keeps everything running
//! as it was — then each part takes its new settings:
//! - the listeners' sessions (`[limits]`, `[tls]`, `[relay]`, users, …), for
//!   sessions that start from now on (`postern_smtpd::Server::reload`);
//! - delivery (`[delivery]`, `[[route]]`, `[dns]`), for every job it starts
//!   from now on; attempts under way finish under the old configuration;
//! - the pickup folder (`[pickup]`: folder, interval; `enabled` starts or stops
//!   the watcher);
//! - the spool's free-space floor (`[spool] min_free`).
//!
//! A few keys cannot change in a running server: `data_dir` (and with it the
//! spool), `listener.<name>.address` (and adding or removing a listener),
//! `admin.enabled`, `admin.socket`, `delivery.mail_log`, `log.level`,
//! `log.transcript`, `log.transcript_format`, `[counters]` (the store holds
//! the counts: a new backend would start from zero), `[tracking]`, and the
//! `[admin]` HTTP keys (`http`, `http_tls`, `users_file`, … — users and
//! tokens themselves change at once: the files are re-read). Each one that changed is logged
//! by name as needing a restart, and its running value is kept (paths derived
//! from `data_dir`, such as the default pickup and badmail folders, keep the
//! running data directory too).
//!
//! # Security
//! Reads the configuration file and the files it names, as at start. A
//! configuration that fails its checks changes nothing.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use postern_config::Config;
use postern_delivery::DeliveryHandle;
use postern_pickup::{Pickup, PickupHandle};
use postern_smtpd::Server;
use postern_spool::Spool;
use postern_track::MailLog;

use crate::tls_setup;

/// The running parts a reload reaches, and the configuration they run with.
pub(crate) struct Live {
    pub(crate) server: Server,
    pub(crate) delivery: DeliveryHandle,
    pub(crate) pickup: Option<PickupHandle>,
    /// The pickup folder's `[[dkim]]` keys.
    pub(crate) signing: postern_pickup::SharedSigning,
    pub(crate) spool: Spool,
    pub(crate) mail_log: MailLog,
    pub(crate) config: Config,
}

/// `SIGHUP`: see the module documentation. Logs what it did.
pub(crate) async fn reload(live: &mut Live, path: Option<&Path>) {
    tracing::info!("SIGHUP: reloading configuration");
    match apply(live, path).await {
        Ok(()) => tracing::info!("configuration reloaded"),
        Err(e) => tracing::error!(
            "reload failed, keeping the running configuration: {}",
            crate::config_file::chain_anyhow(&e)
        ),
    }
}

async fn apply(live: &mut Live, path: Option<&Path>) -> anyhow::Result<()> {
    let mut loaded = crate::config_file::load(path)?;
    crate::serve::log_warnings(&loaded);
    let cfg = &mut loaded.config;
    for key in keep_restart_only(&live.config, cfg) {
        tracing::warn!(key = %key, "configuration: {key} changed: needs a restart; keeping the running value");
    }
    let tls = tls_setup::build(cfg, true)?;
    for w in &tls.warnings {
        tracing::warn!("tls: {w}");
    }
    let signing = postern_auth::signing::SigningTable::load(&cfg.server.authentication.signing)
        .context("loading the [[dkim]] keys")?;
    // Built before anything changes: an error keeps delivery as it was.
    let transport =
        crate::delivery_setup::transport(cfg, live.spool.clone(), live.mail_log.clone()).await?;
    live.server
        .reload(cfg.server.clone(), tls.config)
        .context("the listeners' new settings")?;
    crate::delivery_setup::apply_reload(cfg, &live.delivery, transport);
    live.spool.set_min_free(cfg.server.spool.min_free);
    match live.signing.write() {
        Ok(mut t) => *t = signing,
        Err(poisoned) => *poisoned.into_inner() = signing,
    }
    reload_pickup(live, cfg).await;
    live.config = loaded.config;
    Ok(())
}

/// `[pickup]`: new settings for the running watcher, or start / stop it.
async fn reload_pickup(live: &mut Live, cfg: &Config) {
    match (live.pickup.take(), cfg.pickup.enabled) {
        (Some(handle), true) => {
            if let Err(e) = handle.reload(cfg.pickup.clone()) {
                tracing::error!(dir = %cfg.pickup.dir.display(), error = %e,
                    "pickup: cannot create the new folder; keeping the running pickup settings");
            }
            live.pickup = Some(handle);
        }
        (Some(handle), false) => {
            tracing::info!("pickup folder disabled ([pickup] enabled = false)");
            handle.shutdown(crate::serve::SHUTDOWN_GRACE).await;
        }
        (None, true) => {
            let notifier = live.delivery.notifier();
            match Pickup::new(
                cfg.pickup.clone(),
                live.spool.clone(),
                Arc::new(move |id| notifier.notify_pickup(id)),
                live.mail_log.clone(),
            ) {
                Ok(p) => live.pickup = Some(p.with_signing(Arc::clone(&live.signing)).start()),
                Err(e) => tracing::error!(dir = %cfg.pickup.dir.display(), error = %e,
                    "pickup: cannot create the folder; the pickup folder stays off"),
            }
        }
        (None, false) => {}
    }
}

/// Puts the running value back into `new` for every key that cannot change
/// live, and returns the names of those that changed.
pub(crate) fn keep_restart_only(old: &Config, new: &mut Config) -> Vec<String> {
    let mut changed = Vec::new();
    let data_dir_changed = new.data_dir != old.data_dir;
    if new.data_dir != old.data_dir {
        changed.push("data_dir".to_owned());
        // Defaults derived from the data directory stay under the running one.
        let rebase = |p: &mut std::path::PathBuf| {
            if let Ok(rest) = p.strip_prefix(&new.data_dir) {
                *p = old.data_dir.join(rest);
            }
        };
        let mut paths = [
            new.pickup.dir.clone(),
            new.pickup.badmail_dir.clone(),
            new.delivery.badmail_dir.clone(),
            new.dmarc_reports.dir.clone(),
        ];
        paths.iter_mut().for_each(rebase);
        let [pickup, pickup_badmail, badmail, dmarc] = paths;
        new.pickup.dir = pickup;
        new.pickup.badmail_dir = pickup_badmail;
        new.delivery.badmail_dir = badmail;
        new.dmarc_reports.dir = dmarc;
        if let Some(mut cache) = new.delivery.mta_sts_cache.clone() {
            rebase(&mut cache);
            new.delivery.mta_sts_cache = Some(cache);
        }
        new.data_dir.clone_from(&old.data_dir);
    }
    // The spool directory is the data directory's; its floor may change.
    new.server.spool.dir.clone_from(&old.server.spool.dir);
    for l in &mut new.server.listeners {
        match old.server.listeners.iter().find(|o| o.name == l.name) {
            Some(o) if o.addr != l.addr => {
                changed.push(format!("listener.{}.address", l.name));
                l.addr = o.addr;
            }
            Some(_) => {}
            None => changed.push(format!("listener.{} (new listener)", l.name)),
        }
    }
    for o in &old.server.listeners {
        if !new.server.listeners.iter().any(|l| l.name == o.name) {
            changed.push(format!("listener.{} (removed listener)", o.name));
        }
    }
    if new.admin.enabled != old.admin.enabled {
        changed.push("admin.enabled".to_owned());
    }
    if new.admin.socket != old.admin.socket {
        changed.push("admin.socket".to_owned());
    }
    new.admin = old.admin.clone();
    if new.delivery.mail_log != old.delivery.mail_log {
        changed.push("delivery.mail_log".to_owned());
        new.delivery.mail_log.clone_from(&old.delivery.mail_log);
    }
    if new.log.level != old.log.level {
        changed.push("log.level".to_owned());
        new.log = old.log.clone();
    }
    if new.server.transcript.path != old.server.transcript.path {
        changed.push("log.transcript".to_owned());
    }
    if new.server.transcript.format != old.server.transcript.format {
        changed.push("log.transcript_format".to_owned());
    }
    new.server.transcript = old.server.transcript.clone();
    if new.counters != old.counters {
        changed.push("counters".to_owned());
        new.counters = old.counters.clone();
    }
    // The recorder and the daily job are started once (`dmarc_reports::start`).
    if new.dmarc_reports != old.dmarc_reports {
        changed.push("dmarc_reports".to_owned());
        new.dmarc_reports = old.dmarc_reports.clone();
    }
    // The indexer and the console's listener are started once
    // (`console_setup`); `subjects` is read by the smtpd and the mail-log
    // hook alike, so it changes with the rest of `[tracking]`, at a restart.
    // (Paths that moved only with `data_dir` are not named twice.)
    let mut t = new.tracking.clone();
    if data_dir_changed {
        t.database.clone_from(&old.tracking.database);
    }
    if t != old.tracking {
        changed.push("tracking".to_owned());
    }
    new.tracking = old.tracking.clone();
    new.server.record_subjects = old.server.record_subjects;
    let mut h = new.admin_http.clone();
    if data_dir_changed {
        h.users_file.clone_from(&old.admin_http.users_file);
        h.tokens_file.clone_from(&old.admin_http.tokens_file);
    }
    if h != old.admin_http {
        changed.push("admin.http (and its keys)".to_owned());
    }
    new.admin_http = old.admin_http.clone();
    changed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> Config {
        postern_config::load_str(text, "t.toml", Path::new("/etc/postern"))
            .unwrap()
            .config
    }

    const BASE: &str = "data_dir = \"/var/lib/postern\"\nhostname = \"mx.example.com\"\n\n[[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:25\"\nkind = \"smtp\"\n\n[relay]\naccepted_domains = [\"example.com\"]\n";

    #[test]
    fn nothing_restart_only_changed() {
        let old = load(BASE);
        let mut new = load(&format!("{BASE}\n[spool]\nmin_free = \"1GiB\"\n"));
        assert!(keep_restart_only(&old, &mut new).is_empty());
        assert_eq!(new.server.spool.min_free, 1 << 30, "live keys stay new");
    }

    #[test]
    fn restart_only_keys_are_named_and_keep_their_running_value() {
        let old = load(BASE);
        let text = BASE
            .replace("/var/lib/postern", "/srv/postern")
            .replace("127.0.0.1:25", "127.0.0.1:2525");
        let text = format!(
            "{text}\n[log]\nlevel = \"debug\"\n\n[admin]\nsocket = \"/run/p.sock\"\n\n\
             [counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1\"\n"
        );
        let mut new = load(&text);
        let changed = keep_restart_only(&old, &mut new);
        assert_eq!(
            changed,
            [
                "data_dir",
                "listener.smtp.address",
                "admin.socket",
                "delivery.mail_log",
                "log.level",
                "counters"
            ]
        );
        assert_eq!(new.data_dir, old.data_dir);
        assert_eq!(new.server.listeners[0].addr, old.server.listeners[0].addr);
        assert_eq!(new.admin, old.admin);
        assert_eq!(new.log, old.log);
        assert_eq!(new.counters, old.counters);
        assert_eq!(new.delivery.mail_log, old.delivery.mail_log);
        assert_eq!(new.server.spool.dir, old.server.spool.dir);
        assert_eq!(new.pickup.dir, old.pickup.dir, "derived from data_dir");
        assert_eq!(new.delivery.badmail_dir, old.delivery.badmail_dir);
        assert_eq!(
            new.dmarc_reports, old.dmarc_reports,
            "derived from data_dir"
        );
    }

    #[test]
    fn tracking_and_the_console_listener_need_a_restart() {
        let old = load(BASE);
        let mut new = load(&format!(
            "{BASE}[tracking]\nsubjects = true\n[admin]\nhttp = \"127.0.0.1:8025\"\n"
        ));
        assert_eq!(
            keep_restart_only(&old, &mut new),
            ["tracking", "admin.http (and its keys)"]
        );
        assert!(!new.tracking.subjects && !new.server.record_subjects);
        assert_eq!(new.admin_http.listen, None);
    }

    #[test]
    fn dmarc_reports_need_a_restart() {
        let old = load(BASE);
        let mut new = load(&format!(
            "{BASE}\n[dmarc_reports]\nenabled = true\norg_name = \"Example\"\n\
             email = \"dmarc@example.com\"\n"
        ));
        assert_eq!(keep_restart_only(&old, &mut new), ["dmarc_reports"]);
        assert_eq!(new.dmarc_reports, old.dmarc_reports);
    }
}

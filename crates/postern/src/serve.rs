//! `postern serve`: load the configuration, start delivery, the admin socket,
//! the pickup folder and the listeners; reload on SIGHUP; stop on SIGTERM.
//!
//! # Security
//! A listener that cannot bind a port below 1024 (EACCES) gets a message
//! saying how to allow it without running as root: the systemd unit in
//! `contrib/postern.service` (CAP_NET_BIND_SERVICE), `setcap`, or a port
//! from 1024 up.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use postern_config::Loaded;
use postern_pickup::Pickup;
use postern_smtpd::{QueuedHook, Server, Transcript};
use postern_spool::Spool;
use postern_track::{MailEvent, Received};

use crate::cli::LogFormat;
use crate::config_file::{chain_anyhow, load};
use crate::reload::Live;
use crate::tls_setup;

/// How long in-flight sessions get to finish at shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long admin requests in progress get to finish at shutdown.
const ADMIN_GRACE: Duration = Duration::from_secs(5);

/// Logs go to stderr: `RUST_LOG` if set, else `[log] level`; colours only
/// when stderr is a terminal and `NO_COLOR` is unset; `--log-format json`
/// for one object per line.
fn init_tracing(level: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},rustls=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// Logs the danger settings and lint warnings (ARCHITECTURE.md: insecure
/// options are always logged at startup).
/// The configuration's and the certificates' warnings, as `config check`
/// prints them (for the console).
fn loaded_warnings(config: &[postern_config::Warning], tls: &[String]) -> Vec<String> {
    config
        .iter()
        .map(ToString::to_string)
        .chain(tls.iter().cloned())
        .collect()
}

pub(crate) fn log_warnings(loaded: &Loaded) {
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
}

pub(crate) fn run(config: Option<&Path>, log_format: LogFormat) -> ExitCode {
    let chosen = crate::config_file::choose(config);
    let loaded = match load(chosen.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            crate::config_cmd::print_errors(&e);
            return ExitCode::from(2);
        }
    };
    init_tracing(&loaded.config.log.level, log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(loaded, chosen.as_deref())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = chain_anyhow(&e);
            if let Some(hint) = bind_hint(&e) {
                text.push_str("\n  ");
                text.push_str(&hint);
            }
            // Once, on stderr (where the log goes too): not logged a second time.
            eprintln!("error: {text}");
            ExitCode::from(1)
        }
    }
}

/// What to do about a listener that could not bind, when the cause is one an
/// operator meets often: a privileged port (EACCES) or a port in use.
fn bind_hint(e: &anyhow::Error) -> Option<String> {
    let postern_smtpd::SmtpdError::Bind { addr, source, .. } =
        e.downcast_ref::<postern_smtpd::SmtpdError>()?
    else {
        return None;
    };
    let port = addr.port();
    match source.kind() {
        std::io::ErrorKind::PermissionDenied => Some(format!(
            "fix: ports below 1024 need CAP_NET_BIND_SERVICE, not root: run postern under \
             systemd with contrib/postern.service (User=postern, \
             AmbientCapabilities=CAP_NET_BIND_SERVICE), or grant the binary the capability \
             (sudo setcap cap_net_bind_service=+ep $(command -v postern)), or listen on a port \
             from 1024 up (like 2525, 2587, 2465 in the embedded default) and redirect \
             {port} to it in the firewall"
        )),
        std::io::ErrorKind::AddrInUse => Some(format!(
            "fix: another process listens on {addr} (see `ss -ltnp 'sport = :{port}'`): stop it \
             (often the distribution's MTA: exim4 or postfix), or give this listener another \
             address"
        )),
        _ => None,
    }
}

async fn serve(mut loaded: Loaded, path: Option<&Path>) -> anyhow::Result<()> {
    log_warnings(&loaded);
    let cfg = &mut loaded.config;
    can_bind(&cfg.server.listeners)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let tls = tls_setup::build(cfg, true)?;
    let console_warnings: Vec<String> = loaded_warnings(&loaded.warnings, &tls.warnings);
    let http_tls = tls.config.clone();
    let cert_expiry = tls.expiry.clone();
    for w in &tls.warnings {
        tracing::warn!("tls: {w}");
    }
    for s in &tls.summaries {
        tracing::info!("certificate: {s}");
    }
    if tls.self_signed {
        tracing::warn!("using a self-signed certificate (no [[tls.certificate]] configured)");
    }
    let (spool, report) = Spool::open(&cfg.server.spool)
        .with_context(|| format!("opening the spool at {}", cfg.server.spool.dir.display()))?;
    tracing::info!(dir = %cfg.server.spool.dir.display(), recovered = report.recovered,
        removed_tmp = report.removed_tmp, corrupt = report.corrupt.len(), "spool opened");
    for (file, reason) in &report.corrupt {
        tracing::error!(file = %file, reason = %reason, "damaged spool file moved to corrupt/");
    }
    let transcript = match &cfg.server.transcript.path {
        Some(p) => Some(
            Transcript::open(p, cfg.server.transcript.format)
                .with_context(|| format!("opening the transcript log {}", p.display()))?,
        ),
        None => None,
    };
    // One mail log for delivery, the smtpd's `received` events and pickup.
    let mail_log = crate::delivery_setup::open_mail_log(cfg)?;
    // Every record also moves the metrics (on the mail log's writer thread).
    let (mail_log, metrics) = crate::console_setup::observe(cfg, mail_log);
    // The tracking index follows the mail log (from its checkpoint: what the
    // last run wrote but did not index is indexed now).
    let tracking = crate::console_setup::start_tracking(cfg)?;
    // Delivery loads everything already in the spool, then hears of each new
    // message from the smtpd the moment it is durable.
    let delivery = crate::delivery_setup::start(cfg, spool.clone(), mail_log.clone()).await?;
    // `postern queue` verbs reach the scheduler through the admin socket.
    let control = crate::admin_setup::control(&delivery, spool.clone());
    let admin = crate::admin_setup::start(cfg, Arc::clone(&control)).await?;
    if let Some(a) = &admin {
        crate::out::sayln!("postern: admin socket {}", a.path().display());
    }
    // DMARC aggregate reports: the recorder (for the smtpd's sessions) and
    // the daily job that queues reports through the spool.
    let dmarc = crate::dmarc_reports::start(
        &cfg.dmarc_reports,
        &cfg.dns,
        cfg.server.authentication.public_suffix_list.as_deref(),
        &cfg.delivery.hostname,
        spool.clone(),
        delivery.notifier(),
        mail_log.clone(),
    )?;
    let notifier = delivery.notifier();
    let received_log = mail_log.clone();
    // Subjects are in the envelope only with `[tracking] subjects`
    // (smtpd's `record_subjects`): the mail log and the index follow it.
    let on_queued: QueuedHook = Arc::new(move |a| {
        received_log.emit(
            a.queue_id,
            MailEvent::Received(Received::from_envelope(a.envelope)),
        );
        for event in MailEvent::after_receipt(a.envelope) {
            received_log.emit(a.queue_id, event);
        }
        notifier.notify_committed(a.envelope);
    });
    // `[[dkim]]` keys for the pickup folder (the smtpd loads its own):
    // replaced on SIGHUP.
    let signing: postern_pickup::SharedSigning = Arc::new(std::sync::RwLock::new(
        postern_auth::signing::SigningTable::load(&cfg.server.authentication.signing)
            .context("loading the [[dkim]] keys")?,
    ));
    let pickup = if cfg.pickup.enabled {
        let notifier = delivery.notifier();
        let p = Pickup::new(
            cfg.pickup.clone(),
            spool.clone(),
            Arc::new(move |id| notifier.notify_pickup(id)),
            mail_log.clone(),
        )
        .with_context(|| format!("creating the pickup folder {}", cfg.pickup.dir.display()))?
        .with_signing(Arc::clone(&signing));
        Some(p.start())
    } else {
        tracing::info!("pickup folder disabled ([pickup] enabled = false)");
        None
    };
    let spool_handle = spool.clone();
    let mut signals = Signals::install()?;
    // Sender groups ask DNS (PTR, FCrDNS, DNS lists) through their own
    // resolver: its cache holds client addresses, delivery's recipient
    // domains. Always there, so groups added by a reload can use DNS.
    let services = postern_smtpd::gateway::Services {
        resolver: Some(
            postern_dns::Resolver::new(&cfg.dns)
                .context("setting up the DNS resolver for sender groups")?,
        ),
        counters: Some(
            postern_counters::open(&cfg.counters)
                .context("opening the counter store ([counters])")?,
        ),
        mail_log: Some(mail_log.clone()),
        dmarc_reports: dmarc
            .as_ref()
            .map(crate::dmarc_reports::DmarcReports::recorder),
    };
    let server = Server::start_with(
        cfg.server.clone(),
        tls.config,
        spool,
        transcript,
        Some(on_queued),
        services,
    )
    .await?;
    if let Some(a) = &admin {
        // `postern trace` against the running server: its configuration of
        // the moment, its resolver and its live counters (read only).
        let tracer = server.tracer();
        a.set_trace(Arc::new(move |req: postern_admin::trace::TraceRequest| {
            let tracer = tracer.clone();
            Box::pin(async move {
                let ip = req
                    .ip
                    .parse()
                    .map_err(|_| format!("{:?} is not an IP address", req.ip))?;
                let input = postern_smtpd::trace::TraceInput {
                    ip,
                    listener: req.listener,
                    helo: req.helo.unwrap_or_else(|| crate::trace_cmd::literal(ip)),
                    from: req.from,
                    rcpts: req.rcpt,
                    tls: req.tls,
                };
                let report = tracer.trace(input).await.map_err(|e| e.to_string())?;
                serde_json::to_value(report).map_err(|e| e.to_string())
            })
        }));
    }
    for (name, addr) in server.local_addrs() {
        crate::out::sayln!("postern: listener {name} on {addr}");
    }
    // The web console and HTTP API (`[admin] http`), last: it shows what
    // the rest started.
    let http = crate::console_setup::start_http(crate::console_setup::ConsoleParts {
        cfg,
        config_path: path,
        warnings: console_warnings,
        tls: http_tls,
        certificates: cert_expiry,
        control,
        tracking: tracking.as_ref(),
        metrics: metrics.clone(),
        mail_log: mail_log.clone(),
    })
    .await?;
    if let Some(h) = &http {
        let scheme = if cfg.admin_http.tls { "https" } else { "http" };
        crate::out::sayln!("postern: web console {scheme}://{}/", h.addr);
    }
    crate::out::sayln!("postern: configuration {}", cfg.source);
    tracing::info!(source = %cfg.source, "postern started");
    let mut live = Live {
        server,
        delivery,
        pickup,
        signing,
        spool: spool_handle,
        mail_log,
        config: loaded.config,
    };
    wait_for_signals(&mut signals, &mut live, path).await;
    tracing::info!("shutting down");
    let Live {
        server,
        delivery,
        pickup,
        mail_log,
        ..
    } = live;
    if let Some(h) = http {
        h.shutdown(ADMIN_GRACE).await;
    }
    server.shutdown(SHUTDOWN_GRACE).await;
    if let Some(p) = pickup {
        p.shutdown(SHUTDOWN_GRACE).await;
    }
    if let Some(a) = admin {
        a.shutdown(ADMIN_GRACE).await;
    }
    if let Some(d) = dmarc {
        d.shutdown().await;
    }
    delivery.shutdown(SHUTDOWN_GRACE).await;
    let _ = tokio::task::spawn_blocking(move || mail_log.flush()).await;
    if let Some(t) = tracking {
        // Indexes what the last flush wrote, then stops.
        let _ = tokio::task::spawn_blocking(move || t.stop()).await;
    }
    drop(metrics);
    tracing::info!("stopped");
    Ok(())
}

/// Binds each listener's address once and lets it go, before anything else
/// starts: a port that is privileged or in use fails here, with nothing
/// started (no delivery, no admin socket, no pickup), and with the same
/// error (and fix, [`bind_hint`]) as the listener itself would give. The
/// listeners bind again moments later (SO_REUSEADDR: nothing lingers).
fn can_bind(listeners: &[postern_smtpd::ListenerSettings]) -> anyhow::Result<()> {
    for l in listeners {
        if let Err(source) = std::net::TcpListener::bind(l.addr) {
            return Err(postern_smtpd::SmtpdError::Bind {
                name: l.name.clone(),
                addr: l.addr,
                source,
            }
            .into());
        }
    }
    Ok(())
}

/// SIGHUP, SIGTERM and SIGINT, caught from before the listeners are announced
/// (a SIGHUP that arrived earlier would otherwise end the process).
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }
}

/// Waits for SIGTERM/SIGINT; reloads on SIGHUP (`reload.rs`).
async fn wait_for_signals(signals: &mut Signals, live: &mut Live, path: Option<&Path>) {
    loop {
        tokio::select! {
            _ = signals.hup.recv() => crate::reload::reload(live, path).await,
            _ = signals.term.recv() => return,
            _ = signals.int.recv() => return,
        }
    }
}

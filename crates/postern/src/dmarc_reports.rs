//! DMARC aggregate reports in the binary (issue 10 item 5): the daily
//! scheduler of `postern serve`, and `postern dmarc report`.
//!
//! - [`start`] (from `serve`, when `[dmarc_reports] enabled = true`) opens
//!   the recorder (whose handle the smtpd's sessions get, [`DmarcReports::
//!   recorder`]) and runs the daily job: at start-up it catches up every day
//!   whose reports are due (due = the next day at `send_at` UTC) and not yet
//!   sent, then once a day at `send_at`. Reports are queued through the
//!   spool (`postern_auth::report::SpoolSink`) and the scheduler is told, so
//!   delivery, retries, DSNs and TLS policy apply; old files are pruned.
//! - `postern dmarc report [--day YYYY-MM-DD] [--dry-run] [--out DIR]`:
//!   with `--dry-run`, prints per policy domain and destination what would
//!   be sent (and writes each report's XML to DIR); without it, queues the
//!   reports through the pickup folder (`[pickup] dir`), which the running
//!   server — or the next one to start — queues like any dropped file, and
//!   writes the sent-markers so the server does not send them again. The
//!   command never opens the spool itself: recovery at open would empty the
//!   running server's `tmp/`.
//!
//! # Security
//! Destinations come from DNS and are checked per RFC 7489 §7.1 in
//! `postern_auth::report`. Pickup files are written owner-only under a
//! dot-name and renamed in, as the pickup folder requires.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use postern_auth::report::{
    self as rpt, DayPlan, Outcome, RecorderHandle, ReportError, ReportRecorder, ReportSettings,
    ReportSink, SpoolSink,
};
use postern_auth::verify::PublicSuffixList;
use postern_spool::Spool;
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;

/// `postern dmarc report` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// The UTC day to report (default: yesterday).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub(crate) day: Option<String>,
    /// Print what would be sent; queue nothing, write no marker.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// With --dry-run: write each report's XML into this directory.
    #[arg(long, value_name = "DIR", requires = "dry_run")]
    pub(crate) out: Option<PathBuf>,
}

/// mail-auth's resolver on the `[dns]` name servers (the system's when none
/// are configured).
pub(crate) fn authenticator(
    dns: &postern_dns::DnsSettings,
) -> Result<MessageAuthenticator, String> {
    if dns.nameservers.is_empty() {
        return MessageAuthenticator::new_system_conf().map_err(|e| e.to_string());
    }
    let mut config = ResolverConfig::default();
    for addr in &dns.nameservers {
        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
        for c in &mut ns.connections {
            c.port = addr.port();
        }
        config.name_servers.push(ns);
    }
    let mut opts = ResolverOpts::default();
    opts.timeout = dns.timeout;
    opts.attempts = dns.attempts.max(1);
    MessageAuthenticator::new(config, opts).map_err(|e| e.to_string())
}

/// The public-suffix list for RFC 7489 §7.1's organisational domains: the
/// `[authentication] public_suffix_list` file, else the one built in.
fn public_suffixes(path: Option<&Path>) -> PublicSuffixList {
    match path.map(PublicSuffixList::from_file) {
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "dmarc reports: using the built-in public-suffix list");
            PublicSuffixList::shipped()
        }
        None => PublicSuffixList::shipped(),
    }
}

/// When `day`'s reports are due: the next day at `send_at`.
fn due(day: Date, send_at: Duration) -> OffsetDateTime {
    let next = day.next_day().unwrap_or(day);
    next.midnight().assume_utc() + send_at
}

/// The first `send_at` strictly after `now`.
fn next_run(now: OffsetDateTime, send_at: Duration) -> OffsetDateTime {
    let today = now.date().midnight().assume_utc() + send_at;
    if today > now {
        today
    } else {
        today + time::Duration::days(1)
    }
}

/// The running recorder and daily job.
pub(crate) struct DmarcReports {
    recorder: ReportRecorder,
    writer: RecorderHandle,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl DmarcReports {
    /// The sessions' handle (`ReportRecorder::record` never blocks).
    pub(crate) fn recorder(&self) -> ReportRecorder {
        self.recorder.clone()
    }

    /// Stops the daily job and writes what the recorder still holds.
    pub(crate) async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.shutdown()).await;
    }
}

/// Starts the recorder and the daily job (`None` when disabled).
pub(crate) fn start(
    settings: &ReportSettings,
    dns: &postern_dns::DnsSettings,
    public_suffix_list: Option<&Path>,
    hostname: &str,
    spool: Spool,
    notifier: postern_delivery::Notifier,
    mail_log: postern_track::MailLog,
) -> anyhow::Result<Option<DmarcReports>> {
    if !settings.enabled {
        return Ok(None);
    }
    let (recorder, writer) = ReportRecorder::open(&settings.dir, settings.limits.clone())?;
    let auth = authenticator(dns).map_err(|e| {
        anyhow::anyhow!("setting up the DNS resolver for DMARC reports ([dns]): {e}")
    })?;
    let cancel = CancellationToken::new();
    let job = Job {
        settings: settings.clone(),
        auth: Arc::new(auth),
        psl: Arc::new(public_suffixes(public_suffix_list)),
        hostname: hostname.to_owned(),
        spool,
        notifier,
        mail_log,
    };
    let c = cancel.clone();
    let task = tokio::spawn(async move { job.run(c).await });
    tracing::info!(dir = %settings.dir.display(), send_at = ?settings.send_at,
        "dmarc reports: recording; reports sent daily");
    Ok(Some(DmarcReports {
        recorder,
        writer,
        cancel,
        task,
    }))
}

struct Job {
    settings: ReportSettings,
    auth: Arc<MessageAuthenticator>,
    psl: Arc<PublicSuffixList>,
    hostname: String,
    spool: Spool,
    notifier: postern_delivery::Notifier,
    /// Each queued report gets its `received` event, as pickup and SMTP
    /// mail do: tracking and metrics see where it came from.
    mail_log: postern_track::MailLog,
}

impl Job {
    async fn run(self, cancel: CancellationToken) {
        loop {
            self.once().await;
            let now = OffsetDateTime::now_utc();
            let wait = next_run(now, self.settings.send_at) - now;
            let wait = Duration::try_from(wait).unwrap_or(Duration::from_secs(1));
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends every due, unsent day; prunes old files.
    async fn once(&self) {
        let now = OffsetDateTime::now_utc();
        let today = now.date();
        let days = match rpt::days_to_report(&self.settings, today) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "dmarc reports: cannot list the day files");
                return;
            }
        };
        let org = |d: &str| self.psl.organizational_domain(d);
        for day in days
            .into_iter()
            .filter(|d| due(*d, self.settings.send_at) <= now)
        {
            // Reading and grouping a day is blocking file I/O: off the runtime.
            let dir = self.settings.dir.clone();
            let agg = match tokio::task::spawn_blocking(move || {
                postern_auth::report::Aggregate::read_day(&dir, day)
            })
            .await
            {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    tracing::warn!(day = %rpt::day_name(day), error = %e,
                        "dmarc reports: cannot read the day");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "dmarc reports: the reading task failed");
                    continue;
                }
            };
            let plan = rpt::plan_aggregate(&self.settings, day, &agg, &self.auth, &org, now).await;
            if plan.domains.iter().all(|d| d.already_sent) {
                continue;
            }
            let settings = self.settings.clone();
            let spool = self.spool.clone();
            let notifier = self.notifier.clone();
            let mail_log = self.mail_log.clone();
            let hostname = self.hostname.clone();
            let done = tokio::task::spawn_blocking(move || {
                let on_queued = move |e: &postern_spool::Envelope| {
                    mail_log.emit(
                        e.queue_id,
                        postern_track::MailEvent::Received(postern_track::Received::from_envelope(
                            e,
                        )),
                    );
                    notifier.notify_committed(e);
                };
                let sink = SpoolSink {
                    spool: &spool,
                    hostname: &hostname,
                    on_queued: &on_queued,
                };
                rpt::execute(&settings, &plan, &sink)
            })
            .await;
            match done {
                Ok(Ok(sent)) => tracing::info!(day = %rpt::day_name(day), reports = sent.len(),
                    "dmarc reports: day reported"),
                Ok(Err(e)) => tracing::warn!(day = %rpt::day_name(day), error = %e,
                    "dmarc reports: queueing failed; tried again at the next run"),
                Err(e) => tracing::error!(error = %e, "dmarc reports: the queueing task failed"),
            }
        }
        let settings = self.settings.clone();
        match tokio::task::spawn_blocking(move || rpt::prune(&settings, today)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "dmarc reports: old files pruned"),
            Ok(Err(e)) => tracing::warn!(error = %e, "dmarc reports: pruning failed"),
            _ => {}
        }
    }
}

/// Queues into the pickup folder: `X-Sender:`/`X-Receiver:` envelope lines,
/// then the message; written under a dot-name and renamed in.
struct PickupSink {
    dir: PathBuf,
}

impl ReportSink for PickupSink {
    fn queue(&self, from: &str, to: &str, message: &[u8]) -> Result<String, ReportError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let stamp = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!("dmarc-report-{stamp}-{}.eml", std::process::id());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let head = format!("X-Sender: {from}\r\nX-Receiver: {to}\r\n");
        f.write_all(head.as_bytes())
            .and_then(|()| f.write_all(message))
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        let dest = self.dir.join(&name);
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
        Ok(name)
    }
}

fn print_plan(plan: &DayPlan) {
    println!("day {}", rpt::day_name(plan.day));
    if plan.domains.is_empty() {
        println!("  no records");
    }
    if plan.bad_lines > 0 {
        println!(
            "  {} unreadable line(s) in the day file skipped",
            plan.bad_lines
        );
    }
    for d in &plan.domains {
        println!(
            "{}: {} message(s) in {} row(s), report id {}, attachment {} ({} bytes)",
            d.policy_domain, d.messages, d.rows, d.report_id, d.attachment_name, d.gz_len
        );
        if d.already_sent {
            println!("  already sent");
        }
        for dest in &d.destinations {
            match &dest.outcome {
                Outcome::Send { address, message } => println!(
                    "  {} -> send to {address} ({} bytes)",
                    dest.uri,
                    message.len()
                ),
                Outcome::Skip(why) => println!("  {} -> skip: {why}", dest.uri),
            }
        }
    }
}

/// `postern dmarc report`.
pub(crate) fn report(config: Option<&Path>, args: &ReportArgs) -> ExitCode {
    let chosen = crate::config_file::choose(config);
    let cfg = match crate::config_file::load(chosen.as_deref()) {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = &cfg.dmarc_reports;
    if settings.reporter.email.is_empty() || settings.reporter.org_name.is_empty() {
        eprintln!(
            "error: set [dmarc_reports] org_name and email (and enabled = true) in {}",
            cfg.source
        );
        return ExitCode::from(2);
    }
    if !args.dry_run && !settings.enabled {
        eprintln!(
            "error: [dmarc_reports] enabled = false in {}; use --dry-run to preview",
            cfg.source
        );
        return ExitCode::from(2);
    }
    if !args.dry_run && !cfg.pickup.enabled {
        eprintln!(
            "error: reports are queued through the pickup folder, and [pickup] enabled = false \
             in {}; enable it, or let the server send them at send_at",
            cfg.source
        );
        return ExitCode::from(1);
    }
    let day = match &args.day {
        Some(d) => match rpt::parse_day(d) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: --day: {e}");
                return ExitCode::from(2);
            }
        },
        None => rpt::today().previous_day().unwrap_or(Date::MIN),
    };
    let auth = match authenticator(&cfg.dns) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: setting up the DNS resolver ([dns]): {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let now = OffsetDateTime::now_utc();
    let psl = public_suffixes(cfg.server.authentication.public_suffix_list.as_deref());
    let org = |d: &str| psl.organizational_domain(d);
    let plan = match rt.block_on(rpt::plan_day(settings, day, &auth, &org, now)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    print_plan(&plan);
    if args.dry_run {
        if let Some(out) = &args.out {
            if let Err(e) = std::fs::create_dir_all(out) {
                eprintln!("error: {}: {e}", out.display());
                return ExitCode::from(1);
            }
            for d in &plan.domains {
                let name = d.attachment_name.trim_end_matches(".gz");
                let path = out.join(name);
                if let Err(e) = std::fs::write(&path, &d.xml) {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(1);
                }
                println!("wrote {}", path.display());
            }
        }
        return ExitCode::SUCCESS;
    }
    let sink = PickupSink {
        dir: cfg.pickup.dir.clone(),
    };
    match rpt::execute(settings, &plan, &sink) {
        Ok(sent) => {
            for s in &sent {
                println!(
                    "queued {} report to {} as {}",
                    s.policy_domain,
                    s.to,
                    cfg.pickup.dir.join(&s.id).display()
                );
            }
            println!(
                "{} report(s) dropped into the pickup folder; the running server queues them \
                 (a stopped one at its next start)",
                sent.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn due_and_next_run() {
        let at = Duration::from_hours(1);
        let day = rpt::parse_day("2026-12-05").unwrap();
        assert_eq!(due(day, at).unix_timestamp(), 1_796_515_200 + 3600);
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        // 00:30 → 01:00 the same day; 01:00 → 01:00 the next day.
        assert_eq!(
            next_run(t(1_796_515_200 + 1800), at),
            t(1_796_515_200 + 3600)
        );
        assert_eq!(
            next_run(t(1_796_515_200 + 3600), at),
            t(1_796_601_600 + 3600)
        );
    }
}

//! `postern queue list|show|retry|hold|release|delete|flush`.
//!
//! While the server runs, every subcommand goes through its admin socket
//! (`[admin] socket`, default `<data_dir>/admin.sock`), so verbs are applied by
//! the scheduler itself and never race it. When nobody answers there (no
//! socket, or connection refused):
//! - `list` and `show` read the spool read-only (they always can);
//! - `hold`, `release` and `delete` act on the spool directly, under the spool
//!   lock (`postern_admin::offline`), so a server starting meanwhile cannot
//!   race them (it fails to open the spool instead);
//! - `retry` and `flush` say that nothing is scheduled until the server starts,
//!   and exit 1.
//!
//! Exit status: 0 done (or already so: "already held"), 1 refused or failed
//! ("not found", "held: release it first"), 2 usage or configuration error.
//!
//! # Security
//! Runs with the caller's rights: the socket (`0600`) and the spool
//! (`0700`) admit only the server's user. Queue ids are parsed before use.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_admin::view::Lifetimes;
use postern_admin::{
    AdminClient, AdminSettings, ClientError, Filter, ListBody, MessageInfo, SpoolHealth, State,
    Verb, VerbReport,
};
use postern_spool::{QueueId, SpoolError, SpoolSettings};

use crate::cli::{QueueCommand, SpoolLocation};
use crate::config_file::HOW_TO_CHOOSE;
use crate::out::outln;

/// Where things are, from the configuration (`--config`, `POSTERN_CONFIG`,
/// a default path or the embedded default) or `--spool`.
pub(crate) struct Place {
    /// Where the spool's location came from, for messages: `the data
    /// directory /x of postern.toml` or `--spool /x`.
    pub(crate) from: String,
    pub(crate) spool: SpoolSettings,
    /// `None` with `--spool`, or with `[admin] enabled = false`.
    pub(crate) admin: Option<AdminSettings>,
    pub(crate) mail_log: Option<PathBuf>,
    pub(crate) lifetimes: Lifetimes,
}

pub(crate) fn from_config(config: Option<&Path>) -> Result<Place, ExitCode> {
    let loaded = crate::config_file::load_for_command(config)?;
    let c = loaded.config;
    Ok(Place {
        from: format!(
            "the data directory {} of {}",
            c.data_dir.display(),
            c.source
        ),
        spool: c.server.spool,
        admin: c.admin.enabled.then_some(c.admin),
        mail_log: c.delivery.mail_log,
        lifetimes: Lifetimes {
            max_lifetime: Some(c.delivery.max_lifetime),
            quarantines: Some(c.delivery.quarantines),
        },
    })
}

pub(crate) fn place(config: Option<&Path>, loc: &SpoolLocation) -> Result<Place, ExitCode> {
    if let Some(dir) = &loc.spool {
        return Ok(Place {
            from: format!("--spool {}", dir.display()),
            spool: SpoolSettings::new(dir.clone()),
            admin: None,
            mail_log: None,
            lifetimes: Lifetimes::default(),
        });
    }
    from_config(config)
}

impl Place {
    /// `the spool /x/spool (the data directory /x of postern.toml)`.
    pub(crate) fn describe(&self) -> String {
        if self.from.starts_with("--spool") {
            format!("the spool {}", self.spool.dir.display())
        } else {
            format!("the spool {} ({})", self.spool.dir.display(), self.from)
        }
    }

    /// Says that there is no spool where we looked, and how to look elsewhere.
    fn no_spool(&self) -> ExitCode {
        eprintln!(
            "error: no spool at {} ({}): nothing was ever queued here; {HOW_TO_CHOOSE}, or --spool DIR",
            self.spool.dir.display(),
            self.from
        );
        ExitCode::from(1)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

pub(crate) fn run(config: Option<&Path>, cmd: &QueueCommand) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match cmd {
        QueueCommand::List {
            location,
            state,
            domain,
            older_than,
            json,
        } => {
            let filter = match filter(state.as_deref(), domain.as_deref(), older_than.as_deref()) {
                Ok(f) => f,
                Err(e) => return usage(&e),
            };
            rt.block_on(list(config, location, &filter, *json))
        }
        QueueCommand::Show { id, location, json } => match parse_id(id) {
            Ok(id) => rt.block_on(crate::queue_show::show(config, id, location, *json)),
            Err(code) => code,
        },
        QueueCommand::Retry { id, all } => {
            let verb = match (id, all) {
                (Some(id), false) => match parse_id(id) {
                    Ok(id) => Verb::Retry(Some(id)),
                    Err(code) => return code,
                },
                _ => Verb::Retry(None),
            };
            rt.block_on(apply(verb, config))
        }
        QueueCommand::Hold { id } => with_id(id, Verb::Hold, config, &rt),
        QueueCommand::Release { id } => with_id(id, Verb::Release, config, &rt),
        QueueCommand::Delete { id } => with_id(id, Verb::Delete, config, &rt),
        QueueCommand::Flush { domain } => {
            let d = domain.trim().trim_end_matches('.');
            if d.is_empty() || d.contains(['@', '/', ' ']) {
                return usage(&format!("{domain:?} is not a domain (write example.com)"));
            }
            rt.block_on(apply(Verb::Flush(d.to_ascii_lowercase()), config))
        }
    }
}

fn usage(e: &str) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// A queue id from the command line; the parse error already names the id.
fn parse_id(id: &str) -> Result<QueueId, ExitCode> {
    QueueId::parse(id).map_err(|e| {
        usage(&format!(
            "{e} (a queue id is the first column of `postern queue list`)"
        ))
    })
}

fn with_id(
    id: &str,
    make: fn(QueueId) -> Verb,
    config: Option<&Path>,
    rt: &tokio::runtime::Runtime,
) -> ExitCode {
    match parse_id(id) {
        Ok(id) => rt.block_on(apply(make(id), config)),
        Err(code) => code,
    }
}

fn filter(
    state: Option<&str>,
    domain: Option<&str>,
    older: Option<&str>,
) -> Result<Filter, String> {
    Ok(Filter {
        state: state.map(State::parse).transpose()?,
        domain: domain.map(|d| d.trim().trim_end_matches('.').to_owned()),
        older_than_secs: older.map(postern_admin::view::parse_age).transpose()?,
        quarantine: None,
    })
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
pub(crate) fn encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The running server's answer, or `None` when it does not run (the caller
/// falls back to the spool); errors are printed.
/// Prints the server's refusal (`{"error": …}`); exit status 1.
pub(crate) fn server_refused(status: u16, v: &serde_json::Value) -> ExitCode {
    eprintln!(
        "error: the server answered {status}: {}",
        v["error"].as_str().unwrap_or("?")
    );
    ExitCode::from(1)
}

/// Runs `read` on the stopped server's spool (read-only) off the runtime;
/// a failure is printed and becomes exit status 1.
pub(crate) async fn read_offline<T: Send + 'static>(
    place: &Place,
    read: impl FnOnce(&Path, &Lifetimes) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, ExitCode> {
    if !place.spool.dir.exists() {
        return Err(place.no_spool());
    }
    let dir = place.spool.dir.clone();
    let lifetimes = place.lifetimes.clone();
    match tokio::task::spawn_blocking(move || read(&dir, &lifetimes)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            eprintln!(
                "error: cannot read the spool at {}: {e}",
                place.spool.dir.display()
            );
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(1))
        }
    }
}

pub(crate) async fn ask<T: serde::de::DeserializeOwned>(
    admin: Option<&AdminSettings>,
    method: &str,
    uri: &str,
) -> Result<Option<(u16, T)>, ExitCode> {
    let Some(admin) = admin else {
        return Ok(None);
    };
    match AdminClient::new(&admin.socket).json(method, uri).await {
        Ok(r) => Ok(Some(r)),
        Err(ClientError::NotRunning(_)) => Ok(None),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(1))
        }
    }
}

async fn list(config: Option<&Path>, loc: &SpoolLocation, filter: &Filter, json: bool) -> ExitCode {
    let place = match place(config, loc) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut query = Vec::new();
    if let Some(s) = filter.state {
        query.push(format!("state={}", s.as_str()));
    }
    if let Some(d) = &filter.domain {
        query.push(format!("domain={}", encode(d)));
    }
    if let Some(a) = filter.older_than_secs {
        query.push(format!("older_than={a}"));
    }
    let uri = format!("/v1/queue?{}", query.join("&"));
    let (body, source) = match ask::<serde_json::Value>(place.admin.as_ref(), "GET", &uri).await {
        Err(code) => return code,
        Ok(Some((200, v))) => match serde_json::from_value::<ListBody>(v) {
            Ok(b) => (b, "the running server".to_owned()),
            Err(e) => {
                eprintln!("error: unexpected answer from the server: {e}");
                return ExitCode::from(1);
            }
        },
        Ok(Some((status, v))) => return server_refused(status, &v),
        Ok(None) => match read_offline(&place, postern_admin::view::read_spool).await {
            Ok(all) => (
                ListBody {
                    messages: postern_admin::view::select(&all.messages, filter),
                    unreadable: all.unreadable,
                    spool: None,
                },
                if place.admin.is_some() {
                    format!("{} — the server is not running", place.describe())
                } else {
                    place.describe()
                },
            ),
            Err(code) => return code,
        },
    };
    // Problems go to stderr, so `--json` output stays one message per line.
    for w in body.spool.iter().flat_map(SpoolHealth::warnings) {
        eprintln!("warning: {w}");
    }
    for u in &body.unreadable {
        let mut line = format!(
            "warning: cannot read queued message {}: {}",
            u.name, u.error
        );
        if let (Some(n), Some(next)) = (u.attempts, &u.next_attempt) {
            let _ = write!(
                line,
                " (failed {n} time(s); next try {next}; `postern queue retry {}` tries now)",
                u.name
            );
        }
        eprintln!("{line}");
    }
    if json {
        for m in &body.messages {
            outln!("{}", serde_json::to_string(m).unwrap_or_default());
        }
    } else {
        print_table(&body.messages, &source);
        if body.messages.is_empty() && source != "the running server" {
            outln!("   (another server's queue? {HOW_TO_CHOOSE}, or --spool DIR)");
        }
        if !body.unreadable.is_empty() {
            outln!(
                "-- {} queued file(s) cannot be read (see the warnings above)",
                body.unreadable.len()
            );
        }
    }
    ExitCode::SUCCESS
}

fn print_table(messages: &[MessageInfo], source: &str) {
    outln!(
        "{:<20} {:<10} {:>9}  {:<20}  SENDER",
        "QUEUE ID",
        "STATE",
        "SIZE",
        "RECEIVED"
    );
    let mut counts: Vec<(State, usize)> = Vec::new();
    for m in messages {
        match counts.iter_mut().find(|(s, _)| *s == m.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((m.state, 1)),
        }
        outln!(
            "{:<20} {:<10} {:>9}  {:<20}  <{}>",
            m.queue_id.as_str(),
            m.state.as_str(),
            m.message_size,
            short_time(&m.received_at),
            m.reverse_path
        );
        for r in &m.recipients {
            let mut line = format!("    {:<10} <{}>", r.state.as_str(), r.address);
            if r.attempts > 0 {
                let _ = write!(line, "  attempts {}", r.attempts);
            }
            if let Some(n) = &r.next_attempt {
                let _ = write!(line, "  next {n}");
            }
            if let Some(why) = r.last_reply.as_deref().or(r.last_cause.as_deref()) {
                let _ = write!(line, "  ({why})");
            }
            outln!("{line}");
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    outln!(
        "-- {} message(s){}{} — from {source}",
        messages.len(),
        if summary.is_empty() { "" } else { ": " },
        summary.join(", ")
    );
}

/// "2026-11-22T17:03:57.907659887Z" → "2026-11-22T17:03:57Z" for the table.
pub(crate) fn short_time(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => rfc3339.to_owned(),
    }
}

async fn apply(verb: Verb, config: Option<&Path>) -> ExitCode {
    let place = match from_config(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (method, uri) = match &verb {
        Verb::Hold(id) => ("POST", format!("/v1/queue/{id}/hold")),
        Verb::Release(id) => ("POST", format!("/v1/queue/{id}/release")),
        Verb::Delete(id) => ("DELETE", format!("/v1/queue/{id}")),
        Verb::Retry(Some(id)) => ("POST", format!("/v1/queue/{id}/retry")),
        Verb::Retry(None) => ("POST", "/v1/queue/retry".to_owned()),
        Verb::Flush(d) => ("POST", format!("/v1/queue/flush/{}", encode(d))),
    };
    apply_at(&place, &verb, method, &uri).await
}

/// Carries out `verb` through the running server (`method uri`), else on
/// the spool, and prints the report: the exit code.
pub(crate) async fn apply_at(place: &Place, verb: &Verb, method: &str, uri: &str) -> ExitCode {
    let report = match ask::<serde_json::Value>(place.admin.as_ref(), method, uri).await {
        Err(code) => return code,
        Ok(Some((status, v))) => {
            if let Ok(r) = serde_json::from_value::<VerbReport>(v.clone()) {
                r
            } else {
                return server_refused(status, &v);
            }
        }
        Ok(None) => {
            if !place.spool.dir.exists() {
                return place.no_spool();
            }
            let spool = place.spool.clone();
            let log = place.mail_log.clone();
            let v = verb.clone();
            let done = tokio::task::spawn_blocking(move || {
                postern_admin::offline::apply(&spool, log.as_deref(), &v)
            })
            .await;
            match done {
                Ok(Ok(mut r)) => {
                    if r.outcome.is_success() {
                        r.text
                            .push_str(" — on the spool (the server is not running)");
                    }
                    r
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    };
    if report.outcome == postern_admin::VerbOutcome::NotFound {
        eprintln!(
            "{} — looked in {}; {HOW_TO_CHOOSE}",
            report.text,
            place.describe()
        );
        return ExitCode::from(1);
    }
    if report.outcome.is_success() {
        outln!("{}", report.text);
        ExitCode::SUCCESS
    } else {
        eprintln!("{}", report.text);
        ExitCode::from(1)
    }
}

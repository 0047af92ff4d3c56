//! `postern track search|show|evidence` and `postern tls posture`: the
//! message tracking store (`[tracking]`, `docs/tracking.md`) read by the
//! operator — Exchange's `Get-MessageTrackingLog`, IronPort's Message
//! Tracking, and the transport-security evidence and peer TLS posture no
//! incumbent shows.
//!
//! The database is opened read-only: a running server keeps indexing while
//! the operator reads (SQLite WAL), and a stopped one's index is read as it
//! was left (the server indexes the rest of the mail log at its next start).
//!
//! # Security
//! Prints a stranger's text (replies, subjects, certificate names): the
//! renderers replace control characters and CSV cells that a spreadsheet
//! would run as formulas are neutralised (`postern_trackdb::render`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use postern_trackdb::{
    Direction, Evidence, PostureQuery, SearchQuery, SqliteStore, TrackStore, render,
};
use time::OffsetDateTime;

use crate::out::outln;

#[derive(Subcommand, Debug)]
pub(crate) enum TrackCommand {
    /// Events matching every filter given, newest first (like Get-MessageTrackingLog).
    Search(Box<SearchArgs>),
    /// The whole life of one message: received (from whom, over which TLS), every
    /// policy decision, every attempt with its TLS facts, the outcome, DSNs.
    Show(ShowArgs),
    /// Transport-security evidence: the inbound hop and each outbound attempt
    /// (TLS version, cipher, group, certificate, verification, policy, downgrade).
    Evidence(ShowArgs),
}

/// Where the tracking database is.
#[derive(Args, Debug, Clone)]
pub(crate) struct DatabaseArg {
    /// The tracking database (default: `[tracking] database` of the configuration).
    #[arg(long, value_name = "FILE")]
    pub(crate) database: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct SearchArgs {
    /// Envelope sender: an address, or `@domain` / `domain` for a whole domain.
    #[arg(long)]
    sender: Option<String>,
    /// Recipient: an address, or `@domain` / `domain`.
    #[arg(long)]
    recipient: Option<String>,
    /// From this time: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` (UTC), or an age (`2h`, `7d` ago).
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
    /// Until this time (same forms as --start).
    #[arg(long, value_name = "TIME")]
    end: Option<String>,
    /// Only these events (repeat or comma-separate): received, queued, attempt,
    /// delivered, deferred, bounced, dsn_sent, expired, badmail, held, released,
    /// deleted, filtered, quarantined, rejected, throttled, greylisted, dropped.
    #[arg(long, value_delimiter = ',')]
    event: Vec<String>,
    /// Queue id.
    #[arg(long)]
    queue_id: Option<String>,
    /// Message-ID (with or without angle brackets).
    #[arg(long)]
    message_id: Option<String>,
    /// Subject contains this (only when `[tracking] subjects = true` recorded them).
    #[arg(long)]
    subject: Option<String>,
    /// Client or server IP address, or a CIDR prefix (`192.0.2.0/24`).
    #[arg(long)]
    ip: Option<String>,
    /// TLS version used: TLSv1.3, TLSv1.2, TLSv1.1, TLSv1.0, or `none` (plaintext).
    #[arg(long)]
    tls_version: Option<String>,
    /// At most this many events (default 100, at most 10000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// JSON (one array).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header line (RFC 4180).
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    db: DatabaseArg,
}

#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// Queue id, or Message-ID.
    id: String,
    /// JSON output (for an auditor).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArg,
}

#[derive(Args, Debug)]
pub(crate) struct PostureArgs {
    /// Only peers that sent to us.
    #[arg(long, conflicts_with = "outbound")]
    inbound: bool,
    /// Only peers we delivered to.
    #[arg(long)]
    outbound: bool,
    /// Over this period, up to now (`30d`, `12h`, `8w`).
    #[arg(long, default_value = "30d", value_name = "AGE")]
    since: String,
    /// At most this many peers.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// JSON output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArg,
}

pub(crate) fn run(config: Option<&Path>, cmd: &TrackCommand) -> ExitCode {
    match cmd {
        TrackCommand::Search(a) => search(config, a),
        TrackCommand::Show(a) => show(config, a, false),
        TrackCommand::Evidence(a) => show(config, a, true),
    }
}

fn search(config: Option<&Path>, a: &SearchArgs) -> ExitCode {
    let now = OffsetDateTime::now_utc();
    let when = |v: &Option<String>, flag: &str| -> Result<Option<OffsetDateTime>, ExitCode> {
        v.as_deref()
            .map(|s| {
                parse_time(s, now).map_err(|e| {
                    eprintln!("error: --{flag} {s:?}: {e}");
                    ExitCode::from(2)
                })
            })
            .transpose()
    };
    let (start, end) = match (when(&a.start, "start"), when(&a.end, "end")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let q = SearchQuery {
        sender: a.sender.clone(),
        recipient: a.recipient.clone(),
        start,
        end,
        events: a
            .event
            .iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .collect(),
        queue_id: a.queue_id.clone(),
        message_id: a.message_id.clone(),
        subject: a.subject.clone(),
        ip: a.ip.clone(),
        tls_version: a.tls_version.clone(),
        limit: a.limit,
    };
    let store = match open(config, &a.db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    match store.search(&q) {
        Ok(rows) if a.json => print_json(&rows),
        Ok(rows) if a.csv => {
            outln!("{}", render::search_csv(&rows).trim_end());
            ExitCode::SUCCESS
        }
        Ok(rows) => {
            if rows.is_empty() {
                outln!("no events match");
            } else {
                outln!("{}", render::search_text(&rows).trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(e) => store_error(&e),
    }
}

fn show(config: Option<&Path>, a: &ShowArgs, evidence: bool) -> ExitCode {
    let store = match open(config, &a.db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let life = match store.message(a.id.trim()) {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!(
                "error: no message {} in the tracking database (a queue id or a Message-ID; \
                 `postern track search` finds them; events reach the index within a second \
                 of the mail log)",
                a.id
            );
            return ExitCode::from(1);
        }
        Err(e) => return store_error(&e),
    };
    if evidence {
        let ev = Evidence::from_life(&life);
        if a.json {
            return print_json(&ev);
        }
        outln!("{}", render::evidence_text(&ev).trim_end());
    } else {
        if a.json {
            return print_json(&life);
        }
        outln!("{}", render::life_text(&life).trim_end());
    }
    ExitCode::SUCCESS
}

/// `postern tls posture`.
pub(crate) fn posture(config: Option<&Path>, a: &PostureArgs) -> ExitCode {
    let age = match postern_config::parse_duration(a.since.trim()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "error: --since {:?}: {e} (for example 30d, 12h, 8w)",
                a.since
            );
            return ExitCode::from(2);
        }
    };
    let Some(since) = time::Duration::try_from(age)
        .ok()
        .and_then(|d| OffsetDateTime::now_utc().checked_sub(d))
    else {
        eprintln!("error: --since {:?}: too long", a.since);
        return ExitCode::from(2);
    };
    let direction = if a.inbound {
        Some(Direction::Inbound)
    } else if a.outbound {
        Some(Direction::Outbound)
    } else {
        None
    };
    let store = match open(config, &a.db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    match store.posture(&PostureQuery {
        direction,
        since,
        limit: a.limit,
    }) {
        Ok(peers) if a.json => print_json(&peers),
        Ok(peers) => {
            if peers.is_empty() {
                outln!("no peers seen since {}", since.date());
            } else {
                outln!("{}", render::posture_text(&peers).trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(e) => store_error(&e),
    }
}

/// The tracking database, read-only.
fn open(config: Option<&Path>, db: &DatabaseArg) -> Result<SqliteStore, ExitCode> {
    let path = if let Some(p) = &db.database {
        p.clone()
    } else {
        let loaded = crate::config_file::load_for_command(config)?;
        let c = loaded.config;
        if !c.tracking.enabled {
            eprintln!(
                "error: message tracking is off in {} ([tracking] enabled = false, or no \
                 [delivery] mail_log); `postern queue show ID` still reads the mail log",
                c.source
            );
            return Err(ExitCode::from(2));
        }
        c.tracking.database
    };
    if !path.exists() {
        eprintln!(
            "error: no tracking database at {}: the server has not run with tracking on yet \
             (or --database FILE names another)",
            path.display()
        );
        return Err(ExitCode::from(2));
    }
    SqliteStore::open_read_only(&path).map_err(|e| {
        eprintln!("error: opening {}: {e}", path.display());
        ExitCode::from(2)
    })
}

fn store_error(e: &postern_trackdb::StoreError) -> ExitCode {
    eprintln!("error: the tracking database: {e}");
    ExitCode::from(1)
}

fn print_json<T: serde::Serialize + ?Sized>(v: &T) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            outln!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A time given on the command line: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DD
/// HH:MM[:SS]` (UTC), or an age before `now` (`2h`, `7d`).
pub(crate) fn parse_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = postern_config::parse_duration(s) {
        return time::Duration::try_from(d)
            .ok()
            .and_then(|d| now.checked_sub(d))
            .ok_or_else(|| "too long an age".to_owned());
    }
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_fmt) {
        return Ok(d.midnight().assume_utc());
    }
    for fmt in [
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ] {
        if let Ok(t) = time::PrimitiveDateTime::parse(s, &fmt) {
            return Ok(t.assume_utc());
        }
    }
    Err(
        "not a time; allowed: RFC 3339 (2026-12-06T10:00:00Z), 2026-12-06, \
         \"2026-12-06 10:00\" (UTC), or an age such as 2h or 7d"
            .to_owned(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = OffsetDateTime::parse(
            "2026-12-06T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let t = |s| parse_time(s, now).unwrap().unix_timestamp() - now.unix_timestamp();
        assert_eq!(t("2h"), -7200);
        assert_eq!(t("2026-12-06"), -12 * 3600);
        assert_eq!(t("2026-12-06 11:30"), -1800);
        assert_eq!(t("2026-12-06T11:59:00Z"), -60);
        assert_eq!(t("2026-12-06T13:00:00+02:00"), -3600);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("99999999999d", now).is_err());
    }
}

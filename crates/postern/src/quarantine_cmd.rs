//! `postern quarantine list|show|release|delete`: the named quarantines
//! (`[[quarantine]]`, `docs/quarantine.md`) and the messages in them.
//!
//! Through the running server's admin socket (`/v1/quarantine…`), else on
//! the spool (read-only for `list`/`show`; under the spool lock for the
//! verbs, like `postern queue`). `release` hands the message to delivery
//! with its original envelope (a `released` event); `delete` removes it
//! without a DSN (`deleted`). Both refuse a message that is not in a
//! quarantine: ordinary queued mail is `postern queue`'s.
//!
//! # Security
//! Header fields shown by `show` are a stranger's text: control characters
//! are replaced and each field is cut to one line of bounded length.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use postern_admin::{Filter, ListBody, MessageInfo, Verb};
use postern_spool::{Quarantines, QueueId, Spool};

use crate::cli::{QuarantineCommand, SpoolLocation};
use crate::out::outln;
use crate::queue_cmd::{Place, ask, encode, place, read_offline, server_refused, short_time};

pub(crate) fn run(config: Option<&Path>, cmd: &QuarantineCommand) -> ExitCode {
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
    match cmd {
        QuarantineCommand::List {
            name,
            location,
            json,
        } => rt.block_on(list(config, location, name.as_deref(), *json)),
        QuarantineCommand::Show { id, location, json } => match parse_id(id) {
            Ok(id) => rt.block_on(show(config, id, location, *json)),
            Err(code) => code,
        },
        QuarantineCommand::Release { id } => match parse_id(id) {
            Ok(id) => rt.block_on(verb(config, Verb::Release(id))),
            Err(code) => code,
        },
        QuarantineCommand::Delete { id } => match parse_id(id) {
            Ok(id) => rt.block_on(verb(config, Verb::Delete(id))),
            Err(code) => code,
        },
    }
}

fn parse_id(id: &str) -> Result<QueueId, ExitCode> {
    QueueId::parse(id).map_err(|e| {
        eprintln!("error: {e} (a queue id is the first column of `postern quarantine list`)");
        ExitCode::from(2)
    })
}

/// The quarantined messages: from the server, else from the spool.
async fn messages(
    place: &Place,
    name: Option<&str>,
) -> Result<(Vec<MessageInfo>, String), ExitCode> {
    let q = name.unwrap_or("*");
    let uri = format!("/v1/quarantine?name={}", encode(q));
    match ask::<serde_json::Value>(place.admin.as_ref(), "GET", &uri).await? {
        Some((200, v)) => match serde_json::from_value::<ListBody>(v) {
            Ok(b) => Ok((b.messages, "the running server".to_owned())),
            Err(e) => {
                eprintln!("error: unexpected answer from the server: {e}");
                Err(ExitCode::from(1))
            }
        },
        Some((status, v)) => Err(server_refused(status, &v)),
        None => {
            let all = read_offline(place, postern_admin::view::read_spool).await?;
            let filter = Filter {
                quarantine: Some(q.to_owned()),
                ..Filter::default()
            };
            Ok((
                postern_admin::view::select(&all.messages, &filter),
                place.describe(),
            ))
        }
    }
}

async fn list(
    config: Option<&Path>,
    loc: &SpoolLocation,
    name: Option<&str>,
    json: bool,
) -> ExitCode {
    let place = match place(config, loc) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let quarantines = place.lifetimes.quarantines.clone().unwrap_or_default();
    if let Some(n) = name
        && !quarantines.contains(n)
    {
        eprintln!(
            "warning: no quarantine named {n:?} is configured ({}); listing what the spool holds",
            names(&quarantines)
        );
    }
    let (msgs, source) = match messages(&place, name).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    if json {
        for m in &msgs {
            outln!("{}", serde_json::to_string(m).unwrap_or_default());
        }
        return ExitCode::SUCCESS;
    }
    outln!(
        "{:<12} {:>9} {:<8} {:>8}  DESCRIPTION",
        "QUARANTINE",
        "RETENTION",
        "EXPIRY",
        "MESSAGES"
    );
    for (n, spec) in quarantines.iter() {
        if name.is_some_and(|x| x != n) {
            continue;
        }
        let count = msgs
            .iter()
            .filter(|m| m.quarantine.as_deref() == Some(n))
            .count();
        outln!(
            "{:<12} {:>9} {:<8} {:>8}  {}",
            n,
            format!("{}d", spec.retention.as_secs().div_ceil(86_400)),
            spec.on_expiry.as_str(),
            count,
            spec.description
        );
    }
    outln!();
    outln!(
        "{:<20} {:<12} {:<20} {:<20}  SENDER",
        "QUEUE ID",
        "QUARANTINE",
        "RECEIVED",
        "UNTIL"
    );
    for m in &msgs {
        outln!(
            "{:<20} {:<12} {:<20} {:<20}  <{}>",
            m.queue_id.as_str(),
            m.quarantine.as_deref().unwrap_or("-"),
            short_time(&m.received_at),
            m.quarantine_until
                .as_deref()
                .map_or_else(|| "-".into(), short_time),
            clean(&m.reverse_path, 200)
        );
        if let Some(why) = &m.hold_reason {
            outln!("    why: {}", clean(why, 300));
        }
        for r in &m.recipients {
            outln!("    to:  <{}>", clean(&r.address, 200));
        }
    }
    outln!("-- {} message(s) in quarantine — from {source}", msgs.len());
    ExitCode::SUCCESS
}

fn names(q: &Quarantines) -> String {
    q.iter().map(|(n, _)| n).collect::<Vec<_>>().join(", ")
}

/// `show`: the quarantine facts and the header fields an operator decides
/// on, then everything `postern queue show` prints.
async fn show(config: Option<&Path>, id: QueueId, loc: &SpoolLocation, json: bool) -> ExitCode {
    let place = match place(config, loc) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (msgs, _) = match messages(&place, None).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    if !msgs.iter().any(|m| m.queue_id == id) {
        eprintln!(
            "error: {id} is not in a quarantine (`postern queue show {id}` shows any queued message)"
        );
        return ExitCode::from(1);
    }
    if !json {
        let dir = place.spool.dir.clone();
        let head = tokio::task::spawn_blocking(move || header_preview(&dir, &id))
            .await
            .ok()
            .flatten();
        if let Some(head) = head {
            outln!("header fields:");
            outln!("{head}");
        }
    }
    crate::queue_show::show(config, id, loc, json).await
}

/// From, To, Cc, Subject, Date, Message-ID of the stored message
/// (`postern_admin::view::header_preview`).
fn header_preview(dir: &Path, id: &QueueId) -> Option<String> {
    use std::io::Read as _;
    let reader = Spool::open_read_only(dir).ok()?;
    let mut msg = reader.open_message(id).ok()?;
    let mut buf = Vec::with_capacity(postern_admin::view::HEADER_PREVIEW_MAX);
    let max = postern_admin::view::HEADER_PREVIEW_MAX as u64;
    msg.by_ref().take(max).read_to_end(&mut buf).ok()?;
    let mut out = String::new();
    for (name, value) in postern_admin::view::header_preview(&buf) {
        let _ = writeln!(out, "  {name}: {value}");
    }
    Some(out.trim_end().to_owned())
}

/// One line (`queue show`'s cleaning), at most `max` characters.
fn clean(s: &str, max: usize) -> String {
    crate::queue_show::clean(s).chars().take(max).collect()
}

async fn verb(config: Option<&Path>, verb: Verb) -> ExitCode {
    let place = match crate::queue_cmd::from_config(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (method, uri, id) = match &verb {
        Verb::Release(id) => ("POST", format!("/v1/quarantine/{id}/release"), *id),
        Verb::Delete(id) => ("DELETE", format!("/v1/quarantine/{id}"), *id),
        _ => return ExitCode::from(2),
    };
    // Only quarantined mail (the server's endpoints check it too).
    let (msgs, _) = match messages(&place, None).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    if !msgs.iter().any(|m| m.queue_id == id) {
        eprintln!(
            "error: {id} is not in a quarantine (looked in {})",
            place.describe()
        );
        return ExitCode::from(1);
    }
    crate::queue_cmd::apply_at(&place, &verb, method, &uri).await
}

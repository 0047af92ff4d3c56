//! `postern queue list|show`: read the spool directly (read-only), so they work
//! whether or not the server runs (Postfix's `showq` stand-alone mode).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use postern_spool::{Envelope, QueueId, Spool};

use crate::cli::{QueueCommand, SpoolLocation};

fn spool_dir(loc: &SpoolLocation) -> Result<PathBuf, String> {
    if let Some(dir) = &loc.spool {
        return Ok(dir.clone());
    }
    let loaded = match &loc.config {
        Some(p) => postern_config::load_file(p),
        None => {
            postern_config::load_default(&std::env::current_dir().unwrap_or_else(|_| ".".into()))
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(loaded.config.server.spool.dir)
}

pub(crate) fn run(cmd: &QueueCommand) -> ExitCode {
    match cmd {
        QueueCommand::List { location, json } => list(location, *json),
        QueueCommand::Show { id, location, json } => show(id, location, *json),
    }
}

fn list(loc: &SpoolLocation, json: bool) -> ExitCode {
    let dir = match spool_dir(loc) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let reader = match Spool::open_read_only(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read the spool at {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    let envelopes = match reader.list() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        for env in &envelopes {
            println!("{}", serde_json::to_string(env).unwrap_or_default());
        }
    } else {
        println!(
            "{:<20} {:>10}  {:<20} {:<8} SENDER -> RECIPIENTS",
            "QUEUE ID", "SIZE", "RECEIVED", "TLS"
        );
        for env in &envelopes {
            println!(
                "{:<20} {:>10}  {:<20} {:<8} <{}> -> {}",
                env.queue_id,
                env.message_size,
                short_time(&env.received_at),
                env.receipt
                    .tls
                    .as_ref()
                    .map_or("none", |t| t.version.as_str()),
                env.reverse_path,
                env.recipients
                    .iter()
                    .map(|r| format!("<{}>", r.address))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!("-- {} message(s)", envelopes.len());
    }
    ExitCode::SUCCESS
}

fn show(id: &str, loc: &SpoolLocation, json: bool) -> ExitCode {
    let id = match QueueId::parse(id) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = match spool_dir(loc) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let env = match Spool::open_read_only(&dir).and_then(|r| r.envelope(&id)) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&env).unwrap_or_default());
    } else {
        print_envelope(&env);
    }
    ExitCode::SUCCESS
}

fn print_envelope(env: &Envelope) {
    println!("queue id:     {}", env.queue_id);
    println!("received at:  {}", env.received_at);
    println!("size:         {} octets", env.message_size);
    println!("sender:       <{}>", env.reverse_path);
    for r in &env.recipients {
        let mut extra = String::new();
        if let Some(n) = &r.notify {
            let _ = write!(extra, " NOTIFY={n}");
        }
        if let Some(o) = &r.orcpt {
            let _ = write!(extra, " ORCPT={o}");
        }
        println!("recipient:    <{}>{extra}", r.address);
    }
    let p = &env.params;
    println!(
        "parameters:   SIZE={} BODY={} SMTPUTF8={} RET={} ENVID={}",
        p.size.map_or("-".into(), |s| s.to_string()),
        p.body.as_deref().unwrap_or("-"),
        p.smtputf8,
        p.ret.as_deref().unwrap_or("-"),
        p.envid.as_deref().unwrap_or("-")
    );
    let r = &env.receipt;
    println!("listener:     {}", r.listener);
    println!("peer:         {} (HELO {})", r.peer, r.helo);
    println!("auth user:    {}", r.auth_user.as_deref().unwrap_or("-"));
    match &r.tls {
        Some(t) => println!(
            "tls:          {} {} group={} sni={}",
            t.version,
            t.cipher,
            t.group.as_deref().unwrap_or("-"),
            t.sni.as_deref().unwrap_or("-")
        ),
        None => println!("tls:          none (plaintext)"),
    }
}

/// "2026-11-22T17:03:57.907659887Z" → "2026-11-22T17:03:57Z" for the table.
fn short_time(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => rfc3339.to_owned(),
    }
}

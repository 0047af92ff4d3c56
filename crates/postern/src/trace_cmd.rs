//! `postern trace`: what the gateway would do with a client — PTR, FCrDNS,
//! DNS lists, the sender group and why, the mail-flow policy, and the whole
//! session's replies — without sending mail or changing a counter (ESA's
//! *Trace*; Postfix has no equivalent).
//!
//! Against the running server first (its admin socket: the configuration in
//! force, its resolver, its live counters), else offline in this process
//! with the configuration's DNS resolver and counter store (with `[counters]
//! backend = "redis"` the limits still read the live shared counts; with the
//! memory store they start at zero).
//!
//! # Security
//! Read-only (see `postern_smtpd::trace`): sends DNS queries, nothing else.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use crate::out::sayln;

/// `postern trace` arguments.
#[derive(Args, Debug)]
pub(crate) struct TraceArgs {
    /// The client address to trace (IPv4 or IPv6).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) ip: IpAddr,
    /// EHLO name the client gives (default: its address literal).
    #[arg(long, value_name = "NAME")]
    pub(crate) helo: Option<String>,
    /// Envelope sender (MAIL FROM); "" for the null sender.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) from: Option<String>,
    /// Envelope recipient (RCPT TO); repeatable. Needs --from.
    #[arg(long = "rcpt", value_name = "ADDRESS", requires = "from")]
    pub(crate) rcpt: Vec<String>,
    /// The listener the client connects to (default: the first).
    #[arg(long, value_name = "NAME")]
    pub(crate) listener: Option<String>,
    /// Assume the client started TLS.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Print the trace as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The address literal a client without `--helo` gives (RFC 5321 §4.1.3).
pub(crate) fn literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// Asks the running server; `Ok(None)` when it is not running.
async fn online(
    admin: &postern_admin::AdminSettings,
    args: &TraceArgs,
) -> Result<Option<postern_smtpd::trace::TraceReport>, String> {
    if !admin.enabled {
        return Ok(None);
    }
    let req = postern_admin::trace::TraceRequest {
        ip: args.ip.to_string(),
        helo: args.helo.clone(),
        from: args.from.clone(),
        rcpt: args.rcpt.clone(),
        listener: args.listener.clone(),
        tls: args.tls,
    };
    let uri = format!("/v1/trace?{}", req.to_query());
    match postern_admin::AdminClient::new(&admin.socket)
        .json::<serde_json::Value>("GET", &uri)
        .await
    {
        Ok((200, v)) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| format!("the server's trace answer: {e}")),
        Ok((503, _)) | Err(postern_admin::ClientError::NotRunning(_)) => Ok(None),
        Ok((_, v)) => Err(v["error"]
            .as_str()
            .unwrap_or("the server refused the trace")
            .to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the trace.
pub(crate) fn run(config: Option<&Path>, args: &TraceArgs) -> ExitCode {
    let chosen = crate::config_file::choose(config);
    let loaded = match crate::config_file::load(chosen.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = loaded.config;
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
    match rt.block_on(online(&cfg.admin, args)) {
        Ok(Some(report)) => return print(&report, args.json),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    // TLS as the server would load it (an already generated self-signed
    // certificate counts; none is generated here).
    let generate = cfg.data_dir.join("tls").is_dir();
    let tls = crate::tls_setup::build(&mut cfg, generate)
        .ok()
        .and_then(|t| t.config);
    let resolver = if cfg.server.admission.needs_dns() {
        match postern_dns::Resolver::new(&cfg.dns) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: setting up the DNS resolver ([dns]): {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let store = match postern_counters::open(&cfg.counters) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: opening the counter store ([counters]): {e}");
            return ExitCode::from(1);
        }
    };
    let input = postern_smtpd::trace::TraceInput {
        ip: args.ip,
        listener: args.listener.clone(),
        helo: args.helo.clone().unwrap_or_else(|| literal(args.ip)),
        from: args.from.clone(),
        rcpts: args.rcpt.clone(),
        tls: args.tls,
    };
    let report = match rt.block_on(postern_smtpd::trace::trace(
        cfg.server.clone(),
        tls,
        resolver,
        store,
        input,
    )) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print(&report, args.json)
}

fn print(report: &postern_smtpd::trace::TraceReport, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(j) => sayln!("{j}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    print_text(report);
    ExitCode::SUCCESS
}

fn print_text(r: &postern_smtpd::trace::TraceReport) {
    sayln!("Client {} on listener {}", r.ip, r.listener);
    sayln!("  PTR        {}", r.ptr);
    sayln!("  FCrDNS     {}", r.fcrdns);
    if r.dns_lists.is_empty() {
        sayln!("  DNS lists  not needed");
    }
    for (i, l) in r.dns_lists.iter().enumerate() {
        let weight = l
            .weight
            .map(|w| format!(" (weight {w})"))
            .unwrap_or_default();
        let head = if i == 0 {
            "  DNS lists  "
        } else {
            "             "
        };
        sayln!("{head}{}: {}{weight}", l.zone, l.answer);
    }
    if let Some(s) = r.score {
        sayln!("  score      {s}");
    }
    sayln!("Sender groups (top-down, first match wins)");
    if r.groups.is_empty() {
        sayln!("  (none configured)");
    }
    for g in &r.groups {
        sayln!("  {g}");
    }
    sayln!(
        "Policy {} (action {}){}",
        r.policy,
        r.action,
        if r.group.is_none() {
            ", no group matched"
        } else {
            ""
        }
    );
    sayln!(
        "Counters: {}{}",
        r.counters,
        if r.source == "server" {
            " (the running server's, live, read only)"
        } else if r.counters == "memory" {
            " (this process: counts start at zero; use [counters] backend = \"redis\" to read the live ones)"
        } else {
            " (live, read only)"
        }
    );
    sayln!("Session (nothing is sent, no counter changes)");
    for d in &r.dialogue {
        let tag = match d.dir.as_str() {
            "C" => "C:",
            "S" => "S:",
            _ => " *",
        };
        sayln!("  {tag} {}", d.text);
    }
}

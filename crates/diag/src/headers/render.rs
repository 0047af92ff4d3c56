//! The text report of `postern headers analyze`: a hop table like the ones
//! admins draw by hand from `Received:` lines, then authentication results,
//! spam verdicts and anomalies.
//!
//! # Security
//! Prints only strings that were [`clean`](super::text::clean)ed when they
//! were taken from the message.

use std::fmt::Write as _;

use time::macros::format_description;

use super::received::is_local;
use super::text::{fmt_secs, truncate};
use super::{Analysis, AuthResult, Hop};

/// Renders the whole report. Ends with a newline; no trailing spaces.
pub fn render_text(a: &Analysis) -> String {
    let mut out = String::new();
    if let Some(s) = &a.subject {
        let _ = writeln!(out, "Subject:    {s}");
    }
    if let Some(m) = &a.message_id {
        let _ = writeln!(out, "Message-ID: <{m}>");
    }
    if let Some(d) = a.date_utc {
        let _ = writeln!(out, "Date:       {} UTC", fmt_time(d));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    hop_table(&mut out, a);
    auth_section(&mut out, &a.auth_results);
    out.push('\n');
    if a.spam.is_empty() {
        out.push_str("Spam verdicts: none\n");
    } else {
        out.push_str("Spam verdicts:\n");
        for v in &a.spam {
            let _ = writeln!(out, "  {}: {}", v.header, v.verdict);
        }
    }
    out.push('\n');
    if a.anomalies.is_empty() {
        out.push_str("Anomalies: none\n");
    } else {
        out.push_str("Anomalies:\n");
        for an in &a.anomalies {
            let _ = writeln!(out, "  {an}");
        }
    }
    out
}

fn fmt_time(t: time::OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_else(|_| "?".to_owned())
}

fn hop_table(out: &mut String, a: &Analysis) {
    if a.hops.is_empty() {
        out.push_str("Received chain: no Received headers\n");
        return;
    }
    let n = a.hops.len();
    let _ = write!(
        out,
        "Received chain: {n} hop{}, oldest first",
        if n == 1 { "" } else { "s" }
    );
    if let Some(t) = a.total_delay {
        let since = if a.date_utc.is_some() {
            "Date: header"
        } else {
            "first hop"
        };
        let _ = write!(
            out,
            "; total delay {} (from the {since} to the last hop)",
            fmt_secs(t.whole_seconds())
        );
    }
    out.push_str("\n\n");

    let rows: Vec<[String; 5]> = a
        .hops
        .iter()
        .map(|h| {
            [
                h.index.to_string(),
                h.delay
                    .map_or_else(|| "-".to_owned(), |d| fmt_secs(d.whole_seconds())),
                route_text(h),
                with_text(h),
                h.time_utc.map_or_else(|| "-".to_owned(), fmt_time),
            ]
        })
        .collect();
    let header = ["#", "delay", "from → by", "with / TLS", "time (UTC)"];
    let mut widths = header.map(|s| s.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = format!(
            "{:>w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    out.push_str(&line(header));
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
}

/// `from → by`; a stamp with neither (qmail's `(qmail 123 invoked by uid
/// 1000)`, or garbage) shows the start of its text instead.
fn route_text(h: &Hop) -> String {
    if h.by.is_none() && h.from.is_none() && h.from_ip.is_none() {
        let text = h.raw.split(';').next().unwrap_or_default().trim();
        return truncate(text, 48);
    }
    format!("{} → {}", from_text(h), h.by.as_deref().unwrap_or("?"))
}

/// `helo (rdns) [ip]`; `[ip] (rdns) (helo=name)` when the stamp names the
/// peer by address (Exim, Sendmail); `(local)` for pickup.
fn from_text(h: &Hop) -> String {
    let ip = h.from_ip.map(|ip| ip.to_string());
    let from_is_ip = h.from.is_some() && h.from == ip;
    let name = h.from.as_deref().filter(|_| !from_is_ip);
    let mut parts = Vec::new();
    if let Some(n) = name {
        parts.push(n.to_owned());
    }
    if from_is_ip && let Some(ip) = &ip {
        parts.push(format!("[{ip}]"));
    }
    if let Some(r) = &h.from_rdns {
        let same = name.is_some_and(|f| {
            f.trim_end_matches('.')
                .eq_ignore_ascii_case(r.trim_end_matches('.'))
        });
        if !same {
            parts.push(format!("({r})"));
        }
    }
    if !from_is_ip && let Some(ip) = &ip {
        parts.push(format!("[{ip}]"));
    }
    if from_is_ip && let Some(helo) = &h.helo {
        parts.push(format!("(helo={helo})"));
    }
    if parts.is_empty() {
        if is_local(h) && h.by.is_some() {
            return "(local)".to_owned();
        }
        return "?".to_owned();
    }
    parts.join(" ")
}

fn with_text(h: &Hop) -> String {
    let with = h.with.as_deref().unwrap_or("-");
    let tls = match &h.tls {
        Some(t) => {
            let facts: Vec<&str> = [t.version.as_deref(), t.cipher.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if facts.is_empty() {
                "TLS".to_owned()
            } else {
                facts.join(" ")
            }
        }
        None if is_local(h) => String::new(),
        None => "no TLS".to_owned(),
    };
    if tls.is_empty() {
        with.to_owned()
    } else {
        format!("{with} {tls}")
    }
}

fn auth_section(out: &mut String, results: &[AuthResult]) {
    out.push('\n');
    if results.is_empty() {
        out.push_str("Authentication results: none\n");
        return;
    }
    // The top-most Authentication-Results was added last, normally by your own
    // border MTA: that is the verdict that counts (RFC 8601 §5).
    if let Some(first) = results
        .iter()
        .find(|r| r.header == "Authentication-Results")
    {
        let group: Vec<&AuthResult> = results
            .iter()
            .skip_while(|r| !std::ptr::eq(*r, first))
            .take_while(|r| r.header == first.header && r.authserv_id == first.authserv_id)
            .collect();
        let pick = |m: &str| {
            group
                .iter()
                .find(|r| r.method == m)
                .map_or("-", |r| r.result.as_str())
        };
        let _ = writeln!(
            out,
            "SPF/DKIM/DMARC: spf={} dkim={} dmarc={} (top-most Authentication-Results, {})",
            pick("spf"),
            pick("dkim"),
            pick("dmarc"),
            authserv_label(first)
        );
        out.push('\n');
    }
    out.push_str("Authentication results (trust only your own authserv-id, RFC 8601 §5):\n");
    let mw = results
        .iter()
        .map(|r| r.method.chars().count())
        .max()
        .unwrap_or(0);
    let rw = results
        .iter()
        .map(|r| r.result.chars().count())
        .max()
        .unwrap_or(0);
    let mut last: Option<(&str, &str)> = None;
    for r in results {
        let key = (r.header.as_str(), r.authserv_id.as_str());
        if last != Some(key) {
            let _ = writeln!(out, "  {} {}:", r.header, authserv_label(r));
            last = Some(key);
        }
        let props: Vec<String> = r
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut l = format!(
            "    {:<mw$}  {:<rw$}  {}",
            r.method,
            r.result,
            props.join(" ")
        );
        l.truncate(l.trim_end().len());
        out.push_str(&l);
        out.push('\n');
    }
}

fn authserv_label(r: &AuthResult) -> String {
    if r.authserv_id.is_empty() {
        "without authserv-id".to_owned()
    } else {
        format!("by {}", r.authserv_id)
    }
}

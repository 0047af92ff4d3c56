//! Text, CSV and timeline rendering for the CLI (`postern track search`,
//! `track show`, `track evidence`, `postern tls posture`). JSON is the serde
//! form of the types (the CLI prints it).
//!
//! # Security
//! Remote replies, HELO names and subjects are untrusted: control
//! characters are replaced before they reach a terminal (no escape-sequence
//! injection). CSV cells that start with `=`, `+`, `-`, `@`, tab or CR get a
//! leading `'` so a spreadsheet does not run them as formulas (OWASP "CSV
//! injection").
//!
//! # Standards
//! CSV: RFC 4180 (CRLF line ends, fields with `,` `"` CR LF quoted, `"`
//! doubled).

mod life;

pub use life::{evidence_text, life_text};

use std::fmt::Write as _;

use crate::types::{EventRow, PeerPosture};

/// `s` with control characters (C0, DEL, C1) and bidirectional formatting
/// characters replaced by `?`: a hostile subject or reply cannot move the
/// terminal's cursor nor reorder what the operator reads (CVE-2021-42574,
/// "Trojan Source": U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C).
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || postern_proto::is_bidi_format(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn opt(s: Option<&String>) -> &str {
    s.map_or("", String::as_str)
}

/// Who / whom of a row: `sender → rcpt, rcpt`.
fn parties(r: &EventRow) -> String {
    let sender = match r.sender.as_deref() {
        Some("") => "<>".to_owned(),
        Some(s) => s.to_owned(),
        None => String::new(),
    };
    let rcpts = match r.recipients.len() {
        0 => String::new(),
        1..=3 => r.recipients.join(", "),
        n => format!("{}, … (+{})", r.recipients[..2].join(", "), n - 2),
    };
    match (sender.is_empty(), rcpts.is_empty()) {
        (true, true) => String::new(),
        (false, true) => sender,
        (true, false) => format!("→ {rcpts}"),
        (false, false) => format!("{sender} → {rcpts}"),
    }
}

fn peer(r: &EventRow) -> String {
    if let Some(ip) = &r.server_ip {
        return format!("{}[{ip}]", opt(r.server_name.as_ref()));
    }
    if let Some(ip) = &r.client_ip {
        return format!("{}[{ip}]", opt(r.client_name.as_ref()));
    }
    String::new()
}

/// One line per event, newest first as given:
/// `time  event  queue-id|session  sender → recipients  peer  tls  status  detail`.
pub fn search_text(rows: &[EventRow]) -> String {
    if rows.is_empty() {
        return "no events match\n".to_owned();
    }
    let cols: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.ts.clone(),
                r.event.clone(),
                r.queue_id
                    .clone()
                    .or_else(|| r.session.clone().map(|s| format!("session {s}")))
                    .unwrap_or_default(),
                parties(r),
                peer(r),
                opt(r.tls_version.as_ref()).to_owned(),
                opt(r.status.as_ref()).to_owned(),
                r.detail.clone(),
            ]
            .map(|c| clean(&c))
        })
        .collect();
    let header = [
        "TIME",
        "EVENT",
        "QUEUE ID",
        "FROM → TO",
        "PEER",
        "TLS",
        "STATUS",
        "DETAIL",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for c in &cols {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&header, &mut out);
    for c in &cols {
        let cells: Vec<&str> = c.iter().map(String::as_str).collect();
        line(&cells, &mut out);
    }
    out
}

/// One CSV cell: formula-neutralised, quoted when needed.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// RFC 4180 CSV with a header line; recipients are joined with spaces.
pub fn search_csv(rows: &[EventRow]) -> String {
    let mut out = String::from(
        "ts,event_id,event,queue_id,session,message_id,subject,sender,recipients,client_ip,\
         client_name,server_ip,server_name,listener,size,status,reply,tls_version,tls_cipher,detail\r\n",
    );
    for r in rows {
        let cells = [
            r.ts.clone(),
            r.event_id.clone(),
            r.event.clone(),
            opt(r.queue_id.as_ref()).to_owned(),
            opt(r.session.as_ref()).to_owned(),
            opt(r.message_id.as_ref()).to_owned(),
            opt(r.subject.as_ref()).to_owned(),
            opt(r.sender.as_ref()).to_owned(),
            r.recipients.join(" "),
            opt(r.client_ip.as_ref()).to_owned(),
            opt(r.client_name.as_ref()).to_owned(),
            opt(r.server_ip.as_ref()).to_owned(),
            opt(r.server_name.as_ref()).to_owned(),
            opt(r.listener.as_ref()).to_owned(),
            r.size.map(|s| s.to_string()).unwrap_or_default(),
            opt(r.status.as_ref()).to_owned(),
            opt(r.reply.as_ref()).to_owned(),
            opt(r.tls_version.as_ref()).to_owned(),
            opt(r.tls_cipher.as_ref()).to_owned(),
            r.detail.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn counts(v: &[(String, u64)]) -> String {
    v.iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The posture table, most at risk first (as given), one peer per line.
pub fn posture_text(peers: &[PeerPosture]) -> String {
    if peers.is_empty() {
        return "no peers seen in that period\n".to_owned();
    }
    let mut out = String::new();
    let rows: Vec<[String; 10]> = peers
        .iter()
        .map(|p| {
            [
                p.direction.as_str().to_owned(),
                p.peer.clone(),
                p.messages.to_string(),
                counts(&p.tls_versions),
                match p.starttls {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "?".into(),
                },
                format!("{}/{}", p.verified, p.unverified),
                format!("{}/{}", p.dane, p.mta_sts),
                p.plaintext_retries.to_string(),
                p.last_seen.clone(),
                if p.risks.is_empty() {
                    "-".to_owned()
                } else {
                    p.risks.join("; ")
                },
            ]
            .map(|c| clean(&c))
        })
        .collect();
    let header = [
        "DIR",
        "PEER",
        "MSGS",
        "TLS VERSIONS",
        "STARTTLS",
        "VERIFIED/NOT",
        "DANE/STS",
        "RETRIES",
        "LAST SEEN",
        "RISKS",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut push = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                line.push_str(c);
            } else {
                let _ = write!(
                    line,
                    "{c}{}  ",
                    " ".repeat(w.saturating_sub(c.chars().count()))
                );
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for r in &rows {
        push(r.iter().map(String::as_str).collect());
    }
    for p in peers {
        if !p.ciphers.is_empty() || p.ips.len() > 1 {
            // Details below the table: the ciphers and addresses of each peer.
            let _ = writeln!(
                out,
                "  {} {}: ips {}; ciphers {}",
                p.direction.as_str(),
                clean(&p.peer),
                clean(&p.ips.join(" ")),
                clean(&counts(&p.ciphers))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_neutralises() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("two\r\nlines"), "\"two\r\nlines\"");
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(clean("ok\x1b[31mred\r\n"), "ok?[31mred??");
        // Trojan Source: a right-to-left override cannot reorder the line.
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoice?fdp.exe");
        assert_eq!(clean("a\u{2066}b\u{2069}c"), "a?b?c");
        assert_eq!(clean("café ✓"), "café ✓");
    }
}

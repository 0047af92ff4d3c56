//! Searches (every filter of [`SearchQuery`], newest first) and the life of
//! one message.
//!
//! A recipient filter drives the query from the `recipients` index
//! (`rcpt, ts_ms` or `rdomain, ts_ms`), so "recipient X between T1 and T2"
//! reads only that recipient's rows; rows are streamed and the scan stops at
//! the limit.
//!
//! # Security
//! Every value is a bound parameter; only fixed column names and
//! placeholders are assembled into SQL. LIKE wildcards in a subject filter
//! are escaped.

use std::collections::HashSet;
use std::net::IpAddr;

use postern_track::{MailEvent, TrackRecord};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::map;
use crate::error::StoreError;
use crate::types::{EventRow, MessageLife, SearchQuery};

/// Rows when the query says 0.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows one search returns.
pub const MAX_LIMIT: usize = 10_000;

const COLUMNS: &str = "e.id, e.ts, e.event_id, e.event, e.queue_id, e.session, e.message_id,
    e.subject, e.sender, e.client_ip, e.client_name, e.server_ip, e.server_name, e.listener,
    e.size, e.status, e.reply, e.tls_version, e.tls_cipher, e.detail";

/// An address filter: one address, or a domain and its subdomains.
enum AddressFilter {
    Exact(String),
    Domain(String),
}

fn address_filter(s: &str) -> AddressFilter {
    let s = s.trim().to_ascii_lowercase();
    match s.rsplit_once('@') {
        Some((local, _)) if !local.is_empty() => AddressFilter::Exact(s),
        _ => AddressFilter::Domain(map::rdomain(&s)),
    }
}

/// The two arms of a domain filter: the domain itself, and its
/// subdomains (`/` sorts right after `.`). Each arm reads its index in time
/// order; the arms are merged (`UNION ALL … ORDER BY`), never sorted whole.
fn domain_arms(col: &str, rd: &str, args: &mut Vec<Value>) -> Vec<String> {
    args.push(Value::Text(rd.to_owned()));
    args.push(Value::Text(format!("{rd}.")));
    args.push(Value::Text(format!("{rd}/")));
    let n = args.len();
    vec![
        format!("{col} = ?{}", n - 2),
        format!("{col} > ?{} AND {col} < ?{}", n - 1, n),
    ]
}

/// Every combination of one arm from each alternative set.
fn cross(sets: Vec<Vec<String>>) -> Vec<String> {
    let mut out = vec![String::new()];
    for set in sets {
        out = out
            .iter()
            .flat_map(|prefix| {
                set.iter().map(move |arm| {
                    if prefix.is_empty() {
                        arm.clone()
                    } else {
                        format!("{prefix} AND {arm}")
                    }
                })
            })
            .collect();
    }
    out
}

/// The key range of an IP or a CIDR block.
fn ip_range(s: &str) -> Result<([u8; 16], [u8; 16]), StoreError> {
    let bad = || {
        StoreError::Query(format!(
            "ip {s:?}: expected an address (192.0.2.7, 2001:db8::1) or a CIDR block (192.0.2.0/24)"
        ))
    };
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().map_err(|_| bad())?)),
        None => (s.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let (key, bits) = match ip {
        IpAddr::V4(_) => (map::ip_key(ip), len.map(|l| l + 96)),
        IpAddr::V6(_) => (map::ip_key(ip), len),
    };
    let bits = bits.unwrap_or(128);
    if bits > 128 || (ip.is_ipv4() && len.is_some_and(|l| l > 32)) {
        return Err(bad());
    }
    let n = u128::from_be_bytes(key);
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    Ok(((n & mask).to_be_bytes(), (n | !mask).to_be_bytes()))
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Two phases: the ids of the matching events, newest first (index-driven:
/// one arm per alternative of a domain or IP filter, merged in time order),
/// then their columns and recipients.
pub(super) fn search(conn: &Connection, q: &SearchQuery) -> Result<Vec<EventRow>, StoreError> {
    let limit = match q.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let mut args: Vec<Value> = Vec::new();
    // Conditions every arm has, and sets of alternatives (OR) that become arms.
    let mut common: Vec<String> = Vec::new();
    let mut alternatives: Vec<Vec<String>> = Vec::new();
    // The recipient filter drives the scan from its index; otherwise events.
    let (from, ts_col, id_col) = if let Some(r) = &q.recipient {
        match address_filter(r) {
            AddressFilter::Exact(a) => {
                args.push(Value::Text(a));
                common.push(format!("r.rcpt = ?{}", args.len()));
            }
            AddressFilter::Domain(rd) => {
                alternatives.push(domain_arms("r.rdomain", &rd, &mut args));
            }
        }
        (
            "recipients r JOIN events e ON e.id = r.event",
            "r.ts_ms",
            "r.event",
        )
    } else {
        ("events e", "e.ts_ms", "e.id")
    };
    if let Some(start) = q.start {
        args.push(Value::Integer(map::ms(start)));
        common.push(format!("{ts_col} >= ?{}", args.len()));
    }
    if let Some(end) = q.end {
        args.push(Value::Integer(map::ms(end)));
        common.push(format!("{ts_col} < ?{}", args.len()));
    }
    if let Some(s) = &q.sender {
        let t = s.trim();
        if t.is_empty() || t == "<>" {
            common.push("e.sender = ''".into());
        } else {
            match address_filter(t) {
                AddressFilter::Exact(a) => {
                    args.push(Value::Text(a));
                    common.push(format!("e.sender = ?{}", args.len()));
                }
                AddressFilter::Domain(rd) => {
                    alternatives.push(domain_arms("e.sender_rdomain", &rd, &mut args));
                }
            }
        }
    }
    if !q.events.is_empty() {
        let mut marks = Vec::new();
        for name in &q.events {
            args.push(Value::Text(name.trim().to_ascii_lowercase()));
            marks.push(format!("?{}", args.len()));
        }
        common.push(format!("e.event IN ({})", marks.join(", ")));
    }
    if let Some(id) = &q.queue_id {
        args.push(Value::Text(id.trim().to_owned()));
        common.push(format!("e.queue_id = ?{}", args.len()));
    }
    if let Some(id) = &q.message_id {
        args.push(Value::Text(map::bare_message_id(id)));
        common.push(format!("e.message_id = ?{}", args.len()));
    }
    if let Some(s) = &q.subject {
        args.push(Value::Text(escape_like(s)));
        common.push(format!("e.subject LIKE ?{} ESCAPE '\\'", args.len()));
    }
    if let Some(ip) = &q.ip {
        let (lo, hi) = ip_range(ip)?;
        args.push(Value::Blob(lo.to_vec()));
        args.push(Value::Blob(hi.to_vec()));
        let (a, b) = (args.len() - 1, args.len());
        alternatives.push(vec![
            format!("e.client_ipk >= ?{a} AND e.client_ipk <= ?{b}"),
            format!("e.server_ipk >= ?{a} AND e.server_ipk <= ?{b}"),
        ]);
    }
    if let Some(v) = &q.tls_version {
        args.push(Value::Text(v.trim().to_owned()));
        common.push(format!("e.tls_version = ?{} COLLATE NOCASE", args.len()));
    }
    let common_sql = common.join(" AND ");
    let arms: Vec<String> = cross(alternatives)
        .into_iter()
        .map(|alt| {
            let filter = match (alt.is_empty(), common_sql.is_empty()) {
                (true, true) => String::new(),
                (true, false) => format!("WHERE {common_sql}"),
                (false, true) => format!("WHERE {alt}"),
                (false, false) => format!("WHERE {alt} AND {common_sql}"),
            };
            format!("SELECT {id_col} AS id, {ts_col} AS k FROM {from} {filter}")
        })
        .collect();
    let sql = format!("{} ORDER BY k DESC, id DESC", arms.join(" UNION ALL "));
    let ids: Vec<i64> = {
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(args))?;
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            // Two recipients of one event in the same domain: once.
            if seen.insert(id) {
                ids.push(id);
                if ids.len() >= limit {
                    break;
                }
            }
        }
        ids
    };
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events e WHERE e.id = ?1"))?;
    let mut rst = conn.prepare_cached("SELECT rcpt FROM recipients WHERE event = ?1")?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = st.query(params![id])?;
        let Some(r) = rows.next()? else {
            continue; // pruned meanwhile
        };
        let mut row = EventRow {
            ts: r.get(1)?,
            event_id: r.get(2)?,
            event: r.get(3)?,
            queue_id: r.get(4)?,
            session: r.get(5)?,
            message_id: r.get(6)?,
            subject: r.get(7)?,
            sender: r.get(8)?,
            recipients: Vec::new(),
            client_ip: r.get(9)?,
            client_name: r.get(10)?,
            server_ip: r.get(11)?,
            server_name: r.get(12)?,
            listener: r.get(13)?,
            size: r
                .get::<_, Option<i64>>(14)?
                .and_then(|s| u64::try_from(s).ok()),
            status: r.get(15)?,
            reply: r.get(16)?,
            tls_version: r.get(17)?,
            tls_cipher: r.get(18)?,
            detail: r.get(19)?,
        };
        drop(rows);
        row.recipients = rst
            .query_map(params![id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.push(row);
    }
    Ok(out)
}

pub(super) fn message(conn: &Connection, key: &str) -> Result<Option<MessageLife>, StoreError> {
    let key = key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    let mut records = records_of(conn, key)?;
    let mut queue_id = key.to_owned();
    if records.is_empty() {
        let found: Option<String> = conn
            .prepare_cached(
                "SELECT queue_id FROM events WHERE message_id = ?1 AND queue_id IS NOT NULL
                 ORDER BY ts_ms LIMIT 1",
            )?
            .query_map(params![map::bare_message_id(key)], |r| r.get(0))?
            .next()
            .transpose()?;
        let Some(q) = found else {
            return Ok(None);
        };
        records = records_of(conn, &q)?;
        queue_id = q;
    }
    if records.is_empty() {
        return Ok(None);
    }
    let (mut message_id, mut sender, mut subject): (
        Option<String>,
        Option<String>,
        Option<String>,
    ) = (None, None, None);
    let mut recipients: Vec<String> = Vec::new();
    let mut related: Vec<String> = Vec::new();
    let add_rcpt = |r: &str, list: &mut Vec<String>| {
        if !list.iter().any(|x| x.eq_ignore_ascii_case(r)) {
            list.push(r.to_owned());
        }
    };
    for rec in &records {
        match &rec.event {
            MailEvent::Received(x) => {
                message_id = message_id.or_else(|| x.message_id.clone());
                subject = subject.or_else(|| x.subject.clone());
                sender.get_or_insert_with(|| x.sender.clone());
                for r in &x.rcpts {
                    add_rcpt(r, &mut recipients);
                }
            }
            MailEvent::Queued(x) => {
                sender.get_or_insert_with(|| x.sender.clone());
            }
            MailEvent::Attempt(a) => a.rcpts.iter().for_each(|r| add_rcpt(r, &mut recipients)),
            MailEvent::Delivered(o) | MailEvent::Deferred(o) | MailEvent::Bounced(o) => {
                add_rcpt(&o.rcpt, &mut recipients);
            }
            MailEvent::DsnSent(d) => {
                if let Some(q) = d.dsn_queue_id {
                    related.push(q.to_string());
                }
            }
            _ => {}
        }
    }
    // A DSN: the message whose dsn_sent names it.
    let originals: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT queue_id FROM events WHERE related_queue_id = ?1 AND queue_id IS NOT NULL",
        )?
        .query_map(params![queue_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for q in originals {
        if !related.contains(&q) {
            related.push(q);
        }
    }
    // The same Message-ID under other queue ids: copies split at end of
    // data (some recipients refused by content policy), or a resend.
    if let Some(mid) = &message_id {
        let copies: Vec<String> = conn
            .prepare_cached(
                // Bounded: anyone can reuse a public Message-ID.
                "SELECT DISTINCT queue_id FROM events WHERE message_id = ?1 AND queue_id != ?2
                 LIMIT 20",
            )?
            .query_map(params![map::bare_message_id(mid), queue_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for q in copies {
            if !related.contains(&q) {
                related.push(q);
            }
        }
    }
    if message_id.is_none() {
        message_id = conn
            .prepare_cached(
                "SELECT message_id FROM events WHERE queue_id = ?1 AND message_id IS NOT NULL LIMIT 1",
            )?
            .query_map(params![queue_id], |r| r.get(0))?
            .next()
            .transpose()?;
    }
    let outcome = outcome(&records).to_owned();
    Ok(Some(MessageLife {
        queue_id,
        message_id,
        subject,
        sender,
        recipients,
        records,
        related,
        outcome,
    }))
}

fn records_of(conn: &Connection, queue_id: &str) -> Result<Vec<TrackRecord>, StoreError> {
    let texts: Vec<String> = conn
        .prepare_cached(
            "SELECT record FROM events WHERE queue_id = ?1 AND kind = 'mail' ORDER BY ts_ms, id",
        )?
        .query_map(params![queue_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(StoreError::from))
        .collect()
}

/// The message's state from its events: `deleted`, `badmail`, `quarantined`
/// or `held` while that lasts; otherwise from the recipients' last
/// outcomes: all the same → that (`delivered`, `bounced`), any still
/// `deferred` → `deferred`, a mix of final ones → `partial`; no outcome yet
/// → `queued`.
pub(crate) fn outcome(records: &[TrackRecord]) -> &'static str {
    let mut last: Vec<(String, &'static str)> = Vec::new();
    let mut set = |rcpt: &str, state: &'static str| {
        let rcpt = rcpt.to_ascii_lowercase();
        match last.iter_mut().find(|(r, _)| *r == rcpt) {
            Some(slot) => slot.1 = state,
            None => last.push((rcpt, state)),
        }
    };
    let mut held = false;
    let mut quarantined = false;
    for rec in records {
        match &rec.event {
            MailEvent::Deleted(_) => return "deleted",
            MailEvent::Badmail(_) => return "badmail",
            MailEvent::Delivered(o) => set(&o.rcpt, "delivered"),
            MailEvent::Deferred(o) => set(&o.rcpt, "deferred"),
            MailEvent::Bounced(o) => set(&o.rcpt, "bounced"),
            MailEvent::Expired(x) => x.rcpts.iter().for_each(|r| set(r, "bounced")),
            MailEvent::Quarantined(_) => quarantined = true,
            MailEvent::Held(_) => held = true,
            MailEvent::Released(_) => {
                held = false;
                quarantined = false;
            }
            _ => {}
        }
    }
    if quarantined {
        return "quarantined";
    }
    if held {
        return "held";
    }
    let Some((_, first)) = last.first() else {
        return "queued";
    };
    if last.iter().any(|(_, s)| *s == "deferred") {
        "deferred"
    } else if last.iter().all(|(_, s)| s == first) {
        first
    } else {
        "partial"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let (lo, hi) = ip_range("192.0.2.0/24").ok().unwrap_or_default();
        assert_eq!(
            lo,
            map::ip_key("192.0.2.0".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        assert_eq!(
            hi,
            map::ip_key("192.0.2.255".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        assert!(ip_range("192.0.2.0/33").is_err());
        assert!(ip_range("nope").is_err());
        let (lo, hi) = ip_range("2001:db8::1").ok().unwrap_or_default();
        assert_eq!(lo, hi);
        assert_eq!(escape_like("50%_"), "%50\\%\\_%");
    }
}

//! The TLS posture inventory (from the `posture` aggregate: no event scan)
//! and the dashboard summary.
//!
//! # Standards
//! Risk labels follow what a stricter policy would refuse: TLS 1.0 and 1.1
//! are deprecated (RFC 8996); no STARTTLS or a plaintext retry fails
//! `required` (RFC 3207 offers no protection without it); an unverified
//! certificate fails `verify` / MTA-STS (RFC 8461 §4.2).

use std::collections::BTreeMap;

use postern_track::{MailEvent, SessionEvent};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::map;
use crate::error::StoreError;
use crate::types::{Direction, PeerPosture, PostureQuery, Summary};

const MS_PER_DAY: i64 = 86_400_000;

/// Causes listed on the dashboard.
const TOP_CAUSES: usize = 10;

#[derive(Default)]
struct Acc {
    ips: Vec<String>,
    versions: BTreeMap<String, u64>,
    ciphers: BTreeMap<String, u64>,
    offered: u64,
    missing: u64,
    verified: u64,
    unverified: u64,
    dane: u64,
    mta_sts: u64,
    retries: u64,
    messages: u64,
    last_seen_ms: i64,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn sorted_counts(m: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

pub(super) fn posture(conn: &Connection, q: &PostureQuery) -> Result<Vec<PeerPosture>, StoreError> {
    let mut args = vec![Value::Integer(map::ms(q.since).div_euclid(MS_PER_DAY))];
    let mut sql = String::from(
        "SELECT direction, peer, ip, tls_version, cipher, sum(messages), sum(starttls_offered),
            sum(starttls_missing), sum(verified), sum(unverified), sum(dane), sum(mta_sts),
            sum(plaintext_retries), max(last_seen_ms)
         FROM posture WHERE day >= ?1",
    );
    if let Some(d) = q.direction {
        args.push(Value::Text(d.as_str().to_owned()));
        sql.push_str(" AND direction = ?2");
    }
    sql.push_str(" GROUP BY direction, peer, ip, tls_version, cipher");
    let mut peers: BTreeMap<(String, String), Acc> = BTreeMap::new();
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let key = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        let acc = peers.entry(key).or_default();
        let ip: String = r.get(2)?;
        if !acc.ips.contains(&ip) {
            acc.ips.push(ip);
        }
        let n = count(r.get(5)?);
        *acc.versions.entry(r.get(3)?).or_default() += n;
        let cipher: String = r.get(4)?;
        if !cipher.is_empty() {
            *acc.ciphers.entry(cipher).or_default() += n;
        }
        acc.messages += n;
        acc.offered += count(r.get(6)?);
        acc.missing += count(r.get(7)?);
        acc.verified += count(r.get(8)?);
        acc.unverified += count(r.get(9)?);
        acc.dane += count(r.get(10)?);
        acc.mta_sts += count(r.get(11)?);
        acc.retries += count(r.get(12)?);
        acc.last_seen_ms = acc.last_seen_ms.max(r.get(13)?);
    }
    let mut out: Vec<(u32, PeerPosture)> = peers
        .into_iter()
        .map(|((dir, peer), mut acc)| {
            let direction = if dir == "inbound" {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            acc.ips.sort();
            let plaintext = acc.versions.get("none").copied().unwrap_or(0);
            let starttls = match direction {
                Direction::Outbound if acc.offered + acc.missing > 0 => Some(acc.missing == 0),
                Direction::Outbound => None,
                Direction::Inbound => Some(plaintext == 0),
            };
            let mut risks = Vec::new();
            let mut score = 0u32;
            let legacy: Vec<&str> = acc
                .versions
                .keys()
                .map(String::as_str)
                .filter(|v| matches!(*v, "TLSv1.0" | "TLSv1.1" | "SSLv3" | "TLSv1"))
                .collect();
            if !legacy.is_empty() {
                risks.push(format!("legacy TLS ({})", legacy.join(", ")));
                score |= 8;
            }
            if starttls == Some(false) {
                risks.push("no STARTTLS".to_owned());
                score |= 4;
            }
            if acc.unverified > 0 {
                risks.push("unverified certificate".to_owned());
                score |= 2;
            }
            if acc.retries > 0 {
                risks.push("plaintext retry".to_owned());
                score |= 1;
            }
            (
                score,
                PeerPosture {
                    direction,
                    peer,
                    ips: acc.ips,
                    tls_versions: sorted_counts(acc.versions),
                    ciphers: sorted_counts(acc.ciphers),
                    starttls,
                    verified: acc.verified,
                    unverified: acc.unverified,
                    dane: acc.dane,
                    mta_sts: acc.mta_sts,
                    plaintext_retries: acc.retries,
                    messages: acc.messages,
                    last_seen: rfc3339_ms(acc.last_seen_ms),
                    risks,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1.messages.cmp(&a.1.messages))
            .then_with(|| a.1.peer.cmp(&b.1.peer))
            .then_with(|| a.1.direction.cmp(&b.1.direction))
    });
    let mut out: Vec<PeerPosture> = out.into_iter().map(|(_, p)| p).collect();
    if q.limit > 0 {
        out.truncate(q.limit);
    }
    Ok(out)
}

fn pairs(conn: &Connection, sql: &str, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
    let mut st = conn.prepare_cached(sql)?;
    let v = st
        .query_map(params![since], |r| {
            Ok((r.get::<_, String>(0)?, count(r.get(1)?)))
        })?
        .collect::<Result<_, _>>()?;
    Ok(v)
}

fn per_minute(
    conn: &Connection,
    event: &str,
    since: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT ts_ms / 60000, count(*) FROM events WHERE event = ?1 AND ts_ms >= ?2
         GROUP BY 1 ORDER BY 1",
    )?;
    let v = st
        .query_map(params![event, since], |r| {
            Ok((rfc3339_ms(r.get::<_, i64>(0)? * 60_000), count(r.get(1)?)))
        })?
        .collect::<Result<_, _>>()?;
    Ok(v)
}

/// Event name → count: one index range count per name (the `event, ts_ms`
/// index), instead of a scan of every event to group them.
fn event_counts(conn: &Connection, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
    let mut names: Vec<&str> = MailEvent::NAMES.to_vec();
    names.extend(
        SessionEvent::NAMES
            .iter()
            .filter(|n| !MailEvent::NAMES.contains(n)),
    );
    let mut st =
        conn.prepare_cached("SELECT count(*) FROM events WHERE event = ?1 AND ts_ms >= ?2")?;
    let mut out = Vec::new();
    for name in names {
        let n: i64 = st.query_row(params![name, since], |r| r.get(0))?;
        if n > 0 {
            out.push((name.to_owned(), count(n)));
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

pub(super) fn summary(
    conn: &Connection,
    since: time::OffsetDateTime,
) -> Result<Summary, StoreError> {
    let since = map::ms(since);
    Ok(Summary {
        per_minute_in: per_minute(conn, "received", since)?,
        per_minute_out: per_minute(conn, "delivered", since)?,
        tls_in: pairs(
            conn,
            "SELECT tls_version, count(*) FROM events
             WHERE event = 'received' AND ts_ms >= ?1 AND tls_version IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1",
            since,
        )?,
        tls_out: pairs(
            conn,
            "SELECT tls_version, count(*) FROM events
             WHERE event = 'attempt' AND ts_ms >= ?1 AND tls_version IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1",
            since,
        )?,
        top_causes: pairs(
            conn,
            &format!(
                "SELECT cause, count(*) FROM (
                    SELECT cause FROM events WHERE event IN ('deferred', 'bounced')
                        AND kind = 'mail' AND ts_ms >= ?1 AND cause IS NOT NULL
                    UNION ALL
                    SELECT cause FROM events WHERE event = 'attempt' AND ts_ms >= ?1
                        AND cause IS NOT NULL AND json_extract(record, '$.outcome') = 'failed')
                 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_CAUSES}"
            ),
            since,
        )?,
        events: event_counts(conn, since)?,
    })
}

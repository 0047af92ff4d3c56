//! Writing batches (with the checkpoint, in one transaction) and pruning (in
//! chunks, so the write lock is never held long).
//!
//! Per event: the columns are mapped from the parsed entry, the JSON record
//! is the line as logged when the indexer hands it over (not serialised
//! again), and what a message's later events inherit (Message-ID, sender,
//! subject) comes from a bounded cache of the `messages` rows
//! ([`InheritCache`]) rather than a query per event.
//!
//! # Security
//! Re-indexing is idempotent: `events.event_id` is UNIQUE and a duplicate
//! line is skipped whole (its recipients and posture counts are not added
//! twice), so a crash between writing rows and moving the checkpoint can
//! only cause a harmless re-read.

use std::collections::{HashMap, VecDeque};

use rusqlite::{Transaction, params};

use super::map::{self, PostureDelta, Row};
use super::{SqliteStore, Writer};
use crate::entry::LogEntry;
use crate::error::StoreError;
use crate::types::{Checkpoint, FileHead};

/// Events deleted per pruning transaction.
const PRUNE_CHUNK: usize = 5_000;

/// Messages whose inherited fields are kept in memory (a message's events
/// come within minutes of each other; older ones are read from the table).
const INHERIT_CACHED: usize = 16_384;

/// What later events of a message inherit: its `messages` row.
#[derive(Debug, Clone, Default)]
struct Inherited {
    message_id: Option<String>,
    sender: Option<String>,
    subject: Option<String>,
}

/// The `messages` rows of the most recent queue ids, as committed or about
/// to be (cleared when a batch fails and when pruning deletes rows, so it
/// never says more than the table). At most [`INHERIT_CACHED`] entries,
/// the oldest dropped first.
#[derive(Debug, Default)]
pub(crate) struct InheritCache {
    rows: HashMap<String, Inherited>,
    order: VecDeque<String>,
}

impl InheritCache {
    fn get(&self, queue_id: &str) -> Option<&Inherited> {
        self.rows.get(queue_id)
    }

    fn put(&mut self, queue_id: &str, row: Inherited) {
        if let Some(old) = self.rows.get_mut(queue_id) {
            *old = row;
            return;
        }
        if self.rows.len() >= INHERIT_CACHED
            && let Some(oldest) = self.order.pop_front()
        {
            self.rows.remove(&oldest);
        }
        self.order.push_back(queue_id.to_owned());
        self.rows.insert(queue_id.to_owned(), row);
    }

    pub(crate) fn clear(&mut self) {
        self.rows.clear();
        self.order.clear();
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Indexes `batch` (with `lines[i]`, when there, as the record of
/// `batch[i]`) and moves the checkpoint, in one transaction.
pub(super) fn index(
    w: &mut Writer,
    batch: &[LogEntry],
    lines: &[Option<&str>],
    checkpoint: &Checkpoint,
    head: Option<&FileHead>,
) -> Result<(), StoreError> {
    let out = index_tx(w, batch, lines, checkpoint, head);
    if out.is_err() {
        // Rows of the failed batch may be cached: forget them.
        w.inherited.clear();
    }
    out
}

fn index_tx(
    w: &mut Writer,
    batch: &[LogEntry],
    lines: &[Option<&str>],
    checkpoint: &Checkpoint,
    head: Option<&FileHead>,
) -> Result<(), StoreError> {
    let cache = &mut w.inherited;
    let tx = w.conn.transaction()?;
    for (i, entry) in batch.iter().enumerate() {
        let serialised;
        let record = if let Some(line) = lines.get(i).copied().flatten() {
            line.trim_end_matches(['\n', '\r'])
        } else {
            serialised = serde_json::to_string(entry)?;
            serialised.as_str()
        };
        let mut row = map::row(entry);
        inherit(&tx, cache, entry, &mut row)?;
        let Some(id) = insert_event(&tx, &row, record)? else {
            continue; // already indexed
        };
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO recipients (event, ts_ms, rcpt, rdomain) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for rcpt in &row.recipients {
                st.execute(params![id, row.ts_ms, rcpt, map::rdomain_of_address(rcpt)])?;
            }
        }
        if let Some(p) = &row.posture {
            add_posture(&tx, p, row.ts_ms)?;
        }
    }
    // No fingerprint given: keep the one of the same file, forget another's.
    tx.prepare_cached(
        "INSERT INTO checkpoint (id, file_id, offset, head_len, head_crc) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET
            head_len = CASE WHEN excluded.head_len IS NOT NULL THEN excluded.head_len
                            WHEN checkpoint.file_id = excluded.file_id THEN checkpoint.head_len END,
            head_crc = CASE WHEN excluded.head_len IS NOT NULL THEN excluded.head_crc
                            WHEN checkpoint.file_id = excluded.file_id THEN checkpoint.head_crc END,
            file_id = excluded.file_id,
            offset = excluded.offset",
    )?
    .execute(params![
        // The same 64 bits: SQLite integers are signed.
        i64::from_ne_bytes(checkpoint.file_id.to_ne_bytes()),
        i64::try_from(checkpoint.offset).unwrap_or(i64::MAX),
        head.map(|h| i64::from(h.len)),
        head.map(|h| i64::from(h.crc32)),
    ])?;
    tx.commit()?;
    Ok(())
}

/// `received` and `queued` record the message's Message-ID, sender and
/// subject; later events of the same queue id inherit them.
fn inherit(
    tx: &Transaction<'_>,
    cache: &mut InheritCache,
    entry: &LogEntry,
    row: &mut Row,
) -> Result<(), StoreError> {
    let LogEntry::Mail(_) = entry else {
        return Ok(());
    };
    let Some(queue_id) = row.queue_id.as_deref() else {
        return Ok(());
    };
    // The upsert keeps the first value of each field: when the cached row
    // already has every field this event brings, it would change nothing
    // (`queued` right after `received`).
    let adds = |have: &Option<String>, new: &Option<String>| have.is_none() && new.is_some();
    let changes = cache.get(queue_id).is_none_or(|m| {
        adds(&m.message_id, &row.message_id)
            || adds(&m.sender, &row.sender)
            || adds(&m.subject, &row.subject)
    });
    if matches!(row.event, "received" | "queued") && changes {
        // The row as it is after the upsert (the first value of each field wins).
        let stored = tx
            .prepare_cached(
                "INSERT INTO messages (queue_id, ts_ms, message_id, sender, subject)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(queue_id) DO UPDATE SET
                    message_id = coalesce(messages.message_id, excluded.message_id),
                    sender = coalesce(messages.sender, excluded.sender),
                    subject = coalesce(messages.subject, excluded.subject)
                 RETURNING message_id, sender, subject",
            )?
            .query_row(
                params![queue_id, row.ts_ms, row.message_id, row.sender, row.subject],
                |r| {
                    Ok(Inherited {
                        message_id: r.get(0)?,
                        sender: r.get(1)?,
                        subject: r.get(2)?,
                    })
                },
            )?;
        cache.put(queue_id, stored);
    }
    if row.message_id.is_none() || row.sender.is_none() {
        let found = if let Some(m) = cache.get(queue_id) {
            Some(m.clone())
        } else {
            let mut st = tx.prepare_cached(
                "SELECT message_id, sender, subject FROM messages WHERE queue_id = ?1",
            )?;
            let mut rows = st.query(params![queue_id])?;
            let found = match rows.next()? {
                Some(r) => Some(Inherited {
                    message_id: r.get(0)?,
                    sender: r.get(1)?,
                    subject: r.get(2)?,
                }),
                None => None,
            };
            if let Some(m) = &found {
                cache.put(queue_id, m.clone());
            }
            found
        };
        if let Some(m) = found {
            if row.message_id.is_none() {
                row.message_id = m.message_id;
            }
            if row.sender.is_none() {
                row.sender = m.sender;
            }
            if row.subject.is_none() {
                row.subject = m.subject;
            }
        }
    }
    Ok(())
}

/// Inserts the row; `None` when its event id is already there.
fn insert_event(tx: &Transaction<'_>, row: &Row, record: &str) -> Result<Option<i64>, StoreError> {
    let client_ipk = row
        .client_ip
        .as_deref()
        .and_then(map::ip_of)
        .map(|ip| map::ip_key(ip).to_vec());
    let server_ipk = row
        .server_ip
        .as_deref()
        .and_then(map::ip_of)
        .map(|ip| map::ip_key(ip).to_vec());
    let sender_rdomain = row.sender.as_deref().map(map::rdomain_of_address);
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (ts_ms, ts, event, kind, event_id, queue_id, session,
                message_id, sender, sender_rdomain, subject, client_ip, client_ipk, client_name,
                server_ip, server_ipk, server_name, listener, size, status, reply, tls_version,
                tls_cipher, cause, rule, sender_group, policy, related_queue_id, detail, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
        )?
        .execute(params![
            row.ts_ms,
            row.ts,
            row.event,
            row.kind,
            row.event_id,
            row.queue_id,
            row.session,
            row.message_id,
            row.sender,
            sender_rdomain,
            row.subject,
            row.client_ip,
            client_ipk,
            row.client_name,
            row.server_ip,
            server_ipk,
            row.server_name,
            row.listener,
            row.size.and_then(|s| i64::try_from(s).ok()),
            row.status,
            row.reply,
            row.tls_version,
            row.tls_cipher,
            row.cause,
            row.rule,
            row.sender_group,
            row.policy,
            row.related_queue_id,
            row.detail,
            record,
        ])?;
    Ok((n == 1).then(|| tx.last_insert_rowid()))
}

fn add_posture(tx: &Transaction<'_>, p: &PostureDelta, ts_ms: i64) -> Result<(), StoreError> {
    let Some(direction) = p.direction else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO posture (direction, peer, ip, day, tls_version, cipher, messages,
            starttls_offered, starttls_missing, verified, unverified, dane, mta_sts, pkix,
            plaintext_retries, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(direction, peer, ip, day, tls_version, cipher) DO UPDATE SET
            messages = messages + 1,
            starttls_offered = starttls_offered + excluded.starttls_offered,
            starttls_missing = starttls_missing + excluded.starttls_missing,
            verified = verified + excluded.verified,
            unverified = unverified + excluded.unverified,
            dane = dane + excluded.dane,
            mta_sts = mta_sts + excluded.mta_sts,
            pkix = pkix + excluded.pkix,
            plaintext_retries = plaintext_retries + excluded.plaintext_retries,
            last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
    )?
    .execute(params![
        direction.as_str(),
        p.peer,
        p.ip,
        ts_ms.div_euclid(MS_PER_DAY),
        p.tls_version,
        p.cipher,
        i64::from(p.starttls_offered),
        i64::from(p.starttls_missing),
        i64::from(p.verified),
        i64::from(p.unverified),
        i64::from(p.method == "dane"),
        i64::from(p.method == "mta-sts"),
        i64::from(p.method == "pkix"),
        i64::from(p.plaintext_retry),
        ts_ms,
    ])?;
    Ok(())
}

/// Deletes events (with their recipients) older than `before`, then the
/// posture days and message rows before it; one short transaction per
/// [`PRUNE_CHUNK`] events so a running indexer is never held up long.
pub(super) fn prune(store: &SqliteStore, before: time::OffsetDateTime) -> Result<u64, StoreError> {
    let cutoff = map::ms(before);
    let mut total = 0u64;
    loop {
        let n = store.write(|w| {
            let tx = w.conn.transaction()?;
            let ids: Vec<i64> = {
                let mut st = tx.prepare_cached(
                    "SELECT id FROM events WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2",
                )?;
                st.query_map(
                    params![cutoff, i64::try_from(PRUNE_CHUNK).unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?
            };
            {
                let mut del_r = tx.prepare_cached("DELETE FROM recipients WHERE event = ?1")?;
                let mut del_e = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
                for id in &ids {
                    del_r.execute(params![id])?;
                    del_e.execute(params![id])?;
                }
            }
            tx.commit()?;
            Ok(ids.len())
        })?;
        total += n as u64;
        if n < PRUNE_CHUNK {
            break;
        }
    }
    store.write(|w| {
        // Whole days only: the aggregate has no finer grain.
        w.conn.execute(
            "DELETE FROM posture WHERE day < ?1",
            params![cutoff.div_euclid(MS_PER_DAY)],
        )?;
        Ok(())
    })?;
    loop {
        let n = store.write(|w| {
            // Deleted rows must not be inherited from memory either.
            w.inherited.clear();
            Ok(w.conn.execute(
                "DELETE FROM messages WHERE queue_id IN
                    (SELECT queue_id FROM messages WHERE ts_ms < ?1 LIMIT ?2)",
                params![cutoff, i64::try_from(PRUNE_CHUNK).unwrap_or(i64::MAX)],
            )?)
        })?;
        if n < PRUNE_CHUNK {
            break;
        }
    }
    Ok(total)
}

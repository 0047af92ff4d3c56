//! The SQLite schema (documented for `sqlite3` users in docs/tracking.md).
//!
//! Versioned with `PRAGMA user_version`: a newer file is refused
//! ([`crate::StoreError::Schema`]), an empty one is created, an older one is
//! migrated in place ([`MIGRATIONS`], in one transaction).

/// The schema version this build writes.
pub const VERSION: i64 = 2;

/// What takes a database from version `n - 1` to `n`, for `n` = 1, 2, …
pub const MIGRATIONS: [&str; 2] = [V1, V2];

/// Version 2: the fingerprint of the checkpoint's file
/// ([`crate::FileHead`]), so the indexer finds it once compressed. NULL for
/// a checkpoint written by version 1 (it is filled at the next batch).
///
/// (Tried and left out: one `(domain, address, time)` index per address
/// kind instead of two saves one B-tree insert per event, ≈ 5 % of the
/// indexer's instructions, but a search by domain then sorts all of the
/// domain's events — 0.6 → 11 ms for 50 000 of them, and a gateway's own
/// domain is in every event.)
pub const V2: &str = r"
ALTER TABLE checkpoint ADD COLUMN head_len INTEGER;
ALTER TABLE checkpoint ADD COLUMN head_crc INTEGER;
";

/// Version 1.
pub const V1: &str = r"
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,            -- Unix time, milliseconds
    ts TEXT NOT NULL,                  -- RFC 3339, as logged
    event TEXT NOT NULL,               -- stable event name
    kind TEXT NOT NULL,                -- 'mail' or 'session'
    event_id TEXT NOT NULL UNIQUE,     -- re-indexing a line is a no-op
    queue_id TEXT,
    session TEXT,
    message_id TEXT,                   -- without angle brackets
    sender TEXT,                       -- lowercased; '' = null sender
    sender_rdomain TEXT,               -- domain, labels reversed: 'com.example'
    subject TEXT,
    client_ip TEXT,
    client_ipk BLOB,                   -- 16 bytes (IPv4 mapped), for CIDR ranges
    client_name TEXT,
    server_ip TEXT,
    server_ipk BLOB,
    server_name TEXT,
    listener TEXT,
    size INTEGER,
    status TEXT,                       -- RFC 3463
    reply TEXT,
    tls_version TEXT,                  -- 'none' = plaintext; NULL = not applicable
    tls_cipher TEXT,
    cause TEXT,                        -- cause id of a failure
    rule TEXT,                         -- session events: the rule
    sender_group TEXT,
    policy TEXT,                       -- mail-flow policy (inbound) / TLS policy (attempts)
    related_queue_id TEXT,             -- dsn_sent: the DSN's queue id
    detail TEXT NOT NULL DEFAULT '',
    record TEXT NOT NULL               -- the JSON record
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms);
CREATE INDEX IF NOT EXISTS events_event_ts ON events(event, ts_ms);
CREATE INDEX IF NOT EXISTS events_queue ON events(queue_id) WHERE queue_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_message_id ON events(message_id, ts_ms) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_sender ON events(sender, ts_ms);
CREATE INDEX IF NOT EXISTS events_sender_rdomain ON events(sender_rdomain, ts_ms);
CREATE INDEX IF NOT EXISTS events_client_ip ON events(client_ipk, ts_ms) WHERE client_ipk IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_server_ip ON events(server_ipk, ts_ms) WHERE server_ipk IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_related ON events(related_queue_id) WHERE related_queue_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS recipients (
    event INTEGER NOT NULL,            -- events.id
    ts_ms INTEGER NOT NULL,            -- copy of events.ts_ms (range scans without a join)
    rcpt TEXT NOT NULL,                -- lowercased address
    rdomain TEXT NOT NULL,             -- its domain, labels reversed
    PRIMARY KEY (event, rcpt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipients_rcpt ON recipients(rcpt, ts_ms);
CREATE INDEX IF NOT EXISTS recipients_rdomain ON recipients(rdomain, ts_ms);

-- One row per message: what later events of the same queue id inherit
-- (Message-ID, sender, subject), so a search by sender finds deliveries too.
CREATE TABLE IF NOT EXISTS messages (
    queue_id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    message_id TEXT,
    sender TEXT,
    subject TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts_ms);

-- The TLS posture aggregate, maintained at index time: one row per
-- direction, peer, IP, day, TLS version and cipher.
CREATE TABLE IF NOT EXISTS posture (
    direction TEXT NOT NULL,           -- 'inbound' / 'outbound'
    peer TEXT NOT NULL,                -- destination domain / client name or HELO
    ip TEXT NOT NULL,
    day INTEGER NOT NULL,              -- days since 1970-01-01 (UTC)
    tls_version TEXT NOT NULL,         -- 'none' = plaintext
    cipher TEXT NOT NULL,              -- '' for plaintext
    messages INTEGER NOT NULL DEFAULT 0,
    starttls_offered INTEGER NOT NULL DEFAULT 0,
    starttls_missing INTEGER NOT NULL DEFAULT 0,
    verified INTEGER NOT NULL DEFAULT 0,
    unverified INTEGER NOT NULL DEFAULT 0,
    dane INTEGER NOT NULL DEFAULT 0,
    mta_sts INTEGER NOT NULL DEFAULT 0,
    pkix INTEGER NOT NULL DEFAULT 0,
    plaintext_retries INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (direction, peer, ip, day, tls_version, cipher)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS posture_day ON posture(day);

-- Where the indexer stopped in the mail log (one row).
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    file_id INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
";

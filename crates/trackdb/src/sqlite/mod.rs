//! [`SqliteStore`]: the tracking store in one SQLite file (WAL).
//!
//! One write connection (the indexer's batches, pruning) behind a mutex, and
//! a few read connections for searches, so a search never waits for a batch
//! being written (WAL readers see the last committed state).
//!
//! # Security
//! Every query is parameterised. The file is created 0600: it holds
//! addresses and remote replies.

mod index;
pub(crate) mod map;
mod posture;
mod query;
pub(crate) mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::entry::{Batch, LogEntry};
use crate::error::StoreError;
use crate::store::TrackStore;
use crate::types::{
    Checkpoint, EventRow, FileHead, MessageLife, PeerPosture, PostureQuery, SearchQuery, Summary,
};

/// How long a statement waits for a lock before failing (a reader from the
/// CLI against a live server, pruning against a batch).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write connection's page cache, in KiB (as `PRAGMA cache_size` takes it, negated).
const WRITER_CACHE_KIB: i64 = -65_536;

/// The page size of a new database: 16 KiB pages split less often than
/// SQLite's 4 KiB default when index entries arrive in random order
/// (measured: −10 % CPU per event; docs/benchmarks.md "Issue 12"). An
/// existing file keeps its page size.
const PAGE_SIZE: i64 = 16_384;

/// WAL bytes written before SQLite checkpoints them into the database.
const WAL_BYTES: i64 = 64 * 1024 * 1024;

/// The WAL file is truncated to this size after a checkpoint (bytes).
const WAL_SIZE_LIMIT: i64 = WAL_BYTES;

/// Read connections kept open for reuse.
const READERS_KEPT: usize = 4;

/// The write connection and what only the writer uses.
pub(super) struct Writer {
    pub conn: Connection,
    /// What later events of a message inherit, by queue id.
    pub inherited: index::InheritCache,
}

/// The SQLite tracking store.
pub struct SqliteStore {
    path: PathBuf,
    read_only: bool,
    writer: Option<Mutex<Writer>>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at
    /// `path`: WAL, `synchronous=NORMAL`, a busy timeout, the schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        create_private(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Before the first table (ignored once the file has any).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        // WAL: readers do not block the writer nor the writer readers;
        // NORMAL: a power loss may lose the last transactions, never
        // corrupt the file (and the mail log has them: they are re-indexed).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Index pages stay in memory across batches (negative = KiB).
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        // Checkpoint the WAL every 64 MiB instead of every 4 MiB: fewer
        // fsyncs and rewrites of hot index pages (measured: 15 000 → 22 000
        // events/s); the file is trimmed back to that size after each.
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BYTES / page.max(512))?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > schema::VERSION {
            return Err(StoreError::Schema {
                found: version,
                supported: schema::VERSION,
            });
        }
        if version < schema::VERSION {
            migrate(&conn, version)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            read_only: false,
            writer: Some(Mutex::new(Writer {
                conn,
                inherited: index::InheritCache::default(),
            })),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Opens an existing database for reading only (the CLI next to a
    /// running server). Indexing and pruning fail.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} does not exist: is [tracking] enabled, and has the server run since?",
                    path.display()
                ),
            )));
        }
        let store = Self {
            path: path.to_path_buf(),
            read_only: true,
            writer: None,
            readers: Mutex::new(Vec::new()),
        };
        let conn = store.new_reader()?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > schema::VERSION {
            return Err(StoreError::Schema {
                found: version,
                supported: schema::VERSION,
            });
        }
        store.put_reader(conn);
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn new_reader(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Sorts and GROUP BYs hold small tuples (ids, times); keep them off
        // the disk, which may be the one that is full.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(conn)
    }

    fn put_reader(&self, conn: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < READERS_KEPT {
            readers.push(conn);
        }
    }

    /// Runs `f` on a read connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.new_reader()?,
        };
        let out = f(&conn);
        self.put_reader(conn);
        out
    }

    /// Runs `f` on the write connection.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(writer) = &self.writer else {
            return Err(StoreError::Query(
                "the tracking database is open read-only".into(),
            ));
        };
        let mut conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }
}

/// Takes the database from `version` to [`schema::VERSION`] in one
/// transaction (a crash leaves the old version, migrated again next time).
fn migrate(conn: &Connection, version: i64) -> Result<(), StoreError> {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for (n, step) in (1..).zip(schema::MIGRATIONS) {
        if n > version {
            sql.push_str(step);
        }
    }
    sql.push_str("PRAGMA user_version = ");
    sql.push_str(&schema::VERSION.to_string());
    sql.push_str(";\nCOMMIT;");
    if let Err(e) = conn.execute_batch(&sql) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(())
}

/// Creates `path` 0600 when it does not exist (SQLite would use the umask).
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl TrackStore for SqliteStore {
    fn index(&self, batch: &[LogEntry], checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.write(|w| index::index(w, batch, &[], checkpoint, None))
    }

    fn index_batch(
        &self,
        batch: &Batch<'_>,
        checkpoint: &Checkpoint,
        head: Option<&FileHead>,
    ) -> Result<(), StoreError> {
        self.write(|w| index::index(w, &batch.entries, &batch.lines, checkpoint, head))
    }

    fn checkpoint_head(&self) -> Result<Option<FileHead>, StoreError> {
        self.read(|conn| {
            let head: Option<(Option<i64>, Option<i64>)> = conn
                .query_row(
                    "SELECT head_len, head_crc FROM checkpoint WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match head {
                Some((Some(len), Some(crc))) => Some(FileHead {
                    len: u32::try_from(len).unwrap_or(0),
                    crc32: u32::try_from(crc).unwrap_or(0),
                })
                .filter(|h| h.len > 0),
                _ => None,
            })
        })
    }

    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT file_id, offset FROM checkpoint WHERE id = 1",
                    [],
                    |r| {
                        Ok(Checkpoint {
                            // Stored as the same 64 bits (SQLite integers are signed).
                            file_id: u64::from_ne_bytes(r.get::<_, i64>(0)?.to_ne_bytes()),
                            offset: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        })
                    },
                )
                .optional()?)
        })
    }

    fn search(&self, q: &SearchQuery) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| query::search(conn, q))
    }

    fn message(&self, key: &str) -> Result<Option<MessageLife>, StoreError> {
        self.read(|conn| query::message(conn, key))
    }

    fn posture(&self, q: &PostureQuery) -> Result<Vec<PeerPosture>, StoreError> {
        self.read(|conn| posture::posture(conn, q))
    }

    fn summary(&self, since: time::OffsetDateTime) -> Result<Summary, StoreError> {
        self.read(|conn| posture::summary(conn, since))
    }

    fn prune(&self, before: time::OffsetDateTime) -> Result<u64, StoreError> {
        index::prune(self, before)
    }
}

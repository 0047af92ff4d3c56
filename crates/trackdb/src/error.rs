//! Errors of the tracking store.
//!
//! | variant | cause | what to do |
//! | --- | --- | --- |
//! | `Sqlite` | the database refused (disk full, locked past the busy timeout, corrupt file) | check the disk and the file; `sqlite3 tracking.db 'PRAGMA integrity_check'` |
//! | `Io` | the mail log or the database directory could not be read or created | check the path and permissions |
//! | `Schema` | the database was written by a newer Postern (`PRAGMA user_version`) | upgrade, or point `[tracking] database` at a new file |
//! | `Json` | a stored record no longer parses (a damaged row) | re-index: delete the database, it is rebuilt from the mail log |
//! | `Query` | a search filter is malformed (a bad CIDR, a bad time) | fix the filter; the message says what is allowed |
//! | `Thread` | the indexer thread could not be started or panicked | see the log; restart the server |

/// What went wrong in the tracking store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("tracking database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Reading the mail log or creating the database failed.
    #[error("tracking: {0}")]
    Io(#[from] std::io::Error),
    /// The database schema is newer than this program.
    #[error(
        "tracking database schema version {found} is newer than this Postern's ({supported}); upgrade or use a new database file"
    )]
    Schema {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },
    /// A stored record does not parse.
    #[error("tracking database: damaged record: {0}")]
    Json(#[from] serde_json::Error),
    /// A malformed search filter.
    #[error("tracking search: {0}")]
    Query(String),
    /// The indexer thread failed.
    #[error("tracking indexer: {0}")]
    Thread(String),
}

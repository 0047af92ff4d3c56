//! The store trait: what the indexer writes to and the CLI, API and web
//! console read from. SQLite implements it ([`crate::SqliteStore`]); a shared
//! store for several nodes (PostgreSQL) can implement the same trait.

use crate::entry::{Batch, LogEntry};
use crate::error::StoreError;
use crate::types::{
    Checkpoint, EventRow, FileHead, MessageLife, PeerPosture, PostureQuery, SearchQuery, Summary,
};

/// The tracking store. Synchronous: async callers use `spawn_blocking`.
pub trait TrackStore: Send + Sync + 'static {
    /// Indexes a batch in one transaction together with the checkpoint
    /// (crash-safe: a batch is either indexed with its checkpoint or not at
    /// all; re-indexing an event already stored is a no-op, by event id).
    fn index(&self, batch: &[LogEntry], checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// Where the indexer stopped reading the mail log; `None` before the first batch.
    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// What the indexer calls: as [`TrackStore::index`], with each line as
    /// logged (stored as the JSON record instead of serialising the entry
    /// again), and records in the same transaction the fingerprint of the
    /// checkpoint's file (how the indexer finds it again once logrotate has
    /// renamed and compressed it). `None` keeps the fingerprint stored for
    /// the same `file_id`, and forgets it for another. The default ignores
    /// the lines and the fingerprint (a store that cannot keep it still
    /// follows uncompressed rotation, by file id).
    fn index_batch(
        &self,
        batch: &Batch<'_>,
        checkpoint: &Checkpoint,
        head: Option<&FileHead>,
    ) -> Result<(), StoreError> {
        let _ = head;
        self.index(&batch.entries, checkpoint)
    }
    /// The fingerprint stored with the checkpoint (`None`: none yet, or a
    /// store that does not keep it).
    fn checkpoint_head(&self) -> Result<Option<FileHead>, StoreError> {
        Ok(None)
    }
    /// Events matching every filter, newest first.
    fn search(&self, q: &SearchQuery) -> Result<Vec<EventRow>, StoreError>;
    /// A queue id, or a Message-ID (with or without angle brackets).
    fn message(&self, key: &str) -> Result<Option<MessageLife>, StoreError>;
    /// The TLS posture of every peer since `q.since`, most at risk first.
    fn posture(&self, q: &PostureQuery) -> Result<Vec<PeerPosture>, StoreError>;
    /// Dashboard figures since `since`.
    fn summary(&self, since: time::OffsetDateTime) -> Result<Summary, StoreError>;
    /// Deletes events older than `before`; returns how many.
    fn prune(&self, before: time::OffsetDateTime) -> Result<u64, StoreError>;
}

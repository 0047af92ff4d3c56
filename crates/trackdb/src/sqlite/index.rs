//! Writing batches (with the checkpoint, in one transaction) and pruning.
#![allow(clippy::unnecessary_wraps)] // stubs until the queries land

use rusqlite::Connection;

use super::SqliteStore;
use crate::entry::LogEntry;
use crate::error::StoreError;
use crate::types::Checkpoint;

pub(super) fn index(
    conn: &mut Connection,
    batch: &[LogEntry],
    checkpoint: &Checkpoint,
) -> Result<(), StoreError> {
    let _ = (conn, batch, checkpoint);
    Ok(())
}

pub(super) fn prune(store: &SqliteStore, before: time::OffsetDateTime) -> Result<u64, StoreError> {
    let _ = (store, before);
    Ok(0)
}

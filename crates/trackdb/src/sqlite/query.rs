//! Searches and the life of one message.
#![allow(clippy::unnecessary_wraps)] // stubs until the queries land

use rusqlite::Connection;

use crate::error::StoreError;
use crate::types::{EventRow, MessageLife, SearchQuery};

pub(super) fn search(conn: &Connection, q: &SearchQuery) -> Result<Vec<EventRow>, StoreError> {
    let _ = (conn, q);
    Ok(Vec::new())
}

pub(super) fn message(conn: &Connection, key: &str) -> Result<Option<MessageLife>, StoreError> {
    let _ = (conn, key);
    Ok(None)
}

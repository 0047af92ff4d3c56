//! The TLS posture inventory and the dashboard summary.
#![allow(clippy::unnecessary_wraps)] // stubs until the queries land

use rusqlite::Connection;

use crate::error::StoreError;
use crate::types::{PeerPosture, PostureQuery, Summary};

pub(super) fn posture(conn: &Connection, q: &PostureQuery) -> Result<Vec<PeerPosture>, StoreError> {
    let _ = (conn, q);
    Ok(Vec::new())
}

pub(super) fn summary(
    conn: &Connection,
    since: time::OffsetDateTime,
) -> Result<Summary, StoreError> {
    let _ = (conn, since);
    Ok(Summary::default())
}

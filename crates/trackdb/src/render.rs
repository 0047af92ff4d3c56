//! Text, CSV and timeline rendering for the CLI (`postern track …`,
//! `postern tls posture`). JSON is the serde form of the types.

use crate::types::{EventRow, Evidence, MessageLife, PeerPosture};

/// One line per event.
pub fn search_text(rows: &[EventRow]) -> String {
    let _ = rows;
    String::new()
}

/// RFC 4180 CSV with a header line.
pub fn search_csv(rows: &[EventRow]) -> String {
    let _ = rows;
    String::new()
}

/// The whole life of a message on one screen.
pub fn life_text(life: &MessageLife) -> String {
    let _ = life;
    String::new()
}

/// The transport-security evidence.
pub fn evidence_text(ev: &Evidence) -> String {
    let _ = ev;
    String::new()
}

/// The posture table.
pub fn posture_text(peers: &[PeerPosture]) -> String {
    let _ = peers;
    String::new()
}

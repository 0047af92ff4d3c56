//! Fuzzes the spool's message-file validator: recovery runs it on every file in
//! `msg/` at startup, so a damaged or hostile file must be rejected with a
//! reason, never panic, never allocate by a length field it has not checked
//! against the file size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_spool::QueueId;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = QueueId::parse("CR70ET4K7BHWA2HRWT") else {
        return;
    };
    let _ = postern_spool::validate_message_bytes(data, &id);
});

//! Property tests: whatever bytes a milter sends, the codec answers with a
//! packet or an error, never a panic, and a header value it returns can
//! only fold, never start a new field.

#![allow(clippy::unwrap_used)]

use postern_milter::codec::{FrameReader, Response};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_packet_parses_or_errors(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Response::parse(&bytes);
    }

    #[test]
    fn every_reply_code_with_any_data(code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut packet = vec![code];
        packet.extend_from_slice(&data);
        if let Ok(Response::AddHeader { value, .. } | Response::InsertHeader { value, .. } | Response::ChangeHeader { value, .. }) = Response::parse(&packet) {
            // A header value can only fold: every line break is CRLF + WSP.
            for (i, line) in value.split("\r\n").enumerate() {
                prop_assert!(!line.contains(['\r', '\n']));
                prop_assert!(i == 0 || line.starts_with([' ', '\t']));
            }
        }
    }

    #[test]
    fn frame_reader_on_any_stream(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..32)) {
        let mut reader = FrameReader::new();
        for chunk in chunks {
            reader.push(&chunk);
            while let Ok(Some(_)) = reader.next_response() {}
        }
    }
}

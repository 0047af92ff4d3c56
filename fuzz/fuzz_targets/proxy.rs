//! Fuzzes the PROXY protocol header parser (`postern_proto::proxy::parse`).
//!
//! Checks: nothing panics; `consumed` never exceeds the input nor the caps
//! (107 octets for v1, 16 + `V2_MAX_PAYLOAD` for v2); feeding the same octets
//! in arbitrary chunks gives `Incomplete` until the whole-input answer (the
//! parser is incremental: a prefix never yields a different header or an error
//! the whole input would not give); the octets after `consumed` are never
//! looked at (appending garbage changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_proto::proxy::{self, ProxyHeader, V1_MAX, V2_FIXED, V2_MAX_PAYLOAD};

fn consumed(h: &ProxyHeader) -> Option<usize> {
    match *h {
        ProxyHeader::Incomplete => None,
        ProxyHeader::Done { consumed, .. }
        | ProxyHeader::Local { consumed }
        | ProxyHeader::Unknown { consumed } => Some(consumed),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&plan, input)) = data.split_first() else {
        return;
    };
    let whole = proxy::parse(input);
    if let Ok(h) = &whole {
        if let Some(n) = consumed(h) {
            assert!(n <= input.len());
            assert!(n <= V1_MAX.max(V2_FIXED + V2_MAX_PAYLOAD));
            // What follows the header is never read.
            let mut more = input[..n].to_vec();
            more.extend_from_slice(b"\xffgarbage");
            assert_eq!(proxy::parse(&more), whole);
            assert_eq!(proxy::parse(&input[..n]), whole);
        }
    }

    // Chunked: the first non-Incomplete answer is final and is the whole
    // input's answer when it is a header (an error may come earlier).
    let mut step = u32::from(plan);
    let mut end = 0;
    while end < input.len() {
        step = step.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        end = (end + (step >> 16) as usize % 16 + 1).min(input.len());
        match proxy::parse(&input[..end]) {
            Ok(ProxyHeader::Incomplete) => {}
            Ok(h) => {
                assert_eq!(Ok(h), whole, "a prefix gave a header the whole input did not");
                break;
            }
            Err(e) => {
                assert_eq!(Err(e), whole, "a prefix failed differently from the whole input");
                break;
            }
        }
    }
});

//! Fuzzes the DATA decoder and the BDAT checker.
//!
//! Checks: nothing panics; `consumed <= input.len()`; `NeedMore` consumes all it
//! was given; the output never holds a bare LF, a bare CR or a NUL; the result
//! (consumed, status, output, error) does not depend on how the input is
//! chunked and equals a reference model written differently (search for the
//! first `CRLF "." CRLF`, then un-stuff line by line); the BDAT checker's error
//! does not depend on chunking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_proto::{BdatChecker, DataDecoder, DataError, DataStatus, Limits};

type Outcome = (usize, DataStatus, Vec<u8>, Option<DataError>);

/// Decodes `input` in chunks whose sizes come from `seed` (0 = one chunk).
fn decode(limits: &Limits, input: &[u8], seed: u32) -> Outcome {
    let mut decoder = DataDecoder::new(limits);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut status = DataStatus::NeedMore;
    let mut rest = input;
    let mut step = seed;
    while !rest.is_empty() && status == DataStatus::NeedMore {
        let take = if seed == 0 {
            rest.len()
        } else {
            step = step.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((step >> 16) as usize % 8 + 1).min(rest.len())
        };
        let (n, s) = decoder.decode(&rest[..take], &mut out);
        assert!(n <= take, "consumed {n} of {take}");
        if s == DataStatus::NeedMore {
            assert_eq!(n, take, "NeedMore must consume the whole chunk");
        }
        consumed += n;
        status = s;
        rest = &rest[take..];
    }
    assert_eq!(decoder.message_len(), out.len() as u64);
    (consumed, status, out, decoder.error())
}

/// The reference model (the same one as the unit proptest in `data.rs`).
fn reference(max_text_line: usize, input: &[u8]) -> Outcome {
    let mut stream = b"\r\n".to_vec();
    stream.extend_from_slice(input);
    let (body, consumed, status) = match stream.windows(5).position(|w| w == b"\r\n.\r\n") {
        Some(p) => (&input[..p], p + 3, DataStatus::Done),
        None => (
            input.strip_suffix(b"\r").unwrap_or(input),
            input.len(),
            DataStatus::NeedMore,
        ),
    };
    let max_content = max_text_line.saturating_sub(2);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut rest = body;
    loop {
        let (line, crlf, next) = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(p) => (&rest[..p], true, &rest[p + 2..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        let content = line.strip_prefix(b".").unwrap_or(line);
        for (n, &b) in content.iter().enumerate() {
            match b {
                b'\r' => errors.push(DataError::BareCr),
                b'\n' => errors.push(DataError::BareLf),
                0 => errors.push(DataError::Nul),
                _ => out.push(b),
            }
            if n + 1 > max_content {
                errors.push(DataError::LineTooLong {
                    limit: max_text_line,
                });
            }
        }
        if !crlf {
            break;
        }
        out.extend_from_slice(b"\r\n");
        rest = next;
    }
    (consumed, status, out, errors.first().copied())
}

fn bdat(limits: &Limits, input: &[u8], seed: u32) -> Option<DataError> {
    let mut checker = BdatChecker::new(limits);
    let mut rest = input;
    let mut step = seed;
    while !rest.is_empty() {
        step = step.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let take = ((step >> 16) as usize % 8 + 1).min(rest.len());
        checker.check(&rest[..take]);
        rest = &rest[take..];
    }
    checker.finish();
    checker.error()
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, seed], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Small line limits make the length check reachable.
    let limits = Limits {
        max_text_line: usize::from(limit % 64) + 3,
        ..Limits::default()
    };
    let whole = decode(&limits, input, 0);
    let (consumed, status, out, _) = &whole;
    assert!(*consumed <= input.len());
    if *status == DataStatus::Done {
        assert!(input[..*consumed].ends_with(b".\r\n"));
    }
    for (i, &b) in out.iter().enumerate() {
        assert_ne!(b, 0, "NUL in output");
        if b == b'\n' {
            assert!(i > 0 && out[i - 1] == b'\r', "bare LF in output at {i}");
        }
        if b == b'\r' {
            assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR in output at {i}");
        }
    }
    assert_eq!(
        whole,
        reference(limits.max_text_line, input),
        "decoder differs from the reference model"
    );
    let chunked = decode(&limits, input, u32::from(seed) + 1);
    assert_eq!(whole, chunked, "decoding depends on chunking");

    assert_eq!(
        bdat(&limits, input, 1),
        bdat(&limits, input, u32::from(seed) + 2)
    );
});

//! Fuzzes the command channel: `LineReader` over arbitrary chunking, then
//! `parse_command` on every line (and on the raw input).
//!
//! Checks: nothing panics; the reader never asks the caller to hold `max_line`
//! bytes or more and never consumes more than it was given; every reply is
//! exactly as many wire lines as it has text lines; a parsed mailbox prints
//! (canonical `Display`) to a path that parses back to the same mailbox.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_proto::{
    Command, ForwardPath, Limits, Line, LineReader, Reply, ReversePath, parse_command,
};

fn check_reply(reply: &Reply) {
    let wire = reply.to_bytes();
    let lines = reply.lines.len().max(1);
    assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), lines);
    assert_eq!(wire.iter().filter(|&&b| b == b'\r').count(), lines);
}

fn check_line(line: &[u8], limits: &Limits) {
    match parse_command(line, limits) {
        Ok(Command::Mail(mail)) => {
            if let ReversePath::Mailbox(mailbox) = &mail.reverse_path {
                let again = format!("MAIL FROM:<{mailbox}> SMTPUTF8");
                let roomy = Limits {
                    max_command_line: 4096,
                    ..limits.clone()
                };
                match parse_command(again.as_bytes(), &roomy) {
                    Ok(Command::Mail(m)) => {
                        assert_eq!(m.reverse_path, mail.reverse_path, "{again}")
                    }
                    other => panic!("canonical form {again:?} did not reparse: {other:?}"),
                }
            }
        }
        Ok(Command::Rcpt(rcpt)) => {
            if let ForwardPath::Mailbox(mailbox) = &rcpt.forward_path {
                let again = format!("RCPT TO:<{mailbox}>");
                let roomy = Limits {
                    max_command_line: 4096,
                    ..limits.clone()
                };
                match parse_command(again.as_bytes(), &roomy) {
                    Ok(Command::Rcpt(r)) => {
                        assert_eq!(r.forward_path, rcpt.forward_path, "{again}")
                    }
                    other => panic!("canonical form {again:?} did not reparse: {other:?}"),
                }
            }
        }
        Ok(_) => {}
        Err(e) => check_reply(&e.to_reply()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&plan, input)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    check_line(input, &limits);

    // Feed the input in chunks of 1..=16 bytes, chosen by `plan`.
    let mut reader = LineReader::new(limits.max_command_line);
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = input;
    let mut step = u32::from(plan);
    while !rest.is_empty() {
        step = step.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let take = ((step >> 16) as usize % 16 + 1).min(rest.len());
        buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        loop {
            let len = buf.len();
            let (line, consumed) = reader.next_line(&buf);
            assert!(consumed <= len);
            let done = line.is_none();
            if let Some(Line::Complete(l)) = line {
                assert!(l.len() + 2 <= limits.max_command_line);
                assert!(!l.contains(&b'\n'));
                let l = l.to_vec();
                check_line(&l, &limits);
            }
            buf.drain(..consumed);
            if done {
                break;
            }
        }
        assert!(
            buf.len() < limits.max_command_line,
            "reader let the buffer grow to {}",
            buf.len()
        );
    }
});

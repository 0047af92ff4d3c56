//! Fuzzes whole SMTP sessions: arbitrary bytes through `LineReader` into the
//! sans-I/O `session::Session`, with every action answered by choices taken
//! from the input too (policy verdicts, AUTH results, body outcomes, commit
//! results, STARTTLS).
//!
//! Checks: nothing panics; an action that needs an answer is always the last
//! one queued; nothing comes out after `Close`; every reply is well formed; a
//! transaction never holds more than `max_recipients`; `250 … queued as` only
//! follows a `Commit`; the counters never claim more successes than commands.
//! The line rules (issue 8 §1): a bare LF gets exactly one `500 5.5.2` and
//! the session closes; a command line over `max_command_line` (but AUTH's) gets
//! `500 5.5.2 Line too long`; a refused SASL response ends the AUTH exchange;
//! `421` is always the last reply and closes; the session closes at the
//! `max_auth_failures`-th `535` and never answers more.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use postern_proto::session::{
    Action, AuthMode, AuthOutcome, BodyOutcome, Event, Session, SessionConfig, TlsInfo, TlsMode,
    Verdict, VrfyMode,
};
use postern_proto::{DataError, EnhancedCode, Limits, Line, LineReader, Reply};

/// Choices for the answers, taken from the end of the input.
struct Dice<'a>(&'a [u8], usize);

impl Dice<'_> {
    fn roll(&mut self, n: u8) -> u8 {
        if self.0.is_empty() {
            return 0;
        }
        self.1 = self.1.wrapping_add(1);
        self.0[self.1 % self.0.len()] % n
    }
}

fn check_reply(reply: &Reply) {
    let wire = reply.to_bytes();
    let lines = reply.lines.len().max(1);
    assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), lines);
    assert!((200..600).contains(&reply.code));
}

fn config(dice: &mut Dice<'_>) -> SessionConfig {
    SessionConfig {
        hostname: "mx.fuzz".into(),
        limits: Limits::default(),
        max_message_size: 65_536,
        max_recipients: 5,
        max_errors: 1 + usize::from(dice.roll(20)),
        max_auth_failures: 1 + usize::from(dice.roll(4)),
        tls: [TlsMode::Off, TlsMode::Optional, TlsMode::Required][usize::from(dice.roll(3))],
        tls_available: dice.roll(2) == 0,
        auth: [AuthMode::Off, AuthMode::Offered, AuthMode::Required][usize::from(dice.roll(3))],
        auth_in_clear: dice.roll(2) == 0,
        vrfy: if dice.roll(2) == 0 {
            VrfyMode::Ambiguous
        } else {
            VrfyMode::Disabled
        },
    }
}

/// Runs every queued action; answers the ones that need it; returns the
/// replies. `aborted`: the STARTTLS handshake failed (the driver ends the
/// session there, so nothing more is fed).
fn run(
    s: &mut Session,
    dice: &mut Dice<'_>,
    committed: &mut bool,
    aborted: &mut bool,
) -> Vec<Reply> {
    let mut out = Vec::new();
    while let Some(action) = s.poll_action() {
        let needs_answer = !matches!(
            action,
            Action::Reply(_) | Action::Close | Action::DiscardBody
        );
        if needs_answer {
            assert_eq!(s.poll_action(), None, "an action after {action:?}");
        }
        if let Some(tx) = s.transaction() {
            assert!(tx.recipients.len() <= s.config().max_recipients);
        }
        match action {
            Action::Reply(r) => {
                check_reply(&r);
                if r.code == 250 && r.lines[0].contains("queued as") {
                    assert!(std::mem::take(committed), "queued without a commit");
                }
                out.push(r);
            }
            Action::Close => {
                assert!(s.is_closed());
                assert_eq!(s.poll_action(), None, "something after Close");
            }
            Action::Check(kind) => {
                assert_eq!(s.stage().map(|st| st.kind()), Some(kind));
                let reply = |code| Reply::new(code, Some(EnhancedCode::new(5, 7, 1)), "no");
                let v = match dice.roll(6) {
                    0 => Verdict::Refuse(reply(550)),
                    1 => Verdict::Refuse(reply(450)),
                    2 => Verdict::Disconnect(reply(421)),
                    _ => Verdict::Accept,
                };
                s.handle(Event::Verdict(v));
            }
            Action::Authenticate(_) => {
                let o = [
                    AuthOutcome::Success,
                    AuthOutcome::Invalid,
                    AuthOutcome::Unavailable,
                ][usize::from(dice.roll(3))];
                s.handle(Event::AuthResult(o));
            }
            Action::StartTls => {
                if dice.roll(4) == 0 {
                    *aborted = true;
                    return out; // handshake failed: the driver ends the session
                }
                s.handle(Event::TlsEstablished(TlsInfo {
                    version: "TLSv1.3".into(),
                    cipher: "TLS_AES_128_GCM_SHA256".into(),
                }));
            }
            Action::ReceiveData | Action::ReceiveChunk { .. } => {
                let store = !matches!(action, Action::ReceiveChunk { store: false, .. });
                let o = if !store {
                    BodyOutcome::Discarded
                } else {
                    match dice.roll(5) {
                        0 => BodyOutcome::Malformed(DataError::BareLf),
                        1 => BodyOutcome::TooBig,
                        2 => BodyOutcome::StorageFailed(Reply::new(451, None, "x")),
                        _ => BodyOutcome::Stored {
                            octets: u64::from(dice.roll(200)),
                        },
                    }
                };
                s.handle(Event::BodyEnd(o));
            }
            Action::DiscardBody => {}
            Action::Commit => {
                assert!(s.transaction().is_some());
                if dice.roll(4) == 0 {
                    s.handle(Event::Committed(Err(Reply::new(451, None, "x"))));
                } else {
                    *committed = true;
                    s.handle(Event::Committed(Ok("QID".into())));
                }
            }
        }
    }
    out
}

fn wire(r: &[Reply]) -> String {
    r.iter()
        .map(|r| String::from_utf8_lossy(&r.to_bytes()).into_owned())
        .collect()
}

/// What one step fed the machine.
#[derive(Clone, Copy)]
enum Fed {
    /// A command line; `too_long`: over `max_command_line` and not AUTH.
    Command {
        too_long: bool,
    },
    /// A line while an AUTH exchange waited for a response.
    SaslResponse,
    BareLineFeed,
    Other,
}

/// The issue 8 §1 rules, checked on the replies to one step.
fn check_line_rules(s: &Session, fed: Fed, got: &[Reply], auth_failures: &mut usize) {
    match fed {
        Fed::BareLineFeed => {
            assert_eq!(got.len(), 1, "bare LF: {}", wire(got));
            assert!(wire(got).starts_with("500 5.5.2 Bare"), "{}", wire(got));
            assert!(s.is_closed());
        }
        Fed::Command { too_long: true } => {
            assert!(
                wire(got).starts_with("500 5.5.2 Line too long"),
                "{}",
                wire(got)
            );
        }
        Fed::SaslResponse if got.iter().any(|r| r.code >= 400) => {
            assert!(
                !s.is_sasl_response_next(),
                "AUTH exchange goes on after {}",
                wire(got)
            );
        }
        Fed::Command { .. } | Fed::SaslResponse | Fed::Other => {}
    }
    for (i, r) in got.iter().enumerate() {
        if r.code == 535 {
            *auth_failures += 1;
        }
        if r.code == 421 {
            assert_eq!(i + 1, got.len(), "a reply after 421: {}", wire(got));
            assert!(s.is_closed());
        }
    }
    let max = s.config().max_auth_failures;
    assert!(*auth_failures <= max, "{auth_failures} failures, max {max}");
    if *auth_failures == max {
        assert!(s.is_closed(), "still open after {max} AUTH failures");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // The last 16 bytes (at most) drive the answers; the rest is the client.
    let split = data.len().saturating_sub(16).max(1);
    let (input, choices) = data.split_at(split);
    let mut dice = Dice(choices, 0);
    let mut s = Session::new(
        config(&mut dice),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "smtp",
        None,
    );
    let mut committed = false;
    let mut auth_failures = 0usize;
    let mut aborted = false;
    s.handle(Event::Connected);
    run(&mut s, &mut dice, &mut committed, &mut aborted);
    let mut reader = LineReader::new(s.line_limit());
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() && !s.is_closed() && !aborted {
        let take = (usize::from(dice.roll(64)) + 1).min(rest.len());
        buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        loop {
            let (line, consumed) = reader.next_line(&buf);
            let done = line.is_none();
            let fed = match line {
                Some(Line::Complete(l)) => {
                    let l = l.to_vec();
                    let fed = if s.is_sasl_response_next() {
                        Fed::SaslResponse
                    } else {
                        let auth = l.len() > 5 && l[..5].eq_ignore_ascii_case(b"AUTH ");
                        Fed::Command {
                            too_long: !auth && l.len() + 2 > s.config().limits.max_command_line,
                        }
                    };
                    s.handle(Event::Line(&l));
                    fed
                }
                Some(Line::BareLineFeed(_)) => {
                    s.handle(Event::BareLineFeed);
                    Fed::BareLineFeed
                }
                Some(Line::TooLong) => {
                    s.handle(Event::LineTooLong);
                    Fed::Other
                }
                None => Fed::Other,
            };
            buf.drain(..consumed);
            let got = run(&mut s, &mut dice, &mut committed, &mut aborted);
            check_line_rules(&s, fed, &got, &mut auth_failures);
            if done || s.is_closed() || aborted {
                break;
            }
        }
        if dice.roll(50) == 0 {
            s.handle(Event::Timeout);
            run(&mut s, &mut dice, &mut committed, &mut aborted);
        }
    }
    let stats = s.stats();
    assert!(stats.succeeded() <= stats.commands());
    let _ = stats.to_string();
});

//! The client against a scripted fake milter: a task in the test speaking
//! the protocol with hand-built packets over an in-memory pipe (and real TCP
//! and Unix sockets for [`run`]). Each test names the protocol step or
//! failure it covers: negotiation (version, actions, NO_* and NR_* flags,
//! SETSYMLIST), every reply and modification, reject/tempfail/replycode at
//! each stage, discard, progress keep-alive, timeouts at each stage,
//! oversized packets, garbage, early close.
//!
//! Timeouts run on tokio's paused clock over the in-memory pipe, so they
//! take no real time and cannot race the kernel.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use postern_milter::{
    Actions, Envelope, MilterAddr, MilterError, MilterResult, MilterSpec, Modification,
    ProtocolError, ProtocolFlags, Stage, Verdict, apply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// One packet: `(command byte, data)`.
type Packet = (u8, Vec<u8>);

fn pkt(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len() + 1)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.push(code);
    out.extend_from_slice(data);
    out
}

fn optneg(version: u32, actions: Actions, protocol: ProtocolFlags) -> Vec<u8> {
    let mut d = version.to_be_bytes().to_vec();
    d.extend_from_slice(&actions.0.to_be_bytes());
    d.extend_from_slice(&protocol.0.to_be_bytes());
    pkt(b'O', &d)
}

async fn read_packet(s: &mut DuplexStream) -> Option<Packet> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut p = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap()];
    s.read_exact(&mut p).await.ok()?;
    let code = p.remove(0);
    Some((code, p))
}

/// Runs a fake milter on `s`: for each packet received, `script` returns the
/// raw bytes to answer (empty: no answer). Returns every packet received.
async fn fake<F>(mut s: DuplexStream, mut script: F) -> Vec<Packet>
where
    F: FnMut(u8, &[u8]) -> Vec<u8> + Send,
{
    let mut log = Vec::new();
    while let Some((code, data)) = read_packet(&mut s).await {
        let answer = script(code, &data);
        log.push((code, data));
        if !answer.is_empty() && s.write_all(&answer).await.is_err() {
            break;
        }
    }
    log
}

/// A standard milter: negotiates `neg`, continues at every step, answers
/// end of message with `eom` (then nothing for QUIT).
fn standard(neg: Vec<u8>, eom: Vec<u8>) -> impl FnMut(u8, &[u8]) -> Vec<u8> + Send {
    move |code, _| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' | b'A' => Vec::new(),
        b'E' => eom.clone(),
        _ => pkt(b'c', b""),
    }
}

fn neg_all() -> Vec<u8> {
    optneg(6, Actions::ALL, ProtocolFlags(0))
}

fn spec() -> MilterSpec {
    MilterSpec::new("fake", MilterAddr::parse("inet:127.0.0.1:1").unwrap())
}

const RCPTS: &[&str] = &["a@example.org", "b@example.org"];

fn rcpts() -> Vec<String> {
    RCPTS.iter().map(|s| (*s).to_owned()).collect()
}

fn headers() -> Vec<(String, String)> {
    vec![
        ("From".to_owned(), " Alice <alice@example.com>".to_owned()),
        ("Subject".to_owned(), " a folded\r\n\tsubject".to_owned()),
    ]
}

/// Runs the client against `script` with a body of `body` bytes.
async fn converse<F>(
    spec: &MilterSpec,
    body: &[u8],
    script: F,
) -> (Result<MilterResult, MilterError>, Vec<Packet>)
where
    F: FnMut(u8, &[u8]) -> Vec<u8> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let milter = tokio::spawn(fake(theirs, script));
    let rcpts = rcpts();
    let mail_args = vec!["SIZE=1234".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        daemon_name: "inbound",
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_port: 40000,
        client_name: Some("client.example.com"),
        helo: Some("client.example.com"),
        mail_from: "alice@example.com",
        mail_args: &mail_args,
        rcpts: &rcpts,
        queue_id: Some("Q123"),
        auth_user: Some("alice"),
        tls_version: Some("TLSv1.3"),
        cipher: Some("TLS_AES_256_GCM_SHA384"),
        ..Envelope::default()
    };
    let result = postern_milter::run_on_stream(spec, ours, &env, &headers(), body).await;
    let log = milter.await.unwrap();
    (result, log)
}

fn codes(log: &[Packet]) -> String {
    log.iter().map(|(c, _)| char::from(*c)).collect()
}

/// The NUL-separated strings of a packet's data.
fn strings(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn macros_of(log: &[Packet], stage: u8) -> Vec<String> {
    log.iter()
        .find(|(c, d)| *c == b'D' && d.first() == Some(&stage))
        .map(|(_, d)| strings(&d[1..]))
        .unwrap_or_default()
}

#[tokio::test]
async fn full_replay_in_order_with_macros_headers_and_chunked_body() {
    let body = vec![b'x'; 150_000];
    let (result, log) = converse(&spec(), &body, standard(neg_all(), pkt(b'c', b""))).await;
    let result = result.unwrap();
    assert_eq!(result.verdict, Verdict::Continue);
    assert_eq!(result.stage, Stage::EndOfMessage);
    assert!(result.modifications.is_empty());
    // OPTNEG, macros+CONNECT, macros+HELO, macros+MAIL, 2×(macros+RCPT),
    // macros+DATA, 2 headers, macros+EOH, 3 body chunks, macros+EOB, QUIT.
    assert_eq!(codes(&log), "ODCDHDMDRDRDTLLDNBBBDEQ");
    let (_, opt) = &log[0];
    assert_eq!(opt[..4], 6u32.to_be_bytes());
    assert_eq!(opt[4..8], 0x1FFu32.to_be_bytes());
    assert_eq!(opt[8..], ProtocolFlags::OFFERED.0.to_be_bytes());
    let connect = &log[2].1;
    assert_eq!(
        connect[..],
        b"client.example.com\x004\x9c\x40192.0.2.7\0"[..]
    );
    let m = macros_of(&log, b'C');
    assert!(m.windows(2).any(|w| w == ["j", "mx.example.org"]), "{m:?}");
    assert!(
        m.windows(2).any(|w| w == ["{client_addr}", "192.0.2.7"]),
        "{m:?}"
    );
    assert!(
        m.windows(2)
            .any(|w| w == ["_", "client.example.com [192.0.2.7]"]),
        "{m:?}"
    );
    let m = macros_of(&log, b'H');
    assert!(
        m.windows(2).any(|w| w == ["{tls_version}", "TLSv1.3"]),
        "{m:?}"
    );
    let m = macros_of(&log, b'M');
    assert!(
        m.windows(2).any(|w| w == ["{auth_authen}", "alice"]),
        "{m:?}"
    );
    assert!(m.windows(2).any(|w| w == ["i", "Q123"]), "{m:?}");
    assert_eq!(strings(&log[6].1), ["<alice@example.com>", "SIZE=1234", ""]);
    let rcpt_macros: Vec<_> = log
        .iter()
        .filter(|(c, d)| *c == b'D' && d[0] == b'R')
        .map(|(_, d)| strings(&d[1..]))
        .collect();
    assert!(
        rcpt_macros[1]
            .windows(2)
            .any(|w| w == ["{rcpt_addr}", "b@example.org"])
    );
    assert_eq!(strings(&log[8].1), ["<a@example.org>", ""]);
    // Header values go without their leading space and with LF folds, as
    // Sendmail and Postfix send them.
    assert_eq!(
        strings(&log[13].1),
        ["From", "Alice <alice@example.com>", ""]
    );
    assert_eq!(strings(&log[14].1), ["Subject", "a folded\n\tsubject", ""]);
    let chunks: Vec<usize> = log
        .iter()
        .filter(|(c, _)| *c == b'B')
        .map(|(_, d)| d.len())
        .collect();
    assert_eq!(chunks, [65535, 65535, 150_000 - 2 * 65535]);
}

#[tokio::test]
async fn header_leading_space_when_negotiated() {
    let neg = optneg(6, Actions::ALL, ProtocolFlags::HEADER_LEADING_SPACE);
    let eom = [pkt(b'h', b"X-A\0 spaced\0"), pkt(b'c', b"")].concat();
    let (result, log) = converse(&spec(), b"", standard(neg, eom)).await;
    let header = log.iter().find(|(c, _)| *c == b'L').unwrap();
    assert_eq!(strings(&header.1)[1], " Alice <alice@example.com>");
    assert_eq!(
        result.unwrap().modifications,
        [Modification::AddHeader {
            name: "X-A".into(),
            value: " spaced".into()
        }]
    );
    // Without the flag, one space is added to the milter's value.
    let eom = [pkt(b'h', b"X-A\0plain\0"), pkt(b'c', b"")].concat();
    let (result, _) = converse(&spec(), b"", standard(neg_all(), eom)).await;
    assert_eq!(
        result.unwrap().modifications,
        [Modification::AddHeader {
            name: "X-A".into(),
            value: " plain".into()
        }]
    );
}

#[tokio::test]
async fn no_flags_skip_steps() {
    let no_all = ProtocolFlags(
        ProtocolFlags::NO_CONNECT.0
            | ProtocolFlags::NO_HELO.0
            | ProtocolFlags::NO_MAIL.0
            | ProtocolFlags::NO_RCPT.0
            | ProtocolFlags::NO_BODY.0
            | ProtocolFlags::NO_HEADERS.0
            | ProtocolFlags::NO_EOH.0
            | ProtocolFlags::NO_DATA.0,
    );
    let neg = optneg(6, Actions::ALL, no_all);
    let (result, log) = converse(&spec(), b"body\r\n", standard(neg, pkt(b'c', b""))).await;
    assert_eq!(result.unwrap().verdict, Verdict::Continue);
    assert_eq!(codes(&log), "ODEQ");
}

#[tokio::test(start_paused = true)]
async fn nr_flags_are_not_waited_for() {
    let nr_all = ProtocolFlags(
        ProtocolFlags::NR_CONNECT.0
            | ProtocolFlags::NR_HELO.0
            | ProtocolFlags::NR_MAIL.0
            | ProtocolFlags::NR_RCPT.0
            | ProtocolFlags::NR_DATA.0
            | ProtocolFlags::NR_HEADER.0
            | ProtocolFlags::NR_EOH.0
            | ProtocolFlags::NR_BODY.0,
    );
    let neg = optneg(6, Actions::ALL, nr_all);
    // This milter answers nothing but OPTNEG and end of message: a client
    // waiting for any other answer would time out.
    let script = move |code: u8, _: &[u8]| match code {
        b'O' => neg.clone(),
        b'E' => pkt(b'a', b""),
        _ => Vec::new(),
    };
    let (result, log) = converse(&spec(), b"body\r\n", script).await;
    assert_eq!(result.unwrap().verdict, Verdict::Accept);
    assert_eq!(codes(&log), "ODCDHDMDRDRDTLLDNBDEQ");
}

#[tokio::test]
async fn setsymlist_replaces_the_default_macros() {
    let mut d = 6u32.to_be_bytes().to_vec();
    d.extend_from_slice(&Actions::ALL.0.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(b"j {nosuch}\0");
    d.extend_from_slice(&2u32.to_be_bytes());
    d.extend_from_slice(b"{auth_authen}\0");
    let (result, log) = converse(&spec(), b"", standard(pkt(b'O', &d), pkt(b'c', b""))).await;
    result.unwrap();
    assert_eq!(macros_of(&log, b'C'), ["j", "mx.example.org", ""]);
    assert_eq!(macros_of(&log, b'M'), ["{auth_authen}", "alice", ""]);
    // Stages the milter did not name keep the default list.
    assert_eq!(macros_of(&log, b'T'), ["i", "Q123", ""]);
}

#[tokio::test]
async fn every_modification_is_returned_and_applied() {
    let mut chg = 1u32.to_be_bytes().to_vec();
    chg.extend_from_slice(b"Subject\0new\0");
    let mut ins = 0u32.to_be_bytes().to_vec();
    ins.extend_from_slice(b"DKIM-Signature\0v=1; a=rsa-sha256;\n\tb=abc\0");
    let eom = [
        pkt(b'p', b""),
        pkt(b'h', b"X-Spam\0no\0"),
        pkt(b'i', &ins),
        pkt(b'm', &chg),
        pkt(b'+', b"<c@example.org>\0"),
        pkt(b'2', b"<d@example.org>\0NOTIFY=NEVER\0"),
        pkt(b'-', b"<A@example.org>\0"),
        pkt(b'e', b"<bounce@example.com>\0SIZE=10\0"),
        pkt(b'b', b"new "),
        pkt(b'b', b"body\n.\nend"),
        pkt(b'q', b"held for review\0"),
        pkt(b'c', b""),
    ]
    .concat();
    let (result, _) = converse(&spec(), b"old\r\n", standard(neg_all(), eom)).await;
    let result = result.unwrap();
    assert_eq!(result.verdict, Verdict::Continue);
    let mods = result.modifications;
    assert_eq!(mods.len(), 9);
    assert_eq!(
        mods[1],
        Modification::InsertHeader {
            index: 0,
            name: "DKIM-Signature".into(),
            value: " v=1; a=rsa-sha256;\r\n\tb=abc".into()
        }
    );
    // Joined, and bare LFs made CRLF (no smuggled end of data).
    assert_eq!(
        mods[8],
        Modification::ReplaceBody(b"new body\r\n.\r\nend\r\n".to_vec())
    );
    let applied = apply(&headers(), &rcpts(), &mods);
    assert_eq!(applied.headers[0].0, "DKIM-Signature");
    assert_eq!(
        applied.headers[2],
        ("Subject".to_owned(), " new".to_owned())
    );
    assert_eq!(applied.headers[3], ("X-Spam".to_owned(), " no".to_owned()));
    assert_eq!(
        applied.rcpts,
        ["b@example.org", "c@example.org", "d@example.org"]
    );
    assert_eq!(
        applied.mail_from,
        Some(("bounce@example.com".to_owned(), vec!["SIZE=10".to_owned()]))
    );
    assert_eq!(applied.quarantine.as_deref(), Some("held for review"));
    assert_eq!(
        applied.body.as_deref(),
        Some(&b"new body\r\n.\r\nend\r\n"[..])
    );
}

#[tokio::test]
async fn a_modification_not_negotiated_is_a_protocol_error() {
    let neg = optneg(6, Actions::ADD_HEADERS, ProtocolFlags(0));
    let eom = [pkt(b'+', b"<evil@example.net>\0"), pkt(b'c', b"")].concat();
    let (result, _) = converse(&spec(), b"", standard(neg, eom)).await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            MilterError::Protocol {
                stage: Stage::EndOfMessage,
                source: ProtocolError::NotNegotiated {
                    action: "add_rcpt",
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.cause().id, postern_milter::cause::PROTOCOL);
}

#[tokio::test]
async fn a_modification_before_end_of_message_is_a_protocol_error() {
    let neg = neg_all();
    let script = move |code: u8, _: &[u8]| match code {
        b'O' => neg.clone(),
        b'D' => Vec::new(),
        b'M' => pkt(b'h', b"X\0y\0"),
        _ => pkt(b'c', b""),
    };
    let (result, _) = converse(&spec(), b"", script).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            stage: Stage::Mail,
            source: ProtocolError::Unexpected {
                reply: "SMFIR_ADDHEADER",
                ..
            },
            ..
        }
    ));
}

/// The command bytes of each stage, and the stage the client reports.
const STAGES: &[(u8, Stage)] = &[
    (b'C', Stage::Connect),
    (b'H', Stage::Helo),
    (b'M', Stage::Mail),
    (b'R', Stage::Rcpt),
    (b'T', Stage::Data),
    (b'L', Stage::Header),
    (b'N', Stage::EndOfHeaders),
    (b'B', Stage::Body),
    (b'E', Stage::EndOfMessage),
];

/// A milter continuing everywhere but at `at`, where it answers `answer`.
fn answer_at(at: u8, answer: Vec<u8>) -> impl FnMut(u8, &[u8]) -> Vec<u8> + Send {
    let neg = neg_all();
    move |code, _| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' => Vec::new(),
        c if c == at => answer.clone(),
        _ => pkt(b'c', b""),
    }
}

#[tokio::test]
async fn reject_tempfail_and_replycode_at_each_stage() {
    for &(code, stage) in STAGES {
        let (result, log) = converse(&spec(), b"body\r\n", answer_at(code, pkt(b'r', b""))).await;
        let result = result.unwrap();
        let Verdict::Reject(reply) = &result.verdict else {
            panic!("{stage}: {:?}", result.verdict);
        };
        assert_eq!(reply.to_bytes(), b"550 5.7.1 Command rejected\r\n");
        assert_eq!(result.stage, stage);
        assert!(result.modifications.is_empty());
        // After the verdict: QUIT and nothing else.
        assert_eq!(log.last().unwrap().0, b'Q', "{stage}");
        assert_eq!(log.iter().filter(|(c, _)| *c == code).count(), 1, "{stage}");

        let (result, _) = converse(&spec(), b"body\r\n", answer_at(code, pkt(b't', b""))).await;
        let Verdict::Tempfail(reply) = result.unwrap().verdict else {
            panic!("{stage}");
        };
        assert_eq!(reply.code, 451);

        let answer = pkt(b'y', b"421 4.3.2 busy\0");
        let (result, _) = converse(&spec(), b"body\r\n", answer_at(code, answer)).await;
        let Verdict::Tempfail(reply) = result.unwrap().verdict else {
            panic!("{stage}");
        };
        assert_eq!(reply.to_bytes(), b"421 4.3.2 busy\r\n");

        let answer = pkt(b'y', b"554 5.7.0 go away\0");
        let (result, _) = converse(&spec(), b"body\r\n", answer_at(code, answer)).await;
        let Verdict::Reject(reply) = result.unwrap().verdict else {
            panic!("{stage}");
        };
        assert_eq!(reply.code, 554);
    }
}

#[tokio::test]
async fn accept_and_discard_end_early() {
    let (result, log) = converse(&spec(), b"", answer_at(b'M', pkt(b'a', b""))).await;
    let result = result.unwrap();
    assert_eq!(
        (result.verdict, result.stage),
        (Verdict::Accept, Stage::Mail)
    );
    assert_eq!(codes(&log), "ODCDHDMQ");
    let (result, _) = converse(&spec(), b"", answer_at(b'R', pkt(b'd', b""))).await;
    assert_eq!(result.unwrap().verdict, Verdict::Discard);
    let (result, _) = converse(&spec(), b"", answer_at(b'C', pkt(b'f', b""))).await;
    assert!(matches!(result.unwrap().verdict, Verdict::Tempfail(_)));
}

#[tokio::test]
async fn reject_at_end_of_message_drops_modifications() {
    let eom = [pkt(b'h', b"X\0y\0"), pkt(b'y', b"550 5.7.1 spam\0")].concat();
    let (result, _) = converse(&spec(), b"", standard(neg_all(), eom)).await;
    let result = result.unwrap();
    assert!(matches!(result.verdict, Verdict::Reject(_)));
    assert!(result.modifications.is_empty());
}

#[tokio::test]
async fn a_2xx_reply_code_is_refused() {
    let (result, _) = converse(&spec(), b"", answer_at(b'E', pkt(b'y', b"250 2.0.0 ok\0"))).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            source: ProtocolError::Malformed {
                what: "SMFIR_REPLYCODE",
                ..
            },
            ..
        }
    ));
}

#[tokio::test]
async fn header_injection_is_refused() {
    let eom = [
        pkt(b'h', b"X-A\0a\r\nBcc: evil@example.net\0"),
        pkt(b'c', b""),
    ]
    .concat();
    let (result, _) = converse(&spec(), b"", standard(neg_all(), eom)).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            source: ProtocolError::Malformed {
                what: "SMFIR_ADDHEADER",
                ..
            },
            ..
        }
    ));
}

#[tokio::test]
async fn skip_ends_the_body_only_when_negotiated() {
    let neg = optneg(6, Actions::ALL, ProtocolFlags::SKIP);
    let script = move |code: u8, _: &[u8]| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' => Vec::new(),
        b'B' => pkt(b's', b""),
        _ => pkt(b'c', b""),
    };
    let (result, log) = converse(&spec(), &vec![b'x'; 200_000], script).await;
    result.unwrap();
    assert_eq!(log.iter().filter(|(c, _)| *c == b'B').count(), 1);
    assert_eq!(&codes(&log)[codes(&log).len() - 4..], "BDEQ");

    let (result, _) = converse(&spec(), b"x", answer_at(b'B', pkt(b's', b""))).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            stage: Stage::Body,
            source: ProtocolError::Unexpected {
                reply: "SMFIR_SKIP",
                ..
            },
            ..
        }
    ));
}

#[tokio::test]
async fn negotiation_refuses_versions_and_actions_not_offered() {
    for version in [0, 1, 7] {
        let neg = optneg(version, Actions::ADD_HEADERS, ProtocolFlags(0));
        let (result, _) = converse(&spec(), b"", standard(neg, pkt(b'c', b""))).await;
        let err = result.unwrap_err();
        assert!(
            matches!(err, MilterError::Protocol { source: ProtocolError::Version(v), .. } if v == version)
        );
        assert_eq!(err.cause().id, postern_milter::cause::NEGOTIATION);
    }
    let mut spec = spec();
    spec.actions = Actions::ADD_HEADERS;
    let (result, log) = converse(&spec, b"", standard(neg_all(), pkt(b'c', b""))).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            source: ProtocolError::Actions { .. },
            ..
        }
    ));
    // We offered only what the spec allows.
    assert_eq!(log[0].1[4..8], 1u32.to_be_bytes());
    // A version-2 milter (no SMFIC_DATA) is served.
    let neg = optneg(2, Actions::ADD_HEADERS, ProtocolFlags(0));
    let (result, log) = converse(&spec, b"", standard(neg, pkt(b'c', b""))).await;
    result.unwrap();
    assert!(!codes(&log).contains('T'));
}

#[tokio::test(start_paused = true)]
async fn a_slow_end_of_message_is_bounded_by_end_of_message_only() {
    // Five progress packets 20 s apart, then the verdict: 100 s, under the
    // 300 s end-of-message budget.
    let neg = neg_all();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(async move {
        while let Some((code, _)) = read_packet(&mut theirs).await {
            match code {
                b'O' => theirs.write_all(&neg).await.unwrap(),
                b'D' | b'Q' => {}
                b'E' => {
                    for _ in 0..5 {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        theirs.write_all(&pkt(b'p', b"")).await.unwrap();
                    }
                    theirs.write_all(&pkt(b'c', b"")).await.unwrap();
                }
                _ => theirs.write_all(&pkt(b'c', b"")).await.unwrap(),
            }
        }
    });
    let rcpts = rcpts();
    let env = Envelope {
        mail_from: "a@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let result = postern_milter::run_on_stream(&spec(), ours, &env, &[], &b""[..]).await;
    assert_eq!(result.unwrap().verdict, Verdict::Continue);
    milter.await.unwrap();

    // End of message may take longer than the command timeout without
    // progress: only end_of_message bounds it.
    let neg = neg_all();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(async move {
        while let Some((code, _)) = read_packet(&mut theirs).await {
            match code {
                b'O' => theirs.write_all(&neg).await.unwrap(),
                b'D' | b'Q' => {}
                b'E' => {
                    tokio::time::sleep(Duration::from_secs(100)).await;
                    theirs.write_all(&pkt(b'c', b"")).await.unwrap();
                }
                _ => theirs.write_all(&pkt(b'c', b"")).await.unwrap(),
            }
        }
    });
    let result = postern_milter::run_on_stream(&spec(), ours, &env, &[], &b""[..]).await;
    assert_eq!(result.unwrap().verdict, Verdict::Continue);
    milter.await.unwrap();

    // A milter that sends progress forever is cut off at end_of_message.
    let mut spec = spec();
    spec.timeouts.end_of_message = Duration::from_mins(1);
    let neg = neg_all();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(async move {
        while let Some((code, _)) = read_packet(&mut theirs).await {
            match code {
                b'O' => theirs.write_all(&neg).await.unwrap(),
                b'D' | b'Q' => {}
                b'E' => loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    if theirs.write_all(&pkt(b'p', b"")).await.is_err() {
                        return;
                    }
                },
                _ => theirs.write_all(&pkt(b'c', b"")).await.unwrap(),
            }
        }
    });
    let result = postern_milter::run_on_stream(&spec, ours, &env, &[], &b""[..]).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, MilterError::Timeout { stage: Stage::EndOfMessage, after, .. } if after == Duration::from_mins(1)),
        "{err}"
    );
    milter.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timeouts_at_each_stage() {
    let mut all = vec![(b'O', Stage::Negotiate)];
    all.extend_from_slice(STAGES);
    for (code, stage) in all {
        // Silent at `code`: the client gives up after the command timeout.
        let neg = neg_all();
        let script = move |c: u8, _: &[u8]| match c {
            c if c == code => Vec::new(),
            b'O' => neg.clone(),
            b'D' | b'Q' => Vec::new(),
            _ => pkt(b'c', b""),
        };
        let (result, _) = converse(&spec(), b"body\r\n", script).await;
        let err = result.unwrap_err();
        assert!(
            matches!(err, MilterError::Timeout { stage: s, .. } if s == stage),
            "{stage}: {err}"
        );
        assert_eq!(err.cause().id, postern_milter::cause::TIMEOUT);
    }
}

#[tokio::test(start_paused = true)]
async fn oversized_packets_garbage_and_early_close() {
    // A length over 1 MiB is refused before reading (or allocating) it.
    let huge = 0x7fff_ffffu32.to_be_bytes().to_vec();
    let (result, _) = converse(&spec(), b"", answer_at(b'C', huge)).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            stage: Stage::Connect,
            source: ProtocolError::Length { .. },
            ..
        }
    ));
    // Not a milter at all: an HTTP server's answer.
    let script = |_: u8, _: &[u8]| b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec();
    let (result, _) = converse(&spec(), b"", script).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            stage: Stage::Negotiate,
            source: ProtocolError::Length { .. },
            ..
        }
    ));
    // An unknown reply code.
    let (result, _) = converse(&spec(), b"", answer_at(b'H', pkt(b'z', b""))).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            source: ProtocolError::UnknownReply('z'),
            ..
        }
    ));
    // A zero length.
    let (result, _) = converse(&spec(), b"", answer_at(b'H', vec![0, 0, 0, 0])).await;
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Protocol {
            source: ProtocolError::Length { len: 0, .. },
            ..
        }
    ));
    // Closed right after negotiation.
    let neg = neg_all();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(async move {
        let _ = read_packet(&mut theirs).await;
        theirs.write_all(&neg).await.unwrap();
        drop(theirs);
    });
    let env = Envelope::default();
    let result = postern_milter::run_on_stream(&spec(), ours, &env, &[], &b""[..]).await;
    milter.await.unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            MilterError::Io {
                stage: Stage::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.cause().id, postern_milter::cause::CLOSED);
    // Closed in the middle of a packet.
    let (result, _) = converse(&spec(), b"", answer_at(b'M', vec![0, 0, 0, 9, b'y'])).await;
    // The fake keeps the pipe open: the client times out in the packet.
    assert!(matches!(
        result.unwrap_err(),
        MilterError::Timeout {
            stage: Stage::Mail,
            ..
        }
    ));
}

/// A fake milter on a real socket: negotiates, continues, adds a header.
async fn serve_one<S>(mut s: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut script = standard(
        neg_all(),
        [pkt(b'h', b"X-Milter\0seen\0"), pkt(b'c', b"")].concat(),
    );
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut p = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap()];
        s.read_exact(&mut p).await.unwrap();
        let answer = script(p[0], &p[1..]);
        s.write_all(&answer).await.unwrap();
    }
}

#[tokio::test]
async fn run_over_tcp_and_unix_sockets_and_refused_connections() {
    let rcpts = rcpts();
    let env = Envelope {
        mail_from: "a@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_one(s).await;
    });
    let spec = MilterSpec::new(
        "tcp",
        MilterAddr::parse(&format!("inet:{port}@127.0.0.1")).unwrap(),
    );
    let result = postern_milter::run(&spec, &env, &headers(), &b"hi\r\n"[..])
        .await
        .unwrap();
    assert_eq!(result.modifications.len(), 1);
    server.await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milter.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_one(s).await;
    });
    let spec = MilterSpec::new(
        "unix",
        MilterAddr::parse(&format!("unix:{}", path.display())).unwrap(),
    );
    let result = postern_milter::run(&spec, &env, &headers(), &b"hi\r\n"[..])
        .await
        .unwrap();
    assert_eq!(result.verdict, Verdict::Continue);
    server.await.unwrap();

    // Nobody listens: a connect error (cause milter.connect).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spec = MilterSpec::new(
        "gone",
        MilterAddr::parse(&format!("127.0.0.1:{port}")).unwrap(),
    );
    let err = postern_milter::run(&spec, &env, &[], &b""[..])
        .await
        .unwrap_err();
    assert!(matches!(err, MilterError::Connect { .. }), "{err}");
    assert_eq!(err.cause().id, postern_milter::cause::CONNECT);
    let spec = MilterSpec::new(
        "gone",
        MilterAddr::parse(&format!("unix:{}", dir.path().join("none").display())).unwrap(),
    );
    let err = postern_milter::run(&spec, &env, &[], &b""[..])
        .await
        .unwrap_err();
    assert_eq!(err.cause().id, postern_milter::cause::CONNECT);
}

#[test]
fn milter_addresses() {
    let tcp = |h: &str, p| MilterAddr::Tcp {
        host: h.to_owned(),
        port: p,
    };
    assert_eq!(
        MilterAddr::parse("inet:127.0.0.1:8891"),
        Ok(tcp("127.0.0.1", 8891))
    );
    assert_eq!(
        MilterAddr::parse("inet:8891@localhost"),
        Ok(tcp("localhost", 8891))
    );
    assert_eq!(MilterAddr::parse("inet6:8891@[::1]"), Ok(tcp("::1", 8891)));
    assert_eq!(MilterAddr::parse("inet:[::1]:8891"), Ok(tcp("::1", 8891)));
    assert_eq!(
        MilterAddr::parse("milter.example:11332"),
        Ok(tcp("milter.example", 11332))
    );
    assert_eq!(
        MilterAddr::parse("unix:/run/opendkim/opendkim.sock"),
        Ok(MilterAddr::Unix("/run/opendkim/opendkim.sock".into()))
    );
    assert_eq!(
        MilterAddr::parse("local:/run/m.sock"),
        Ok(MilterAddr::Unix("/run/m.sock".into()))
    );
    for bad in [
        "unix:relative.sock",
        "inet:host",
        "inet:host:0",
        "inet:host:99999",
        "host",
        ":25",
        "inet:a b:25",
    ] {
        assert!(MilterAddr::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(tcp("::1", 1).to_string(), "inet:[::1]:1");
}

#[tokio::test(start_paused = true)]
async fn progress_restarts_the_command_timeout_before_end_of_message() {
    // At HELO: three progress packets 20 s apart (60 s in all, twice the
    // 30 s command timeout), then continue.
    let neg = neg_all();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(async move {
        while let Some((code, _)) = read_packet(&mut theirs).await {
            match code {
                b'O' => theirs.write_all(&neg).await.unwrap(),
                b'D' | b'Q' => {}
                b'H' => {
                    for _ in 0..3 {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        theirs.write_all(&pkt(b'p', b"")).await.unwrap();
                    }
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    theirs.write_all(&pkt(b'c', b"")).await.unwrap();
                }
                _ => theirs.write_all(&pkt(b'c', b"")).await.unwrap(),
            }
        }
    });
    let rcpts = rcpts();
    let env = Envelope {
        helo: Some("client.example.com"),
        mail_from: "a@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let result = postern_milter::run_on_stream(&spec(), ours, &env, &[], &b""[..]).await;
    assert_eq!(result.unwrap().verdict, Verdict::Continue);
    milter.await.unwrap();
}

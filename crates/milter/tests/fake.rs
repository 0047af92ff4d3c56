//! The client against a scripted fake milter (`support`), one test per
//! protocol step: the replay in order with macros, header fields and body
//! chunks; negotiation (version, actions, NO_* and NR_* flags, SETSYMLIST,
//! HDR_LEADSPC, SKIP); every reply and modification; reject, tempfail and
//! reply codes at each stage; accept and discard.

#![allow(clippy::unwrap_used)]

mod support;

use postern_milter::{
    Actions, Envelope, MilterError, Modification, ProtocolError, ProtocolFlags, Session, Stage,
    Step, Verdict, apply,
};
use support::*;

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
        // After the verdict: ABORT if a message had begun, then QUIT.
        let tail = if matches!(stage, Stage::Connect | Stage::Helo | Stage::EndOfMessage) {
            "Q"
        } else {
            "AQ"
        };
        assert!(codes(&log).ends_with(tail), "{stage}: {}", codes(&log));
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
    assert_eq!(codes(&log), "ODCDHDMAQ");
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
async fn skip_ends_the_body_only_when_negotiated() {
    let neg = optneg(6, Actions::ALL, ProtocolFlags::SKIP);
    let script = move |code: u8, _: &[u8]| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' | b'A' => Vec::new(),
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

#[tokio::test]
async fn a_live_session_rejects_one_recipient_and_carries_two_messages() {
    // The stage-by-stage API as a server would drive it during the SMTP
    // session: a reject at RCPT is about that recipient; ABORT ends a
    // message; a second transaction follows on the same connection.
    let neg = neg_all();
    let script = move |code: u8, data: &[u8]| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' | b'A' => Vec::new(),
        b'R' if data.starts_with(b"<b@") => pkt(b'y', b"550 5.1.1 no such user\0"),
        b'E' => [pkt(b'h', b"X-Seen\0yes\0"), pkt(b'c', b"")].concat(),
        _ => pkt(b'c', b""),
    };
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(fake(theirs, script));
    let spec = spec();
    let rcpts = rcpts();
    let env = Envelope {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        helo: Some("client.example.com"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let mut s = Session::negotiate(&spec, ours).await.unwrap();
    assert_eq!(s.connect(&env).await.unwrap(), Step::Continue);
    assert_eq!(s.helo(&env).await.unwrap(), Step::Continue);
    // Message 1: one recipient refused, then abandoned by the client.
    assert_eq!(s.mail(&env).await.unwrap(), Step::Continue);
    assert_eq!(
        s.rcpt(&env, "a@example.org", &[]).await.unwrap(),
        Step::Continue
    );
    let Step::Decided(Verdict::Reject(reply)) = s.rcpt(&env, "b@example.org", &[]).await.unwrap()
    else {
        panic!("b@ not rejected");
    };
    assert_eq!(reply.to_bytes(), b"550 5.1.1 no such user\r\n");
    s.abort().await.unwrap();
    // Message 2, on the same connection.
    assert_eq!(s.mail(&env).await.unwrap(), Step::Continue);
    let args = vec!["NOTIFY=NEVER".to_owned()];
    assert_eq!(
        s.rcpt(&env, "a@example.org", &args).await.unwrap(),
        Step::Continue
    );
    assert_eq!(s.data(&env).await.unwrap(), Step::Continue);
    assert_eq!(s.header("Subject", " hi").await.unwrap(), Step::Continue);
    assert_eq!(s.end_of_headers(&env).await.unwrap(), Step::Continue);
    assert_eq!(s.body(b"hello\r\n").await.unwrap(), Step::Continue);
    let result = s.end_of_message(&env).await.unwrap();
    assert_eq!(result.verdict, Verdict::Continue);
    assert_eq!(result.modifications.len(), 1);
    s.quit().await;
    let log = milter.await.unwrap();
    // No queue id or TLS in this envelope: fewer macro packets.
    assert_eq!(codes(&log), "ODCHDMDRDRADMDRTLNBEQ");
    let rcpt = log.iter().filter(|(c, _)| *c == b'R').nth(2).unwrap();
    assert_eq!(strings(&rcpt.1), ["<a@example.org>", "NOTIFY=NEVER", ""]);
}

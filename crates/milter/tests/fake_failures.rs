//! The client against a scripted fake milter (`support`) that misbehaves:
//! modifications it did not negotiate or sends too early, 2xx reply codes,
//! header injection, slow answers and progress keep-alive, silence at each
//! stage (timeouts), oversized packets, garbage, early close; and real TCP
//! and Unix sockets for `run`, including refused connections.
//!
//! Timeouts run on tokio's paused clock over the in-memory pipe, so they
//! take no real time and cannot race the kernel.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use postern_milter::{
    Actions, Envelope, MilterAddr, MilterError, MilterSpec, ProtocolError, ProtocolFlags, Stage,
    Verdict,
};
use support::*;
use tokio::io::AsyncWriteExt;

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
                b'D' | b'Q' | b'A' => {}
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
                b'D' | b'Q' | b'A' => {}
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
                b'D' | b'Q' | b'A' => {}
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
            b'D' | b'Q' | b'A' => Vec::new(),
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
                b'D' | b'Q' | b'A' => {}
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

#[tokio::test]
async fn a_nul_in_our_own_header_is_an_encode_error_not_a_shifted_field() {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let milter = tokio::spawn(fake(theirs, standard(neg_all(), pkt(b'c', b""))));
    let rcpts = rcpts();
    let env = Envelope {
        mail_from: "a@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let headers = vec![("Subject".to_owned(), " a\0b".to_owned())];
    let err = postern_milter::run_on_stream(&spec(), ours, &env, &headers, &b""[..])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MilterError::Encode {
                stage: Stage::Header,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.cause().id, postern_milter::cause::ENCODE);
    // The milter never saw a header packet.
    let log = milter.await.unwrap();
    assert!(!codes(&log).contains('L'), "{}", codes(&log));
}

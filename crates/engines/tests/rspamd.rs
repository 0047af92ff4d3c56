//! The rspamd client against a real rspamd 3.x (the Debian package, started
//! once for this binary by `support`, offline), and its failure modes
//! against plain tokio listeners standing in for a broken or silent rspamd.
//!
//! Covered: GTUBE → `reject` with rspamd's SMTP message; a clean message →
//! `no action` with symbols; the envelope and session facts reach rspamd
//! (its per-scan log line and its symbols say what it saw); the milter
//! block (`add_headers` as `{value, order}`, `remove_headers`) and the
//! rewritten subject; streaming from a file; the Unix socket; `/ping`;
//! the size bound (`Skipped`, nothing sent); request headers never carry a
//! client's CR/LF (CWE-113); refused, silent (timeout), closed, not HTTP,
//! not JSON, HTTP error status and oversized replies, each with its cause.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use postern_engines::cause;
use postern_engines::{
    EngineAddr, EngineError, RspamdClient, RspamdSettings, ScanRequest, SkipReason, SpamAction,
    SpamOutcome, SpamVerdict, Stage,
};
use support::{GTUBE, REWRITE_MARKER, Rspamd, message};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

fn client(addr: EngineAddr) -> RspamdClient {
    RspamdClient::new(RspamdSettings {
        address: addr,
        timeout: Duration::from_secs(20),
        ..RspamdSettings::default()
    })
}

fn tcp(port: u16) -> EngineAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

fn scanned(outcome: SpamOutcome) -> SpamVerdict {
    match outcome {
        SpamOutcome::Scanned(v) => v,
        SpamOutcome::Skipped(r) => panic!("skipped: {r}"),
    }
}

/// The facts a real session would give, for queue id `qid`.
fn request<'a>(qid: &'a str, rcpts: &'a [String]) -> ScanRequest<'a> {
    ScanRequest {
        ip: Some("192.0.2.7".parse::<IpAddr>().unwrap()),
        helo: Some("mail.example.com"),
        hostname: Some("mail.example.com"),
        from: Some("alice@example.com"),
        rcpts,
        queue_id: Some(qid),
        user: None,
        tls_version: Some("TLSv1.3"),
        tls_cipher: Some("TLS13_AES_256_GCM_SHA384"),
        mta_name: Some("mx.postern.test"),
        settings_id: None,
    }
}

#[tokio::test]
async fn gtube_is_rejected_with_rspamds_message() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let m = message("offer", GTUBE);
    let v = scanned(
        client(tcp(engine.normal))
            .check_bytes(&request("GTUBE1", &rcpts), &m)
            .await
            .unwrap(),
    );
    assert_eq!(v.action, SpamAction::Reject);
    assert!(v.has_symbol("GTUBE"), "{:?}", v.symbols);
    assert!(
        v.score >= v.required_score,
        "{} < {}",
        v.score,
        v.required_score
    );
    assert_eq!(v.smtp_message.as_deref(), Some("Gtube pattern"));
}

#[tokio::test]
async fn a_clean_message_gets_no_action_and_symbols() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let m = message("lunch", "Hello Bob, lunch tomorrow at noon?");
    let v = scanned(
        client(tcp(engine.normal))
            .check_bytes(&request("CLEAN1", &rcpts), &m)
            .await
            .unwrap(),
    );
    assert_eq!(v.action, SpamAction::NoAction, "{v:?}");
    assert!(v.score < v.required_score);
    let mime = v.symbol("MIME_GOOD").expect("MIME_GOOD");
    assert_eq!(mime.options, ["text/plain"]);
    assert!(mime.description.is_some());
}

#[tokio::test]
async fn a_settings_id_selects_an_rspamd_profile() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let m = message("profile", "Hello Bob.");
    let c = client(tcp(engine.normal));
    let plain = scanned(c.check_bytes(&request("SETQ1", &rcpts), &m).await.unwrap());
    assert!(plain.has_symbol("MIME_GOOD"), "{:?}", plain.symbols);
    let req = ScanRequest {
        settings_id: Some(support::QUIET_SETTINGS),
        ..request("SETQ2", &rcpts)
    };
    let quiet = scanned(c.check_bytes(&req, &m).await.unwrap());
    assert!(!quiet.has_symbol("MIME_GOOD"), "{:?}", quiet.symbols);
}

#[tokio::test]
async fn envelope_and_session_facts_reach_rspamd() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned(), "carol@example.net".to_owned()];
    let req = ScanRequest {
        user: Some("alice"),
        // The envelope sender differs from the header From.
        from: Some("bounces@lists.example.net"),
        ..request("ENVQ1", &rcpts)
    };
    let m = message("facts", "Two recipients, one authenticated sender.");
    let v = scanned(
        client(tcp(engine.normal))
            .check_bytes(&req, &m)
            .await
            .unwrap(),
    );
    // Symbols computed from the envelope we sent.
    let neq = v.symbol("FROM_NEQ_ENVFROM").expect("FROM_NEQ_ENVFROM");
    assert!(
        neq.options
            .contains(&"bounces@lists.example.net".to_owned())
    );
    // rspamd's own log line for this queue id.
    let line = engine.log_line("ENVQ1");
    for seen in [
        "ip: 192.0.2.7",
        "user: alice",
        "from: <bounces@lists.example.net>",
        "bob@example.org",
        "carol@example.net",
    ] {
        assert!(line.contains(seen), "{seen:?} not in {line}");
    }
}

#[tokio::test]
async fn the_null_sender_is_sent_as_empty_brackets() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let req = ScanRequest {
        from: Some(""),
        ..request("NULLQ1", &rcpts)
    };
    let m = message("bounce", "Delivery report.");
    scanned(
        client(tcp(engine.normal))
            .check_bytes(&req, &m)
            .await
            .unwrap(),
    );
    let line = engine.log_line("NULLQ1");
    assert!(!line.contains("from: <"), "{line}");
}

#[tokio::test]
async fn milter_headers_and_the_rewritten_subject_are_read() {
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let req = ScanRequest {
        user: Some("alice"),
        ..request("MILTQ1", &rcpts)
    };
    let m = message(&format!("please {REWRITE_MARKER} me"), "Hello.");
    let v = scanned(
        client(tcp(engine.normal))
            .check_bytes(&req, &m)
            .await
            .unwrap(),
    );
    assert_eq!(v.action, SpamAction::RewriteSubject);
    assert_eq!(
        v.subject.as_deref(),
        Some(format!("*** SPAM *** please {REWRITE_MARKER} me").as_str())
    );
    assert_eq!(
        v.smtp_message.as_deref(),
        Some("subject rewritten for a test")
    );
    let header = |name: &str| {
        v.add_headers
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", v.add_headers))
    };
    assert_eq!(header("X-Rspamd-Queue-Id").value, "MILTQ1");
    assert!(header("X-Spam-Status").value.starts_with("Yes, score="));
    let ar = header("Authentication-Results");
    assert!(ar.value.contains("smtp.auth=alice"), "{:?}", ar.value);
    assert!(ar.order.is_some());
    // Folded values keep CRLF + tab, never a bare line break.
    let result = header("X-Spamd-Result");
    assert!(result.value.contains("\r\n\t"), "{:?}", result.value);
    assert!(
        v.remove_headers
            .iter()
            .any(|r| r.name == "X-Spam-Status" && r.index == 0)
    );
}

#[tokio::test]
async fn a_message_streams_from_a_file_and_over_the_unix_socket() {
    let Some(engine) = Rspamd::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    let m = support::message_of_size(200 * 1024);
    std::fs::write(&path, &m).unwrap();
    let rcpts = ["bob@example.org".to_owned()];
    for addr in [tcp(engine.normal), EngineAddr::Unix(engine.socket.clone())] {
        let file = tokio::fs::File::open(&path).await.unwrap();
        let v = scanned(
            client(addr.clone())
                .check(&request("FILEQ1", &rcpts), file, m.len() as u64)
                .await
                .unwrap_or_else(|e| panic!("{addr}: {e}")),
        );
        assert_eq!(v.action, SpamAction::NoAction, "{addr}");
    }
    client(tcp(engine.normal)).ping().await.unwrap();
    client(EngineAddr::Unix(engine.socket.clone()))
        .ping()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_controller_answers_checks_with_its_password() {
    let Some(engine) = Rspamd::get() else { return };
    let c = RspamdClient::new(RspamdSettings {
        address: tcp(engine.controller),
        password: Some(support::CONTROLLER_PASSWORD.into()),
        ..RspamdSettings::default()
    });
    let m = message("offer", GTUBE);
    let v = scanned(c.check_bytes(&ScanRequest::default(), &m).await.unwrap());
    assert_eq!(v.action, SpamAction::Reject);
    // A wrong password is refused, with the cause that says so.
    let wrong = RspamdClient::new(RspamdSettings {
        password: Some("guess".into()),
        ..c.settings().clone()
    });
    let err = wrong
        .check_bytes(&ScanRequest::default(), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Status { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.cause().id, cause::HTTP_STATUS);
}

#[tokio::test]
async fn a_reader_shorter_than_its_length_is_a_body_read_error() {
    let Some(engine) = Rspamd::get() else { return };
    let m = message("short", "This message is shorter than announced.");
    let err = client(tcp(engine.normal))
        .check(&ScanRequest::default(), &m[..], m.len() as u64 + 100)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::BodyRead { .. }), "{err}");
    assert_eq!(err.cause().id, cause::BODY_READ);
}

#[tokio::test]
async fn a_message_above_the_bound_is_skipped_without_connecting() {
    // Nothing listens on this address: a connection attempt would fail.
    let c = RspamdClient::new(RspamdSettings {
        address: tcp(support::free_port()),
        max_size: 1000,
        ..RspamdSettings::default()
    });
    let m = support::message_of_size(5000);
    let out = c.check_bytes(&ScanRequest::default(), &m).await.unwrap();
    assert_eq!(
        out,
        SpamOutcome::Skipped(SkipReason::TooLarge {
            size: m.len() as u64,
            limit: 1000
        })
    );
}

/// A listener that records the request head and answers `reply`.
async fn recording_server(reply: Vec<u8>) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the head ended");
            buf.extend_from_slice(&chunk[..n]);
        }
        s.write_all(&reply).await.unwrap();
        s.shutdown().await.unwrap();
        let head = String::from_utf8_lossy(&buf).into_owned();
        head.split("\r\n\r\n").next().unwrap().to_owned()
    });
    (port, task)
}

/// A well-formed `no action` reply.
fn good_reply() -> Vec<u8> {
    let json = r#"{"action":"no action","score":0.5,"required_score":15}"#;
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn hostile_envelope_values_cannot_add_request_headers() {
    let (port, head) = recording_server(good_reply()).await;
    let c = RspamdClient::new(RspamdSettings {
        address: tcp(port),
        password: Some("s3cret".into()),
        pass_all: true,
        ..RspamdSettings::default()
    });
    let rcpts = [
        "bob@example.org".to_owned(),
        "x@example.org\r\nSettings: {\"actions\":{\"reject\":1000}}".to_owned(),
    ];
    let req = ScanRequest {
        helo: Some("evil\r\nIP: 127.0.0.1\r\nUser: admin"),
        from: Some(""),
        ..request("INJQ1", &rcpts)
    };
    let v = scanned(
        c.check_bytes(&req, b"Subject: x\r\n\r\nhi\r\n")
            .await
            .unwrap(),
    );
    assert_eq!(v.action, SpamAction::NoAction);
    let head = head.await.unwrap();
    let lines: Vec<&str> = head.lines().collect();
    assert!(lines[0].starts_with("POST /checkv2 HTTP/1.1"), "{head}");
    let named = |name: &str| {
        lines
            .iter()
            .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .count()
    };
    // Exactly the headers we meant, each once (Rcpt twice).
    for (name, n) in [
        ("ip", 1),
        ("user", 0),
        ("settings", 0),
        ("helo", 1),
        ("rcpt", 2),
        ("from", 1),
        ("pass", 1),
        ("password", 1),
        ("queue-id", 1),
        ("content-length", 1),
    ] {
        assert_eq!(named(name), n, "{name} in\n{head}");
    }
    assert!(head.contains("\r\nFrom: <>"), "{head}");
    assert!(head.contains("\r\nIp: 192.0.2.7"), "{head}");
    assert!(
        head.contains("\r\nHelo: evil  IP: 127.0.0.1  User: admin"),
        "{head}"
    );
}

#[tokio::test]
async fn pass_all_and_password_are_not_sent_by_default() {
    let (port, head) = recording_server(good_reply()).await;
    let c = RspamdClient::new(RspamdSettings {
        address: tcp(port),
        ..RspamdSettings::default()
    });
    c.check_bytes(&ScanRequest::default(), b"Subject: x\r\n\r\nhi\r\n")
        .await
        .unwrap();
    let head = head.await.unwrap().to_ascii_lowercase();
    assert!(
        !head.contains("\r\npass:") && !head.contains("\r\npassword:"),
        "{head}"
    );
}

/// A client with a short deadline for the failure cases.
fn impatient(port: u16) -> RspamdClient {
    RspamdClient::new(RspamdSettings {
        address: tcp(port),
        timeout: Duration::from_millis(300),
        ..RspamdSettings::default()
    })
}

async fn check_err(c: &RspamdClient) -> EngineError {
    c.check_bytes(&ScanRequest::default(), b"Subject: x\r\n\r\nhi\r\n")
        .await
        .unwrap_err()
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let err = check_err(&impatient(support::free_port())).await;
    assert!(matches!(err, EngineError::Connect { .. }), "{err}");
    assert_eq!(err.cause().id, cause::REFUSED);
    assert!(err.cause().fix.contains("[rspamd] address"));
    let missing = client(EngineAddr::Unix("/nonexistent/rspamd.sock".into()));
    assert_eq!(check_err(&missing).await.cause().id, cause::REFUSED);
}

#[tokio::test]
async fn a_silent_engine_times_out_waiting_for_the_reply() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, reads everything, never answers.
    let _silent = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let err = check_err(&impatient(port)).await;
    assert!(
        matches!(
            err,
            EngineError::Timeout {
                stage: Stage::Reply,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_timeout());
    assert_eq!(err.cause().id, cause::TIMEOUT);
}

#[tokio::test]
async fn an_engine_that_stops_reading_times_out_while_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and never reads: the socket buffers fill up.
    let _stuck = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let m = vec![b'a'; 32 * 1024 * 1024];
    let c = RspamdClient::new(RspamdSettings {
        max_size: 64 * 1024 * 1024,
        ..impatient(port).settings().clone()
    });
    let err = c
        .check_bytes(&ScanRequest::default(), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Timeout {
                stage: Stage::Send,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_early_error_answer_is_reported_without_waiting_for_the_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Reads the head, answers 413 at once, then stops reading (open).
    let _early = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        let json = r#"{"error":"Message is too large"}"#;
        let reply = format!(
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        s.write_all(reply.as_bytes()).await.unwrap();
        std::future::pending::<()>().await;
    });
    let c = RspamdClient::new(RspamdSettings {
        max_size: 64 * 1024 * 1024,
        timeout: Duration::from_secs(20),
        ..impatient(port).settings().clone()
    });
    let m = vec![b'a'; 32 * 1024 * 1024];
    let err = c
        .check_bytes(&ScanRequest::default(), &m)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::Status { status: 413, detail, .. }
            if detail == "Message is too large"),
        "{err}"
    );
}

/// A listener that reads the request head and then answers `reply` (or
/// closes at once when it is empty).
async fn scripted(reply: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(&reply).await;
        let _ = s.shutdown().await;
    });
    port
}

#[tokio::test]
async fn broken_replies_have_their_causes() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    let mut chunked_big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked_big.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked_big.extend(std::iter::repeat_n(b'x', 64 * 1024));
        chunked_big.extend_from_slice(b"\r\n");
    }
    chunked_big.extend_from_slice(b"0\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("closed", Vec::new(), cause::CLOSED),
        ("not http", b"220 mx.example.com ESMTP\r\n".to_vec(), cause::BAD_REPLY),
        (
            "not json",
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>".to_vec(),
            cause::BAD_REPLY,
        ),
        (
            "json without action",
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"score\":1.0}".to_vec(),
            cause::BAD_REPLY,
        ),
        (
            "status",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 34\r\n\r\n{\"error\":\"Unauthorized: bad pwd\"}\n"
                .to_vec(),
            cause::HTTP_STATUS,
        ),
        ("declared too large", big.into_bytes(), cause::REPLY_TOO_LARGE),
        ("chunked too large", chunked_big, cause::REPLY_TOO_LARGE),
    ];
    for (name, reply, id) in cases {
        let port = scripted(reply).await;
        let err = check_err(&impatient(port)).await;
        assert_eq!(err.cause().id, id, "{name}: {err}");
        if id == cause::HTTP_STATUS {
            assert!(
                matches!(&err, EngineError::Status { status: 403, detail, .. }
                    if detail == "Unauthorized: bad pwd"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn the_golden_replies_are_what_this_rspamd_sends() {
    // testdata/ holds replies of rspamd 3.4 for the parser's unit tests;
    // check that the running rspamd still answers in that shape.
    let Some(engine) = Rspamd::get() else { return };
    let rcpts = ["bob@example.org".to_owned()];
    let m = message(&format!("{REWRITE_MARKER} golden"), "Hello.");
    let v = scanned(
        client(tcp(engine.normal))
            .check_bytes(&request("GOLDQ1", &rcpts), &m)
            .await
            .unwrap(),
    );
    let golden = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/rspamd-rewrite.json"
    ))
    .unwrap();
    let old = SpamVerdict::from_json(&golden).unwrap();
    assert_eq!(v.action, old.action);
    let names = |v: &SpamVerdict| {
        let mut n: Vec<String> = v.add_headers.iter().map(|h| h.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&v), names(&old));
}

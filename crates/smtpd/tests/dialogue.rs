//! Dialogue tests: a real server on loopback, scripted client lines, exact replies.
//! Each test names the RFC rule or attack it covers.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{HOST, send_message, start, start_with};

/// RFC 5321 §4.1.1.1 / RFC 1869: EHLO lists our extensions; AUTH is not offered in clear.
#[tokio::test]
async fn ehlo_capabilities() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    let r = d.cmd("EHLO client.test", 250).await;
    assert!(r.lines[0].starts_with(HOST), "{r:?}");
    for cap in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "DSN",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(r.lines.iter().any(|l| l == cap), "missing {cap} in {r:?}");
    }
    assert!(
        !r.lines.iter().any(|l| l.starts_with("AUTH")),
        "AUTH offered before TLS: {r:?}"
    );
    d.cmd("QUIT", 221).await;
    assert!(d.is_closed().await);
}

// "A multi-line reply is one write" is proven where writes can be counted:
// `crates/smtpd/src/session/tests.rs::multiline_reply_is_one_write`.

/// RFC 5321 §4.1.1.1: the EHLO argument is a domain or an address literal.
#[tokio::test]
async fn ehlo_argument_is_checked() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    let r = d.cmd("EHLO bad_name!", 501).await;
    assert!(r.lines[0].starts_with("5.5.4"), "{r:?}");
    d.cmd("HELO [127.0.0.1]", 250).await;
    let r = d.cmd("HELP", 214).await;
    assert!(
        !r.lines[0].contains("AUTH"),
        "AUTH is not offered in clear: {r:?}"
    );
}

/// The whole path: a message is queued, durable, with a Received header and envelope facts.
#[tokio::test]
async fn plaintext_message_is_queued() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    let r = send_message(
        &mut d,
        "sender@other.org",
        "bob@example.com",
        "Subject: hi\r\n\r\nHello\r\n..dot",
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    assert!(r.lines[0].starts_with("2.0.0 Ok: queued as "), "{r:?}");
    let id = r.lines[0].rsplit(' ').next().unwrap().to_owned();
    let msgs = t.messages();
    assert_eq!(msgs.len(), 1);
    let (env, body) = &msgs[0];
    assert_eq!(env.queue_id.as_str(), id);
    assert_eq!(env.reverse_path, "sender@other.org");
    assert_eq!(env.recipients[0].address, "bob@example.com");
    assert_eq!(env.receipt.helo, "client.test");
    assert!(env.receipt.tls.is_none());
    let body = String::from_utf8(body.clone()).unwrap();
    assert!(body.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby mx.test.example (Postern) with ESMTP\r\n"), "{body}");
    assert!(body.contains(&format!("id {id}")), "{body}");
    // RFC 5321 §4.5.2: dot-stuffing removed.
    assert!(
        body.ends_with("Subject: hi\r\n\r\nHello\r\n.dot\r\n"),
        "{body:?}"
    );
}

/// RFC 5321 §4.1.4: command order.
#[tokio::test]
async fn command_order_errors() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    let r = d.cmd("MAIL FROM:<a@other.org>", 503).await;
    assert!(r.lines[0].starts_with("5.5.1"), "{r:?}");
    d.cmd("EHLO c", 250).await;
    d.cmd("RCPT TO:<bob@example.com>", 503).await;
    d.cmd("DATA", 503).await;
    d.cmd("MAIL FROM:<a@other.org>", 250).await;
    d.cmd("MAIL FROM:<a@other.org>", 503).await;
    let r = d.cmd("DATA", 554).await;
    assert_eq!(r.lines[0], "5.5.1 No valid recipients");
    d.cmd("RSET", 250).await;
    d.cmd("RCPT TO:<bob@example.com>", 503).await;
    d.cmd("NOOP", 250).await;
    d.cmd("HELP", 214).await;
}

/// RFC 5321 §3.6.2: never an open relay. Postmaster is always accepted (§4.5.1).
#[tokio::test]
async fn relay_is_denied_without_network_or_auth() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("MAIL FROM:<a@other.org>", 250).await;
    let r = d.cmd("RCPT TO:<victim@elsewhere.net>", 554).await;
    assert_eq!(r.lines[0], "5.7.1 Relay access denied");
    d.cmd("RCPT TO:<Postmaster>", 250).await;
    d.cmd("RCPT TO:<bob@EXAMPLE.com>", 250).await;
}

#[tokio::test]
async fn relay_network_may_relay() {
    let t = start_with(|s| s.relay.relay_networks = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("MAIL FROM:<a@other.org>", 250).await;
    d.cmd("RCPT TO:<someone@elsewhere.net>", 250).await;
}

/// RFC 5321 §3.5.3 / §7.3: VRFY never confirms a user; EXPN is off.
#[tokio::test]
async fn vrfy_and_expn_leak_nothing() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let r = d.cmd("VRFY bob", 252).await;
    assert!(r.lines[0].starts_with("2.5.0"));
    let r = d.cmd("EXPN staff", 502).await;
    assert!(r.lines[0].starts_with("5.5.1"));
    let t = start_with(|s| s.vrfy = postern_smtpd::VrfyMode::Disabled).await;
    let mut d = t.connect("smtp").await;
    d.cmd("VRFY bob", 502).await;
}

/// RFC 5321 §4.5.3.1.4: 512-octet command lines (incl. CRLF) at the limit pass; one more is 500.
#[tokio::test]
async fn command_line_limit() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let at_limit = format!("NOOP {}", "x".repeat(512 - 2 - 5));
    assert_eq!(at_limit.len() + 2, 512);
    d.cmd(&at_limit, 250).await;
    let over = format!("NOOP {}", "x".repeat(512 - 2 - 5 + 1));
    let r = d.cmd(&over, 500).await;
    assert!(r.lines[0].starts_with("5.5.2"), "{r:?}");
    // The session survives and stays in sync.
    d.cmd("NOOP", 250).await;
    // A huge line never makes the server hold it: it answers once and stays in sync.
    let huge = format!("NOOP {}", "y".repeat(1_000_000));
    d.cmd(&huge, 500).await;
    d.cmd("NOOP", 250).await;
}

/// RFC 5321 §4.5.3.1.1 / §4.5.3.1.2: local part 64, domain 255.
#[tokio::test]
async fn path_limits() {
    let t = start_with(|s| s.relay.relay_networks = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("MAIL FROM:<a@other.org>", 250).await;
    d.cmd(&format!("RCPT TO:<{}@example.com>", "l".repeat(64)), 250)
        .await;
    let r = d
        .cmd(&format!("RCPT TO:<{}@example.com>", "l".repeat(65)), 501)
        .await;
    assert!(r.lines[0].starts_with("5.1.3"), "{r:?}");
    let label = "d".repeat(63);
    let domain255 = format!("{label}.{label}.{label}.{}", "e".repeat(63));
    assert_eq!(domain255.len(), 255);
    d.cmd(&format!("RCPT TO:<x@{domain255}>"), 250).await;
    let domain256 = format!("{label}.{label}.{label}.{}", "e".repeat(62) + "ee");
    assert_eq!(domain256.len(), 256);
    let r = d.cmd(&format!("RCPT TO:<x@{domain256}>"), 501).await;
    assert!(r.lines[0].starts_with("5.1.3"), "{r:?}");
}

/// RFC 5321 §4.5.3.1.6: text lines up to 1000 octets (incl. CRLF).
#[tokio::test]
async fn text_line_limit() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let ok = format!("Subject: x\r\n\r\n{}", "a".repeat(998));
    assert_eq!(
        send_message(&mut d, "a@o.org", "bob@example.com", &ok)
            .await
            .code,
        250
    );
    let long = format!("Subject: x\r\n\r\n{}", "a".repeat(999));
    let r = send_message(&mut d, "a@o.org", "bob@example.com", &long).await;
    assert_eq!(r.code, 554, "{r:?}");
    assert!(r.lines[0].starts_with("5.6.0"), "{r:?}");
    assert_eq!(t.messages().len(), 1);
}

/// RFC 5321 §4.5.3.1.8: 100 recipients accepted, the 101st deferred with 452 4.5.3.
#[tokio::test]
async fn recipient_limit() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("MAIL FROM:<a@o.org>", 250).await;
    for i in 0..100 {
        d.cmd(&format!("RCPT TO:<u{i}@example.com>"), 250).await;
    }
    let r = d.cmd("RCPT TO:<u100@example.com>", 452).await;
    assert!(r.lines[0].starts_with("4.5.3"), "{r:?}");
}

/// RFC 1870 §6: SIZE declared over the limit → 552 at MAIL; actual size over → 552 after DATA.
#[tokio::test]
async fn size_limit() {
    let t = start_with(|s| {
        for l in &mut s.listeners {
            l.limits.max_message_size = 1000;
        }
    })
    .await;
    let mut d = t.connect("smtp").await;
    let r = d.cmd("EHLO c", 250).await;
    assert!(r.lines.iter().any(|l| l == "SIZE 1000"), "{r:?}");
    let r = d.cmd("MAIL FROM:<a@o.org> SIZE=1001", 552).await;
    assert!(r.lines[0].starts_with("5.3.4"));
    d.cmd("MAIL FROM:<a@o.org> SIZE=1000", 250).await;
    d.cmd("RSET", 250).await;
    let body = "x".repeat(990) + "\r\n" + &"y".repeat(50);
    let r = send_message(&mut d, "a@o.org", "bob@example.com", &body).await;
    assert_eq!(r.code, 552, "{r:?}");
    assert!(t.messages().is_empty());
    // Still in sync after the oversized body.
    d.cmd("NOOP", 250).await;
}

/// RFC 5321 §4.3.2 hint: too many errors → 421 and close.
#[tokio::test]
async fn too_many_errors_closes() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    for _ in 0..9 {
        d.cmd("BOGUS", 500).await;
    }
    d.send("BOGUS").await;
    d.expect(500).await;
    let r = d.expect(421).await;
    assert!(r.lines[0].starts_with("4.7.0"), "{r:?}");
    assert!(d.is_closed().await);
}

/// SMTP smuggling (CVE-2023-51764 class): only CRLF.CRLF ends DATA. Each fake
/// terminator is rejected and what follows it is never executed as a command.
#[tokio::test]
async fn smuggling_sequences_are_rejected() {
    let t = start().await;
    for fake in ["\n.\n", "\n.\r\n", "\r.\r\n", "\r\n\x00.\r\n"] {
        let mut d = t.connect("smtp").await;
        d.cmd("EHLO c", 250).await;
        d.cmd("MAIL FROM:<a@o.org>", 250).await;
        d.cmd("RCPT TO:<bob@example.com>", 250).await;
        d.cmd("DATA", 354).await;
        let payload = format!(
            "Subject: first\r\n\r\nbody{fake}MAIL FROM:<evil@o.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
        );
        d.send_raw(payload.as_bytes()).await;
        let r = d.reply().await.unwrap();
        assert_eq!(r.code, 554, "fake terminator {fake:?}: {r:?}");
        assert!(r.lines[0].starts_with("5.6.0"), "{r:?}");
        // Nothing else was answered: the smuggled commands were part of the rejected body.
        d.cmd("NOOP", 250).await;
    }
    assert!(
        t.messages().is_empty(),
        "a smuggled or malformed message was queued"
    );
}

/// RFC 3030: BDAT chunks, LAST commits; BDAT without a transaction still consumes its chunk.
#[tokio::test]
async fn bdat_chunking() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.send_raw(b"BDAT 5\r\nabcde").await;
    d.expect(503).await;
    d.cmd("MAIL FROM:<a@o.org>", 250).await;
    d.cmd("RCPT TO:<bob@example.com>", 250).await;
    d.send_raw(b"BDAT 14\r\nSubject: b\r\n\r\n").await;
    let r = d.expect(250).await;
    assert_eq!(r.lines[0], "2.0.0 14 octets received");
    d.send_raw(b"BDAT 7 LAST\r\nhello\r\n").await;
    let r = d.expect(250).await;
    assert!(r.lines[0].contains("queued as"), "{r:?}");
    let msgs = t.messages();
    assert!(String::from_utf8_lossy(&msgs[0].1).ends_with("Subject: b\r\n\r\nhello\r\n"));
    d.cmd("DATA", 503).await;
    // A BDAT body with a bare LF, or ending in a bare CR, is rejected (smuggling defence).
    for bad in [
        &b"BDAT 8 LAST\r\nab\ncd\r\nx"[..],
        &b"BDAT 4 LAST\r\nab\r\r"[..],
    ] {
        d.cmd("MAIL FROM:<a@o.org>", 250).await;
        d.cmd("RCPT TO:<bob@example.com>", 250).await;
        d.send_raw(bad).await;
        let r = d.expect(554).await;
        assert!(r.lines[0].starts_with("5.6.0"), "{r:?}");
    }
    assert_eq!(t.messages().len(), 1);
}

/// ALPACA-style cross-protocol: an HTTP request gets one error and the connection closes.
#[tokio::test]
async fn http_request_closes() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.send("GET / HTTP/1.1").await;
    d.expect(500).await;
    assert!(d.is_closed().await);
}

/// RFC 5321 §4.5.3.2.7: an idle client is dropped with 421 4.4.2.
#[tokio::test]
async fn command_timeout() {
    let t = start_with(|s| {
        for l in &mut s.listeners {
            l.limits.command_timeout = Duration::from_millis(300);
        }
    })
    .await;
    let mut d = t.connect("smtp").await;
    let r = d.expect(421).await;
    assert!(r.lines[0].starts_with("4.4.2"), "{r:?}");
    assert!(d.is_closed().await);
}

/// Per-IP concurrent sessions: the one over the limit gets 421 4.7.0.
#[tokio::test]
async fn per_ip_connection_limit() {
    let t = start_with(|s| s.max_connections_per_ip = 2).await;
    let a = t.connect("smtp").await;
    let _b = t.connect("smtp").await;
    let mut c = postern_testkit::Dialogue::connect(t.addr("smtp")).await;
    let r = c.expect(421).await;
    assert!(r.lines[0].starts_with("4.7.0"), "{r:?}");
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.connect("smtp").await;
}

/// Graceful shutdown: idle sessions hear 421 4.3.2.
#[tokio::test]
async fn shutdown_says_421() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let server = t.server;
    let stop = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    let r = d.expect(421).await;
    assert!(r.lines[0].starts_with("4.3.2"), "{r:?}");
    stop.await.unwrap();
}

/// A spool that cannot be written answers 451 4.3.0, never 250 (tenet 1).
#[tokio::test]
async fn spool_failure_is_451() {
    let t = start().await;
    // Replace the spool's tmp directory with a file: every begin() now fails (even as root).
    let tmp = t.dir.path().join("spool").join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let r = send_message(
        &mut d,
        "a@o.org",
        "bob@example.com",
        "Subject: x\r\n\r\ny\r\n",
    )
    .await;
    assert_eq!(r.code, 451, "{r:?}");
    assert!(r.lines[0].starts_with("4.3.0"), "{r:?}");
}

/// The transcript has both directions and the session id.
#[tokio::test]
async fn transcript_records_dialogue() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("FOO", 500).await;
    d.cmd("QUIT", 221).await;
    let log = t.transcript_with("*** disconnect").await;
    assert!(log.contains(" <<< EHLO client.test"), "{log}");
    assert!(log.contains(" >>> 250-mx.test.example"), "{log}");
    assert!(log.contains(" >>> 221 2.0.0 Bye"), "{log}");
    // Postfix-style counters on the disconnect line.
    assert!(
        log.contains("*** disconnect (closed by server) ehlo=1 quit=1 unknown=0/1 commands=2/3"),
        "{log}"
    );
}

/// RFC 3461: DSN parameters (RET, ENVID, NOTIFY, ORCPT) are accepted and stored in the envelope.
#[tokio::test]
async fn dsn_parameters_are_stored() {
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd(
        "MAIL FROM:<a@o.org> RET=HDRS ENVID=QQ314159 BODY=8BITMIME SIZE=100",
        250,
    )
    .await;
    d.cmd(
        "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com",
        250,
    )
    .await;
    d.cmd("DATA", 354).await;
    d.send_raw(b"Subject: dsn\r\n\r\nx\r\n.\r\n").await;
    d.expect(250).await;
    let (env, _) = &t.messages()[0];
    assert_eq!(env.params.ret.as_deref(), Some("HDRS"));
    assert_eq!(env.params.envid.as_deref(), Some("QQ314159"));
    assert_eq!(env.params.body.as_deref(), Some("8BITMIME"));
    assert_eq!(env.params.size, Some(100));
    assert_eq!(env.recipients[0].notify.as_deref(), Some("SUCCESS,FAILURE"));
    assert_eq!(
        env.recipients[0].orcpt.as_deref(),
        Some("rfc822;bob@example.com")
    );
    // Unknown parameters are refused (RFC 5321 §4.1.1.11: 555).
    let r = d.cmd("MAIL FROM:<a@o.org> FOO=BAR", 555).await;
    assert!(r.lines[0].starts_with("5.5.4"), "{r:?}");
}

/// RFC 6531: UTF-8 addresses need the SMTPUTF8 parameter (553 5.6.7 without it).
#[tokio::test]
async fn smtputf8_addresses() {
    let t = start_with(|s| s.relay.accepted_domains.push("例子.example".into())).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    let r = d.cmd("MAIL FROM:<用户@例子.example>", 553).await;
    assert!(r.lines[0].starts_with("5.6.7"), "{r:?}");
    d.cmd("MAIL FROM:<ascii@example.com>", 250).await;
    let r = d.cmd("RCPT TO:<收件人@例子.example>", 553).await;
    assert!(r.lines[0].starts_with("5.6.7"), "{r:?}");
    d.cmd("RSET", 250).await;
    d.cmd("MAIL FROM:<用户@例子.example> SMTPUTF8", 250).await;
    d.cmd("RCPT TO:<收件人@例子.example>", 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw("Subject: ünïcödé\r\n\r\nx\r\n.\r\n".as_bytes())
        .await;
    d.expect(250).await;
    let (env, body) = &t.messages()[0];
    assert!(env.params.smtputf8);
    assert_eq!(env.recipients[0].address, "收件人@例子.example");
    assert!(String::from_utf8_lossy(body).contains("with UTF8SMTP\r\n"));
}

/// Global concurrent-session limit: the session over it gets 421 4.7.0.
#[tokio::test]
async fn global_connection_limit() {
    let t = start_with(|s| s.max_connections = 2).await;
    let _a = t.connect("smtp").await;
    let _b = t.connect("submission").await;
    let mut c = postern_testkit::Dialogue::connect(t.addr("smtp")).await;
    let r = c.expect(421).await;
    assert_eq!(r.lines[0], "4.7.0 Too many connections, try again later");
}

/// RFC 5321 §4.5.3.2.6 (DATA block timeout): a client that stops mid-body is
/// dropped with 421 4.4.2 and nothing is queued.
#[tokio::test]
async fn data_block_timeout() {
    let t = start_with(|s| {
        for l in &mut s.listeners {
            l.limits.data_block_timeout = Duration::from_millis(300);
        }
    })
    .await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO c", 250).await;
    d.cmd("MAIL FROM:<a@o.org>", 250).await;
    d.cmd("RCPT TO:<bob@example.com>", 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(b"Subject: stalled\r\n\r\npartial").await;
    let r = d.expect(421).await;
    assert!(r.lines[0].starts_with("4.4.2"), "{r:?}");
    assert!(d.is_closed().await);
    assert!(t.messages().is_empty());
}

/// The transcript can be JSON lines (one object per line, parseable).
#[tokio::test]
async fn transcript_json_format() {
    let t = start_with(|s| s.transcript.format = postern_smtpd::TranscriptFormat::Json).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO json.test", 250).await;
    d.cmd("QUIT", 221).await;
    let log = t.transcript().await;
    let mut seen_ehlo = false;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["session"].is_string() && v["ts"].is_string(), "{line}");
        seen_ehlo |= v["dir"] == "<<<" && v["line"] == "EHLO json.test";
    }
    assert!(seen_ehlo, "{log}");
}

/// The queued hook fires once per durable message with its queue id (the
/// delivery scheduler's doorbell) and the facts of the `received` event:
/// sender, recipients, size, listener, peer, HELO, and no TLS in plaintext.
#[tokio::test]
async fn queued_hook_reports_each_message() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let s = common::settings(dir.path());
    let tls = common::tls_config(&s.tls);
    let (spool, _) = postern_spool::Spool::open(&s.spool).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let hook: postern_smtpd::QueuedHook = Arc::new(move |a| {
        assert_eq!(a.queue_id, a.envelope.queue_id);
        assert!(!a.session.is_empty());
        seen2.lock().unwrap().push(a.envelope.clone());
    });
    let server = postern_smtpd::Server::start_with_hook(s, Some(tls), spool, None, Some(hook))
        .await
        .unwrap();
    let mut d = postern_testkit::Dialogue::connect(server.addr("smtp").unwrap()).await;
    d.expect(220).await;
    d.cmd("EHLO c", 250).await;
    let r = send_message(&mut d, "a@o.org", "bob@example.com", "Subject: h\r\n\r\nx").await;
    let id = r.lines[0].rsplit(' ').next().unwrap().to_owned();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let env = &seen[0];
    assert_eq!(env.queue_id.to_string(), id);
    assert_eq!(env.reverse_path, "a@o.org");
    assert_eq!(env.recipients[0].address, "bob@example.com");
    assert!(env.message_size > 0);
    assert_eq!(env.receipt.listener, "smtp");
    assert_eq!(env.receipt.helo, "c");
    assert!(
        env.receipt.peer.starts_with("127.0.0.1:"),
        "{:?}",
        env.receipt
    );
    assert!(env.receipt.tls.is_none());
}

/// Message tracking: the envelope carries the `Message-ID:` and the decoded
/// `Subject:` (RFC 2047, only with `record_subjects`), for a small message (never flushed before the
/// commit) and for one past the first flush; control characters are removed.
#[tokio::test]
async fn tracking_ids_are_recorded() {
    let t = start_with(|s| s.record_subjects = true).await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    let small = "Message-ID: <small.1@client.test>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n order\r\n\r\nHi\r\n";
    let r = send_message(&mut d, "a@other.org", "bob@example.com", small).await;
    assert_eq!(r.code, 250, "{r:?}");
    let big = format!(
        "Subject: big\x07one\u{202E}\r\nMessage-ID: <big.2@client.test>\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".repeat(3000)
    );
    let r = send_message(&mut d, "a@other.org", "bob@example.com", &big).await;
    assert_eq!(r.code, 250, "{r:?}");
    let r = send_message(
        &mut d,
        "a@other.org",
        "bob@example.com",
        "\r\nno header\r\n",
    )
    .await;
    assert_eq!(r.code, 250, "{r:?}");
    let mut msgs = t.messages();
    msgs.sort_by_key(|(e, _)| e.message_size);
    let by_id = |id: &str| {
        msgs.iter()
            .find(|(e, _)| e.message_id.as_deref() == Some(id))
            .map(|(e, _)| e.clone())
    };
    let small_env = by_id("<small.1@client.test>").expect("small message recorded");
    assert_eq!(small_env.subject.as_deref(), Some("café order"));
    let big_env = by_id("<big.2@client.test>").expect("big message recorded");
    assert_eq!(big_env.subject.as_deref(), Some("bigone"));
    let none = msgs
        .iter()
        .find(|(e, _)| e.message_id.is_none())
        .expect("message without header");
    assert_eq!(none.0.subject, None);

    // Privacy by default: the Message-ID is kept, the subject is not.
    let t = start().await;
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    let r = send_message(&mut d, "a@other.org", "bob@example.com", small).await;
    assert_eq!(r.code, 250, "{r:?}");
    let (env, _) = &t.messages()[0];
    assert_eq!(env.message_id.as_deref(), Some("<small.1@client.test>"));
    assert_eq!(env.subject, None);
}

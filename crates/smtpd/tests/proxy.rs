//! The PROXY protocol on the server's own listeners (the real `Server` on
//! 127.0.0.1:0, every listener behind a "proxy" at 127.0.0.1): the header
//! comes before the TLS handshake on implicit TLS, client octets that arrive
//! in the same segment as the header reach the session, and a proxy that
//! stalls mid-header is cut off at `proxy_timeout` without a reply.
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2 (the header precedes every other octet,
//! TLS included), §2.2 (v2); RFC 8314 §3.3 (implicit TLS).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::time::Duration;

use postern_smtpd::ProxyProtocol;
use postern_testkit::Dialogue;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn behind_proxy() -> common::TestServer {
    common::start_with(|s| {
        for l in &mut s.listeners {
            l.proxy_protocol = Some(ProxyProtocol {
                trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
                timeout: Duration::from_secs(5),
            });
        }
    })
    .await
}

/// A v2 header for 198.51.100.9:1234 → 192.0.2.1:465.
fn v2_header() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    h.extend_from_slice(&[198, 51, 100, 9, 192, 0, 2, 1]);
    h.extend_from_slice(&1234u16.to_be_bytes());
    h.extend_from_slice(&465u16.to_be_bytes());
    h
}

/// Implicit TLS (submissions): the proxy's header first, in clear, then the
/// client's TLS handshake; the session sees the header's client.
#[tokio::test]
async fn implicit_tls_after_the_header() {
    let t = behind_proxy().await;
    let mut d = Dialogue::connect(t.addr("submissions")).await;
    d.send_raw(&v2_header()).await;
    d.upgrade(common::HOST, t.client_tls()).await.unwrap();
    d.expect(220).await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("QUIT", 221).await;
    let log = t
        .transcript_with("connect from 198.51.100.9:1234 via proxy 127.0.0.1:")
        .await;
    assert!(log.contains("listener submissions"), "{log}");
}

/// A client that talks before the greeting, in the same segment as the
/// header: its octets are the session's, in order (and the session treats
/// them as it would without a proxy).
#[tokio::test]
async fn octets_after_the_header_reach_the_session() {
    let t = behind_proxy().await;
    let mut d = Dialogue::connect(t.addr("smtp")).await;
    d.send_raw(b"PROXY TCP4 198.51.100.9 192.0.2.1 1234 25\r\nNOOP\r\n")
        .await;
    d.expect(220).await;
    d.expect(250).await;
    d.cmd("QUIT", 221).await;
    t.transcript_with("connect from 198.51.100.9:1234 via proxy")
        .await;
}

/// A proxy that sends half a header and stalls is closed at `proxy_timeout`
/// (paused time: the deadline passes as soon as everything waits), with no
/// reply and no session.
#[tokio::test(start_paused = true)]
async fn a_stalled_header_is_cut_off() {
    let t = behind_proxy().await;
    let mut s = tokio::net::TcpStream::connect(t.addr("smtp"))
        .await
        .unwrap();
    s.write_all(b"PROXY TCP4 198.51.100.9 ").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_mins(1), s.read_to_end(&mut got))
        .await
        .expect("the server did not close the stalled connection")
        .unwrap();
    assert!(got.is_empty(), "{got:?}");
    let log = t.transcript().await;
    assert!(!log.contains("connect from"), "{log}");
}

//! A listener behind a load balancer: the real `postern serve` with
//! `proxy_protocol = true` and `trusted_proxies = ["127.0.0.1"]`, PROXY
//! headers written by hand (v1 text, v2 binary for IPv4 and IPv6, v2 LOCAL),
//! then SMTP. The client address in the header must be the one everything
//! sees: the transcript's connect line (naming the proxy too), the
//! `Received:` header of the delivered message, the per-IP connection
//! limit and the sender groups. A peer outside `trusted_proxies`, and a trusted peer that sends no
//! header, are closed without a reply and logged with their cause.
//!
//! # Security
//! A forged PROXY header from anyone but the load balancer would let a client
//! pick its own address (and so its sender group, limits and relay rights):
//! only trusted peers are read, and they must send a valid header first.
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2.1 (v1), §2.2 (v2: LOCAL, INET, INET6);
//! RFC 5321 §4.4 (the `Received:` header names the client), §3.8 (`421`).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{Running, eventually};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postern_testkit::{Dialogue, FakeMx, MxTls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;

/// `example.com` routed to `internal`; the smtp listener behind a proxy on
/// 127.0.0.1; one session per client address; 203.0.113.0/24 in a sender
/// group whose policy rejects at RCPT.
fn write_config(dir: &Path, internal: SocketAddr) -> PathBuf {
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "gw.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "off"
proxy_protocol = true
trusted_proxies = ["127.0.0.1"]

[limits]
max_connections_per_ip = 1

[relay]
accepted_domains = ["example.com"]

[log]
level = "info"
transcript = "{transcript}"

[[route]]
domains = ["example.com"]
smarthost = "{internal}"
tls = "none"

[[sender_group]]
name = "BLOCKLIST"
match = ["203.0.113.0/24"]
policy = "BLOCKED"

[[sender_group]]
name = "ALL"
match = ["all"]
policy = "ACCEPTED"

[[mail_flow_policy]]
name = "BLOCKED"
action = "reject"
reject_at = "rcpt"
reply = "550 5.7.1 Not from you"

[[mail_flow_policy]]
name = "ACCEPTED"
action = "accept"
"#,
        data = dir.join("data").display(),
        transcript = dir.join("transcript.log").display(),
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// A v2 PROXY header for a TCP client `src` → `dst` (same family).
fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    let mut addrs = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11); // AF_INET, STREAM
            addrs.extend_from_slice(&s.octets());
            addrs.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            h.push(0x21); // AF_INET6, STREAM
            addrs.extend_from_slice(&s.octets());
            addrs.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    // A PP2_TYPE_AUTHORITY TLV, skipped by the receiver.
    addrs.extend_from_slice(&[0x02, 0, 10]);
    addrs.extend_from_slice(b"mx.example");
    h.extend_from_slice(&u16::try_from(addrs.len()).unwrap().to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

/// Opens a connection through "the proxy" (from 127.0.0.1), sends `header`
/// and waits for the greeting.
async fn through_proxy(addr: SocketAddr, header: &[u8]) -> Dialogue {
    let mut d = Dialogue::connect(addr).await;
    d.send_raw(header).await;
    d.expect(220).await;
    d
}

/// One message for `to` with `helo`, over a dialogue that has its greeting.
async fn send(mut d: Dialogue, helo: &str, to: &str) {
    d.cmd(&format!("EHLO {helo}"), 250).await;
    d.cmd("MAIL FROM:<someone@outside.example>", 250).await;
    d.cmd(&format!("RCPT TO:<{to}>"), 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(b"Subject: via proxy\r\n\r\nhello\r\n.\r\n")
        .await;
    d.expect(250).await;
    d.cmd("QUIT", 221).await;
}

/// The `Received:` header Postern added to the message delivered for `rcpt`.
fn received_header(mx: &FakeMx, rcpt: &str, gw: &Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = mx.received_for(rcpt).first() {
            let text = String::from_utf8_lossy(&m.data).into_owned();
            return text
                .split("\r\n")
                .skip_while(|l| !l.starts_with("Received:"))
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
        }
        assert!(
            Instant::now() < deadline,
            "nothing delivered to {rcpt}\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// v1 (IPv4), v2 (IPv6) and v2 LOCAL: the session, the transcript and the
/// `Received:` header see the client the header names, and the transcript
/// names the proxy as well.
#[test]
fn the_header_names_the_client_everywhere() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr()));
    let addr = gw.addr;

    rt.block_on(async {
        let d = through_proxy(
            addr,
            format!("PROXY TCP4 198.51.100.7 {} 40001 25\r\n", addr.ip()).as_bytes(),
        )
        .await;
        send(d, "client.v1.example", "v1@example.com").await;
        let d = through_proxy(
            addr,
            &v2(
                "[2001:db8::7]:40002".parse().unwrap(),
                "[2001:db8::1]:25".parse().unwrap(),
            ),
        )
        .await;
        send(d, "client.v2.example", "v2@example.com").await;
        // LOCAL (a health check with a session): the proxy itself is the peer.
        let d = through_proxy(addr, b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00").await;
        send(d, "lb.example", "local@example.com").await;
    });

    let r1 = received_header(&mx, "v1@example.com", &gw);
    assert!(
        r1.contains("from client.v1.example ([198.51.100.7])"),
        "{r1}"
    );
    let r2 = received_header(&mx, "v2@example.com", &gw);
    assert!(
        r2.contains("from client.v2.example ([2001:db8::7])"),
        "{r2}"
    );
    let r3 = received_header(&mx, "local@example.com", &gw);
    assert!(r3.contains("from lb.example ([127.0.0.1])"), "{r3}");

    let transcript = dir.path().join("transcript.log");
    let connects = || {
        std::fs::read_to_string(&transcript)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("connect from "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    eventually("three connect lines", || connects().len() >= 3);
    let lines = connects();
    let via = "via proxy 127.0.0.1:";
    assert!(
        lines
            .iter()
            .any(|l| l.contains("connect from 198.51.100.7:40001 via proxy 127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("connect from [2001:db8::7]:40002 via proxy 127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.contains(via)),
        "every session came through the proxy: {lines:?}"
    );
    gw.stop();
}

/// `max_connections_per_ip = 1` counts the client of the header, not the
/// proxy: a second session of 198.51.100.7 gets `421`, while 198.51.100.8,
/// through the same proxy connection source, is served.
#[test]
fn per_ip_admission_counts_the_real_client() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr()));
    let addr = gw.addr;
    rt.block_on(async {
        let first = through_proxy(addr, b"PROXY TCP4 198.51.100.7 192.0.2.1 40001 25\r\n").await;
        let mut second = Dialogue::connect(addr).await;
        second
            .send_raw(b"PROXY TCP4 198.51.100.7 192.0.2.1 40002 25\r\n")
            .await;
        let r = second.expect(421).await;
        assert!(r.text().contains("4.7.0"), "{r:?}");
        let other = through_proxy(addr, b"PROXY TCP4 198.51.100.8 192.0.2.1 40003 25\r\n").await;
        send(other, "other.example", "other@example.com").await;
        send(first, "first.example", "first@example.com").await;
    });
    gw.stop();
}

/// Sender groups match the header's client: 203.0.113.5 falls in the
/// blocked group through the same proxy that 198.51.100.7 passes.
#[test]
fn sender_groups_match_the_real_client() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr()));
    let addr = gw.addr;
    rt.block_on(async {
        let mut d = through_proxy(addr, b"PROXY TCP4 203.0.113.5 192.0.2.1 40001 25\r\n").await;
        d.cmd("EHLO blocked.example", 250).await;
        d.cmd("MAIL FROM:<someone@outside.example>", 250).await;
        d.send("RCPT TO:<user@example.com>").await;
        let r = d.reply().await.unwrap();
        assert_eq!((r.code, r.text()), (550, "5.7.1 Not from you".to_owned()));
        d.cmd("QUIT", 221).await;
        let d = through_proxy(addr, b"PROXY TCP4 198.51.100.7 192.0.2.1 40002 25\r\n").await;
        send(d, "allowed.example", "user@example.com").await;
    });
    gw.stop();
}

/// Reads until the server closes (bounded) and returns what it said. A reset
/// counts as a close: the kernel answers with RST when the server closes a
/// socket with the client's octets still unread.
async fn read_all(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = tokio::time::timeout(common::PATIENCE, s.read(&mut chunk))
            .await
            .expect("the server did not close");
        match n {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A peer outside `trusted_proxies` (127.0.0.2) is closed at once without a
/// single octet, even with a well-formed header; a trusted peer that speaks
/// SMTP instead of sending a header, or a broken header, is closed the same
/// way. Each is logged with its cause id.
#[test]
fn untrusted_peers_and_missing_headers_get_no_reply() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr()));
    let addr = gw.addr;
    rt.block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = sock.connect(addr).await.unwrap();
        // Ignored: the connection may already be closed.
        let _ = s
            .write_all(b"PROXY TCP4 198.51.100.7 192.0.2.1 40001 25\r\n")
            .await;
        assert_eq!(read_all(&mut s).await, b"", "an untrusted peer got a reply");

        for (bytes, _) in [
            (&b"EHLO client.example\r\n"[..], "missing"),
            (
                b"PROXY TCP4 198.51.100.7 192.0.2.1 040001 25\r\n",
                "malformed",
            ),
            (b"\r\n\r\n\0\r\nQUIT\n\x21\x31\x00\x00", "unsupported"),
        ] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(bytes).await.unwrap();
            assert_eq!(read_all(&mut s).await, b"", "{bytes:?} got a reply");
        }
    });
    for id in [
        "proxy.untrusted",
        "proxy.missing",
        "proxy.malformed",
        "proxy.unsupported",
    ] {
        eventually(id, || gw.stderr().contains(id));
    }
    assert!(gw.stderr().contains("127.0.0.2"), "{}", gw.stderr());
    assert!(
        !gw.stderr().contains("198.51.100.7"),
        "a refused header's address reached the log as a client: {}",
        gw.stderr()
    );
    gw.stop();
}

//! Postern as the gateway in front of an internal server, end to end: the real
//! `postern serve` accepts for `example.com` and routes it to a smart host (a
//! [`FakeMx`] standing for Exchange / Sendmail / Postfix behind the gateway).
//!
//! # Security
//! An internal server may honour sender-specified routing: `user%host@ours`
//! and `host!user@ours` go on to `host`, out of the organisation. If the
//! gateway passed such a recipient on from anyone, it would be an open relay
//! in effect (nmap `smtp-open-relay`). These tests check that, from a client
//! that is neither in `[relay] relay_networks` nor authenticated, such
//! recipients get `550 5.7.1` and nothing carrying `%` or `!` (or a source
//! route) ever reaches the internal server, while plain recipients are
//! delivered; and that a relay-network client may still use them.
//!
//! # Standards
//! RFC 5321 §3.6 (relaying), §4.1.1.3 and Appendix C (source routes),
//! RFC 3463 X.7.1; Postfix `allow_untrusted_routing = no`.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::Running;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postern_testkit::{Dialogue, FakeMx, MxTls};

/// The gateway's configuration: `example.com` accepted and routed to
/// `internal`; `relay_networks` as given.
fn write_config(dir: &Path, internal: SocketAddr, relay_networks: &[&str]) -> PathBuf {
    let networks = relay_networks
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let cfg = format!(
        r#"data_dir = "{data}"
hostname = "gw.test.example"

[[listener]]
name = "smtp"
address = "127.0.0.1:0"
kind = "smtp"
tls = "optional"
auth = "off"

[relay]
accepted_domains = ["example.com"]
relay_networks = [{networks}]

[log]
level = "info"

# Running mode: our own domain goes to the internal server.
[[route]]
domains = ["example.com"]
smarthost = "{internal}"
tls = "none"
"#,
        data = dir.join("data").display()
    );
    let p = dir.join("postern.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// Where an internal server that honours `%` and `!` (Sendmail's percent
/// hack, UUCP bang paths) would send `rcpt` next: `Some(host)` when the
/// local part routes elsewhere.
fn internal_next_hop(rcpt: &str) -> Option<String> {
    let (local, _domain) = rcpt.rsplit_once('@')?;
    let local = local.trim_matches('"');
    if let Some((_, host)) = local.rsplit_once('%') {
        return Some(host.to_owned());
    }
    if let Some((_, host)) = local.rsplit_once('@') {
        return Some(host.to_owned());
    }
    local.split_once('!').map(|(host, _)| host.to_owned())
}

/// Sends one RCPT (after `MAIL`) and returns the whole reply line.
async fn rcpt(d: &mut Dialogue, address: &str) -> String {
    d.send(&format!("RCPT TO:<{address}>")).await;
    let r = d.reply().await.expect("connection closed at RCPT");
    format!("{} {}", r.code, r.text())
}

/// One message to `to`, after the routing attempts in `probes`; returns each
/// probe's reply.
async fn session(addr: SocketAddr, probes: &[&str], to: &str, subject: &str) -> Vec<String> {
    let mut d = Dialogue::connect(addr).await;
    d.expect(220).await;
    d.cmd("EHLO client.outside.example", 250).await;
    d.cmd("MAIL FROM:<someone@outside.example>", 250).await;
    let mut replies = Vec::new();
    for p in probes {
        replies.push(rcpt(&mut d, p).await);
    }
    let ok = rcpt(&mut d, to).await;
    assert!(ok.starts_with("250"), "RCPT TO:<{to}>: {ok}");
    d.cmd("DATA", 354).await;
    d.send_raw(format!("Subject: {subject}\r\n\r\nhello\r\n.\r\n").as_bytes())
        .await;
    d.expect(250).await;
    d.cmd("QUIT", 221).await;
    replies
}

/// Waits (bounded) until the internal server has accepted a message for `rcpt`.
fn wait_delivered(mx: &FakeMx, rcpt: &str, gw: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while mx.received_for(rcpt).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing delivered to {rcpt}; the internal server saw {:?}\n{}",
            mx.commands(),
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The model of the internal server is right, so the assertions built on it
/// can fail.
#[test]
fn next_hop_model() {
    let hop = |a: &str| internal_next_hop(a);
    assert_eq!(
        hop("user%evil.example@example.com").as_deref(),
        Some("evil.example")
    );
    assert_eq!(
        hop("evil.example!user@example.com").as_deref(),
        Some("evil.example")
    );
    assert_eq!(
        hop("\"user@evil.example\"@example.com").as_deref(),
        Some("evil.example")
    );
    assert_eq!(hop("user@example.com"), None);
}

/// From an untrusted client, `%`, `!` and quoted `@` in the local part get
/// `550 5.7.1` and never reach the internal server; a source route is
/// stripped; a plain recipient is delivered.
#[test]
fn untrusted_client_cannot_route_through_the_internal_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr(), &[]));

    let probes = [
        "user%evil.example@example.com",
        "evil.example!user@example.com",
        "\"user@evil.example\"@example.com",
        "\"user%evil.example\"@example.com",
    ];
    let replies = rt.block_on(session(gw.addr, &probes, "user@example.com", "one"));
    for (p, r) in probes.iter().zip(&replies) {
        assert!(r.starts_with("550 5.7.1"), "RCPT TO:<{p}>: {r}");
    }
    // RFC 5321 §4.1.1.3 / Appendix C: the route is dropped, the mailbox kept.
    let replies = rt.block_on(session(
        gw.addr,
        &[],
        "@evil.example,@relay.example:second@example.com",
        "two",
    ));
    assert!(replies.is_empty());

    wait_delivered(&mx, "user@example.com", &gw);
    wait_delivered(&mx, "second@example.com", &gw);
    for m in mx.received() {
        for r in &m.rcpts {
            assert_eq!(
                internal_next_hop(r),
                None,
                "{r} reached the internal server"
            );
        }
    }
    let seen = mx.commands();
    assert!(
        !seen
            .iter()
            .any(|c| c.contains(['%', '!']) || c.contains("evil.example")),
        "the internal server saw {seen:?}"
    );
}

/// A client in `relay_networks` is trusted to route: the `%` address is
/// accepted and passed on as given.
#[test]
fn relay_network_client_may_use_percent_routing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mx = rt.block_on(FakeMx::start(MxTls::None));
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(&write_config(dir.path(), mx.addr(), &["127.0.0.1/32"]));

    let to = "user%evil.example@example.com";
    let replies = rt.block_on(session(gw.addr, &[], to, "trusted"));
    assert!(replies.is_empty());
    wait_delivered(&mx, to, &gw);
    assert_eq!(
        internal_next_hop(&mx.received_for(to)[0].rcpts[0]).as_deref(),
        Some("evil.example")
    );
}

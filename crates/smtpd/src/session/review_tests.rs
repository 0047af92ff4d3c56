//! Regression tests from the security review of the gateway (issue 9): IPv4-mapped
//! clients, long senders and greylisting keys, failing allowlists, forged PTR names
//! against `rdns-verified:` allowlists, and `postern trace` counting within its own
//! session.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use postern_dns::{DnsSettings, Resolver};
use postern_policy::admission::{Admission, FlowAction, MailFlowPolicy, Matcher, SenderGroup};
use postern_testkit::FakeDns;

use super::tests::start_full_from;
use crate::settings::SessionLimits;

fn resolver(dns: &FakeDns) -> Resolver {
    Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsSettings::default()
    })
    .unwrap()
}

fn one_group(p: MailFlowPolicy) -> Admission {
    Admission::new(
        vec![SenderGroup {
            name: "ALL".into(),
            matchers: vec![Matcher::parse("all").unwrap()],
            policy: 0,
            listeners: Vec::new(),
        }],
        vec![p],
        Vec::new(),
    )
}

/// A dual-stack listener ([::]:25) or a PROXY TCP6 header shows an IPv4
/// client as ::ffff:a.b.c.d. Its PTR exists; require_ptr must pass.
#[tokio::test]
async fn mapped_ipv4_client_with_ptr_passes_require_ptr() {
    let dns = FakeDns::start().await;
    dns.add_ptr("192.0.2.7".parse().unwrap(), "mail.client.example");
    dns.add_a(
        "mail.client.example",
        "192.0.2.7".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let mut p = MailFlowPolicy::new("NEEDS-PTR", FlowAction::Accept);
    p.require_ptr = true;
    p.banner = Some("verified".into());
    let mut h = start_full_from(
        SessionLimits::default(),
        64 * 1024,
        |s| s.admission = one_group(p),
        Some(resolver(&dns)),
        "[::ffff:192.0.2.7]:4000".parse().unwrap(),
    );
    assert_eq!(h.reply().await, "220 mx.test ESMTP verified\r\n");
}

fn grey_session(dns: &FakeDns) -> super::tests::Harness {
    let mut p = MailFlowPolicy::new("GREY", FlowAction::Accept);
    p.greylist = true;
    start_full_from(
        SessionLimits::default(),
        64 * 1024,
        |s| s.admission = one_group(p),
        Some(resolver(dns)),
        "192.0.2.7:4000".parse().unwrap(),
    )
}

/// Control: a short sender is greylisted.
#[tokio::test]
async fn short_sender_is_greylisted() {
    let dns = FakeDns::start().await;
    let mut h = grey_session(&dns);
    h.reply().await;
    h.send(b"EHLO c.test\r\n").await;
    h.reply().await;
    h.send(b"MAIL FROM:<a@b.test>\r\n").await;
    assert!(h.reply().await.starts_with("250"));
    h.send(b"RCPT TO:<u@example.com>\r\n").await;
    let r = h.reply().await;
    assert!(r.starts_with("450"), "{r}");
}

/// A long SMTPUTF8 sender (a legal 208-octet domain) makes the triplet key
/// 600 chars, `grey-ok:` + it 608 > MAX_KEY_LEN: the store says Invalid,
/// greylisting fails open.
#[tokio::test]
async fn long_sender_is_greylisted_too() {
    let dns = FakeDns::start().await;
    let mut h = grey_session(&dns);
    h.reply().await;
    h.send(b"EHLO c.test\r\n").await;
    h.reply().await;
    let from = format!(
        "MAIL FROM:<a@{}.example> SMTPUTF8\r\n",
        "\u{e9}".repeat(100)
    );
    h.send(from.as_bytes()).await;
    let r = h.reply().await;
    assert!(r.starts_with("250"), "{r}");
    h.send(b"RCPT TO:<u@example.com>\r\n").await;
    let r = h.reply().await;
    assert!(r.starts_with("450"), "long sender not greylisted: {r}");
}

fn groups(
    list: &[(&str, &[&str], usize)],
    policies: Vec<MailFlowPolicy>,
    lists: Vec<postern_policy::admission::DnsList>,
) -> Admission {
    Admission::new(
        list.iter()
            .map(|(n, m, p)| SenderGroup {
                name: (*n).into(),
                matchers: m.iter().map(|x| Matcher::parse(x).unwrap()).collect(),
                policy: *p,
                listeners: Vec::new(),
            })
            .collect(),
        policies,
        lists,
    )
}

fn bannered(name: &str, action: FlowAction, banner: &str) -> MailFlowPolicy {
    let mut p = MailFlowPolicy::new(name, action);
    p.banner = Some(banner.into());
    p
}

/// A session from 192.0.2.7 under SUSPECT (`fcrdns:fail`), PARTNERS
/// (`rdns-verified:.partner.example`) and ALL, each with its own banner.
fn partner_session(dns: &FakeDns) -> super::tests::Harness {
    let a = groups(
        &[
            ("SUSPECT", &["fcrdns:fail"], 0),
            ("PARTNERS", &["rdns-verified:.partner.example"], 1),
            ("ALL", &["all"], 2),
        ],
        vec![
            bannered("SUSPECT", FlowAction::Accept, "suspect"),
            bannered("TRUSTED", FlowAction::Accept, "partner"),
            bannered("ACCEPTED", FlowAction::Accept, "plain"),
        ],
        Vec::new(),
    );
    start_full_from(
        SessionLimits::default(),
        64 * 1024,
        |s| s.admission = a,
        Some(resolver(dns)),
        "192.0.2.7:4000".parse().unwrap(),
    )
}

/// A forged partner name in the client's own reverse zone, plus a second name
/// that SERVFAILs (FCrDNS undecided, so `fcrdns:fail` does not match): an
/// allowlist on `rdns-verified:` (what the lint asks for) does not let it in;
/// the real partner, whose name resolves back, is let in.
#[tokio::test]
async fn forged_partner_ptr_does_not_reach_a_verified_allowlist() {
    let dns = FakeDns::start().await;
    let client: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    dns.add_ptr(client, "mx.partner.example");
    dns.add_ptr(client, "x.evil.example");
    dns.add_a(
        "mx.partner.example",
        "198.51.100.1".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    dns.fail("x.evil.example", postern_testkit::DnsFailure::ServFail);
    let mut h = partner_session(&dns);
    let r = h.reply().await;
    assert_eq!(r, "220 mx.test ESMTP plain\r\n", "forged PTR allowlisted");

    // The real partner: its name resolves back to it.
    dns.add_a(
        "mx.partner.example",
        "192.0.2.7".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let mut h = partner_session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP partner\r\n");
}

/// A DNSWL with a negative weight does not answer: the score rises and the
/// client is rejected because of a DNS failure.
#[tokio::test]
async fn failing_allowlist_never_turns_into_a_reject() {
    let dns = FakeDns::start().await;
    dns.add_a(
        "7.2.0.192.bl.example",
        "127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    dns.fail(
        "7.2.0.192.wl.example",
        postern_testkit::DnsFailure::ServFail,
    );
    let lists = vec![
        postern_policy::admission::DnsList {
            zone: "bl.example".into(),
            codes: None,
            weight: 3,
        },
        postern_policy::admission::DnsList {
            zone: "wl.example".into(),
            codes: None,
            weight: -5,
        },
    ];
    let a = groups(
        &[("BLOCK", &["dnsbl-score>=3"], 0), ("ALL", &["all"], 1)],
        vec![
            MailFlowPolicy::new("BLOCKED", FlowAction::Reject),
            bannered("ACCEPTED", FlowAction::Accept, "plain"),
        ],
        lists,
    );
    let mut h = start_full_from(
        SessionLimits::default(),
        64 * 1024,
        |s| s.admission = a,
        Some(resolver(&dns)),
        "192.0.2.7:4000".parse().unwrap(),
    );
    let r = h.reply().await;
    assert!(!r.starts_with("554"), "rejected on a DNS failure: {r}");
}

/// Control for the forged-PTR probe: without the failing name, SUSPECT.
#[tokio::test]
async fn control_forged_partner_ptr_alone_is_suspect() {
    let dns = FakeDns::start().await;
    let client: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    dns.add_ptr(client, "mx.partner.example");
    dns.add_a(
        "mx.partner.example",
        "198.51.100.1".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let mut h = partner_session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP suspect\r\n");
}

/// `postern trace` with two recipients when the client has one recipient
/// left this hour: the live session refuses the second (452 4.5.3); the dry
/// run's `hit` writes nothing, so the trace accepts both.
#[tokio::test]
async fn trace_counts_recipients_within_its_own_session() {
    use postern_counters::CounterStore as _;
    let dir = tempfile::tempdir().unwrap();
    let mut s = super::tests::settings(dir.path(), SessionLimits::default());
    let mut p = MailFlowPolicy::new("RATED", FlowAction::Accept);
    p.max_recipients_per_hour_per_ip = Some(2);
    s.admission = one_group(p);
    let store = std::sync::Arc::new(postern_counters::MemoryStore::default());
    store
        .hit(
            &crate::counting::key_ip("rcpt", "192.0.2.7".parse().unwrap()),
            1,
            Duration::from_hours(1),
        )
        .await
        .unwrap();
    let report = crate::trace::trace(
        s,
        None,
        None,
        store,
        crate::trace::TraceInput {
            ip: "192.0.2.7".parse().unwrap(),
            listener: None,
            helo: "c.test".into(),
            from: Some("a@b.test".into()),
            rcpts: vec!["u1@example.com".into(), "u2@example.com".into()],
            tls: false,
        },
    )
    .await
    .unwrap();
    let text: Vec<String> = report
        .dialogue
        .iter()
        .map(|d| format!("{} {}", d.dir, d.text))
        .collect();
    assert!(text.iter().any(|l| l.starts_with("S 452")), "{text:#?}");
}

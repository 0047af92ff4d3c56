//! Sender groups on PTR and FCrDNS, through the whole session driver with a
//! FakeDns resolver and a client at 192.0.2.7 (loopback clients cannot be
//! used here: hickory answers PTR of 127/8 itself, RFC 6761 §6.3).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use postern_dns::{DnsSettings, Resolver};
use postern_policy::admission::{Admission, FlowAction, MailFlowPolicy, Matcher, SenderGroup};
use postern_testkit::{DnsFailure, FakeDns};

use super::tests::{Harness, start_full};
use crate::settings::SessionLimits;

const CLIENT: &str = "192.0.2.7";

fn admission() -> Admission {
    let mut needs_ptr = MailFlowPolicy::new("NEEDS-PTR", FlowAction::Accept);
    needs_ptr.require_ptr = true;
    needs_ptr.banner = Some("verified".into());
    let mut suspect = MailFlowPolicy::new("SUSPECT", FlowAction::Accept);
    suspect.banner = Some("suspect".into());
    let mut dynamic = MailFlowPolicy::new("DYNAMIC", FlowAction::Reject);
    dynamic.reply = None;
    let g = |name: &str, m: &[&str], policy: usize| SenderGroup {
        name: name.into(),
        matchers: m.iter().map(|x| Matcher::parse(x).unwrap()).collect(),
        policy,
        listeners: Vec::new(),
    };
    Admission::new(
        vec![
            g("DYNAMIC", &["rdns:*.dyn.*"], 2),
            g("SUSPECT", &["fcrdns:fail"], 1),
            g("REST", &["all"], 0),
        ],
        vec![needs_ptr, suspect, dynamic],
        Vec::new(),
    )
}

fn session(dns: &FakeDns) -> Harness {
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsSettings::default()
    })
    .unwrap();
    start_full(
        SessionLimits::default(),
        64 * 1024,
        |s| s.admission = admission(),
        Some(resolver),
    )
}

#[tokio::test]
async fn fcrdns_pass_and_require_ptr_met() {
    let dns = FakeDns::start().await;
    dns.add_ptr(CLIENT.parse().unwrap(), "mail.client.example");
    dns.add_a(
        "mail.client.example",
        CLIENT.parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let mut h = session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP verified\r\n");
}

#[tokio::test]
async fn fcrdns_fail_when_the_name_points_elsewhere() {
    let dns = FakeDns::start().await;
    dns.add_ptr(CLIENT.parse().unwrap(), "liar.client.example");
    dns.add_a(
        "liar.client.example",
        "198.51.100.1".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let mut h = session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP suspect\r\n");
}

#[tokio::test]
async fn a_ptr_spelled_as_the_address_does_not_confirm_itself() {
    let dns = FakeDns::start().await;
    dns.add_ptr(CLIENT.parse().unwrap(), CLIENT);
    let mut h = session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP suspect\r\n");
}

#[tokio::test]
async fn rdns_pattern_rejects() {
    let dns = FakeDns::start().await;
    dns.add_ptr(CLIENT.parse().unwrap(), "host-7.dyn.isp.example");
    let mut h = session(&dns);
    assert_eq!(
        h.reply().await,
        "554 5.7.1 Access denied for [192.0.2.7]\r\n"
    );
    h.send(b"EHLO x.example\r\n").await;
    assert!(h.reply().await.starts_with("503 "));
}

#[tokio::test]
async fn no_ptr_fails_fcrdns_and_require_ptr_refuses() {
    // No PTR: FCrDNS fails → SUSPECT (no PTR requirement) …
    let dns = FakeDns::start().await;
    let mut h = session(&dns);
    assert_eq!(h.reply().await, "220 mx.test ESMTP suspect\r\n");
    // … and a policy that requires a PTR refuses such a client.
    let mut a = admission();
    a.groups.remove(1);
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsSettings::default()
    })
    .unwrap();
    let mut h = start_full(
        SessionLimits::default(),
        4096,
        |s| s.admission = a,
        Some(resolver),
    );
    assert_eq!(
        h.reply().await,
        "554 5.7.25 Client host [192.0.2.7] has no PTR record (RFC 7372 reverse DNS required)\r\n"
    );
}

#[tokio::test]
async fn a_failing_reverse_zone_never_rejects() {
    let dns = FakeDns::start().await;
    dns.fail("7.2.0.192.in-addr.arpa", DnsFailure::ServFail);
    // FCrDNS undecided → not SUSPECT; the REST policy requires a PTR it
    // cannot know: 421 4.7.25 (try later), never a 5xx.
    let mut h = session(&dns);
    let r = h.reply().await;
    assert!(
        r.starts_with("421 4.7.25 Client host [192.0.2.7]: reverse DNS lookup failed"),
        "{r}"
    );
}

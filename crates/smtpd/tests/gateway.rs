//! Sender groups and mail-flow policies against a real server: clients on
//! 127.0.0.2–127.0.0.30 act as different Internet hosts (Linux answers for all
//! of 127/8), a `FakeDns` answers PTR, A and DNS-list queries.
//!
//! Each behaviour (accept, relay, reject at connect and at RCPT, tempfail,
//! tcp-refuse, continue) and each limit the session enforces (PTR required,
//! concurrent connections, messages per session, recipients per message,
//! size, TLS override) at the limit and past it.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use postern_dns::{DnsSettings, Resolver};
use postern_policy::admission::{
    Admission, DnsList, FlowAction, MailFlowPolicy, Matcher, RejectAt, SenderGroup,
};
use postern_smtpd::ServerSettings;
use postern_smtpd::gateway::Services;
use postern_testkit::{Dialogue, DnsFailure, FakeDns};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> std::net::Ipv4Addr {
    s.parse().unwrap()
}

fn group(name: &str, matchers: &[&str], policy: &str, policies: &[MailFlowPolicy]) -> SenderGroup {
    SenderGroup {
        name: name.into(),
        matchers: matchers
            .iter()
            .map(|m| Matcher::parse(m).unwrap())
            .collect(),
        policy: policies.iter().position(|p| p.name == policy).unwrap(),
        listeners: Vec::new(),
    }
}

/// The table the tests share: one group per behaviour, by address, then the
/// DNS-based groups, then ALL.
fn table() -> Admission {
    let mut policies = vec![
        MailFlowPolicy::new("ACCEPTED", FlowAction::Accept),
        MailFlowPolicy::new("BLOCKED", FlowAction::Reject),
        MailFlowPolicy::new("TEMP", FlowAction::TempFail),
        MailFlowPolicy::new("DROP", FlowAction::TcpRefuse),
        MailFlowPolicy::new("RELAYED", FlowAction::Relay),
        MailFlowPolicy::new("TAGGED", FlowAction::Continue),
    ];
    let mut delayed = MailFlowPolicy::new("DELAYED", FlowAction::Reject);
    delayed.reject_at = RejectAt::Rcpt;
    policies.push(delayed);
    let mut throttled = MailFlowPolicy::new("THROTTLED", FlowAction::Accept);
    throttled.max_messages_per_session = Some(2);
    throttled.max_recipients_per_message = Some(2);
    throttled.max_message_size = Some(2048);
    throttled.max_concurrent_connections_per_ip = Some(2);
    throttled.banner = Some("slow down".into());
    policies.push(throttled);
    let mut ptr = MailFlowPolicy::new("NEEDS-PTR", FlowAction::Accept);
    ptr.require_ptr = true;
    policies.push(ptr);
    let mut tls = MailFlowPolicy::new("TLS-ONLY", FlowAction::Accept);
    tls.tls = Some(postern_smtpd::TlsMode::Required);
    policies.push(tls);
    let mut rated = MailFlowPolicy::new("RATED", FlowAction::Accept);
    rated.max_connections_per_minute_per_ip = Some(3);
    rated.max_recipients_per_hour_per_ip = Some(3);
    rated.max_messages_per_hour_per_sender = Some(2);
    rated.sender_rate_exceptions = vec!["@lists.test".into()];
    policies.push(rated);
    let mut grey = MailFlowPolicy::new("GREY", FlowAction::Accept);
    grey.greylist = true;
    policies.push(grey);
    let p = &policies;
    let groups = vec![
        group("TAG", &["127.0.0.20"], "TAGGED", p),
        group(
            "BLOCKLIST",
            &["127.0.0.3", "dnsbl:bl.test=127.0.0.2"],
            "BLOCKED",
            p,
        ),
        group("DELAY", &["127.0.0.4"], "DELAYED", p),
        group("TEMPFAIL", &["127.0.0.5"], "TEMP", p),
        group("REFUSE", &["127.0.0.6"], "DROP", p),
        group("PARTNERS", &["127.0.0.7-127.0.0.8"], "RELAYED", p),
        group("PTR", &["127.0.0.10"], "NEEDS-PTR", p),
        group("STRICT", &["127.0.0.12"], "TLS-ONLY", p),
        group("RATES", &["127.0.0.13-127.0.0.14"], "RATED", p),
        group("GREYLISTED", &["127.0.0.15-127.0.0.16"], "GREY", p),
        // Loopback clients: hickory answers PTR of 127/8 itself with
        // `localhost` (RFC 6761 §6.3), which does not resolve back to
        // 127.0.0.2+ — every test client fails FCrDNS. The PTR and FCrDNS
        // paths are tested with FakeDns on documentation addresses in the
        // session tests (`src/session/tests.rs`).
        group("SLOW", &["127.0.0.9", "dnsbl-score>=3"], "THROTTLED", p),
        group("ALL", &["all"], "ACCEPTED", p),
    ];
    let lists = vec![
        DnsList {
            zone: "bl.test".into(),
            codes: None,
            weight: 2,
        },
        DnsList {
            zone: "bl2.test".into(),
            codes: None,
            weight: 1,
        },
    ];
    let mut a = Admission::new(groups, policies, lists);
    a.greylist.delay = Duration::from_secs(1);
    a.greylist.auto_allow_after = 2;
    a
}

struct Gw {
    srv: common::TestServer,
    dns: FakeDns,
    log: postern_track::MemoryLog,
}

async fn start() -> Gw {
    let dns = FakeDns::start().await;
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsSettings::default()
    })
    .unwrap();
    let (mail_log, log) = postern_track::MailLog::memory();
    let srv = common::start_with_services(
        |s: &mut ServerSettings| {
            s.admission = table();
            s.max_connections_per_ip = 10;
        },
        Services {
            resolver: Some(resolver),
            counters: None,
            mail_log: Some(mail_log),
            dmarc_reports: None,
        },
    )
    .await;
    Gw { srv, dns, log }
}

impl Gw {
    async fn from(&self, client: &str) -> Dialogue {
        Dialogue::connect_from(ip(client), self.srv.addr("smtp")).await
    }
}

#[tokio::test]
async fn reject_at_connect_serves_only_quit() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.3").await;
    let r = d.expect(554).await;
    assert_eq!(r.lines[0], "5.7.1 Access denied for [127.0.0.3]");
    d.cmd("EHLO client.test", 503).await;
    d.cmd("MAIL FROM:<a@b.test>", 503).await;
    d.cmd("QUIT", 221).await;
    let log = gw.srv.transcript_with("refused by policy BLOCKED").await;
    assert!(
        log.contains("sender group BLOCKLIST (matched by 127.0.0.3), policy BLOCKED"),
        "{log}"
    );
    // The next address is not blocked.
    let mut d = gw.from("127.0.0.2").await;
    d.expect(220).await;
}

#[tokio::test]
async fn delayed_rejection_answers_at_rcpt() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.4").await;
    d.expect(220).await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    let r = d.cmd("RCPT TO:<user@example.com>", 550).await;
    assert_eq!(r.lines[0], "5.7.1 Access denied for [127.0.0.4]");
    // Postmaster too: the policy refuses the client, not the address.
    d.cmd("RCPT TO:<postmaster@example.com>", 550).await;
    d.cmd("QUIT", 221).await;
}

#[tokio::test]
async fn tempfail_closes_and_tcp_refuse_says_nothing() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.5").await;
    let r = d.expect(421).await;
    assert!(r.lines[0].starts_with("4.7.0 Mail from [127.0.0.5] is not accepted now"));
    assert!(d.is_closed().await);

    let mut d = gw.from("127.0.0.6").await;
    assert!(
        d.reply().await.is_none(),
        "tcp-refuse must close without a reply"
    );
    gw.srv
        .transcript_with("connect refused by policy DROP (group REFUSE, tcp-refuse)")
        .await;
}

#[tokio::test]
async fn relay_policy_relays_and_others_do_not() {
    let gw = start().await;
    for (client, code) in [("127.0.0.7", 250), ("127.0.0.8", 250), ("127.0.0.2", 554)] {
        let mut d = gw.from(client).await;
        d.expect(220).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("MAIL FROM:<a@b.test>", 250).await;
        d.cmd("RCPT TO:<someone@elsewhere.test>", code).await;
    }
}

#[tokio::test]
async fn continue_goes_on_to_the_next_group() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.20").await;
    d.expect(220).await;
    gw.srv
        .transcript_with("sender group ALL (matched by all), policy ACCEPTED")
        .await;
}

#[tokio::test]
async fn throttled_limits_at_the_limit_and_past_it() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.9").await;
    let r = d.expect(220).await;
    assert_eq!(r.lines[0], "mx.test.example ESMTP slow down");
    let ehlo = d.cmd("EHLO client.test", 250).await;
    assert!(
        ehlo.lines.iter().any(|l| l == "SIZE 2048"),
        "{:?}",
        ehlo.lines
    );
    // Recipients per message: 2 then 452 4.5.3.
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    d.cmd("RCPT TO:<u1@example.com>", 250).await;
    d.cmd("RCPT TO:<u2@example.com>", 250).await;
    d.cmd("RCPT TO:<u3@example.com>", 452).await;
    d.cmd("DATA", 354).await;
    d.send("Subject: one\r\n\r\nbody\r\n.").await;
    d.expect(250).await;
    // Size: over 2048 octets is refused at MAIL by SIZE=.
    d.cmd("MAIL FROM:<a@b.test> SIZE=4096", 552).await;
    // Messages per session: the second is fine, the third gets 421.
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    d.cmd("RCPT TO:<u1@example.com>", 250).await;
    d.cmd("DATA", 354).await;
    d.send("Subject: two\r\n\r\nbody\r\n.").await;
    d.expect(250).await;
    let r = d.cmd("MAIL FROM:<a@b.test>", 421).await;
    assert!(r.lines[0].starts_with("4.7.0 Too many messages in this session"));
    assert!(d.is_closed().await);
}

#[tokio::test]
async fn concurrent_connections_per_ip() {
    let gw = start().await;
    let mut first = gw.from("127.0.0.9").await;
    first.expect(220).await;
    let mut second = gw.from("127.0.0.9").await;
    second.expect(220).await;
    let mut third = gw.from("127.0.0.9").await;
    let r = third.expect(421).await;
    assert_eq!(
        r.lines[0],
        "4.7.0 Too many connections from [127.0.0.9], try again later"
    );
    // Another address is not counted with it.
    let mut other = gw.from("127.0.0.2").await;
    other.expect(220).await;
    first.cmd("QUIT", 221).await;
    assert!(first.is_closed().await);
    // After one left, a new one fits again (the ticket is released at close).
    let mut ok = None;
    for _ in 0..50 {
        let mut d = gw.from("127.0.0.9").await;
        if d.reply().await.is_some_and(|r| r.code == 220) {
            ok = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok.is_some());
}

#[tokio::test]
async fn ptr_required_is_met_by_localhost() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.10").await;
    d.expect(220).await;
}

#[tokio::test]
async fn tls_override_requires_starttls() {
    let gw = start().await;
    let mut d = gw.from("127.0.0.12").await;
    d.expect(220).await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 530).await;
    // Others on the same listener may send in clear.
    let mut d = gw.from("127.0.0.2").await;
    d.expect(220).await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
}

#[tokio::test]
async fn dns_lists_scores_and_failures() {
    let gw = start().await;
    // Listed with the code BLOCKLIST counts.
    gw.dns.add_a("21.0.0.127.bl.test", v4("127.0.0.2"));
    let mut d = gw.from("127.0.0.21").await;
    d.expect(554).await;
    // Listed in both lists with another code: score 2 + 1 = 3, SLOW.
    gw.dns.add_a("22.0.0.127.bl.test", v4("127.0.0.4"));
    gw.dns.add_a("22.0.0.127.bl2.test", v4("127.0.0.2"));
    let mut d = gw.from("127.0.0.22").await;
    assert_eq!(
        d.expect(220).await.lines[0],
        "mx.test.example ESMTP slow down"
    );
    gw.srv.transcript_with("dnsbl score 3").await;
    // A DNS list that fails (SERVFAIL) lists nobody: the client falls
    // through to ALL, never a reject.
    gw.dns.fail("25.0.0.127.bl.test", DnsFailure::ServFail);
    let mut d = gw.from("127.0.0.25").await;
    assert_eq!(
        d.expect(220).await.lines[0],
        "mx.test.example ESMTP Postern"
    );
    let log = gw
        .srv
        .transcript_with("sender group ALL (matched by all), policy ACCEPTED")
        .await;
    assert!(log.contains("sender group ALL"), "{log}");
}

async fn send_one(d: &mut Dialogue, from: &str, rcpts: &[(&str, u16)]) {
    d.cmd(&format!("MAIL FROM:<{from}>"), 250).await;
    for (r, code) in rcpts {
        d.cmd(&format!("RCPT TO:<{r}>"), *code).await;
    }
    d.cmd("DATA", 354).await;
    d.send("Subject: x\r\n\r\nbody\r\n.").await;
    d.expect(250).await;
}

#[tokio::test]
async fn rates_per_ip_and_per_sender_at_the_limit_and_past_it() {
    let gw = start().await;
    // Connections per minute: 3 fit, the 4th gets 421 4.7.0.
    let mut s1 = gw.from("127.0.0.13").await;
    s1.expect(220).await;
    s1.cmd("EHLO client.test", 250).await;
    // Recipients per hour from the address: 3 accepted, then 452 4.5.3 —
    // across messages and sessions.
    send_one(
        &mut s1,
        "a@b.test",
        &[("u1@example.com", 250), ("u2@example.com", 250)],
    )
    .await;
    let mut s2 = gw.from("127.0.0.13").await;
    s2.expect(220).await;
    s2.cmd("EHLO client.test", 250).await;
    s2.cmd("MAIL FROM:<c@d.test>", 250).await;
    s2.cmd("RCPT TO:<u3@example.com>", 250).await;
    let r = s2.cmd("RCPT TO:<u4@example.com>", 452).await;
    assert_eq!(
        r.lines[0],
        "4.5.3 Too many recipients this hour from [127.0.0.13], try again later"
    );
    s2.cmd("QUIT", 221).await;
    let mut s3 = gw.from("127.0.0.13").await;
    s3.expect(220).await;
    let mut s4 = gw.from("127.0.0.13").await;
    let r = s4.expect(421).await;
    assert!(r.lines[0].starts_with("4.7.0 Too many connections per minute from [127.0.0.13]"));
    // Another address has its own counters; the sender rate is per sender:
    // 2 messages from a@b.test fit (one above came from .13: the count is
    // shared), the next is 450 4.7.1; a listed exception and <> never count.
    let mut s5 = gw.from("127.0.0.14").await;
    s5.expect(220).await;
    s5.cmd("EHLO client.test", 250).await;
    send_one(&mut s5, "a@b.test", &[("v1@example.com", 250)]).await;
    let r = s5.cmd("MAIL FROM:<A@B.test>", 450).await;
    assert_eq!(
        r.lines[0],
        "4.7.1 Too much mail from <A@B.test> this hour, try again later"
    );
    send_one(&mut s5, "news@lists.test", &[("v2@example.com", 250)]).await;
    s5.cmd("MAIL FROM:<>", 250).await;
    s5.cmd("RSET", 250).await;
    // The mail log has one session event per decision, named by its kind.
    let events = gw.log.session_records();
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names,
        ["throttled", "throttled", "throttled"],
        "{events:#?}"
    );
    let postern_track::SessionEvent::Throttled(d) = &events[2].event else {
        panic!("{events:#?}")
    };
    assert_eq!(d.rule, "max_messages_per_hour_per_sender");
    assert_eq!(d.group.as_deref(), Some("RATES"));
    assert_eq!(d.policy.as_deref(), Some("RATED"));
    assert_eq!(d.sender.as_deref(), Some("A@B.test"));
    assert!(d.reply.starts_with("450 4.7.1 Too much mail"), "{d:?}");
    let log = gw
        .srv
        .transcript_with("max_messages_per_hour_per_sender")
        .await;
    assert!(
        log.contains(
            "mail refused by policy RATED (group RATES, max_messages_per_hour_per_sender): 450"
        ),
        "{log}"
    );
}

#[tokio::test]
async fn greylisting_defers_then_passes_and_auto_allows_the_network() {
    let gw = start().await;
    let mut s1 = gw.from("127.0.0.15").await;
    s1.expect(220).await;
    s1.cmd("EHLO client.test", 250).await;
    s1.cmd("MAIL FROM:<a@b.test>", 250).await;
    let r = s1.cmd("RCPT TO:<u1@example.com>", 450).await;
    assert_eq!(
        r.lines[0],
        "4.7.1 Greylisted, please try again in 1 seconds"
    );
    // Too early: still deferred.
    s1.cmd("RCPT TO:<u1@example.com>", 450).await;
    // Another triplet is deferred on its own.
    s1.cmd("RCPT TO:<u2@example.com>", 450).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // After the delay, from another address of the same /24: passes.
    let mut s2 = gw.from("127.0.0.16").await;
    s2.expect(220).await;
    s2.cmd("EHLO client.test", 250).await;
    s2.cmd("MAIL FROM:<A@b.test>", 250).await;
    s2.cmd("RCPT TO:<u1@example.com>", 250).await;
    s2.cmd("RCPT TO:<u2@example.com>", 250).await;
    // Two passes: the network is allowed, a new triplet is not greylisted.
    s2.cmd("RCPT TO:<u3@example.com>", 250).await;
    // Relay-network and authenticated clients are never greylisted: the
    // postmaster of another group is not either.
    let log = gw.srv.transcript_with("greylisting passed").await;
    assert!(log.contains("rcpt greylisted by policy GREY"), "{log}");
}

/// `tls` and `authenticated` groups: the client is classified again after
/// STARTTLS and after AUTH, so a policy can demand encryption by refusing
/// clear-text recipients (delayed rejection) and serve the same client once
/// it encrypts; `listener:` scopes a group.
#[tokio::test]
async fn reclassified_after_starttls_and_auth() {
    let mut clear = MailFlowPolicy::new("CLEARTEXT", FlowAction::Reject);
    clear.reject_at = RejectAt::Rcpt;
    clear.reply = Some(postern_proto::Reply::new(
        550,
        Some(postern_proto::EnhancedCode::new(5, 7, 10)),
        "Encryption required (STARTTLS)",
    ));
    let mut sub = MailFlowPolicy::new("SUBMITTERS", FlowAction::Accept);
    sub.max_recipients_per_message = Some(1);
    let policies = vec![
        MailFlowPolicy::new("ACCEPTED", FlowAction::Accept),
        clear,
        MailFlowPolicy::new("RELAYED", FlowAction::Relay),
        sub,
    ];
    let p = &policies;
    let groups = vec![
        group("AUTHED", &["authenticated"], "RELAYED", p),
        group("ENCRYPTED", &["tls", "listener:submission"], "ACCEPTED", p),
        group("CLEAR", &["all"], "CLEARTEXT", p),
    ];
    let table = Admission::new(groups, policies, Vec::new());
    let srv = common::start_with(move |s| s.admission = table).await;
    let mut d = srv.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    let r = d.cmd("RCPT TO:<u@example.com>", 550).await;
    assert_eq!(r.lines[0], "5.7.10 Encryption required (STARTTLS)");
    d.cmd("RSET", 250).await;
    d.cmd("STARTTLS", 220).await;
    d.upgrade(common::HOST, srv.client_tls()).await.unwrap();
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    d.cmd("RCPT TO:<u@example.com>", 250).await;
    // Not allowed to relay until AUTH puts it in AUTHED.
    d.cmd("RCPT TO:<x@elsewhere.test>", 554).await;
    d.cmd("RSET", 250).await;
    d.cmd(&common::auth_plain(), 235).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    d.cmd("RCPT TO:<x@elsewhere.test>", 250).await;
    let log = srv.transcript_with("sender group AUTHED").await;
    assert!(log.contains("sender group CLEAR (matched by all)"), "{log}");
    assert!(
        log.contains("sender group ENCRYPTED (matched by tls)"),
        "{log}"
    );
}

/// DHAP: unknown recipients (recipient validation) spend the client's budget
/// of invalid recipients per hour; past it every RCPT gets 550 5.1.1 "too
/// many invalid recipients", even valid ones (`451 4.7.1` with
/// `dhap_temporary`), and with `dhap_drop` the connection closes. A
/// relay-network client is exempt.
#[tokio::test]
async fn directory_harvest_prevention() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("recipients.txt");
    std::fs::write(&table, "alice@example.com\nbob@example.com\n").unwrap();
    let mut dhap = MailFlowPolicy::new("DHAP", FlowAction::Accept);
    dhap.max_invalid_recipients_per_hour = Some(2);
    let mut drop = MailFlowPolicy::new("DHAP-DROP", FlowAction::Accept);
    drop.max_invalid_recipients_per_hour = Some(1);
    drop.dhap_drop = true;
    let mut kind = MailFlowPolicy::new("DHAP-TEMP", FlowAction::Accept);
    kind.max_invalid_recipients_per_hour = Some(1);
    kind.dhap_temporary = true;
    let policies = vec![dhap, drop, kind];
    let p = &policies;
    let groups = vec![
        group("DROPPERS", &["127.0.0.19"], "DHAP-DROP", p),
        group("KIND", &["127.0.0.20"], "DHAP-TEMP", p),
        group("ALL", &["all"], "DHAP", p),
    ];
    let admission = Admission::new(groups, policies, Vec::new());
    let rules = vec![postern_smtpd::recipients::RecipientRule {
        domains: vec!["example.com".into()],
        source: postern_smtpd::recipients::RecipientSource::Table(table),
        origin: "recipients[0]".into(),
    }];
    let srv = common::start_with(move |s| {
        s.admission = admission;
        s.recipients = rules;
        s.relay.relay_networks = vec!["127.0.0.18/32".parse().unwrap()];
    })
    .await;
    let addr = srv.addr("smtp");
    let mut h = Dialogue::connect_from(ip("127.0.0.17"), addr).await;
    h.expect(220).await;
    h.cmd("EHLO harvester.test", 250).await;
    h.cmd("MAIL FROM:<a@b.test>", 250).await;
    h.cmd("RCPT TO:<alice@example.com>", 250).await;
    h.cmd("RCPT TO:<nobody1@example.com>", 550).await;
    h.cmd("RCPT TO:<nobody2@example.com>", 550).await;
    // Budget spent: even a valid recipient is refused, with the DHAP reply.
    let r = h.cmd("RCPT TO:<bob@example.com>", 550).await;
    assert_eq!(
        r.lines[0],
        "5.1.1 Too many invalid recipients from [127.0.0.17]"
    );
    // Across sessions from the same address.
    let mut h2 = Dialogue::connect_from(ip("127.0.0.17"), addr).await;
    h2.expect(220).await;
    h2.cmd("EHLO harvester.test", 250).await;
    h2.cmd("MAIL FROM:<a@b.test>", 250).await;
    h2.cmd("RCPT TO:<bob@example.com>", 550).await;
    // dhap_drop: the first invalid spends the budget of 1, the next RCPT closes.
    let mut d = Dialogue::connect_from(ip("127.0.0.19"), addr).await;
    d.expect(220).await;
    d.cmd("EHLO harvester.test", 250).await;
    d.cmd("MAIL FROM:<a@b.test>", 250).await;
    d.cmd("RCPT TO:<nobody@example.com>", 550).await;
    d.cmd("RCPT TO:<alice@example.com>", 550).await;
    assert!(d.is_closed().await);
    // dhap_temporary: past the budget every RCPT is told to try later, the
    // valid one too (a harvester still learns nothing).
    let mut list = Dialogue::connect_from(ip("127.0.0.20"), addr).await;
    list.expect(220).await;
    list.cmd("EHLO lists.test", 250).await;
    list.cmd("MAIL FROM:<a@b.test>", 250).await;
    list.cmd("RCPT TO:<stale@example.com>", 550).await;
    let later = list.cmd("RCPT TO:<alice@example.com>", 451).await;
    assert_eq!(
        later.lines[0],
        "4.7.1 Too many invalid recipients from [127.0.0.20]; try again later"
    );
    list.cmd("RCPT TO:<nobody@example.com>", 451).await;
    // A relay-network client is never stopped by DHAP.
    let mut r = Dialogue::connect_from(ip("127.0.0.18"), addr).await;
    r.expect(220).await;
    r.cmd("EHLO internal.test", 250).await;
    r.cmd("MAIL FROM:<a@b.test>", 250).await;
    for n in 0..4 {
        r.cmd(&format!("RCPT TO:<typo{n}@example.com>"), 550).await;
    }
    r.cmd("RCPT TO:<alice@example.com>", 250).await;
}

/// `[[user]] senders`: an authenticated user may use only its own envelope
/// senders (Postfix `reject_sender_login_mismatch`): its addresses, any
/// address at a listed `@domain`, and `<>`; anything else is `553 5.7.1`
/// before any recipient, logged as `sender_not_owned`. Unauthenticated
/// clients are not affected (they cannot relay anyway).
#[tokio::test]
async fn authenticated_users_send_only_as_themselves() {
    let srv = common::start_with(|s| {
        s.users[0].senders = Some(vec![
            "alice@example.com".into(),
            "@sales.example.com".into(),
        ]);
    })
    .await;
    let mut d = srv.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("STARTTLS", 220).await;
    d.upgrade(common::HOST, srv.client_tls()).await.unwrap();
    d.cmd("EHLO client.test", 250).await;
    // Before AUTH the list does not apply.
    d.cmd("MAIL FROM:<ceo@example.com>", 250).await;
    d.cmd("RSET", 250).await;
    d.cmd(&common::auth_plain(), 235).await;
    let r = d.cmd("MAIL FROM:<ceo@example.com>", 553).await;
    assert_eq!(
        r.lines[0],
        "5.7.1 Sender address rejected: not owned by the authenticated user"
    );
    d.cmd("MAIL FROM:<alice@example.net>", 553).await;
    for ok in ["<Alice@Example.COM>", "<anyone@sales.example.com>", "<>"] {
        d.cmd(&format!("MAIL FROM:{ok}"), 250).await;
        d.cmd("RSET", 250).await;
    }
    d.cmd("MAIL FROM:<alice@example.com>", 250).await;
    d.cmd("RCPT TO:<bob@elsewhere.test>", 250).await;
    let log = srv.transcript_with("sender_not_owned").await;
    assert!(log.contains("mail refused: sender_not_owned"), "{log}");
}

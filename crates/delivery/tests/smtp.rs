//! End-to-end delivery over real sockets: the scheduler, the SMTP transport,
//! a fake DNS (static overrides and FakeDns, NXDOMAIN for everything else) and
//! scripted fake MX servers on 127.0.0.1. For each TLS level: what is
//! delivered, deferred or bounced, in plaintext or TLS, and the cause recorded
//! (ARCHITECTURE.md "Outbound TLS policy levels"; RFC 3207, RFC 7435, RFC 7505,
//! RFC 5321 §5.1).

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use postern_delivery::{
    Credentials, DeliveryHandle, DeliverySettings, DomainPattern, RouteSettings, RouteTarget,
    SmartHost, SmtpTransport, SystemClock, TlsLevel, start,
};
use postern_dns::{DnsSettings, Resolver, StaticEntry};
use postern_spool::{MailParams, Spool};
use postern_testkit::{FakeDns, FakeMx, KeyKind, MxTls, TestCa, mx_tls_config};
use postern_track::{Attempt, MailEvent, MailLog, MemoryLog};

const MX: &str = "mx1.example.net";

fn ca() -> Arc<TestCa> {
    static CA: OnceLock<Arc<TestCa>> = OnceLock::new();
    Arc::clone(CA.get_or_init(|| Arc::new(TestCa::new())))
}

struct World {
    dir: tempfile::TempDir,
    spool: Spool,
    dns: FakeDns,
    mx: FakeMx,
    settings: DeliverySettings,
}

impl World {
    /// A fake MX for example.net (and example.com, the senders' domain, so
    /// DSNs arrive there too) with the given TLS behaviour.
    async fn new(tls: MxTls) -> World {
        let dir = tempfile::tempdir().unwrap();
        let spool = open_spool(dir.path());
        let dns = FakeDns::start().await;
        dns.add_mx("example.net", 10, MX);
        dns.add_a(MX, [127, 0, 0, 1]);
        dns.add_mx("example.com", 10, "mx.example.com");
        dns.add_a("mx.example.com", [127, 0, 0, 1]);
        let mx = FakeMx::start(tls).await;
        let mut settings = settings(dir.path());
        settings.smtp_port = mx.port();
        settings.retry_schedule = vec![Duration::from_millis(300)];
        settings.connect_timeout = Duration::from_secs(5);
        settings.command_timeout = Duration::from_secs(10);
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca().cert_pem()).unwrap();
        settings.ca_file = Some(ca_path);
        World {
            dir,
            spool,
            dns,
            mx,
            settings,
        }
    }

    fn level(&mut self, level: TlsLevel) {
        self.settings.default_tls = level;
    }

    fn dns_settings(&self) -> DnsSettings {
        DnsSettings {
            nameservers: self.dns.nameservers(),
            timeout: Duration::from_secs(2),
            ..DnsSettings::default()
        }
    }

    fn start(&self) -> (DeliveryHandle, MemoryLog) {
        self.start_with_dns(&self.dns_settings())
    }

    fn start_with_dns(&self, dns: &DnsSettings) -> (DeliveryHandle, MemoryLog) {
        let (log, mem) = MailLog::memory();
        let resolver = Resolver::new(dns).unwrap();
        let transport =
            SmtpTransport::new(&self.settings, self.spool.clone(), resolver, log.clone()).unwrap();
        let h = start(
            self.settings.clone(),
            self.spool.clone(),
            Arc::new(transport),
            log,
            Arc::new(SystemClock),
        );
        (h, mem)
    }

    fn send(&self, rcpts: &[&str]) -> postern_spool::QueueId {
        let rcpts: Vec<Rcpt<'_>> = rcpts.iter().map(|r| rcpt(r)).collect();
        commit(
            &self.spool,
            "alice@example.com",
            &rcpts,
            MailParams::default(),
        )
    }
}

fn attempts(mem: &MemoryLog, id: &postern_spool::QueueId) -> Vec<Attempt> {
    mem.for_queue_id(id)
        .into_iter()
        .filter_map(|e| match e {
            MailEvent::Attempt(a) => Some(*a),
            _ => None,
        })
        .collect()
}

fn tls_cert(names: &[&str]) -> MxTls {
    MxTls::StartTls(mx_tls_config(&ca().issue(names)))
}

async fn wait_deferred(h: &DeliveryHandle) {
    wait_for(h, "a deferral", |s| s.deferred >= 1 && s.in_flight == 0).await;
}

#[tokio::test]
async fn none_never_uses_starttls_even_when_offered() {
    let mut w = World::new(tls_cert(&[MX])).await;
    w.level(TlsLevel::None);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tls, None);
    assert!(!w.mx.commands().iter().any(|c| c == "STARTTLS"));
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "none");
    assert_eq!(a.policy_reason, "default");
    assert_eq!(a.starttls_offered, Some(true));
    assert_eq!(a.tls, None);
    assert_eq!(a.mx, MX);
    assert!(a.ip.starts_with("127.0.0.1:"));
    assert_eq!(a.outcome, "delivered");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn opportunistic_uses_tls_and_records_the_certificate() {
    let w = World::new(tls_cert(&[MX])).await;
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert!(got[0].tls.is_some(), "delivered over TLS");
    assert_eq!(got[0].sni.as_deref(), Some(MX), "SNI is the MX name");
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "opportunistic");
    let tls = a.tls.as_ref().unwrap();
    assert!(tls.version.starts_with("TLSv1."), "{tls:?}");
    assert!(!tls.cipher.is_empty());
    assert!(tls.verified, "{tls:?}");
    assert_eq!(tls.verification, "ok");
    let cert = tls.peer_cert.as_ref().unwrap();
    assert!(cert.subject.contains(MX), "{cert:?}");
    assert_eq!(cert.sans, vec![MX.to_owned()]);
    assert_eq!(cert.fingerprint_sha256.len(), 95);
    assert!(!cert.not_after.is_empty());
    assert!(!a.downgraded);
    // The per-recipient event names the TLS session too.
    let delivered = mem
        .for_queue_id(&id)
        .into_iter()
        .find_map(|e| match e {
            MailEvent::Delivered(d) => Some(d),
            _ => None,
        })
        .unwrap();
    assert!(delivered.tls.unwrap().starts_with("TLSv1."));
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn opportunistic_retries_in_plaintext_on_a_new_connection_after_a_failed_handshake() {
    // The seed story: a partner whose server only speaks TLS 1.0 closes the
    // connection after our ClientHello. Opportunistic delivers anyway, in
    // plaintext, and says why.
    let w = World::new(MxTls::CloseAfterClientHello).await;
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tls, None, "plaintext retry");
    assert_eq!(w.mx.connections(), 2, "a new connection for the retry");
    let a = attempts(&mem, &id);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(a[0].outcome, "failed");
    let c0 = a[0].cause.as_ref().unwrap();
    // Closing after the ClientHello and a protocol_version alert are one
    // root cause, one id (issue 8 §3).
    assert_eq!(c0.id, "tls.no_shared_version", "{c0:?}");
    assert!(c0.summary.contains("TLS 1.0"), "{c0:?}");
    // The route already is opportunistic: the fix must not suggest it.
    assert!(!c0.fix.contains("[[route]]"), "{c0:?}");
    assert!(c0.fix.contains("already retries in plaintext"), "{c0:?}");
    assert!(a[1].downgraded);
    assert_eq!(a[1].outcome, "delivered");
    assert_eq!(a[1].tls, None);
    let c1 = a[1].cause.as_ref().unwrap();
    assert_eq!(
        c1.id, "tls.no_shared_version",
        "the downgrade keeps its cause"
    );
    assert_eq!(c1.fix, "", "no fix advice on success");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn opportunistic_strict_defers_after_a_failed_handshake() {
    let mut w = World::new(MxTls::CloseAfterClientHello).await;
    w.level(TlsLevel::OpportunisticStrict);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty(), "no plaintext retry");
    assert_eq!(w.mx.connections(), 1);
    let ev = mem.for_queue_id(&id);
    let deferred = ev
        .iter()
        .find_map(|e| match e {
            MailEvent::Deferred(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    let c = deferred.cause.unwrap();
    assert_eq!(c.id, "tls.no_shared_version");
    // Routes match recipient domains: the fix names example.net, the
    // recipient's domain, never the MX host.
    assert!(
        c.fix
            .contains("`[[route]] domains = [\"example.net\"], tls = \"opportunistic\"`"),
        "{c:?}"
    );
    assert!(!c.fix.contains("route mx1"), "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn opportunistic_without_starttls_is_plaintext_but_required_defers() {
    let w = World::new(MxTls::None).await;
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    assert_eq!(attempts(&mem, &id)[0].starttls_offered, Some(false));
    h.shutdown(Duration::from_secs(5)).await;

    let mut w = World::new(MxTls::None).await;
    w.level(TlsLevel::Required);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    assert!(
        !w.mx.commands().iter().any(|c| c.starts_with("MAIL")),
        "never a plaintext MAIL under `required`"
    );
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "policy.starttls_not_offered");
    assert!(
        c.summary
            .contains("STARTTLS command not supported at mx1.example.net"),
        "{c:?}"
    );
    assert!(c.fix.contains("tls = \"opportunistic\""), "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn required_encrypts_without_verifying() {
    // A self-signed certificate for another name: fine for `required`.
    let issued = {
        let other = TestCa::new();
        other.issue(&["mail.other.example"])
    };
    let mut w = World::new(MxTls::StartTls(mx_tls_config(&issued))).await;
    w.level(TlsLevel::Required);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert!(got[0].tls.is_some());
    let tls = attempts(&mem, &id)[0].tls.clone().unwrap();
    assert!(!tls.verified);
    assert!(tls.verification.starts_with("no ("), "{tls:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn verify_defers_on_a_name_mismatch_and_says_which_names() {
    let mut w = World::new(tls_cert(&["mail.other.example"])).await;
    w.level(TlsLevel::Verify);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    assert!(!w.mx.commands().iter().any(|c| c.starts_with("MAIL")));
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "tls.out.cert_name_mismatch");
    assert!(
        c.summary
            .contains("cert is for mail.other.example, MX is mx1.example.net"),
        "{c:?}"
    );
    assert!(a.tls.is_some(), "the handshake facts are recorded even so");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn verify_delivers_with_a_good_chain_and_defers_on_an_expired_one() {
    let mut w = World::new(tls_cert(&[MX])).await;
    w.level(TlsLevel::Verify);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    assert!(attempts(&mem, &id)[0].tls.as_ref().unwrap().verified);
    h.shutdown(Duration::from_secs(5)).await;

    let now = time::OffsetDateTime::now_utc();
    let expired = ca().issue_with(
        &[MX],
        KeyKind::EcdsaP256,
        Some((
            now - time::Duration::days(60),
            now - time::Duration::days(1),
        )),
    );
    let mut w = World::new(MxTls::StartTls(mx_tls_config(&expired))).await;
    w.level(TlsLevel::Verify);
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    let c = attempts(&mem, &id)[0].cause.clone().unwrap();
    assert_eq!(c.id, "tls.out.cert_expired", "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn per_domain_route_overrides_the_default_level() {
    // Default `required`, but fabrikam.example is routed `opportunistic`: the
    // fix the seed guides needed, as one [[route]].
    let mut w = World::new(MxTls::CloseAfterClientHello).await;
    w.dns
        .add_mx("fabrikam.example", 10, "mail.fabrikam.example");
    w.dns.add_a("mail.fabrikam.example", [127, 0, 0, 1]);
    w.level(TlsLevel::Required);
    w.settings.routes.push(RouteSettings {
        domains: vec![DomainPattern::parse("fabrikam.example").unwrap()],
        target: RouteTarget::Mx,
        tls: Some(TlsLevel::Opportunistic),
        ca_file: None,
        origin: "route[0]".into(),
    });
    let (h, mem) = w.start();
    let id = w.send(&["bob@fabrikam.example", "carol@example.net"]);
    h.notify(id);
    wait_for(&h, "fabrikam delivered, example.net deferred", |s| {
        s.deferred == 1 && s.in_flight == 0
    })
    .await;
    assert_eq!(w.mx.received_for("bob@fabrikam.example").len(), 1);
    assert!(w.mx.received_for("carol@example.net").is_empty());
    let a = attempts(&mem, &id);
    let fab: Vec<_> = a
        .iter()
        .filter(|a| a.destination == "fabrikam.example")
        .collect();
    assert_eq!(fab.last().unwrap().policy, "opportunistic");
    assert_eq!(
        fab.last().unwrap().policy_reason,
        "route[0] domain fabrikam.example"
    );
    assert!(fab.last().unwrap().downgraded);
    let net: Vec<_> = a
        .iter()
        .filter(|a| a.destination == "example.net")
        .collect();
    assert_eq!(net[0].policy, "required");
    assert_eq!(net[0].policy_reason, "default");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn four_xx_then_two_xx_over_the_wire() {
    let w = World::new(MxTls::None).await;
    w.mx.rcpt_replies(
        "bob@example.net",
        &["451 4.7.1 greylisted, come back later"],
    );
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.net"]);
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    assert_eq!(
        mem.names(&id),
        ["queued", "attempt", "deferred", "attempt", "delivered"]
    );
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn five_xx_for_one_of_three_recipients_bounces_it_with_a_dsn() {
    let w = World::new(MxTls::None).await;
    w.mx.rcpt_replies(
        "b@example.net",
        &["550 5.1.1 <b@example.net>: no such user"],
    );
    let (h, mem) = w.start();
    let id = w.send(&["a@example.net", "b@example.net", "c@example.net"]);
    h.notify(id);
    drained(&h).await;
    let original: Vec<_> =
        w.mx.received()
            .into_iter()
            .filter(|m| !m.mail_from.is_empty())
            .collect();
    assert_eq!(original.len(), 1);
    assert_eq!(original[0].rcpts, ["a@example.net", "c@example.net"]);
    eventually("the DSN", || {
        !w.mx.received_for("alice@example.com").is_empty()
    })
    .await;
    let dsn = w.mx.received_for("alice@example.com");
    assert_eq!(dsn.len(), 1);
    assert_eq!(dsn[0].mail_from, "", "DSNs come from the null sender");
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status"));
    assert!(
        text.contains("Final-Recipient: rfc822; b@example.net"),
        "{text}"
    );
    assert!(text.contains("Action: failed"));
    assert!(text.contains("Status: 5.1.1"));
    assert!(text.contains("Remote-MTA: dns; mx1.example.net"));
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 <b@example.net>: no such user"));
    let a = attempts(&mem, &id);
    assert_eq!(a[0].outcome, "partial");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn null_mx_bounces_at_once_with_5_1_10() {
    let w = World::new(MxTls::None).await;
    w.dns.add_null_mx("nomail.example");
    let (h, mem) = w.start();
    let id = w.send(&["x@nomail.example"]);
    h.notify(id);
    drained(&h).await;
    eventually("the DSN", || {
        !w.mx.received_for("alice@example.com").is_empty()
    })
    .await;
    let dsn = w.mx.received_for("alice@example.com");
    assert_eq!(dsn.len(), 1);
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert!(text.contains("Status: 5.1.10"), "{text}");
    assert!(text.contains("null MX"), "{text}");
    let bounced = mem
        .for_queue_id(&id)
        .into_iter()
        .find_map(|e| match e {
            MailEvent::Bounced(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(bounced.status, "5.1.10");
    assert_eq!(bounced.cause.unwrap().id, "dns.null_mx");
    assert_eq!(bounced.attempts, 1);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn nxdomain_bounces_and_servfail_defers() {
    let w = World::new(MxTls::None).await;
    w.dns
        .fail("flaky.example", postern_testkit::DnsFailure::ServFail);
    let (h, mem) = w.start();
    let gone = w.send(&["x@does-not-exist.example"]);
    let flaky = w.send(&["y@flaky.example"]);
    h.notify(gone);
    h.notify(flaky);
    wait_for(&h, "one bounce, one deferral", |s| {
        s.messages == 1 && s.deferred == 1 && s.in_flight == 0
    })
    .await;
    let names = mem.names(&gone);
    assert!(names.contains(&"bounced"), "{names:?}");
    let deferred = mem
        .for_queue_id(&flaky)
        .into_iter()
        .find_map(|e| match e {
            MailEvent::Deferred(d) => Some(d),
            _ => None,
        })
        .unwrap();
    assert_eq!(deferred.cause.unwrap().id, "dns.temporary");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn every_mx_is_tried_in_order_and_static_overrides_route() {
    // Static overrides only (the HOSTS-file equivalent): mx1 is down
    // (127.0.0.2, nothing listens), mx2 is the fake.
    let w = World::new(MxTls::None).await;
    let dns = DnsSettings {
        nameservers: w.dns.nameservers(),
        overrides: vec![
            StaticEntry {
                name: "static.example".into(),
                a: vec![],
                mx: vec![
                    (10, "mx1.static.example".into()),
                    (20, "mx2.static.example".into()),
                ],
            },
            StaticEntry {
                name: "mx1.static.example".into(),
                a: vec!["127.0.0.2".parse().unwrap()],
                mx: vec![],
            },
            StaticEntry {
                name: "mx2.static.example".into(),
                a: vec!["127.0.0.1".parse().unwrap()],
                mx: vec![],
            },
        ],
        timeout: Duration::from_secs(2),
        ..DnsSettings::default()
    };
    let (h, mem) = w.start_with_dns(&dns);
    let id = w.send(&["z@static.example"]);
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("z@static.example").len(), 1);
    let a = attempts(&mem, &id);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(a[0].mx, "mx1.static.example");
    assert_eq!(a[0].outcome, "failed");
    assert_eq!(a[0].cause.as_ref().unwrap().id, "conn.refused");
    assert_eq!(a[1].mx, "mx2.static.example");
    assert_eq!(a[1].outcome, "delivered");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn smart_host_with_implicit_tls_and_auth() {
    let cfg = mx_tls_config(&ca().issue(&["relay.example.org"]));
    let mut w = World::new(MxTls::Implicit(cfg)).await;
    w.settings.relayhost = Some(SmartHost {
        host: "127.0.0.1".into(),
        port: w.mx.port(),
        implicit_tls: true,
        auth: Some(Credentials {
            user: "alice".into(),
            password: "s3cret".into(),
        }),
    });
    w.settings.relayhost_tls = Some(TlsLevel::Required);
    let (h, mem) = w.start();
    let id = w.send(&["bob@anywhere.example"]);
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@anywhere.example");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_user.as_deref(), Some("alice"));
    assert!(got[0].tls.is_some());
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.route, "relayhost");
    assert_eq!(a.policy_reason, "relayhost");
    assert!(
        !w.mx.commands().iter().any(|c| c.contains("s3cret")),
        "credentials never in clear in the record"
    );
    h.shutdown(Duration::from_secs(5)).await;
}

/// A relay host that advertises no AUTH is `smtp.auth_not_offered`, not
/// "check the user and password" (issue 8 §3); the password is never sent.
#[tokio::test]
async fn smart_host_without_auth_is_not_a_wrong_password() {
    let cfg = mx_tls_config(&ca().issue(&["relay.example.org"]));
    let mut w = World::new(MxTls::Implicit(cfg)).await;
    w.mx.set_offer_auth(false);
    w.settings.relayhost = Some(SmartHost {
        host: "127.0.0.1".into(),
        port: w.mx.port(),
        implicit_tls: true,
        auth: Some(Credentials {
            user: "alice".into(),
            password: "s3cret".into(),
        }),
    });
    w.settings.relayhost_tls = Some(TlsLevel::Required);
    let (h, mem) = w.start();
    let id = w.send(&["bob@anywhere.example"]);
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    assert!(
        !w.mx.commands().iter().any(|c| c.starts_with("AUTH")),
        "AUTH not sent when not offered"
    );
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "smtp.auth_not_offered", "{c:?}");
    assert!(!c.fix.contains("password"), "{c:?}");
    assert!(c.fix.contains("587"), "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn one_connection_carries_several_messages_to_one_destination() {
    let mut w = World::new(MxTls::None).await;
    w.settings.max_connections_per_destination = 1;
    let (h, _mem) = w.start();
    let ids: Vec<_> = (0..5)
        .map(|i| w.send(&[&format!("u{i}@example.net")]))
        .collect();
    for id in &ids {
        h.notify(*id);
    }
    drained(&h).await;
    let got = w.mx.received();
    assert_eq!(got.len(), 5);
    assert!(
        w.mx.connections() < 5,
        "{} connections for 5 messages",
        w.mx.connections()
    );
    assert!(w.mx.commands().iter().any(|c| c == "RSET"));
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dsn_parameters_are_passed_on_and_success_duty_moves_with_them() {
    let w = World::new(MxTls::None).await;
    let (h, _mem) = w.start();
    let id = commit(
        &w.spool,
        "alice@example.com",
        &[Rcpt {
            address: "bob@example.net",
            notify: Some("SUCCESS,FAILURE"),
            orcpt: Some("rfc822;bob@example.net"),
        }],
        MailParams {
            ret: Some("HDRS".into()),
            envid: Some("QQ314159".into()),
            ..MailParams::default()
        },
    );
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].mail_params.contains("RET=HDRS"),
        "{}",
        got[0].mail_params
    );
    assert!(got[0].mail_params.contains("ENVID=QQ314159"));
    assert!(got[0].rcpt_params[0].contains("NOTIFY=SUCCESS,FAILURE"));
    assert!(got[0].rcpt_params[0].contains("ORCPT=rfc822;bob@example.net"));
    // The next hop does DSN: it sends the success notice, not us.
    assert!(w.mx.received_for("alice@example.com").is_empty());
    h.shutdown(Duration::from_secs(5)).await;
    drop(w.dir);
}

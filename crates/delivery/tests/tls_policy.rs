//! DANE (RFC 7672) and MTA-STS (RFC 8461) in delivery, end to end over real
//! sockets: the scheduler, the SMTP transport, a fake DNS that sets the AD bit
//! where a test says the zone is signed (what a local validating resolver
//! does), fake MX servers on 127.0.0.1 and a local HTTPS policy server.
//!
//! For each case: is the mail delivered or deferred, over TLS or not, at
//! which level, why that level applied, and the cause recorded. The default
//! level (`opportunistic`) is raised when the destination publishes DANE or
//! MTA-STS; a level written in a route is never changed; a level that
//! requires TLS never falls back to plaintext.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use postern_delivery::{
    DeliveryHandle, DeliverySettings, DomainPattern, RouteSettings, RouteTarget, SmtpTransport,
    SystemClock, TlsLevel, start,
};
use postern_dns::{DnsSettings, Resolver};
use postern_spool::{MailParams, Spool};
use postern_testkit::{
    FakeDns, FakeMx, Issued, MxTls, PolicyServer, TestCa, mx_tls_config, mx_tls_config_with_ca,
};
use postern_track::{Attempt, MailEvent, MailLog, MemoryLog};

const DOMAIN: &str = "example.net";
const MX: &str = "mx1.example.net";

/// The CA the delivery trusts (its `ca_file`).
fn ca() -> Arc<TestCa> {
    static CA: OnceLock<Arc<TestCa>> = OnceLock::new();
    Arc::clone(CA.get_or_init(|| Arc::new(TestCa::new())))
}

/// A CA nobody trusts: its certificates fail PKIX, which DANE does not need.
fn private_ca() -> Arc<TestCa> {
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
    async fn new(tls: MxTls) -> World {
        let dir = tempfile::tempdir().unwrap();
        let spool = open_spool(dir.path());
        let dns = FakeDns::start().await;
        dns.add_mx(DOMAIN, 10, MX);
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

    /// Publishes a TLSA record for the MX (port = the fake MX's).
    fn tlsa(&self, usage: u8, selector: u8, matching: u8, cert: &Issued) {
        let der = rustls::pki_types::CertificateDer::from(cert.cert_der.clone());
        let data = postern_tlspolicy::dane::association(&der, selector, matching).unwrap();
        self.dns
            .add_tlsa(self.mx.port(), MX, usage, selector, matching, &data);
    }

    /// Publishes an MTA-STS policy (TXT id + HTTPS server).
    async fn mta_sts(&mut self, id: &str, policy: &str) -> PolicyServer {
        let server =
            PolicyServer::start(mx_tls_config(&ca().issue(&["mta-sts.example.net"])), policy).await;
        self.dns
            .add_txt("_mta-sts.example.net", &format!("v=STSv1; id={id}"));
        self.dns.add_a("mta-sts.example.net", [127, 0, 0, 1]);
        self.settings.mta_sts.url_template = server.url_template();
        server
    }

    fn route(&mut self, level: TlsLevel) {
        self.settings.routes = vec![RouteSettings {
            domains: vec![DomainPattern::parse(DOMAIN).unwrap()],
            target: RouteTarget::Mx,
            tls: Some(level),
            ca_file: None,
            origin: "route[0]".into(),
        }];
    }

    fn start(&self) -> (DeliveryHandle, MemoryLog) {
        let (log, mem) = MailLog::memory();
        let resolver = Resolver::new(&DnsSettings {
            nameservers: self.dns.nameservers(),
            timeout: Duration::from_secs(2),
            ..DnsSettings::default()
        })
        .unwrap();
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

    fn send(&self) -> postern_spool::QueueId {
        commit(
            &self.spool,
            "alice@example.com",
            &[rcpt("bob@example.net")],
            MailParams::default(),
        )
    }

    fn saw_mail_command(&self) -> bool {
        self.mx.commands().iter().any(|c| c.starts_with("MAIL"))
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

fn starttls(issued: &Issued) -> MxTls {
    MxTls::StartTls(mx_tls_config(issued))
}

/// Bounded waits: a wrong outcome fails the test within a minute instead
/// of waiting for the other outcome for hours.
const PATIENCE: Duration = Duration::from_mins(1);

async fn wait_deferred(h: &DeliveryHandle) {
    tokio::time::timeout(
        PATIENCE,
        wait_for(h, "a deferral", |s| s.deferred >= 1 && s.in_flight == 0),
    )
    .await
    .expect("the message was not deferred");
}

async fn drained(h: &DeliveryHandle) {
    tokio::time::timeout(PATIENCE, common::drained(h))
        .await
        .expect("the message was not delivered");
}

const ENFORCE_MX1: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\nmax_age: 86400\r\n";
const ENFORCE_MX2: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx2.example.net\r\nmax_age: 86400\r\n";
const TESTING_MX2: &str =
    "version: STSv1\r\nmode: testing\r\nmx: mx2.example.net\r\nmax_age: 86400\r\n";

// ---------------------------------------------------------------- DANE

#[tokio::test]
async fn dane_ee_match_raises_the_default_and_delivers_with_an_untrusted_certificate() {
    let cert = private_ca().issue(&[MX]);
    let w = World::new(starttls(&cert)).await;
    w.tlsa(3, 1, 1, &cert);
    w.dns.set_authentic(DOMAIN, true);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    let got = w.mx.received_for("bob@example.net");
    assert_eq!(got.len(), 1);
    assert!(got[0].tls.is_some(), "delivered over TLS");
    let a = attempts(&mem, &id).pop().unwrap();
    assert_eq!(a.policy, "dane");
    assert!(
        a.policy_reason.starts_with(
            "raised from opportunistic (default) to dane: DNSSEC-authenticated TLSA at _"
        ),
        "{}",
        a.policy_reason
    );
    let tls = a.tls.unwrap();
    assert!(
        !tls.verified,
        "PKIX fails (private CA), DANE-EE is the authentication"
    );
    assert_eq!(a.outcome, "delivered");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dane_mismatch_defers_and_never_falls_back_to_plaintext() {
    let cert = private_ca().issue(&[MX]);
    let w = World::new(starttls(&cert)).await;
    // The record is for another certificate (a key rollover gone wrong).
    w.tlsa(3, 1, 1, &private_ca().issue(&[MX]));
    w.dns.set_authentic(DOMAIN, true);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    assert!(!w.saw_mail_command(), "QUIT before MAIL");
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "dane");
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "policy.dane_no_match", "{c:?}");
    assert!(a.tls.is_some(), "the handshake facts are recorded");
    assert!(!a.downgraded);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dane_host_without_starttls_is_not_used_in_plaintext() {
    let cert = private_ca().issue(&[MX]);
    let w = World::new(MxTls::None).await;
    w.tlsa(3, 1, 1, &cert);
    w.dns.set_authentic(DOMAIN, true);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(!w.saw_mail_command());
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "dane");
    assert_eq!(a.starttls_offered, Some(false));
    assert_eq!(a.cause.as_ref().unwrap().id, "policy.starttls_not_offered");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unauthenticated_tlsa_records_are_ignored() {
    let cert = private_ca().issue(&[MX]);
    let w = World::new(starttls(&cert)).await;
    // A mismatching record that would defer if it counted.
    w.tlsa(3, 1, 1, &private_ca().issue(&[MX]));
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    let a = attempts(&mem, &id).pop().unwrap();
    assert_eq!(a.policy, "opportunistic");
    assert_eq!(a.policy_reason, "default");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_level_written_in_a_route_is_never_raised() {
    // The seed guide's partner: the admin routed the domain at
    // `opportunistic` on purpose. Published TLSA records do not change it.
    let cert = private_ca().issue(&[MX]);
    let mut w = World::new(starttls(&cert)).await;
    w.tlsa(3, 1, 1, &private_ca().issue(&[MX]));
    w.dns.set_authentic(DOMAIN, true);
    w.route(TlsLevel::Opportunistic);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    let a = attempts(&mem, &id).pop().unwrap();
    assert_eq!(a.policy, "opportunistic");
    assert_eq!(a.policy_reason, "route[0] domain example.net");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_explicit_dane_route_defers_when_the_host_has_no_tlsa() {
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    w.dns.set_authentic(DOMAIN, true);
    w.route(TlsLevel::Dane);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert_eq!(w.mx.connections(), 0, "the host is not even connected to");
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "policy.dane_unavailable", "{c:?}");
    assert!(c.summary.contains(MX), "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dane_ta_matches_the_issuer_and_still_checks_the_name() {
    // DANE-TA(2) with the private CA as trust anchor: the chain the MX sends
    // must contain it, and the leaf must cover the MX name (RFC 7672 §3.2.2).
    let ca = private_ca();
    let with_anchor =
        |names: &[&str]| MxTls::StartTls(mx_tls_config_with_ca(&ca.issue(names), &ca));
    let w = World::new(with_anchor(&[MX])).await;
    w.dns.set_authentic(DOMAIN, true);
    let anchor = Issued {
        cert_pem: String::new(),
        key_pem: String::new(),
        cert_der: ca.cert_der().to_vec(),
    };
    w.tlsa(2, 0, 1, &anchor);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    assert_eq!(attempts(&mem, &id).pop().unwrap().policy, "dane");
    // Same anchor, a leaf for another name: refused.
    w.mx.set_tls(with_anchor(&["mail.other.example"]));
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.cause.as_ref().unwrap().id, "tls.out.cert_name_mismatch");
    h.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------- MTA-STS

#[tokio::test]
async fn mta_sts_enforce_skips_an_mx_the_policy_does_not_list_then_delivers_when_it_does() {
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    let server = w.mta_sts("2026a", ENFORCE_MX2).await;
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert_eq!(w.mx.connections(), 0, "an unlisted MX is not connected to");
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert_eq!(c.id, "policy.mta_sts_mx_mismatch", "{c:?}");
    assert!(c.summary.contains(MX), "{c:?}");
    // The domain fixes its policy (new id): the retry fetches and delivers.
    server.set_body(ENFORCE_MX1);
    w.dns.remove("_mta-sts.example.net");
    w.dns.add_txt("_mta-sts.example.net", "v=STSv1; id=2026b");
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    let a = attempts(&mem, &id).pop().unwrap();
    assert_eq!(a.policy, "mta-sts");
    assert!(
        a.policy_reason.starts_with(
            "raised from opportunistic (default) to mta-sts: policy id 2026b in mode enforce, MX matches mx1.example.net"
        ),
        "{}",
        a.policy_reason
    );
    assert!(a.tls.unwrap().verified);
    assert_eq!(server.requests(), 2);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn mta_sts_enforce_needs_a_verified_certificate() {
    let mut w = World::new(starttls(&ca().issue(&["mail.other.example"]))).await;
    let _server = w.mta_sts("1", ENFORCE_MX1).await;
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(!w.saw_mail_command());
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "mta-sts");
    assert_eq!(a.cause.as_ref().unwrap().id, "tls.out.cert_name_mismatch");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn mta_sts_testing_delivers_and_records_what_would_have_failed() {
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    let _server = w.mta_sts("t1", TESTING_MX2).await;
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    let a = attempts(&mem, &id).pop().unwrap();
    assert_eq!(a.policy, "opportunistic");
    assert!(
        a.policy_reason.contains("mode testing"),
        "{}",
        a.policy_reason
    );
    let c = a.cause.unwrap();
    assert_eq!(c.id, "policy.mta_sts_mx_mismatch");
    assert!(
        c.summary.starts_with("MTA-STS testing (not enforced): "),
        "{c:?}"
    );
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_cached_policy_keeps_applying_when_the_txt_record_disappears() {
    // RFC 8461 §5.1: an attacker who strips the TXT record must not get the
    // domain downgraded while a cached policy is valid.
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    let server = w.mta_sts("c1", ENFORCE_MX1).await;
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(server.requests(), 1);
    assert!(
        w.settings
            .mta_sts_cache
            .as_ref()
            .unwrap()
            .read_dir()
            .unwrap()
            .count()
            >= 1,
        "the policy is cached on disk"
    );
    w.dns.remove("_mta-sts.example.net");
    w.mx.set_tls(starttls(&ca().issue(&["mail.other.example"])));
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.policy, "mta-sts", "still enforced from the cache");
    assert_eq!(a.cause.as_ref().unwrap().id, "tls.out.cert_name_mismatch");
    assert_eq!(server.requests(), 1, "not fetched again");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_explicit_mta_sts_route_defers_without_a_policy() {
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    w.route(TlsLevel::MtaSts);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert_eq!(w.mx.connections(), 0);
    let a = &attempts(&mem, &id)[0];
    assert_eq!(a.cause.as_ref().unwrap().id, "policy.mta_sts_not_published");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dane_wins_over_mta_sts() {
    // RFC 8461 §2: with authenticated TLSA records, DANE applies and the
    // MTA-STS policy (which does not even list this MX) is not consulted.
    let cert = private_ca().issue(&[MX]);
    let mut w = World::new(starttls(&cert)).await;
    w.tlsa(3, 1, 1, &cert);
    w.dns.set_authentic(DOMAIN, true);
    let _server = w.mta_sts("d1", ENFORCE_MX2).await;
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    assert_eq!(attempts(&mem, &id).pop().unwrap().policy, "dane");
    h.shutdown(Duration::from_secs(5)).await;
}

// ------------------------------------------------- outbound TLS settings

/// A server speaking only TLS 1.2 with one suite.
fn tls12_only(issued: &Issued, suite: rustls::SupportedCipherSuite) -> MxTls {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![suite];
    let certs = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    MxTls::StartTls(Arc::new(config))
}

#[tokio::test]
async fn a_tls12_only_peer_with_a_suite_we_do_not_offer_fails_the_handshake_with_its_cause() {
    use rustls::crypto::aws_lc_rs::cipher_suite;
    let mut w = World::new(tls12_only(
        &ca().issue(&[MX]),
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ))
    .await;
    // We offer TLS 1.3 and one TLS 1.2 suite the peer does not have.
    w.settings.client_tls.cipher_suites = vec![0x1301, 0xC02C];
    w.route(TlsLevel::OpportunisticStrict);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(
        !w.saw_mail_command(),
        "no plaintext after a failed handshake"
    );
    let a = &attempts(&mem, &id)[0];
    let c = a.cause.as_ref().unwrap();
    assert!(c.id.starts_with("tls."), "{c:?}");
    assert!(!c.summary.is_empty() && !c.fix.is_empty(), "{c:?}");
    assert_eq!(w.mx.handshake_failures(), 1);
    // `opportunistic` delivers it in plaintext on a new connection, and says so.
    h.shutdown(Duration::from_secs(5)).await;
    w.route(TlsLevel::Opportunistic);
    let (h, mem) = w.start();
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    let a = attempts(&mem, &id).pop().unwrap();
    assert!(a.downgraded);
    assert_eq!(
        a.cause.unwrap().id,
        c.id,
        "the downgrade carries the handshake cause"
    );
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn min_version_1_3_refuses_a_tls12_only_peer() {
    use rustls::crypto::aws_lc_rs::cipher_suite;
    let mut w = World::new(tls12_only(
        &ca().issue(&[MX]),
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ))
    .await;
    w.settings.client_tls.min_version = postern_tls::TlsVersion::Tls13;
    w.route(TlsLevel::Required);
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    let c = attempts(&mem, &id)[0].cause.clone().unwrap();
    assert!(c.id.starts_with("tls."), "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_the_server_asks() {
    let issued = ca().issue(&[MX]);
    let config = |verifier| {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        MxTls::StartTls(Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
        ))
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(ca().root_store()),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    let mut w = World::new(config(verifier)).await;
    w.route(TlsLevel::Required);
    // Without a client certificate the server refuses the handshake.
    let (h, mem) = w.start();
    let id = w.send();
    h.notify(id);
    wait_deferred(&h).await;
    assert!(w.mx.received().is_empty());
    let c = attempts(&mem, &id)[0].cause.clone().unwrap();
    assert_eq!(c.id, "tls.out.client_certificate_rejected", "{c:?}");
    h.shutdown(Duration::from_secs(5)).await;
    // With one (signed by the CA the server trusts) it is delivered.
    let (cert, key) = ca()
        .issue(&["mx.postern.test"])
        .write(w.dir.path(), "client");
    w.settings.client_tls.client_cert = Some(postern_tls::CertSettings {
        cert_path: cert,
        key_path: key,
        hostnames: Vec::new(),
    });
    let (h, _mem) = w.start();
    drained(&h).await;
    assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_unfetchable_policy_is_not_fetched_again_for_every_message() {
    // A policy host that accepts and never answers (black-holed): the first
    // message waits for the fetch timeout and goes out at the default level
    // (RFC 8461 §5.1); the next ones do not pay the timeout again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let _hole = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let mut w = World::new(starttls(&ca().issue(&[MX]))).await;
    w.dns.add_txt("_mta-sts.example.net", "v=STSv1; id=hole1");
    w.dns.add_a("mta-sts.example.net", [127, 0, 0, 1]);
    w.settings.mta_sts.url_template =
        format!("https://mta-sts.{{domain}}:{port}/.well-known/mta-sts.txt");
    w.settings.mta_sts.timeout = Duration::from_secs(1);
    let (h, mem) = w.start();
    for _ in 0..3 {
        let id = w.send();
        h.notify(id);
        // Wait for this message's attempt (the queue may look empty before
        // the scheduler has loaded it).
        tokio::time::timeout(PATIENCE, async {
            while attempts(&mem, &id).is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("no attempt for the message");
        assert_eq!(attempts(&mem, &id).pop().unwrap().policy, "opportunistic");
    }
    assert_eq!(w.mx.received_for("bob@example.net").len(), 3);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one fetch attempt, remembered for the next messages"
    );
    h.shutdown(Duration::from_secs(5)).await;
}

// ------------------------------------------- `verify`: broken certificates

#[tokio::test]
async fn verify_names_a_self_signed_certificate_and_an_incomplete_chain() {
    // Each broken setup defers with its catalogue cause and QUIT before MAIL.
    let inter = ca().intermediate("Postern Test Intermediate");
    let cases: [(MxTls, &str); 2] = [
        (
            starttls(&TestCa::self_signed(&[MX])),
            "tls.out.cert_self_signed",
        ),
        // The leaf is issued by an intermediate the server does not send.
        (starttls(&inter.issue(&[MX])), "tls.out.chain_incomplete"),
    ];
    for (tls, id) in cases {
        let mut w = World::new(tls).await;
        w.route(TlsLevel::Verify);
        let (h, mem) = w.start();
        let qid = w.send();
        h.notify(qid);
        wait_deferred(&h).await;
        assert!(!w.saw_mail_command(), "{id}: QUIT before MAIL");
        let a = &attempts(&mem, &qid)[0];
        let c = a.cause.as_ref().unwrap();
        assert_eq!(c.id, id, "{c:?}");
        assert!(!c.fix.is_empty());
        // The same server sending its intermediate is fine.
        if id == "tls.out.chain_incomplete" {
            w.mx.set_tls(MxTls::StartTls(mx_tls_config_with_ca(
                &inter.issue(&[MX]),
                &inter,
            )));
            drained(&h).await;
            assert_eq!(w.mx.received_for("bob@example.net").len(), 1);
        }
        h.shutdown(Duration::from_secs(5)).await;
    }
}

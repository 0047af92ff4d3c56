//! `tls verify` end to end, hermetic: FakeDns answers for the domain, FakeMx
//! servers on 127.0.0.1 present certificates from a TestCa (trusted through
//! a custom root store, as `--ca-file` does), and a local HTTPS server
//! serves MTA-STS policies. Each broken setup must give its catalogue
//! cause: wrong name, expired, incomplete chain, no STARTTLS (RFC 3207),
//! DANE-EE match and mismatch (RFC 7672), MTA-STS enforce with an MX the
//! policy does not list (RFC 8461 §4.1).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use postern_diag::verify::{self, Event, EventKind, Level, VerifyOptions, VerifyReport};
use postern_dns::{DnsSettings, Resolver};
use postern_testkit::{FakeDns, FakeMx, KeyKind, MxTls, PolicyServer, TestCa, mx_tls_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const DOMAIN: &str = "example.test";
const MX1: &str = "mx1.example.test";

struct World {
    ca: TestCa,
    dns: FakeDns,
    resolver: Resolver,
}

async fn world() -> World {
    let dns = FakeDns::start().await;
    dns.add_mx(DOMAIN, 10, MX1);
    dns.add_a(MX1, [127, 0, 0, 1]);
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        timeout: Duration::from_secs(2),
        ..DnsSettings::default()
    })
    .unwrap();
    World {
        ca: TestCa::new(),
        dns,
        resolver,
    }
}

fn options(w: &World, port: u16) -> VerifyOptions {
    let mut o = VerifyOptions::new(DOMAIN, Arc::new(w.ca.root_store()));
    o.port = port;
    o.timeout = Duration::from_secs(5);
    o.transcript = true;
    o
}

async fn run(w: &World, opts: &VerifyOptions) -> (VerifyReport, Vec<Event>) {
    let mut events = Vec::new();
    let report = verify::verify(&w.resolver, opts, &mut |e: &Event| events.push(e.clone())).await;
    let text: Vec<String> = events.iter().map(ToString::to_string).collect();
    eprintln!("{}", text.join("\n"));
    (report, events)
}

fn lines(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.kind != EventKind::Transcript)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cause ids of every address failure.
fn failure_ids(r: &VerifyReport) -> Vec<&'static str> {
    r.hosts
        .iter()
        .flat_map(|h| {
            h.failures
                .iter()
                .chain(h.addresses.iter().flat_map(|a| &a.failures))
        })
        .map(|c| c.id)
        .collect()
}

async fn mx_with(issued: &postern_testkit::Issued) -> FakeMx {
    FakeMx::start(MxTls::StartTls(mx_tls_config(issued))).await
}

#[tokio::test]
async fn verify_good_certificate_passes_with_the_seed_wording() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&[MX1])).await;
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(r.passed, "{r:#?}");
    let text = lines(&events);
    for want in [
        &format!("Connecting to 127.0.0.1 on port {}.", mx.port()),
        "Connected; banner: 220 fake.mx.test ESMTP ready",
        "STARTTLS offered.",
        "Checking TLS connection.",
        "TLS connection established: protocol TLSv1.3, cipher TLS_",
        "Verifying peer certificate.",
        "TLS certificate matches mx1.example.test.",
        "TLS certificate verified (PKIX).",
        "TLS connection to 127.0.0.1 passes policy verify.",
        "TLS verification completed: 1 of 1 addresses pass; PASSED.",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Steps come in order.
    let connect = text.find("Connecting to").unwrap();
    let established = text.find("TLS connection established").unwrap();
    let verified = text.find("TLS certificate verified").unwrap();
    assert!(connect < established && established < verified);
    // The transcript was reported too.
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::Transcript && e.text.contains(">>> STARTTLS"))
    );
    let h = &r.hosts[0];
    assert_eq!(h.policy, Level::Verify);
    assert_eq!(h.preference, Some(10));
    let a = &h.addresses[0];
    assert_eq!(a.starttls_offered, Some(true));
    assert_eq!(a.name_matches, Some(true));
    assert!(a.pkix.as_ref().unwrap().ok);
    assert_eq!(a.chain[0].sans, [MX1]);
    assert!(a.chain[0].days_left > 300);
    // JSON for machines.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["hosts"][0]["policy"], "verify");
    assert_eq!(
        json["hosts"][0]["addresses"][0]["tls"]["version"],
        "TLSv1.3"
    );
    assert_eq!(json["passed"], true);
}

#[tokio::test]
async fn verify_wrong_name_is_a_name_mismatch() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&["mail.other.test"])).await;
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(!r.passed);
    assert_eq!(failure_ids(&r), ["tls.out.cert_name_mismatch"]);
    let text = lines(&events);
    assert!(
        text.contains("FAIL [tls.out.cert_name_mismatch] certificate name mismatch: cert is for mail.other.test, MX is mx1.example.test. fix: "),
        "{text}"
    );
    // `required` does not verify: it passes, with the warning.
    let mut opts = options(&w, mx.port());
    opts.policy = Some(Level::Required);
    let (r, _) = run(&w, &opts).await;
    assert!(r.passed);
    assert_eq!(
        r.hosts[0].addresses[0].warnings[0].id,
        "tls.out.cert_name_mismatch"
    );
}

#[tokio::test]
async fn verify_expired_certificate() {
    let w = world().await;
    let now = time::OffsetDateTime::now_utc();
    let issued = w.ca.issue_with(
        &[MX1],
        KeyKind::EcdsaP256,
        Some((
            now - time::Duration::days(400),
            now - time::Duration::days(3),
        )),
    );
    let mx = mx_with(&issued).await;
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(!r.passed);
    assert_eq!(failure_ids(&r), ["tls.out.cert_expired"]);
    let text = lines(&events);
    assert!(
        text.contains("(expired 3 days ago)") || text.contains("(expired 2 days ago)"),
        "{text}"
    );
}

#[tokio::test]
async fn verify_incomplete_chain() {
    let w = world().await;
    // root → intermediate → leaf; the server sends the leaf only.
    let ca_params = |cn: &str| {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p
    };
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root = ca_params("Private Root").self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::new(ca_params("Private Root"), root_key);
    let inter_key = rcgen::KeyPair::generate().unwrap();
    let _inter = ca_params("Private Intermediate")
        .signed_by(&inter_key, &root_issuer)
        .unwrap();
    let inter_issuer = rcgen::Issuer::new(ca_params("Private Intermediate"), inter_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec![MX1.to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, MX1);
    let leaf = leaf_params.signed_by(&leaf_key, &inter_issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::from_pem_slice(leaf_key.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let mx = FakeMx::start(MxTls::StartTls(Arc::new(config))).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone()).unwrap();
    let mut opts = options(&w, mx.port());
    opts.roots = Arc::new(roots);
    let (r, events) = run(&w, &opts).await;
    assert!(!r.passed);
    assert_eq!(failure_ids(&r), ["tls.out.chain_incomplete"]);
    assert!(
        lines(&events).contains(
            "chain incomplete: 'CN=mx1.example.test' is issued by 'CN=Private Intermediate'"
        ),
        "{}",
        lines(&events)
    );
}

#[tokio::test]
async fn verify_without_starttls() {
    let w = world().await;
    let mx = FakeMx::start(MxTls::None).await;
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(!r.passed);
    assert_eq!(failure_ids(&r), ["policy.starttls_not_offered"]);
    let text = lines(&events);
    assert!(
        text.contains(
            "FAIL [policy.starttls_not_offered] STARTTLS command not supported at 127.0.0.1. \
             TLS was required but could not be successfully negotiated. fix: "
        ),
        "{text}"
    );
    assert_eq!(r.hosts[0].addresses[0].starttls_offered, Some(false));
    // Opportunistic delivery would send in plaintext: a warning, a pass.
    let mut opts = options(&w, mx.port());
    opts.policy = Some(Level::Opportunistic);
    let (r, events) = run(&w, &opts).await;
    assert!(r.passed);
    assert!(lines(&events).contains(
        "WARN [policy.starttls_not_offered] STARTTLS command not supported at 127.0.0.1: mail to it travels in plaintext (policy opportunistic allows it)"
    ));
    // `none` never asks for TLS.
    opts.policy = Some(Level::None);
    let (r, _) = run(&w, &opts).await;
    assert!(r.passed);
    assert!(r.hosts[0].addresses[0].warnings.is_empty());
}

#[tokio::test]
async fn verify_handshake_failure_has_the_tls_cause() {
    let w = world().await;
    let mx = FakeMx::start(MxTls::CloseAfterClientHello).await;
    let (r, _) = run(&w, &options(&w, mx.port())).await;
    assert_eq!(failure_ids(&r), ["tls.no_shared_version"]);
    // Under `verify` the fix offers a route for the recipient domain.
    let fix = &r.hosts[0].addresses[0].failures[0].fix;
    assert!(
        fix.contains("`[[route]] domains = [\"example.test\"], tls = \"opportunistic\"`"),
        "{fix}"
    );
    // Opportunistic: the plaintext retry makes it a warning, and the fix
    // does not suggest the level being checked.
    let mut opts = options(&w, mx.port());
    opts.policy = Some(Level::Opportunistic);
    let (r, events) = run(&w, &opts).await;
    assert!(r.passed);
    assert!(lines(&events).contains("retries in plaintext"));
    let fix = &r.hosts[0].addresses[0].warnings[0].fix;
    assert!(!fix.contains("[[route]]"), "{fix}");
}

/// A self-signed certificate: PKIX fails, DANE-EE does not care.
fn self_signed() -> (postern_testkit::Issued, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![MX1.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (
        postern_testkit::Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        },
        cert.der().clone(),
    )
}

#[tokio::test]
async fn verify_dane_ee_match_with_authenticated_tlsa() {
    let w = world().await;
    let (issued, der) = self_signed();
    let mx = mx_with(&issued).await;
    let data = postern_tlspolicy::dane::association(&der, 1, 1).unwrap();
    w.dns.add_tlsa(mx.port(), MX1, 3, 1, 1, &data);
    w.dns.set_authentic(DOMAIN, true);
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(r.passed, "{}", lines(&events));
    let h = &r.hosts[0];
    assert_eq!(h.policy, Level::Dane);
    assert!(h.tlsa.as_ref().unwrap().dane_applies);
    let text = lines(&events);
    assert!(text.contains("(DNSSEC: authenticated)"), "{text}");
    assert!(
        text.contains("DANE: TLSA DANE-EE(3) SPKI(1) SHA-256(1) matched the leaf certificate."),
        "{text}"
    );
    assert!(text.contains("PKIX verification failed"), "{text}");
    // Without DNSSEC the same records do not count: verify is checked, and
    // the self-signed certificate fails it.
    w.dns.set_authentic(DOMAIN, false);
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert_eq!(r.hosts[0].policy, Level::Verify);
    assert_eq!(failure_ids(&r), ["tls.out.cert_self_signed"]);
    assert!(lines(&events).contains("DANE does not apply"));
    // And asking for DANE then fails as unavailable.
    let mut opts = options(&w, mx.port());
    opts.policy = Some(Level::Dane);
    let (r, _) = run(&w, &opts).await;
    assert_eq!(failure_ids(&r), ["policy.dane_unavailable"]);
}

#[tokio::test]
async fn verify_dane_mismatch() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&[MX1])).await;
    w.dns.add_tlsa(mx.port(), MX1, 3, 1, 1, &[0xab; 32]);
    w.dns.set_authentic(DOMAIN, true);
    let (r, events) = run(&w, &options(&w, mx.port())).await;
    assert!(!r.passed);
    assert_eq!(r.hosts[0].policy, Level::Dane);
    assert_eq!(failure_ids(&r), ["policy.dane_no_match"]);
    let text = lines(&events);
    assert!(
        text.contains(&format!(
            "FAIL [policy.dane_no_match] the DANE TLSA records at _{}._tcp.mx1.example.test do not match the certificate mx1.example.test presented",
            mx.port()
        )),
        "{text}"
    );
    // The fix names a record for the certificate in use.
    let c = &r.hosts[0].addresses[0].failures[0];
    assert!(c.fix.contains("IN TLSA 3 1 1 "), "{}", c.fix);
    assert!(c.detail.contains("abababab"), "{}", c.detail);
}

/// An MTA-STS policy host for `mta-sts.example.test` answering `body`.
async fn policy_server(ca: &TestCa, body: &str) -> (u16, PolicyServer) {
    let server =
        PolicyServer::start(mx_tls_config(&ca.issue(&["mta-sts.example.test"])), body).await;
    (server.port(), server)
}

#[tokio::test]
async fn verify_mta_sts_enforce_with_an_mx_not_listed() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&[MX1])).await;
    let (port, _server) = policy_server(
        &w.ca,
        "version: STSv1\nmode: enforce\nmx: mx9.example.test\nmx: *.mail.example.test\nmax_age: 86400\n",
    )
    .await;
    w.dns.add_txt("_mta-sts.example.test", "v=STSv1; id=2026a");
    w.dns.add_a("mta-sts.example.test", [127, 0, 0, 1]);
    let mut opts = options(&w, mx.port());
    opts.mta_sts.url_template =
        format!("https://mta-sts.{{domain}}:{port}/.well-known/mta-sts.txt");
    let (r, events) = run(&w, &opts).await;
    assert!(!r.passed);
    let h = &r.hosts[0];
    assert_eq!(h.policy, Level::MtaSts);
    assert_eq!(h.mta_sts_allowed, Some(false));
    assert_eq!(failure_ids(&r), ["policy.mta_sts_mx_mismatch"]);
    let text = lines(&events);
    assert!(
        text.contains("MTA-STS: _mta-sts.example.test TXT \"v=STSv1; id=2026a\"."),
        "{text}"
    );
    assert!(
        text.contains("mode enforce, mx mx9.example.test, *.mail.example.test, max_age 86400"),
        "{text}"
    );
    assert!(
        text.contains("FAIL [policy.mta_sts_mx_mismatch] the MX host mx1.example.test is not allowed by the MTA-STS policy of example.test (mx: mx9.example.test, *.mail.example.test)"),
        "{text}"
    );
    // The TLS itself was fine: the address passed, the host did not.
    assert!(h.addresses[0].passed);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mta_sts"]["policy"]["policy"]["mode"], "enforce");
}

#[tokio::test]
async fn verify_mta_sts_enforce_with_a_listed_mx_passes() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&[MX1])).await;
    let (port, _server) = policy_server(
        &w.ca,
        "version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n",
    )
    .await;
    w.dns.add_txt("_mta-sts.example.test", "v=STSv1; id=2026b");
    w.dns.add_a("mta-sts.example.test", [127, 0, 0, 1]);
    let mut opts = options(&w, mx.port());
    opts.mta_sts.url_template =
        format!("https://mta-sts.{{domain}}:{port}/.well-known/mta-sts.txt");
    let (r, events) = run(&w, &opts).await;
    assert!(r.passed, "{}", lines(&events));
    assert_eq!(r.hosts[0].policy, Level::MtaSts);
    assert_eq!(
        r.hosts[0].mta_sts_pattern.as_deref(),
        Some("*.example.test")
    );
    // --policy mta-sts against a domain without a policy fails.
    w.dns.remove("_mta-sts.example.test");
    opts.policy = Some(Level::MtaSts);
    let (r, _) = run(&w, &opts).await;
    assert_eq!(failure_ids(&r), ["policy.mta_sts_not_published"]);
}

#[tokio::test]
async fn verify_named_host_and_null_mx() {
    let w = world().await;
    let mx = mx_with(&w.ca.issue(&["relay.partner.test"])).await;
    w.dns.add_a("relay.partner.test", [127, 0, 0, 1]);
    w.dns.add_null_mx("nomail.test");
    let mut opts = options(&w, mx.port());
    opts.domain = "nomail.test".into();
    let (r, events) = run(&w, &opts).await;
    assert!(!r.passed);
    assert_eq!(r.mx.error.as_ref().unwrap().id, "dns.null_mx");
    assert!(lines(&events).contains("FAIL [dns.null_mx]"));
    // --mx skips the MX lookup.
    opts.mx = Some("relay.partner.test".into());
    let (r, _) = run(&w, &opts).await;
    assert!(r.passed);
    assert_eq!(r.mx.source, "--mx");
    assert_eq!(r.hosts[0].host, "relay.partner.test");
    // Nothing listening: a connection cause.
    drop(mx);
    let (r, _) = run(&w, &opts).await;
    assert!(!r.passed);
    assert_eq!(failure_ids(&r), ["conn.refused"]);
}

#[tokio::test]
async fn verify_dane_ta_still_checks_the_name() {
    let w = world().await;
    let ca_der = CertificateDer::from_pem_slice(w.ca.cert_pem().as_bytes()).unwrap();
    let data = postern_tlspolicy::dane::association(&ca_der, 0, 1).unwrap();
    // The server sends its CA after the leaf, as DANE-TA needs.
    let chain_config = |names: &[&str]| {
        let issued = w.ca.issue(names);
        let mut chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        chain.push(ca_der.clone());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain,
            PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
        MxTls::StartTls(Arc::new(config))
    };
    let mx = FakeMx::start(chain_config(&["mail.other.test"])).await;
    w.dns.add_tlsa(mx.port(), MX1, 2, 0, 1, &data);
    w.dns.set_authentic(DOMAIN, true);
    // Trust nothing: DANE-TA is the only anchor.
    let mut opts = options(&w, mx.port());
    opts.roots = Arc::new(rustls::RootCertStore::empty());
    let (r, events) = run(&w, &opts).await;
    assert_eq!(r.hosts[0].policy, Level::Dane);
    assert!(lines(&events).contains("TLSA DANE-TA(2) Cert(0) SHA-256(1) matched certificate #1"));
    assert_eq!(failure_ids(&r), ["tls.out.cert_name_mismatch"]);
    // The right name passes, with no trusted root at all.
    mx.set_tls(chain_config(&[MX1]));
    let (r, events) = run(&w, &opts).await;
    assert!(r.passed, "{}", lines(&events));
    assert!(lines(&events).contains("TLS certificate verified for mx1.example.test (DANE)."));
}

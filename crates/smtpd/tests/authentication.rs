//! Mail authentication in a real server (issue 10): SPF, DKIM and DMARC
//! checked at end of data against a `FakeDns`, the per-policy actions
//! (reject, quarantine = held, temperror = 451), our
//! `Authentication-Results:` added and forged ones removed, and DKIM signing
//! of an authenticated user's mail (verified by the same verifier).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use postern_auth::signing::{DkimSigning, SignFor, SigningSettings};
use postern_auth::verify::{DkimResult, DmarcResult, Verifier, VerifierSettings, VerifyInput};
use postern_auth::{Algorithm, SignOptions, Signer, generate};
use postern_smtpd::ServerSettings;
use postern_testkit::{Dialogue, DnsFailure, FakeDns};

const CLIENT: &str = "127.0.0.1";

struct Env {
    srv: common::TestServer,
    reports: tempfile::TempDir,
    recorder: Option<postern_auth::report::RecorderHandle>,
    dns: FakeDns,
    _keys: tempfile::TempDir,
    signer: Signer,
}

/// A server verifying with `FakeDns`; `sender.example` publishes SPF for
/// 127.0.0.1, a DKIM key (selector s1) and DMARC p=reject; `quar.example`
/// p=quarantine; `example.com` (ours) has a signing key.
async fn start() -> Env {
    start_sealing(None).await
}

/// [`start`], sealing mail to example.com with `arc` (RFC 8617).
async fn start_sealing(arc: Option<postern_smtpd::ArcSealSettings>) -> Env {
    start_full(arc, None).await
}

/// [`start`] with ARC sealing and the test user's `senders` list.
async fn start_full(
    arc: Option<postern_smtpd::ArcSealSettings>,
    senders: Option<Vec<String>>,
) -> Env {
    let dns = FakeDns::start().await;
    let keys = tempfile::tempdir().unwrap();
    let (sender_key, _) = generate(Algorithm::Ed25519).unwrap();
    dns.add_txt("sender.example", "v=spf1 ip4:127.0.0.1 -all");
    dns.add_txt("s1._domainkey.sender.example", &sender_key.record_text());
    dns.add_txt(
        "_dmarc.sender.example",
        "v=DMARC1; p=reject; rua=mailto:dmarc@sender.example",
    );
    dns.add_txt("quar.example", "v=spf1 -all");
    dns.add_txt("_dmarc.quar.example", "v=DMARC1; p=quarantine");
    dns.add_txt("spoofed.example", "v=spf1 -all");
    dns.add_txt(
        "_dmarc.spoofed.example",
        "v=DMARC1; p=reject; rua=mailto:dmarc@spoofed.example",
    );
    dns.add_txt("broken.example", "v=spf1 ip4:127.0.0.1 -all");
    dns.fail("_dmarc.broken.example", DnsFailure::ServFail);
    let signer = Signer::new(&sender_key, "sender.example", "s1", &SignOptions::default()).unwrap();

    let (our_key, pem) = generate(Algorithm::Ed25519).unwrap();
    let key_path = keys.path().join("example.com.pem");
    postern_auth::write_key(&key_path, &pem).unwrap();
    dns.add_txt("ours._domainkey.example.com", &our_key.record_text());
    dns.add_txt("example.com", "v=spf1 -all");
    dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");

    let nameservers = dns.nameservers();
    let reports = tempfile::tempdir().unwrap();
    let (recorder, handle) = postern_auth::report::ReportRecorder::open(
        reports.path(),
        postern_auth::report::RecorderLimits::default(),
    )
    .unwrap();
    let services = postern_smtpd::gateway::Services {
        dmarc_reports: Some(recorder),
        ..postern_smtpd::gateway::Services::default()
    };
    let srv = common::start_with_services(
        move |s: &mut ServerSettings| {
            s.authentication.arc_seal = arc;
            s.users[0].senders = senders;
            s.authentication.verify = true;
            s.authentication.nameservers = nameservers;
            s.authentication.dns_timeout = Duration::from_secs(2);
            s.authentication.signing = SigningSettings {
                sign_for: vec![SignFor::Authenticated],
                keys: vec![DkimSigning {
                    domain: "example.com".into(),
                    selector: "ours".into(),
                    key: key_path,
                    sign: true,
                    options: SignOptions::default(),
                }],
            };
        },
        services,
    )
    .await;
    Env {
        srv,
        reports,
        recorder: Some(handle),
        dns,
        _keys: keys,
        signer,
    }
}

impl Env {
    /// The DMARC records written so far (the recorder is stopped first).
    fn reports(mut self) -> Vec<String> {
        if let Some(h) = self.recorder.take() {
            h.shutdown();
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.reports.path()).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            out.extend(text.lines().map(str::to_owned));
        }
        out
    }

    async fn client(&self) -> Dialogue {
        let mut d =
            Dialogue::connect_from(CLIENT.parse::<IpAddr>().unwrap(), self.srv.addr("smtp")).await;
        d.expect(220).await;
        d.cmd("EHLO client.sender.example", 250).await;
        d
    }

    async fn send(&self, from: &str, message: &str) -> postern_testkit::SmtpReply {
        let mut d = self.client().await;
        common::send_message(&mut d, from, "bob@example.com", message).await
    }
}

/// One sender group, ALL, under `policy`.
fn everyone_under(
    policy: postern_policy::admission::MailFlowPolicy,
) -> postern_policy::admission::Admission {
    use postern_policy::admission::{Admission, Matcher, SenderGroup};
    Admission::new(
        vec![SenderGroup {
            name: "ALL".into(),
            matchers: vec![Matcher::parse("all").unwrap()],
            policy: 0,
            listeners: Vec::new(),
        }],
        vec![policy],
        Vec::new(),
    )
}

fn message(from: &str, extra: &str) -> String {
    format!(
        "{extra}From: <{from}>\r\nTo: <bob@example.com>\r\nSubject: hello\r\n\
         Date: Sun, 06 Dec 2026 19:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nHi Bob.\r\n"
    )
}

#[tokio::test]
async fn spoofed_p_reject_domain_is_refused_and_not_stored() {
    let env = start().await;
    let r = env
        .send("ceo@spoofed.example", &message("ceo@spoofed.example", ""))
        .await;
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(r.text().contains("5.7.1"), "{}", r.text());
    assert!(env.srv.messages().is_empty(), "nothing stored");
    // The refusal is recorded for the domain's aggregate report.
    let records = env.reports();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].contains("spoofed.example") && records[0].contains("reject"),
        "{}",
        records[0]
    );
}

#[tokio::test]
async fn signed_mail_passes_gets_our_results_and_forged_ones_are_removed() {
    let env = start().await;
    let forged = "Authentication-Results: mx.test.example; dmarc=pass header.from=sender.example\r\n\
                  Authentication-Results: other.example; spf=pass\r\n";
    let plain = message("alice@sender.example", forged);
    let signed = String::from_utf8(env.signer.sign(plain.as_bytes()).unwrap()).unwrap();
    let r = env.send("alice@sender.example", &signed).await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    let (envelope, stored) = &msgs[0];
    let stored = String::from_utf8_lossy(stored);
    let ar = &envelope.added_headers;
    assert!(
        ar.starts_with("Authentication-Results: mx.test.example;"),
        "{ar}"
    );
    let unfolded = ar.replace("\r\n ", " ").replace("\r\n\t", " ");
    for want in [
        "spf=pass",
        "dkim=pass",
        "header.d=sender.example",
        "dmarc=pass",
    ] {
        assert!(unfolded.contains(want), "{want} missing in {unfolded}");
    }
    assert!(
        stored.starts_with(ar.as_str()),
        "the added fields come first"
    );
    assert!(
        !stored.contains("mx.test.example; dmarc=pass header.from"),
        "the forged result claiming our id is gone:\n{stored}"
    );
    assert!(stored.contains("Authentication-Results: other.example; spf=pass"));
    assert!(envelope.hold.is_none());
}

#[tokio::test]
async fn p_quarantine_failure_is_accepted_held() {
    let env = start().await;
    let r = env
        .send("news@quar.example", &message("news@quar.example", ""))
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    let (envelope, stored) = &msgs[0];
    assert!(
        envelope
            .hold
            .as_deref()
            .is_some_and(|h| h.contains("DMARC")),
        "{:?}",
        envelope.hold
    );
    assert!(String::from_utf8_lossy(stored).contains("X-Postern-Quarantine:"));
}

#[tokio::test]
async fn dns_failure_defers_never_rejects() {
    let env = start().await;
    let r = env
        .send("a@broken.example", &message("a@broken.example", ""))
        .await;
    assert_eq!(r.code, 451, "{}", r.text());
    assert!(env.srv.messages().is_empty());
}

/// A user whose `senders` list names other domains gets no signature of
/// ours on a `From:` it does not own (a shared server's organisations kept
/// apart); the message is still accepted, and the transcript says why.
#[tokio::test]
async fn a_user_is_not_signed_for_a_from_domain_it_does_not_own() {
    let env = start_full(None, Some(vec!["alice@other.example".into()])).await;
    let mut d = env.srv.connect_starttls("submission").await;
    d.cmd("EHLO laptop", 250).await;
    d.cmd(&common::auth_plain(), 235).await;
    // Its own envelope sender, someone else's From: domain.
    let body = message("ceo@example.com", "");
    let r = common::send_message(
        &mut d,
        "alice@other.example",
        "carol@elsewhere.example",
        &body,
    )
    .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    assert!(
        !msgs[0].0.added_headers.contains("DKIM-Signature:"),
        "{}",
        msgs[0].0.added_headers
    );
    let log = env.srv.transcript_with("not DKIM-signed").await;
    assert!(
        log.contains("not DKIM-signed: the From: domain example.com is not one of alice's senders"),
        "{log}"
    );
}

#[tokio::test]
async fn authenticated_mail_is_signed_not_verified() {
    let env = start().await;
    let mut d = env.srv.connect_starttls("submission").await;
    d.cmd("EHLO laptop", 250).await;
    d.cmd(&common::auth_plain(), 235).await;
    let body = message("alice@example.com", "");
    let r = common::send_message(
        &mut d,
        "alice@example.com",
        "carol@elsewhere.example",
        &body,
    )
    .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    let (envelope, stored) = &msgs[0];
    assert!(
        envelope.added_headers.starts_with("DKIM-Signature:"),
        "{}",
        envelope.added_headers
    );
    assert!(
        !envelope.added_headers.contains("Authentication-Results"),
        "our own mail is not verified"
    );

    // The signature verifies with the published key (as a receiver would).
    let verifier = Verifier::new(&VerifierSettings {
        nameservers: env.dns.nameservers(),
        timeout: Duration::from_secs(2),
        ..VerifierSettings::default()
    })
    .unwrap();
    let results = verifier
        .verify(&VerifyInput {
            message: stored,
            ip: "192.0.2.1".parse().unwrap(),
            helo: "mx.test.example",
            mail_from: "alice@example.com",
            our_hostname: "receiver.example",
            spf: None,
        })
        .await;
    assert_eq!(results.dkim.len(), 1);
    assert_eq!(
        results.dkim[0].result,
        DkimResult::Pass,
        "{:?}",
        results.dkim[0]
    );
    assert_eq!(
        results.dmarc.result,
        DmarcResult::Pass,
        "{:?}",
        results.dmarc
    );
}

/// `spf_at = "mail"` with `spf_fail = "reject"`: a forged envelope sender is
/// refused at MAIL FROM with `550 5.7.23`, before any data; a permitted one
/// goes on (its SPF verdict reused at end of data).
#[tokio::test]
async fn spf_at_mail_from_refuses_before_data() {
    use postern_policy::admission::{FlowAction, MailFlowPolicy};
    use postern_policy::authentication::{SpfFailAction, SpfStage};
    let dns = FakeDns::start().await;
    dns.add_txt("forged.example", "v=spf1 ip4:192.0.2.1 -all");
    dns.add_txt("sender.example", "v=spf1 ip4:127.0.0.1 -all");
    let nameservers = dns.nameservers();
    let srv = common::start_with(move |s: &mut ServerSettings| {
        s.authentication.verify = true;
        s.authentication.nameservers = nameservers;
        let mut p = MailFlowPolicy::new("STRICT", FlowAction::Accept);
        p.auth_actions.spf_at = SpfStage::Mail;
        p.auth_actions.spf_fail = SpfFailAction::Reject;
        s.admission = everyone_under(p);
    })
    .await;
    let mut d = Dialogue::connect_from(CLIENT.parse::<IpAddr>().unwrap(), srv.addr("smtp")).await;
    d.expect(220).await;
    d.cmd("EHLO client.sender.example", 250).await;
    let r = d.cmd("MAIL FROM:<boss@forged.example>", 550).await;
    assert!(r.text().contains("5.7.23"), "{}", r.text());
    let r = common::send_message(
        &mut d,
        "alice@sender.example",
        "bob@example.com",
        &message("alice@sender.example", ""),
    )
    .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = srv.messages();
    let ar = msgs[0].0.added_headers.replace("\r\n ", " ");
    assert!(ar.contains("spf=pass"), "{ar}");
}

/// Review findings, as tests: several authors are refused like a DMARC
/// reject; a header section over 1 MiB is refused (it could not be scrubbed
/// whole); an authenticated user's forged results are removed too; a
/// quoted-pair forgery is recognised.
#[tokio::test]
async fn several_authors_big_headers_and_forgeries_from_our_users() {
    let env = start().await;
    let two = message("alice@sender.example", "From: <x@attacker.example>\r\n");
    let signed =
        String::from_utf8(env.signer.sign(two.as_bytes()).unwrap_or_default()).unwrap_or_default();
    let r = env.send("alice@sender.example", &signed).await;
    assert_eq!(r.code, 550, "{}", r.text());

    let mut pad = String::new();
    while pad.len() < 1_100_000 {
        pad.push_str("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let r = env
        .send(
            "alice@sender.example",
            &message("alice@sender.example", &pad),
        )
        .await;
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(env.srv.messages().is_empty());

    let mut d = env.srv.connect_starttls("submission").await;
    d.cmd("EHLO laptop", 250).await;
    d.cmd(&common::auth_plain(), 235).await;
    let forged =
        "Authentication-Results: (x\\) y) mx.test.example; dmarc=pass header.from=bank.example\r\n";
    let body = message("alice@example.com", forged);
    let r = common::send_message(&mut d, "alice@example.com", "bob@example.com", &body).await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    let stored = String::from_utf8_lossy(&msgs[0].1);
    assert!(
        !stored.contains("dmarc=pass header.from=bank.example"),
        "{stored}"
    );
}

/// Greylisting keyed on the SPF-validated sender domain (RFC 6647 §4.2.1):
/// a retry from another host of the sender's pool (another /24, which the
/// domain's SPF record authorises) passes once the delay is over; a sender
/// whose SPF does not pass is still keyed on its network.
#[tokio::test]
async fn greylisting_follows_an_spf_validated_domain_across_its_pool() {
    use postern_policy::admission::{FlowAction, MailFlowPolicy};
    let dns = FakeDns::start().await;
    dns.add_txt("pool.example", "v=spf1 ip4:127.0.0.0/8 -all");
    let nameservers = dns.nameservers();
    let srv = common::start_with(move |s: &mut ServerSettings| {
        s.authentication.verify = true;
        s.authentication.nameservers = nameservers;
        let mut p = MailFlowPolicy::new("GREY", FlowAction::Accept);
        p.greylist = true;
        let mut a = everyone_under(p);
        a.greylist.delay = Duration::from_secs(1);
        s.admission = a;
    })
    .await;
    let session = |ip: &'static str| {
        let addr = srv.addr("smtp");
        async move {
            let mut d = Dialogue::connect_from(ip.parse::<IpAddr>().unwrap(), addr).await;
            d.expect(220).await;
            d.cmd("EHLO out.pool.example", 250).await;
            d
        }
    };
    let mut first = session("127.0.0.1").await;
    first.cmd("MAIL FROM:<news@pool.example>", 250).await;
    first.cmd("RCPT TO:<bob@example.com>", 450).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Another /24 of the same SPF-authorised pool: passes.
    let mut retry = session("127.0.1.1").await;
    retry.cmd("MAIL FROM:<news@pool.example>", 250).await;
    retry.cmd("RCPT TO:<bob@example.com>", 250).await;
    // No SPF record: keyed on the network, so a new /24 starts over.
    let mut other = session("127.0.2.1").await;
    other.cmd("MAIL FROM:<x@nospf.example>", 250).await;
    other.cmd("RCPT TO:<bob@example.com>", 450).await;
}

/// Verified mail for a route with `arc_seal = true` is ARC-sealed at receipt
/// (RFC 8617): the stored message's chain validates in dkimpy.
#[tokio::test]
async fn verified_mail_to_a_sealing_route_is_arc_sealed() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let (key, pem) = generate(Algorithm::Rsa).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arc.pem");
    postern_auth::write_key(&path, &pem).unwrap();
    let env = start_sealing(Some(postern_smtpd::ArcSealSettings {
        domain: "example.com".into(),
        selector: "arc1".into(),
        key: path,
        routes: vec!["example.com".into()],
    }))
    .await;
    let plain = message("alice@sender.example", "");
    let signed = String::from_utf8(env.signer.sign(plain.as_bytes()).unwrap()).unwrap();
    let r = env.send("alice@sender.example", &signed).await;
    assert_eq!(r.code, 250, "{}", r.text());
    let msgs = env.srv.messages();
    let (envelope, stored) = &msgs[0];
    assert!(
        envelope
            .added_headers
            .starts_with("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=arc1;"),
        "{}",
        envelope.added_headers
    );
    assert!(
        envelope
            .added_headers
            .contains("ARC-Authentication-Results: i=1; mx.test.example;")
    );
    // dkimpy validates the chain of what delivery sends.
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import dkim"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "python3-dkim is required"
        );
        return;
    }
    let script = format!(
        "import sys, dkim\nrecord = {:?}.encode()\n\
         def dns(name, timeout=5):\n    return record if name.startswith(b'arc1._domainkey.example.com') else None\n\
         cv, results, reason = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dns)\nprint(cv.decode(), reason)\n",
        key.record_text()
    );
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stored).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("pass"), "{text}");
}

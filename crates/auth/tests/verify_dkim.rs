//! DKIM and ARC verification through `Verifier::verify` against a real DNS
//! server on 127.0.0.1 (testkit `FakeDns`), including the regression test
//! for `mail-auth` 0.13.3's relaxed-body bug on the verify side.

#![allow(clippy::unwrap_used)]

use mail_auth::arc::ArcSealer;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};
use postern_auth::keys::{Algorithm, DkimKeyFile, generate};
use postern_auth::sign::{SignOptions, Signer};
use postern_auth::verify::{
    ArcResult, DkimResult, SpfResult, SpfVerdict, SpfVerdicts, Verifier, VerifierSettings,
    VerifyInput,
};
use postern_testkit::{DnsFailure, FakeDns};

const HEADERS: &str = "From: Alice <alice@example.com>\r\n\
To: bob@example.net\r\n\
Subject: hello\r\n\
Date: Sun, 06 Dec 2026 16:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
\r\n";

fn verifier(dns: &FakeDns) -> Verifier {
    Verifier::new(&VerifierSettings {
        nameservers: dns.nameservers(),
        ..VerifierSettings::default()
    })
    .unwrap()
}

/// `mail-auth`'s own authenticator on the same DNS server.
fn library(dns: &FakeDns) -> MessageAuthenticator {
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let mut config = ResolverConfig::default();
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for c in &mut ns.connections {
        c.port = dns.addr().port();
    }
    config.name_servers.push(ns);
    MessageAuthenticator::new(config, ResolverOpts::default()).unwrap()
}

fn publish(dns: &FakeDns, key: &DkimKeyFile, domain: &str, selector: &str) {
    let text = key.record_text();
    let strings: Vec<&str> = text
        .as_bytes()
        .chunks(255)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    dns.add_txt_strings(&format!("{selector}._domainkey.{domain}"), &strings);
}

fn no_spf() -> SpfVerdicts {
    let none = SpfVerdict::none("", "not checked in this test");
    SpfVerdicts {
        helo: none.clone(),
        mail_from: none,
    }
}

fn input(message: &[u8]) -> VerifyInput<'_> {
    VerifyInput {
        message,
        ip: "192.0.2.1".parse().unwrap(),
        helo: "client.example",
        mail_from: "alice@example.com",
        our_hostname: "mx.postern.test",
        spf: Some(no_spf()),
    }
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = HEADERS.as_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

#[tokio::test]
async fn every_signature_gets_a_verdict() {
    let dns = FakeDns::start().await;
    let (ed, _) = generate(Algorithm::Ed25519).unwrap();
    let (rsa, _) = generate(Algorithm::Rsa).unwrap();
    publish(&dns, &ed, "example.com", "ed");
    publish(&dns, &rsa, "example.com", "rsa");
    let v = verifier(&dns);
    let m = message(b"Hello Bob.\r\n");
    let once = Signer::new(&rsa, "example.com", "rsa", &SignOptions::default())
        .unwrap()
        .sign(&m)
        .unwrap();
    let twice = Signer::new(&ed, "example.com", "ed", &SignOptions::default())
        .unwrap()
        .sign(&once)
        .unwrap();
    let r = v.verify(&input(&twice)).await;
    assert_eq!(r.dkim.len(), 2, "{:?}", r.dkim);
    let mut seen: Vec<(&str, &str, DkimResult)> = r
        .dkim
        .iter()
        .map(|d| (d.selector.as_str(), d.algorithm.as_str(), d.result))
        .collect();
    seen.sort_unstable_by_key(|s| s.0);
    assert_eq!(
        seen,
        [
            ("ed", "ed25519-sha256", DkimResult::Pass),
            ("rsa", "rsa-sha256", DkimResult::Pass)
        ]
    );
    for d in &r.dkim {
        assert_eq!(d.domain, "example.com");
        assert!(d.header_b.len() >= 8, "{}", d.header_b);
        // header.b is the start of the b= tag as written in the field.
        let unfolded: String = String::from_utf8_lossy(&twice)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(
            unfolded.contains(&format!("b={}", d.header_b)),
            "{}",
            d.header_b
        );
    }
    assert_eq!(r.arc.result, ArcResult::None);

    // Unsigned: no verdicts.
    let r = v.verify(&input(&m)).await;
    assert!(r.dkim.is_empty());
}

/// The regression test of ADR 0011 for the verify side: a correct
/// (dkimpy-style) relaxed-body signature over a body ending in
/// whitespace-only lines fails in `mail-auth` 0.13.3 alone and passes in
/// our verifier. Our Signer already signs the correct body hash.
#[tokio::test]
async fn relaxed_body_with_whitespace_only_trailing_lines_verifies() {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    publish(&dns, &key, "example.com", "s1");
    let v = verifier(&dns);
    let m = message(b"Hello Bob.\r\n \r\n\t\r\n");
    let signed = Signer::new(&key, "example.com", "s1", &SignOptions::default())
        .unwrap()
        .sign(&m)
        .unwrap();

    // mail-auth alone: the buggy body hash.
    let auth = library(&dns);
    let parsed = AuthenticatedMessage::parse(&signed).unwrap();
    let alone = auth.verify_dkim(&parsed).await;
    assert_ne!(
        *alone[0].result(),
        mail_auth::DkimResult::Pass,
        "library bug gone?"
    );

    // Ours: pass.
    let r = v.verify(&input(&signed)).await;
    assert_eq!(r.dkim.len(), 1);
    assert_eq!(r.dkim[0].result, DkimResult::Pass, "{:?}", r.dkim[0]);

    // Simple body canonicalization hashes the body as sent: passes as well,
    // and a relaxed signature over a body changed in its trailing
    // whitespace still passes (that is what relaxed is for).
    let simple = Signer::new(
        &key,
        "example.com",
        "s1",
        &SignOptions {
            body_relaxed: false,
            header_relaxed: false,
            ..SignOptions::default()
        },
    )
    .unwrap()
    .sign(&m)
    .unwrap();
    assert_eq!(
        v.verify(&input(&simple)).await.dkim[0].result,
        DkimResult::Pass
    );
    let mut rewrapped = signed.clone();
    rewrapped.extend_from_slice(b"  \r\n");
    assert_eq!(
        v.verify(&input(&rewrapped)).await.dkim[0].result,
        DkimResult::Pass
    );
    let mut changed = simple.clone();
    changed.extend_from_slice(b"  \r\n");
    assert_eq!(
        v.verify(&input(&changed)).await.dkim[0].result,
        DkimResult::Fail
    );
}

#[tokio::test]
async fn failures_and_their_reasons() {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    publish(&dns, &key, "example.com", "s1");
    let v = verifier(&dns);
    let sign = |domain: &str, selector: &str| {
        Signer::new(&key, domain, selector, &SignOptions::default())
            .unwrap()
            .sign(&message(b"Hello Bob.\r\n"))
            .unwrap()
    };

    // Body changed after signing.
    let tampered: Vec<u8> = String::from_utf8(sign("example.com", "s1"))
        .unwrap()
        .replace("Hello Bob", "Hello Eve")
        .into_bytes();
    let d = &v.verify(&input(&tampered)).await.dkim[0];
    assert_eq!(d.result, DkimResult::Fail);
    assert!(d.reason.contains("body hash"), "{}", d.reason);

    // A signed header changed.
    let tampered: Vec<u8> = String::from_utf8(sign("example.com", "s1"))
        .unwrap()
        .replace("Subject: hello", "Subject: pay now")
        .into_bytes();
    let d = &v.verify(&input(&tampered)).await.dkim[0];
    assert_eq!(d.result, DkimResult::Fail, "{d:?}");

    // No key published for the selector.
    let d = &v.verify(&input(&sign("example.com", "nokey"))).await.dkim[0];
    assert_eq!(d.result, DkimResult::PermError, "{d:?}");
    assert!(d.reason.contains("no key"), "{}", d.reason);

    // The key lookup fails: temperror, never fail.
    dns.fail("tmp._domainkey.example.com", DnsFailure::ServFail);
    let d = &v.verify(&input(&sign("example.com", "tmp"))).await.dkim[0];
    assert_eq!(d.result, DkimResult::TempError, "{d:?}");

    // Revoked key (empty p=).
    dns.add_txt("revoked._domainkey.example.com", "v=DKIM1; k=ed25519; p=");
    let d = &v.verify(&input(&sign("example.com", "revoked"))).await.dkim[0];
    assert_ne!(d.result, DkimResult::Pass, "{d:?}");

    // A signature that cannot be parsed: permerror, named by its d= and s=.
    let broken = message(b"x\r\n");
    let mut m = b"DKIM-Signature: v=1; a=rsa-sha256; d=broken.example; s=sel; b=!!!\r\n".to_vec();
    m.extend_from_slice(&broken);
    let r = v.verify(&input(&m)).await;
    assert_eq!(r.dkim.len(), 1, "{:?}", r.dkim);
    assert_eq!(r.dkim[0].result, DkimResult::PermError);
    assert_eq!(r.dkim[0].domain, "broken.example");
    assert_eq!(r.dkim[0].selector, "sel");

    // l= is refused (RFC 6376 §8.2).
    let with_l = String::from_utf8(sign("example.com", "s1"))
        .unwrap()
        .replacen("DKIM-Signature: ", "DKIM-Signature: l=3; ", 1)
        .into_bytes();
    let r = v.verify(&input(&with_l)).await;
    assert_eq!(r.dkim[0].result, DkimResult::PermError, "{:?}", r.dkim);
}

#[tokio::test]
async fn hostile_input_does_not_panic() {
    let dns = FakeDns::start().await;
    let v = verifier(&dns);
    for m in [
        &b""[..],
        b"\r\n\r\n",
        b"no colon here",
        b"DKIM-Signature:\r\n\r\n",
        b"DKIM-Signature: v=1; a=ed25519-sha256; d=; s=; bh=; b=; h=from\r\nFrom: a@b\r\n\r\n",
        b"ARC-Seal: i=1; cv=none\r\nFrom: a@b\r\n\r\n",
        b"ARC-Seal: i=99999999999; a=rsa-sha256\r\nARC-Message-Signature: i=0\r\n\r\n",
        b"From: \xff\xfe@\xff\r\n\r\n\xff",
    ] {
        let r = v.verify(&input(m)).await;
        let _ = r.header_value("mx.postern.test");
    }
}

/// An ARC chain sealed with mail-auth's sealer (our key, published in
/// FakeDns): pass with the sealer named; a body changed after sealing: fail.
#[tokio::test]
async fn arc_chain_validation() {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Rsa).unwrap();
    publish(&dns, &key, "example.com", "s1");
    publish(&dns, &key, "lists.example.org", "arc");
    let v = verifier(&dns);
    let signed = Signer::new(&key, "example.com", "s1", &SignOptions::default())
        .unwrap()
        .sign(&message(b"Hello list.\r\n"))
        .unwrap();
    let auth = library(&dns);
    let parsed = AuthenticatedMessage::parse(&signed).unwrap();
    let arc = auth.verify_arc(&parsed).await;
    let dkim = auth.verify_dkim(&parsed).await;
    let results =
        AuthenticationResults::new("lists.example.org").with_dkim_results(&dkim, "example.com");
    let set = ArcSealer::from_key(key.signing_key().unwrap())
        .domain("lists.example.org")
        .selector("arc")
        .headers(["From", "To", "Subject", "DKIM-Signature"])
        .seal(&parsed, &results, &arc)
        .unwrap();
    let mut sealed = set.to_header().into_bytes();
    sealed.extend_from_slice(&signed);

    let r = v.verify(&input(&sealed)).await;
    assert_eq!(r.arc.result, ArcResult::Pass, "{:?}", r.arc);
    assert_eq!(r.arc.instances, 1);
    assert_eq!(r.arc.sealers, ["lists.example.org"]);

    let tampered = String::from_utf8(sealed)
        .unwrap()
        .replace("Hello list.", "Hello spam.")
        .into_bytes();
    let r = v.verify(&input(&tampered)).await;
    assert_eq!(r.arc.result, ArcResult::Fail, "{:?}", r.arc);
    assert_eq!(r.arc.sealers, ["lists.example.org"]);
    assert_eq!(r.spf.mail_from.result, SpfResult::None);
}

/// A message with many signatures costs at most `MAX_SIGNATURES` key
/// lookups; the rest are reported `policy`.
#[tokio::test]
async fn signatures_past_the_limit_are_not_looked_up() {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    let v = verifier(&dns);
    let mut m = message(b"Hello.\r\n");
    for i in 0..25 {
        m = Signer::new(
            &key,
            "example.com",
            &format!("s{i}"),
            &SignOptions::default(),
        )
        .unwrap()
        .sign(&m)
        .unwrap();
    }
    let r = v.verify(&input(&m)).await;
    assert_eq!(r.dkim.len(), 25);
    let limit = postern_auth::verify::dkim::MAX_SIGNATURES;
    let policy = r
        .dkim
        .iter()
        .filter(|d| d.result == DkimResult::Policy)
        .count();
    assert_eq!(policy, 25 - limit, "{:?}", r.dkim);
    let key_queries = dns
        .queries()
        .iter()
        .filter(|q| q.contains("_domainkey"))
        .count();
    assert!(key_queries <= limit * 2, "{key_queries} key lookups");
}

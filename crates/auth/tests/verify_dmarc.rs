//! DMARC per RFC 7489 through `Verifier::verify` against a real DNS server
//! on 127.0.0.1 (testkit `FakeDns`): alignment of SPF and DKIM (relaxed and
//! strict), `p`/`sp`, organisational-domain fallback through the
//! public-suffix list (also under a two-label suffix, co.uk), `pct`,
//! several From domains, no record, DNS failures.

#![allow(clippy::unwrap_used)]

use postern_auth::keys::{Algorithm, DkimKeyFile, generate};
use postern_auth::sign::{SignOptions, Signer};
use postern_auth::verify::{
    Alignment, DkimResult, DmarcPolicy, DmarcResult, DmarcVerdict, SpfResult, SpfVerdict,
    SpfVerdicts, Verifier, VerifierSettings, VerifyInput,
};
use postern_testkit::{DnsFailure, FakeDns};

struct World {
    dns: FakeDns,
    key: DkimKeyFile,
    v: Verifier,
}

async fn world() -> World {
    let dns = FakeDns::start().await;
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    let v = Verifier::new(&VerifierSettings {
        nameservers: dns.nameservers(),
        ..VerifierSettings::default()
    })
    .unwrap();
    World { dns, key, v }
}

impl World {
    /// Publishes our key as `s1._domainkey.<domain>`.
    fn key_for(&self, domain: &str) {
        self.dns
            .add_txt(&format!("s1._domainkey.{domain}"), &self.key.record_text());
    }

    /// A message From `from` (one header, possibly several addresses),
    /// signed with d=`dkim_domain` when given.
    fn message(&self, from: &str, dkim_domain: Option<&str>) -> Vec<u8> {
        let m = format!(
            "From: {from}\r\nTo: bob@example.net\r\nSubject: s\r\nDate: Sun, 06 Dec 2026 16:00:00 +0000\r\n\r\nbody\r\n"
        )
        .into_bytes();
        match dkim_domain {
            Some(d) => {
                self.key_for(d);
                Signer::new(&self.key, d, "s1", &SignOptions::default())
                    .unwrap()
                    .sign(&m)
                    .unwrap()
            }
            None => m,
        }
    }

    async fn dmarc(&self, message: &[u8], spf: SpfVerdicts) -> DmarcVerdict {
        let r = self
            .v
            .verify(&VerifyInput {
                message,
                ip: "192.0.2.1".parse().unwrap(),
                helo: "client.example",
                mail_from: "x",
                our_hostname: "mx.postern.test",
                spf: Some(spf),
            })
            .await;
        if let Some(d) = r.dkim.first() {
            assert_eq!(d.result, DkimResult::Pass, "test setup: DKIM must pass");
        }
        r.dmarc
    }
}

/// SPF verdicts with MAIL FROM `result` for `domain`.
fn spf(result: SpfResult, domain: &str) -> SpfVerdicts {
    let v = SpfVerdict {
        result,
        domain: domain.into(),
        identity: format!("bounce@{domain}"),
        reason: String::new(),
    };
    SpfVerdicts {
        helo: SpfVerdict::none("client.example", ""),
        mail_from: v,
    }
}

#[tokio::test]
async fn aligned_spf_only_and_aligned_dkim_only() {
    let w = world().await;
    w.dns.add_txt(
        "_dmarc.example.com",
        "v=DMARC1; p=reject; rua=mailto:agg@example.com",
    );
    // SPF passes for the From domain, no signature.
    let d = w
        .dmarc(
            &w.message("a@example.com", None),
            spf(SpfResult::Pass, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Pass, "{d:?}");
    assert!(d.spf_aligned && !d.dkim_aligned);
    assert_eq!(d.policy, DmarcPolicy::Reject);
    assert_eq!(d.rua, ["mailto:agg@example.com"]);
    let p = d.published.unwrap();
    assert_eq!((p.domain.as_str(), p.pct), ("example.com", 100));

    // SPF fails, DKIM d=example.com passes.
    let d = w
        .dmarc(
            &w.message("a@example.com", Some("example.com")),
            spf(SpfResult::Fail, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Pass, "{d:?}");
    assert!(!d.spf_aligned && d.dkim_aligned);

    // Both pass but for another domain: fail under p=reject.
    let d = w
        .dmarc(
            &w.message("a@example.com", Some("other.example")),
            spf(SpfResult::Pass, "bounces.other.example"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Fail, "{d:?}");
    assert_eq!(d.policy, DmarcPolicy::Reject);
    assert!(d.sampled);
    assert_eq!(d.effective_policy(), DmarcPolicy::Reject);
    assert!(d.reason.contains("other.example"), "{}", d.reason);
}

#[tokio::test]
async fn relaxed_and_strict_alignment() {
    let w = world().await;
    w.dns
        .add_txt("_dmarc.relaxed.example", "v=DMARC1; p=reject");
    w.dns.add_txt(
        "_dmarc.strict.example",
        "v=DMARC1; p=reject; adkim=s; aspf=s",
    );
    // d= and MAIL FROM in a subdomain of the From domain.
    for (from, expect) in [
        ("a@relaxed.example", DmarcResult::Pass),
        ("a@strict.example", DmarcResult::Fail),
    ] {
        let domain = from.split('@').nth(1).unwrap();
        let dkim_d = format!("mail.{domain}");
        let d = w
            .dmarc(
                &w.message(from, Some(&dkim_d)),
                spf(SpfResult::Fail, domain),
            )
            .await;
        assert_eq!(d.result, expect, "dkim {from}: {d:?}");
        let d = w
            .dmarc(
                &w.message(from, None),
                spf(SpfResult::Pass, &format!("bounce.{domain}")),
            )
            .await;
        assert_eq!(d.result, expect, "spf {from}: {d:?}");
    }
    let d = w
        .dmarc(
            &w.message("a@strict.example", None),
            spf(SpfResult::Pass, "strict.example"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Pass);
    let p = d.published.unwrap();
    assert_eq!((p.adkim, p.aspf), (Alignment::Strict, Alignment::Strict));
}

#[tokio::test]
async fn subdomain_takes_sp_from_the_organisational_domain() {
    let w = world().await;
    w.dns
        .add_txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine");
    let d = w
        .dmarc(
            &w.message("a@news.example.com", None),
            spf(SpfResult::Fail, "news.example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Fail, "{d:?}");
    assert_eq!(d.from_domain, "news.example.com");
    assert_eq!(d.org_domain, "example.com");
    assert_eq!(d.policy, DmarcPolicy::Quarantine);
    assert_eq!(d.published.as_ref().unwrap().domain, "example.com");
    // The From domain's own record wins over the organisational one.
    w.dns.add_txt("_dmarc.news.example.com", "v=DMARC1; p=none");
    let d = w
        .dmarc(
            &w.message("a@news.example.com", None),
            spf(SpfResult::Fail, "news.example.com"),
        )
        .await;
    assert_eq!(d.policy, DmarcPolicy::None);
    assert_eq!(d.published.unwrap().domain, "news.example.com");
}

#[tokio::test]
async fn organisational_domain_under_a_two_label_suffix() {
    let w = world().await;
    w.dns.add_txt("_dmarc.shop.co.uk", "v=DMARC1; p=quarantine");
    // d=shop.co.uk aligns (relaxed) with mail.shop.co.uk; co.uk is a suffix,
    // so d=co.uk or another shop under co.uk would not.
    let d = w
        .dmarc(
            &w.message("orders@mail.shop.co.uk", Some("shop.co.uk")),
            spf(SpfResult::None, "mail.shop.co.uk"),
        )
        .await;
    assert_eq!(d.org_domain, "shop.co.uk");
    assert_eq!(d.result, DmarcResult::Pass, "{d:?}");
    let d = w
        .dmarc(
            &w.message("orders@mail.shop.co.uk", Some("other.co.uk")),
            spf(SpfResult::Pass, "other.co.uk"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Fail, "{d:?}");
    assert_eq!(d.policy, DmarcPolicy::Quarantine);
    // No lookup ever went to the public suffix itself.
    assert!(
        !w.dns
            .queries()
            .iter()
            .any(|q| q.starts_with("_dmarc.co.uk")),
        "{:?}",
        w.dns.queries()
    );
}

#[tokio::test]
async fn pct_zero_is_never_sampled() {
    let w = world().await;
    w.dns
        .add_txt("_dmarc.example.com", "v=DMARC1; p=reject; pct=0");
    w.dns
        .add_txt("_dmarc.example.org", "v=DMARC1; p=quarantine; pct=0");
    for _ in 0..20 {
        let d = w
            .dmarc(
                &w.message("a@example.com", None),
                spf(SpfResult::Fail, "example.com"),
            )
            .await;
        assert_eq!(d.result, DmarcResult::Fail);
        assert_eq!(d.pct, 0);
        assert!(!d.sampled);
        assert_eq!(d.effective_policy(), DmarcPolicy::Quarantine);
    }
    let d = w
        .dmarc(
            &w.message("a@example.org", None),
            spf(SpfResult::Fail, "example.org"),
        )
        .await;
    assert_eq!(d.policy, DmarcPolicy::Quarantine);
    assert_eq!(d.effective_policy(), DmarcPolicy::None);
}

#[tokio::test]
async fn several_from_domains_no_record_and_dns_failures() {
    let w = world().await;
    w.dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    // Two From domains: permerror (§6.6.1).
    let d = w
        .dmarc(
            &w.message("a@example.com, b@example.net", None),
            spf(SpfResult::Pass, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::PermError, "{d:?}");
    // Two addresses in one domain are one From domain.
    let d = w
        .dmarc(
            &w.message("a@example.com, b@Example.COM", None),
            spf(SpfResult::Pass, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::Pass, "{d:?}");
    // No record anywhere.
    let d = w
        .dmarc(
            &w.message("a@sub.nodmarc.example", None),
            spf(SpfResult::Fail, "x"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::None, "{d:?}");
    assert!(d.reason.contains("_dmarc.nodmarc.example"), "{}", d.reason);
    // The record lookup fails: temperror, never fail.
    w.dns.fail("_dmarc.broken.example", DnsFailure::ServFail);
    let d = w
        .dmarc(
            &w.message("a@broken.example", None),
            spf(SpfResult::Fail, "broken.example"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::TempError, "{d:?}");
    // An aligned SPF temperror and nothing else: temperror, not fail.
    let d = w
        .dmarc(
            &w.message("a@example.com", None),
            spf(SpfResult::TempError, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::TempError, "{d:?}");
    // Two DMARC records at the name: no policy.
    w.dns.add_txt("_dmarc.twice.example", "v=DMARC1; p=reject");
    w.dns.add_txt("_dmarc.twice.example", "v=DMARC1; p=none");
    let d = w
        .dmarc(
            &w.message("a@twice.example", None),
            spf(SpfResult::Fail, "twice.example"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::None, "{d:?}");
    // No From at all.
    let d = w
        .dmarc(
            b"Subject: x\r\n\r\nbody\r\n",
            spf(SpfResult::Pass, "example.com"),
        )
        .await;
    assert_eq!(d.result, DmarcResult::None);
}

#[tokio::test]
async fn verdicts_serialise_as_json_and_back() {
    let w = world().await;
    w.dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    let m = w.message("a@example.com", Some("example.com"));
    let r =
        w.v.verify(&VerifyInput {
            message: &m,
            ip: "192.0.2.1".parse().unwrap(),
            helo: "client.example",
            mail_from: "",
            our_hostname: "mx",
            spf: Some(spf(SpfResult::Pass, "example.com")),
        })
        .await;
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"result\":\"pass\""), "{json}");
    let back: postern_auth::AuthResults = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

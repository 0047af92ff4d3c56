//! In-process DNSSEC validation (`DnssecMode::Validate`) end to end: the fake
//! DNS plays a signed root zone (one Ed25519 key, RFC 8080) whose DNSKEY is
//! the only trust anchor; every answer RRset is signed on the fly
//! (RFC 4034 §3, RFC 4035 §5). Checks that signed answers are authenticated
//! and that a signature by an unknown key is bogus, and that bogus defers.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::Ed25519SigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG};
use hickory_proto::dnssec::{DnssecSigner, SigningKey};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet};
use postern_dns::{DnsError, DnsSettings, DnssecMode, MxKind, Resolver};
use postern_testkit::FakeDns;

fn new_signer() -> (DnssecSigner, DNSKEY) {
    let pkcs8 = Ed25519SigningKey::generate_pkcs8().unwrap();
    let key = Ed25519SigningKey::from_pkcs8(&pkcs8).unwrap();
    let dnskey = DNSKEY::new(true, true, false, key.to_public_key().unwrap());
    let signer = DnssecSigner::new(
        dnskey.clone(),
        Box::new(key),
        Name::root(),
        Duration::from_hours(2),
    );
    (signer, dnskey)
}

fn rrsig(rrset: &[Record], signer: &DnssecSigner) -> Record {
    let first = &rrset[0];
    let mut set = RecordSet::with_ttl(first.name.clone(), first.record_type(), first.ttl);
    for r in rrset {
        set.insert(r.clone(), 0);
    }
    let inception = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let sig = RRSIG::from_rrset(&set, DNSClass::IN, inception, signer).unwrap();
    Record::from_rdata(
        first.name.clone(),
        first.ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(sig)),
    )
}

/// A fake DNS serving a signed root; names under `forged.example` are signed
/// with a key that is not published (so they are bogus). Returns the fake and
/// a trust-anchor file holding the root DNSKEY.
async fn signed_fake() -> (FakeDns, tempfile::NamedTempFile) {
    let (signer, dnskey) = new_signer();
    let (forger, _) = new_signer();
    let fake = FakeDns::start().await;
    let key_record = Record::from_rdata(
        Name::root(),
        3600,
        RData::DNSSEC(DNSSECRData::DNSKEY(dnskey)),
    );
    let anchor = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(anchor.path(), format!("{key_record}\n")).unwrap();
    fake.add_record(key_record);
    let (signer, forger) = (Arc::new(signer), Arc::new(forger));
    let forged_zone: Name = "forged.example.".parse().unwrap();
    fake.set_signer(move |rrset| {
        if forged_zone.zone_of(&rrset[0].name) {
            vec![rrsig(rrset, &forger)]
        } else {
            vec![rrsig(rrset, &signer)]
        }
    });
    (fake, anchor)
}

fn validating(fake: &FakeDns, anchor: &tempfile::NamedTempFile) -> Resolver {
    let settings = DnsSettings {
        nameservers: fake.nameservers(),
        dnssec: DnssecMode::Validate,
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..DnsSettings::default()
    };
    Resolver::with_trust_anchor_file(&settings, anchor.path()).unwrap()
}

#[tokio::test]
async fn signed_answers_are_authenticated() {
    let (fake, anchor) = signed_fake().await;
    fake.add_mx("signed.example", 10, "mx.signed.example")
        .add_a("mx.signed.example", [192, 0, 2, 1])
        .add_tlsa(25, "mx.signed.example", 3, 1, 1, &[7; 32]);
    let r = validating(&fake, &anchor);
    assert!(r.can_authenticate());
    let mx = r.mx("signed.example").await.unwrap();
    assert_eq!(mx.kind, MxKind::Mx);
    assert!(mx.authenticated, "{mx:?}");
    let a = r.addresses("mx.signed.example").await.unwrap();
    assert!(a.authenticated, "{a:?}");
    let tlsa = r.tlsa(25, "mx.signed.example").await.unwrap();
    assert!(tlsa.authenticated, "{tlsa:?}");
    assert_eq!(tlsa.records[0].usage, 3);
}

#[tokio::test]
async fn signature_by_an_unknown_key_is_bogus_and_defers() {
    let (fake, anchor) = signed_fake().await;
    fake.add_mx("forged.example", 10, "mx.attacker.example");
    let err = validating(&fake, &anchor)
        .mx("forged.example")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DnsError::Bogus {
            name: "forged.example".into()
        }
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn same_answers_unauthenticated_without_validation() {
    // The AD bit is not set by this fake, and Off never authenticates: the
    // signatures alone do not make an answer authenticated outside Validate.
    let (fake, _anchor) = signed_fake().await;
    fake.add_mx("signed.example", 10, "mx.signed.example");
    for mode in [DnssecMode::Off, DnssecMode::TrustAdBit] {
        let settings = DnsSettings {
            nameservers: fake.nameservers(),
            dnssec: mode,
            ..DnsSettings::default()
        };
        let mx = Resolver::new(&settings)
            .unwrap()
            .mx("signed.example")
            .await
            .unwrap();
        assert!(!mx.authenticated, "{mode:?}");
    }
}

#[test]
fn trust_anchor_file_errors_are_config_errors() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let settings = DnsSettings {
        nameservers: vec!["127.0.0.1:53".parse().unwrap()],
        dnssec: DnssecMode::Validate,
        ..DnsSettings::default()
    };
    assert!(matches!(
        Resolver::with_trust_anchor_file(&settings, empty.path()),
        Err(DnsError::Config(_))
    ));
    assert!(matches!(
        Resolver::with_trust_anchor_file(&settings, std::path::Path::new("/nonexistent/root.key")),
        Err(DnsError::Config(_))
    ));
}

//! Lookups against `FakeDns` on loopback: MX rules (RFC 5321 §5.1, RFC 7505),
//! address families, TXT/TLSA/PTR parsing, failure classes, the AD bit
//! (RFC 6840 §5.7–5.8) per DNSSEC mode, and static overrides.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use postern_dns::{DnsError, DnsSettings, DnssecMode, MxKind, Resolver, StaticEntry};
use postern_testkit::{DnsFailure, FakeDns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn settings(fake: &FakeDns, dnssec: DnssecMode) -> DnsSettings {
    DnsSettings {
        nameservers: fake.nameservers(),
        dnssec,
        timeout: Duration::from_secs(2),
        attempts: 2,
        ..DnsSettings::default()
    }
}

fn resolver(fake: &FakeDns) -> Resolver {
    Resolver::new(&settings(fake, DnssecMode::TrustAdBit)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn mx_sorted_by_preference_with_equal_preferences_shuffled() {
    let fake = FakeDns::start().await;
    fake.add_mx("example.com", 20, "backup.example.com")
        .add_mx("example.com", 10, "mx-a.example.com")
        .add_mx("example.com", 10, "mx-b.example.com")
        .add_mx("example.com", 5, "primary.example.com");
    let r = resolver(&fake);
    let mut orders = HashSet::new();
    for _ in 0..200 {
        let mx = r.mx("example.com").await.unwrap();
        assert_eq!(mx.kind, MxKind::Mx);
        assert_eq!(mx.domain, "example.com");
        let names: Vec<&str> = mx.hosts.iter().map(|h| h.exchange.as_str()).collect();
        let prefs: Vec<u16> = mx.hosts.iter().map(|h| h.preference).collect();
        assert_eq!(prefs, [5, 10, 10, 20]);
        assert_eq!(names[0], "primary.example.com");
        assert_eq!(names[3], "backup.example.com");
        orders.insert(format!("{},{}", names[1], names[2]));
    }
    // Both orders of the two preference-10 hosts appear (each has p = 2^-199
    // of never showing up).
    assert_eq!(orders.len(), 2, "{orders:?}");
}

#[tokio::test]
async fn null_mx_means_no_mail() {
    let fake = FakeDns::start().await;
    fake.add_null_mx("nomail.example")
        .add_a("nomail.example", [192, 0, 2, 1]);
    let mx = resolver(&fake).mx("nomail.example").await.unwrap();
    assert_eq!(mx.kind, MxKind::NullMx);
    assert!(mx.hosts.is_empty());
}

#[tokio::test]
async fn no_mx_records_is_an_implicit_mx() {
    let fake = FakeDns::start().await;
    fake.add_a("plain.example", [192, 0, 2, 7]);
    let mx = resolver(&fake).mx("Plain.Example.").await.unwrap();
    assert_eq!(mx.kind, MxKind::Implicit);
    assert_eq!(mx.domain, "plain.example");
    assert_eq!(mx.hosts.len(), 1);
    assert_eq!(mx.hosts[0].exchange, "plain.example");
    assert_eq!(mx.hosts[0].preference, 0);
}

#[tokio::test]
async fn nxdomain_is_permanent() {
    let fake = FakeDns::start().await;
    fake.add_mx("example.com", 10, "mx.example.com");
    let err = resolver(&fake).mx("missing.example.com").await.unwrap_err();
    assert_eq!(
        err,
        DnsError::NxDomain {
            name: "missing.example.com".into()
        }
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn servfail_is_transient_and_retried() {
    let fake = FakeDns::start().await;
    fake.add_mx("broken.example", 10, "mx.broken.example")
        .fail("broken.example", DnsFailure::ServFail);
    let err = resolver(&fake).mx("broken.example").await.unwrap_err();
    assert_eq!(
        err,
        DnsError::ServFail {
            name: "broken.example".into()
        }
    );
    assert!(err.is_transient());
    let asked = fake
        .queries()
        .iter()
        .filter(|q| *q == "broken.example MX")
        .count();
    assert_eq!(asked, 2, "attempts = 2 tries: {:?}", fake.queries());
}

#[tokio::test]
async fn silence_is_a_transient_timeout() {
    let fake = FakeDns::start().await;
    fake.fail("slow.example", DnsFailure::Timeout);
    let s = DnsSettings {
        timeout: Duration::from_millis(300),
        attempts: 1,
        ..settings(&fake, DnssecMode::Off)
    };
    let err = Resolver::new(&s)
        .unwrap()
        .mx("slow.example")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DnsError::Timeout {
            name: "slow.example".into()
        }
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn refused_is_transient() {
    let fake = FakeDns::start().await;
    fake.fail("refused.example", DnsFailure::Refused);
    let err = resolver(&fake).txt("refused.example").await.unwrap_err();
    assert!(matches!(err, DnsError::Other { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn addresses_ipv4_and_ipv6() {
    let fake = FakeDns::start().await;
    fake.add_aaaa(
        "mx.example.com",
        "2001:db8::25".parse::<std::net::Ipv6Addr>().unwrap(),
    )
    .add_a("mx.example.com", [192, 0, 2, 25])
    .add_a("mx.example.com", [192, 0, 2, 26]);
    let a = resolver(&fake).addresses("mx.example.com").await.unwrap();
    assert_eq!(a.host, "mx.example.com");
    assert_eq!(
        a.addrs,
        [ip("192.0.2.25"), ip("192.0.2.26"), ip("2001:db8::25")]
    );
    assert!(!a.authenticated);
}

#[tokio::test]
async fn one_address_family_failing_is_fine() {
    let fake = FakeDns::start().await;
    fake.add_a("v4only.example", [192, 0, 2, 4])
        .fail_type("v4only.example", "AAAA", DnsFailure::ServFail)
        .add_aaaa("v6only.example", [0x2001, 0xdb8, 0, 0, 0, 0, 0, 6]);
    let r = resolver(&fake);
    assert_eq!(
        r.addresses("v4only.example").await.unwrap().addrs,
        [ip("192.0.2.4")]
    );
    assert_eq!(
        r.addresses("v6only.example").await.unwrap().addrs,
        [ip("2001:db8::6")]
    );
}

#[tokio::test]
async fn address_failures() {
    let fake = FakeDns::start().await;
    fake.add_mx("mailonly.example", 10, "mx.elsewhere.example")
        .fail("down.example", DnsFailure::ServFail);
    let r = resolver(&fake);
    assert_eq!(
        r.addresses("mailonly.example").await.unwrap_err(),
        DnsError::NoRecords {
            name: "mailonly.example".into(),
            rtype: "A/AAAA"
        }
    );
    assert_eq!(
        r.addresses("nothing.example").await.unwrap_err(),
        DnsError::NxDomain {
            name: "nothing.example".into()
        }
    );
    let down = r.addresses("down.example").await.unwrap_err();
    assert!(matches!(down, DnsError::ServFail { .. }), "{down:?}");
    assert!(matches!(
        r.addresses("bad..name").await.unwrap_err(),
        DnsError::InvalidName { .. }
    ));
}

#[tokio::test]
async fn address_literals_and_cnames() {
    let fake = FakeDns::start().await;
    fake.add_cname("alias.example", "real.example")
        .add_a("real.example", [192, 0, 2, 9]);
    let r = resolver(&fake);
    assert_eq!(
        r.addresses("alias.example").await.unwrap().addrs,
        [ip("192.0.2.9")]
    );
    assert_eq!(
        r.addresses("[192.0.2.77]").await.unwrap().addrs,
        [ip("192.0.2.77")]
    );
    assert_eq!(
        r.addresses("[IPv6:2001:db8::77]").await.unwrap().addrs,
        [ip("2001:db8::77")]
    );
    assert!(fake.queries().iter().all(|q| !q.contains("77")));
}

#[test]
fn resolver_is_built_outside_a_runtime() {
    // Delivery builds it at startup; lookups later run on the runtime.
    let s = DnsSettings {
        nameservers: vec!["127.0.0.1:53".parse().unwrap()],
        ..DnsSettings::default()
    };
    let r = Resolver::new(&s).unwrap();
    assert_eq!(r.nameservers(), ["127.0.0.1:53".parse().unwrap()]);
    assert!(
        r.can_authenticate(),
        "configured servers are trusted for AD"
    );
}

#[tokio::test]
async fn txt_joins_character_strings_per_record() {
    let fake = FakeDns::start().await;
    fake.add_txt_strings("example.com", &["v=spf1 ip4:192.0.2.0/24 ", "-all"])
        .add_txt("_mta-sts.example.com", "v=STSv1; id=20240101;");
    let r = resolver(&fake);
    let txt = r.txt("example.com").await.unwrap();
    assert_eq!(txt.records, ["v=spf1 ip4:192.0.2.0/24 -all"]);
    let sts = r.txt("_mta-sts.example.com").await.unwrap();
    assert_eq!(sts.records, ["v=STSv1; id=20240101;"]);
    // A long value is stored as 255-byte strings and comes back whole.
    let long = "k".repeat(600);
    fake.add_txt("sel._domainkey.example.com", &long);
    assert_eq!(
        r.txt("sel._domainkey.example.com").await.unwrap().records,
        [long]
    );
    assert!(matches!(
        r.txt("mx.example.com").await.unwrap_err(),
        DnsError::NxDomain { .. }
    ));
}

#[tokio::test]
async fn tlsa_records_parse() {
    let fake = FakeDns::start().await;
    let digest: Vec<u8> = (0u8..32).collect();
    fake.add_tlsa(25, "mx.example.com", 3, 1, 1, &digest)
        .add_tlsa(25, "mx.example.com", 2, 0, 2, &[0xab; 64])
        .add_a("mx.example.com", [192, 0, 2, 1])
        .add_a("nodane.example.com", [192, 0, 2, 2]);
    let r = resolver(&fake);
    let t = r.tlsa(25, "MX.example.com.").await.unwrap();
    assert_eq!(t.name, "_25._tcp.mx.example.com");
    assert_eq!(t.records.len(), 2);
    let ee = t.records.iter().find(|r| r.usage == 3).unwrap();
    assert_eq!((ee.selector, ee.matching), (1, 1));
    assert_eq!(ee.data, digest);
    let ta = t.records.iter().find(|r| r.usage == 2).unwrap();
    assert_eq!((ta.selector, ta.matching, ta.data.len()), (0, 2, 64));
    assert!(!t.authenticated);
    assert_eq!(
        r.tlsa(25, "nodane.example.com").await.unwrap_err(),
        DnsError::NxDomain {
            name: "_25._tcp.nodane.example.com".into()
        }
    );
    // Another port: its TLSA name does not exist.
    assert!(matches!(
        r.tlsa(465, "mx.example.com").await.unwrap_err(),
        DnsError::NxDomain { .. }
    ));
}

#[tokio::test]
async fn ad_bit_is_honoured_only_under_trust_ad_bit() {
    let fake = FakeDns::start().await;
    fake.add_mx("signed.example", 10, "mx.signed.example")
        .add_a("mx.signed.example", [192, 0, 2, 10])
        .add_tlsa(25, "mx.signed.example", 3, 1, 1, &[1; 32])
        .add_mx("plain.example", 10, "mx.plain.example")
        .set_authentic("signed.example", true);

    let trusting = Resolver::new(&settings(&fake, DnssecMode::TrustAdBit)).unwrap();
    assert!(trusting.can_authenticate());
    assert!(trusting.mx("signed.example").await.unwrap().authenticated);
    assert!(
        trusting
            .addresses("mx.signed.example")
            .await
            .unwrap()
            .authenticated
    );
    assert!(
        trusting
            .tlsa(25, "mx.signed.example")
            .await
            .unwrap()
            .authenticated
    );
    assert!(!trusting.mx("plain.example").await.unwrap().authenticated);

    // The fake sets AD only when the query asked (RFC 6840 §5.7), like unbound:
    // under Off we neither ask nor believe.
    let off = Resolver::new(&settings(&fake, DnssecMode::Off)).unwrap();
    assert!(!off.can_authenticate());
    assert!(!off.mx("signed.example").await.unwrap().authenticated);
    assert!(
        !off.tlsa(25, "mx.signed.example")
            .await
            .unwrap()
            .authenticated
    );
}

#[tokio::test]
async fn validate_mode_does_not_believe_the_ad_bit() {
    // The fake zone is not signed: in-process validation must not call it
    // authenticated, whatever the AD bit says. (hickory 0.26 in fact calls it
    // bogus: the root DNSKEY for its built-in trust anchor is missing.)
    let fake = FakeDns::start().await;
    fake.add_mx("signed.example", 10, "mx.signed.example")
        .set_authentic("", true);
    let s = DnsSettings {
        attempts: 1,
        ..settings(&fake, DnssecMode::Validate)
    };
    let r = Resolver::new(&s).unwrap();
    match r.mx("signed.example").await {
        Ok(mx) => assert!(!mx.authenticated, "{mx:?}"),
        Err(e) => {
            assert!(
                matches!(e, DnsError::Bogus { .. } | DnsError::ServFail { .. }),
                "{e:?}"
            );
            assert!(e.is_transient(), "a validation failure defers mail");
        }
    }
}

#[tokio::test]
async fn static_overrides_win_over_dns() {
    let fake = FakeDns::start().await;
    fake.add_mx("partner.example", 10, "mx.partner.example")
        .add_a("mx.partner.example", [198, 51, 100, 1])
        .add_mx("other.example", 10, "mx.other.example")
        .set_authentic("", true);
    let s = DnsSettings {
        overrides: vec![
            StaticEntry {
                name: "mx.partner.example".into(),
                a: vec![ip("10.0.0.25"), ip("fd00::25")],
                mx: vec![],
            },
            StaticEntry {
                name: "Other.Example.".into(),
                a: vec![],
                mx: vec![(20, "relay.internal".into()), (10, "gw.internal.".into())],
            },
            StaticEntry {
                name: "nomail.example".into(),
                a: vec![],
                mx: vec![(0, ".".into())],
            },
        ],
        ..settings(&fake, DnssecMode::TrustAdBit)
    };
    let r = Resolver::new(&s).unwrap();

    let a = r.addresses("MX.partner.example").await.unwrap();
    assert_eq!(a.addrs, [ip("10.0.0.25"), ip("fd00::25")]);
    assert!(!a.authenticated, "overrides are never authenticated");

    let mx = r.mx("other.example").await.unwrap();
    let names: Vec<&str> = mx.hosts.iter().map(|h| h.exchange.as_str()).collect();
    assert_eq!(names, ["gw.internal", "relay.internal"]);
    assert!(!mx.authenticated);

    assert_eq!(r.mx("nomail.example").await.unwrap().kind, MxKind::NullMx);

    // Only the type overridden: partner.example's MX still comes from DNS.
    let partner = r.mx("partner.example").await.unwrap();
    assert_eq!(partner.hosts[0].exchange, "mx.partner.example");
    assert!(partner.authenticated);

    // Reverse lookups of overridden addresses answer the override's name.
    assert_eq!(
        r.ptr(ip("10.0.0.25")).await.unwrap(),
        ["mx.partner.example"]
    );

    let asked = fake.queries();
    assert!(
        !asked
            .iter()
            .any(|q| q.starts_with("mx.partner.example") || q.starts_with("other.example")),
        "overridden names must not reach DNS: {asked:?}"
    );
}

#[tokio::test]
async fn ptr_v4_and_v6() {
    let fake = FakeDns::start().await;
    fake.add_ptr(ip("192.0.2.25"), "mail.example.com")
        .add_ptr(ip("2001:db8::25"), "Mail6.Example.com.");
    let r = resolver(&fake);
    assert_eq!(r.ptr(ip("192.0.2.25")).await.unwrap(), ["mail.example.com"]);
    assert_eq!(
        r.ptr(ip("2001:db8::25")).await.unwrap(),
        ["mail6.example.com"]
    );
    assert_eq!(
        r.ptr(ip("192.0.2.26")).await.unwrap_err(),
        DnsError::NxDomain {
            name: "26.2.0.192.in-addr.arpa".into()
        }
    );
}

#[tokio::test]
async fn records_added_after_start_are_seen() {
    let fake = FakeDns::start().await;
    let r = resolver(&fake);
    assert!(r.mx("late.example").await.is_err());
    fake.add_mx("late.example", 10, "mx.late.example");
    assert_eq!(r.mx("late.example").await.unwrap().kind, MxKind::Mx);
}

#[tokio::test]
async fn tcp_works_too() {
    // The fake serves TCP on the same port as UDP (hickory retries over TCP
    // on a truncated answer, RFC 7766). Ask over TCP by hand.
    let fake = FakeDns::start().await;
    fake.add_a("tcp.example", [192, 0, 2, 53]);
    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    // Query id 0x1234, RD, one question: tcp.example A IN.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["tcp", "example"] {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let len = u16::try_from(q.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut resp = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut resp).await.unwrap();
    assert_eq!(&resp[..2], &[0x12, 0x34]);
    assert_eq!(resp[3] & 0x0f, 0, "rcode NOERROR");
    assert_eq!(u16::from_be_bytes([resp[6], resp[7]]), 1, "one answer");
    assert!(resp.ends_with(&[192, 0, 2, 53]));
}

#[test]
fn resolver_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Resolver>();
}

/// DNS lists (RFC 5782): the reversed address under the zone (nibbles for
/// IPv6); NXDOMAIN is "not listed", SERVFAIL an error; a positive answer is
/// cached for its TTL (the resolver's cache: a second session from a listed
/// address costs no query), a TTL of 0 is not.
#[tokio::test]
async fn dns_list_queries_answers_and_cache() {
    let fake = FakeDns::start().await;
    let r = resolver(&fake);
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    fake.add_a(
        "7.2.0.192.bl.test",
        "127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let nibbles = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test";
    fake.add_a(nibbles, "127.0.0.4".parse::<std::net::Ipv4Addr>().unwrap());
    assert_eq!(
        r.dns_list(v4, "bl.test").await.unwrap(),
        ["127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        r.dns_list(v6, "bl.test.").await.unwrap(),
        ["127.0.0.4".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let other: IpAddr = "192.0.2.8".parse().unwrap();
    assert!(r.dns_list(other, "bl.test").await.unwrap().is_empty());
    fake.fail("9.2.0.192.bl.test", DnsFailure::ServFail);
    assert!(
        r.dns_list("192.0.2.9".parse().unwrap(), "bl.test")
            .await
            .is_err()
    );

    let asked = |fake: &FakeDns, name: &str| {
        fake.queries()
            .iter()
            .filter(|q| q.starts_with(name))
            .count()
    };
    // TTL 0 (the default): every lookup asks.
    r.dns_list(v4, "bl.test").await.unwrap();
    assert_eq!(asked(&fake, "7.2.0.192.bl.test"), 2);
    // TTL 300: the answer is cached.
    fake.set_ttl(300);
    fake.add_a(
        "10.2.0.192.bl.test",
        "127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
    );
    let ten: IpAddr = "192.0.2.10".parse().unwrap();
    for _ in 0..3 {
        assert_eq!(r.dns_list(ten, "bl.test").await.unwrap().len(), 1);
    }
    assert_eq!(asked(&fake, "10.2.0.192.bl.test"), 1);
}

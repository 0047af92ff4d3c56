//! Hostile input never panics and never breaks the header field: property
//! tests over arbitrary bytes and strings for the parts that read the
//! network (DMARC records, public-suffix lines, Authentication-Results
//! removal, whole messages through the verifier) and for the field we write.

#![allow(clippy::unwrap_used)]

use postern_auth::verify::dmarc::parse_record;
use postern_auth::verify::{
    ArcResult, ArcVerdict, AuthResults, DkimResult, DkimVerdict, DmarcPolicy, DmarcResult,
    DmarcVerdict, PublicSuffixList, SpfResult, SpfVerdict, SpfVerdicts, Verifier, VerifierSettings,
    VerifyInput, remove_claimed_results,
};
use proptest::prelude::*;

fn results(s: &[String]) -> AuthResults {
    let spf = SpfVerdict {
        result: SpfResult::Fail,
        domain: s[0].clone(),
        identity: s[1].clone(),
        reason: s[2].clone(),
    };
    AuthResults {
        spf: SpfVerdicts {
            helo: SpfVerdict::none(&s[3], ""),
            mail_from: spf,
        },
        dkim: vec![DkimVerdict {
            result: DkimResult::Fail,
            domain: s[4].clone(),
            selector: s[5].clone(),
            algorithm: "rsa-sha256".into(),
            header_b: s[6].clone(),
            reason: s[7].clone(),
        }],
        arc: ArcVerdict {
            result: ArcResult::Fail,
            instances: 1,
            sealers: vec![],
            reason: s[8].clone(),
        },
        dmarc: DmarcVerdict {
            result: DmarcResult::Fail,
            from_domain: s[9].clone(),
            org_domain: s[9].clone(),
            policy: DmarcPolicy::Reject,
            pct: 100,
            sampled: true,
            spf_aligned: false,
            dkim_aligned: false,
            rua: vec![],
            reason: s[10].clone(),
            published: None,
        },
    }
}

proptest! {
    #[test]
    fn the_field_is_one_header_field_whatever_the_values(s in proptest::collection::vec(any::<String>(), 11)) {
        let v = results(&s).header_value("mx.example.net");
        // Line breaks only as folds (CRLF + space), nothing else breaks a line.
        let bare = v.replace("\r\n ", "");
        prop_assert!(!bare.contains('\r') && !bare.contains('\n'), "{v:?}");
        for line in v.split("\r\n").skip(1) {
            prop_assert!(line.starts_with(' '), "{v:?}");
        }
    }

    #[test]
    fn dmarc_records_never_panic(text in any::<String>()) {
        let _ = parse_record(&text);
        let _ = parse_record(&format!("v=DMARC1; {text}"));
    }

    #[test]
    fn public_suffix_lines_and_lookups_never_panic(text in any::<String>(), domain in any::<String>()) {
        let _ = PublicSuffixList::parse(&text);
        let psl = PublicSuffixList::parse("com\nco.uk\n*.ck\n!www.ck\n").unwrap();
        let org = psl.organizational_domain(&domain);
        let _ = psl.public_suffix(&domain);
        prop_assert!(org.len() <= domain.len().max(1) * 4 + 8);
    }

    #[test]
    fn removing_claimed_results_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (out, n) = remove_claimed_results(&raw, "mx.example.net");
        prop_assert!(out.len() <= raw.len());
        if n == 0 {
            prop_assert_eq!(out, raw);
        }
    }
}

/// Arbitrary messages through the whole verifier (DNS answers NXDOMAIN).
#[tokio::test]
async fn arbitrary_messages_through_the_verifier() {
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    let dns = postern_testkit::FakeDns::start().await;
    let v = Verifier::new(&VerifierSettings {
        nameservers: dns.nameservers(),
        ..VerifierSettings::default()
    })
    .unwrap();
    let mut runner = TestRunner::deterministic();
    let header = proptest::string::string_regex(
        "((DKIM-Signature|ARC-Seal|ARC-Message-Signature|ARC-Authentication-Results|From|Received): [ -~\t]{0,80}\r\n( [ -~]{0,40}\r\n)?){0,6}\r\n[ -~\r\n\t]{0,80}",
    )
    .unwrap();
    for _ in 0..200 {
        let message = header.new_tree(&mut runner).unwrap().current();
        let r = v
            .verify(&VerifyInput {
                message: message.as_bytes(),
                ip: "192.0.2.1".parse().unwrap(),
                helo: "h.example",
                mail_from: "a@b.example",
                our_hostname: "mx",
                spf: None,
            })
            .await;
        let _ = r.header_value("mx");
    }
}

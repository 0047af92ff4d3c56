//! `AuthResults::header_value` (RFC 8601): golden strings in the style of
//! the `authres` examples, folding at 78 columns, quoting of hostile values,
//! and a round trip through `mail-auth`'s message parser (the field is
//! syntactically a header field whose value comes back unchanged).

#![allow(clippy::unwrap_used)]

use mail_auth::AuthenticatedMessage;
use postern_auth::verify::{
    ArcResult, ArcVerdict, AuthResults, DkimResult, DkimVerdict, DmarcPolicy, DmarcResult,
    DmarcVerdict, SpfResult, SpfVerdict, SpfVerdicts,
};

fn spf(result: SpfResult, domain: &str, identity: &str, reason: &str) -> SpfVerdict {
    SpfVerdict {
        result,
        domain: domain.into(),
        identity: identity.into(),
        reason: reason.into(),
    }
}

fn dkim(result: DkimResult, d: &str, s: &str, b: &str, reason: &str) -> DkimVerdict {
    DkimVerdict {
        result,
        domain: d.into(),
        selector: s.into(),
        algorithm: "rsa-sha256".into(),
        header_b: b.into(),
        reason: reason.into(),
    }
}

fn dmarc(result: DmarcResult, from: &str, reason: &str) -> DmarcVerdict {
    DmarcVerdict {
        result,
        from_domain: from.into(),
        org_domain: from.into(),
        policy: DmarcPolicy::Reject,
        pct: 100,
        sampled: true,
        spf_aligned: result == DmarcResult::Pass,
        dkim_aligned: result == DmarcResult::Pass,
        rua: vec![],
        reason: reason.into(),
        published: None,
    }
}

fn arc_none() -> ArcVerdict {
    ArcVerdict {
        result: ArcResult::None,
        instances: 0,
        sealers: vec![],
        reason: String::new(),
    }
}

fn unfold(s: &str) -> String {
    s.replace("\r\n", "")
}

fn assert_folded(value: &str) {
    for (i, line) in format!("Authentication-Results: {value}")
        .split("\r\n")
        .enumerate()
    {
        assert!(
            line.len() <= 78,
            "line {i} is {} long: {line:?}",
            line.len()
        );
        if i > 0 {
            assert!(line.starts_with(' '), "continuation line {i}: {line:?}");
        }
    }
    assert!(!value.ends_with("\r\n"));
}

#[test]
fn all_pass() {
    let r = AuthResults {
        spf: SpfVerdicts {
            helo: spf(
                SpfResult::Pass,
                "mail.b.example",
                "postmaster@mail.b.example",
                "",
            ),
            mail_from: spf(SpfResult::Pass, "b.example", "a@b.example", ""),
        },
        dkim: vec![dkim(DkimResult::Pass, "b.example", "s1", "AbCdEfGh", "")],
        arc: arc_none(),
        dmarc: dmarc(DmarcResult::Pass, "b.example", ""),
    };
    let v = r.header_value("mx.example.net");
    assert_eq!(
        unfold(&v),
        "mx.example.net; spf=pass smtp.mailfrom=a@b.example; dkim=pass header.d=b.example header.s=s1 header.b=AbCdEfGh; arc=none; dmarc=pass header.from=b.example"
    );
    assert_eq!(
        v,
        "mx.example.net; spf=pass smtp.mailfrom=a@b.example;\r\n dkim=pass header.d=b.example header.s=s1 header.b=AbCdEfGh; arc=none;\r\n dmarc=pass header.from=b.example"
    );
    assert_folded(&v);
}

#[test]
fn failures_with_reasons_null_sender_and_unsigned() {
    let helo = spf(
        SpfResult::SoftFail,
        "client.example",
        "postmaster@client.example",
        "192.0.2.1 is probably not permitted by client.example (~)",
    );
    let r = AuthResults {
        spf: SpfVerdicts {
            helo: helo.clone(),
            mail_from: helo,
        },
        dkim: vec![],
        arc: ArcVerdict {
            result: ArcResult::Fail,
            instances: 2,
            sealers: vec!["a.example".into(), "b.example".into()],
            reason: "signature did not verify".into(),
        },
        dmarc: dmarc(
            DmarcResult::Fail,
            "c.example",
            "no aligned pass for c.example",
        ),
    };
    let v = r.header_value("mx.example.net");
    assert_eq!(
        unfold(&v),
        "mx.example.net; spf=softfail reason=\"192.0.2.1 is probably not permitted by client.example (~)\" smtp.helo=client.example; dkim=none; arc=fail reason=\"signature did not verify\"; dmarc=fail reason=\"no aligned pass for c.example\" header.from=c.example"
    );
    assert_folded(&v);
}

#[test]
fn hostile_values_are_quoted_and_cannot_break_the_field() {
    let r = AuthResults {
        spf: SpfVerdicts {
            helo: spf(SpfResult::None, "h.example", "postmaster@h.example", ""),
            mail_from: spf(
                SpfResult::Fail,
                "evil.example",
                "\"x;\r\nX-Injected: 1\"@evil.example",
                "exp: \"quoted\" \\ and\r\nX-Injected: 2",
            ),
        },
        dkim: vec![dkim(
            DkimResult::PermError,
            "d.example",
            "s;1",
            "a/b+c=",
            "signature not usable: malformed",
        )],
        arc: arc_none(),
        dmarc: dmarc(DmarcResult::None, "", "no RFC5322.From domain to evaluate"),
    };
    let v = r.header_value("mx.example.net");
    assert!(!unfold(&v).contains('\n') && !unfold(&v).contains('\r'));
    assert!(!unfold(&v).contains("\r\nX-Injected"));
    assert!(v.contains("header.s=\"s;1\""), "{v}");
    assert!(v.contains("header.b=\"a/b+c=\""), "{v}");
    assert!(
        unfold(&v).contains("reason=\"exp: \\\"quoted\\\" \\\\ andX-Injected: 2\""),
        "{v}"
    );
    assert_folded(&v);
}

/// The field, prepended to a message, parses back as one header whose
/// value is ours (folding and all) with `mail-auth`'s parser, and the
/// message's other headers and body are intact.
#[test]
fn round_trip_through_mail_auth() {
    let r = AuthResults {
        spf: SpfVerdicts {
            helo: spf(SpfResult::Pass, "h.example", "postmaster@h.example", ""),
            mail_from: spf(SpfResult::Pass, "b.example", "a@b.example", ""),
        },
        dkim: vec![
            dkim(DkimResult::Pass, "b.example", "s1", "AbCdEfGh", ""),
            dkim(
                DkimResult::Fail,
                "c.example",
                "s2",
                "ZyXwVuTs",
                "body hash did not verify",
            ),
        ],
        arc: arc_none(),
        dmarc: dmarc(
            DmarcResult::Pass,
            "b.example",
            "aligned DKIM pass (d=b.example)",
        ),
    };
    let value = r.header_value("mx.example.net");
    let message = format!(
        "Authentication-Results: {value}\r\nFrom: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"
    );
    let parsed = AuthenticatedMessage::parse(message.as_bytes()).unwrap();
    let headers = parsed.raw_parsed_headers();
    assert_eq!(headers.len(), 3, "{headers:?}");
    assert_eq!(headers[0].0, b"Authentication-Results");
    let got = String::from_utf8_lossy(headers[0].1);
    assert_eq!(got.trim(), value.as_str());
    assert_eq!(parsed.from(), "a@b.example");
    assert_eq!(parsed.raw_body(), b"body\r\n");
    assert_folded(&value);
}

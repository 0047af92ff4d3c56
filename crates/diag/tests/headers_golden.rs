//! Golden files for `postern headers analyze`: every `testdata/headers/*.eml`
//! is analyzed and its text report compared with the `.txt` beside it.
//! `UPDATE_GOLDEN=1 cargo test -p postern-diag --test headers_golden` rewrites
//! the `.txt` files; review the diff before committing.
//!
//! The second half checks the facts each sample exists for, so a golden file
//! regenerated from a regression does not pass unnoticed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use postern_diag::headers::{Analysis, Anomaly, analyze, render_text};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/headers")
}

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    v.sort();
    v
}

fn load(name: &str) -> Analysis {
    analyze(&std::fs::read(dir().join(name)).unwrap())
}

#[test]
fn golden_text_reports() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let samples = samples();
    assert!(
        samples.len() >= 5,
        "expected the sample messages, found {samples:?}"
    );
    let mut failures = Vec::new();
    for eml in samples {
        let got = render_text(&analyze(&std::fs::read(&eml).unwrap()));
        let golden = eml.with_extension("txt");
        if update {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{}: differs\n--- want\n{want}\n--- got\n{got}",
                golden.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e} (run with UPDATE_GOLDEN=1)",
                golden.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn postern_postfix_gmail_chain_is_clean() {
    let a = load("01_postern_postfix_gmail.eml");
    assert_eq!(a.hops.len(), 4);
    let first = &a.hops[0];
    assert_eq!(first.by.as_deref(), Some("smtp.example.org"));
    assert_eq!(first.with.as_deref(), Some("ESMTPSA"));
    let tls = first.tls.as_ref().unwrap();
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(tls.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(first.id.as_deref(), Some("01JNQ5ZK3V8R4T2M6W9XBYCDEF"));
    // +0100 and -0800 stamps land on one UTC timeline, 1–2 s apart.
    let delays: Vec<i64> = a
        .hops
        .iter()
        .map(|h| h.delay.unwrap().whole_seconds())
        .collect();
    assert_eq!(delays, [2, 1, 2, 1]);
    assert_eq!(a.total_delay.unwrap().whole_seconds(), 6);
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
    let dmarc = a.auth_results.iter().find(|r| r.method == "dmarc").unwrap();
    assert_eq!(
        (dmarc.authserv_id.as_str(), dmarc.result.as_str()),
        ("mx.example.com", "pass")
    );
}

#[test]
fn office365_spam_is_explained() {
    let a = load("02_office365_spam.eml");
    assert_eq!(a.hops.len(), 4);
    assert!(a.hops[1..].iter().all(|h| {
        h.tls
            .as_ref()
            .is_some_and(|t| t.version.as_deref() == Some("TLSv1.2"))
    }));
    assert!(a.spam.iter().any(|s| {
        s.header == "X-Forefront-Antispam-Report"
            && s.verdict
                .starts_with("SCL 5 (spam); SFV SPM (spam); CAT SPOOF (spoofing)")
    }));
    assert!(
        a.spam
            .iter()
            .any(|s| s.verdict == "dest J (delivered to Junk Email)")
    );
    let dmarc = a.auth_results.iter().find(|r| r.method == "dmarc").unwrap();
    assert_eq!(dmarc.result, "fail");
    assert_eq!(dmarc.authserv_id, "");
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn spamassassin_verdict() {
    let a = load("03_spamassassin.eml");
    let status = a.spam.iter().find(|s| s.header == "X-Spam-Status").unwrap();
    assert!(
        status
            .verdict
            .starts_with("Yes, score=7.1 required=5.0 (spam); tests: BAYES_99")
    );
    // Sendmail's `(authenticated bits=0)` must not be read as TLS; its real
    // TLS comment comes after `id`.
    let sendmail = &a.hops[0];
    assert_eq!(
        sendmail.tls.as_ref().unwrap().version.as_deref(),
        Some("TLSv1.2")
    );
    assert_eq!(
        sendmail.from_rdns.as_deref(),
        Some("dsl-192-0-2-44.example.org")
    );
    // The loopback re-injection is not a plaintext network hop.
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn plaintext_hop_and_clock_skew() {
    let a = load("04_plaintext_clock_skew.eml");
    assert_eq!(
        a.anomalies,
        [
            Anomaly::ClockSkew {
                hop: 2,
                seconds: 3594
            },
            Anomaly::NoTls { hop: 2 },
            Anomaly::NegativeDelay {
                hop: 3,
                seconds: -3595
            },
        ]
    );
}

#[test]
fn malformed_received_is_reported_not_fatal() {
    let a = load("05_malformed_received.eml");
    assert_eq!(a.hops.len(), 5);
    assert_eq!(a.subject.as_deref(), Some("Rechnung für März"));
    assert!(
        matches!(
            a.anomalies.as_slice(),
            [
                Anomaly::NoTls { hop: 2 },
                Anomaly::UnparsableReceived { hop: 3, .. },
                Anomaly::MissingDate { hop: 4 },
                Anomaly::LongDelay {
                    hop: 5,
                    seconds: 2831
                },
            ]
        ),
        "{:?}",
        a.anomalies
    );
}

#[test]
fn exchange_onprem_and_gmail_transport_security() {
    let a = load("06_exchange_onprem_gmail.eml");
    // `(Google Transport Security)` and Exchange 2010's `(TLS)` count as TLS.
    assert!(a.hops[1].tls.is_some() && a.hops[2].tls.is_some());
    assert_eq!(a.hops[1].with.as_deref(), Some("SMTPS"));
    // +0530 normalised.
    assert_eq!(a.hops[2].delay.unwrap().whole_seconds(), 2);
    // Results are listed top-most first: our edge before the upstream claim.
    assert_eq!(a.auth_results[0].authserv_id, "edge01.example.net");
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

/// Every prefix of every sample (cut mid-header, mid-fold, mid-comment)
/// still analyzes and renders.
#[test]
fn truncated_messages_never_panic() {
    for eml in samples() {
        let bytes = std::fs::read(&eml).unwrap();
        for end in (0..bytes.len()).step_by(3) {
            let a = analyze(&bytes[..end]);
            let _ = render_text(&a);
        }
    }
}

//! The client against a real milter: `opendkim` (Debian `opendkim` and
//! `opendkim-tools`; CI installs them), started by the test in the
//! foreground on 127.0.0.1 with a free port, a temporary key from
//! `opendkim-genkey` and its public record served through `TestDNSData`
//! (no DNS needed).
//!
//! One round trip: a message from an internal client (127.0.0.1) comes back
//! with a `DKIM-Signature` (signing mode); the same message, signature
//! applied with [`apply`], sent again from an outside client comes back
//! with `Authentication-Results: …; dkim=pass` (verifying mode). So the
//! headers, folds and body we send are exactly what opendkim signs, and the
//! modifications we return are exactly what it verifies.
//!
//! A third test drives one live [`Session`] through two messages, as a
//! server would during one SMTP session.
//!
//! Without opendkim each test prints "skipped: opendkim not installed" and
//! passes, unless `POSTERN_REQUIRE_TOOLS` is set (CI), where it fails.

#![allow(clippy::unwrap_used)]

#[path = "support/opendkim.rs"]
mod opendkim_support;

use opendkim_support::{OpenDkim, installed};
use postern_milter::{Envelope, Modification, Session, Step, apply};

fn headers() -> Vec<(String, String)> {
    [
        ("From", " Alice <alice@example.com>"),
        ("To", " Bob <bob@example.org>"),
        ("Subject", " A folded\r\n subject line"),
        ("Date", " Sun, 06 Dec 2026 20:00:00 +0000"),
        ("Message-ID", " <milter-test-1@example.com>"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect()
}

const BODY: &[u8] = b"Hello Bob,\r\n\r\nthis message goes through opendkim.\r\n";

#[tokio::test]
async fn opendkim_signs_and_then_verifies_what_we_applied() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let spec = dkim.spec();
    let rcpts = vec!["bob@example.org".to_owned()];

    // 1. Signing: an internal client.
    let env = Envelope {
        hostname: "mx.example.org",
        daemon_name: "submission",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        client_port: 50000,
        client_name: Some("localhost"),
        helo: Some("localhost"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        queue_id: Some("SIGN1"),
        ..Envelope::default()
    };
    let signed = postern_milter::run(&spec, &env, &headers(), BODY)
        .await
        .unwrap();
    assert!(signed.verdict.is_accepted(), "{:?}", signed.verdict);
    let signature = signed
        .modifications
        .iter()
        .find_map(|m| match m {
            Modification::InsertHeader { name, value, .. }
            | Modification::AddHeader { name, value }
                if name.eq_ignore_ascii_case("DKIM-Signature") =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no DKIM-Signature in {:?}", signed.modifications));
    assert!(signature.contains("d=example.com"), "{signature}");
    assert!(signature.contains("s=test"), "{signature}");
    let applied = apply(&headers(), &rcpts, &signed.modifications);
    assert!(
        applied
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature"))
    );

    // 2. Verifying: the signed message from an outside client.
    let env = Envelope {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_name: Some("mail.example.com"),
        helo: Some("mail.example.com"),
        queue_id: Some("VERIFY1"),
        ..env
    };
    let verified = postern_milter::run(&spec, &env, &applied.headers, BODY)
        .await
        .unwrap();
    assert!(verified.verdict.is_accepted(), "{:?}", verified.verdict);
    let results = ar(&verified.modifications);
    assert!(results.contains("mx.example.org"), "{results}");
    assert!(results.contains("dkim=pass"), "{results}");

    // 3. The same message with its body changed fails verification
    // (opendkim's default On-BadSignature is to accept and record it).
    let tampered = postern_milter::run(&spec, &env, &applied.headers, &b"Hello Eve\r\n"[..])
        .await
        .unwrap();
    assert!(tampered.verdict.is_accepted(), "{:?}", tampered.verdict);
    let results = ar(&tampered.modifications);
    assert!(results.contains("dkim=fail"), "{results}");
}

/// The value of the `Authentication-Results` field the milter added.
fn ar(mods: &[Modification]) -> String {
    mods.iter()
        .find_map(|m| match m {
            Modification::InsertHeader { name, value, .. }
            | Modification::AddHeader { name, value }
                if name.eq_ignore_ascii_case("Authentication-Results") =>
            {
                Some(value.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Authentication-Results in {mods:?}"))
}

#[tokio::test]
async fn opendkim_unsigned_mail_gets_dkim_none() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some("192.0.2.8".parse().unwrap()),
        helo: Some("mail.example.net"),
        mail_from: "carol@example.net",
        rcpts: &rcpts,
        queue_id: Some("NONE1"),
        ..Envelope::default()
    };
    let mut hdrs = headers();
    hdrs[0].1 = " Carol <carol@example.net>".to_owned();
    let result = postern_milter::run(&dkim.spec(), &env, &hdrs, BODY)
        .await
        .unwrap();
    assert!(result.verdict.is_accepted());
    let results = ar(&result.modifications);
    assert!(results.contains("dkim=none"), "{results}");
    assert!(
        !result.modifications.iter().any(|m| matches!(m,
            Modification::InsertHeader { name, .. } | Modification::AddHeader { name, .. }
                if name.eq_ignore_ascii_case("DKIM-Signature"))),
        "signed mail of a foreign domain"
    );
}

#[tokio::test]
async fn opendkim_signs_two_messages_in_one_live_session() {
    if !installed() {
        return;
    }
    let dkim = OpenDkim::start().await;
    let spec = dkim.spec();
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some("127.0.0.1".parse().unwrap()),
        helo: Some("localhost"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        ..Envelope::default()
    };
    let stream = postern_milter::open(&spec).await.unwrap();
    let mut s = Session::negotiate(&spec, stream).await.unwrap();
    assert_eq!(s.connect(&env).await.unwrap(), Step::Continue);
    assert_eq!(s.helo(&env).await.unwrap(), Step::Continue);
    for queue_id in ["LIVE1", "LIVE2"] {
        let env = Envelope {
            queue_id: Some(queue_id),
            ..env.clone()
        };
        assert_eq!(s.mail(&env).await.unwrap(), Step::Continue);
        assert_eq!(s.rcpt(&env, &rcpts[0], &[]).await.unwrap(), Step::Continue);
        assert_eq!(s.data(&env).await.unwrap(), Step::Continue);
        for (name, value) in headers() {
            assert_eq!(s.header(&name, &value).await.unwrap(), Step::Continue);
        }
        assert_eq!(s.end_of_headers(&env).await.unwrap(), Step::Continue);
        // opendkim may answer the body with SKIP (it has what it needs).
        let step = s.body(BODY).await.unwrap();
        assert!(matches!(step, Step::Continue | Step::SkipBody), "{step:?}");
        let result = s.end_of_message(&env).await.unwrap();
        assert!(
            result.verdict.is_accepted(),
            "{queue_id}: {:?}",
            result.verdict
        );
        assert!(
            result.modifications.iter().any(|m| matches!(m,
                Modification::InsertHeader { name, .. } | Modification::AddHeader { name, .. }
                    if name == "DKIM-Signature")),
            "{queue_id}: {:?}",
            result.modifications
        );
    }
    s.quit().await;
}

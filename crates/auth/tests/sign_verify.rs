//! Our DKIM signatures verified by `mail-auth`'s verifier against a real
//! DNS server on 127.0.0.1 (testkit `FakeDns`) serving the record
//! `postern_auth::keys` renders; plus the regression test for `mail-auth`
//! 0.13.3's relaxed-body bug (whitespace-only trailing lines).

#![allow(clippy::unwrap_used, clippy::similar_names)]

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use postern_auth::canon::{relaxed_body, split_message};
use postern_auth::keys::{Algorithm, DkimKeyFile, generate};
use postern_auth::sign::{SignOptions, Signer};
use postern_testkit::FakeDns;

const DOMAIN: &str = "example.com";
const SELECTOR: &str = "s2026";

fn authenticator(dns: &FakeDns) -> MessageAuthenticator {
    let mut config = ResolverConfig::default();
    let addr = dns.addr();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    config.name_servers.push(ns);
    MessageAuthenticator::new(config, ResolverOpts::default()).unwrap()
}

fn publish(dns: &FakeDns, key: &DkimKeyFile) {
    let text = key.record_text();
    let strings: Vec<&str> = text
        .as_bytes()
        .chunks(255)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    dns.add_txt_strings(&format!("{SELECTOR}._domainkey.{DOMAIN}"), &strings);
}

const HEADERS: &str = "From: Alice <alice@example.com>\r\n\
To: bob@example.net\r\n\
Subject: A subject long enough to be folded over several lines,\r\n\
 \tand then folded once more   with   runs of spaces\r\n\
Date: Sun, 06 Dec 2026 16:00:00 +0000\r\n\
Message-ID: <1@example.com>\r\n\
\r\n";

/// Bodies a relaxed verifier must hash alike however the whitespace goes,
/// except the ones with no such trouble (kept for the simple cases).
const BODIES: &[&[u8]] = &[
    b"Hello Bob.\r\n",
    b"Hello Bob.\r\n\r\n\r\n",
    b"Trailing whitespace lines\r\n \r\n\t\r\n",
    b"Inner  \t runs   and trailing \t \r\n\r\nsecond paragraph\r\n",
    b"8-bit: \xc3\xa9t\xc3\xa9 \xe2\x82\xac\r\n",
    b"",
];

async fn verify(auth: &MessageAuthenticator, signed: &[u8]) -> DkimResult {
    let msg = AuthenticatedMessage::parse(signed).expect("parses");
    let out = auth.verify_dkim(&msg).await;
    assert_eq!(out.len(), 1, "one signature");
    out[0].result().clone()
}

#[tokio::test]
async fn our_signatures_verify_with_mail_auth() {
    for algorithm in [Algorithm::Ed25519, Algorithm::Rsa] {
        let dns = FakeDns::start().await;
        let auth = authenticator(&dns);
        let (key, _) = generate(algorithm).unwrap();
        publish(&dns, &key);
        for (relaxed_h, relaxed_b) in [(true, true), (false, false), (true, false), (false, true)] {
            let options = SignOptions {
                header_relaxed: relaxed_h,
                body_relaxed: relaxed_b,
                ..SignOptions::default()
            };
            let signer = Signer::new(&key, DOMAIN, SELECTOR, &options).unwrap();
            for body in BODIES {
                let mut message = HEADERS.as_bytes().to_vec();
                message.extend_from_slice(body);
                let signed = signer.sign(&message).unwrap();
                let head = String::from_utf8_lossy(&signed[..200]).into_owned();
                let mut result = verify(&auth, &signed).await;
                if relaxed_b && body.ends_with(b" \r\n\t\r\n") {
                    // mail-auth 0.13.3's verifier has the same relaxed-body
                    // bug: it fails this correct signature (dkimpy passes it,
                    // scripts/interop-dkim.sh). The verification workaround
                    // for the next slice: hand it the canonical body.
                    assert_ne!(
                        result,
                        DkimResult::Pass,
                        "mail-auth fixed? drop the workaround"
                    );
                    let (h, b) = split_message(&signed);
                    let mut canonical = h.to_vec();
                    canonical.extend_from_slice(&relaxed_body(b));
                    result = verify(&auth, &canonical).await;
                }
                assert_eq!(
                    result,
                    DkimResult::Pass,
                    "{algorithm:?} h={relaxed_h} b={relaxed_b} body {:?}\n{head}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
}

#[tokio::test]
async fn from_is_oversigned_and_a_second_from_breaks_the_signature() {
    let dns = FakeDns::start().await;
    let auth = authenticator(&dns);
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    publish(&dns, &key);
    let signer = Signer::new(&key, DOMAIN, SELECTOR, &SignOptions::default()).unwrap();
    let mut message = HEADERS.as_bytes().to_vec();
    message.extend_from_slice(b"body\r\n");
    let signed = signer.sign(&message).unwrap();
    let text = String::from_utf8_lossy(&signed)
        .replace("\r\n\t", "")
        .replace("\r\n ", "");
    let h = text
        .split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix("h="))
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(h.split(':').filter(|n| *n == "from").count(), 2, "h={h}");
    assert_eq!(verify(&auth, &signed).await, DkimResult::Pass);

    // A From added on top after signing: the oversigned slot now covers it.
    let mut forged = b"From: mallory@example.org\r\n".to_vec();
    let sig_end = signed.len() - message.len();
    forged.splice(0..0, signed[..sig_end].iter().copied());
    forged.extend_from_slice(&message);
    assert_ne!(verify(&auth, &forged).await, DkimResult::Pass);
}

/// mail-auth 0.13.3 relaxed-body bug (upstream #62): `hello\r\n \r\n\t\r\n`
/// must hash like `hello\r\n`. Fails without `canon::relaxed_body` in the
/// signer: bh= is then the hash of the un-stripped lines.
#[test]
fn relaxed_body_hash_ignores_whitespace_only_trailing_lines() {
    // base64(sha256("hello\r\n")), computed independently (Python hashlib).
    const HELLO_BH: &str = "zS7KNTV0HyeorkDDGwxB1AV6enuRKzO5rthkhdHIRnY=";
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    let signer = Signer::new(&key, DOMAIN, SELECTOR, &SignOptions::default()).unwrap();
    for body in [
        &b"hello\r\n"[..],
        b"hello\r\n\r\n\r\n",
        b"hello\r\n \r\n\t\r\n",
        b"hello  \r\n\t \r\n \r\n\r\n",
    ] {
        let mut message = b"From: a@example.com\r\n\r\n".to_vec();
        message.extend_from_slice(body);
        let header = signer.signature_header(&message).unwrap();
        let unfolded = header.replace("\r\n\t", "").replace("\r\n ", "");
        let bh = unfolded
            .split(';')
            .map(str::trim)
            .find_map(|t| t.strip_prefix("bh="))
            .unwrap()
            .replace(' ', "");
        assert_eq!(bh, HELLO_BH, "body {:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn a_message_without_from_is_refused() {
    let (key, _) = generate(Algorithm::Ed25519).unwrap();
    let signer = Signer::new(&key, DOMAIN, SELECTOR, &SignOptions::default()).unwrap();
    let e = signer
        .signature_header(b"Subject: x\r\n\r\nbody\r\n")
        .unwrap_err();
    assert!(e.to_string().contains("no From header"), "{e}");
}

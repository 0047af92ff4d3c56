//! Wall time per DKIM signature (Ed25519, RSA-2048; relaxed/relaxed) on a
//! 4 KiB message, single thread: `cargo run --release -p postern-auth
//! --example sign_cost [N]` (N signatures each, default 2000). The figure the
//! issue's performance target (Ed25519 ≤ 0.1 ms) is checked against.

use std::time::Instant;

use postern_auth::keys::{Algorithm, generate};
use postern_auth::sign::{SignOptions, Signer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let mut message = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n\
Subject: cost\r\nDate: Sun, 06 Dec 2026 16:00:00 +0000\r\nMessage-ID: <c@example.com>\r\n\r\n"
        .to_vec();
    while message.len() < 4096 {
        message.extend_from_slice(b"The quick brown fox jumps over the lazy dog.  \r\n");
    }
    for algorithm in [Algorithm::Ed25519, Algorithm::Rsa] {
        let (key, _) = generate(algorithm)?;
        let signer = Signer::new(&key, "example.com", "s", &SignOptions::default())?;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(signer.signature_header(std::hint::black_box(&message))?);
        }
        let per = start.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        println!("{algorithm:?}: {per:.4} ms per signature ({n} signatures, 4 KiB message)");
    }
    Ok(())
}

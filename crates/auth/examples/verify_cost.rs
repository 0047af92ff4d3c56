//! CPU per message for inbound verification with warm DNS caches:
//! SPF (HELO and MAIL FROM) + DKIM (one RSA-2048 signature, relaxed/relaxed,
//! 4 KiB message) + ARC (none) + DMARC, against FakeDns on 127.0.0.1 with
//! a one-hour TTL so every record is cached after the first message.
//! `cargo run --release -p postern-auth --example verify_cost [N]`
//! (N messages per figure, default 2000). CPU time is the thread's own
//! (`/proc/thread-self/schedstat`; a current-thread runtime, so the verifier
//! and the idle DNS server share it); the DNS queries sent during the timed
//! loop are counted to show the caches were warm (expected: 0).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use postern_auth::keys::{Algorithm, generate};
use postern_auth::sign::{SignOptions, Signer};
use postern_auth::verify::{
    DkimResult, DmarcResult, SpfResult, Verifier, VerifierSettings, VerifyInput,
};
use postern_testkit::FakeDns;

/// CPU time of this thread so far (Linux); wall time elsewhere.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| Duration::ZERO, Duration::from_nanos)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dns = FakeDns::start().await;
        dns.set_ttl(3600);
        let (key, _) = generate(Algorithm::Rsa)?;
        let record = key.record_text();
        let strings: Vec<&str> = record
            .as_bytes()
            .chunks(255)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        dns.add_txt_strings("s1._domainkey.example.com", &strings)
            .add_txt("example.com", "v=spf1 ip4:198.51.100.0/24 mx -all")
            .add_mx("example.com", 10, "mx.example.com")
            .add_a("mx.example.com", [192, 0, 2, 10])
            .add_txt("mail.example.com", "v=spf1 a -all")
            .add_a("mail.example.com", [192, 0, 2, 10])
            .add_txt("_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com");
        let verifier = Verifier::new(&VerifierSettings {
            nameservers: dns.nameservers(),
            ..VerifierSettings::default()
        })?;
        let mut message = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n\
Subject: cost\r\nDate: Sun, 06 Dec 2026 16:00:00 +0000\r\nMessage-ID: <c@example.com>\r\n\r\n"
            .to_vec();
        while message.len() < 4096 {
            message.extend_from_slice(b"The quick brown fox jumps over the lazy dog.  \r\n");
        }
        let signed = Signer::new(&key, "example.com", "s1", &SignOptions::default())?.sign(&message)?;
        let ip: IpAddr = "192.0.2.10".parse()?;
        let input = VerifyInput {
            message: &signed,
            ip,
            helo: "mail.example.com",
            mail_from: "alice@example.com",
            our_hostname: "mx.postern.test",
            spf: None,
        };
        // Warm the caches and check the verdicts once.
        let r = verifier.verify(&input).await;
        assert_eq!(r.spf.mail_from.result, SpfResult::Pass, "{:?}", r.spf);
        assert_eq!(r.dkim[0].result, DkimResult::Pass, "{:?}", r.dkim);
        assert_eq!(r.dmarc.result, DmarcResult::Pass, "{:?}", r.dmarc);
        let spf = r.spf.clone();

        let figures: [(&str, u8); 3] = [
            ("SPF (HELO + MAIL FROM)", 0),
            ("DKIM (RSA-2048) + ARC + DMARC, SPF given", 1),
            ("all: SPF + DKIM + ARC + DMARC + header", 2),
        ];
        for (name, which) in figures {
            let queries = dns.queries().len();
            let (c0, w0) = (cpu(), Instant::now());
            for _ in 0..n {
                match which {
                    0 => {
                        std::hint::black_box(
                            verifier.spf(ip, "mail.example.com", "alice@example.com", "mx").await,
                        );
                    }
                    1 => {
                        let given = VerifyInput {
                            spf: Some(spf.clone()),
                            ..input.clone()
                        };
                        std::hint::black_box(verifier.verify(&given).await);
                    }
                    _ => {
                        let r = verifier.verify(&input).await;
                        std::hint::black_box(r.header_value("mx.postern.test"));
                    }
                }
            }
            let cpu_ms = cpu().saturating_sub(c0).as_secs_f64() * 1000.0 / f64::from(n);
            let wall_ms = w0.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
            let sent = dns.queries().len() - queries;
            println!("{name}: {cpu_ms:.4} ms CPU, {wall_ms:.4} ms wall per message ({n} messages, {sent} DNS queries sent)");
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

//! Milter round-trip latency: runs N conversations, one at a time, for a
//! ~10 KiB message against a running milter and prints the median and 95th
//! percentile of the whole conversation (connect, negotiation, replay, end
//! of message, quit) and the verdict of the last one.
//!
//! ```text
//! cargo run --release -p postern-milter --example latency -- inet:127.0.0.1:8891 200 [client-ip]
//! ```
//!
//! The client IP defaults to 127.0.0.1 (an internal host for opendkim: it
//! signs); give an outside address to measure verification instead.

use std::time::{Duration, Instant};

use postern_milter::{Envelope, MilterAddr, MilterSpec};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: latency ADDRESS COUNT [CLIENT-IP]";
    let address = MilterAddr::parse(&args.next().ok_or(usage)?)?;
    let count: usize = args.next().ok_or(usage)?.parse()?;
    let client_ip = args
        .next()
        .unwrap_or_else(|| "127.0.0.1".to_owned())
        .parse()?;
    let spec = MilterSpec::new("bench", address);
    let headers: Vec<(String, String)> = [
        ("From", " Alice <alice@example.com>"),
        ("To", " bob@example.org"),
        ("Subject", " latency"),
        ("Date", " Sun, 06 Dec 2026 20:00:00 +0000"),
        ("Message-ID", " <bench@example.com>"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    let line = "Minutes of the weekly meeting: the build is green and lunch is at noon.\r\n";
    let body = line.repeat(10 * 1024 / line.len());
    let rcpts = vec!["bob@example.org".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        client_ip: Some(client_ip),
        helo: Some("client.example.com"),
        mail_from: "alice@example.com",
        rcpts: &rcpts,
        queue_id: Some("BENCH"),
        ..Envelope::default()
    };
    let mut times: Vec<Duration> = Vec::with_capacity(count);
    let mut last = None;
    for _ in 0..count {
        let start = Instant::now();
        let result = postern_milter::run(&spec, &env, &headers, body.as_bytes()).await?;
        times.push(start.elapsed());
        last = Some(result);
    }
    times.sort();
    if times.is_empty() {
        return Err(usage.into());
    }
    let pick = |q: usize| times[(times.len() - 1) * q / 100];
    println!(
        "{count} conversations, {} body bytes: median {:.2} ms, p95 {:.2} ms",
        body.len(),
        pick(50).as_secs_f64() * 1e3,
        pick(95).as_secs_f64() * 1e3
    );
    if let Some(result) = last {
        println!(
            "last verdict: {:?}, {} modifications",
            result.verdict,
            result.modifications.len()
        );
    }
    Ok(())
}

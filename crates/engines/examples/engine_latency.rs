//! The latency an rspamd check and a clamd scan add to one message: starts
//! both engines as the tests do (Debian packages, private configuration,
//! 127.0.0.1, offline: rspamd's DNS lookups are answered NXDOMAIN at once by
//! a local fake, so real DNS-list latency is not included), then times
//! `RUNS` calls of each for a 10 KiB message, one at a time, each on a fresh
//! connection as in production, and prints the median and the 95th
//! percentile; then the throughput with `CONCURRENCY` calls in flight.
//!
//! ```text
//! cargo run --release -p postern-engines --example engine_latency [RUNS]
//! ```

#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use postern_engines::{
    ClamdClient, ClamdSettings, EngineAddr, RspamdClient, RspamdSettings, ScanRequest, SpamOutcome,
    VirusVerdict,
};
use support::{Clamd, Rspamd};

const SIZE: usize = 10 * 1024;
const WARMUP: usize = 10;
const CONCURRENCY: usize = 8;

/// Median and 95th percentile of `samples` (sorted here).
fn summary(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i]
    };
    (at(0.5), at(0.95))
}

async fn time<F, Fut>(runs: usize, mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        call().await;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        call().await;
        samples.push(start.elapsed());
    }
    summary(&mut samples)
}

/// Calls per second with `CONCURRENCY` calls in flight, `runs` in all.
async fn throughput<F, Fut>(runs: usize, call: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let call = call.clone();
        let share = runs / CONCURRENCY + usize::from(worker < runs % CONCURRENCY);
        tasks.spawn(async move {
            for _ in 0..share {
                call().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = runs as f64 / start.elapsed().as_secs_f64();
    rate
}

fn print_rate(name: &str, rate: f64) {
    println!("{name:<34} {rate:>8.0} calls/s with {CONCURRENCY} in flight");
}

fn print(name: &str, (median, p95): (Duration, Duration)) {
    println!(
        "{name:<34} median {:>8.3} ms   p95 {:>8.3} ms",
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(200, |a| a.parse().expect("RUNS is a number"));
    let message = std::sync::Arc::new(support::message_of_size(SIZE));
    println!(
        "{runs} runs each (after {WARMUP} warm-up runs), {} byte message, one call at a time",
        message.len()
    );

    if let Some(engine) = Rspamd::get() {
        let rcpts = ["bob@example.org".to_owned()];
        let req = ScanRequest {
            ip: Some("192.0.2.7".parse().unwrap()),
            helo: Some("mail.example.com"),
            hostname: Some("mail.example.com"),
            from: Some("alice@example.com"),
            rcpts: &rcpts,
            queue_id: Some("LATENCY"),
            ..ScanRequest::default()
        };
        for (name, address) in [
            (
                "rspamd /checkv2 (TCP)",
                format!("127.0.0.1:{}", engine.normal).parse().unwrap(),
            ),
            (
                "rspamd /checkv2 (Unix socket)",
                EngineAddr::Unix(engine.socket.clone()),
            ),
        ] {
            let client = RspamdClient::new(RspamdSettings {
                address,
                ..RspamdSettings::default()
            });
            let figures = time(runs, || async {
                let out = client.check_bytes(&req, &message).await.unwrap();
                assert!(matches!(out, SpamOutcome::Scanned(_)));
            })
            .await;
            print(name, figures);
            let (c, m) = (client.clone(), message.clone());
            let rate = throughput(runs, move || {
                let (c, m) = (c.clone(), m.clone());
                async move {
                    let rcpts = ["bob@example.org".to_owned()];
                    let req = ScanRequest {
                        ip: Some("192.0.2.7".parse().unwrap()),
                        rcpts: &rcpts,
                        ..ScanRequest::default()
                    };
                    let out = c.check_bytes(&req, &m).await.unwrap();
                    assert!(matches!(out, SpamOutcome::Scanned(_)));
                }
            })
            .await;
            print_rate(name, rate);
        }
    }

    if let Some(engine) = Clamd::get() {
        for (name, address) in [
            (
                "clamd INSTREAM (TCP)",
                format!("127.0.0.1:{}", engine.port).parse().unwrap(),
            ),
            (
                "clamd INSTREAM (Unix socket)",
                EngineAddr::Unix(engine.socket.clone()),
            ),
        ] {
            let client = ClamdClient::new(ClamdSettings {
                address,
                ..ClamdSettings::default()
            });
            let figures = time(runs, || async {
                let verdict = client.scan_bytes(&message).await.unwrap();
                assert_eq!(verdict, VirusVerdict::Clean);
            })
            .await;
            print(name, figures);
            let (c, m) = (client.clone(), message.clone());
            let rate = throughput(runs, move || {
                let (c, m) = (c.clone(), m.clone());
                async move {
                    assert_eq!(c.scan_bytes(&m).await.unwrap(), VirusVerdict::Clean);
                }
            })
            .await;
            print_rate(name, rate);
        }
    }
}

//! Spool commit throughput on the real disk: 1, 8 and 50 threads each committing
//! 10 KiB messages (begin, write, commit = file fsync + rename + group directory
//! fsync). Prints figures; it is not a test.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/tgt-spool cargo run --release -p postern-spool --example spool_bench [DIR] [SECONDS]
//! ```
//! `DIR` must be on the file system you want to measure (default: a temporary
//! directory under the system temp dir); `SECONDS` per run (default 3).

// Figures for humans: counts stay far below 2^52, so f64 is exact enough.
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_spool::{
    Envelope, EnvelopeRecipient, FaultFs, MailParams, QueueId, Receipt, Spool, SpoolOp,
    SpoolSettings, StdFs,
};

fn envelope() -> Envelope {
    Envelope {
        queue_id: QueueId::generate(),
        received_at: String::new(),
        reverse_path: "bench@example.org".into(),
        recipients: vec![EnvelopeRecipient {
            address: "rcpt@example.net".into(),
            notify: None,
            orcpt: None,
        }],
        params: MailParams::default(),
        receipt: Receipt {
            listener: "bench".into(),
            peer: "192.0.2.1:12345".into(),
            helo: "bench.example.org".into(),
            auth_user: None,
            tls: None,
            ..Default::default()
        },
        message_size: 0,
        added_headers: String::new(),
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: None,
        subject: None,
    }
}

fn run(
    base: &std::path::Path,
    threads: usize,
    seconds: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir_in(base)?;
    // FaultFs with nothing armed: only counts operations.
    let fs = FaultFs::new(StdFs);
    let (spool, _) = Spool::open_with_fs(&SpoolSettings::new(dir.path()), Arc::new(fs.clone()))?;
    let body: Vec<u8> = (0..10 * 1024)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28])
        .collect();
    let dir_syncs_before = fs.count(SpoolOp::SyncDir);
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let spool = spool.clone();
                let body = &body;
                s.spawn(move || {
                    let mut lat = Vec::new();
                    while start.elapsed() < deadline {
                        let t0 = Instant::now();
                        let mut inc = spool.begin().expect("begin");
                        // Stream it the way a session does: a few KiB at a time.
                        for chunk in body.chunks(4096) {
                            inc.write_all(chunk).expect("write");
                        }
                        inc.commit(envelope()).expect("commit");
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let commits = latencies.len();
    let dir_syncs = fs.count(SpoolOp::SyncDir) - dir_syncs_before;
    latencies.sort();
    let pct = |permille: usize| {
        let i = (commits * permille / 1000).min(commits.saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{threads:>3} threads x 10 KiB: {:>7.0} commits/s  ({commits} in {elapsed:.1} s)  \
         latency p50 {:.2} ms, p99 {:.2} ms  dir fsyncs {dir_syncs} ({:.2} per commit)",
        commits as f64 / elapsed,
        pct(500),
        pct(990),
        dir_syncs as f64 / commits.max(1) as f64,
    );
    Ok(())
}

/// Median time to write and fsync a 4 KiB file, to put the figures in context
/// (the disk, not the spool, is usually the limit).
fn fsync_p50(base: &std::path::Path) -> Result<f64, Box<dyn std::error::Error>> {
    use std::io::Write;
    let dir = tempfile::tempdir_in(base)?;
    let mut times = Vec::new();
    for i in 0..50 {
        let mut f = std::fs::File::create(dir.path().join(i.to_string()))?;
        f.write_all(&[b'x'; 4096])?;
        let t0 = Instant::now();
        f.sync_all()?;
        times.push(t0.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2].as_secs_f64() * 1000.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let seconds: f64 = args.next().map_or(Ok(3.0), |s| s.parse())?;
    println!(
        "spool commit benchmark in {} ({seconds} s per run); fsync of a new 4 KiB file: p50 {:.2} ms",
        base.display(),
        fsync_p50(&base)?
    );
    for threads in [1, 8, 50] {
        run(&base, threads, seconds)?;
    }
    Ok(())
}

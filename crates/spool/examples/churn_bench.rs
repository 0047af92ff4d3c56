//! Spool steady state with delivery: every thread commits 10 KiB messages and
//! removes its own messages once `LAG` newer ones are queued, as a server that
//! relays everything does (accept → queue → deliver → remove). Runs alternately
//! with file reuse off (`reuse_max_files = 0`: unlink + create per message) and
//! on (the default), so that each run follows the other's deletions, and prints
//! messages/s, CPU per message and how many files were unlinked. Prints figures;
//! it is not a test.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/tgt-x cargo run --release -p postern-spool --example churn_bench [DIR] [SECONDS] [PAIRS]
//! ```
//! `DIR` must be on the file system to measure (default: the system temp dir);
//! `SECONDS` per run (default 10); `PAIRS` of off/on runs (default 2).
//!
//! Why: on ext4 without a journal, creating a file walks past every inode freed
//! in the last minute (`docs/benchmarks.md`, finding 1).

// Figures for humans: counts stay far below 2^52, so f64 is exact enough.
#![allow(clippy::cast_precision_loss)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_spool::{
    Envelope, EnvelopeRecipient, FaultFs, MailParams, QueueId, Receipt, Spool, SpoolOp,
    SpoolSettings, StdFs,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const THREADS: usize = 50;
/// Messages each thread keeps queued before it removes its oldest.
const LAG: usize = 20;

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

/// CPU time (user + system) of this process so far, from `/proc/self/stat`
/// (fields 14 and 15, USER_HZ = 100 ticks per second on Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> u64 {
        after
            .split_whitespace()
            .nth(n - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 10)
}

fn run(base: &std::path::Path, reuse: bool, seconds: f64) -> Result<(), Error> {
    let dir = tempfile::tempdir_in(base)?;
    let mut settings = SpoolSettings::new(dir.path());
    if !reuse {
        settings.reuse_max_files = 0;
    }
    let fs = FaultFs::new(StdFs);
    let (spool, _) = Spool::open_with_fs(&settings, Arc::new(fs.clone()))?;
    let body: Vec<u8> = (0..10 * 1024)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28])
        .collect();
    let deadline = Duration::from_secs_f64(seconds);
    let (start, cpu0, renames0) = (Instant::now(), cpu_time(), fs.count(SpoolOp::Rename));
    let (commits, removals) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (spool, body) = (spool.clone(), &body);
                s.spawn(move || -> Result<(usize, usize), Error> {
                    let mut queued = VecDeque::new();
                    let (mut n, mut removed) = (0, 0);
                    while start.elapsed() < deadline {
                        let mut inc = spool.begin()?;
                        for chunk in body.chunks(4096) {
                            inc.write_all(chunk)?;
                        }
                        queued.push_back(inc.commit(envelope())?.queue_id);
                        n += 1;
                        if queued.len() > LAG
                            && let Some(old) = queued.pop_front()
                        {
                            spool.remove(&old)?;
                            removed += 1;
                        }
                    }
                    Ok((n, removed))
                })
            })
            .collect();
        handles.into_iter().try_fold((0, 0), |(c, r), h| {
            let (n, removed) = h.join().map_err(|_| Error::from("thread panicked"))??;
            Ok::<_, Error>((c + n, r + removed))
        })
    })?;
    let (elapsed, cpu) = (
        start.elapsed().as_secs_f64(),
        cpu_time().saturating_sub(cpu0),
    );
    // Every commit renames once; a removal that keeps the file renames too.
    let kept = (fs.count(SpoolOp::Rename) - renames0)
        .saturating_sub(u64::try_from(commits).unwrap_or(u64::MAX));
    println!(
        "reuse {:>3}: {:>6.0} msg/s ({commits} commits, {removals} removals in {elapsed:.1} s), \
         CPU {:.3} ms/msg, files kept for reuse {:.0} %",
        if reuse { "on" } else { "off" },
        commits as f64 / elapsed,
        cpu.as_secs_f64() * 1000.0 / commits.max(1) as f64,
        kept as f64 * 100.0 / removals.max(1) as f64,
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let seconds: f64 = args.next().map_or(Ok(10.0), |s| s.parse())?;
    let pairs: usize = args.next().map_or(Ok(2), |s| s.parse())?;
    println!(
        "spool churn: {THREADS} threads, 10 KiB messages, each removed after {LAG} newer ones \
         of its thread; under {}",
        base.display()
    );
    for _ in 0..pairs {
        run(&base, false, seconds)?;
        run(&base, true, seconds)?;
    }
    Ok(())
}

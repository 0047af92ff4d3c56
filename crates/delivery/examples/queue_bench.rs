//! The whole scheduler against a large deferred queue, on the real disk.
//!
//! `sched_bench` measures the due-time heap alone; this one runs the real thing
//! (`postern_delivery::start`: recovery scan, envelopes and `state/` files,
//! routing, connection slots, outcomes, `Spool::remove`) with a transport that
//! answers at once (no sockets), for queues of N deferred messages:
//!
//! 1. builds a spool with N messages, each with one recipient deferred until
//!    1 hour to 5 days from now (a `state/<id>` file with one `deferred` record,
//!    as the scheduler writes after a first failed attempt);
//! 2. opens it (`Spool::open`: recovery reads and checks every message file) and
//!    starts the scheduler, and times until it reports all N loaded;
//! 3. commits M new messages (to 10 destinations) and times, in R rounds, how
//!    long the scheduler takes to deliver and remove them all while the N
//!    deferred ones sit in the queue: wall time and process CPU per message.
//!
//! If the scheduler scanned its queue per delivery, the per-message figures of
//! step 3 would grow with N; they should be the same for N = 0 and N = 100 000.
//! It prints figures; it is not a test.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/tgt-x cargo run --release -p postern-delivery --example queue_bench [DIR] [M] [R] [N,N,...]
//! ```
//! `DIR`: where the spools are built (default: the system temp dir; it needs
//! about 1 GiB per 100 000 messages while running); `M` new messages per round
//! (default 10 000); `R` rounds (default 3); the queue sizes N (default
//! `0,10000,100000`).

// Figures for humans: counts stay far below 2^52, so f64 is exact enough.
#![allow(clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postern_delivery::{
    DeliveryHandle, DeliverySettings, Job, JobFeed, JobOutcome, RcptResult, SystemClock, Transport,
    Verdict, start,
};
use postern_spool::{
    Durability, Envelope, EnvelopeRecipient, MailParams, QueueId, RcptStatus, Receipt, Spool,
    SpoolSettings, StateRecord, StateStore,
};
use postern_track::MailLog;

type Error = Box<dyn std::error::Error + Send + Sync>;

const BODY_LEN: usize = 2 * 1024;
const QUEUES: &str = "0,10000,100000";
const COMMIT_THREADS: usize = 16;

/// Delivers every job at once, to every recipient; never reads the body (the
/// scheduler, not the wire, is measured). Counts the recipients delivered.
#[derive(Default)]
struct Instantly {
    delivered: AtomicUsize,
}

impl Transport for Instantly {
    async fn run(self: Arc<Self>, job: Job, mut feed: JobFeed) {
        let mut job = job;
        loop {
            self.delivered.fetch_add(job.rcpts.len(), Ordering::SeqCst);
            let results = job
                .rcpts
                .iter()
                .map(|&rcpt| RcptResult {
                    rcpt,
                    verdict: Verdict::Delivered,
                    reply: Some("250 2.0.0 ok".into()),
                    cause: None,
                    mx: "mx.bench.test".into(),
                    ip: "192.0.2.1:25".into(),
                    tls: None,
                    remote_dsn: false,
                    final_delivery: false,
                })
                .collect();
            let outcome = JobOutcome {
                job: job.clone(),
                results,
            };
            match feed.complete(outcome, true).await {
                Some(next) => job = next,
                None => return,
            }
        }
    }
}

fn envelope(rcpt: String) -> Envelope {
    Envelope {
        queue_id: QueueId::generate(),
        received_at: String::new(),
        reverse_path: "bench@example.org".into(),
        recipients: vec![EnvelopeRecipient {
            address: rcpt,
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

/// Commits `n` messages from several threads (sharing directory fsyncs, as
/// concurrent sessions do); `rcpt(i)` is the recipient of the `i`th.
fn commit_many(
    spool: &Spool,
    n: usize,
    rcpt: &(dyn Fn(usize) -> String + Sync),
) -> Result<Vec<QueueId>, Error> {
    let body: Vec<u8> = (0..BODY_LEN)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\r\n"[i % 28])
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..COMMIT_THREADS)
            .map(|t| {
                let (spool, body) = (spool.clone(), &body);
                s.spawn(move || -> Result<Vec<QueueId>, Error> {
                    let mut ids = Vec::new();
                    for i in (t..n).step_by(COMMIT_THREADS) {
                        let mut inc = spool.begin()?;
                        inc.write_all(body)?;
                        ids.push(inc.commit(envelope(rcpt(i)))?.queue_id);
                    }
                    Ok(ids)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(h.join().map_err(|_| "commit thread panicked")??);
        }
        Ok(all)
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `state/<id>`: the one recipient deferred after a first attempt, due between
/// 1 hour and 5 days from now (nothing comes due while the bench runs).
fn defer_all(spool: &Spool, ids: &[QueueId]) -> Result<(), Error> {
    let states = StateStore::new(spool.dir());
    let now = now_ms();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for id in ids {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let rec = StateRecord::Rcpt {
            rcpt: 0,
            status: RcptStatus::Deferred,
            attempts: 1,
            next_attempt_ms: Some(now + 3_600_000 + x % (5 * 24 * 3_600_000)),
            reply: Some("451 4.7.1 try again later".into()),
            cause: Some("smtp.reply_transient".into()),
            mx: Some("mx.slow.test".into()),
            at_ms: now,
        };
        states.append(id, &[rec], Durability::Lazy)?;
    }
    Ok(())
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat`
/// (fields 14 and 15, in USER_HZ = 100 ticks per second on Linux: 10 ms
/// resolution, fine over rounds of seconds).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; fields after its `)` are fixed.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> u64 {
        // `after` starts with field 3.
        after
            .split_whitespace()
            .nth(n - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((field(14) + field(15)) * 10)
}

/// Waits until the transport has delivered `delivered` recipients in total and
/// the scheduler holds exactly `n` messages again (polling its snapshot).
async fn wait_for(
    h: &DeliveryHandle,
    t: &Instantly,
    delivered: usize,
    n: usize,
) -> Result<(), Error> {
    loop {
        if t.delivered.load(Ordering::SeqCst) >= delivered {
            let snap = h.snapshot().await.ok_or("scheduler stopped")?;
            if snap.messages == n {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn settings(dir: &std::path::Path) -> DeliverySettings {
    let mut s = DeliverySettings::new(dir);
    s.hostname = "bench.example.org".into();
    s.mail_log = None;
    s.delay_warning = None;
    s.upgrade_tls = false;
    s.mta_sts_cache = None;
    s
}

fn run(base: &std::path::Path, n: usize, m: usize, rounds: usize) -> Result<(), Error> {
    let dir = tempfile::tempdir_in(base)?;
    let spool_settings = SpoolSettings::new(dir.path().join("spool"));
    {
        let (spool, _) = Spool::open(&spool_settings)?;
        let t = Instant::now();
        let ids = commit_many(&spool, n, &|i| format!("r{i}@slow{}.test", i % 100))?;
        defer_all(&spool, &ids)?;
        if n > 0 {
            println!(
                "  built {n} deferred messages in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let t = Instant::now();
        let spool_settings2 = spool_settings.clone();
        let (spool, report) =
            tokio::task::spawn_blocking(move || Spool::open(&spool_settings2)).await??;
        let opened = t.elapsed();
        let transport = Arc::new(Instantly::default());
        let h = start(
            settings(dir.path()),
            spool.clone(),
            Arc::clone(&transport),
            MailLog::disabled(),
            Arc::new(SystemClock),
        );
        wait_for(&h, &transport, 0, n).await?;
        let loaded = t.elapsed();
        if n > 0 {
            println!(
                "  recovery: Spool::open {:.2} s ({} checked), scheduler loaded all in {:.2} s more \
                 = {:.0} msg/s; total {:.2} s = {:.0} msg/s",
                opened.as_secs_f64(),
                report.recovered,
                loaded.saturating_sub(opened).as_secs_f64(),
                n as f64 / loaded.saturating_sub(opened).as_secs_f64(),
                loaded.as_secs_f64(),
                n as f64 / loaded.as_secs_f64(),
            );
        }
        for round in 1..=rounds {
            let spool2 = spool.clone();
            let ids = tokio::task::spawn_blocking(move || {
                commit_many(&spool2, m, &|i| format!("r{i}@dest{}.test", i % 10))
            })
            .await??;
            let (t, cpu) = (Instant::now(), cpu_time());
            for id in ids {
                h.notify(id);
            }
            wait_for(&h, &transport, round * m, n).await?;
            let (wall, cpu) = (t.elapsed(), cpu_time().saturating_sub(cpu));
            println!(
                "  round {round}: {m} new messages delivered and removed in {:.2} s = {:.0} msg/s; \
                 {:.1} us wall, {:.1} us CPU per message",
                wall.as_secs_f64(),
                m as f64 / wall.as_secs_f64(),
                wall.as_secs_f64() * 1e6 / m as f64,
                cpu.as_secs_f64() * 1e6 / m as f64,
            );
        }
        h.shutdown(Duration::from_secs(10)).await;
        Ok::<(), Error>(())
    })?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(std::env::temp_dir, Into::into);
    let m: usize = args.next().map_or(Ok(10_000), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let queues = args
        .next()
        .unwrap_or_else(|| QUEUES.into())
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<usize>, _>>()?;
    println!(
        "scheduler with N deferred messages (transport answers at once; {BODY_LEN} B bodies; \
         spools under {})",
        base.display()
    );
    for n in queues {
        println!("N = {n}:");
        run(&base, n, m, rounds)?;
    }
    Ok(())
}

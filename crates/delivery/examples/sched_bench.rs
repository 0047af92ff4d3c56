//! Scheduler cost per message against queue size.
//!
//! The only part of the scheduler whose cost could grow with the queue is
//! choosing what is due next; everything else touches one message through hash
//! maps. This fills a `DueQueue` with N deferred messages (due at random times
//! over the next five days, as a real backlog is), then runs delivery cycles on
//! top of it: 20 000 messages become due now, are popped in due order, and are
//! either rescheduled (deferred again, 5 minutes later) or dropped (delivered).
//! It prints nanoseconds per message for each N. With a heap the figures stay
//! flat (O(log n)); a full scan would grow linearly with N.
//!
//! Run: `cargo run --release -p postern-delivery --example sched_bench`

use std::time::Instant;

use postern_delivery::due::DueQueue;
use postern_spool::QueueId;

const CYCLE: usize = 20_000;
const FIVE_DAYS_MS: u64 = 5 * 24 * 3600 * 1000;

fn main() {
    println!("scheduler due-queue cost per message (release build recommended)");
    println!(
        "{:>10} {:>14} {:>16} {:>16}",
        "deferred", "fill ns/msg", "defer ns/msg", "deliver ns/msg"
    );
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let now: u64 = 1_000_000_000;
        let mut rng_state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            // xorshift: deterministic, no dependency.
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            rng_state
        };
        let mut q = DueQueue::new();
        let backlog: Vec<QueueId> = (0..n).map(|_| QueueId::generate()).collect();
        let t = Instant::now();
        for id in &backlog {
            // Due between 1 hour and 5 days from now: nothing of the backlog
            // is due during the measured cycles.
            q.schedule(*id, now + 3_600_000 + next() % FIVE_DAYS_MS);
        }
        let fill = t.elapsed().as_nanos() / n as u128;

        // Five rounds; the best is printed (the others include page faults
        // and allocator warm-up). Each round: CYCLE messages become due now
        // and are deferred again 5 minutes later; then they come due again
        // and are delivered (dropped).
        let mut defer = u128::MAX;
        let mut deliver = u128::MAX;
        let mut now = now;
        for _ in 0..5 {
            let fresh: Vec<QueueId> = (0..CYCLE).map(|_| QueueId::generate()).collect();
            for id in &fresh {
                q.schedule(*id, now - next() % 1000);
            }
            let t = Instant::now();
            let mut popped = 0;
            while let Some(id) = q.pop_due(now) {
                q.schedule(id, now + 300_000 + next() % 1000);
                popped += 1;
            }
            defer = defer.min(t.elapsed().as_nanos() / popped.max(1) as u128);
            assert_eq!(popped, CYCLE);
            let later = now + 301_000;
            let t = Instant::now();
            let mut delivered = 0;
            while let Some(id) = q.pop_due(later) {
                std::hint::black_box(id);
                delivered += 1;
            }
            deliver = deliver.min(t.elapsed().as_nanos() / delivered.max(1) as u128);
            assert_eq!(delivered, CYCLE);
            assert_eq!(q.len(), n);
            // The backlog starts one hour out; stay well before it.
            now += 302_000 / 5;
        }
        println!("{n:>10} {fill:>14} {defer:>16} {deliver:>16}");
    }
}

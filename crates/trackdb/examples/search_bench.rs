//! Times the tracking queries over a database made by `gen_events`:
//! search by recipient, by recipient domain, by sender, by sender domain,
//! by recipient in a time window, posture over 30 days, the dashboard
//! summary over the last hour and day. Prints the median of 20 runs each.
//!
//! ```text
//! cargo run --release -p postern-trackdb --example search_bench -- /tmp/track/tracking.db
//! ```
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use postern_trackdb::{PostureQuery, SearchQuery, SqliteStore, TrackStore};

const RUNS: usize = 20;

/// One timed query: returns how many rows it found.
type Case<'a> = (&'static str, Box<dyn FnMut() -> usize + 'a>);

fn median(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut n = 0;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        n = f();
        times.push(t0.elapsed());
    }
    times.sort();
    (times[RUNS / 2], n)
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: search_bench PATH/tracking.db");
    let store = SqliteStore::open_read_only(path.as_ref()).unwrap();
    let store = &store;
    let now = time::OffsetDateTime::now_utc();
    let search = |q: SearchQuery| move || store.search(&q).unwrap().len();
    let cases: Vec<Case<'_>> = vec![
        (
            "recipient user7@domain3.example (limit 100)",
            Box::new(search(SearchQuery {
                recipient: Some("user7@domain3.example".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "recipient, rare (user190@domain45.example)",
            Box::new(search(SearchQuery {
                recipient: Some("user190@domain45.example".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "recipient in a 2-day window",
            Box::new(search(SearchQuery {
                recipient: Some("user7@domain3.example".into()),
                start: Some(now - time::Duration::days(12)),
                end: Some(now - time::Duration::days(10)),
                ..SearchQuery::default()
            })),
        ),
        (
            "recipient domain domain3.example",
            Box::new(search(SearchQuery {
                recipient: Some("domain3.example".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "sender sender5@corp3.example",
            Box::new(search(SearchQuery {
                sender: Some("sender5@corp3.example".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "sender domain corp3.example",
            Box::new(search(SearchQuery {
                sender: Some("corp3.example".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "bounced events, 1 000 rows",
            Box::new(search(SearchQuery {
                events: vec!["bounced".into()],
                limit: 1000,
                ..SearchQuery::default()
            })),
        ),
        (
            "client ip 192.0.2.0/24 (limit 100)",
            Box::new(search(SearchQuery {
                ip: Some("192.0.2.0/24".into()),
                ..SearchQuery::default()
            })),
        ),
        (
            "posture --since 30d",
            Box::new(|| {
                store
                    .posture(&PostureQuery {
                        direction: None,
                        since: now - time::Duration::days(30),
                        limit: 0,
                    })
                    .unwrap()
                    .len()
            }),
        ),
        (
            "summary, last hour",
            Box::new(|| {
                store
                    .summary(now - time::Duration::hours(1))
                    .unwrap()
                    .events
                    .len()
            }),
        ),
        (
            "summary, last 24 hours",
            Box::new(|| {
                store
                    .summary(now - time::Duration::days(1))
                    .unwrap()
                    .events
                    .len()
            }),
        ),
    ];
    println!("median of {RUNS} runs");
    for (name, mut f) in cases {
        let (t, n) = median(&mut f);
        println!("{:>9.2} ms  {name} ({n} rows)", t.as_secs_f64() * 1000.0);
    }
}

//! Recipients table cost: parse a table of N addresses (plus a few local
//! parts, catch-alls and patterns), then look up known and unknown addresses
//! (an unknown one walks every pattern). Prints figures; it is not a test.
//!
//! ```text
//! cargo run --release -p postern-policy --example recipients_table [N]
//! ```

// Figures for humans: counts stay far below 2^52, so f64 is exact enough.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use postern_policy::recipients::RecipientTable;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut text = String::with_capacity(n * 24);
    for i in 0..n {
        let _ = writeln!(text, "user{i}@example.com");
    }
    for p in [
        "sales-*@example.com",
        "j*",
        "*-noreply@*.example.com",
        "@catch.example",
    ] {
        text.push_str(p);
        text.push('\n');
    }
    let start = Instant::now();
    let (table, bad) = RecipientTable::parse(&text);
    let parse = start.elapsed();
    assert!(bad.is_empty());
    println!(
        "parse: {} entries, {} KiB, {:.1} ms ({:.0} ns/entry)",
        table.len(),
        text.len() / 1024,
        parse.as_secs_f64() * 1e3,
        parse.as_nanos() as f64 / table.len() as f64
    );
    let rounds: u32 = 1_000_000;
    for (what, local) in [
        ("known", "user4242"),
        ("unknown", "nobody"),
        ("extension", "user7+x"),
    ] {
        let start = Instant::now();
        let mut hits = 0u32;
        for _ in 0..rounds {
            hits += u32::from(table.contains(black_box(local), black_box("example.com")));
        }
        let t = start.elapsed();
        println!(
            "lookup {what:9}: {:.0} ns each (found: {})",
            t.as_nanos() as f64 / f64::from(rounds),
            hits == rounds
        );
    }
}

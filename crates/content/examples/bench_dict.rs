//! Figures for dictionaries and the message view (not a test: nothing is
//! asserted). Run in release:
//!
//! ```text
//! cargo run --release -p postern-content --example bench_dict
//! ```
//!
//! Prints: build time of a 100 000-entry dictionary; per 10 KiB text, the
//! median of 1000 runs of `find_in` (all matches), `score`, `matches`, and
//! of `contains` on an address; the median of 1000 `MessageView::parse` of a
//! 10 KiB multipart message; and time and peak memory for 50 MiB hostile
//! messages.

use std::hint::black_box;
use std::time::{Duration, Instant};

use postern_content::{Dictionary, MessageView, ViewLimits};

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort_unstable();
    runs[runs.len() / 2]
}

fn time_n(n: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// A pseudo-word for `i`: letters only, 4–9 of them.
fn word(mut i: usize) -> String {
    let mut w = String::new();
    for _ in 0..4 {
        w.push(char::from(b'a' + u8::try_from(i % 26).unwrap_or(0)));
        i /= 26;
    }
    let mut k = i;
    while k > 0 {
        w.push(char::from(b'a' + u8::try_from(k % 26).unwrap_or(0)));
        k /= 26;
    }
    w
}

/// 100 000 entries: 80 % words, 10 % two-word phrases, 5 % addresses, 5 % @domains.
fn dictionary_text() -> String {
    let mut s = String::new();
    for i in 0..100_000 {
        let line = match i % 20 {
            0 | 1 => format!("{} {}, 3\n", word(i), word(i + 7)),
            2 => format!("{}@{}.example\n", word(i), word(i + 1)),
            3 => format!("@{}.example\n", word(i)),
            _ => format!("{}\n", word(i)),
        };
        s.push_str(&line);
    }
    s
}

fn text_10k() -> String {
    let words = [
        "the",
        "quarterly",
        "report",
        "shows",
        "growth",
        "in",
        "all",
        "regions",
        "please",
        "review",
        "attached",
        "figures",
        "before",
        "friday",
        "meeting",
        "thanks",
        "regards",
    ];
    let mut t = String::new();
    let mut i = 0;
    while t.len() < 10 * 1024 {
        t.push_str(words[i % words.len()]);
        t.push(if i % 11 == 10 { '.' } else { ' ' });
        if i % 97 == 0 {
            // An occasional dictionary hit.
            t.push_str(&word(i * 20 + 5));
            t.push(' ');
        }
        i += 1;
    }
    t
}

fn message_10k(text: &str) -> String {
    format!(
        "From: a@example.com\r\nTo: b@example.net\r\nSubject: =?UTF-8?Q?Quarterly_r=C3=A9port?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n\
--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{half}\r\n\
--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{half}</p></body></html>\r\n--a--\r\n\
--m\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjcKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+CnN0cmVhbQp4nDPQM1Qo\r\n\
--m--\r\n",
        half = &text[..text.len() / 2]
    )
}

const MIB50: usize = 50 * 1024 * 1024;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let source = dictionary_text();
    let build = median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                black_box(Dictionary::parse("bench", &source).ok());
                t.elapsed()
            })
            .collect(),
    );
    let Ok(dict) = Dictionary::parse("bench", &source) else {
        eprintln!("the generated dictionary does not parse");
        return;
    };
    println!(
        "dictionary: {} entries, {} bytes of source",
        dict.len(),
        source.len()
    );
    println!("  build (median of 3):                 {build:?}");

    let text = text_10k();
    let hits = dict.find_in(&text).count();
    println!("text: {} bytes, {hits} matches", text.len());
    let find = time_n(1000, || {
        black_box(dict.find_in(black_box(&text)).count());
    });
    let score = time_n(1000, || {
        black_box(dict.score(black_box(&text)));
    });
    let any = time_n(1000, || {
        black_box(dict.matches(black_box(&text)));
    });
    let member = time_n(1000, || {
        black_box(dict.contains(black_box("someone@sub.aaaa.example")));
    });
    println!("  find_in over 10 KiB (median of 1000): {find:?}");
    println!("  score over 10 KiB (median of 1000):   {score:?}");
    println!("  matches over 10 KiB (median of 1000): {any:?}");
    println!("  contains(address) (median of 1000):   {member:?}");

    let message = message_10k(&text);
    let limits = ViewLimits::default();
    let parse = time_n(1000, || {
        black_box(MessageView::parse(black_box(message.as_bytes()), &limits));
    });
    let view = MessageView::parse(message.as_bytes(), &limits);
    println!(
        "message: {} bytes, {} bytes of body text, {} attachment(s)",
        message.len(),
        view.body_text.len(),
        view.attachments.len()
    );
    println!("  MessageView::parse (median of 1000):  {parse:?}");
    let both = time_n(1000, || {
        let v = MessageView::parse(black_box(message.as_bytes()), &limits);
        black_box(dict.score(&v.body_text));
    });
    println!("  parse + score body (median of 1000):  {both:?}");

    let before = peak_rss_kib();
    let mut parts = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    while parts.len() < MIB50 {
        parts.extend_from_slice(b"--b\r\n\r\n");
    }
    let mut nested = Vec::with_capacity(MIB50);
    while nested.len() < MIB50 {
        nested.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    let mut b64 =
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
    while b64.len() < MIB50 {
        b64.extend_from_slice(
            b"TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
        );
    }
    let mut qp = Vec::with_capacity(MIB50);
    for _ in 0..20 {
        qp.extend_from_slice(
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        );
    }
    qp.resize(MIB50, b'A');
    let inputs = before;
    for (name, raw) in [
        ("50 MiB of empty parts", &parts),
        ("50 MiB of nested message/rfc822", &nested),
        ("50 MiB base64 attachment", &b64),
        ("50 MiB in 20 nested quoted-printable messages", &qp),
    ] {
        let t = Instant::now();
        let v = MessageView::parse(raw, &limits);
        println!(
            "  {name}: {:?}, {} attachments, truncated={}",
            t.elapsed(),
            v.attachments.len(),
            v.truncated
        );
    }
    if let (Some(start), Some(peak)) = (inputs, peak_rss_kib()) {
        println!(
            "peak RSS {} MiB (the four 50 MiB inputs themselves are 200 MiB; {} MiB before building them)",
            peak / 1024,
            start / 1024
        );
    }
}

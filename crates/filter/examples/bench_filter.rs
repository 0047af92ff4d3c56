//! Per-message cost of the filter rules: no rules vs 50 rules + a 100 000-entry
//! dictionary, on a 10 KiB message (text body + one attachment), median of 1000 runs.
//!
//! Run: `cargo run --release -p postern-filter --example bench_filter`
//!
//! Prints, for each case, the median and 99th percentile wall time of one evaluation
//! (single thread, nothing else running in the process; on a busy machine the median is
//! the figure to read). "evaluate" is the rules alone over an already decoded message;
//! "parse+evaluate" adds `MessageView::parse` of the raw message, which the server does
//! once per message whatever the number of rules. None of the 50 rules ends evaluation,
//! so every rule runs (the worst case). One row repeats the 50-rule case on a body of
//! Cyrillic words (non-ASCII text costs the dictionary search more).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_content::{Dictionary, MessageView, ViewLimits};
use postern_filter::{Facts, RuleSet, Spam, TlsInfo, evaluate, evaluate_per_recipient};

const RUNS: usize = 1000;

const ENGLISH: &[&str] = &[
    "quarterly",
    "report",
    "meeting",
    "schedule",
    "budget",
    "project",
    "review",
    "team",
    "update",
    "customer",
    "invoice",
    "delivery",
    "please",
    "find",
    "attached",
    "regards",
];
const RUSSIAN: &[&str] = &[
    "отчёт",
    "квартал",
    "встреча",
    "план",
    "бюджет",
    "проект",
    "обзор",
    "команда",
    "обновление",
    "клиент",
    "счёт",
    "доставка",
    "пожалуйста",
    "найти",
    "вложение",
    "привет",
];

fn message(words: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    let mut i = 0usize;
    while body.len() < 7 * 1024 {
        body.push_str(words[i % words.len()]);
        body.push(if i % 12 == 11 { '\n' } else { ' ' });
        i += 7;
    }
    let attachment =
        "UEsDBBQAAAAIAAAAIQBkYXRhZGF0YWRhdGFkYXRhZGF0YWRhdGFkYXRhZGF0YWRhdGFk\r\n".repeat(32);
    let raw = format!(
        "Received: from mail.example.org (mail.example.org [192.0.2.7])\r\n\tby mx.corp.example with ESMTPS id 4AbC; Sun, 6 Dec 2026 20:00:00 +0000\r\n\
From: Alice Example <alice@example.org>\r\nTo: bob@corp.example\r\nSubject: Quarterly report and invoice\r\n\
Date: Sun, 6 Dec 2026 19:59:00 +0000\r\nMessage-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b1\r\n\
Content-Type: application/zip; name=\"report.zip\"\r\nContent-Disposition: attachment; filename=\"report.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{attachment}--b1--\r\n"
    );
    raw.into_bytes()
}

fn rules() -> String {
    let mut r = String::new();
    let mut n = 0;
    let mut rule = |cond: &str, action: &str| {
        n += 1;
        writeln!(r, "rule \"r{n}\" {{ if {cond} then {action} }}").expect("write to a String");
    };
    for i in 0..5 {
        rule(
            &format!("sender is \"user{i}@blocked.example\""),
            "add-header \"X-R\" \"1\"",
        );
        rule(
            &format!("sender domain matches \"*.spam{i}.example\""),
            "prefix-subject \"[S] \"",
        );
    }
    rule(
        "sender in dictionary \"big\"",
        "add-header \"X-Dict\" \"sender\"",
    );
    rule(
        "recipient in dictionary \"big\"",
        "bcc \"audit@corp.example\"",
    );
    rule(
        "recipient domain is \"legal.corp.example\"",
        "bcc \"archive@corp.example\"",
    );
    rule("recipient matches /^(ceo|cfo)@/i", "require-tls");
    rule(
        "sender-group is \"BLOCKLIST\"",
        "add-header \"X-Blocked\" \"1\"",
    );
    for i in 0..3 {
        rule(
            &format!("header \"X-Campaign-{i}\" exists"),
            "add-header \"X-Bulk\" \"1\"",
        );
    }
    rule(
        "header \"Received\" matches /from \\S+ \\(unknown\\)/",
        "add-header \"X-Unknown\" \"1\"",
    );
    rule(
        "header \"From\" matches /ceo@corp\\.example/i and not authenticated",
        "add-header \"X-Spoof\" \"1\"",
    );
    rule(
        "subject contains (\"viagra\", \"lottery\", \"winner\")",
        "prefix-subject \"[SPAM] \"",
    );
    rule(
        "subject matches /^\\[?(urgent|action required)/i",
        "add-header \"X-Urgent\" \"1\"",
    );
    rule(
        "subject in dictionary \"big\"",
        "add-header \"X-Dict\" \"subject\"",
    );
    rule(
        "body in dictionary \"big\"",
        "add-header \"X-Dict\" \"body\"",
    );
    rule("body dictionary \"big\" score >= 10", "quarantine \"spam\"");
    rule(
        "body contains (\"free money\", \"wire transfer\", \"bitcoin\")",
        "add-header \"X-Money\" \"1\"",
    );
    rule(
        "body matches /\\b(password|passwd)\\s*[:=]/i",
        "add-header \"X-Secret\" \"1\"",
    );
    rule(
        "body matches /\\b4[0-9]{12}(?:[0-9]{3})?\\b/",
        "add-header \"X-Card\" \"1\"",
    );
    rule("body contains \"confidential\" and not tls", "require-tls");
    rule(
        "attachment text in dictionary \"big\"",
        "add-header \"X-Dict\" \"attachment\"",
    );
    rule(
        "attachment filename matches /\\.(exe|scr|js|vbs|bat|cmd|com|pif)$/i",
        "quarantine \"attachments\"",
    );
    rule(
        "attachment detected-type is (\"application/x-msdownload\", \"application/x-executable\")",
        "quarantine \"attachments\"",
    );
    rule(
        "attachment declared-type matches \"application/x-*\"",
        "add-header \"X-Odd-Type\" \"1\"",
    );
    rule(
        "attachment size > 10M",
        "reject 552 \"5.3.4\" \"Attachment too large\"",
    );
    rule(
        "attachment count > 20",
        "reject 550 \"5.7.1\" \"Too many attachments\"",
    );
    rule("size > 25M", "reject 552 \"5.3.4\" \"Message too large\"");
    rule("spf is fail and dmarc is fail", "quarantine \"spoof\"");
    rule("dkim is (fail, permerror)", "add-header \"X-DKIM\" \"bad\"");
    rule(
        "dmarc is fail and sender-group is \"UNKNOWN\"",
        "reject 550 \"5.7.1\" \"DMARC failure\"",
    );
    rule("tls version < \"1.2\"", "add-header \"X-Old-TLS\" \"1\"");
    rule("tls cipher matches /CBC/", "add-header \"X-CBC\" \"1\"");
    rule(
        "not tls client-certificate verified and listener is \"partners\"",
        "reject 550 \"5.7.1\" \"Certificate required\"",
    );
    rule("spam score >= 15", "quarantine \"spam\"");
    rule(
        "spam score >= 5 and not sender-group is \"ALLOWLIST\"",
        "prefix-subject \"[SUSPECTED SPAM] \"; add-header \"X-Spam-Flag\" \"YES\"",
    );
    rule("spam action is \"reject\"", "quarantine \"spam\"");
    rule("virus infected", "quarantine \"virus\"");
    rule(
        "auth-user matches \"*@partner.example\"",
        "add-header \"X-Partner\" \"1\"",
    );
    rule(
        "helo matches /^(localhost|\\[?127\\.)/i",
        "add-header \"X-Bad-HELO\" \"1\"",
    );
    rule(
        "client-ip matches \"10.*\"",
        "add-header \"X-Internal\" \"1\"",
    );
    rule(
        "policy is \"THROTTLED\" and size > 1M",
        "reject 452 \"4.3.1\" \"Try later\"",
    );
    assert_eq!(n, 50, "the benchmark promises 50 rules");
    r
}

fn dictionary() -> Arc<Dictionary> {
    let mut text = String::with_capacity(2 << 20);
    for i in 0..99_990 {
        writeln!(text, "term{i:05}x").expect("write to a String");
    }
    for phrase in [
        "free money",
        "wire transfer",
        "lottery winner",
        "act now",
        "limited offer",
        "bitcoin wallet",
        "blocked@spam.example",
        "@.spam.example",
        "meeting schedule",
        "weight loss",
    ] {
        writeln!(text, "{phrase}, 3").expect("write to a String");
    }
    Arc::new(Dictionary::parse("big", &text).expect("dictionary parses"))
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn time(mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..50 {
        f();
    }
    let mut v = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    median(v)
}

fn main() {
    let raw = message(ENGLISH);
    let raw_ru = message(RUSSIAN);
    let limits = ViewLimits::default();
    let view = MessageView::parse(&raw, &limits);
    let mut dicts = BTreeMap::new();
    let t = Instant::now();
    dicts.insert("big".to_owned(), dictionary());
    let dict_build = t.elapsed();
    let empty = RuleSet::empty("none");
    let t = Instant::now();
    let fifty = RuleSet::parse(&rules(), "bench.rules").expect("bench rules parse");
    let rules_parse = t.elapsed();
    let rcpts = vec![
        "bob@corp.example".to_owned(),
        "carol@corp.example".to_owned(),
    ];
    let tls = TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        client_cert_verified: false,
    };
    let spam = Spam {
        score: 6.2,
        action: "add header".into(),
    };
    let facts = Facts {
        listener: "inbound",
        sender_group: Some("UNKNOWN"),
        policy: Some("ACCEPTED"),
        helo: Some("mail.example.org"),
        client_ip: Some("192.0.2.7".parse().expect("ip")),
        spf: Some("pass"),
        dkim: Some("pass"),
        dmarc: Some("pass"),
        tls: Some(&tls),
        spam: Some(&spam),
        ..Facts::new("alice@example.org", &rcpts, &view, &dicts)
    };
    let out = evaluate(&fifty, &facts);
    println!(
        "message: {} bytes raw, body text {} bytes, {} attachment(s); dictionary: 100000 entries (built in {:.1} ms); 50 rules (parsed in {:.2} ms); {} of them matched",
        raw.len(),
        view.body_text.len(),
        view.attachments.len(),
        dict_build.as_secs_f64() * 1e3,
        rules_parse.as_secs_f64() * 1e3,
        out.hits.len()
    );
    let row = |name: &str, (med, p99): (Duration, Duration)| {
        println!(
            "{name:<52} median {:>8.1} µs   p99 {:>8.1} µs",
            med.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    };
    row(
        "evaluate, no rules",
        time(|| {
            black_box(evaluate(&empty, black_box(&facts)));
        }),
    );
    row(
        "evaluate, 50 rules + 100k dictionary",
        time(|| {
            black_box(evaluate(&fifty, black_box(&facts)));
        }),
    );
    row(
        "evaluate_per_recipient (2 rcpts), 50 rules + 100k",
        time(|| {
            black_box(evaluate_per_recipient(&fifty, black_box(&facts)));
        }),
    );
    let many: Vec<String> = (0..100).map(|i| format!("user{i}@corp.example")).collect();
    let facts_many = Facts {
        recipients: &many,
        ..facts
    };
    row(
        "evaluate_per_recipient (100 rcpts), 50 rules + 100k",
        time(|| {
            black_box(evaluate_per_recipient(&fifty, black_box(&facts_many)));
        }),
    );
    let view_ru = MessageView::parse(&raw_ru, &limits);
    let facts_ru = Facts {
        message: &view_ru,
        ..facts
    };
    row(
        "evaluate, 50 rules + 100k, Cyrillic body",
        time(|| {
            black_box(evaluate(&fifty, black_box(&facts_ru)));
        }),
    );
    row(
        "parse+evaluate, no rules",
        time(|| {
            let v = MessageView::parse(black_box(&raw), &limits);
            black_box(evaluate(
                &empty,
                &Facts {
                    message: &v,
                    ..facts
                },
            ));
        }),
    );
    row(
        "parse+evaluate, 50 rules + 100k dictionary",
        time(|| {
            let v = MessageView::parse(black_box(&raw), &limits);
            black_box(evaluate(
                &fifty,
                &Facts {
                    message: &v,
                    ..facts
                },
            ));
        }),
    );
    // The worst case for word search: 1 MiB of body text (the message view's bound),
    // every word a near miss (the searched word is a prefix of it), in Cyrillic.
    let worst = MessageView {
        body_text: "отчётность квартальный встречались ".repeat(1024 * 1024 / 60),
        ..MessageView::default()
    };
    let near_miss = RuleSet::parse(
        r#"rule "w" { if body contains ("отчёт", "квартал", "встреча") then stop }"#,
        "worst",
    )
    .expect("parses");
    let worst_facts = Facts {
        message: &worst,
        ..facts
    };
    let once = |rs: &RuleSet| {
        let t = Instant::now();
        black_box(evaluate(rs, black_box(&worst_facts)));
        t.elapsed()
    };
    let runs: Vec<Duration> = (0..21).map(|_| once(&near_miss)).collect();
    println!(
        "worst case: 1 MiB Cyrillic body, 3 words, each the start of a third of its words: median {:.2} ms (21 runs)",
        median(runs).0.as_secs_f64() * 1e3
    );
}

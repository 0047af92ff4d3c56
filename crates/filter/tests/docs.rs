//! docs/filters.md stays true: every rule example in it parses, and the dry-run sample is
//! what the dry run prints for the first example over a message with an executable
//! attachment and a spam score of 6.5.

mod common;

use common::{Dicts, dictionary, message, tls};
use postern_filter::{Facts, RuleSet, Spam, dry_run};

fn doc() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/filters.md"
    ))
    .expect("docs/filters.md is readable")
}

/// The ```text blocks of the document.
fn blocks(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```text") => current = Some(String::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_rule_example_parses() {
    let doc = doc();
    let examples: Vec<String> = blocks(&doc)
        .into_iter()
        .filter(|b| {
            b.lines().any(|l| l.trim_start().starts_with("rule \"")) && !b.contains("outcome:")
        })
        .collect();
    assert!(!examples.is_empty());
    for (i, b) in examples.iter().enumerate() {
        if let Err(e) = RuleSet::parse(b, &format!("docs example {i}")) {
            panic!("{e:?}\n---\n{b}");
        }
    }
}

#[test]
fn the_dry_run_sample_is_what_the_dry_run_prints() {
    let doc = doc();
    let all = blocks(&doc);
    let rules = RuleSet::parse(&all[0], "rules.txt").expect("first example parses");
    let sample = all
        .iter()
        .find(|b| b.starts_with("rule \"") && b.contains("outcome:"))
        .expect("a dry-run sample");
    let (msg, tls) = (message(), tls());
    let spam = Spam {
        score: 6.5,
        action: "add header".to_owned(),
    };
    let mut dicts = Dicts::new();
    dicts.insert(
        "ex-employees".into(),
        dictionary("ex-employees", "mallory@example.org\n"),
    );
    let rcpts = vec!["bob@corp.example".to_owned()];
    let facts = Facts {
        sender_group: Some("UNKNOWN"),
        dmarc: Some("pass"),
        tls: Some(&tls),
        spam: Some(&spam),
        ..Facts::new("alice@example.org", &rcpts, &msg, &dicts)
    };
    assert_eq!(dry_run(&rules, &facts).to_string(), sample.trim_end());
}

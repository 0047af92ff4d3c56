//! Dictionary conditions: membership of addresses and names (`in dictionary` on short
//! values: equal to an entry, `@domain` / `@.parent` for addresses), entries found in
//! text (`in dictionary` on subject, headers, body, attachment text: word boundaries,
//! case-insensitive), weighted scores, a missing dictionary, and a 100 000-entry
//! dictionary.

mod common;

use std::fmt::Write as _;

use common::{Dicts, dictionary, facts, holds, message, recipients, spam, tls};
use postern_filter::{Facts, RuleSet, dry_run, evaluate};

fn dicts() -> Dicts {
    let mut d = Dicts::new();
    d.insert(
        "ex-employees".into(),
        dictionary(
            "ex-employees",
            "# people who left\nalice@example.com\n@.gone.example\n",
        ),
    );
    d.insert(
        "spam-words".into(),
        dictionary("spam-words", "free money, 3\nwire, 2\nlottery, 5\nurgent\n"),
    );
    d.insert(
        "groups".into(),
        dictionary("groups", "ALLOWLIST\nPARTNERS\n"),
    );
    d.insert(
        "projects".into(),
        dictionary("projects", "apollo\ngemini\n"),
    );
    d
}

#[test]
fn membership_and_text_search() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), dicts());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let cases = [
        // sender is Alice@Example.COM: case-insensitive membership
        (r#"sender in dictionary "ex-employees""#, true),
        (r#"recipient in dictionary "ex-employees""#, false),
        (r#"sender-group in dictionary "groups""#, true),
        (r#"listener in dictionary "groups""#, false),
        // text: entries found with word boundaries, case-insensitive
        (r#"body in dictionary "spam-words""#, true),
        (r#"subject in dictionary "spam-words""#, true),
        (r#"header "X-Mailer" in dictionary "spam-words""#, false),
        (r#"attachment text in dictionary "projects""#, true),
        (r#"body in dictionary "projects""#, false),
        // scores: body has "wire" (2) and "FREE   money" (3) = 5
        (r#"body dictionary "spam-words" score >= 5"#, true),
        (r#"body dictionary "spam-words" score > 5"#, false),
        (r#"subject dictionary "spam-words" score = 1"#, true),
        (r#"attachment text dictionary "spam-words" score = 0"#, true),
    ];
    for (cond, want) in cases {
        assert_eq!(holds(cond, &f), want, "{cond}");
    }
}

#[test]
fn subdomain_entries_match_addresses() {
    let (msg, tls, spam, dicts) = (message(), tls(), spam(), dicts());
    let rcpts = vec!["x@mail.gone.example".to_owned()];
    let f = Facts {
        sender: "someone@gone.example",
        ..facts(&msg, &rcpts, &tls, &spam, &dicts)
    };
    assert!(holds(r#"recipient in dictionary "ex-employees""#, &f));
    assert!(holds(
        r#"recipient domain in dictionary "ex-employees""#,
        &f
    ));
    // `@.parent` is any subdomain, not the parent itself
    assert!(!holds(r#"sender in dictionary "ex-employees""#, &f));
}

#[test]
fn a_missing_dictionary_makes_its_tests_false_and_is_reported() {
    let (msg, rcpts, tls, spam) = (message(), recipients(), tls(), spam());
    let dicts = Dicts::new();
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let rs = RuleSet::parse(
        r#"rule "a" { if body in dictionary "spam-words" or not sender in dictionary "ex-employees" then add-header "X-A" "1" }"#,
        "r",
    )
    .expect("parses");
    let out = evaluate(&rs, &f);
    assert_eq!(out.hits.len(), 1); // via `not`
    assert_eq!(out.missing_dictionaries, vec!["spam-words", "ex-employees"]);
    assert!(
        out.to_string()
            .contains("warning: dictionary \"spam-words\" is not loaded")
    );
}

#[test]
fn dry_run_quotes_the_entry_found_and_the_score() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), dicts());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let rs = RuleSet::parse(
        r#"rule "d" { if body in dictionary "spam-words" and body dictionary "spam-words" score >= 4 then stop }"#,
        "r",
    )
    .expect("parses");
    assert_eq!(
        dry_run(&rs, &f).rules[0].to_string(),
        r#"rule "d" (r:1) matched: body "wire" in dictionary "spam-words" and body dictionary "spam-words" score >= 4 (score 5) → stop"#
    );
}

#[test]
fn a_dictionary_of_100_000_entries() {
    let mut text = String::new();
    for i in 0..100_000 {
        writeln!(text, "word{i:06}").expect("write to a String");
    }
    text.push_str("needle phrase, 7\n");
    let mut dicts = Dicts::new();
    dicts.insert("big".into(), dictionary("big", &text));
    let (mut msg, rcpts, tls, spam) = (message(), recipients(), tls(), spam());
    msg.body_text = format!("{} the Needle   Phrase is here", "filler text ".repeat(800));
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    assert!(holds(r#"body in dictionary "big""#, &f));
    assert!(holds(r#"body dictionary "big" score = 7"#, &f));
    assert!(!holds(r#"sender in dictionary "big""#, &f));
    let f2 = Facts {
        sender: "WORD099999",
        ..f
    };
    assert!(holds(r#"sender in dictionary "big""#, &f2));
}

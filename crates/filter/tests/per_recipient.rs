//! Content filters: per-recipient evaluation, `recipient` tests seeing one recipient,
//! recipients with identical outcomes grouped (one message copy per group, as ESA
//! splits), against message filters where `recipient` means "any recipient".

mod common;

use common::{Dicts, facts, message, rules, spam, tls};
use postern_filter::{Disposition, evaluate, evaluate_per_recipient};

const RULES: &str = r#"
rule "legal" {
    if recipient domain is "legal.corp.example"
    then add-header "X-Legal-Hold" "1"; bcc "archive@corp.example"
}
rule "ceo-exe" {
    if recipient is "ceo@corp.example" and attachment filename matches "*.exe"
    then quarantine "attachments"
}
rule "all" { if true then add-header "X-Scanned" "yes" }
"#;

fn rcpts() -> Vec<String> {
    [
        "a@legal.corp.example",
        "b@corp.example",
        "ceo@corp.example",
        "c@LEGAL.corp.example",
        "d@corp.example",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn recipients_with_the_same_outcome_share_a_group() {
    let (msg, rcpts, tls, spam, dicts) = (message(), rcpts(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let groups = evaluate_per_recipient(&rules(RULES), &f);
    let shape: Vec<(Vec<&str>, String)> = groups
        .iter()
        .map(|g| {
            (
                g.recipients.iter().map(String::as_str).collect(),
                g.outcome.disposition.to_string(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (
                vec!["a@legal.corp.example", "c@LEGAL.corp.example"],
                "deliver".to_owned()
            ),
            (
                vec!["b@corp.example", "d@corp.example"],
                "deliver".to_owned()
            ),
            (
                vec!["ceo@corp.example"],
                "quarantine \"attachments\"".to_owned()
            ),
        ]
    );
    assert_eq!(groups[0].outcome.bcc, vec!["archive@corp.example"]);
    assert_eq!(groups[0].outcome.header_edits.len(), 2);
    assert_eq!(groups[1].outcome.header_edits.len(), 1);
    assert!(groups[1].outcome.bcc.is_empty());
    // the quarantine is final: "all" did not run for the CEO's copy
    assert!(groups[2].outcome.header_edits.is_empty());
}

#[test]
fn message_filters_see_any_recipient() {
    let (msg, rcpts, tls, spam, dicts) = (message(), rcpts(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let out = evaluate(&rules(RULES), &f);
    assert_eq!(
        out.disposition,
        Disposition::Quarantine {
            name: "attachments".into()
        }
    );
    assert_eq!(out.bcc, vec!["archive@corp.example"]);
}

#[test]
fn one_recipient_one_group_and_no_recipient_no_group() {
    let (msg, tls, spam, dicts) = (message(), tls(), spam(), Dicts::new());
    let one = vec!["b@corp.example".to_owned()];
    let f = facts(&msg, &one, &tls, &spam, &dicts);
    let groups = evaluate_per_recipient(&rules(RULES), &f);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].recipients, one);
    let none: Vec<String> = Vec::new();
    let f = facts(&msg, &none, &tls, &spam, &dicts);
    assert!(evaluate_per_recipient(&rules(RULES), &f).is_empty());
}

#[test]
fn all_recipients_alike_make_one_group() {
    let (msg, tls, spam, dicts) = (message(), tls(), spam(), Dicts::new());
    let rcpts: Vec<String> = (0..50).map(|i| format!("u{i}@corp.example")).collect();
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let groups = evaluate_per_recipient(&rules(RULES), &f);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].recipients.len(), 50);
}

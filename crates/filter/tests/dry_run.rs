//! The dry run behind `postern filter test`: each rule matched / not matched / not
//! evaluated, the tests that made a match (with the values seen), the actions and the
//! outcome; its printed form and its JSON form.

mod common;

use common::{Dicts, facts, message, recipients, spam, tls};
use postern_filter::{RuleResult, RuleSet, dry_run};

const RULES: &str = r#"# example rules
rule "ex-employees" {
    if sender is "bob@example.com" or recipient is "mallory@corp.example"
    then bounce 550 "5.7.1" "This person no longer works here"; stop
}
rule "spam-tag" {
    if spam score >= 5 and not sender-group is "BLOCKLIST"
    then prefix-subject "[SUSPECTED SPAM] "; add-header "X-Spam-Flag" "YES"
}
rule "exe-attachments" {
    if attachment filename matches /\.(exe|scr|js)$/i or attachment detected-type is "application/x-msdownload"
    then quarantine "attachments"
}
rule "words" { if body contains "free money" then add-header "X-Money" "1" }
"#;

#[test]
fn report_lists_every_rule_and_why() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let rs = RuleSet::parse(RULES, "rules.txt").expect("parses");
    let report = dry_run(&rs, &f);
    assert_eq!(
        report.to_string(),
        r#"rule "ex-employees" (rules.txt:2) not matched
rule "spam-tag" (rules.txt:6) matched: spam score 6.5 >= 5 and not sender-group is "BLOCKLIST" → prefix-subject "[SUSPECTED SPAM] "; add-header "X-Spam-Flag" "YES"
rule "exe-attachments" (rules.txt:10) matched: attachment filename "invoice.exe" matches /\.(exe|scr|js)$/i → quarantine "attachments"
rule "words" (rules.txt:14) not evaluated: rule "exe-attachments" ended evaluation
outcome: quarantine "attachments" (rule "exe-attachments")
  add-header "X-Spam-Flag" "YES"
  prefix-subject "[SUSPECTED SPAM] ""#
    );
    assert!(matches!(report.rules[0].result, RuleResult::NotMatched));
    // same outcome as the plain evaluation
    assert_eq!(report.outcome, postern_filter::evaluate(&rs, &f));

    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["rules"][2]["result"], "matched");
    assert_eq!(
        json["rules"][2]["because"][0],
        r#"attachment filename "invoice.exe" matches /\.(exe|scr|js)$/i"#
    );
    assert_eq!(json["rules"][2]["actions"][0]["action"], "quarantine");
    assert_eq!(json["rules"][3]["result"], "not-evaluated");
    assert_eq!(json["outcome"]["disposition"]["name"], "attachments");
}

#[test]
fn text_matches_quote_the_matched_part() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let rs = RuleSet::parse(
        r#"rule "w" { if body contains "free money" and (tls and authenticated or true) then stop }"#,
        "r",
    )
    .expect("parses");
    let report = dry_run(&rs, &f);
    assert_eq!(
        report.rules[0].to_string(),
        r#"rule "w" (r:1) matched: body "FREE   money" contains "free money" and true → stop"#
    );
    // a matched rule ending with stop: outcome deliver, decided by it
    assert_eq!(report.outcome.to_string(), r#"deliver (rule "w")"#);
}

#[test]
fn negations_are_explained_by_what_did_not_hold() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let rs = RuleSet::parse(
        r#"rule "n" { if not (dkim is pass or header "X-Signed" exists) and not virus infected then add-header "X-N" "1" }"#,
        "r",
    )
    .expect("parses");
    assert_eq!(
        dry_run(&rs, &f).rules[0].to_string(),
        r#"rule "n" (r:1) matched: not (dkim is pass or header "X-Signed" exists) and not virus infected → add-header "X-N" "1""#
    );
}

//! Every action, and the evaluation semantics: modifying actions accumulate, a final
//! action decides and ends evaluation, `stop` ends it without deciding, conditions see
//! the message as received. Also the Outcome's printed and JSON forms.

mod common;

use common::{Dicts, eval, facts, message, recipients, spam, tls};
use postern_filter::{Disposition, HeaderEdit, NameKind, Notify, Outcome, RuleHit, RuleSet};
use postern_proto::EnhancedCode;

fn run(src: &str) -> Outcome {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    eval(src, &f)
}

#[test]
fn no_rules_and_no_match_deliver_unchanged() {
    assert!(run("").is_unchanged());
    assert!(run("# only a comment\n").is_unchanged());
    let out = run(r#"rule "never" { if dkim is pass then drop }"#);
    assert!(out.is_unchanged());
    assert!(out.hits.is_empty());
}

#[test]
fn final_actions_set_the_disposition() {
    let cases: &[(&str, Disposition)] = &[
        ("accept", Disposition::Deliver),
        ("drop", Disposition::Drop),
        (
            r#"reject 550 "5.7.1" "Not here""#,
            Disposition::Reject(postern_filter::RuleReply {
                code: 550,
                enhanced: EnhancedCode::new(5, 7, 1),
                text: "Not here".to_owned(),
            }),
        ),
        (
            r#"reject 451 "4.7.1" "Try later""#,
            Disposition::Reject(postern_filter::RuleReply {
                code: 451,
                enhanced: EnhancedCode::new(4, 7, 1),
                text: "Try later".to_owned(),
            }),
        ),
        (
            r#"bounce 550 "5.7.1" "This person no longer works here""#,
            Disposition::Bounce(postern_filter::RuleReply {
                code: 550,
                enhanced: EnhancedCode::new(5, 7, 1),
                text: "This person no longer works here".to_owned(),
            }),
        ),
        (
            r#"quarantine "attachments""#,
            Disposition::Quarantine {
                name: "attachments".to_owned(),
            },
        ),
    ];
    for (action, want) in cases {
        let out = run(&format!(
            "rule \"r\" {{ if true then {action} }}\nrule \"after\" {{ if true then add-header \"X-After\" \"1\" }}"
        ));
        assert_eq!(&out.disposition, want, "{action}");
        assert_eq!(out.decided_by.as_deref(), Some("r"), "{action}");
        // final: the next rule does not run
        assert_eq!(out.hits.len(), 1, "{action}");
        assert!(out.header_edits.is_empty(), "{action}");
    }
}

#[test]
fn modifying_actions_accumulate_in_rule_order() {
    let out = run(r#"
        rule "one" {
            if true
            then add-header "X-Spam-Flag" "YES"; remove-header "X-Mailer";
                 change-header "X-Score" "6.5"; prefix-subject "[SPAM] "; bcc "audit@corp.example";
                 notify "postmaster@corp.example" template "spam-notice"; require-tls
        }
        rule "two" {
            if spam score > 5
            then prefix-subject "[EXTERNAL] "; redirect "review@corp.example"; bcc "AUDIT@corp.example";
                 add-header "X-Second" "yes"
        }
    "#);
    assert_eq!(out.disposition, Disposition::Deliver);
    assert_eq!(out.decided_by, None);
    assert_eq!(
        out.hits,
        vec![
            RuleHit {
                rule: "one".into(),
                origin: "test.rules".into(),
                line: 2
            },
            RuleHit {
                rule: "two".into(),
                origin: "test.rules".into(),
                line: 8
            }
        ]
    );
    assert_eq!(
        out.header_edits,
        vec![
            HeaderEdit::Add {
                name: "X-Spam-Flag".into(),
                value: "YES".into()
            },
            HeaderEdit::Remove {
                name: "X-Mailer".into()
            },
            HeaderEdit::Set {
                name: "X-Score".into(),
                value: "6.5".into()
            },
            HeaderEdit::Add {
                name: "X-Second".into(),
                value: "yes".into()
            },
        ]
    );
    // the later prefix goes in front
    assert_eq!(out.subject_prefix.as_deref(), Some("[EXTERNAL] [SPAM] "));
    assert_eq!(out.redirect.as_deref(), Some("review@corp.example"));
    // the same address twice (case-insensitive) is one bcc
    assert_eq!(out.bcc, vec!["audit@corp.example".to_owned()]);
    assert_eq!(
        out.notify,
        vec![Notify {
            address: "postmaster@corp.example".into(),
            template: "spam-notice".into(),
            rule: "one".into()
        }]
    );
    assert!(out.require_tls);
}

#[test]
fn the_same_prefix_is_applied_once() {
    let out = run(r#"
        rule "a" { if true then prefix-subject "[SPAM] " }
        rule "b" { if true then prefix-subject "[SPAM] " }
    "#);
    assert_eq!(out.subject_prefix.as_deref(), Some("[SPAM] "));
}

#[test]
fn redirect_last_one_wins() {
    let out = run(r#"
        rule "a" { if true then redirect "one@corp.example" }
        rule "b" { if true then redirect "two@corp.example" }
    "#);
    assert_eq!(out.redirect.as_deref(), Some("two@corp.example"));
}

#[test]
fn edits_before_a_final_action_are_kept_and_later_rules_skipped() {
    let out = run(r#"
        rule "tag"   { if true then add-header "X-Tagged" "1" }
        rule "hold"  { if attachment filename matches "*.exe" then add-header "X-Held" "1"; quarantine "attachments" }
        rule "later" { if true then add-header "X-Later" "1" }
    "#);
    assert_eq!(
        out.disposition,
        Disposition::Quarantine {
            name: "attachments".into()
        }
    );
    assert_eq!(out.decided_by.as_deref(), Some("hold"));
    let names: Vec<_> = out
        .header_edits
        .iter()
        .map(|e| match e {
            HeaderEdit::Add { name, .. } => name.as_str(),
            _ => "?",
        })
        .collect();
    assert_eq!(names, vec!["X-Tagged", "X-Held"]);
}

#[test]
fn stop_ends_evaluation_without_deciding() {
    let out = run(r#"
        rule "first" { if true then add-header "X-A" "1"; stop }
        rule "second" { if true then drop }
    "#);
    assert_eq!(out.disposition, Disposition::Deliver);
    assert_eq!(out.decided_by.as_deref(), Some("first"));
    assert_eq!(out.hits.len(), 1);
    // a stop in a rule that does not match stops nothing
    let out = run(r#"
        rule "first" { if dkim is pass then stop }
        rule "second" { if true then drop }
    "#);
    assert_eq!(out.disposition, Disposition::Drop);
}

#[test]
fn stop_may_follow_a_final_action() {
    // the brief's example form: `bounce …; stop`
    let out = run(r#"rule "x" { if true then bounce 550 "5.7.1" "gone"; stop }"#);
    assert!(matches!(out.disposition, Disposition::Bounce(_)));
}

#[test]
fn accept_ends_evaluation_and_delivers() {
    let out = run(r#"
        rule "allow" { if sender-group is "ALLOWLIST" then accept }
        rule "spam" { if spam score >= 5 then quarantine "spam" }
    "#);
    assert_eq!(out.disposition, Disposition::Deliver);
    assert_eq!(out.decided_by.as_deref(), Some("allow"));
}

#[test]
fn conditions_see_the_message_as_received() {
    // rule "a" adds X-Flag; rule "b" tests it and must not see it
    let out = run(r#"
        rule "a" { if true then add-header "X-Flag" "1"; remove-header "X-Mailer" }
        rule "b" { if header "X-Flag" exists then drop }
        rule "c" { if header "X-Mailer" exists then add-header "X-Seen" "1" }
    "#);
    assert_eq!(out.disposition, Disposition::Deliver);
    assert_eq!(out.hits.len(), 2);
}

#[test]
fn outcome_prints_and_serializes() {
    let out = run(r#"
        rule "tag" { if spam score >= 5 then add-header "X-Spam-Flag" "YES"; prefix-subject "[SUSPECTED SPAM] "; require-tls }
        rule "hold" { if attachment filename matches "*.exe" then quarantine "attachments" }
    "#);
    assert_eq!(
        out.to_string(),
        "quarantine \"attachments\" (rule \"hold\")\n  add-header \"X-Spam-Flag\" \"YES\"\n  prefix-subject \"[SUSPECTED SPAM] \"\n  require-tls"
    );
    let json = serde_json::to_value(&out).expect("json");
    assert_eq!(json["disposition"]["disposition"], "quarantine");
    assert_eq!(json["disposition"]["name"], "attachments");
    assert_eq!(json["header_edits"][0]["edit"], "add");
    assert_eq!(json["hits"][1]["rule"], "hold");
    assert_eq!(json["require_tls"], true);

    let out = run(r#"rule "no" { if true then reject 550 "5.7.1" "Go away" }"#);
    assert_eq!(
        out.to_string(),
        "reject 550 \"5.7.1\" \"Go away\" (rule \"no\")"
    );
    let json = serde_json::to_value(&out).expect("json");
    assert_eq!(json["disposition"]["enhanced"], "5.7.1");
    assert_eq!(json["disposition"]["code"], 550);
}

#[test]
fn referenced_names_are_listed_for_the_caller() {
    let rs = common::rules(
        r#"
        rule "a" { if sender in dictionary "ex-employees" or body dictionary "spam-words" score >= 3 then quarantine "hr" }
        rule "b" { if recipient in dictionary "ex-employees" then notify "hr@corp.example" template "left"; quarantine "hr-2" }
    "#,
    );
    assert_eq!(
        rs.referenced_dictionaries().into_iter().collect::<Vec<_>>(),
        vec!["ex-employees", "spam-words"]
    );
    assert_eq!(
        rs.referenced_quarantines().into_iter().collect::<Vec<_>>(),
        vec!["hr", "hr-2"]
    );
    assert_eq!(
        rs.referenced_templates().into_iter().collect::<Vec<_>>(),
        vec!["left"]
    );
    assert_eq!(rs.len(), 2);
    assert_eq!(
        rs.rule_names().collect::<Vec<_>>(),
        vec![("a", 2), ("b", 3)]
    );
}

#[test]
fn missing_names_are_reported_where_they_are_used() {
    let rs = RuleSet::parse(
        r#"rule "a" { if sender in dictionary "ex-employees" then quarantine "hr" }
rule "b" {
    if body dictionary "spam-words" score >= 3
    then notify "hr@corp.example" template "left"; quarantine "hr"
}"#,
        "rules.txt",
    )
    .expect("parses");
    let errors = rs.check_names(|kind, name| match kind {
        NameKind::Dictionary => name == "ex-employees",
        NameKind::Quarantine => false,
        NameKind::Template => true,
    });
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            r#"rules.txt:1:67: no quarantine named "hr" is configured"#,
            r#"rules.txt:3:24: no dictionary named "spam-words" is configured"#,
            r#"rules.txt:4:63: no quarantine named "hr" is configured"#,
        ]
    );
    assert!(rs.check_names(|_, _| true).is_empty());
    assert_eq!(rs.name_references().len(), 5);
}

#[test]
fn several_files_make_one_rule_set() {
    let a = r#"rule "tag" { if true then add-header "X-A" "1" }
rule "stop-here" { if header "X-Stop" exists then stop }"#;
    let b = r#"# second file
rule "hold" { if attachment filename matches "*.exe" then quarantine "attachments" }"#;
    let rs = RuleSet::parse_files(&[(a, "a.rules"), (b, "b.rules")]).expect("parses");
    assert_eq!(
        rs.rules().collect::<Vec<_>>(),
        vec![
            ("tag", "a.rules", 1),
            ("stop-here", "a.rules", 2),
            ("hold", "b.rules", 2)
        ]
    );
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let out = postern_filter::evaluate(&rs, &f);
    assert_eq!(out.hits[1].origin, "b.rules");
    assert!(matches!(out.disposition, Disposition::Quarantine { .. }));
    let report = postern_filter::dry_run(&rs, &f).to_string();
    assert!(
        report.contains(r#"rule "hold" (b.rules:2) matched"#),
        "{report}"
    );

    // errors name their file; a rule name is unique across files
    let bad = r#"rule "tag" { if true then quarantine "Bad" }"#;
    let errors = RuleSet::parse_files(&[(a, "a.rules"), (bad, "c.rules")]).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(
        shown[0].starts_with("c.rules:1:1: rule name \"tag\" is used twice (first at a.rules:1)"),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("c.rules:1:38: \"Bad\" is not a quarantine name"),
        "{shown:?}"
    );
    // check_names points into the right file
    let names = rs.check_names(|_, _| false);
    assert_eq!(
        names[0].to_string(),
        r#"b.rules:2:70: no quarantine named "attachments" is configured"#
    );
}

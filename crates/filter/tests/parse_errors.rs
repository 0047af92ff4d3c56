//! Parse errors: every error of a file is reported, each at its line and column with
//! what was expected or allowed; value validation (reply codes, enhanced codes, header
//! names and values, addresses, names, regexes, verdict words, TLS versions); the bounds
//! on size, rule count, nesting and regex size; odd inputs never panic.

use std::fmt::Write as _;

use postern_filter::{MAX_ERRORS, MAX_RULES, MAX_SOURCE, ParseError, RuleSet};

fn errors(src: &str) -> Vec<ParseError> {
    match RuleSet::parse(src, "bad.rules") {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e,
    }
}

/// (line, column, a piece of the message) for each error, in order.
fn check(src: &str, want: &[(u32, u32, &str)]) {
    let got = errors(src);
    let rendered: Vec<String> = got.iter().map(ToString::to_string).collect();
    assert_eq!(got.len(), want.len(), "errors:\n{}", rendered.join("\n"));
    for (e, (line, column, piece)) in got.iter().zip(want) {
        assert_eq!((e.line, e.column), (*line, *column), "{e}");
        assert!(e.message.contains(piece), "{e} should mention {piece:?}");
        assert_eq!(e.origin, "bad.rules");
    }
}

#[test]
fn every_error_of_a_file_is_reported_with_its_position() {
    let src = r#"# a file with one mistake per rule
rule "syntax" {
    if sender iz "x"
    then drop
}
rule "code" { if true then reject 250 "2.0.0" "ok" }
rule "header" { if header "Bad Name" exists then add-header "X-A" "a\nb" }
rule "regex" { if body matches /(unclosed/ then drop }
rule "regex" { if true then drop }
rule "after-final" { if true then drop; add-header "X-B" "y" }
rule "address" { if true then redirect "not an address" }
rule "quarantine" { if true then quarantine "bad name!" }
rule "verdict" { if dmarc is fial then drop }
rule "flag" { if body matches /x/q then drop }
rule "version" { if tls version >= "1.4" then drop }
rule "bounce" { if true then bounce 450 "4.7.1" "later" }
rule "class" { if true then reject 550 "4.7.1" "x" }
rule "421" { if true then reject 421 "4.7.1" "bye" }
rule "text" { if true then reject 550 "5.7.1" "two\r\nlines" }
rule "dict" { if sender in dictionary "No-Capitals" then drop }
"#;
    check(
        src,
        &[
            (
                3,
                15,
                "expected `exists`, `is`, `contains`, `matches` or `in dictionary \"name\"`, found `iz`",
            ),
            (6, 35, "bad reply code 250"),
            (6, 39, "bad enhanced status code \"2.0.0\""),
            (7, 27, "not a header field name"),
            (7, 67, "may not contain CR, LF"),
            (8, 32, "bad regex"),
            (9, 1, "rule name \"regex\" is used twice (first at line 8)"),
            (
                10,
                41,
                "`add-header \"X-B\" \"y\"` follows a final action (line 10, column 35)",
            ),
            (11, 40, "not a valid address"),
            (12, 45, "not a quarantine name"),
            (13, 30, "not an authentication result"),
            (14, 31, "bad regex flag `q`"),
            (15, 36, "not a TLS version"),
            (16, 37, "a bounce needs a 5xx code"),
            (17, 40, "the first digits must agree"),
            (18, 34, "bad reply code 421"),
            (19, 47, "printable ASCII"),
            (20, 39, "not a dictionary name"),
        ],
    );
}

#[test]
fn syntax_errors_say_what_was_expected() {
    check(
        r#"rule "a" { if then drop }"#,
        &[(1, 15, "expected a condition: sender, recipient")],
    );
    check(
        r#"rule "a" { if true drop }"#,
        &[(1, 20, "expected `and`, `or`, `)` or `then`")],
    );
    check(
        r#"rule "a" { if true then explode }"#,
        &[(1, 25, "expected an action: accept, drop")],
    );
    check(
        r#"rule "a" { if (true then drop }"#,
        &[(1, 21, "expected `and`, `or` or `)`")],
    );
    check(
        r"rule a { if true then drop }",
        &[(1, 6, "the rule's name in double quotes")],
    );
    check(
        r#"rule "a" if true then drop"#,
        &[(1, 10, "`{` after the rule name")],
    );
    check(
        r#"rule "a" { if true then drop"#,
        &[(1, 29, "found end of file")],
    );
    check(
        r#"rule "a" { if true then drop drop }"#,
        &[(1, 30, "`;` and another action, or `}`")],
    );
    check(
        r#"rule "a" { if attachment colour is "red" then drop }"#,
        &[(1, 26, "text, filename, declared-type")],
    );
    check(
        r#"rule "a" { if size is "big" then drop }"#,
        &[(1, 23, "expected a number")],
    );
    check(
        r#"rule "a" { if size contains "x" then drop }"#,
        &[(1, 20, "a comparison")],
    );
    check(
        r#"rule "a" { if sender dictionary "d" score > 1 then drop }"#,
        &[(1, 22, "expected `exists`, `is`")],
    );
    check(
        r#"rule "a" { if spam is 5 then drop }"#,
        &[(1, 20, "`score` or `action` after `spam`")],
    );
    check(
        r#"rule "a" { if true then reject "5.7.1" "x" }"#,
        &[(1, 32, "a reply code such as 550")],
    );
    check(
        r#"rule "a" { if true then notify "a@b.example" "t" }"#,
        &[(1, 46, "`template \"name\"`")],
    );
    check(
        r"garbage",
        &[(1, 1, "expected `rule \"name\" { if … then … }`")],
    );
}

#[test]
fn lexical_errors_are_reported_too() {
    check(
        "rule \"a\" { if subject is \"open\n then drop }\nrule \"b\" { if size > 10X then drop }\nrule \"c\" { if body matches /x then drop }\nrule \"d\" { if true then add-header \"X\" \"\\q\" }",
        &[
            (1, 26, "unterminated string"),
            (3, 22, "bad number `10X`"),
            (4, 28, "unterminated regex"),
            (5, 41, "unknown escape `\\q`"),
        ],
    );
}

#[test]
fn one_syntax_error_skips_only_its_rule() {
    let src = r#"
rule "broken" { if sender is then drop }
rule "fine" { if true then drop }
rule "broken-too" { if nonsense then drop }
"#;
    let e = errors(src);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!((e[0].line, e[1].line), (2, 4));
}

#[test]
fn codes_and_values_that_are_allowed() {
    let ok = r#"
rule "a" { if true then reject 554 "5.7.0" "Message refused by policy" }
rule "b" { if true then reject 450 "4.2.0" "Try again later" }
rule "c" { if true then bounce 550 "5.1.1" "No such user here" }
rule "d" { if true then add-header "X-Tab" "a	b"; change-header "X-Ok" "ünïcode fine" }
rule "e" { if true then redirect "first.last+tag@sub.corp.example"; bcc "\"quoted local\"@corp.example" }
rule "f" { if true then quarantine "spam_2026-v1" }
rule "g" { if tls version >= "TLSv1.2" and tls version < 1.3 then drop }
rule "h" { if size > 10MiB or size > 500k or size > 1G then drop }
rule "i" { if body matches /a\/b/imsx then drop }
"#;
    RuleSet::parse(ok, "ok.rules").expect("all of these are valid");
}

#[test]
fn source_size_bound() {
    let big = format!("# {}\n", "x".repeat(MAX_SOURCE));
    let e = errors(&big);
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("at most 4194304 bytes"), "{}", e[0]);
}

#[test]
fn rule_count_bound() {
    let mut src = String::new();
    for i in 0..=MAX_RULES {
        writeln!(src, "rule \"r{i}\" {{ if true then stop }}").expect("write to a String");
    }
    let e = errors(&src);
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("more than 10000 rules"), "{}", e[0]);
    assert_eq!(e[0].line, u32::try_from(MAX_RULES).unwrap() + 1);
    // exactly the limit is fine
    let at_limit = src.lines().take(MAX_RULES).collect::<Vec<_>>().join("\n");
    assert_eq!(
        RuleSet::parse(&at_limit, "x").expect("parses").len(),
        MAX_RULES
    );
}

#[test]
fn regex_size_bound() {
    let e = errors(r#"rule "a" { if body matches /(\w{100}){100}/ then drop }"#);
    assert!(e[0].message.contains("compiles to more than"), "{}", e[0]);
}

#[test]
fn error_count_bound() {
    let src = "rule \"a\" { if true then quarantine \"!\" }\n".repeat(300);
    let e = errors(&src.replace("rule \"a\"", "rule \"a\" "));
    assert_eq!(e.len(), MAX_ERRORS + 1);
    assert!(e[MAX_ERRORS].message.contains("the rest are not reported"));
}

#[test]
fn odd_inputs_do_not_panic() {
    for src in [
        "",
        "}",
        "{",
        "rule",
        "rule \"",
        "\"",
        "/",
        "/x/",
        "-",
        "-.",
        "1e999",
        "rule \"a\" { if size > 99999999999999999999999999999999999999K then drop }",
        "rule \"a\" { if true then reject 99999999999 \"5.7.1\" \"x\" }",
        "rule \"a\" { if true then reject 550.5 \"5.7.1\" \"x\" }",
        "rule \"a\" { if true then reject 550 \"5.7.1.1\" \"x\" }",
        "rule \"a\" { if true then reject 550 \"5.7777.1\" \"x\" }",
        "rule \"é\" { if subject contains \"\" then drop }",
        "rule \"a\" { if subject contains (\"a\", ) then drop }",
        "rule \"a\" { if dmarc is () then drop }",
        "rule \"a\" { if \u{0} then drop }",
        "rule \"a\" { if subject is \"\\u{110000}\" then drop }",
        "rule \"a\" { if subject is \"\\u{D800}\" then drop }",
        "rule \"a\" { if subject is \"\\u{41\" then drop }",
        &"(".repeat(100_000),
        &"not ".repeat(100_000),
        &"rule \"a\" { if ".repeat(1000),
    ] {
        let _ = RuleSet::parse(src, "odd");
    }
}

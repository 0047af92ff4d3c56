//! Every condition of the filter language, each with cases that hold and cases that do
//! not, against one fixed message and session (tests/common). Dictionary conditions are
//! in dictionaries.rs, MIME-derived ones from real messages in mime.rs.

mod common;

use common::{Dicts, facts, holds, message, recipients, spam, tls, virus};
use postern_filter::Facts;

fn table(cases: &[(&str, bool)], f: &Facts<'_>) {
    let mut wrong = Vec::new();
    for (cond, want) in cases {
        if holds(cond, f) != *want {
            wrong.push(format!("  {cond}  → expected {want}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "conditions evaluated wrongly:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn envelope() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            // exact, case-insensitive
            (r#"sender is "alice@example.com""#, true),
            (r#"sender is "alice@example.org""#, false),
            (r#"sender is ("x@y.example", "ALICE@example.com")"#, true),
            (r#"sender domain is "example.com""#, true),
            (r#"sender domain is "mail.example.com""#, false),
            (r#"sender domain matches "*.example.com""#, false),
            (r#"sender domain matches "*example.com""#, true),
            // glob: whole value, * and ?
            (r#"sender matches "*@example.com""#, true),
            (r#"sender matches "alic?@*""#, true),
            (r#"sender matches "alice""#, false),
            // regex: unanchored unless anchored
            (r"sender matches /^alice@/i", true),
            (r"sender matches /^alice@/", false),
            (r#"sender contains "alice""#, true),
            (r"sender exists", true),
            // recipient: any of them
            (r#"recipient is "carol@other.example""#, true),
            (r#"recipient domain is "corp.example""#, true),
            (r#"recipient domain is "example.net""#, false),
            (r#"recipient matches "dave@*""#, false),
            (r#"not recipient matches "dave@*""#, true),
            (r#"helo is "mail.example.com""#, true),
            (r"helo matches /\.example\.org$/", false),
            (r#"client-ip is "192.0.2.7""#, true),
            (r#"client-ip matches "192.0.2.*""#, true),
            (r#"client-ip matches "198.51.100.*""#, false),
        ],
        &f,
    );
}

#[test]
fn null_sender() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = Facts {
        sender: "",
        ..facts(&msg, &rcpts, &tls, &spam, &dicts)
    };
    table(
        &[
            (r#"sender is """#, true),
            ("sender exists", false),
            ("not sender exists", true),
            (r"sender domain exists", false),
            (r#"sender matches "*@*""#, false),
        ],
        &f,
    );
}

#[test]
fn headers_and_text() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            (r#"header "X-Mailer" exists"#, true),
            (r#"header "x-mailer" exists"#, true),
            (r#"header "X-Spam-Flag" exists"#, false),
            (r#"not header "X-Spam-Flag" exists"#, true),
            (r#"header "X-Mailer" matches /^PHPMailer/"#, true),
            (r#"header "X-Mailer" contains "phpmailer""#, true),
            (r#"header "X-Mailer" contains "mailer""#, false), // word boundary
            (r#"header "X-Mailer" is "phpmailer 6.1""#, true),
            // any occurrence of a repeated field
            (r#"header "Received" matches /b\.example/"#, true),
            (r#"header "From" matches /ceo@example\.com/"#, true),
            (r#"subject contains "invoice""#, true),
            (r#"subject contains "invoic""#, false),
            (r#"subject contains ("receipt", "URGENT")"#, true),
            (r#"subject matches "invoice*""#, true),
            (r"subject matches /^Invoice \d+/", true),
            (r"subject exists", true),
            // body: case-insensitive words and phrases, any whitespace between words
            (r#"body contains "free money""#, true),
            (r#"body contains "fre""#, false),
            (r#"body contains "wir""#, false),
            (r#"body contains ("lottery", "wire")"#, true),
            (r#"body contains "+1 555""#, true),
            (r"body matches /call \+1 \d{3}/i", true),
            (r"body matches /call \+1 \d{3}/", false),
            (r#"attachment text contains "apollo""#, true),
            (r#"attachment text contains "money""#, false),
            (r"attachment text matches /project\s+apollo/", true),
        ],
        &f,
    );
}

#[test]
fn attachments_and_size() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            (r"attachment filename matches /\.(exe|scr|js)$/i", true),
            (r#"attachment filename matches "*.EXE""#, true),
            (r#"attachment filename matches "*.zip""#, false),
            (r#"attachment filename is "notes.txt""#, true),
            (r#"attachment name is "notes.txt""#, true),
            (
                r#"attachment declared-type is "application/octet-stream""#,
                true,
            ),
            (r#"attachment type matches "image/*""#, false),
            (
                r#"attachment detected-type is "application/x-msdownload""#,
                true,
            ),
            (
                r#"attachment detected-type is ("image/png", "image/gif")"#,
                false,
            ),
            (r"attachment size > 32K", true),
            (r"attachment size > 40000", false),
            (r"attachment size >= 40000", true),
            (r"attachment size < 1K", true),
            (r"attachment count = 2", true),
            (r"attachment count is 2", true),
            (r"attachment count > 2", false),
            (r"attachment count != 0", true),
            (r"size > 50K", true),
            (r"message size > 1M", false),
            (r"size <= 52000", true),
        ],
        &f,
    );
}

#[test]
fn session_and_policy() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            (r#"sender-group is "ALLOWLIST""#, true),
            (r#"sender-group is "allowlist""#, true),
            (r#"sender-group is "BLOCKLIST""#, false),
            (r#"policy is "TRUSTED""#, true),
            (r#"listener is "inbound""#, true),
            (r#"listener is "submission""#, false),
            (r"authenticated", false),
            (r"not authenticated", true),
            (r"auth-user exists", false),
            (r#"authenticated user is "alice""#, false),
            (r"spf is pass", true),
            (r"dkim is fail", true),
            (r#"dmarc is "fail""#, true),
            (r"dmarc is (none, fail)", true),
            (r"dmarc is pass", false),
            (r"not dmarc is pass", true),
        ],
        &f,
    );
    let f = Facts {
        auth_user: Some("alice"),
        sender_group: None,
        dmarc: None,
        ..f
    };
    table(
        &[
            (r"authenticated", true),
            (r#"authenticated user is "ALICE""#, true),
            (r#"auth-user matches "ali*""#, true),
            (r#"sender-group is "ALLOWLIST""#, false),
            (r"sender-group exists", false),
            // a verdict we do not have satisfies no test, so `not` of it holds
            (r"dmarc is fail", false),
            (r"not dmarc is pass", true),
            (r"dmarc exists", false),
        ],
        &f,
    );
}

#[test]
fn tls_facts() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            (r"tls", true),
            (r"not tls", false),
            (r#"tls version >= "1.2""#, true),
            (r"tls version >= 1.3", true),
            (r#"tls version > "TLSv1.3""#, false),
            (r#"tls version is "1.3""#, true),
            (r#"tls version < "1.3""#, false),
            (r"tls cipher matches /AES_128_GCM/", true),
            (r#"tls cipher is "TLS13_CHACHA20_POLY1305_SHA256""#, false),
            (r"tls client-certificate verified", false),
        ],
        &f,
    );
    let verified = postern_filter::TlsInfo {
        version: "TLSv1.2".to_owned(),
        client_cert_verified: true,
        ..tls.clone()
    };
    let f2 = Facts {
        tls: Some(&verified),
        ..f
    };
    table(
        &[
            (r"tls client-certificate verified", true),
            (r#"tls version >= "1.3""#, false),
            (r#"tls version = "1.2""#, true),
        ],
        &f2,
    );
    let plain = Facts { tls: None, ..f };
    table(
        &[
            (r"tls", false),
            (r"not tls", true),
            (r#"tls version >= "1.0""#, false),
            (r"tls cipher exists", false),
            (r"tls client-certificate verified", false),
        ],
        &plain,
    );
}

#[test]
fn spam_and_virus() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            (r"spam score >= 5", true),
            (r"spam score > 6.5", false),
            (r"spam score >= 6.5", true),
            (r"spam score < -1", false),
            (r#"spam action is "add header""#, true),
            (r#"spam action is ("reject", "soft reject")"#, false),
            (r"virus infected", false),
            (r"virus name exists", false),
            (r"not virus infected", true),
        ],
        &f,
    );
    let v = virus();
    let infected = Facts {
        virus: Some(&v),
        spam: None,
        ..f
    };
    table(
        &[
            (r"virus infected", true),
            (r"virus name matches /^eicar/i", true),
            (r#"virus name is "Eicar-Signature""#, true),
            // not scanned for spam: no score satisfies any comparison
            (r"spam score >= 0", false),
            (r"spam score < 100", false),
            (r"spam action exists", false),
        ],
        &infected,
    );
}

#[test]
fn boolean_logic_and_precedence() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            ("true", true),
            ("not true", false),
            ("not not true", true),
            // and binds tighter than or: true or (false and false)
            ("spf is pass or dkim is pass and dmarc is pass", true),
            // (true or false) and false
            ("(spf is pass or dkim is pass) and dmarc is pass", false),
            // not binds tighter than and: (not false) and true
            ("not dkim is pass and spf is pass", true),
            ("not (dkim is fail and spf is pass)", false),
            ("not dkim is fail or spf is pass", true),
            (
                "spf is pass and (dkim is pass or (dmarc is fail and tls))",
                true,
            ),
            ("((((true))))", true),
            ("SPF IS PASS AND NOT DKIM IS PASS", true),
        ],
        &f,
    );
}

#[test]
fn nesting_limit_is_enforced_but_deep_nesting_within_it_works() {
    let (msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    let ok = format!("{}true{}", "(".repeat(60), ")".repeat(60));
    assert!(holds(&ok, &f));
    let too_deep = format!(
        "rule \"t\" {{ if {}true{} then drop }}",
        "not ".repeat(100),
        ""
    );
    let errors = postern_filter::RuleSet::parse(&too_deep, "deep.rules").unwrap_err();
    assert!(
        errors[0].message.contains("nested deeper than 64"),
        "{errors:?}"
    );
}

#[test]
fn word_boundaries_in_any_script() {
    let (mut msg, rcpts, tls, spam, dicts) = (message(), recipients(), tls(), spam(), Dicts::new());
    msg.body_text =
        "Квартальная отчётность: см. отчёт. freex free_money win$$$now Grüße aus Köln; 東京 office"
            .to_owned();
    let f = facts(&msg, &rcpts, &tls, &spam, &dicts);
    table(
        &[
            // a word is not found inside a longer word, in any script
            (r#"body contains "отчёт""#, true),
            (r#"body contains "ОТЧЁТ""#, true),
            (r#"body contains "квартал""#, false),
            (r#"body contains "отчётность""#, true),
            (r#"body contains "grüsse""#, false),
            (r#"body contains "GRÜSSE""#, false),
            (r#"body contains "grüße""#, true),
            (r#"body contains "köln""#, true),
            // the first candidate fails its boundary, a later one holds
            (r#"body contains "free""#, false),
            (r#"body contains "freex""#, true),
            // `_` is a word character
            (r#"body contains "money""#, false),
            // a phrase that starts and ends with non-word characters needs no boundary
            (r#"body contains "$$$""#, true),
            (r#"body contains "см.""#, true),
            (r#"body contains "東京""#, true),
            (r#"body contains ("nothing", "aus köln")"#, true),
        ],
        &f,
    );
}

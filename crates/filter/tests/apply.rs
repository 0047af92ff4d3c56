//! Applying an outcome's header edits and subject prefix to a real header section, checked
//! byte for byte and by decoding the result with `postern_content::MessageView` (RFC 2047
//! encoded words for non-ASCII values and prefixes, folding, repeated and folded fields).

use postern_content::{MessageView, ViewLimits};
use postern_filter::{HeaderEdit, Outcome, apply_header_edits};

const HEADER: &str = "Received: from a.example\r\n\tby mx.corp.example; Sun, 6 Dec 2026 20:00:00 +0000\r\n\
From: a@example.org\r\nX-Mailer: PHPMailer\r\n\tcontinued\r\nSubject: Hello\r\nX-Mailer: second\r\nTo: b@corp.example\r\n";

fn outcome(edits: Vec<HeaderEdit>, prefix: Option<&str>) -> Outcome {
    Outcome {
        header_edits: edits,
        subject_prefix: prefix.map(str::to_owned),
        ..Outcome::default()
    }
}

fn add(n: &str, v: &str) -> HeaderEdit {
    HeaderEdit::Add {
        name: n.into(),
        value: v.into(),
    }
}

fn text(header: &[u8], o: &Outcome) -> String {
    String::from_utf8(apply_header_edits(header, o)).expect("utf-8")
}

fn decoded(header: &[u8], o: &Outcome) -> MessageView {
    let mut msg = apply_header_edits(header, o);
    msg.extend_from_slice(b"\r\nbody\r\n");
    MessageView::parse(&msg, &ViewLimits::default())
}

#[test]
fn no_edits_no_change() {
    let o = Outcome::default();
    assert_eq!(apply_header_edits(HEADER.as_bytes(), &o), HEADER.as_bytes());
    let lf = HEADER.replace("\r\n", "\n");
    assert_eq!(apply_header_edits(lf.as_bytes(), &o), lf.as_bytes());
}

#[test]
fn add_remove_change_in_order() {
    let o = outcome(
        vec![
            add("X-Spam-Flag", "YES"),
            HeaderEdit::Remove {
                name: "x-mailer".into(),
            },
            HeaderEdit::Set {
                name: "To".into(),
                value: "review@corp.example".into(),
            },
            HeaderEdit::Set {
                name: "X-Score".into(),
                value: "6.5".into(),
            },
        ],
        None,
    );
    assert_eq!(
        text(HEADER.as_bytes(), &o),
        "Received: from a.example\r\n\tby mx.corp.example; Sun, 6 Dec 2026 20:00:00 +0000\r\n\
From: a@example.org\r\nSubject: Hello\r\nTo: review@corp.example\r\nX-Spam-Flag: YES\r\nX-Score: 6.5\r\n"
    );
}

#[test]
fn change_keeps_the_first_place_and_drops_the_others() {
    let o = outcome(
        vec![HeaderEdit::Set {
            name: "X-MAILER".into(),
            value: "one".into(),
        }],
        None,
    );
    let out = text(HEADER.as_bytes(), &o);
    assert!(
        out.contains("From: a@example.org\r\nX-MAILER: one\r\nSubject: Hello\r\nTo:"),
        "{out}"
    );
    assert_eq!(
        out.matches("X-MAILER").count() + out.matches("X-Mailer").count(),
        1
    );
}

#[test]
fn ascii_prefix() {
    let o = outcome(vec![], Some("[SPAM] "));
    let out = text(HEADER.as_bytes(), &o);
    assert!(out.contains("\r\nSubject: [SPAM] Hello\r\n"), "{out}");
    assert_eq!(decoded(HEADER.as_bytes(), &o).subject, "[SPAM] Hello");
    // no Subject: one is added
    let o = outcome(vec![], Some("[SPAM] "));
    let out = text(b"From: a@example.org\r\n", &o);
    assert_eq!(out, "From: a@example.org\r\nSubject: [SPAM]\r\n");
    // no space after the colon
    let out = text(b"Subject:Hi\r\n", &o);
    assert_eq!(out, "Subject: [SPAM] Hi\r\n");
}

#[test]
fn non_ascii_prefix_before_plain_and_encoded_subjects() {
    let o = outcome(vec![], Some("[Verdächtig] "));
    assert_eq!(decoded(HEADER.as_bytes(), &o).subject, "[Verdächtig] Hello");
    let encoded = b"Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=\r\n";
    assert_eq!(
        decoded(encoded, &o).subject,
        "[Verdächtig] Rechnung für Sie"
    );
    let out = text(encoded, &o);
    assert!(out.lines().all(|l| l.len() <= 78), "{out}");
}

#[test]
fn non_ascii_values_are_encoded_words_and_long_ones_are_folded() {
    let long = "ü".repeat(450); // 900 bytes
    let o = outcome(vec![add("X-Note", "grüße"), add("X-Long", &long)], None);
    let out = text(HEADER.as_bytes(), &o);
    assert!(out.is_ascii());
    assert!(out.lines().all(|l| l.len() <= 78), "{out}");
    let view = decoded(HEADER.as_bytes(), &o);
    let value = |n: &str| {
        view.header(n)
            .next()
            .map(|h| h.decoded.clone())
            .unwrap_or_default()
    };
    assert_eq!(value("X-Note"), "grüße");
    assert_eq!(value("X-Long"), long);
}

#[test]
fn a_header_without_a_final_line_end_gets_one_before_an_added_field() {
    let o = outcome(vec![add("X-A", "1")], None);
    assert_eq!(
        text(b"From: a@example.org", &o),
        "From: a@example.org\r\nX-A: 1\r\n"
    );
}

//! MessageView on MIME edge cases: nested multiparts and forwarded messages,
//! transfer encodings and charsets, RFC 2231 / RFC 2047 file names, broken
//! boundaries, lying Content-Types, and the limits on hostile input.

use base64::Engine as _;
use postern_content::{MessageView, ViewLimits};

fn view(raw: &str) -> MessageView {
    MessageView::parse(raw.as_bytes(), &ViewLimits::default())
}

fn b64(bytes: &[u8]) -> String {
    let s = base64::engine::general_purpose::STANDARD.encode(bytes);
    // Lines of 76 characters, as RFC 2045 §6.8 wants.
    s.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// RFC 2046 §5.1: mixed { alternative { plain, html }, pdf, message/rfc822 { mixed { plain, zip } } }.
#[test]
fn nested_multiparts_and_a_forwarded_message() {
    let raw = format!(
        "From: a@example.com\r\n\
Subject: =?UTF-8?Q?Quarterly_r=C3=A9sults?=\r\n\
\x20 and more\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble is ignored\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Plain words here.\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body><p>Html fr<b>ee</b> words&nbsp;&amp; more</p></body></html>\r\n\
--alt--\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{pdf}\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: Fwd: inner subject\r\n\
Content-Type: multipart/mixed; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
Inner body text.\r\n\
--inner\r\n\
Content-Type: application/zip; name=\"a.zip\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{zip}\r\n\
--inner--\r\n\
--outer--\r\n\
epilogue is ignored\r\n",
        pdf = b64(b"%PDF-1.7\n1 0 obj\n"),
        zip = b64(b"PK\x03\x04\x14\x00\x00\x00payload.txt"),
    );
    let v = view(&raw);
    assert!(!v.truncated);
    assert_eq!(v.size, raw.len() as u64);
    assert_eq!(v.subject, "Quarterly résults and more");
    assert_eq!(v.header("subject").count(), 1);
    assert_eq!(
        v.header("FROM").next().map(|h| h.raw.as_str()),
        Some("a@example.com")
    );
    assert!(
        v.body_text.contains("Plain words here."),
        "{:?}",
        v.body_text
    );
    assert!(
        v.body_text.contains("Html free words & more"),
        "{:?}",
        v.body_text
    );
    assert!(!v.body_text.contains("<b>"));
    assert!(
        !v.body_text.contains("Inner body"),
        "a forwarded message is an attachment"
    );
    assert!(!v.body_text.contains("preamble"));

    let summary: Vec<_> = v
        .attachments
        .iter()
        .map(|a| {
            (
                a.filename.as_deref(),
                a.declared_type.as_str(),
                a.detected_type.as_deref(),
                a.depth,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some("report.pdf"),
                "application/octet-stream",
                Some("application/pdf"),
                1
            ),
            (None, "message/rfc822", None, 1),
            (Some("a.zip"), "application/zip", Some("application/zip"), 3),
        ]
    );
    assert_eq!(v.attachments[0].size, 17);
    let inner = v.attachments[1].text.as_deref().unwrap_or_default();
    assert!(inner.contains("Fwd: inner subject"), "{inner:?}");
    assert!(inner.contains("Inner body text."), "{inner:?}");
    assert_eq!(v.attachments[0].text, None);
}

#[test]
fn transfer_encodings_and_charsets() {
    let raw = format!(
        "Subject: =?ISO-8859-1?Q?caf=E9?=\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=E9 cr=E8me, a soft=\r\n\
\x20break.\r\n\
--b\r\n\
Content-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{cp1252}\r\n\
--b\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Grüße aus Köln\r\n\
--b--\r\n",
        cp1252 = b64(b"\x93quoted\x94 costs \x80 5"),
    );
    let v = view(&raw);
    assert_eq!(v.subject, "café");
    assert_eq!(
        v.body_text,
        "Café crème, a soft break.\n“quoted” costs € 5\nGrüße aus Köln"
    );
    assert!(v.attachments.is_empty());
}

#[test]
fn rfc2231_and_rfc2047_file_names() {
    let raw = "Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment;\r\n\
\tfilename*0*=utf-8''%E2%82%AC%20;\r\n\
\tfilename*1=\"price list\";\r\n\
\tfilename*2=\".pdf\"\r\n\
\r\n\
%PDF-\r\n\
--b\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf\r\n\
\r\n\
%PDF-\r\n\
--b\r\n\
Content-Type: application/pdf;\r\n\
\tname*0*=utf-8''%E2%82;\r\n\
\tname*1*=%AC%20split.pdf\r\n\
\r\n\
%PDF-\r\n\
--b\r\n\
Content-Type: application/octet-stream; name=\"=?UTF-8?B?w7xiZXIuZXhl?=\"\r\n\
\r\n\
MZ\r\n\
--b--\r\n";
    let v = view(raw);
    let names: Vec<_> = v
        .attachments
        .iter()
        .map(|a| a.filename.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            Some("€ price list.pdf"),
            Some("résumé.pdf"),
            Some("€ split.pdf"),
            Some("über.exe")
        ]
    );
    assert_eq!(
        v.attachments[3].detected_type.as_deref(),
        Some("application/x-msdownload")
    );
}

#[test]
fn lying_content_types_are_detected() {
    let raw = format!(
        "Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: image/png; name=cat.png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{zip}\r\n\
--b\r\n\
Content-Type: image/png; name=dog.png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{pe}\r\n\
--b\r\n\
Content-Type: image/png; name=real.png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{png}\r\n\
--b--\r\n",
        zip = b64(b"PK\x03\x04\x14\x00\x08\x00evil.js"),
        pe = b64(&[b"MZ\x90\x00\x03".as_slice(), &vec![0u8; 100_000]].concat()),
        png = b64(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    );
    let v = view(&raw);
    let types: Vec<_> = v
        .attachments
        .iter()
        .map(|a| (a.declared_type.as_str(), a.detected_type.as_deref()))
        .collect();
    assert_eq!(
        types,
        [
            ("image/png", Some("application/zip")),
            ("image/png", Some("application/x-msdownload")),
            ("image/png", Some("image/png")),
        ]
    );
    assert_eq!(
        v.attachments[1].size, 100_005,
        "the whole decoded size is counted"
    );
}

#[test]
fn what_is_an_attachment() {
    let raw = "Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
\r\n\
default type is text/plain (RFC 2045 5.2)\r\n\
--b\r\n\
Content-Type: text/plain; name=notes.txt\r\n\
\r\n\
named text is an attachment\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
Content-Disposition: attachment\r\n\
\r\n\
disposition attachment too\r\n\
--b\r\n\
Content-Type: text/calendar\r\n\
\r\n\
BEGIN:VCALENDAR\r\n\
--b\r\n\
Content-Type: image/gif\r\n\
Content-ID: <logo>\r\n\
\r\n\
GIF89a\r\n\
--b--\r\n";
    let v = view(raw);
    assert_eq!(v.body_text, "default type is text/plain (RFC 2045 5.2)");
    let a: Vec<_> = v
        .attachments
        .iter()
        .map(|a| (a.declared_type.as_str(), a.text.as_deref()))
        .collect();
    assert_eq!(
        a,
        [
            ("text/plain", Some("named text is an attachment")),
            ("text/plain", Some("disposition attachment too")),
            ("text/calendar", Some("BEGIN:VCALENDAR")),
            ("image/gif", None),
        ]
    );
}

#[test]
fn single_part_messages() {
    let v = view("Subject: x\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n");
    assert_eq!(v.body_text, "");
    assert_eq!(v.attachments.len(), 1);
    assert_eq!(v.attachments[0].depth, 0);
    assert_eq!(
        v.attachments[0].detected_type.as_deref(),
        Some("application/pdf")
    );

    let v = view("Subject: no mime\r\n\r\nJust text.\r\n");
    assert_eq!(v.body_text, "Just text.\r\n");
    let v = view("no header section at all\r\n");
    assert_eq!(v.body_text, "no header section at all\r\n");
    assert!(v.headers.is_empty());
    let v = view("");
    assert_eq!(v, MessageView::default());
    let v = view("From alice@example.com Mon Dec  7 12:00:00 2026\r\nSubject: saved\r\n\r\nbody");
    assert_eq!(v.subject, "saved", "an mbox From line is skipped");
    assert_eq!(v.body_text, "body");
}

#[test]
fn missing_boundaries_show_the_body_as_text() {
    // A boundary parameter that never occurs as a delimiter line.
    let v = view("Content-Type: multipart/mixed; boundary=nope\r\n\r\nvisible text\r\n");
    assert_eq!(v.body_text, "visible text\r\n");
    // No boundary parameter at all.
    let v = view("Content-Type: multipart/mixed\r\n\r\nalso visible\r\n");
    assert_eq!(v.body_text, "also visible\r\n");
    // No close delimiter: the last part runs to the end.
    let v = view(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<i>two</i>",
    );
    assert_eq!(v.body_text, "one\ntwo");
}

/// RFC 2046 §5.1.1 says to ignore preambles and epilogues, and a plain one
/// is. One that looks like MIME structure is scanned: boundaries that are
/// prefixes of each other, or two Content-Type fields, let another parser
/// see a part where this one sees an epilogue.
#[test]
fn ambiguous_structure_cannot_hide_text() {
    let v = view(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n\
This is a multi-part message in MIME format.\r\n--b\r\n\r\nshown\r\n--b--\r\nplain epilogue\r\n",
    );
    assert_eq!(
        v.body_text, "shown",
        "ordinary preamble and epilogue ignored"
    );

    // Outer boundary "x--", inner "x----": the inner's first delimiter line
    // is also the outer's close delimiter, so the inner parts land in the
    // outer epilogue.
    let v = view(
        "Content-Type: multipart/mixed; boundary=\"x--\"\r\n\r\n\
--x--\r\nContent-Type: multipart/mixed; boundary=\"x----\"\r\n\r\n\
--x----\r\nContent-Type: text/plain\r\n\r\nhidden words\r\n--x------\r\n",
    );
    assert!(v.body_text.contains("hidden words"), "{:?}", v.body_text);

    // Two Content-Type fields: multipart (first, used here) and text/plain
    // (which a last-wins client uses, showing the preamble).
    let v = view(
        "Content-Type: multipart/alternative; boundary=a\r\nContent-Type: text/plain\r\n\r\n\
preamble words\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>html words</p>\r\n--a--\r\n",
    );
    assert!(v.body_text.contains("preamble words"), "{:?}", v.body_text);
    assert!(v.body_text.contains("html words"), "{:?}", v.body_text);
}

#[test]
fn the_boundary_that_occurs_is_used() {
    let v = view(
        "Content-Type: multipart/mixed; boundary=nowhere; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: application/zip\r\n\r\nPK\x03\x04\r\n--b--\r\n",
    );
    assert_eq!(v.body_text, "one");
    assert_eq!(v.attachments.len(), 1);
}

#[test]
fn digest_parts_default_to_message_rfc822() {
    let v = view(
        "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d\r\n\r\nSubject: two\r\n\r\nsecond\r\n--d--\r\n",
    );
    let texts: Vec<_> = v.attachments.iter().map(|a| a.text.as_deref()).collect();
    assert_eq!(texts, [Some("one\nfirst"), Some("two\nsecond")]);
}

#[test]
fn invisible_characters_do_not_split_words() {
    let v = view(
        "Content-Type: text/html; charset=utf-8\r\n\r\nfr\u{200b}ee m&shy;oney fr\u{ad}ee\r\n",
    );
    assert_eq!(v.body_text.trim(), "free money free");
}

#[test]
fn header_fields_raw_and_decoded() {
    let v = view(
        "Received: from a\r\n\tby b\r\nX-Tag: =?utf-8?b?w6k=?= plain\r\nX-Tag: second\r\nSubject:\r\n\r\nbody",
    );
    let names: Vec<_> = v.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Received", "X-Tag", "X-Tag", "Subject"]);
    assert_eq!(v.headers[0].raw, "from a\tby b");
    assert_eq!(v.headers[1].raw, "=?utf-8?b?w6k=?= plain");
    assert_eq!(v.headers[1].decoded, "é plain");
    let tags: Vec<_> = v.header("x-tag").map(|h| h.decoded.as_str()).collect();
    assert_eq!(tags, ["é plain", "second"]);
    assert_eq!(v.subject, "");
}

// ---- limits ---------------------------------------------------------------

fn many_parts(n: usize) -> String {
    let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..n {
        raw.push_str("--b\r\nContent-Type: application/octet-stream; name=f");
        raw.push_str(&i.to_string());
        raw.push_str(".bin\r\n\r\nx\r\n");
    }
    raw.push_str("--b--\r\n");
    raw
}

#[test]
fn max_parts_is_honoured() {
    let limits = ViewLimits::default();
    let v = MessageView::parse(many_parts(1000).as_bytes(), &limits);
    assert!(v.truncated);
    // The message itself is one of the 500 entities walked.
    assert_eq!(v.attachments.len(), limits.max_parts - 1);
    let v = MessageView::parse(many_parts(10).as_bytes(), &limits);
    assert!(!v.truncated);
    assert_eq!(v.attachments.len(), 10);
}

fn nested(levels: usize) -> String {
    let mut raw = String::new();
    for i in 0..levels {
        raw.push_str("Content-Type: multipart/mixed; boundary=l");
        raw.push_str(&i.to_string());
        raw.push_str("\r\n\r\n--l");
        raw.push_str(&i.to_string());
        raw.push_str("\r\n");
    }
    raw.push_str("Content-Type: application/zip; name=deep.zip\r\n\r\nPK\x03\x04\r\n");
    for i in (0..levels).rev() {
        raw.push_str("--l");
        raw.push_str(&i.to_string());
        raw.push_str("--\r\n");
    }
    raw
}

#[test]
fn max_depth_is_honoured() {
    let v = view(&nested(30));
    assert!(v.truncated);
    assert!(v.attachments.is_empty(), "the zip is 30 levels down");
    let v = view(&nested(5));
    assert!(!v.truncated);
    assert_eq!(v.attachments.len(), 1);
    assert_eq!(v.attachments[0].depth, 5);

    // message/rfc822 inside message/rfc822, 30 deep.
    let mut raw = String::new();
    for _ in 0..30 {
        raw.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("Subject: bottom\r\n\r\ntext\r\n");
    let v = view(&raw);
    assert!(v.truncated);
    assert_eq!(v.attachments.len(), 21, "depths 0..=20");
    assert!(v.attachments.iter().all(|a| a.depth <= 20));
}

#[test]
fn max_text_is_honoured() {
    let limits = ViewLimits {
        max_text: 1000,
        ..ViewLimits::default()
    };
    let body = "é".repeat(3000);
    let raw = format!(
        "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b\r\nContent-Type: text/plain; name=a.txt\r\n\r\n{body}\r\n--b\r\nContent-Type: text/plain; name=b.txt\r\n\r\n{body}\r\n--b--\r\n",
        b64(body.as_bytes())
    );
    let v = MessageView::parse(raw.as_bytes(), &limits);
    assert!(v.truncated);
    assert!(
        v.body_text.len() <= 1000 && v.body_text.len() > 900,
        "{}",
        v.body_text.len()
    );
    assert!(v.body_text.chars().all(|c| c == 'é'));
    let attachment_text: usize = v
        .attachments
        .iter()
        .filter_map(|a| a.text.as_ref())
        .map(String::len)
        .sum();
    assert!(attachment_text <= 1000, "{attachment_text}");
    assert_eq!(v.attachments[1].size, body.len() as u64);
}

/// 50 MiB of hostile structure: the limits hold (parts, depth, text, headers).
#[test]
fn fifty_mib_hostile_messages() {
    const MIB50: usize = 50 * 1024 * 1024;
    let limits = ViewLimits::default();

    // Millions of empty parts.
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    while raw.len() < MIB50 {
        raw.extend_from_slice(b"--b\r\n\r\n");
    }
    let v = MessageView::parse(&raw, &limits);
    assert!(v.truncated);
    assert!(v.attachments.len() < limits.max_parts);
    assert!(v.body_text.len() <= limits.max_text);

    // Millions of header fields, and one huge one.
    let mut raw = Vec::with_capacity(MIB50 + 100);
    while raw.len() < MIB50 / 2 {
        raw.extend_from_slice(b"X-A: b\r\n");
    }
    raw.extend_from_slice(b"Subject: ");
    raw.resize(MIB50, b'z');
    raw.extend_from_slice(b"\r\n\r\nbody");
    let v = MessageView::parse(&raw, &limits);
    assert!(v.truncated);
    assert_eq!(v.headers.len(), postern_content::mime::MAX_HEADER_FIELDS);
    assert!(v.subject.len() <= limits.max_text);

    // One 50 MiB base64 text body and message/rfc822 nesting a million deep.
    let mut raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    while raw.len() < MIB50 {
        raw.extend_from_slice(
            b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n",
        );
    }
    let v = MessageView::parse(&raw, &limits);
    assert!(v.truncated);
    assert_eq!(v.body_text.len(), limits.max_text);
    let mut raw = Vec::with_capacity(MIB50);
    while raw.len() < MIB50 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    let v = MessageView::parse(&raw, &limits);
    assert!(v.truncated);
    assert_eq!(v.attachments.len(), limits.max_depth + 1);
}

/// Encoded forwarded messages nested in encoded forwarded messages: each
/// level would be a decoded copy of nearly the whole message; the copies are
/// paid from a budget of the message's size, so only the first is walked.
#[test]
fn encoded_nested_messages_do_not_multiply_memory() {
    let mut raw = String::new();
    for _ in 0..20 {
        raw.push_str(
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        );
    }
    raw.push_str("Subject: bottom\r\n\r\n");
    raw.push_str(&"A".repeat(1 << 20));
    let v = view(&raw);
    assert!(v.truncated);
    assert_eq!(
        v.attachments.len(),
        2,
        "the first copy is walked, the second is not"
    );
    assert!(v.attachments[1].text.is_none());
    assert!(v.attachments[1].size > 1 << 20);

    // One base64-encoded forwarded message is walked as usual.
    let inner = "Subject: inner\r\n\r\nforwarded words\r\n";
    let v = view(&format!(
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(inner.as_bytes())
    ));
    assert!(!v.truncated);
    assert_eq!(
        v.attachments[0].text.as_deref(),
        Some("inner\nforwarded words\r\n")
    );
}

/// Truncations and byte flips of real messages never panic.
#[test]
fn mutated_messages_never_panic() {
    let seeds = [
        many_parts(20),
        nested(8),
        "Subject: =?utf-8?q?x?=\r\nContent-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b\r\nContent-Type: text/html; charset=\"shift_jis\"\r\nContent-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1*=%AC\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>=E2=82 &#x1F600; &#99999999;</p>=\r\n--a b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaQ0KDQpib2R5\r\n--a b--\r\n".to_owned(),
        "Content-Type: multipart/mixed; boundary=\"x--\"; boundary=y\r\nContent-Type: text/plain\r\n\r\n--x--\r\nContent-Type: multipart/mixed; boundary=\"x----\"\r\n\r\n--x----\r\nContent-Type: text/html\r\n\r\n&ouml;<b>hidden</b>\r\n--x------\r\n".to_owned(),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let specials = b"-\r\n:;=\"'*%?<>&@ \t";
    for seed in &seeds {
        for _ in 0..300 {
            let mut bytes = seed.as_bytes().to_vec();
            let flips = 1 + next() % 8;
            for _ in 0..flips {
                let at = usize::try_from(next() % bytes.len() as u64).expect("fits");
                let r = next();
                bytes[at] = if r % 2 == 0 {
                    specials[usize::try_from(r / 2 % specials.len() as u64).expect("fits")]
                } else {
                    u8::try_from(r % 256).expect("< 256")
                };
            }
            let cut = usize::try_from(next() % (bytes.len() as u64 + 1)).expect("fits");
            let v = MessageView::parse(&bytes[..cut], &ViewLimits::default());
            assert!(v.attachments.len() <= 500);
            let _ = MessageView::parse(&bytes, &ViewLimits::default());
        }
    }
}

//! Conditions on real messages: MIME text built here, decoded by
//! `postern_content::MessageView::parse`, tested by rules. Covers nested multiparts, a
//! forwarded message (message/rfc822) with its own attachment, RFC 2047 encoded words in
//! the subject and in a `name` parameter, RFC 2231 `filename*` (percent-encoded UTF-8 and
//! continuations), quoted-printable and HTML body text, base64 attachments whose content
//! type lies (detected from magic bytes).

mod common;

use common::{Dicts, holds, rules};
use postern_content::{MessageView, ViewLimits};
use postern_filter::{Disposition, Facts, evaluate};

const NESTED: &str = "From: a@example.com\r
To: b@corp.example\r
Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"outer\"\r
\r
This is a multi-part message in MIME format.\r
--outer\r
Content-Type: multipart/alternative; boundary=\"alt\"\r
\r
--alt\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
Bitte zahlen Sie die Rechnung =C3=BCber Western=20\r
Union.\r
--alt\r
Content-Type: text/html; charset=utf-8\r
\r
<html><body><p>Bitte <b>zahlen</b> Sie</p><script>var hidden = 1;</script></body></html>\r
--alt--\r
--outer\r
Content-Type: application/octet-stream; name=\"=?UTF-8?Q?Rechnung_M=C3=A4rz.pdf.exe?=\"\r
Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf.exe\r
Content-Transfer-Encoding: base64\r
\r
TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r
--outer\r
Content-Type: message/rfc822\r
\r
From: c@example.com\r
Subject: inner\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"inner\"\r
\r
--inner\r
Content-Type: text/plain\r
\r
forwarded words: project apollo\r
--inner\r
Content-Type: application/zip\r
Content-Disposition: attachment;\r
 filename*0*=UTF-8''long%20name%20;\r
 filename*1=part2.js\r
Content-Transfer-Encoding: base64\r
\r
UEsDBAoAAAAAAA==\r
--inner--\r
--outer--\r
";

fn view(raw: &str) -> MessageView {
    MessageView::parse(raw.as_bytes(), &ViewLimits::default())
}

fn check(raw: &str, cases: &[(&str, bool)]) {
    let msg = view(raw);
    let rcpts = vec!["b@corp.example".to_owned()];
    let dicts = Dicts::new();
    let f = Facts::new("a@example.com", &rcpts, &msg, &dicts);
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(cond, want)| holds(cond, &f) != *want)
        .map(|(cond, want)| format!("  {cond}  → expected {want}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "on {msg:#?}\nwrong:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn nested_multiparts_encoded_names_and_lying_types() {
    check(
        NESTED,
        &[
            // RFC 2047 subject, decoded
            (r#"subject contains "rechnung für""#, true),
            (r#"subject is "Rechnung für Sie""#, true),
            (r#"header "Subject" matches /^Rechnung/"#, true),
            // quoted-printable body text, words across a line break
            (r#"body contains "western union""#, true),
            (r#"body contains "über""#, true),
            // HTML part reduced to visible text: no script
            (r#"body contains "hidden""#, false),
            // RFC 2231 percent-encoded UTF-8 file name (Content-Disposition wins over name=)
            (r"attachment filename matches /\.exe$/i", true),
            (r#"attachment filename is "Rechnung März.pdf.exe""#, true),
            (r#"attachment filename is "RECHNUNG MÄRZ.PDF.EXE""#, true),
            (r#"attachment filename matches "*.pdf""#, false),
            // declared octet-stream, detected from the MZ header
            (
                r#"attachment declared-type is "application/octet-stream""#,
                true,
            ),
            (
                r#"attachment detected-type is "application/x-msdownload""#,
                true,
            ),
            // RFC 2231 continuations inside a forwarded message (depth 2)
            (r#"attachment filename is "long name part2.js""#, true),
            (r"attachment filename matches /\.(exe|scr|js)$/i", true),
            (r#"attachment detected-type is "application/zip""#, true),
            // the forwarded message's text is attachment text, not body text
            (r#"attachment text contains "project apollo""#, true),
            (r#"body contains "apollo""#, false),
            (r"attachment count >= 3", true),
            (r"attachment size > 1K", false),
            (r"size > 1K", true),
        ],
    );
}

#[test]
fn a_plain_message_has_no_attachments() {
    let raw = "From: a@example.com\r\nSubject: hello\r\n\r\nJust text.\r\n";
    check(
        raw,
        &[
            (r"attachment count = 0", true),
            (r"attachment filename exists", false),
            (r#"not attachment filename matches "*""#, true),
            (r#"body contains "just text""#, true),
            (r#"header "Subject" is "hello""#, true),
            (r#"header "X-Missing" exists"#, false),
        ],
    );
}

#[test]
fn rfc2047_encoded_attachment_name_without_rfc2231() {
    let raw = "From: a@example.com\r
Subject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=b\r
\r
--b\r
Content-Type: text/plain\r
\r
see attached\r
--b\r
Content-Type: application/x-javascript; name=\"=?UTF-8?B?w7xiZXJ3ZWlzdW5nLmpz?=\"\r
Content-Disposition: attachment\r
\r
alert(1)\r
--b--\r
";
    check(
        raw,
        &[
            (r#"subject is "Grüße""#, true),
            (r#"attachment filename is "überweisung.js""#, true),
            (r#"attachment declared-type matches "*javascript""#, true),
        ],
    );
}

#[test]
fn quarantine_the_exe_from_the_brief() {
    let msg = view(NESTED);
    let rcpts = vec!["b@corp.example".to_owned()];
    let dicts = Dicts::new();
    let f = Facts::new("a@example.com", &rcpts, &msg, &dicts);
    let rs = rules(
        r#"rule "exe-attachments" {
    if attachment filename matches /\.(exe|scr|js)$/i or attachment detected-type is "application/x-msdownload"
    then quarantine "attachments"
}"#,
    );
    assert_eq!(
        evaluate(&rs, &f).disposition,
        Disposition::Quarantine {
            name: "attachments".into()
        }
    );
}

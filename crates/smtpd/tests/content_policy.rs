//! The content policy in a real server (issue 11): filter rules (message
//! and content filters, dictionaries), their actions on what is stored
//! (reject, drop, quarantine, header changes, subject prefix, bcc, redirect,
//! require-tls, a split with a bounce), and the engines: a real rspamd
//! (GTUBE → quarantine "spam"), a real clamd (EICAR → quarantine "virus"),
//! and a real milter (opendkim signs through the milter protocol).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

#[path = "../../engines/tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod engines;

#[path = "../../milter/tests/support/mod.rs"]
#[allow(unreachable_pub)]
mod fake_milter;

#[path = "../../milter/tests/support/opendkim.rs"]
#[allow(unreachable_pub)]
mod opendkim;

use std::path::PathBuf;

use postern_smtpd::{ContentSettings, RulesFile, ServerSettings};
use postern_spool::Envelope;

struct Env {
    srv: common::TestServer,
    dir: tempfile::TempDir,
}

/// A server with these message and content rules, a dictionary
/// `ex-employees`, and `tweak` applied to its content settings.
async fn start(
    message_rules: &str,
    content_rules: &str,
    tweak: impl FnOnce(&mut ContentSettings) + Send + 'static,
) -> Env {
    start_as(false, message_rules, content_rules, tweak).await
}

/// [`start`], the client a relay client when `trusted`.
async fn start_as(
    trusted: bool,
    message_rules: &str,
    content_rules: &str,
    tweak: impl FnOnce(&mut ContentSettings) + Send + 'static,
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| -> Option<RulesFile> {
        if text.is_empty() {
            return None;
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Some(RulesFile {
            path,
            text: text.to_owned(),
        })
    };
    let dict: PathBuf = dir.path().join("ex.txt");
    std::fs::write(&dict, "mallory@example.org\n@gone.example\n").unwrap();
    let mut c = ContentSettings {
        message_rules: file("message.rules", message_rules),
        content_rules: file("content.rules", content_rules),
        dictionaries: vec![("ex-employees".into(), dict)],
        ..ContentSettings::default()
    };
    c.quarantines.push("attachments".into());
    tweak(&mut c);
    let srv = common::start_with(move |s: &mut ServerSettings| {
        s.content = c;
        s.relay.accepted_domains = vec!["example.com".into(), "corp.example".into()];
        if trusted {
            // A relay client: its failures may be reported by DSN.
            s.relay.relay_networks = vec!["127.0.0.0/8".parse().unwrap()];
        }
    })
    .await;
    Env { srv, dir }
}

impl Env {
    async fn send(&self, from: &str, rcpts: &[&str], message: &str) -> postern_testkit::SmtpReply {
        self.send_mail(&format!("MAIL FROM:<{from}>"), rcpts, message)
            .await
    }

    /// [`Env::send`] with the whole MAIL command (parameters included).
    async fn send_mail(
        &self,
        mail: &str,
        rcpts: &[&str],
        message: &str,
    ) -> postern_testkit::SmtpReply {
        let mut d = self.srv.connect("smtp").await;
        d.cmd("EHLO client.example.org", 250).await;
        d.cmd(mail, 250).await;
        for r in rcpts {
            d.cmd(&format!("RCPT TO:<{r}>"), 250).await;
        }
        d.cmd("DATA", 354).await;
        d.send_raw(message.as_bytes()).await;
        d.send_raw(b"\r\n.\r\n").await;
        d.reply().await.unwrap()
    }

    fn stored(&self) -> Vec<(Envelope, String)> {
        self.srv
            .messages()
            .into_iter()
            .map(|(e, b)| (e, String::from_utf8_lossy(&b).into_owned()))
            .collect()
    }
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: <alice@example.org>\r\nTo: <bob@example.com>\r\nSubject: {subject}\r\n\
         X-Internal: secret\r\nMessage-ID: <1@example.org>\r\n\r\n{body}\r\n"
    )
}

fn with_exe() -> String {
    "From: <alice@example.org>\r\nTo: <bob@example.com>\r\nSubject: invoice\r\n\
     MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
     --b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
     --b1\r\nContent-Type: application/octet-stream\r\n\
     Content-Disposition: attachment; filename=\"invoice.exe\"\r\n\
     Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\r\n--b1--\r\n"
        .to_owned()
}

const RULES: &str = r#"
rule "ex-employees" {
    if sender in dictionary "ex-employees"
    then reject 550 "5.7.1" "This person no longer works here"
}
rule "exe" {
    if attachment filename matches /\.exe$/i
    then quarantine "attachments"
}
rule "junk" {
    if subject contains "lottery"
    then drop
}
rule "tidy" {
    if subject contains "report"
    then prefix-subject "[EXTERNAL] "; remove-header "X-Internal"; add-header "X-Checked" "yes"; bcc "archive@example.com"; require-tls
}
"#;

#[tokio::test]
async fn a_rule_rejects_at_end_of_data_and_nothing_is_stored() {
    let env = start(RULES, "", |_| {}).await;
    let r = env
        .send(
            "mallory@example.org",
            &["bob@example.com"],
            &message("hi", "hello"),
        )
        .await;
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text().contains("5.7.1 This person no longer works here"),
        "{}",
        r.text()
    );
    assert!(env.stored().is_empty());
    // The dictionary's @domain entry too.
    let r = env
        .send(
            "old@gone.example",
            &["bob@example.com"],
            &message("hi", "hello"),
        )
        .await;
    assert_eq!(r.code, 550, "{}", r.text());
}

#[tokio::test]
async fn an_executable_is_quarantined_with_the_rule_as_reason() {
    let env = start(RULES, "", |_| {}).await;
    let r = env
        .send("alice@example.org", &["bob@example.com"], &with_exe())
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 1);
    let (e, _) = &stored[0];
    assert_eq!(e.quarantine.as_deref(), Some("attachments"));
    assert_eq!(e.quarantine_name(), Some("attachments"));
    assert!(e.hold.as_deref().unwrap().contains("exe"), "{:?}", e.hold);
    assert!(
        e.content.iter().any(|d| d.by == "rule:exe"),
        "{:?}",
        e.content
    );
}

#[tokio::test]
async fn a_dropped_message_gets_250_and_is_not_stored() {
    let env = start(RULES, "", |_| {}).await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("win the lottery", "$$$"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    assert!(env.stored().is_empty(), "dropped");
    let t = env.srv.transcript_with("dropped").await;
    assert!(t.contains("junk"), "{t}");
}

#[tokio::test]
async fn header_changes_bcc_and_require_tls_are_applied_to_what_is_stored() {
    let env = start(RULES, "", |_| {}).await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("monthly report", "numbers"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 1);
    let (e, body) = &stored[0];
    assert!(
        body.contains("Subject: [EXTERNAL] monthly report"),
        "{body}"
    );
    assert!(!body.contains("X-Internal"), "{body}");
    assert!(body.contains("X-Checked: yes"), "{body}");
    assert!(
        body.starts_with("Received: from "),
        "our Received: stays first:\n{body}"
    );
    assert!(
        body.ends_with("\r\n\r\nnumbers\r\n\r\n"),
        "the body is unchanged:\n{body}"
    );
    assert!(e.require_tls);
    let rcpts: Vec<&str> = e.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["bob@example.com", "archive@example.com"]);
    assert_eq!(
        e.recipients[1].notify.as_deref(),
        Some("NEVER"),
        "no DSN discloses the archive"
    );
    assert_eq!(
        e.message_size,
        body.len() as u64,
        "the size is the stored copy's"
    );
}

const SPLIT: &str = r#"
rule "legal-quarantine" {
    if recipient domain is "corp.example"
    then quarantine "policy"
}
rule "no-ceo" {
    if recipient is "ceo@example.com"
    then bounce 550 "5.7.1" "The CEO does not take mail from outside"
}
"#;

#[tokio::test]
async fn content_rules_split_the_message_per_recipient_group() {
    let env = start_as(true, "", SPLIT, |_| {}).await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com", "legal@corp.example", "ceo@example.com"],
            &message("hello", "text"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let text = r.text();
    let ids: Vec<&str> = text
        .split("queued as ")
        .nth(1)
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(ids.len(), 1, "the client hears one id: {}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 3);
    let by_rcpt = |a: &str| {
        stored
            .iter()
            .find(|(e, _)| e.recipients.iter().any(|r| r.address == a))
            .unwrap()
            .0
            .clone()
    };
    let bob = by_rcpt("bob@example.com");
    assert_eq!(bob.recipients.len(), 1);
    assert!(bob.hold.is_none() && bob.bounce.is_none());
    let legal = by_rcpt("legal@corp.example");
    assert_eq!(legal.quarantine.as_deref(), Some("policy"));
    let ceo = by_rcpt("ceo@example.com");
    assert!(
        ceo.bounce.as_deref().unwrap().contains("550 5.7.1 The CEO"),
        "{:?}",
        ceo.bounce
    );
    // Every copy holds the whole message.
    for (_, body) in &stored {
        assert!(body.ends_with("\r\n\r\ntext\r\n\r\n"), "{body}");
    }
}

/// From a sender nothing vouched for, a bounce for some recipients would be
/// a DSN to a possibly forged address: those recipients are dropped.
#[tokio::test]
async fn a_split_bounce_for_an_unverified_sender_is_a_drop_not_a_dsn() {
    let env = start("", SPLIT, |_| {}).await;
    let r = env
        .send(
            "victim@example.net",
            &["bob@example.com", "ceo@example.com"],
            &message("hello", "text"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 1, "only bob's copy");
    assert!(stored[0].0.bounce.is_none());
    assert_eq!(stored[0].0.recipients[0].address, "bob@example.com");
}

/// Recipients that differ only in case are different recipients.
#[tokio::test]
async fn recipients_are_grouped_exactly() {
    let rules =
        "rule \"ceo\" { if recipient matches /^ceo@example\\.com$/ then quarantine \"policy\" }\n";
    let env = start("", rules, |_| {}).await;
    let r = env
        .send(
            "alice@example.org",
            &["ceo@example.com", "CEO@example.com"],
            &message("hello", "text"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 2);
    for (e, _) in &stored {
        assert_eq!(e.recipients.len(), 1, "{:?}", e.recipients);
        let held = e.hold.is_some();
        assert_eq!(held, e.recipients[0].address == "ceo@example.com");
    }
}

/// A message too large to be read for scanning is still split per
/// recipient group, each copy whole.
#[tokio::test]
async fn a_message_above_max_scan_size_is_still_split_per_recipient() {
    let rules = "rule \"legal\" { if recipient domain is \"corp.example\" then redirect \"counsel@corp.example\" }\n";
    let env = start("", rules, |c| c.max_scan_size = 1024).await;
    let body = "x"
        .repeat(200)
        .repeat(40)
        .chars()
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\r\n");
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com", "legal@corp.example"],
            &message("big", &body),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 2);
    let bob = stored
        .iter()
        .find(|(e, _)| e.recipients[0].address == "bob@example.com")
        .unwrap();
    assert_eq!(bob.0.recipients.len(), 1, "bob is not redirected");
    let legal = stored
        .iter()
        .find(|(e, _)| e.recipients[0].address == "counsel@corp.example")
        .unwrap();
    assert_eq!(legal.0.recipients[0].notify.as_deref(), Some("NEVER"));
    for (_, b) in &stored {
        assert!(b.contains(&body), "each copy holds the whole message");
    }
}

#[tokio::test]
async fn a_bounce_for_every_recipient_is_a_reject_at_end_of_data() {
    let env = start("", SPLIT, |_| {}).await;
    let r = env
        .send(
            "alice@example.org",
            &["ceo@example.com"],
            &message("hello", "text"),
        )
        .await;
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(env.stored().is_empty());
}

#[tokio::test]
async fn a_changed_rule_file_is_reloaded_and_a_broken_one_keeps_the_old_rules() {
    // Every message looks for changes (the server's default is every 2 s).
    let env = start(RULES, "", |c| c.reload_interval = std::time::Duration::ZERO).await;
    let path = env.dir.path().join("message.rules");
    std::fs::write(
        &path,
        "rule \"all\" { if true then reject 554 \"5.7.1\" \"closed\" }\n",
    )
    .unwrap();
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hi", "x"),
        )
        .await;
    assert_eq!(r.code, 554, "the new rules apply: {}", r.text());
    for broken in [
        "rule \"broken\" { if nonsense then }\n",
        "rule \"q\" { if true then quarantine \"nowhere\" }\n",
        "",
    ] {
        std::fs::write(&path, broken).unwrap();
        let r = env
            .send(
                "alice@example.org",
                &["bob@example.com"],
                &message("hi", "x"),
            )
            .await;
        assert_eq!(
            r.code,
            554,
            "{broken:?} keeps the previous rules: {}",
            r.text()
        );
    }
}

// ---------------------------------------------------------------------------
// Real engines.

/// EICAR as a base64 attachment, lines of 76.
fn eicar_attachment() -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(engines::EICAR);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: <alice@example.org>\r\nTo: <bob@example.com>\r\nSubject: files\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"eicar.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        wrapped.join("\r\n")
    )
}

/// rspamd at 127.0.0.1:`port`, defaults otherwise.
fn rspamd_at(port: u16) -> postern_engines::RspamdSettings {
    postern_engines::RspamdSettings {
        address: format!("127.0.0.1:{port}").parse().unwrap(),
        ..postern_engines::RspamdSettings::default()
    }
}

/// A milter at 127.0.0.1:`port`, defaults otherwise.
fn milter_at(name: &str, port: u16) -> postern_milter::MilterSpec {
    postern_milter::MilterSpec::new(
        name,
        postern_milter::MilterAddr::parse(&format!("inet:127.0.0.1:{port}")).unwrap(),
    )
}

/// clamd at 127.0.0.1:`port`, defaults otherwise.
fn clamd_at(port: u16) -> postern_engines::ClamdSettings {
    postern_engines::ClamdSettings {
        address: format!("127.0.0.1:{port}").parse().unwrap(),
        ..postern_engines::ClamdSettings::default()
    }
}

fn require(tool: &str) -> bool {
    if std::env::var_os("POSTERN_REQUIRE_TOOLS").is_some() {
        return true;
    }
    eprintln!("skipped: {tool} not installed");
    false
}

/// A mail-flow policy's `rspamd_settings` is sent as `Settings-ID`: the
/// test rspamd's quiet profile drops `MIME_GOOD`, so the same message scores
/// differently with it.
#[tokio::test]
async fn a_mail_flow_policy_chooses_the_rspamd_settings_profile() {
    use postern_policy::admission::{Admission, FlowAction, MailFlowPolicy, Matcher, SenderGroup};
    let Some(rspamd) = engines::Rspamd::get() else {
        assert!(!require("rspamd"), "rspamd is required");
        return;
    };
    let port = rspamd.normal;
    let score = |profile: Option<&'static str>| async move {
        let srv = common::start_with(move |s| {
            s.content = ContentSettings {
                rspamd: Some((
                    rspamd_at(port),
                    postern_policy::content::OnFailure::TempFail,
                )),
                ..ContentSettings::default()
            };
            s.relay.accepted_domains = vec!["example.com".into()];
            let mut p = MailFlowPolicy::new("P", FlowAction::Accept);
            p.content.rspamd_settings = profile.map(str::to_owned);
            let all = SenderGroup {
                name: "ALL".into(),
                matchers: vec![Matcher::parse("all").unwrap()],
                policy: 0,
                listeners: Vec::new(),
            };
            s.admission = Admission::new(vec![all], vec![p], Vec::new());
        })
        .await;
        let env = Env {
            srv,
            dir: tempfile::tempdir().unwrap(),
        };
        let r = env
            .send(
                "alice@example.org",
                &["bob@example.com"],
                &message("hello", "A normal note."),
            )
            .await;
        assert_eq!(r.code, 250, "{}", r.text());
        let stored = env.stored();
        postern_proto::header_values(stored[0].0.added_headers.as_bytes(), "X-Spam-Score")
            .pop()
            .unwrap()
    };
    let plain = score(None).await;
    let quiet = score(Some(engines::QUIET_SETTINGS)).await;
    assert_ne!(plain, quiet, "the profile changed nothing");
}

#[tokio::test]
async fn rspamd_gtube_is_quarantined_and_clean_mail_tagged_with_its_score() {
    let Some(rspamd) = engines::Rspamd::get() else {
        assert!(!require("rspamd"), "rspamd is required");
        return;
    };
    let port = rspamd.normal;
    let env = start("", "", move |c| {
        c.rspamd = Some((
            rspamd_at(port),
            postern_policy::content::OnFailure::TempFail,
        ));
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hello", "A normal note."),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let forged = format!(
        "X-Spam-Status: No, score=-5.0\r\nX-Spam-Flag: NO\r\n{}",
        message("buy", engines::GTUBE)
    );
    let r = env
        .send("alice@example.org", &["bob@example.com"], &forged)
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 2);
    let spam = stored.iter().find(|(e, _)| e.hold.is_some()).unwrap();
    assert_eq!(spam.0.quarantine.as_deref(), Some("spam"));
    assert!(
        !spam.1.contains("score=-5.0") && !spam.1.contains("X-Spam-Flag: NO"),
        "the client's own verdict fields are removed:\n{}",
        spam.1
    );
    assert!(
        spam.0.added_headers.contains("X-Spam-Status: Yes"),
        "{}",
        spam.0.added_headers
    );
    let clean = stored.iter().find(|(e, _)| e.hold.is_none()).unwrap();
    assert!(
        clean.0.added_headers.contains("X-Spam-Status: No"),
        "{}",
        clean.0.added_headers
    );
    assert!(
        clean.0.content.iter().any(|d| d.by == "rspamd"),
        "{:?}",
        clean.0.content
    );
}

#[tokio::test]
async fn rspamd_down_defers_unless_the_operator_accepts_unscanned_mail() {
    let port = engines::free_port();
    let env = start("", "", move |c| {
        c.rspamd = Some((
            rspamd_at(port),
            postern_policy::content::OnFailure::TempFail,
        ));
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hello", "x"),
        )
        .await;
    assert_eq!(r.code, 451, "{}", r.text());
    assert!(env.stored().is_empty());
    let env = start("", "", move |c| {
        c.rspamd = Some((rspamd_at(port), postern_policy::content::OnFailure::Accept));
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hello", "x"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert!(
        stored[0]
            .0
            .content
            .iter()
            .any(|d| d.verdict.contains("accepted unscanned")),
        "{:?}",
        stored[0].0.content
    );
}

#[tokio::test]
async fn clamd_eicar_is_quarantined_as_a_virus() {
    let Some(clamd) = engines::Clamd::get() else {
        assert!(!require("clamd"), "clamd is required");
        return;
    };
    let port = clamd.port;
    let env = start("", "", move |c| {
        c.clamav = Some((clamd_at(port), postern_policy::content::OnFailure::TempFail));
    })
    .await;
    let infected = eicar_attachment();
    let r = env
        .send("alice@example.org", &["bob@example.com"], &infected)
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hello", "clean"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    let virus = stored.iter().find(|(e, _)| e.hold.is_some()).unwrap();
    assert_eq!(virus.0.quarantine.as_deref(), Some("virus"));
    assert!(
        virus
            .0
            .hold
            .as_deref()
            .unwrap()
            .contains(engines::EICAR_SIGNATURE),
        "{:?}",
        virus.0.hold
    );
    assert_eq!(stored.iter().filter(|(e, _)| e.hold.is_none()).count(), 1);
}

#[tokio::test]
async fn notify_queues_a_notification_from_the_null_sender() {
    let rules = r#"
rule "hr-watch" {
    if subject contains "salary"
    then notify "hr@example.com" template "hr"; quarantine "policy"
}
"#;
    let env = start(rules, "", |c| {
        c.notifications.push(postern_smtpd::Notification {
            name: "hr".into(),
            subject: "Held: {subject}".into(),
            body:
                "A message from {sender} to {recipients} was {reason} by rule {rule} ({queue_id})."
                    .into(),
            from: None,
        });
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("salary list", "..."),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 2, "the message and the notification");
    let (n, body) = stored
        .iter()
        .find(|(e, _)| e.reverse_path.is_empty())
        .unwrap();
    assert_eq!(n.recipients[0].address, "hr@example.com");
    assert!(n.hold.is_none());
    assert!(body.contains("Subject: Held: salary list"), "{body}");
    assert!(body.contains("Auto-Submitted: auto-generated"), "{body}");
    assert!(
        body.contains("from alice@example.org to bob@example.com was quarantined in \"policy\" by rule hr-watch"),
        "{body}"
    );
}

#[tokio::test]
async fn a_real_milter_signs_what_is_stored() {
    if !opendkim::installed() {
        return;
    }
    let dkim = opendkim::OpenDkim::start().await;
    let spec = dkim.spec();
    let env = start("", "", move |c| c.milters.push(spec)).await;
    let msg = "From: <alice@example.com>\r\nTo: <bob@example.com>\r\nSubject: signed\r\n\
               Date: Sun, 06 Dec 2026 20:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n\r\nHello.\r\n";
    let r = env
        .send("alice@example.com", &["bob@example.com"], msg)
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    let (e, body) = &stored[0];
    assert!(
        body.contains("DKIM-Signature:"),
        "opendkim's signature is stored:\n{body}"
    );
    assert!(body.contains("d=example.com"), "{body}");
    assert!(
        e.content
            .iter()
            .any(|d| d.by == "milter:opendkim" && d.action.contains("change")),
        "{:?}",
        e.content
    );
    assert!(
        body.ends_with("Hello.\r\n\r\n"),
        "the body is unchanged:\n{body}"
    );
}

/// An allow-list rule (`accept`) lifts spam actions, never a virus verdict.
#[tokio::test]
async fn an_accept_rule_does_not_let_a_virus_through() {
    let Some(clamd) = engines::Clamd::get() else {
        assert!(!require("clamd"), "clamd is required");
        return;
    };
    let port = clamd.port;
    let rules = "rule \"partners\" { if sender domain is \"example.org\" then accept }\n";
    let env = start(rules, "", move |c| {
        c.clamav = Some((clamd_at(port), postern_policy::content::OnFailure::TempFail));
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &eicar_attachment(),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = env.stored();
    assert_eq!(
        stored[0].0.quarantine.as_deref(),
        Some("virus"),
        "{:?}",
        stored[0].0.content
    );
}

/// Every packet a milter on 127.0.0.1 received (command byte first).
type Packets = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A milter on 127.0.0.1 answering each packet with `answer` (nothing for an
/// empty answer), recording what it received: (port, packets).
async fn tcp_milter(answer: fn(&[u8]) -> Vec<u8>) -> (u16, Packets) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Packets::default();
    let seen = std::sync::Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let seen = std::sync::Arc::clone(&seen);
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut p = vec![0u8; u32::from_be_bytes(len) as usize];
                    if s.read_exact(&mut p).await.is_err() || p.is_empty() {
                        return;
                    }
                    seen.lock().unwrap().push(p.clone());
                    let a = answer(&p);
                    if !a.is_empty() && s.write_all(&a).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, log)
}

/// The macros a milter is sent name the connection as Sendmail and Postfix
/// do: `{daemon_addr}` / `{if_addr}` (the listener's address), `{client_name}`
/// (`[ip]` without a confirmed name), `{client_addr}`, and no TLS macros on a
/// plain session.
#[tokio::test]
async fn milters_are_told_the_connection_in_macros() {
    let (port, log) = tcp_milter(|p| match p[0] {
        b'O' => fake_milter::neg_all(),
        b'D' | b'Q' | b'A' => Vec::new(),
        b'E' => fake_milter::pkt(b'a', b""),
        _ => fake_milter::pkt(b'c', b""),
    })
    .await;
    let spec = milter_at("m", port);
    let env = start("", "", move |c| c.milters.push(spec)).await;
    let r = env
        .send_mail(
            "MAIL FROM:<alice@example.org> SIZE=200 BODY=8BITMIME",
            &["bob@example.com"],
            &message("hi", "x"),
        )
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    let packets = log.lock().unwrap().clone();
    let connect: Vec<String> = packets
        .iter()
        .find(|p| p[0] == b'D' && p.get(1) == Some(&b'C'))
        .map(|p| fake_milter::strings(&p[2..]))
        .unwrap();
    let value = |name: &str| {
        connect
            .iter()
            .position(|n| n == name)
            .map(|i| connect[i + 1].clone())
    };
    assert_eq!(
        value("{daemon_addr}").as_deref(),
        Some("127.0.0.1"),
        "{connect:?}"
    );
    assert_eq!(value("{if_addr}").as_deref(), Some("127.0.0.1"));
    assert_eq!(value("{client_addr}").as_deref(), Some("127.0.0.1"));
    assert_eq!(value("{client_name}").as_deref(), Some("[127.0.0.1]"));
    assert_eq!(value("{daemon_name}").as_deref(), Some("smtp"));
    let helo: Vec<String> = packets
        .iter()
        .find(|p| p[0] == b'D' && p.get(1) == Some(&b'H'))
        .map(|p| fake_milter::strings(&p[2..]))
        .unwrap_or_default();
    assert!(
        !helo
            .iter()
            .any(|n| n == "{cipher_bits}" || n == "{tls_version}"),
        "{helo:?}"
    );
    assert!(!mail_has_auth(&packets), "no AUTH, no auth macros");
    // The MAIL command's parameters follow the address in SMFIC_MAIL.
    let mail_cmd = packets.iter().find(|p| p[0] == b'M').unwrap();
    let args = fake_milter::strings(&mail_cmd[1..]);
    assert_eq!(args[0], "<alice@example.org>", "{args:?}");
    assert_eq!(args[1..3], ["SIZE=200", "BODY=8BITMIME"], "{args:?}");
    // `i`, from MAIL on: the queue id the message is stored under.
    let mail: Vec<String> = packets
        .iter()
        .find(|p| p[0] == b'D' && p.get(1) == Some(&b'M'))
        .map(|p| fake_milter::strings(&p[2..]))
        .unwrap_or_default();
    let i = mail
        .iter()
        .position(|n| n == "i")
        .map(|k| mail[k + 1].clone());
    let stored = env.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        i.as_deref(),
        Some(stored[0].0.queue_id.as_str()),
        "{mail:?}"
    );
}

/// Whether the MAIL-stage macros carry `{auth_type}` or `{auth_authen}`.
fn mail_has_auth(packets: &[Vec<u8>]) -> bool {
    packets
        .iter()
        .filter(|p| p[0] == b'D' && p.get(1) == Some(&b'M'))
        .flat_map(|p| fake_milter::strings(&p[2..]))
        .any(|n| n == "{auth_type}" || n == "{auth_authen}")
}

/// A milter asked at RCPT (`stage = "rcpt"`) refuses one recipient there,
/// before any data; the others are accepted and the message delivered.
#[tokio::test]
async fn a_milter_at_rcpt_refuses_one_recipient_before_data() {
    let (port, _log) = tcp_milter(|p| match p[0] {
        b'O' => fake_milter::neg_all(),
        b'D' | b'Q' | b'A' => Vec::new(),
        b'R' if String::from_utf8_lossy(&p[1..]).contains("blocked@") => {
            fake_milter::pkt(b'y', b"550 5.7.1 Blocked by the milter\0")
        }
        _ => fake_milter::pkt(b'c', b""),
    })
    .await;
    let spec = milter_at("gate", port);
    let env = start("", "", move |c| {
        c.milters.push(spec);
        c.milter_stages
            .push(postern_proto::session::StageKind::Rcpt);
    })
    .await;
    let mut d = env.srv.connect("smtp").await;
    d.cmd("EHLO client.example.org", 250).await;
    d.cmd("MAIL FROM:<alice@example.org>", 250).await;
    let r = d.cmd("RCPT TO:<blocked@example.com>", 550).await;
    assert!(
        r.text().contains("5.7.1 Blocked by the milter"),
        "{}",
        r.text()
    );
    d.cmd("RCPT TO:<bob@example.com>", 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(message("hi", "x").as_bytes()).await;
    d.send_raw(b"\r\n.\r\n").await;
    assert_eq!(d.reply().await.unwrap().code, 250);
    let stored = env.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.recipients.len(), 1);
    assert_eq!(stored[0].0.recipients[0].address, "bob@example.com");
}

/// `notify` with a final drop or reject still sends the notification.
#[tokio::test]
async fn notify_with_a_drop_or_a_reject_is_still_sent() {
    let rules = "rule \"leak\" { if subject contains \"secret\" then notify \"sec@example.com\" template \"sec\"; drop }\n\
                 rule \"bad\" { if subject contains \"malware\" then notify \"sec@example.com\" template \"sec\"; reject 550 \"5.7.1\" \"no\" }\n";
    let env = start(rules, "", |c| {
        c.notifications.push(postern_smtpd::Notification {
            name: "sec".into(),
            subject: "{reason}: {subject}".into(),
            body: "from {sender}, id {queue_id}".into(),
            from: None,
        });
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("top secret", "x"),
        )
        .await;
    assert_eq!(r.code, 250, "{}", r.text());
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("malware inside", "x"),
        )
        .await;
    assert_eq!(r.code, 550, "{}", r.text());
    let stored = env.stored();
    assert_eq!(stored.len(), 2, "two notifications, no message");
    assert!(stored.iter().all(|(e, _)| e.reverse_path.is_empty()));
    assert!(
        stored
            .iter()
            .any(|(_, b)| b.contains("Subject: dropped: top secret")),
        "{stored:?}"
    );
    assert!(
        stored
            .iter()
            .any(|(_, b)| b.contains("Subject: refused: 550 5.7.1 no: malware inside")),
        "{stored:?}"
    );
}

/// A milter that never answers cannot hold the reply to the end of data past
/// the content deadline: `451 4.3.0`, nothing stored.
#[tokio::test]
async fn the_content_deadline_defers_a_message_a_milter_holds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s); // accepted, never answered
        }
    });
    let spec = milter_at("silent", port);
    let env = start("", "", move |c| {
        c.milters.push(spec);
        c.milter_stages
            .push(postern_proto::session::StageKind::DataEnd);
        c.deadline = std::time::Duration::from_millis(300);
    })
    .await;
    let r = env
        .send(
            "alice@example.org",
            &["bob@example.com"],
            &message("hi", "x"),
        )
        .await;
    assert_eq!(r.code, 451, "{}", r.text());
    assert!(
        r.text().contains("4.3.0") && r.text().contains("did not finish"),
        "{}",
        r.text()
    );
    assert!(env.stored().is_empty());
    silent.abort();
}

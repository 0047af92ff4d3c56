//! Issue 11's sections: `[[quarantine]]` (and, as they land, `[filters]`,
//! `[[dictionary]]`, `[rspamd]`, `[clamav]`, `[[milter]]`): what loads, and
//! every refusal with file:line:column and the key.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{MINIMAL, error, load};
use postern_spool::OnExpiry;

#[test]
fn builtin_quarantines_exist_and_can_be_changed_or_added() {
    let c = load(MINIMAL).unwrap().config;
    let q = &c.delivery.quarantines;
    assert_eq!(q.get("policy").retention, Duration::from_hours(14 * 24));
    assert_eq!(q.get("virus").on_expiry, OnExpiry::Delete);

    let src = format!(
        "{MINIMAL}\n[[quarantine]]\nname = \"policy\"\nretention = \"3d\"\n\
         on_expiry = \"release\"\n\n[[quarantine]]\nname = \"attachments\"\nretention = \"7d\"\n\
         description = \"executables\"\n"
    );
    let c = load(&src).unwrap().config;
    let q = &c.delivery.quarantines;
    assert_eq!(q.get("policy").retention, Duration::from_hours(72));
    assert_eq!(q.get("policy").on_expiry, OnExpiry::Release);
    assert!(q.contains("attachments"));
    assert_eq!(q.get("attachments").description, "executables");
    assert_eq!(q.get("attachments").on_expiry, OnExpiry::Delete);
}

#[test]
fn bad_quarantines_are_refused_with_their_place() {
    let e = error(&format!("{MINIMAL}\n[[quarantine]]\nname = \"Bad Name\"\n"));
    assert!(e.contains("postern.toml:13:8"), "{e}");
    assert!(e.contains("quarantine[0].name"), "{e}");
    let e = error(&format!(
        "{MINIMAL}\n[[quarantine]]\nname = \"a\"\n[[quarantine]]\nname = \"a\"\n"
    ));
    assert!(e.contains("defined twice"), "{e}");
    let e = error(&format!(
        "{MINIMAL}\n[[quarantine]]\nname = \"a\"\nretention = \"10m\"\n"
    ));
    assert!(
        e.contains("quarantine[0].retention") && e.contains("1h"),
        "{e}"
    );
    let e = error(&format!(
        "{MINIMAL}\n[[quarantine]]\nname = \"a\"\non_expiry = \"bounce\"\n"
    ));
    assert!(e.contains("\"delete\", \"release\""), "{e}");
}

fn policy(extra: &str) -> String {
    format!(
        "{MINIMAL}\n[[mail_flow_policy]]\nname = \"P\"\naction = \"accept\"\n{extra}\n\
         [[sender_group]]\nname = \"ALL\"\nmatch = [\"all\"]\npolicy = \"P\"\n"
    )
}

#[test]
fn mail_flow_policy_content_keys_load_with_defaults() {
    use postern_policy::content::{Score, SpamAction, VirusAction};
    let c = load(&policy("")).unwrap().config;
    let a = &c.server.admission.policies[0].content;
    assert!(a.spam_scan && a.virus_scan && a.milters && a.filters);
    assert_eq!(a.spam_positive, SpamAction::Quarantine);
    assert_eq!(a.spam_suspect, SpamAction::Tag);
    assert_eq!(a.virus_action, VirusAction::Quarantine);
    assert_eq!(a.virus_quarantine, "virus");

    let c = load(&policy(
        "spam_scan = false\nspam_positive = \"reject\"\nspam_suspect = \"quarantine\"\n\
         spam_positive_score = 12\nspam_suspect_score = 4.5\nspam_subject_tag = \"[SPAM]\"\n\
         virus_action = \"drop\"\nvirus_quarantine = \"policy\"\nrspamd_settings = \"inbound\"\n",
    ))
    .unwrap()
    .config;
    let a = &c.server.admission.policies[0].content;
    assert!(!a.spam_scan);
    assert_eq!(a.spam_positive, SpamAction::Reject);
    assert_eq!(a.spam_positive_score, Some(Score(1200)));
    assert_eq!(a.spam_suspect_score, Some(Score(450)));
    assert_eq!(a.spam_subject_tag, "[SPAM]");
    assert_eq!(a.virus_action, VirusAction::Drop);
    assert_eq!(a.virus_quarantine, "policy");
    assert_eq!(a.rspamd_settings.as_deref(), Some("inbound"));
}

#[test]
fn bad_content_keys_are_refused_with_their_place() {
    let e = error(&policy("virus_action = \"bounce\""));
    assert!(
        e.contains("mail_flow_policy[0].virus_action") || e.contains("virus_action"),
        "{e}"
    );
    assert!(e.contains("\"quarantine\", \"drop\", \"reject\""), "{e}");
    let e = error(&policy("spam_quarantine = \"nowhere\""));
    assert!(e.contains("postern.toml:15:19"), "{e}");
    assert!(e.contains("no quarantine named \"nowhere\""), "{e}");
    let e = error(&policy("spam_positive_score = 3\nspam_suspect_score = 5"));
    assert!(
        e.contains("spam_suspect_score") && e.contains("3.00"),
        "{e}"
    );
    let e = error(&policy("spam_subject_tag = \"a\\r\\nBcc: x\""));
    assert!(e.contains("spam_subject_tag"), "{e}");
    let e = error(&policy("rspamd_settings = \"a b\\r\\nPass: all\""));
    assert!(e.contains("rspamd_settings: an rspamd settings id"), "{e}");
}

/// A directory with a rule file and a dictionary, and the lines that name them.
fn files(rules: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("message.rules"), rules).unwrap();
    std::fs::write(dir.path().join("ex.txt"), "mallory@example.org\n").unwrap();
    let d = dir.path().display();
    let extra = format!(
        "\n[filters]\nmessage_rules = \"{d}/message.rules\"\nmax_scan_size = \"5MiB\"\n\n\
         [[dictionary]]\nname = \"ex\"\npath = \"{d}/ex.txt\"\n\n\
         [[notification]]\nname = \"hr\"\nsubject = \"Held: {{subject}}\"\nbody = \"{{sender}} → {{recipients}}\"\n"
    );
    (dir, extra)
}

#[test]
fn filters_dictionaries_and_notifications_load() {
    let (_dir, extra) = files(
        "rule \"ex\" { if sender in dictionary \"ex\" then notify \"hr@example.com\" template \"hr\"; quarantine \"spam\" }\n",
    );
    let c = load(&format!("{MINIMAL}{extra}")).unwrap().config;
    let s = &c.server.content;
    assert!(
        s.message_rules
            .as_ref()
            .unwrap()
            .text
            .contains("rule \"ex\"")
    );
    assert_eq!(s.dictionaries[0].0, "ex");
    assert_eq!(s.max_scan_size, 5 * 1024 * 1024);
    assert_eq!(s.notifications[0].name, "hr");
}

#[test]
fn a_bad_rule_file_is_reported_at_its_own_line_and_column() {
    let (dir, extra) = files("rule \"a\" {\n    if nonsense then drop\n}\n");
    let e = error(&format!("{MINIMAL}{extra}"));
    let at = format!("{}/message.rules:2:8", dir.path().display());
    assert!(e.contains(&at), "{e}");
    assert!(e.contains("filters.message_rules"), "{e}");
    // A name the configuration does not have.
    let (dir, extra) = files("rule \"a\" {\n  if true then quarantine \"nowhere\"\n}\n");
    let e = error(&format!("{MINIMAL}{extra}"));
    assert!(
        e.contains(&format!("{}/message.rules:2", dir.path().display())),
        "{e}"
    );
    assert!(e.contains("no quarantine named \"nowhere\""), "{e}");
    let (_dir, extra) = files("rule \"a\" { if sender in dictionary \"other\" then drop }\n");
    let e = error(&format!("{MINIMAL}{extra}"));
    assert!(e.contains("no dictionary named \"other\""), "{e}");
}

#[test]
fn bad_dictionaries_and_templates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = error(&format!(
        "{MINIMAL}\n[[dictionary]]\nname = \"ex\"\npath = \"{}/missing.txt\"\n",
        dir.path().display()
    ));
    assert!(
        e.contains("dictionary[0].path") && e.contains("missing.txt"),
        "{e}"
    );
    let e = error(&format!(
        "{MINIMAL}\n[[notification]]\nname = \"hr\"\nsubject = \"x {{bogus}}\"\nbody = \"b\"\n"
    ));
    assert!(
        e.contains("notification[0].subject") && e.contains("unknown placeholder {bogus}"),
        "{e}"
    );
}

#[test]
fn engines_and_milters_load_and_bad_addresses_are_refused() {
    use postern_policy::content::OnFailure;
    let config = load(&format!(
        "{MINIMAL}\n[rspamd]\naddress = \"127.0.0.1:11333\"\ntimeout = \"10s\"\non_failure = \"accept\"\n\
         password = \"s3cret\"\n\n[clamav]\naddress = \"/run/clamav/clamd.ctl\"\nmax_size = \"10MiB\"\n\n\
         [[milter]]\nname = \"opendkim\"\naddress = \"inet:8891@127.0.0.1\"\ndefault_action = \"accept\"\n\
         end_of_message_timeout = \"2m\"\n"
    ))
    .unwrap()
    .config;
    let content = &config.server.content;
    let (rspamd, on_failure) = content.rspamd.as_ref().unwrap();
    assert_eq!(rspamd.timeout, Duration::from_secs(10));
    assert_eq!(*on_failure, OnFailure::Accept);
    assert_eq!(rspamd.password.as_deref(), Some("s3cret"));
    let (clamav, on_failure) = content.clamav.as_ref().unwrap();
    assert_eq!(clamav.max_size, 10 * 1024 * 1024);
    assert_eq!(*on_failure, OnFailure::TempFail);
    assert_eq!(content.milters[0].name, "opendkim");
    assert_eq!(
        content.milters[0].timeouts.end_of_message,
        Duration::from_mins(2)
    );
    assert_eq!(
        content.milters[0].default_action,
        postern_milter::OnFailure::Accept
    );

    let e = error(&format!(
        "{MINIMAL}\n[rspamd]\naddress = \"not an address\"\n"
    ));
    assert!(
        e.contains("postern.toml:13:11") && e.contains("rspamd.address"),
        "{e}"
    );
    let e = error(&format!(
        "{MINIMAL}\n[[milter]]\nname = \"m\"\naddress = \"tcp://x\"\n"
    ));
    assert!(
        e.contains("milter[0].address") && e.contains("inet:"),
        "{e}"
    );
    let e = error(&format!("{MINIMAL}\n[clamav]\ntimeout = \"0s\"\n"));
    assert!(e.contains("clamav.timeout"), "{e}");
}

#[test]
fn config_show_hides_the_rspamd_password() {
    let src = format!("{MINIMAL}\n[rspamd]\npassword = \"s3cret\"\n");
    let shown = postern_config::effective(
        &src,
        "postern.toml",
        std::path::Path::new("/etc/postern"),
        false,
    );
    let text = shown.unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("password = \"<secret>\""), "{text}");
}

#[test]
fn milter_macros_per_stage() {
    let config = load(&format!(
        "{MINIMAL}\n[[milter]]\nname = \"m\"\naddress = \"unix:/run/m.sock\"\n\
         stage = \"rcpt\"\n[milter.macros]\nmail = [\"i\", \"{{auth_authen}}\"]\n"
    ))
    .unwrap()
    .config;
    assert_eq!(
        config.server.content.milter_stages,
        [postern_proto::session::StageKind::Rcpt]
    );
    let spec = &config.server.content.milters[0];
    assert_eq!(
        spec.macros.stage(postern_milter::MacroStage::MailFrom),
        ["i", "{auth_authen}"]
    );
    let e = error(&format!(
        "{MINIMAL}\n[[milter]]\nname = \"m\"\naddress = \"unix:/run/m.sock\"\n\
         [milter.macros]\nrcpt = [\"bad name\"]\n"
    ));
    assert!(e.contains("milter[0].macros.rcpt"), "{e}");
}

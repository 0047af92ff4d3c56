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
         virus_action = \"drop\"\nvirus_quarantine = \"policy\"\n",
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
}

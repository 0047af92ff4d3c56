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

//! The queue and quarantine verbs as forms: which verbs a page offers, the
//! confirmation page a first `POST` answers, and whether a `POST` is the
//! confirmed one (`confirm=yes`).
//!
//! # Security
//! Every verb is a `POST` checked by admin-http's `AuthedChange` (session,
//! CSRF token, Origin / `Sec-Fetch-Site`) before it reaches these handlers;
//! the confirmation form carries the token again. Form bodies are parsed
//! with `serde_urlencoded`; unknown fields are ignored, ids are parsed
//! [`QueueId`]s.

use askama::Template;
use postern_spool::QueueId;
use serde::Deserialize;

use super::Layout;
use crate::control::Verb;

/// A verb a page can post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Hold,
    Release,
    Retry,
    Delete,
}

impl Kind {
    /// From the URL's last segment.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hold" => Kind::Hold,
            "release" => Kind::Release,
            "retry" => Kind::Retry,
            "delete" => Kind::Delete,
            _ => return None,
        })
    }

    pub(crate) fn verb(self, id: QueueId) -> Verb {
        match self {
            Kind::Hold => Verb::Hold(id),
            Kind::Release => Verb::Release(id),
            Kind::Retry => Verb::Retry(Some(id)),
            Kind::Delete => Verb::Delete(id),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Hold => "hold",
            Kind::Release => "release",
            Kind::Retry => "retry",
            Kind::Delete => "delete",
        }
    }

    /// The button's word.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Hold => "Hold",
            Kind::Release => "Release",
            Kind::Retry => "Retry now",
            Kind::Delete => "Delete",
        }
    }

    /// What it does, for the confirmation.
    pub(crate) fn consequence(self, quarantine: bool) -> &'static str {
        match (self, quarantine) {
            (Kind::Hold, _) => {
                "The message stays queued but is not attempted until it is released."
            }
            (Kind::Release, false) => "Delivery attempts resume at the recorded times.",
            (Kind::Release, true) => {
                "The message leaves the quarantine and is delivered to its recipients."
            }
            (Kind::Retry, _) => "Its deferred recipients are attempted now.",
            (Kind::Delete, _) => {
                "The message is removed for good; no delivery status notification is sent. \
                 This cannot be undone."
            }
        }
    }
}

/// One verb button on a page.
#[derive(Debug, Clone)]
pub(crate) struct Action {
    /// The form's `action` URL.
    pub url: String,
    pub label: &'static str,
    /// The htmx dialog's question.
    pub question: String,
    pub danger: bool,
}

impl Action {
    /// The button for `kind` on message `id` under `base` (`/queue`, `/quarantine`).
    pub(crate) fn new(base: &str, id: &QueueId, kind: Kind) -> Self {
        Self {
            url: format!("{base}/{id}/{}", kind.name()),
            label: kind.label(),
            question: format!("{} message {id}?", kind.label()),
            danger: kind == Kind::Delete,
        }
    }
}

/// The form fields of a verb `POST` (the `csrf` field is admin-http's).
#[derive(Debug, Default, Deserialize)]
struct VerbForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// Whether the body says `confirm=yes`.
pub(crate) fn confirmed(body: &[u8]) -> bool {
    serde_urlencoded::from_bytes::<VerbForm>(body)
        .ok()
        .and_then(|f| f.confirm)
        .is_some_and(|c| c == "yes")
}

/// The confirmation page (the no-JavaScript path; htmx asks with a dialog).
#[derive(Template)]
#[template(path = "confirm.html")]
pub(crate) struct Confirm {
    pub layout: Layout,
    pub action: Action,
    pub consequence: &'static str,
    /// Where "Cancel" goes.
    pub back: String,
}

/// The queue and quarantine pages' verb `POST`: without `confirm=yes` the
/// confirmation page (`Err`); with it, the verb applied as `who` (named in
/// the mail log; `quarantine`: only while the message is in one, checked by
/// the scheduler in the same step) and its report, logged.
pub(crate) async fn confirm_then_apply(
    state: &crate::http::HttpState,
    who: &crate::http::Authed,
    mut layout: Layout,
    body: &[u8],
    (kind, qid): (Kind, QueueId),
    quarantine: bool,
) -> Result<crate::control::VerbReport, axum::response::Response> {
    use crate::control::{VerbContext, VerbOutcome, VerbReport};
    let base = if quarantine { "/quarantine" } else { "/queue" };
    if !confirmed(body) {
        layout.title = format!("Confirm: {} {qid}", kind.name());
        return Err(super::render(
            axum::http::StatusCode::OK,
            &Confirm {
                layout,
                consequence: kind.consequence(quarantine),
                action: Action::new(base, &qid, kind),
                back: format!("{base}/{qid}"),
            },
        ));
    }
    let v = kind.verb(qid);
    let cx = VerbContext {
        by: who.by(),
        quarantined_only: quarantine,
    };
    let report = super::queue::timed(state.control.apply_with(v.clone(), cx))
        .await
        .unwrap_or_else(|| VerbReport::outcome(&v, VerbOutcome::NotRunning));
    tracing::info!(user = %who.user, verb = kind.name(), queue_id = %qid,
        outcome = ?report.outcome, page = base, "web console: verb");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_confirm_yes_confirms() {
        assert!(confirmed(b"csrf=abc&confirm=yes"));
        assert!(!confirmed(b"csrf=abc"));
        assert!(!confirmed(b"csrf=abc&confirm=no"));
        assert!(!confirmed(b"\xff\xfe"));
        assert_eq!(Kind::parse("delete"), Some(Kind::Delete));
        assert_eq!(Kind::parse("flush"), None);
    }
}

//! Label sets of the metric families, and the bound on how many distinct
//! label sets one family may hold.
//!
//! # Security
//! Label values come from closed sets in the code (event names, stages,
//! attempt outcomes, TLS versions) or from the configuration (listener,
//! sender group, policy, quarantine names) or from catalogues (cause ids,
//! cipher suite names) — never addresses, domains or reply text. Even so a
//! bug or a hostile peer must not grow the registry without bound (every
//! label set is kept for the life of the process and rendered on every
//! scrape): each family admits at most [`MAX_LABEL_SETS`] distinct sets and
//! folds the rest into `other` ([`Limiter`]); each value is cut to
//! [`MAX_VALUE_LEN`] bytes and limited to printable ASCII.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;

/// Distinct label sets one family may hold; the rest are folded into `other`.
pub const MAX_LABEL_SETS: usize = 500;

/// Longest label value kept (bytes); longer ones are cut.
pub const MAX_VALUE_LEN: usize = 64;

/// The value that stands for everything past the bound.
pub const OTHER: &str = "other";

/// The value for an absent fact (no sender group, no policy).
pub const NONE: &str = "none";

/// A label value safe to keep: printable ASCII, at most [`MAX_VALUE_LEN`]
/// bytes; empty becomes [`NONE`].
pub fn value(raw: &str) -> String {
    let v: String = raw
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(MAX_VALUE_LEN)
        .collect();
    if v.is_empty() { NONE.to_owned() } else { v }
}

/// Remembers the label sets a family has admitted, up to [`MAX_LABEL_SETS`].
#[derive(Debug)]
pub struct Limiter<S> {
    seen: Mutex<HashSet<S>>,
    cap: usize,
}

impl<S: Hash + Eq + Clone> Limiter<S> {
    /// A limiter admitting `cap` distinct sets.
    pub fn new(cap: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            cap,
        }
    }

    /// `set` when it was seen before or there is room; otherwise `fold(set)`
    /// (which must map onto a small closed set: it is not counted).
    pub fn admit(&self, set: S, fold: impl FnOnce(S) -> S) -> S {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(&set) {
            return set;
        }
        if seen.len() < self.cap {
            seen.insert(set.clone());
            return set;
        }
        drop(seen);
        fold(set)
    }
}

impl<S: Hash + Eq + Clone> Default for Limiter<S> {
    fn default() -> Self {
        Self::new(MAX_LABEL_SETS)
    }
}

/// `{listener}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Listener {
    pub listener: String,
}

/// `{stage,rule}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageRule {
    pub stage: String,
    pub rule: String,
}

/// `{event,stage,rule}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Decision {
    pub event: String,
    pub stage: String,
    pub rule: String,
}

/// `{group,policy,event}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyDecision {
    pub group: String,
    pub policy: String,
    pub event: String,
}

/// `{quarantine}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Quarantine {
    pub quarantine: String,
}

/// `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: String,
}

/// `{outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

/// `{direction,version,cipher}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Handshake {
    pub direction: String,
    pub version: String,
    pub cipher: String,
}

/// `{direction,cause}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Failure {
    pub direction: String,
    pub cause: String,
}

/// `{state}` (read at scrape time).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct State {
    pub state: String,
}

/// `{version}` of `postern_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Version {
    pub version: String,
}

/// Session stages as the smtpd names them (its own, `StageKind`'s and the
/// milter stages); past the cap anything else folds to `other` with the rule.
pub const STAGES: &[&str] = &[
    "connect", "helo", "mail", "rcpt", "data", "data-end", "auth", "header", "eoh", "body", "eom",
];

/// `stage` when it is one of [`STAGES`], else [`OTHER`].
pub fn known_stage(stage: &str) -> String {
    if STAGES.contains(&stage) {
        stage.to_owned()
    } else {
        OTHER.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_are_printable_and_short() {
        assert_eq!(value(""), "none");
        assert_eq!(value("a b\n\"c\""), "a_b_\"c\"");
        assert_eq!(value(&"x".repeat(200)).len(), MAX_VALUE_LEN);
        assert_eq!(value("é"), "_");
    }

    #[test]
    fn limiter_folds_past_the_cap() {
        let l = Limiter::new(2);
        let fold = |_| OTHER.to_owned();
        assert_eq!(l.admit("a".to_owned(), fold), "a");
        assert_eq!(l.admit("b".to_owned(), fold), "b");
        assert_eq!(l.admit("c".to_owned(), fold), "other");
        assert_eq!(l.admit("a".to_owned(), fold), "a", "seen before");
    }
}

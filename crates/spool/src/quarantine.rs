//! Named quarantines (`[[quarantine]]`): where a message accepted *held*
//! waits for an operator, how long, and what happens when nobody decides.
//!
//! A quarantined message is an ordinary spool message whose envelope carries
//! `hold` (the reason) and `quarantine` (the name): it is as durable as any
//! queued message (fsync before the `250`, recovered after a crash), its
//! original envelope is kept, and a release hands it to delivery unchanged
//! (`docs/spool-format.md` §2, `docs/quarantine.md`).
//!
//! # Security
//! Names are identifiers (`[a-z0-9_-]`, ≤ 64 octets, checked by the config);
//! an envelope naming a quarantine that no longer exists falls back to
//! [`DEFAULT_QUARANTINE`]'s settings, so an edited configuration never frees
//! or loses quarantined mail by itself.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::envelope::DEFAULT_QUARANTINE;

/// What happens to a message still in its quarantine when the retention ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnExpiry {
    /// Removed without a DSN (its sender may be forged: a bounce would be
    /// backscatter). The `deleted` event says `via: quarantine-expiry`.
    Delete,
    /// Released into delivery as if an operator had released it
    /// (`released` event, `via: quarantine-expiry`).
    Release,
}

impl OnExpiry {
    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            OnExpiry::Delete => "delete",
            OnExpiry::Release => "release",
        }
    }
}

/// One quarantine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineSpec {
    /// How long a message stays before `on_expiry` applies, from receipt.
    pub retention: Duration,
    /// What happens then.
    pub on_expiry: OnExpiry,
    /// A line for operators (`postern quarantine list`).
    pub description: String,
}

/// The quarantines by name. Three always exist (an admin may change their
/// settings): `policy` (DMARC quarantines, filter rules by default: 14 days,
/// delete), `virus` (30 days, delete) and `spam` (14 days, delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantines {
    by_name: BTreeMap<String, QuarantineSpec>,
}

/// The built-in quarantines' names.
pub const BUILTIN_QUARANTINES: [&str; 3] = [DEFAULT_QUARANTINE, "virus", "spam"];

impl Default for Quarantines {
    fn default() -> Self {
        let day = Duration::from_hours(24);
        let mut by_name = BTreeMap::new();
        by_name.insert(
            DEFAULT_QUARANTINE.to_owned(),
            QuarantineSpec {
                retention: day * 14,
                on_expiry: OnExpiry::Delete,
                description: "policy: DMARC quarantines and filter rules".into(),
            },
        );
        by_name.insert(
            "virus".to_owned(),
            QuarantineSpec {
                retention: day * 30,
                on_expiry: OnExpiry::Delete,
                description: "messages a virus scanner found infected".into(),
            },
        );
        by_name.insert(
            "spam".to_owned(),
            QuarantineSpec {
                retention: day * 14,
                on_expiry: OnExpiry::Delete,
                description: "positive spam".into(),
            },
        );
        Self { by_name }
    }
}

impl Quarantines {
    /// Adds or replaces a quarantine.
    pub fn insert(&mut self, name: &str, spec: QuarantineSpec) {
        self.by_name.insert(name.to_owned(), spec);
    }

    /// Whether `name` is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The settings for `name`, or the default quarantine's for a name no
    /// longer configured (never frees or loses a message by itself).
    pub fn get(&self, name: &str) -> &QuarantineSpec {
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(DEFAULT_QUARANTINE))
            .unwrap_or(&FALLBACK)
    }

    /// When a message received at `received_ms` into quarantine `name`
    /// leaves it unless an operator decides first (Unix ms).
    pub fn until(&self, name: &str, received_ms: u64) -> u64 {
        let retention = u64::try_from(self.get(name).retention.as_millis()).unwrap_or(u64::MAX);
        received_ms.saturating_add(retention)
    }

    /// Every quarantine, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &QuarantineSpec)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Only reachable if the default quarantine were removed (the config never
/// does): keep for 14 days, then delete.
static FALLBACK: QuarantineSpec = QuarantineSpec {
    retention: Duration::from_hours(14 * 24),
    on_expiry: OnExpiry::Delete,
    description: String::new(),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_exist_and_unknown_names_fall_back_to_policy() {
        let q = Quarantines::default();
        for name in BUILTIN_QUARANTINES {
            assert!(q.contains(name), "{name}");
        }
        assert_eq!(q.get("virus").retention, Duration::from_hours(24 * 30));
        assert_eq!(q.get("gone"), q.get(DEFAULT_QUARANTINE));
    }
}

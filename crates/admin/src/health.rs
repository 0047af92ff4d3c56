//! What can be wrong with the queue beside its messages, as the operator sees it:
//! the spool's health ([`SpoolHealth`]: poisoned by a failed fsync, free space
//! against the `[spool] min_free` floor), queued files that cannot be read
//! ([`Unreadable`]), and the answer of `postern spool recheck`
//! ([`RecheckReport`]). Shown by `postern queue list` and `GET /v1/status`.
//!
//! # Security
//! Plain data; error texts come from the operating system and the spool, and
//! name paths under the spool directory only.

use std::time::UNIX_EPOCH;

use postern_spool::Spool;
use serde::{Deserialize, Serialize};

use crate::view::rfc3339;

/// The spool poisoned by a failed fsync: it refuses new mail (`451 4.3.0`)
/// until `postern spool recheck` succeeds or the server restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poisoned {
    /// The operation that failed (`fsync file`, `fsync directory`).
    pub op: String,
    /// The file or directory.
    pub path: String,
    /// The operating system's error.
    pub error: String,
    /// Since when, RFC 3339.
    pub since: String,
}

/// The running spool's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolHealth {
    /// Set while the spool is poisoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poisoned: Option<Poisoned>,
    /// Bytes free on the spool's file system (`None`: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
    /// The floor (`[spool] min_free`; 0: off).
    pub min_free: u64,
}

impl SpoolHealth {
    /// The health of `spool` now (blocking: may `statvfs`, at most once a
    /// second).
    pub fn of(spool: &Spool) -> Self {
        Self {
            poisoned: spool.poison_info().map(|p| Poisoned {
                op: p.op.to_string(),
                path: p.path.display().to_string(),
                error: p.error,
                since: rfc3339(
                    p.since
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                ),
            }),
            free_bytes: spool.free_space(),
            min_free: spool.min_free(),
        }
    }

    /// Below the floor: new mail is refused with `452 4.3.1`.
    pub fn low_space(&self) -> bool {
        self.min_free > 0 && self.free_bytes.is_some_and(|f| f < self.min_free)
    }

    /// One line per problem, with what to do about it; empty when healthy.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.poisoned {
            out.push(format!(
                "the spool is poisoned since {}: {} {} failed: {}; new mail is refused \
                 (451 4.3.0). Check the disk (dmesg, SMART, free space), then run \
                 `postern spool recheck` (or restart)",
                p.since, p.op, p.path, p.error
            ));
        }
        if self.low_space() {
            out.push(format!(
                "the spool's file system is low on space: {} free, below [spool] min_free \
                 {}; new mail is refused (452 4.3.1) until space is freed",
                human_bytes(self.free_bytes.unwrap_or(0)),
                human_bytes(self.min_free)
            ));
        }
        out
    }
}

/// A queued file that cannot be read: listed, not skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The queue id, or the file name in `msg/` when it is not one.
    pub name: String,
    /// Why.
    pub error: String,
    /// Failed attempts to load it (running server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The next attempt, RFC 3339 (running server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
}

/// What `postern spool recheck` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecheckReport {
    /// The test write and fsync succeeded.
    pub ok: bool,
    /// The spool was poisoned before (and, with `ok`, is not any more).
    pub was_poisoned: bool,
    /// The outcome in admin words, one line.
    pub text: String,
}

impl RecheckReport {
    /// The report of [`Spool::recheck`]'s result.
    pub fn of(
        result: Result<Option<postern_spool::PoisonInfo>, postern_spool::SpoolError>,
    ) -> Self {
        match result {
            Ok(Some(p)) => Self {
                ok: true,
                was_poisoned: true,
                text: format!(
                    "spool recheck: a test write and fsync succeeded; the poison ({} {}: {}) \
                     is cleared and new mail is accepted again",
                    p.op,
                    p.path.display(),
                    p.error
                ),
            },
            Ok(None) => Self {
                ok: true,
                was_poisoned: false,
                text: "spool recheck: a test write and fsync succeeded; the spool was not \
                       poisoned"
                    .into(),
            },
            Err(e) => Self {
                ok: false,
                was_poisoned: true,
                text: format!(
                    "spool recheck failed: {e}; the spool stays as it was. Fix the disk \
                     first"
                ),
            },
        }
    }
}

/// `104857600` → `100 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, size) in UNITS {
        if n >= size {
            let whole = n / size;
            let tenth = (n % size) * 10 / size;
            return if tenth == 0 {
                format!("{whole} {name}")
            } else {
                format!("{whole}.{tenth} {name}")
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
    }

    #[test]
    fn warnings_name_the_way_out() {
        let healthy = SpoolHealth {
            poisoned: None,
            free_bytes: Some(1 << 30),
            min_free: 100 << 20,
        };
        assert!(healthy.warnings().is_empty());
        let low = SpoolHealth {
            free_bytes: Some(10 << 20),
            ..healthy.clone()
        };
        assert!(low.low_space());
        let w = low.warnings();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("452 4.3.1") && w[0].contains("100 MiB"),
            "{w:?}"
        );
        let poisoned = SpoolHealth {
            poisoned: Some(Poisoned {
                op: "fsync file".into(),
                path: "/s/tmp/X".into(),
                error: "Input/output error (os error 5)".into(),
                since: "2026-12-06T12:00:00Z".into(),
            }),
            ..healthy
        };
        let w = poisoned.warnings();
        assert!(w[0].contains("postern spool recheck"), "{w:?}");
        assert!(w[0].contains("451 4.3.0"), "{w:?}");
    }
}

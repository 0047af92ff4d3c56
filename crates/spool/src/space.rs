//! The free-space floor (Postfix `queue_minfree`): a cached `statvfs(2)` of the
//! spool's file system, so the smtpd can refuse at `MAIL` (`452 4.3.1`) instead of
//! taking a message it cannot store, and the spool can stop keeping files for
//! reuse when the disk runs low (`docs/spool-format.md` §4, "Free space").
//!
//! # Security
//! A client that fills the disk stops the gateway's mail for everyone; the floor
//! leaves room for state records, DSNs and logs, and a `SIZE=` that would eat
//! into it is refused before any byte is read (RFC 1870 §6.1).
//!
//! # Standards
//! RFC 1870 §6.1 (`452` for a `SIZE=` the server cannot take now), RFC 3463
//! (`4.3.1` mail system full).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::SpoolError;
use crate::fs::SpoolFs;

/// The floor and the last measurement.
#[derive(Debug)]
pub(crate) struct Space {
    /// Changed live by a reload ([`Space::set_floor`]).
    floor: AtomicU64,
    interval: Duration,
    /// When the last measurement was taken, and what it said (`None`: unknown).
    last: Mutex<Option<(Instant, Option<u64>)>>,
}

impl Space {
    pub(crate) fn new(floor: u64, interval: Duration) -> Self {
        Self {
            floor: AtomicU64::new(floor),
            interval,
            last: Mutex::new(None),
        }
    }

    /// The floor in bytes (0: off).
    pub(crate) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// A new floor (`SIGHUP`), applied from the next check on.
    pub(crate) fn set_floor(&self, floor: u64) {
        self.floor.store(floor, Ordering::Relaxed);
    }

    /// Bytes free on the file system holding `dir`, measured at most once per
    /// interval. `None`: unknown (the file system cannot say, or `statvfs`
    /// failed); the floor is then not applied — the write path still maps
    /// `ENOSPC` to `452 4.3.1`.
    pub(crate) fn free(&self, fs: &dyn SpoolFs, dir: &Path) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, free)) = *last
            && at.elapsed() < self.interval
        {
            return free;
        }
        let free = match fs.free_space(dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "spool: statvfs failed");
                None
            }
        };
        *last = Some((Instant::now(), free));
        free
    }

    /// Forget the last measurement (after files were removed to make room).
    pub(crate) fn forget(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// `Ok` if the floor is off or unknown, or the free space is above it and
    /// above it by at least `declared` bytes.
    pub(crate) fn check(
        &self,
        fs: &dyn SpoolFs,
        dir: &Path,
        declared: Option<u64>,
    ) -> Result<(), SpoolError> {
        let floor = self.floor();
        if floor == 0 {
            return Ok(());
        }
        let Some(free) = self.free(fs, dir) else {
            return Ok(());
        };
        if free < floor {
            return Err(SpoolError::LowSpace {
                free,
                floor,
                declared: None,
            });
        }
        match declared {
            Some(size) if size > free - floor => Err(SpoolError::LowSpace {
                free,
                floor,
                declared: Some(size),
            }),
            _ => Ok(()),
        }
    }

    /// Is the free space within `margin` bytes of the floor? Then files are not
    /// kept for reuse: a deleted message gives its space back.
    pub(crate) fn is_low(&self, fs: &dyn SpoolFs, dir: &Path, margin: u64) -> bool {
        let floor = self.floor();
        floor > 0
            && self
                .free(fs, dir)
                .is_some_and(|free| free < floor.saturating_add(margin))
    }
}

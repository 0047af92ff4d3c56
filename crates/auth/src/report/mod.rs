//! DMARC aggregate reports (issue 10 item 5): what we record per message,
//! how a day is grouped, and the report messages we queue.
//!
//! The flow: the smtpd turns each verified message's results into a
//! [`ReportRecord`] ([`ReportRecord::from_results`]) and hands it to a
//! [`ReportRecorder`] (never blocks; JSON lines, one file per UTC day).
//! Once a day the server calls [`plan_day`] for the days not yet reported
//! ([`days_to_report`]), then [`execute`] with a [`SpoolSink`]: one message
//! per policy domain and `rua=` destination, queued through our own spool,
//! so delivery, retries, DSNs and TLS policy apply. [`prune`] deletes what
//! is older than the retention. `docs/dmarc-reports.md` is the operator's
//! page.
//!
//! Files in the reports directory (`[dmarc_reports] dir`):
//! `records-YYYY-MM-DD.jsonl` (the recorder's), and
//! `sent/YYYY-MM-DD/<policy domain>` (one marker per reported domain, with
//! the queued destinations and queue ids).
//!
//! # Security
//! Records and `rua=` URIs are untrusted (peer, DNS); see each module. The
//! recorder is bounded (queue, per-domain and per-day caps); destinations
//! are checked by RFC 7489 §7.1 before any report leaves.
//!
//! # Standards
//! RFC 7489 §7.1, §7.2, Appendix C; RFC 9990 (the report format mail-auth
//! writes).

mod aggregate;
mod days;
mod from_verify;
mod message;
mod record;
mod recorder;
mod rua;
mod send;
mod xml;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use aggregate::{Aggregate, DomainDay, RowKey};
pub use days::{day_bounds, day_name, day_of, parse_day, today};
pub use from_verify::Evaluated;
pub use message::{ReportMessage, rfc5322_date};
pub use record::{Alignment, Disposition, PolicyOverride, Published, ReportRecord};
pub use recorder::{
    RecordQueue, RecorderHandle, RecorderLimits, RecorderStats, ReportRecorder, day_file,
};
pub use rua::{Destination, RuaError, parse as parse_rua};
pub use send::{
    DayPlan, DestinationPlan, DomainPlan, OrgDomain, Outcome, ReportSink, Sent, Skip, SpoolSink,
    authorized, days_to_report, execute, marker, plan_aggregate, plan_day, prune, same_name,
};
pub use xml::{Reporter, gzip, report, to_xml};

/// Errors of the reports module.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory of the reports directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Queueing a report into the spool.
    #[error("cannot queue the report: {0}")]
    Spool(#[from] postern_spool::SpoolError),
    /// A day that is not `YYYY-MM-DD`.
    #[error("{0:?} is not a day (YYYY-MM-DD)")]
    BadDay(String),
}

/// `[dmarc_reports]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// Whether records are kept and reports sent (default false).
    pub enabled: bool,
    /// The reports directory (default `<data_dir>/dmarc`).
    pub dir: PathBuf,
    /// Report metadata: `org_name`, `email` (also the envelope sender),
    /// `contact_info`.
    pub reporter: Reporter,
    /// Time of day (UTC) of the daily run, from midnight (default 01:00).
    pub send_at: Duration,
    /// Days that day files and markers are kept (default 7).
    pub retention_days: u32,
    /// The recorder's bounds.
    pub limits: RecorderLimits,
}

impl ReportSettings {
    /// The defaults, with the directory under `data_dir`.
    pub fn new(data_dir: &Path) -> ReportSettings {
        ReportSettings {
            enabled: false,
            dir: data_dir.join("dmarc"),
            reporter: Reporter {
                org_name: String::new(),
                email: String::new(),
                contact_info: None,
            },
            send_at: Duration::from_hours(1),
            retention_days: 7,
            limits: RecorderLimits::default(),
        }
    }
}

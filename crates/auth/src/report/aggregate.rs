//! Aggregation: a day's records grouped by policy domain, then into rows of
//! identical results with a count — the `<record><row><count>` of an
//! aggregate report.
//!
//! # Security
//! Reads the recorder's own day files, but treats each line as untrusted: a
//! line that does not parse is skipped and counted, never fatal. Memory is
//! bounded by the recorder's per-day caps (what a file can hold).
//!
//! # Standards
//! RFC 7489 §7.2 and Appendix C (`RecordType`: one row per distinct
//! source IP, policy evaluation, identifiers and authentication results).

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::net::IpAddr;
use std::path::Path;

use time::Date;

use super::ReportError;
use super::record::{Disposition, PolicyOverride, Published, ReportRecord};
use super::recorder::day_file;

/// What makes two messages one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    /// Connecting address.
    pub source_ip: IpAddr,
    /// What we did.
    pub disposition: Disposition,
    /// Aligned DKIM pass.
    pub dkim_aligned: bool,
    /// Aligned SPF pass.
    pub spf_aligned: bool,
    /// Why we did not follow the policy.
    pub override_reason: Option<(PolicyOverride, String)>,
    /// RFC 5322.From domain.
    pub header_from: String,
    /// RFC 5321.MailFrom domain.
    pub envelope_from: String,
    /// RFC 5321.RcptTo domain.
    pub envelope_to: Option<String>,
    /// DKIM results (domain, selector, result).
    pub dkim: Vec<(String, String, String)>,
    /// SPF results (domain, scope, result).
    pub spf: Vec<(String, String, String)>,
}

impl RowKey {
    fn of(r: ReportRecord) -> RowKey {
        RowKey {
            source_ip: r.source_ip,
            disposition: r.disposition,
            dkim_aligned: r.dkim_aligned,
            spf_aligned: r.spf_aligned,
            override_reason: r.override_reason,
            header_from: r.header_from,
            envelope_from: r.envelope_from,
            envelope_to: r.envelope_to,
            dkim: r.dkim,
            spf: r.spf,
        }
    }
}

/// One policy domain's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDay {
    /// Where the DMARC record was found.
    pub policy_domain: String,
    /// The policy of the newest record of the day.
    pub published: Published,
    /// The `rua=` URIs of the newest record of the day.
    pub rua: Vec<String>,
    /// Rows with their counts, in a stable order.
    pub rows: BTreeMap<RowKey, u32>,
    /// Messages in the day (sum of the counts).
    pub messages: u64,
    /// Time of the newest record (decides `published` and `rua`).
    newest: i64,
}

/// A day's records, by policy domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    /// Policy domain → its day.
    pub domains: BTreeMap<String, DomainDay>,
    /// Lines of the day file that did not parse.
    pub bad_lines: u64,
}

impl Aggregate {
    /// Adds one record.
    pub fn add(&mut self, mut r: ReportRecord) {
        r.normalize();
        let d = self
            .domains
            .entry(r.policy_domain.clone())
            .or_insert_with(|| DomainDay {
                policy_domain: r.policy_domain.clone(),
                published: r.published,
                rua: r.rua.clone(),
                rows: BTreeMap::new(),
                messages: 0,
                newest: r.time,
            });
        if r.time >= d.newest {
            d.newest = r.time;
            d.published = r.published;
            d.rua.clone_from(&r.rua);
        }
        d.messages += 1;
        let n = d.rows.entry(RowKey::of(r)).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Groups records.
    pub fn of(records: impl IntoIterator<Item = ReportRecord>) -> Aggregate {
        let mut a = Aggregate::default();
        for r in records {
            a.add(r);
        }
        a
    }

    /// Reads and groups a day file of `dir` (empty when there is none).
    pub fn read_day(dir: &Path, day: Date) -> Result<Aggregate, ReportError> {
        let path = day_file(dir, day);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Aggregate::default()),
            Err(e) => return Err(ReportError::Io { path, source: e }),
        };
        let mut a = Aggregate::default();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| ReportError::Io {
                path: path.clone(),
                source: e,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<ReportRecord>(&line) {
                // A record of another day (clock step) still counts for the
                // day whose file it is in: the file is the unit of a report.
                Ok(r) => a.add(r),
                Err(_) => a.bad_lines += 1,
            }
        }
        Ok(a)
    }
}

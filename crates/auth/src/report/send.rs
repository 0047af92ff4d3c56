//! Sending a day's reports: [`plan_day`] groups the day, writes each policy
//! domain's report and decides, per `rua=` destination, whether to send
//! (URI usable, §7.1 external destination authorised, `!size` respected);
//! [`execute`] queues the messages through a [`ReportSink`] (the spool, in
//! the server) and writes the sent-markers; [`prune`] deletes old files.
//!
//! A day is reported once: after a policy domain's messages are queued, the
//! marker `sent/YYYY-MM-DD/<policy domain>` is written (by rename), and a
//! domain with a marker is skipped from then on, across restarts. A crash
//! between the queueing and the marker sends that domain's report again at
//! the next run (a duplicate with the same Report-ID, never a loss). A
//! domain whose every destination failed only by a DNS error gets no marker
//! and is tried again at the next run.
//!
//! # Security
//! Destinations come from DNS: only `mailto:` with one plain address; a
//! destination outside the policy domain's organisation gets reports only
//! when it publishes `<policy-domain>._report._dmarc.<its domain>` with
//! `v=DMARC1` (RFC 7489 §7.1), so a domain owner cannot make us mail
//! reports to a third party. The marker's file name is the policy domain,
//! checked to be a plain DNS name first.
//!
//! # Standards
//! RFC 7489 §7.1 (external destinations), §7.2 (aggregate reports),
//! §7.2.1.1 (the message), §6.2 (`!size`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mail_auth::common::cache::NoCache;
use mail_auth::{MessageAuthenticator, Txt};
use postern_spool::{Envelope, EnvelopeRecipient, MailParams, QueueId, Receipt, Spool};
use time::{Date, OffsetDateTime};

use super::aggregate::{Aggregate, DomainDay};
use super::days::{day_name, parse_day};
use super::message::ReportMessage;
use super::rua::{self, RuaError};
use super::xml::{self, Reporter};
use super::{ReportError, ReportSettings};

/// The organisational domain of a name (RFC 7489 §3.2). The server passes
/// its public-suffix lookup; [`same_name`] treats every name as its own
/// organisation (then only the policy domain and its subdomains count as
/// internal, like mail-auth's check).
pub type OrgDomain<'a> = dyn Fn(&str) -> String + Send + Sync + 'a;

/// Every name is its own organisational domain.
pub fn same_name(name: &str) -> String {
    name.to_owned()
}

/// A day's plan.
#[derive(Debug, Clone)]
pub struct DayPlan {
    /// The day.
    pub day: Date,
    /// One entry per policy domain with records.
    pub domains: Vec<DomainPlan>,
    /// Lines of the day file that did not parse.
    pub bad_lines: u64,
}

/// One policy domain's report.
#[derive(Debug, Clone)]
pub struct DomainPlan {
    /// The policy domain.
    pub policy_domain: String,
    /// A marker says it was sent already: nothing to do.
    pub already_sent: bool,
    /// Messages the report covers.
    pub messages: u64,
    /// Rows (`<record>` elements).
    pub rows: usize,
    /// The report id.
    pub report_id: String,
    /// The attachment name (`receiver!domain!begin!end.xml.gz`).
    pub attachment_name: String,
    /// The XML.
    pub xml: String,
    /// Size of the gzip attachment.
    pub gz_len: usize,
    /// What happens per destination.
    pub destinations: Vec<DestinationPlan>,
}

/// One `rua=` URI and what happens to it.
#[derive(Debug, Clone)]
pub struct DestinationPlan {
    /// The URI as published.
    pub uri: String,
    /// Send or skip.
    pub outcome: Outcome,
}

/// Send or skip, and why.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Queue this message to this address.
    Send {
        /// The mailbox.
        address: String,
        /// The whole message.
        message: Vec<u8>,
    },
    /// Not sent.
    Skip(Skip),
}

/// Why a destination gets no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// The URI cannot be used.
    #[error("{0}")]
    Uri(#[from] RuaError),
    /// The report is larger than the destination's `!size`.
    #[error(
        "the report message is {size} bytes, the destination accepts at most {limit} (RFC 7489 §6.2 !size)"
    )]
    TooLarge {
        /// `!size` in bytes.
        limit: u64,
        /// Our message's size.
        size: u64,
    },
    /// §7.1: the destination's domain did not authorise reports for the
    /// policy domain.
    #[error("external destination not authorised: no v=DMARC1 record at {0} (RFC 7489 §7.1)")]
    NotAuthorized(String),
    /// §7.1 could not be checked (DNS failure): tried again at the next run.
    #[error("external destination check failed (DNS error at {0}); will retry")]
    DnsFailed(String),
    /// The same address was listed twice.
    #[error("duplicate destination")]
    Duplicate,
}

/// Where report messages go.
pub trait ReportSink {
    /// Queues one message from `from` to `to`; returns an id to log (the
    /// queue id).
    fn queue(&self, from: &str, to: &str, message: &[u8]) -> Result<String, ReportError>;
}

/// Queues into the spool as an ordinary message (so delivery, retries,
/// DSNs and TLS policy apply); `on_queued` tells the scheduler.
pub struct SpoolSink<'a> {
    /// The spool.
    pub spool: &'a Spool,
    /// Our hostname (the envelope's HELO field).
    pub hostname: &'a str,
    /// Called with each committed envelope.
    pub on_queued: &'a (dyn Fn(&Envelope) + Send + Sync),
}

impl ReportSink for SpoolSink<'_> {
    fn queue(&self, from: &str, to: &str, message: &[u8]) -> Result<String, ReportError> {
        let mut inc = self.spool.begin()?;
        inc.write_all(message)?;
        let env = inc.commit(Envelope {
            queue_id: QueueId::generate(),
            received_at: String::new(),
            reverse_path: from.to_owned(),
            recipients: vec![EnvelopeRecipient {
                address: to.to_owned(),
                notify: None,
                orcpt: None,
            }],
            params: MailParams::default(),
            receipt: Receipt {
                listener: "dmarc-report".into(),
                peer: String::new(),
                helo: self.hostname.to_owned(),
                auth_user: None,
                tls: None,
                ..Default::default()
            },
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        })?;
        (self.on_queued)(&env);
        Ok(env.queue_id.to_string())
    }
}

/// A policy domain that is a plain DNS name (safe as a file name).
fn is_plain_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && !d.starts_with('.')
        && !d.contains("..")
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// `<dir>/sent/YYYY-MM-DD/<policy domain>`.
pub fn marker(dir: &Path, day: Date, policy_domain: &str) -> PathBuf {
    dir.join("sent").join(day_name(day)).join(policy_domain)
}

/// Whether §7.1 allows `dest_domain` to receive `policy_domain`'s reports:
/// `Some(true)` internal or authorised, `Some(false)` not, `None` DNS error.
pub async fn authorized(
    auth: &MessageAuthenticator,
    policy_domain: &str,
    dest_domain: &str,
    org: &OrgDomain<'_>,
) -> Option<bool> {
    let internal = dest_domain == policy_domain
        || dest_domain.ends_with(&format!(".{policy_domain}"))
        || org(dest_domain) == org(policy_domain);
    if internal {
        return Some(true);
    }
    let probe = [format!("dmarc@{dest_domain}")];
    auth.verify_dmarc_report_address(policy_domain, &probe, None::<&NoCache<Box<str>, Txt>>)
        .await
        .map(|ok| !ok.is_empty())
}

/// Builds the plan for `day` from the day file in `settings.dir` (reads
/// the file in place: see [`plan_aggregate`] to read it elsewhere).
pub async fn plan_day(
    settings: &ReportSettings,
    day: Date,
    auth: &MessageAuthenticator,
    org: &OrgDomain<'_>,
    now: OffsetDateTime,
) -> Result<DayPlan, ReportError> {
    let agg = Aggregate::read_day(&settings.dir, day)?;
    Ok(plan_aggregate(settings, day, &agg, auth, org, now).await)
}

/// Builds the plan for `day` from its records, already read and grouped
/// ([`Aggregate::read_day`], blocking file I/O).
pub async fn plan_aggregate(
    settings: &ReportSettings,
    day: Date,
    agg: &Aggregate,
    auth: &MessageAuthenticator,
    org: &OrgDomain<'_>,
    now: OffsetDateTime,
) -> DayPlan {
    let mut domains = Vec::with_capacity(agg.domains.len());
    for (i, d) in agg.domains.values().enumerate() {
        if !is_plain_domain(&d.policy_domain) {
            tracing::warn!(policy_domain = ?d.policy_domain, "dmarc reports: not a plain domain name; skipped");
            continue;
        }
        domains.push(plan_domain(settings, day, d, auth, org, now, i).await);
    }
    DayPlan {
        day,
        domains,
        bad_lines: agg.bad_lines,
    }
}

async fn plan_domain(
    settings: &ReportSettings,
    day: Date,
    d: &DomainDay,
    auth: &MessageAuthenticator,
    org: &OrgDomain<'_>,
    now: OffsetDateTime,
    index: usize,
) -> DomainPlan {
    let reporter: &Reporter = &settings.reporter;
    let report = xml::report(reporter, d, day);
    let xml_text = xml::to_xml(&report);
    let gz = xml::gzip(&xml_text);
    let report_id = reporter.report_id(&d.policy_domain, day);
    let attachment_name = reporter.attachment_name(&d.policy_domain, day);
    let already_sent = marker(&settings.dir, day, &d.policy_domain).exists();
    let mut destinations = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    if !already_sent {
        let submitter = reporter.submitter();
        for (j, uri) in d.rua.iter().enumerate() {
            let outcome = match rua::parse(uri) {
                Err(e) => Outcome::Skip(Skip::Uri(e)),
                Ok(dest) if seen.contains(&dest.address.to_ascii_lowercase()) => {
                    Outcome::Skip(Skip::Duplicate)
                }
                Ok(dest) => {
                    seen.push(dest.address.to_ascii_lowercase());
                    let dest_domain = dest.domain();
                    match authorized(auth, &d.policy_domain, &dest_domain, org).await {
                        None => Outcome::Skip(Skip::DnsFailed(format!(
                            "{}._report._dmarc.{dest_domain}",
                            d.policy_domain
                        ))),
                        Some(false) => Outcome::Skip(Skip::NotAuthorized(format!(
                            "{}._report._dmarc.{dest_domain}",
                            d.policy_domain
                        ))),
                        Some(true) => {
                            let unique =
                                format!("{}.{}.{index}.{j}", report_id, now.unix_timestamp_nanos());
                            let message = ReportMessage {
                                org_name: &reporter.org_name,
                                from: &reporter.email,
                                to: &dest.address,
                                submitter: &submitter,
                                policy_domain: &d.policy_domain,
                                report_id: &report_id,
                                attachment_name: &attachment_name,
                                gz: &gz,
                                date: now,
                                unique: &unique,
                            }
                            .build();
                            let size = message.len() as u64;
                            match dest.max_size {
                                Some(limit) if size > limit => {
                                    Outcome::Skip(Skip::TooLarge { limit, size })
                                }
                                _ => Outcome::Send {
                                    address: dest.address,
                                    message,
                                },
                            }
                        }
                    }
                }
            };
            destinations.push(DestinationPlan {
                uri: uri.clone(),
                outcome,
            });
        }
    }
    DomainPlan {
        policy_domain: d.policy_domain.clone(),
        already_sent,
        messages: d.messages,
        rows: d.rows.len(),
        report_id,
        attachment_name,
        gz_len: gz.len(),
        xml: xml_text,
        destinations,
    }
}

/// One queued report message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The policy domain.
    pub policy_domain: String,
    /// The destination mailbox.
    pub to: String,
    /// What the sink answered (the queue id).
    pub id: String,
}

/// Queues the plan's messages and writes the markers. Logs every skipped
/// destination. A sink error stops at that domain (no marker for it) and
/// is returned after the markers of the domains done so far.
pub fn execute(
    settings: &ReportSettings,
    plan: &DayPlan,
    sink: &dyn ReportSink,
) -> Result<Vec<Sent>, ReportError> {
    let mut sent = Vec::new();
    let day = day_name(plan.day);
    for d in plan.domains.iter().filter(|d| !d.already_sent) {
        let mut retry = false;
        let mut lines = String::new();
        for dest in &d.destinations {
            match &dest.outcome {
                Outcome::Send { address, message } => {
                    let id = sink.queue(&settings.reporter.email, address, message)?;
                    tracing::info!(day = %day, policy_domain = %d.policy_domain, to = %address,
                        queue_id = %id, messages = d.messages, rows = d.rows, "dmarc report queued");
                    let _ = writeln!(lines, "{address} {id}");
                    sent.push(Sent {
                        policy_domain: d.policy_domain.clone(),
                        to: address.clone(),
                        id,
                    });
                }
                Outcome::Skip(why) => {
                    retry |= matches!(why, Skip::DnsFailed(_));
                    tracing::warn!(day = %day, policy_domain = %d.policy_domain, uri = %dest.uri,
                        reason = %why, "dmarc report destination skipped");
                }
            }
        }
        if retry && lines.is_empty() {
            continue;
        }
        write_marker(&marker(&settings.dir, plan.day, &d.policy_domain), &lines)?;
    }
    Ok(sent)
}

fn write_marker(path: &Path, text: &str) -> Result<(), ReportError> {
    let io = |e| ReportError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(parent) = path.parent() {
        super::recorder::create_dir(parent)?;
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Days before `today` that have a records file (newest last), within the
/// retention window: the days a run should look at (one with every
/// domain marked is a cheap no-op).
pub fn days_to_report(settings: &ReportSettings, today: Date) -> Result<Vec<Date>, ReportError> {
    let oldest = today
        .checked_sub(time::Duration::days(i64::from(settings.retention_days)))
        .unwrap_or(Date::MIN);
    let mut days: Vec<Date> = record_days(&settings.dir)?
        .into_iter()
        .filter(|d| *d < today && *d >= oldest)
        .collect();
    days.sort();
    Ok(days)
}

fn record_days(dir: &Path) -> Result<Vec<Date>, ReportError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ReportError::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    Ok(rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let day = name.strip_prefix("records-")?.strip_suffix(".jsonl")?;
            parse_day(day).ok()
        })
        .collect())
}

/// Deletes day files and markers older than `retention_days` before
/// `today`. Returns how many entries were removed.
pub fn prune(settings: &ReportSettings, today: Date) -> Result<usize, ReportError> {
    let oldest = today
        .checked_sub(time::Duration::days(i64::from(settings.retention_days)))
        .unwrap_or(Date::MIN);
    let mut removed = 0;
    for day in record_days(&settings.dir)? {
        if day < oldest {
            let p = super::recorder::day_file(&settings.dir, day);
            std::fs::remove_file(&p).map_err(|e| ReportError::Io { path: p, source: e })?;
            removed += 1;
        }
    }
    let sent = settings.dir.join("sent");
    if let Ok(rd) = std::fs::read_dir(&sent) {
        for e in rd.filter_map(Result::ok) {
            let old = e
                .file_name()
                .to_str()
                .and_then(|n| parse_day(n).ok())
                .is_some_and(|d| d < oldest);
            if old {
                let p = e.path();
                std::fs::remove_dir_all(&p).map_err(|e| ReportError::Io { path: p, source: e })?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

//! What a connection did, for the operator and the scheduler: the `attempt`
//! event, per-recipient results, and the failure causes of DNS answers and
//! session errors.
//!
//! # Security
//! Replies are untrusted text: kept as one line with control characters
//! replaced, never interpreted beyond the code.

use std::net::SocketAddr;
use std::time::Instant;

use postern_dns::DnsError;
use postern_dns::cause::Lookup;
use postern_smtpc::{ClientError, Reply, TlsInfo, TransactionOutcome};
use postern_track::{Attempt, CauseInfo, MailEvent, PeerCert, TlsOutcome};

use super::{Facts, Failure, SmtpTransport};
use crate::cause;
use crate::transport::{Job, JobOutcome, RcptResult, Verdict};

impl SmtpTransport {
    pub(super) fn emit_failed(&self, job: &Job, facts: &Facts, f: &Failure, started: Instant) {
        self.emit_attempt(job, facts, "failed", &[], Some(f), started);
    }

    pub(super) fn emit_attempt(
        &self,
        job: &Job,
        facts: &Facts,
        outcome: &str,
        results: &[RcptResult],
        failure: Option<&Failure>,
        started: Instant,
    ) {
        let outcome = if outcome.is_empty() {
            summarize(results)
        } else {
            outcome.to_owned()
        };
        let reply = failure
            .and_then(|f| f.reply.clone())
            .or_else(|| results.iter().find_map(|r| r.reply.clone()));
        let mut cause = failure
            .map(|f| f.cause.clone())
            .or_else(|| facts.downgrade_cause.clone())
            .or_else(|| results.iter().find_map(|r| r.cause.clone()))
            .or_else(|| facts.warning.clone());
        // No fix advice on success: a delivered attempt keeps the cause of
        // its downgrade or warning as a fact, not as something to change.
        if outcome == "delivered"
            && let Some(c) = cause.as_mut()
        {
            c.fix.clear();
        }
        let route = &job.route;
        let (policy, policy_reason) = facts
            .policy
            .clone()
            .unwrap_or_else(|| (route.tls, route.why.clone()));
        self.log.emit(
            job.queue_id,
            MailEvent::Attempt(Box::new(Attempt {
                rcpts: job.addresses(),
                destination: route.destination.clone(),
                route: route.kind.to_owned(),
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                policy: policy.as_str().to_owned(),
                policy_reason,
                starttls_offered: facts.starttls_offered,
                tls: facts.tls.as_ref().map(tls_outcome),
                downgraded: facts.downgraded,
                outcome,
                reply,
                cause,
                attempt: job.attempt,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })),
        );
    }
}

pub(super) fn outcome(job: &Job, results: Vec<RcptResult>) -> JobOutcome {
    JobOutcome {
        job: job.clone(),
        results,
    }
}

/// Every recipient of `job` gets the same failure.
pub(super) fn all(job: &Job, f: &Failure, facts: &Facts) -> JobOutcome {
    let verdict = if f.permanent {
        Verdict::Bounced
    } else {
        Verdict::Deferred
    };
    outcome(
        job,
        job.rcpts
            .iter()
            .map(|i| RcptResult {
                rcpt: *i,
                verdict,
                reply: f.reply.clone(),
                cause: Some(f.cause.clone()),
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                tls: facts
                    .tls
                    .as_ref()
                    .map(|t| format!("{} {}", t.facts.version, t.facts.cipher)),
                remote_dsn: false,
                final_delivery: false,
            })
            .collect(),
    )
}

pub(super) fn results_of(
    job: &Job,
    outcome: &TransactionOutcome,
    facts: &Facts,
) -> Vec<RcptResult> {
    job.rcpts
        .iter()
        .enumerate()
        .map(|(pos, i)| {
            let reply = outcome.rcpt_result(pos);
            let (verdict, cause) = match reply {
                Some(r) if (200..300).contains(&r.code) => (Verdict::Delivered, None),
                Some(r) if r.is_permanent() => (
                    Verdict::Bounced,
                    Some(cause::from_tls(&postern_smtpc::cause::reply_permanent(
                        &facts.host,
                        r,
                    ))),
                ),
                Some(r) => (
                    Verdict::Deferred,
                    Some(cause::from_tls(&postern_smtpc::cause::reply_transient(
                        &facts.host,
                        r,
                    ))),
                ),
                None => (
                    Verdict::Deferred,
                    Some(cause::internal("no reply recorded for this recipient")),
                ),
            };
            RcptResult {
                rcpt: *i,
                verdict,
                reply: reply.map(one_line),
                cause,
                mx: facts.host.clone(),
                ip: facts.ip.clone(),
                tls: facts
                    .tls
                    .as_ref()
                    .map(|t| format!("{} {}", t.facts.version, t.facts.cipher)),
                remote_dsn: verdict == Verdict::Delivered && facts.remote_dsn,
                final_delivery: false,
            }
        })
        .collect()
}

fn summarize(results: &[RcptResult]) -> String {
    let first = results.first().map(|r| r.verdict);
    if results.iter().any(|r| Some(r.verdict) != first) {
        return "partial".into();
    }
    match first {
        Some(Verdict::Delivered) => "delivered",
        Some(Verdict::Deferred) => "deferred",
        Some(Verdict::Bounced) => "bounced",
        None => "failed",
    }
    .into()
}

/// `550 5.1.1 text` on one line.
pub(super) fn one_line(r: &Reply) -> String {
    let mut out = r.code.to_string();
    if let Some(e) = r.enhanced {
        out.push(' ');
        out.push_str(&e.to_string());
    }
    let text: Vec<&str> = r
        .lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    if !text.is_empty() {
        out.push(' ');
        out.push_str(&text.join(" / "));
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub(super) fn tls_cause(c: &postern_tls::cause::Cause) -> CauseInfo {
    cause::from_tls(c)
}

fn tls_outcome(t: &TlsInfo) -> TlsOutcome {
    let verdict = t.verdict.as_ref();
    TlsOutcome {
        version: t.facts.version.clone(),
        cipher: t.facts.cipher.clone(),
        group: t.facts.group.clone(),
        verified: verdict.is_some_and(postern_tls::client::PeerVerdict::is_verified),
        verification: verdict.map_or_else(
            || "no certificate".to_owned(),
            |v| {
                if v.is_verified() {
                    "ok".to_owned()
                } else {
                    v.summary()
                }
            },
        ),
        peer_cert: verdict
            .and_then(postern_tls::client::PeerVerdict::leaf)
            .map(|d| PeerCert {
                subject: d.subject,
                sans: d.sans,
                fingerprint_sha256: d.sha256,
                not_after: postern_tls::client::format_date(d.not_after),
                issuer: d.issuer,
            }),
    }
}

pub(super) fn dns_failure(name: &str, e: &DnsError, lookup: Lookup) -> Failure {
    let c = e.cause(name, lookup);
    // Only "no such domain" for the recipient domain is known to be
    // permanent; everything else defers (unknown = defer).
    let permanent = c.id == cause::NO_SUCH_DOMAIN;
    Failure {
        cause: cause::from_dns(c),
        reply: None,
        permanent,
    }
}

/// Classifies a session error for one host with the session catalogue
/// (`postern_smtpc::cause`). Never permanent: a refused greeting or EHLO
/// moves on to the next host and finally defers. The body comes from our
/// spool, so a read failure is delivery's `delivery.spool_read`, and input
/// the client refuses to send is `delivery.internal`.
pub(super) fn client_failure(host: &str, addr: SocketAddr, e: &ClientError) -> Failure {
    let detail = e.to_string();
    let cause = match e {
        ClientError::Body { .. } => cause::spool_read(&detail),
        ClientError::Invalid { .. } => cause::internal(&detail),
        _ => cause::from_tls(&e.cause(&format!("{host} ({addr})"))),
    };
    let reply = match e {
        ClientError::UnexpectedReply { reply, .. } => Some(one_line(reply)),
        _ => None,
    };
    Failure {
        permanent: false,
        cause,
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::EnhancedCode;

    #[test]
    fn one_line_reply() {
        let r = Reply::multiline(
            550,
            Some(EnhancedCode::new(5, 1, 1)),
            vec!["no such".into(), "user\r\nX".into()],
        );
        assert_eq!(one_line(&r), "550 5.1.1 no such / user  X");
    }

    #[test]
    fn summaries() {
        let r = |v| RcptResult {
            rcpt: 0,
            verdict: v,
            reply: None,
            cause: None,
            mx: String::new(),
            ip: String::new(),
            tls: None,
            remote_dsn: false,
            final_delivery: false,
        };
        assert_eq!(summarize(&[r(Verdict::Delivered)]), "delivered");
        assert_eq!(
            summarize(&[r(Verdict::Delivered), r(Verdict::Bounced)]),
            "partial"
        );
        assert_eq!(summarize(&[]), "failed");
    }
}

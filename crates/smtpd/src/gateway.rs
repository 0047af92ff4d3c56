//! Gateway admission as the server runs it: the DNS lookups sender groups
//! need (PTR, FCrDNS, DNS lists), asked only when a matcher needs them, and
//! the per-session state of the chosen mail-flow policy.
//!
//! The decisions are `postern_policy::admission`'s (pure); this module does
//! the I/O. `postern trace` uses [`classify`] too, so the dry run asks the
//! same questions as a live session.
//!
//! # Security
//! Every step has a deadline ([`LOOKUP_TIMEOUT`]: the PTR query, all
//! forward lookups of the PTR names together, all DNS lists together); a
//! lookup that fails or
//! times out is recorded as failed and matches nothing — a DNS outage never
//! rejects mail, nor allowlists it. At most [`MAX_PTR_NAMES`] PTR names are
//! forward-checked (a hostile reverse zone could list hundreds; RFC 8601
//! §2.7.3 leaves the bound to the verifier, Postfix and Sendmail use ~10).
//!
//! # Standards
//! RFC 5782 (DNS lists), RFC 8601 §2.7.3 (iprev / FCrDNS), RFC 1912 §2.1.

use std::net::IpAddr;
use std::time::Duration;

use postern_dns::{DnsError, Resolver};
use postern_policy::admission::{
    Admission, Classification, Classified, ClientFacts, ListAnswer, Lookup, Need,
};

/// Deadline of each DNS step (PTR, the forward lookups, the DNS lists).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// PTR names checked for FCrDNS.
pub const MAX_PTR_NAMES: usize = 10;

/// What the server uses beyond its settings: the DNS resolver sender groups
/// ask (none: DNS matchers never match, and the server says so at start) and
/// the counter store of rate limits, DHAP and greylisting (none: an
/// in-process store).
#[derive(Clone, Default)]
pub struct Services {
    /// The resolver for PTR, FCrDNS and DNS lists.
    pub resolver: Option<Resolver>,
    /// The counter store (`[counters]`).
    pub counters: Option<std::sync::Arc<dyn postern_counters::CounterStore>>,
    /// The mail log, for session events (rejected, deferred, throttled,
    /// greylisted).
    pub mail_log: Option<postern_track::MailLog>,
    /// Where DMARC results go for aggregate reports (`[dmarc_reports]`;
    /// `None`: nowhere). Recording never blocks a session.
    pub dmarc_reports: Option<postern_auth::report::ReportRecorder>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("resolver", &self.resolver)
            .field("counters", &self.counters.as_ref().map(|c| c.backend()))
            .field("mail_log", &self.mail_log)
            .field("dmarc_reports", &self.dmarc_reports.is_some())
            .finish()
    }
}

/// Chooses the client's sender group, looking up the DNS facts the groups
/// need on the way.
pub async fn classify(
    admission: &Admission,
    facts: &mut ClientFacts,
    resolver: Option<&Resolver>,
) -> Classification {
    loop {
        match admission.classify(facts) {
            Classified::Done(c) => return c,
            Classified::Need(need) => fill(need, admission, facts, resolver).await,
        }
    }
}

/// Looks up one missing fact (every DNS list at once for [`Need::DnsLists`]).
async fn fill(
    need: Need,
    admission: &Admission,
    facts: &mut ClientFacts,
    resolver: Option<&Resolver>,
) {
    let Some(r) = resolver else {
        let why = "no DNS resolver configured".to_owned();
        match need {
            Need::Ptr => facts.ptr = Lookup::Failed(why),
            Need::Fcrdns => facts.fcrdns = Lookup::Failed(why),
            Need::DnsLists => facts.lists = Lookup::Failed(why),
        }
        return;
    };
    let ip = facts.ip;
    match need {
        Need::Ptr => facts.ptr = ptr(r, ip).await,
        Need::Fcrdns => {
            if !facts.ptr.is_asked() {
                facts.ptr = ptr(r, ip).await;
            }
            facts.fcrdns = match &facts.ptr {
                Lookup::Done(names) => {
                    let (result, verified) = fcrdns(r, ip, names).await;
                    facts.verified = verified;
                    result
                }
                Lookup::Failed(why) => Lookup::Failed(why.clone()),
                Lookup::NotAsked => Lookup::Failed("PTR not looked up".into()),
            };
        }
        Need::DnsLists => {
            let mut set = tokio::task::JoinSet::new();
            for (i, zone) in admission.zones().into_iter().enumerate() {
                let r = r.clone();
                set.spawn(async move {
                    let result =
                        match tokio::time::timeout(LOOKUP_TIMEOUT, r.dns_list(ip, &zone)).await {
                            Ok(Ok(codes)) => Ok(codes),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err(format!(
                                "{zone}: no answer within {}s",
                                LOOKUP_TIMEOUT.as_secs()
                            )),
                        };
                    (i, ListAnswer { zone, result })
                });
            }
            let mut answers = Vec::new();
            while let Some(joined) = set.join_next().await {
                if let Ok(a) = joined {
                    answers.push(a);
                }
            }
            answers.sort_by_key(|(i, _)| *i);
            for (_, a) in &answers {
                if let Err(why) = &a.result {
                    tracing::info!(zone = %a.zone, %ip, error = %why,
                        "DNS list lookup failed; treated as not listed");
                }
            }
            facts.lists = Lookup::Done(answers.into_iter().map(|(_, a)| a).collect());
        }
    }
}

/// The PTR names, or why they are unknown (no resolver, a failure).
pub(crate) async fn ptr_of(resolver: Option<&Resolver>, ip: IpAddr) -> Lookup<Vec<String>> {
    match resolver {
        Some(r) => ptr(r, ip).await,
        None => Lookup::Failed("no DNS resolver configured".into()),
    }
}

/// The PTR names; none is an answer, a failure is not.
async fn ptr(r: &Resolver, ip: IpAddr) -> Lookup<Vec<String>> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, r.ptr(ip)).await {
        Ok(Ok(mut names)) => {
            names.truncate(MAX_PTR_NAMES);
            Lookup::Done(names)
        }
        Ok(Err(DnsError::NxDomain { .. } | DnsError::NoRecords { .. })) => Lookup::Done(Vec::new()),
        Ok(Err(e)) => {
            tracing::info!(%ip, error = %e, "PTR lookup failed; PTR matchers undecided");
            Lookup::Failed(e.to_string())
        }
        Err(_) => Lookup::Failed(format!(
            "PTR of {ip}: no answer within {}s",
            LOOKUP_TIMEOUT.as_secs()
        )),
    }
}

/// Forward-confirmed reverse DNS: some PTR name's A/AAAA includes `ip`.
/// Pass as soon as one confirms; fail when every name answered without it;
/// undecided when none confirmed and some lookup failed.
async fn fcrdns(r: &Resolver, ip: IpAddr, names: &[String]) -> (Lookup<bool>, Vec<String>) {
    let want = postern_policy::admission::matcher::canonical_ip(ip);
    // All names at once under one deadline: a hostile reverse zone listing
    // ten slow names costs at most LOOKUP_TIMEOUT, not ten of them.
    let mut set = tokio::task::JoinSet::new();
    for name in names.iter().take(MAX_PTR_NAMES) {
        // A PTR target spelled like an address ("192.0.2.1.") would be
        // taken as a literal by `addresses` and "confirm" itself.
        if name.trim_end_matches('.').parse::<IpAddr>().is_ok() {
            continue;
        }
        let (r, name) = (r.clone(), name.clone());
        set.spawn(async move {
            let answer = r.addresses(&name).await;
            (name, answer)
        });
    }
    let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
    let mut failure = None;
    // Every confirmed name (not only the first): `rdns-verified:` matches
    // any of them.
    let mut verified = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok((name, Ok(found))))) => {
                if found
                    .addrs
                    .iter()
                    .any(|a| postern_policy::admission::matcher::canonical_ip(*a) == want)
                {
                    verified.push(name);
                }
            }
            Ok(Some(
                Ok((_, Err(DnsError::NxDomain { .. } | DnsError::NoRecords { .. }))) | Err(_),
            )) => {}
            Ok(Some(Ok((_, Err(e))))) => failure = Some(e.to_string()),
            Err(_) => {
                failure = Some(format!(
                    "forward lookups of the PTR names: no answer within {}s",
                    LOOKUP_TIMEOUT.as_secs()
                ));
                break;
            }
        }
    }
    verified.sort();
    let result = match failure {
        _ if !verified.is_empty() => Lookup::Done(true),
        Some(why) => Lookup::Failed(why),
        None => Lookup::Done(false),
    };
    (result, verified)
}

//! The TLS plan of each host: which level a connection to this MX host must
//! achieve, and why — after DANE (RFC 7672) and MTA-STS (RFC 8461) had their
//! say. The transport asks here once per destination domain
//! ([`Planner::domain`]) and once per MX host ([`Planner::host`]), then
//! enforces the plan on the connection ([`HostPlan::judge`]).
//!
//! Levels come from the route (`[[route]] tls`, `relayhost_tls`, or
//! `[delivery] tls`). When the level is the default one and
//! `upgrade_tls` is on ([`crate::Route::upgrade`]), it is raised:
//!
//! 1. to `dane` for a host whose TLSA records are DNSSEC-authenticated, and
//!    whose MX and address answers are authenticated too (RFC 7672 §2.2);
//! 2. else to `mta-sts` when the domain's policy is in mode `enforce` (hosts
//!    the policy does not list are skipped, RFC 8461 §4.1); a policy in mode
//!    `testing` changes nothing but what is recorded: each would-be failure is
//!    logged as a warning with the attempt (§5);
//! 3. else the default applies.
//!
//! DANE wins over MTA-STS (RFC 8461 §2: "senders who implement DANE … SHOULD
//! use DANE" when TLSA records exist). A level written by the operator is
//! never changed: `dane` and `mta-sts` written in a route are mandatory (no
//! TLSA / no policy → defer), which is what `postern tls verify --policy`
//! checks too (ADR 0005).
//!
//! # Security
//! TLSA records count only from DNSSEC-authenticated answers, and only when
//! the MX and address answers that led to the host were authenticated: an
//! attacker who can forge an unsigned MX answer must not be able to choose
//! the TLSA records (RFC 7672 §2.2.1, §2.2.2). A TLSA lookup that *fails*
//! under an authenticated MX makes the host unusable rather than
//! unauthenticated (RFC 7672 §2.2: a bogus or indeterminate answer may be an
//! attack). MTA-STS policies are fetched over PKIX-verified HTTPS with bounded
//! time and size and cached on disk (`postern_tlspolicy::mta_sts`); an
//! unexpired cached policy keeps applying when the TXT lookup or the fetch
//! fails (RFC 8461 §5.1: that is what defeats an attacker who blocks them).
//!
//! # Standards
//! RFC 7672 §2.2 (DANE applicability), §3.1 (usages), §3.2.2 (names);
//! RFC 8461 §2, §4.1 (MX matching), §5 (policy application), §5.1;
//! RFC 7435 (opportunistic security).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use postern_dns::{DnsError, Resolver, Tlsa};
use postern_tls::cause::Cause;
use postern_tls::client::PeerVerdict;
use postern_tlspolicy::judge::{self, DaneEvidence, Judgement};
use postern_tlspolicy::mta_sts::{ActivePolicy, Discovery, Mode, MtaSts, TxtOutcome};
use postern_tlspolicy::{cause as policy_cause, dane};

use crate::route::Route;
use crate::settings::TlsLevel;

/// Decides the level per host. One per transport.
#[derive(Debug, Clone)]
pub struct Planner {
    mta_sts: Option<MtaSts>,
    /// Why MTA-STS discovery is unavailable (the HTTPS client could not be
    /// built), for routes that require it.
    mta_sts_error: Option<String>,
    /// The port TLSA records are looked up for (`_25._tcp`).
    port: u16,
    /// Domains whose announced policy could not be fetched (and had none
    /// cached), until when: a black-holed policy host must not cost every
    /// message to that domain a full fetch timeout.
    unfetchable: Arc<Mutex<HashMap<String, Instant>>>,
}

/// How long a failed MTA-STS fetch (with no cached policy) is remembered
/// before the next try. RFC 8461 §5.1 lets a sender go on without a policy
/// then; retrying every few minutes picks a repaired policy host up soon.
pub const UNFETCHABLE_FOR: Duration = Duration::from_mins(5);

/// The domain's MTA-STS policy in force (mode `enforce` or `testing`).
#[derive(Debug, Clone, Default)]
pub struct DomainPlan {
    sts: Option<ActivePolicy>,
}

/// What a connection to one host must achieve.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// The level enforced on the connection.
    pub level: TlsLevel,
    /// Why that level applies, for the `attempt` event.
    pub why: String,
    /// `dane`: the TLSA owner name and its authenticated records.
    dane: Option<(String, Vec<Tlsa>)>,
    /// A policy in mode `testing` applies: check it, record, never refuse.
    sts_testing: Option<ActivePolicy>,
    /// A warning found while planning (MTA-STS testing: the host is not
    /// listed), recorded with the attempt.
    pub warning: Option<Cause>,
}

impl Planner {
    /// `mta_sts`: discovery with its cache (`Err`: why it is unavailable).
    pub fn new(mta_sts: Result<MtaSts, String>, port: u16) -> Self {
        let (mta_sts, mta_sts_error) = match mta_sts {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            mta_sts,
            mta_sts_error,
            port,
            unfetchable: Arc::default(),
        }
    }

    /// The domain-wide part: MTA-STS discovery, when the route's level is
    /// `mta-sts` or may be raised. `Err`: the route requires MTA-STS and the
    /// domain has no usable policy (defer).
    pub async fn domain(
        &self,
        resolver: &Resolver,
        route: &Route,
        domain: &str,
    ) -> Result<DomainPlan, Cause> {
        let required = route.tls == TlsLevel::MtaSts;
        if !required && !route.upgrade {
            return Ok(DomainPlan { sts: None });
        }
        let Some(mta_sts) = &self.mta_sts else {
            if required {
                let why = self.mta_sts_error.clone().unwrap_or_default();
                return Err(policy_cause::mta_sts_fetch_failed(domain, "", &why));
            }
            return Ok(DomainPlan { sts: None });
        };
        if !required && self.recently_unfetchable(domain) {
            return Ok(DomainPlan { sts: None });
        }
        let d = mta_sts.discover(resolver, domain, SystemTime::now()).await;
        if let Some(e) = &d.cache_error {
            tracing::warn!(domain, error = %e, "MTA-STS policy cache");
        }
        if let Some(p) = d.effective() {
            return Ok(DomainPlan {
                sts: Some(p.clone()),
            });
        }
        if required {
            return Err(not_published(&d, domain));
        }
        if let Some(e) = &d.fetch_error {
            // Announced but not fetchable, nothing cached: RFC 8461 §5.1 —
            // deliver as without a policy (the fix is on their side).
            tracing::info!(domain, url = %d.url, error = %e,
                "MTA-STS policy announced but not fetched; delivering without it");
            if let Ok(mut m) = self.unfetchable.lock() {
                let now = Instant::now();
                m.retain(|_, until| *until > now);
                m.insert(domain.to_owned(), now + UNFETCHABLE_FOR);
            }
        }
        Ok(DomainPlan { sts: None })
    }

    fn recently_unfetchable(&self, domain: &str) -> bool {
        self.unfetchable
            .lock()
            .is_ok_and(|m| m.get(domain).is_some_and(|until| *until > Instant::now()))
    }

    /// The plan for `host` (reached through an MX answer that was
    /// `mx_authenticated`, with addresses that were `addrs_authenticated`).
    /// `Err`: this host must not be used (next host, then defer).
    pub async fn host(
        &self,
        resolver: &Resolver,
        route: &Route,
        domain_plan: &DomainPlan,
        host: &str,
        mx_authenticated: bool,
        addrs_authenticated: bool,
    ) -> Result<HostPlan, Cause> {
        let explicit_dane = route.tls == TlsLevel::Dane;
        let by_name = host.parse::<std::net::IpAddr>().is_err();
        let base = HostPlan {
            level: route.tls,
            why: route.why.clone(),
            dane: None,
            sts_testing: None,
            warning: None,
        };
        if explicit_dane && !by_name {
            return Err(policy_cause::dane_unavailable(
                host,
                "an address literal has no TLSA records (RFC 7672 §3.2.2)",
            ));
        }
        if explicit_dane || (route.upgrade && by_name) {
            match self
                .dane_records(resolver, host, mx_authenticated, addrs_authenticated)
                .await
            {
                DaneLookup::Records(name, records) => {
                    let why = if explicit_dane {
                        format!("{}; TLSA at {name}", route.why)
                    } else {
                        format!(
                            "raised from {} ({}) to dane: DNSSEC-authenticated TLSA at {name} \
                             (RFC 7672)",
                            route.tls, route.why
                        )
                    };
                    return Ok(HostPlan {
                        level: TlsLevel::Dane,
                        why,
                        dane: Some((name, records)),
                        ..base
                    });
                }
                DaneLookup::Unusable(reason) => {
                    return Err(policy_cause::dane_unavailable(host, &reason));
                }
                DaneLookup::NotApplicable(reason) => {
                    if explicit_dane {
                        return Err(policy_cause::dane_unavailable(host, &reason));
                    }
                }
            }
        }
        let Some(p) = &domain_plan.sts else {
            return Ok(base);
        };
        let pattern = p.policy.matching_pattern(host).map(str::to_owned);
        let enforce = p.policy.mode == Mode::Enforce || route.tls == TlsLevel::MtaSts;
        let domain = route.destination.as_str();
        if enforce {
            let Some(pattern) = pattern else {
                return Err(policy_cause::mta_sts_mx_mismatch(
                    domain,
                    host,
                    &p.policy.mx,
                ));
            };
            let why = if route.tls == TlsLevel::MtaSts {
                format!(
                    "{}; MTA-STS policy id {} (mode {}), MX matches {pattern}",
                    route.why, p.id, p.policy.mode
                )
            } else {
                format!(
                    "raised from {} ({}) to mta-sts: policy id {} in mode enforce, MX matches \
                     {pattern} (RFC 8461)",
                    route.tls, route.why, p.id
                )
            };
            return Ok(HostPlan {
                level: TlsLevel::MtaSts,
                why,
                ..base
            });
        }
        // Mode testing: deliver as without a policy, record what would fail.
        let warning = match judge::mta_sts_host(
            TlsLevel::Opportunistic,
            domain,
            host,
            &p.policy.mx,
            pattern.as_deref(),
        ) {
            Judgement::Pass => None,
            Judgement::Warn(c) | Judgement::Fail(c) => Some(testing(c)),
        };
        Ok(HostPlan {
            why: format!(
                "{}; MTA-STS policy id {} in mode testing: checked and reported, not enforced \
                 (RFC 8461 §5)",
                route.why, p.id
            ),
            sts_testing: Some(p.clone()),
            warning,
            ..base
        })
    }

    async fn dane_records(
        &self,
        resolver: &Resolver,
        host: &str,
        mx_authenticated: bool,
        addrs_authenticated: bool,
    ) -> DaneLookup {
        if !resolver.can_authenticate() {
            return DaneLookup::NotApplicable(
                "the resolver cannot authenticate answers ([dns] dnssec = \"off\", or the name \
                 servers' AD bit is not trusted)"
                    .into(),
            );
        }
        if !mx_authenticated {
            return DaneLookup::NotApplicable(
                "the MX answer that named it is not DNSSEC-authenticated (RFC 7672 §2.2.1)".into(),
            );
        }
        if !addrs_authenticated {
            return DaneLookup::NotApplicable(format!(
                "the addresses of {host} are not DNSSEC-authenticated (RFC 7672 §2.2.2)"
            ));
        }
        match resolver.tlsa(self.port, host).await {
            Ok(l) if l.authenticated => DaneLookup::Records(l.name, l.records),
            Ok(l) => DaneLookup::NotApplicable(format!(
                "the TLSA records at {} are not DNSSEC-authenticated",
                l.name
            )),
            Err(DnsError::NxDomain { .. } | DnsError::NoRecords { .. }) => {
                DaneLookup::NotApplicable(format!("no TLSA records at _{}._tcp.{host}", self.port))
            }
            // RFC 7672 §2.2: under a signed MX, a TLSA lookup that fails (not
            // "no records") may be an attack: the host is not used.
            Err(e) => DaneLookup::Unusable(format!("the TLSA lookup failed: {e}")),
        }
    }
}

enum DaneLookup {
    Records(String, Vec<Tlsa>),
    /// DANE does not apply to the host (why).
    NotApplicable(String),
    /// The host must not be used (why).
    Unusable(String),
}

impl HostPlan {
    /// Judges a completed handshake against the plan: `Err` refuses the
    /// connection (QUIT before MAIL); `Ok(Some(..))` is a warning to record.
    /// Levels below `verify` only record (the certificate facts go with the
    /// attempt anyway); `verify` and `mta-sts` need PKIX and the MX name;
    /// `dane` needs a TLSA match (DANE-TA also the name).
    pub fn judge(&self, host: &str, verdict: Option<&PeerVerdict>) -> Result<Option<Cause>, Cause> {
        let Some(verdict) = verdict else {
            if self.level >= TlsLevel::Verify {
                return Err(policy_cause::no_certificate(host));
            }
            return Ok(None);
        };
        if self.level == TlsLevel::Dane {
            let evidence = self
                .dane
                .as_ref()
                .map(|(name, records)| (name.as_str(), dane::match_tlsa(records, &verdict.chain)));
            let j = judge::certificate(
                TlsLevel::Dane,
                host,
                verdict,
                evidence
                    .as_ref()
                    .map(|(tlsa_name, result)| DaneEvidence { tlsa_name, result }),
            );
            return match j {
                Judgement::Pass => Ok(None),
                Judgement::Warn(c) => Ok(Some(c)),
                Judgement::Fail(c) => Err(c),
            };
        }
        if self.level >= TlsLevel::Verify {
            return match judge::certificate(self.level, host, verdict, None) {
                Judgement::Fail(c) => Err(c),
                Judgement::Pass | Judgement::Warn(_) => Ok(None),
            };
        }
        if self.sts_testing.is_some()
            && let Judgement::Fail(c) = judge::certificate(TlsLevel::MtaSts, host, verdict, None)
        {
            return Ok(Some(testing(c)));
        }
        Ok(None)
    }

    /// A policy in mode testing applies and the session is not encrypted:
    /// the warning to record (delivery goes on, RFC 8461 §5).
    pub fn plaintext_warning(&self, at: &str, domains: &[String]) -> Option<Cause> {
        self.sts_testing.as_ref().map(|_| {
            testing(policy_cause::starttls_not_offered(
                at,
                domains,
                TlsLevel::MtaSts,
            ))
        })
    }
}

/// Marks a cause as "would have failed under enforce".
fn testing(mut c: Cause) -> Cause {
    c.summary = format!("MTA-STS testing (not enforced): {}", c.summary);
    c
}

/// The cause for a route that requires MTA-STS when discovery found none.
fn not_published(d: &Discovery, domain: &str) -> Cause {
    if let Some(e) = &d.fetch_error {
        return policy_cause::mta_sts_fetch_failed(domain, &d.url, &e.to_string());
    }
    match (&d.policy, &d.txt) {
        (Some(_), _) => policy_cause::mta_sts_not_published(domain, "the policy's mode is none"),
        (None, TxtOutcome::Absent { reason } | TxtOutcome::Error { detail: reason }) => {
            policy_cause::mta_sts_not_published(domain, reason)
        }
        (None, TxtOutcome::Record { .. }) => {
            policy_cause::mta_sts_not_published(domain, "no policy could be fetched")
        }
    }
}

//! MTA-STS (RFC 8461): does a domain publish a policy, what does it say, and
//! does an MX host satisfy it?
//!
//! [`MtaSts::discover`] runs the whole discovery (RFC 8461 §3, §5.1):
//!
//! 1. TXT `_mta-sts.<domain>` → exactly one `v=STSv1; id=…` record
//!    ([`record::select_record`]);
//! 2. a cached policy with the same id and not expired is used as is;
//! 3. otherwise the policy is fetched over HTTPS ([`PolicyFetcher`]) and
//!    cached under the new id;
//! 4. when the TXT record is missing or the fetch fails, an unexpired cached
//!    policy is still used (that is what protects against an attacker who
//!    blocks the lookup); without one there is no policy.
//!
//! A policy in mode `none` is returned as found: the caller treats it as
//! "no policy" (§5).
//!
//! # Security
//! See the submodules: TXT and policy bodies are untrusted and parsed with
//! limits; the fetch is PKIX-verified, bounded and redirect-free; the cache
//! stays inside its directory.
//!
//! # Standards
//! RFC 8461 §3.1 (TXT), §3.2 (policy), §3.3 (fetch), §4.1 (MX matching),
//! §5.1 (policy application control flow).

pub mod cache;
pub mod fetch;
pub mod policy;
pub mod record;

use std::time::SystemTime;

use postern_dns::{DnsError, Resolver};

pub use cache::{CachedPolicy, PolicyCache};
pub use fetch::{FetchError, FetchSettings, Fetched, PolicyFetcher};
pub use policy::{Mode, Policy, PolicyError, mx_matches, pattern_matches};
pub use record::{RecordError, StsRecord, select_record};

/// What the `_mta-sts` TXT lookup gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxtOutcome {
    /// One valid record.
    Record {
        /// The policy id.
        id: String,
        /// The record text.
        text: String,
    },
    /// No usable record (none, several, malformed, or the name does not
    /// exist): the domain does not do MTA-STS, or broke its record.
    Absent {
        /// Why, for people.
        reason: String,
    },
    /// The lookup failed (SERVFAIL, timeout): unknown.
    Error {
        /// The DNS error.
        detail: String,
    },
}

/// Where the policy in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Fetched just now.
    Fetched,
    /// From the cache.
    Cache,
}

/// The policy in force for a domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivePolicy {
    /// The id it was published under.
    pub id: String,
    /// The policy.
    pub policy: Policy,
    /// Fetched now or cached.
    pub source: Source,
    /// When it was fetched (seconds since the epoch).
    pub fetched_at: u64,
}

/// Everything discovery found for one domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discovery {
    /// The policy domain.
    pub domain: String,
    /// The TXT lookup.
    pub txt: TxtOutcome,
    /// The policy URL.
    pub url: String,
    /// The policy in force (any mode), if any.
    pub policy: Option<ActivePolicy>,
    /// The fetch failure, when a fetch was tried and failed.
    #[serde(serialize_with = "display_error")]
    pub fetch_error: Option<FetchError>,
    /// A cached policy could not be stored (or read): the text.
    pub cache_error: Option<String>,
}

#[allow(clippy::ref_option)] // the signature serde's `serialize_with` calls
fn display_error<S: serde::Serializer>(e: &Option<FetchError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

impl Discovery {
    /// The policy in force if its mode is `enforce` or `testing`.
    pub fn effective(&self) -> Option<&ActivePolicy> {
        self.policy.as_ref().filter(|p| p.policy.mode != Mode::None)
    }
}

/// Discovery with an optional cache.
#[derive(Debug, Clone)]
pub struct MtaSts {
    fetcher: PolicyFetcher,
    cache: Option<PolicyCache>,
}

impl MtaSts {
    /// `cache: None` always fetches (what `tls verify` does).
    pub fn new(fetcher: PolicyFetcher, cache: Option<PolicyCache>) -> Self {
        Self { fetcher, cache }
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &PolicyFetcher {
        &self.fetcher
    }

    /// Runs discovery for `domain` at `now` (see the module docs).
    pub async fn discover(&self, resolver: &Resolver, domain: &str, now: SystemTime) -> Discovery {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let url = self.fetcher.url_for(&domain).unwrap_or_default();
        let txt = lookup_txt(resolver, &domain).await;
        let mut out = Discovery {
            domain: domain.clone(),
            txt,
            url,
            policy: None,
            fetch_error: None,
            cache_error: None,
        };
        let cached = match &self.cache {
            Some(cache) => match cache.get_fresh(&domain, now) {
                Ok(c) => c,
                Err(e) => {
                    out.cache_error = Some(e.to_string());
                    None
                }
            },
            None => None,
        };
        let from_cache = |c: CachedPolicy| ActivePolicy {
            id: c.id,
            policy: c.policy,
            source: Source::Cache,
            fetched_at: c.fetched_at,
        };
        let TxtOutcome::Record { id, .. } = &out.txt else {
            // No (usable) record or no answer: an unexpired cached policy
            // still applies (RFC 8461 §5.1).
            out.policy = cached.map(from_cache);
            return out;
        };
        let id = id.clone();
        if let Some(c) = cached.as_ref().filter(|c| c.id == id) {
            out.policy = Some(from_cache(c.clone()));
            return out;
        }
        match self.fetcher.fetch(&domain).await {
            Ok(fetched) => {
                let entry = CachedPolicy {
                    domain: domain.clone(),
                    id: id.clone(),
                    fetched_at: cache::unix(now),
                    policy: fetched.policy,
                };
                if let Some(Err(e)) = self.cache.as_ref().map(|c| c.put(&entry)) {
                    tracing::warn!(error = %e, "cannot store the MTA-STS policy");
                    out.cache_error = Some(e.to_string());
                }
                out.policy = Some(ActivePolicy {
                    id,
                    policy: entry.policy,
                    source: Source::Fetched,
                    fetched_at: entry.fetched_at,
                });
            }
            Err(e) => {
                out.fetch_error = Some(e);
                out.policy = cached.map(from_cache);
            }
        }
        out
    }
}

async fn lookup_txt(resolver: &Resolver, domain: &str) -> TxtOutcome {
    let name = format!("_mta-sts.{domain}");
    match resolver.txt(&name).await {
        Ok(found) => match select_record(&found.records) {
            Ok(r) => {
                let text = found
                    .records
                    .iter()
                    .find(|t| t.starts_with("v=STSv1"))
                    .cloned()
                    .unwrap_or_default();
                TxtOutcome::Record { id: r.id, text }
            }
            Err(e) => TxtOutcome::Absent {
                reason: format!("{name}: {e}"),
            },
        },
        Err(e @ (DnsError::NxDomain { .. } | DnsError::NoRecords { .. })) => TxtOutcome::Absent {
            reason: e.to_string(),
        },
        Err(e) => TxtOutcome::Error {
            detail: e.to_string(),
        },
    }
}

//! Recipient validation at RCPT for the accepted domains: is there such a
//! user? Three sources, chosen per domain by `[[recipients]]` (first entry
//! whose domains match decides): a recipients table file (`table.rs`,
//! reloaded live), an SMTP call-ahead to the internal host (`call_ahead.rs`,
//! answers cached), or the route's Maildir folder.
//!
//! A recipient outside the accepted domains (relaying) is not validated, nor
//! a domain no entry names (any local part is accepted, as before), nor
//! postmaster. Authenticated and relay-network clients are validated like
//! everyone else: a typo of theirs is better refused than bounced.
//!
//! The table semantics and the replies are `postern_policy::recipients`'s
//! (pure); this module does the I/O.
//!
//! # Security
//! Refusing unknown users at RCPT instead of accepting and bouncing stops
//! backscatter (RFC 5321 §6.1): a forged sender never receives our DSN. It
//! also tells a directory harvester which addresses exist: the verdict
//! [`RecipientVerdict::Unknown`] is what the DHAP budget counts. Our own
//! failures (a table that cannot be read, an internal host that does not
//! answer) never become a `550`: they defer (`451 4.4.3`) or, with
//! `on_error = "accept"`, accept (tenet 1: unknown errors defer).
//!
//! # Standards
//! RFC 5321 §4.5.1 (postmaster), §6.1 (backscatter), §3.5.3 (RCPT as
//! verification); RFC 3463 (5.1.1, 4.4.3).

mod call_ahead;
mod table;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_dns::Resolver;
use postern_policy::recipients::{RecipientVerdict, is_postmaster, replies};
use postern_policy::{Domains, RelaySettings};
use postern_proto::ForwardPath;

/// What to do when the source cannot answer (call-ahead timeout, refused
/// connection, a `4xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// `451 4.4.3`: the client retries later (default).
    #[default]
    TempFail,
    /// Accept the recipient unverified (a later bounce is possible).
    Accept,
}

/// TLS on the call-ahead connection (from the route's level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallAheadTls {
    /// Plain SMTP (route level `none`).
    Off,
    /// STARTTLS when the host offers it, else plain (default; route levels
    /// `opportunistic`, `opportunistic-strict`).
    #[default]
    Opportunistic,
    /// STARTTLS or no answer (route levels `required`, `verify`, `dane`,
    /// `mta-sts`). The certificate is recorded, not verified: see
    /// `call_ahead.rs`.
    Required,
}

/// An SMTP call-ahead: `MAIL FROM:<>` / `RCPT TO:<addr>` to the internal host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallAheadSettings {
    /// The internal host (a name or an IP address).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Our name in EHLO.
    pub helo_name: String,
    /// The whole dialogue (connect to RSET) must end within this. Default 10 s.
    pub timeout: Duration,
    /// How long a "the user exists" answer is kept. Default 1 hour.
    pub cache_ttl: Duration,
    /// How long a "no such user" answer is kept. Default 10 minutes.
    pub negative_ttl: Duration,
    /// Answers kept at most. Default 10 000.
    pub cache_size: usize,
    /// Call-aheads in progress at once for this entry; more wait (within
    /// `timeout`). Default 20.
    pub max_concurrent: usize,
    /// What a failed call-ahead means. Default `TempFail`.
    pub on_error: OnError,
    /// STARTTLS to the internal host. Default `Opportunistic`.
    pub tls: CallAheadTls,
}

impl CallAheadSettings {
    /// Defaults for `host:port`.
    pub fn new(host: impl Into<String>, port: u16, helo_name: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            helo_name: helo_name.into(),
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_hours(1),
            negative_ttl: Duration::from_mins(10),
            cache_size: 10_000,
            max_concurrent: 20,
            on_error: OnError::TempFail,
            tls: CallAheadTls::Opportunistic,
        }
    }

    /// `host:port` (`[v6]:port`).
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The Maildir folder of an address (the delivery route's template, built
/// by `postern-config`); `None` when the address cannot name one.
type PathOf = dyn Fn(&str) -> Option<PathBuf> + Send + Sync;

/// The Maildir check: the recipient's folder must exist.
#[derive(Clone)]
pub struct MaildirLookup {
    describe: String,
    path_of: Arc<PathOf>,
}

impl MaildirLookup {
    /// `describe` is shown in logs (the template); `path_of` maps an
    /// address to its Maildir.
    pub fn new(
        describe: impl Into<String>,
        path_of: impl Fn(&str) -> Option<PathBuf> + Send + Sync + 'static,
    ) -> Self {
        Self {
            describe: describe.into(),
            path_of: Arc::new(path_of),
        }
    }
}

impl fmt::Debug for MaildirLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaildirLookup({})", self.describe)
    }
}

impl PartialEq for MaildirLookup {
    fn eq(&self, other: &Self) -> bool {
        self.describe == other.describe && Arc::ptr_eq(&self.path_of, &other.path_of)
    }
}

impl Eq for MaildirLookup {}

/// Where the answer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientSource {
    /// A recipients table file (absolute path).
    Table(PathBuf),
    /// An SMTP call-ahead.
    CallAhead(CallAheadSettings),
    /// The route's Maildir folder must exist.
    Maildir(MaildirLookup),
}

/// One `[[recipients]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRule {
    /// Domain patterns (`example.com`, `.example.com` for subdomains).
    pub domains: Vec<String>,
    /// The source.
    pub source: RecipientSource,
    /// Where it is written (`recipients[0]`), for logs.
    pub origin: String,
}

/// A verdict and where it came from, for the log and the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecipientCheck {
    pub verdict: RecipientVerdict,
    /// `table /etc/postern/recipients.txt`, `call-ahead 10.0.0.5:25`, …
    pub source: String,
    /// Why it could not be verified, or what the internal host said.
    pub detail: Option<String>,
}

impl RecipientCheck {
    fn not_checked() -> Self {
        Self {
            verdict: RecipientVerdict::NotChecked,
            source: String::new(),
            detail: None,
        }
    }
}

enum Source {
    /// A call-ahead in `postern trace`: not made (nothing is sent in a dry
    /// run); the target, for the answer's detail.
    Skipped(String),
    Table(table::LiveTable),
    CallAhead(Arc<call_ahead::CallAhead>),
    Maildir(MaildirLookup),
}

struct Rule {
    domains: Domains,
    source: Source,
}

/// The validator of one configuration generation (rebuilt, tables re-read,
/// on reload).
pub(crate) struct Recipients {
    accepted: Domains,
    rules: Vec<Rule>,
}

impl Recipients {
    /// Builds the validator; reads the table files (a file that cannot be
    /// read is logged; its domains defer until it can).
    pub(crate) fn new(relay: &RelaySettings, rules: &[RecipientRule]) -> Self {
        let rules = rules
            .iter()
            .map(|r| Rule {
                domains: Domains::new(&r.domains),
                source: match &r.source {
                    RecipientSource::Table(p) => Source::Table(table::LiveTable::open(p.clone())),
                    RecipientSource::CallAhead(c) => {
                        Source::CallAhead(Arc::new(call_ahead::CallAhead::new(c.clone())))
                    }
                    RecipientSource::Maildir(m) => Source::Maildir(m.clone()),
                },
            })
            .collect();
        Self {
            accepted: Domains::new(&relay.accepted_domains),
            rules,
        }
    }

    /// For `postern trace`: like [`Recipients::new`], but a call-ahead entry
    /// is not made (a dry run sends nothing): its recipients are not checked.
    pub(crate) fn for_trace(relay: &RelaySettings, rules: &[RecipientRule]) -> Self {
        let mut r = Self::new(relay, rules);
        for (rule, raw) in r.rules.iter_mut().zip(rules) {
            if let RecipientSource::CallAhead(c) = &raw.source {
                rule.source = Source::Skipped(c.target());
            }
        }
        r
    }

    /// Takes over the call-ahead caches of `old` for every entry whose
    /// settings did not change (a reload re-reads tables, but need not ask
    /// the internal host again about every user).
    pub(crate) fn keep_caches(&mut self, old: &Recipients) {
        for rule in &mut self.rules {
            let Source::CallAhead(new) = &mut rule.source else {
                continue;
            };
            let same = old.rules.iter().find_map(|r| match &r.source {
                Source::CallAhead(o) if o.settings() == new.settings() => Some(o),
                _ => None,
            });
            if let Some(o) = same {
                *new = Arc::clone(o);
            }
        }
    }

    /// No `[[recipients]]` entry: nothing is validated.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Validates one recipient.
    pub(crate) async fn check(
        &self,
        to: &ForwardPath,
        resolver: Option<&Resolver>,
    ) -> RecipientCheck {
        // RFC 5321 §4.5.1: postmaster is always accepted.
        let ForwardPath::Mailbox(mb) = to else {
            return RecipientCheck::not_checked();
        };
        if is_postmaster(&mb.local_part) || !self.accepted.contains(&mb.domain) {
            return RecipientCheck::not_checked();
        }
        let Some(rule) = self.rules.iter().find(|r| r.domains.contains(&mb.domain)) else {
            return RecipientCheck::not_checked();
        };
        let addr = mb.to_string();
        match &rule.source {
            Source::Table(t) => t.check(&mb.local_part, &mb.domain, &addr).await,
            Source::CallAhead(c) => c.check(&addr, resolver).await,
            Source::Maildir(m) => maildir(m, &addr).await,
            Source::Skipped(target) => RecipientCheck {
                verdict: RecipientVerdict::NotChecked,
                source: format!("call-ahead {target}"),
                detail: Some("not made in a trace (a dry run sends nothing)".into()),
            },
        }
    }
}

/// The Maildir check, as delivery with `create = false` decides: a folder
/// is valid, a missing one unknown, anything else (permissions, a file in
/// its place) cannot be verified.
async fn maildir(m: &MaildirLookup, addr: &str) -> RecipientCheck {
    let source = format!("maildir {}", m.describe);
    let Some(path) = (m.path_of)(addr) else {
        // Delivery would refuse it too (553 5.1.3: it cannot name a folder).
        return RecipientCheck {
            verdict: RecipientVerdict::Unknown(replies::unknown(addr)),
            source,
            detail: Some("the address cannot name a Maildir folder".into()),
        };
    };
    let (verdict, detail) = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_dir() => (RecipientVerdict::Valid, None),
        Ok(_) => (
            RecipientVerdict::Unverifiable(replies::unverifiable(addr)),
            Some(format!("{} is not a directory", path.display())),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            RecipientVerdict::Unknown(replies::unknown(addr)),
            Some(format!("no folder {}", path.display())),
        ),
        Err(e) => (
            RecipientVerdict::Unverifiable(replies::unverifiable(addr)),
            Some(format!("{}: {e}", path.display())),
        ),
    };
    RecipientCheck {
        verdict,
        source,
        detail,
    }
}

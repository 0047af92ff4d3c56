//! Sender groups and the classification of a client: the groups are tried
//! top-down (first match wins, a `continue` policy goes on), and the result
//! names the group, the policy, and every step for the log and `postern trace`.
//!
//! Classification is pure and resumable: when a matcher needs a DNS fact not
//! yet known, [`Admission::classify`] returns [`Classified::Need`]; the
//! driver looks it up (PTR, FCrDNS, every DNS list at once) and asks again.
//! A group that matches by address never costs a DNS query.
//!
//! # Security
//! First match wins, so an allowlist above a blocklist exempts its members
//! (ESA's model); `config check` flags groups that can never match. A matcher
//! whose DNS lookup failed matches nothing and the step says why.
//!
//! # Standards
//! RFC 5782 (DNS lists), RFC 8601 §2.7.3 (iprev).

use std::collections::BTreeSet;
use std::fmt;

use super::facts::{ClientFacts, Lookup};
use super::flow::{FlowAction, MailFlowPolicy};
use super::matcher::{Matcher, Need, canonical_ip, is_listing_code};

/// One `[[dns_list]]`: a zone and its weight in `dnsbl-score`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsList {
    /// The zone (lower case, no trailing dot).
    pub zone: String,
    /// The answers that count (`None`: any listing code).
    pub codes: Option<super::matcher::CodePattern>,
    /// Added to the score when the client is listed; negative for allowlists.
    pub weight: i32,
}

/// One `[[sender_group]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderGroup {
    /// Its name (`BLOCKLIST`, `SUSPECT`, `ALL`).
    pub name: String,
    /// Any of these matches the client.
    pub matchers: Vec<Matcher>,
    /// Index into [`Admission::policies`].
    pub policy: usize,
    /// Only on these listeners (empty: all).
    pub listeners: Vec<String>,
}

/// How one group fared for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The group is for other listeners.
    OtherListener,
    /// No matcher matched; the ones that could not be decided, with why.
    NoMatch {
        /// Matchers whose DNS lookup failed, with the reason.
        undecided: Vec<(String, String)>,
    },
    /// This matcher matched.
    Matched {
        /// The matcher as written.
        by: String,
    },
}

/// One group's step in a classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The group's name.
    pub group: String,
    /// Its outcome.
    pub outcome: StepOutcome,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            StepOutcome::OtherListener => write!(f, "{}: not on this listener", self.group),
            StepOutcome::NoMatch { undecided } if undecided.is_empty() => {
                write!(f, "{}: no match", self.group)
            }
            StepOutcome::NoMatch { undecided } => {
                write!(f, "{}: no match (", self.group)?;
                for (i, (m, why)) in undecided.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{m} undecided: {why}")?;
                }
                f.write_str(")")
            }
            StepOutcome::Matched { by } => write!(f, "{}: matched by {by}", self.group),
        }
    }
}

/// The outcome of a classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The group that decided, `None` when none matched (the default policy).
    pub group: Option<String>,
    /// Index into [`Admission::policies`], `None` for the default policy.
    pub policy: Option<usize>,
    /// Every group tried, in order.
    pub steps: Vec<Step>,
    /// The `dnsbl-score`, when the DNS lists were asked.
    pub score: Option<i32>,
}

/// [`Admission::classify`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Decided.
    Done(Classification),
    /// Look this up, then ask again.
    Need(Need),
}

enum Eval {
    Yes,
    No,
    Undecided(String),
    Need(Need),
}

/// Sender groups, mail-flow policies and DNS lists, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// The groups, in order.
    pub groups: Vec<SenderGroup>,
    /// The policies the groups name.
    pub policies: Vec<MailFlowPolicy>,
    /// The `[[dns_list]]` zones for `dnsbl-score`.
    pub lists: Vec<DnsList>,
    /// `[greylist]`: how policies with `greylist = true` greylist.
    pub greylist: super::flow::GreylistSettings,
    /// `[auth_ban]`: bans for failed AUTH.
    pub auth_ban: super::flow::AuthBanSettings,
    default_policy: DefaultPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DefaultPolicy(MailFlowPolicy);

impl Default for DefaultPolicy {
    fn default() -> Self {
        Self(MailFlowPolicy::default_accept())
    }
}

impl Admission {
    /// Builds the table; group policy indexes must be valid (the config
    /// builder checks names).
    pub fn new(
        groups: Vec<SenderGroup>,
        policies: Vec<MailFlowPolicy>,
        lists: Vec<DnsList>,
    ) -> Self {
        Self {
            groups,
            policies,
            lists,
            greylist: super::flow::GreylistSettings::default(),
            auth_ban: super::flow::AuthBanSettings::default(),
            default_policy: DefaultPolicy::default(),
        }
    }

    /// True when some group matches on a DNS fact (PTR, FCrDNS, DNS lists):
    /// the server then needs a resolver.
    pub fn needs_dns(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.matchers)
            .any(|m| m.needs().is_some())
    }

    /// True when no sender group is configured (every client gets the default).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The policy of a classification.
    pub fn policy(&self, c: &Classification) -> &MailFlowPolicy {
        c.policy
            .and_then(|i| self.policies.get(i))
            .unwrap_or(&self.default_policy.0)
    }

    /// The built-in policy for clients no group matched (accept, no limits).
    pub fn default_policy(&self) -> &MailFlowPolicy {
        &self.default_policy.0
    }

    /// A policy by name.
    pub fn policy_named(&self, name: &str) -> Option<&MailFlowPolicy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Every DNS list zone to ask: the `[[dns_list]]` ones and those named in
    /// `dnsbl:` matchers, each once.
    pub fn zones(&self) -> Vec<String> {
        let mut set: BTreeSet<String> = self.lists.iter().map(|l| l.zone.clone()).collect();
        for g in &self.groups {
            for m in &g.matchers {
                if let Matcher::DnsList { zone, .. } = m {
                    set.insert(zone.clone());
                }
            }
        }
        set.into_iter().collect()
    }

    /// Chooses the client's group and policy, or says which fact is missing.
    pub fn classify(&self, facts: &ClientFacts) -> Classified {
        let mut steps = Vec::new();
        for g in &self.groups {
            if !g.listeners.is_empty() && !g.listeners.contains(&facts.listener) {
                steps.push(Step {
                    group: g.name.clone(),
                    outcome: StepOutcome::OtherListener,
                });
                continue;
            }
            let mut undecided = Vec::new();
            let mut matched = None;
            for m in &g.matchers {
                match self.eval(m, facts) {
                    Eval::Yes => {
                        matched = Some(m.to_string());
                        break;
                    }
                    Eval::No => {}
                    Eval::Undecided(why) => undecided.push((m.to_string(), why)),
                    Eval::Need(n) => return Classified::Need(n),
                }
            }
            let Some(by) = matched else {
                steps.push(Step {
                    group: g.name.clone(),
                    outcome: StepOutcome::NoMatch { undecided },
                });
                continue;
            };
            steps.push(Step {
                group: g.name.clone(),
                outcome: StepOutcome::Matched { by },
            });
            let continues = self
                .policies
                .get(g.policy)
                .is_some_and(|p| p.action == FlowAction::Continue);
            if continues {
                continue;
            }
            return Classified::Done(Classification {
                group: Some(g.name.clone()),
                policy: Some(g.policy),
                steps,
                score: self.score(facts),
            });
        }
        Classified::Done(Classification {
            group: None,
            policy: None,
            steps,
            score: self.score(facts),
        })
    }

    fn score(&self, facts: &ClientFacts) -> Option<i32> {
        let answers = facts.lists.done()?;
        let mut score = 0;
        for l in &self.lists {
            let listed = answers
                .iter()
                .find(|a| a.zone == l.zone)
                .and_then(|a| a.result.as_ref().ok())
                .is_some_and(|codes| {
                    codes.iter().any(|&c| {
                        is_listing_code(c) && l.codes.as_ref().is_none_or(|p| p.matches(c))
                    })
                });
            let failed = answers
                .iter()
                .find(|a| a.zone == l.zone)
                .is_none_or(|a| a.result.is_err());
            // A list that did not answer never raises the score (fail open):
            // an allowlist (negative weight) that failed counts as listing.
            if listed || (failed && l.weight < 0) {
                score += l.weight;
            }
        }
        Some(score)
    }

    fn eval(&self, m: &Matcher, f: &ClientFacts) -> Eval {
        let yes = |b: bool| if b { Eval::Yes } else { Eval::No };
        let ip = canonical_ip(f.ip);
        match m {
            Matcher::All => Eval::Yes,
            Matcher::Net(n) => yes(n.contains(&ip)),
            Matcher::Range(a, b) => yes(*a <= ip && ip <= *b),
            Matcher::Authenticated => yes(f.authenticated),
            Matcher::Tls => yes(f.tls),
            Matcher::Listener(l) => yes(*l == f.listener),
            Matcher::Rdns(p) => match &f.ptr {
                Lookup::NotAsked => Eval::Need(Need::Ptr),
                Lookup::Failed(why) => Eval::Undecided(why.clone()),
                // A PTR name that does not forward-confirm is still a claim
                // the group may want to match (`rdns:*.dynamic.*` blocklists);
                // allowlists should add `fcrdns:pass` (config check says so).
                Lookup::Done(names) => yes(names.iter().any(|n| p.matches(n))),
            },
            Matcher::Ptr(present) => match &f.ptr {
                Lookup::NotAsked => Eval::Need(Need::Ptr),
                Lookup::Failed(why) => Eval::Undecided(why.clone()),
                Lookup::Done(names) => yes(names.is_empty() != *present),
            },
            Matcher::PtrError => match &f.ptr {
                Lookup::NotAsked => Eval::Need(Need::Ptr),
                Lookup::Failed(_) => Eval::Yes,
                Lookup::Done(_) => Eval::No,
            },
            Matcher::FcrdnsError => match (&f.ptr, &f.fcrdns) {
                (Lookup::NotAsked, _) => Eval::Need(Need::Ptr),
                (_, Lookup::NotAsked) => Eval::Need(Need::Fcrdns),
                (_, Lookup::Failed(_)) => Eval::Yes,
                _ => Eval::No,
            },
            Matcher::RdnsVerified(p) => match (&f.ptr, &f.fcrdns) {
                (Lookup::NotAsked, _) => Eval::Need(Need::Ptr),
                (_, Lookup::NotAsked) => Eval::Need(Need::Fcrdns),
                _ if f.verified.iter().any(|n| p.matches(n)) => Eval::Yes,
                (_, Lookup::Failed(why)) => Eval::Undecided(why.clone()),
                _ => Eval::No,
            },
            Matcher::Fcrdns(pass) => match (&f.ptr, &f.fcrdns) {
                (Lookup::NotAsked, _) => Eval::Need(Need::Ptr),
                (_, Lookup::NotAsked) => Eval::Need(Need::Fcrdns),
                (_, Lookup::Failed(why)) => Eval::Undecided(why.clone()),
                (_, Lookup::Done(ok)) => yes(ok == pass),
            },
            Matcher::DnsList { zone, codes } => match &f.lists {
                Lookup::NotAsked => Eval::Need(Need::DnsLists),
                Lookup::Failed(why) => Eval::Undecided(why.clone()),
                Lookup::Done(answers) => match answers.iter().find(|a| a.zone == *zone) {
                    None => Eval::Undecided(format!("{zone} was not asked")),
                    Some(a) => match &a.result {
                        Err(why) => Eval::Undecided(why.clone()),
                        Ok(found) => yes(found.iter().any(|&c| {
                            is_listing_code(c) && codes.as_ref().is_none_or(|p| p.matches(c))
                        })),
                    },
                },
            },
            Matcher::DnsScoreAtLeast(n) => match self.score(f) {
                None if f.lists.is_asked() => Eval::Undecided("DNS lists unavailable".into()),
                None => Eval::Need(Need::DnsLists),
                Some(s) => yes(s >= *n),
            },
        }
    }
}

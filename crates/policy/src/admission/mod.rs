//! Gateway admission: sender groups choose a mail-flow policy for each client
//! (Cisco ESA's Host Access Table), the policy decides the behaviour and the
//! limits. Pure: DNS facts and counters are looked up by the driver.
//!
//! ```toml
//! [[sender_group]]                 # top-down, first match wins
//! name = "BLOCKLIST"
//! match = ["dnsbl:bl.example=127.0.0.2", "rdns:.dynamic.example", "203.0.113.0/24"]
//! policy = "BLOCKED"
//!
//! [[mail_flow_policy]]
//! name = "BLOCKED"
//! action = "reject"
//! ```
//!
//! # Security
//! See [`matcher`] (which facts can be forged), [`groups`] (first match wins)
//! and [`flow`] (one reply per limit). [`lint`] finds the configurations that
//! open the gateway by mistake (a `relay` policy reachable from the Internet).
//!
//! # Standards
//! RFC 5321 §3.1 (refusal at connect), RFC 5782 (DNS lists), RFC 7372 (X.7.25).

pub mod decide;
pub mod facts;
pub mod flow;
pub mod groups;
pub mod matcher;
#[cfg(test)]
mod tests;

pub use decide::{ConnectCounts, Decision, RcptCounts, at_connect, at_mail, at_rcpt};
pub use facts::{ClientFacts, ListAnswer, Lookup};
pub use flow::{
    AuthBanSettings, AuthChecks, FlowAction, GreylistSettings, Greylisted, MailFlowPolicy,
    RejectAt, greylist_decision,
};
pub use groups::{Admission, Classification, Classified, DnsList, SenderGroup, Step, StepOutcome};
pub use matcher::{CodePattern, MatchSyntaxError, Matcher, NamePattern, Need};

/// A configuration mistake [`lint`] found; `config check` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The group or policy it is about.
    pub subject: String,
    /// What is wrong and what to do.
    pub message: String,
    /// A security problem (fails `config check --strict`).
    pub security: bool,
}

/// Finds groups that can never match, unused policies, an `all` group that is
/// not last, `relay` reachable by unauthenticated Internet clients, and
/// `rdns:` allowlisting without FCrDNS.
pub fn lint(a: &Admission) -> Vec<Lint> {
    let mut out = Vec::new();
    let mut catch_all: Option<&str> = None;
    for g in &a.groups {
        let policy = a.policies.get(g.policy);
        let continues = policy.is_some_and(|p| p.action == FlowAction::Continue);
        if let Some(prev) = catch_all {
            out.push(Lint {
                subject: format!("sender_group {}", g.name),
                message: format!(
                    "can never match: group {prev} above it matches every client on its listeners; \
                     move it above {prev} or remove it"
                ),
                security: false,
            });
        } else if g.matchers.is_empty() {
            out.push(Lint {
                subject: format!("sender_group {}", g.name),
                message: "has no match entries and can never match".into(),
                security: false,
            });
        }
        let all = g.matchers.iter().any(|m| match m {
            Matcher::All => true,
            Matcher::Net(n) => n.prefix_len() == 0,
            _ => false,
        });
        if all && g.listeners.is_empty() && !continues && catch_all.is_none() {
            catch_all = Some(&g.name);
        }
        if let Some(p) = policy
            && p.action == FlowAction::Relay
        {
            let open = g.matchers.iter().any(|m| match m {
                Matcher::All
                | Matcher::Rdns(_)
                | Matcher::RdnsVerified(_)
                | Matcher::PtrError
                | Matcher::FcrdnsError
                | Matcher::Ptr(_)
                | Matcher::Fcrdns(_)
                | Matcher::DnsList { .. }
                | Matcher::DnsScoreAtLeast(_)
                | Matcher::Tls
                | Matcher::Listener(_) => true,
                Matcher::Net(n) => n.prefix_len() < 8 && !n.addr().is_loopback(),
                Matcher::Range(..) | Matcher::Authenticated => false,
            });
            if open {
                out.push(Lint {
                    subject: format!("sender_group {}", g.name),
                    message: format!(
                        "policy {} relays to any domain, and the group matches clients that \
                         did not authenticate and are not in a known network (an open relay); \
                         match on `authenticated` or address ranges you own, or use action = \"accept\"",
                        p.name
                    ),
                    security: true,
                });
            }
        }
        let allows =
            policy.is_some_and(|p| matches!(p.action, FlowAction::Accept | FlowAction::Relay));
        let rdns = g.matchers.iter().any(|m| matches!(m, Matcher::Rdns(_)));
        if allows && rdns && !all && g.policy_has_privilege(a) {
            out.push(Lint {
                subject: format!("sender_group {}", g.name),
                message: "trusts rdns: names, which are claims: anyone controlling a reverse zone \
                          can claim any name (and fcrdns:pass in the same group admits anyone \
                          whose own names confirm); use rdns-verified: for allowlists"
                    .into(),
                security: true,
            });
        }
    }
    if catch_all.is_none() && !a.groups.is_empty() {
        out.push(Lint {
            subject: "sender_group".into(),
            message: "no group matches `all` at the end: clients that match no group get the \
                      built-in DEFAULT policy (accept, no limits); add a last group with \
                      match = [\"all\"] to say which policy they get"
                .into(),
            security: false,
        });
    }
    for (i, p) in a.policies.iter().enumerate() {
        if !a.groups.iter().any(|g| g.policy == i) {
            out.push(Lint {
                subject: format!("mail_flow_policy {}", p.name),
                message: "no sender group uses this policy".into(),
                security: false,
            });
        }
    }
    out
}

impl SenderGroup {
    /// The group's policy grants more than the default (relay, or no limits
    /// where the groups below have them): used by the `rdns:` lint.
    fn policy_has_privilege(&self, a: &Admission) -> bool {
        a.policies.get(self.policy).is_some_and(|p| {
            p.action == FlowAction::Relay
                || (p.max_recipients_per_hour_per_ip.is_none()
                    && p.max_invalid_recipients_per_hour.is_none()
                    && !p.greylist)
        })
    }
}

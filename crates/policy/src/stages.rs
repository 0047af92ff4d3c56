//! The policy the session asks at each stage (connect, HELO, MAIL, RCPT, end of
//! data): today the relay rules and the sender-specified-routing rule, both at
//! RCPT. The gateway checks (sender groups, mail-flow policies, rate limits,
//! DHAP, SPF/DKIM/DMARC, filters) plug in here as further rules.
//!
//! # Security
//! This is the open-relay defence. A recipient outside the accepted domains is
//! refused (`554 5.7.1`) unless the client is in a relay network or
//! authenticated. A recipient at an accepted domain whose local part carries
//! `%`, `!` or `@` is refused (`550 5.7.1`) for the same untrusted clients:
//! an internal server behind the gateway (Exchange, Sendmail, Postfix with
//! `percent` hacks) may honour that routing and relay the message out, which
//! makes the gateway an open relay in effect (nmap `smtp-open-relay` tests
//! exactly this; Postfix `allow_untrusted_routing = no`). Source routes
//! (`<@a,@b:user@ours>`) are stripped by the parser (RFC 5321 §4.1.1.3,
//! Appendix C) and never reach a rule.
//!
//! # Standards
//! RFC 5321 §3.6 (relaying), §3.6.2 (`554`/`550 5.7.1`), §4.1.1.3 and
//! Appendix C (source routes), RFC 3463 X.7.1.

use postern_proto::session::{SessionFacts, Stage, Verdict};
use postern_proto::{EnhancedCode, ForwardPath, Reply, ReversePath};

use crate::relay::{RcptDecision, RelayPolicy, RelaySettings};
use crate::senders::{SenderLogins, sender_not_owned};

/// The open-relay defence (RFC 5321 §3.6.2); `554 5.7.1`.
pub fn relay_denied() -> Reply {
    Reply::new(554, Some(EnhancedCode::new(5, 7, 1)), "Relay access denied")
}

/// Postfix `allow_untrusted_routing = no`.
pub fn sender_routing_denied() -> Reply {
    Reply::new(
        550,
        Some(EnhancedCode::new(5, 7, 1)),
        "Sender-specified routing (% ! @ in the local part) is not allowed",
    )
}

/// Why a stage refused, for the operator log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A recipient outside the accepted domains from an untrusted client.
    RelayDenied,
    /// `%`, `!` or `@` in the local part from an untrusted client.
    SenderRouting,
    /// An authenticated user's envelope sender not in its `senders` list.
    SenderNotOwned,
}

impl Refusal {
    /// The stable name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::RelayDenied => "relay_denied",
            Refusal::SenderRouting => "sender_routing",
            Refusal::SenderNotOwned => "sender_not_owned",
        }
    }

    /// The reply the client gets.
    pub fn to_reply(self) -> Reply {
        match self {
            Refusal::RelayDenied => relay_denied(),
            Refusal::SenderRouting => sender_routing_denied(),
            Refusal::SenderNotOwned => sender_not_owned(),
        }
    }
}

/// The session policy built from settings; cheap to evaluate (no I/O).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    relay: RelayPolicy,
    senders: SenderLogins,
}

impl Policy {
    /// Builds the policy.
    pub fn new(relay: &RelaySettings) -> Self {
        Self {
            relay: RelayPolicy::new(relay),
            senders: SenderLogins::default(),
        }
    }

    /// With the users' sender lists (`[[user]] senders`), checked at MAIL.
    #[must_use]
    pub fn with_senders(mut self, senders: SenderLogins) -> Self {
        self.senders = senders;
        self
    }

    /// The relay rules.
    pub fn relay(&self) -> &RelayPolicy {
        &self.relay
    }

    /// The users' sender lists.
    pub fn senders(&self) -> &SenderLogins {
        &self.senders
    }

    /// The client may relay and route: in a relay network, or authenticated.
    pub fn is_trusted(&self, facts: &SessionFacts) -> bool {
        facts.auth_user.is_some() || self.relay.is_relay_client(facts.peer)
    }

    /// The verdict at `stage`, with the reason when it refuses. `relay`: the
    /// client's mail-flow policy lets it relay (action `relay`).
    pub fn check(
        &self,
        stage: &Stage<'_>,
        facts: &SessionFacts,
        relay: bool,
    ) -> (Verdict, Option<Refusal>) {
        let refusal = match stage {
            Stage::Rcpt { to, .. } => self.rcpt(&to.forward_path, facts, relay),
            Stage::Mail { from } => self.mail(&from.reverse_path, facts),
            Stage::Connect | Stage::Helo { .. } | Stage::DataEnd { .. } => None,
        };
        match refusal {
            Some(r) => (Verdict::Refuse(r.to_reply()), Some(r)),
            None => (Verdict::Accept, None),
        }
    }

    /// An authenticated user's envelope sender must be one of its own
    /// (`crate::senders`); `<>` always passes.
    fn mail(&self, from: &ReversePath, facts: &SessionFacts) -> Option<Refusal> {
        let (Some(user), ReversePath::Mailbox(m)) = (&facts.auth_user, from) else {
            return None;
        };
        (!self.senders.allows(user, &m.local_part, &m.domain)).then_some(Refusal::SenderNotOwned)
    }

    fn rcpt(&self, to: &ForwardPath, facts: &SessionFacts, relay: bool) -> Option<Refusal> {
        // RFC 5321 §4.5.1: postmaster must always be accepted.
        let ForwardPath::Mailbox(mb) = to else {
            return None;
        };
        let trusted = relay || self.is_trusted(facts);
        match self
            .relay
            .decide(&mb.domain, facts.peer, facts.auth_user.is_some() || relay)
        {
            RcptDecision::RejectRelay => Some(Refusal::RelayDenied),
            RcptDecision::AcceptLocal if !trusted && mb.local_part.contains(['%', '!', '@']) => {
                Some(Refusal::SenderRouting)
            }
            RcptDecision::AcceptLocal | RcptDecision::AcceptRelay => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::{Command, Limits, MailFrom, RcptTo, ReversePath, parse_command};

    fn facts(ip: &str, auth: bool) -> SessionFacts {
        SessionFacts {
            peer: ip.parse().unwrap(),
            listener: "smtp".into(),
            helo: Some("client.example".into()),
            tls: None,
            auth_user: auth.then(|| "alice".to_owned()),
            auth_mechanism: auth.then_some("PLAIN"),
        }
    }

    fn rcpt(line: &str) -> RcptTo {
        match parse_command(line.as_bytes(), &Limits::default()) {
            Ok(Command::Rcpt(r)) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn verdict(p: &Policy, line: &str, f: &SessionFacts) -> Option<Refusal> {
        let from = MailFrom::new(ReversePath::Null);
        let to = rcpt(line);
        p.check(
            &Stage::Rcpt {
                from: &from,
                to: &to,
                accepted: &[],
            },
            f,
            false,
        )
        .1
    }

    #[test]
    fn untrusted_routing_is_refused_at_our_domains() {
        let p = Policy::new(&RelaySettings {
            accepted_domains: vec!["ours.example".into()],
            relay_networks: vec!["10.0.0.0/8".parse().unwrap()],
        });
        let outside = facts("192.0.2.1", false);
        for line in [
            "RCPT TO:<user%other.example@ours.example>",
            "RCPT TO:<other.example!user@ours.example>",
            "RCPT TO:<\"user@other.example\"@ours.example>",
        ] {
            assert_eq!(
                verdict(&p, line, &outside),
                Some(Refusal::SenderRouting),
                "{line}"
            );
            assert_eq!(verdict(&p, line, &facts("10.1.1.1", false)), None, "{line}");
            assert_eq!(verdict(&p, line, &facts("192.0.2.1", true)), None, "{line}");
        }
        // A source route is stripped by the parser: only the mailbox counts.
        assert_eq!(
            verdict(
                &p,
                "RCPT TO:<@a.example,@b.example:user@ours.example>",
                &outside
            ),
            None
        );
        assert_eq!(
            verdict(&p, "RCPT TO:<@ours.example:user@other.example>", &outside),
            Some(Refusal::RelayDenied)
        );
        assert_eq!(
            verdict(&p, "RCPT TO:<user@other.example>", &outside),
            Some(Refusal::RelayDenied)
        );
        assert_eq!(verdict(&p, "RCPT TO:<Postmaster>", &outside), None);
        assert_eq!(Refusal::SenderRouting.to_reply().code, 550);
        assert_eq!(Refusal::RelayDenied.to_reply().code, 554);
    }
}

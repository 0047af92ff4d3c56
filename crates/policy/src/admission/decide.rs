//! The mail-flow policy's decision at each stage, from the facts and the
//! counters the driver read: the same functions answer a live session and
//! `postern trace`, so the dry run cannot drift from what clients get.
//!
//! A counter the driver could not read is `None` and never refuses (fail
//! open: a counter store outage must not turn into rejected mail).
//!
//! # Security
//! Order matters and follows the ESA/Postfix practice: the behaviour
//! (reject / tempfail / tcp-refuse) first, then the PTR requirement, then
//! connection limits at connect; at RCPT delayed rejection, then directory
//! harvest prevention (before the rate, so a harvester cannot spend the
//! recipient budget of the address it shares), then the recipient rate.
//!
//! # Standards
//! RFC 5321 §3.1, §3.8, §4.5.3.1.10; RFC 7372 (X.7.25); RFC 3463.

use std::net::IpAddr;

use postern_proto::Reply;

use super::facts::Lookup;
use super::flow::{FlowAction, MailFlowPolicy, RejectAt, replies};

/// What a stage decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go on.
    Accept,
    /// Refuse this command with `reply`, keep the session.
    Refuse {
        /// The policy key or behaviour that decided (`max_recipients_per_hour_per_ip`).
        rule: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// Send `reply` and close.
    Disconnect {
        /// See `Refuse`.
        rule: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// Close without a word (`tcp-refuse`).
    Drop {
        /// See `Refuse`.
        rule: &'static str,
    },
}

impl Decision {
    /// The rule that decided, if any.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Decision::Accept => None,
            Decision::Refuse { rule, .. }
            | Decision::Disconnect { rule, .. }
            | Decision::Drop { rule } => Some(rule),
        }
    }

    /// The reply the client gets, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Decision::Refuse { reply, .. } | Decision::Disconnect { reply, .. } => Some(reply),
            Decision::Accept | Decision::Drop { .. } => None,
        }
    }
}

/// The counters read at connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectCounts {
    /// Sessions open from the address, this one included.
    pub sessions_from_ip: Option<u64>,
    /// Connections from the address in the last minute, this one included.
    pub connections_last_minute: Option<u64>,
}

/// Connect: behaviour, PTR requirement, connection limits.
pub fn at_connect(
    p: &MailFlowPolicy,
    ip: IpAddr,
    ptr: &Lookup<Vec<String>>,
    counts: ConnectCounts,
) -> Decision {
    match (p.action, p.reject_at) {
        (FlowAction::TcpRefuse, _) => return Decision::Drop { rule: "tcp-refuse" },
        (FlowAction::Reject, RejectAt::Connect) => {
            // RFC 5321 §3.1: a 554 greeting, then 503 to all but QUIT.
            return Decision::Refuse {
                rule: "reject",
                reply: p.refusal(RejectAt::Connect, ip),
            };
        }
        (FlowAction::TempFail, RejectAt::Connect) => {
            return Decision::Disconnect {
                rule: "tempfail",
                reply: p.refusal(RejectAt::Connect, ip),
            };
        }
        _ => {}
    }
    if p.require_ptr {
        match ptr {
            Lookup::Done(names) if names.is_empty() => {
                return Decision::Refuse {
                    rule: "require_ptr",
                    reply: replies::no_ptr(ip),
                };
            }
            Lookup::Done(_) => {}
            Lookup::Failed(_) | Lookup::NotAsked => {
                return Decision::Disconnect {
                    rule: "require_ptr",
                    reply: replies::ptr_unavailable(ip),
                };
            }
        }
    }
    if let (Some(max), Some(n)) = (p.max_concurrent_connections_per_ip, counts.sessions_from_ip)
        && n > max
    {
        return Decision::Disconnect {
            rule: "max_concurrent_connections_per_ip",
            reply: replies::too_many_connections(ip),
        };
    }
    if let (Some(max), Some(n)) = (
        p.max_connections_per_minute_per_ip,
        counts.connections_last_minute,
    ) && n > max
    {
        return Decision::Disconnect {
            rule: "max_connections_per_minute_per_ip",
            reply: replies::connection_rate(ip),
        };
    }
    Decision::Accept
}

/// MAIL: messages per session, then the sender's hourly rate (`<>` and the
/// exception list exempt). `sender_rate`: messages from this sender in the
/// last hour, before this one.
pub fn at_mail(
    p: &MailFlowPolicy,
    messages_in_session: u64,
    sender: Option<&str>,
    sender_rate: Option<u64>,
) -> Decision {
    if let Some(max) = p.max_messages_per_session
        && messages_in_session >= max
    {
        return Decision::Disconnect {
            rule: "max_messages_per_session",
            reply: replies::messages_per_session(),
        };
    }
    if let (Some(max), Some(n), Some(sender)) =
        (p.max_messages_per_hour_per_sender, sender_rate, sender)
        && n >= max
        && !p.sender_exempt(sender)
    {
        return Decision::Refuse {
            rule: "max_messages_per_hour_per_sender",
            reply: replies::sender_rate(sender),
        };
    }
    Decision::Accept
}

/// The counters read at RCPT (each over the last hour, before this recipient).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RcptCounts {
    /// Recipients accepted from the address.
    pub recipients: Option<u64>,
    /// Invalid recipients tried from the address (DHAP).
    pub invalid: Option<u64>,
}

/// RCPT: delayed rejection, directory harvest prevention, recipient rate.
/// `exempt`: the client is trusted (relay network, authenticated): DHAP and
/// rates do not apply.
pub fn at_rcpt(p: &MailFlowPolicy, ip: IpAddr, counts: RcptCounts, exempt: bool) -> Decision {
    if matches!(p.action, FlowAction::Reject | FlowAction::TempFail)
        && p.reject_at == RejectAt::Rcpt
    {
        return Decision::Refuse {
            rule: p.action.as_str(),
            reply: p.refusal(RejectAt::Rcpt, ip),
        };
    }
    if exempt {
        return Decision::Accept;
    }
    if let (Some(max), Some(n)) = (p.max_invalid_recipients_per_hour, counts.invalid)
        && n >= max
    {
        let reply = if p.dhap_temporary {
            replies::harvest_temporary(ip)
        } else {
            replies::harvest(ip)
        };
        return if p.dhap_drop {
            Decision::Disconnect {
                rule: "max_invalid_recipients_per_hour",
                reply,
            }
        } else {
            Decision::Refuse {
                rule: "max_invalid_recipients_per_hour",
                reply,
            }
        };
    }
    if let (Some(max), Some(n)) = (p.max_recipients_per_hour_per_ip, counts.recipients)
        && n >= max
    {
        return Decision::Refuse {
            rule: "max_recipients_per_hour_per_ip",
            reply: replies::recipient_rate(ip),
        };
    }
    Decision::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    #[test]
    fn limits_at_the_limit_and_past_it() {
        let mut p = MailFlowPolicy::new("T", FlowAction::Accept);
        p.max_concurrent_connections_per_ip = Some(2);
        p.max_connections_per_minute_per_ip = Some(5);
        p.max_messages_per_session = Some(2);
        p.max_messages_per_hour_per_sender = Some(3);
        p.sender_rate_exceptions = vec!["@lists.example".into()];
        p.max_recipients_per_hour_per_ip = Some(10);
        p.max_invalid_recipients_per_hour = Some(4);
        let none = Lookup::NotAsked;
        let c = |s, m| ConnectCounts {
            sessions_from_ip: Some(s),
            connections_last_minute: Some(m),
        };
        assert_eq!(at_connect(&p, ip(), &none, c(2, 5)), Decision::Accept);
        assert_eq!(
            at_connect(&p, ip(), &none, c(3, 5)).rule(),
            Some("max_concurrent_connections_per_ip")
        );
        assert_eq!(
            at_connect(&p, ip(), &none, c(2, 6)).rule(),
            Some("max_connections_per_minute_per_ip")
        );
        // Unknown counters never refuse.
        assert_eq!(
            at_connect(&p, ip(), &none, ConnectCounts::default()),
            Decision::Accept
        );

        assert_eq!(
            at_mail(&p, 1, Some("a@b.example"), Some(2)),
            Decision::Accept
        );
        assert_eq!(
            at_mail(&p, 2, None, None).rule(),
            Some("max_messages_per_session")
        );
        let r = at_mail(&p, 0, Some("a@b.example"), Some(3));
        assert_eq!(r.rule(), Some("max_messages_per_hour_per_sender"));
        assert_eq!(r.reply().unwrap().code, 450);
        assert_eq!(
            at_mail(&p, 0, Some("x@lists.example"), Some(99)),
            Decision::Accept
        );
        assert_eq!(at_mail(&p, 0, None, Some(99)), Decision::Accept);

        let rc = |r, i| RcptCounts {
            recipients: Some(r),
            invalid: Some(i),
        };
        assert_eq!(at_rcpt(&p, ip(), rc(9, 3), false), Decision::Accept);
        let r = at_rcpt(&p, ip(), rc(10, 3), false);
        assert_eq!(r.rule(), Some("max_recipients_per_hour_per_ip"));
        assert_eq!(r.reply().unwrap().code, 452);
        let r = at_rcpt(&p, ip(), rc(0, 4), false);
        assert!(matches!(
            r,
            Decision::Refuse {
                rule: "max_invalid_recipients_per_hour",
                ..
            }
        ));
        assert_eq!(r.reply().unwrap().code, 550);
        p.dhap_temporary = true;
        let r = at_rcpt(&p, ip(), rc(0, 4), false);
        let reply = r.reply().unwrap();
        assert_eq!(
            (reply.code, reply.enhanced.map(|e| e.to_string())),
            (451, Some("4.7.1".into()))
        );
        p.dhap_drop = true;
        assert!(matches!(
            at_rcpt(&p, ip(), rc(0, 4), false),
            Decision::Disconnect { .. }
        ));
        assert_eq!(at_rcpt(&p, ip(), rc(99, 99), true), Decision::Accept);
    }

    #[test]
    fn behaviours_and_ptr() {
        let mut p = MailFlowPolicy::new("B", FlowAction::TcpRefuse);
        let none = Lookup::NotAsked;
        let c = ConnectCounts::default();
        assert_eq!(
            at_connect(&p, ip(), &none, c),
            Decision::Drop { rule: "tcp-refuse" }
        );
        p.action = FlowAction::TempFail;
        assert_eq!(at_connect(&p, ip(), &none, c).reply().unwrap().code, 421);
        p.reject_at = RejectAt::Rcpt;
        assert_eq!(at_connect(&p, ip(), &none, c), Decision::Accept);
        assert_eq!(
            at_rcpt(&p, ip(), RcptCounts::default(), true)
                .reply()
                .unwrap()
                .code,
            450
        );
        let mut p = MailFlowPolicy::new("P", FlowAction::Accept);
        p.require_ptr = true;
        assert_eq!(
            at_connect(&p, ip(), &Lookup::Done(vec![]), c)
                .reply()
                .unwrap()
                .code,
            554
        );
        assert_eq!(
            at_connect(&p, ip(), &Lookup::Failed("x".into()), c)
                .reply()
                .unwrap()
                .code,
            421
        );
        assert_eq!(
            at_connect(&p, ip(), &Lookup::Done(vec!["a.example".into()]), c),
            Decision::Accept
        );
    }
}

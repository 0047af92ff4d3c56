//! [`Evidence`]: the transport-security facts of one message, from its
//! life — how it came in (TLS version, cipher, group, SNI) and, for every
//! outbound attempt, what TLS negotiated, which certificate was presented,
//! how it was verified (PKIX, DANE, MTA-STS, none) and with what result,
//! the policy level and why it applied, and whether the attempt was a
//! plaintext retry (a downgrade).
//!
//! # Standards
//! Verification methods: PKIX (RFC 5280 with the name check of RFC 6125),
//! DANE (RFC 7672), MTA-STS (RFC 8461); a plaintext retry after a failed
//! handshake is the opportunistic fallback RFC 7435 §3 allows.

use postern_track::{MailEvent, Received};

use crate::sqlite::map::{ip_of, verification_method};
use crate::types::{Evidence, InboundHop, MessageLife, OutboundHop, TlsEvidence};

impl Evidence {
    /// The inbound hop and every outbound attempt of `life`.
    pub fn from_life(life: &MessageLife) -> Evidence {
        let mut inbound = None;
        let mut outbound = Vec::new();
        for rec in &life.records {
            match &rec.event {
                MailEvent::Received(r) if inbound.is_none() => {
                    inbound = Some(inbound_hop(&rec.ts, r));
                }
                MailEvent::Attempt(a) => {
                    let verified = a.tls.as_ref().is_some_and(|t| t.verified);
                    outbound.push(OutboundHop {
                        ts: rec.ts.clone(),
                        attempt: a.attempt,
                        destination: a.destination.clone(),
                        route: a.route.clone(),
                        mx: a.mx.clone(),
                        ip: a.ip.clone(),
                        policy: a.policy.clone(),
                        policy_reason: a.policy_reason.clone(),
                        starttls_offered: a.starttls_offered,
                        tls: a.tls.as_ref().map(|t| TlsEvidence {
                            version: t.version.clone(),
                            cipher: t.cipher.clone(),
                            group: t.group.clone(),
                            sni: None,
                            cert: t.peer_cert.clone(),
                        }),
                        verification: verification_method(&a.policy, verified).to_owned(),
                        verified,
                        verification_result: a.tls.as_ref().map_or_else(
                            || "no TLS".to_owned(),
                            |t| {
                                if t.verification.is_empty() {
                                    if t.verified { "ok" } else { "not verified" }.to_owned()
                                } else {
                                    t.verification.clone()
                                }
                            },
                        ),
                        downgraded: a.downgraded,
                        outcome: a.outcome.clone(),
                        reply: a.reply.clone(),
                        cause: a.cause.clone(),
                    });
                }
                _ => {}
            }
        }
        Evidence {
            queue_id: life.queue_id.clone(),
            message_id: life.message_id.clone(),
            inbound,
            outbound,
        }
    }
}

fn inbound_hop(ts: &str, r: &Received) -> InboundHop {
    let tls = match (&r.tls_params, &r.tls) {
        (Some(p), _) => Some(TlsEvidence {
            version: p.version.clone(),
            cipher: p.cipher.clone(),
            group: p.group.clone(),
            sni: p.sni.clone(),
            cert: None,
        }),
        (None, Some(short)) => {
            let (version, cipher) = short.split_once(' ').unwrap_or((short.as_str(), ""));
            Some(TlsEvidence {
                version: version.to_owned(),
                cipher: cipher.to_owned(),
                group: None,
                sni: None,
                cert: None,
            })
        }
        (None, None) => None,
    };
    InboundHop {
        ts: ts.to_owned(),
        client_ip: ip_of(&r.peer).map_or_else(|| r.peer.clone(), |ip| ip.to_string()),
        client_name: r.client_name.clone(),
        helo: r.helo.clone(),
        listener: r.listener.clone(),
        auth_user: r.auth_user.clone(),
        tls,
    }
}

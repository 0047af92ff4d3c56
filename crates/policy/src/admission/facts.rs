//! What is known about a connecting client when its sender group is chosen:
//! the session's own facts plus the DNS answers the driver looked up on
//! demand ([`super::Need`]).
//!
//! # Security
//! A lookup that failed (timeout, SERVFAIL) is kept as [`Lookup::Failed`] and
//! matches nothing: a DNS fault never turns into a reject (issue 9: "treat as
//! no match and log it"), nor into an allowlisting.

use std::net::{IpAddr, Ipv4Addr};

/// A DNS-derived fact.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Lookup<T> {
    /// Not looked up (no matcher needed it yet).
    #[default]
    NotAsked,
    /// The lookup failed temporarily; the reason for the trace.
    Failed(String),
    /// The answer.
    Done(T),
}

impl<T> Lookup<T> {
    /// The answer, if there is one.
    pub fn done(&self) -> Option<&T> {
        match self {
            Lookup::Done(t) => Some(t),
            _ => None,
        }
    }

    /// True unless still [`Lookup::NotAsked`].
    pub fn is_asked(&self) -> bool {
        !matches!(self, Lookup::NotAsked)
    }
}

/// One DNS list's answer for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAnswer {
    /// The zone asked.
    pub zone: String,
    /// The A records (empty: not listed), or the failure.
    pub result: Result<Vec<Ipv4Addr>, String>,
}

/// The client as sender-group matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFacts {
    /// The client's address (the PROXY protocol's source behind a trusted proxy).
    pub ip: IpAddr,
    /// The listener's name.
    pub listener: String,
    /// TLS is in use.
    pub tls: bool,
    /// The session authenticated.
    pub authenticated: bool,
    /// The PTR names (empty: no PTR record).
    pub ptr: Lookup<Vec<String>>,
    /// Some PTR name resolves back to `ip` (RFC 8601 §2.7.3 "iprev").
    pub fcrdns: Lookup<bool>,
    /// The PTR names that resolve back to `ip` (forward-confirmed), once
    /// FCrDNS was looked up: what `rdns-verified:` matches.
    pub verified: Vec<String>,
    /// The answers of every DNS list the groups use.
    pub lists: Lookup<Vec<ListAnswer>>,
}

impl ClientFacts {
    /// A client with nothing looked up yet.
    pub fn new(ip: IpAddr, listener: impl Into<String>) -> Self {
        Self {
            // A dual-stack socket or a PROXY TCP6 header shows an IPv4
            // client as ::ffff:a.b.c.d; DNS (PTR, DNS lists) needs the IPv4.
            ip: ip.to_canonical(),
            listener: listener.into(),
            tls: false,
            authenticated: false,
            ptr: Lookup::NotAsked,
            fcrdns: Lookup::NotAsked,
            verified: Vec::new(),
            lists: Lookup::NotAsked,
        }
    }

    /// The PTR names looked up (empty when there are none or they were not
    /// asked for).
    pub fn ptr_names(&self) -> &[String] {
        self.ptr.done().map_or(&[], Vec::as_slice)
    }
}

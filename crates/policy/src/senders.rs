//! Who may send as whom: the envelope senders each authenticated user may
//! use (`[[user]] senders`), checked at `MAIL FROM` — Postfix's
//! `smtpd_sender_login_maps` with `reject_sender_login_mismatch`.
//!
//! A user with a `senders` list may use an address in it, an address at a
//! `@domain` in it, anything with `*`, and always the null reverse path
//! (`<>`: delivery reports). A user without a list is not restricted (the
//! server then trusts its users as before).
//!
//! # Security
//! Without this an authenticated user (or a stolen password) can send as any
//! address of any domain the server signs for, and the mail leaves with our
//! DKIM signature and passes the recipients' DMARC. Addresses are compared
//! case-insensitively (RFC 5321 §2.4 allows case-sensitive local parts; no
//! mail system relies on it, and matching more strictly than the mailbox
//! store would let a user dodge the list by changing case). The reply does
//! not echo the address or name the user.
//!
//! # Standards
//! RFC 5321 §4.1.1.2 (MAIL), §4.2.5 (a refused MAIL), RFC 3463 X.7.1, RFC 4954
//! §6 (the authenticated identity is the submitting party).

use std::collections::HashMap;

use postern_proto::{EnhancedCode, Reply};

/// One entry of a user's list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `local@domain`, lowercase.
    Address(String),
    /// `@domain`, lowercase, without the `@`.
    Domain(String),
    /// `*`: any sender.
    Any,
}

/// Why a `senders` entry was refused (the configuration says where).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a sender pattern; allowed: \"user@example.com\", \"@example.com\" (any address at the domain), \"*\" (any)"
)]
pub struct BadSenderPattern(pub String);

impl Pattern {
    fn parse(text: &str) -> Result<Self, BadSenderPattern> {
        let t = text.trim();
        let bad = || BadSenderPattern(text.to_owned());
        if t == "*" {
            return Ok(Pattern::Any);
        }
        let domain_ok = |d: &str| {
            !d.is_empty()
                && d.len() <= 255
                && !d.starts_with('.')
                && !d.ends_with('.')
                && d.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'))
        };
        if let Some(d) = t.strip_prefix('@') {
            return domain_ok(d)
                .then(|| Pattern::Domain(d.to_lowercase()))
                .ok_or_else(bad);
        }
        match t.rsplit_once('@') {
            Some((local, d))
                if !local.is_empty()
                    && local.len() <= 64
                    && !local.chars().any(|c| c.is_control() || c.is_whitespace())
                    && domain_ok(d) =>
            {
                Ok(Pattern::Address(t.to_lowercase()))
            }
            _ => Err(bad()),
        }
    }

    fn matches(&self, address: &str, domain: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Domain(d) => d == domain,
            Pattern::Address(a) => a == address,
        }
    }
}

/// Checks that `text` is a valid `senders` entry.
pub fn check_sender_pattern(text: &str) -> Result<(), BadSenderPattern> {
    Pattern::parse(text).map(|_| ())
}

/// The users' sender lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderLogins {
    by_user: HashMap<String, Vec<Pattern>>,
}

impl SenderLogins {
    /// From `(user, its senders)` pairs; invalid entries are skipped (the
    /// configuration refuses them first, so none reach here).
    pub fn new<I, S>(users: I) -> Self
    where
        I: IntoIterator<Item = (String, Vec<S>)>,
        S: AsRef<str>,
    {
        let by_user = users
            .into_iter()
            .map(|(user, list)| {
                let patterns = list
                    .iter()
                    .filter_map(|p| Pattern::parse(p.as_ref()).ok())
                    .collect();
                (user, patterns)
            })
            .collect();
        Self { by_user }
    }

    /// No user has a list.
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Whether `user` may sign mail whose `From:` is at `domain`: its list
    /// has `*`, `@domain`, or an address at `domain` (a shared server's
    /// organisations are kept apart; within a domain the envelope check is
    /// the finer one). Users without a list may.
    pub fn allows_domain(&self, user: &str, domain: &str) -> bool {
        let Some(list) = self.by_user.get(user) else {
            return true;
        };
        let domain = domain.trim_end_matches('.').to_lowercase();
        list.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Domain(d) => *d == domain,
            Pattern::Address(a) => a.rsplit_once('@').is_some_and(|(_, d)| d == domain),
        })
    }

    /// Whether `user` may use the envelope sender `local@domain`.
    pub fn allows(&self, user: &str, local_part: &str, domain: &str) -> bool {
        let Some(list) = self.by_user.get(user) else {
            return true;
        };
        let domain = domain.to_lowercase();
        let address = format!("{}@{domain}", local_part.to_lowercase());
        list.iter().any(|p| p.matches(&address, &domain))
    }
}

/// The refusal of a sender the user may not use: `553 5.7.1`.
pub fn sender_not_owned() -> Reply {
    Reply::new(
        553,
        Some(EnhancedCode::new(5, 7, 1)),
        "Sender address rejected: not owned by the authenticated user",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_restrict_only_their_users() {
        let s = SenderLogins::new([
            (
                "alice".to_owned(),
                vec!["alice@example.com", "@Sales.Example.com"],
            ),
            ("relay".to_owned(), vec!["*"]),
            ("nobody".to_owned(), Vec::<&str>::new()),
        ]);
        assert!(s.allows("alice", "alice", "example.com"));
        assert!(s.allows("alice", "Alice", "EXAMPLE.com"));
        assert!(s.allows("alice", "anyone", "sales.example.com"));
        assert!(!s.allows("alice", "bob", "example.com"));
        assert!(!s.allows("alice", "alice", "example.com.evil.test"));
        assert!(!s.allows("alice", "x", "sub.sales.example.com"));
        assert!(s.allows("relay", "ceo", "anywhere.test"));
        assert!(!s.allows("nobody", "nobody", "example.com"));
        // Users without a list are not restricted.
        assert!(s.allows("carol", "ceo", "example.com"));
        // Signing: the From: domain must be one of the user's.
        assert!(s.allows_domain("alice", "Example.com."));
        assert!(s.allows_domain("alice", "sales.example.com"));
        assert!(!s.allows_domain("alice", "bank.example"));
        assert!(s.allows_domain("relay", "bank.example"));
        assert!(!s.allows_domain("nobody", "example.com"));
        assert!(s.allows_domain("carol", "bank.example"));
    }

    #[test]
    fn patterns_are_checked() {
        for ok in [
            "a@example.com",
            "@example.com",
            "*",
            "first.last@xn--bcher-kva.example",
        ] {
            assert!(check_sender_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "@",
            "example.com",
            "a@",
            "a b@example.com",
            "@.example",
            "**",
            "a@ex ample.com",
        ] {
            assert!(check_sender_pattern(bad).is_err(), "{bad}");
        }
    }
}

//! Recipient validation, the pure part: the recipients table (what a
//! `[[recipients]] table = "…"` file says), the verdict of a check, and the
//! replies. Reading the file, reloading it, the SMTP call-ahead and the
//! Maildir check are I/O and live in `postern_smtpd::recipients`.
//!
//! Table lines, one entry each (`#` starts a comment, blank lines skipped,
//! compared ASCII case-insensitively):
//!
//! ```text
//! user@example.com      # that address
//! user                  # that local part in every domain of the entry
//! @example.com          # catch-all: every local part of example.com
//! sales-*@example.com   # a pattern: `*` is any run of characters
//! j*                    # a local-part pattern, every domain of the entry
//! ```
//!
//! An address with an extension (`bob+news@example.com`) that is not listed
//! as such is looked up again without it (`bob@example.com`), as Postfix does
//! with `recipient_delimiter = +`.
//!
//! # Security
//! The table is operator input, but it may be edited live: a bad line is
//! reported (file:line) and skipped, never a reason to stop reading the rest.
//! Patterns are matched by an iterative glob without backtracking blow-up
//! (O(pattern × text)), and entries are bounded by [`MAX_ENTRY`].
//!
//! # Standards
//! RFC 5321 §4.5.1 (postmaster is always valid), §6.1 (refuse at RCPT
//! rather than bounce later: backscatter), §4.5.3.1 (path lengths);
//! RFC 3463 (5.1.1 bad destination mailbox, 4.4.3 directory server failure).

use std::collections::HashSet;
use std::fmt;

use postern_proto::{EnhancedCode, Reply};

/// Longest entry accepted (a local part of 64 plus `@` and a domain of 255,
/// RFC 5321 §4.5.3.1.1–2, rounded up).
pub const MAX_ENTRY: usize = 330;

/// The separator of address extensions (`bob+news`).
const EXTENSION: char = '+';

/// The outcome of validating one recipient at RCPT. `Unknown` is what a
/// directory-harvest counter counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientVerdict {
    /// The recipient exists.
    Valid,
    /// The recipient does not exist: refuse with this reply (`550 5.1.1`).
    Unknown(Reply),
    /// The answer could not be had (call-ahead timeout, an unreadable
    /// table): defer with this reply (`451 4.4.3`).
    Unverifiable(Reply),
    /// Not validated: postmaster, a relay recipient, a domain without a
    /// `[[recipients]]` entry, or `on_error = "accept"` after a failure.
    NotChecked,
}

impl RecipientVerdict {
    /// The reply that refuses the RCPT, if any.
    pub fn refusal(&self) -> Option<&Reply> {
        match self {
            RecipientVerdict::Unknown(r) | RecipientVerdict::Unverifiable(r) => Some(r),
            RecipientVerdict::Valid | RecipientVerdict::NotChecked => None,
        }
    }
}

/// The replies of recipient validation.
pub mod replies {
    use super::{EnhancedCode, Reply};

    /// `550 5.1.1 <addr>: Recipient address rejected: User unknown` (Postfix's
    /// wording, so the log reads like Postfix's to an administrator).
    pub fn unknown(addr: &str) -> Reply {
        Reply::new(
            550,
            Some(EnhancedCode::new(5, 1, 1)),
            format!("<{addr}>: Recipient address rejected: User unknown"),
        )
    }

    /// `451 4.4.3 <addr>: Recipient address rejected: cannot verify the
    /// recipient now, try again later`.
    pub fn unverifiable(addr: &str) -> Reply {
        Reply::new(
            451,
            Some(EnhancedCode::new(4, 4, 3)),
            format!(
                "<{addr}>: Recipient address rejected: cannot verify the recipient now, \
                 try again later"
            ),
        )
    }
}

/// Whether `local` is the postmaster (RFC 5321 §4.5.1: case-insensitive).
pub fn is_postmaster(local: &str) -> bool {
    local.eq_ignore_ascii_case("postmaster")
}

/// Why a table line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// More than one word on the line.
    #[error("more than one address on the line; write one entry per line")]
    Words,
    /// Longer than [`MAX_ENTRY`].
    #[error("entry longer than {MAX_ENTRY} characters")]
    TooLong,
    /// `a@b@c`, `user@`, `@`, control characters, …
    #[error("{0}")]
    Syntax(&'static str),
}

/// A skipped line: its number (1-based), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Line number, from 1.
    pub line: usize,
    /// What was wrong.
    pub error: LineError,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// A parsed recipients table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientTable {
    /// `user@example.com`.
    addresses: HashSet<String>,
    /// `user` (any domain of the entry).
    locals: HashSet<String>,
    /// `@example.com`.
    catch_all: HashSet<String>,
    /// Patterns with `*`: (local-part pattern, domain pattern or `None` for
    /// any domain of the entry).
    patterns: Vec<(String, Option<String>)>,
}

impl RecipientTable {
    /// Parses a table; bad lines are returned beside it (and skipped).
    pub fn parse(text: &str) -> (Self, Vec<BadLine>) {
        let mut t = Self::default();
        let mut bad = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            if let Err(error) = t.add(line) {
                bad.push(BadLine { line: i + 1, error });
            }
        }
        (t, bad)
    }

    fn add(&mut self, entry: &str) -> Result<(), LineError> {
        if entry.split_whitespace().nth(1).is_some() {
            return Err(LineError::Words);
        }
        if entry.len() > MAX_ENTRY {
            return Err(LineError::TooLong);
        }
        if entry.chars().any(char::is_control) {
            return Err(LineError::Syntax("control characters in the entry"));
        }
        let entry = entry.to_ascii_lowercase();
        let (local, domain) = match entry.rsplit_once('@') {
            Some((l, d)) => (l, Some(d.trim_end_matches('.'))),
            None => (entry.as_str(), None),
        };
        if local.contains('@') {
            return Err(LineError::Syntax(
                "more than one '@'; write user@domain, user or @domain",
            ));
        }
        if domain.is_some_and(str::is_empty) {
            return Err(LineError::Syntax(
                "nothing after '@'; write user@domain, user or @domain",
            ));
        }
        let wild = entry.contains('*');
        match (local, domain) {
            ("", Some(d)) if !wild => {
                self.catch_all.insert(d.to_owned());
            }
            // `@*.example.com`: a catch-all over the matching domains.
            ("", d) => self.patterns.push(("*".to_owned(), d.map(str::to_owned))),
            (l, d) if wild => self.patterns.push((l.to_owned(), d.map(str::to_owned))),
            (l, Some(d)) => {
                self.addresses.insert(format!("{l}@{d}"));
            }
            (l, None) => {
                self.locals.insert(l.to_owned());
            }
        }
        Ok(())
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.addresses.len() + self.locals.len() + self.catch_all.len() + self.patterns.len()
    }

    /// No entry at all (every recipient but postmaster is unknown).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `local@domain` is listed (the caller has already decided the
    /// domain belongs to the entry this table serves).
    pub fn contains(&self, local: &str, domain: &str) -> bool {
        let local = local.to_ascii_lowercase();
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.lookup(&local, &domain) {
            return true;
        }
        // `bob+news` → `bob` (not for `+news` alone: no mailbox name left).
        match local.split_once(EXTENSION) {
            Some((base, _)) if !base.is_empty() => self.lookup(base, &domain),
            _ => false,
        }
    }

    fn lookup(&self, local: &str, domain: &str) -> bool {
        self.catch_all.contains(domain)
            || self.locals.contains(local)
            || self.addresses.contains(&format!("{local}@{domain}"))
            || self
                .patterns
                .iter()
                .any(|(l, d)| glob(l, local) && d.as_deref().is_none_or(|d| glob(d, domain)))
    }
}

/// `*` matches any run of characters (also none); everything else matches
/// itself. Iterative with one backtrack point: linear-ish, never exponential.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> RecipientTable {
        let (t, bad) = RecipientTable::parse(text);
        assert!(bad.is_empty(), "{bad:?}");
        t
    }

    #[test]
    fn addresses_locals_and_catch_all() {
        let t = table(
            "# our users\n\
             Alice@Example.COM\n\
             bob   # any domain of the entry\n\
             \n\
             @catchall.example\n",
        );
        assert_eq!(t.len(), 3);
        assert!(t.contains("alice", "example.com"));
        assert!(t.contains("ALICE", "example.com."));
        assert!(!t.contains("alice", "other.example"));
        assert!(t.contains("bob", "example.com"));
        assert!(t.contains("Bob", "other.example"));
        assert!(t.contains("anyone", "catchall.example"));
        assert!(!t.contains("carol", "example.com"));
    }

    #[test]
    fn extensions_fall_back_to_the_mailbox() {
        let t = table("alice@example.com\nlists+weekly@example.com\n");
        assert!(t.contains("alice+news", "example.com"));
        assert!(t.contains("lists+weekly", "example.com"));
        assert!(!t.contains("lists+daily", "example.com"));
        assert!(!t.contains("+alice", "example.com"));
    }

    #[test]
    fn patterns() {
        let t = table("sales-*@example.com\nj*\n*@*.dept.example\n@*.shop.example\n");
        assert!(t.contains("anyone", "eu.shop.example"));
        assert!(t.contains("sales-emea", "example.com"));
        assert!(t.contains("sales-", "example.com"));
        assert!(!t.contains("sales", "example.com"));
        assert!(!t.contains("sales-emea", "example.org"));
        assert!(t.contains("jane", "anything.example"));
        assert!(!t.contains("ajane", "example.com"));
        assert!(t.contains("x", "hr.dept.example"));
        assert!(!t.contains("x", "dept.example"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("**", ""));
        // No exponential backtracking on a hostile shape.
        let long = "a".repeat(300);
        assert!(!glob("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (t, bad) = RecipientTable::parse("alice@example.com\nbob carol\na@b@c\nuser@\n@\nok\n");
        assert_eq!(t.len(), 2);
        assert!(t.contains("ok", "example.com"));
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert_eq!(bad[0].error, LineError::Words);
        assert!(bad[1].to_string().starts_with("line 3: more than one '@'"));
        let (_, bad) = RecipientTable::parse(&format!("{}@example.com\n", "x".repeat(400)));
        assert_eq!(bad[0].error, LineError::TooLong);
    }

    #[test]
    fn empty_table_knows_nobody() {
        let t = table("# nothing yet\n");
        assert!(t.is_empty());
        assert!(!t.contains("alice", "example.com"));
    }

    #[test]
    fn postmaster_and_replies() {
        assert!(is_postmaster("PostMaster"));
        assert!(!is_postmaster("postmaster2"));
        let r = replies::unknown("nobody@example.com");
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"
        );
        assert_eq!(replies::unverifiable("a@b").code, 451);
        assert_eq!(RecipientVerdict::Unknown(r.clone()).refusal(), Some(&r));
        assert_eq!(RecipientVerdict::NotChecked.refusal(), None);
    }
}

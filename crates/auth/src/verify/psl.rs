//! Public-suffix list and organisational domains for DMARC (RFC 7489 §3.2).
//!
//! The list ships inside the binary (`crates/auth/data/public_suffix_list.dat`,
//! Mozilla's list under MPL-2.0, copied from Debian's `publicsuffix` package)
//! and can be replaced by a file (`VerifierSettings::public_suffix_list`).
//! Both the ICANN and the private section are used, as the list's own
//! algorithm does.
//!
//! # Security
//! A replacement file is checked line by line; a bad rule is an error with
//! the path and line number, never a silently shorter list (a missing rule
//! would make unrelated domains one organisation and let them align).
//!
//! # Standards
//! RFC 7489 §3.2 (organisational domain), the list's format and matching
//! algorithm (<https://publicsuffix.org/list/>: `*` wildcards, `!`
//! exceptions, the implicit rule `*`), RFC 5891 (rules in Unicode are
//! matched as A-labels).

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The list shipped with the binary.
pub const SHIPPED_LIST: &str = include_str!("../../data/public_suffix_list.dat");

/// A bad line in a public-suffix list file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PslLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it and what is allowed.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Normal,
    Wildcard,
    Exception,
}

/// A parsed public-suffix list: rule text (A-labels, lower case, without
/// `*.` / `!`) → kind. A name can carry a normal and a wildcard rule at once
/// (`ck` has `*.ck` and `!www.ck`), so wildcards are kept apart.
#[derive(Debug, Clone, Default)]
pub struct PublicSuffixList {
    rules: HashMap<String, Rule>,
    wildcards: HashSet<String>,
}

impl PublicSuffixList {
    /// The list shipped in the binary.
    pub fn shipped() -> PublicSuffixList {
        // The shipped file is tested (`shipped_list_parses`); a failure here
        // would be a build defect, and an empty list still gives the
        // implicit `*` rule rather than a panic.
        Self::parse(SHIPPED_LIST).unwrap_or_default()
    }

    /// Reads a list from a file.
    pub fn from_file(path: &Path) -> Result<PublicSuffixList, super::VerifyError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| super::VerifyError::PublicSuffixRead {
                path: path.to_path_buf(),
                error: e.to_string(),
            })?;
        Self::parse(&text).map_err(|e| super::VerifyError::PublicSuffixLine {
            path: path.to_path_buf(),
            line: e.line,
            reason: e.reason,
        })
    }

    /// Parses the list format: one rule per line (the first
    /// whitespace-separated word), `//` comments, blank lines ignored.
    pub fn parse(text: &str) -> Result<PublicSuffixList, PslLineError> {
        let mut list = PublicSuffixList::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let word = line.split_whitespace().next().unwrap_or_default();
            let bad = |reason: &str| PslLineError {
                line: i + 1,
                reason: format!(
                    "{reason} in {word:?} (allowed: a domain name, `*.name` or `!name`)"
                ),
            };
            let (kind, name) = if let Some(rest) = word.strip_prefix('!') {
                (Rule::Exception, rest)
            } else if let Some(rest) = word.strip_prefix("*.") {
                (Rule::Wildcard, rest)
            } else {
                (Rule::Normal, word)
            };
            if name.is_empty() || name.contains('*') || name.contains('!') {
                return Err(bad("a wildcard or exception in the wrong place"));
            }
            let ascii = idna::domain_to_ascii(name).map_err(|_| bad("not a valid domain name"))?;
            if ascii.is_empty()
                || ascii.split('.').any(|l| l.is_empty() || l.len() > 63)
                || !ascii
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                return Err(bad("not a valid domain name"));
            }
            if kind == Rule::Exception && !ascii.contains('.') {
                return Err(bad("an exception for a top-level label"));
            }
            match kind {
                Rule::Wildcard => {
                    list.wildcards.insert(ascii);
                }
                _ => {
                    list.rules.insert(ascii, kind);
                }
            }
        }
        if list.rules.is_empty() && list.wildcards.is_empty() {
            return Err(PslLineError {
                line: text.lines().count().max(1),
                reason: "no rules in the file (a public-suffix list has thousands)".into(),
            });
        }
        Ok(list)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len() + self.wildcards.len()
    }

    /// Whether the list has no rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of labels of the public suffix of `labels` (the
    /// prevailing rule; at least 1, the implicit `*` rule).
    fn suffix_labels(&self, labels: &[&str]) -> usize {
        let n = labels.len();
        let mut best = 1;
        for k in 1..=n {
            let candidate = labels[n - k..].join(".");
            match self.rules.get(&candidate) {
                // An exception wins over everything: its suffix is the rule minus its leftmost label.
                Some(Rule::Exception) => return k - 1,
                Some(_) => best = best.max(k),
                None => {}
            }
            // `*.candidate` matches one more label.
            if k < n && self.wildcards.contains(&candidate) {
                best = best.max(k + 1);
            }
        }
        best
    }

    /// The public suffix of `domain` (lower case, no trailing dot).
    pub fn public_suffix(&self, domain: &str) -> String {
        let domain = normalize(domain);
        let labels: Vec<&str> = domain.split('.').collect();
        let k = self.suffix_labels(&labels).min(labels.len());
        labels[labels.len() - k..].join(".")
    }

    /// The organisational domain of `domain` (RFC 7489 §3.2): its public
    /// suffix plus one label; a name that is itself a public suffix is its
    /// own organisational domain.
    pub fn organizational_domain(&self, domain: &str) -> String {
        let domain = normalize(domain);
        let labels: Vec<&str> = domain.split('.').collect();
        let k = (self.suffix_labels(&labels) + 1).min(labels.len());
        labels[labels.len() - k..].join(".")
    }
}

/// Lower case, no trailing dot, Unicode labels as A-labels where possible.
fn normalize(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.');
    if d.is_ascii() {
        d.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(d).unwrap_or_else(|_| d.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_parses() {
        let list = PublicSuffixList::parse(SHIPPED_LIST).expect("shipped list");
        assert!(list.len() > 5000, "{} rules", list.len());
        assert!(SHIPPED_LIST.contains("Mozilla Public"), "MPL header kept");
    }

    #[test]
    fn organizational_domains() {
        let psl = PublicSuffixList::shipped();
        for (domain, org) in [
            ("example.com", "example.com"),
            ("mail.example.com", "example.com"),
            ("a.b.c.example.com.", "example.com"),
            ("Sub.Example.CO.UK", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            ("co.uk", "co.uk"),
            ("com", "com"),
            // No rule matches: the implicit `*` (one-label suffix).
            ("mail.example.invalidtld", "example.invalidtld"),
            // Wildcard `*.ck` with exception `!www.ck`.
            ("a.b.foo.ck", "b.foo.ck"),
            ("mail.www.ck", "www.ck"),
            // A Unicode rule matched as an A-label (`公司.cn` = xn--55qx5d.cn).
            ("mail.example.xn--55qx5d.cn", "example.xn--55qx5d.cn"),
        ] {
            assert_eq!(psl.organizational_domain(domain), org, "{domain}");
        }
        assert_eq!(psl.public_suffix("x.example.co.uk"), "co.uk");
    }

    #[test]
    fn a_small_list_of_our_own() {
        let psl = PublicSuffixList::parse("// c\n\nuk\nco.uk\n*.kawasaki.jp\n!city.kawasaki.jp\n")
            .expect("parse");
        assert_eq!(psl.organizational_domain("a.b.co.uk"), "b.co.uk");
        assert_eq!(
            psl.organizational_domain("a.b.x.kawasaki.jp"),
            "b.x.kawasaki.jp"
        );
        assert_eq!(
            psl.organizational_domain("a.city.kawasaki.jp"),
            "city.kawasaki.jp"
        );
        assert_eq!(psl.len(), 4);
    }

    #[test]
    fn bad_lines_are_errors_with_the_line_number() {
        let e = PublicSuffixList::parse("com\n// x\nfoo..bar\n").expect_err("bad");
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("foo..bar"), "{e}");
        let e = PublicSuffixList::parse("com\na.*.b\n").expect_err("bad");
        assert_eq!(e.line, 2);
        let e = PublicSuffixList::parse("!com\n").expect_err("bad");
        assert_eq!(e.line, 1);
        let e = PublicSuffixList::parse("// only comments\n").expect_err("empty");
        assert!(e.reason.contains("no rules"));
    }
}

//! The MTA-STS policy file (RFC 8461 §3.2) and MX host matching (§4.1).
//!
//! ```text
//! version: STSv1
//! mode: enforce
//! mx: mail.example.com
//! mx: *.example.net
//! max_age: 604800
//! ```
//!
//! # Security
//! The body comes from an HTTPS server (untrusted content, bounded size by
//! the fetcher). Parsing is line by line with no recursion; patterns are
//! only compared, never used as regular expressions.
//!
//! # Standards
//! RFC 8461 §3.2 (format), §4.1 (MX host validation), RFC 6125 §6.4.3
//! (a wildcard covers one left-most label).

use std::fmt;

/// The largest `max_age` (RFC 8461 §3.2: 31557600 s, about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// What senders do with a policy (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Do not deliver to MX hosts that fail the policy.
    Enforce,
    /// Deliver anyway, report failures (TLS-RPT).
    Testing,
    /// The domain has withdrawn its policy.
    None,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        })
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Always `STSv1`.
    pub version: String,
    /// The mode.
    pub mode: Mode,
    /// MX patterns (`mail.example.com`, `*.example.net`), lower case, no
    /// trailing dot, in file order.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached (capped at [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
    /// Things that were accepted but are worth telling the operator
    /// (an over-long `max_age`, repeated fields).
    pub warnings: Vec<String>,
}

/// Why a policy body is not a valid policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A line is not `key: value`.
    #[error("line {line}: {detail}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A required field is missing.
    #[error("the {0} field is missing")]
    Missing(&'static str),
    /// A field has a bad value.
    #[error("line {line}: bad {field} value {value:?}: {detail}")]
    Value {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What is allowed.
        detail: &'static str,
    },
    /// Not UTF-8.
    #[error("the policy is not UTF-8 text")]
    NotText,
}

impl Policy {
    /// Parses a policy body. Lines end with LF or CRLF; keys are
    /// case-insensitive; unknown keys are ignored (RFC 8461 §3.2
    /// extensions); for repeated `version`, `mode` and `max_age` the first
    /// one counts; `mx` may repeat. `mx` is required unless the mode is
    /// `none`.
    pub fn parse(body: &[u8]) -> Result<Policy, PolicyError> {
        let text = std::str::from_utf8(body).map_err(|_| PolicyError::NotText)?;
        let mut version: Option<String> = None;
        let mut mode: Option<Mode> = None;
        let mut max_age: Option<u64> = None;
        let mut mx = Vec::new();
        let mut warnings = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(PolicyError::Syntax {
                    line: line_no,
                    detail: format!("{line:?} is not `key: value`"),
                });
            };
            let key = key.to_ascii_lowercase();
            if key.is_empty() || key.contains([' ', '\t']) {
                return Err(PolicyError::Syntax {
                    line: line_no,
                    detail: format!("bad field name {key:?}"),
                });
            }
            let value = value.trim_matches([' ', '\t']);
            let bad = |field: &'static str, detail: &'static str| PolicyError::Value {
                line: line_no,
                field,
                value: value.to_owned(),
                detail,
            };
            match key.as_str() {
                "version" => {
                    if version.is_some() {
                        warnings.push(format!("line {line_no}: repeated version ignored"));
                        continue;
                    }
                    if value != "STSv1" {
                        return Err(bad("version", "must be STSv1"));
                    }
                    version = Some(value.to_owned());
                }
                "mode" => {
                    if mode.is_some() {
                        warnings.push(format!("line {line_no}: repeated mode ignored"));
                        continue;
                    }
                    mode = Some(match value.to_ascii_lowercase().as_str() {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return Err(bad("mode", "must be enforce, testing or none")),
                    });
                }
                "max_age" => {
                    if max_age.is_some() {
                        warnings.push(format!("line {line_no}: repeated max_age ignored"));
                        continue;
                    }
                    if value.is_empty()
                        || value.len() > 10
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(bad("max_age", "must be 1 to 10 digits (seconds)"));
                    }
                    let n: u64 = value
                        .parse()
                        .map_err(|_| bad("max_age", "must be 1 to 10 digits (seconds)"))?;
                    if n > MAX_AGE_LIMIT {
                        warnings.push(format!(
                            "line {line_no}: max_age {n} is above the limit {MAX_AGE_LIMIT}; \
                             using {MAX_AGE_LIMIT}"
                        ));
                    }
                    max_age = Some(n.min(MAX_AGE_LIMIT));
                }
                "mx" => {
                    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
                    if !is_mx_pattern(&pattern) {
                        return Err(bad(
                            "mx",
                            "must be a host name or *. followed by a domain name",
                        ));
                    }
                    if !mx.contains(&pattern) {
                        mx.push(pattern);
                    }
                }
                _ => {} // extension fields: ignored (RFC 8461 §3.2)
            }
        }
        let version = version.ok_or(PolicyError::Missing("version"))?;
        let mode = mode.ok_or(PolicyError::Missing("mode"))?;
        let max_age = max_age.ok_or(PolicyError::Missing("max_age"))?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::Missing("mx"));
        }
        Ok(Policy {
            version,
            mode,
            mx,
            max_age,
            warnings,
        })
    }

    /// The pattern of this policy that allows `mx_host`, if any.
    pub fn matching_pattern(&self, mx_host: &str) -> Option<&str> {
        self.mx
            .iter()
            .find(|p| pattern_matches(p, mx_host))
            .map(String::as_str)
    }
}

/// Does the policy allow `mx_host` (RFC 8461 §4.1)?
pub fn mx_matches(policy: &Policy, mx_host: &str) -> bool {
    policy.matching_pattern(mx_host).is_some()
}

/// One pattern against one host, case-insensitive, trailing dots ignored.
/// `*.example.com` covers exactly one more label: `mx.example.com`, not
/// `example.com` nor `a.b.example.com` (RFC 8461 §4.1).
pub fn pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    let host = host.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// A host name (LDH labels, at least one dot not required) or `*.` + one.
fn is_mx_pattern(p: &str) -> bool {
    let name = p.strip_prefix("*.").unwrap_or(p);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n";

    #[test]
    fn parses_the_rfc_shape() {
        let p = Policy::parse(GOOD.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.version, "STSv1");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, 604_800);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn parse_table() {
        // (body, Ok(mode) or Err(substring of the error))
        let cases: &[(&str, Result<Mode, &str>)] = &[
            (
                "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n",
                Ok(Mode::Testing),
            ),
            ("version: STSv1\nmode: none\nmax_age: 0", Ok(Mode::None)),
            (
                "VERSION:STSv1\nMode: Enforce\nMX: A.Example.\nmax_age:86400\n",
                Ok(Mode::Enforce),
            ),
            (
                "mx: a.example\nmax_age: 5\nmode: enforce\nversion: STSv1\nfoo: bar\n",
                Ok(Mode::Enforce),
            ),
            (
                "version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 5\n\n",
                Ok(Mode::Enforce),
            ),
            (
                "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 5",
                Err("must be STSv1"),
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 5",
                Err("mode"),
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 5",
                Err("mx field is missing"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example",
                Err("max_age field is missing"),
            ),
            (
                "mode: enforce\nmx: a.example\nmax_age: 5",
                Err("version field is missing"),
            ),
            (
                "version: STSv1\nmx: a.example\nmax_age: 5",
                Err("mode field is missing"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5",
                Err("max_age"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901",
                Err("max_age"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1 day",
                Err("max_age"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 5",
                Err("mx"),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail example\nmax_age: 5",
                Err("mx"),
            ),
            ("version: STSv1\nmode: enforce\nmx:\nmax_age: 5", Err("mx")),
            (
                "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 5",
                Err("line 2"),
            ),
            ("<html><body>Not found</body></html>", Err("line 1")),
        ];
        for (body, want) in cases {
            let got = Policy::parse(body.as_bytes());
            match (want, &got) {
                (Ok(mode), Ok(p)) => assert_eq!(p.mode, *mode, "{body:?}"),
                (Err(part), Err(e)) => {
                    assert!(e.to_string().contains(part), "{body:?}: {e}");
                }
                _ => panic!("{body:?}: got {got:?}"),
            }
        }
        assert_eq!(Policy::parse(&[0xff, 0xfe]), Err(PolicyError::NotText));
    }

    #[test]
    fn max_age_capped_and_repeats_warned() {
        let p = Policy::parse(
            b"version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 9999999999\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.max_age, MAX_AGE_LIMIT);
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }

    #[test]
    fn pattern_table() {
        let cases = [
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.Example.COM.", true),
            ("mail.example.com", "mail2.example.com", false),
            ("*.example.com", "mx1.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", ".example.com", false),
            ("*.example.com", "mx1.example.com.evil", false),
            ("*.example.com", "mx1example.com", false),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(pattern_matches(pattern, host), want, "{pattern} vs {host}");
        }
        let p = Policy::parse(GOOD.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert!(mx_matches(&p, "mail.example.com"));
        assert_eq!(p.matching_pattern("x.example.net"), Some("*.example.net"));
        assert!(!mx_matches(&p, "mx.attacker.example"));
    }
}

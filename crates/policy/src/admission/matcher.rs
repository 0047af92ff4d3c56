//! Sender-group match expressions: what a `[[sender_group]]` `match` entry
//! says about a client, parsed once from the configuration.
//!
//! | written                          | matches when                                          |
//! |----------------------------------|-------------------------------------------------------|
//! | `all`                            | always                                                |
//! | `192.0.2.7`, `2001:db8::/32`     | the client address is (in) it                         |
//! | `192.0.2.10-192.0.2.20`          | the client address is in the inclusive range          |
//! | `rdns:mail.example.com`          | a PTR name of the client is exactly that              |
//! | `rdns:.example.com`              | a PTR name ends with it (subdomains only)             |
//! | `rdns:*.dyn.*.example`           | a PTR name matches the pattern (`*` any run, `?` one) |
//! | `rdns-verified:PATTERN`          | a forward-confirmed PTR name matches (for allowlists) |
//! | `ptr:none` / `ptr:present`       | the client has no PTR record / has one                |
//! | `fcrdns:pass` / `fcrdns:fail`    | a PTR name resolves back to the client (or none does) |
//! | `ptr:error` / `fcrdns:error`     | that lookup failed (SERVFAIL, timeout): a broken reverse zone |
//! | `dnsbl:ZONE[=CODES]`, `dnswl:…`  | the client is listed in ZONE (with a code in CODES)   |
//! | `dnsbl-score>=N`                 | the weights of the `[[dns_list]]` zones listing it add up to N |
//! | `authenticated`                  | the session authenticated (RFC 4954)                  |
//! | `tls`                            | the session is encrypted                              |
//! | `listener:NAME`                  | the client connected to that listener                 |
//!
//! `CODES` is a postscreen-style address pattern: `127.0.0.2`,
//! `127.0.0.[2..11]`, `127.0.[0..255].[2;4;10..11]`.
//!
//! # Security
//! Every fact but the address, the listener, TLS and AUTH comes from DNS and can
//! be forged by whoever controls the client's reverse zone: a PTR name alone
//! is a claim (`rdns:` matches claims: right for blocklists), FCrDNS makes it
//! the forward zone owner's claim too (seed 001): `rdns-verified:` matches
//! only names that resolve back to the client (ESA's verified hostname,
//! Postfix's `client_name`). Allowlisting by `rdns:` is flagged by
//! `config check`. Answers outside 127/8 and Spamhaus-style error codes
//! (127.255.255.0/24: "query refused") never count as a listing.
//!
//! # Standards
//! RFC 5782 (DNSBL/DNSWL query and answer conventions), RFC 1912 §2.1 and
//! RFC 8601 §2.7.3 (FCrDNS, "iprev").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// A parse failure of one match entry; the text says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatchSyntaxError(pub String);

fn err(msg: impl Into<String>) -> MatchSyntaxError {
    MatchSyntaxError(msg.into())
}

/// A reverse-DNS name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// The whole name.
    Exact(String),
    /// `.example.com`: any name ending with it.
    Suffix(String),
    /// `*` and `?` wildcards.
    Glob(String),
}

impl NamePattern {
    fn parse(s: &str) -> Result<Self, MatchSyntaxError> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if s.is_empty() || s == "." {
            return Err(err("rdns: needs a name, `.suffix` or a `*` pattern"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*' | b'?'))
        {
            return Err(err(format!(
                "rdns:{s}: a name may hold letters, digits, `-`, `_`, `.`, and the wildcards `*` `?`"
            )));
        }
        Ok(if s.contains(['*', '?']) {
            NamePattern::Glob(s)
        } else if s.starts_with('.') {
            NamePattern::Suffix(s)
        } else {
            NamePattern::Exact(s)
        })
    }

    /// True when `name` (any case, trailing dot or not) matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self {
            NamePattern::Exact(e) => name == *e,
            NamePattern::Suffix(s) => name.ends_with(s.as_str()),
            NamePattern::Glob(g) => glob(g.as_bytes(), name.as_bytes()),
        }
    }
}

/// `*` (any run, possibly empty) and `?` (one byte); iterative with one
/// backtrack point, so linear in practice and never exponential.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

/// One octet of a [`CodePattern`]: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OctetSet(Vec<(u8, u8)>);

impl OctetSet {
    fn parse(s: &str) -> Option<Self> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let mut ranges = Vec::new();
            for part in inner.split(';') {
                let r = if let Some((lo, hi)) = part.split_once("..") {
                    (lo.parse().ok()?, hi.parse().ok()?)
                } else {
                    let v = part.parse().ok()?;
                    (v, v)
                };
                if r.0 > r.1 {
                    return None;
                }
                ranges.push(r);
            }
            Some(Self(ranges))
        } else {
            let v = s.parse().ok()?;
            Some(Self(vec![(v, v)]))
        }
    }

    fn contains(&self, o: u8) -> bool {
        self.0.iter().any(|&(a, b)| (a..=b).contains(&o))
    }
}

/// The answers of a DNS list that count (postscreen's `=127.0.0.[2..11]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePattern {
    text: String,
    octets: [OctetSet; 4],
}

impl CodePattern {
    /// Parses `127.0.0.2`, `127.0.0.[2..11]`, `127.0.[0..255].[2;4;10..11]`.
    pub fn parse(s: &str) -> Result<Self, MatchSyntaxError> {
        let bad = || {
            err(format!(
                "`{s}`: answer codes are four dot-separated octets, each a number or a \
                 [a..b;c] list, e.g. 127.0.0.[2..11]"
            ))
        };
        // Split on the dots outside brackets (`[2..11]` holds dots of its own).
        let t = s.trim();
        let mut parts = Vec::with_capacity(4);
        let (mut depth, mut start) = (0usize, 0);
        for (i, c) in t.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                '.' if depth == 0 => {
                    parts.push(&t[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&t[start..]);
        let [o1, o2, o3, o4] = parts.as_slice() else {
            return Err(bad());
        };
        let octet = |x: &str| OctetSet::parse(x).ok_or_else(bad);
        Ok(Self {
            text: t.to_owned(),
            octets: [octet(o1)?, octet(o2)?, octet(o3)?, octet(o4)?],
        })
    }

    /// True when `code` matches.
    pub fn matches(&self, code: Ipv4Addr) -> bool {
        self.octets
            .iter()
            .zip(code.octets())
            .all(|(set, o)| set.contains(o))
    }
}

impl fmt::Display for CodePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// True when a DNS list answer is a listing at all: inside 127/8 (RFC 5782
/// §2.3) and not a Spamhaus-style error code (127.255.255.0/24, returned
/// to open resolvers and over-quota users; counting it would block everyone).
pub fn is_listing_code(code: Ipv4Addr) -> bool {
    let o = code.octets();
    o[0] == 127 && !(o[1] == 255 && o[2] == 255)
}

/// One `match` entry of a sender group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `all`.
    All,
    /// An address or a CIDR network.
    Net(IpNet),
    /// An inclusive address range of one family.
    Range(IpAddr, IpAddr),
    /// `rdns:PATTERN`: any PTR name (a claim).
    Rdns(NamePattern),
    /// `rdns-verified:PATTERN`: a forward-confirmed PTR name.
    RdnsVerified(NamePattern),
    /// `ptr:present` (true) / `ptr:none` (false).
    Ptr(bool),
    /// `fcrdns:pass` (true) / `fcrdns:fail` (false).
    Fcrdns(bool),
    /// `ptr:error`: the PTR lookup failed (a DNS failure matches nothing
    /// else; this lets a policy throttle broken reverse zones, which
    /// spammers choose).
    PtrError,
    /// `fcrdns:error`: FCrDNS could not be decided (a lookup failed).
    FcrdnsError,
    /// `dnsbl:ZONE[=CODES]` or `dnswl:…`.
    DnsList {
        /// The list's zone, lower case, no trailing dot.
        zone: String,
        /// The answers that count; `None`: any listing code.
        codes: Option<CodePattern>,
    },
    /// `dnsbl-score>=N` over the `[[dns_list]]` weights.
    DnsScoreAtLeast(i32),
    /// `authenticated`.
    Authenticated,
    /// `tls`.
    Tls,
    /// `listener:NAME`.
    Listener(String),
}

/// The facts a matcher needs beyond the session's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// The client's PTR names.
    Ptr,
    /// Forward confirmation of the PTR names.
    Fcrdns,
    /// The DNS lists' answers.
    DnsLists,
}

impl Matcher {
    /// Parses one entry (see the module table).
    pub fn parse(s: &str) -> Result<Self, MatchSyntaxError> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "all" => return Ok(Matcher::All),
            "authenticated" => return Ok(Matcher::Authenticated),
            "tls" => return Ok(Matcher::Tls),
            "ptr:none" => return Ok(Matcher::Ptr(false)),
            "ptr:present" => return Ok(Matcher::Ptr(true)),
            "fcrdns:pass" => return Ok(Matcher::Fcrdns(true)),
            "fcrdns:fail" => return Ok(Matcher::Fcrdns(false)),
            "ptr:error" => return Ok(Matcher::PtrError),
            "fcrdns:error" => return Ok(Matcher::FcrdnsError),
            _ => {}
        }
        if let Some(rest) = lower.strip_prefix("rdns-verified:") {
            return NamePattern::parse(rest).map(Matcher::RdnsVerified);
        }
        if let Some(rest) = lower.strip_prefix("rdns:") {
            return NamePattern::parse(rest).map(Matcher::Rdns);
        }
        if let Some(rest) = s.strip_prefix("listener:") {
            if rest.is_empty() {
                return Err(err("listener: needs a listener name"));
            }
            return Ok(Matcher::Listener(rest.to_owned()));
        }
        if let Some(rest) = lower.strip_prefix("dnsbl-score>=") {
            return rest
                .trim()
                .parse()
                .map(Matcher::DnsScoreAtLeast)
                .map_err(|_| {
                    err(format!(
                        "`{s}`: the score is a whole number, e.g. dnsbl-score>=3"
                    ))
                });
        }
        if let Some(rest) = lower
            .strip_prefix("dnsbl:")
            .or_else(|| lower.strip_prefix("dnswl:"))
        {
            let (zone, codes) = match rest.split_once('=') {
                Some((z, c)) => (z, Some(CodePattern::parse(c)?)),
                None => (rest, None),
            };
            let zone = normalise_zone(zone)?;
            return Ok(Matcher::DnsList { zone, codes });
        }
        if let Some((a, b)) = s.split_once('-')
            && let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>())
        {
            if a.is_ipv4() != b.is_ipv4() || a > b {
                return Err(err(format!(
                    "`{s}`: a range is FIRST-LAST of one address family, first <= last"
                )));
            }
            return Ok(Matcher::Range(a, b));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Matcher::Net(IpNet::from(ip)));
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Matcher::Net(net.trunc()));
        }
        Err(err(format!(
            "`{s}` is not a match: use all, an address, a CIDR network, FIRST-LAST, \
             rdns:NAME|.SUFFIX|PATTERN, rdns-verified:…, ptr:none|present, fcrdns:pass|fail, \
             dnsbl:ZONE[=CODES], dnswl:ZONE[=CODES], dnsbl-score>=N, authenticated, tls \
             or listener:NAME"
        )))
    }

    /// The DNS facts this matcher needs, if any.
    pub fn needs(&self) -> Option<Need> {
        match self {
            Matcher::Rdns(_) | Matcher::Ptr(_) | Matcher::PtrError => Some(Need::Ptr),
            Matcher::Fcrdns(_) | Matcher::RdnsVerified(_) | Matcher::FcrdnsError => {
                Some(Need::Fcrdns)
            }
            Matcher::DnsList { .. } | Matcher::DnsScoreAtLeast(_) => Some(Need::DnsLists),
            _ => None,
        }
    }
}

/// A DNS list zone as a lower-case name without trailing dot.
pub fn normalise_zone(zone: &str) -> Result<String, MatchSyntaxError> {
    let z = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !z.is_empty()
        && z.len() <= 200
        && z.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(z)
    } else {
        Err(err(format!("`{zone}` is not a DNS zone name")))
    }
}

/// An IPv4-mapped IPv6 address as IPv4, so `::ffff:192.0.2.1` cannot dodge
/// an IPv4 entry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::All => f.write_str("all"),
            Matcher::Net(n) if n.prefix_len() == n.max_prefix_len() => write!(f, "{}", n.addr()),
            Matcher::Net(n) => write!(f, "{n}"),
            Matcher::Range(a, b) => write!(f, "{a}-{b}"),
            Matcher::Rdns(
                NamePattern::Exact(s) | NamePattern::Suffix(s) | NamePattern::Glob(s),
            ) => {
                write!(f, "rdns:{s}")
            }
            Matcher::RdnsVerified(
                NamePattern::Exact(s) | NamePattern::Suffix(s) | NamePattern::Glob(s),
            ) => write!(f, "rdns-verified:{s}"),
            Matcher::Ptr(true) => f.write_str("ptr:present"),
            Matcher::Ptr(false) => f.write_str("ptr:none"),
            Matcher::Fcrdns(true) => f.write_str("fcrdns:pass"),
            Matcher::Fcrdns(false) => f.write_str("fcrdns:fail"),
            Matcher::PtrError => f.write_str("ptr:error"),
            Matcher::FcrdnsError => f.write_str("fcrdns:error"),
            Matcher::DnsList { zone, codes: None } => write!(f, "dnsbl:{zone}"),
            Matcher::DnsList {
                zone,
                codes: Some(c),
            } => write!(f, "dnsbl:{zone}={c}"),
            Matcher::DnsScoreAtLeast(n) => write!(f, "dnsbl-score>={n}"),
            Matcher::Authenticated => f.write_str("authenticated"),
            Matcher::Tls => f.write_str("tls"),
            Matcher::Listener(l) => write!(f, "listener:{l}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_refuses_nonsense() {
        for (s, want) in [
            ("all", "all"),
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7/24", "192.0.2.0/24"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("192.0.2.10-192.0.2.20", "192.0.2.10-192.0.2.20"),
            ("rdns:Mail.Example.COM.", "rdns:mail.example.com"),
            ("rdns:.dynamic.example", "rdns:.dynamic.example"),
            ("rdns:*.dyn.*", "rdns:*.dyn.*"),
            (
                "rdns-verified:.partner.example",
                "rdns-verified:.partner.example",
            ),
            ("ptr:none", "ptr:none"),
            ("fcrdns:fail", "fcrdns:fail"),
            ("ptr:error", "ptr:error"),
            ("fcrdns:error", "fcrdns:error"),
            (
                "dnsbl:bl.example=127.0.0.[2..11]",
                "dnsbl:bl.example=127.0.0.[2..11]",
            ),
            ("dnswl:wl.example", "dnsbl:wl.example"),
            ("dnsbl-score>=3", "dnsbl-score>=3"),
            ("listener:smtp", "listener:smtp"),
        ] {
            assert_eq!(Matcher::parse(s).unwrap().to_string(), want, "{s}");
        }
        for bad in [
            "",
            "everything",
            "192.0.2.20-192.0.2.10",
            "192.0.2.1-2001:db8::1",
            "rdns:",
            "rdns:a b",
            "dnsbl:",
            "dnsbl:bl.example=127.0.0",
            "dnsbl:bl.example=127.0.0.[11..2]",
            "dnsbl-score>=x",
            "listener:",
            "300.1.1.1",
        ] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_patterns() {
        let p = |s| NamePattern::parse(s).unwrap();
        assert!(p("mail.example.com").matches("MAIL.example.com."));
        assert!(!p("mail.example.com").matches("xmail.example.com"));
        assert!(p(".example.com").matches("a.b.example.com"));
        assert!(!p(".example.com").matches("example.com"));
        assert!(!p(".example.com").matches("badexample.com"));
        assert!(p("*.dyn.*").matches("host-1.dyn.isp.example"));
        assert!(!p("*.dyn.*").matches("dyn.isp.example"));
        assert!(p("host-?.example").matches("host-7.example"));
        assert!(!p("host-?.example").matches("host-77.example"));
        // Many stars on a long name stay cheap (no exponential backtracking).
        let long = "a".repeat(250);
        assert!(!p("*a*a*a*a*a*a*a*a*b").matches(&long));
    }

    #[test]
    fn code_patterns_and_listing_codes() {
        let c = CodePattern::parse("127.0.[0..1].[2;4;10..11]").unwrap();
        for (ip, want) in [
            ("127.0.0.2", true),
            ("127.0.1.4", true),
            ("127.0.0.10", true),
            ("127.0.0.3", false),
            ("127.0.2.2", false),
            ("127.1.0.2", false),
        ] {
            assert_eq!(c.matches(ip.parse().unwrap()), want, "{ip}");
        }
        assert!(is_listing_code("127.0.0.2".parse().unwrap()));
        assert!(!is_listing_code("127.255.255.254".parse().unwrap()));
        assert!(!is_listing_code("10.0.0.2".parse().unwrap()));
    }
}

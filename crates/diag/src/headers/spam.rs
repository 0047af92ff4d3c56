//! Spam-filter verdict headers into one-line [`SpamVerdict`]s an admin can
//! read without the vendor documentation at hand.
//!
//! Recognised: SpamAssassin (`X-Spam-Status`, `X-Spam-Flag`, `X-Spam-Level`,
//! other `X-Spam*`), Rspamd (`X-Rspamd-*`), Microsoft EOP / Exchange
//! (`X-Forefront-Antispam-Report` with SCL, SFV, CAT, IPV …,
//! `X-MS-Exchange-Organization-SCL`, `X-Microsoft-Antispam` BCL,
//! `X-Microsoft-Antispam-Mailbox-Delivery` dest) and the older `X-Spam-TCS-SCL`.
//!
//! # Security
//! Verdict headers are plain text anyone upstream can add; they say what a
//! filter claimed, not what is true. Values are [`clean`]ed and long ones
//! shortened.
//!
//! # Standards
//! None: these are vendor headers. Meanings follow the vendors' published
//! tables (Microsoft "Anti-spam message headers"; SpamAssassin
//! `add_header` defaults).

use super::SpamVerdict;
use super::text::{clean, truncate};

/// Longest verdict text kept for headers shown as they are.
const MAX_RAW: usize = 120;

/// The verdict for one header, or `None` when the header is not a spam header.
/// `value` is the unfolded value.
pub(crate) fn verdict(name: &str, value: &str) -> Option<SpamVerdict> {
    let lower = name.to_ascii_lowercase();
    let v = match lower.as_str() {
        "x-forefront-antispam-report" | "x-forefront-antispam-report-untrusted" => forefront(value),
        "x-ms-exchange-organization-scl" => scl(value.trim()),
        "x-spam-tcs-scl" => scl(value.split(':').next().unwrap_or_default().trim()),
        "x-microsoft-antispam" | "x-microsoft-antispam-untrusted" => {
            let bcl = field(value, ';', ':', "BCL")?;
            bcl_text(&bcl)
        }
        "x-microsoft-antispam-mailbox-delivery" => {
            let dest = field(value, ';', ':', "dest")?;
            dest_text(&dest)
        }
        "x-spam-status" => spam_status(value),
        "x-spam-flag" => {
            let f = value.trim();
            if f.eq_ignore_ascii_case("yes") {
                format!("{f} (marked as spam)")
            } else {
                f.to_owned()
            }
        }
        "x-spam-level" if !value.trim().is_empty() && value.trim().chars().all(|c| c == '*') => {
            let n = value.trim().len();
            format!("{n} stars (score at least {n})")
        }
        n if n.starts_with("x-spam") || n.starts_with("x-rspamd") => truncate(value, MAX_RAW),
        _ => return None,
    };
    Some(SpamVerdict {
        header: clean(name),
        verdict: clean(&v),
    })
}

/// `key<kv>value` from a `sep`-separated list, key matched case-insensitively.
fn field(value: &str, sep: char, kv: char, key: &str) -> Option<String> {
    value.split(sep).find_map(|part| {
        let (k, v) = part.split_once(kv)?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().to_owned())
    })
}

/// Spam confidence level (Microsoft "Spam confidence level (SCL)").
fn scl(v: &str) -> String {
    let meaning = match v.parse::<i32>() {
        Ok(-1) => "filtering skipped: trusted or allowed sender",
        Ok(0..=4) => "not spam",
        Ok(5..=6) => "spam",
        Ok(7..=9) => "high confidence spam",
        _ => "unknown value",
    };
    format!("SCL {v} ({meaning})")
}

/// Bulk complaint level.
fn bcl_text(v: &str) -> String {
    let meaning = match v.parse::<i32>() {
        Ok(0) => "not bulk",
        Ok(1..=3) => "bulk, few complaints",
        Ok(4..=7) => "bulk, mixed complaints",
        Ok(8..=9) => "bulk, many complaints",
        _ => "unknown value",
    };
    format!("BCL {v} ({meaning})")
}

fn dest_text(v: &str) -> String {
    let meaning = match v {
        "I" => "delivered to the Inbox",
        "J" => "delivered to Junk Email",
        "C" => "custom folder",
        _ => "unknown folder",
    };
    format!("dest {v} ({meaning})")
}

/// Spam filtering verdict (SFV).
fn sfv_meaning(v: &str) -> &'static str {
    match v {
        "NSPM" => "not spam",
        "SPM" => "spam",
        "SKS" => "marked spam before filtering (mail flow rule)",
        "SKA" => "allowed: sender on an allow list",
        "SKB" => "blocked: sender on a block list",
        "SKI" => "skipped: intra-organization",
        "SKN" => "marked not spam before filtering (mail flow rule)",
        "SKQ" => "released from quarantine",
        "SFE" => "allowed: user's safe senders",
        "BLK" => "blocked: user's blocked senders",
        _ => "unknown",
    }
}

/// Protection policy category (CAT).
fn cat_meaning(v: &str) -> &'static str {
    match v {
        "NONE" => "no threat",
        "SPM" => "spam",
        "HSPM" => "high confidence spam",
        "PHSH" => "phishing",
        "HPHSH" | "HPHISH" => "high confidence phishing",
        "MALW" => "malware",
        "BULK" => "bulk",
        "SPOOF" => "spoofing",
        "DIMP" => "domain impersonation",
        "UIMP" => "user impersonation",
        "GIMP" => "mailbox intelligence impersonation",
        "AMP" => "anti-malware",
        "SAP" => "safe attachments",
        "OSPM" => "outbound spam",
        _ => "unknown",
    }
}

/// `X-Forefront-Antispam-Report: CIP:…;CTRY:…;SCL:5;SFV:SPM;…`.
fn forefront(value: &str) -> String {
    let mut parts = Vec::new();
    let get = |k: &str| field(value, ';', ':', k).filter(|v| !v.is_empty());
    if let Some(v) = get("SCL") {
        parts.push(scl(&v));
    }
    if let Some(v) = get("SFV") {
        parts.push(format!("SFV {v} ({})", sfv_meaning(&v)));
    }
    if let Some(v) = get("CAT") {
        parts.push(format!("CAT {v} ({})", cat_meaning(&v)));
    }
    for (key, label) in [
        ("IPV", "IPV"),
        ("IPVD", "IPVD"),
        ("CIP", "client IP"),
        ("CTRY", "country"),
        ("H", "HELO"),
        ("PTR", "PTR"),
        ("DIR", "direction"),
    ] {
        if let Some(v) = get(key) {
            let v = match (key, v.as_str()) {
                ("IPV" | "IPVD", "NLI") => "NLI (not on any IP reputation list)".to_owned(),
                ("IPV" | "IPVD", "CAL") => "CAL (on the connection allow list)".to_owned(),
                ("DIR", "INB") => "inbound".to_owned(),
                ("DIR", "OUT") => "outbound".to_owned(),
                ("DIR", "INT") => "internal".to_owned(),
                _ => v,
            };
            parts.push(format!("{label} {v}"));
        }
    }
    if parts.is_empty() {
        truncate(value, MAX_RAW)
    } else {
        parts.join("; ")
    }
}

/// `X-Spam-Status: Yes, score=7.1 required=5.0 tests=A,B,\n\tC autolearn=no …`.
fn spam_status(value: &str) -> String {
    let mut head = Vec::new();
    let mut tests = Vec::new();
    let mut in_tests = false;
    for word in value.split_whitespace() {
        if let Some(t) = word.strip_prefix("tests=") {
            in_tests = true;
            tests.push(t);
        } else if in_tests && !word.contains('=') {
            tests.push(word);
        } else {
            in_tests = false;
            if word.starts_with("score=") || word.starts_with("required=") || head.is_empty() {
                head.push(word);
            }
        }
    }
    let head = head.join(" ");
    let flag = head.split(',').next().unwrap_or_default().trim();
    let meaning = if flag.eq_ignore_ascii_case("yes") {
        " (spam)"
    } else if flag.eq_ignore_ascii_case("no") {
        " (not spam)"
    } else {
        ""
    };
    let tests: Vec<&str> = tests
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty() && *t != "none")
        .collect();
    if tests.is_empty() {
        format!("{head}{meaning}")
    } else {
        truncate(
            &format!("{head}{meaning}; tests: {}", tests.join(", ")),
            MAX_RAW * 2,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, value: &str) -> Option<String> {
        verdict(name, value).map(|v| v.verdict)
    }

    #[test]
    fn forefront_report() {
        assert_eq!(
            v(
                "X-Forefront-Antispam-Report",
                "CIP:198.51.100.7;CTRY:US;LANG:en;SCL:5;SRV:;IPV:NLI;SFV:SPM;H:mail.example.org;PTR:mail.example.org;CAT:SPM;SFS:(13230040)(4636009);DIR:INB;"
            )
            .as_deref(),
            Some(
                "SCL 5 (spam); SFV SPM (spam); CAT SPM (spam); IPV NLI (not on any IP reputation list); client IP 198.51.100.7; country US; HELO mail.example.org; PTR mail.example.org; direction inbound"
            )
        );
        // The 2011-era form from the seed guide: no SCL, still readable.
        assert_eq!(
            v(
                "X-Forefront-Antispam-Report",
                "KIP:(null);UIP:(null);IPVD:NLI;H:vps20022.example.com;RD: 6-11-22-74.example.com;EFVD:NLI"
            )
            .as_deref(),
            Some("IPVD NLI (not on any IP reputation list); HELO vps20022.example.com")
        );
    }

    #[test]
    fn scl_levels() {
        for (val, want) in [
            (
                "-1",
                "SCL -1 (filtering skipped: trusted or allowed sender)",
            ),
            ("1", "SCL 1 (not spam)"),
            ("5", "SCL 5 (spam)"),
            ("9", "SCL 9 (high confidence spam)"),
            ("x", "SCL x (unknown value)"),
        ] {
            assert_eq!(
                v("X-MS-Exchange-Organization-SCL", val).as_deref(),
                Some(want)
            );
        }
        assert_eq!(
            v("X-Spam-TCS-SCL", "0:0").as_deref(),
            Some("SCL 0 (not spam)")
        );
    }

    #[test]
    fn spamassassin_status() {
        assert_eq!(
            v(
                "X-Spam-Status",
                "Yes, score=7.1 required=5.0 tests=BAYES_99,DKIM_INVALID, HTML_MESSAGE,RDNS_NONE autolearn=no autolearn_force=no version=4.0.0"
            )
            .as_deref(),
            Some("Yes, score=7.1 required=5.0 (spam); tests: BAYES_99, DKIM_INVALID, HTML_MESSAGE, RDNS_NONE")
        );
        assert_eq!(
            v("X-Spam-Status", "No, score=-0.1 required=5.0 tests=none").as_deref(),
            Some("No, score=-0.1 required=5.0 (not spam)")
        );
        assert_eq!(
            v("X-Spam-Flag", "YES").as_deref(),
            Some("YES (marked as spam)")
        );
        assert_eq!(
            v("X-Spam-Level", "*******").as_deref(),
            Some("7 stars (score at least 7)")
        );
    }

    #[test]
    fn microsoft_bcl_and_dest() {
        assert_eq!(
            v("X-Microsoft-Antispam", "BCL:0;ARA:13230040|366016;").as_deref(),
            Some("BCL 0 (not bulk)")
        );
        assert_eq!(
            v(
                "X-Microsoft-Antispam-Mailbox-Delivery",
                "ucf:0;jmr:0;auth:0;dest:J;ENG:(910005)"
            )
            .as_deref(),
            Some("dest J (delivered to Junk Email)")
        );
        assert_eq!(v("X-Microsoft-Antispam", "ARA:1;"), None);
    }

    #[test]
    fn other_headers_ignored_and_long_ones_cut() {
        assert_eq!(v("Subject", "spam"), None);
        let long = "x".repeat(500);
        let got = v("X-Spam-Report", &long).unwrap();
        assert_eq!(got.chars().count(), MAX_RAW);
    }
}

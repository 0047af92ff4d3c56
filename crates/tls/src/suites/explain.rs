//! Explaining a whole cipher-suite list at once: each entry with its name,
//! why Postern cannot use it, and the closest suite it can, then a
//! `cipher_suites = [...]` line to paste. Used by the configuration check
//! (`[tls] cipher_suites`) and by `postern tls suites`.
//!
//! Lists copied from other servers come in every spelling; one needs care:
//! MailSite writes the `0xC0xx` ECDHE suites as `0xCxx` and stores them in
//! decimal, so `3112` (`0xC28`) means `0xC028`
//! (TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384). No assigned suite lies in
//! `0x0C00..=0x0CFF`, so such an id is read that way, and said so.
//!
//! # Security
//! The replacement is always an AEAD suite with ECDHE (forward secrecy) that
//! rustls implements; nothing here weakens a list, it only says what the
//! server will actually offer.
//!
//! # Standards
//! IANA "TLS Cipher Suites" registry; RFC 8446 §B.4 (TLS 1.3 suites);
//! RFC 5289 (ECDHE AES-GCM); RFC 7905 (ChaCha20-Poly1305); RFC 9325 §4.2
//! (recommended suites).

use std::fmt::Write as _;

use super::{SuiteInfo, by_id, default_order, lookup, parse_id};

/// What one entry of a list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry as written.
    pub input: String,
    /// The suite it names; `None` when it names none.
    pub suite: Option<&'static SuiteInfo>,
    /// Set when the id was read in MailSite's `0xCxx` form (the id written).
    pub mailsite_id: Option<u16>,
    /// Why Postern cannot use it; `None` when it can (and the entry is in a
    /// standard spelling).
    pub problem: Option<String>,
    /// The closest suite Postern can use: the suite itself when usable.
    pub replacement: Option<&'static SuiteInfo>,
}

impl Entry {
    /// Whether the entry can stay as written.
    pub fn is_usable(&self) -> bool {
        self.problem.is_none()
    }
}

/// Resolves one entry, MailSite's decimal `0xCxx` form included.
pub fn explain_one(input: &str) -> Entry {
    let mut entry = Entry {
        input: input.trim().to_owned(),
        suite: None,
        mailsite_id: None,
        problem: None,
        replacement: None,
    };
    let (suite, mailsite) = match lookup(input) {
        Ok(s) => (s, None),
        Err(e) => {
            let Some((s, written)) = parse_id(input.trim()).and_then(mailsite_suite) else {
                entry.problem = Some(e.to_string());
                return entry;
            };
            (s, Some(written))
        }
    };
    entry.suite = Some(suite);
    entry.mailsite_id = mailsite;
    entry.replacement = closest(suite);
    entry.problem = match (suite.unsupported_reason(), mailsite) {
        (Some(why), _) => Some(why.to_owned()),
        (None, Some(written)) => Some(format!(
            "{written} is MailSite's spelling of 0x{:04x}, not a suite id: write \"{}\"",
            suite.id, suite.iana
        )),
        (None, None) => None,
    };
    entry
}

/// MailSite's `0xCxx` (an id in `0x0C00..=0x0CFF`, where nothing is
/// assigned) for `0xC0xx`.
fn mailsite_suite(id: u16) -> Option<(&'static SuiteInfo, u16)> {
    if id & 0xff00 != 0x0c00 || by_id(id).is_some() {
        return None;
    }
    by_id(0xc000 | (id & 0x00ff)).map(|s| (s, id))
}

/// The usable suite nearest to `s`: itself if usable; else the same
/// protocol generation, the same certificate type (ECDSA or RSA), and the
/// same strength (ChaCha20, 256-bit, else 128-bit AES-GCM), with ECDHE.
/// `None` for signalling values, which are not suites.
pub fn closest(s: &'static SuiteInfo) -> Option<&'static SuiteInfo> {
    if s.is_rustls_supported() {
        return Some(s);
    }
    if s.kx == "none" {
        return None;
    }
    let chacha = s.cipher.starts_with("CHACHA20");
    let strong = s.bits >= 256;
    let id = if s.tls13 {
        if chacha {
            0x1303
        } else if strong {
            0x1302
        } else {
            0x1301
        }
    } else if s.auth == "ECDSA" {
        if chacha {
            0xcca9
        } else if strong {
            0xc02c
        } else {
            0xc02b
        }
    } else if chacha {
        0xcca8
    } else if strong {
        0xc030
    } else {
        0xc02f
    };
    by_id(id)
}

/// A whole list: each entry, and the list Postern would use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListExplanation {
    /// Each entry, in order.
    pub entries: Vec<Entry>,
    /// The replacement list: each entry's replacement once, in order, with
    /// the TLS 1.3 suites first when TLS 1.3 is enabled and the list had none.
    pub replacement: Vec<&'static SuiteInfo>,
}

impl ListExplanation {
    /// How many entries cannot stay as written.
    pub fn problems(&self) -> usize {
        self.entries.iter().filter(|e| !e.is_usable()).count()
    }

    /// `cipher_suites = ["…", …]`, ready to paste into postern.toml.
    pub fn paste_line(&self) -> String {
        let names: Vec<String> = self
            .replacement
            .iter()
            .map(|s| format!("\"{}\"", s.iana))
            .collect();
        format!("cipher_suites = [{}]", names.join(", "))
    }

    /// One line per entry (`  159 = 0x009f TLS_…: why; closest: …`), then
    /// the line to paste; every line indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        let width = self
            .entries
            .iter()
            .map(|e| e.input.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for e in &self.entries {
            let _ = write!(out, "{indent}{:<width$} ", e.input);
            match e.suite {
                None => {
                    let _ = write!(out, "= ?: {}", e.problem.as_deref().unwrap_or(""));
                }
                Some(s) => {
                    let _ = write!(out, "= 0x{:04x} {}", s.id, s.iana);
                    if let Some(written) = e.mailsite_id {
                        let _ = write!(
                            out,
                            " (read as MailSite's 0x{:X} = {written} for 0x{:04X})",
                            written, s.id
                        );
                    }
                    match (&e.problem, e.replacement) {
                        (None, _) => out.push_str(": usable"),
                        (Some(why), Some(r)) if r.id != s.id => {
                            let _ = write!(out, ": cannot be used: {why}; closest usable: {r}");
                        }
                        (Some(why), _) => {
                            let _ = write!(out, ": {why}");
                        }
                    }
                }
            }
            out.push('\n');
        }
        if self.replacement.is_empty() {
            let _ = write!(
                out,
                "{indent}nothing usable is left: leave cipher_suites out for the built-in order"
            );
        } else {
            let _ = write!(out, "{indent}write instead: {}", self.paste_line());
        }
        out
    }
}

/// Splits a list as other servers write it (`159,158,3112`,
/// `ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-SHA`, one per line), keeping
/// OpenSSL's two-byte form `0xC0,0x30` together.
pub fn split_list(text: &str) -> Vec<String> {
    let byte = |p: &str| {
        p.len() == 4
            && p[..2].eq_ignore_ascii_case("0x")
            && p[2..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    let pieces: Vec<&str> = text
        .split([',', ' ', '\t', '\n', '\r', ';', ':'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = pieces.get(i) {
        match pieces.get(i + 1) {
            Some(next) if byte(p) && byte(next) => {
                out.push(format!("{p},{next}"));
                i += 2;
            }
            _ => {
                out.push((*p).to_owned());
                i += 1;
            }
        }
    }
    out
}

/// Explains each entry of `items` (one suite each; see [`split_list`] for
/// text). `tls13` says whether TLS 1.3 is enabled, so the replacement list
/// gets TLS 1.3 suites when it would have none.
pub fn explain_list<S: AsRef<str>>(items: &[S], tls13: bool) -> ListExplanation {
    let entries: Vec<Entry> = items.iter().map(|p| explain_one(p.as_ref())).collect();
    let mut replacement: Vec<&'static SuiteInfo> = Vec::new();
    for r in entries.iter().filter_map(|e| e.replacement) {
        if !replacement.iter().any(|x| x.id == r.id) {
            replacement.push(r);
        }
    }
    if tls13 && !replacement.is_empty() && !replacement.iter().any(|s| s.tls13) {
        let v13: Vec<&'static SuiteInfo> = default_order()
            .into_iter()
            .filter_map(by_id)
            .filter(|s| s.tls13)
            .collect();
        replacement.splice(0..0, v13);
    }
    ListExplanation {
        entries,
        replacement,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mailsite_list_is_explained_whole() {
        let x = explain_list(&split_list("159,158,3112,3111,3092,3091,57,51"), true);
        let ids: Vec<u16> = x.entries.iter().map(|e| e.suite.unwrap().id).collect();
        assert_eq!(
            ids,
            [
                0x009f, 0x009e, 0xc028, 0xc027, 0xc014, 0xc013, 0x0039, 0x0033
            ]
        );
        assert_eq!(x.problems(), 8);
        let c028 = &x.entries[2];
        assert_eq!(c028.mailsite_id, Some(3112));
        assert_eq!(
            c028.suite.unwrap().iana,
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"
        );
        assert!(c028.problem.as_deref().unwrap().contains("CBC"));
        assert!(x.entries[0].problem.as_deref().unwrap().contains("DHE"));
        assert_eq!(
            x.paste_line(),
            "cipher_suites = [\"TLS_AES_256_GCM_SHA384\", \"TLS_CHACHA20_POLY1305_SHA256\", \
             \"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\", \
             \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]"
        );
        let text = x.render("  ");
        assert!(
            text.contains(
                "3112 = 0xc028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 (read as MailSite's 0xC28 = \
                 3112 for 0xC028): cannot be used: CBC"
            ),
            "{text}"
        );
        assert!(text.ends_with(&format!("  write instead: {}", x.paste_line())));
    }

    #[test]
    fn lists_split_like_other_servers_write_them() {
        assert_eq!(split_list("159, 158,3112"), ["159", "158", "3112"]);
        assert_eq!(split_list("A:B\nC"), ["A", "B", "C"]);
        assert_eq!(split_list("0xC0,0x30,0x1301"), ["0xC0,0x30", "0x1301"]);
    }

    #[test]
    fn closest_keeps_certificate_type_and_strength() {
        let c = |n: &str| closest(lookup(n).unwrap()).unwrap().id;
        assert_eq!(c("ECDHE-ECDSA-AES256-SHA"), 0xc02c);
        assert_eq!(c("ECDHE-ECDSA-AES128-SHA"), 0xc02b);
        assert_eq!(c("DHE-RSA-CHACHA20-POLY1305"), 0xcca8);
        assert_eq!(c("DES-CBC3-SHA"), 0xc02f);
        assert_eq!(c("TLS_AES_128_CCM_SHA256"), 0x1301);
        assert_eq!(c("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), 0xc030);
        assert!(closest(lookup("TLS_FALLBACK_SCSV").unwrap()).is_none());
    }

    #[test]
    fn usable_and_unknown_entries() {
        let x = explain_list(&["TLS_AES_128_GCM_SHA256", "bogus", "3120"], true);
        assert!(x.entries[0].is_usable());
        assert!(x.entries[1].suite.is_none());
        assert!(
            x.entries[1]
                .problem
                .as_deref()
                .unwrap()
                .contains("unknown cipher suite")
        );
        // 3120 = 0xC30: MailSite's 0xC030, usable but to be written properly.
        assert_eq!(x.entries[2].suite.unwrap().id, 0xc030);
        assert!(!x.entries[2].is_usable());
        assert_eq!(x.problems(), 2);
        assert_eq!(
            x.paste_line(),
            "cipher_suites = [\"TLS_AES_128_GCM_SHA256\", \"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\"]"
        );
    }
}

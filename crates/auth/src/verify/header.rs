//! The `Authentication-Results:` header field (RFC 8601): writing ours
//! ([`AuthResults::header_value`]) and removing forged ones that claim our
//! authserv-id ([`remove_claimed_results`]).
//!
//! # Security
//! Values from the message or DNS (addresses, reasons) are quoted when they
//! are not plain tokens, and control characters are dropped, so a hostile
//! `exp=` text or local part cannot end the field or inject another one.
//! Fields claiming our authserv-id are removed before ours is added
//! (RFC 8601 §5): downstream filters trust that id.
//!
//! # Standards
//! RFC 8601 §2.2 (syntax: authserv-id, resinfo, reason, propspec), §2.7
//! (methods and properties), §5 (removal), RFC 6008 (`header.b`), RFC 5322
//! §2.2.3 (folding, 78 columns), RFC 2045 §5.1 (token / quoted-string).

use super::results::{AuthResults, DkimVerdict};

/// Column where the value starts: after `Authentication-Results: `.
const PREFIX: usize = "Authentication-Results: ".len();
/// Fold lines at this width (RFC 5322 §2.1.1 SHOULD).
const WIDTH: usize = 78;

/// A value as an RFC 2045 token when it is one, else a quoted-string.
fn value(v: &str) -> String {
    let is_token = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
    if is_token { v.to_owned() } else { quoted(v) }
}

/// An address or domain (`[local-part "@"] domain`, RFC 8601 §2.2 pvalue):
/// as is when the local part is a dot-atom and the domain a plain name,
/// else quoted.
fn address(v: &str) -> String {
    let plain_domain = |d: &str| {
        !d.is_empty()
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    let dot_atom = |l: &str| {
        !l.is_empty()
            && !l.starts_with('.')
            && !l.ends_with('.')
            && !l.contains("..")
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
    };
    let ok = match v.rsplit_once('@') {
        Some((local, domain)) => dot_atom(local) && plain_domain(domain),
        None => plain_domain(v),
    };
    if ok { v.to_owned() } else { quoted(v) }
}

/// A quoted-string, control characters dropped, `"` and `\` escaped.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn reason(words: &mut Vec<String>, reason: &str) {
    if !reason.is_empty() {
        words.push(format!("reason={}", quoted(reason)));
    }
}

fn dkim_words(d: &DkimVerdict) -> Vec<String> {
    let mut w = vec![format!("dkim={}", d.result.as_str())];
    reason(&mut w, &d.reason);
    if !d.domain.is_empty() {
        w.push(format!("header.d={}", address(&d.domain)));
    }
    if !d.selector.is_empty() {
        w.push(format!("header.s={}", value(&d.selector)));
    }
    if !d.header_b.is_empty() {
        w.push(format!("header.b={}", value(&d.header_b)));
    }
    w
}

impl AuthResults {
    /// The field value after `Authentication-Results: `, folded so no line
    /// passes 78 columns (continuation lines start with a space), without
    /// the final CRLF. One result per method (DKIM: one per signature).
    pub fn header_value(&self, authserv_id: &str) -> String {
        let mut resinfos: Vec<Vec<String>> = Vec::new();

        // SPF: the MAIL FROM identity; for a null reverse-path that is the
        // HELO check, reported as smtp.helo (RFC 8601 §2.7.2).
        let (spf, prop) = if self.spf.mail_from == self.spf.helo {
            (
                &self.spf.helo,
                format!("smtp.helo={}", address(&self.spf.helo.domain)),
            )
        } else {
            let m = &self.spf.mail_from;
            let who = if m.identity.is_empty() {
                &m.domain
            } else {
                &m.identity
            };
            (m, format!("smtp.mailfrom={}", address(who)))
        };
        let mut w = vec![format!("spf={}", spf.result.as_str())];
        reason(&mut w, &spf.reason);
        if !spf.domain.is_empty() {
            w.push(prop);
        }
        resinfos.push(w);

        if self.dkim.is_empty() {
            resinfos.push(vec!["dkim=none".into()]);
        }
        resinfos.extend(self.dkim.iter().map(dkim_words));

        let mut w = vec![format!("arc={}", self.arc.result.as_str())];
        reason(&mut w, &self.arc.reason);
        resinfos.push(w);

        let mut w = vec![format!("dmarc={}", self.dmarc.result.as_str())];
        reason(&mut w, &self.dmarc.reason);
        if !self.dmarc.from_domain.is_empty() {
            w.push(format!("header.from={}", address(&self.dmarc.from_domain)));
        }
        resinfos.push(w);

        // Flatten: "id;" then each resinfo's words, ';' ending all but the last.
        let mut atoms: Vec<String> = vec![format!("{};", value(authserv_id.trim()))];
        let n = resinfos.len();
        for (i, words) in resinfos.into_iter().enumerate() {
            let m = words.len();
            for (j, word) in words.into_iter().enumerate() {
                let word = if j + 1 == m && i + 1 < n {
                    format!("{word};")
                } else {
                    word
                };
                // Spaces inside quoted reasons are folding points too.
                atoms.extend(word.split(' ').map(str::to_owned));
            }
        }
        fold(&atoms)
    }
}

/// Joins atoms with single spaces, breaking lines (CRLF before the space)
/// before an atom that would pass [`WIDTH`].
fn fold(atoms: &[String]) -> String {
    let mut out = String::new();
    let mut col = PREFIX;
    for (i, atom) in atoms.iter().enumerate() {
        if i == 0 {
            out.push_str(atom);
            col += atom.len();
            continue;
        }
        if col + 1 + atom.len() > WIDTH {
            out.push_str("\r\n ");
            col = 1;
        } else {
            out.push(' ');
            col += 1;
        }
        out.push_str(atom);
        col += atom.len();
    }
    out
}

/// The authserv-id of an `Authentication-Results` value: the first word,
/// comments and folding removed, a quoted string unquoted, without a version
/// number. Quoted-pairs (`\x`, RFC 5322 §3.2.1) are honoured inside
/// comments and quoted strings the way RFC 8601 parsers read them, so
/// `(x\) y) ours` and `"ours\.example"` are recognised as claiming `ours`
/// (a forgery that a stricter reading would keep).
fn authserv_id_of(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::new();
    let mut depth = 0u32;
    let mut quoted = false;
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if depth > 0 {
            match c {
                '\\' => {
                    chars.next();
                }
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        if quoted {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => quoted = false,
                c => out.push(c),
            }
            continue;
        }
        match c {
            '(' => depth += 1,
            '"' => {
                started = true;
                quoted = true;
            }
            ';' => break,
            c if c.is_whitespace() => {
                if started {
                    break;
                }
            }
            c => {
                started = true;
                out.push(c);
            }
        }
    }
    out
}

/// `message` without the `Authentication-Results:` fields whose
/// authserv-id is ours (case-insensitive), and how many were removed. Only
/// the header section is touched.
pub fn remove_claimed_results(message: &[u8], authserv_id: &str) -> (Vec<u8>, usize) {
    let (headers, body) = crate::canon::split_message(message);
    let mut out = Vec::with_capacity(message.len());
    let mut removed = 0;
    let mut i = 0;
    while i < headers.len() {
        // One field: a line plus its continuation lines.
        let mut end = headers[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(headers.len(), |p| i + p + 1);
        while end < headers.len() && matches!(headers[end], b' ' | b'\t') {
            end = headers[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(headers.len(), |p| end + p + 1);
        }
        let field = &headers[i..end];
        let drop = field.iter().position(|&b| b == b':').is_some_and(|colon| {
            field[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(b"Authentication-Results")
                && authserv_id_of(&field[colon + 1..]).eq_ignore_ascii_case(authserv_id.trim())
        });
        if drop {
            removed += 1;
        } else {
            out.extend_from_slice(field);
        }
        i = end;
    }
    out.extend_from_slice(body);
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_when_needed() {
        assert_eq!(value("AbCd+xyz"), "AbCd+xyz");
        assert_eq!(value("ab/c="), "\"ab/c=\"");
        assert_eq!(address("a.b@x.example"), "a.b@x.example");
        assert_eq!(address("x.example"), "x.example");
        assert_eq!(address("a b\"@x.example"), "\"a b\\\"@x.example\"");
        assert_eq!(quoted("a\r\nInjected: x"), "\"aInjected: x\"");
    }

    #[test]
    fn forged_results_with_our_id_are_removed() {
        let msg = b"Authentication-Results: MX.example.net;\r\n dkim=pass\r\n\
Authentication-Results: other.example; spf=pass\r\n\
Authentication-Results: (comment) mx.example.net 1; dmarc=pass\r\n\
Subject: x\r\n\r\nAuthentication-Results: mx.example.net; body stays\r\n";
        let (out, n) = remove_claimed_results(msg, "mx.example.net");
        assert_eq!(n, 2);
        // Quoted-pairs in comments and quoted strings (RFC 5322 §3.2.1).
        for forged in [
            &b"Authentication-Results: (x\\) y) mx.example.net; dmarc=pass\r\n\r\n"[..],
            b"Authentication-Results: \"mx.example\\.net\"; dkim=pass\r\n\r\n",
            b"Authentication-Results:\r\n (c (nested)) \"MX.EXAMPLE.NET\" 1; spf=pass\r\n\r\n",
        ] {
            let (_, n) = remove_claimed_results(forged, "mx.example.net");
            assert_eq!(n, 1, "{}", String::from_utf8_lossy(forged));
        }
        let (_, n) = remove_claimed_results(
            b"Authentication-Results: \"mx.example.net.evil\"; x=y\r\n\r\n",
            "mx.example.net",
        );
        assert_eq!(n, 0);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Authentication-Results: other.example; spf=pass\r\nSubject: x\r\n\r\n\
Authentication-Results: mx.example.net; body stays\r\n"
        );
    }
}

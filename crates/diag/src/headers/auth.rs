//! `Authentication-Results:` (SPF, DKIM, DMARC, ARC, …) and `Received-SPF:`
//! into flat [`AuthResult`] rows.
//!
//! # Security
//! These headers are only as trustworthy as the server that added them: a
//! sender can forge an `Authentication-Results:` claiming `dmarc=pass`. The
//! analyzer reports them all with their authserv-id; only results from your
//! own border MTA's authserv-id count (RFC 8601 §5). Values are untrusted text
//! and are [`clean`]ed.
//!
//! # Standards
//! RFC 8601 §2.2 (header syntax: authserv-id, `;`-separated resinfo,
//! `method=result`, `reason=`, `ptype.property=value`, CFWS comments),
//! RFC 7208 §9.1 (`Received-SPF:`). Office 365 omits the authserv-id
//! (`Authentication-Results: spf=pass …`); that is accepted, with an empty id.

use super::AuthResult;
use super::text::clean;

/// Parses one `Authentication-Results:` value (unfolded).
pub(crate) fn parse_authentication_results(value: &str) -> Vec<AuthResult> {
    let stripped = strip_comments(value);
    let mut segments = split_outside_quotes(&stripped, ';').into_iter();
    let Some(first) = segments.next() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let authserv_id = if has_equals_outside_quotes(&first) {
        // No authserv-id: the first segment is already a result (Office 365).
        push_resinfo(&mut out, "", &first);
        String::new()
    } else {
        // `authserv-id [authres-version]`: the version is not needed.
        let id = words(&first).into_iter().next().unwrap_or_default();
        clean(&id)
    };
    for r in &mut out {
        r.authserv_id.clone_from(&authserv_id);
    }
    for seg in segments {
        push_resinfo(&mut out, &authserv_id, &seg);
    }
    out
}

/// Parses one `Received-SPF:` value (RFC 7208 §9.1):
/// `result (comment) key=value; key=value; …`.
pub(crate) fn parse_received_spf(value: &str) -> Option<AuthResult> {
    let stripped = strip_comments(value);
    let toks = tokens(&stripped.replace(';', " "));
    let mut it = toks.iter().peekable();
    let result = match it.next()? {
        Tok::Word(w) => w.to_ascii_lowercase(),
        Tok::Eq => return None,
    };
    let mut authserv_id = String::new();
    let mut properties = Vec::new();
    for (k, v) in pairs(it) {
        if k == "receiver" {
            authserv_id = clean(&v);
        } else {
            properties.push((clean(&k), clean(&v)));
        }
    }
    Some(AuthResult {
        header: "Received-SPF".to_owned(),
        authserv_id,
        method: "spf".to_owned(),
        result: clean(&result),
        properties,
    })
}

fn push_resinfo(out: &mut Vec<AuthResult>, authserv_id: &str, seg: &str) {
    let toks = tokens(seg);
    let mut kv = pairs(toks.iter().peekable()).into_iter();
    let Some((method, result)) = kv.next() else {
        return; // `none`, or garbage: no method=result.
    };
    // `method/version` (RFC 8601 §2.2): the version is dropped.
    let method = method.split('/').next().unwrap_or_default().to_owned();
    out.push(AuthResult {
        header: "Authentication-Results".to_owned(),
        authserv_id: authserv_id.to_owned(),
        method: clean(&method.to_ascii_lowercase()),
        result: clean(&result.to_ascii_lowercase()),
        properties: kv.map(|(k, v)| (clean(&k), clean(&v))).collect(),
    });
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Eq,
}

/// Words separated by white space; `=` is its own token; a quoted string is
/// one word without its quotes.
fn tokens(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '"' => in_quote = false,
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '=' => {
                if !cur.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut cur)));
                }
                out.push(Tok::Eq);
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(Tok::Word(std::mem::take(&mut cur)));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(Tok::Word(cur));
    }
    out
}

/// `key = value` pairs, keys lower-cased (RFC 8601: case-insensitive);
/// stray tokens are skipped.
fn pairs<'a>(mut it: std::iter::Peekable<impl Iterator<Item = &'a Tok>>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(t) = it.next() {
        let Tok::Word(k) = t else { continue };
        if it.peek() != Some(&&Tok::Eq) {
            continue;
        }
        it.next();
        match it.peek() {
            Some(Tok::Word(v)) => {
                out.push((k.to_ascii_lowercase(), v.clone()));
                it.next();
            }
            _ => out.push((k.to_ascii_lowercase(), String::new())),
        }
    }
    out
}

fn words(s: &str) -> Vec<String> {
    tokens(s)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w),
            Tok::Eq => None,
        })
        .collect()
}

/// Removes RFC 5322 comments (nested, with quoted-pairs), keeping quoted
/// strings intact; each comment becomes one space.
pub(crate) fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_quote || depth > 0 => {
                let n = chars.next();
                if depth == 0 {
                    out.push(c);
                    if let Some(n) = n {
                        out.push(n);
                    }
                }
            }
            '"' if depth == 0 => {
                in_quote = !in_quote;
                out.push(c);
            }
            '(' if !in_quote => {
                if depth == 0 {
                    out.push(' ');
                }
                depth += 1;
            }
            ')' if !in_quote && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    for c in s.chars() {
        if c == '"' {
            in_quote = !in_quote;
        }
        if c == sep && !in_quote {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn has_equals_outside_quotes(s: &str) -> bool {
    tokens(s).contains(&Tok::Eq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(r: &AuthResult) -> String {
        let props: Vec<String> = r
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{}|{}={}|{}",
            r.authserv_id,
            r.method,
            r.result,
            props.join(" ")
        )
    }

    #[test]
    fn gmail_style() {
        let v = "mx.example.com; dkim=pass header.i=@example.org header.s=s1 header.b=\"AbC+/d\"; spf=pass (example.com: domain of alice@example.org designates 198.51.100.7 as permitted sender) smtp.mailfrom=alice@example.org; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org";
        let rows: Vec<String> = parse_authentication_results(v).iter().map(row).collect();
        assert_eq!(
            rows,
            [
                "mx.example.com|dkim=pass|header.i=@example.org header.s=s1 header.b=AbC+/d",
                "mx.example.com|spf=pass|smtp.mailfrom=alice@example.org",
                "mx.example.com|dmarc=pass|header.from=example.org",
            ]
        );
    }

    #[test]
    fn office365_without_authserv_id() {
        let v = "spf=pass (sender IP is 198.51.100.7) smtp.mailfrom=example.org; dkim=pass (signature was verified) header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100";
        let rows: Vec<String> = parse_authentication_results(v).iter().map(row).collect();
        assert_eq!(
            rows,
            [
                "|spf=pass|smtp.mailfrom=example.org",
                "|dkim=pass|header.d=example.org",
                "|dmarc=pass|action=none header.from=example.org",
                "|compauth=pass|reason=100",
            ]
        );
    }

    #[test]
    fn version_none_spaces_and_case() {
        assert!(parse_authentication_results("mx.example.net 1; none").is_empty());
        let rows: Vec<String> =
            parse_authentication_results("mx.example.net; SPF = Fail smtp.mailfrom = a@example.org; dkim/1=neutral reason=\"bad; sig\"")
                .iter()
                .map(row)
                .collect();
        assert_eq!(
            rows,
            [
                "mx.example.net|spf=fail|smtp.mailfrom=a@example.org",
                "mx.example.net|dkim=neutral|reason=bad; sig",
            ]
        );
    }

    #[test]
    fn comments_with_parens_and_quotes() {
        assert_eq!(strip_comments("a (b (c) \\) d) e \"(f)\""), "a   e \"(f)\"");
    }

    #[test]
    fn received_spf() {
        let r = parse_received_spf("Pass (mx.example.net: domain of alice@example.org designates 198.51.100.7 as permitted sender) client-ip=198.51.100.7; envelope-from=\"alice@example.org\"; helo=mail.example.org; receiver=mx.example.net; identity=mailfrom;").unwrap();
        assert_eq!(
            row(&r),
            "mx.example.net|spf=pass|client-ip=198.51.100.7 envelope-from=alice@example.org helo=mail.example.org identity=mailfrom"
        );
        assert_eq!(r.header, "Received-SPF");
        assert!(parse_received_spf("").is_none());
    }
}

//! Report destinations: a DMARC `rua=` URI such as
//! `mailto:dmarc@example.com!10m` → the address and its size limit.
//!
//! # Security
//! URIs come from DNS (the policy domain's owner). Only `mailto:` is used;
//! the address must be one plain `local@domain` (no header fields, no
//! second address, no CR/LF), so a record cannot add recipients or headers.
//!
//! # Standards
//! RFC 7489 §6.2 (`dmarc-uri` with the `!size` suffix: k, m, g, t are
//! powers of two), §6.3 (`rua`); RFC 6068 (`mailto:`, `%` escapes).

/// One usable destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URI as published.
    pub uri: String,
    /// The mailbox (`dmarc@example.com`).
    pub address: String,
    /// The largest report the destination accepts, in bytes.
    pub max_size: Option<u64>,
}

impl Destination {
    /// The domain of the mailbox, lower-case.
    pub fn domain(&self) -> String {
        super::record::domain_of(&self.address)
    }
}

/// Why a URI is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuaError {
    /// Not `mailto:` (e.g. `https:`, which RFC 7489 leaves to bilateral
    /// arrangement).
    #[error("not a mailto: URI (only mailto: is supported)")]
    NotMailto,
    /// A `mailto:` that is not one plain address.
    #[error("not one plain address: {0}")]
    BadAddress(String),
    /// A `!size` that is not digits with an optional k, m, g or t.
    #[error("bad size limit {0:?} (RFC 7489 §6.2: digits, then k, m, g or t)")]
    BadSize(String),
}

/// Parses one `rua=` URI.
pub fn parse(uri: &str) -> Result<Destination, RuaError> {
    let raw = uri.trim();
    let Some(rest) = raw
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
        .map(|_| &raw[7..])
    else {
        return Err(RuaError::NotMailto);
    };
    // `!` cannot appear in the address part of a DMARC URI (RFC 7489 §6.2
    // requires it to be escaped), so the last one starts the size.
    let (target, size) = match rest.rsplit_once('!') {
        Some((t, s)) => (t, Some(parse_size(s)?)),
        None => (rest, None),
    };
    if target.contains('?') {
        return Err(RuaError::BadAddress(
            "mailto: header fields are not allowed".into(),
        ));
    }
    let address = unescape(target).ok_or_else(|| RuaError::BadAddress(target.to_owned()))?;
    let ok = address.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && !d.is_empty()
            && !d.contains('@')
            && d.contains('.')
            && address
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b",<>;\\\"()[]".contains(&b))
    });
    if !ok {
        return Err(RuaError::BadAddress(address));
    }
    Ok(Destination {
        uri: raw.to_owned(),
        address,
        max_size: size,
    })
}

fn parse_size(s: &str) -> Result<u64, RuaError> {
    let bad = || RuaError::BadSize(s.to_owned());
    let (digits, shift) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b'k') => (&s[..s.len() - 1], 10),
        Some(b'm') => (&s[..s.len() - 1], 20),
        Some(b'g') => (&s[..s.len() - 1], 30),
        Some(b't') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

/// RFC 6068 `%XX` escapes; `None` for a broken escape or non-UTF-8.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mailto_with_and_without_size() {
        let d = parse("mailto:dmarc@example.com").unwrap();
        assert_eq!(d.address, "dmarc@example.com");
        assert_eq!(d.max_size, None);
        assert_eq!(d.domain(), "example.com");
        let d = parse(" MAILTO:rua%2Bx@Reports.Example.NET!10m ").unwrap();
        assert_eq!(d.address, "rua+x@Reports.Example.NET");
        assert_eq!(d.domain(), "reports.example.net");
        assert_eq!(d.max_size, Some(10 * 1024 * 1024));
        assert_eq!(parse("mailto:a@b.example!500").unwrap().max_size, Some(500));
        assert_eq!(parse("mailto:a@b.example!2k").unwrap().max_size, Some(2048));
    }

    #[test]
    fn refused() {
        assert_eq!(parse("https://example.com/r"), Err(RuaError::NotMailto));
        assert!(matches!(
            parse("mailto:a@b.example!x"),
            Err(RuaError::BadSize(_))
        ));
        assert!(matches!(
            parse("mailto:a@b.example!"),
            Err(RuaError::BadSize(_))
        ));
        assert!(matches!(
            parse("mailto:a@b.example!99999999999999t"),
            Err(RuaError::BadSize(_))
        ));
        for bad in [
            "mailto:a@b.example?subject=x",
            "mailto:nobody",
            "mailto:a@b.example,c@d.example",
            "mailto:a@b.example%0D%0ABcc:x@y.example",
            "mailto:a@localhost",
            "mailto:%zz@b.example",
        ] {
            assert!(matches!(parse(bad), Err(RuaError::BadAddress(_))), "{bad}");
        }
    }
}

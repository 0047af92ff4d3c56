//! Which names the admin HTTP listener answers to: the `Host` check, and the
//! public URL ([`PublicUrl`]) a TLS-ending reverse proxy serves it under.
//!
//! Follow a request: [`check`] reads the `Host` header (exactly one, or the
//! request is answered 400), takes its host part, and lets the request on
//! when it is an IP literal, `localhost`, or one of the configured names
//! ([`HostNames`]: the server's hostname, `[admin] http_names`, the public
//! URL's host). Any other name gets `421 Misdirected Request` and the name to
//! add. `/healthz`, `/readyz` and requests carrying a valid API token pass
//! without the check (load balancers and scrapers use names of their own; a
//! rebinding page does not have a token — a wrong one gets no exemption).
//!
//! # Security
//! DNS rebinding: a page on `attacker.example` whose name is re-pointed at
//! the listener's address (127.0.0.1 included) is same-origin with the
//! console in the victim's browser and could read the login page, spend the
//! login limits and read public routes. Its requests carry
//! `Host: attacker.example`, which is not ours: refused before routing.
//! Cookies are host-bound, so sessions were never exposed; this closes the
//! unauthenticated routes. The public URL makes the Origin check (CSRF) and
//! the cookies' `Secure` / `__Host-` right when a proxy ends TLS.
//!
//! # Standards
//! RFC 9112 §3.2 (Host: 400 when missing or repeated), RFC 9110 §7.2 (Host),
//! §15.5.20 (421), RFC 6454 (origin: scheme, host, port).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::HttpState;
use super::reply::error;

/// Names in `[admin] http_names` at most.
pub const MAX_NAMES: usize = 64;

/// Why a public URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicUrlError {
    /// Not `http://` or `https://`.
    #[error("the scheme must be https:// (or http://)")]
    Scheme,
    /// User name, password, path, query or fragment present.
    #[error("only scheme, host and port are allowed (no user, path, query or fragment)")]
    Extra,
    /// The host is missing or not a valid name or address.
    #[error("{0:?} is not a host name or address")]
    Host(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} is not a port (1 to 65535)")]
    Port(String),
}

/// The URL browsers use to reach the console when a reverse proxy stands in
/// front of the listener (`[admin] http_public_url`): scheme, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    host: String,
    port: Option<u16>,
}

impl PublicUrl {
    /// Parses `https://host[:port][/]`; the host is kept in lowercase.
    pub fn parse(text: &str) -> Result<Self, PublicUrlError> {
        let text = text.trim();
        let (https, rest) = if let Some(r) = strip_prefix_ci(text, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(text, "http://") {
            (false, r)
        } else {
            return Err(PublicUrlError::Scheme);
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(PublicUrlError::Extra);
        }
        let (host, port) =
            split_host_port(authority).ok_or_else(|| PublicUrlError::Host(authority.to_owned()))?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| PublicUrlError::Port(p.to_owned()))?,
            ),
        };
        if !valid_host(host) {
            return Err(PublicUrlError::Host(host.to_owned()));
        }
        // The origin as browsers serialise it: IPv6 in its canonical text
        // (RFC 5952), names in lowercase without a trailing dot.
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase(),
        };
        Ok(Self {
            https,
            host,
            port: port.filter(|p| *p != if https { 443 } else { 80 }),
        })
    }

    /// Served over HTTPS (cookies get `Secure` and the `__Host-` prefix).
    pub fn https(&self) -> bool {
        self.https
    }

    /// The host, lowercase (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The origin browsers send: `https://console.example.com[:port]`
    /// (the default port left out, RFC 6454 §6.2).
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        }
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `host[:port]` or `[v6][:port]` → (host without brackets, port text).
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((v6, None)),
            _ => Some((v6, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

/// A DNS name (letters, digits, hyphens, dots; labels 1–63, whole ≤ 253) or an
/// IP address.
fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The names the listener answers to besides IP literals and `localhost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNames(Vec<String>);

impl HostNames {
    /// From configured names (lowercased, trailing dot removed, at most
    /// [`MAX_NAMES`] kept; invalid ones dropped — the configuration refuses
    /// them first).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v: Vec<String> = Vec::new();
        for n in names {
            let n = n.as_ref().trim();
            let n = n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase();
            if valid_host(&n) && !v.contains(&n) && v.len() < MAX_NAMES {
                v.push(n);
            }
        }
        Self(v)
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether a `Host` value's host part is ours.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some((host, _)) = split_host_port(host_header.trim()) else {
            return false;
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            // A browser that connected by address: same origin as the
            // address itself, nothing a rebinding name can claim.
            return true;
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        host.eq_ignore_ascii_case("localhost")
            || self.0.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// Whether a `Host` value is a valid `[admin] http_names` entry.
pub fn valid_name(name: &str) -> bool {
    let n = name.trim();
    valid_host(n.strip_suffix('.').unwrap_or(n)) && n.parse::<std::net::IpAddr>().is_err()
}

/// The `Host` check (see the module documentation).
pub(crate) async fn check(State(s): State<HttpState>, mut req: Request, next: Next) -> Response {
    // Only a token that verifies: a rebinding page can send any
    // `Authorization` header on its (now same-origin) requests.
    let exempt = matches!(req.uri().path(), "/healthz" | "/readyz")
        || matches!(
            super::auth::bearer_token(&s.auth, &mut req),
            super::auth::Bearer::Valid(..)
        );
    if exempt {
        return next.run(req).await;
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        // RFC 9112 §3.2: a request without Host, or with more than one.
        return error(
            StatusCode::BAD_REQUEST,
            "a request needs exactly one Host header (RFC 9112 §3.2)",
        );
    };
    let Ok(host) = host.to_str() else {
        return error(StatusCode::BAD_REQUEST, "the Host header is not ASCII");
    };
    if s.settings.names.allows(host) {
        return next.run(req).await;
    }
    tracing::info!(
        host = %host.chars().take(255).filter(|c| !c.is_control()).collect::<String>(),
        "admin HTTP: request for a name not configured (421)"
    );
    error(
        StatusCode::MISDIRECTED_REQUEST,
        "this console does not answer to that name (a DNS rebinding guard); an admin adds the name \
         to [admin] http_names, or browses by the server's hostname or address",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn public_urls() {
        let u = PublicUrl::parse("https://Console.Example.com/").unwrap();
        assert!(u.https());
        assert_eq!(u.host(), "console.example.com");
        assert_eq!(u.origin(), "https://console.example.com");
        let u = PublicUrl::parse("https://console.example.com:443").unwrap();
        assert_eq!(u.origin(), "https://console.example.com");
        let u = PublicUrl::parse("https://[2001:DB8:0:0::1]").unwrap();
        assert_eq!(u.origin(), "https://[2001:db8::1]");
        let u = PublicUrl::parse("https://Console.Example.com.:8443").unwrap();
        assert_eq!(u.origin(), "https://console.example.com:8443");
        let u = PublicUrl::parse("HTTP://[2001:db8::1]:8443").unwrap();
        assert!(!u.https());
        assert_eq!(u.origin(), "http://[2001:db8::1]:8443");
        assert_eq!(
            PublicUrl::parse("ftp://x").unwrap_err(),
            PublicUrlError::Scheme
        );
        for bad in [
            "https://a.example/console",
            "https://u@a.example",
            "https://a.example?x",
            "https://a.example#f",
        ] {
            assert_eq!(PublicUrl::parse(bad).unwrap_err(), PublicUrlError::Extra);
        }
        assert!(matches!(
            PublicUrl::parse("https://a.example:0"),
            Err(PublicUrlError::Port(_))
        ));
        assert!(matches!(
            PublicUrl::parse("https://a.example:99999"),
            Err(PublicUrlError::Port(_))
        ));
        assert!(matches!(
            PublicUrl::parse("https://"),
            Err(PublicUrlError::Host(_))
        ));
        assert!(matches!(
            PublicUrl::parse("https://bad_name.example"),
            Err(PublicUrlError::Host(_))
        ));
    }

    #[test]
    fn hosts() {
        let n = HostNames::new(["Mail.Example.com.", "bad name", "console.example.com"]);
        assert_eq!(n.names(), ["mail.example.com", "console.example.com"]);
        for ok in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "[::1]:8025",
            "192.0.2.7:8443",
            "localhost:8025",
            "LOCALHOST",
            "mail.example.com:8025",
            "MAIL.example.com.",
            "console.example.com",
        ] {
            assert!(n.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8025",
            "attacker.example",
            "mail.example.com.attacker.example",
            "localhost.attacker.example",
            "",
            "[::1",
            "a:b:c",
        ] {
            assert!(!n.allows(bad), "{bad}");
        }
        let many = HostNames::new((0..100).map(|i| format!("n{i}.example")));
        assert_eq!(many.names().len(), MAX_NAMES);
        assert!(valid_name("console.example.com"));
        assert!(!valid_name("192.0.2.1"));
        assert!(!valid_name("-x.example"));
    }
}

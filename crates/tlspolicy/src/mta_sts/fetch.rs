//! Fetching an MTA-STS policy over HTTPS (RFC 8461 §3.3):
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`, with a
//! PKIX-verified certificate for `mta-sts.<domain>`, no redirects, a
//! `text/plain` body of bounded size, and bounded time.
//!
//! The URL is built from a template (`{domain}` is replaced) so tests can
//! point it at a local HTTPS server on another port; host names are resolved
//! through `postern_dns` when a resolver is given (so static overrides and
//! the test DNS apply), else through the system.
//!
//! # Security
//! The response is untrusted: status, headers and body are checked before
//! the body is parsed, the body is read in chunks and abandoned past
//! [`FetchSettings::max_size`], and the whole exchange is abandoned past
//! [`FetchSettings::timeout`] (a slow-drip server cannot hold a delivery
//! worker). Redirects are never followed (RFC 8461 §3.3). Certificates are
//! verified against the roots given (webpki); there is no way to turn that
//! off. No proxy from the environment is used.
//!
//! # Standards
//! RFC 8461 §3.3 (HTTPS fetch: PKIX, no redirects, text/plain), RFC 9110
//! §8.3 (media types).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;

use super::policy::{Policy, PolicyError};

/// The standard location (RFC 8461 §3.3).
pub const DEFAULT_URL_TEMPLATE: &str = "https://mta-sts.{domain}/.well-known/mta-sts.txt";
/// Timeouts are capped here whatever the settings say.
pub const MAX_TIMEOUT: Duration = Duration::from_mins(1);
/// Default body limit: 64 KiB.
pub const DEFAULT_MAX_SIZE: usize = 64 * 1024;

/// Fetch settings. Defaults: connect 10 s, whole exchange 30 s (both capped
/// at 60 s), 64 KiB, the standard URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// TCP + TLS connect.
    pub connect_timeout: Duration,
    /// The whole exchange, connect and body included.
    pub timeout: Duration,
    /// Largest body accepted, in octets.
    pub max_size: usize,
    /// The URL, with `{domain}` standing for the policy domain.
    pub url_template: String,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_size: DEFAULT_MAX_SIZE,
            url_template: DEFAULT_URL_TEMPLATE.to_owned(),
        }
    }
}

/// Why a policy could not be fetched. Each says which URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The domain is not a name we can put in a URL.
    #[error("{domain:?} is not a valid domain name")]
    InvalidDomain {
        /// The domain.
        domain: String,
    },
    /// The HTTP client could not be built (TLS settings).
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
    /// Connecting, TLS (including certificate verification) or HTTP failed.
    #[error("{url}: {detail}")]
    Request {
        /// The URL.
        url: String,
        /// The error and its causes.
        detail: String,
    },
    /// No complete answer in time.
    #[error("{url}: no complete answer within {} s", limit.as_secs())]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        limit: Duration,
    },
    /// A redirect (RFC 8461 §3.3: not followed).
    #[error(
        "{url}: answered {status} redirect to {location:?}; redirects are not followed (RFC 8461 §3.3)"
    )]
    Redirect {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The Location header.
        location: String,
    },
    /// Any status but 200.
    #[error("{url}: answered HTTP {status}, not 200")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The media type is not text/plain.
    #[error("{url}: Content-Type is {found:?}, not text/plain (RFC 8461 §3.3)")]
    ContentType {
        /// The URL.
        url: String,
        /// The header value (empty when missing).
        found: String,
    },
    /// The body is larger than allowed.
    #[error("{url}: the policy is larger than {limit} octets")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The body is not a valid policy.
    #[error("{url}: invalid policy: {source}")]
    Policy {
        /// The URL.
        url: String,
        /// The parse error.
        source: PolicyError,
    },
}

/// A fetched and parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it came from.
    pub url: String,
    /// The parsed policy.
    pub policy: Policy,
    /// The body as received (UTF-8).
    pub body: String,
}

/// An HTTPS client for policies. Cheap to clone; keep one.
#[derive(Debug, Clone)]
pub struct PolicyFetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

impl PolicyFetcher {
    /// A fetcher verifying servers against `roots`, resolving names with
    /// `resolver` (or the system's resolver when `None`).
    pub fn new(
        settings: FetchSettings,
        roots: Arc<RootCertStore>,
        resolver: Option<postern_dns::Resolver>,
    ) -> Result<Self, FetchError> {
        let settings = FetchSettings {
            connect_timeout: settings.connect_timeout.min(MAX_TIMEOUT),
            timeout: settings.timeout.min(MAX_TIMEOUT),
            ..settings
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .no_proxy()
            .user_agent(concat!("postern-mta-sts/", env!("CARGO_PKG_VERSION")));
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(DnsAdapter(resolver));
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Client(error_chain(&e)))?;
        Ok(Self { client, settings })
    }

    /// The settings in force (timeouts capped).
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// The policy URL for `domain`.
    pub fn url_for(&self, domain: &str) -> Result<String, FetchError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !is_domain(&domain) {
            return Err(FetchError::InvalidDomain { domain });
        }
        Ok(self.settings.url_template.replace("{domain}", &domain))
    }

    /// Fetches and parses the policy of `domain`.
    pub async fn fetch(&self, domain: &str) -> Result<Fetched, FetchError> {
        let url = self.url_for(domain)?;
        let limit = self.settings.timeout;
        match tokio::time::timeout(limit, self.fetch_url(&url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { url, limit }),
        }
    }

    async fn fetch_url(&self, url: &str) -> Result<Fetched, FetchError> {
        let request_error = |e: &reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: url.to_owned(),
                    limit: self.settings.timeout,
                }
            } else {
                FetchError::Request {
                    url: url.to_owned(),
                    detail: error_chain(e),
                }
            }
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| request_error(&e))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(FetchError::Redirect {
                url: url.to_owned(),
                status,
                location,
            });
        }
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !is_text_plain(&content_type) {
            return Err(FetchError::ContentType {
                url: url.to_owned(),
                found: content_type,
            });
        }
        let max = self.settings.max_size;
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: max,
        };
        if response
            .content_length()
            .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| request_error(&e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let policy = Policy::parse(&body).map_err(|source| FetchError::Policy {
            url: url.to_owned(),
            source,
        })?;
        Ok(Fetched {
            url: url.to_owned(),
            policy,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// `text/plain`, any parameters, any case (RFC 9110 §8.3.1).
fn is_text_plain(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/plain"))
}

/// LDH labels separated by dots (A-labels for IDNs).
pub(crate) fn is_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The error and its sources, `: `-joined (reqwest's top-level message
/// alone says little: "error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Resolves the policy host through `postern_dns`.
struct DnsAdapter(postern_dns::Resolver);

impl reqwest::dns::Resolve for DnsAdapter {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = resolver
                .addresses(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: Vec<SocketAddr> = found
                .addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        for ok in [
            "text/plain",
            "text/plain; charset=utf-8",
            "Text/Plain ;charset=US-ASCII",
        ] {
            assert!(is_text_plain(ok), "{ok}");
        }
        for bad in ["", "text/html", "application/octet-stream", "text/plainx"] {
            assert!(!is_text_plain(bad), "{bad}");
        }
    }

    #[test]
    fn urls_and_domains() {
        let f = PolicyFetcher::new(
            FetchSettings {
                timeout: Duration::from_mins(10),
                ..FetchSettings::default()
            },
            Arc::new(RootCertStore::empty()),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.settings().timeout, MAX_TIMEOUT);
        assert_eq!(
            f.url_for("Example.COM."),
            Ok("https://mta-sts.example.com/.well-known/mta-sts.txt".to_owned())
        );
        for bad in [
            "",
            "a..b",
            "exa mple.com",
            "-x.com",
            "x.com/evil",
            "x.com:443",
        ] {
            assert!(f.url_for(bad).is_err(), "{bad}");
        }
    }
}

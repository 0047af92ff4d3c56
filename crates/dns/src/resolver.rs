//! `Resolver`: the lookups Postern needs (MX, A/AAAA, TXT, TLSA, PTR) on top
//! of hickory-resolver, with static overrides first and the DNSSEC status of
//! every answer.
//!
//! One hickory resolver (with its cache) per `Resolver`; clones share it.
//! Names are always queried fully qualified: resolv.conf `search` lists never
//! apply to mail domains, and `/etc/hosts` is not read (use overrides).
//!
//! # Security
//! Lookup inputs (recipient domains, MX exchanges, client IPs) are untrusted:
//! they are parsed into DNS names (IDNA for U-labels) and rejected if
//! invalid, never interpolated elsewhere. Answers are untrusted too; only
//! `authenticated` says whether DNSSEC vouches for them:
//! - `TrustAdBit`: queries set AD (RFC 6840 §5.7) and the answer's AD bit is
//!   believed only from configured name servers, or from the system's when
//!   they are all loopback (a forged AD bit from the network would otherwise
//!   turn DANE on or off for an attacker);
//! - `Validate`: hickory validates in-process; all answer records must be
//!   `Proof::Secure`; bogus answers are [`DnsError::Bogus`].
//!
//! # Standards
//! RFC 1035, RFC 3596 (AAAA), RFC 5321 §5.1 (MX, implicit MX), RFC 7505
//! (null MX), RFC 6698 / RFC 7672 (TLSA for SMTP), RFC 4035 §3.2.3 and
//! RFC 6840 §5.7–5.8 (AD bit), RFC 5891 (IDNA), RFC 1035 §3.5 / RFC 3596 §2.5
//! (reverse names).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use hickory_proto::dnssec::{DnssecSummary, TrustAnchors};
use hickory_proto::op::DnsRequest;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsExchange, DnsHandle};
use hickory_resolver::{ConnectionProvider, PoolContext};

use crate::error::{DnsError, Negative, from_net};
use crate::overrides::Overrides;
use crate::records::{
    AddrLookup, MxLookup, Tlsa, TlsaLookup, TxtLookup, classify_mx, implicit_mx, normalise,
};
use crate::settings::{DnsSettings, DnssecMode};

/// A DNS resolver. Cheap to clone (shared cache and connections); `Send + Sync`.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    hickory: hickory_resolver::Resolver<Connector>,
    overrides: Overrides,
    mode: DnssecMode,
    /// Under `TrustAdBit`: whether the name servers' AD bit is believed.
    trust_ad: bool,
    nameservers: Vec<SocketAddr>,
}

/// A positive answer, reduced to what we use.
struct Answer {
    records: Vec<Record>,
    authenticated: bool,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("nameservers", &self.inner.nameservers)
            .field("dnssec", &self.inner.mode)
            .field("trust_ad", &self.inner.trust_ad)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Build a resolver. Reads `/etc/resolv.conf` when `settings.nameservers`
    /// is empty. Needs no runtime; lookups need a tokio runtime.
    pub fn new(settings: &DnsSettings) -> Result<Resolver, DnsError> {
        Self::build(settings, None)
    }

    /// Like [`Resolver::new`], but `Validate` mode trusts the DNSKEYs in
    /// `path` (zone-file lines such as `. 172800 IN DNSKEY 257 3 8 AwEAA…`, the
    /// format of Debian's `/usr/share/dns/root.key`) instead of the root keys
    /// built into hickory. For a private DNS root, and for tests with signed
    /// fake zones. Other modes ignore it.
    pub fn with_trust_anchor_file(
        settings: &DnsSettings,
        path: &std::path::Path,
    ) -> Result<Resolver, DnsError> {
        let anchors = TrustAnchors::from_file(path).map_err(|e| {
            DnsError::Config(format!(
                "cannot read DNSSEC trust anchors from {}: {e}",
                path.display()
            ))
        })?;
        if anchors.is_empty() {
            return Err(DnsError::Config(format!(
                "{}: no DNSKEY records for the root zone",
                path.display()
            )));
        }
        Self::build(settings, Some(Arc::new(anchors)))
    }

    fn build(
        settings: &DnsSettings,
        trust_anchor: Option<Arc<TrustAnchors>>,
    ) -> Result<Resolver, DnsError> {
        let (servers, explicit) = if settings.nameservers.is_empty() {
            let (config, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsError::Config(format!("cannot read /etc/resolv.conf: {e}")))?;
            let servers: Vec<SocketAddr> = config
                .name_servers
                .iter()
                .map(|ns| {
                    let port = ns.connections.first().map_or(53, |c| c.port);
                    SocketAddr::new(ns.ip, port)
                })
                .collect();
            (servers, false)
        } else {
            (settings.nameservers.clone(), true)
        };
        if servers.is_empty() {
            return Err(DnsError::Config(
                "no name servers: /etc/resolv.conf lists none and none are configured".into(),
            ));
        }
        let trust_ad = settings.dnssec == DnssecMode::TrustAdBit
            && (explicit || servers.iter().all(|s| s.ip().is_loopback()));
        if settings.dnssec == DnssecMode::TrustAdBit && !trust_ad {
            tracing::warn!(
                nameservers = ?servers,
                "dnssec = trust-ad-bit but the system name servers are not on loopback: \
                 their AD bit is not trusted, no answer will count as DNSSEC-authenticated; \
                 run a validating resolver on 127.0.0.1 or configure the name servers explicitly"
            );
        }

        let mut config = ResolverConfig::default();
        for addr in &servers {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            config.name_servers.push(ns);
        }
        let mut opts = ResolverOpts::default();
        opts.timeout = settings.timeout;
        // hickory counts retries after the first try.
        opts.attempts = settings.attempts.saturating_sub(1);
        opts.validate = settings.dnssec == DnssecMode::Validate;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.preserve_intermediates = true;
        let connector = Connector {
            runtime: TokioRuntimeProvider::default(),
            request_ad: trust_ad,
        };
        let mut builder =
            hickory_resolver::Resolver::builder_with_config(config, connector).with_options(opts);
        if let (Some(anchors), DnssecMode::Validate) = (trust_anchor, settings.dnssec) {
            builder = builder.with_trust_anchor(anchors);
        }
        let hickory = builder
            .build()
            .map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Resolver {
            inner: Arc::new(Inner {
                hickory,
                overrides: Overrides::new(&settings.overrides),
                mode: settings.dnssec,
                trust_ad,
                nameservers: servers,
            }),
        })
    }

    /// The name servers asked (configured, or from resolv.conf).
    pub fn nameservers(&self) -> &[SocketAddr] {
        &self.inner.nameservers
    }

    /// The configured DNSSEC mode.
    pub fn dnssec_mode(&self) -> DnssecMode {
        self.inner.mode
    }

    /// Whether answers can be reported authenticated at all: `Validate`, or
    /// `TrustAdBit` with trusted name servers.
    pub fn can_authenticate(&self) -> bool {
        match self.inner.mode {
            DnssecMode::Off => false,
            DnssecMode::TrustAdBit => self.inner.trust_ad,
            DnssecMode::Validate => true,
        }
    }

    /// MX for a domain: hosts sorted by preference, equal preferences
    /// shuffled (RFC 5321 §5.1); a single "0 ." (RFC 7505) → `NullMx`; no MX
    /// records (NODATA) → `Implicit` with the domain itself; NXDOMAIN →
    /// [`DnsError::NxDomain`]. Static overrides win.
    pub async fn mx(&self, domain: &str) -> Result<MxLookup, DnsError> {
        let name = parse_name(domain)?;
        let shown = display(&name);
        if let Some(records) = self.inner.overrides.mx(&shown) {
            return Ok(classify_mx(&shown, records, false, &mut rand::rng()));
        }
        match self.query(&name, RecordType::MX).await {
            Ok(answer) => {
                let records: Vec<(u16, String)> = answer
                    .records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    // Only CNAMEs without a target MX: no MX records.
                    return Ok(implicit_mx(&shown, false));
                }
                Ok(classify_mx(
                    &shown,
                    records,
                    answer.authenticated,
                    &mut rand::rng(),
                ))
            }
            Err(Negative::NoData { authenticated }) => Ok(implicit_mx(&shown, authenticated)),
            Err(Negative::Error(e)) => Err(e),
        }
    }

    /// A and AAAA of a host, asked in parallel; one family failing is fine if
    /// the other answers. An IP address literal is returned as is. Static
    /// overrides win.
    pub async fn addresses(&self, host: &str) -> Result<AddrLookup, DnsError> {
        // RFC 5321 §4.1.3 address literals: [192.0.2.1], [IPv6:2001:db8::1].
        let literal = host.trim().trim_start_matches('[').trim_end_matches(']');
        let literal = literal
            .strip_prefix("IPv6:")
            .or_else(|| literal.strip_prefix("ipv6:"))
            .unwrap_or(literal);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(AddrLookup {
                host: ip.to_string(),
                addrs: vec![ip],
                authenticated: false,
            });
        }
        let name = parse_name(host)?;
        let shown = display(&name);
        if let Some(addrs) = self.inner.overrides.addresses(&shown) {
            return Ok(AddrLookup {
                host: shown,
                addrs,
                authenticated: false,
            });
        }
        let (v4, v6) = tokio::join!(
            self.query(&name, RecordType::A),
            self.query(&name, RecordType::AAAA)
        );
        let mut addrs = Vec::new();
        let mut authenticated = true;
        let mut answered = false;
        let mut failures = Vec::new();
        for result in [v4, v6] {
            match result {
                Ok(answer) => {
                    let before = addrs.len();
                    for r in &answer.records {
                        let ip = match &r.data {
                            RData::A(a) => IpAddr::V4(a.0),
                            RData::AAAA(a) => IpAddr::V6(a.0),
                            _ => continue,
                        };
                        if !addrs.contains(&ip) {
                            addrs.push(ip);
                        }
                    }
                    if addrs.len() > before {
                        answered = true;
                        authenticated &= answer.authenticated;
                    }
                }
                Err(negative) => failures.push(negative),
            }
        }
        if answered {
            if !failures.is_empty() {
                // e.g. AAAA SERVFAIL at a broken server while A answers: use A.
                tracing::debug!(host = %shown, "one address family failed; using the other");
            }
            return Ok(AddrLookup {
                host: shown,
                addrs,
                authenticated,
            });
        }
        Err(combine_address_failures(&shown, failures))
    }

    /// TXT records of a name, each one's character-strings joined.
    pub async fn txt(&self, name: &str) -> Result<TxtLookup, DnsError> {
        let parsed = parse_name(name)?;
        let shown = display(&parsed);
        let answer = self
            .positive(&parsed, RecordType::TXT, &shown, "TXT")
            .await?;
        let records: Vec<String> = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    let joined: Vec<u8> = txt
                        .txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    Some(String::from_utf8_lossy(&joined).into_owned())
                }
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords {
                name: shown,
                rtype: "TXT",
            });
        }
        Ok(TxtLookup {
            name: shown,
            records,
            authenticated: answer.authenticated,
        })
    }

    /// TLSA records at `_PORT._tcp.HOST` (RFC 6698 §3, RFC 7672 §3).
    pub async fn tlsa(&self, port: u16, host: &str) -> Result<TlsaLookup, DnsError> {
        let host_name = parse_name(host)?;
        let owner = format!("_{port}._tcp.{}", host_name.to_ascii());
        let parsed = Name::from_ascii(&owner).map_err(|e| DnsError::InvalidName {
            name: owner.clone(),
            detail: e.to_string(),
        })?;
        let shown = display(&parsed);
        let answer = self
            .positive(&parsed, RecordType::TLSA, &shown, "TLSA")
            .await?;
        let records: Vec<Tlsa> = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa {
                    usage: u8::from(t.cert_usage),
                    selector: u8::from(t.selector),
                    matching: u8::from(t.matching),
                    data: t.cert_data.clone(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return Err(DnsError::NoRecords {
                name: shown,
                rtype: "TLSA",
            });
        }
        Ok(TlsaLookup {
            name: shown,
            records,
            authenticated: answer.authenticated,
        })
    }

    /// A DNS list query (RFC 5782 §2.1): the A records of the client's
    /// reversed address under `zone` (nibbles for IPv6, §2.4). Not listed
    /// (NXDOMAIN or NODATA) is an empty list; SERVFAIL and timeouts are errors.
    /// Answers are cached with their TTL by the shared resolver cache.
    pub async fn dns_list(&self, ip: IpAddr, zone: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let reversed = Name::from(ip);
        // `Name::from(ip)` is `…in-addr.arpa.` / `…ip6.arpa.`: keep the
        // address labels and put the list's zone in place of the arpa suffix.
        let labels: Vec<String> = reversed
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let keep = labels.len().saturating_sub(2);
        let name = format!(
            "{}.{}.",
            labels[..keep].join("."),
            zone.trim_end_matches('.')
        );
        let parsed = parse_name(&name)?;
        match self.query(&parsed, RecordType::A).await {
            Ok(answer) => Ok(answer
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect()),
            Err(Negative::NoData { .. } | Negative::Error(DnsError::NxDomain { .. })) => {
                Ok(Vec::new())
            }
            Err(Negative::Error(e)) => Err(e),
        }
    }

    /// PTR names of an address (no trailing dot), sorted. Names from static
    /// overrides whose addresses include `ip` win.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let overridden = self.inner.overrides.names_for(ip);
        if !overridden.is_empty() {
            return Ok(overridden);
        }
        let name = Name::from(ip);
        let shown = display(&name);
        let answer = self.positive(&name, RecordType::PTR, &shown, "PTR").await?;
        let mut names: Vec<String> = answer
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(normalise(&p.0.to_ascii())),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(DnsError::NoRecords {
                name: shown,
                rtype: "PTR",
            });
        }
        Ok(names)
    }

    /// A query whose NODATA is an error.
    async fn positive(
        &self,
        name: &Name,
        rtype: RecordType,
        shown: &str,
        rtype_text: &'static str,
    ) -> Result<Answer, DnsError> {
        self.query(name, rtype).await.map_err(|n| match n {
            Negative::NoData { .. } => DnsError::NoRecords {
                name: shown.to_owned(),
                rtype: rtype_text,
            },
            Negative::Error(e) => e,
        })
    }

    async fn query(&self, name: &Name, rtype: RecordType) -> Result<Answer, Negative> {
        match self.inner.hickory.lookup(name.clone(), rtype).await {
            Ok(lookup) => {
                let authenticated = self.authenticated(&lookup);
                Ok(Answer {
                    records: lookup.answers().to_vec(),
                    authenticated,
                })
            }
            Err(e) => Err(self.negative(name, e)),
        }
    }

    fn negative(&self, name: &Name, err: NetError) -> Negative {
        match from_net(&display(name), err) {
            // Without in-process validation a denial is never authenticated:
            // hickory does not keep the AD bit of negative answers.
            Negative::NoData { authenticated } => Negative::NoData {
                authenticated: authenticated && self.inner.mode == DnssecMode::Validate,
            },
            other @ Negative::Error(_) => other,
        }
    }

    fn authenticated(&self, lookup: &Lookup) -> bool {
        match self.inner.mode {
            DnssecMode::Off => false,
            DnssecMode::TrustAdBit => {
                self.inner.trust_ad && lookup.message().metadata.authentic_data
            }
            DnssecMode::Validate => matches!(
                DnssecSummary::from_records(lookup.answers().iter()),
                DnssecSummary::Secure
            ),
        }
    }
}

/// Both A and AAAA failed: a transient failure if either had one (the other
/// family might exist: defer); NXDOMAIN if both say so; otherwise "no
/// addresses".
fn combine_address_failures(name: &str, failures: Vec<Negative>) -> DnsError {
    let mut errors: Vec<DnsError> = failures
        .into_iter()
        .filter_map(|f| match f {
            Negative::Error(e) => Some(e),
            Negative::NoData { .. } => None,
        })
        .collect();
    if let Some(pos) = errors.iter().position(DnsError::is_transient) {
        return errors.swap_remove(pos);
    }
    if errors.len() == 2
        && errors
            .iter()
            .all(|e| matches!(e, DnsError::NxDomain { .. }))
    {
        return DnsError::NxDomain {
            name: name.to_owned(),
        };
    }
    DnsError::NoRecords {
        name: name.to_owned(),
        rtype: "A/AAAA",
    }
}

/// Parse untrusted input into a fully qualified DNS name (U-labels become
/// A-labels, RFC 5891).
fn parse_name(input: &str) -> Result<Name, DnsError> {
    let trimmed = input.trim();
    let invalid = |detail: String| DnsError::InvalidName {
        name: input.to_owned(),
        detail,
    };
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if bare.is_empty() {
        return Err(invalid("empty name".into()));
    }
    if bare.starts_with('.') || bare.contains("..") {
        return Err(invalid("empty label".into()));
    }
    let mut name = if bare.is_ascii() {
        Name::from_ascii(bare)
    } else {
        Name::from_utf8(bare)
    }
    .map_err(|e| invalid(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// How names appear in results and errors: ASCII, lower case, no trailing dot.
fn display(name: &Name) -> String {
    normalise(&name.to_ascii())
}

/// Connections that set the AD bit on queries when `request_ad` (RFC 6840
/// §5.7: a validating resolver then reports AD in its answer without the
/// cost of DO and RRSIGs). Otherwise hickory's own tokio connections.
#[derive(Clone)]
struct Connector {
    runtime: TokioRuntimeProvider,
    request_ad: bool,
}

type ConnFuture = Pin<Box<dyn Future<Output = Result<AdHandle, NetError>> + Send>>;

impl ConnectionProvider for Connector {
    type Conn = AdHandle;
    type FutureConn = ConnFuture;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let connecting = self.runtime.new_connection(ip, config, cx)?;
        let request_ad = self.request_ad;
        Ok(Box::pin(async move {
            Ok(AdHandle {
                inner: connecting.await?,
                request_ad,
            })
        }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.runtime
    }
}

#[derive(Clone)]
struct AdHandle {
    inner: DnsExchange<TokioRuntimeProvider>,
    request_ad: bool,
}

impl DnsHandle for AdHandle {
    type Response = <DnsExchange<TokioRuntimeProvider> as DnsHandle>::Response;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, mut request: DnsRequest) -> Self::Response {
        if self.request_ad {
            request.metadata.authentic_data = true;
        }
        self.inner.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_and_normalised() {
        let n = parse_name(" Example.COM. ").unwrap();
        assert!(n.is_fqdn());
        assert_eq!(display(&n), "example.com");
        assert_eq!(
            display(&parse_name("bücher.example").unwrap()),
            "xn--bcher-kva.example"
        );
        for bad in ["", ".", "a..b", ".a", &"x".repeat(64)] {
            assert!(
                matches!(parse_name(bad), Err(DnsError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn address_failures_combine() {
        let nx = || Negative::Error(DnsError::NxDomain { name: "h".into() });
        let sf = || Negative::Error(DnsError::ServFail { name: "h".into() });
        let nodata = || Negative::NoData {
            authenticated: false,
        };
        assert!(matches!(
            combine_address_failures("h", vec![nx(), nx()]),
            DnsError::NxDomain { .. }
        ));
        assert!(matches!(
            combine_address_failures("h", vec![nodata(), sf()]),
            DnsError::ServFail { .. }
        ));
        assert!(matches!(
            combine_address_failures("h", vec![nodata(), nodata()]),
            DnsError::NoRecords {
                rtype: "A/AAAA",
                ..
            }
        ));
        assert!(matches!(
            combine_address_failures("h", vec![nx(), nodata()]),
            DnsError::NoRecords { .. }
        ));
    }
}

//! Inbound verification (issue 10, item 1): SPF for HELO and MAIL FROM,
//! every DKIM signature, ARC chain validation and DMARC, with one
//! [`Verifier`] shared by all sessions (DNS caches inside).
//!
//! SPF, DKIM and ARC are `mail-auth`'s (with our relaxed-body workaround,
//! [`dkim`]); DMARC is evaluated here per RFC 7489 with a public-suffix
//! list ([`dmarc`], [`psl`]; ADR 0012), because `mail-auth` 0.13.3
//! implements the DMARCbis tree walk instead. [`AuthResults::header_value`]
//! ([`header`]) writes the `Authentication-Results:` field.
//!
//! # Security
//! Everything here reads hostile input (the message, DNS answers): no
//! panics, bounded caches, DNS failures become `temperror`, never `fail`.
//! DNS answers are trusted as the configured resolver gives them (no
//! DNSSEC requirement: SPF/DKIM/DMARC do not ask for it).
//!
//! # Standards
//! RFC 7208 (SPF), RFC 6376 (DKIM), RFC 8617 (ARC), RFC 7489 (DMARC),
//! RFC 8601 (Authentication-Results).

pub mod arc;
pub mod cache;
pub mod dkim;
pub mod dmarc;
pub mod header;
pub mod psl;
pub mod results;
pub mod spf;
pub mod void;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, MX, MessageAuthenticator, Parameters, RecordSet, Txt};

pub use header::remove_claimed_results;
pub use psl::PublicSuffixList;
pub use results::{
    Alignment, ArcResult, ArcVerdict, AuthResults, DkimResult, DkimVerdict, DmarcPolicy,
    DmarcPublished, DmarcResult, DmarcVerdict, SpfResult, SpfVerdict, SpfVerdicts,
};

use cache::TtlCache;

/// How the verifier looks things up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// Name servers to ask; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Timeout per DNS query.
    pub timeout: Duration,
    /// Bound of each DNS cache (TTL-respecting).
    pub cache_entries: usize,
    /// A public-suffix list file; `None`: the list shipped in the binary.
    pub public_suffix_list: Option<PathBuf>,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            cache_entries: 10_000,
            public_suffix_list: None,
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The public-suffix list file could not be read.
    #[error("public suffix list {}: {error}", path.display())]
    PublicSuffixRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// A line of the public-suffix list file is not a rule.
    #[error("public suffix list {}:{line}: {reason}", path.display())]
    PublicSuffixLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The resolver could not be set up (no usable resolv.conf).
    #[error("DNS resolver: {0}")]
    Resolver(String),
}

/// What to verify: the message as received and the SMTP facts.
#[derive(Debug, Clone)]
pub struct VerifyInput<'a> {
    /// The message (header and body, CRLF line ends, no dot-stuffing).
    pub message: &'a [u8],
    /// The client's address.
    pub ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: &'a str,
    /// The MAIL FROM address without angle brackets; empty for `<>`.
    pub mail_from: &'a str,
    /// Our host name (SPF macro `%{r}`).
    pub our_hostname: &'a str,
    /// SPF verdicts computed earlier (at MAIL FROM time); `None`: compute now.
    pub spf: Option<SpfVerdicts>,
}

pub(crate) struct Inner {
    pub(crate) auth: MessageAuthenticator,
    pub(crate) txt: TtlCache<Box<str>, Txt>,
    pub(crate) mx: TtlCache<Box<str>, RecordSet<MX>>,
    pub(crate) ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub(crate) ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub(crate) ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
    pub(crate) psl: PublicSuffixList,
}

/// The cache-carrying parameters `mail-auth` takes.
pub(crate) type Params<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

impl Inner {
    pub(crate) fn params<P>(&self, p: P) -> Params<'_, P> {
        Parameters::new(p)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }
}

/// The inbound verifier: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("public_suffix_rules", &self.inner.psl.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with its own resolver and caches.
    pub fn new(settings: &VerifierSettings) -> Result<Verifier, VerifyError> {
        let psl = match &settings.public_suffix_list {
            Some(path) => PublicSuffixList::from_file(path)?,
            None => PublicSuffixList::shipped(),
        };
        let (config, mut opts) = if settings.nameservers.is_empty() {
            mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| VerifyError::Resolver(format!("reading /etc/resolv.conf: {e}")))?
        } else {
            let mut config = ResolverConfig::default();
            for addr in &settings.nameservers {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                config.name_servers.push(ns);
            }
            (config, ResolverOpts::default())
        };
        opts.timeout = settings.timeout;
        opts.use_hosts_file = ResolveHosts::Never;
        // hickory's own answer cache (raw records, negative answers too).
        opts.cache_size = settings.cache_entries as u64;
        let auth = MessageAuthenticator::new(config, opts)
            .map_err(|e| VerifyError::Resolver(e.to_string()))?;
        let n = settings.cache_entries;
        Ok(Verifier {
            inner: Arc::new(Inner {
                auth,
                txt: TtlCache::new(n),
                mx: TtlCache::new(n),
                ipv4: TtlCache::new(n),
                ipv6: TtlCache::new(n),
                ptr: TtlCache::new(n),
                psl,
            }),
        })
    }

    /// The public-suffix list in use.
    pub fn public_suffix_list(&self) -> &PublicSuffixList {
        &self.inner.psl
    }

    /// RFC 7208 `check_host()` for the HELO identity (§2.3) and for MAIL
    /// FROM (§2.4; a null reverse-path is checked as `postmaster@<helo>`).
    pub async fn spf(
        &self,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        our_hostname: &str,
    ) -> SpfVerdicts {
        spf::check(&self.inner, ip, helo, mail_from, our_hostname).await
    }

    /// DKIM (every signature), ARC chain validation and DMARC; SPF too when
    /// `input.spf` is `None`.
    pub async fn verify(&self, input: &VerifyInput<'_>) -> AuthResults {
        let spf = match &input.spf {
            Some(spf) => spf.clone(),
            None => {
                self.spf(input.ip, input.helo, input.mail_from, input.our_hostname)
                    .await
            }
        };
        let Some(mut message) = AuthenticatedMessage::parse(input.message) else {
            return AuthResults {
                spf,
                dkim: Vec::new(),
                arc: ArcVerdict {
                    result: ArcResult::None,
                    instances: 0,
                    sealers: Vec::new(),
                    reason: "message has no header".into(),
                },
                dmarc: DmarcVerdict::empty(DmarcResult::PermError, "message has no header"),
            };
        };
        dkim::fix_relaxed_body_hashes(&mut message);
        // Each signature costs a key lookup: verify the first ones only.
        let skipped = dkim::over_limit(&mut message);
        let inner = &*self.inner;
        let outputs = inner.auth.verify_dkim(inner.params(&message)).await;
        let mut dkim = dkim::verdicts(&message, &outputs);
        dkim.extend(skipped);
        let arc_output = inner.auth.verify_arc(inner.params(&message)).await;
        let arc = arc::verdict(&message, &arc_output);
        let dmarc = dmarc::check(inner, message.froms(), &spf, &dkim).await;
        AuthResults {
            spf,
            dkim,
            arc,
            dmarc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    #[tokio::test]
    async fn verifier_and_its_futures_are_send() {
        let v = Verifier::new(&VerifierSettings {
            nameservers: vec!["127.0.0.1:9".parse().expect("addr")],
            ..VerifierSettings::default()
        })
        .expect("verifier");
        assert_send_sync(&v);
        let input = VerifyInput {
            message: b"From: a@b.example\r\n\r\nx\r\n",
            ip: "192.0.2.1".parse().expect("ip"),
            helo: "h.example",
            mail_from: "",
            our_hostname: "mx.example",
            spf: None,
        };
        let fut = v.verify(&input);
        assert_send(&fut);
        let fut = v.spf(input.ip, "h", "", "mx");
        assert_send(&fut);
    }

    #[test]
    fn a_bad_public_suffix_file_names_path_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("psl.dat");
        std::fs::write(&path, "com\n\nco..uk\n").expect("write");
        let err = Verifier::new(&VerifierSettings {
            nameservers: vec!["127.0.0.1:9".parse().expect("addr")],
            public_suffix_list: Some(path.clone()),
            ..VerifierSettings::default()
        })
        .expect_err("bad list");
        let text = err.to_string();
        assert!(text.contains(&format!("{}:3:", path.display())), "{text}");
        let missing = Verifier::new(&VerifierSettings {
            nameservers: vec!["127.0.0.1:9".parse().expect("addr")],
            public_suffix_list: Some(dir.path().join("missing")),
            ..VerifierSettings::default()
        })
        .expect_err("missing");
        assert!(matches!(missing, VerifyError::PublicSuffixRead { .. }));
    }
}

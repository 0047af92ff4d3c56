//! `FakeDns`: an in-process DNS server for hermetic tests. It answers like a
//! recursive resolver that knows exactly the records a test gave it, and
//! **NXDOMAIN for every other name**. UDP and TCP on the same `127.0.0.1` port.
//!
//! It is not a real authoritative server: there are no zones and no SOA.
//! Instead the test scripts what a validating resolver would say:
//! [`FakeDns::set_authentic`] sets the AD bit on answers under a suffix (so
//! "trust the AD bit of a local validating resolver" can be tested without
//! signing zones), and [`FakeDns::fail`] scripts SERVFAIL, REFUSED or silence.
//! For in-process validation, [`FakeDns::set_signer`] installs a function
//! that signs every answer RRset on the fly when the query has the DO bit
//! (the test owns the keys; see postern-dns's `tests/dnssec.rs`).
//!
//! Point a resolver at it with `DnsSettings { nameservers: fake.nameservers(),
//! ..Default::default() }` (postern-dns).
//!
//! # Security
//! Test-only code. Binds 127.0.0.1 only; answers whatever it is asked.
//!
//! # Standards
//! RFC 1035 (messages), RFC 2308 (NXDOMAIN vs NODATA), RFC 8020 (empty
//! non-terminals exist), RFC 6840 §5.7–5.8 (AD bit only when the query set
//! AD or DO).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// TTL of every fake record unless a test sets one ([`FakeDns::set_ttl`]).
/// Zero, so a resolver's cache never hides a record
/// a test adds or changes after the first lookup.
const TTL: u32 = 0;

/// A scripted failure for one name (all types, or one type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsFailure {
    /// Answer SERVFAIL (what a validating resolver says for a bogus answer,
    /// or an upstream failure).
    ServFail,
    /// Answer REFUSED.
    Refused,
    /// Never answer: the client times out.
    Timeout,
}

/// An in-process DNS server on `127.0.0.1:<random port>` (UDP and TCP).
/// Stops when dropped.
pub struct FakeDns {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _server: Server<Handler>,
}

/// Signs one RRset (all records share owner and type): returns its RRSIG
/// records. Installed with [`FakeDns::set_signer`].
pub type RrsetSigner = dyn Fn(&[Record]) -> Vec<Record> + Send + Sync;

#[derive(Default)]
struct State {
    /// Lower-case name without the trailing dot → record data at that name.
    records: BTreeMap<String, Vec<RData>>,
    /// (suffix, authentic): the longest matching suffix decides the AD bit.
    authentic: Vec<(String, bool)>,
    /// (name, type or `None` for all types) → failure.
    failures: Vec<(String, Option<RecordType>, DnsFailure)>,
    /// Every question received, as `name TYPE`.
    log: Vec<String>,
    /// Signs answer RRsets for queries with DO set.
    signer: Option<Arc<RrsetSigner>>,
    /// TTL of answers ([`TTL`] unless set: nothing is cached).
    ttl: Option<u32>,
}

impl FakeDns {
    /// Start a server on 127.0.0.1 with a free port, UDP and TCP on the same
    /// port. Knows no names yet.
    pub async fn start() -> FakeDns {
        let state = Arc::new(Mutex::new(State::default()));
        // The UDP port is picked by the OS; the TCP listener must get the same
        // number, which can be taken already: try a few times.
        for _ in 0..20 {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind UDP on 127.0.0.1");
            let addr = udp.local_addr().expect("UDP local address");
            let Ok(tcp) = tokio::net::TcpListener::bind(addr).await else {
                continue;
            };
            let mut server = Server::new(Handler {
                state: Arc::clone(&state),
            });
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 64);
            return FakeDns {
                addr,
                state,
                _server: server,
            };
        }
        panic!("could not bind UDP and TCP on the same 127.0.0.1 port");
    }

    /// The server's address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name-server list to put into `DnsSettings.nameservers`.
    pub fn nameservers(&self) -> Vec<SocketAddr> {
        vec![self.addr]
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread while holding the lock only poisons
        // test state; keep going with whatever is there.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, name: &str, data: RData) -> &Self {
        self.state()
            .records
            .entry(key(name))
            .or_default()
            .push(data);
        self
    }

    /// Add an A record.
    pub fn add_a(&self, name: &str, ip: impl Into<Ipv4Addr>) -> &Self {
        self.add(name, RData::A(A(ip.into())))
    }

    /// Add an AAAA record.
    pub fn add_aaaa(&self, name: &str, ip: impl Into<Ipv6Addr>) -> &Self {
        self.add(name, RData::AAAA(AAAA(ip.into())))
    }

    /// Add an A or AAAA record, by the address family.
    pub fn add_ip(&self, name: &str, ip: IpAddr) -> &Self {
        match ip {
            IpAddr::V4(v4) => self.add_a(name, v4),
            IpAddr::V6(v6) => self.add_aaaa(name, v6),
        }
    }

    /// Add an MX record `domain MX preference exchange`.
    pub fn add_mx(&self, domain: &str, preference: u16, exchange: &str) -> &Self {
        self.add(domain, RData::MX(MX::new(preference, name(exchange))))
    }

    /// Publish a null MX (`domain MX 0 .`, RFC 7505).
    pub fn add_null_mx(&self, domain: &str) -> &Self {
        self.add(domain, RData::MX(MX::new(0, Name::root())))
    }

    /// Add a TXT record with `text` as its content, split into 255-byte
    /// character-strings as a zone file would need (RFC 1035 §3.3.14).
    pub fn add_txt(&self, name: &str, text: &str) -> &Self {
        let parts: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
        let parts = if parts.is_empty() {
            vec![&b""[..]]
        } else {
            parts
        };
        self.add(name, RData::TXT(TXT::from_bytes(parts)))
    }

    /// Add one TXT record made of exactly these character-strings.
    pub fn add_txt_strings(&self, name: &str, strings: &[&str]) -> &Self {
        let parts = strings.iter().map(|s| s.as_bytes()).collect();
        self.add(name, RData::TXT(TXT::from_bytes(parts)))
    }

    /// Add a TLSA record at `_PORT._tcp.HOST` (RFC 6698, RFC 7672 §3).
    pub fn add_tlsa(
        &self,
        port: u16,
        host: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> &Self {
        let owner = format!("_{port}._tcp.{}", host.trim_end_matches('.'));
        self.add(
            &owner,
            RData::TLSA(TLSA::new(
                CertUsage::from(usage),
                Selector::from(selector),
                Matching::from(matching),
                data.to_vec(),
            )),
        )
    }

    /// Add a PTR record for `ip` (its in-addr.arpa / ip6.arpa name).
    pub fn add_ptr(&self, ip: IpAddr, target: &str) -> &Self {
        let owner = Name::from(ip).to_ascii();
        self.add(&owner, RData::PTR(PTR(name(target))))
    }

    /// Add a CNAME: questions for `alias` are answered with the CNAME and the
    /// target's records of the asked type (if the target is known here).
    pub fn add_cname(&self, alias: &str, target: &str) -> &Self {
        self.add(alias, RData::CNAME(CNAME(name(target))))
    }

    /// Add any record (e.g. a DNSKEY for a signed test zone). Its owner name
    /// is taken as given.
    pub fn add_record(&self, record: Record) -> &Self {
        let owner = record.name.to_ascii();
        self.add(&owner, record.data)
    }

    /// Sign answers: for a query with the DO bit (RFC 3225), each answer
    /// RRset is passed to `signer` and the RRSIGs it returns are added to the
    /// answer. Negative answers stay unsigned (no NSEC).
    pub fn set_signer(
        &self,
        signer: impl Fn(&[Record]) -> Vec<Record> + Send + Sync + 'static,
    ) -> &Self {
        self.state().signer = Some(Arc::new(signer));
        self
    }

    /// Remove every record at `name` (the name becomes NXDOMAIN again unless
    /// names below it exist).
    pub fn remove(&self, name: &str) -> &Self {
        self.state().records.remove(&key(name));
        self
    }

    /// Set the AD bit (RFC 4035 §3.2.3) on answers for `suffix` and names
    /// under it, as a validating resolver would for a signed zone. Like a
    /// real one (RFC 6840 §5.7), the bit is only set when the query had AD or
    /// DO set. The longest matching suffix wins; `""` matches every name.
    pub fn set_authentic(&self, suffix: &str, authentic: bool) -> &Self {
        let suffix = key(suffix);
        let mut state = self.state();
        state.authentic.retain(|(s, _)| *s != suffix);
        state.authentic.push((suffix, authentic));
        self
    }

    /// Script a failure for every question about `name`.
    pub fn fail(&self, name: &str, failure: DnsFailure) -> &Self {
        self.script(name, None, failure)
    }

    /// Script a failure for questions about `name` of one type (`"AAAA"`,
    /// `"MX"`, …).
    ///
    /// # Panics
    /// On an unknown type name.
    pub fn fail_type(&self, name: &str, rtype: &str, failure: DnsFailure) -> &Self {
        let rtype = RecordType::from_str(rtype).expect("a DNS record type name");
        self.script(name, Some(rtype), failure)
    }

    fn script(&self, name: &str, rtype: Option<RecordType>, failure: DnsFailure) -> &Self {
        let name = key(name);
        let mut state = self.state();
        state
            .failures
            .retain(|(n, t, _)| !(*n == name && *t == rtype));
        state.failures.push((name, rtype, failure));
        self
    }

    /// Remove the scripted failures for `name`.
    pub fn clear_failures(&self, name: &str) -> &Self {
        let name = key(name);
        self.state().failures.retain(|(n, _, _)| *n != name);
        self
    }

    /// Sets the TTL of positive answers from now on (default 0: a resolver
    /// caches nothing), to test caching.
    pub fn set_ttl(&self, ttl: u32) -> &Self {
        self.state().ttl = Some(ttl);
        self
    }

    /// Every question received so far, as `"name TYPE"` (lower case, no
    /// trailing dot), in arrival order. Retries appear more than once.
    pub fn queries(&self) -> Vec<String> {
        self.state().log.clone()
    }
}

/// Normalised lookup key: lower case, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A fully qualified name from test input.
fn name(text: &str) -> Name {
    let mut n = Name::from_ascii(text).expect("a valid DNS name in test data");
    n.set_fqdn(true);
    n
}

/// What the fake says to one question.
enum Answer {
    Records {
        answers: Vec<Record>,
        authentic: bool,
    },
    NoData {
        authentic: bool,
    },
    NxDomain {
        authentic: bool,
    },
    Fail(DnsFailure),
}

impl State {
    fn answer(&mut self, qname: &str, qtype: RecordType, dnssec_ok: bool) -> Answer {
        self.log.push(format!("{qname} {qtype}"));
        if let Some((_, _, failure)) = self
            .failures
            .iter()
            .rev()
            .find(|(n, t, _)| n == qname && t.is_none_or(|t| t == qtype))
        {
            return Answer::Fail(*failure);
        }
        let authentic = self.is_authentic(qname);
        let mut answers = Vec::new();
        let mut current = qname.to_owned();
        // Follow CNAMEs inside the fake (bounded, in case a test builds a loop).
        for _ in 0..8 {
            let Some(data) = self.records.get(&current) else {
                break;
            };
            let owner = name(&current);
            let cname = data.iter().find_map(|d| match d {
                RData::CNAME(CNAME(target)) if qtype != RecordType::CNAME => Some(target.clone()),
                _ => None,
            });
            if let Some(target) = cname {
                answers.push(Record::from_rdata(
                    owner,
                    self.ttl.unwrap_or(TTL),
                    RData::CNAME(CNAME(target.clone())),
                ));
                current = key(&target.to_ascii());
                continue;
            }
            answers.extend(
                data.iter()
                    .filter(|d| d.record_type() == qtype)
                    .map(|d| Record::from_rdata(owner.clone(), self.ttl.unwrap_or(TTL), d.clone())),
            );
            break;
        }
        if !answers.is_empty() {
            if let (true, Some(signer)) = (dnssec_ok, &self.signer) {
                answers = sign_rrsets(&answers, signer.as_ref());
            }
            return Answer::Records { answers, authentic };
        }
        // RFC 8020: a name exists if it has records or names below it.
        let below = format!(".{qname}");
        let exists = self.records.contains_key(qname)
            || self.records.keys().any(|k| k.ends_with(&below))
            || qname.is_empty();
        if exists {
            Answer::NoData { authentic }
        } else {
            Answer::NxDomain { authentic }
        }
    }

    fn is_authentic(&self, qname: &str) -> bool {
        self.authentic
            .iter()
            .filter(|(suffix, _)| {
                suffix.is_empty()
                    || qname == suffix
                    || (qname.ends_with(suffix.as_str())
                        && qname[..qname.len() - suffix.len()].ends_with('.'))
            })
            .max_by_key(|(suffix, _)| suffix.len())
            .is_some_and(|(_, authentic)| *authentic)
    }
}

/// Append the signer's RRSIGs after each RRset (records of one owner and type).
fn sign_rrsets(answers: &[Record], signer: &RrsetSigner) -> Vec<Record> {
    let mut out = Vec::with_capacity(answers.len() * 2);
    let mut rest = answers;
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.name == first.name && r.record_type() == first.record_type())
            .count();
        let (rrset, tail) = rest.split_at(same);
        out.extend_from_slice(rrset);
        out.extend(signer(rrset));
        rest = tail;
    }
    out
}

struct Handler {
    state: Arc<Mutex<State>>,
}

impl Handler {
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let Some(query) = request.queries.queries().first() else {
            metadata.response_code = ResponseCode::FormErr;
            return send(request, &mut response_handle, metadata, &[]).await;
        };
        let qname = key(&query.name().to_string());
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let answer = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .answer(&qname, query.query_type(), dnssec_ok);
        // RFC 6840 §5.7: a validating resolver sets AD only when asked to.
        let wants_ad = request.metadata.authentic_data || dnssec_ok;
        let records = match answer {
            Answer::Fail(DnsFailure::Timeout) => {
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
            Answer::Fail(DnsFailure::ServFail) => {
                metadata.response_code = ResponseCode::ServFail;
                Vec::new()
            }
            Answer::Fail(DnsFailure::Refused) => {
                metadata.response_code = ResponseCode::Refused;
                Vec::new()
            }
            Answer::NxDomain { authentic } => {
                metadata.response_code = ResponseCode::NXDomain;
                metadata.authentic_data = authentic && wants_ad;
                Vec::new()
            }
            Answer::NoData { authentic } => {
                metadata.authentic_data = authentic && wants_ad;
                Vec::new()
            }
            Answer::Records { answers, authentic } => {
                metadata.authentic_data = authentic && wants_ad;
                answers
            }
        };
        send(request, &mut response_handle, metadata, &records).await
    }
}

async fn send<R: ResponseHandler>(
    request: &Request,
    response_handle: &mut R,
    metadata: Metadata,
    answers: &[Record],
) -> ResponseInfo {
    // RFC 6891 §6.1.1: answer EDNS with EDNS.
    let edns = request.edns.as_ref().map(|req| {
        let mut edns = Edns::new();
        edns.set_max_payload(req.max_payload().max(512));
        edns.set_dnssec_ok(req.flags().dnssec_ok);
        edns
    });
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
        metadata,
        answers.iter(),
        std::iter::empty(),
        std::iter::empty(),
        std::iter::empty(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => ResponseInfo::from(Header {
            metadata,
            counts: HeaderCounts::default(),
        }),
    }
}

// `RequestHandler` is declared with `#[async_trait]`; this is the signature
// that macro produces, written out so testkit needs no extra dependency.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}

//! `FakeMx`: a scripted SMTP server on `127.0.0.1:0` that records what it
//! received — the other end of delivery tests.
//!
//! It offers STARTTLS or not, does TLS with a given certificate (from
//! [`crate::TestCa`]) after STARTTLS or from the first byte (implicit TLS), or
//! answers `220` to STARTTLS and closes the connection as soon as the
//! ClientHello arrives (what a TLS-1.0-only peer such as an old Kerio looks
//! like to a TLS 1.2+ client). Replies to MAIL, to each RCPT (per address)
//! and to the end of data are scripted as queues (`451` then `250`; `550`
//! for one recipient of three); when a queue is empty the default applies
//! (`250`, or `550 5.1.1` for an address outside [`FakeMx::known_recipients`]).
//!
//! # Security
//! Test-only code. Binds 127.0.0.1 only; trusts nothing it receives (lines
//! are bounded), and records message data in memory.
//!
//! # Standards
//! RFC 5321 (the dialogue, dot-stuffing §4.5.2), RFC 3207 (STARTTLS),
//! RFC 8314 (implicit TLS), RFC 4954 / RFC 4616 (AUTH PLAIN).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::ca::Issued;

/// Longest command or data line accepted.
const MAX_LINE: usize = 64 * 1024;

/// How the server does TLS.
#[derive(Clone, Default)]
pub enum MxTls {
    /// No STARTTLS in EHLO (a plaintext-only server).
    #[default]
    None,
    /// Offer STARTTLS and handshake with this configuration.
    StartTls(Arc<rustls::ServerConfig>),
    /// Offer STARTTLS, answer `220`, read the ClientHello, close: a peer
    /// that speaks only TLS 1.0/1.1 (or that breaks on our hello).
    CloseAfterClientHello,
    /// TLS from the first byte (port 465 style) with this configuration.
    Implicit(Arc<rustls::ServerConfig>),
}

impl std::fmt::Debug for MxTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MxTls::None => "None",
            MxTls::StartTls(_) => "StartTls",
            MxTls::CloseAfterClientHello => "CloseAfterClientHello",
            MxTls::Implicit(_) => "Implicit",
        })
    }
}

/// One message the server accepted (2xx after the data) or refused at the end
/// of data (`accepted == false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Connection number (1 = first), to see connection reuse.
    pub connection: usize,
    /// The reverse path, without brackets (`""` for `<>`).
    pub mail_from: String,
    /// Parameters after the MAIL path (`SIZE=… BODY=8BITMIME RET=HDRS`).
    pub mail_params: String,
    /// Recipients whose RCPT got 2xx, without brackets.
    pub rcpts: Vec<String>,
    /// Parameters of those RCPTs (`NOTIFY=… ORCPT=…`), in the same order.
    pub rcpt_params: Vec<String>,
    /// The message, dot-stuffing removed, CRLF line ends.
    pub data: Vec<u8>,
    /// The TLS version, if the session was encrypted (`TLSv1_3`).
    pub tls: Option<String>,
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The AUTH PLAIN user, if the client authenticated.
    pub auth_user: Option<String>,
    /// The end-of-data reply was 2xx.
    pub accepted: bool,
}

/// The script and the record.
struct State {
    banner: String,
    tls: MxTls,
    offer_dsn: bool,
    offer_auth: bool,
    mail: VecDeque<String>,
    rcpt: HashMap<String, VecDeque<String>>,
    known: Option<Vec<String>>,
    data: VecDeque<String>,
    received: Vec<ReceivedMail>,
    connections: usize,
    handshakes: usize,
    handshake_failures: usize,
    commands: Vec<String>,
}

/// A scripted SMTP server. Stops when dropped.
pub struct FakeMx {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMx {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FakeMx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMx")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Like [`mx_tls_config`], but the chain sent is the leaf followed by the
/// certificate of `ca` (what DANE-TA needs: the anchor in the chain).
pub fn mx_tls_config_with_ca(issued: &Issued, ca: &crate::TestCa) -> Arc<rustls::ServerConfig> {
    let mut with_ca = Issued {
        cert_pem: issued.cert_pem.clone(),
        key_pem: issued.key_pem.clone(),
        cert_der: issued.cert_der.clone(),
    };
    with_ca.cert_pem.push_str(ca.cert_pem());
    mx_tls_config(&with_ca)
}

/// A rustls server configuration presenting `issued` (TLS 1.2 and 1.3).
pub fn mx_tls_config(issued: &Issued) -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("test certificate PEM");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .expect("test key PEM");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("test certificate and key match");
    Arc::new(cfg)
}

impl FakeMx {
    /// Starts a server with `tls` on 127.0.0.1 and a free port. It accepts
    /// everything (250) until scripted otherwise.
    pub async fn start(tls: MxTls) -> FakeMx {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake MX");
        let addr = listener.local_addr().expect("fake MX address");
        let state = Arc::new(Mutex::new(State {
            banner: "220 fake.mx.test ESMTP ready".into(),
            tls,
            offer_dsn: true,
            offer_auth: true,
            mail: VecDeque::new(),
            rcpt: HashMap::new(),
            known: None,
            data: VecDeque::new(),
            received: Vec::new(),
            connections: 0,
            handshakes: 0,
            handshake_failures: 0,
            commands: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { connection(tcp, shared).await });
            }
        });
        FakeMx { addr, state, task }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port (for settings that take the port separately).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the greeting (e.g. `554 5.7.1 go away`).
    pub fn set_banner(&self, line: &str) -> &Self {
        line.clone_into(&mut self.lock().banner);
        self
    }

    /// Changes how TLS is done from the next connection on.
    pub fn set_tls(&self, tls: MxTls) -> &Self {
        self.lock().tls = tls;
        self
    }

    /// Whether EHLO offers DSN (default true).
    pub fn set_offer_dsn(&self, yes: bool) -> &Self {
        self.lock().offer_dsn = yes;
        self
    }

    /// Whether EHLO offers AUTH over TLS (default true): `false` is a relay
    /// host that takes no authentication on this port.
    pub fn set_offer_auth(&self, yes: bool) -> &Self {
        self.lock().offer_auth = yes;
        self
    }

    /// Queues replies to MAIL FROM, one per transaction.
    pub fn mail_replies(&self, replies: &[&str]) -> &Self {
        self.lock()
            .mail
            .extend(replies.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Queues replies to RCPT TO for `address` (case-insensitive), one per
    /// RCPT of that address.
    pub fn rcpt_replies(&self, address: &str, replies: &[&str]) -> &Self {
        self.lock()
            .rcpt
            .entry(address.to_ascii_lowercase())
            .or_default()
            .extend(replies.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Knows only these recipients (case-insensitive) from now on: any other
    /// RCPT without a scripted reply gets `550 5.1.1 <addr>: user unknown`,
    /// as an internal mail store does (the other end of a call-ahead).
    pub fn known_recipients(&self, addresses: &[&str]) -> &Self {
        self.lock().known = Some(addresses.iter().map(|a| a.to_ascii_lowercase()).collect());
        self
    }

    /// Queues replies to the end of data, one per message.
    pub fn data_replies(&self, replies: &[&str]) -> &Self {
        self.lock()
            .data
            .extend(replies.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.lock().received.clone()
    }

    /// Accepted messages delivered to `rcpt`.
    pub fn received_for(&self, rcpt: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| m.accepted && m.rcpts.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .collect()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Completed TLS handshakes.
    pub fn handshakes(&self) -> usize {
        self.lock().handshakes
    }

    /// Failed (or deliberately aborted) TLS handshakes.
    pub fn handshake_failures(&self) -> usize {
        self.lock().handshake_failures
    }

    /// Every command line received, in order (AUTH payloads redacted).
    pub fn commands(&self) -> Vec<String> {
        self.lock().commands.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn connection(tcp: TcpStream, state: Arc<Mutex<State>>) {
    let (conn, tls) = {
        let mut s = lock(&state);
        s.connections += 1;
        (s.connections, s.tls.clone())
    };
    if let MxTls::Implicit(cfg) = &tls {
        match TlsAcceptor::from(Arc::clone(cfg)).accept(tcp).await {
            Ok(stream) => {
                let info = tls_info(stream.get_ref().1);
                lock(&state).handshakes += 1;
                let _ = session(BufReader::new(stream), conn, Some(info), true, &state).await;
            }
            Err(_) => lock(&state).handshake_failures += 1,
        }
        return;
    }
    let Some(tcp) = session(BufReader::new(tcp), conn, None, true, &state).await else {
        return;
    };
    match tls {
        MxTls::StartTls(cfg) => match TlsAcceptor::from(cfg).accept(tcp).await {
            Ok(stream) => {
                let info = tls_info(stream.get_ref().1);
                lock(&state).handshakes += 1;
                let _ = session(BufReader::new(stream), conn, Some(info), false, &state).await;
            }
            Err(_) => lock(&state).handshake_failures += 1,
        },
        MxTls::CloseAfterClientHello => {
            let mut tcp = tcp;
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
            lock(&state).handshake_failures += 1;
            drop(tcp);
        }
        MxTls::None | MxTls::Implicit(_) => {}
    }
}

fn tls_info(conn: &rustls::ServerConnection) -> (String, Option<String>) {
    (
        conn.protocol_version()
            .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
        conn.server_name().map(str::to_owned),
    )
}

/// Reads one line (without CRLF); `None` at EOF or on an oversized line.
async fn read_line<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> Option<String> {
    let mut buf = Vec::new();
    let n = io.read_until(b'\n', &mut buf).await.ok()?;
    if n == 0 || buf.len() > MAX_LINE {
        return None;
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(io: &mut BufReader<S>, line: &str) -> bool {
    let mut out = line.as_bytes().to_vec();
    out.extend_from_slice(b"\r\n");
    io.get_mut().write_all(&out).await.is_ok() && io.get_mut().flush().await.is_ok()
}

/// `<addr> params` after `MAIL FROM:` / `RCPT TO:` → (addr, params).
fn path_and_params(rest: &str) -> (String, String) {
    let rest = rest.trim();
    if let Some(start) = rest.find('<')
        && let Some(end) = rest[start..].find('>')
    {
        let addr = rest[start + 1..start + end].to_owned();
        let params = rest[start + end + 1..].trim().to_owned();
        return (addr, params);
    }
    let mut parts = rest.splitn(2, ' ');
    (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").trim().to_owned(),
    )
}

/// The SMTP dialogue on one stream. Returns the inner stream when the client
/// asked for STARTTLS and we agreed (plaintext sessions only).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: BufReader<S>,
    conn: usize,
    tls: Option<(String, Option<String>)>,
    greet: bool,
    state: &Arc<Mutex<State>>,
) -> Option<S> {
    if greet {
        let banner = lock(state).banner.clone();
        if !reply(&mut io, &banner).await || !banner.starts_with("220") {
            return None;
        }
    }
    let mut mail: Option<(String, String)> = None;
    let mut rcpts: Vec<(String, String)> = Vec::new();
    let mut auth_user: Option<String> = None;
    loop {
        let line = read_line(&mut io).await?;
        let upper = line.to_ascii_uppercase();
        let logged = if upper.starts_with("AUTH") {
            "AUTH [redacted]".to_owned()
        } else {
            line.clone()
        };
        lock(state).commands.push(logged);
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let (offer_tls, dsn, auth) = {
                let s = lock(state);
                (
                    tls.is_none() && !matches!(s.tls, MxTls::None),
                    s.offer_dsn,
                    s.offer_auth,
                )
            };
            let mut lines = vec![
                "fake.mx.test".to_owned(),
                "PIPELINING".to_owned(),
                "SIZE 52428800".to_owned(),
                "8BITMIME".to_owned(),
                "SMTPUTF8".to_owned(),
                "ENHANCEDSTATUSCODES".to_owned(),
            ];
            if dsn {
                lines.push("DSN".into());
            }
            if offer_tls {
                lines.push("STARTTLS".into());
            }
            if auth && tls.is_some() {
                lines.push("AUTH PLAIN LOGIN".into());
            }
            let last = lines.len() - 1;
            let mut text = String::new();
            for (i, l) in lines.iter().enumerate() {
                text.push_str("250");
                text.push(if i == last { ' ' } else { '-' });
                text.push_str(l);
                text.push_str("\r\n");
            }
            text.truncate(text.len() - 2);
            if !reply(&mut io, &text).await {
                return None;
            }
            mail = None;
            rcpts.clear();
        } else if upper == "STARTTLS" {
            if tls.is_some() || matches!(lock(state).tls, MxTls::None) {
                if !reply(&mut io, "503 5.5.1 STARTTLS not available").await {
                    return None;
                }
                continue;
            }
            if !reply(&mut io, "220 2.0.0 ready to start TLS").await {
                return None;
            }
            // RFC 3207 §4.2: anything pipelined after STARTTLS is discarded.
            return Some(io.into_inner());
        } else if upper.starts_with("AUTH PLAIN") {
            let payload = line.get(11..).unwrap_or("").trim();
            auth_user = decode_plain_user(payload);
            if !reply(&mut io, "235 2.7.0 authenticated").await {
                return None;
            }
        } else if upper.starts_with("MAIL FROM:") {
            let r = lock(state)
                .mail
                .pop_front()
                .unwrap_or_else(|| "250 2.1.0 sender ok".into());
            if r.starts_with('2') {
                mail = Some(path_and_params(&line[10..]));
                rcpts.clear();
            }
            if !reply(&mut io, &r).await {
                return None;
            }
        } else if upper.starts_with("RCPT TO:") {
            let (addr, params) = path_and_params(&line[8..]);
            let r = if mail.is_none() {
                "503 5.5.1 need MAIL first".to_owned()
            } else {
                let mut s = lock(state);
                let key = addr.to_ascii_lowercase();
                let unknown = s.known.as_ref().is_some_and(|k| !k.contains(&key));
                s.rcpt
                    .get_mut(&key)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or_else(|| {
                        if unknown {
                            format!("550 5.1.1 <{addr}>: user unknown")
                        } else {
                            "250 2.1.5 recipient ok".into()
                        }
                    })
            };
            if r.starts_with('2') {
                rcpts.push((addr, params));
            }
            if !reply(&mut io, &r).await {
                return None;
            }
        } else if upper == "DATA" {
            if mail.is_none() || rcpts.is_empty() {
                if !reply(&mut io, "554 5.5.1 no valid recipients").await {
                    return None;
                }
                continue;
            }
            if !reply(&mut io, "354 end with <CRLF>.<CRLF>").await {
                return None;
            }
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                let n = io.read_until(b'\n', &mut raw).await.ok()?;
                if n == 0 {
                    return None;
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                // RFC 5321 §4.5.2: remove one leading dot.
                let line = if raw.first() == Some(&b'.') {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(line);
            }
            let r = lock(state)
                .data
                .pop_front()
                .unwrap_or_else(|| "250 2.0.0 message accepted".into());
            let (from, from_params) = mail.take().unwrap_or_default();
            let (addrs, params): (Vec<String>, Vec<String>) = rcpts.drain(..).unzip();
            lock(state).received.push(ReceivedMail {
                connection: conn,
                mail_from: from,
                mail_params: from_params,
                rcpts: addrs,
                rcpt_params: params,
                data,
                tls: tls.as_ref().map(|t| t.0.clone()),
                sni: tls.as_ref().and_then(|t| t.1.clone()),
                auth_user: auth_user.clone(),
                accepted: r.starts_with('2'),
            });
            if !reply(&mut io, &r).await {
                return None;
            }
        } else if upper == "RSET" {
            mail = None;
            rcpts.clear();
            if !reply(&mut io, "250 2.0.0 reset").await {
                return None;
            }
        } else if upper == "NOOP" {
            if !reply(&mut io, "250 2.0.0 ok").await {
                return None;
            }
        } else if upper == "QUIT" {
            let _ = reply(&mut io, "221 2.0.0 bye").await;
            return None;
        } else if !reply(&mut io, "502 5.5.2 command not recognised").await {
            return None;
        }
    }
}

/// The authcid of an AUTH PLAIN initial response (RFC 4616), base64 decoded
/// by hand (the testkit has no base64 dependency).
fn decode_plain_user(b64: &str) -> Option<String> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = u32::try_from(T.iter().position(|t| *t == c)?).ok()?;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push(u8::try_from((bits >> n) & 0xff).ok()?);
        }
    }
    let mut parts = out.split(|b| *b == 0);
    let _authz = parts.next()?;
    let user = parts.next()?;
    Some(String::from_utf8_lossy(user).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_user() {
        // "\0alice\0secret"
        assert_eq!(
            decode_plain_user("AGFsaWNlAHNlY3JldA==").as_deref(),
            Some("alice")
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            path_and_params("<a@b> SIZE=10 BODY=8BITMIME"),
            ("a@b".into(), "SIZE=10 BODY=8BITMIME".into())
        );
        assert_eq!(path_and_params("<>"), (String::new(), String::new()));
    }
}

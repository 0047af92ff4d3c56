//! The rspamd client: one `POST /checkv2` per message over HTTP/1.1 (hyper's
//! connection-level client over a TCP or Unix stream, one connection per
//! check), the envelope and session facts as request headers, the message as
//! the body (streamed, `Content-Length` known), the JSON reply read into a
//! [`SpamVerdict`].
//!
//! Request headers (rspamd's protocol, `doc/developers/protocol`): `IP`,
//! `Helo`, `Hostname` (the client's verified PTR name; rspamd treats
//! `unknown` as "no rDNS"), `From` (`<>` for the null reverse path), one
//! `Rcpt` per recipient, `Queue-Id`, `User` (the AUTH identity: rspamd then
//! skips checks meant for strangers), `TLS-Version`, `TLS-Cipher`,
//! `MTA-Name`, `Settings-ID` (an rspamd settings profile); `Password` when set (the controller worker asks for it);
//! `Pass: all` only when [`RspamdSettings::pass_all`] is on — it makes
//! rspamd run every rule even after the score passed the reject threshold
//! (rspamd's `check_all_filters`), which costs time on spam and is not
//! needed for a verdict.
//!
//! One deadline covers the connect and the whole exchange; the reply is
//! bounded ([`RspamdSettings::max_reply_size`]); a message above
//! [`RspamdSettings::max_size`] is not sent ([`SpamOutcome::Skipped`]).
//!
//! # Security
//! Every header value passes [`sanitize::header_value`] (no CR/LF from a
//! hostile HELO or address reaches the request: CWE-113, RFC 9110 §5.5).
//! The password is never logged nor put in an error. The reply is checked in
//! `reply.rs`.
//!
//! # Standards
//! RFC 9112 (HTTP/1.1 message syntax: Content-Length framing, §6.2),
//! RFC 9110 §5.5 (field values), RFC 5321 §4.1.1.2 (the null reverse path).

mod body;
mod reply;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::client::conn::http1;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncRead;
use tokio::time::{Instant, timeout_at};

pub use reply::{
    MilterHeader, RemoveHeader, ReplyError, SkipReason, SpamAction, SpamOutcome, SpamVerdict,
    Symbol,
};

use crate::addr::{EngineAddr, connect};
use crate::error::{Engine, EngineError, Stage};
use crate::sanitize;
use body::MessageBody;

/// rspamd's normal worker on this host (its default `bind_socket`).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:11333";
/// Default deadline for one check: above rspamd's own task_timeout (8 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default size bound: larger messages are not scanned (spam is small;
/// rspamd's own `max_message` is 50 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
/// Default bound on the JSON reply.
pub const DEFAULT_MAX_REPLY_SIZE: usize = 1024 * 1024;

/// How to reach rspamd and how much to send and accept. `Debug` shows the
/// password as `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct RspamdSettings {
    /// The normal worker (or the controller) address.
    pub address: EngineAddr,
    /// Deadline for the connect and the whole exchange.
    pub timeout: Duration,
    /// Messages larger than this are not sent (`Skipped`).
    pub max_size: u64,
    /// Replies larger than this fail with `ReplyTooLarge`.
    pub max_reply_size: usize,
    /// Sent as `Password` (the controller worker wants one); never logged.
    pub password: Option<String>,
    /// Send `Pass: all` (every rule runs, even past the reject score).
    pub pass_all: bool,
}

impl std::fmt::Debug for RspamdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RspamdSettings")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .field("max_reply_size", &self.max_reply_size)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("pass_all", &self.pass_all)
            .finish()
    }
}

impl Default for RspamdSettings {
    fn default() -> Self {
        RspamdSettings {
            address: EngineAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 11333,
            },
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            password: None,
            pass_all: false,
        }
    }
}

/// The envelope and session facts rspamd is told about one message. Every
/// field is optional; `None` sends no header.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest<'a> {
    /// The SMTP client's address (`IP`).
    pub ip: Option<IpAddr>,
    /// The EHLO/HELO argument (`Helo`).
    pub helo: Option<&'a str>,
    /// The client's verified PTR name, or `unknown` (`Hostname`).
    pub hostname: Option<&'a str>,
    /// The reverse path without brackets; `Some("")` is the null reverse
    /// path, sent as `<>` (`From`).
    pub from: Option<&'a str>,
    /// The accepted recipients, one `Rcpt` header each.
    pub rcpts: &'a [String],
    /// Our queue id (`Queue-Id`), for rspamd's log.
    pub queue_id: Option<&'a str>,
    /// The AUTH identity (`User`).
    pub user: Option<&'a str>,
    /// The session's TLS version, e.g. `TLSv1.3` (`TLS-Version`).
    pub tls_version: Option<&'a str>,
    /// The session's cipher suite (`TLS-Cipher`).
    pub tls_cipher: Option<&'a str>,
    /// Our host name (`MTA-Name`).
    pub mta_name: Option<&'a str>,
    /// An rspamd settings profile to apply (`Settings-ID`: the id of an
    /// entry in rspamd's `local.d/settings.conf`), e.g. one per mail-flow
    /// policy. From our configuration, never from the peer.
    pub settings_id: Option<&'a str>,
}

/// A client for one rspamd; cheap to clone, holds no connection.
#[derive(Debug, Clone)]
pub struct RspamdClient {
    settings: RspamdSettings,
    addr: String,
}

/// Read size for the message body (one HTTP body frame each).
const CHUNK: usize = 64 * 1024;

impl RspamdClient {
    /// A client with these settings.
    pub fn new(settings: RspamdSettings) -> Self {
        let addr = settings.address.to_string();
        RspamdClient { settings, addr }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RspamdSettings {
        &self.settings
    }

    /// Scans the message read from `message`, which must yield `len` bytes
    /// (the whole message as it will be stored: header section and body,
    /// CRLF line ends). A message above `max_size` is not sent.
    pub async fn check<R>(
        &self,
        req: &ScanRequest<'_>,
        message: R,
        len: u64,
    ) -> Result<SpamOutcome, EngineError>
    where
        R: AsyncRead + Unpin + Send,
    {
        if len > self.settings.max_size {
            return Ok(SpamOutcome::Skipped(SkipReason::TooLarge {
                size: len,
                limit: self.settings.max_size,
            }));
        }
        let (status, body) = self
            .exchange(Method::POST, "/checkv2", req, Some((message, len)))
            .await?;
        if status != StatusCode::OK {
            return Err(self.status_error(status, &body));
        }
        SpamVerdict::from_json(&body)
            .map(SpamOutcome::Scanned)
            .map_err(|e| self.bad_reply(e.to_string()))
    }

    /// [`check`](Self::check) for a message already in memory.
    pub async fn check_bytes(
        &self,
        req: &ScanRequest<'_>,
        message: &[u8],
    ) -> Result<SpamOutcome, EngineError> {
        self.check(req, message, message.len() as u64).await
    }

    /// `GET /ping`: `Ok` when rspamd answers `pong` (a health check).
    pub async fn ping(&self) -> Result<(), EngineError> {
        let none: Option<(&[u8], u64)> = None;
        let (status, body) = self
            .exchange(Method::GET, "/ping", &ScanRequest::default(), none)
            .await?;
        if status != StatusCode::OK {
            return Err(self.status_error(status, &body));
        }
        if body.trim_ascii() == b"pong" {
            Ok(())
        } else {
            Err(self.bad_reply(format!(
                "expected pong, got {:?}",
                sanitize::reply_text(&String::from_utf8_lossy(&body), 80)
            )))
        }
    }

    /// One request on a fresh connection, under one deadline; returns the
    /// status and the (bounded) body.
    async fn exchange<R>(
        &self,
        method: Method,
        path: &'static str,
        req: &ScanRequest<'_>,
        message: Option<(R, u64)>,
    ) -> Result<(StatusCode, Bytes), EngineError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let deadline = Instant::now() + self.settings.timeout;
        let io = timeout_at(deadline, connect(&self.settings.address))
            .await
            .map_err(|_| self.timeout(Stage::Connect))?
            .map_err(|source| EngineError::Connect {
                engine: Engine::Rspamd,
                addr: self.addr.clone(),
                source,
            })?;
        let (body, pump) = match message {
            Some((reader, len)) => {
                let (body, pump) = MessageBody::new(reader, len, CHUNK);
                (body, Some(pump))
            }
            None => (MessageBody::empty(), None),
        };
        let len = body.len();
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = hyper::Uri::from_static(path);
        self.headers(request.headers_mut(), req, len);

        let sent = AtomicBool::new(pump.is_none());
        let work = async {
            let handshake = http1::Builder::new()
                .title_case_headers(true)
                .handshake::<_, MessageBody>(TokioIo::new(io));
            let (mut sender, conn) = handshake.await.map_err(|e| self.hyper(&e, Stage::Send))?;
            let exchange = async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| self.hyper(&e, Self::stage(&sent)))?;
                let status = response.status();
                let body = self.read_body(response).await?;
                Ok::<_, EngineError>((status, body))
            };
            let pump = async {
                match pump {
                    Some(pump) => pump.run(&sent).await,
                    None => Ok(()),
                }
            };
            // The reply decides, as soon as it is complete (rspamd may answer
            // an error before it read the whole body); a failure to read the
            // message decides at once (rspamd must not judge half of it).
            let both = async {
                tokio::pin!(pump, exchange);
                let mut pumping = true;
                loop {
                    tokio::select! {
                        biased;
                        pumped = &mut pump, if pumping => {
                            pumped.map_err(|source| EngineError::BodyRead {
                                engine: Engine::Rspamd,
                                source,
                            })?;
                            pumping = false;
                        }
                        exchanged = &mut exchange => return exchanged,
                    }
                }
            };
            tokio::pin!(conn, both);
            // The connection future drives the socket; when it ends first
            // (the peer closed), the exchange sees why and ends too.
            tokio::select! {
                biased;
                out = &mut both => out,
                _ = &mut conn => both.await,
            }
        };
        timeout_at(deadline, work)
            .await
            .map_err(|_| self.timeout(Self::stage(&sent)))?
    }

    fn headers(&self, headers: &mut hyper::HeaderMap, req: &ScanRequest<'_>, len: Option<u64>) {
        let host = match &self.settings.address {
            EngineAddr::Tcp { .. } => self.addr.as_str(),
            EngineAddr::Unix(_) => "localhost",
        };
        put(headers, HOST, host);
        if let Some(len) = len {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("message/rfc822"));
        }
        let name = HeaderName::from_static;
        if let Some(ip) = req.ip {
            put(headers, name("ip"), &ip.to_string());
        }
        let optional = [
            ("helo", req.helo),
            ("hostname", req.hostname),
            ("queue-id", req.queue_id),
            ("user", req.user),
            ("tls-version", req.tls_version),
            ("tls-cipher", req.tls_cipher),
            ("mta-name", req.mta_name),
            ("settings-id", req.settings_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                put(headers, name(key), value);
            }
        }
        match req.from {
            Some("") => put(headers, name("from"), "<>"),
            Some(from) => put(headers, name("from"), from),
            None => {}
        }
        for rcpt in req.rcpts {
            put(headers, name("rcpt"), rcpt);
        }
        if self.settings.pass_all {
            put(headers, name("pass"), "all");
        }
        if let Some(password) = &self.settings.password {
            let mut value = HeaderValue::from_bytes(sanitize::header_value(password).as_bytes())
                .unwrap_or(HeaderValue::from_static(""));
            value.set_sensitive(true);
            headers.insert(name("password"), value);
        }
    }

    /// The reply body, at most `max_reply_size` bytes.
    async fn read_body(
        &self,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Bytes, EngineError> {
        let limit = self.settings.max_reply_size;
        let too_large = || EngineError::ReplyTooLarge {
            engine: Engine::Rspamd,
            addr: self.addr.clone(),
            limit,
        };
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = response.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.hyper(&e, Stage::Reply))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    }

    fn stage(sent: &AtomicBool) -> Stage {
        if sent.load(Ordering::Acquire) {
            Stage::Reply
        } else {
            Stage::Send
        }
    }

    fn timeout(&self, stage: Stage) -> EngineError {
        EngineError::Timeout {
            engine: Engine::Rspamd,
            addr: self.addr.clone(),
            stage,
            timeout: self.settings.timeout,
        }
    }

    fn bad_reply(&self, detail: String) -> EngineError {
        EngineError::BadReply {
            engine: Engine::Rspamd,
            addr: self.addr.clone(),
            detail,
        }
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> EngineError {
        // rspamd answers errors as {"error": "..."}; anything else: the start.
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        EngineError::Status {
            engine: Engine::Rspamd,
            addr: self.addr.clone(),
            status: status.as_u16(),
            detail: sanitize::reply_text(&detail, 200),
        }
    }

    /// Classifies a hyper error: a parse error is a bad reply, an I/O error
    /// or an early close is a connection failure at `stage`.
    fn hyper(&self, e: &hyper::Error, stage: Stage) -> EngineError {
        if e.is_parse() || e.is_parse_status() {
            return self.bad_reply(format!("not an HTTP reply: {e}"));
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return EngineError::Io {
                    engine: Engine::Rspamd,
                    addr: self.addr.clone(),
                    stage,
                    source: std::io::Error::new(io.kind(), io.to_string()),
                };
            }
            source = err.source();
        }
        let kind = if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
            std::io::ErrorKind::UnexpectedEof
        } else {
            std::io::ErrorKind::Other
        };
        EngineError::Io {
            engine: Engine::Rspamd,
            addr: self.addr.clone(),
            stage,
            source: std::io::Error::new(kind, e.to_string()),
        }
    }
}

/// Inserts (appends, for repeated names) a sanitised header value.
fn put(headers: &mut hyper::HeaderMap, name: HeaderName, raw: &str) {
    let clean = sanitize::header_value(raw);
    // Invariant: `header_value` leaves no control character, which is all
    // `from_bytes` refuses; skip the header rather than fail the scan.
    if let Ok(value) = HeaderValue::from_bytes(clean.as_bytes()) {
        headers.append(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let settings = RspamdSettings {
            password: Some("hunter2".into()),
            ..RspamdSettings::default()
        };
        let shown = format!("{:?}", RspamdClient::new(settings));
        assert!(
            !shown.contains("hunter2") && shown.contains("<secret>"),
            "{shown}"
        );
    }
}

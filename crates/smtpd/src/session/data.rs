//! DATA and BDAT: the message body, streamed to the spool as it arrives, and the
//! commit that must be durable before we say `250`.
//!
//! # Security
//! SMTP smuggling: only `CRLF.CRLF` ends DATA; bare LF, bare CR and NUL in the
//! body reject the whole message after reading to the real terminator
//! (`postern_proto::DataDecoder`), so nothing after a fake terminator is ever
//! read as a command. BDAT chunks get the same checks (`BdatChecker`) so a body
//! received by BDAT cannot smuggle into a later DATA hop. The body is never held
//! whole in memory: it is flushed to the spool every `FLUSH_THRESHOLD` octets.
//! SIZE is enforced while reading (RFC 1870 §6). A spool failure answers
//! `451`/`452`, never `250` (tenet 1). A body must keep up `min_data_rate`:
//! its deadline starts at `data_timeout` and grows only with the octets read
//! (never beyond `data_timeout`), so a trickling client is cut off with
//! `421 4.4.2` however it spaces its bytes.
//!
//! # Standards
//! RFC 5321 §4.1.1.4 (DATA), §4.5.2 (transparency), §2.3.8 (lines end in CRLF),
//! §4.5.3.2.5–6 (DATA timeouts), RFC 3030 (BDAT/CHUNKING), RFC 1870 (SIZE).

use std::time::Duration;

use bytes::Buf;
use postern_proto::session::{BodyOutcome, Event, Transaction};
use postern_proto::{BdatChecker, Body as BodyType, DataDecoder, DataStatus, Reply, Ret};
use postern_proto::{ForwardPath, ReversePath};
use postern_spool::{
    Envelope, EnvelopeRecipient, Incoming, MailParams, QueueId, Receipt, ReceiptTls, Spool,
    SpoolError,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::time::Instant;

use super::{End, ReadEnd, Session};
use crate::received::{self, Trace};
use crate::replies;
use crate::transcript::Direction;

/// Body bytes buffered before they are written to the spool file.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Read buffer while receiving a body.
const DATA_READ_CHUNK: usize = 32 * 1024;

/// A message body on its way to the spool.
pub(crate) struct Body {
    /// The message's queue id, chosen when the data starts: the spool file
    /// is created under it, and content engines are told it before the
    /// commit (milter `i`, rspamd `Queue-Id`).
    pub(super) queue_id: QueueId,
    pub(super) incoming: Option<Incoming>,
    pub(super) pending: Vec<u8>,
    pub(super) total: u64,
    max: u64,
    too_big: bool,
    failed: Option<Reply>,
    pub(super) trace: Trace,
    /// BDAT only: the smuggling checks across chunks.
    checker: Option<BdatChecker>,
    /// Our authserv-id when `Authentication-Results:` fields claiming it
    /// must be removed before the header section is stored (RFC 8601 §5).
    pub(super) scrub: Option<std::sync::Arc<str>>,
    /// How far `pending` was searched for the end of the header section
    /// (`None` once it was found): each byte is looked at once.
    header_scan: Option<usize>,
    /// `Message-ID:` and `Subject:` for message tracking, taken from the
    /// first bytes when they are first written (or at commit, for a
    /// message never flushed).
    pub(super) ids: Option<TrackingIds>,
}

/// `Message-ID:` and decoded `Subject:` of a message, for tracking.
#[derive(Debug, Default, Clone)]
pub(crate) struct TrackingIds {
    pub(crate) message_id: Option<String>,
    pub(crate) subject: Option<String>,
}

/// Longest Message-ID kept (RFC 5322 lines are at most 998 octets).
const MESSAGE_ID_MAX: usize = 998;
/// Longest subject kept for tracking, in characters.
const SUBJECT_MAX: usize = 255;
/// Only this much of the message start is searched for the two fields.
const IDS_SCAN_MAX: usize = 64 * 1024;

impl TrackingIds {
    /// The fields from the start of a message (bounded; hostile input: only
    /// control characters removed and lengths capped, never interpreted).
    pub(crate) fn from_start(data: &[u8]) -> Self {
        let data = &data[..data.len().min(IDS_SCAN_MAX)];
        let end = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(data.len(), |p| p + 2);
        let head = &data[..end];
        let clean = |s: String, max: usize| -> Option<String> {
            // Control and bidirectional formatting characters go
            // (CVE-2021-42574): the subject is shown to operators.
            let s: String = s
                .chars()
                .filter(|&c| !c.is_control() && !postern_proto::is_bidi_format(c))
                .take(max)
                .collect();
            let s = s.trim().to_owned();
            (!s.is_empty()).then_some(s)
        };
        let message_id = postern_proto::header_values(head, "Message-ID")
            .into_iter()
            .next()
            .and_then(|v| clean(v, MESSAGE_ID_MAX));
        let subject = postern_proto::header_values(head, "Subject")
            .into_iter()
            .next()
            .and_then(|v| {
                clean(
                    postern_content::decode_unstructured(v.as_bytes()),
                    SUBJECT_MAX,
                )
            });
        Self {
            message_id,
            subject,
        }
    }
}

/// The header section is held back (not written to the spool) until it is
/// complete, so forged `Authentication-Results:` can be removed before
/// anything is stored; a header section longer than this is refused
/// (`552 5.3.4`): scrubbing must see all of it.
pub(super) const HEADER_HOLD_MAX: usize = 1024 * 1024;

impl Body {
    /// Whether buffered bytes may go to the spool now: not while the
    /// header section that must still be scrubbed is incomplete. Past
    /// [`HEADER_HOLD_MAX`] without its end the message is refused.
    fn may_flush(&mut self) -> bool {
        if self.incoming.is_some() || self.scrub.is_none() {
            return true;
        }
        let Some(from) = self.header_scan else {
            return true;
        };
        let start = from.saturating_sub(3);
        let found = self.pending.starts_with(b"\r\n")
            || self.pending[start..].windows(4).any(|w| w == b"\r\n\r\n");
        if found {
            self.header_scan = None;
            return true;
        }
        self.header_scan = Some(self.pending.len());
        if self.pending.len() >= HEADER_HOLD_MAX {
            self.failed = Some(Reply::new(
                552,
                Some(postern_proto::EnhancedCode::new(5, 3, 4)),
                "Message header section too large (more than 1 MiB)",
            ));
            self.pending = Vec::new();
        }
        false
    }
}

/// The first bytes of a message with forged results removed (`scrub`).
pub(super) fn scrubbed(data: Vec<u8>, scrub: Option<&str>) -> Vec<u8> {
    match scrub {
        None => data,
        Some(id) => {
            let (out, removed) = postern_auth::verify::remove_claimed_results(&data, id);
            if removed > 0 {
                tracing::info!(
                    removed,
                    "removed incoming Authentication-Results fields claiming our authserv-id \
                     (RFC 8601 §5)"
                );
            }
            out
        }
    }
}

impl Body {
    /// Accounts for `n` new body octets; past the limit the body is dropped.
    fn grew(&mut self, n: usize) {
        self.total += n as u64;
        if self.total > self.max {
            self.too_big = true;
            self.pending = Vec::new();
        }
    }

    fn is_doomed(&self) -> bool {
        self.too_big || self.failed.is_some()
    }

    /// The outcome once the body (or chunk) is read whole.
    fn outcome(&mut self) -> BodyOutcome {
        if self.too_big {
            BodyOutcome::TooBig
        } else if let Some(reply) = self.failed.take() {
            BodyOutcome::StorageFailed(reply)
        } else {
            BodyOutcome::Stored { octets: self.total }
        }
    }
}

/// The DATA deadline: starts at `budget`, each read of N octets adds
/// N / `rate` seconds, never beyond `budget` (Postfix `smtpd_min_data_rate`).
pub(crate) struct DataDeadline {
    cap: Duration,
    rate: u64,
    deadline: Instant,
}

impl DataDeadline {
    pub(crate) fn new(cap: Duration, rate: u64) -> Self {
        Self {
            cap,
            rate,
            deadline: Instant::now() + cap,
        }
    }

    /// Credits `n` octets just read.
    pub(crate) fn credit(&mut self, n: usize) {
        let now = Instant::now();
        let max = now + self.cap;
        self.deadline = if self.rate == 0 {
            max
        } else {
            let nanos = u128::from(n as u64) * 1_000_000_000 / u128::from(self.rate);
            let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            (self.deadline + earned).min(max)
        };
    }

    pub(crate) fn at(&self) -> Instant {
        self.deadline
    }
}

/// Starts the spool file with our `Received:` header.
pub(super) fn begin(spool: &Spool, trace: &Trace, id: QueueId) -> Result<Incoming, SpoolError> {
    let mut inc = spool.begin_as(id)?;
    let header = received::render(trace, inc.queue_id().as_str());
    inc.write_all(header.as_bytes())?;
    Ok(inc)
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// After `354`: reads the body up to `CRLF.CRLF` into the spool.
    pub(super) async fn receive_data(&mut self) -> Result<(), End> {
        self.flush().await?;
        let mut body = self.new_body(false);
        let mut decoder = DataDecoder::new(&self.ctx.listener.limits.proto);
        let mut deadline = self.data_deadline();
        loop {
            let before = body.pending.len();
            let (consumed, status) = decoder.decode(&self.inbuf, &mut body.pending);
            self.inbuf.advance(consumed);
            let added = body.pending.len() - before;
            body.grew(added);
            if body.pending.len() >= FLUSH_THRESHOLD && body.may_flush() {
                flush_body(self.ctx.spool.clone(), &mut body).await;
            }
            if body.is_doomed() {
                body.pending.clear();
            }
            if status == DataStatus::Done {
                break;
            }
            if let Err(end) = self.read_body(&mut deadline).await {
                return self.body_read_failed(end);
            }
        }
        self.record(
            Direction::In,
            &format!("[message data: {} octets]", body.total),
        );
        let outcome = if let Some(err) = decoder.error() {
            self.in_tx(|| {
                tracing::warn!(error = ?err, "message rejected: malformed message data");
            });
            BodyOutcome::Malformed(err)
        } else {
            body.outcome()
        };
        if matches!(outcome, BodyOutcome::Stored { .. }) {
            self.body = Some(body);
        }
        self.machine.handle(Event::BodyEnd(outcome));
        Ok(())
    }

    /// Reads a BDAT chunk (always, even when the command is refused: RFC 3030 §2).
    pub(super) async fn receive_chunk(
        &mut self,
        size: u64,
        last: bool,
        store: bool,
        first: bool,
    ) -> Result<(), End> {
        if !store {
            if let Err(end) = self.discard_chunk(size).await {
                return self.body_read_failed(end);
            }
            self.record(
                Direction::In,
                &format!("[BDAT chunk: {size} octets, discarded]"),
            );
            self.machine.handle(Event::BodyEnd(BodyOutcome::Discarded));
            return Ok(());
        }
        let mut body = match self.body.take() {
            Some(b) if !first => b,
            _ => self.new_body(true),
        };
        let mut deadline = self.data_deadline();
        let mut remaining = size;
        while remaining > 0 {
            if self.inbuf.is_empty()
                && let Err(end) = self.read_body(&mut deadline).await
            {
                return self.body_read_failed(end);
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(self.inbuf.len());
            let chunk = self.inbuf.split_to(take);
            remaining -= take as u64;
            if let Some(checker) = &mut body.checker {
                checker.check(&chunk);
            }
            if !body.is_doomed() {
                body.pending.extend_from_slice(&chunk);
            }
            body.grew(take);
            if body.pending.len() >= FLUSH_THRESHOLD && body.may_flush() {
                flush_body(self.ctx.spool.clone(), &mut body).await;
            }
            if body.is_doomed() {
                body.pending.clear();
            }
        }
        if last && let Some(checker) = &mut body.checker {
            // A body ending in a bare CR is only known to be malformed at the end.
            checker.finish();
        }
        self.record(Direction::In, &format!("[BDAT chunk: {size} octets]"));
        let malformed = body.checker.as_ref().and_then(BdatChecker::error);
        let outcome = if let Some(err) = malformed {
            self.in_tx(|| {
                tracing::warn!(error = ?err, "message rejected: malformed BDAT content");
            });
            BodyOutcome::Malformed(err)
        } else {
            body.outcome()
        };
        if matches!(outcome, BodyOutcome::Stored { .. }) {
            self.body = Some(body);
        }
        self.machine.handle(Event::BodyEnd(outcome));
        Ok(())
    }

    fn data_deadline(&self) -> DataDeadline {
        let l = &self.ctx.listener.limits;
        DataDeadline::new(l.data_block_timeout, l.min_data_rate)
    }

    /// Reads more body bytes before the deadline. Shutdown does not interrupt
    /// a body in flight (in-flight DATA is allowed to commit).
    async fn read_body(&mut self, deadline: &mut DataDeadline) -> Result<(), ReadEnd> {
        if self.inbuf.capacity() - self.inbuf.len() < DATA_READ_CHUNK / 2 {
            self.inbuf.reserve(DATA_READ_CHUNK);
        }
        match tokio::time::timeout_at(deadline.at(), self.conn.read_buf(&mut self.inbuf)).await {
            Err(_) => Err(ReadEnd::Timeout),
            Ok(Ok(0) | Err(_)) => Err(ReadEnd::Closed),
            Ok(Ok(n)) => {
                deadline.credit(n);
                Ok(())
            }
        }
    }

    async fn discard_chunk(&mut self, mut remaining: u64) -> Result<(), ReadEnd> {
        let mut deadline = self.data_deadline();
        while remaining > 0 {
            if self.inbuf.is_empty() {
                self.read_body(&mut deadline).await?;
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(self.inbuf.len());
            self.inbuf.advance(take);
            remaining -= take as u64;
        }
        Ok(())
    }

    /// The body stopped arriving: a deadline closes with `421 4.4.2`, a
    /// closed connection just ends. Nothing is stored either way.
    fn body_read_failed(&mut self, end: ReadEnd) -> Result<(), End> {
        self.body = None;
        tracing::info!("message body incomplete: {end:?}");
        match end {
            ReadEnd::Timeout | ReadEnd::Shutdown => {
                self.machine.handle(Event::Timeout);
                Ok(())
            }
            ReadEnd::Closed => Err(End::ClosedByPeer),
        }
    }

    fn new_body(&self, bdat: bool) -> Body {
        let tx = self.machine.transaction();
        let single_rcpt = match tx {
            Some(tx) if tx.recipients.len() == 1 => Some(recipient_address(&tx.recipients[0])),
            _ => None,
        };
        let facts = self.machine.facts();
        Body {
            queue_id: QueueId::generate(),
            incoming: None,
            pending: Vec::new(),
            total: 0,
            max: self.machine.config().max_message_size,
            too_big: false,
            failed: None,
            checker: bdat.then(|| BdatChecker::new(&self.ctx.listener.limits.proto)),
            // Whoever the client is: an authenticated user's message must
            // not carry a verdict under our name either.
            scrub: self
                .ctx
                .shared
                .mail_auth
                .verifier
                .is_some()
                .then(|| std::sync::Arc::from(self.authserv_id())),
            header_scan: Some(0),
            ids: None,
            trace: Trace {
                helo: facts.helo.clone().unwrap_or_default(),
                peer: self.peer,
                by: self.ctx.listener.hostname.clone(),
                esmtp: self.machine.is_esmtp(),
                authenticated: facts.auth_user.is_some(),
                smtputf8: tx.is_some_and(|t| t.mail.smtputf8),
                tls: self
                    .tls
                    .as_ref()
                    .map(postern_tls::facts::TlsFacts::received_clause),
                single_rcpt,
                date: time::OffsetDateTime::now_utc(),
            },
        }
    }

    /// Drops a message that will not be stored (its tmp file is removed on a
    /// spool I/O thread).
    pub(super) fn discard(&self, mut body: Body) {
        if let Some(incoming) = body.incoming.take() {
            self.ctx.spool.execute(move || drop(incoming));
        }
    }

    /// The envelope as it will be stored (the queue id is set at commit).
    pub(super) fn envelope_for(&self, tx: &Transaction) -> Envelope {
        let mail = &tx.mail;
        let facts = self.machine.facts();
        Envelope {
            queue_id: QueueId::generate(),
            received_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            reverse_path: match &mail.reverse_path {
                ReversePath::Null => String::new(),
                ReversePath::Mailbox(mb) => mb.to_string(),
            },
            recipients: tx
                .recipients
                .iter()
                .map(|r| EnvelopeRecipient {
                    address: recipient_address(r),
                    notify: r.notify.map(|n| n.to_string()),
                    orcpt: r.orcpt.clone(),
                })
                .collect(),
            params: MailParams {
                size: mail.size,
                body: mail.body.map(|b| {
                    match b {
                        BodyType::SevenBit => "7BIT",
                        BodyType::EightBitMime => "8BITMIME",
                        BodyType::BinaryMime => "BINARYMIME",
                    }
                    .to_owned()
                }),
                smtputf8: mail.smtputf8,
                ret: mail.ret.map(|r| match r {
                    Ret::Full => "FULL".to_owned(),
                    Ret::Hdrs => "HDRS".to_owned(),
                }),
                envid: mail.envid.clone(),
            },
            receipt: Receipt {
                listener: self.ctx.listener.name.clone(),
                peer: self.peer.to_string(),
                helo: facts.helo.clone().unwrap_or_default(),
                auth_user: facts.auth_user.clone(),
                tls: self.tls.as_ref().map(|f| ReceiptTls {
                    version: f.version.clone(),
                    cipher: f.cipher.clone(),
                    group: f.group.clone(),
                    sni: f.sni.clone(),
                }),
                client_name: self.gate.facts.verified.first().cloned(),
                sender_group: self.gate.class.as_ref().and_then(|c| c.group.clone()),
                policy: self.gate.class.as_ref().map(|_| self.flow().name.clone()),
            },
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        }
    }
}

/// The envelope address of a recipient (`postmaster` for `<Postmaster>`).
fn recipient_address(r: &postern_proto::RcptTo) -> String {
    match &r.forward_path {
        // RFC 5321 §4.5.1: postmaster must always be accepted.
        ForwardPath::Postmaster => "postmaster".to_owned(),
        ForwardPath::Mailbox(mb) => mb.to_string(),
    }
}

/// Writes buffered body bytes to the spool file (begun on first use) on a
/// spool I/O thread. A free function: nothing borrowed from the session is
/// held across the await.
async fn flush_body(spool: Spool, body: &mut Body) {
    if body.is_doomed() {
        body.pending.clear();
        return;
    }
    let incoming = body.incoming.take();
    let mut data = std::mem::take(&mut body.pending);
    if incoming.is_none() {
        body.ids = Some(TrackingIds::from_start(&data));
        data = scrubbed(data, body.scrub.as_deref());
    }
    let trace = body.trace.clone();
    let id = body.queue_id;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let io = spool.clone();
    io.execute(move || {
        let written = incoming
            .map_or_else(|| begin(&spool, &trace, id), Ok)
            .and_then(|mut inc| inc.write_all(&data).map(|()| inc));
        let _ = tx.send(written);
    });
    match rx.await {
        Ok(Ok(inc)) => body.incoming = Some(inc),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "spool write failed");
            body.failed = Some(replies::spool_error(&e));
        }
        Err(gone) => {
            tracing::error!(error = %gone, "spool writer task failed");
            body.failed = Some(replies::spool_error(&SpoolError::Poisoned));
        }
    }
}

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
//! `451`/`452`, never `250` (tenet 1).
//!
//! # Standards
//! RFC 5321 §4.1.1.4 (DATA), §4.5.2 (transparency), §2.3.8 (lines end in CRLF),
//! RFC 3030 (BDAT/CHUNKING), RFC 1870 (SIZE).

use std::sync::Arc;

use bytes::Buf;
use postern_proto::{BdatChecker, Body, DataDecoder, DataStatus, Reply, Ret, ReversePath};
use postern_spool::{
    Envelope, Incoming, MailParams, QueueId, Receipt, ReceiptTls, Spool, SpoolError,
};
use tokio::io::AsyncReadExt as _;

use super::{Flow, ReadEnd, Session, Transaction};
use crate::received::{self, Trace};
use crate::replies;
use crate::transcript::Direction;

/// Body bytes buffered before they are written to the spool file.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Read buffer while receiving a body.
const DATA_READ_CHUNK: usize = 32 * 1024;

/// Body bytes on their way to the spool.
pub(crate) struct BodySink {
    incoming: Option<Incoming>,
    pending: Vec<u8>,
    total: u64,
    max: u64,
    too_big: bool,
    failed: Option<Reply>,
    trace: Trace,
}

/// A BDAT transaction between chunks.
pub(crate) struct BdatState {
    checker: BdatChecker,
    sink: BodySink,
    octets: u64,
}

impl BodySink {
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
}

/// Starts the spool file with our `Received:` header.
fn begin(spool: &Spool, trace: &Trace) -> Result<Incoming, SpoolError> {
    let mut inc = spool.begin()?;
    let header = received::render(trace, inc.queue_id().as_str());
    inc.write_all(header.as_bytes())?;
    Ok(inc)
}

impl Session {
    pub(super) async fn data(&mut self) -> Flow {
        let Some(tx) = &self.tx else {
            return self.error_reply(&replies::need_mail());
        };
        if tx.bdat.is_some() {
            return self.error_reply(&replies::data_after_bdat());
        }
        if tx.recipients.is_empty() {
            return self.error_reply(&replies::no_recipients());
        }
        let mut sink = self.new_sink();
        self.reply(&replies::start_data());
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let mut decoder = DataDecoder::new(&self.ctx.listener.limits.proto);
        loop {
            let before = sink.pending.len();
            let (consumed, status) = decoder.decode(&self.inbuf, &mut sink.pending);
            self.inbuf.advance(consumed);
            let added = sink.pending.len() - before;
            sink.grew(added);
            if sink.pending.len() >= FLUSH_THRESHOLD {
                flush_sink(self.ctx.spool.clone(), Arc::clone(&self.id), &mut sink).await;
            }
            if status == DataStatus::Done {
                break;
            }
            if let Err(end) = self.read_body().await {
                return self.body_read_failed(&end);
            }
        }
        self.record(
            Direction::In,
            &format!("[message data: {} octets]", sink.total),
        );
        // RFC 5321 §4.1.1.4: end of data ends the transaction, whatever the outcome.
        let Some(tx) = self.tx.take() else {
            return Flow::Close;
        };
        if let Some(err) = decoder.error() {
            tracing::warn!(session = %self.id, peer = %self.peer, error = ?err,
                "message rejected: malformed message data");
            return self.error_reply(&err.to_reply());
        }
        self.finish(sink, tx).await
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Flow {
        // RFC 3030 §2: the chunk must be read even when the command fails.
        let state = match &mut self.tx {
            Some(tx) if !tx.recipients.is_empty() => tx.bdat.take(),
            _ => None,
        };
        let mut state = match state {
            Some(s) => s,
            None => match &self.tx {
                Some(tx) if !tx.recipients.is_empty() => BdatState {
                    checker: BdatChecker::new(&self.ctx.listener.limits.proto),
                    sink: self.new_sink(),
                    octets: 0,
                },
                _ => {
                    let reply = if self.tx.is_none() {
                        replies::need_mail()
                    } else {
                        replies::no_recipients()
                    };
                    if let Err(end) = self.discard_body(size).await {
                        return self.body_read_failed(&end);
                    }
                    return self.error_reply(&reply);
                }
            },
        };
        let mut remaining = size;
        while remaining > 0 {
            if self.inbuf.is_empty()
                && let Err(end) = self.read_body().await
            {
                return self.body_read_failed(&end);
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(self.inbuf.len());
            let chunk = self.inbuf.split_to(take);
            remaining -= take as u64;
            state.checker.check(&chunk);
            if !state.sink.is_doomed() {
                state.sink.pending.extend_from_slice(&chunk);
            }
            state.sink.grew(take);
            if state.sink.pending.len() >= FLUSH_THRESHOLD {
                flush_sink(
                    self.ctx.spool.clone(),
                    Arc::clone(&self.id),
                    &mut state.sink,
                )
                .await;
            }
        }
        state.octets += size;
        if last {
            // A body ending in a bare CR is only known to be malformed at the end.
            state.checker.finish();
        }
        self.record(Direction::In, &format!("[BDAT chunk: {size} octets]"));
        if let Some(err) = state.checker.error() {
            self.reset_transaction();
            tracing::warn!(session = %self.id, peer = %self.peer, error = ?err, "message rejected: malformed BDAT content");
            return self.error_reply(&err.to_reply());
        }
        if state.sink.too_big {
            self.reset_transaction();
            return self.error_reply(&replies::message_too_big(state.sink.max));
        }
        if last {
            let Some(tx) = self.tx.take() else {
                return Flow::Close;
            };
            return self.finish(state.sink, tx).await;
        }
        if let Some(tx) = &mut self.tx {
            tx.bdat = Some(state);
        }
        self.reply(&replies::bdat_chunk(size));
        Flow::Continue
    }

    /// Reads more body bytes. Shutdown does not interrupt a body in flight
    /// (in-flight DATA is allowed to commit); only the timeout does.
    async fn read_body(&mut self) -> Result<(), ReadEnd> {
        if self.inbuf.capacity() - self.inbuf.len() < DATA_READ_CHUNK / 2 {
            self.inbuf.reserve(DATA_READ_CHUNK);
        }
        let timeout = self.ctx.listener.limits.data_block_timeout;
        match tokio::time::timeout(timeout, self.conn.read_buf(&mut self.inbuf)).await {
            Err(_) => Err(ReadEnd::Timeout),
            Ok(Ok(0) | Err(_)) => Err(ReadEnd::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    async fn discard_body(&mut self, mut remaining: u64) -> Result<(), ReadEnd> {
        while remaining > 0 {
            if self.inbuf.is_empty() {
                self.read_body().await?;
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(self.inbuf.len());
            self.inbuf.advance(take);
            remaining -= take as u64;
        }
        Ok(())
    }

    fn body_read_failed(&mut self, end: &ReadEnd) -> Flow {
        self.reset_transaction();
        tracing::info!(session = %self.id, peer = %self.peer, "message body incomplete: {end}");
        if matches!(end, ReadEnd::Timeout) {
            self.reply(&replies::timeout(&self.ctx.listener.hostname));
        }
        Flow::Close
    }

    fn new_sink(&self) -> BodySink {
        let single_rcpt = match &self.tx {
            Some(tx) if tx.recipients.len() == 1 => Some(tx.recipients[0].address.clone()),
            _ => None,
        };
        let smtputf8 = self.tx.as_ref().is_some_and(|t| t.mail.smtputf8);
        BodySink {
            incoming: None,
            pending: Vec::new(),
            total: 0,
            max: self.ctx.listener.limits.max_message_size,
            too_big: false,
            failed: None,
            trace: Trace {
                helo: self.helo.clone().unwrap_or_default(),
                peer: self.peer,
                by: self.ctx.listener.hostname.clone(),
                esmtp: self.esmtp,
                authenticated: self.auth_user.is_some(),
                smtputf8,
                tls: self
                    .tls
                    .as_ref()
                    .map(postern_tls::facts::TlsFacts::received_clause),
                single_rcpt,
                date: time::OffsetDateTime::now_utc(),
            },
        }
    }

    /// Commits the message and answers: `250` only when it is durable.
    async fn finish(&mut self, mut sink: BodySink, tx: Transaction) -> Flow {
        if sink.too_big {
            return self.error_reply(&replies::message_too_big(sink.max));
        }
        if let Some(reply) = sink.failed.take() {
            return self.error_reply(&reply);
        }
        let envelope = self.envelope_for(tx);
        let spool = self.ctx.spool.clone();
        let incoming = sink.incoming.take();
        let data = std::mem::take(&mut sink.pending);
        let trace = sink.trace.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut inc = match incoming {
                Some(inc) => inc,
                None => begin(&spool, &trace)?,
            };
            inc.write_all(&data)?;
            let mut envelope = envelope;
            envelope.queue_id = *inc.queue_id();
            inc.commit(envelope)
        })
        .await;
        match res {
            Ok(Ok(env)) => {
                tracing::info!(
                    queue_id = %env.queue_id, session = %self.id, peer = %self.peer,
                    from = %env.reverse_path, nrcpt = env.recipients.len(), size = env.message_size,
                    tls = env.receipt.tls.as_ref().map_or("none", |t| t.version.as_str()),
                    "queued"
                );
                self.event(&format!("queued as {}", env.queue_id));
                if let Some(hook) = &self.ctx.on_queued {
                    hook(&crate::server::Accepted {
                        queue_id: env.queue_id,
                        envelope: &env,
                        session: &self.id,
                    });
                }
                self.reply(&replies::queued(env.queue_id.as_str()));
                Flow::Continue
            }
            Ok(Err(e)) => {
                tracing::error!(session = %self.id, error = %e, "spool commit failed; message not accepted");
                self.error_reply(&replies::spool_error(&e))
            }
            Err(join) => {
                tracing::error!(session = %self.id, error = %join, "spool commit task failed");
                self.error_reply(&replies::spool_error(&SpoolError::Poisoned))
            }
        }
    }

    /// The envelope as it will be stored (the queue id is set at commit).
    fn envelope_for(&self, tx: Transaction) -> Envelope {
        let Transaction {
            mail, recipients, ..
        } = tx;
        Envelope {
            queue_id: QueueId::generate(),
            received_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            reverse_path: match &mail.reverse_path {
                ReversePath::Null => String::new(),
                ReversePath::Mailbox(mb) => mb.to_string(),
            },
            recipients,
            params: MailParams {
                size: mail.size,
                body: mail.body.map(|b| {
                    match b {
                        Body::SevenBit => "7BIT",
                        Body::EightBitMime => "8BITMIME",
                        Body::BinaryMime => "BINARYMIME",
                    }
                    .to_owned()
                }),
                smtputf8: mail.smtputf8,
                ret: mail.ret.map(|r| match r {
                    Ret::Full => "FULL".to_owned(),
                    Ret::Hdrs => "HDRS".to_owned(),
                }),
                envid: mail.envid,
            },
            receipt: Receipt {
                listener: self.ctx.listener.name.clone(),
                peer: self.peer.to_string(),
                helo: self.helo.clone().unwrap_or_default(),
                auth_user: self.auth_user.clone(),
                tls: self.tls.as_ref().map(|f| ReceiptTls {
                    version: f.version.clone(),
                    cipher: f.cipher.clone(),
                    group: f.group.clone(),
                    sni: f.sni.clone(),
                }),
            },
            message_size: 0,
        }
    }
}

/// Writes buffered body bytes to the spool file (begun on first use) on the
/// blocking pool. A free function: nothing borrowed from the session is held
/// across the await.
async fn flush_sink(spool: Spool, id: Arc<str>, sink: &mut BodySink) {
    if sink.is_doomed() {
        sink.pending.clear();
        return;
    }
    let incoming = sink.incoming.take();
    let data = std::mem::take(&mut sink.pending);
    let trace = sink.trace.clone();
    let res = tokio::task::spawn_blocking(move || {
        let mut inc = match incoming {
            Some(inc) => inc,
            None => begin(&spool, &trace)?,
        };
        inc.write_all(&data)?;
        Ok::<_, SpoolError>(inc)
    })
    .await;
    match res {
        Ok(Ok(inc)) => sink.incoming = Some(inc),
        Ok(Err(e)) => {
            tracing::error!(session = %id, error = %e, "spool write failed");
            sink.failed = Some(replies::spool_error(&e));
        }
        Err(join) => {
            tracing::error!(session = %id, error = %join, "spool writer task failed");
            sink.failed = Some(replies::spool_error(&SpoolError::Poisoned));
        }
    }
}

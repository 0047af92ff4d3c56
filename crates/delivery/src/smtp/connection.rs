//! One connection to one address of a host: connect (plain or implicit
//! TLS), EHLO, the TLS level applied (STARTTLS, the opportunistic plaintext
//! retry on a new connection, the certificate judged against the plan), AUTH
//! to a smart host, then MAIL … end of data with the body streamed from the
//! spool.
//!
//! # Security
//! A level that requires TLS never sends MAIL in plaintext: checked on the
//! session (`is_tls`), not on what we meant to do. AUTH only over TLS.
//!
//! # Standards
//! RFC 3207 (STARTTLS), RFC 7435 (opportunistic security), RFC 4954 (AUTH),
//! RFC 3461 (NOTIFY/ORCPT passed on).

use std::io::Read;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use postern_smtpc::{
    Advice, AuthMechanism, ClientError, ClientSettings, ClientTls, EhloInfo, OutEnvelope,
    OutRecipient, Session, Stage,
};
use postern_track::CauseInfo;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use super::report::{client_failure, one_line, results_of, tls_cause};
use super::{
    BODY_CHUNK, Candidate, Conn, Facts, Failure, HostResult, SmtpTransport, transcript,
    transcript_for,
};
use crate::cause;
use crate::settings::{Credentials, TlsLevel};
use crate::tls_plan::HostPlan;
use crate::transport::Job;

impl SmtpTransport {
    /// One connection to one address, with the TLS level applied: connect
    /// and EHLO ([`Self::open`]), STARTTLS per the level ([`Self::secure`]),
    /// the session judged against the plan ([`judge`]), AUTH to a smart
    /// host ([`authenticate`]), then the transaction.
    pub(super) async fn try_host(
        &self,
        job: &Job,
        cand: &Candidate,
        addr: SocketAddr,
        plan: &HostPlan,
        facts: &mut Facts,
        started: Instant,
    ) -> HostResult {
        let Some(tls) = self.client_tls(job) else {
            return HostResult::Next(Failure::transient(cause::internal(
                "no outbound TLS configuration",
            )));
        };
        let here = Here { job, cand, addr };
        let (session, info) = match self.open(&here, tls, plan.level, facts).await {
            Ok(pair) => pair,
            Err(f) => return HostResult::Next(f),
        };
        let mut session = if cand.implicit_tls {
            session
        } else {
            match self
                .secure(&here, tls, plan.level, session, &info, facts, started)
                .await
            {
                Ok(s) => s,
                Err(f) => return HostResult::Next(f),
            }
        };
        if let Err(f) = judge(&here, plan, &session, facts) {
            let _ = session.quit().await;
            return HostResult::Next(f);
        }
        if let Some(auth) = &cand.auth {
            session = match authenticate(&here, session, auth).await {
                Ok(s) => s,
                Err(f) => return HostResult::Next(f),
            };
        }
        let result = self.transact(job, &mut session, facts).await;
        result.keep(session, facts)
    }

    /// Connects (implicit TLS for a smart host that wants it) and sends EHLO.
    async fn open(
        &self,
        here: &Here<'_>,
        tls: &ClientTls,
        level: TlsLevel,
        facts: &mut Facts,
    ) -> Result<(Session, EhloInfo), Failure> {
        let Here { job, cand, addr } = *here;
        // What a TLS failure's fix may say: the recipient domains (a
        // `[[route]]` matches those, not the MX host) and whether this level
        // already retries in plaintext.
        let client = ClientSettings {
            advice: Advice {
                domains: job.recipient_domains(),
                plaintext_retry: level == TlsLevel::Opportunistic,
            },
            ..self.client.clone()
        };
        let transcript = transcript(job);
        let mut session = if cand.implicit_tls {
            let (s, _banner, info) =
                Session::connect_tls(addr, &cand.name, tls, &client, Some(transcript))
                    .await
                    .map_err(|e| here.failure(&e))?;
            facts.tls = Some(info);
            s
        } else {
            let (s, _banner) = Session::connect(addr, &client, Some(transcript))
                .await
                .map_err(|e| here.failure(&e))?;
            s
        };
        let info = session.ehlo().await.map_err(|e| here.failure(&e))?;
        Ok((session, info))
    }

    /// STARTTLS as the level says: not at all (`none`), when offered
    /// (opportunistic levels), or required (the rest: QUIT and next host when
    /// not offered). A failed handshake under `opportunistic` is recorded and
    /// retried in plaintext on a new connection (RFC 7435); a `220`-less
    /// refusal leaves a usable plaintext session.
    #[allow(clippy::too_many_arguments)]
    async fn secure(
        &self,
        here: &Here<'_>,
        tls: &ClientTls,
        level: TlsLevel,
        mut session: Session,
        info: &EhloInfo,
        facts: &mut Facts,
        started: Instant,
    ) -> Result<Session, Failure> {
        let Here { job, cand, addr } = *here;
        facts.starttls_offered = Some(info.starttls);
        let use_tls = match level {
            TlsLevel::None => false,
            TlsLevel::Opportunistic | TlsLevel::OpportunisticStrict => info.starttls,
            _ if !info.starttls => {
                let _ = session.quit().await;
                return Err(Failure::transient(tls_cause(
                    &postern_tlspolicy::cause::starttls_not_offered(
                        &format!("{} ({addr})", cand.name),
                        &job.recipient_domains(),
                        level,
                    ),
                )));
            }
            _ => true,
        };
        if !use_tls {
            return Ok(session);
        }
        match session.starttls(&cand.name, tls).await {
            Ok(ti) => {
                facts.tls = Some(ti);
                session.ehlo().await.map_err(|e| here.failure(&e))?;
                Ok(session)
            }
            Err(e) if level == TlsLevel::Opportunistic => {
                let f = here.failure(&e);
                if e.stage() == Stage::StartTls && matches!(e, ClientError::UnexpectedReply { .. })
                {
                    // STARTTLS refused with a reply: the session is still a
                    // usable plaintext session.
                    facts.downgraded = true;
                    facts.downgrade_cause = Some(f.cause);
                    return Ok(session);
                }
                // The handshake failed: the connection is gone. RFC 7435:
                // retry in plaintext on a new connection, and say so.
                self.emit_failed(job, facts, &f, started);
                drop(session);
                let (mut session, _) =
                    Session::connect(addr, &self.client, Some(transcript_for(job)))
                        .await
                        .map_err(|e| here.failure(&e))?;
                session.ehlo().await.map_err(|e| here.failure(&e))?;
                facts.downgraded = true;
                facts.downgrade_cause = Some(f.cause);
                // The `attempt` span carries queue id, MX, address, level.
                tracing::warn!(
                    "delivery: TLS handshake failed; retrying in plaintext (opportunistic)"
                );
                Ok(session)
            }
            Err(e) => Err(here.failure(&e)),
        }
    }

    /// MAIL … end of data on an established session.
    pub(super) async fn transact(
        &self,
        job: &Job,
        session: &mut Session,
        facts: &mut Facts,
    ) -> HostResult {
        let env = &job.envelope;
        facts.remote_dsn = session.ehlo_info().is_some_and(|i| i.dsn);
        let out = OutEnvelope {
            mail_from: env.reverse_path.clone(),
            rcpts: job
                .rcpts
                .iter()
                .filter_map(|i| env.recipients.get(*i))
                .map(|r| OutRecipient {
                    address: r.address.clone(),
                    notify: r.notify.clone(),
                    orcpt: r.orcpt.clone(),
                })
                .collect(),
            size: Some(env.wire_size()),
            body: env.params.body.clone(),
            smtputf8: env.params.smtputf8,
            ret: env.params.ret.clone(),
            envid: env.params.envid.clone(),
        };
        let mut body = match self.body(job).await {
            Ok(b) => b,
            Err(cause) => {
                return HostResult::Next(Failure::transient(cause));
            }
        };
        let peer = facts.ip.parse().unwrap_or_else(|_| session.peer_addr());
        let outcome = match session.send(&out, &mut body).await {
            Ok(o) => o,
            Err(e) => return HostResult::Next(client_failure(&facts.host, peer, &e)),
        };
        if outcome.mail.is_transient() {
            // The server, not the recipients, is not ready: another MX may be.
            return HostResult::Next(Failure {
                cause: cause::from_tls(&postern_smtpc::cause::reply_transient(
                    &facts.host,
                    &outcome.mail,
                )),
                reply: Some(one_line(&outcome.mail)),
                permanent: false,
            });
        }
        HostResult::Done {
            results: results_of(job, &outcome, facts),
            conn: None,
        }
    }

    /// The message body from the spool. A body up to `INLINE_BODY_MAX` is
    /// read whole, right here: the file was written moments ago (or read by
    /// the startup scan), so this is a copy from the page cache, shorter than
    /// a hand-off to another thread and back (which is what each message paid
    /// before: docs/benchmarks.md, "Issue 8 §7, third step"). A larger body is
    /// streamed by a blocking reader in chunks, never held whole in memory.
    /// Opening the file fails here (the transaction has not started); a read
    /// error or a bad CRC surfaces while the body is sent, and the final dot
    /// is never sent.
    async fn body(&self, job: &Job) -> Result<ChannelReader, CauseInfo> {
        if job.envelope.wire_size() > INLINE_BODY_MAX {
            return self.streamed_body(job).await;
        }
        let mut reader = self
            .spool
            .open_message(&job.queue_id)
            .map_err(|e| cause::spool_read(&e.to_string()))?;
        // Bounded: the reader stops at the body length its trailer records,
        // and a longer body than the envelope said is refused.
        if reader.len() > INLINE_BODY_MAX {
            return self.streamed_body(job).await;
        }
        let mut buf = Vec::with_capacity(usize::try_from(reader.len()).unwrap_or(0));
        let tail = reader.read_to_end(&mut buf).err();
        let (chunks, rx) = mpsc::channel(2);
        if !buf.is_empty() {
            let _ = chunks.try_send(Ok(buf));
        }
        if let Some(e) = tail {
            let _ = chunks.try_send(Err(e));
        }
        Ok(ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        })
    }

    /// Streams a large message body from the spool through a blocking reader.
    async fn streamed_body(&self, job: &Job) -> Result<ChannelReader, CauseInfo> {
        let spool = self.spool.clone();
        let id = job.queue_id;
        let reader = tokio::task::spawn_blocking(move || spool.open_message(&id))
            .await
            .map_err(|e| cause::spool_read(&e.to_string()))?
            .map_err(|e| cause::spool_read(&e.to_string()))?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            loop {
                let mut buf = vec![0u8; BODY_CHUNK];
                match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        Ok(ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        })
    }
}

/// The connection being tried, for causes and logs.
#[derive(Clone, Copy)]
struct Here<'a> {
    job: &'a Job,
    cand: &'a Candidate,
    addr: SocketAddr,
}

impl Here<'_> {
    fn failure(&self, e: &ClientError) -> Failure {
        client_failure(&self.cand.name, self.addr, e)
    }
}

/// The session against the plan: the level enforced on what the session
/// *is* (not on what we meant), then the certificate — PKIX + name
/// (`verify`, `mta-sts`), TLSA (`dane`), or only recorded (lower levels).
/// A warning is recorded in `facts`; `Err`: QUIT and try the next host.
// One Failure per failed connection, moved once: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn judge(
    here: &Here<'_>,
    plan: &HostPlan,
    session: &Session,
    facts: &mut Facts,
) -> Result<(), Failure> {
    let Here { job, cand, addr } = *here;
    if plan.level.requires_tls() && !session.is_tls() {
        return Err(Failure::transient(cause::internal(
            "the session is not encrypted but the TLS level requires it",
        )));
    }
    if session.is_tls() {
        let verdict = facts.tls.as_ref().and_then(|t| t.verdict.as_ref());
        match plan.judge(&cand.name, verdict) {
            Ok(warning) => {
                if let Some(w) = warning {
                    facts.warning = Some(tls_cause(&w));
                }
            }
            Err(c) => return Err(Failure::transient(tls_cause(&c))),
        }
    } else if let Some(w) =
        plan.plaintext_warning(&format!("{} ({addr})", cand.name), &job.recipient_domains())
    {
        facts.warning = Some(tls_cause(&w));
    }
    Ok(())
}

/// AUTH to a smart host. smtpc refuses AUTH on a plaintext session (the
/// password is never sent in clear) and tells a relay without AUTH from a
/// wrong password: the cause comes from its catalogue.
async fn authenticate(
    here: &Here<'_>,
    mut session: Session,
    auth: &Credentials,
) -> Result<Session, Failure> {
    let mech = if session.ehlo_info().is_some_and(|i| i.has_auth("PLAIN")) {
        AuthMechanism::Plain
    } else {
        AuthMechanism::Login
    };
    if let Err(e) = session.auth(mech, &auth.user, &auth.password).await {
        let _ = session.quit().await;
        return Err(here.failure(&e));
    }
    Ok(session)
}

impl HostResult {
    /// Keeps the session for reuse after a completed transaction.
    pub(super) fn keep(self, session: Session, facts: &Facts) -> HostResult {
        match self {
            HostResult::Done { results, conn: _ } => HostResult::Done {
                results,
                conn: Some(Box::new(Conn {
                    session,
                    facts: facts.clone(),
                })),
            },
            other @ HostResult::Next(_) => other,
        }
    }
}

/// Bodies up to this size are read whole, on the connection's task, before
/// they are sent.
const INLINE_BODY_MAX: u64 = 64 * 1024;

/// Reads the message chunks sent by the blocking spool reader.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pos < self.cur.len() {
                let n = (self.cur.len() - self.pos).min(buf.remaining());
                let start = self.pos;
                buf.put_slice(&self.cur[start..start + n]);
                self.pos += n;
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

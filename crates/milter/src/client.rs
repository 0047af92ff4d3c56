//! The whole-message driver: one milter conversation per message ([`run`],
//! [`run_on_stream`]), built on [`crate::Session`].
//!
//! At end of data the caller hands us the message; we connect, negotiate,
//! and replay the transaction as an MTA would have sent it live: connect,
//! HELO, MAIL, each RCPT, DATA, the header fields, end of headers, the body
//! in chunks of at most 65535 bytes read from the caller's reader, end of
//! message; then we collect the modifications and the final reply, send
//! `SMFIC_QUIT` and close. Any reply that ends the transaction early
//! (accept, reject, discard, tempfail) ends the conversation there, with
//! `SMFIC_ABORT` first when a message had begun (the milter's abort callback
//! frees what it holds for it).
//!
//! A reject or tempfail at a RCPT step ends the whole conversation with that
//! verdict: the recipients were already accepted in the SMTP session, so the
//! caller answers the message with that reply at end of data rather than
//! bouncing (no backscatter).
//!
//! # Security
//! See [`crate::session`]: every wait is bounded by a timeout, every packet
//! by size, every field by [`crate::fields`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::codec::{self, OptNegReply};
use crate::{
    Actions, Envelope, MilterError, MilterResult, MilterSpec, ProtocolError, ProtocolFlags,
    Session, Stage, Step,
};

/// What negotiation settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The milter's protocol version (2 to 6).
    pub version: u32,
    /// The actions it may take.
    pub actions: Actions,
    /// Its protocol flags, limited to those we offered.
    pub protocol: ProtocolFlags,
    /// Its macro list per stage, when it sent one (and negotiated
    /// `SMFIF_SETSYMLIST`; lists without it are ignored).
    pub symlists: [Option<Vec<String>>; 7],
}

impl Negotiated {
    /// Checks the milter's answer against what we offered.
    pub fn from_reply(offered: Actions, reply: OptNegReply) -> Result<Negotiated, ProtocolError> {
        if !(codec::MIN_VERSION..=codec::PROTOCOL_VERSION).contains(&reply.version) {
            return Err(ProtocolError::Version(reply.version));
        }
        let extra = reply.actions.difference(offered);
        if !extra.is_empty() {
            return Err(ProtocolError::Actions {
                asked: reply.actions,
                offered,
            });
        }
        let mut symlists: [Option<Vec<String>>; 7] = Default::default();
        if reply.actions.contains(Actions::SET_SYMLIST) {
            for (stage, names) in reply.symlists {
                if let Some(slot) =
                    symlists.get_mut(usize::try_from(stage.number()).unwrap_or(usize::MAX))
                {
                    *slot = Some(names);
                }
            }
        }
        Ok(Negotiated {
            version: reply.version,
            actions: reply.actions,
            // Bits we did not offer (SMFIP_RCPT_REJ, SMFIP_MDS_*) are not
            // honoured: drop them so later checks see only what we do.
            protocol: reply.protocol.intersection(ProtocolFlags::OFFERED),
            symlists,
        })
    }

    pub(crate) fn has(&self, flag: ProtocolFlags) -> bool {
        self.protocol.contains(flag)
    }
}

/// Connects to the milter of `spec` (within `timeouts.connect`) and runs
/// one conversation for the message: `headers` as `(name, value)` with the
/// value as it follows the colon (leading space included, folds as CRLF +
/// WSP), `body` the bytes after the blank line (CRLF line ends).
pub async fn run<R>(
    spec: &MilterSpec,
    env: &Envelope<'_>,
    headers: &[(String, String)],
    body: R,
) -> Result<MilterResult, MilterError>
where
    R: AsyncRead + Unpin,
{
    let stream = crate::open(spec).await?;
    run_on_stream(spec, stream, env, headers, body).await
}

/// Runs one conversation over an already open stream (a socket, or an
/// in-memory pipe in tests). See [`run`].
pub async fn run_on_stream<S, R>(
    spec: &MilterSpec,
    stream: S,
    env: &Envelope<'_>,
    headers: &[(String, String)],
    body: R,
) -> Result<MilterResult, MilterError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    let mut session = Session::negotiate(spec, stream).await?;
    let result = replay(&mut session, env, headers, body).await?;
    // A message the milter decided on before its end: tell it to forget
    // the message (its abort callback frees what it holds), then quit.
    if matches!(
        result.stage,
        Stage::Mail | Stage::Rcpt | Stage::Data | Stage::Header | Stage::EndOfHeaders | Stage::Body
    ) {
        let _ = session.abort().await;
    }
    session.quit().await;
    Ok(result)
}

/// Replays the transaction; stops at the first decision.
async fn replay<S, R>(
    session: &mut Session<'_, S>,
    env: &Envelope<'_>,
    headers: &[(String, String)],
    mut body: R,
) -> Result<MilterResult, MilterError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
{
    macro_rules! decided {
        ($verdict:expr) => {
            return Ok(MilterResult {
                verdict: $verdict,
                stage: session.stage(),
                modifications: Vec::new(),
            })
        };
    }
    macro_rules! step {
        ($step:expr) => {
            if let Step::Decided(verdict) = $step {
                decided!(verdict);
            }
        };
    }
    step!(session.connect(env).await?);
    step!(session.helo(env).await?);
    step!(session.mail(env).await?);
    for rcpt in env.rcpts {
        step!(session.rcpt(env, rcpt, &[]).await?);
    }
    step!(session.data(env).await?);
    for (name, value) in headers {
        step!(session.header(name, value).await?);
    }
    step!(session.end_of_headers(env).await?);
    if session.wants_body() {
        let mut chunk = vec![0u8; codec::MAX_CHUNK];
        loop {
            let n = read_full(&mut body, &mut chunk)
                .await
                .map_err(|source| MilterError::Body {
                    name: session.spec().name.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            match session.body(&chunk[..n]).await? {
                Step::Continue => {}
                Step::SkipBody => break,
                Step::Decided(verdict) => decided!(verdict),
            }
        }
    }
    session.end_of_message(env).await
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

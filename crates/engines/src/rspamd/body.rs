//! The request body: the message streamed from the caller's reader to hyper
//! through a small channel, so the reader may borrow (hyper wants a
//! `'static` body) and at most two chunks are in memory at once.
//!
//! # Security
//! Exactly `len` bytes are sent (the `Content-Length` we declared, RFC 9112
//! §6.2): a longer reader is cut, a shorter one aborts the request (hyper
//! never sends a body shorter than its declared length).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::mpsc;

/// The body hyper sends: chunks from the [`Pump`], or nothing.
pub(crate) struct MessageBody {
    rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
    len: Option<u64>,
}

/// Reads the message and feeds the [`MessageBody`].
pub(crate) struct Pump<R> {
    reader: R,
    len: u64,
    chunk: usize,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl MessageBody {
    /// A body of exactly `len` bytes read from `reader` by the returned pump.
    pub(crate) fn new<R>(reader: R, len: u64, chunk: usize) -> (MessageBody, Pump<R>) {
        let (tx, rx) = mpsc::channel(2);
        let body = MessageBody {
            rx: Some(rx),
            len: Some(len),
        };
        let pump = Pump {
            reader,
            len,
            chunk: chunk.max(1),
            tx,
        };
        (body, pump)
    }

    /// No body (a GET).
    pub(crate) fn empty() -> MessageBody {
        MessageBody {
            rx: None,
            len: None,
        }
    }

    /// The declared length, when there is a body.
    pub(crate) fn len(&self) -> Option<u64> {
        self.len
    }
}

impl Body for MessageBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        rx.poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len.unwrap_or(0))
    }
}

impl<R: AsyncRead + Unpin + Send> Pump<R> {
    /// Reads `len` bytes into the body; sets `sent` when all are handed
    /// over. Fails (and aborts the request) when the reader fails or ends
    /// early; stops quietly when hyper no longer wants the body (the reply
    /// came early: it tells why).
    pub(crate) async fn run(mut self, sent: &AtomicBool) -> io::Result<()> {
        let mut left = self.len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(self.chunk);
            let mut buf = vec![0u8; want];
            let read = match self.reader.read(&mut buf).await {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the message ended after {} of its {} bytes",
                        self.len - left,
                        self.len
                    ),
                )),
                other => other,
            };
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    // Abort the request: the engine must not scan half a message.
                    let abort = io::Error::new(e.kind(), "reading the message failed");
                    let _ = self.tx.send(Err(abort)).await;
                    return Err(e);
                }
            };
            buf.truncate(n);
            left -= n as u64;
            if self.tx.send(Ok(Bytes::from(buf))).await.is_err() {
                return Ok(());
            }
        }
        sent.store(true, Ordering::Release);
        Ok(())
    }
}

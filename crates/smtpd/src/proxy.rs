//! The I/O side of the PROXY protocol on a listener behind a load balancer:
//! reads the header (parsed by `postern_proto::proxy`) before anything else,
//! and hands the session the octets that followed it.
//!
//! The accept loop (`server.rs`) checks the peer against `trusted_proxies`
//! first, then calls [`read_header`] under the listener's `proxy_timeout`;
//! the header's source address becomes the session's peer for everything
//! after: admission, the session span, the policy stages, the transcript and
//! the `Received:` header. On an implicit-TLS listener the header comes before
//! the TLS handshake (it is the proxy's, not the client's).
//!
//! # Security
//! Reads only from a trusted proxy, at most one header (v1: 107 octets; v2: 16
//! plus the capped length) and one read beyond it; whatever came after the
//! header is the client's and goes to the session unread ([`Prefixed`]).
//! Nothing is ever written to the peer before a valid header: a receiver must
//! not answer a connection whose header is missing or invalid.
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2 (v1, v2; the header precedes all data, the
//! receiver never guesses whether it is present).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use postern_proto::proxy::{self, ProxyError, ProxyHeader};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Octets asked of one read while the header is incomplete.
const READ_CHUNK: usize = 512;

/// Why no header was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The octets are not a valid header.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The peer closed before the header was complete; `octets` had arrived.
    #[error("closed after {octets} octets")]
    Closed {
        /// Octets received before the close (0: a bare TCP health check).
        octets: usize,
    },
    /// The connection broke.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one PROXY header from `stream`. Returns it and the octets that came
/// after it in the same reads (normally none: a client waits for the greeting).
pub(crate) async fn read_header<S>(stream: &mut S) -> Result<(ProxyHeader, Bytes), ReadError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let header = proxy::parse(&buf)?;
        let consumed = match header {
            ProxyHeader::Incomplete => None,
            ProxyHeader::Done { consumed, .. }
            | ProxyHeader::Local { consumed }
            | ProxyHeader::Unknown { consumed } => Some(consumed),
        };
        if let Some(n) = consumed {
            buf.advance(n);
            return Ok((header, buf.freeze()));
        }
        // Bounded: the parser refuses a v1 line past 107 octets and a v2
        // length past its cap, so the buffer never exceeds the largest
        // header plus one chunk.
        buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(ReadError::Closed { octets: buf.len() });
        }
    }
}

/// A stream that first yields `head` (the octets read past the PROXY header),
/// then reads from the inner stream; writes go straight through. On listeners
/// without the PROXY protocol `head` is empty.
pub(crate) struct Prefixed<S> {
    head: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(head: Bytes, inner: S) -> Self {
        Self { head, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.head.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.head.len().min(buf.remaining());
        buf.put_slice(&this.head[..n]);
        this.head.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A header arriving in pieces, followed by SMTP octets in the same
    /// write: the header is parsed, the rest reaches the session in order.
    #[tokio::test]
    async fn header_in_pieces_then_the_rest_goes_to_the_session() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            client.write_all(b"PROXY TCP4 198.51.").await.unwrap();
            tokio::task::yield_now().await;
            client
                .write_all(b"100.7 192.0.2.1 4000 25\r\nEHLO x\r\n")
                .await
                .unwrap();
            client.write_all(b"QUIT\r\n").await.unwrap();
        });
        let (h, rest) = read_header(&mut server).await.unwrap();
        assert!(
            matches!(h, ProxyHeader::Done { source, .. } if source.to_string() == "198.51.100.7:4000")
        );
        writer.await.unwrap();
        let mut p = Prefixed::new(rest, server);
        let mut all = Vec::new();
        p.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"EHLO x\r\nQUIT\r\n");
    }

    #[tokio::test]
    async fn close_and_garbage_are_errors() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"PROXY TCP4").await.unwrap();
        drop(client);
        assert!(matches!(
            read_header(&mut server).await,
            Err(ReadError::Closed { octets: 10 })
        ));
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"EHLO x\r\n").await.unwrap();
        assert!(matches!(
            read_header(&mut server).await,
            Err(ReadError::Proxy(ProxyError::NotProxy))
        ));
    }
}

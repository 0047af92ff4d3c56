//! A line-level SMTP client for dialogue tests: send exact bytes, read whole
//! replies, upgrade to TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One complete (possibly multi-line) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// Reply code.
    pub code: u16,
    /// Text of each line (after the code and separator).
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// All lines joined with '\n'.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

enum Stream {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
}

/// A scripted client connection.
pub struct Dialogue {
    stream: Option<Stream>,
    /// Per-read timeout.
    pub timeout: Duration,
}

impl Dialogue {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr)
            .await
            .expect("connect to test server");
        Self {
            stream: Some(Stream::Plain(BufReader::new(tcp))),
            timeout: Duration::from_secs(10),
        }
    }

    /// Connects to `addr` from the local address `from` (another 127/8
    /// address looks like another client: Linux answers for all of 127/8).
    pub async fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> Self {
        let socket = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .expect("socket");
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("bind the client address");
        let tcp = socket.connect(addr).await.expect("connect to test server");
        Self {
            stream: Some(Stream::Plain(BufReader::new(tcp))),
            timeout: Duration::from_secs(10),
        }
    }

    /// Connects with implicit TLS.
    pub async fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        cfg: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        Ok(Self {
            stream: Some(Stream::Tls(Box::new(BufReader::new(tls)))),
            timeout: Duration::from_secs(10),
        })
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let res = match self.stream.as_mut().expect("stream") {
            Stream::Plain(s) => s.get_mut().write_all(bytes).await,
            Stream::Tls(s) => {
                let w = s.get_mut();
                match w.write_all(bytes).await {
                    Ok(()) => w.flush().await,
                    Err(e) => Err(e),
                }
            }
        };
        res.expect("send to test server");
    }

    /// Sends `line` followed by CRLF.
    pub async fn send(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.send_raw(&b).await;
    }

    async fn read_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let fut = async {
            match self.stream.as_mut().expect("stream") {
                Stream::Plain(s) => s.read_until(b'\n', &mut buf).await,
                Stream::Tls(s) => s.read_until(b'\n', &mut buf).await,
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(0) | Err(_)) => None,
            Ok(Ok(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
            Err(elapsed) => panic!("timed out waiting for a reply line: {elapsed}"),
        }
    }

    /// Reads one complete reply; `None` when the server closed the connection.
    pub async fn reply(&mut self) -> Option<SmtpReply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            assert!(
                line.ends_with("\r\n"),
                "reply line not CRLF-terminated: {line:?}"
            );
            let line = line.trim_end_matches("\r\n");
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("numeric reply code");
            let sep = line.as_bytes().get(3).copied().unwrap_or(b' ');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if sep == b' ' {
                return Some(SmtpReply { code, lines });
            }
            assert_eq!(sep, b'-', "bad reply separator in {line:?}");
        }
    }

    /// Reads a reply and asserts its code; returns it.
    pub async fn expect(&mut self, code: u16) -> SmtpReply {
        let r = self
            .reply()
            .await
            .unwrap_or_else(|| panic!("connection closed, expected {code}"));
        assert_eq!(r.code, code, "expected {code}, got {r:?}");
        r
    }

    /// Sends `line` and expects `code`.
    pub async fn cmd(&mut self, line: &str, code: u16) -> SmtpReply {
        self.send(line).await;
        self.expect(code).await
    }

    /// True when the server has closed the connection (reads EOF).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        let fut = async {
            match self.stream.as_mut().expect("stream") {
                Stream::Plain(s) => s.read(&mut b).await,
                Stream::Tls(s) => s.read(&mut b).await,
            }
        };
        matches!(
            tokio::time::timeout(self.timeout, fut).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// Performs the client side of STARTTLS (after the server's 220).
    pub async fn upgrade(
        &mut self,
        server_name: &str,
        cfg: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<()> {
        let Some(Stream::Plain(s)) = self.stream.take() else {
            panic!("upgrade on a non-plain stream");
        };
        assert!(
            s.buffer().is_empty(),
            "server sent bytes after 220 before the handshake"
        );
        let tcp = s.into_inner();
        let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        self.stream = Some(Stream::Tls(Box::new(BufReader::new(tls))));
        Ok(())
    }

    /// The negotiated TLS connection, when upgraded.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self.stream.as_ref()? {
            Stream::Tls(s) => Some(s.get_ref().get_ref().1),
            Stream::Plain(_) => None,
        }
    }
}

//! The plaintext SMTP dialogue before a probe: banner, `EHLO`, `STARTTLS`,
//! `220`. A tiny reply reader of its own (multi-line replies, bounded lines)
//! so the scanner needs no SMTP client.
//!
//! # Security
//! Reads untrusted server lines: at most [`MAX_LINE`] bytes per line and
//! [`MAX_LINES`] lines per reply; nothing read is ever executed or echoed to a
//! terminal unfiltered (control characters are replaced).
//!
//! # Standards
//! RFC 5321 §4.2 (reply syntax, multi-line replies), RFC 3207 (STARTTLS).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::ScanError;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; be lenient).
pub const MAX_LINE: usize = 4096;
/// Most lines in one reply.
pub const MAX_LINES: usize = 200;

/// One SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// Text of each line (after the code and separator).
    pub lines: Vec<String>,
}

impl Reply {
    /// `code text` of every line, joined by " / " (for messages).
    pub fn one_line(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{} {l}", self.code))
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Buffered reply reader; bytes after the last reply stay in [`Self::rest`].
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
}

/// What [`LineReader::parse_reply`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply.
    Reply(Reply),
    /// More bytes needed.
    Incomplete,
}

impl LineReader {
    /// Adds bytes read from the socket.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes after the last complete reply.
    pub fn rest(&self) -> &[u8] {
        &self.buf
    }

    /// Takes one complete reply off the buffer, if there is one.
    pub fn parse_reply(&mut self) -> Result<Parsed, String> {
        let mut lines = Vec::new();
        let mut code = None;
        let mut pos = 0;
        loop {
            let Some(nl) = self.buf[pos..].iter().position(|b| *b == b'\n') else {
                if self.buf.len() - pos > MAX_LINE {
                    return Err(format!("reply line longer than {MAX_LINE} bytes"));
                }
                return Ok(Parsed::Incomplete);
            };
            let raw = &self.buf[pos..pos + nl];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_LINE {
                return Err(format!("reply line longer than {MAX_LINE} bytes"));
            }
            let line: String = String::from_utf8_lossy(raw)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            pos += nl + 1;
            let (this_code, sep, text) =
                split_line(&line).ok_or_else(|| format!("not an SMTP reply line: {line:?}"))?;
            if *code.get_or_insert(this_code) != this_code {
                return Err(format!("reply code changed within a reply: {line:?}"));
            }
            lines.push(text.to_owned());
            if lines.len() > MAX_LINES {
                return Err(format!("reply longer than {MAX_LINES} lines"));
            }
            if sep != '-' {
                self.buf.drain(..pos);
                return Ok(Parsed::Reply(Reply {
                    code: this_code,
                    lines,
                }));
            }
        }
    }

    /// Reads one reply from `io`, waiting at most `timeout`.
    pub async fn read_reply<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        timeout: Duration,
        stage: &'static str,
    ) -> Result<Reply, ScanError> {
        let fut = async {
            let mut chunk = [0u8; 2048];
            loop {
                match self.parse_reply() {
                    Ok(Parsed::Reply(r)) => return Ok(r),
                    Ok(Parsed::Incomplete) => {}
                    Err(e) => {
                        return Err(ScanError::Smtp { stage, detail: e });
                    }
                }
                let n = io.read(&mut chunk).await.map_err(|e| ScanError::Io {
                    stage,
                    detail: e.to_string(),
                })?;
                if n == 0 {
                    return Err(ScanError::Smtp {
                        stage,
                        detail: "the server closed the connection".into(),
                    });
                }
                self.feed(&chunk[..n]);
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ScanError::Timeout { stage })?
    }
}

fn split_line(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    let mut rest = line[3..].chars();
    let sep = rest.next().unwrap_or(' ');
    if sep != ' ' && sep != '-' {
        return None;
    }
    Some((code, sep, line.get(4..).unwrap_or("")))
}

/// Banner, `EHLO <ehlo>`, `STARTTLS`, `220`. Returns the banner's first line
/// and any bytes the server sent after the `220` (there should be none; the
/// caller hands them to the TLS parser).
pub async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    ehlo: &str,
    timeout: Duration,
) -> Result<(String, Vec<u8>), ScanError> {
    let mut r = LineReader::default();
    let banner = r.read_reply(io, timeout, "banner").await?;
    if banner.code != 220 {
        return Err(ScanError::Refused {
            stage: "banner",
            reply: banner.one_line(),
        });
    }
    send(io, &format!("EHLO {ehlo}\r\n"), timeout, "EHLO").await?;
    let caps = r.read_reply(io, timeout, "EHLO").await?;
    if caps.code != 250 {
        return Err(ScanError::Refused {
            stage: "EHLO",
            reply: caps.one_line(),
        });
    }
    let offered = caps.lines.iter().skip(1).any(|l| {
        l.split_ascii_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(ScanError::NoStartTls {
            ehlo: caps.one_line(),
        });
    }
    send(io, "STARTTLS\r\n", timeout, "STARTTLS").await?;
    let go = r.read_reply(io, timeout, "STARTTLS").await?;
    if go.code != 220 {
        return Err(ScanError::Refused {
            stage: "STARTTLS",
            reply: go.one_line(),
        });
    }
    Ok((
        banner.lines.first().cloned().unwrap_or_default(),
        r.rest().to_vec(),
    ))
}

async fn send<S: AsyncWrite + Unpin>(
    io: &mut S,
    line: &str,
    timeout: Duration,
    stage: &'static str,
) -> Result<(), ScanError> {
    tokio::time::timeout(timeout, io.write_all(line.as_bytes()))
        .await
        .map_err(|_| ScanError::Timeout { stage })?
        .map_err(|e| ScanError::Io {
            stage,
            detail: e.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Result<Parsed, String> {
        let mut r = LineReader::default();
        r.feed(bytes);
        r.parse_reply()
    }

    #[test]
    fn multi_line_reply() {
        let mut r = LineReader::default();
        r.feed(b"250-mx.example.com hello\r\n250-PIPELINING\r\n250 STARTTLS\r\nXYZ");
        let Parsed::Reply(rep) = r.parse_reply().unwrap() else {
            panic!()
        };
        assert_eq!(rep.code, 250);
        assert_eq!(
            rep.lines,
            vec!["mx.example.com hello", "PIPELINING", "STARTTLS"]
        );
        assert_eq!(r.rest(), b"XYZ");
    }

    #[test]
    fn incomplete_and_bad() {
        assert_eq!(parse_all(b"250-a\r\n250 b").unwrap(), Parsed::Incomplete);
        assert_eq!(parse_all(b"").unwrap(), Parsed::Incomplete);
        assert!(parse_all(b"hello\r\n").is_err());
        assert!(parse_all(b"250-a\r\n251 b\r\n").is_err());
        assert!(parse_all(&[b'2'; MAX_LINE + 10]).is_err());
        // A bare code and a bare LF are tolerated.
        let Parsed::Reply(r) = parse_all(b"220\n").unwrap() else {
            panic!()
        };
        assert_eq!((r.code, r.lines.len()), (220, 1));
    }

    #[test]
    fn control_characters_are_replaced() {
        let Parsed::Reply(r) = parse_all(b"220 evil\x1b[31m\r\n").unwrap() else {
            panic!()
        };
        assert_eq!(r.lines[0], "evil?[31m");
    }

    #[tokio::test]
    async fn dialogue_and_no_starttls() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let srv = tokio::spawn(async move {
            server
                .write_all(b"220-mx ESMTP\r\n220 welcome\r\n")
                .await
                .unwrap();
            let mut buf = vec![0u8; 256];
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"EHLO postern-scan\r\n");
            server
                .write_all(b"250-mx\r\n250-SIZE 1000\r\n250 STARTTLS\r\n")
                .await
                .unwrap();
            let n = server.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"STARTTLS\r\n");
            server.write_all(b"220 2.0.0 go ahead\r\n").await.unwrap();
        });
        let (banner, rest) = starttls(&mut client, "postern-scan", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(banner, "mx ESMTP");
        assert!(rest.is_empty());
        srv.await.unwrap();

        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            server.write_all(b"220 mx\r\n").await.unwrap();
            let mut buf = vec![0u8; 256];
            let _ = server.read(&mut buf).await.unwrap();
            server
                .write_all(b"250-mx\r\n250 8BITMIME\r\n")
                .await
                .unwrap();
            let _ = server.read(&mut buf).await;
        });
        let e = starttls(&mut client, "postern-scan", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, ScanError::NoStartTls { .. }), "{e}");
    }
}

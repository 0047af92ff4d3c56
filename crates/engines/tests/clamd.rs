//! The clamd client against a real clamd (the Debian package, started once
//! for this binary by `support`, offline, with a one-line `.hdb` database
//! for the EICAR test file), and its failure modes against plain tokio
//! listeners standing in for a broken or silent clamd.
//!
//! Covered: EICAR plain and inside a base64 MIME attachment → infected
//! (with the smallest chunk size, so the attachment crosses chunks); a
//! clean message → clean; over clamd's StreamMaxLength and over our own
//! bound → too large; TCP and Unix socket; PING and VERSION; refused (TCP
//! and a missing socket), silent (timeout), an unknown reply, clamd's
//! `ERROR`, and a failing reader, each with its cause.

#![allow(clippy::unwrap_used)]

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use postern_engines::cause;
use postern_engines::{
    ClamdClient, ClamdSettings, EngineAddr, EngineError, SizeLimit, Stage, VirusVerdict,
};
use support::{CLAMD_STREAM_MAX, Clamd, EICAR, EICAR_SIGNATURE};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpListener;

fn client(address: EngineAddr) -> ClamdClient {
    ClamdClient::new(ClamdSettings {
        address,
        timeout: Duration::from_secs(20),
        max_size: 10 * 1024 * 1024,
        ..ClamdSettings::default()
    })
}

/// Both of the engine's addresses.
fn both(engine: &Clamd) -> [EngineAddr; 2] {
    [
        format!("127.0.0.1:{}", engine.port).parse().unwrap(),
        EngineAddr::Unix(engine.socket.clone()),
    ]
}

fn infected() -> VirusVerdict {
    VirusVerdict::Infected {
        name: format!("{EICAR_SIGNATURE}.UNOFFICIAL"),
    }
}

#[tokio::test]
async fn eicar_is_found_over_tcp_and_the_unix_socket() {
    let Some(engine) = Clamd::get() else { return };
    for addr in both(engine) {
        let got = client(addr.clone()).scan_bytes(EICAR.as_bytes()).await;
        assert_eq!(got.unwrap(), infected(), "{addr}");
    }
}

#[tokio::test]
async fn eicar_in_a_base64_attachment_is_found_across_chunks() {
    let Some(engine) = Clamd::get() else { return };
    let m = support::with_attachment(EICAR.as_bytes());
    assert!(m.len() > 2 * 1024, "the message must span several chunks");
    for addr in both(engine) {
        let c = ClamdClient::new(ClamdSettings {
            chunk_size: 1024,
            ..client(addr.clone()).settings().clone()
        });
        assert_eq!(c.scan_bytes(&m).await.unwrap(), infected(), "{addr}");
    }
}

#[tokio::test]
async fn a_clean_message_is_clean() {
    let Some(engine) = Clamd::get() else { return };
    let m = support::with_attachment(b"just a text file, nothing to see\r\n");
    for addr in both(engine) {
        assert_eq!(
            client(addr.clone()).scan_bytes(&m).await.unwrap(),
            VirusVerdict::Clean,
            "{addr}"
        );
    }
    // From a file, as the spool would pass it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, support::message_of_size(100 * 1024)).unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let [tcp, _] = both(engine);
    assert_eq!(client(tcp).scan(file).await.unwrap(), VirusVerdict::Clean);
}

#[tokio::test]
async fn above_clamds_stream_max_length_is_too_large() {
    let Some(engine) = Clamd::get() else { return };
    let size = usize::try_from(CLAMD_STREAM_MAX).unwrap() + 64 * 1024;
    let m = support::message_of_size(size);
    for addr in both(engine) {
        assert_eq!(
            client(addr.clone()).scan_bytes(&m).await.unwrap(),
            VirusVerdict::TooLarge {
                limit: SizeLimit::Clamd
            },
            "{addr}"
        );
    }
}

#[tokio::test]
async fn above_our_bound_is_too_large_before_clamd_sees_it_all() {
    let Some(engine) = Clamd::get() else { return };
    let [tcp, _] = both(engine);
    let c = ClamdClient::new(ClamdSettings {
        max_size: 10_000,
        ..client(tcp).settings().clone()
    });
    let m = support::message_of_size(50_000);
    assert_eq!(
        c.scan_bytes(&m).await.unwrap(),
        VirusVerdict::TooLarge {
            limit: SizeLimit::Ours(10_000)
        }
    );
}

#[tokio::test]
async fn ping_and_version() {
    let Some(engine) = Clamd::get() else { return };
    for addr in both(engine) {
        let c = client(addr);
        c.ping().await.unwrap();
        let version = c.version().await.unwrap();
        assert!(version.starts_with("ClamAV 1."), "{version}");
    }
}

/// A short deadline for the failure cases.
fn impatient(port: u16) -> ClamdClient {
    ClamdClient::new(ClamdSettings {
        address: format!("127.0.0.1:{port}").parse().unwrap(),
        timeout: Duration::from_millis(300),
        ..ClamdSettings::default()
    })
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let err = impatient(support::free_port()).ping().await.unwrap_err();
    assert!(matches!(err, EngineError::Connect { .. }), "{err}");
    assert_eq!(err.cause().id, cause::REFUSED);
    let missing = client(EngineAddr::Unix("/nonexistent/clamd.ctl".into()));
    let err = missing.scan_bytes(b"x").await.unwrap_err();
    assert_eq!(err.cause().id, cause::REFUSED);
    assert!(
        err.cause().fix.contains("[clamav] address"),
        "{}",
        err.cause()
    );
}

#[tokio::test]
async fn a_silent_clamd_times_out_waiting_for_the_reply() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _silent = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    });
    let err = impatient(port)
        .scan_bytes(EICAR.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Timeout {
                stage: Stage::Reply,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.cause().id, cause::TIMEOUT);
}

#[tokio::test]
async fn a_clamd_that_stops_reading_times_out_while_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and never reads: the socket buffers fill up.
    let _stuck = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let c = ClamdClient::new(ClamdSettings {
        max_size: 64 * 1024 * 1024,
        ..impatient(port).settings().clone()
    });
    let m = vec![b'a'; 32 * 1024 * 1024];
    let err = c.scan_bytes(&m).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Timeout {
                stage: Stage::Send,
                ..
            }
        ),
        "{err}"
    );
}

/// A listener that reads until the end chunk (or a NUL for commands) and
/// answers `reply`.
async fn scripted(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(&[0, 0, 0, 0]) && !got.ends_with(b"PING\0") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(reply).await;
        let _ = s.shutdown().await;
    });
    port
}

#[tokio::test]
async fn unexpected_replies_have_their_causes() {
    let cases: [(&[u8], &str); 4] = [
        (b"HELLO\0", cause::BAD_REPLY),
        (
            b"stream: Can't create temporary file ERROR\0",
            cause::REPORTED_ERROR,
        ),
        (b"", cause::CLOSED),
        (b"stream: OK", cause::BAD_REPLY),
    ];
    for (i, (reply, id)) in cases.into_iter().enumerate() {
        let port = scripted(reply).await;
        let got = impatient(port).scan_bytes(b"hello").await;
        if i == 3 {
            // A reply without its NUL, then the close: still read.
            assert_eq!(got.unwrap(), VirusVerdict::Clean);
            continue;
        }
        let err = got.unwrap_err();
        assert_eq!(err.cause().id, id, "{reply:?}: {err}");
    }
    let port = scripted(b"PANG\0").await;
    let err = impatient(port).ping().await.unwrap_err();
    assert_eq!(err.cause().id, cause::BAD_REPLY);
}

/// A reader that fails after a few bytes (a spool disk error).
struct Failing(usize);

impl AsyncRead for Failing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.0 == 0 {
            return Poll::Ready(Err(io::Error::other("disk on fire")));
        }
        let n = self.0.min(buf.remaining());
        buf.put_slice(&vec![b'a'; n]);
        self.0 -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_failing_reader_is_a_body_read_error() {
    let Some(engine) = Clamd::get() else { return };
    let [tcp, _] = both(engine);
    let err = client(tcp).scan(Failing(3000)).await.unwrap_err();
    assert!(matches!(err, EngineError::BodyRead { .. }), "{err}");
    assert_eq!(err.cause().id, cause::BODY_READ);
}

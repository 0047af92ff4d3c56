//! In-memory dialogue tests: the real session driver over a duplex pipe, with
//! tokio's paused clock for the deadlines (no sockets, no sleeps, no timing
//! flakiness: time only advances when every task waits).
#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use postern_policy::RelaySettings;
use postern_spool::{Spool, SpoolSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::{Context, Session};
use crate::server::Shared;
use crate::settings::{
    AuthMode, ListenerKind, ListenerSettings, ServerSettings, SessionLimits, TlsMode,
    TranscriptFormat, TranscriptSettings, VrfyMode,
};

/// A stream that records each write the session makes (to prove a reply is
/// one write) and lets reads through.
struct Recording {
    inner: DuplexStream,
    writes: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.writes.lock().unwrap().push(buf[..*n].to_vec());
        }
        res
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(super) struct Harness {
    client: DuplexStream,
    writes: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
    spool: Spool,
    _dir: tempfile::TempDir,
}

pub(crate) fn settings(dir: &std::path::Path, limits: SessionLimits) -> ServerSettings {
    ServerSettings {
        listeners: vec![ListenerSettings {
            name: "smtp".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            kind: ListenerKind::Smtp,
            hostname: "mx.test".into(),
            tls: TlsMode::Off,
            auth: AuthMode::Off,
            limits,
            proxy_protocol: None,
        }],
        tls: postern_tls::TlsSettings::default(),
        spool: SpoolSettings::new(dir.join("spool")),
        relay: RelaySettings {
            accepted_domains: vec!["example.com".into()],
            relay_networks: Vec::new(),
        },
        users: Vec::new(),
        vrfy: VrfyMode::Ambiguous,
        max_connections: 10,
        max_connections_per_ip: 10,
        transcript: TranscriptSettings {
            path: None,
            format: TranscriptFormat::Text,
        },
        allow_insecure_auth: false,
        authentication: crate::settings::AuthenticationSettings::default(),
        content: crate::settings::ContentSettings::default(),
        record_subjects: false,
        admission: postern_policy::admission::Admission::default(),
        recipients: Vec::new(),
    }
}

/// Starts one session on an in-memory pipe of `pipe` octets per direction.
fn start(limits: SessionLimits, pipe: usize) -> Harness {
    start_with(limits, pipe, |_| {})
}

fn start_with(
    limits: SessionLimits,
    pipe: usize,
    customize: impl FnOnce(&mut ServerSettings),
) -> Harness {
    start_full(limits, pipe, customize, None)
}

pub(super) fn start_full(
    limits: SessionLimits,
    pipe: usize,
    customize: impl FnOnce(&mut ServerSettings),
    resolver: Option<postern_dns::Resolver>,
) -> Harness {
    start_full_from(
        limits,
        pipe,
        customize,
        resolver,
        "192.0.2.7:4000".parse().unwrap(),
    )
}

pub(super) fn start_full_from(
    limits: SessionLimits,
    pipe: usize,
    customize: impl FnOnce(&mut ServerSettings),
    resolver: Option<postern_dns::Resolver>,
    peer: std::net::SocketAddr,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), limits);
    customize(&mut s);
    let (spool, _) = Spool::open(&s.spool).unwrap();
    let listener = s.listeners[0].clone();
    let shared = Arc::new(Shared::new(s, None).unwrap());
    let ctx = Context {
        shared,
        listener,
        spool: spool.clone(),
        transcript: None,
        on_queued: None,
        shutdown: CancellationToken::new(),
        resolver,
        counters: crate::counting::Counters::default(),
        mail_log: None,
        dmarc_reports: None,
        ip_sessions: 1,
        proxy: None,
    };
    let (client, server) = tokio::io::duplex(pipe);
    let writes = Arc::new(Mutex::new(Vec::new()));
    let stream = Recording {
        inner: server,
        writes: Arc::clone(&writes),
    };
    let task = tokio::spawn(Session::new(Arc::from("T1"), ctx, stream, peer).run());
    Harness {
        client,
        writes,
        task,
        spool,
        _dir: dir,
    }
}

impl Harness {
    pub(super) async fn send(&mut self, bytes: &[u8]) {
        self.client.write_all(bytes).await.unwrap();
    }

    /// Reads until the connection closes; returns everything received.
    pub(super) async fn read_to_close(&mut self) -> String {
        let mut out = Vec::new();
        self.client.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Reads one reply (through its last line).
    pub(super) async fn reply(&mut self) -> String {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let n = self.client.read(&mut byte).await.unwrap();
            assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&out));
            out.push(byte[0]);
            if out.ends_with(b"\r\n") {
                let text = String::from_utf8(out.clone()).unwrap();
                let last = text.trim_end().rsplit("\r\n").next().unwrap().to_owned();
                if last.as_bytes().get(3) == Some(&b' ') || last.len() == 3 {
                    return text;
                }
            }
        }
    }
}

/// A slow client: one `byte` every `every` until the server closes; returns
/// what the server said meanwhile.
async fn trickle(mut client: DuplexStream, byte: u8, every: Duration) -> String {
    for _ in 0..10_000 {
        if client.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(every).await;
    }
    let mut out = Vec::new();
    let _ = client.read_to_end(&mut out).await;
    String::from_utf8(out).unwrap()
}

/// SMTP smuggling (RFC 5321 §2.3.8): a bare LF inside what a CRLF-splitting
/// proxy sees as ONE line is never run here as two commands: one error, close.
#[tokio::test(start_paused = true)]
async fn bare_lf_never_splits_a_command() {
    for attack in [
        &b"NOOP x\nRSET\r\n"[..],
        b"MAIL FROM:<a@b.example>\nRCPT TO:<c@example.com>\r\n",
        b"NOOP\n",
    ] {
        let mut h = start(SessionLimits::default(), 64 * 1024);
        assert!(h.reply().await.starts_with("220 "));
        h.send(b"EHLO client.example\r\n").await;
        assert!(h.reply().await.starts_with("250-mx.test"));
        h.send(attack).await;
        let rest = h.read_to_close().await;
        assert_eq!(
            rest,
            "500 5.5.2 Bare <LF> received; lines must end with <CR><LF> (RFC 5321 section 2.3.8)\r\n",
            "{attack:?}"
        );
        h.task.await.unwrap();
    }
}

/// The whole-line deadline: a client trickling one byte every 20 s never
/// completes a line within `command_timeout` and is cut off with 421 4.4.2
/// (an idle timer reset by each byte would keep it forever).
#[tokio::test(start_paused = true)]
async fn trickling_command_is_cut_at_the_deadline() {
    let mut h = start(SessionLimits::default(), 64 * 1024);
    h.reply().await;
    let started = tokio::time::Instant::now();
    let trickle = tokio::spawn(trickle(h.client, b'N', Duration::from_secs(20)));
    h.task.await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_mins(5) && elapsed < Duration::from_mins(6),
        "{elapsed:?}"
    );
    let rest = trickle.await.unwrap();
    assert!(rest.starts_with("421 4.4.2 mx.test"), "{rest}");
}

/// A client that pipelines and never reads cannot hold its slot: once the
/// pipe is full, the write deadline ends the session.
#[tokio::test(start_paused = true)]
async fn client_that_stops_reading_is_dropped() {
    let limits = SessionLimits {
        max_errors: 1_000_000,
        ..SessionLimits::default()
    };
    let mut h = start(limits, 256);
    let started = tokio::time::Instant::now();
    let mut client = h.client;
    // Thousands of NOOPs, never reading a reply.
    let writer = tokio::spawn(async move {
        let burst = b"NOOP\r\n".repeat(2000);
        let _ = client.write_all(&burst).await;
        client
    });
    h.task.await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_mins(1) && elapsed < Duration::from_mins(2),
        "{elapsed:?}"
    );
    drop(writer.await.unwrap());
    let _ = &mut h.spool;
}

/// RFC 2920 §3.2 / scanners: a multi-line reply goes out in one write.
#[tokio::test(start_paused = true)]
async fn multiline_reply_is_one_write() {
    let mut h = start(SessionLimits::default(), 64 * 1024);
    h.reply().await;
    h.send(b"EHLO client.example\r\n").await;
    let ehlo = h.reply().await;
    assert!(ehlo.lines().count() > 5, "{ehlo}");
    let writes = h.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 2, "greeting and EHLO reply: {writes:?}");
    assert_eq!(writes[1], ehlo.as_bytes());
    // A pipelined group gets its replies in one write too.
    h.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.com>\r\nNOOP\r\n")
        .await;
    h.reply().await;
    h.reply().await;
    h.reply().await;
    assert_eq!(h.writes.lock().unwrap().len(), 3);
}

/// The DATA deadline grows only with the octets received: a body trickled at
/// one byte every 10 s (far under `min_data_rate`) is cut off with 421 4.4.2
/// and nothing is queued.
#[tokio::test(start_paused = true)]
async fn slow_body_is_cut_off() {
    let mut h = start(SessionLimits::default(), 64 * 1024);
    h.reply().await;
    h.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        .await;
    for _ in 0..3 {
        h.reply().await;
    }
    assert!(h.reply().await.starts_with("354"));
    let started = tokio::time::Instant::now();
    let trickle = tokio::spawn(trickle(h.client, b'x', Duration::from_secs(10)));
    h.task.await.unwrap();
    let elapsed = started.elapsed();
    // 3 minutes of budget, 2 ms earned per byte: cut off a little after 3 minutes.
    assert!(
        elapsed >= Duration::from_mins(3) && elapsed < Duration::from_mins(4),
        "{elapsed:?}"
    );
    assert!(trickle.await.unwrap().starts_with("421 4.4.2"));
    assert!(h.spool.list().unwrap().is_empty());
}

/// A body that keeps up the minimum rate is not cut off, however long it takes.
#[tokio::test(start_paused = true)]
async fn body_at_the_minimum_rate_is_accepted() {
    let mut h = start(SessionLimits::default(), 64 * 1024);
    h.reply().await;
    h.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        .await;
    for _ in 0..4 {
        h.reply().await;
    }
    // 2000 octets every 2 s = 1000 B/s, twice the 500 B/s minimum, for 10 minutes.
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..300 {
        h.send(line.as_bytes()).await;
        h.send(line.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    h.send(b".\r\n").await;
    assert!(h.reply().await.starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(h.spool.list().unwrap().len(), 1);
}

/// The disconnect line counts commands the way Postfix does.
#[tokio::test(start_paused = true)]
async fn sender_routing_is_refused_for_untrusted_clients() {
    let mut h = start(SessionLimits::default(), 64 * 1024);
    h.reply().await;
    h.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n")
        .await;
    h.reply().await;
    h.reply().await;
    for rcpt in [
        "user%other.example",
        "other.example!user",
        "\"user@other.example\"",
    ] {
        h.send(format!("RCPT TO:<{rcpt}@example.com>\r\n").as_bytes())
            .await;
        let r = h.reply().await;
        assert!(
            r.starts_with("550 5.7.1 Sender-specified routing"),
            "{rcpt}: {r}"
        );
    }
    // A source route is ignored (RFC 5321 Appendix C): only the mailbox counts.
    h.send(b"RCPT TO:<@relay.example:user@example.com>\r\nDATA\r\nx\r\n.\r\n")
        .await;
    assert!(h.reply().await.starts_with("250 2.1.5"));
    assert!(h.reply().await.starts_with("354"));
    assert!(h.reply().await.starts_with("250 2.0.0"));
    let msgs = h.spool.list().unwrap();
    assert_eq!(msgs[0].recipients[0].address, "user@example.com");
}

/// `[spool] min_free` (Postfix `queue_minfree`): under the floor, MAIL is
/// refused 452 4.3.1 before any DATA; a SIZE= larger than the free space above
/// the floor too. Real statvfs of the test's file system.
#[tokio::test(start_paused = true)]
async fn low_disk_space_refuses_at_mail() {
    // A floor no disk reaches.
    let mut h = start_with(SessionLimits::default(), 64 * 1024, |s| {
        s.spool.min_free = u64::MAX / 2;
    });
    h.reply().await;
    h.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n")
        .await;
    h.reply().await;
    let r = h.reply().await;
    assert!(r.starts_with("452 4.3.1"), "{r}");
    // A floor of one octet, and a SIZE= no disk has room for (the listener
    // allows it).
    let limits = SessionLimits {
        max_message_size: u64::MAX,
        ..SessionLimits::default()
    };
    let mut h = start_with(limits, 64 * 1024, |s| s.spool.min_free = 1);
    h.reply().await;
    h.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=9000000000000000000\r\nMAIL FROM:<a@b.example> SIZE=1000\r\n")
        .await;
    h.reply().await;
    let r = h.reply().await;
    assert!(r.starts_with("452 4.3.1"), "{r}");
    assert!(h.reply().await.starts_with("250 2.1.0"));
}

//! The scripted fake milter shared by `fake.rs` and `fake_failures.rs`: a
//! task speaking the protocol with hand-built packets over an in-memory
//! pipe, recording every packet it receives.

#![allow(dead_code, clippy::unwrap_used)]

use postern_milter::{
    Actions, Envelope, MilterAddr, MilterError, MilterResult, MilterSpec, ProtocolFlags, Stage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// One packet: `(command byte, data)`.
pub type Packet = (u8, Vec<u8>);

pub fn pkt(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len() + 1)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.push(code);
    out.extend_from_slice(data);
    out
}

pub fn optneg(version: u32, actions: Actions, protocol: ProtocolFlags) -> Vec<u8> {
    let mut d = version.to_be_bytes().to_vec();
    d.extend_from_slice(&actions.0.to_be_bytes());
    d.extend_from_slice(&protocol.0.to_be_bytes());
    pkt(b'O', &d)
}

pub async fn read_packet(s: &mut DuplexStream) -> Option<Packet> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut p = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap()];
    s.read_exact(&mut p).await.ok()?;
    let code = p.remove(0);
    Some((code, p))
}

/// Runs a fake milter on `s`: for each packet received, `script` returns the
/// raw bytes to answer (empty: no answer). Returns every packet received.
pub async fn fake<F>(mut s: DuplexStream, mut script: F) -> Vec<Packet>
where
    F: FnMut(u8, &[u8]) -> Vec<u8> + Send,
{
    let mut log = Vec::new();
    while let Some((code, data)) = read_packet(&mut s).await {
        let answer = script(code, &data);
        log.push((code, data));
        if !answer.is_empty() && s.write_all(&answer).await.is_err() {
            break;
        }
    }
    log
}

/// A standard milter: negotiates `neg`, continues at every step, answers
/// end of message with `eom` (then nothing for QUIT).
pub fn standard(neg: Vec<u8>, eom: Vec<u8>) -> impl FnMut(u8, &[u8]) -> Vec<u8> + Send {
    move |code, _| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' | b'A' => Vec::new(),
        b'E' => eom.clone(),
        _ => pkt(b'c', b""),
    }
}

pub fn neg_all() -> Vec<u8> {
    optneg(6, Actions::ALL, ProtocolFlags(0))
}

pub fn spec() -> MilterSpec {
    MilterSpec::new("fake", MilterAddr::parse("inet:127.0.0.1:1").unwrap())
}

pub const RCPTS: &[&str] = &["a@example.org", "b@example.org"];

pub fn rcpts() -> Vec<String> {
    RCPTS.iter().map(|s| (*s).to_owned()).collect()
}

pub fn headers() -> Vec<(String, String)> {
    vec![
        ("From".to_owned(), " Alice <alice@example.com>".to_owned()),
        ("Subject".to_owned(), " a folded\r\n\tsubject".to_owned()),
    ]
}

/// Runs the client against `script` with a body of `body` bytes.
pub async fn converse<F>(
    spec: &MilterSpec,
    body: &[u8],
    script: F,
) -> (Result<MilterResult, MilterError>, Vec<Packet>)
where
    F: FnMut(u8, &[u8]) -> Vec<u8> + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let milter = tokio::spawn(fake(theirs, script));
    let rcpts = rcpts();
    let mail_args = vec!["SIZE=1234".to_owned()];
    let env = Envelope {
        hostname: "mx.example.org",
        daemon_name: "inbound",
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_port: 40000,
        client_name: Some("client.example.com"),
        helo: Some("client.example.com"),
        mail_from: "alice@example.com",
        mail_args: &mail_args,
        rcpts: &rcpts,
        queue_id: Some("Q123"),
        auth_user: Some("alice"),
        tls_version: Some("TLSv1.3"),
        cipher: Some("TLS_AES_256_GCM_SHA384"),
        ..Envelope::default()
    };
    let result = postern_milter::run_on_stream(spec, ours, &env, &headers(), body).await;
    let log = milter.await.unwrap();
    (result, log)
}

pub fn codes(log: &[Packet]) -> String {
    log.iter().map(|(c, _)| char::from(*c)).collect()
}

/// The NUL-separated strings of a packet's data.
pub fn strings(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

pub fn macros_of(log: &[Packet], stage: u8) -> Vec<String> {
    log.iter()
        .find(|(c, d)| *c == b'D' && d.first() == Some(&stage))
        .map(|(_, d)| strings(&d[1..]))
        .unwrap_or_default()
}

/// The command bytes of each stage, and the stage the client reports.
pub const STAGES: &[(u8, Stage)] = &[
    (b'C', Stage::Connect),
    (b'H', Stage::Helo),
    (b'M', Stage::Mail),
    (b'R', Stage::Rcpt),
    (b'T', Stage::Data),
    (b'L', Stage::Header),
    (b'N', Stage::EndOfHeaders),
    (b'B', Stage::Body),
    (b'E', Stage::EndOfMessage),
];

/// A milter continuing everywhere but at `at`, where it answers `answer`.
pub fn answer_at(at: u8, answer: Vec<u8>) -> impl FnMut(u8, &[u8]) -> Vec<u8> + Send {
    let neg = neg_all();
    move |code, _| match code {
        b'O' => neg.clone(),
        b'D' | b'Q' | b'A' => Vec::new(),
        c if c == at => answer.clone(),
        _ => pkt(b'c', b""),
    }
}

/// A fake milter on a real socket: negotiates, continues, adds a header.
pub async fn serve_one<S>(mut s: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut script = standard(
        neg_all(),
        [pkt(b'h', b"X-Milter\0seen\0"), pkt(b'c', b"")].concat(),
    );
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut p = vec![0u8; usize::try_from(u32::from_be_bytes(len)).unwrap()];
        s.read_exact(&mut p).await.unwrap();
        let answer = script(p[0], &p[1..]);
        s.write_all(&answer).await.unwrap();
    }
}

//! Shared harness: a real server on 127.0.0.1:0 with a test CA certificate,
//! three listeners (smtp, submission, submissions) and a temporary spool.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use postern_policy::RelaySettings;
use postern_smtpd::{
    AuthMode, ListenerKind, ListenerSettings, Server, ServerSettings, SessionLimits, TlsMode,
    Transcript, TranscriptFormat, TranscriptSettings, User, VrfyMode,
};
use postern_spool::{Spool, SpoolSettings};
use postern_testkit::{Dialogue, TestCa};
use postern_tls::{CertSettings, TlsSettings};

pub const HOST: &str = "mx.test.example";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub ca: Arc<TestCa>,
    pub spool: Spool,
    pub transcript_path: PathBuf,
    pub transcript: Transcript,
}

pub fn ca() -> Arc<TestCa> {
    static CA: OnceLock<Arc<TestCa>> = OnceLock::new();
    Arc::clone(CA.get_or_init(|| Arc::new(TestCa::new())))
}

fn password_hash() -> String {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| postern_smtpd::hash_password(PASSWORD).unwrap())
        .clone()
}

fn listener(name: &str, kind: ListenerKind, tls: TlsMode, auth: AuthMode) -> ListenerSettings {
    ListenerSettings {
        name: name.into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        kind,
        hostname: HOST.into(),
        tls,
        auth,
        limits: SessionLimits::default(),
        proxy_protocol: None,
    }
}

/// Default test settings; `certs` are written into `dir`.
pub fn settings(dir: &std::path::Path) -> ServerSettings {
    let ca = ca();
    let (cert_path, key_path) = ca.issue(&[HOST]).write(dir, "mx");
    ServerSettings {
        listeners: vec![
            listener(
                "smtp",
                ListenerKind::Smtp,
                TlsMode::Optional,
                AuthMode::Offered,
            ),
            listener(
                "submission",
                ListenerKind::Submission,
                TlsMode::Required,
                AuthMode::Required,
            ),
            listener(
                "submissions",
                ListenerKind::Submissions,
                TlsMode::Required,
                AuthMode::Required,
            ),
        ],
        tls: TlsSettings {
            certificates: vec![CertSettings {
                cert_path,
                key_path,
                hostnames: Vec::new(),
            }],
            ..TlsSettings::default()
        },
        spool: SpoolSettings::new(dir.join("spool")),
        relay: RelaySettings {
            accepted_domains: vec!["example.com".into()],
            relay_networks: Vec::new(),
        },
        users: vec![User {
            name: USER.into(),
            password_hash: password_hash(),
            senders: None,
        }],
        vrfy: VrfyMode::Ambiguous,
        max_connections: 100,
        max_connections_per_ip: 50,
        transcript: TranscriptSettings {
            path: Some(dir.join("transcript.log")),
            format: TranscriptFormat::Text,
        },
        allow_insecure_auth: false,
        authentication: postern_smtpd::AuthenticationSettings::default(),
        content: postern_smtpd::ContentSettings::default(),
        record_subjects: false,
        admission: postern_policy::admission::Admission::default(),
        recipients: Vec::new(),
    }
}

pub fn tls_config(settings: &TlsSettings) -> Arc<rustls::ServerConfig> {
    let loaded =
        postern_tls::certs::load(&settings.certificates, time::OffsetDateTime::now_utc()).unwrap();
    postern_tls::server::server_config(settings, &loaded.store).unwrap()
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(customize: impl FnOnce(&mut ServerSettings)) -> TestServer {
    start_with_services(customize, postern_smtpd::gateway::Services::default()).await
}

pub async fn start_with_services(
    customize: impl FnOnce(&mut ServerSettings),
    services: postern_smtpd::gateway::Services,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    customize(&mut s);
    let tls = tls_config(&s.tls);
    let (spool, _report) = Spool::open(&s.spool).unwrap();
    let transcript_path = s.transcript.path.clone().unwrap();
    let transcript = Transcript::open(&transcript_path, s.transcript.format).unwrap();
    let server = Server::start_with(
        s,
        Some(tls),
        spool.clone(),
        Some(transcript.clone()),
        None,
        services,
    )
    .await
    .unwrap();
    TestServer {
        server,
        dir,
        ca: ca(),
        spool,
        transcript_path,
        transcript,
    }
}

impl TestServer {
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.server.addr(name).unwrap()
    }

    /// Connects to `listener` and reads the greeting.
    pub async fn connect(&self, name: &str) -> Dialogue {
        let mut d = Dialogue::connect(self.addr(name)).await;
        d.expect(220).await;
        d
    }

    /// Connects, EHLOs, STARTTLS, EHLOs again.
    pub async fn connect_starttls(&self, name: &str) -> Dialogue {
        let mut d = self.connect(name).await;
        d.cmd("EHLO client.test", 250).await;
        d.cmd("STARTTLS", 220).await;
        d.upgrade(HOST, self.client_tls()).await.unwrap();
        d.cmd("EHLO client.test", 250).await;
        d
    }

    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        postern_testkit::client_config(
            &self.ca,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            &[],
        )
    }

    /// The transcript so far (every line recorded before the call is written).
    pub async fn transcript(&self) -> String {
        let t = self.transcript.clone();
        assert!(
            tokio::task::spawn_blocking(move || t.flush())
                .await
                .unwrap()
        );
        std::fs::read_to_string(&self.transcript_path).unwrap_or_default()
    }

    /// The transcript once it contains `needle` (a session's last lines are
    /// recorded after the client sees the connection close).
    pub async fn transcript_with(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.transcript().await;
            if log.contains(needle) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("transcript never contained {needle:?}");
    }

    /// Every queued message's bytes.
    pub fn messages(&self) -> Vec<(postern_spool::Envelope, Vec<u8>)> {
        use std::io::Read as _;
        self.spool
            .list()
            .unwrap()
            .into_iter()
            .map(|env| {
                let mut body = Vec::new();
                self.spool
                    .open_message(&env.queue_id)
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                (env, body)
            })
            .collect()
    }
}

/// Sends one complete plaintext transaction on an EHLO'd dialogue; returns the final reply.
/// `AUTH PLAIN` with the test user's credentials (RFC 4616).
pub fn auth_plain() -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    format!("AUTH PLAIN {token}")
}

pub async fn send_message(
    d: &mut Dialogue,
    from: &str,
    to: &str,
    body: &str,
) -> postern_testkit::SmtpReply {
    d.cmd(&format!("MAIL FROM:<{from}>"), 250).await;
    d.cmd(&format!("RCPT TO:<{to}>"), 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(body.as_bytes()).await;
    d.send_raw(b"\r\n.\r\n").await;
    d.reply().await.unwrap()
}

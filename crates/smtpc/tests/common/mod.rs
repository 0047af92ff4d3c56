//! Test harness: our own server (postern-smtpd) on 127.0.0.1:0 with a test-CA
//! certificate and three listeners (smtp: STARTTLS optional; submission:
//! STARTTLS + AUTH required; submissions: implicit TLS + AUTH), a temporary
//! spool, and client TLS configurations trusting the test CA.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use postern_policy::RelaySettings;
use postern_smtpc::{ClientSettings, ClientTls, Direction, Transcript};
use postern_smtpd::{
    AuthMode, ListenerKind, ListenerSettings, Server, ServerSettings, SessionLimits, TlsMode,
    TranscriptFormat, TranscriptSettings, User, VrfyMode,
};
use postern_spool::{Spool, SpoolSettings};
use postern_testkit::TestCa;
use postern_tls::client::{ClientTlsSettings, Verify};
use postern_tls::{CertSettings, TlsSettings};

pub const HOST: &str = "mx.test.example";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";

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

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub spool: Spool,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(customize: impl FnOnce(&mut ServerSettings)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = ca().issue(&[HOST]).write(dir.path(), "mx");
    let mut settings = ServerSettings {
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
        spool: SpoolSettings::new(dir.path().join("spool")),
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
            path: None,
            format: TranscriptFormat::Text,
        },
        allow_insecure_auth: false,
        authentication: postern_smtpd::AuthenticationSettings::default(),
        content: postern_smtpd::ContentSettings::default(),
        record_subjects: false,
        admission: postern_policy::admission::Admission::default(),
        recipients: Vec::new(),
    };
    customize(&mut settings);
    let loaded =
        postern_tls::certs::load(&settings.tls.certificates, time::OffsetDateTime::now_utc())
            .unwrap();
    let tls = postern_tls::server::server_config(&settings.tls, &loaded.store).unwrap();
    let (spool, _report) = Spool::open(&settings.spool).unwrap();
    let server = Server::start(settings, Some(tls), spool.clone(), None)
        .await
        .unwrap();
    TestServer { server, dir, spool }
}

impl TestServer {
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.server.addr(name).unwrap()
    }

    /// Every queued message: (recipients, bytes).
    pub fn messages(&self) -> Vec<(Vec<String>, Vec<u8>)> {
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
                (
                    env.recipients.iter().map(|r| r.address.clone()).collect(),
                    body,
                )
            })
            .collect()
    }
}

/// Client settings with short timeouts.
pub fn settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: std::time::Duration::from_secs(5),
        greeting_timeout: std::time::Duration::from_secs(10),
        command_timeout: std::time::Duration::from_secs(10),
        data_timeout: std::time::Duration::from_secs(20),
        ..ClientSettings::new("client.test.example")
    }
}

/// A client TLS configuration trusting only the test CA.
pub fn client_tls(verify: Verify) -> ClientTls {
    client_tls_with(&ClientTlsSettings::default(), verify)
}

pub fn client_tls_with(settings: &ClientTlsSettings, verify: Verify) -> ClientTls {
    ClientTls::new(settings, verify, Arc::new(ca().root_store())).unwrap()
}

/// A transcript hook that collects `(direction, line)` pairs.
/// The lines a [`recorder`] collected.
pub type Lines = Arc<Mutex<Vec<(Direction, String)>>>;

pub fn recorder() -> (Transcript, Lines) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let hook: Transcript = Box::new(move |d, line| {
        sink.lock().unwrap().push((d, line.to_owned()));
    });
    (hook, lines)
}

pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!("From: a@client.test.example\r\nTo: b@example.com\r\nSubject: {subject}\r\n\r\n{body}")
        .into_bytes()
}

/// Finds `needle` in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

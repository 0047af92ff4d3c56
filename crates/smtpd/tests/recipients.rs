//! Recipient validation at RCPT against a real server: a recipients table
//! (re-read on reload), an SMTP call-ahead to a `FakeMx` that knows some
//! users (answers cached: the fake counts connections), a silent internal
//! host (451, or accept with `on_error = accept`), and Maildir folders.
//! Postmaster, relay recipients and domains without an entry are never
//! validated; authenticated clients are.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_smtpd::{
    CallAheadSettings, CallAheadTls, MaildirLookup, OnError, RecipientRule, RecipientSource,
    ServerSettings,
};
use postern_testkit::{Dialogue, FakeMx, MxTls};

use common::{TestServer, start_with};

const UNKNOWN: &str = "5.1.1 <nobody@example.com>: Recipient address rejected: User unknown";

fn rule(domains: &[&str], source: RecipientSource, i: usize) -> RecipientRule {
    RecipientRule {
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        source,
        origin: format!("recipients[{i}]"),
    }
}

fn call_ahead(addr: std::net::SocketAddr, on_error: OnError) -> RecipientSource {
    let mut c = CallAheadSettings::new(addr.ip().to_string(), addr.port(), "mx.test.example");
    c.timeout = Duration::from_millis(500);
    c.on_error = on_error;
    RecipientSource::CallAhead(c)
}

/// A host that accepts TCP connections and never says a word.
async fn silent_host() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

struct Setup {
    t: TestServer,
    mx: FakeMx,
    table: PathBuf,
    maildirs: PathBuf,
    /// The settings the server started with.
    settings: ServerSettings,
    _files: tempfile::TempDir,
}

async fn setup() -> Setup {
    let files = tempfile::tempdir().unwrap();
    let table = files.path().join("recipients.txt");
    std::fs::write(&table, "# users\nalice@example.com\nsales-*@example.com\n").unwrap();
    let maildirs = files.path().join("vmail");
    std::fs::create_dir_all(maildirs.join("local.example/alice")).unwrap();
    let mx = FakeMx::start(MxTls::None).await;
    mx.known_recipients(&["alice@corp.example"]);
    let silent = silent_host().await;
    let rules = vec![
        rule(&["example.com"], RecipientSource::Table(table.clone()), 0),
        rule(
            &["corp.example"],
            call_ahead(mx.addr(), OnError::TempFail),
            1,
        ),
        rule(&["slow.example"], call_ahead(silent, OnError::TempFail), 2),
        rule(&["soft.example"], call_ahead(silent, OnError::Accept), 3),
        rule(
            &["local.example"],
            RecipientSource::Maildir(maildir_lookup(&maildirs)),
            4,
        ),
    ];
    let started = std::sync::Arc::new(std::sync::Mutex::new(None));
    let keep = std::sync::Arc::clone(&started);
    let t = start_with(move |s: &mut ServerSettings| {
        s.relay.accepted_domains.extend(
            [
                "corp.example",
                "slow.example",
                "soft.example",
                "local.example",
                "open.example",
            ]
            .map(str::to_owned),
        );
        s.recipients = rules;
        *keep.lock().unwrap() = Some(s.clone());
    })
    .await;
    let settings = started.lock().unwrap().take().unwrap();
    Setup {
        t,
        mx,
        table,
        maildirs,
        settings,
        _files: files,
    }
}

fn maildir_lookup(base: &Path) -> MaildirLookup {
    let base = base.to_owned();
    MaildirLookup::new(
        format!("{}/{{domain}}/{{user}}", base.display()),
        move |a: &str| {
            let (user, domain) = a.rsplit_once('@')?;
            Some(base.join(domain).join(user.to_ascii_lowercase()))
        },
    )
}

async fn mail(t: &TestServer) -> Dialogue {
    let mut d = t.connect("smtp").await;
    d.cmd("EHLO client.test", 250).await;
    d.cmd("MAIL FROM:<sender@sender.example>", 250).await;
    d
}

#[tokio::test]
async fn table_refuses_unknown_users_at_rcpt() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    let r = d.cmd("RCPT TO:<nobody@example.com>", 550).await;
    assert_eq!(r.lines, [UNKNOWN]);
    d.cmd("RCPT TO:<alice@example.com>", 250).await;
    d.cmd("RCPT TO:<Alice+news@EXAMPLE.com>", 250).await;
    d.cmd("RCPT TO:<sales-emea@example.com>", 250).await;
    // RFC 5321 §4.5.1: postmaster, with or without a domain, always.
    d.cmd("RCPT TO:<postmaster@example.com>", 250).await;
    d.cmd("RCPT TO:<Postmaster>", 250).await;
    // A domain without an entry: any local part, as before.
    d.cmd("RCPT TO:<whoever@open.example>", 250).await;
    // Not ours: the relay rule answers, validation is not asked.
    d.cmd("RCPT TO:<nobody@other.example>", 554).await;
    d.cmd("QUIT", 221).await;
    let log =
        s.t.transcript_with("rcpt refused: unknown recipient <nobody@example.com> (table ")
            .await;
    assert!(log.contains("recipients.txt)"), "{log}");
    assert!(
        !log.contains("unknown recipient <whoever@open.example>"),
        "{log}"
    );
}

#[tokio::test]
async fn authenticated_clients_are_validated_too() {
    let s = setup().await;
    let mut d = s.t.connect_starttls("smtp").await;
    d.cmd(&common::auth_plain(), 235).await;
    d.cmd("MAIL FROM:<alice@example.com>", 250).await;
    let r = d.cmd("RCPT TO:<nobody@example.com>", 550).await;
    assert_eq!(r.lines, [UNKNOWN]);
    // Relaying for an authenticated client is not validated.
    d.cmd("RCPT TO:<someone@other.example>", 250).await;
}

#[tokio::test]
async fn reload_reads_the_table_again() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<bob@example.com>", 550).await;
    std::fs::write(&s.table, "alice@example.com\nbob@example.com\n").unwrap();
    // What SIGHUP does: the same settings again; the table is re-read.
    let mut settings = common::settings(s.t.dir.path());
    settings.relay.accepted_domains.push("example.com".into());
    settings.recipients = vec![rule(
        &["example.com"],
        RecipientSource::Table(s.table.clone()),
        0,
    )];
    s.t.server
        .reload(settings.clone(), Some(common::tls_config(&settings.tls)))
        .unwrap();
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<bob@example.com>", 250).await;
    d.cmd("RCPT TO:<carol@example.com>", 550).await;
}

#[tokio::test]
async fn call_ahead_asks_the_internal_host_and_caches_its_answers() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<alice@corp.example>", 250).await;
    let r = d.cmd("RCPT TO:<bob@corp.example>", 550).await;
    // Our wording, not the internal host's.
    assert_eq!(
        r.lines,
        ["5.1.1 <bob@corp.example>: Recipient address rejected: User unknown"]
    );
    assert_eq!(s.mx.connections(), 2);
    let cmds = s.mx.commands();
    assert!(cmds.iter().any(|c| c == "MAIL FROM:<>"), "{cmds:?}");
    assert!(
        cmds.iter().any(|c| c == "RCPT TO:<bob@corp.example>"),
        "{cmds:?}"
    );
    assert!(cmds.iter().any(|c| c == "RSET"), "{cmds:?}");
    assert!(!cmds.iter().any(|c| c == "DATA"), "{cmds:?}");
    assert!(s.mx.received().is_empty());

    // A second session: both answers come from the cache.
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<alice@corp.example>", 250).await;
    d.cmd("RCPT TO:<bob@corp.example>", 550).await;
    d.cmd("RCPT TO:<bob@CORP.example>", 550).await;
    assert_eq!(s.mx.connections(), 2, "cache hits make no connection");
    s.t.transcript_with("unknown recipient <bob@corp.example> (call-ahead 127.0.0.1:")
        .await;
}

#[tokio::test]
async fn a_reload_keeps_call_ahead_answers() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<bob@corp.example>", 550).await;
    assert_eq!(s.mx.connections(), 1);
    s.t.server
        .reload(
            s.settings.clone(),
            Some(common::tls_config(&s.settings.tls)),
        )
        .unwrap();
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<bob@corp.example>", 550).await;
    assert_eq!(
        s.mx.connections(),
        1,
        "answered from the cache kept over the reload"
    );
}

#[tokio::test]
async fn call_ahead_internal_4xx_defers_and_is_not_cached() {
    let s = setup().await;
    s.mx.rcpt_replies("carol@corp.example", &["450 4.2.1 mailbox busy"]);
    let mut d = mail(&s.t).await;
    let r = d.cmd("RCPT TO:<carol@corp.example>", 451).await;
    assert!(
        r.lines[0].starts_with("4.4.3 <carol@corp.example>"),
        "{r:?}"
    );
    // Not cached: asked again, and now the host knows nobody by that name.
    d.cmd("RCPT TO:<carol@corp.example>", 550).await;
    assert_eq!(s.mx.connections(), 2);
}

#[tokio::test]
async fn a_silent_internal_host_defers_or_accepts_per_on_error() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    let r = d.cmd("RCPT TO:<anyone@slow.example>", 451).await;
    assert_eq!(
        r.lines,
        [
            "4.4.3 <anyone@slow.example>: Recipient address rejected: cannot verify the recipient \
          now, try again later"
        ]
    );
    d.cmd("RCPT TO:<anyone@soft.example>", 250).await;
    let log =
        s.t.transcript_with("rcpt accepted unverified <anyone@soft.example>")
            .await;
    assert!(
        log.contains("rcpt deferred: cannot verify recipient <anyone@slow.example>"),
        "{log}"
    );
    // The silence is reported as a timeout: smtpc's own ("timed out") or the
    // call-ahead's deadline ("no answer within"), whichever fires first.
    assert!(
        log.contains("timed out") || log.contains("no answer within"),
        "{log}"
    );
}

#[tokio::test]
async fn maildir_folder_must_exist() {
    let s = setup().await;
    let mut d = mail(&s.t).await;
    d.cmd("RCPT TO:<alice@local.example>", 250).await;
    d.cmd("RCPT TO:<bob@local.example>", 550).await;
    std::fs::create_dir_all(s.maildirs.join("local.example/bob")).unwrap();
    d.cmd("RCPT TO:<bob@local.example>", 250).await;
}

/// STARTTLS to the internal host: used when offered, and with `Required` a
/// host that does not offer it gets no question (451).
#[tokio::test]
async fn call_ahead_uses_starttls() {
    let issued = common::ca().issue(&["internal.test"]);
    let tls_mx = FakeMx::start(MxTls::StartTls(postern_testkit::mx_tls_config(&issued))).await;
    tls_mx.known_recipients(&["alice@tls.example"]);
    let plain_mx = FakeMx::start(MxTls::None).await;
    let required = |addr: std::net::SocketAddr| {
        let RecipientSource::CallAhead(mut c) = call_ahead(addr, OnError::TempFail) else {
            unreachable!()
        };
        c.tls = CallAheadTls::Required;
        RecipientSource::CallAhead(c)
    };
    let rules = vec![
        rule(&["tls.example"], required(tls_mx.addr()), 0),
        rule(&["plain.example"], required(plain_mx.addr()), 1),
    ];
    let t = start_with(move |s: &mut ServerSettings| {
        s.relay
            .accepted_domains
            .extend(["tls.example", "plain.example"].map(str::to_owned));
        s.recipients = rules;
    })
    .await;
    let mut d = mail(&t).await;
    d.cmd("RCPT TO:<alice@tls.example>", 250).await;
    d.cmd("RCPT TO:<bob@tls.example>", 550).await;
    assert_eq!(tls_mx.handshakes(), 2);
    let cmds = tls_mx.commands();
    assert!(cmds.iter().any(|c| c == "STARTTLS"), "{cmds:?}");
    d.cmd("RCPT TO:<alice@plain.example>", 451).await;
    assert!(
        !plain_mx.commands().iter().any(|c| c.starts_with("RCPT")),
        "no question without TLS"
    );
    t.transcript_with("does not offer STARTTLS").await;
}

//! The pickup folder against a real spool and the real scheduler (scripted
//! transport, no sockets): a file is queued with the right envelope and
//! removed only once the commit is durable; a file that is not a message goes
//! to the badmail folder with its reason; a file stays put while the spool
//! cannot take it (FaultFs: poisoned by an fsync failure, or full); the
//! `received` and `queued` (origin `pickup`) events are logged.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Deferring, settings};
use postern_delivery::{DeliveryHandle, TokioClock, start};
use postern_pickup::{Pickup, PickupSettings};
use postern_spool::{FaultFs, QueueId, Spool, SpoolOp, SpoolSettings, StdFs};
use postern_track::{MailEvent, MailLog, MemoryLog};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    spool: Spool,
    delivery: DeliveryHandle,
    mem: MemoryLog,
    log: MailLog,
}

impl Setup {
    fn pickup_dir(&self) -> PathBuf {
        self.root.join("pickup")
    }

    fn badmail_dir(&self) -> PathBuf {
        self.root.join("badmail")
    }

    fn pickup_settings(&self) -> PickupSettings {
        let mut s = PickupSettings::new(&self.root);
        s.hostname = "mx.postern.test".into();
        s.interval = Duration::from_millis(20);
        s
    }

    fn pickup(&self, s: PickupSettings) -> Pickup {
        let notifier = self.delivery.notifier();
        Pickup::new(
            s,
            self.spool.clone(),
            Arc::new(move |id| notifier.notify_pickup(id)),
            self.log.clone(),
        )
        .unwrap()
    }

    /// Writes `text` the documented way: elsewhere (a `.tmp` name the watcher
    /// skips), then renamed into the folder.
    fn drop_file(&self, name: &str, text: &[u8]) -> PathBuf {
        std::fs::create_dir_all(self.pickup_dir()).unwrap();
        let tmp = self.pickup_dir().join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        let dest = self.pickup_dir().join(name);
        std::fs::rename(&tmp, &dest).unwrap();
        dest
    }

    fn body(&self, id: &QueueId) -> String {
        let mut b = Vec::new();
        self.spool
            .open_message(id)
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        String::from_utf8(b).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A spool (through `fs`) and a scheduler whose transport defers everything,
/// so messages stay queued. Returns once the scheduler's startup scan is
/// done (so a new message is `queued` with origin `pickup`, not `recovery`).
async fn setup_with(fs: Option<FaultFs<StdFs>>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ss = SpoolSettings::new(root.join("spool"));
    let spool = match fs {
        Some(fs) => Spool::open_with_fs(&ss, Arc::new(fs)).unwrap().0,
        None => Spool::open(&ss).unwrap().0,
    };
    let transport = Arc::new(Deferring);
    let (log, mem) = MailLog::memory();
    let delivery = start(
        settings(&root),
        spool.clone(),
        transport,
        log.clone(),
        Arc::new(TokioClock::new()),
    );
    delivery.snapshot().await.unwrap();
    Setup {
        _dir: dir,
        root,
        spool,
        delivery,
        mem,
        log,
    }
}

/// Generous: the machine may be loaded; only a hang fails.
const PATIENCE: Duration = Duration::from_mins(1);

async fn wait_for_event(mem: &MemoryLog, id: &QueueId, name: &str) -> Vec<MailEvent> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if mem.names(id).contains(&name) {
            return mem.for_queue_id(id);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {name} event for {id}: {:?}", mem.names(id));
}

const IIS: &[u8] = b"X-Sender: app@example.com\nX-Receiver: alice@example.net\nx-receiver: <bob@example.org>\n\
From: Billing <billing@example.com>\nTo: Someone Else <carol@example.com>\nBcc: secret@example.com\n\
Subject: Invoice 42\n\nLine one\nLine two\n";

/// IIS format: the envelope comes from X-Sender/X-Receiver, which are not
/// stored; Bcc is removed (RFC 5322 §3.6.3); bare LF becomes CRLF; Date and
/// Message-ID are added (RFC 5322 §3.6); our Received header comes first.
/// The file is gone once `scan` reports the message queued, and the spool
/// holds it durably with the right envelope; the scheduler logs `queued` with
/// origin `pickup` after our `received`.
#[tokio::test]
async fn a_file_is_queued_with_its_envelope_and_then_removed() {
    let s = setup_with(None).await;
    let mut p = s.pickup(s.pickup_settings());
    let file = s.drop_file("invoice.eml", IIS);
    let report = p.scan();
    assert_eq!(report.queued.len(), 1, "{report:?}");
    assert!(report.badmail.is_empty() && report.left == 0);
    assert!(!file.exists(), "removed after the commit");
    let id = report.queued[0];

    let env = s.spool.envelope(&id).unwrap();
    assert_eq!(env.reverse_path, "app@example.com");
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["alice@example.net", "bob@example.org"]);
    assert_eq!(env.receipt.listener, "pickup");
    assert_eq!(env.receipt.peer, "");
    assert!(env.receipt.tls.is_none());
    assert_eq!(env.params.body, None, "ASCII only: no BODY=8BITMIME");

    let body = s.body(&id);
    assert!(
        body.starts_with(&format!(
            "Received: from pickup\r\n\tby mx.postern.test (Postern) with local-pickup\r\n\tid {id}; "
        )),
        "{body}"
    );
    assert!(!body.to_ascii_lowercase().contains("x-sender"), "{body}");
    assert!(!body.to_ascii_lowercase().contains("x-receiver"), "{body}");
    assert!(!body.contains("Bcc") && !body.contains("secret@"), "{body}");
    assert!(body.contains("\r\nDate: "), "{body}");
    assert!(
        body.contains(&format!("\r\nMessage-ID: <{id}@mx.postern.test>\r\n")),
        "{body}"
    );
    assert!(body.contains("\r\nSubject: Invoice 42\r\n"), "{body}");
    assert!(body.ends_with("\r\n\r\nLine one\r\nLine two\r\n"), "{body}");
    assert!(!body.replace("\r\n", "").contains('\n'), "CRLF only");
    assert_eq!(env.message_size, body.len() as u64);

    let events = wait_for_event(&s.mem, &id, "queued").await;
    assert_eq!(events[0].name(), "received");
    let MailEvent::Received(r) = &events[0] else {
        unreachable!()
    };
    assert_eq!(r.listener, "pickup");
    assert_eq!(r.sender, "app@example.com");
    assert_eq!(r.rcpts, ["alice@example.net", "bob@example.org"]);
    assert_eq!(r.size, env.message_size);
    let queued = events
        .iter()
        .find_map(|e| match e {
            MailEvent::Queued(q) => Some(q.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(queued.origin, "pickup");
    assert_eq!(queued.rcpt_count, 2);
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// Without envelope lines the header gives the envelope; files are taken in
/// name order; hidden and `.tmp` names are left alone (a writer's work in
/// progress); a large body is streamed with its line ends fixed.
#[tokio::test]
async fn header_envelope_name_order_and_skipped_names() {
    let s = setup_with(None).await;
    let mut p = s.pickup(s.pickup_settings());
    let big_line = "x".repeat(70);
    let mut big = String::from("From: a@example.com\nTo: carol@example.com\nSubject: big\n\n");
    for _ in 0..20_000 {
        big.push_str(&big_line);
        big.push('\n');
    }
    s.drop_file("b.eml", big.as_bytes());
    s.drop_file(
        "a.eml",
        "From: Ädmin <a@example.com>\r\nTo: alice@example.net\r\nCc: bob@example.org\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <own@example.com>\r\n\r\nGrüße\r\n"
            .as_bytes(),
    );
    std::fs::write(s.pickup_dir().join(".hidden"), b"To: x@example.com\n\n").unwrap();
    std::fs::write(s.pickup_dir().join("partial.tmp"), b"To: x@example.com\n\n").unwrap();
    let report = p.scan();
    assert_eq!(report.queued.len(), 2, "{report:?}");
    let first = s.spool.envelope(&report.queued[0]).unwrap();
    let second = s.spool.envelope(&report.queued[1]).unwrap();
    assert_eq!(first.recipients.len(), 2, "a.eml first");
    assert_eq!(first.reverse_path, "a@example.com");
    assert_eq!(first.params.body.as_deref(), Some("8BITMIME"));
    let a_body = s.body(&report.queued[0]);
    assert!(a_body.contains("Message-ID: <own@example.com>\r\n"));
    assert_eq!(a_body.matches("Message-ID:").count(), 1, "{a_body}");
    assert_eq!(a_body.matches("Date:").count(), 1, "{a_body}");

    assert_eq!(second.recipients[0].address, "carol@example.com");
    let b_body = s.body(&report.queued[1]);
    assert_eq!(b_body.matches(&format!("{big_line}\r\n")).count(), 20_000);
    assert!(!b_body.replace("\r\n", "").contains('\n'));
    assert_eq!(
        Setup::names(&s.pickup_dir()),
        [".hidden", "partial.tmp"],
        "skipped names stay"
    );
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// A file that is not a message is moved to badmail/ under its own name (a
/// second one with the same name gets `.1`) with `<name>.reason.txt` saying
/// why; nothing reaches the spool and nothing is lost.
#[tokio::test]
async fn malformed_files_go_to_badmail_with_a_reason() {
    let s = setup_with(None).await;
    let mut settings = s.pickup_settings();
    settings.max_message_size = 1000;
    let mut p = s.pickup(settings);
    let no_rcpt = b"From: a@example.com\nSubject: nobody\n\nbody\n";
    s.drop_file("m.eml", no_rcpt);
    let report = p.scan();
    assert_eq!(report.badmail.len(), 1, "{report:?}");
    s.drop_file("m.eml", b"X-Sender: a@example.com\nX-Receiver: bob@\n\nx\n");
    s.drop_file("big.eml", &[b'a'; 1001]);
    s.drop_file("empty.eml", b"");
    std::os::unix::fs::symlink("/etc/hostname", s.pickup_dir().join("link.eml")).unwrap();
    let report = p.scan();
    assert_eq!(report.badmail.len(), 4, "{report:?}");
    assert!(report.queued.is_empty());
    assert!(Setup::names(&s.pickup_dir()).is_empty());
    assert!(s.spool.list().unwrap().is_empty());

    let bad = s.badmail_dir();
    assert_eq!(
        Setup::names(&bad),
        [
            "big.eml",
            "big.eml.reason.txt",
            "empty.eml",
            "empty.eml.reason.txt",
            "link.eml",
            "link.eml.reason.txt",
            "m.eml",
            "m.eml.1",
            "m.eml.1.reason.txt",
            "m.eml.reason.txt",
        ]
    );
    assert_eq!(std::fs::read(bad.join("m.eml")).unwrap(), no_rcpt);
    let reason = |n: &str| std::fs::read_to_string(bad.join(n)).unwrap();
    assert!(
        reason("m.eml.reason.txt")
            .contains("reason: no recipients: no X-Receiver line and no To/Cc/Bcc header\n"),
        "{}",
        reason("m.eml.reason.txt")
    );
    assert!(reason("m.eml.1.reason.txt").contains(
        "reason: bad address in the X-Receiver line (line 2): \"bob@\" (bad address syntax)"
    ));
    assert!(
        reason("big.eml.reason.txt").contains("too big: 1001 octets; the limit is 1000 octets")
    );
    assert!(reason("empty.eml.reason.txt").contains("reason: empty file"));
    assert!(reason("link.eml.reason.txt").contains("a symbolic link"));
    // The link itself moved; what it pointed to is untouched.
    assert!(
        std::fs::symlink_metadata(bad.join("link.eml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// Tenet 1: while the spool cannot take the message the file stays where it
/// is. An fsync failure poisons the spool (the commit is not acknowledged):
/// the file is not removed, not moved to badmail, and later scans leave it
/// alone without retrying in a loop.
#[tokio::test]
async fn a_poisoned_spool_leaves_the_file_in_place() {
    let fs = FaultFs::new(StdFs);
    let s = setup_with(Some(fs.clone())).await;
    let mut p = s.pickup(s.pickup_settings());
    let file = s.drop_file("keep.eml", IIS);
    fs.fail_from(SpoolOp::SyncFile, 1, libc::EIO);
    let report = p.scan();
    assert!(
        report.queued.is_empty() && report.badmail.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.left, 1);
    assert!(s.spool.is_poisoned());
    assert_eq!(std::fs::read(&file).unwrap(), IIS, "the file is intact");
    assert!(!s.badmail_dir().exists());
    let creates = fs.count(SpoolOp::Create);
    let report = p.scan();
    assert_eq!(report.left, 0, "stalled: not even looked at");
    assert_eq!(fs.count(SpoolOp::Create), creates, "no retry in a loop");
    assert!(file.exists());
    assert!(s.spool.list().unwrap().is_empty());
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// A full disk (ENOSPC, which does not poison) leaves the file too; once
/// `spool_retry` has passed, the next scan queues it.
#[tokio::test]
async fn a_full_spool_is_retried_later() {
    let fs = FaultFs::new(StdFs);
    let s = setup_with(Some(fs.clone())).await;
    let mut settings = s.pickup_settings();
    settings.spool_retry = Duration::from_millis(200);
    let mut p = s.pickup(settings);
    let file = s.drop_file("later.eml", IIS);
    fs.fail_nth(SpoolOp::Create, 1, libc::ENOSPC);
    let report = p.scan();
    assert_eq!(report.left, 1, "{report:?}");
    assert!(report.queued.is_empty() && report.badmail.is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), IIS, "the file is intact");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let report = p.scan();
    assert_eq!(report.queued.len(), 1, "{report:?}");
    assert!(!file.exists());
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// A file with a second hard link elsewhere is not read (a link could expose
/// a file its writer could not read); it is left in place, not lost.
#[tokio::test]
async fn a_hard_linked_file_is_left_alone() {
    let s = setup_with(None).await;
    let mut p = s.pickup(s.pickup_settings());
    let file = s.drop_file("linked.eml", IIS);
    std::fs::hard_link(&file, s.root.join("elsewhere")).unwrap();
    let report = p.scan();
    assert_eq!(report.left, 1, "{report:?}");
    assert!(file.exists());
    assert!(s.spool.list().unwrap().is_empty());
    assert!(p.scan().left == 0, "held: not looked at again at once");
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// The running watcher: picks up a file dropped after it started, and stops
/// on shutdown.
#[tokio::test]
async fn the_watcher_runs_until_shutdown() {
    let s = setup_with(None).await;
    let handle = s.pickup(s.pickup_settings()).start();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let file = s.drop_file("late.eml", IIS);
    let deadline = std::time::Instant::now() + PATIENCE;
    while file.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!file.exists(), "picked up");
    assert_eq!(s.spool.list().unwrap().len(), 1);
    handle.shutdown(Duration::from_secs(5)).await;
    let after = s.drop_file("after.eml", IIS);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(after.exists(), "no scans after shutdown");
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// `SIGHUP`: the running watcher moves to the new folder (created owner-only)
/// and leaves the old one alone; a folder that cannot be created is an error
/// and the watcher keeps the old settings.
#[tokio::test]
async fn a_reload_moves_the_watcher_to_the_new_folder() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup_with(None).await;
    let handle = s.pickup(s.pickup_settings()).start();
    let mut moved = s.pickup_settings();
    moved.dir = s.root.join("pickup2");
    moved.interval = Duration::from_millis(10);
    handle.reload(moved.clone()).unwrap();
    let mode = std::fs::metadata(&moved.dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "created owner-only");

    std::fs::write(moved.dir.join("new.eml"), IIS).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while moved.dir.join("new.eml").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !moved.dir.join("new.eml").exists(),
        "picked up from the new folder"
    );
    assert_eq!(s.spool.list().unwrap().len(), 1);
    let old = s.drop_file("old.eml", IIS);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(old.exists(), "the old folder is no longer watched");

    // A folder that cannot be created: refused, the watcher stays where it is.
    let blocker = s.root.join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let mut bad = moved.clone();
    bad.dir = blocker.join("pickup");
    assert!(handle.reload(bad).is_err());
    std::fs::write(moved.dir.join("again.eml"), IIS).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while moved.dir.join("again.eml").exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !moved.dir.join("again.eml").exists(),
        "still watching pickup2"
    );
    handle.shutdown(Duration::from_secs(5)).await;
    s.delivery.shutdown(Duration::from_secs(5)).await;
}

/// `[[dkim]]` keys sign picked-up mail (our users' mail) when
/// `dkim_sign` includes `pickup`: the signature goes into the envelope's
/// added header fields, first in the delivered message, over the message as
/// stored (From: app@example.com → d=example.com); without `pickup` in the
/// scope nothing is signed.
#[tokio::test]
async fn picked_up_mail_is_dkim_signed_when_the_scope_says_so() {
    use postern_auth::signing::{DkimSigning, SignFor, SigningSettings, SigningTable};
    let s = setup_with(None).await;
    let (_, pem) = postern_auth::generate(postern_auth::Algorithm::Ed25519).unwrap();
    let key = s.root.join("example.com.pem");
    postern_auth::write_key(&key, &pem).unwrap();
    let settings = |sign_for| SigningSettings {
        sign_for,
        keys: vec![DkimSigning {
            domain: "example.com".into(),
            selector: "pick".into(),
            key: key.clone(),
            sign: true,
            options: postern_auth::SignOptions::default(),
        }],
    };
    let table = SigningTable::load(&settings(vec![SignFor::Pickup])).unwrap();
    let shared = Arc::new(std::sync::RwLock::new(table));
    let mut p = s
        .pickup(s.pickup_settings())
        .with_signing(Arc::clone(&shared));
    s.drop_file("signed.eml", IIS);
    let id = p.scan().queued[0];
    let env = s.spool.envelope(&id).unwrap();
    assert!(
        env.added_headers.starts_with("DKIM-Signature:"),
        "{}",
        env.added_headers
    );
    assert!(env.added_headers.contains("d=example.com"));
    assert!(env.added_headers.contains("s=pick"));
    assert!(s.body(&id).starts_with("DKIM-Signature:"));

    // Out of scope (SIGHUP replaced the table): unsigned.
    *shared.write().unwrap() = SigningTable::load(&settings(vec![SignFor::Authenticated])).unwrap();
    s.drop_file("unsigned.eml", IIS);
    let id = p.scan().queued[0];
    assert_eq!(s.spool.envelope(&id).unwrap().added_headers, "");
}

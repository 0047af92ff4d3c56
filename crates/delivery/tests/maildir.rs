//! Local delivery into Maildir folders through the scheduler and the SMTP
//! transport (which hands Maildir routes to `postern_delivery::maildir`): the
//! file in `new/` with `Return-Path:` and `Delivered-To:` (RFC 5321 §4.4), a
//! missing Maildir bounced `5.1.1` with a DSN to the sender's domain (a fake
//! MX on 127.0.0.1 receives it), `create = true` making owner-only folders,
//! local parts that would leave the Maildir tree bounced `5.1.3` without
//! touching the disk, and broken or unwritable Maildirs deferred (tenet 1)
//! without leaving a file in `tmp/`. Everything lives in a temporary folder.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use postern_delivery::{
    DeliveryHandle, DeliverySettings, DomainPattern, MaildirSettings, MaildirTemplate,
    RouteSettings, RouteTarget, SmtpTransport, SystemClock, start,
};
use postern_dns::{DnsSettings, Resolver};
use postern_spool::{MailParams, QueueId, Spool};
use postern_testkit::{FakeDns, FakeMx, MxTls};
use postern_track::{Attempt, MailEvent, MailLog, MemoryLog, RcptOutcome};

const LOCAL: &str = "example.org";

struct World {
    dir: tempfile::TempDir,
    spool: Spool,
    dns: FakeDns,
    /// The sender's MX (example.com): DSNs arrive here.
    mx: FakeMx,
    settings: DeliverySettings,
}

impl World {
    async fn new(create: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let spool = open_spool(dir.path());
        let dns = FakeDns::start().await;
        dns.add_mx("example.com", 10, "mx.example.com");
        dns.add_a("mx.example.com", [127, 0, 0, 1]);
        let mx = FakeMx::start(MxTls::None).await;
        let mut settings = settings(dir.path());
        settings.smtp_port = mx.port();
        settings.retry_schedule = vec![Duration::from_millis(300)];
        settings.connect_timeout = Duration::from_secs(5);
        settings.command_timeout = Duration::from_secs(10);
        let template = format!("{}/vmail/{{domain}}/{{user}}", dir.path().display());
        settings.routes = vec![RouteSettings {
            domains: vec![DomainPattern::parse(LOCAL).unwrap()],
            target: RouteTarget::Maildir(MaildirSettings {
                template: MaildirTemplate::parse(&template).unwrap(),
                recipient_delimiter: Some("+".into()),
                create,
            }),
            tls: None,
            ca_file: None,
            origin: "route[0]".into(),
        }];
        World {
            dir,
            spool,
            dns,
            mx,
            settings,
        }
    }

    fn vmail(&self) -> PathBuf {
        self.dir.path().join("vmail")
    }

    /// `<vmail>/example.org/<user>`.
    fn maildir(&self, user: &str) -> PathBuf {
        self.vmail().join(LOCAL).join(user)
    }

    /// Makes a Maildir as an operator would (`maildirmake`).
    fn make_maildir(&self, user: &str) -> PathBuf {
        let md = self.maildir(user);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        md
    }

    fn start(&self) -> (DeliveryHandle, MemoryLog) {
        let (log, mem) = MailLog::memory();
        let resolver = Resolver::new(&DnsSettings {
            nameservers: self.dns.nameservers(),
            timeout: Duration::from_secs(2),
            ..DnsSettings::default()
        })
        .unwrap();
        let transport =
            SmtpTransport::new(&self.settings, self.spool.clone(), resolver, log.clone()).unwrap();
        let h = start(
            self.settings.clone(),
            self.spool.clone(),
            Arc::new(transport),
            log,
            Arc::new(SystemClock),
        );
        (h, mem)
    }

    fn send(&self, rcpts: &[&str]) -> QueueId {
        let rcpts: Vec<Rcpt<'_>> = rcpts.iter().map(|r| rcpt(r)).collect();
        commit(
            &self.spool,
            "alice@example.com",
            &rcpts,
            MailParams::default(),
        )
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn attempts(mem: &MemoryLog, id: &QueueId) -> Vec<Attempt> {
    mem.for_queue_id(id)
        .into_iter()
        .filter_map(|e| match e {
            MailEvent::Attempt(a) => Some(*a),
            _ => None,
        })
        .collect()
}

fn outcomes(mem: &MemoryLog, id: &QueueId, event: &str) -> Vec<RcptOutcome> {
    mem.for_queue_id(id)
        .into_iter()
        .filter_map(|e| match (e, event) {
            (MailEvent::Delivered(o), "delivered")
            | (MailEvent::Deferred(o), "deferred")
            | (MailEvent::Bounced(o), "bounced") => Some(o),
            _ => None,
        })
        .collect()
}

/// The message as a Maildir reader sees it: our two lines, then the body
/// with LF line ends.
fn expected(rcpt: &str) -> String {
    format!(
        "Return-Path: <alice@example.com>\nDelivered-To: {rcpt}\n{}",
        BODY.replace("\r\n", "\n")
    )
}

/// The smtpd hands over the envelope as committed (`notify_committed`): the
/// message is delivered without being read back from the spool first.
#[tokio::test]
async fn a_committed_envelope_is_delivered_without_a_reload() {
    let w = World::new(false).await;
    let md = w.make_maildir("bob");
    let (h, _mem) = w.start();
    let id = w.send(&["bob@example.org"]);
    let env = w.spool.envelope(&id).unwrap();
    h.notifier().notify_committed(&env);
    // Announced twice before the scheduler ran: still one copy.
    h.notifier().notify_committed(&env);
    drained(&h).await;
    let new = files(&md.join("new"));
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        std::fs::read_to_string(&new[0]).unwrap(),
        expected("bob@example.org")
    );
}

#[tokio::test]
async fn delivers_into_new_with_return_path_and_delivered_to() {
    let w = World::new(false).await;
    let md = w.make_maildir("bob");
    let (h, mem) = w.start();
    // Case and the +tag do not matter for the mailbox; Delivered-To keeps
    // the address as it was given.
    let id = w.send(&["Bob+News@Example.ORG"]);
    h.notify(id);
    drained(&h).await;

    let new = files(&md.join("new"));
    assert_eq!(new.len(), 1, "{new:?}");
    let name = new[0].file_name().unwrap().to_str().unwrap();
    assert!(!name.contains(':') && name.contains(".M") && name.ends_with(".mx.postern.test"));
    assert_eq!(
        std::fs::read_to_string(&new[0]).unwrap(),
        expected("Bob+News@Example.ORG")
    );
    assert_eq!(mode(&new[0]), 0o600);
    assert!(files(&md.join("tmp")).is_empty(), "tmp/ is left empty");
    assert!(files(&md.join("cur")).is_empty());

    let a = attempts(&mem, &id);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].route, "maildir");
    assert_eq!(a[0].destination, LOCAL);
    assert_eq!(Path::new(&a[0].mx), md);
    assert_eq!(a[0].ip, "");
    assert_eq!(a[0].outcome, "delivered");
    assert_eq!(a[0].policy, "none");
    assert!(a[0].policy_reason.contains("local Maildir"), "{a:?}");
    assert_eq!(a[0].tls, None);
    assert_eq!(a[0].starttls_offered, None);
    let d = outcomes(&mem, &id, "delivered");
    assert_eq!(d.len(), 1);
    assert!(d[0].reply.as_deref().unwrap().starts_with("250 2.0.0"));
    // Nothing went over the network: no connection to any MX.
    assert_eq!(w.mx.connections(), 0);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_missing_maildir_bounces_5_1_1_with_a_dsn_to_the_sender() {
    let w = World::new(false).await;
    let bob = w.make_maildir("bob");
    let (h, mem) = w.start();
    let id = w.send(&["bob@example.org", "nobody@example.org"]);
    h.notify(id);
    drained(&h).await;

    assert_eq!(files(&bob.join("new")).len(), 1, "bob still gets his copy");
    assert!(
        !w.maildir("nobody").exists(),
        "create = false never makes a Maildir"
    );
    let a = attempts(&mem, &id);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, "partial");
    assert_eq!(a[0].mx, "local", "two recipients, two Maildirs");
    let b = outcomes(&mem, &id, "bounced");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].rcpt, "nobody@example.org");
    assert_eq!(b[0].status, "5.1.1");
    assert_eq!(b[0].reply.as_deref(), Some("550 5.1.1 mailbox unavailable"));
    let cause = b[0].cause.clone().unwrap();
    assert_eq!(cause.id, "local.mailbox_unknown");
    assert!(
        cause
            .summary
            .contains(&*w.maildir("nobody").to_string_lossy())
    );
    assert!(cause.fix.contains("create = true"), "{}", cause.fix);

    eventually("the DSN", || {
        !w.mx.received_for("alice@example.com").is_empty()
    })
    .await;
    let dsn = w.mx.received_for("alice@example.com");
    assert_eq!(dsn.len(), 1, "one DSN to the sender's MX");
    assert_eq!(dsn[0].mail_from, "", "DSNs come from the null sender");
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert!(
        text.contains("Final-Recipient: rfc822; nobody@example.org"),
        "{text}"
    );
    assert!(!text.contains("Final-Recipient: rfc822; bob@example.org"));
    assert!(text.contains("Action: failed"));
    assert!(text.contains("Status: 5.1.1"));
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 mailbox unavailable"));
    assert!(
        !text.contains("Remote-MTA"),
        "no remote MTA for a local delivery"
    );
    assert!(
        !text.contains(&*w.vmail().to_string_lossy()),
        "the Maildir path is the operator's, never the sender's"
    );
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn create_true_makes_tmp_new_and_cur_owner_only() {
    let w = World::new(true).await;
    let (h, _mem) = w.start();
    let id = w.send(&["carol@example.org"]);
    h.notify(id);
    drained(&h).await;

    let md = w.maildir("carol");
    for d in [
        w.vmail(),
        w.vmail().join(LOCAL),
        md.clone(),
        md.join("tmp"),
        md.join("new"),
        md.join("cur"),
    ] {
        assert!(d.is_dir(), "{}", d.display());
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let new = files(&md.join("new"));
    assert_eq!(new.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&new[0]).unwrap(),
        expected("carol@example.org")
    );
    assert_eq!(mode(&new[0]), 0o600);
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn local_parts_that_would_leave_the_tree_bounce_5_1_3_and_create_nothing() {
    // `create = true` is the dangerous case: without the checks these would
    // make `<vmail>/etc/…` and `<tmp>/etc/…`.
    let w = World::new(true).await;
    let (h, mem) = w.start();
    let evil = [
        "../etc@example.org",
        "\"../../etc\"@example.org",
        ".hidden@example.org",
        "\"a/b\"@example.org",
    ];
    let id = w.send(&evil);
    h.notify(id);
    drained(&h).await;

    assert!(
        !w.vmail().exists(),
        "nothing created: {:?}",
        files(&w.vmail())
    );
    assert!(!w.dir.path().join("etc").exists());
    let b = outcomes(&mem, &id, "bounced");
    assert_eq!(b.len(), evil.len());
    for o in &b {
        assert_eq!(o.status, "5.1.3", "{o:?}");
        assert!(o.reply.as_deref().unwrap().starts_with("553 5.1.3 "));
        assert_eq!(o.cause.as_ref().unwrap().id, "local.unsafe_address");
    }
    eventually("the DSN", || {
        !w.mx.received_for("alice@example.com").is_empty()
    })
    .await;
    let dsn = w.mx.received_for("alice@example.com");
    assert_eq!(dsn.len(), 1);
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert_eq!(text.matches("Status: 5.1.3").count(), evil.len(), "{text}");
    h.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_broken_maildir_defers_then_delivers_once_repaired() {
    let w = World::new(false).await;
    let md = w.maildir("dave");
    std::fs::create_dir_all(md.join("tmp")).unwrap();
    std::fs::create_dir_all(md.join("cur")).unwrap();
    // A file where new/ should be: an operator's mistake, not the sender's.
    std::fs::write(md.join("new"), b"oops").unwrap();
    let (h, mem) = w.start();
    let id = w.send(&["dave@example.org"]);
    h.notify(id);
    wait_for(&h, "a deferral", |s| s.deferred >= 1 && s.in_flight == 0).await;

    let d = outcomes(&mem, &id, "deferred");
    assert!(!d.is_empty());
    assert_eq!(
        d[0].reply.as_deref(),
        Some("451 4.3.0 local delivery failed temporarily")
    );
    let cause = d[0].cause.clone().unwrap();
    assert_eq!(cause.id, "local.io_error");
    assert!(cause.detail.contains("new"), "{cause:?}");
    assert!(
        files(&md.join("tmp")).is_empty(),
        "the tmp/ file was removed"
    );
    assert!(w.mx.received().is_empty(), "no DSN for a deferral");

    // The operator repairs it; the next retry delivers, once.
    std::fs::remove_file(md.join("new")).unwrap();
    std::fs::create_dir(md.join("new")).unwrap();
    drained(&h).await;
    let new = files(&md.join("new"));
    assert_eq!(new.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&new[0]).unwrap(),
        expected("dave@example.org")
    );
    assert!(files(&md.join("tmp")).is_empty());
    assert_eq!(outcomes(&mem, &id, "delivered").len(), 1);
    h.shutdown(Duration::from_secs(5)).await;
}

/// Whether permissions stop us (false as root or with `CAP_DAC_OVERRIDE`).
fn permissions_apply(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::create_dir(&probe).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o500)).unwrap();
    let blocked = std::fs::write(probe.join("x"), b"x").is_err();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o700)).unwrap();
    blocked
}

#[tokio::test]
async fn an_unwritable_maildir_defers_with_a_permission_fix() {
    let w = World::new(false).await;
    if !permissions_apply(w.dir.path()) {
        eprintln!("skipped: running with permission to write anywhere (root?)");
        return;
    }
    let md = w.make_maildir("erin");
    std::fs::set_permissions(md.join("new"), std::fs::Permissions::from_mode(0o500)).unwrap();
    let (h, mem) = w.start();
    let id = w.send(&["erin@example.org"]);
    h.notify(id);
    wait_for(&h, "a deferral", |s| s.deferred >= 1 && s.in_flight == 0).await;
    let d = outcomes(&mem, &id, "deferred");
    let cause = d[0].cause.clone().unwrap();
    assert_eq!(cause.id, "local.io_error");
    assert!(cause.fix.contains("writable"), "{cause:?}");
    assert!(files(&md.join("tmp")).is_empty());
    h.shutdown(Duration::from_secs(5)).await;
    std::fs::set_permissions(md.join("new"), std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test]
async fn notify_success_reports_delivered_not_relayed() {
    // A Maildir is the final destination: RFC 3464 §2.3.3 `delivered`, where
    // a next hop without DSN support would only earn `relayed`.
    let w = World::new(false).await;
    w.make_maildir("bob");
    let (h, _mem) = w.start();
    let id = commit(
        &w.spool,
        "alice@example.com",
        &[Rcpt {
            address: "bob@example.org",
            notify: Some("SUCCESS"),
            orcpt: None,
        }],
        MailParams::default(),
    );
    h.notify(id);
    // The success DSN is itself queued and delivered to the sender's MX.
    eventually("the DSN", || {
        !w.mx.received_for("alice@example.com").is_empty()
    })
    .await;
    let dsn = w.mx.received_for("alice@example.com");
    assert_eq!(dsn.len(), 1, "one success DSN");
    let text = String::from_utf8_lossy(&dsn[0].data);
    assert!(text.contains("Action: delivered"), "{text}");
    assert!(!text.contains("Action: relayed"), "{text}");
    h.shutdown(Duration::from_secs(5)).await;
}

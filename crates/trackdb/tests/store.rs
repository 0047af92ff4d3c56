//! The SQLite store: records land with the right fields, every search
//! filter, message look-up, evidence, posture, summary, pruning, re-indexing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{t, world};
use postern_trackdb::{
    Checkpoint, Direction, Evidence, PostureQuery, SearchQuery, SqliteStore, TrackStore, render,
};

fn store_with_world() -> (tempfile::TempDir, SqliteStore, common::World) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db").join("tracking.db")).unwrap();
    let w = world();
    store
        .index(
            &w.entries,
            &Checkpoint {
                file_id: 7,
                offset: 1234,
            },
        )
        .unwrap();
    (dir, store, w)
}

fn ids(store: &SqliteStore, q: &SearchQuery) -> Vec<String> {
    store
        .search(q)
        .unwrap()
        .into_iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.event,
                r.queue_id.or(r.session).unwrap_or_default()
            )
        })
        .collect()
}

fn count(store: &SqliteStore, q: SearchQuery) -> usize {
    store
        .search(&SearchQuery { limit: 10_000, ..q })
        .unwrap()
        .len()
}

#[test]
fn records_land_with_their_fields() {
    let (_d, store, w) = store_with_world();
    assert_eq!(
        store.checkpoint().unwrap(),
        Some(Checkpoint {
            file_id: 7,
            offset: 1234
        })
    );
    let all = store
        .search(&SearchQuery {
            limit: 1000,
            ..SearchQuery::default()
        })
        .unwrap();
    assert_eq!(all.len(), w.entries.len());
    // Newest first.
    assert!(all.windows(2).all(|p| p[0].ts >= p[1].ts));

    let rx = all
        .iter()
        .find(|r| r.event == "received" && r.queue_id.as_deref() == Some(w.delivered.as_str()))
        .unwrap();
    assert_eq!(rx.sender.as_deref(), Some("alice@example.com"));
    assert_eq!(rx.recipients, ["bob@example.net"]);
    assert_eq!(rx.client_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(rx.client_name.as_deref(), Some("client.example"));
    assert_eq!(rx.listener.as_deref(), Some("mx"));
    assert_eq!(rx.size, Some(2048));
    assert_eq!(rx.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(rx.tls_cipher.as_deref(), Some("TLS13_AES_256_GCM_SHA384"));
    assert_eq!(rx.message_id.as_deref(), Some("a1@example.com"));
    assert_eq!(rx.subject.as_deref(), Some("Quarterly Report"));
    assert!(rx.detail.contains("auth alice"), "{}", rx.detail);

    // A later event inherits Message-ID and sender from `received`.
    let dl = all
        .iter()
        .find(|r| r.event == "delivered" && r.queue_id.as_deref() == Some(w.delivered.as_str()))
        .unwrap();
    assert_eq!(dl.message_id.as_deref(), Some("a1@example.com"));
    assert_eq!(dl.sender.as_deref(), Some("alice@example.com"));
    assert_eq!(dl.server_ip.as_deref(), Some("198.51.100.11"));
    assert_eq!(dl.server_name.as_deref(), Some("mx2.example.net"));
    assert_eq!(dl.status.as_deref(), Some("2.0.0"));
    assert_eq!(dl.tls_version.as_deref(), Some("TLSv1.3"));

    let at = all
        .iter()
        .find(|r| r.event == "attempt" && r.detail.starts_with("#1 deferred"))
        .unwrap();
    assert!(at.detail.contains("smtp.reply_transient"), "{}", at.detail);
    assert_eq!(at.reply.as_deref(), Some("451 4.3.0 try later"));

    let dsn = all.iter().find(|r| r.event == "dsn_sent").unwrap();
    assert!(dsn.detail.contains(w.dsn.as_str()), "{}", dsn.detail);

    let q = all.iter().find(|r| r.event == "quarantined").unwrap();
    assert_eq!(q.detail, "quarantine spam: rule spam");
    let f = all.iter().find(|r| r.event == "filtered").unwrap();
    assert!(f.detail.contains("rule:spam"), "{}", f.detail);
    let rx_c = all
        .iter()
        .find(|r| r.event == "received" && r.queue_id.as_deref() == Some(w.quarantined.as_str()))
        .unwrap();
    assert_eq!(rx_c.client_ip.as_deref(), Some("2001:db8::5"));
    assert_eq!(rx_c.tls_version.as_deref(), Some("none"));

    // Session events: no queue id; client, sender, recipient, rule, group, policy.
    let th = all.iter().find(|r| r.event == "throttled").unwrap();
    assert_eq!(th.queue_id, None);
    assert_eq!(th.session.as_deref(), Some("S2"));
    assert_eq!(th.client_ip.as_deref(), Some("198.51.100.8"));
    assert_eq!(th.sender.as_deref(), Some("y@bad.example"));
    assert_eq!(th.recipients, ["v@example.com"]);
    assert_eq!(th.status.as_deref(), Some("4.5.3"));
    assert!(th.detail.contains("max_recipients_per_hour_per_ip"));
    assert!(th.detail.contains("group SUSPECT") && th.detail.contains("policy THROTTLED"));
    assert!(all.iter().any(|r| r.event == "rejected"));
    assert!(all.iter().any(|r| r.event == "greylisted"));
}

#[test]
fn reindexing_is_a_no_op() {
    let (_d, store, w) = store_with_world();
    store
        .index(
            &w.entries,
            &Checkpoint {
                file_id: 7,
                offset: 2000,
            },
        )
        .unwrap();
    assert_eq!(count(&store, SearchQuery::default()), w.entries.len());
    assert_eq!(
        count(
            &store,
            SearchQuery {
                recipient: Some("dave@example.com".into()),
                ..Default::default()
            }
        ),
        4
    );
    let p = store
        .posture(&PostureQuery {
            direction: None,
            since: t("2026-11-01T00:00:00Z"),
            limit: 0,
        })
        .unwrap();
    let net = p.iter().find(|p| p.peer == "example.net").unwrap();
    assert_eq!(net.messages, 2, "posture counted once per event");
    assert_eq!(store.checkpoint().unwrap().unwrap().offset, 2000);
}

#[test]
fn every_search_filter() {
    let (_d, store, w) = store_with_world();
    let q = |f: fn(&mut SearchQuery)| {
        let mut q = SearchQuery {
            limit: 1000,
            ..SearchQuery::default()
        };
        f(&mut q);
        q
    };
    // Sender: exact (any case), domain, @domain with subdomains, null sender.
    assert_eq!(
        count(&store, q(|q| q.sender = Some("ALICE@example.com".into()))),
        9
    );
    assert_eq!(
        count(&store, q(|q| q.sender = Some("example.org".into()))),
        5
    );
    assert_eq!(
        count(&store, q(|q| q.sender = Some("@mail.example.org".into()))),
        5
    );
    assert_eq!(
        count(&store, q(|q| q.sender = Some("@xample.org".into()))),
        0
    );
    assert_eq!(
        ids(&store, &q(|q| q.sender = Some("<>".into()))),
        [format!("queued:{}", w.dsn)]
    );
    // Recipient: exact, domain.
    assert_eq!(
        count(&store, q(|q| q.recipient = Some("bob@EXAMPLE.net".into()))),
        5
    );
    // example.com: b's received, attempt, 2 bounced, dsn_sent; c's received;
    // the three session events' recipients.
    assert_eq!(
        count(&store, q(|q| q.recipient = Some("example.com".into()))),
        9
    );
    assert_eq!(count(&store, q(|q| q.recipient = Some("@com".into()))), 9);
    // Time window [start, end).
    assert_eq!(
        count(
            &store,
            q(|q| {
                q.start = Some(t("2026-12-01T10:05:00Z"));
                q.end = Some(t("2026-12-01T10:10:00Z"));
            })
        ),
        6
    );
    assert_eq!(
        count(
            &store,
            q(|q| {
                q.recipient = Some("bob@example.net".into());
                q.start = Some(t("2026-12-01T10:30:00Z"));
            })
        ),
        2
    );
    // Events.
    assert_eq!(
        count(
            &store,
            q(|q| q.events = vec!["bounced".into(), "dsn_sent".into()])
        ),
        3
    );
    assert_eq!(count(&store, q(|q| q.events = vec!["throttled".into()])), 1);
    // Queue id, Message-ID with and without brackets.
    let qid = w.bounced.to_string();
    let mut by_q = SearchQuery {
        queue_id: Some(qid),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(count(&store, by_q.clone()), 5);
    by_q.queue_id = None;
    by_q.message_id = Some("<b2@example.org>".into());
    assert_eq!(count(&store, by_q.clone()), 5);
    by_q.message_id = Some("b2@example.org".into());
    assert_eq!(count(&store, by_q), 5);
    // Subject substring, case-insensitive; LIKE wildcards are literal.
    assert_eq!(
        count(&store, q(|q| q.subject = Some("quarterly".into()))),
        6
    );
    assert_eq!(count(&store, q(|q| q.subject = Some("%".into()))), 0);
    // IP: client exact, server exact, CIDR, IPv6.
    assert_eq!(count(&store, q(|q| q.ip = Some("192.0.2.7".into()))), 1);
    assert_eq!(count(&store, q(|q| q.ip = Some("198.51.100.20".into()))), 3);
    assert_eq!(count(&store, q(|q| q.ip = Some("192.0.2.0/24".into()))), 2);
    assert_eq!(
        count(&store, q(|q| q.ip = Some("198.51.100.10/31".into()))),
        4
    );
    assert_eq!(count(&store, q(|q| q.ip = Some("2001:db8::/32".into()))), 1);
    assert!(
        store
            .search(&q(|q| q.ip = Some("not-an-ip".into())))
            .is_err()
    );
    // TLS version.
    assert_eq!(
        count(&store, q(|q| q.tls_version = Some("TLSv1.0".into()))),
        2
    );
    assert_eq!(
        count(&store, q(|q| q.tls_version = Some("tlsv1.3".into()))),
        3
    );
    // Plaintext: b and c and d received, b's attempt and 2 bounces.
    assert_eq!(count(&store, q(|q| q.tls_version = Some("none".into()))), 6);
    // Limit; 0 = 100.
    assert_eq!(store.search(&q(|q| q.limit = 3)).unwrap().len(), 3);
    assert_eq!(
        store.search(&SearchQuery::default()).unwrap().len(),
        w.entries.len()
    );
    // Combined.
    assert_eq!(
        ids(
            &store,
            &q(|q| {
                q.recipient = Some("bob@example.net".into());
                q.events = vec!["delivered".into()];
                q.tls_version = Some("TLSv1.3".into());
            })
        ),
        [format!("delivered:{}", w.delivered)]
    );
}

#[test]
fn message_by_queue_id_and_message_id() {
    let (_d, store, w) = store_with_world();
    let life = store.message(w.delivered.as_str()).unwrap().unwrap();
    assert_eq!(life.queue_id, w.delivered.to_string());
    assert_eq!(life.message_id.as_deref(), Some("<a1@example.com>"));
    assert_eq!(life.outcome, "delivered");
    assert_eq!(life.records.len(), 6);
    let names: Vec<_> = life.records.iter().map(|r| r.event.name()).collect();
    assert_eq!(
        names,
        [
            "received",
            "queued",
            "attempt",
            "deferred",
            "attempt",
            "delivered"
        ]
    );

    let by_mid = store.message("<b2@example.org>").unwrap().unwrap();
    assert_eq!(by_mid.queue_id, w.bounced.to_string());
    assert_eq!(by_mid.outcome, "bounced");
    assert_eq!(by_mid.related, [w.dsn.to_string()]);
    assert_eq!(by_mid.recipients, ["dave@example.com", "erin@example.com"]);
    assert_eq!(
        store.message("b2@example.org").unwrap().unwrap().queue_id,
        w.bounced.to_string()
    );

    // The DSN points back to the original.
    let dsn = store.message(w.dsn.as_str()).unwrap().unwrap();
    assert_eq!(dsn.related, [w.bounced.to_string()]);
    assert_eq!(dsn.sender.as_deref(), Some(""));
    assert_eq!(dsn.outcome, "queued");

    assert_eq!(
        store
            .message(w.quarantined.as_str())
            .unwrap()
            .unwrap()
            .outcome,
        "quarantined"
    );
    assert!(store.message("nothing-here").unwrap().is_none());
    assert!(store.message("").unwrap().is_none());
    // A copy under another queue id with the same Message-ID is related.
    let copy = postern_spool::QueueId::generate();
    let mut rx = common::received(
        "alice@example.com",
        &["zoe@example.net"],
        "192.0.2.7:1",
        None,
    );
    rx.message_id = Some("<a1@example.com>".into());
    store
        .index(
            &[common::rec(
                copy,
                "2026-12-01T10:00:00.500Z",
                postern_track::MailEvent::Received(rx),
            )],
            &Checkpoint {
                file_id: 7,
                offset: 1300,
            },
        )
        .unwrap();
    assert_eq!(
        store
            .message(w.delivered.as_str())
            .unwrap()
            .unwrap()
            .related,
        [copy.to_string()]
    );

    let text = render::life_text(&life);
    assert!(text.contains("Outcome: delivered"), "{text}");
    assert!(
        text.contains("#1 to example.net via mx1.example.net"),
        "{text}"
    );
    assert!(text.contains("cause: smtp.reply_transient"), "{text}");
    assert!(text.contains("delivered  bob@example.net"), "{text}");
    let text = render::life_text(&by_mid);
    assert!(
        text.contains("failure DSN to <carol@mail.example.org> queued as"),
        "{text}"
    );
    assert!(text.contains("PLAINTEXT"), "{text}");
    let text = render::life_text(&store.message(w.quarantined.as_str()).unwrap().unwrap());
    assert!(
        text.contains("from [2001:db8::5] HELO spammer.example"),
        "{text}"
    );
    assert!(text.contains("quarantined into spam: rule spam"), "{text}");
}

#[test]
fn evidence_of_a_message() {
    let (_d, store, w) = store_with_world();
    let life = store.message(w.delivered.as_str()).unwrap().unwrap();
    let ev = Evidence::from_life(&life);
    let inbound = ev.inbound.as_ref().unwrap();
    assert_eq!(inbound.client_ip, "192.0.2.7");
    assert_eq!(inbound.auth_user.as_deref(), Some("alice"));
    let tls = inbound.tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.group.as_deref(), Some("X25519MLKEM768"));
    assert_eq!(tls.sni.as_deref(), Some("mx.example.com"));
    assert_eq!(ev.outbound.len(), 2);
    let (first, second) = (&ev.outbound[0], &ev.outbound[1]);
    assert_eq!(first.verification, "none");
    assert!(!first.verified);
    assert_eq!(first.verification_result, "unknown issuer");
    assert_eq!(second.verification, "dane");
    assert_eq!(
        second.tls.as_ref().unwrap().group.as_deref(),
        Some("X25519")
    );
    assert!(second.verified);
    assert_eq!(
        second.tls.as_ref().unwrap().cert.as_ref().unwrap().sans,
        ["mx2.example.net"]
    );
    assert_eq!(second.outcome, "delivered");

    let text = render::evidence_text(&ev);
    assert!(text.contains("Outbound attempt #2"), "{text}");
    assert!(
        text.contains("verification: dane — ok (verified)"),
        "{text}"
    );
    assert!(text.contains("group:        X25519MLKEM768"), "{text}");
    assert!(text.contains("SHA-256:"), "{text}");
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["outbound"][1]["verification"], "dane");

    let ev = Evidence::from_life(&store.message(w.bounced.as_str()).unwrap().unwrap());
    assert!(ev.inbound.as_ref().unwrap().tls.is_none());
    assert_eq!(ev.outbound[0].starttls_offered, Some(false));
    assert!(render::evidence_text(&ev).contains("NOT offered"));
}

#[test]
fn posture_puts_the_riskiest_first() {
    let (_d, store, _w) = store_with_world();
    let all = store
        .posture(&PostureQuery {
            direction: None,
            since: t("2026-11-01T00:00:00Z"),
            limit: 0,
        })
        .unwrap();
    let order: Vec<String> = all
        .iter()
        .map(|p| format!("{}:{}", p.direction.as_str(), p.peer))
        .collect();
    // legacy TLS first; then no STARTTLS / plaintext (by messages: the
    // inbound plaintext clients); then unverified; then clean.
    assert_eq!(order[0], "outbound:legacy.example", "{order:?}");
    let pos = |name: &str| order.iter().position(|o| o == name).unwrap();
    assert!(
        pos("outbound:example.com") < pos("outbound:example.net"),
        "{order:?}"
    );
    assert!(
        pos("outbound:example.net") < pos("inbound:client.example"),
        "{order:?}"
    );
    let legacy = &all[0];
    assert!(
        legacy.risks[0].starts_with("legacy TLS (TLSv1.0)"),
        "{:?}",
        legacy.risks
    );
    let com = all.iter().find(|p| p.peer == "example.com").unwrap();
    assert_eq!(com.starttls, Some(false));
    assert_eq!(com.tls_versions, [("none".to_owned(), 1)]);
    let net = all.iter().find(|p| p.peer == "example.net").unwrap();
    assert_eq!(net.messages, 2);
    assert_eq!((net.verified, net.unverified, net.dane), (1, 1, 1));
    assert_eq!(net.ips, ["198.51.100.10", "198.51.100.11"]);
    assert_eq!(net.risks, ["unverified certificate"]);
    assert_eq!(net.last_seen, "2026-12-01T11:00:00Z");
    let client = all
        .iter()
        .find(|p| p.peer == "client.example" && p.direction == Direction::Inbound)
        .unwrap();
    assert_eq!(client.messages, 1);
    assert!(client.risks.is_empty());
    assert_eq!(client.starttls, Some(true));
    // No forward-confirmed name: the address names the peer (a HELO is a
    // claim, shown beside it).
    let plain = all
        .iter()
        .find(|p| p.peer == "[203.0.113.5] (HELO b.example)")
        .unwrap();
    assert_eq!(plain.risks, ["no STARTTLS"]);
    assert_eq!(plain.ips, ["203.0.113.5"]);

    let inbound = store
        .posture(&PostureQuery {
            direction: Some(Direction::Inbound),
            since: t("2026-11-01T00:00:00Z"),
            limit: 0,
        })
        .unwrap();
    assert!(inbound.iter().all(|p| p.direction == Direction::Inbound));
    let later = store
        .posture(&PostureQuery {
            direction: None,
            since: t("2026-12-02T00:00:00Z"),
            limit: 0,
        })
        .unwrap();
    assert!(later.is_empty());
    let text = render::posture_text(&all);
    assert!(
        text.lines().nth(1).unwrap().contains("legacy.example"),
        "{text}"
    );
}

#[test]
fn summary_counts() {
    let (_d, store, _w) = store_with_world();
    let s = store.summary(t("2026-12-01T00:00:00Z")).unwrap();
    let total_in: u64 = s.per_minute_in.iter().map(|x| x.1).sum();
    assert_eq!(total_in, 4);
    assert_eq!(s.per_minute_out.iter().map(|x| x.1).sum::<u64>(), 2);
    assert_eq!(s.per_minute_in[0].0, "2026-12-01T10:00:00Z");
    assert!(s.tls_in.contains(&("none".to_owned(), 3)));
    assert!(s.tls_out.contains(&("TLSv1.3".to_owned(), 1)));
    // One deferral and two bounces carry a cause.
    assert_eq!(s.top_causes, [("smtp.reply_transient".to_owned(), 3)]);
    assert!(s.events.contains(&("received".to_owned(), 4)));
}

#[test]
fn pruning_removes_old_events_recipients_and_posture_days() {
    let (_d, store, w) = store_with_world();
    let n = store.prune(t("2026-12-01T10:30:00Z")).unwrap();
    assert_eq!(n, 16);
    let left = count(&store, SearchQuery::default());
    assert_eq!(left, w.entries.len() - 16);
    assert_eq!(
        count(
            &store,
            SearchQuery {
                recipient: Some("example.com".into()),
                ..Default::default()
            }
        ),
        0
    );
    // Posture keeps whole days: the day of the cutoff stays.
    assert!(
        !store
            .posture(&PostureQuery {
                direction: None,
                since: t("2026-11-01T00:00:00Z"),
                limit: 0
            })
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        usize::try_from(store.prune(t("2026-12-03T00:00:00Z")).unwrap()).unwrap(),
        left
    );
    assert!(
        store
            .posture(&PostureQuery {
                direction: None,
                since: t("2026-11-01T00:00:00Z"),
                limit: 0
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn read_only_store_reads_and_refuses_writes() {
    let (dir, store, w) = store_with_world();
    drop(store);
    let ro = SqliteStore::open_read_only(&dir.path().join("db").join("tracking.db")).unwrap();
    assert_eq!(count(&ro, SearchQuery::default()), w.entries.len());
    assert!(
        ro.index(
            &[],
            &Checkpoint {
                file_id: 1,
                offset: 1
            }
        )
        .is_err()
    );
    let err = SqliteStore::open_read_only(&dir.path().join("missing.db")).unwrap_err();
    assert!(
        err.to_string().contains("missing.db does not exist"),
        "{err}"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn search_text_and_csv() {
    let (_d, store, _w) = store_with_world();
    let rows = store
        .search(&SearchQuery {
            recipient: Some("dave@example.com".into()),
            ..Default::default()
        })
        .unwrap();
    let text = render::search_text(&rows);
    assert_eq!(text.lines().count(), rows.len() + 1);
    assert!(text.starts_with("TIME"));
    assert!(
        text.contains("carol@mail.example.org → dave@example.com"),
        "{text}"
    );
    let csv = render::search_csv(&rows);
    assert_eq!(
        csv.split("\r\n").filter(|l| !l.is_empty()).count(),
        rows.len() + 1
    );
    assert!(
        csv.contains("\"dave@example.com erin@example.com\"")
            || csv.contains("dave@example.com erin@example.com")
    );
    assert_eq!(render::search_text(&[]), "no events match\n");
}

/// The server's own constructors: `Received::from_envelope`,
/// `MailEvent::after_receipt`, `TrackRecord::new` (now-timed event ids).
#[test]
fn records_from_the_servers_constructors() {
    use postern_track::{MailEvent, Received, TrackRecord};
    let id = postern_spool::QueueId::generate();
    let env: postern_spool::Envelope = serde_json::from_value(serde_json::json!({
        "queue_id": id.to_string(),
        "received_at": "2026-12-06T22:00:00Z",
        "reverse_path": "news@shop.example",
        "recipients": [{"address": "Ann@Example.com"}],
        "receipt": {
            "listener": "mx", "peer": "192.0.2.44:51000", "helo": "out.shop.example",
            "client_name": "out.shop.example", "sender_group": "UNKNOWN", "policy": "ACCEPTED",
            "tls": {"version": "TLSv1.2", "cipher": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                    "group": "secp256r1", "sni": "mx.example.com"}
        },
        "message_size": 5000,
        "hold": "rule spam-words",
        "quarantine": "spam",
        "content": [{"by": "rspamd", "verdict": "spam suspect (score 9.10 of 15.00)", "action": "quarantine \"spam\""}],
        "message_id": "<n1@shop.example>",
        "subject": "Sale"
    }))
    .unwrap();
    let mut entries = vec![postern_trackdb::LogEntry::Mail(TrackRecord::new(
        id,
        MailEvent::Received(Received::from_envelope(&env)),
    ))];
    entries.extend(
        MailEvent::after_receipt(&env)
            .into_iter()
            .map(|e| postern_trackdb::LogEntry::Mail(TrackRecord::new(id, e))),
    );
    assert_eq!(entries.len(), 3);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    store
        .index(
            &entries,
            &Checkpoint {
                file_id: 1,
                offset: 1,
            },
        )
        .unwrap();

    let life = store.message("<n1@shop.example>").unwrap().unwrap();
    assert_eq!(life.queue_id, id.to_string());
    assert_eq!(life.outcome, "quarantined");
    let names: Vec<_> = life.records.iter().map(|r| r.event.name()).collect();
    assert_eq!(names, ["received", "filtered", "quarantined"]);
    let rows = store
        .search(&SearchQuery {
            recipient: Some("ann@example.com".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].client_name.as_deref(), Some("out.shop.example"));
    assert_eq!(rows[0].tls_version.as_deref(), Some("TLSv1.2"));
    assert!(rows[0].detail.contains("group UNKNOWN") && rows[0].detail.contains("policy ACCEPTED"));
    let filtered = store
        .search(&SearchQuery {
            events: vec!["filtered".into()],
            ..Default::default()
        })
        .unwrap();
    assert!(
        filtered[0].detail.contains("rspamd: spam suspect"),
        "{}",
        filtered[0].detail
    );
    assert_eq!(filtered[0].message_id.as_deref(), Some("n1@shop.example"));
    let ev = Evidence::from_life(&life);
    assert_eq!(
        ev.inbound.unwrap().tls.unwrap().group.as_deref(),
        Some("secp256r1")
    );
    let p = store
        .posture(&PostureQuery {
            direction: Some(Direction::Inbound),
            since: time::OffsetDateTime::now_utc() - time::Duration::days(1),
            limit: 0,
        })
        .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].peer, "out.shop.example");
    assert_eq!(p[0].tls_versions, [("TLSv1.2".to_owned(), 1)]);
}

/// The indexer's path: each line is stored as logged (a field this version
/// does not know is kept), an entry without its line is serialised.
#[test]
fn index_batch_stores_lines_as_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).unwrap();
    let w = world();
    let lines: Vec<String> = w
        .entries
        .iter()
        .map(|e| {
            let json = serde_json::to_string(e).unwrap();
            // A field of a newer version, at the end of the object.
            format!("{},\"x_later\":1}}", &json[..json.len() - 1])
        })
        .collect();
    let mut batch = postern_trackdb::Batch::default();
    for (i, (e, l)) in w.entries.iter().zip(&lines).enumerate() {
        // The first entry as if changed after parsing: serialised again.
        batch.push(e.clone(), (i > 0).then_some(l.as_str()));
    }
    store
        .index_batch(
            &batch,
            &Checkpoint {
                file_id: 1,
                offset: 1,
            },
            None,
        )
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT record FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), lines.len());
    assert_eq!(stored[0], serde_json::to_string(&w.entries[0]).unwrap());
    assert_eq!(stored[1..], lines[1..]);
    // Read back as records all the same.
    let life = store.message(w.delivered.as_str()).unwrap().unwrap();
    assert!(life.records.len() >= 3, "{life:?}");
}

/// What later events inherit comes from a cache of the `messages` rows:
/// after pruning deleted a row, a late event of that message inherits
/// nothing, as the table says.
#[test]
fn a_pruned_message_is_not_inherited_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let q = postern_spool::QueueId::generate();
    let received = common::rec(
        q,
        "2026-12-01T10:00:00Z",
        postern_track::MailEvent::Received(common::received(
            "Old@Example.org",
            &["a@example.com"],
            "192.0.2.1:4000",
            None,
        )),
    );
    let cp = Checkpoint {
        file_id: 1,
        offset: 1,
    };
    store.index(&[received], &cp).unwrap();
    let deferred = |ts: &str| {
        common::rec(
            q,
            ts,
            postern_track::MailEvent::Deferred(postern_track::RcptOutcome {
                rcpt: "a@example.com".into(),
                status: "4.0.0".into(),
                attempts: 1,
                ..postern_track::RcptOutcome::default()
            }),
        )
    };
    store
        .index(&[deferred("2026-12-01T10:05:00Z")], &cp)
        .unwrap();
    let by_sender = |store: &SqliteStore| {
        count(
            store,
            SearchQuery {
                sender: Some("old@example.org".into()),
                ..SearchQuery::default()
            },
        )
    };
    assert_eq!(by_sender(&store), 2);
    store.prune(t("2026-12-02T00:00:00Z")).unwrap();
    assert_eq!(by_sender(&store), 0);
    store
        .index(&[deferred("2026-12-03T10:00:00Z")], &cp)
        .unwrap();
    assert_eq!(by_sender(&store), 0);
}

/// A search by Message-ID goes through the message rows: pruning keeps a
/// message's row while later events of it remain, so they are still found.
#[test]
fn message_id_search_after_pruning_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    let q = postern_spool::QueueId::generate();
    let mut received =
        common::received("a@example.org", &["b@example.com"], "192.0.2.1:4000", None);
    received.message_id = Some("<late@example.org>".into());
    let delivered = postern_track::MailEvent::Delivered(postern_track::RcptOutcome {
        rcpt: "b@example.com".into(),
        status: "2.0.0".into(),
        attempts: 3,
        ..postern_track::RcptOutcome::default()
    });
    let cp = Checkpoint {
        file_id: 1,
        offset: 1,
    };
    store
        .index(
            &[
                common::rec(
                    q,
                    "2026-12-01T10:00:00Z",
                    postern_track::MailEvent::Received(received),
                ),
                common::rec(q, "2026-12-03T10:00:00Z", delivered),
            ],
            &cp,
        )
        .unwrap();
    let by_mid = |store: &SqliteStore| {
        ids(
            store,
            &SearchQuery {
                message_id: Some("late@example.org".into()),
                ..SearchQuery::default()
            },
        )
    };
    assert_eq!(by_mid(&store).len(), 2);
    assert_eq!(store.prune(t("2026-12-02T00:00:00Z")).unwrap(), 1);
    assert_eq!(by_mid(&store), [format!("delivered:{q}")]);
    let life = store.message("<late@example.org>").unwrap().unwrap();
    assert_eq!(life.queue_id, q.to_string());
    // Once its last event is pruned, the row goes too.
    store.prune(t("2026-12-04T00:00:00Z")).unwrap();
    assert!(by_mid(&store).is_empty());
    assert!(store.message("<late@example.org>").unwrap().is_none());
}

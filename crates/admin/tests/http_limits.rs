//! The admin HTTP listener's bounds, each proved by a test that fails when
//! the bound is removed: the TLS posture answer's cap (API and page), the
//! `/metrics` scrape cache (the queue listed at most once per 5 s however
//! many scrapes arrive), and at most three tracking queries at once (API and
//! pages together; the others wait for a turn).
//!
//! The requests go through the real router (`postern_admin::http::router`:
//! every middleware, a real API token) in-process, so tokio's paused clock
//! can stand in for the 5 seconds. The posture store is a real SQLite store;
//! the scrape and query-limit tests use a queue and a store that count and
//! block, since the limit under test is the listener's, not theirs.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use postern_admin::http::{Auth, HttpState, NoConsoleInfo};
use postern_admin::{
    BoxFuture, HttpSettings, QueueControl, QueueStatus, QueuedMessage, SpoolHealth, Verb,
    VerbReport,
};
use postern_spool::{QueueId, ReceiptTls};
use postern_track::{MailEvent, Received, TrackRecord};
use postern_trackdb::{
    Checkpoint, EventRow, LogEntry, MessageLife, PeerPosture, PostureQuery, SearchQuery,
    SqliteStore, StoreError, Summary, TrackStore,
};
use tower::ServiceExt as _;

/// The router over `state`'s pieces, with an API token for the requests.
struct Harness {
    router: Router,
    state: HttpState,
    token: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(
        control: Arc<dyn QueueControl>,
        store: Option<Arc<dyn TrackStore>>,
        metrics: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = HttpSettings::new(dir.path());
        let auth = Auth::new(&settings).unwrap();
        let token = auth.tokens.create("limits").unwrap();
        let state = HttpState::new(
            control,
            Arc::new(NoConsoleInfo),
            Arc::new(auth),
            Arc::new(settings),
        )
        .with_tracking(store)
        .with_metrics(metrics.then(postern_metrics::Metrics::new));
        Self {
            router: postern_admin::http::router(state.clone()),
            state,
            token,
            _dir: dir,
        }
    }

    /// `GET path` with the token: (status, body).
    async fn get(&self, path: &str) -> (StatusCode, String) {
        get(self.router.clone(), &self.token, path).await
    }
}

async fn get(router: Router, token: &str, path: &str) -> (StatusCode, String) {
    let req = Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = router.oneshot(req).await.unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

// ---------------------------------------------------------------- posture cap

/// A real SQLite store with `n` inbound peers seen now (each its own
/// forward-confirmed client name).
fn store_with_peers(dir: &std::path::Path, n: usize) -> Arc<dyn TrackStore> {
    let store = SqliteStore::open(&dir.join("tracking.db")).unwrap();
    let batch: Vec<LogEntry> = (0..n)
        .map(|i| {
            LogEntry::Mail(TrackRecord::new(
                QueueId::generate(),
                MailEvent::Received(Received {
                    sender: "a@example.com".into(),
                    rcpts: vec!["b@example.org".into()],
                    size: 100,
                    listener: "mx".into(),
                    peer: format!("192.0.2.{}:25000", i % 250 + 1),
                    helo: format!("c{i}.example.net"),
                    client_name: Some(format!("c{i}.example.net")),
                    tls: Some("TLSv1.3".into()),
                    tls_params: Some(ReceiptTls {
                        version: "TLSv1.3".into(),
                        cipher: "TLS13_AES_128_GCM_SHA256".into(),
                        group: None,
                        sni: None,
                    }),
                    ..Received::default()
                }),
            ))
        })
        .collect();
    store
        .index(
            &batch,
            &Checkpoint {
                file_id: 1,
                offset: 1,
            },
        )
        .unwrap();
    Arc::new(store)
}

/// API: 200 peers by default, `limit` honoured below 2000 and clamped to
/// 2000 above it (and for 0), never more however many peers the store holds.
/// Page: the first 500, and it says so.
#[tokio::test]
async fn posture_answers_are_capped_and_the_page_says_it_is_cut() {
    const PEERS: usize = 2100;
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_peers(dir.path(), PEERS);
    let h = Harness::new(Arc::new(CountingQueue::default()), Some(store), false);

    let peers = |body: &str| -> usize {
        serde_json::from_str::<Vec<PeerPosture>>(body)
            .unwrap_or_else(|e| panic!("{e}: {body}"))
            .len()
    };
    for (query, want) in [
        ("", 200),
        ("?limit=7", 7),
        ("?limit=1999", 1999),
        ("?limit=2000", 2000),
        ("?limit=2001", 2000),
        ("?limit=1000000", 2000),
        ("?limit=0", 2000),
        ("?direction=inbound&limit=5000", 2000),
    ] {
        let (status, body) = h.get(&format!("/api/v1/posture{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(peers(&body), want, "/api/v1/posture{query}");
    }
    // The store holds them all: the cap is the listener's.
    assert_eq!(
        h.state
            .tracking
            .as_ref()
            .unwrap()
            .posture(&PostureQuery {
                direction: None,
                since: time::OffsetDateTime::now_utc() - time::Duration::days(1),
                limit: 0,
            })
            .unwrap()
            .len(),
        PEERS
    );

    let (status, page) = h.get("/posture?direction=inbound").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches("<th scope=\"row\"").count(), 500, "rows");
    assert!(
        page.contains("The first 500 peers shown, most at risk first; more were seen"),
        "the page says it is cut"
    );
}

/// A page under the cap does not say it is cut.
#[tokio::test]
async fn a_posture_page_under_the_cap_shows_every_peer() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_peers(dir.path(), 500);
    let h = Harness::new(Arc::new(CountingQueue::default()), Some(store), false);
    let (status, page) = h.get("/posture?direction=inbound").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches("<th scope=\"row\"").count(), 500);
    assert!(page.contains("500 peer(s)."), "{page}");
    assert!(!page.contains("The first"));
}

// ------------------------------------------------------------- scrape cache

/// A queue that counts how often it is listed; with a gate, each listing
/// waits for a permit first (counted before it waits).
#[derive(Default)]
struct CountingQueue {
    listings: AtomicUsize,
    gate: Option<tokio::sync::Semaphore>,
}

impl QueueControl for CountingQueue {
    fn messages(&self, id: Option<QueueId>) -> BoxFuture<'_, Option<Vec<QueuedMessage>>> {
        Box::pin(async move {
            if id.is_none() {
                self.listings.fetch_add(1, Ordering::SeqCst);
                if let Some(g) = &self.gate {
                    drop(g.acquire().await.unwrap());
                }
            }
            Some(Vec::new())
        })
    }
    fn status(&self) -> BoxFuture<'_, Option<QueueStatus>> {
        Box::pin(async { Some(QueueStatus::default()) })
    }
    fn apply(&self, _verb: Verb) -> BoxFuture<'_, Option<VerbReport>> {
        Box::pin(async { None })
    }
    fn spool_health(&self) -> BoxFuture<'_, Option<SpoolHealth>> {
        Box::pin(async {
            Some(SpoolHealth {
                poisoned: None,
                free_bytes: None,
                min_free: 0,
            })
        })
    }
}

/// Paused time: any number of scrapes within 5 s list the queue once; the
/// first scrape after 5 s lists it again.
#[tokio::test(start_paused = true)]
async fn metrics_list_the_queue_once_per_five_seconds() {
    let queue = Arc::new(CountingQueue::default());
    let h = Harness::new(queue.clone(), None, true);
    let listings = || queue.listings.load(Ordering::SeqCst);
    let scrape = || async {
        let (status, body) = h.get("/metrics").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("postern_"), "{body}");
    };
    for _ in 0..20 {
        scrape().await;
    }
    assert_eq!(listings(), 1, "20 scrapes at once");
    tokio::time::advance(Duration::from_millis(4_900)).await;
    for _ in 0..20 {
        scrape().await;
    }
    assert_eq!(listings(), 1, "20 more within 5 s");
    tokio::time::advance(Duration::from_millis(200)).await;
    scrape().await;
    assert_eq!(
        listings(),
        2,
        "the first scrape after 5 s reads the queue again"
    );
    for _ in 0..20 {
        scrape().await;
    }
    assert_eq!(listings(), 2);
}

/// Scrapes that arrive while the queue is being listed wait for that listing
/// instead of listing it again.
#[tokio::test]
async fn concurrent_scrapes_share_one_listing() {
    let queue = Arc::new(CountingQueue {
        listings: AtomicUsize::new(0),
        gate: Some(tokio::sync::Semaphore::new(0)),
    });
    let h = Harness::new(queue.clone(), None, true);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (r, t) = (h.router.clone(), h.token.clone());
            tokio::spawn(async move { get(r, &t, "/metrics").await })
        })
        .collect();
    // Every scrape runs until it waits (on this one thread, each yield lets
    // every ready task run); the first is listing, held at the gate.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        queue.listings.load(Ordering::SeqCst),
        1,
        "the other 7 wait for the first listing"
    );
    queue.gate.as_ref().unwrap().add_permits(100);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(queue.listings.load(Ordering::SeqCst), 1);
}

// ----------------------------------------------------------- query permits

/// A tracking store whose searches block until the test hands out turns:
/// counts the searches that entered, and the most inside at once.
#[derive(Default)]
struct GatedStore {
    state: Mutex<Gate>,
    cv: Condvar,
}

#[derive(Default)]
struct Gate {
    entered: usize,
    inside: usize,
    most_inside: usize,
    /// Searches allowed to finish; `usize::MAX`: all.
    turns: usize,
}

impl GatedStore {
    fn entered(&self) -> usize {
        self.state.lock().unwrap().entered
    }
    fn open(&self) {
        self.state.lock().unwrap().turns = usize::MAX;
        self.cv.notify_all();
    }
}

/// Opens the gate when the test ends, passing or not: no blocking thread is
/// left waiting for a turn.
struct OpenOnDrop(Arc<GatedStore>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl TrackStore for GatedStore {
    fn index(&self, _batch: &[LogEntry], _checkpoint: &Checkpoint) -> Result<(), StoreError> {
        Ok(())
    }
    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(None)
    }
    fn search(&self, _q: &SearchQuery) -> Result<Vec<EventRow>, StoreError> {
        let mut g = self.state.lock().unwrap();
        g.entered += 1;
        g.inside += 1;
        g.most_inside = g.most_inside.max(g.inside);
        while g.turns == 0 {
            g = self.cv.wait(g).unwrap();
        }
        g.turns = g.turns.saturating_sub(1);
        g.inside -= 1;
        Ok(Vec::new())
    }
    fn message(&self, _key: &str) -> Result<Option<MessageLife>, StoreError> {
        Ok(None)
    }
    fn posture(&self, _q: &PostureQuery) -> Result<Vec<PeerPosture>, StoreError> {
        Ok(Vec::new())
    }
    fn summary(&self, _since: time::OffsetDateTime) -> Result<Summary, StoreError> {
        Ok(Summary::default())
    }
    fn prune(&self, _before: time::OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Waits (up to 10 s) until `cond`; whether it came true.
async fn until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Six searches at once (four API calls, two pages): three run, the others
/// wait for a turn; each finished search lets one more in; all six answer.
#[tokio::test]
async fn at_most_three_tracking_queries_run_at_once() {
    let store = Arc::new(GatedStore::default());
    let _open = OpenOnDrop(store.clone());
    let h = Harness::new(
        Arc::new(CountingQueue::default()),
        Some(store.clone()),
        false,
    );
    assert_eq!(h.state.query_permits.available_permits(), 3);
    let paths = [
        "/api/v1/track/search?recipient=a%40example.org",
        "/api/v1/track/search?sender=b%40example.org",
        "/track?recipient=c%40example.org",
        "/api/v1/track/search?event=delivered",
        "/track?sender=d%40example.org",
        "/api/v1/track/search?ip=192.0.2.1",
    ];
    let tasks: Vec<_> = paths
        .iter()
        .map(|p| {
            let (r, t, p) = (h.router.clone(), h.token.clone(), (*p).to_owned());
            tokio::spawn(async move { get(r, &t, &p).await })
        })
        .collect();
    assert!(
        until(Duration::from_secs(10), || store.entered() >= 3).await,
        "three searches start"
    );
    // Without the limit the other three enter as fast as the first three
    // (they were all sent together); give them ample time to show it. This
    // wait cannot fail a correct server, only miss a broken one on a machine
    // hundreds of times slower than usual.
    assert!(
        !until(Duration::from_millis(300), || store.entered() > 3).await,
        "a fourth search ran while three were running"
    );
    assert_eq!(h.state.query_permits.available_permits(), 0);

    // One turn: one finishes, exactly one more enters.
    {
        store.state.lock().unwrap().turns = 1;
        store.cv.notify_all();
    }
    assert!(
        until(Duration::from_secs(10), || store.entered() >= 4).await,
        "a waiting search runs when one finishes"
    );
    assert!(!until(Duration::from_millis(300), || store.entered() > 4).await);

    store.open();
    for (t, p) in tasks.into_iter().zip(paths) {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{p}: {body}");
    }
    let g = store.state.lock().unwrap();
    assert_eq!(g.entered, 6);
    assert_eq!(g.most_inside, 3, "never more than three at once");
}

/// A request cancelled while its query runs (the client went away, or the
/// request timeout fired) does not give its turn back before the query ends:
/// the blocking task still holds it, so abandoned queries cannot pile up.
#[tokio::test]
async fn an_abandoned_query_keeps_its_turn_until_it_ends() {
    let store = Arc::new(GatedStore::default());
    let _open = OpenOnDrop(store.clone());
    let h = Harness::new(
        Arc::new(CountingQueue::default()),
        Some(store.clone()),
        false,
    );
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (r, t) = (h.router.clone(), h.token.clone());
            let p = format!("/api/v1/track/search?recipient=x{i}%40example.org");
            tokio::spawn(async move { get(r, &t, &p).await })
        })
        .collect();
    assert!(until(Duration::from_secs(10), || store.entered() >= 3).await);
    // Every request is abandoned; the queries go on in the blocking pool.
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    assert_eq!(
        h.state.query_permits.available_permits(),
        0,
        "the running queries still hold their turns"
    );
    // A new request waits for a turn instead of starting a fourth query.
    let (r, t) = (h.router.clone(), h.token.clone());
    let late = tokio::spawn(async move { get(r, &t, "/api/v1/track/search?event=held").await });
    assert!(!until(Duration::from_millis(300), || store.entered() > 3).await);
    store.open();
    assert_eq!(late.await.unwrap().0, StatusCode::OK);
    assert_eq!(store.state.lock().unwrap().most_inside, 3);
}

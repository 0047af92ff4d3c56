//! The Redis store against a real `redis-server` (the Debian package; CI
//! installs it): the shared suite, two nodes sharing counts, key prefixes,
//! a server that is down or silent (→ `Unavailable` within the timeout, so
//! callers fail open), and reconnection after a restart.
//!
//! Each test starts its own server on 127.0.0.1 with a free port, in a
//! temporary directory, with persistence off (`--save "" --appendonly no`),
//! and kills it when done. Without `redis-server` each test prints
//! "skipped: redis-server not installed" and passes, unless
//! `POSTERN_REQUIRE_TOOLS` is set (CI), where it fails.

#![allow(clippy::unwrap_used)]

mod suite;

use std::hash::{BuildHasher as _, RandomState};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use postern_counters::{CounterError, CounterSettings, CounterStore, RedisStore};
use suite::Clock;

const TIMEOUT: Duration = Duration::from_millis(200);

/// A `redis-server` of our own; killed on drop. It has a random password,
/// so a test can never talk to another test's server by mistake (a free
/// port found by binding `:0` may be taken again before redis binds it).
struct Server {
    child: Child,
    port: u16,
    password: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// None (after saying so) when redis-server is not installed.
    async fn start() -> Option<Server> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            assert!(
                std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
                "redis-server is required (POSTERN_REQUIRE_TOOLS is set)"
            );
            eprintln!("skipped: redis-server not installed (apt-get install redis-server)");
            return None;
        }
        let password = format!("{:016x}", RandomState::new().hash_one(0u8));
        for _ in 0..5 {
            if let Some(server) = Server::spawn(free_port(), &password).await {
                return Some(server);
            }
        }
        panic!("redis-server did not start on five free ports");
    }

    /// A server on `port` again (after this one was dropped).
    async fn restart(port: u16, password: &str) -> Server {
        Server::spawn(port, password)
            .await
            .unwrap_or_else(|| panic!("redis-server did not restart on port {port}"))
    }

    /// None when it exits (the port was taken) or never answers.
    async fn spawn(port: u16, password: &str) -> Option<Server> {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--requirepass", password])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            password: password.to_owned(),
            _dir: dir,
        };
        // Ready when it answers (with our password).
        let probe = RedisStore::new(&server.url(), "probe:", Duration::from_secs(1)).unwrap();
        for _ in 0..100 {
            if server.child.try_wait().unwrap().is_some() {
                return None;
            }
            if probe.get("ready").await.is_ok() {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password, self.port)
    }

    /// A store under `prefix` on this server, reading `clock`.
    fn store(&self, prefix: &str, clock: &Arc<AtomicU64>) -> RedisStore {
        RedisStore::new(&self.url(), prefix, TIMEOUT)
            .unwrap()
            .with_clock(clock.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `case` with a fresh server, a store on it and its clock.
macro_rules! with_store {
    (|$s:ident, $clock:ident| $body:expr) => {{
        let Some(server) = Server::start().await else {
            return;
        };
        let ($clock, raw) = Clock::wall();
        let $s = server.store("postern-test:", &raw);
        $body;
        let _ = &$clock;
    }};
}

#[tokio::test]
async fn counts_within_a_window() {
    with_store!(|s, clock| suite::counts_within_a_window(&s).await);
}

#[tokio::test]
async fn window_slides() {
    with_store!(|s, clock| suite::window_slides(&s, &clock).await);
}

#[tokio::test]
async fn approximation_bounds() {
    with_store!(|s, clock| suite::approximation_bounds(&s, &clock).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_if_absent_has_one_winner() {
    with_store!(|s, clock| suite::set_if_absent_has_one_winner(Arc::new(s)).await);
}

#[tokio::test]
async fn values_expire() {
    with_store!(|s, clock| suite::values_expire(&s, &clock).await);
}

#[tokio::test]
async fn delete_removes_values_and_counters() {
    with_store!(|s, clock| suite::delete_removes_values_and_counters(&s).await);
}

#[tokio::test]
async fn kinds_do_not_mix() {
    with_store!(|s, clock| suite::kinds_do_not_mix(&s).await);
}

#[tokio::test]
async fn bad_arguments_are_refused() {
    with_store!(|s, clock| suite::bad_arguments_are_refused(&s).await);
}

/// Two nodes (two stores, two connections) on one server add up, and see
/// each other's values; another prefix is another installation.
#[tokio::test]
async fn two_nodes_share_counts() {
    let Some(server) = Server::start().await else {
        return;
    };
    let (clock, raw) = Clock::wall();
    let a = server.store("postern:", &raw);
    let b = server.store("postern:", &raw);
    let other = server.store("other:", &raw);
    let w = suite::WINDOW;
    assert_eq!(a.hit("rcpt:ip:192.0.2.7", 3, w).await.unwrap(), 3);
    assert_eq!(b.hit("rcpt:ip:192.0.2.7", 4, w).await.unwrap(), 7);
    assert_eq!(a.peek("rcpt:ip:192.0.2.7", w).await.unwrap(), 7);
    assert_eq!(other.peek("rcpt:ip:192.0.2.7", w).await.unwrap(), 0);
    clock.advance(w / 2).await;
    assert_eq!(b.hit("rcpt:ip:192.0.2.7", 1, w).await.unwrap(), 8);
    clock.advance(w).await;
    assert_eq!(a.peek("rcpt:ip:192.0.2.7", w).await.unwrap(), 4);
    clock.advance(w).await;
    assert_eq!(a.peek("rcpt:ip:192.0.2.7", w).await.unwrap(), 0);

    assert_eq!(a.set_if_absent("grey:t", 42, w).await.unwrap(), None);
    assert_eq!(b.set_if_absent("grey:t", 43, w).await.unwrap(), Some(42));
    assert_eq!(other.get("grey:t").await.unwrap(), None);
    b.delete("grey:t").await.unwrap();
    assert_eq!(a.get("grey:t").await.unwrap(), None);
    assert_eq!(a.backend(), "redis");
}

/// The layout in Redis is the documented one: a hash per counter with at
/// most three bucket fields and an expiry of at most two windows; a string
/// per value with its TTL.
#[tokio::test]
async fn keys_in_redis_have_the_documented_layout() {
    let Some(server) = Server::start().await else {
        return;
    };
    let (clock, raw) = Clock::wall();
    let s = server.store("postern:", &raw);
    for _ in 0..5 {
        s.hit("c", 1, suite::WINDOW).await.unwrap();
        clock.advance(suite::WINDOW).await;
    }
    s.set("v", 7, suite::WINDOW).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg("postern:c")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(fields.len() <= 3, "{fields:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg("postern:c")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 120_000, "{ttl}");
    let v: String = redis::cmd("GET")
        .arg("postern:v")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, "7");
    // A non-number written by another program is a protocol error.
    let () = redis::cmd("SET")
        .arg("postern:v")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let e = s.get("v").await.unwrap_err();
    assert!(matches!(e, CounterError::Protocol { .. }), "{e:?}");
}

/// Nothing listening: `Unavailable` at once (connection refused).
#[tokio::test]
async fn refused_connection_is_unavailable() {
    let port = free_port();
    let s = RedisStore::new(&format!("redis://127.0.0.1:{port}"), "p:", TIMEOUT).unwrap();
    let e = s.hit("k", 1, suite::WINDOW).await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(e.cause().id, postern_counters::cause::UNAVAILABLE);
}

/// A server that accepts and never answers: `Unavailable` once the
/// timeout has passed (not after the OS's TCP timeouts). The bound is loose
/// (10 × the timeout) so a busy machine cannot fail it; without the
/// timeout the call would hang.
#[tokio::test]
async fn silent_server_is_unavailable_within_the_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let s = RedisStore::new(&format!("redis://127.0.0.1:{port}"), "p:", TIMEOUT).unwrap();
    for op in 0..2 {
        let start = std::time::Instant::now();
        let e = if op == 0 {
            s.hit("k", 1, suite::WINDOW).await.unwrap_err()
        } else {
            s.get("k").await.unwrap_err()
        };
        assert!(e.is_unavailable(), "{e:?}");
        assert!(start.elapsed() < TIMEOUT * 10, "{:?}", start.elapsed());
    }
}

/// Redis goes away and comes back: operations fail as `Unavailable` while
/// it is down, and work again after it restarts (the `ConnectionManager`
/// reconnects; no restart of Postern).
#[tokio::test]
async fn reconnects_after_a_restart() {
    let Some(server) = Server::start().await else {
        return;
    };
    let (port, password) = (server.port, server.password.clone());
    let s = RedisStore::new(&server.url(), "p:", TIMEOUT).unwrap();
    s.set("k", 1, suite::WINDOW).await.unwrap();
    drop(server);
    let e = s.get("k").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    let _server = Server::restart(port, &password).await;
    let mut ok = false;
    for _ in 0..50 {
        if s.set("k", 2, suite::WINDOW).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no reconnection within 5 s");
    assert_eq!(s.get("k").await.unwrap(), Some(2));
}

/// `open` builds the store the settings name.
#[tokio::test]
async fn open_follows_the_settings() {
    let memory = postern_counters::open(&CounterSettings::default()).unwrap();
    assert_eq!(memory.backend(), "memory");
    let no_url = CounterSettings {
        backend: postern_counters::Backend::Redis,
        ..CounterSettings::default()
    };
    assert!(matches!(
        postern_counters::open(&no_url),
        Err(CounterError::Config { .. })
    ));
    let redis = CounterSettings {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..no_url
    };
    assert_eq!(postern_counters::open(&redis).unwrap().backend(), "redis");
}

/// The cost of one `hit` round trip (docs/counters.md):
/// `cargo test --release -p postern-counters --test redis -- --ignored --nocapture hit_cost`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints ns/op"]
async fn hit_cost() {
    let Some(server) = Server::start().await else {
        return;
    };
    let s = Arc::new(RedisStore::new(&server.url(), "postern:", TIMEOUT).unwrap());
    let n = 20_000u32;
    let w = Duration::from_hours(1);
    let start = std::time::Instant::now();
    for i in 0..n {
        s.hit(&format!("rcpt:ip:10.0.0.{}", i % 256), 1, w)
            .await
            .unwrap();
    }
    let sequential = start.elapsed() / n;
    // 32 sessions at once share the multiplexed connection.
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..32u32)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..n / 32 {
                    s.hit(&format!("rcpt:ip:10.1.{t}.{}", i % 256), 1, w)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let concurrent = start.elapsed() / n;
    println!(
        "redis hit: {} ns/op sequential (one round trip each), {} ns/op amortised with 32 concurrent callers",
        sequential.as_nanos(),
        concurrent.as_nanos()
    );
}

/// `rediss://` builds a rustls client on our aws-lc-rs provider (no ring in
/// the tree); a server that does not speak TLS is a clean `Unavailable`,
/// not a panic or a hang.
#[tokio::test]
async fn rediss_to_a_plain_server_is_unavailable() {
    let Some(server) = Server::start().await else {
        return;
    };
    let url = server.url().replacen("redis://", "rediss://", 1);
    let s = RedisStore::new(&url, "p:", TIMEOUT).unwrap();
    let e = s.hit("k", 1, suite::WINDOW).await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

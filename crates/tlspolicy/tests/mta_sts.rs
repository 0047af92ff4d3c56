//! MTA-STS policy fetch and discovery against a local HTTPS server
//! (127.0.0.1, TestCa certificate, custom root store) and FakeDns:
//! RFC 8461 §3.3 (PKIX-verified HTTPS, no redirects, text/plain), bounded
//! size and time (a slow-drip or huge body must not hold a worker), §3.1
//! (TXT selection), §5.1 (cache by id, cached policy used when the TXT
//! record or the fetch fails).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use postern_dns::{DnsSettings, Resolver};
use postern_testkit::{FakeDns, TestCa, mx_tls_config};
use postern_tlspolicy::mta_sts::{
    FetchError, FetchSettings, Mode, MtaSts, PolicyCache, PolicyFetcher, Source, TxtOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.backup.example.test\r\nmax_age: 86400\r\n";

/// What the test server answers.
#[derive(Clone)]
enum Answer {
    /// Status line, headers, body, then close.
    Plain {
        status: &'static str,
        headers: Vec<String>,
        body: Vec<u8>,
    },
    /// Headers, then one byte of body every `every` (never finishing).
    Drip { every: Duration },
}

fn ok(content_type: &str, body: &[u8]) -> Answer {
    Answer::Plain {
        status: "200 OK",
        headers: vec![
            format!("Content-Type: {content_type}"),
            format!("Content-Length: {}", body.len()),
        ],
        body: body.to_vec(),
    }
}

/// A tiny HTTPS/1.1 server: one answer per connection, records request heads.
struct Https {
    port: u16,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<Vec<String>>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Https {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Https {
    async fn start(ca: &TestCa, names: &[&str], answer: Answer) -> Https {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(mx_tls_config(&ca.issue(names)));
        let answer = Arc::new(Mutex::new(answer));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, r, h) = (
            Arc::clone(&answer),
            Arc::clone(&requests),
            Arc::clone(&hits),
        );
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, a, r, h) = (
                    acceptor.clone(),
                    Arc::clone(&a),
                    Arc::clone(&r),
                    Arc::clone(&h),
                );
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    r.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let answer = a.lock().unwrap().clone();
                    match answer {
                        Answer::Plain {
                            status,
                            headers,
                            body,
                        } => {
                            let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
                            for h in headers {
                                out.push_str(&h);
                                out.push_str("\r\n");
                            }
                            out.push_str("\r\n");
                            let _ = tls.write_all(out.as_bytes()).await;
                            let _ = tls.write_all(&body).await;
                        }
                        Answer::Drip { every } => {
                            let _ = tls
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n",
                                )
                                .await;
                            loop {
                                if tls.write_all(b"v").await.is_err() {
                                    return;
                                }
                                let _ = tls.flush().await;
                                tokio::time::sleep(every).await;
                            }
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        Https {
            port,
            answer,
            requests,
            hits,
            task,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct World {
    ca: TestCa,
    dns: FakeDns,
    resolver: Resolver,
}

async fn world() -> World {
    let dns = FakeDns::start().await;
    dns.add_a("mta-sts.example.test", [127, 0, 0, 1]);
    let resolver = Resolver::new(&DnsSettings {
        nameservers: dns.nameservers(),
        ..DnsSettings::default()
    })
    .unwrap();
    World {
        ca: TestCa::new(),
        dns,
        resolver,
    }
}

fn fetcher(w: &World, port: u16, settings: &FetchSettings) -> PolicyFetcher {
    PolicyFetcher::new(
        FetchSettings {
            url_template: format!("https://mta-sts.{{domain}}:{port}/.well-known/mta-sts.txt"),
            ..settings.clone()
        },
        Arc::new(w.ca.root_store()),
        Some(w.resolver.clone()),
    )
    .unwrap()
}

#[tokio::test]
async fn fetches_and_parses_a_policy() {
    let w = world().await;
    let server = Https::start(
        &w.ca,
        &["mta-sts.example.test"],
        ok("text/plain; charset=utf-8", POLICY.as_bytes()),
    )
    .await;
    let f = fetcher(&w, server.port, &FetchSettings::default());
    let got = f.fetch("Example.Test.").await.unwrap();
    assert_eq!(got.policy.mode, Mode::Enforce);
    assert_eq!(got.policy.mx, ["mx1.example.test", "*.backup.example.test"]);
    assert_eq!(got.policy.max_age, 86_400);
    assert_eq!(got.body, POLICY);
    let head = server.requests.lock().unwrap()[0].clone();
    assert!(
        head.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: mta-sts.example.test:{}", server.port)),
        "{head}"
    );
}

type Check = fn(&FetchError) -> bool;

#[tokio::test]
async fn refuses_what_rfc_8461_forbids() {
    let w = world().await;
    let server = Https::start(&w.ca, &["mta-sts.example.test"], ok("text/plain", b"")).await;
    let f = fetcher(&w, server.port, &FetchSettings::default());
    let cases: Vec<(Answer, Check)> = vec![
        (
            Answer::Plain {
                status: "301 Moved Permanently",
                headers: vec!["Location: https://elsewhere.test/policy".into()],
                body: Vec::new(),
            },
            |e| matches!(e, FetchError::Redirect { status: 301, location, .. } if location == "https://elsewhere.test/policy"),
        ),
        (
            Answer::Plain {
                status: "404 Not Found",
                headers: vec!["Content-Type: text/plain".into()],
                body: b"nope".to_vec(),
            },
            |e| matches!(e, FetchError::Status { status: 404, .. }),
        ),
        (
            ok("text/html", POLICY.as_bytes()),
            |e| matches!(e, FetchError::ContentType { found, .. } if found == "text/html"),
        ),
        (
            Answer::Plain {
                status: "200 OK",
                headers: Vec::new(),
                body: POLICY.as_bytes().to_vec(),
            },
            |e| matches!(e, FetchError::ContentType { found, .. } if found.is_empty()),
        ),
        (ok("text/plain", b"version: STSv1\nmode: enforce\n"), |e| {
            matches!(e, FetchError::Policy { .. })
        }),
    ];
    for (answer, check) in cases {
        server.set(answer);
        let err = f.fetch("example.test").await.unwrap_err();
        assert!(check(&err), "{err}");
    }
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let w = world().await;
    let big = vec![b'#'; 70 * 1024];
    // Declared too large.
    let server = Https::start(&w.ca, &["mta-sts.example.test"], ok("text/plain", &big)).await;
    let f = fetcher(&w, server.port, &FetchSettings::default());
    let err = f.fetch("example.test").await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 65_536, .. }),
        "{err}"
    );
    // No length: read until close, cut at the limit.
    server.set(Answer::Plain {
        status: "200 OK",
        headers: vec!["Content-Type: text/plain".into()],
        body: big,
    });
    let err = f.fetch("example.test").await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    // A smaller configured limit applies to a normal policy too.
    server.set(ok("text/plain", POLICY.as_bytes()));
    let small = fetcher(
        &w,
        server.port,
        &FetchSettings {
            max_size: 16,
            ..FetchSettings::default()
        },
    );
    assert!(matches!(
        small.fetch("example.test").await,
        Err(FetchError::TooLarge { limit: 16, .. })
    ));
}

#[tokio::test]
async fn slow_bodies_time_out() {
    let w = world().await;
    let server = Https::start(
        &w.ca,
        &["mta-sts.example.test"],
        Answer::Drip {
            every: Duration::from_millis(100),
        },
    )
    .await;
    let f = fetcher(
        &w,
        server.port,
        &FetchSettings {
            timeout: Duration::from_millis(800),
            ..FetchSettings::default()
        },
    );
    let started = std::time::Instant::now();
    let err = f.fetch("example.test").await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn certificates_are_verified() {
    let w = world().await;
    // Certificate for another name.
    let server = Https::start(
        &w.ca,
        &["www.example.test"],
        ok("text/plain", POLICY.as_bytes()),
    )
    .await;
    let err = fetcher(&w, server.port, &FetchSettings::default())
        .fetch("example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Request { detail, .. } if detail.contains("certificate")),
        "{err}"
    );
    // Certificate from a CA we do not trust.
    let stranger = TestCa::new();
    let server = Https::start(
        &stranger,
        &["mta-sts.example.test"],
        ok("text/plain", POLICY.as_bytes()),
    )
    .await;
    let err = fetcher(&w, server.port, &FetchSettings::default())
        .fetch("example.test")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Request { detail, .. } if detail.contains("certificate")),
        "{err}"
    );
}

#[tokio::test]
async fn discovery_uses_the_cache_by_id() {
    let w = world().await;
    let server = Https::start(
        &w.ca,
        &["mta-sts.example.test"],
        ok("text/plain", POLICY.as_bytes()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sts = MtaSts::new(
        fetcher(&w, server.port, &FetchSettings::default()),
        Some(PolicyCache::open(dir.path()).unwrap()),
    );
    let now = SystemTime::now();

    // No TXT record, nothing cached: no policy, no fetch.
    let d = sts.discover(&w.resolver, "example.test", now).await;
    assert!(matches!(d.txt, TxtOutcome::Absent { .. }), "{d:?}");
    assert!(d.policy.is_none());
    assert_eq!(server.hits(), 0);

    // TXT record: fetched and cached.
    w.dns
        .add_txt("_mta-sts.example.test", "v=STSv1; id=20260101");
    let d = sts.discover(&w.resolver, "example.test", now).await;
    let p = d.effective().unwrap();
    assert_eq!((p.source, p.id.as_str()), (Source::Fetched, "20260101"));
    assert_eq!(server.hits(), 1);

    // Same id: from the cache.
    let d = sts.discover(&w.resolver, "example.test", now).await;
    assert_eq!(d.policy.unwrap().source, Source::Cache);
    assert_eq!(server.hits(), 1);

    // New id: fetched again; the server now says testing.
    server.set(ok(
        "text/plain",
        POLICY.replace("enforce", "testing").as_bytes(),
    ));
    w.dns.remove("_mta-sts.example.test");
    w.dns
        .add_txt("_mta-sts.example.test", "v=STSv1; id=20260202");
    let d = sts.discover(&w.resolver, "example.test", now).await;
    let p = d.policy.unwrap();
    assert_eq!((p.source, p.policy.mode), (Source::Fetched, Mode::Testing));
    assert_eq!(server.hits(), 2);

    // TXT gone (an attacker blocking it): the unexpired cached policy stays.
    w.dns.remove("_mta-sts.example.test");
    let d = sts.discover(&w.resolver, "example.test", now).await;
    assert_eq!(d.policy.unwrap().id, "20260202");

    // New id but the fetch fails: the cached policy stays, the error is told.
    w.dns
        .add_txt("_mta-sts.example.test", "v=STSv1; id=20260303");
    server.set(ok("text/html", b"<html>"));
    let d = sts.discover(&w.resolver, "example.test", now).await;
    assert!(d.fetch_error.is_some());
    assert_eq!(d.policy.unwrap().id, "20260202");

    // After max_age the cached policy is gone too.
    let later = now + Duration::from_secs(86_400 + 1);
    let d = sts.discover(&w.resolver, "example.test", later).await;
    assert!(d.policy.is_none());
    assert!(d.fetch_error.is_some());

    // Two v=STSv1 records: no policy (RFC 8461 §3.1).
    w.dns.add_txt("_mta-sts.example.test", "v=STSv1; id=other");
    let uncached = MtaSts::new(fetcher(&w, server.port, &FetchSettings::default()), None);
    let d = uncached.discover(&w.resolver, "example.test", later).await;
    assert!(
        matches!(&d.txt, TxtOutcome::Absent { reason } if reason.contains("2 TXT records")),
        "{d:?}"
    );
}

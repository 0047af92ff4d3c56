//! The admin HTTP API over real HTTP on 127.0.0.1: every route of the
//! OpenAPI document needs authentication and is served (the document and the
//! router agree), sessions and tokens reach every route, tracking routes
//! answer from a real SQLite store (503 when tracking is off), `/healthz` and
//! `/readyz` (503 when the spool is poisoned or delivery stopped), `/metrics`
//! auth and exposition, TLS with a test CA (Secure `__Host-` cookie), the
//! refusal to serve off loopback without TLS, and the body limit.

#![allow(clippy::unwrap_used)]

mod http_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_support::{Extras, PASSWORD, Server, USER};
use postern_admin::http::auth::TokenStore;
use postern_admin::{AdminError, HttpSettings, Poisoned};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// Every route the API documents: method and path. The OpenAPI document
/// must list exactly these.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/whoami"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/queue"),
    ("get", "/api/v1/queue/{id}"),
    ("delete", "/api/v1/queue/{id}"),
    ("post", "/api/v1/queue/{id}/hold"),
    ("post", "/api/v1/queue/{id}/release"),
    ("post", "/api/v1/queue/{id}/retry"),
    ("post", "/api/v1/queue/retry"),
    ("post", "/api/v1/queue/flush/{domain}"),
    ("get", "/api/v1/quarantine"),
    ("get", "/api/v1/quarantine/{id}"),
    ("delete", "/api/v1/quarantine/{id}"),
    ("post", "/api/v1/quarantine/{id}/release"),
    ("post", "/api/v1/spool/recheck"),
    ("get", "/api/v1/track/search"),
    ("get", "/api/v1/track/{id}"),
    ("get", "/api/v1/track/{id}/evidence"),
    ("get", "/api/v1/posture"),
    ("get", "/api/v1/summary"),
    ("post", "/login"),
    ("post", "/logout"),
    ("get", "/api/login"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

/// Served without authentication.
const PUBLIC: &[&str] = &["/login", "/api/login", "/healthz", "/readyz"];

fn concrete(s: &Server, path: &str) -> String {
    path.replace("{id}", s.queued.as_str())
        .replace("{domain}", "example.net")
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_needs_auth() {
    let s = Server::start().await;
    let doc = s.get("/api/openapi.json", &[]).await;
    assert_eq!(doc.status, 200, "the document is public");
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected, "the document lists exactly the routes");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for k in ["bearer", "session", "csrf"] {
        assert!(schemes.contains_key(k), "security scheme {k}");
    }
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");

    for (method, path) in ROUTES {
        if PUBLIC.contains(path) {
            continue;
        }
        let url = concrete(&s, path);
        let r = s.req(&method.to_uppercase(), &url, &[], "").await;
        assert_eq!(r.status, 401, "{method} {url} without auth: {}", r.body);
        assert!(r.json()["error"].is_string());
        let r = s
            .req(&method.to_uppercase(), &url, &[("Accept", "text/html")], "")
            .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/login")),
            "{method} {url}: pages go to the login form"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn sessions_and_tokens_reach_every_route() {
    let s = Server::start().await;
    let (cookie, csrf) = s.login().await;
    let secret = TokenStore::open(&s.state.settings.tokens_file)
        .unwrap()
        .create("ci")
        .unwrap();
    let bearer = format!("Bearer {secret}");
    // Reads first, deletes last (the message must exist for the others).
    let mut routes = ROUTES.to_vec();
    routes.sort_by_key(|(m, _)| match *m {
        "get" => 0,
        "delete" => 2,
        _ => 1,
    });
    for (method, path) in &routes {
        if ["/login", "/logout", "/api/login"].contains(path) {
            continue;
        }
        let url = concrete(&s, path);
        let m = method.to_uppercase();
        for (who, headers) in [
            (
                "session",
                vec![("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
            ),
            ("token", vec![("Authorization", bearer.as_str())]),
        ] {
            let r = s.req(&m, &url, &headers, "").await;
            // Served by its handler: not refused, not the router's fallback.
            assert!(
                ![401, 403].contains(&r.status) && !r.body.contains("no such page or endpoint"),
                "{who}: {m} {url}: {} {}",
                r.status,
                r.body
            );
            if m == "GET" {
                assert_eq!(r.status, 200, "{who}: {m} {url}: {}", r.body);
            }
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn tracking_answers_from_the_store() {
    let s = Server::start().await;
    let (cookie, _) = s.login().await;
    let c = [("Cookie", cookie.as_str())];
    let r = s
        .get(
            "/api/v1/track/search?recipient=@example.net&event=received",
            &c,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["queue_id"], s.queued.as_str());
    let r = s
        .get("/api/v1/track/search?recipient=nobody@example.org", &c)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = s.get("/api/v1/track/search?start=yesterday", &c).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("RFC 3339"));
    let life = s.get(&format!("/api/v1/track/{}", s.queued), &c).await;
    assert_eq!(life.status, 200, "{}", life.body);
    assert_eq!(life.json()["queue_id"], s.queued.as_str());
    let ev = s
        .get(&format!("/api/v1/track/{}/evidence", s.queued), &c)
        .await;
    assert_eq!(ev.status, 200, "{}", ev.body);
    assert_eq!(ev.json()["inbound"]["client_ip"], "192.0.2.7");
    let r = s.get("/api/v1/track/0000000000000000", &c).await;
    assert_eq!(r.status, 404);
    let r = s.get("/api/v1/posture?direction=sideways", &c).await;
    assert_eq!(r.status, 400);
    s.stop().await;

    let off = Server::start_with(
        |_| {},
        None,
        Extras {
            tracking: false,
            metrics: false,
        },
    )
    .await;
    let (cookie, _) = off.login().await;
    let r = off
        .get("/api/v1/summary", &[("Cookie", cookie.as_str())])
        .await;
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("[tracking]"));
    off.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start().await;
    let r = s.get("/healthz", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = s.get("/readyz", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    *s.control.poisoned.lock().unwrap() = Some(Poisoned {
        op: "fsync file".into(),
        path: "/secret/spool/tmp/X".into(),
        error: "Input/output error (os error 5)".into(),
        since: "2026-12-06T12:00:00Z".into(),
    });
    let r = s.get("/readyz", &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.starts_with("not ready: spool poisoned"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("/secret"), "no paths to anonymous callers");
    assert_eq!(r.body.lines().count(), 1);
    *s.control.poisoned.lock().unwrap() = None;
    s.control.stopped.store(true, Ordering::SeqCst);
    let r = s.get("/readyz", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: delivery is stopped\n")
    );
    assert_eq!(s.get("/healthz", &[]).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn metrics_need_auth_unless_public() {
    let s = Server::start().await;
    assert_eq!(s.get("/metrics", &[]).await.status, 401);
    let secret = TokenStore::open(&s.state.settings.tokens_file)
        .unwrap()
        .create("prometheus")
        .unwrap();
    let r = s
        .get(
            "/metrics",
            &[("Authorization", &format!("Bearer {secret}"))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // The scrape reads the queue: one message, not held.
    let line = r
        .body
        .lines()
        .find(|l| l.starts_with("postern_queue_messages{"))
        .unwrap_or_else(|| panic!("{}", r.body));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(r.body.contains("postern_delivery_running"), "{}", r.body);
    s.stop().await;

    let public = Server::start_with(|st| st.public_metrics = true, None, Extras::default()).await;
    assert_eq!(public.get("/metrics", &[]).await.status, 200);
    public.stop().await;
}

#[tokio::test]
async fn tls_listener_with_secure_cookies() {
    let ca = postern_testkit::TestCa::new();
    let leaf = ca.issue(&["localhost"]);
    let server_cfg = postern_testkit::mx_tls_config(&leaf);
    let client_cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(ca.root_store())
    .with_no_client_auth();
    let s = Server::start_with(
        |_| {},
        Some((server_cfg, Arc::new(client_cfg))),
        Extras::default(),
    )
    .await;
    let r = s.login_as(USER, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.set_cookie("__Host-postern_session").unwrap();
    assert!(
        set.contains("Secure")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/"),
        "{set}"
    );
    assert!(r.set_cookie("postern_session").is_none());
    let (cookie, _) = s.login().await;
    let who = s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await;
    assert_eq!(who.status, 200);
    assert!(who.header("strict-transport-security").is_some());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    s.stop().await;
}

#[tokio::test]
async fn refuses_to_serve_off_loopback_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = HttpSettings::new(dir.path());
    settings.listen = Some("0.0.0.0:0".parse().unwrap());
    let s = Server::start().await;
    let err = postern_admin::http::serve(&settings, s.state.clone(), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::HttpNeedsTls(_)), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    settings.listen = Some("[::1]:0".parse().unwrap());
    assert!(postern_admin::http::check_listen(settings.listen.unwrap(), false).is_ok());
    assert!(postern_admin::http::check_listen("192.0.2.1:8025".parse().unwrap(), true).is_ok());
    assert!(postern_admin::http::check_listen("127.0.0.2:8025".parse().unwrap(), false).is_ok());
    s.stop().await;
}

#[tokio::test]
async fn large_bodies_are_refused() {
    let s = Server::start().await;
    let (cookie, csrf) = s.login().await;
    let body = "x".repeat(70 * 1024);
    let r = s
        .req(
            "POST",
            "/api/v1/queue/retry",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            &body,
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    // No route: the JSON fallback, with the security headers.
    let r = s.get("/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-security-policy").is_some());
    s.stop().await;
}

/// One client cannot take every connection slot with idle connections: past
/// its share its connections are closed at once, another client is served,
/// and the first is served again once it lets go.
#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = Server::start().await;
    let mut idle = Vec::new();
    for _ in 0..postern_admin::http::MAX_PER_CLIENT {
        idle.push(tokio::net::TcpStream::connect(s.addr).await.unwrap());
    }
    // The next one from the same address is closed without an answer.
    let mut extra = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        extra.read_to_end(&mut buf),
    )
    .await
    .expect("closed promptly")
    .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf));
    // Another client (127.0.0.2) is served meanwhile.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = sock.connect(s.addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);
    let mut ok = false;
    for _ in 0..100 {
        if s.get("/healthz", &[]).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "served again after letting go");
    s.stop().await;
}

//! The admin HTTP listener's names and where logins come from, over real
//! HTTP on 127/8: the `Host` check against DNS rebinding (421 for a name not
//! configured, 400 without exactly one Host; health probes and Bearer
//! requests exempt), the public URL behind a TLS-ending proxy (its Origin
//! accepted, cookies `Secure` with `__Host-`), and the login limiter seen
//! from many client addresses: a distributed guesser is stopped, the admin's
//! own address still gets in.

#![allow(clippy::unwrap_used)]

mod http_support;

use std::net::{IpAddr, Ipv4Addr};

use http_support::{Extras, PASSWORD, Server, USER};
use postern_admin::http::auth::TokenStore;
use postern_admin::http::auth::limiter::{MAX_FAILURES, MAX_NAME_FAILURES};
use postern_admin::http::{HostNames, PublicUrl};

fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

#[tokio::test]
async fn names_not_configured_are_misdirected() {
    let s = Server::start_with(
        |h| h.names = HostNames::new(["mail.example.com"]),
        None,
        Extras::default(),
    )
    .await;
    let port = s.addr.port();
    let get = |host: Option<String>, path: &'static str, headers: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.req_as(None, host.as_deref(), "GET", path, &h, "").await
        }
    };
    // Ours: IP literals, localhost, the configured name (any case, port,
    // trailing dot).
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("MAIL.example.com.:{port}"),
        "[::1]".to_owned(),
    ] {
        let r = get(Some(host.clone()), "/api/login", vec![]).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // A rebinding name: refused before routing, login page included, with
    // the security headers still on.
    for path in ["/api/login", "/login", "/metrics", "/no/such/page"] {
        let r = get(Some(format!("attacker.example:{port}")), path, vec![]).await;
        assert_eq!(r.status, 421, "{path}: {}", r.body);
        assert!(r.body.contains("http_names"), "{}", r.body);
        assert!(r.header("content-security-policy").is_some());
    }
    let r = get(
        Some("mail.example.com.attacker.example".into()),
        "/login",
        vec![],
    )
    .await;
    assert_eq!(r.status, 421);
    // RFC 9112 §3.2: no Host, or two, is a bad request.
    let r = get(None, "/api/login", vec![]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = get(
        Some("localhost".into()),
        "/api/login",
        vec![("Host", "attacker.example".into())],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Health probes answer whatever name the load balancer uses.
    let r = get(Some("lb-probe.internal".into()), "/healthz", vec![]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A script with a token reaches the API by its own name; a wrong token
    // is still refused (the exemption skips only the name check).
    let token = TokenStore::open(&s.state.settings.tokens_file)
        .unwrap()
        .create("prometheus")
        .unwrap();
    let r = get(
        Some("scrape.internal:9090".into()),
        "/api/v1/whoami",
        vec![("Authorization", format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A rebinding page can add any Authorization header to its same-origin
    // requests: a token that does not verify earns no exemption…
    for path in [
        "/api/login",
        "/login",
        "/api/openapi.json",
        "/api/v1/whoami",
    ] {
        let r = get(
            Some(format!("attacker.example:{port}")),
            path,
            vec![("Authorization", "Bearer x".into())],
        )
        .await;
        assert_eq!(r.status, 421, "{path}: {}", r.body);
    }
    let r = s
        .req_as(
            None,
            Some(&format!("attacker.example:{port}")),
            "POST",
            "/login",
            &[
                ("Authorization", "Bearer x"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "user=alice&password=guess&csrf=x",
        )
        .await;
    assert_eq!(r.status, 421, "{}", r.body);
    // …and under our own name a wrong token is refused on every route, the
    // public ones included (never treated as anonymous).
    for path in ["/api/login", "/api/v1/whoami", "/api/openapi.json"] {
        let r = get(
            Some(format!("localhost:{port}")),
            path,
            vec![("Authorization", "Bearer pst_wrong".into())],
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.contains("invalid_token"))
        );
    }
    let r = get(
        Some("lb.internal".into()),
        "/readyz",
        vec![("Authorization", "Bearer pst_wrong".into())],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn behind_a_tls_ending_proxy() {
    let s = Server::start_with(
        |h| {
            h.public_url = Some(PublicUrl::parse("https://console.example.com").unwrap());
            h.names = HostNames::new(["console.example.com"]);
        },
        None,
        Extras::default(),
    )
    .await;
    // The proxy forwards the browser's Host and Origin over plain HTTP on
    // loopback.
    let host = Some("console.example.com");
    let pre = s.req_as(None, host, "GET", "/api/login", &[], "").await;
    assert_eq!(pre.status, 200, "{}", pre.body);
    let set = pre.set_cookie("__Host-postern_login").unwrap();
    assert!(set.contains("Secure"), "{set}");
    let cookie = pre.cookie_pair("__Host-postern_login").unwrap();
    let csrf = pre.json()["csrf"].as_str().unwrap().to_owned();
    let body =
        serde_urlencoded::to_string([("user", USER), ("password", PASSWORD), ("csrf", &csrf)])
            .unwrap();
    let login = |origin: &'static str| {
        let (s, cookie, body) = (&s, cookie.clone(), body.clone());
        async move {
            s.req_as(
                None,
                host,
                "POST",
                "/login",
                &[
                    ("Cookie", &cookie),
                    ("Origin", origin),
                    ("Sec-Fetch-Site", "same-origin"),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Accept", "application/json"),
                ],
                &body,
            )
            .await
        }
    };
    // The listener's own scheme (http) is not the browser's: only the
    // public URL's origin makes this pass.
    let r = login("http://attacker.example").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = login("https://console.example.com").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.set_cookie("__Host-postern_session").unwrap();
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
    s.stop().await;
}

#[tokio::test]
async fn a_distributed_guesser_cannot_lock_the_admin_out() {
    let s = Server::start().await;
    let login_from =
        |src: IpAddr, password: &'static str| login_status(&s, Some(src), None, password);
    // The admin logs in from 127.0.0.2.
    assert_eq!(login_from(lo(2), PASSWORD).await, 200);
    // Guessers on 127.0.0.10… spend the name's allowance (a few guesses
    // each, under the per-address limit).
    let per = MAX_FAILURES - 1;
    let mut statuses = Vec::new();
    for i in 0..(MAX_NAME_FAILURES / per + 2) {
        for _ in 0..per {
            statuses.push(login_from(lo(10 + u8::try_from(i).unwrap()), "guess guess guess").await);
        }
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let failed = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(failed, MAX_NAME_FAILURES as usize, "{statuses:?}");
    assert!(refused > 0, "{statuses:?}");
    // A new address is refused even with the right password…
    assert_eq!(login_from(lo(200), PASSWORD).await, 429);
    // …but the admin's own address still gets in.
    assert_eq!(login_from(lo(2), PASSWORD).await, 200);
    s.stop().await;
}

/// Logs in as the test user from source address `src` (a 127/8 address;
/// `None`: the system's choice), through a proxy that says the browser is
/// `forwarded_for` when given (`X-Forwarded-For`); the status.
async fn login_status(
    s: &Server,
    src: Option<IpAddr>,
    forwarded_for: Option<&str>,
    password: &str,
) -> u16 {
    let host = s.host();
    let xff: Vec<(&str, &str)> = forwarded_for
        .map(|c| ("X-Forwarded-For", c))
        .into_iter()
        .collect();
    let pre = s
        .req_as(src, Some(&host), "GET", "/api/login", &xff, "")
        .await;
    let csrf = pre.json()["csrf"].as_str().unwrap().to_owned();
    let cookie = pre.cookie_pair("postern_login").unwrap();
    let body =
        serde_urlencoded::to_string([("user", USER), ("password", password), ("csrf", &csrf)])
            .unwrap();
    let mut headers = xff;
    headers.extend([
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
    ]);
    s.req_as(src, Some(&host), "POST", "/login", &headers, &body)
        .await
        .status
}

/// [`login_status`] through a proxy on 127.0.0.1 naming `client`.
async fn login_via_proxy(s: &Server, client: &str, password: &str) -> u16 {
    login_status(s, None, Some(client), password).await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_browser_has_its_own_limit() {
    let s = Server::start_with(
        |h| h.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
        None,
        Extras::default(),
    )
    .await;
    // A guesser behind the proxy spends its own address's limit…
    for _ in 0..MAX_FAILURES {
        assert_eq!(
            login_via_proxy(&s, "203.0.113.66", "guess guess guess").await,
            401
        );
    }
    assert_eq!(login_via_proxy(&s, "203.0.113.66", PASSWORD).await, 429);
    // …and forging an entry to the left of what the proxy appended does
    // not give it a new one.
    assert_eq!(
        login_via_proxy(&s, "198.51.100.1, 203.0.113.66", PASSWORD).await,
        429
    );
    // The admin, another browser behind the same proxy, gets in.
    assert_eq!(login_via_proxy(&s, "192.0.2.10", PASSWORD).await, 200);
    s.stop().await;

    // Without the setting the header is not believed: everyone behind the
    // proxy is the proxy.
    let s = Server::start().await;
    for i in 0..MAX_FAILURES {
        let forged = format!("203.0.113.{i}");
        assert_eq!(login_via_proxy(&s, &forged, "guess guess guess").await, 401);
    }
    assert_eq!(login_via_proxy(&s, "192.0.2.10", PASSWORD).await, 429);
    s.stop().await;
}

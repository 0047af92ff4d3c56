//! The admin HTTP listener's authentication over real HTTP on 127.0.0.1:
//! login with a real argon2 hash, session cookies and their flags, CSRF on
//! every state change (token, Origin, Sec-Fetch-Site), Bearer tokens and their
//! revocation on disk, the login rate limit, session expiry (manual clock),
//! logout.

#![allow(clippy::unwrap_used)]

mod http_support;

use std::time::Duration;

use http_support::{PASSWORD, Server, USER};
use postern_admin::http::auth::TokenStore;

/// Whether the queued message is held (read back through the API).
async fn held(s: &Server, cookie: &str) -> bool {
    let r = s
        .get(
            &format!("/api/v1/queue/{}", s.queued),
            &[("Cookie", cookie)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["message"]["state"] == "held"
}

#[tokio::test]
async fn session_login_whoami_logout() {
    let s = Server::start().await;
    let r = s.login_as(USER, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.set_cookie("postern_session").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS, no Secure: {set}");
    let id = set.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(id.len(), 43, "256-bit id");
    // The pre-session cookie is cleared.
    assert!(r.set_cookie("postern_login").unwrap().contains("Max-Age=0"));
    let (cookie, csrf) = s.login().await;
    let who = s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.json()["user"], USER);
    assert_eq!(who.json()["via"], "session");
    assert_eq!(who.json()["csrf"], csrf.as_str());
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(who.header(h).is_some(), "{h} missing");
    }
    assert_eq!(who.header("cache-control"), Some("no-store"));
    assert!(
        who.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    // Logout needs the CSRF token too, then the session is gone.
    let r = s.req("POST", "/logout", &[("Cookie", &cookie)], "").await;
    assert_eq!(r.status, 403);
    let r = s
        .req(
            "POST",
            "/logout",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            "",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_alike() {
    let s = Server::start().await;
    let a = s.login_as(USER, "wrong password!").await;
    let b = s.login_as("nobody", "wrong password!").await;
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(a.body, b.body);
    assert!(a.set_cookie("postern_session").is_none());
    // A browser is sent back to the form with the error code.
    let pre = s.get("/api/login", &[]).await;
    let csrf = pre.json()["csrf"].as_str().unwrap().to_owned();
    let cookie = pre.cookie_pair("postern_login").unwrap();
    let body = format!("user=nobody&password=x&csrf={csrf}");
    let r = s
        .req(
            "POST",
            "/login",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "text/html"),
            ],
            &body,
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?error=invalid"));
    // Without the pre-session cookie the form token is refused.
    let r = s
        .req(
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!(
                "user={USER}&password={}&csrf={csrf}",
                PASSWORD.replace(' ', "+")
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn csrf_is_enforced_on_state_changes() {
    let s = Server::start().await;
    let (cookie, csrf) = s.login().await;
    let hold = format!("/api/v1/queue/{}/hold", s.queued);
    let origin = format!("http://{}", s.host());
    let refused: [(&str, Vec<(&str, &str)>); 5] = [
        ("no token", vec![("Cookie", &cookie)]),
        (
            "wrong token",
            vec![("Cookie", &cookie), ("X-CSRF-Token", "x".repeat(43).leak())],
        ),
        (
            "foreign Origin",
            vec![
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
                ("Origin", "http://evil.example"),
            ],
        ),
        (
            "Origin null without Fetch Metadata",
            vec![
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
                ("Origin", "null"),
            ],
        ),
        (
            "cross-site fetch",
            vec![
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ),
    ];
    for (what, headers) in &refused {
        let r = s.req("POST", &hold, headers, "").await;
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        assert!(!held(&s, &cookie).await, "{what}: nothing changed");
    }
    // A form field works like the header; same-origin fetch metadata passes.
    let r = s
        .req(
            "POST",
            &hold,
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("Sec-Fetch-Site", "same-origin"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("csrf={csrf}&confirm=yes"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outcome"], "done");
    assert!(held(&s, &cookie).await);
    // A browser's own form POST under Referrer-Policy: no-referrer: Origin null,
    // Sec-Fetch-Site same-origin.
    let r = s
        .req(
            "POST",
            &format!("/api/v1/queue/{}/release", s.queued),
            &[
                ("Cookie", &cookie),
                ("Origin", "null"),
                ("Sec-Fetch-Site", "same-origin"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!held(&s, &cookie).await);
    let r = s
        .req(
            "POST",
            &format!("/api/v1/queue/{}/hold", s.queued),
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .req(
            "POST",
            &format!("/api/v1/queue/{}/release", s.queued),
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!held(&s, &cookie).await);
    s.stop().await;
}

#[tokio::test]
async fn bearer_tokens_work_until_revoked_on_disk() {
    let s = Server::start().await;
    // The CLI (another process) creates the token in the file.
    let cli = TokenStore::open(&s.state.settings.tokens_file).unwrap();
    let secret = cli.create("ci").unwrap();
    let bearer = format!("Bearer {secret}");
    let who = s.get("/api/v1/whoami", &[("Authorization", &bearer)]).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.json()["via"], "token");
    assert_eq!(who.json()["token"], "ci");
    // State changes need no CSRF token with a Bearer token.
    let r = s
        .req(
            "POST",
            &format!("/api/v1/queue/{}/hold", s.queued),
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    cli.revoke("ci").unwrap();
    let r = s.get("/api/v1/status", &[("Authorization", &bearer)]).await;
    assert_eq!(r.status, 401, "revocation takes effect at once");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let r = s
        .get("/api/v1/status", &[("Authorization", "Bearer pst_guess")])
        .await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited() {
    let s = Server::start().await;
    for _ in 0..5 {
        assert_eq!(s.login_as(USER, "not the password").await.status, 401);
    }
    let r = s.login_as(USER, PASSWORD).await;
    assert_eq!(r.status, 429, "even the right password waits: {}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    s.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(s.login_as(USER, PASSWORD).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn idle_sessions_expire() {
    let s = Server::start().await;
    let (cookie, _) = s.login().await;
    s.clock.advance(Duration::from_mins(29));
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        200
    );
    s.clock.advance(Duration::from_mins(29));
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        200,
        "used 29 minutes ago"
    );
    s.clock.advance(Duration::from_mins(31));
    let r = s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 401, "idle for 31 minutes");
    // A page is sent to the login form instead.
    let r = s
        .get(
            "/api/v1/status",
            &[("Cookie", &cookie), ("Accept", "text/html")],
        )
        .await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    s.stop().await;
}

#[tokio::test]
async fn login_rotates_the_session_id() {
    let s = Server::start().await;
    let (first, _) = s.login().await;
    let pre = s.get("/api/login", &[]).await;
    let csrf = pre.json()["csrf"].as_str().unwrap().to_owned();
    let login_cookie = pre.cookie_pair("postern_login").unwrap();
    let body =
        serde_urlencoded::to_string([("user", USER), ("password", PASSWORD), ("csrf", &csrf)])
            .unwrap();
    let r = s
        .req(
            "POST",
            "/login",
            &[
                ("Cookie", &format!("{first}; {login_cookie}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
            ],
            &body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.cookie_pair("postern_session").unwrap();
    assert_ne!(first, second);
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &first)]).await.status,
        401
    );
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &second)]).await.status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn password_change_or_removal_ends_sessions() {
    let s = Server::start().await;
    let (cookie, _) = s.login().await;
    // The CLI, another process, changes the password in the file.
    let cli = postern_admin::http::auth::UserStore::open(&s.state.settings.users_file).unwrap();
    cli.set_password(USER, "a new long password").unwrap();
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        401
    );
    let r = s.login_as(USER, "a new long password").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.cookie_pair("postern_session").unwrap();
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        200
    );
    cli.remove(USER).unwrap();
    assert_eq!(
        s.get("/api/v1/whoami", &[("Cookie", &cookie)]).await.status,
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn htmx_requests_are_told_to_go_to_the_login_page() {
    let s = Server::start().await;
    let r = s
        .get(
            "/api/v1/status",
            &[("HX-Request", "true"), ("Accept", "text/html")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("hx-redirect"), Some("/login"));
    s.stop().await;
}

#[tokio::test]
async fn read_only_tokens_cannot_change_anything() {
    let s = Server::start().await;
    let secret = TokenStore::open(&s.state.settings.tokens_file)
        .unwrap()
        .create_scoped("grafana", postern_admin::http::auth::TokenScope::Read)
        .unwrap();
    let bearer = format!("Bearer {secret}");
    let who = s.get("/api/v1/whoami", &[("Authorization", &bearer)]).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.json()["read_only"], true);
    assert_eq!(
        s.get("/api/v1/queue", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );
    assert_eq!(
        s.get("/metrics", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );
    let r = s
        .req(
            "POST",
            &format!("/api/v1/queue/{}/hold", s.queued),
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("read-only"));
    let r = s
        .req(
            "DELETE",
            &format!("/api/v1/queue/{}", s.queued),
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(r.status, 403);
    let (cookie, _) = s.login().await;
    assert!(!held(&s, &cookie).await, "nothing changed");
    let r = s
        .get(
            &format!("/api/v1/queue/{}", s.queued),
            &[("Cookie", &cookie)],
        )
        .await;
    assert_eq!(r.status, 200, "still queued");
    s.stop().await;
}

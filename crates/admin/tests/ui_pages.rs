//! The web console's pages over real HTTP on 127.0.0.1: a real spool in a temp
//! dir behind the queue, a real SQLite tracking store filled from real event
//! constructors, a real user and session. Checks what each page shows, that
//! hostile text (a `<script>` subject, HTML in replies, HELO names, SANs and
//! verdicts) is escaped and that control and bidirectional formatting
//! characters reach no page, that every POST form carries the session's CSRF
//! token, that verbs need a confirmation, and that nothing answers without a
//! session.

#![allow(clippy::unwrap_used, clippy::many_single_char_names)]

mod ui_support;

use postern_admin::view::{Lifetimes, read_one};
use postern_spool::QueueId;
use ui_support::{Client, Console, hidden, start};

const PAGES: &[&str] = &[
    "/",
    "/queue",
    "/track",
    "/posture",
    "/quarantine",
    "/config",
];

/// Raw hostile markup never reaches a page; its escaped form may.
fn assert_escaped(path: &str, body: &str) {
    for raw in [
        "<script>alert",
        "<b>",
        "<i>x</i>",
        "<img src=x>",
        "<script>x</script>",
    ] {
        assert!(!body.contains(raw), "{path} contains raw {raw:?}");
    }
}

/// Every `method="post"` form carries the token; returns how many there are.
fn assert_csrf(path: &str, body: &str, token: &str) -> usize {
    let mut n = 0;
    for form in body.split("<form").skip(1) {
        let form = &form[..form.find("</form>").unwrap()];
        if form.contains("method=\"post\"") {
            n += 1;
            assert_eq!(
                hidden(form, "csrf").as_deref(),
                Some(token),
                "{path}: a POST form without the session's CSRF token:\n{form}"
            );
        }
    }
    n
}

fn held(c: &Console, id: QueueId) -> Option<bool> {
    read_one(&c.dir.path().join("spool"), &id, &Lifetimes::default())
        .unwrap()
        .map(|m| m.state.is_held())
}

#[tokio::test]
async fn no_page_without_a_session() {
    let c = start(true, true).await;
    let mut anon = Client::new(c.addr);
    let id = c.seeded.queued.to_string();
    let mut paths: Vec<String> = PAGES.iter().map(|p| (*p).to_owned()).collect();
    paths.push(format!("/queue/{id}"));
    paths.push(format!("/track/{}", c.seeded.delivered));
    paths.push(format!("/quarantine/{}", c.seeded.quarantined));
    for p in &paths {
        let r = anon.get(p).await;
        assert!(
            r.status == 303 || r.status == 302 || r.status == 401,
            "{p}: {} {}",
            r.status,
            r.body
        );
        if r.status != 401 {
            assert!(r.location().starts_with("/login"), "{p}: {}", r.location());
        }
        assert!(!r.body.contains(&id), "{p} leaks the queue");
    }
    // A confirmed verb without a session does nothing.
    let r = anon
        .post(&format!("/queue/{id}/hold"), &[("confirm", "yes")])
        .await;
    assert!(matches!(r.status, 302 | 303 | 401 | 403), "{}", r.status);
    assert_eq!(held(&c, c.seeded.queued), Some(false));
    // The login page and the static files need none.
    assert_eq!(anon.get("/login").await.status, 200);
    assert_eq!(anon.get("/static/console.css").await.status, 200);
}

#[tokio::test]
async fn every_page_renders_real_data_escaped_with_csrf_in_every_form() {
    let c = start(true, true).await;
    let mut b = Client::new(c.addr);
    let token = b.login().await;
    let qid = c.seeded.queued.to_string();
    let mut forms = 0;
    let mut pages: Vec<String> = PAGES.iter().map(|p| (*p).to_owned()).collect();
    pages.extend([
        format!("/queue/{qid}"),
        format!("/quarantine/{}", c.seeded.quarantined),
        "/track?recipient=bob%40example.org".to_owned(),
        format!("/track/{}", c.seeded.delivered),
        "/posture?direction=inbound".to_owned(),
    ]);
    for p in &pages {
        let r = b.get(p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        assert!(r.body.starts_with("<!DOCTYPE html>"), "{p}");
        assert_escaped(p, &r.body);
        forms += assert_csrf(p, &r.body, &token);
        // The frame: skip link, landmarks, one h1, the user, htmx's header.
        assert!(r.body.contains("href=\"#main\""), "{p}: skip link");
        assert!(r.body.contains("<main id=\"main\""), "{p}");
        assert_eq!(r.body.matches("<h1>").count(), 1, "{p}");
        assert!(
            r.body.contains("Signed in as <strong>admin</strong>"),
            "{p}"
        );
        assert!(
            r.body
                .contains(&format!("hx-headers='{{\"X-CSRF-Token\": \"{token}\"}}'")),
            "{p}: htmx sends the token"
        );
        // Every visible field has a label.
        for id in r
            .body
            .split(" id=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
        {
            if r.body.contains(&format!("<input id=\"{id}\""))
                || r.body.contains(&format!("<select id=\"{id}\""))
            {
                assert!(
                    r.body.contains(&format!("for=\"{id}\"")),
                    "{p}: #{id} unlabelled"
                );
            }
        }
    }
    // Logout on every page, plus the verbs on the message pages.
    assert!(forms >= pages.len() + 4, "{forms} POST forms");

    // Dashboard: the alerts and sections.
    let d = b.get("/").await.body;
    assert!(
        d.contains("certificate mx.example.com expires in 3 day(s)"),
        "{d}"
    );
    assert!(!d.contains("certificate submission.example.com expires"));
    assert!(d.contains("tracking is 3 MiB behind the mail log"));
    assert!(
        d.contains("config check: [admin] has no user yet &#60;i&#62;x&#60;/i&#62;"),
        "{d}"
    );
    assert!(d.contains("<svg class=\"chart\""), "the per-minute chart");
    assert!(
        d.contains("<a href=\"/queue?state=pending\">pending</a>"),
        "queue by state"
    );
    assert!(
        d.contains("href=\"/quarantine\""),
        "quarantine in the navigation"
    );

    // Queue: the message, its hostile subject escaped, its verbs.
    let q = b.get("/queue").await.body;
    assert!(q.contains(&format!("href=\"/queue/{qid}\"")));
    assert!(q.contains("2 message(s)"), "queue and quarantine: {q}");
    let f = b.get("/queue?state=held").await.body;
    assert!(
        f.contains("1 message(s)"),
        "only the quarantined one is held: {f}"
    );
    let bad = b.get("/queue?older_than=2%20weeks").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("role=\"alert\""));
    let m = b.get(&format!("/queue/{qid}")).await.body;
    assert!(
        m.contains("&#60;script&#62;alert("),
        "the subject, escaped: {m}"
    );
    assert!(
        m.contains("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
        "inbound TLS"
    );
    for verb in ["hold", "retry", "delete"] {
        assert!(
            m.contains(&format!("action=\"/queue/{qid}/{verb}\"")),
            "{verb}"
        );
    }
    assert!(m.contains("hx-confirm=\"Hold message"), "the htmx dialog");
    let missing = b.get(&format!("/queue/{}", QueueId::generate())).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Tracking has its history"));

    // Quarantine: the preview and its decisions.
    let qq = b
        .get(&format!("/quarantine/{}", c.seeded.quarantined))
        .await
        .body;
    assert!(
        qq.contains("spam suspect (score 9.10 of 15.00) &#60;img src=x&#62;"),
        "{qq}"
    );
    assert!(qq.contains("Received: from &#60;b&#62;helo&#60;/b&#62;.example.com"));
    assert!(qq.contains(&format!("/quarantine/{}/release", c.seeded.quarantined)));

    // Config: the text, escaped, and the warnings.
    let cfg = b.get("/config").await.body;
    assert!(cfg.contains("hostname = &#34;mx.example.com&#34;"), "{cfg}");
    assert!(cfg.contains("&#60;b&#62;not bold&#60;/b&#62;"));

    // Static files: long cache and ETag; a matching If-None-Match is 304.
    let css = b.get("/static/console.css").await;
    let etag = css
        .headers
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        css.headers
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(css.body.contains("prefers-color-scheme"));
    let again = b
        .request_with(
            "GET",
            "/static/console.css",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.headers.get("etag").unwrap().to_str().unwrap(), etag);
    let other = b
        .request_with(
            "GET",
            "/static/console.css",
            None,
            &[("if-none-match", "\"0\"")],
        )
        .await;
    assert_eq!(other.status, 200);
    assert!(d.contains(&format!(
        "href=\"/static/console.css?v={}\"",
        etag.trim_matches('"')
    )));
    assert_eq!(b.get("/static/nope.js").await.status, 404);
}

#[tokio::test]
async fn tracking_search_and_timeline_show_the_tls_evidence() {
    let c = start(true, true).await;
    let mut b = Client::new(c.addr);
    b.login().await;
    let did = c.seeded.delivered.to_string();
    let s = b.get("/track?recipient=dave%40example.org").await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert!(
        s.body.contains(&format!("href=\"/track/{did}\"")),
        "{}",
        s.body
    );
    assert!(
        !s.body
            .contains(&format!("href=\"/track/{}\"", c.seeded.queued))
    );
    let e = b
        .get("/track?recipient=dave%40example.org&event=delivered")
        .await
        .body;
    assert!(e.contains("1 event(s)"), "{e}");
    assert!(
        e.contains("value=\"delivered\" checked"),
        "the form keeps its state"
    );
    let bad = b.get("/track?start=yesterday").await;
    assert_eq!(bad.status, 400);

    let t = b.get(&format!("/track/{did}")).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.body;
    assert_escaped("timeline", &t);
    // The inbound hop.
    assert!(t.contains("client.example.com (192.0.2.10"), "{t}");
    assert!(t.contains("X25519MLKEM768"), "key exchange group");
    // Both attempts: the failure with its cause, the verified TLS 1.3 one.
    assert!(t.contains("tls.handshake_failed: the TLS handshake failed"));
    assert!(
        t.contains("451 4.7.0 &#60;script&#62;x&#60;/script&#62; try later"),
        "{t}"
    );
    assert!(t.contains("verify — because route[1] domain example.org"));
    assert!(t.contains(&"ab".repeat(32)), "the certificate fingerprint");
    assert!(
        t.contains("<dd>secp256r1</dd>"),
        "the outbound key exchange group"
    );
    assert!(t.contains("CN=mx.example.org"));
    assert!(
        t.contains("mx.example.org, &#60;b&#62;alt&#60;/b&#62;.example.org"),
        "SANs"
    );
    assert!(t.contains("<span class=\"ok\">verified</span>"));
    assert!(
        t.contains(&format!("href=\"/api/v1/track/{did}/evidence\"")),
        "export"
    );
    // The timeline lists every event.
    for ev in ["received", "attempt", "delivered"] {
        assert!(t.contains(&format!("<td>{ev}</td>")), "{ev}");
    }
    let none = b.get(&format!("/track/{}", QueueId::generate())).await;
    assert_eq!(none.status, 404);
}

#[tokio::test]
async fn verbs_need_the_token_and_a_confirmation() {
    let c = start(true, true).await;
    let mut b = Client::new(c.addr);
    let token = b.login().await;
    let id = c.seeded.queued;
    let hold = format!("/queue/{id}/hold");

    // No token: refused, nothing changes.
    let r = b.post(&hold, &[("confirm", "yes")]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b
        .post(&hold, &[("confirm", "yes"), ("csrf", "wrong")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(held(&c, id), Some(false));

    // First POST: the confirmation page, nothing changes.
    let r = b.post(&hold, &[("csrf", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!("<h1>Confirm: hold {id}</h1>")),
        "{}",
        r.body
    );
    assert!(r.body.contains("name=\"confirm\" value=\"yes\""));
    assert_csrf("confirm", &r.body, &token);
    assert_eq!(held(&c, id), Some(false));

    // Confirmed: held, and the page says so.
    let r = b.post(&hold, &[("csrf", &token), ("confirm", "yes")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!("role=\"status\">held {id}")),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("action=\"/queue/{id}/release\"")));
    assert_eq!(held(&c, id), Some(true));

    // Retry of a held message: refused with the reason.
    let r = b
        .post(
            &format!("/queue/{id}/retry"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);

    // Release.
    let r = b
        .post(
            &format!("/queue/{id}/release"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert!(
        r.body.contains(&format!("role=\"status\">released {id}")),
        "{}",
        r.body
    );
    assert_eq!(held(&c, id), Some(false));

    // Unknown verb.
    let r = b
        .post(
            &format!("/queue/{id}/flush"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 404);

    // Quarantine verbs refuse ordinary mail; delete a quarantined message.
    let r = b
        .post(
            &format!("/quarantine/{id}/delete"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(held(&c, id), Some(false), "still queued");
    let qid = c.seeded.quarantined;
    let r = b
        .post(&format!("/quarantine/{qid}/delete"), &[("csrf", &token)])
        .await;
    assert!(r.body.contains("This cannot be undone"), "{}", r.body);
    assert!(held(&c, qid).is_some());
    let r = b
        .post(
            &format!("/quarantine/{qid}/delete"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!("role=\"status\">deleted {qid}")),
        "{}",
        r.body
    );
    assert_eq!(held(&c, qid), None, "gone from the spool");

    // Log out: the session ends.
    let r = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(r.status, 303);
    assert!(b.get("/").await.location().starts_with("/login"));
}

#[tokio::test]
async fn without_quarantine_or_tracking_the_pages_say_so() {
    let c = start(false, false).await;
    let mut b = Client::new(c.addr);
    b.login().await;
    let d = b.get("/").await.body;
    assert!(
        !d.contains("href=\"/quarantine\""),
        "hidden from the navigation"
    );
    assert!(d.contains("Tracking is off"), "{d}");
    let q = b.get("/quarantine").await;
    assert_eq!(q.status, 404);
    assert!(q.body.contains("no quarantine is configured"));
    let q = b
        .get(&format!("/quarantine/{}", c.seeded.quarantined))
        .await;
    assert_eq!(q.status, 404);
    let t = b.get("/track").await;
    assert_eq!(t.status, 404);
    assert!(t.body.contains("message tracking is off"));
    assert_eq!(b.get("/posture").await.status, 404);
    // The queue still works.
    let m = b.get(&format!("/queue/{}", c.seeded.queued)).await.body;
    assert!(!m.contains("/track/"), "no tracking link");
}

#[tokio::test]
async fn login_errors_are_our_words_not_the_query() {
    let c = start(false, false).await;
    let mut b = Client::new(c.addr);
    let r = b
        .get("/login?error=%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Login failed. Please try again."));
    assert!(!r.body.contains("alert(1)"));
    let r = b.get("/login?error=invalid").await;
    assert!(r.body.contains("Wrong user name or password."));
    let token = hidden(&r.body, "csrf").unwrap();
    let r = b
        .post(
            "/login",
            &[("user", "admin"), ("password", "nope"), ("csrf", &token)],
        )
        .await;
    assert_eq!(r.location(), "/login?error=invalid");
}

#[tokio::test]
async fn the_dashboard_raises_poisoned_spool_and_stopped_delivery() {
    use std::sync::atomic::Ordering;
    let c = start(true, true).await;
    let mut b = Client::new(c.addr);
    b.login().await;
    let d = b.get("/").await.body;
    assert!(!d.contains("spool is poisoned") && !d.contains("delivery is stopped"));
    c.control.poisoned.store(true, Ordering::SeqCst);
    let d = b.get("/").await.body;
    assert!(
        d.contains("<strong>Alert:</strong> the spool is poisoned since 2026-12-06T23:00:00Z"),
        "{d}"
    );
    assert!(d.contains("postern spool recheck"), "what to do");
    c.control.stopped.store(true, Ordering::SeqCst);
    let d = b.get("/").await.body;
    assert!(
        d.contains("<strong>Alert:</strong> delivery is stopped"),
        "{d}"
    );
    assert!(d.contains("The queue does not answer."));
    let q = b.get("/queue").await;
    assert_eq!(q.status, 200);
    assert!(q.body.contains("role=\"alert\">the queue does not answer"));
    let m = b.get(&format!("/queue/{}", c.seeded.queued)).await;
    assert_eq!(m.status, 503);
}

/// No control character (but tab, CR, LF) and no bidirectional formatting
/// character anywhere in `body`.
fn assert_no_hidden(path: &str, body: &str) {
    if let Some((i, c)) = body.char_indices().find(|(_, c)| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || postern_proto::is_bidi_format(*c)
    }) {
        let from = body.floor_char_boundary(i.saturating_sub(60));
        panic!("{path}: {c:?} at byte {i}, after {:?}", &body[from..i]);
    }
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned()
}

/// Mail whose subject, addresses, HELO and client name, replies, rule
/// details, header preview, quarantine verdict and posture peer names carry
/// RLO, LRI, PDI, BEL, ESC and NUL: every page kind shows it with each of
/// those a U+FFFD, none of them as is.
#[tokio::test]
async fn bidi_overrides_and_controls_never_reach_a_page() {
    use ui_support::{BIDI, BIDI_SHOWN, seed_hostile};
    let c = start(true, true).await;
    let h = seed_hostile(&c);
    let mut b = Client::new(c.addr);
    let token = b.login().await;
    let (q, qq, t) = (h.queued, h.quarantined, h.tracked);
    let sender = enc(&format!("{BIDI}@example.com"));
    // (page, whether it shows the hostile text)
    let pages: Vec<(String, bool)> = vec![
        ("/".to_owned(), false),
        ("/queue".to_owned(), true),
        (format!("/queue/{q}"), true),
        ("/quarantine".to_owned(), true),
        (format!("/quarantine/{qq}"), true),
        (format!("/track?sender={sender}"), true),
        (format!("/track?subject={}", enc(BIDI)), true),
        ("/track?event=rejected".to_owned(), true),
        (format!("/track/{t}"), true),
        (
            format!("/track/{}", enc(&format!("<{BIDI}@example.com>"))),
            true,
        ),
        ("/posture?direction=inbound".to_owned(), true),
        ("/posture?direction=outbound".to_owned(), true),
        (format!("/track/{}", enc(BIDI)), true),
        (format!("/queue?sender={sender}"), true),
    ];
    for (p, shows) in &pages {
        let r = b.get(p).await;
        assert!(r.status < 500, "{p}: {} {}", r.status, r.body);
        assert_no_hidden(p, &r.body);
        if *shows {
            assert!(
                r.body.contains(BIDI_SHOWN),
                "{p} shows the text:\n{}",
                r.body
            );
        }
    }
    // The quarantine preview: verdict, header preview, added headers.
    let qp = b.get(&format!("/quarantine/{qq}")).await.body;
    assert!(
        qp.contains(&format!("Received: from {BIDI_SHOWN}")),
        "added headers"
    );
    // The verbs' pages: the confirmation, and what the verb did.
    for form in [
        vec![("csrf", token.as_str())],
        vec![("csrf", &token), ("confirm", "yes")],
    ] {
        for path in [
            format!("/queue/{q}/hold"),
            format!("/quarantine/{qq}/release"),
        ] {
            let r = b.post(&path, &form).await;
            assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
            assert_no_hidden(&path, &r.body);
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Swagger UI at `/api/docs`: a session needed; the vendored files served
/// as recorded in `static/README.md` (checksums); no inline script; the
/// strict CSP everywhere else, `data:` images added on that page alone.
#[tokio::test]
async fn swagger_ui_needs_a_session_and_serves_the_vendored_files() {
    let c = start(false, false).await;
    let mut anon = Client::new(c.addr);
    let r = anon.get("/api/docs").await;
    assert!(
        matches!(r.status, 302 | 303 | 401),
        "{}: {}",
        r.status,
        r.body
    );
    assert!(!r.body.contains("swagger-ui-bundle"), "{}", r.body);

    let mut b = Client::new(c.addr);
    let token = b.login().await;
    let r = b.get("/api/docs").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let csp = |a: &ui_support::Answer| {
        a.headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        csp(&r),
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    assert_eq!(csp(&b.get("/").await), postern_admin::http::CSP);
    assert_eq!(csp(&b.get("/api/docs/").await), postern_admin::http::CSP);
    assert!(
        r.body
            .contains(&format!("<meta name=\"postern-csrf\" content=\"{token}\">")),
        "{}",
        r.body
    );
    // Scripts only from files, ours and the vendored bundle.
    let scripts: Vec<&str> = r.body.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 2, "{}", r.body);
    for s in &scripts {
        assert!(
            s.trim_start().starts_with("src=\"/static/"),
            "inline script: {s}"
        );
    }
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/README.md"),
    )
    .unwrap();
    for (name, kind) in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("htmx.min.js", "text/javascript"),
    ] {
        assert!(r.body.contains(&format!("/static/{name}?v=")) || name == "htmx.min.js");
        let a = b.get(&format!("/static/{name}")).await;
        assert_eq!(a.status, 200, "{name}");
        let ct = a.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(ct.starts_with(kind), "{name}: {ct}");
        let sum = sha256_hex(a.body.as_bytes());
        assert!(
            readme.contains(&sum),
            "static/README.md does not record {name}'s SHA-256 {sum}"
        );
    }
    let init = b.get("/static/swagger-init.js").await;
    assert_eq!(init.status, 200);
    assert!(init.body.contains("url: \"/api/openapi.json\""));
    assert!(
        init.body.contains("validatorUrl: null"),
        "no online validator"
    );
    assert!(r.body.contains("/static/swagger-init.js?v="));
    // The configuration page links it.
    assert!(b.get("/config").await.body.contains("href=\"/api/docs\""));
}

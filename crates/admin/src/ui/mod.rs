//! The web console: server-rendered pages over the admin HTTP listener — a
//! dashboard, the queue with its verbs, message tracking with each message's
//! TLS evidence, the peers' TLS posture, the quarantine and the configuration.
//!
//! Follow one page: `GET /queue/{id}` reaches [`queue::show`] with the
//! [`HttpState`] and the caller's [`Authed`] (the admin-http extractor: no
//! session, no page — a browser is sent to `/login`); the handler asks
//! [`crate::QueueControl`] for the message, fills a view struct of plain
//! strings and hands it to its askama template (`templates/message.html`,
//! which extends `templates/base.html`). A verb is a `POST` form carrying the
//! session's CSRF token ([`AuthedChange`] checks it); without `confirm=yes` it
//! answers a confirmation page, so every state change takes two deliberate
//! steps with or without JavaScript. With JavaScript, the vendored htmx
//! (`static/htmx.min.js`) asks with a dialog (`hx-confirm`) instead and sends
//! the token in the `X-CSRF-Token` header (`hx-headers` on `<body>`).
//!
//! # Security
//! Everything shown may be hostile: subjects, addresses, remote replies,
//! certificate subjects and HELO names come from the network. Templates
//! escape every value (askama's HTML escaping is on for `.html` templates and
//! nothing here is marked safe); the chart is built from numbers only. Every
//! rendered page then passes through [`text::clean_page`]: controls and
//! bidirectional formatting characters (CVE-2021-42574) become U+FFFD. Every
//! page needs a session; every state change is a `POST` with the CSRF token and
//! a confirmation step. No inline script or style, so the admin listener's
//! `Content-Security-Policy: default-src 'self'` holds. Error messages that
//! reach a page are our own words, never a reflected query string.
//!
//! # Standards
//! HTML (WHATWG Living Standard); WAI-ARIA landmarks and `role=status`
//! (WCAG 2.2: 1.3.1 info and relationships, 2.1.1 keyboard, 2.4.1 bypass
//! blocks, 2.4.7 focus visible, 4.1.3 status messages); HTTP caching with
//! ETags (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2).

mod apidocs;
mod assets;
mod chart;
mod dashboard;
mod format;
mod login;
mod misc;
mod posture;
mod quarantine;
mod queue;
mod text;
mod track;
mod verbs;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::{Authed, HttpState};

/// The console's routes, merged into the admin HTTP router by admin-http.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/login", get(login::page))
        .route("/", get(dashboard::page))
        .route("/queue", get(queue::list))
        .route("/queue/{id}", get(queue::show))
        .route("/queue/{id}/{verb}", post(queue::verb))
        .route("/track", get(track::search))
        .route("/track/{id}", get(track::timeline))
        .route("/posture", get(posture::page))
        .route("/quarantine", get(quarantine::list))
        .route("/quarantine/{id}", get(quarantine::show))
        .route("/quarantine/{id}/{verb}", post(quarantine::verb))
        .route("/config", get(misc::config))
        .route("/api/docs", get(apidocs::page))
        .route("/static/{name}", get(assets::serve))
}

/// The pages in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Queue,
    Track,
    Posture,
    Quarantine,
    Config,
}

/// One link of the navigation.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's frame (`templates/base.html`) shows.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The page's title and `<h1>`.
    pub title: String,
    /// The signed-in user; empty on the login page (no navigation then).
    pub user: String,
    /// The session's CSRF token: every form's hidden `csrf` field and the
    /// `X-CSRF-Token` header htmx sends.
    pub csrf: String,
    pub nav: Vec<NavItem>,
    /// A status message (`role=status`): what a verb did.
    pub status: Option<String>,
    /// An error (`role=alert`).
    pub error: Option<String>,
    /// `/static/console.css?v=…`.
    pub css: String,
    /// `/static/htmx.min.js?v=…`.
    pub js: String,
    /// `/static/favicon.svg?v=…`.
    pub icon: String,
}

impl Layout {
    /// Shows what a verb did (`report`): its text as the status, or as the
    /// error with the verb's HTTP status; the page's status code.
    pub(crate) fn report(&mut self, report: Option<&crate::control::VerbReport>) -> StatusCode {
        let Some(r) = report else {
            return StatusCode::OK;
        };
        if r.outcome.is_success() {
            self.status = Some(r.text.clone());
            StatusCode::OK
        } else {
            self.error = Some(r.text.clone());
            StatusCode::from_u16(r.outcome.http_status()).unwrap_or(StatusCode::CONFLICT)
        }
    }

    /// The frame of a page `active` for the caller `who`.
    pub(crate) fn new(
        state: &HttpState,
        who: &Authed,
        active: Nav,
        title: impl Into<String>,
    ) -> Self {
        let quarantine = state.console.quarantine_enabled();
        let items = [
            (Nav::Dashboard, "/", "Dashboard"),
            (Nav::Queue, "/queue", "Queue"),
            (Nav::Track, "/track", "Tracking"),
            (Nav::Posture, "/posture", "TLS posture"),
            (Nav::Quarantine, "/quarantine", "Quarantine"),
            (Nav::Config, "/config", "Configuration"),
        ];
        let nav = items
            .into_iter()
            .filter(|(n, _, _)| *n != Nav::Quarantine || quarantine)
            .map(|(n, href, label)| NavItem {
                href,
                label,
                current: n == active,
            })
            .collect();
        Self {
            title: title.into(),
            user: who.user.clone(),
            csrf: who.csrf.clone(),
            nav,
            status: None,
            error: None,
            css: assets::url("console.css"),
            js: assets::url("htmx.min.js"),
            icon: assets::url("favicon.svg"),
        }
    }

    /// The frame of a page shown before login.
    pub(crate) fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: String::new(),
            csrf: String::new(),
            nav: Vec::new(),
            status: None,
            error: None,
            css: assets::url("console.css"),
            js: assets::url("htmx.min.js"),
            icon: assets::url("favicon.svg"),
        }
    }
}

/// A page that says what went wrong (not found, tracking off, …).
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub layout: Layout,
    /// Where to go from here.
    pub links: Vec<(String, String)>,
}

/// Renders `t` as an HTML answer with `status`; every page passes through
/// [`text::clean_page`] (no control or bidi formatting character from the
/// data reaches the browser).
pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => (status, Html(text::clean_page(body))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web console: a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered; see the server log",
            )
                .into_response()
        }
    }
}

/// An error page with `status`, the text in `role=alert`.
pub(crate) fn error_page(
    mut layout: Layout,
    status: StatusCode,
    text: impl Into<String>,
    links: Vec<(String, String)>,
) -> Response {
    layout.error = Some(text.into());
    render(status, &ErrorPage { layout, links })
}

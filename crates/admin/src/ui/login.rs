//! `GET /login`: the login form. It posts to `/login` (admin-http's handler),
//! carrying the login form's CSRF token bound to a pre-session cookie
//! (`Auth::login_csrf`); failures come back as `/login?error=CODE`, shown
//! here in our own words (the code is looked up, never echoed).
//!
//! # Security
//! The only page without a session. `autocomplete` hints let password
//! managers work; nothing from the query string reaches the page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Layout, render};
use crate::http::HttpState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginParams {
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub layout: Layout,
    /// The login form's token.
    pub token: String,
}

/// The sentence for an error code of `POST /login`.
pub(crate) fn error_text(code: &str) -> &'static str {
    match code {
        "invalid" => "Wrong user name or password.",
        "csrf" => "The login form expired (or cookies are blocked). Please try again.",
        "expired" => "Your session ended. Please log in again.",
        "rate" => "Too many failed logins. Wait a few minutes and try again.",
        _ => "Login failed. Please try again.",
    }
}

/// `GET /login`.
pub(crate) async fn page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(p): Query<LoginParams>,
) -> Response {
    let mut layout = Layout::anonymous("Log in");
    layout.error = p.error.as_deref().map(|c| error_text(c).to_owned());
    let (token, cookie) = match state.auth.login_csrf(&headers) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "web console: no login form token");
            layout.error = Some("The login form is not available; see the server log.".to_owned());
            (String::new(), None)
        }
    };
    let mut r = render(StatusCode::OK, &LoginPage { layout, token });
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r.into_response()
}

//! `POST /login`, `POST /logout`, and `GET /api/login` (the login form's CSRF
//! token for clients that are not the web page).
//!
//! Login: the form (`user`, `password`, `csrf`) must carry the token derived
//! from the pre-session cookie (`Auth::login_csrf`), pass the `Origin` /
//! `Sec-Fetch-Site` checks, and not be rate limited (429 with `Retry-After`).
//! The password is checked on the blocking pool, a few at a time. On success
//! any previous session of the browser is deleted and a new id is issued
//! (session fixation), the pre-session cookie is cleared, and the browser is
//! sent to `/` (303); clients that do not accept HTML get `{"user", "csrf"}`.
//! On failure the same answer for an unknown user and a wrong password:
//! `/login?error=invalid` (303), or 401 JSON.
//!
//! # Security
//! Failures are logged with the user name and client address, never the
//! password. OWASP Authentication and Session Management cheat sheets.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AuthedChange, cookie_value, same_origin};
use crate::http::HttpState;
use crate::http::reply::{error, see_other, wants_html};

/// The login form.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// A JSON client's login answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginReply {
    /// The user logged in.
    pub user: String,
    /// The session's CSRF token (send it as `X-CSRF-Token`).
    pub csrf: String,
}

/// The login form's CSRF token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginCsrf {
    /// Put it in the form field `csrf` of `POST /login` (with the cookie this answer sets).
    pub csrf: String,
}

/// A user name as logged: quoted and escaped (`Debug`), at most 64 characters,
/// so a hostile name cannot forge log lines or fill the log.
fn shown(name: &str) -> String {
    name.chars().take(64).collect()
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn login_failed(headers: &HeaderMap, code: &str, status: StatusCode, text: &str) -> Response {
    if wants_html(headers) {
        see_other(&format!("/login?error={code}"))
    } else {
        error(status, text)
    }
}

/// `GET /api/login`: the login form's CSRF token (and its pre-session cookie).
#[utoipa::path(get, path = "/api/login", tag = "auth",
    responses((status = 200, description = "The token for POST /login's csrf field", body = LoginCsrf)))]
pub(crate) async fn login_csrf(State(s): State<HttpState>, headers: HeaderMap) -> Response {
    match s.auth.login_csrf(&headers) {
        Ok((csrf, set)) => {
            let r = axum::Json(LoginCsrf { csrf }).into_response();
            match set {
                Some(c) => with_cookie(r, &c),
                None => r,
            }
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /login`.
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Logged in (JSON clients); the session cookie is set", body = LoginReply),
        (status = 303, description = "Browsers: to / on success, /login?error=invalid|csrf on failure"),
        (status = 401, description = "Wrong user or password"),
        (status = 403, description = "Login CSRF token or Origin check failed"),
        (status = 429, description = "Too many failed logins; see Retry-After")))]
pub(crate) async fn login(
    State(s): State<HttpState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &s.auth;
    // The client (behind a trusted proxy: the address it forwarded).
    let ip = ext
        .get::<crate::http::ClientAddr>()
        .map(|c| c.0)
        .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if let Err(why) = same_origin(auth, &headers) {
        tracing::warn!(%ip, why, "admin login refused");
        return error(StatusCode::FORBIDDEN, why);
    }
    if !auth.login_csrf_ok(&headers, &form.csrf) {
        tracing::warn!(%ip, user = ?shown(&form.user), "admin login refused: login form token missing or wrong");
        return login_failed(
            &headers,
            "csrf",
            StatusCode::FORBIDDEN,
            "login form token missing or wrong: GET /api/login (or the login page) first",
        );
    }
    if let Err(wait) = auth.limiter.begin(ip, &form.user) {
        tracing::warn!(%ip, user = ?shown(&form.user), "admin login refused: too many failures");
        let secs = wait.as_secs().max(1);
        let mut r = if wants_html(&headers) {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                format!(
                    "<!doctype html><title>Too many failed logins</title><p>Too many failed \
                     logins. Try again in {} minutes. <a href=\"/login\">Back</a></p>",
                    secs.div_ceil(60)
                ),
            )
                .into_response()
        } else {
            error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins; try again in {secs} s"),
            )
        };
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let verified = match auth.verify_permits.acquire().await {
        Ok(_permit) => {
            let state = s.clone();
            let (user, password) = (form.user.clone(), form.password);
            tokio::task::spawn_blocking(move || state.auth.users.verify(&user, &password))
                .await
                .ok()
                .flatten()
        }
        Err(_) => None,
    };
    let Some(user) = verified else {
        // Counted by `begin` already.
        tracing::warn!(%ip, user = ?shown(&form.user), "admin login failed");
        return login_failed(
            &headers,
            "invalid",
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        );
    };
    auth.limiter.succeed(ip, &form.user);
    // Session fixation: whatever session the browser had ends; a new id.
    if let Some(old) = cookie_value(&headers, auth.session_cookie()) {
        auth.sessions.remove(old);
    }
    let tag = auth.users.credential_tag(&user).unwrap_or_default();
    let (id, session) = match auth.sessions.create(&user, &tag) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    tracing::info!(%ip, user = %user, "admin login");
    let r = if wants_html(&headers) {
        see_other("/")
    } else {
        axum::Json(LoginReply {
            user,
            csrf: session.csrf,
        })
        .into_response()
    };
    let r = with_cookie(r, &auth.cookie(auth.session_cookie(), &id, None));
    with_cookie(r, &auth.cookie(auth.login_cookie(), "", Some(0)))
}

/// `POST /logout`: ends the session (CSRF token required).
#[utoipa::path(post, path = "/logout", tag = "auth",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Logged out (JSON clients)"),
        (status = 303, description = "Browsers: to /login"),
        (status = 401, description = "Not logged in"),
        (status = 403, description = "CSRF check failed")))]
pub(crate) async fn logout(
    State(s): State<HttpState>,
    AuthedChange(who): AuthedChange,
    headers: HeaderMap,
) -> Response {
    let auth = &s.auth;
    if let Some(id) = cookie_value(&headers, auth.session_cookie()) {
        auth.sessions.remove(id);
    }
    tracing::info!(user = %who.user, "admin logout");
    let r = if wants_html(&headers) {
        see_other("/login")
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    with_cookie(r, &auth.cookie(auth.session_cookie(), "", Some(0)))
}

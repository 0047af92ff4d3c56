//! Authentication of the admin HTTP listener: admin users and their
//! passwords ([`UserStore`]), API tokens for scripts ([`TokenStore`]),
//! server-side sessions ([`Sessions`]), the login limiter
//! ([`LoginLimiter`]), and the request side: the `identify` middleware that
//! resolves who is calling (Bearer token or session cookie) and enforces CSRF
//! on state changes, and the [`Authed`] / [`AuthedChange`] extractors.
//!
//! Follow a request: `identify` reads `Authorization: Bearer pst_…` (then only
//! the token counts) or the session cookie; for POST/PUT/PATCH/DELETE made
//! with a session it checks `Sec-Fetch-Site`, `Origin` and the session's CSRF
//! token (header `X-CSRF-Token` or form field `csrf`) and answers 403 when one
//! fails, before any handler runs. Handlers take [`Authed`] (401 JSON, or a
//! redirect to `/login` for pages) or [`AuthedChange`] (the same, plus proof
//! that the CSRF check passed).
//!
//! # Security
//! See `docs/admin-http.md` "Security model". Cookies are `HttpOnly;
//! SameSite=Strict; Path=/`, plus `Secure` and the `__Host-` name prefix when
//! the listener has TLS. CSRF defence in depth: SameSite=Strict, Fetch
//! Metadata (`Sec-Fetch-Site`), `Origin`, and a per-session synchroniser
//! token compared in constant time. Bearer tokens are never sent by browsers
//! on their own, so they need no CSRF token.
//!
//! # Standards
//! RFC 6265bis (cookies, SameSite, `__Host-`), RFC 6750 (Bearer), RFC 6454
//! (Origin), W3C Fetch Metadata, RFC 9110 §11 (401, `WWW-Authenticate`).

mod files;
pub mod limiter;
pub(crate) mod routes;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::fmt::Write as _;
use std::path::PathBuf;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

pub use limiter::LoginLimiter;
pub use sessions::{Clock, SessionInfo, Sessions};
pub use tokens::{TokenInfo, TokenScope, TokenStore};
pub use users::{UserInfo, UserStore};

use super::HttpState;
use super::host::PublicUrl;
use super::reply::{error, see_other, wants_html};
use crate::settings::HttpSettings;

/// Largest request body the listener reads (login forms, CSRF form fields).
pub const MAX_BODY: usize = 64 * 1024;

/// Why a user, token or session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Reading or writing a file failed.
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    /// A file is not the JSON expected.
    #[error("{0}: not a valid admin file: {1}")]
    Parse(PathBuf, #[source] serde_json::Error),
    /// A name with characters outside the allowed set.
    #[error("invalid name {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ @ -")]
    BadName(String),
    /// A password too short or too long.
    #[error(
        "the password must be at least {} characters (and at most {} bytes)",
        users::MIN_PASSWORD,
        users::MAX_PASSWORD
    )]
    BadPassword,
    /// The name is taken.
    #[error("{0:?} exists already")]
    Exists(String),
    /// No such user.
    #[error("no admin user {0:?}")]
    NoSuchUser(String),
    /// No such active token.
    #[error("no active token {0:?}")]
    NoSuchToken(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum AuthVia {
    /// A login session (cookie).
    Session,
    /// An API token, by its name.
    Token(String),
}

/// The authenticated caller. An axum extractor: rejects with 401 (JSON
/// error, `WWW-Authenticate: Bearer`) or, for requests that accept
/// `text/html`, a redirect to `/login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authed {
    /// The user (for a token: `token:<name>`).
    pub user: String,
    /// Session or token.
    pub via: AuthVia,
    /// The session's CSRF token (`""` for tokens): put it in forms (`csrf`)
    /// and in `X-CSRF-Token` headers.
    pub csrf: String,
    /// The client's address (the proxy's, behind a reverse proxy).
    pub addr: Option<std::net::IpAddr>,
}

impl Authed {
    /// Who this is, for the mail log's queue events and the audit trail:
    /// `alice (192.0.2.5)`, `token:ci (192.0.2.9)`.
    pub fn by(&self) -> String {
        match self.addr {
            Some(ip) => format!("{} ({})", self.user, ip.to_canonical()),
            None => self.user.clone(),
        }
    }
}

/// For state changes: [`Authed`], and for a session the CSRF, `Origin` and
/// `Sec-Fetch-Site` checks passed (403 otherwise). Tokens need no CSRF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthedChange(pub Authed);

/// Who `identify` found.
#[derive(Debug, Clone)]
enum Identity {
    Anonymous,
    Authed(Authed),
    BadToken,
}

/// Set by `identify` when a session's state change passed the CSRF checks.
#[derive(Debug, Clone, Copy)]
struct CsrfChecked;

/// Set by `identify` for a read-only API token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOnly;

/// Users, tokens, sessions and the login limiter of one listener.
#[derive(Debug)]
pub struct Auth {
    /// Admin users.
    pub users: UserStore,
    /// API tokens.
    pub tokens: TokenStore,
    /// Live sessions.
    pub sessions: Sessions,
    /// Failed-login counts.
    pub limiter: LoginLimiter,
    /// Cookies get `Secure` and `__Host-`: the listener has TLS, or the
    /// public URL is `https` (a proxy ends TLS in front).
    secure: bool,
    /// The listener itself speaks TLS (the scheme of its own origin).
    listener_tls: bool,
    /// `[admin] http_public_url`'s origin, accepted by the Origin check.
    public_origin: Option<String>,
    /// Key of the login form's CSRF token (HMAC of the pre-session cookie).
    login_key: aws_lc_rs::hmac::Key,
    /// Password checks at once (argon2 takes ~19 MiB and a core each).
    pub(crate) verify_permits: tokio::sync::Semaphore,
}

impl Auth {
    /// Opens the users and tokens files of `settings`.
    pub fn new(settings: &HttpSettings) -> Result<Self, AuthError> {
        Self::with_clock(settings, Clock::system())
    }

    /// The same with a given clock (tests: [`Clock::manual`]).
    pub fn with_clock(settings: &HttpSettings, clock: Clock) -> Result<Self, AuthError> {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| AuthError::Random)?;
        Ok(Self {
            users: UserStore::open(&settings.users_file)?,
            tokens: TokenStore::open(&settings.tokens_file)?,
            sessions: Sessions::new(settings.session_idle, settings.session_max, clock.clone()),
            limiter: LoginLimiter::new(clock),
            secure: settings.tls.is_some()
                || settings.public_url.as_ref().is_some_and(PublicUrl::https),
            listener_tls: settings.tls.is_some(),
            public_origin: settings.public_url.as_ref().map(PublicUrl::origin),
            login_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key),
            verify_permits: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            ),
        })
    }

    /// The session cookie's name: `__Host-postern_session` with TLS,
    /// `postern_session` without.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-postern_session"
        } else {
            "postern_session"
        }
    }

    /// The login form's pre-session cookie name.
    pub fn login_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-postern_login"
        } else {
            "postern_login"
        }
    }

    /// A `Set-Cookie` value for `name=value` with our flags; `max_age` 0
    /// deletes the cookie.
    pub(crate) fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
        if let Some(s) = max_age {
            let _ = write!(c, "; Max-Age={s}");
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// The CSRF token for the login form, and the `Set-Cookie` value to send
    /// with the page when the browser has no (valid) pre-session cookie yet.
    /// The login page (GET /login) calls this and puts the token in the
    /// form's hidden `csrf` field.
    pub fn login_csrf(&self, headers: &HeaderMap) -> Result<(String, Option<String>), AuthError> {
        if let Some(v) = cookie_value(headers, self.login_cookie())
            && v.len() == 43
        {
            return Ok((self.login_token(v), None));
        }
        let v = sessions::random_token()?;
        let set = self.cookie(self.login_cookie(), &v, Some(3600));
        Ok((self.login_token(&v), Some(set)))
    }

    fn login_token(&self, pre_session: &str) -> String {
        use base64::Engine as _;
        let tag = aws_lc_rs::hmac::sign(&self.login_key, pre_session.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `csrf` is the login token for the request's pre-session cookie.
    pub(crate) fn login_csrf_ok(&self, headers: &HeaderMap, csrf: &str) -> bool {
        match cookie_value(headers, self.login_cookie()) {
            Some(v) => ct_eq(&self.login_token(v), csrf),
            None => false,
        }
    }

    /// The scheme of the listener's own origin.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.listener_tls { "https" } else { "http" }
    }
}

/// Constant-time string equality (length is not secret).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `Sec-Fetch-Site` (if sent) is `same-origin` or `none`, and `Origin` (if
/// sent) is ours. `Err` says which failed.
///
/// `Origin: null` passes only with `Sec-Fetch-Site: same-origin`: our
/// `Referrer-Policy: no-referrer` makes browsers send `null` on their own
/// form POSTs (Fetch, "serializing a request origin"), and a browser that
/// sends Fetch Metadata has said where the request came from.
pub(crate) fn same_origin(auth: &Auth, headers: &HeaderMap) -> Result<(), &'static str> {
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = site
        && !matches!(site, "same-origin" | "none")
    {
        return Err("cross-site request refused (Sec-Fetch-Site)");
    }
    let null_ok = site == Some("same-origin");
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| !(null_ok && o.as_bytes() == b"null"))
    {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let ours = host.map(|h| format!("{}://{h}", auth.scheme()));
        let ok = match (origin.to_str(), ours) {
            (Ok(o), Some(ours)) => o.eq_ignore_ascii_case(&ours),
            _ => false,
        } || matches!(
            (origin.to_str(), &auth.public_origin),
            (Ok(o), Some(public)) if o.eq_ignore_ascii_case(public)
        );
        if !ok {
            return Err("cross-origin request refused (Origin is not this server)");
        }
    }
    Ok(())
}

fn is_change(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The request's `Authorization` header checked as an API token, once per
/// request (the Host check needs it before [`identify`]; the answer is kept
/// in the request).
#[derive(Debug, Clone)]
pub(crate) enum Bearer {
    /// No `Authorization` header.
    Absent,
    /// Another scheme, or a token that does not verify.
    Invalid,
    /// A token that verifies: its name and scope.
    Valid(String, TokenScope),
}

/// [`Bearer`] for `req`, verified at most once per request.
pub(crate) fn bearer_token(auth: &Auth, req: &mut Request) -> Bearer {
    if let Some(b) = req.extensions().get::<Bearer>() {
        return b.clone();
    }
    let b = match req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").trim())
    {
        None => Bearer::Absent,
        Some(value) => match value.split_once(' ') {
            Some((scheme, secret)) if scheme.eq_ignore_ascii_case("bearer") => auth
                .tokens
                .verify_scoped(secret.trim())
                .map_or(Bearer::Invalid, |(name, scope)| Bearer::Valid(name, scope)),
            _ => Bearer::Invalid,
        },
    };
    req.extensions_mut().insert(b.clone());
    b
}

/// Middleware: resolves the caller (see the module documentation) and
/// refuses, with 403, a session's state change that fails a CSRF check.
pub(crate) async fn identify(
    State(state): State<HttpState>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = &state.auth;
    let bearer = bearer_token(auth, &mut req);
    let headers = req.headers();
    let mut read_only = false;
    let addr = req.extensions().get::<super::ClientAddr>().map(|c| c.0);
    let identity = if let Bearer::Valid(name, scope) = bearer {
        read_only = scope == TokenScope::Read;
        Identity::Authed(Authed {
            user: format!("token:{name}"),
            via: AuthVia::Token(name),
            csrf: String::new(),
            addr,
        })
    } else if let Bearer::Invalid = bearer {
        Identity::BadToken
    } else {
        let id = cookie_value(headers, auth.session_cookie());
        match id.and_then(|id| auth.sessions.get(id).map(|s| (id, s))) {
            // The password changed or the user was removed since login.
            Some((id, s))
                if auth.users.credential_tag(&s.user).as_deref() != Some(s.tag.as_str()) =>
            {
                tracing::info!(user = %s.user, "admin http: session ended (credentials changed)");
                auth.sessions.remove(id);
                Identity::Anonymous
            }
            Some((_, s)) => Identity::Authed(Authed {
                user: s.user,
                via: AuthVia::Session,
                csrf: s.csrf,
                addr,
            }),
            None => Identity::Anonymous,
        }
    };
    // A wrong or revoked token is refused here, on every route (public ones
    // included) but the health probes: a request that presents a token is
    // answered as that token's or not at all — and the Host check lets only
    // verified tokens past it, so this is belt and braces.
    if matches!(identity, Identity::BadToken) && !matches!(req.uri().path(), "/healthz" | "/readyz")
    {
        return bad_token();
    }
    let mut req = req;
    // The login form carries its own (pre-session) CSRF token.
    if let Identity::Authed(a) = &identity
        && a.via == AuthVia::Session
        && is_change(req.method())
        && req.uri().path() != "/login"
    {
        if let Err(why) = same_origin(auth, req.headers()) {
            tracing::warn!(user = %a.user, path = %req.uri().path(), why, "admin http: refused");
            return error(StatusCode::FORBIDDEN, why);
        }
        let (sent, r) = match csrf_sent(req).await {
            Ok(v) => v,
            Err(resp) => return *resp,
        };
        req = r;
        if !sent.as_deref().is_some_and(|t| ct_eq(t, &a.csrf)) {
            tracing::warn!(user = %a.user, path = %req.uri().path(), "admin http: CSRF token missing or wrong");
            return error(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong: send the session's token in X-CSRF-Token or the form field csrf",
            );
        }
        req.extensions_mut().insert(CsrfChecked);
    }
    req.extensions_mut().insert(identity);
    if read_only {
        req.extensions_mut().insert(ReadOnly);
    }
    next.run(req).await
}

/// The CSRF token sent with `req`: the `X-CSRF-Token` header, or the `csrf`
/// field of a form body (read, at most [`MAX_BODY`], and put back).
async fn csrf_sent(req: Request) -> Result<(Option<String>, Request), Box<Response>> {
    if let Some(v) = req.headers().get("x-csrf-token") {
        return Ok((v.to_str().ok().map(str::to_owned), req));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {MAX_BODY} bytes"),
        ))
    })?;
    let token = form_urlencoded_field(&bytes, "csrf");
    Ok((
        token,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    ))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The answer to a wrong or revoked Bearer token (RFC 6750 §3.1).
fn bad_token() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "invalid or revoked API token");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"postern-admin\", error=\"invalid_token\""),
    );
    r
}

/// The 401 answer: a redirect to `/login` for pages, JSON otherwise (with
/// `HX-Redirect: /login` for htmx requests, which follow it).
fn unauthenticated(headers: &HeaderMap, why: &str) -> Response {
    if wants_html(headers) && !headers.contains_key("hx-request") {
        return see_other("/login");
    }
    let mut r = error(StatusCode::UNAUTHORIZED, why);
    if headers.contains_key("hx-request") {
        r.headers_mut()
            .insert("hx-redirect", header::HeaderValue::from_static("/login"));
    }
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"postern-admin\""),
    );
    r
}

impl FromRequestParts<HttpState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &HttpState) -> Result<Self, Response> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Authed(a)) => Ok(a.clone()),
            Some(Identity::BadToken) => Err(bad_token()),
            // Anonymous, or the router was built without `identify`: fail closed.
            _ => Err(unauthenticated(
                &parts.headers,
                "authentication required: log in, or send Authorization: Bearer <token>",
            )),
        }
    }
}

impl FromRequestParts<HttpState> for AuthedChange {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Response> {
        let a = Authed::from_request_parts(parts, state).await?;
        if parts.extensions.get::<ReadOnly>().is_some() {
            return Err(error(
                StatusCode::FORBIDDEN,
                "this API token is read-only: state changes need a token created without --read-only",
            ));
        }
        if a.via == AuthVia::Session && parts.extensions.get::<CsrfChecked>().is_none() {
            return Err(error(
                StatusCode::FORBIDDEN,
                "state changes need POST, PUT, PATCH or DELETE with the session's CSRF token",
            ));
        }
        Ok(AuthedChange(a))
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "admin http: auth store");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the server log)",
        )
    }
}

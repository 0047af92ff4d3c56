//! The admin API: an axum router served on a Unix socket.
//!
//! ```text
//! GET    /v1/status                     queue counts
//! GET    /v1/queue?state=&domain=&older_than=   messages (filters optional)
//! GET    /v1/queue/{id}                 one message with its envelope and mail-log events
//!                                       (409 with the error if it cannot be read)
//! POST   /v1/queue/{id}/retry           retry its deferred recipients now
//! POST   /v1/queue/retry                retry every deferred recipient now
//! POST   /v1/queue/{id}/hold            hold it
//! POST   /v1/queue/{id}/release         release it
//! DELETE /v1/queue/{id}                 delete it (no DSN)
//! POST   /v1/queue/flush/{domain}       retry now the deferred recipients at a domain
//! POST   /v1/spool/recheck              test write + fsync; clears a poisoned spool
//! ```
//!
//! Verbs answer a [`VerbReport`] with the HTTP status of its outcome (200,
//! 202 for a pending delete, 404, 409, 503); errors are `{"error": "…"}`.
//!
//! # Security
//! Local only: the socket is created `0600` (bound under a temporary name,
//! restricted, then renamed into place, so it is never reachable with looser
//! permissions under its real name) in a directory the operator chooses;
//! whoever can open it is the operator (like Postfix's `postqueue` and
//! `postsuper`, which are gated by file permissions). No TCP listener, so no
//! network peer can reach it. Request bodies are limited to
//! [`MAX_BODY`] (the API takes none), queue ids are parsed as [`QueueId`]
//! (nothing else can name a path), domains are only compared, and each
//! request gets [`REQUEST_TIMEOUT`]. A stale socket file left by a crash is
//! removed at start; a live one (another server answers on it) is an error.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use postern_spool::QueueId;
use postern_track::TrackRecord;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::control::{QueueControl, QueueStatus, Verb, VerbContext, VerbOutcome, VerbReport};
use crate::health::{RecheckReport, SpoolHealth, Unreadable};
use crate::settings::AdminSettings;
use crate::view::{self, Filter, MessageInfo, State as MsgState};

/// Largest request body accepted (the API takes none).
pub const MAX_BODY: usize = 4096;
/// Time a request may take before it is answered with 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `sun_path` holds 108 bytes with the terminating NUL (Linux `unix(7)`).
const SUN_PATH_MAX: usize = 107;
/// The longest temporary suffix [`bind`] adds: `.{pid}.tmp`, a pid having
/// at most 7 digits (`pid_max` is at most 2^22 on Linux).
const TMP_SUFFIX_MAX: usize = ".4194304.tmp".len();
/// The longest admin socket path: the socket is bound under a temporary
/// name first, which must fit too.
pub const MAX_SOCKET_PATH: usize = SUN_PATH_MAX - TMP_SUFFIX_MAX;

/// Whether `path` fits in a Unix socket address, the temporary name it is
/// first bound under included. The one check for the configuration
/// (`config check`) and for `serve`.
pub fn check_socket_path(path: &Path) -> Result<(), AdminError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(AdminError::PathTooLong(path.to_path_buf(), len));
    }
    Ok(())
}

/// Why the admin socket (or the admin HTTP listener) could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The HTTP listener would be reachable off this host without TLS.
    #[error(
        "the admin HTTP listener {0} is not a loopback address and has no TLS: passwords and \
         session cookies would cross the network in clear text. Give [admin] a certificate, \
         or listen on 127.0.0.1 (and put a TLS reverse proxy in front)"
    )]
    HttpNeedsTls(std::net::SocketAddr),
    /// `serve` was called with no `listen` address.
    #[error("the admin HTTP listener has no address ([admin] listen is not set)")]
    HttpNoListen,
    /// Binding the HTTP listener failed.
    #[error("admin HTTP listener {0}: {1}")]
    HttpBind(std::net::SocketAddr, #[source] std::io::Error),
    /// Another process answers on the socket.
    #[error(
        "another server is answering on the admin socket {0}; stop it first, or give this one \
         another [admin] socket"
    )]
    InUse(PathBuf),
    /// Something else is at the socket's path.
    #[error("{0} exists and is not a socket; remove it or set [admin] socket to another path")]
    NotASocket(PathBuf),
    /// The path does not fit in a Unix socket address.
    #[error(
        "the admin socket path {0} is {1} bytes long; at most {MAX_SOCKET_PATH} fit in a Unix \
         socket address here: set [admin] socket to a shorter path"
    )]
    PathTooLong(PathBuf, usize),
    /// An I/O error.
    #[error("admin socket {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// The running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    path: PathBuf,
    ino: (u64, u64),
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    state: Arc<AppState>,
}

impl AdminServer {
    /// Installs `postern trace` once the smtpd runs (`GET /v1/trace`).
    pub fn set_trace(&self, f: crate::trace::TraceFn) {
        let _ = self.state.trace.set(f);
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, lets requests in progress finish for at most `grace`,
    /// and removes the socket file (if it is still ours).
    pub async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
        if let Ok(md) = std::fs::symlink_metadata(&self.path)
            && (md.dev(), md.ino()) == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct AppState {
    control: Arc<dyn QueueControl>,
    mail_log: Option<PathBuf>,
    trace: std::sync::OnceLock<crate::trace::TraceFn>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("mail_log", &self.mail_log)
            .field("trace", &self.trace.get().is_some())
            .finish_non_exhaustive()
    }
}

/// Binds the admin socket (see the module's Security section) and serves the
/// API on the current tokio runtime until [`AdminServer::shutdown`].
pub async fn start(
    settings: &AdminSettings,
    control: Arc<dyn QueueControl>,
    mail_log: Option<PathBuf>,
) -> Result<AdminServer, AdminError> {
    let path = settings.socket.clone();
    let listener = bind(&path).await?;
    let md = std::fs::symlink_metadata(&path).map_err(|e| AdminError::Io(path.clone(), e))?;
    let state = Arc::new(AppState {
        control,
        mail_log,
        trace: std::sync::OnceLock::new(),
    });
    let app = router(Arc::clone(&state));
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketPeer>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin socket: server error");
        }
    });
    tracing::info!(socket = %path.display(), "admin socket listening");
    Ok(AdminServer {
        path,
        ino: (md.dev(), md.ino()),
        cancel,
        task,
        state,
    })
}

/// Checks what is at `path` (stale socket: removed; live: error), then binds
/// under a temporary name, sets `0600`, and renames into place.
async fn bind(path: &Path) -> Result<tokio::net::UnixListener, AdminError> {
    check_socket_path(path)?;
    let io = |e| AdminError::Io(path.to_path_buf(), e);
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => match tokio::net::UnixStream::connect(path).await {
            Ok(_) => return Err(AdminError::InUse(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %path.display(), "admin socket: removing a stale socket file");
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        },
        Ok(_) => return Err(AdminError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // check_socket_path left room for the suffix.
    debug_assert!(tmp.as_os_str().len() <= SUN_PATH_MAX);
    let _ = std::fs::remove_file(&tmp);
    let listener = tokio::net::UnixListener::bind(&tmp).map_err(io)?;
    let restrict = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = restrict {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(listener)
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/queue", get(list))
        .route("/v1/queue/retry", post(retry_all))
        .route("/v1/queue/flush/{domain}", post(flush))
        .route("/v1/queue/{id}", get(show).delete(delete))
        .route("/v1/queue/{id}/retry", post(retry))
        .route("/v1/queue/{id}/hold", post(hold))
        .route("/v1/queue/{id}/release", post(release))
        .route("/v1/quarantine", get(quarantine_list))
        .route("/v1/quarantine/{id}", get(show).delete(quarantine_delete))
        .route("/v1/quarantine/{id}/release", post(quarantine_release))
        .route("/v1/spool/recheck", post(recheck))
        .route("/v1/trace", get(trace))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(limit_body))
        .with_state(state)
}

/// Refuses, before any handler runs, a request announcing a body larger than
/// [`MAX_BODY`] or a chunked one (no endpoint takes a body; extractors that
/// would read one are limited by `DefaultBodyLimit` as well).
async fn limit_body(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let too_long = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .parse::<u64>()
                .map_or(true, |n| n > MAX_BODY as u64)
        });
    if too_long || req.headers().contains_key(TRANSFER_ENCODING) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {MAX_BODY} bytes; the API takes none"),
        );
    }
    next.run(req).await
}

/// An error answer: `{"error": "…"}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}

async fn trace(
    State(s): State<Arc<AppState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let Some(f) = s.trace.get() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the SMTP server is not running yet (trace offline with the configuration)",
        );
    };
    let req = match crate::trace::TraceRequest::from_query(query.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match f(req).await {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody { error: text.into() })).into_response()
}

fn stopped() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the queue is not running (the server is shutting down)",
    )
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint; see GET /v1/queue")
}

/// The id in the URL, or the 400 answer.
fn parse_id(s: &str) -> Result<QueueId, Box<Response>> {
    QueueId::parse(s).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid queue id: {e}"),
        ))
    })
}

async fn timed<T>(f: impl Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .ok()
        .flatten()
}

async fn status(State(s): State<Arc<AppState>>) -> Response {
    status_response(&*s.control).await
}

/// `GET …/status`: the queue counts with the spool's health. Shared by the
/// socket and the HTTP listener.
pub(crate) async fn status_response(control: &dyn QueueControl) -> Response {
    match timed(control.status()).await {
        Some(mut st) => {
            st.spool = timed(control.spool_health()).await;
            json::<QueueStatus>(StatusCode::OK, &st)
        }
        None => stopped(),
    }
}

async fn recheck(State(s): State<Arc<AppState>>) -> Response {
    recheck_response(&*s.control).await
}

/// `POST …/spool/recheck`.
pub(crate) async fn recheck_response(control: &dyn QueueControl) -> Response {
    match timed(control.recheck()).await {
        Some(r) if r.ok => json::<RecheckReport>(StatusCode::OK, &r),
        Some(r) => json::<RecheckReport>(StatusCode::INTERNAL_SERVER_ERROR, &r),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "spool recheck is not available (the server is shutting down)",
        ),
    }
}

/// `GET /v1/queue` query parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `pending`, `deferred`, `held`, `quarantined`, … (see `postern queue list --state`).
    state: Option<String>,
    /// Only messages with a recipient at this domain.
    domain: Option<String>,
    /// Only messages older than this (`30m`, `2h`, `3d`).
    older_than: Option<String>,
    /// Only messages in this quarantine (`*`: any).
    quarantine: Option<String>,
}

/// `GET /v1/queue` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ListBody {
    /// The matching messages, in arrival order.
    pub messages: Vec<MessageInfo>,
    /// Queued files that could not be read (not filtered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
    /// The spool's health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolHealth>,
}

async fn list(State(s): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Response {
    list_response(&*s.control, q).await
}

/// `GET …/queue`: the messages matching `q`.
pub(crate) async fn list_response(control: &dyn QueueControl, q: ListQuery) -> Response {
    let mut filter = Filter::default();
    if let Some(st) = &q.state {
        match MsgState::parse(st) {
            Ok(v) => filter.state = Some(v),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    }
    filter.domain = q.domain.filter(|d| !d.is_empty());
    filter.quarantine = q.quarantine.filter(|d| !d.is_empty());
    if let Some(a) = &q.older_than {
        match view::parse_age(a) {
            Ok(v) => filter.older_than_secs = Some(v),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    }
    match timed(control.messages(None)).await {
        Some(all) => json(
            StatusCode::OK,
            &ListBody {
                messages: view::select(&all, &filter),
                unreadable: timed(control.unreadable()).await.unwrap_or_default(),
                spool: timed(control.spool_health()).await,
            },
        ),
        None => stopped(),
    }
}

/// `GET /v1/queue/{id}` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShowBody {
    /// The message with its envelope.
    pub message: MessageInfo,
    /// Its events from the mail log (attempts with their TLS facts, outcomes,
    /// holds), oldest first; empty without a mail log.
    pub events: Vec<TrackRecord>,
}

async fn show(State(s): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> Response {
    show_response(&*s.control, s.mail_log.clone(), &id).await
}

/// `GET …/queue/{id}`: one message with its envelope and mail-log events.
pub(crate) async fn show_response(
    control: &dyn QueueControl,
    mail_log: Option<PathBuf>,
    id: &str,
) -> Response {
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let Some(found) = timed(control.messages(Some(id))).await else {
        return stopped();
    };
    let Some(m) = found.first() else {
        // Queued, but its file or state cannot be read: say so, not "not found".
        let unreadable = timed(control.unreadable()).await.unwrap_or_default();
        if let Some(u) = unreadable.iter().find(|u| u.name == id.as_str()) {
            let next = u
                .next_attempt
                .as_deref()
                .map(|n| format!("; next try {n}"))
                .unwrap_or_default();
            return error(
                StatusCode::CONFLICT,
                format!(
                    "{id} is queued but cannot be read: {}{next}; `postern queue retry {id}` \
                     tries now, `postern queue delete {id}` removes it",
                    u.error
                ),
            );
        }
        return error(
            StatusCode::NOT_FOUND,
            format!("not found: {id} (not in the queue)"),
        );
    };
    let message = MessageInfo::of(m, true);
    let events = match mail_log {
        Some(p) => tokio::task::spawn_blocking(move || postern_track::read_log(&p, &id))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    json(StatusCode::OK, &ShowBody { message, events })
}

/// Applies `verb`; answers its report with the outcome's HTTP status.
pub(crate) async fn verb_response(control: &dyn QueueControl, verb: Verb) -> Response {
    verb_response_with(control, verb, VerbContext::default()).await
}

/// [`verb_response`] with who asks and on what condition.
pub(crate) async fn verb_response_with(
    control: &dyn QueueControl,
    verb: Verb,
    cx: VerbContext,
) -> Response {
    let report = match timed(control.apply_with(verb.clone(), cx)).await {
        Some(r) => r,
        None => VerbReport::outcome(&verb, VerbOutcome::NotRunning),
    };
    let status = StatusCode::from_u16(report.outcome.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &report)
}

/// The verb `make` on the message `id` (400 for an invalid id).
pub(crate) async fn id_verb_response(
    control: &dyn QueueControl,
    id: &str,
    make: fn(QueueId) -> Verb,
) -> Response {
    id_verb_response_with(control, id, make, VerbContext::default()).await
}

/// [`id_verb_response`] with who asks and on what condition.
pub(crate) async fn id_verb_response_with(
    control: &dyn QueueControl,
    id: &str,
    make: fn(QueueId) -> Verb,
    cx: VerbContext,
) -> Response {
    match parse_id(id) {
        Ok(id) => verb_response_with(control, make(id), cx).await,
        Err(r) => *r,
    }
}

fn retry_one(id: QueueId) -> Verb {
    Verb::Retry(Some(id))
}

/// `retry` as a constructor for [`id_verb_response`].
pub(crate) const RETRY: fn(QueueId) -> Verb = retry_one;

async fn retry(State(s): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> Response {
    id_verb_response(&*s.control, &id, RETRY).await
}

async fn retry_all(State(s): State<Arc<AppState>>) -> Response {
    verb_response(&*s.control, Verb::Retry(None)).await
}

/// Who is on the other end of the admin socket (`SO_PEERCRED`): named in
/// the mail log's `held` / `released` / `deleted` events as `uid 0 (pid
/// 4711)`. Only the server's user and root can open the socket (`0600`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SocketPeer {
    uid: Option<u32>,
    pid: Option<i32>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for SocketPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        let cred = stream.io().peer_cred().ok();
        Self {
            uid: cred.map(|c| c.uid()),
            pid: cred.and_then(|c| c.pid()),
        }
    }
}

/// The verb's context for a socket request: who, when known.
fn socket_cx(peer: Option<Extension<ConnectInfo<SocketPeer>>>) -> VerbContext {
    let by = match peer.map(|Extension(ConnectInfo(p))| p) {
        Some(SocketPeer {
            uid: Some(u),
            pid: Some(p),
        }) => format!("uid {u} (pid {p})"),
        Some(SocketPeer { uid: Some(u), .. }) => format!("uid {u}"),
        _ => String::new(),
    };
    VerbContext {
        by,
        quarantined_only: false,
    }
}

async fn hold(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketPeer>>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    id_verb_response_with(&*s.control, &id, Verb::Hold, socket_cx(peer)).await
}

async fn release(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketPeer>>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    id_verb_response_with(&*s.control, &id, Verb::Release, socket_cx(peer)).await
}

async fn delete(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketPeer>>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    id_verb_response_with(&*s.control, &id, Verb::Delete, socket_cx(peer)).await
}

/// `GET /v1/quarantine[?name=N]`: the quarantined messages (all
/// quarantines, or one), with the queue listing's shape.
async fn quarantine_list(
    State(s): State<Arc<AppState>>,
    Query(q): Query<QuarantineQuery>,
) -> Response {
    quarantine_list_response(&*s.control, q).await
}

/// `GET …/quarantine`.
pub(crate) async fn quarantine_list_response(
    control: &dyn QueueControl,
    q: QuarantineQuery,
) -> Response {
    let query = ListQuery {
        quarantine: Some(
            q.name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "*".into()),
        ),
        ..ListQuery::default()
    };
    list_response(control, query).await
}

/// `GET /v1/quarantine` query parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QuarantineQuery {
    /// Only this quarantine.
    name: Option<String>,
}

/// The verb, on a message that is in a quarantine (a `409` otherwise: the
/// quarantine endpoints never touch ordinary queued mail). The check and the
/// verb are one step for the running server ([`VerbContext::quarantined_only`]).
pub(crate) async fn quarantined_verb_response(
    control: &dyn QueueControl,
    id: &str,
    make: fn(QueueId) -> Verb,
    by: String,
) -> Response {
    let cx = VerbContext {
        by,
        quarantined_only: true,
    };
    id_verb_response_with(control, id, make, cx).await
}

async fn quarantine_release(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketPeer>>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    quarantined_verb_response(&*s.control, &id, Verb::Release, socket_cx(peer).by).await
}

async fn quarantine_delete(
    State(s): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketPeer>>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    quarantined_verb_response(&*s.control, &id, Verb::Delete, socket_cx(peer).by).await
}

async fn flush(State(s): State<Arc<AppState>>, UrlPath(domain): UrlPath<String>) -> Response {
    flush_response(&*s.control, domain).await
}

/// `POST …/queue/flush/{domain}`.
pub(crate) async fn flush_response(control: &dyn QueueControl, domain: String) -> Response {
    // A domain name (RFC 5321 §4.1.2 `Domain`, or an address literal): no
    // slashes, spaces or controls, at most 255 octets.
    let ok = !domain.is_empty()
        && domain.len() <= 255
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !ok {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid domain {domain:?}"),
        );
    }
    verb_response(control, Verb::Flush(domain)).await
}

//! The TCP listener: accepts connections (at most [`MAX_CONNECTIONS`] at
//! once; further ones wait in the kernel's backlog), does the TLS handshake
//! when configured (within [`HANDSHAKE_TIMEOUT`]), and serves HTTP/1.1 with
//! the [`super::router`] until the shutdown token fires.
//!
//! # Security
//! Refuses to start on an address that is not loopback without TLS
//! ([`check_listen`]): credentials never cross a network in clear text. A
//! client must send its request head within [`HEADER_TIMEOUT`] (slowloris;
//! the timer also runs while a keep-alive connection is idle, so idle
//! connections cannot hold the [`MAX_CONNECTIONS`] slots);
//! heads are limited to [`MAX_HEAD`] bytes; each request has the router's
//! timeout and body limit. The client's address is passed to handlers
//! (`ConnectInfo`) for the login limiter and logs.
//!
//! # Standards
//! RFC 9112 (HTTP/1.1), RFC 8446 (TLS 1.3) through rustls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::HttpState;
use crate::server::AdminError;
use crate::settings::HttpSettings;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections one client address (an IPv6 /64) may hold at once: a single
/// client cannot take every [`MAX_CONNECTIONS`] slot with idle connections.
pub const MAX_PER_CLIENT: usize = 16;

/// Open connections per client address (at most [`MAX_CONNECTIONS`] keys).
#[derive(Default)]
struct PerClient(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One connection counted against its client; uncounted when dropped.
struct ClientSlot(Arc<PerClient>, std::net::IpAddr);

impl PerClient {
    /// The client's key: IPv4 as is (IPv4-mapped unmapped), IPv6 by its /64.
    fn key(ip: std::net::IpAddr) -> std::net::IpAddr {
        match ip.to_canonical() {
            std::net::IpAddr::V6(v6) => {
                let s = v6.segments();
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 @ std::net::IpAddr::V4(_) => v4,
        }
    }

    /// A slot for `ip`, unless it holds [`MAX_PER_CLIENT`] already.
    fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let k = Self::key(ip);
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(k).or_insert(0);
        if *n >= MAX_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot(Arc::clone(self), k))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut m = self
            .0
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}
/// Time to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (and read buffer).
pub const MAX_HEAD: usize = 64 * 1024;
/// Time connections get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Refuses an address off loopback without TLS.
pub fn check_listen(addr: SocketAddr, tls: bool) -> Result<(), AdminError> {
    if tls || addr.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(AdminError::HttpNeedsTls(addr))
    }
}

/// Binds `settings.listen` and serves `state` on it (see [`serve_listener`]).
pub async fn serve(
    settings: &HttpSettings,
    state: HttpState,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, AdminError> {
    let addr = settings.listen.ok_or(AdminError::HttpNoListen)?;
    check_listen(addr, settings.tls.is_some())?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| AdminError::HttpBind(addr, e))?;
    serve_listener(listener, state, shutdown)
}

/// Serves `state` on a bound listener (tests bind `127.0.0.1:0`), with TLS
/// when `state.settings.tls` is set, until `shutdown`; the task ends when the
/// connections have finished (at most [`SHUTDOWN_GRACE`] later).
pub fn serve_listener(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, AdminError> {
    let addr = listener
        .local_addr()
        .map_err(|e| AdminError::HttpBind(SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
    check_listen(addr, state.settings.tls.is_some())?;
    let tls = state
        .settings
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    let app = super::router(state);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_client = Arc::new(PerClient::default());
    tracing::info!(%addr, tls = tls.is_some(), "admin HTTP listening");
    Ok(tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => break,
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(v) => v,
                    Err(e) => {
                        // EMFILE and friends: back off rather than spin.
                        tracing::warn!(error = %e, "admin HTTP: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let Some(slot) = per_client.take(peer.ip()) else {
                tracing::debug!(%peer, "admin HTTP: too many connections from this client; closed");
                drop(stream);
                continue;
            };
            let (app, tls, shutdown) = (app.clone(), tls.clone(), shutdown.clone());
            conns.spawn(async move {
                let _permit = permit;
                let _slot = slot;
                let _ = stream.set_nodelay(true);
                match tls {
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => connection(s, peer, app, shutdown).await,
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "admin HTTP: TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "admin HTTP: TLS handshake timed out"),
                        }
                    }
                    None => connection(stream, peer, app, shutdown).await,
                }
            });
            while conns.try_join_next().is_some() {}
        }
        drop(listener);
        if tokio::time::timeout(SHUTDOWN_GRACE, async {
            while conns.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            conns.abort_all();
        }
        tracing::info!(%addr, "admin HTTP stopped");
    }))
}

/// Serves HTTP/1.1 on one connection.
async fn connection<I>(io: I, peer: SocketAddr, app: Router, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "admin HTTP: connection ended");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

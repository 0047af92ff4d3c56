//! A small HTTP/1.1 client for the admin socket (hyper over a Unix stream):
//! what `postern queue …` uses to reach a running server.
//!
//! [`ClientError::NotRunning`] means nobody listens (no socket file, or the
//! connection was refused: a stale socket): the caller falls back to acting on
//! the spool, which takes the spool lock and so cannot race a server.
//!
//! # Security
//! Talks only to the given socket path. Answers come from our own server but
//! are bounded ([`MAX_ANSWER`]) and parsed as JSON, never executed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

/// Largest answer read (a listing of a very large queue).
pub const MAX_ANSWER: usize = 512 * 1024 * 1024;
/// Time for one request, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_mins(1);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No server listens on the socket.
    #[error("no server answers on {0}")]
    NotRunning(PathBuf),
    /// The socket exists but we may not use it.
    #[error("cannot use the admin socket {0}: {1} (run as the server's user)")]
    Denied(PathBuf, std::io::Error),
    /// Transport or protocol failure.
    #[error("admin socket {0}: {1}")]
    Failed(PathBuf, String),
}

/// A client of one admin socket.
#[derive(Debug, Clone)]
pub struct AdminClient {
    path: PathBuf,
}

impl AdminClient {
    /// A client of the socket at `path` (nothing is opened yet).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// `method uri` (no body); the status and the body.
    pub async fn request(&self, method: &str, uri: &str) -> Result<(u16, Vec<u8>), ClientError> {
        match tokio::time::timeout(TIMEOUT, self.request_inner(method, uri)).await {
            Ok(r) => r,
            Err(_) => Err(self.failed(format!("no answer within {}s", TIMEOUT.as_secs()))),
        }
    }

    /// Like [`AdminClient::request`], with the body parsed as `T` whatever the
    /// status (every answer of the API is JSON).
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        uri: &str,
    ) -> Result<(u16, T), ClientError> {
        let (status, body) = self.request(method, uri).await?;
        let v = serde_json::from_slice(&body).map_err(|e| {
            self.failed(format!(
                "answer {status} is not what was expected ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })?;
        Ok((status, v))
    }

    fn failed(&self, why: impl Into<String>) -> ClientError {
        ClientError::Failed(self.path.clone(), why.into())
    }

    async fn request_inner(&self, method: &str, uri: &str) -> Result<(u16, Vec<u8>), ClientError> {
        let stream = match tokio::net::UnixStream::connect(&self.path).await {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(ClientError::NotRunning(self.path.clone()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ClientError::Denied(self.path.clone(), e));
            }
            Err(e) => return Err(self.failed(e.to_string())),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let method =
            hyper::Method::from_bytes(method.as_bytes()).map_err(|e| self.failed(e.to_string()))?;
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.failed(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| self.failed(e.to_string()))?
            .to_bytes();
        conn.abort();
        Ok((status, body.to_vec()))
    }
}

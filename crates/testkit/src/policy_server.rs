//! `PolicyServer`: a tiny HTTPS server on `127.0.0.1:<random port>` that
//! answers every request with one `text/plain` body — an MTA-STS policy host
//! (`https://mta-sts.<domain>/.well-known/mta-sts.txt`, RFC 8461 §3.3) for
//! hermetic tests. The body can be changed, and requests are counted, so a
//! test can tell a fetched policy from a cached one.
//!
//! Point a fetcher at it with the URL template
//! `https://mta-sts.{domain}:<port>/.well-known/mta-sts.txt` and an A record
//! for `mta-sts.<domain>` → 127.0.0.1 in the fake DNS.
//!
//! # Security
//! Test-only code. Binds 127.0.0.1 only; reads at most 16 KiB of request head.
//!
//! # Standards
//! RFC 9112 (HTTP/1.1 messages, `Connection: close`), RFC 8461 §3.3.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-response-per-connection HTTPS server. Stops when dropped.
pub struct PolicyServer {
    port: u16,
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PolicyServer {
    /// Starts serving `body` with the certificate of `tls` (e.g.
    /// `mx_tls_config(&ca.issue(&["mta-sts.example.net"]))`).
    pub async fn start(tls: Arc<rustls::ServerConfig>, body: &str) -> PolicyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let body = Arc::new(Mutex::new(body.to_owned()));
        let requests = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let (b, r) = (Arc::clone(&body), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (b, r) = (Arc::clone(&b), Arc::clone(&r));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                        if head.len() > 16 * 1024 {
                            return;
                        }
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let body = b.lock().map(|g| g.clone()).unwrap_or_default();
                    let out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(out.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        PolicyServer {
            port,
            body,
            requests,
            task,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL template for an MTA-STS fetcher (`{domain}` kept).
    pub fn url_template(&self) -> String {
        format!(
            "https://mta-sts.{{domain}}:{}/.well-known/mta-sts.txt",
            self.port
        )
    }

    /// Serves `body` from now on.
    pub fn set_body(&self, body: &str) {
        if let Ok(mut g) = self.body.lock() {
            body.clone_into(&mut g);
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

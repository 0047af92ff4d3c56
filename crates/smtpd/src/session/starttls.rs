//! STARTTLS and the implicit-TLS handshake.
//!
//! # Security
//! CVE-2011-0411 (STARTTLS command injection): any plaintext the client
//! pipelined after `STARTTLS` is discarded before the handshake, so nothing
//! sent in clear can be executed as if it had arrived over TLS. RFC 3207 §4.2
//! (forget everything learned in clear) is the machine's. The handshake has its
//! own timeout. A failed handshake is logged with a cause from the catalogue
//! and closes the session.
//!
//! # Standards
//! RFC 3207 (STARTTLS), RFC 8314 §3.3 (implicit TLS), RFC 6066 §3 (SNI).

use std::sync::Arc;

use postern_proto::session::Event;
use postern_tls::cause::classify_inbound;
use postern_tls::facts::{ClientHelloSummary, TlsFacts};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;

use super::{End, Session, tls_info};
use crate::conn::Conn;

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// After `220 Ready to start TLS`: purge, handshake, tell the machine.
    pub(super) async fn starttls(&mut self) -> Result<(), End> {
        self.flush().await?;
        if !self.inbuf.is_empty() {
            // CVE-2011-0411: never execute plaintext pipelined behind STARTTLS.
            let n = self.inbuf.len();
            tracing::warn!(
                octets = n,
                "discarded plaintext pipelined after STARTTLS (CVE-2011-0411)"
            );
            self.event(&format!(
                "discarded {n} octets of plaintext pipelined after STARTTLS (CVE-2011-0411)"
            ));
        }
        self.inbuf.clear();
        self.lines = postern_proto::LineReader::new(self.machine.line_limit());
        self.line_deadline = None;
        if self.handshake().await.is_err() {
            return Err(End::TlsFailed);
        }
        let info = self.tls.as_ref().map(tls_info);
        if let Some(info) = info {
            self.machine.handle(Event::TlsEstablished(info));
        }
        Ok(())
    }

    /// Tells the mail log's observer (metrics) a handshake failed.
    fn tls_failed_metric(&self, cause_id: &str) {
        if let Some(log) = &self.ctx.mail_log {
            log.tls_failed_inbound(&self.ctx.listener.name, cause_id);
        }
    }

    /// Runs the server side of a TLS handshake on the plaintext connection.
    pub(super) async fn handshake(&mut self) -> Result<(), ()> {
        let Some(config) = self.ctx.shared.tls.clone() else {
            tracing::error!("TLS requested but no TLS configuration is loaded");
            return Err(());
        };
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Upgrading) else {
            return Err(());
        };
        let timeout = self.ctx.listener.limits.tls_handshake_timeout;
        let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
        let result = tokio::time::timeout(timeout, async {
            let start = acceptor.await.map_err(|e| (e, None))?;
            let offered = ClientHelloSummary::from_client_hello(&start.client_hello());
            match start.into_stream(Arc::clone(&config)).await {
                Ok(stream) => Ok((stream, offered)),
                Err(e) => Err((e, Some(offered))),
            }
        })
        .await;
        match result {
            Ok(Ok((stream, _offered))) => {
                let facts = TlsFacts::from_connection(stream.get_ref().1);
                if let Some(f) = &facts {
                    self.event(&format!(
                        "TLS handshake: {} {} group={} sni={} resumed={}",
                        f.version,
                        f.cipher,
                        f.group.as_deref().unwrap_or("-"),
                        f.sni.as_deref().unwrap_or("-"),
                        f.resumed
                    ));
                }
                self.tls = facts;
                self.conn = Conn::Tls(Box::new(stream));
                Ok(())
            }
            Ok(Err((err, offered))) => {
                let cause = classify_inbound(&err, offered.as_ref(), &self.ctx.shared.settings.tls);
                tracing::warn!(cause = cause.id,
                    summary = %cause.summary, fix = %cause.fix, "TLS handshake failed");
                self.event(&format!(
                    "TLS handshake failed: [{}] {} | fix: {}",
                    cause.id, cause.summary, cause.fix
                ));
                self.tls_failed_metric(cause.id);
                Err(())
            }
            Err(_elapsed) => {
                tracing::warn!("TLS handshake timed out");
                self.event("TLS handshake failed: timeout");
                self.tls_failed_metric(postern_tls::cause::TIMEOUT);
                Err(())
            }
        }
    }
}

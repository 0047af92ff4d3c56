//! Test support for Postern: a throw-away certificate authority, TLS client
//! configurations, a line-level SMTP dialogue client, a fake DNS server, fake
//! MX servers and an MTA-STS policy server. Not shipped.
//!
//! # Security
//! Test-only code: keys are generated per test run and never persisted outside
//! temporary directories. Everything binds or connects to 127.0.0.1 only.

mod ca;
mod dialogue;
mod dns;
mod fakemx;
mod policy_server;

pub use ca::{Issued, KeyKind, TestCa};
pub use dialogue::{Dialogue, SmtpReply};
pub use dns::{DnsFailure, FakeDns, RrsetSigner};
pub use fakemx::{FakeMx, MxTls, ReceivedMail, mx_tls_config, mx_tls_config_with_ca};
pub use policy_server::PolicyServer;

use std::sync::Arc;

/// A rustls client config trusting `ca`, restricted to `versions` and (when
/// non-empty) to `suites` in the given order.
pub fn client_config(
    ca: &TestCa,
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: &[rustls::SupportedCipherSuite],
) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !suites.is_empty() {
        provider.cipher_suites = suites.to_vec();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("test client versions are valid")
        .with_root_certificates(ca.root_store())
        .with_no_client_auth();
    Arc::new(cfg)
}

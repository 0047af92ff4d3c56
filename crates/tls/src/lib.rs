//! TLS for Postern: the cipher-suite catalogue, rustls configurations built from
//! settings, the certificate store with SNI selection and a default certificate,
//! certificate checks, the facts of a completed handshake, and the catalogue of
//! handshake failure causes.
//!
//! # Security
//! Builds the configurations that decide what every TLS peer may negotiate. Only
//! TLS 1.2 and 1.3 with AEAD suites are ever offered (rustls cannot do less).
//! Reads certificate and key files named by the operator; generates a self-signed
//! certificate only when asked to.
//!
//! # Standards
//! RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 6066 §3 (SNI), RFC 5280 (X.509).

pub mod cause;
pub mod certs;
pub mod client;
mod error;
pub mod facts;
pub mod groups;
pub mod selfsigned;
pub mod server;
mod settings;
pub mod suites;

pub use certs::{CertError, CertStore, CertSummary, CertWarning, LoadedCerts};
pub use error::TlsError;
pub use facts::{ClientHelloSummary, TlsFacts};
pub use groups::GroupError;
pub use settings::{CertSettings, TlsSettings, TlsVersion};
pub use suites::{SuiteError, SuiteInfo};

//! The durable message spool: every message Postern answered `250` to is here,
//! complete, until delivery removes it.
//!
//! # Security
//! Writes only below the configured spool directory. Reads files it wrote itself,
//! but treats them as untrusted on recovery (a damaged file is moved aside, never
//! half-read).
//!
//! # Standards
//! None on the wire; the on-disk format is `docs/spool-format.md`.

mod settings;

pub use settings::SpoolSettings;

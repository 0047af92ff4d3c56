//! The only crate that knows `postern.toml`.

//! The graded TLS scanner (`postern tls scan`).

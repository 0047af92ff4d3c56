//! Test support for Postern. Not shipped.

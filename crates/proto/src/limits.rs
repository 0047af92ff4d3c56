//! Protocol size limits (RFC 5321 §4.5.3.1), all configurable upward.

/// Size limits applied while parsing. Defaults are the RFC 5321 §4.5.3.1 minimums,
/// which are also the maximums a hostile peer can make us hold per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line in octets, including the CRLF (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line: usize,
    /// Longest local part in octets (RFC 5321 §4.5.3.1.1: 64).
    pub max_local_part: usize,
    /// Longest domain in octets (RFC 5321 §4.5.3.1.2: 255).
    pub max_domain: usize,
    /// Longest text line in DATA, in octets including the CRLF (RFC 5321 §4.5.3.1.6: 1000).
    pub max_text_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_command_line: 512,
            max_local_part: 64,
            max_domain: 255,
            max_text_line: 1000,
        }
    }
}

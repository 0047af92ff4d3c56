//! Parse errors of a rule file: where (origin, line, column) and what was expected.
//!
//! A rule file is parsed whole and every error is reported, not only the first, so an
//! admin fixes a file in one pass. The list is bounded by [`MAX_ERRORS`].

use std::fmt;

use thiserror::Error;

/// At most this many errors are reported for one file; the last one says the rest was
/// not reported.
pub const MAX_ERRORS: usize = 100;

/// One error in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ParseError {
    /// The file name (or other origin) given to [`crate::RuleSet::parse`].
    pub origin: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong and what is allowed there.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(origin: &str, line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

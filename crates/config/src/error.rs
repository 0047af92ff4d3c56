//! Configuration errors and warnings, located at `file:line:column` and named
//! by key path (`listener[1].tls`).
//!
//! Array indexes in key paths count from 0, like the `[n]` of most tools;
//! the line and column (both from 1) say which entry is meant.

use std::fmt;
use std::ops::Range;

/// Where in the file something is: line and column count from 1; the column
/// counts characters, not bytes. `span` is the byte range in the source, for
/// renderers that underline it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// Byte range of the offending text in the source.
    pub span: Range<usize>,
}

impl Location {
    /// The location of byte offset `span.start` in `src`.
    pub(crate) fn of(src: &str, span: Range<usize>) -> Self {
        let mut start = span.start.min(src.len());
        while !src.is_char_boundary(start) {
            start -= 1;
        }
        let before = &src[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            span,
        }
    }
}

/// What kind of failure a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Read,
    /// The file is not valid TOML.
    Syntax,
    /// Valid TOML, but a key or value is wrong.
    Invalid,
}

/// Why a configuration was refused: the first error in file order, and
/// [`ConfigError::all`] for every one found in the same run.
///
/// Displays as `origin:line:column: key: what is wrong; what is allowed`, e.g.
/// `postern.toml:12:7: listener[1].tls: unknown value "sometimes"; allowed: "off", "optional", "required"`,
/// one line per error. Parts that do not apply (no location for a read
/// error, no key for a syntax error) are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    kind: ErrorKind,
    origin: Box<str>,
    location: Option<Location>,
    key: Box<str>,
    message: String,
    /// The other errors of the same file, in file order (boxed slices keep
    /// the error small: it travels in every `Result` of the checks).
    more: Box<[ConfigError]>,
}

impl ConfigError {
    pub(crate) fn new(
        kind: ErrorKind,
        origin: &str,
        location: Option<Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            origin: origin.into(),
            location,
            key: key.into().into_boxed_str(),
            message: message.into(),
            more: Box::default(),
        }
    }

    /// One error for several (at least one): sorted into file order, the
    /// first carries the rest.
    pub(crate) fn combine(mut errors: Vec<ConfigError>) -> Option<Self> {
        let mut flat = Vec::new();
        for mut e in errors.drain(..) {
            flat.extend(std::mem::take(&mut e.more));
            flat.push(e);
        }
        flat.sort_by_key(|e| e.location.as_ref().map_or(usize::MAX, |l| l.span.start));
        flat.dedup_by(|a, b| a.location == b.location && a.key == b.key && a.message == b.message);
        let mut iter = flat.into_iter();
        let mut first = iter.next()?;
        first.more = iter.collect();
        Some(first)
    }

    /// This error and every other one found in the same run, in file order.
    pub fn all(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// This error alone, `origin:line:column: key: message` (the
    /// `Display` of the first error lists the others too, one per line).
    pub fn line(&self) -> String {
        struct One<'a>(&'a ConfigError);
        impl fmt::Display for One<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let e = self.0;
                render(f, &e.origin, e.location.as_ref(), &e.key, &e.message)
            }
        }
        One(self).to_string()
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file name (as given to [`crate::load_file`]) or `<embedded default>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where in the file; `None` when the file could not be read.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The key path (`listener[1].tls`); empty for syntax and read errors.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong and, where it helps, what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

fn render(
    f: &mut fmt::Formatter<'_>,
    origin: &str,
    location: Option<&Location>,
    key: &str,
    message: &str,
) -> fmt::Result {
    f.write_str(origin)?;
    if let Some(l) = location {
        write!(f, ":{}:{}", l.line, l.column)?;
    }
    if !key.is_empty() {
        write!(f, ": {key}")?;
    }
    write!(f, ": {message}")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(
            f,
            &self.origin,
            self.location.as_ref(),
            &self.key,
            &self.message,
        )?;
        for e in &self.more {
            f.write_str("\n")?;
            render(f, &e.origin, e.location.as_ref(), &e.key, &e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A setting that is allowed but weakens security or cannot work as the
/// operator probably intends. The binary logs every warning at startup and
/// `config check` prints them.
///
/// Displays like [`ConfigError`]: `origin:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    origin: String,
    location: Option<Location>,
    key: String,
    message: String,
}

impl Warning {
    pub(crate) fn new(
        origin: &str,
        location: Option<Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            origin: origin.to_owned(),
            location,
            key: key.into(),
            message: message.into(),
        }
    }

    /// The file name or `<embedded default>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where in the file, when the warning is about something written there.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// The key path the warning is about (may be a table, e.g. `relay`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is risky and how to fix it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(
            f,
            &self.origin,
            self.location.as_ref(),
            &self.key,
            &self.message,
        )
    }
}

/// Turns a toml/serde message into ours: unknown keys list the allowed keys,
/// missing keys are named, type errors say what was expected first.
/// Returns the key path to report and the message.
pub(crate) fn rewrite_serde_message(path: &str, msg: &str) -> (String, String) {
    let join = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = msg.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        return (join(field), "required key is missing".to_owned());
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
    {
        // serde: ", expected one of `a`, `b`" | ", expected `a` or `b`" |
        // ", expected `a`" | ", there are no fields".
        let allowed: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let message = if allowed.is_empty() {
            "unknown key; this table takes no keys".to_owned()
        } else {
            let hint = did_you_mean(field, &allowed)
                .map(|k| format!(" did you mean \"{k}\"?"))
                .unwrap_or_default();
            format!(
                "unknown key;{hint} allowed: {}",
                crate::raw::quoted_list(allowed.iter().copied())
            )
        };
        // serde_path_to_error's path already ends with the unknown key.
        return (path.to_owned(), message);
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        if expected == "a sequence" && found == "map" {
            // `[listener]` written for `[[listener]]`.
            return (
                path.to_owned(),
                format!(
                    "expected an array of tables: write [[{path}]] (double brackets) for each \
                     entry; found a single [{path}] table"
                ),
            );
        }
        // Say it in TOML's words: tables and arrays, not maps and sequences.
        let expected = expected.replace("a sequence", "an array");
        let found = match found {
            "map" => "a table",
            "sequence" => "an array",
            other => other,
        };
        return (
            path.to_owned(),
            format!("expected {expected}, found {found}"),
        );
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return (
            path.to_owned(),
            format!("expected {expected}, found {found}"),
        );
    }
    (path.to_owned(), msg.to_owned())
}

/// The allowed key closest to a misspelt one, when it is close enough to be
/// what was meant: at most 2 edits (transpositions count as one), and fewer
/// than half the key's length.
pub(crate) fn did_you_mean<'a>(unknown: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let unknown = unknown.to_ascii_lowercase();
    allowed
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&unknown, &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2 && *d * 2 < k.len().max(unknown.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["min_version", "max_version", "cipher_suites", "groups"];
        assert_eq!(did_you_mean("cipher_suite", &keys), Some("cipher_suites"));
        assert_eq!(did_you_mean("grups", &keys), Some("groups"));
        assert_eq!(did_you_mean("max_verison", &keys), Some("max_version"));
        assert_eq!(did_you_mean("Groups", &keys), Some("groups"));
        assert_eq!(did_you_mean("ciphers", &keys), None);
        assert_eq!(did_you_mean("x", &["y"]), None);
    }

    #[test]
    fn location_counts_lines_and_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(Location::of(src, 0..1).line, 1);
        let l = Location::of(src, 12..15);
        assert_eq!((l.line, l.column), (2, 6));
        let end = Location::of(src, src.len()..src.len());
        assert_eq!((end.line, end.column), (3, 1));
        // Inside a multi-byte character: clamp back to its start.
        let mid = Location::of(src, 8..9);
        assert_eq!((mid.line, mid.column), (2, 2));
    }

    #[test]
    fn serde_messages() {
        let cases = [
            (
                "",
                "missing field `data_dir`",
                "data_dir",
                "required key is missing",
            ),
            (
                "listener[0]",
                "missing field `name`",
                "listener[0].name",
                "required key is missing",
            ),
            (
                "tls.bla",
                "unknown field `bla`, expected one of `min_version`, `max_version`",
                "tls.bla",
                "unknown key; allowed: \"min_version\", \"max_version\"",
            ),
            (
                "tls.max_verion",
                "unknown field `max_verion`, expected one of `min_version`, `max_version`",
                "tls.max_verion",
                "unknown key; did you mean \"max_version\"? allowed: \"min_version\", \"max_version\"",
            ),
            (
                "x.y",
                "unknown field `y`, expected `a` or `b`",
                "x.y",
                "unknown key; allowed: \"a\", \"b\"",
            ),
            (
                "x.y",
                "unknown field `y`, expected `a`",
                "x.y",
                "unknown key; allowed: \"a\"",
            ),
            (
                "x.y",
                "unknown field `y`, there are no fields",
                "x.y",
                "unknown key; this table takes no keys",
            ),
            (
                "hostname",
                "invalid type: integer `5`, expected a string",
                "hostname",
                "expected a string, found integer `5`",
            ),
            (
                "listener",
                "invalid type: map, expected a sequence",
                "listener",
                "expected an array of tables: write [[listener]] (double brackets) for each \
                 entry; found a single [listener] table",
            ),
            (
                "tls.groups",
                "invalid type: string \"x25519\", expected a sequence",
                "tls.groups",
                "expected an array, found string \"x25519\"",
            ),
            (
                "smtp",
                "invalid type: sequence, expected a table",
                "smtp",
                "expected a table, found an array",
            ),
            ("a", "something else", "a", "something else"),
        ];
        for (path, msg, key, want) in cases {
            assert_eq!(
                rewrite_serde_message(path, msg),
                (key.to_owned(), want.to_owned()),
                "{msg}"
            );
        }
    }
}

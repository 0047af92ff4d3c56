//! Dictionaries: named lists of words, phrases, addresses and domains that
//! filter rules test for membership and match in text with word boundaries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What is wrong with a dictionary.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    /// The file could not be read.
    #[error("dictionary {name}: cannot read {}: {source}", path.display())]
    Io {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than the cap.
    #[error("dictionary {name}: {} is {size} bytes, more than the {max} allowed", path.display())]
    TooLarge {
        name: String,
        path: PathBuf,
        size: u64,
        max: u64,
    },
    /// A line is wrong.
    #[error("dictionary {name}{}: line {line}: {what}", source_suffix(path.as_deref()))]
    Line {
        name: String,
        path: Option<PathBuf>,
        line: usize,
        what: String,
    },
    /// Two dictionaries were given the same name.
    #[error("dictionary {name} is defined twice")]
    DuplicateName { name: String },
}

fn source_suffix(path: Option<&Path>) -> String {
    path.map(|p| format!(" ({})", p.display()))
        .unwrap_or_default()
}

impl DictError {
    /// The 1-based line number, for errors about a line.
    pub fn line(&self) -> Option<usize> {
        match self {
            DictError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// One match of an entry in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DictMatch<'a> {
    /// The entry as written in the dictionary.
    pub entry: &'a str,
    /// The entry's weight.
    pub weight: u32,
    /// Byte range of the match in the text searched.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
    /// The matched slice of the text searched.
    pub matched: &'a str,
}

/// A parsed dictionary with its automaton.
#[derive(Debug)]
pub struct Dictionary {
    name: String,
}

impl Dictionary {
    /// Parses dictionary text (see docs/dictionaries.md for the format).
    pub fn parse(name: &str, text: &str) -> Result<Dictionary, DictError> {
        let _ = (name, text);
        todo!()
    }

    /// Reads and parses a dictionary file (at most 64 MiB, UTF-8).
    pub fn load(name: &str, path: &Path) -> Result<Dictionary, DictError> {
        let _ = (name, path);
        todo!()
    }

    /// The dictionary's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// True when the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whole-value membership: `value` equals an entry (case-insensitive), or
    /// is an address whose domain is listed as `@domain` (exact) or
    /// `@.domain` (any subdomain).
    pub fn contains(&self, value: &str) -> bool {
        let _ = value;
        todo!()
    }

    /// The entries found in `text` with word boundaries, case-insensitive,
    /// leftmost-longest, non-overlapping, in text order.
    pub fn find_in<'a>(&'a self, text: &'a str) -> impl Iterator<Item = DictMatch<'a>> + 'a {
        let _ = text;
        todo!();
        #[allow(unreachable_code)]
        std::iter::empty()
    }

    /// Sum of the weights of the matches [`Dictionary::find_in`] yields.
    pub fn score(&self, text: &str) -> u64 {
        self.find_in(text).map(|m| u64::from(m.weight)).sum()
    }
}

/// What a refresh did to one dictionary whose file changed.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The new file was loaded; it has this many entries.
    Reloaded { entries: usize },
    /// The new file is bad; the previous contents stay in use.
    Failed(DictError),
}

/// One dictionary's refresh result.
#[derive(Debug)]
pub struct RefreshReport {
    pub name: String,
    pub path: PathBuf,
    pub outcome: RefreshOutcome,
}

/// A set of named dictionaries loaded from files, reloadable live.
#[derive(Debug)]
pub struct Dictionaries {
    _private: (),
}

impl Dictionaries {
    /// Loads every `(name, path)`; the first error stops the load.
    pub fn load(specs: &[(String, PathBuf)]) -> Result<Dictionaries, DictError> {
        let _ = specs;
        todo!()
    }

    /// The dictionary named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Dictionary>> {
        let _ = name;
        todo!()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        todo!()
    }

    /// Re-reads the files whose modification time or size changed; a bad new
    /// file keeps the old contents and is reported.
    pub fn refresh(&self) -> Vec<RefreshReport> {
        todo!()
    }
}

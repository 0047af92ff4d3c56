//! Dictionaries: named lists of words, phrases, addresses and domains that
//! filter rules test for membership ([`Dictionary::contains`]) and find in
//! text with word boundaries ([`Dictionary::find_in`], [`Dictionary::score`]).
//! The file format is in [`mod@format`]; live reload of a set of files in
//! [`Dictionaries`].
//!
//! # Matching
//! Entries and texts are folded the same way (lower case, white-space runs →
//! one space). One Aho-Corasick automaton over all folded entries finds every
//! occurrence, overlapping ones included, in one pass over the text; an
//! occurrence counts only at word boundaries: where the entry starts (ends)
//! with a letter, digit or `_`, the text character before (after) it must not
//! be one. Among the occurrences that pass, the leftmost-longest
//! non-overlapping ones are reported. Searching all occurrences first (not
//! leftmost-longest in the automaton) is what makes "cat" in "bathe cat"
//! found although "the cat" is also an entry: a leftmost-longest automaton
//! would consume "the cat" inside "bathe cat", fail its boundary check, and
//! skip the "cat" inside it.
//!
//! Scripts written without spaces between words (Han, Hiragana, Katakana,
//! Thai) have no word boundaries to check: an entry in them matches anywhere.
//!
//! # Security
//! Texts are untrusted; the work is linear in the text plus the occurrences
//! found (at most one per entry length per position), with one folded copy of
//! the text and one offset table.

pub mod format;
mod set;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

pub use set::{Dictionaries, RefreshOutcome, RefreshReport};

/// Largest dictionary file read (64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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
    /// A line is wrong (or not UTF-8).
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
    /// The automaton could not be built (too many or too long entries).
    #[error("dictionary {name}: cannot build the matcher: {what}")]
    Build { name: String, what: String },
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
    /// Byte offset of the match in the text searched.
    pub start: usize,
    /// End of the match (exclusive byte offset).
    pub end: usize,
    /// The matched slice of the text searched.
    pub matched: &'a str,
}

#[derive(Debug)]
struct Entry {
    text: String,
    weight: u32,
    /// The folded entry starts / ends with a word character, so a word
    /// boundary is checked on that side.
    bound_start: bool,
    bound_end: bool,
}

/// A parsed dictionary with its automaton.
pub struct Dictionary {
    name: String,
    entries: Vec<Entry>,
    /// Folded entry → index in `entries`.
    exact: HashMap<String, usize>,
    /// Pattern id = index in `entries`.
    automaton: AhoCorasick,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("name", &self.name)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Dictionary {
    /// Parses dictionary text (format: [`mod@format`], docs/dictionaries.md).
    pub fn parse(name: &str, text: &str) -> Result<Dictionary, DictError> {
        Self::build(name, None, text)
    }

    /// Reads and parses a dictionary file (at most [`MAX_FILE_BYTES`], UTF-8).
    pub fn load(name: &str, path: &Path) -> Result<Dictionary, DictError> {
        let io = |source| DictError::Io {
            name: name.to_owned(),
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        // Read one byte past the cap so a file that grew after a stat is caught too.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        let size = bytes.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(DictError::TooLarge {
                name: name.to_owned(),
                path: path.to_owned(),
                size,
                max: MAX_FILE_BYTES,
            });
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let bad = e.utf8_error().valid_up_to();
                let line = 1 + memchr::memchr_iter(b'\n', &e.as_bytes()[..bad]).count();
                return Err(DictError::Line {
                    name: name.to_owned(),
                    path: Some(path.to_owned()),
                    line,
                    what: "not valid UTF-8 (save the file as UTF-8)".to_owned(),
                });
            }
        };
        Self::build(name, Some(path), &text)
    }

    fn build(name: &str, path: Option<&Path>, text: &str) -> Result<Dictionary, DictError> {
        let raw = format::parse_entries(text).map_err(|(line, what)| DictError::Line {
            name: name.to_owned(),
            path: path.map(Path::to_path_buf),
            line,
            what,
        })?;
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(raw.iter().map(|e| e.key.as_bytes()))
            .map_err(|e| DictError::Build {
                name: name.to_owned(),
                what: e.to_string(),
            })?;
        let mut exact = HashMap::with_capacity(raw.len());
        let mut entries = Vec::with_capacity(raw.len());
        for (i, e) in raw.into_iter().enumerate() {
            let bound_start = e.key.chars().next().is_some_and(is_word_char);
            let bound_end = e.key.chars().next_back().is_some_and(is_word_char);
            exact.insert(e.key, i);
            entries.push(Entry {
                text: e.text,
                weight: e.weight,
                bound_start,
                bound_end,
            });
        }
        Ok(Dictionary {
            name: name.to_owned(),
            entries,
            exact,
            automaton,
        })
    }

    /// The dictionary's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The weight of the entry equal to `value` (folded), if any.
    pub fn weight_of(&self, value: &str) -> Option<u32> {
        self.exact
            .get(&format::fold(value))
            .map(|&i| self.entries[i].weight)
    }

    /// Whole-value membership. `value` (surrounding `<>` and white space
    /// ignored, case-insensitive) is in the dictionary when it equals an entry,
    /// or when it is an address `local@domain` or a bare domain and the
    /// dictionary has `@domain` (that domain exactly) or `@.parent` for one of
    /// its parent domains (any subdomain of `parent`, not `parent` itself).
    pub fn contains(&self, value: &str) -> bool {
        let value = value.trim();
        let value = value
            .strip_prefix('<')
            .and_then(|v| v.strip_suffix('>'))
            .unwrap_or(value);
        let key = format::fold(value);
        if key.is_empty() {
            return false;
        }
        if self.exact.contains_key(&key) {
            return true;
        }
        let domain = match key.rsplit_once('@') {
            Some((_, d)) => d,
            None if !key.contains(' ') => key.as_str(),
            None => return false,
        };
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            return false;
        }
        let mut probe = String::with_capacity(domain.len() + 2);
        probe.push('@');
        probe.push_str(domain);
        if self.exact.contains_key(&probe) {
            return true;
        }
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            probe.clear();
            probe.push_str("@.");
            probe.push_str(parent);
            if self.exact.contains_key(&probe) {
                return true;
            }
            rest = parent;
        }
        false
    }

    /// The entries found in `text` with word boundaries, case-insensitive,
    /// leftmost-longest, non-overlapping, in text order (see the module
    /// documentation).
    pub fn find_in<'a>(&'a self, text: &'a str) -> impl Iterator<Item = DictMatch<'a>> + 'a {
        self.matches_in(text).into_iter()
    }

    /// True when at least one entry occurs in `text` (word boundaries).
    pub fn matches(&self, text: &str) -> bool {
        let hay = format::fold(text);
        self.automaton
            .find_overlapping_iter(hay.as_str())
            .any(|m| self.at_boundaries(&hay, m.pattern().as_usize(), m.start(), m.end()))
    }

    /// Sum of the weights of the matches [`Dictionary::find_in`] yields.
    pub fn score(&self, text: &str) -> u64 {
        let hay = format::fold(text);
        self.select(&hay)
            .iter()
            .map(|&(_, _, idx)| u64::from(self.entries[idx].weight))
            .sum()
    }

    fn matches_in<'a>(&'a self, text: &'a str) -> Vec<DictMatch<'a>> {
        let hay = format::fold(text);
        let chosen = self.select(&hay);
        if chosen.is_empty() {
            return Vec::new();
        }
        // Chosen matches do not overlap, so start₁ ≤ end₁ ≤ start₂ …: one
        // forward pass maps them all back to the original text.
        let targets: Vec<usize> = chosen.iter().flat_map(|&(s, e, _)| [s, e]).collect();
        let original = original_offsets(text, &targets);
        chosen
            .iter()
            .zip(original.chunks_exact(2))
            .map(|(&(_, _, idx), span)| {
                let start = span[0];
                let mut end = span[1];
                if end <= start {
                    // The match ended inside the lower-case expansion of one
                    // character ("İ" → "i̇"): report that whole character.
                    end = start + text[start..].chars().next().map_or(0, char::len_utf8);
                }
                let entry = &self.entries[idx];
                DictMatch {
                    entry: &entry.text,
                    weight: entry.weight,
                    start,
                    end,
                    matched: &text[start..end],
                }
            })
            .collect()
    }

    /// The leftmost-longest non-overlapping occurrences at word boundaries in
    /// the folded text: (start, end, entry index), in text order.
    fn select(&self, hay: &str) -> Vec<(usize, usize, usize)> {
        let mut found: Vec<(usize, usize, usize)> = self
            .automaton
            .find_overlapping_iter(hay)
            .filter(|m| self.at_boundaries(hay, m.pattern().as_usize(), m.start(), m.end()))
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect();
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut taken_to = 0;
        found.retain(|&(start, end, _)| {
            if start < taken_to {
                return false;
            }
            taken_to = end;
            true
        });
        found
    }

    fn at_boundaries(&self, hay: &str, idx: usize, start: usize, end: usize) -> bool {
        let entry = &self.entries[idx];
        let found = &hay[start..end];
        let before_ok = !entry.bound_start
            || hay[..start].chars().next_back().is_none_or(|before| {
                found
                    .chars()
                    .next()
                    .is_none_or(|first| is_boundary(before, first))
            });
        let after_ok = !entry.bound_end
            || hay[end..].chars().next().is_none_or(|after| {
                found
                    .chars()
                    .next_back()
                    .is_none_or(|last| is_boundary(last, after))
            });
        before_ok && after_ok
    }
}

/// Is there a word boundary between adjacent characters `left` and `right`
/// (one of which is a word character of the match)?
fn is_boundary(left: char, right: char) -> bool {
    !(is_word_char(left) && is_word_char(right)) || is_unspaced(left) || is_unspaced(right)
}

/// A letter, digit or `_` (Unicode): the characters a word is made of.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Scripts written without spaces between words: Thai, Hiragana, Katakana, Han.
fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F          // Thai
        | 0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3400..=0x4DBF        // CJK Extension A
        | 0x4E00..=0x9FFF        // CJK Unified Ideographs
        | 0xF900..=0xFAFF        // CJK Compatibility Ideographs
        | 0x20000..=0x3FFFF) // CJK Extensions B–H
}

/// The offsets in `original` of the non-decreasing offsets `targets` in
/// `format::fold(original)`: for each, where the original character that
/// produced that folded byte starts (the end of the text for the end of the
/// folded text). Repeats the folding walk, so both always agree.
fn original_offsets(original: &str, targets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(targets.len());
    let mut next = targets.iter().copied().peekable();
    let mut folded = 0;
    let mut pending_space: Option<usize> = None;
    let mut buf = String::new();
    if original.is_ascii() {
        // Same walk, byte by byte: every character folds to one byte.
        for (i, &b) in original.as_bytes().iter().enumerate() {
            if next.peek().is_none() {
                return out;
            }
            if matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ') {
                if folded > 0 && pending_space.is_none() {
                    pending_space = Some(i);
                }
                continue;
            }
            if let Some(at) = pending_space.take() {
                while next.next_if(|&t| t <= folded).is_some() {
                    out.push(at);
                }
                folded += 1;
            }
            while next.next_if(|&t| t <= folded).is_some() {
                out.push(i);
            }
            folded += 1;
        }
        let end = pending_space.unwrap_or(original.len());
        out.extend(next.map(|_| end));
        return out;
    }
    for (i, c) in original.char_indices() {
        if next.peek().is_none() {
            return out;
        }
        if c.is_whitespace() {
            if folded > 0 && pending_space.is_none() {
                pending_space = Some(i);
            }
            continue;
        }
        if let Some(at) = pending_space.take() {
            while next.next_if(|&t| t <= folded).is_some() {
                out.push(at);
            }
            folded += 1;
        }
        let width = if c.is_ascii() {
            1
        } else {
            buf.clear();
            format::push_folded(&mut buf, c);
            buf.len()
        };
        while next.next_if(|&t| t < folded + width).is_some() {
            out.push(i);
        }
        folded += width;
    }
    let end = pending_space.unwrap_or(original.len());
    out.extend(next.map(|_| end));
    out
}

//! Reading the file into [`RawConfig`] and finding every key-level error in
//! one run, not only the first.
//!
//! serde stops at the first error. So the file is parsed once into toml's
//! spanned document tree; each time deserializing it fails on a key (unknown
//! key, wrong type, bad value), the error is kept and that key is taken out
//! of the tree, and deserializing starts again, until it succeeds or the
//! error is about the file as a whole. A table that lacks a required key is
//! taken out whole (an array of tables whole: later entries keep their
//! numbers), so errors inside it after the first are found on the next run.
//! A "missing" error caused by taking a bad value out is not reported. The
//! errors are sorted into file order by the caller.
//!
//! # Security
//! Parses operator input only; the number of rounds is bounded
//! ([`MAX_ROUNDS`]), each round at most the file's size in work.

use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ErrorKind, Location};
use crate::raw::RawConfig;

/// Errors reported for one file at most (then the rest is left for the
/// next run).
const MAX_ROUNDS: usize = 50;

/// What parsing found.
pub(crate) struct Parsed {
    /// The file, with every key that had an error taken out; `None` when the
    /// file could not be read into settings even so.
    pub raw: Option<RawConfig>,
    /// Every error, in the order found.
    pub errors: Vec<ConfigError>,
    /// Key paths taken out (`tls.cipher_suites`, `listener[0].adress`).
    pub removed: Vec<String>,
}

/// Parses `src`. A TOML syntax error is returned at once (nothing after it
/// can be trusted); every other error is collected in [`Parsed::errors`].
pub(crate) fn parse(src: &str, origin: &str) -> Result<Parsed, ConfigError> {
    let mut doc = DeTable::parse(src).map_err(|e| {
        ConfigError::new(
            ErrorKind::Syntax,
            origin,
            e.span().map(|s| Location::of(src, s)),
            "",
            format!("TOML syntax error: {}", e.message().trim_end()),
        )
    })?;
    let mut errors = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let de = toml::de::Deserializer::from(doc.clone());
        let e = match serde_path_to_error::deserialize::<_, RawConfig>(de) {
            Ok(raw) => {
                return Ok(Parsed {
                    raw: Some(raw),
                    errors,
                    removed,
                });
            }
            Err(e) => e,
        };
        let path = crate::clean_path(&e.path().to_string());
        let inner = e.into_inner();
        let (key, message) = crate::error::rewrite_serde_message(&path, inner.message());
        let caused_by_us = removed.contains(&key);
        if !caused_by_us {
            errors.push(ConfigError::new(
                ErrorKind::Invalid,
                origin,
                inner.span().map(|s| Location::of(src, s)),
                key,
                message,
            ));
        }
        // A missing key cannot be put back: take out the table that lacks
        // it (the whole array for an entry of one, so later entries keep
        // their numbers), unless that is the whole file.
        match take_out(doc.get_mut(), &path) {
            Some(taken) => removed.push(taken),
            None => break,
        }
    }
    Ok(Parsed {
        raw: None,
        errors,
        removed,
    })
}

/// Takes the table key that `path` names (or that holds the array element
/// it names: `tls.cipher_suites[2]` takes out `cipher_suites`) out of `doc`.
/// Returns the key path taken out, or `None` when the path leads nowhere.
fn take_out(doc: &mut DeTable<'_>, path: &str) -> Option<String> {
    let segments = split(path)?;
    let (last, parents) = segments.split_last()?;
    let mut table = doc;
    let mut taken = String::new();
    for (name, indexes) in parents {
        let mut value = table.get_mut(name.as_str())?.get_mut();
        push(&mut taken, name, indexes);
        for i in indexes {
            value = match value {
                DeValue::Array(a) => a.get_mut(*i)?.get_mut(),
                _ => return None,
            };
        }
        table = match value {
            DeValue::Table(t) => t,
            _ => return None,
        };
    }
    let (name, _) = last;
    table.remove(name.as_str())?;
    push(&mut taken, name, &[]);
    Some(taken)
}

fn push(path: &mut String, name: &str, indexes: &[usize]) {
    use std::fmt::Write as _;
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    for i in indexes {
        let _ = write!(path, "[{i}]");
    }
}

/// `listener[0].limits.max_errors` → `[("listener", [0]), ("limits", []),
/// ("max_errors", [])]`.
fn split(path: &str) -> Option<Vec<(String, Vec<usize>)>> {
    if path.is_empty() {
        return None;
    }
    path.split('.')
        .map(|seg| {
            let (name, rest) = seg.split_once('[').map_or((seg, ""), |(n, r)| (n, r));
            let indexes = rest
                .split('[')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches(']').parse().ok())
                .collect::<Option<Vec<usize>>>()?;
            Some((name.to_owned(), indexes))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            split("listener[0].limits.max_errors").unwrap(),
            [
                ("listener".to_owned(), vec![0]),
                ("limits".to_owned(), vec![]),
                ("max_errors".to_owned(), vec![]),
            ]
        );
        assert_eq!(
            split("tls.cipher_suites[2]").unwrap()[1],
            ("cipher_suites".to_owned(), vec![2])
        );
        assert!(split("").is_none());
        assert!(split("a[x]").is_none());
    }

    #[test]
    fn every_key_error_in_one_run() {
        let src = "data_dir = \"/d\"\nhostnme = \"x\"\n[tls]\nmin_version = \"1.0\"\nbla = 1\n\
                   [[listener]]\nname = \"s\"\naddress = \"127.0.0.1:25\"\nkind = \"smtpp\"\n";
        let p = parse(src, "f").unwrap();
        let keys: Vec<&str> = p.errors.iter().map(ConfigError::key).collect();
        assert_eq!(p.errors.len(), 4, "{keys:?}");
        for k in ["hostnme", "tls.min_version", "tls.bla", "listener[0].kind"] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        assert_eq!(
            p.removed,
            [
                "hostnme",
                "listener[0].kind",
                "listener",
                "tls.bla",
                "tls.min_version"
            ]
        );
    }

    #[test]
    fn a_missing_key_at_the_top_stops_the_search() {
        let p = parse("hostname = 5\n", "f").unwrap();
        let keys: Vec<&str> = p.errors.iter().map(ConfigError::key).collect();
        assert_eq!(keys, ["hostname", "data_dir"]);
        assert!(p.raw.is_none());
    }

    #[test]
    fn a_table_missing_a_key_is_taken_out_whole() {
        let p = parse(
            "data_dir = \"/d\"\n[[route]]\nsmarthost = \"x:25\"\n[[route]]\ndomains = 5\n",
            "f",
        )
        .unwrap();
        let keys: Vec<&str> = p.errors.iter().map(ConfigError::key).collect();
        assert_eq!(keys, ["route[0].domains"]);
        assert_eq!(p.removed, ["route"]);
        assert!(p.raw.is_some());
    }
}

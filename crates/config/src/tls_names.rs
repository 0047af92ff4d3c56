//! `[tls] cipher_suites` and `groups`: names to IANA ids, through the suite and
//! group catalogues of `postern-tls` (which know what rustls implements and
//! why it refuses the rest).
//!
//! # Security
//! Refuses any suite or group rustls cannot negotiate, so the configuration
//! never claims more than the server offers, and refuses lists that leave an
//! enabled protocol version without a suite or a usable group (every handshake
//! at that version would fail).

use std::collections::HashMap;

use toml::Spanned;

use postern_tls::TlsVersion;
use postern_tls::{groups, suites};

use crate::build::{Ctx, version_name};
use crate::error::ConfigError;
use crate::raw::NameOrId;

type List = Spanned<Vec<Spanned<NameOrId>>>;

/// TLS versions from `min` to `max`.
fn enabled(range: (TlsVersion, TlsVersion)) -> Vec<TlsVersion> {
    [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .filter(|v| (range.0..=range.1).contains(v))
        .collect()
}

/// Resolves `<table>.cipher_suites` (`tls`, `delivery.outbound_tls`) in order. Empty or absent: the built-in order
/// (an empty vector).
pub(crate) fn cipher_suites(
    raw: Option<&List>,
    range: (TlsVersion, TlsVersion),
    table: &str,
    cx: &mut Ctx<'_>,
) -> Result<Vec<u16>, ConfigError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    if list.get_ref().is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = list
        .get_ref()
        .iter()
        .map(|n| n.get_ref().0.as_str())
        .collect();
    let explained = suites::explain_list(&names, range.1 == TlsVersion::Tls13);
    let bad: Vec<usize> = (0..explained.entries.len())
        .filter(|&i| explained.entries.get(i).is_some_and(|e| !e.is_usable()))
        .collect();
    if let Some((first, entry)) = bad
        .first()
        .and_then(|&i| explained.entries.get(i).map(|e| (i, e)))
    {
        let span = list.get_ref().get(first).map_or(list.span(), Spanned::span);
        let paste = if explained.replacement.is_empty() {
            "leave cipher_suites out for the built-in order".to_owned()
        } else {
            format!("write instead: {}", explained.paste_line())
        };
        return Err(if bad.len() == 1 && entry.mailsite_id.is_none() {
            // One bad entry: its own message, then the list to paste.
            let name = names.get(first).copied().unwrap_or_default();
            let why = suites::usable(name).map_or_else(|e| e.to_string(), ToString::to_string);
            cx.error(
                span,
                format!("{table}.cipher_suites[{first}]"),
                format!("{why}\n  {paste}"),
            )
        } else {
            cx.error(
                span,
                format!("{table}.cipher_suites"),
                format!(
                    "{} of {} suites cannot be used as written:\n{}",
                    bad.len(),
                    explained.entries.len(),
                    explained.render("  ")
                ),
            )
        });
    }
    let mut ids = Vec::new();
    let mut seen: HashMap<u16, usize> = HashMap::new();
    let mut infos = Vec::new();
    for (i, name) in list.get_ref().iter().enumerate() {
        let key = format!("{table}.cipher_suites[{i}]");
        let info = suites::usable(&name.get_ref().0)
            .map_err(|e| cx.error(name.span(), &key, e.to_string()))?;
        if let Some(first) = seen.insert(info.id, i) {
            return Err(cx.error(
                name.span(),
                &key,
                format!("{info} is listed twice (also {table}.cipher_suites[{first}])"),
            ));
        }
        ids.push(info.id);
        infos.push((info, name.span(), key));
    }

    let versions = enabled(range);
    for v in &versions {
        let tls13 = *v == TlsVersion::Tls13;
        if !infos.iter().any(|(s, _, _)| s.tls13 == tls13) {
            let candidates = suites::default_order()
                .into_iter()
                .filter_map(suites::by_id)
                .filter(|s| s.tls13 == tls13)
                .map(|s| s.iana)
                .collect::<Vec<_>>()
                .join(", ");
            let other = if tls13 {
                "or set max_version = \"1.2\""
            } else {
                "or set min_version = \"1.3\""
            };
            return Err(cx.error(
                list.span(),
                format!("{table}.cipher_suites"),
                format!(
                    "no TLS {} suite is listed, but TLS {} is enabled, so every TLS {} handshake \
                     would fail; add one of {candidates}, {other}",
                    version_name(*v),
                    version_name(*v),
                    version_name(*v)
                ),
            ));
        }
    }
    for (info, span, key) in infos {
        let v = if info.tls13 {
            TlsVersion::Tls13
        } else {
            TlsVersion::Tls12
        };
        if !versions.contains(&v) {
            cx.warn(
                Some(span),
                key,
                format!(
                    "{info} is a TLS {} suite and is never used: TLS {} is not enabled \
                     (min_version \"{}\", max_version \"{}\")",
                    version_name(v),
                    version_name(v),
                    version_name(range.0),
                    version_name(range.1)
                ),
            );
        }
    }
    Ok(ids)
}

/// Resolves `<table>.groups` in order. Empty or absent: the built-in order.
pub(crate) fn groups(
    raw: Option<&List>,
    range: (TlsVersion, TlsVersion),
    table: &str,
    cx: &mut Ctx<'_>,
) -> Result<Vec<u16>, ConfigError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    let mut seen: HashMap<u16, usize> = HashMap::new();
    let mut classic = false;
    for (i, name) in list.get_ref().iter().enumerate() {
        let key = format!("{table}.groups[{i}]");
        let info = groups::lookup(&name.get_ref().0)
            .map_err(|e| cx.error(name.span(), &key, e.to_string()))?;
        if let Some(first) = seen.insert(info.id, i) {
            return Err(cx.error(
                name.span(),
                &key,
                format!(
                    "{} is listed twice (also {table}.groups[{first}])",
                    info.name
                ),
            ));
        }
        classic |= !info.post_quantum;
        ids.push(info.id);
    }
    // ML-KEM groups (pure and hybrid) exist only in TLS 1.3: TLS 1.2 ECDHE
    // needs a classic elliptic curve.
    if !ids.is_empty() && !classic && range.0 == TlsVersion::Tls12 {
        return Err(cx.error(
            list.span(),
            format!("{table}.groups"),
            "only post-quantum groups are listed, and they exist only in TLS 1.3, so every \
             TLS 1.2 handshake would fail; add x25519 or secp256r1, or set min_version = \"1.3\"",
        ));
    }
    Ok(ids)
}

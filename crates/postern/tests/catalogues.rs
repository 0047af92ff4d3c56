//! The cause catalogues agree with each other and with the documentation.
//!
//! `postern tls verify` (crate `diag`) may not depend on `delivery` (ADR
//! 0001), so it spells the `dns.*`, `conn.*` and `smtp.*` ids itself; this
//! test, in the one crate that sees both, makes sure a problem has the same
//! name in the delivery log and in `tls verify`, and that every id delivery
//! can log is documented in docs/delivery.md §6.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

fn well_formed(id: &str) -> bool {
    let mut parts = id.split('.');
    let (Some(family), Some(name)) = (parts.next(), parts.next()) else {
        return false;
    };
    [family, name].iter().all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) && parts.next().is_none_or(|p| !p.is_empty())
}

#[test]
fn ids_are_unique_and_well_formed_in_every_catalogue() {
    let catalogues: [(&str, &[&str]); 5] = [
        ("tls", postern_tls::cause::ALL),
        ("tls outbound", postern_tls::client::OUTBOUND_IDS),
        ("tlspolicy", postern_tlspolicy::cause::ALL),
        ("delivery", postern_delivery::cause::ALL),
        ("diag verify", postern_diag::verify::causes::ALL),
    ];
    for (name, ids) in catalogues {
        let mut seen = HashSet::new();
        for id in ids {
            assert!(well_formed(id), "{name}: malformed id {id:?}");
            assert!(seen.insert(id), "{name}: {id} listed twice");
        }
    }
}

#[test]
fn tls_verify_names_problems_as_delivery_does() {
    let delivery: HashSet<&str> = postern_delivery::cause::ALL.iter().copied().collect();
    for id in postern_diag::verify::causes::ALL {
        assert!(
            delivery.contains(id),
            "`tls verify` uses {id}, which delivery's catalogue does not have: rename one of them"
        );
    }
}

#[test]
fn every_delivery_cause_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/delivery.md"
    ))
    .unwrap();
    let mut missing = Vec::new();
    for id in postern_delivery::cause::ALL
        .iter()
        .chain(postern_tlspolicy::cause::ALL)
        .chain(postern_tls::client::OUTBOUND_IDS)
    {
        if !doc.contains(&format!("`{id}`")) && !doc.contains(&format!("{id}`")) {
            missing.push(*id);
        }
    }
    assert!(missing.is_empty(), "not in docs/delivery.md: {missing:?}");
}

//! Every `dkim.*` cause id is documented in docs/authentication.md's table (ADR 0007:
//! ids are API; an undocumented one is a bug).

#[test]
fn every_cause_is_in_docs_authentication_md() {
    let path = format!(
        "{}/../../docs/authentication.md",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let missing: Vec<&str> = postern_auth::cause::ALL
        .iter()
        .copied()
        .filter(|id| !doc.contains(&format!("| `{id}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/authentication.md: {missing:?}"
    );
}

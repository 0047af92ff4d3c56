//! `[[recipients]]`: table, call-ahead and Maildir entries load; mistakes
//! are reported with file:line:column, the key and what is allowed; `config
//! check` warns about missing or empty tables and sources without a route.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use postern_config::load_str;
use postern_smtpd::{CallAheadTls, OnError, RecipientSource};

const BASE: &str = r#"data_dir = "/var/lib/postern"
hostname = "mx.example.com"

[[listener]]
name = "smtp"
address = "127.0.0.1:25"
kind = "smtp"

[relay]
accepted_domains = ["example.com", ".example.com", "corp.example", "local.example"]

[[route]]
domains = ["corp.example"]
smarthost = "10.0.0.5:2525"

[[route]]
domains = ["local.example"]
maildir = "/var/vmail/{domain}/{user}"
"#;

fn load_in(dir: &Path, extra: &str) -> Result<postern_config::Loaded, postern_config::ConfigError> {
    load_str(&format!("{BASE}{extra}"), "postern.toml", dir)
}

fn warnings(dir: &Path, extra: &str) -> Vec<String> {
    load_in(dir, extra)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn error(dir: &Path, extra: &str) -> String {
    match load_in(dir, extra) {
        Ok(_) => panic!("expected an error for {extra}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_three_sources_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("recipients.txt"), "alice@example.com\n").unwrap();
    let l = load_in(
        dir.path(),
        r#"
[[recipients]]
domains = ["example.com", ".example.com"]
table = "recipients.txt"

[[recipients]]
domains = ["corp.example"]
call_ahead = "route"
cache_ttl = "2h"
negative_ttl = "5m"
timeout = "3s"
on_error = "accept"

[[recipients]]
domains = ["local.example"]
maildir = true
"#,
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let r = &l.config.server.recipients;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].domains, ["example.com", ".example.com"]);
    assert_eq!(
        r[0].source,
        RecipientSource::Table(dir.path().join("recipients.txt"))
    );
    let RecipientSource::CallAhead(c) = &r[1].source else {
        panic!("{:?}", r[1].source)
    };
    assert_eq!((c.host.as_str(), c.port), ("10.0.0.5", 2525));
    assert_eq!(c.cache_ttl.as_secs(), 7200);
    assert_eq!(c.negative_ttl.as_secs(), 300);
    assert_eq!(c.timeout.as_secs(), 3);
    assert_eq!(c.on_error, OnError::Accept);
    // The route's level is the default, opportunistic: STARTTLS when offered.
    assert_eq!(c.tls, CallAheadTls::Opportunistic);
    assert_eq!(c.helo_name, "mx.example.com");
    assert!(matches!(r[2].source, RecipientSource::Maildir(_)));
    assert_eq!(r[2].origin, "recipients[2]");
}

#[test]
fn explicit_call_ahead_host_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let l = load_in(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ncall_ahead = \"exchange.corp.example\"\n",
    )
    .unwrap();
    let RecipientSource::CallAhead(c) = &l.config.server.recipients[0].source else {
        panic!()
    };
    assert_eq!((c.host.as_str(), c.port), ("exchange.corp.example", 25));
    assert_eq!(c.on_error, OnError::TempFail);
    assert_eq!(c.cache_ttl.as_secs(), 3600);
    assert_eq!(c.negative_ttl.as_secs(), 600);
}

#[test]
fn mistakes_point_at_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let e = error(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ntable = \"t.txt\"\nmaildir = true\n",
    );
    assert!(e.contains("postern.toml:19:1"), "{e}");
    assert!(e.contains("recipients[0]"), "{e}");
    assert!(e.contains("set exactly one of table"), "{e}");

    let e = error(
        dir.path(),
        "[[recipients]]\ndomains = [\"corp.example\"]\ncall_ahead = \"route\"\non_error = \"bounce\"\n",
    );
    assert!(e.contains("postern.toml:22:12"), "{e}");
    assert!(e.contains("recipients[0].on_error"), "{e}");
    assert!(e.contains("\"tempfail\""), "{e}");

    let e = error(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ntable = \"t.txt\"\ntimeout = \"5s\"\n",
    );
    assert!(e.contains("recipients[0].timeout"), "{e}");
    assert!(e.contains("applies only to a call-ahead entry"), "{e}");

    let e = error(
        dir.path(),
        "[[recipients]]\ndomains = [\"bad domain\"]\ntable = \"t.txt\"\n",
    );
    assert!(e.contains("recipients[0].domains[0]"), "{e}");

    let e = error(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ncall_ahead = \"host:notaport\"\n",
    );
    assert!(e.contains("recipients[0].call_ahead"), "{e}");
}

#[test]
fn check_warns_about_tables_and_missing_routes() {
    let dir = tempfile::tempdir().unwrap();
    let w = warnings(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ntable = \"absent.txt\"\n",
    );
    assert!(
        w.iter()
            .any(|w| w.contains("recipients[0].table") && w.contains("cannot read")),
        "{w:?}"
    );

    std::fs::write(
        dir.path().join("empty.txt"),
        "# nobody yet\nbad line here\n",
    )
    .unwrap();
    let w = warnings(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ntable = \"empty.txt\"\n",
    );
    assert!(w.iter().any(|w| w.contains("lists no recipient")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("empty.txt:2:")), "{w:?}");

    // example.com is delivered by MX: nothing to call ahead.
    let l = load_in(
        dir.path(),
        "[[recipients]]\ndomains = [\"example.com\"]\ncall_ahead = \"route\"\n",
    )
    .unwrap();
    assert!(l.config.server.recipients.is_empty(), "entry left out");
    assert!(
        l.warnings.iter().any(|w| w
            .to_string()
            .contains("no [[route]] sends example.com to a smart host")),
        "{:?}",
        l.warnings
    );

    // corp.example goes to a smart host, not Maildir.
    let w = warnings(
        dir.path(),
        "[[recipients]]\ndomains = [\"corp.example\"]\nmaildir = true\n",
    );
    assert!(
        w.iter().any(|w| w.contains("not delivered into Maildir")),
        "{w:?}"
    );

    // Not an accepted domain: never asked.
    std::fs::write(dir.path().join("t.txt"), "alice\n").unwrap();
    let w = warnings(
        dir.path(),
        "[[recipients]]\ndomains = [\"other.example\"]\ntable = \"t.txt\"\n",
    );
    assert!(
        w.iter()
            .any(|w| w.contains("not in [relay] accepted_domains")),
        "{w:?}"
    );
}

/// The commented `[[recipients]]` example in examples/postern.toml loads once
/// uncommented (with the routes it refers to), without warnings.
#[test]
fn the_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/postern.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("# [[recipients]]").unwrap();
    let end = start + text[start..].find("\n# ----").unwrap();
    let block: String = text[start..end]
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .unwrap_or(l.strip_prefix('#').unwrap_or(l))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("recipients.txt"), "alice@example.com\n").unwrap();
    let l = load_in(dir.path(), &format!("\n{block}\n")).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let r = &l.config.server.recipients;
    assert_eq!(r.len(), 3);
    assert!(matches!(r[0].source, RecipientSource::Table(_)));
    assert!(matches!(r[1].source, RecipientSource::CallAhead(_)));
    assert!(matches!(r[2].source, RecipientSource::Maildir(_)));
}

#[test]
fn call_ahead_tls_follows_the_route_level() {
    let dir = tempfile::tempdir().unwrap();
    for (level, want) in [
        ("none", CallAheadTls::Off),
        ("opportunistic-strict", CallAheadTls::Opportunistic),
        ("verify", CallAheadTls::Required),
    ] {
        let src = format!(
            "{}[[recipients]]\ndomains = [\"corp.example\"]\ncall_ahead = \"route\"\n",
            BASE.replace(
                "smarthost = \"10.0.0.5:2525\"\n",
                &format!("smarthost = \"10.0.0.5:2525\"\ntls = \"{level}\"\n")
            )
        );
        let l = load_str(&src, "postern.toml", dir.path()).unwrap();
        let RecipientSource::CallAhead(c) = &l.config.server.recipients[0].source else {
            panic!()
        };
        assert_eq!(c.tls, want, "{level}");
    }
}

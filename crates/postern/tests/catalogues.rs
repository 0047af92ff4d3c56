//! The cause catalogues agree with each other, with the documentation, with
//! the configuration schema and with the CLI.
//!
//! Each failure is classified once, beside its error type: TLS handshakes in
//! `postern_tls::cause` (inbound and outbound), TLS policy in
//! `postern_tlspolicy::cause`, SMTP sessions in `postern_smtpc::cause`, DNS
//! in `postern_dns::cause`, the queue, spool and local delivery in
//! `postern_delivery::cause`, and PROXY protocol headers in
//! `postern_proto::proxy::cause`. This test, in the one crate that sees all of
//! them, checks that:
//! - ids are well formed, unique, and never a retired one;
//! - the counter store's causes (`postern_counters::cause`, ADR 0009) are
//!   documented in docs/counters.md §5 and their fixes are true too;
//! - every id delivery can log is documented in docs/delivery.md §6;
//! - every fix text is true (issue 8 §3): each configuration key it names
//!   (written `` `[table] key` `` or `` `[table] key = value, key = value` ``)
//!   is accepted by `postern_config` (the schema denies unknown keys), each
//!   `postern …` command and flag it names exists in the CLI (`--help` of
//!   the built binary), and no key is spelled outside that notation (the
//!   old `tls.kx_groups` fails here).
//!
//! `PRINT_FIXES=1 cargo test -p postern --test catalogues every_fix -- --nocapture`
//! prints every rendered fix for review.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::{HashMap, HashSet};
use std::io;
use std::process::Command;

use postern_smtpc::{ClientError, Reply, Stage};
use postern_tls::cause::{Advice, Cause, Peer, classify_inbound, classify_outbound};
use postern_tls::client::{PeerVerdict, PkixProblem};
use postern_tls::{ClientHelloSummary, TlsSettings, TlsVersion};
use postern_tlspolicy::Level;
use rustls::{AlertDescription as A, CertificateError as C, Error as E, PeerIncompatible as P};

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

const CATALOGUES: [(&str, &[&str]); 7] = [
    ("tls", postern_tls::cause::ALL),
    ("tls outbound", postern_tls::cause::outbound::OUTBOUND_IDS),
    ("tlspolicy", postern_tlspolicy::cause::ALL),
    ("smtpc", postern_smtpc::cause::ALL),
    ("dns", postern_dns::cause::ALL),
    ("delivery", postern_delivery::cause::ALL),
    ("proxy", postern_proto::proxy::cause::ALL),
];

#[test]
fn ids_are_unique_well_formed_and_never_retired() {
    for (name, ids) in CATALOGUES {
        let mut seen = HashSet::new();
        for id in ids {
            assert!(well_formed(id), "{name}: malformed id {id:?}");
            assert!(seen.insert(id), "{name}: {id} listed twice");
            assert!(
                !postern_tls::cause::RETIRED.contains(id),
                "{name}: {id} is retired and must not be reused"
            );
        }
    }
}

/// Delivery logs the session and DNS causes under the ids their crates
/// give them (and `tls verify` prints the same ones).
#[test]
fn delivery_lists_the_session_and_dns_ids() {
    let delivery: HashSet<&str> = postern_delivery::cause::ALL.iter().copied().collect();
    // The body and the envelope come from delivery's own spool: it logs
    // those two as `delivery.spool_read` / `delivery.internal`.
    let own = [
        postern_smtpc::cause::BODY_READ,
        postern_smtpc::cause::INVALID_INPUT,
    ];
    for id in postern_smtpc::cause::ALL
        .iter()
        .chain(postern_dns::cause::ALL)
        .filter(|id| !own.contains(id))
    {
        assert!(delivery.contains(id), "{id} is not in delivery's catalogue");
    }
}

fn read_doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_cause_is_documented() {
    let doc = read_doc("delivery.md");
    let mut missing = Vec::new();
    for (_, ids) in CATALOGUES {
        for id in ids {
            if !doc.contains(&format!("`{id}`")) {
                missing.push(*id);
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/delivery.md: {missing:?}");
}

// ---------------------------------------------------------------------------
// Every cause, rendered.

/// One rendered cause: where it came from, its id and its fix.
struct Rendered {
    from: String,
    id: String,
    fix: String,
}

fn push(out: &mut Vec<Rendered>, from: &str, c: &Cause) {
    out.push(Rendered {
        from: format!("{from}: {}", c.summary),
        id: c.id.to_owned(),
        fix: c.fix.clone(),
    });
}

fn inbound(out: &mut Vec<Rendered>) {
    let default = TlsSettings::default();
    let tls13 = TlsSettings {
        min_version: TlsVersion::Tls13,
        ..TlsSettings::default()
    };
    let tls12 = TlsSettings {
        max_version: TlsVersion::Tls12,
        ..TlsSettings::default()
    };
    let aes256_only = TlsSettings {
        cipher_suites: vec![0x1302],
        ..TlsSettings::default()
    };
    let offered = |suites: Vec<u16>| ClientHelloSummary {
        cipher_suites: suites,
        suite_versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
        ..ClientHelloSummary::default()
    };
    let legacy = offered(vec![0x002f, 0x000a]);
    let aes128 = offered(vec![0x1301]);
    let ours = offered(vec![0x1302]);
    let cases: Vec<(E, Option<&ClientHelloSummary>, &TlsSettings)> = vec![
        (
            E::PeerIncompatible(P::SupportedVersionsExtensionRequired),
            None,
            &tls13,
        ),
        (
            E::PeerIncompatible(P::Tls12NotOfferedOrEnabled),
            None,
            &tls12,
        ),
        (E::PeerIncompatible(P::Tls12NotOffered), None, &default),
        (
            E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13),
            None,
            &default,
        ),
        (
            E::PeerIncompatible(P::NoCipherSuitesInCommon),
            None,
            &default,
        ),
        (
            E::PeerIncompatible(P::NoCipherSuitesInCommon),
            Some(&legacy),
            &default,
        ),
        (
            E::PeerIncompatible(P::NoCipherSuitesInCommon),
            Some(&aes128),
            &aes256_only,
        ),
        (
            E::PeerIncompatible(P::NoCipherSuitesInCommon),
            Some(&ours),
            &default,
        ),
        (E::PeerIncompatible(P::NoKxGroupsInCommon), None, &default),
        (
            E::PeerIncompatible(P::NoSignatureSchemesInCommon),
            None,
            &default,
        ),
        (
            E::PeerIncompatible(P::EcPointsExtensionRequired),
            None,
            &default,
        ),
        (E::AlertReceived(A::UnknownCA), None, &default),
        (E::AlertReceived(A::ProtocolVersion), None, &default),
        (E::AlertReceived(A::CloseNotify), None, &default),
        (E::AlertReceived(A::HandshakeFailure), None, &default),
        (E::AlertReceived(A::DecodeError), None, &default),
        (
            E::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            None,
            &default,
        ),
        (E::General("no server certificate".into()), None, &default),
        (E::DecryptError, None, &default),
        (E::General("something else".into()), None, &default),
    ];
    for (err, offered, settings) in cases {
        push(out, "inbound", &classify_inbound(&err, offered, settings));
    }
    for kind in [
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::TimedOut,
        io::ErrorKind::PermissionDenied,
    ] {
        push(
            out,
            "inbound io",
            &classify_inbound(&io::Error::from(kind), None, &default),
        );
    }
    let not_io = std::fmt::Error;
    push(
        out,
        "inbound other",
        &classify_inbound(&not_io, None, &default),
    );
}

fn outbound(out: &mut Vec<Rendered>) {
    let all = TlsVersion::ALL;
    let only13 = [TlsVersion::Tls13];
    let advices = [
        Advice::default(),
        Advice::for_domain("fabrikam.example", false),
        Advice::for_domain("fabrikam.example", true),
    ];
    let name_mismatch = C::NotValidForNameContext {
        expected: rustls::pki_types::ServerName::try_from("mx.partner.example").unwrap(),
        presented: vec!["other.example".into()],
    };
    let errors: Vec<Box<dyn std::error::Error + 'static>> = vec![
        Box::new(io::Error::from(io::ErrorKind::UnexpectedEof)),
        Box::new(io::Error::from(io::ErrorKind::TimedOut)),
        Box::new(io::Error::from(io::ErrorKind::PermissionDenied)),
        Box::new(std::fmt::Error),
        Box::new(E::AlertReceived(A::ProtocolVersion)),
        Box::new(E::AlertReceived(A::HandshakeFailure)),
        Box::new(E::AlertReceived(A::BadCertificate)),
        Box::new(E::AlertReceived(A::InternalError)),
        Box::new(E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13)),
        Box::new(E::PeerIncompatible(P::NoKxGroupsInCommon)),
        Box::new(E::PeerIncompatible(P::NoCipherSuitesInCommon)),
        Box::new(E::PeerIncompatible(P::EcPointsExtensionRequired)),
        Box::new(E::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )),
        Box::new(E::InvalidCertificate(name_mismatch)),
        Box::new(E::InvalidCertificate(C::UnknownIssuer)),
        Box::new(E::InvalidCertificate(C::Expired)),
        Box::new(E::InvalidCertificate(C::NotValidYet)),
        Box::new(E::InvalidCertificate(C::BadSignature)),
        Box::new(E::DecryptError),
        Box::new(E::General("x".into())),
    ];
    for offered in [&all[..], &only13[..]] {
        let peer = Peer {
            host: "mx.partner.example",
            port: 587,
            offered,
        };
        for advice in &advices {
            for err in &errors {
                push(
                    out,
                    "outbound",
                    &classify_outbound(err.as_ref(), &peer, advice),
                );
            }
        }
    }
    let verdict = |problem: Option<PkixProblem>| PeerVerdict {
        chain: Vec::new(),
        pkix: problem.map_or(Ok(()), |_| Err("x".to_owned())),
        pkix_problem: problem,
        name_matches: false,
        hostname: "mx.partner.example".to_owned(),
        port: Some(587),
    };
    for p in [
        None,
        Some(PkixProblem::NoCertificate),
        Some(PkixProblem::SelfSigned),
        Some(PkixProblem::UntrustedRoot),
        Some(PkixProblem::Incomplete),
        Some(PkixProblem::Expired),
        Some(PkixProblem::NotYetValid),
        Some(PkixProblem::Other),
    ] {
        push(out, "verdict", &verdict(p).cause().unwrap());
    }
}

fn policy(out: &mut Vec<Rendered>) {
    use postern_tlspolicy::cause as pc;
    for domains in [vec![], vec!["fabrikam.example".to_owned()]] {
        for level in [Level::Verify, Level::Opportunistic] {
            push(
                out,
                "policy",
                &pc::starttls_not_offered("192.0.2.10", &domains, level),
            );
        }
    }
    let cs = [
        pc::no_certificate("mx.partner.example"),
        pc::dane_no_match("mx", "_25._tcp.mx", "no match", Some("3 1 1 ab")),
        pc::dane_no_match("mx", "_25._tcp.mx", "no match", None),
        pc::dane_unusable("mx", "_25._tcp.mx", "why"),
        pc::dane_unavailable("mx", "why"),
        pc::mta_sts_mx_mismatch("fabrikam.example", "mx9.other.example", &[]),
        pc::mta_sts_not_published("fabrikam.example", "no policy"),
        pc::mta_sts_fetch_failed("fabrikam.example", "https://x/", "404"),
    ];
    for c in &cs {
        push(out, "policy", c);
    }
}

fn session(out: &mut Vec<Rendered>) {
    let reply = |code| Reply::new(code, None, "text");
    let io_err = |kind| ClientError::Io {
        stage: Stage::Banner,
        source: io::Error::from(kind),
    };
    let errors = vec![
        ClientError::Connect {
            addr: "192.0.2.1:25".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        },
        io_err(io::ErrorKind::TimedOut),
        io_err(io::ErrorKind::ConnectionReset),
        io_err(io::ErrorKind::HostUnreachable),
        io_err(io::ErrorKind::Other),
        ClientError::Timeout {
            stage: Stage::Banner,
        },
        ClientError::UnexpectedReply {
            stage: Stage::Auth,
            reply: reply(535),
        },
        ClientError::UnexpectedReply {
            stage: Stage::Banner,
            reply: reply(554),
        },
        ClientError::UnexpectedReply {
            stage: Stage::Ehlo,
            reply: reply(421),
        },
        ClientError::Protocol {
            stage: Stage::Ehlo,
            detail: "x".into(),
        },
        ClientError::NotOffered {
            stage: Stage::StartTls,
            extension: "STARTTLS".into(),
        },
        ClientError::AuthNotOffered {
            mechanism: "LOGIN".into(),
            offered: Vec::new(),
            tls: false,
        },
        ClientError::AuthNotOffered {
            mechanism: "LOGIN".into(),
            offered: Vec::new(),
            tls: true,
        },
        ClientError::AuthNotOffered {
            mechanism: "LOGIN".into(),
            offered: vec!["CRAM-MD5".into()],
            tls: true,
        },
        ClientError::Insecure {
            stage: Stage::Auth,
            detail: "x".into(),
        },
        ClientError::Invalid {
            stage: Stage::Mail,
            detail: "x".into(),
        },
        ClientError::Body {
            source: io::Error::from(io::ErrorKind::Other),
        },
    ];
    for e in &errors {
        push(
            out,
            "session",
            &e.cause("relay.partner.example (192.0.2.1:587)"),
        );
    }
    push(
        out,
        "rcpt",
        &postern_smtpc::cause::reply_transient("mx", &reply(451)),
    );
    push(
        out,
        "rcpt",
        &postern_smtpc::cause::reply_permanent("mx", &reply(550)),
    );
}

fn dns(out: &mut Vec<Rendered>) {
    use postern_dns::DnsError;
    use postern_dns::cause::{Lookup, null_mx};
    let name = || "fabrikam.example".to_owned();
    let errors = [
        DnsError::NxDomain { name: name() },
        DnsError::NoRecords {
            name: name(),
            rtype: "A",
        },
        DnsError::ServFail { name: name() },
        DnsError::Bogus { name: name() },
    ];
    let mut cs = vec![null_mx("fabrikam.example")];
    for e in &errors {
        for lookup in [Lookup::Mx, Lookup::Address] {
            cs.push(e.cause("fabrikam.example", lookup));
        }
    }
    for c in cs {
        out.push(Rendered {
            from: format!("dns: {}", c.summary),
            id: c.id.to_owned(),
            fix: c.fix.to_owned(),
        });
    }
}

fn delivery(out: &mut Vec<Rendered>) {
    use postern_delivery::cause as dc;
    let cs = [
        dc::no_host("fabrikam.example"),
        dc::expired("5d", Some("x")),
        dc::spool_read("x"),
        dc::local_mailbox_unknown("a@b", "/x"),
        dc::content_bounce("550 5.7.1 no"),
        dc::local_unsafe_address("a@b", "x"),
        dc::local_mailbox_full("/x", "x"),
        dc::local_io_error("/x", true, "x"),
        dc::local_io_error("/x", false, "x"),
        dc::internal("x"),
    ];
    for c in cs {
        out.push(Rendered {
            from: format!("delivery: {}", c.summary),
            id: c.id,
            fix: c.fix,
        });
    }
}

fn proxy(out: &mut Vec<Rendered>) {
    use postern_proto::proxy::{ProxyError, cause};
    let peer: std::net::SocketAddr = "10.0.0.5:40000".parse().unwrap();
    let mut cs = vec![
        cause::untrusted(peer),
        cause::timeout(peer, std::time::Duration::from_secs(5)),
        cause::closed(peer),
    ];
    for e in [
        ProxyError::NotProxy,
        ProxyError::TooLong { limit: 107 },
        ProxyError::Malformed("x"),
        ProxyError::Version(1),
        ProxyError::Command(2),
        ProxyError::Unsupported("AF_UNIX"),
    ] {
        cs.push(e.cause(peer));
    }
    for c in cs {
        out.push(Rendered {
            from: format!("proxy: {}", c.summary),
            id: c.id.to_owned(),
            fix: c.fix.to_owned(),
        });
    }
}

fn render_all() -> Vec<Rendered> {
    let mut out = Vec::new();
    inbound(&mut out);
    outbound(&mut out);
    policy(&mut out);
    session(&mut out);
    dns(&mut out);
    delivery(&mut out);
    proxy(&mut out);
    out
}

/// Ids with no fix text of their own: reserved in delivery's catalogue
/// (documented) but not produced by any code path today.
const NOT_PRODUCED: &[&str] = &["smtp.smtputf8_unsupported", "smtp.message_too_big"];

#[test]
fn every_id_is_rendered() {
    let rendered: HashSet<String> = render_all().into_iter().map(|r| r.id).collect();
    for (name, ids) in CATALOGUES {
        for id in ids {
            assert!(
                rendered.contains(*id) || NOT_PRODUCED.contains(id),
                "{name}: {id} is never rendered by this test: add a case"
            );
        }
    }
}

/// The counter store's catalogue stands apart (delivery never logs it):
/// documented in docs/counters.md, every variant rendered, fixes checked
/// like the others.
#[test]
fn counter_causes_are_documented_and_true() {
    use postern_counters::CounterError as CE;
    let ids = postern_counters::cause::ALL;
    let doc = read_doc("counters.md");
    let mut seen = HashSet::new();
    for id in ids {
        assert!(well_formed(id), "counters: malformed id {id:?}");
        assert!(seen.insert(id), "counters: {id} listed twice");
        assert!(!postern_tls::cause::RETIRED.contains(id));
        for (_, others) in CATALOGUES {
            assert!(
                !others.contains(id),
                "counters: {id} is in another catalogue"
            );
        }
        assert!(
            doc.contains(&format!("`{id}`")),
            "{id} not in docs/counters.md"
        );
    }
    let errors = [
        CE::Unavailable {
            backend: "redis",
            reason: "timed out".into(),
        },
        CE::Protocol {
            backend: "redis",
            detail: "NOPERM".into(),
        },
        CE::WrongKind {
            key: "k".into(),
            held: "value",
            wanted: "counter",
        },
        CE::Invalid { what: "x".into() },
        CE::Config { what: "x".into() },
    ];
    let mut cli = Cli {
        help: HashMap::new(),
    };
    let mut rendered = HashSet::new();
    let mut problems = Vec::new();
    for e in &errors {
        let c = e.cause();
        rendered.insert(c.id);
        problems.extend(check_fix(
            c.fix,
            &format!("{} ({})", c.id, c.summary),
            &mut cli,
        ));
    }
    for id in ids {
        assert!(rendered.contains(id), "counters: {id} is never rendered");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `postern dkim check`'s findings (`postern_auth::cause`, ADR 0011): well
/// formed, unique, in no other catalogue, documented in
/// docs/authentication.md, every fix true.
#[test]
fn dkim_causes_are_documented_and_true() {
    let ids = postern_auth::cause::ALL;
    let doc = read_doc("authentication.md");
    let mut seen = HashSet::new();
    let mut cli = Cli {
        help: HashMap::new(),
    };
    let mut problems = Vec::new();
    for id in ids {
        assert!(well_formed(id), "dkim: malformed id {id:?}");
        assert!(seen.insert(id), "dkim: {id} listed twice");
        assert!(!postern_tls::cause::RETIRED.contains(id));
        for (_, others) in CATALOGUES {
            assert!(!others.contains(id), "dkim: {id} is in another catalogue");
        }
        assert!(
            doc.contains(&format!("`{id}`")),
            "{id} not in docs/authentication.md"
        );
        let fix = postern_auth::cause::fix(id);
        assert!(!fix.is_empty(), "{id} has no fix");
        problems.extend(check_fix(fix, id, &mut cli));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// Checking a fix text.

/// The top-level tables of postern.toml (a dotted `table.key` outside the
/// notation is refused whatever the key).
const TABLES: &[&str] = &[
    "tls",
    "delivery",
    "route",
    "dns",
    "listener",
    "limits",
    "relay",
    "smtp",
    "log",
    "danger",
    "pickup",
    "admin",
    "user",
    "counters",
    "authentication",
    "dkim",
];

/// The backtick spans of `text` (odd pieces).
fn spans(text: &str) -> (Vec<&str>, Vec<&str>) {
    let mut quoted = Vec::new();
    let mut plain = Vec::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            quoted.push(piece);
        } else {
            plain.push(piece);
        }
    }
    (quoted, plain)
}

/// `tls.kx_groups`-like words: a table name, a dot, a key.
fn dotted_keys(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '"' | '`'))
        .filter_map(|word| {
            let (table, key) = word.split_once('.')?;
            let key = key.trim_end_matches(['.', ':']);
            (TABLES.contains(&table)
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| word.to_owned())
        })
        .collect()
}

/// `[table] key = v, key = v` → (header, lines); `None` if not that form.
fn config_snippet(span: &str) -> Option<(String, Vec<String>)> {
    let (header, rest) = if let Some(r) = span.strip_prefix("[[") {
        let (t, rest) = r.split_once("]]")?;
        (format!("[[{t}]]"), rest)
    } else {
        let r = span.strip_prefix('[')?;
        let (t, rest) = r.split_once(']')?;
        (format!("[{t}]"), rest)
    };
    let rest = rest.trim();
    let mut lines = Vec::new();
    if !rest.is_empty() {
        // Split on ", key =" (values may contain commas inside brackets).
        let mut current = String::new();
        let mut depth = 0i32;
        for c in rest.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth == 0 {
                lines.push(current.trim().to_owned());
                current.clear();
            } else {
                current.push(c);
            }
        }
        lines.push(current.trim().to_owned());
    }
    Some((header, lines))
}

fn check_config(span: &str, from: &str) -> Result<(), String> {
    let (header, lines) =
        config_snippet(span).ok_or_else(|| format!("{from}: unreadable config span `{span}`"))?;
    // A bare key gets a placeholder value: only whether the key exists is
    // checked then; a given value must be accepted too.
    let bare = lines.iter().any(|l| !l.contains('='));
    let lines: Vec<String> = lines
        .into_iter()
        .map(|l| {
            if l.contains('=') {
                l
            } else {
                format!("{l} = \"x\"")
            }
        })
        .collect();
    let src = format!("data_dir = \"data\"\n{header}\n{}\n", lines.join("\n"));
    let dir = tempfile::tempdir().unwrap();
    match postern_config::load_str(&src, "fix-text.toml", dir.path()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            let bad = msg.contains("unknown key")
                || msg.contains("TOML syntax")
                || (!bare && msg.contains("unknown value"));
            if bad {
                Err(format!(
                    "{from}: the fix names `{span}`, which the configuration refuses: {msg}"
                ))
            } else {
                Ok(())
            }
        }
    }
}

struct Cli {
    help: HashMap<Vec<String>, String>,
}

impl Cli {
    fn help(&mut self, path: &[String]) -> Option<&str> {
        if !self.help.contains_key(path) {
            let out = Command::new(env!("CARGO_BIN_EXE_postern"))
                .args(path)
                .arg("--help")
                .output()
                .unwrap();
            let text = if out.status.success() {
                String::from_utf8_lossy(&out.stdout).into_owned()
            } else {
                String::new()
            };
            self.help.insert(path.to_vec(), text);
        }
        self.help
            .get(path)
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    }

    /// The subcommands a help text lists under `Commands:`.
    fn subcommands(help: &str) -> Vec<String> {
        help.split("Commands:")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| l.starts_with("  "))
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn check(&mut self, span: &str, from: &str) -> Result<(), String> {
        let mut words = span.split_whitespace();
        assert_eq!(words.next(), Some("postern"));
        let mut path: Vec<String> = Vec::new();
        let mut flags = Vec::new();
        let mut positional = false;
        for w in words {
            if w.starts_with("--") {
                flags.push(w.split('=').next().unwrap_or(w).to_owned());
                continue;
            }
            if positional {
                continue;
            }
            let help = self.help(&path).ok_or_else(|| {
                format!(
                    "{from}: `{span}`: `postern {}` does not exist",
                    path.join(" ")
                )
            })?;
            if Self::subcommands(help).iter().any(|s| s == w) {
                path.push(w.to_owned());
            } else {
                positional = true;
            }
        }
        let help = self
            .help(&path)
            .ok_or_else(|| format!("{from}: `{span}` is not a postern command"))?
            .to_owned();
        if path.is_empty() || !Self::subcommands(&help).is_empty() {
            return Err(format!("{from}: `{span}` names no complete subcommand"));
        }
        for f in flags {
            if !help.contains(&f) {
                return Err(format!(
                    "{from}: `{span}`: `postern {}` has no {f}",
                    path.join(" ")
                ));
            }
        }
        Ok(())
    }
}

fn check_fix(fix: &str, from: &str, cli: &mut Cli) -> Vec<String> {
    let mut problems = Vec::new();
    let (quoted, plain) = spans(fix);
    for span in &quoted {
        if span.starts_with('[') {
            if let Err(e) = check_config(span, from) {
                problems.push(e);
            }
        } else if span.starts_with("postern ") {
            if let Err(e) = cli.check(span, from) {
                problems.push(e);
            }
        } else {
            for k in dotted_keys(span) {
                problems.push(format!(
                    "{from}: `{k}` looks like a config key outside the `[table] key` notation"
                ));
            }
        }
    }
    for text in plain {
        for k in dotted_keys(text) {
            problems.push(format!(
                "{from}: {k} looks like a config key outside the `[table] key` notation"
            ));
        }
        if text.contains("postern ") {
            problems.push(format!(
                "{from}: a postern command outside backticks in {fix:?}"
            ));
        }
    }
    problems
}

/// The checker itself refuses what issue 8 found.
#[test]
fn the_checker_refuses_the_old_mistakes() {
    let mut cli = Cli {
        help: HashMap::new(),
    };
    for bad in [
        "add x25519 to tls.kx_groups",
        "add x25519 to `[tls] kx_groups`",
        "add x25519 to `tls.kx_groups`",
        "set `[[route]] domains = [\"x\"], tls = \"sometimes\"`",
        "run `postern cert check --remotely HOST`",
        "run `postern cert verify HOST`",
    ] {
        assert!(
            !check_fix(bad, "test", &mut cli).is_empty(),
            "not caught: {bad}"
        );
    }
    for good in [
        "add x25519 to `[tls] groups` or `[delivery.outbound_tls] groups`",
        "add `[[route]] domains = [\"a.example\", \"b.example\"], tls = \"opportunistic\"`",
        "`postern cert check --remote mx.example:587` shows the chain",
        "`postern tls scan mx.example:25`",
    ] {
        let p = check_fix(good, "test", &mut cli);
        assert!(p.is_empty(), "{good}: {p:?}");
    }
}

#[test]
fn every_fix_names_real_keys_and_commands() {
    let mut cli = Cli {
        help: HashMap::new(),
    };
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for r in render_all() {
        assert!(!r.fix.is_empty(), "{} ({}): empty fix", r.id, r.from);
        if seen.insert(r.fix.clone()) {
            if std::env::var_os("PRINT_FIXES").is_some() {
                eprintln!("[{}] {}\n    fix: {}", r.id, r.from, r.fix);
            }
            problems.extend(check_fix(
                &r.fix,
                &format!("{} ({})", r.id, r.from),
                &mut cli,
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

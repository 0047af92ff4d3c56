//! `[authentication]`, `[[authentication.override]]`, `[[dkim]]` and the
//! mail-flow policy's authentication actions: what loads, and every refusal
//! with file:line:column and the key.

#![allow(clippy::unwrap_used)]

mod common;

use common::{error, load, with};
use postern_auth::signing::SignFor;
use postern_policy::authentication::{DmarcFailAction, SpfFailAction, SpfStage, TempErrorAction};

fn key_file(dir: &std::path::Path) -> String {
    let (_, pem) = postern_auth::generate(postern_auth::Algorithm::Ed25519).unwrap();
    let path = dir.join("example.com.s1.pem");
    postern_auth::write_key(&path, &pem).unwrap();
    path.display().to_string()
}

#[test]
fn defaults_verify_off_and_sign_our_users_mail() {
    let c = load(&with("")).unwrap().config;
    let a = &c.server.authentication;
    assert!(!a.verify);
    assert_eq!(a.max_verify_size, 25 * 1024 * 1024);
    assert_eq!(
        a.signing.sign_for,
        [
            SignFor::Authenticated,
            SignFor::RelayClients,
            SignFor::Pickup
        ]
    );
    assert!(a.signing.keys.is_empty());
}

#[test]
fn a_full_section_loads() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let src = with(&format!(
        "[authentication]\nverify = true\nauthserv_id = \"MX.Example.NET.\"\n\
         max_verify_size = \"30MiB\"\ntrusted_arc_sealers = [\"forwarder.example\"]\n\
         dkim_sign = [\"authenticated\", \"pickup\"]\n\
         [[authentication.override]]\ndomain = \"lists.example.org\"\nreason = \"list rewrites Subject\"\n\
         [[dkim]]\ndomain = \"Example.com\"\nselector = \"s1\"\nkey = \"{key}\"\n\
         canonicalization = \"relaxed/simple\"\nexpire = \"7d\"\n\
         [[dkim]]\ndomain = \"example.com\"\nselector = \"old\"\nkey = \"/nonexistent/old.pem\"\nsign = false\n\
         [[mail_flow_policy]]\nname = \"STRICT\"\naction = \"accept\"\nspf_fail = \"reject\"\n\
         spf_at = \"mail\"\ndmarc_reject = \"quarantine\"\ndmarc_quarantine = \"tag\"\n\
         auth_temperror = \"accept\"\n\
         [[sender_group]]\nname = \"ALL\"\nmatch = [\"all\"]\npolicy = \"STRICT\"\n"
    ));
    let c = load(&src).unwrap().config;
    let a = &c.server.authentication;
    assert!(a.verify);
    assert_eq!(a.authserv_id.as_deref(), Some("mx.example.net"));
    assert_eq!(a.max_verify_size, 30 * 1024 * 1024);
    assert_eq!(a.exceptions.trusted_arc_sealers, ["forwarder.example"]);
    assert_eq!(a.exceptions.overrides[0].domain, "lists.example.org");
    assert_eq!(
        a.signing.sign_for,
        [SignFor::Authenticated, SignFor::Pickup]
    );
    let k = &a.signing.keys[0];
    assert_eq!(
        (k.domain.as_str(), k.selector.as_str()),
        ("example.com", "s1")
    );
    assert!(k.options.header_relaxed && !k.options.body_relaxed);
    assert_eq!(k.options.expire_after, 7 * 86_400);
    assert!(!a.signing.keys[1].sign, "a retired key need not exist");
    let p = &c.server.admission.policies[0];
    assert_eq!(p.auth_actions.spf_fail, SpfFailAction::Reject);
    assert_eq!(p.auth_actions.spf_at, SpfStage::Mail);
    assert_eq!(p.auth_actions.dmarc_reject, DmarcFailAction::Quarantine);
    assert_eq!(p.auth_actions.dmarc_quarantine, DmarcFailAction::Tag);
    assert_eq!(p.auth_actions.temperror, TempErrorAction::Accept);
}

#[test]
fn refusals_name_the_line_and_key() {
    let e = error(&with("[authentication]\nmax_verify_size = \"1KiB\"\n"));
    assert!(
        e.starts_with("postern.toml:12:19: authentication.max_verify_size:"),
        "{e}"
    );
    let e = error(&with("[authentication]\ndkim_sign = [\"everyone\"]\n"));
    assert!(
        e.contains("postern.toml:12:") && e.contains("\"relay-clients\""),
        "{e}"
    );
    let e = error(&with(
        "[[authentication.override]]\ndomain = \"x.example\"\nreason = \"\"\n",
    ));
    assert!(
        e.contains("postern.toml:13:10: authentication.override[0].reason:"),
        "{e}"
    );
    let e = error(&with(
        "[[dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"/nonexistent/k.pem\"\n",
    ));
    assert!(
        e.starts_with("postern.toml:14:7: dkim[0].key:") && e.contains("/nonexistent/k.pem"),
        "{e}"
    );
    let e = error(&with(
        "[[dkim]]\ndomain = \"example.com\"\nselector = \"bad selector\"\nkey = \"k.pem\"\n",
    ));
    assert!(e.contains("dkim[0].selector"), "{e}");
    let e = error(&with(
        "[[mail_flow_policy]]\nname = \"P\"\naction = \"accept\"\ndmarc_quarantine = \"reject\"\n",
    ));
    assert!(
        e.contains("postern.toml:14:20: mail_flow_policy[0].dmarc_quarantine:"),
        "{e}"
    );
    let e = error(&with(
        "[[mail_flow_policy]]\nname = \"P\"\naction = \"accept\"\nspf_fail = \"bounce\"\n",
    ));
    assert!(e.contains("\"reject\", \"tag\", \"accept\""), "{e}");
}

#[test]
fn max_verify_size_follows_the_message_size_limit() {
    let c = load(&with("[limits]\nmax_message_size = \"50MiB\"\n"))
        .unwrap()
        .config;
    assert_eq!(c.server.authentication.max_verify_size, 50 * 1024 * 1024);
    let l = load(&with(
        "[limits]\nmax_message_size = \"50MiB\"\n[authentication]\nmax_verify_size = \"10MiB\"\n",
    ))
    .unwrap();
    assert_eq!(
        l.config.server.authentication.max_verify_size,
        10 * 1024 * 1024
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.to_string().contains("authentication.max_verify_size")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn headers_must_sign_from() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let e = error(&with(&format!(
        "[[dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"{key}\"\nheaders = [\"Subject\"]\n"
    )));
    assert!(e.contains("dkim[0].headers") && e.contains("From"), "{e}");
}

/// The commented `[authentication]` example in examples/postern.toml loads
/// once uncommented (with a real key file in place of the example path).
#[test]
fn the_example_section_loads() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/postern.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("\n[authentication]").unwrap();
    let end = start + text[start..].find("\n# ----").unwrap();
    let block: String = text[start..end]
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .unwrap_or(l.strip_prefix('#').unwrap_or(l))
        })
        // Settings, not prose: `[table]` or `key = value` lines.
        .filter(|l| {
            l.starts_with('[')
                || l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("/var/lib/postern/dkim/example.com.s2026.pem", &key)
        .replace(
            "/usr/share/publicsuffix/public_suffix_list.dat",
            &format!(
                "{}/../auth/data/public_suffix_list.dat",
                env!("CARGO_MANIFEST_DIR")
            ),
        );
    let l = load(&with(&block)).unwrap();
    let a = &l.config.server.authentication;
    assert_eq!(a.signing.keys.len(), 1);
    assert_eq!(a.exceptions.overrides.len(), 1);
    assert_eq!(a.authserv_id.as_deref(), Some("mx.example.com"));
}

#[test]
fn public_suffixes_and_missing_lists_are_refused() {
    let e = error(&with(
        "[[authentication.override]]\ndomain = \"co.uk\"\nreason = \"x\"\n",
    ));
    assert!(
        e.contains("postern.toml:12:10: authentication.override[0].domain:")
            && e.contains("public suffix"),
        "{e}"
    );
    let e = error(&with("[authentication]\ntrusted_arc_sealers = [\"com\"]\n"));
    assert!(e.contains("authentication.trusted_arc_sealers[0]"), "{e}");
    let e = error(&with(
        "[authentication]\npublic_suffix_list = \"/nonexistent/psl.dat\"\n",
    ));
    assert!(
        e.starts_with("postern.toml:12:22: authentication.public_suffix_list:"),
        "{e}"
    );
    // The server-wide hostname is the default authserv-id.
    let c = load(&with("")).unwrap().config;
    assert_eq!(
        c.server.authentication.authserv_id.as_deref(),
        Some("mx.example.com")
    );
}

#[test]
fn canonicalization_is_one_of_the_listed_forms() {
    let e = error(&with(
        "[[dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"k.pem\"\ncanonicalization = \"loose\"\n",
    ));
    assert!(
        e.contains("postern.toml:15:20:") && e.contains("\"relaxed/simple\""),
        "{e}"
    );
}

#[test]
fn arc_sealing_names_an_rsa_dkim_key_and_routes_choose_where() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pem) = postern_auth::generate(postern_auth::Algorithm::Rsa).unwrap();
    let rsa = dir.path().join("rsa.pem");
    postern_auth::write_key(&rsa, &pem).unwrap();
    let ed = key_file(dir.path());
    let src = format!(
        "[authentication]\narc_domain = \"example.com\"\narc_selector = \"arc1\"\n\n\
         [[dkim]]\ndomain = \"example.com\"\nselector = \"arc1\"\nkey = \"{}\"\n\n\
         [[dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"{ed}\"\n\n\
         [[route]]\ndomains = [\"lists.example.net\"]\narc_seal = true\n",
        rsa.display()
    );
    let c = load(&with(&src)).unwrap().config;
    let arc = c.server.authentication.arc_seal.as_ref().unwrap();
    assert_eq!(arc.selector, "arc1");
    assert_eq!(arc.routes, ["lists.example.net"]);
    assert!(arc.seals_for("lists.example.net") && !arc.seals_for("example.net"));

    let e = error(&with(
        &src.replace("arc_selector = \"arc1\"", "arc_selector = \"s1\""),
    ));
    assert!(
        e.contains("authentication.arc_selector") && e.contains("Ed25519"),
        "{e}"
    );
    let e = error(&with(
        &src.replace("arc_selector = \"arc1\"", "arc_selector = \"nope\""),
    ));
    assert!(e.contains("no [[dkim]] key"), "{e}");
    let w = common::warnings(&with(
        "[[route]]\ndomains = [\"lists.example.net\"]\narc_seal = true\n",
    ));
    assert!(w.iter().any(|w| w.contains("arc_seal")), "{w:?}");
}

/// Keys for several domains sign authenticated mail: a user without a
/// `senders` list is named in a warning (it may be signed for any of them);
/// with a list for every user, no warning.
#[test]
fn users_without_senders_are_named_when_keys_cover_several_domains() {
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$BTwHbFXR2qMv9Ac3sAzfCrM6nyYK1A6B/aq5JG5CHwQ";
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let keys = format!(
        "[[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"{key}\"\n\
         [[dkim]]\ndomain = \"b.example\"\nselector = \"s1\"\nkey = \"{key}\"\n"
    );
    let user = |senders: &str| {
        format!("[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n{senders}")
    };
    let warned = |src: &str| {
        load(&with(src))
            .unwrap()
            .warnings
            .iter()
            .map(ToString::to_string)
            .find(|w| w.contains("user.senders"))
    };
    let w = warned(&format!("{keys}{}", user(""))).expect("a warning");
    assert!(
        w.contains("2 domains (a.example, b.example)") && w.contains("user(s) alice"),
        "{w}"
    );
    assert!(warned(&format!("{keys}{}", user("senders = [\"@a.example\"]\n"))).is_none());
}

//! Whole files: the embedded default, the documented example, defaults,
//! relative paths, and how per-listener limits combine with [limits].

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{MINIMAL, load, with};
use postern_config::{DEFAULT_CONFIG, load_default, load_file, load_str};
use postern_smtpd::{AuthMode, ListenerKind, SessionLimits, TlsMode, TranscriptFormat, VrfyMode};
use postern_tls::{TlsSettings, TlsVersion};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/postern.toml")
}

#[test]
fn embedded_default() {
    let loaded = load_default(Path::new("/srv")).unwrap();
    let c = &loaded.config;
    assert_eq!(c.source, "<embedded default>");
    assert_eq!(c.data_dir, Path::new("/srv/./postern-data"));
    assert_eq!(c.tls_dir(), Path::new("/srv/./postern-data/tls"));
    assert_eq!(c.server.spool.dir, Path::new("/srv/./postern-data/spool"));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.danger.enabled(), Vec::<&str>::new());

    let l: Vec<_> = c
        .server
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.addr.to_string(),
                l.kind,
                l.tls,
                l.auth,
                l.hostname.as_str(),
            )
        })
        .collect();
    assert_eq!(
        l,
        [
            (
                "smtp",
                "127.0.0.1:2525".to_owned(),
                ListenerKind::Smtp,
                TlsMode::Optional,
                AuthMode::Off,
                "localhost"
            ),
            (
                "submission",
                "127.0.0.1:2587".to_owned(),
                ListenerKind::Submission,
                TlsMode::Required,
                AuthMode::Required,
                "localhost"
            ),
            (
                "submissions",
                "127.0.0.1:2465".to_owned(),
                ListenerKind::Submissions,
                TlsMode::Required,
                AuthMode::Required,
                "localhost"
            ),
        ]
    );
    for l in &c.server.listeners {
        assert_eq!(l.limits, SessionLimits::default());
    }
    assert_eq!(c.server.tls, TlsSettings::default());
    assert!(c.server.tls.certificates.is_empty());
    assert_eq!(c.server.relay.accepted_domains, ["localhost"]);
    assert!(c.server.relay.relay_networks.is_empty());
    assert!(c.server.users.is_empty());
    assert!(!c.server.allow_insecure_auth);
    assert_eq!(c.server.vrfy, VrfyMode::Ambiguous);
    assert_eq!(c.server.max_connections, 1000);
    assert_eq!(c.server.max_connections_per_ip, 20);
    assert_eq!(
        c.server.transcript.path.as_deref(),
        Some(Path::new("/srv/./postern-data/log/transcript.log"))
    );

    // The only warnings: AUTH is required on the submission listeners but
    // there are no users yet.
    let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "<embedded default>:23:8: listener[1].auth: listener \"submission\" offers AUTH but \
             no [[user]] is defined, so every AUTH attempt fails; add users with a hash from \
             `postern user hash`",
            "<embedded default>:30:8: listener[2].auth: listener \"submissions\" offers AUTH but \
             no [[user]] is defined, so every AUTH attempt fails; add users with a hash from \
             `postern user hash`",
        ]
    );
    assert_eq!(
        load_str(DEFAULT_CONFIG, "<embedded default>", Path::new("/srv")).unwrap(),
        loaded
    );
    // Mail for localhost stays on this host, in a Maildir below the data
    // directory (not the host's port 25).
    assert_eq!(c.delivery.routes.len(), 1);
    let route = format!("{:?}", c.delivery.routes[0]);
    assert!(
        route.contains("Maildir") && route.contains("/srv/postern-data/mail/{user}"),
        "{route}"
    );
}

#[test]
fn documented_example_loads() {
    let path = example_path();
    let loaded = load_file(&path).unwrap();
    let c = &loaded.config;
    assert_eq!(c.data_dir, Path::new("/var/lib/postern"));
    assert_eq!(c.server.listeners.len(), 3);
    let smtp = &c.server.listeners[0];
    assert_eq!((smtp.tls, smtp.auth), (TlsMode::Optional, AuthMode::Off));
    assert_eq!(smtp.limits.max_message_size, 50 * 1024 * 1024);
    let subs = &c.server.listeners[2];
    assert_eq!(
        (subs.kind, subs.tls, subs.auth),
        (
            ListenerKind::Submissions,
            TlsMode::Required,
            AuthMode::Required
        )
    );
    // The example writes out the defaults for [limits] and [tls]: the comments
    // and the code agree.
    assert_eq!(c.server.listeners[1].limits, SessionLimits::default());
    assert_eq!(c.server.max_connections, 1000);
    assert_eq!(c.server.max_connections_per_ip, 20);
    let tls = &c.server.tls;
    assert_eq!(
        (tls.min_version, tls.max_version, tls.session_tickets),
        (TlsVersion::Tls12, TlsVersion::Tls13, true)
    );
    assert!(tls.cipher_suites.is_empty() && tls.kx_groups.is_empty());
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(
        tls.certificates[0].cert_path,
        Path::new("/etc/postern/mx.pem")
    );
    assert_eq!(c.server.vrfy, VrfyMode::Ambiguous);
    assert_eq!(c.server.transcript.format, TranscriptFormat::Text);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.danger.enabled(), Vec::<&str>::new());
    // [pickup] writes out the defaults.
    let mut pickup = postern_pickup::PickupSettings::new(&c.data_dir);
    pickup.hostname.clone_from(&c.delivery.hostname);
    pickup.max_message_size = SessionLimits::default().max_message_size;
    assert_eq!(c.pickup, pickup);
    // No users in the example (a copied example must not carry a known
    // password), so the two AUTH listeners warn.
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.message().contains("no [[user]] is defined"))
    );
}

#[test]
fn minimal_file_has_defaults_and_no_warnings() {
    let loaded = load(MINIMAL).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.server.listeners[0].limits, SessionLimits::default());
    assert_eq!(c.server.listeners[0].hostname, "mx.example.com");
    assert_eq!(c.server.tls, TlsSettings::default());
    assert_eq!(c.server.transcript.path, None);
    assert_eq!(c.server.transcript.format, TranscriptFormat::Text);
    assert_eq!(c.server.vrfy, VrfyMode::Ambiguous);
    assert_eq!(c.log.level, "info");
}

#[test]
fn listener_defaults_depend_on_kind() {
    let src = with(
        "\n[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:587\"\nkind = \"submission\"\n\
         \n[[listener]]\nname = \"subs\"\naddress = \"127.0.0.1:465\"\nkind = \"submissions\"\n",
    );
    let c = load(&src).unwrap().config;
    let modes: Vec<_> = c
        .server
        .listeners
        .iter()
        .map(|l| (l.kind, l.tls, l.auth))
        .collect();
    assert_eq!(
        modes,
        [
            (ListenerKind::Smtp, TlsMode::Optional, AuthMode::Off),
            (
                ListenerKind::Submission,
                TlsMode::Required,
                AuthMode::Required
            ),
            (
                ListenerKind::Submissions,
                TlsMode::Required,
                AuthMode::Required
            ),
        ]
    );
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    let src = MINIMAL.replace("\"/var/lib/postern\"", "\"data\"")
        + "[[tls.certificate]]\ncert = \"certs/mx.pem\"\nkey = \"/abs/mx.key\"\nhostnames = [\"mx.example.com\", \"*.example.net\"]\n\
           [log]\ntranscript = \"logs/t.jsonl\"\ntranscript_format = \"json\"\nlevel = \"debug\"\n";
    std::fs::write(&path, src).unwrap();
    let loaded = load_file(&path).unwrap();
    let c = loaded.config;
    assert_eq!(c.source, path.display().to_string());
    assert_eq!(c.data_dir, dir.path().join("data"));
    assert_eq!(c.server.spool.dir, dir.path().join("data/spool"));
    let cert = &c.server.tls.certificates[0];
    assert_eq!(cert.cert_path, dir.path().join("certs/mx.pem"));
    assert_eq!(cert.key_path, Path::new("/abs/mx.key"));
    assert_eq!(cert.hostnames, ["mx.example.com", "*.example.net"]);
    assert_eq!(
        c.server.transcript.path,
        Some(dir.path().join("logs/t.jsonl"))
    );
    assert_eq!(c.server.transcript.format, TranscriptFormat::Json);
    assert_eq!(c.log.level, "debug");
}

#[test]
fn file_in_current_directory_has_dot_as_base() {
    // load_file("postern.toml") must not join paths to an empty parent.
    let src = MINIMAL.replace("\"/var/lib/postern\"", "\"data\"");
    let loaded = load_str(&src, "postern.toml", Path::new(".")).unwrap();
    assert_eq!(loaded.config.data_dir, Path::new("./data"));
}

#[test]
fn transcript_true_and_false() {
    let on = load(&with("[log]\ntranscript = true\n")).unwrap().config;
    assert_eq!(
        on.server.transcript.path,
        Some(PathBuf::from("/var/lib/postern/log/transcript.log"))
    );
    assert_eq!(on.log_dir(), Path::new("/var/lib/postern/log"));
    let off = load(&with("[log]\ntranscript = false\n")).unwrap().config;
    assert_eq!(off.server.transcript.path, None);
}

#[test]
fn listener_limits_override_global_limits() {
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\n[listener.limits]\nmax_recipients = 500\ncommand_timeout = \"10m\"\n",
    ) + "\n[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:26\"\nkind = \"smtp\"\n\
         [limits]\nmax_recipients = 200\nmax_message_size = \"10MB\"\nmax_command_line = 1024\n\
         max_local_part = 128\nmax_domain = 300\nmax_text_line = 2000\nmax_errors = 3\n\
         data_timeout = \"90s\"\ntls_handshake_timeout = \"1500ms\"\nmax_connections = 50\n\
         max_connections_per_ip = 5\n";
    let c = load(&src).unwrap().config;
    let [a, b] = &c.server.listeners[..] else {
        panic!("two listeners")
    };
    assert_eq!(b.limits.max_recipients, 200);
    assert_eq!(a.limits.max_recipients, 500);
    assert_eq!(a.limits.command_timeout, Duration::from_mins(10));
    assert_eq!(b.limits.command_timeout, Duration::from_mins(5));
    for l in [a, b] {
        assert_eq!(l.limits.max_message_size, 10_000_000);
        assert_eq!(l.limits.proto.max_command_line, 1024);
        assert_eq!(l.limits.proto.max_local_part, 128);
        assert_eq!(l.limits.proto.max_domain, 300);
        assert_eq!(l.limits.proto.max_text_line, 2000);
        assert_eq!(l.limits.max_errors, 3);
        assert_eq!(l.limits.data_block_timeout, Duration::from_secs(90));
        assert_eq!(l.limits.tls_handshake_timeout, Duration::from_millis(1500));
    }
    assert_eq!(c.server.max_connections, 50);
    assert_eq!(c.server.max_connections_per_ip, 5);
}

#[test]
fn sizes_accept_integers_and_units() {
    for (v, want) in [
        ("1048576", 1_048_576_u64),
        ("\"1048576\"", 1_048_576),
        ("\"64KiB\"", 65_536),
        ("\"1 GiB\"", 1 << 30),
        ("\"2GB\"", 2_000_000_000),
    ] {
        let c = load(&with(&format!("[limits]\nmax_message_size = {v}\n")))
            .unwrap()
            .config;
        assert_eq!(c.server.listeners[0].limits.max_message_size, want, "{v}");
    }
}

#[test]
fn users_and_vrfy() {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$BTwHbFXR2qMv9Ac3sAzfCrM6nyYK1A6B/aq5JG5CHwQ";
    let src = format!(
        "{MINIMAL}[smtp]\nvrfy = \"disabled\"\n[[user]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
         [[user]]\nname = \"bob\"\npassword_hash = \"{hash}\"\n"
    );
    let c = load(&src).unwrap().config;
    assert_eq!(c.server.vrfy, VrfyMode::Disabled);
    let names: Vec<_> = c.server.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(c.server.users[0].password_hash, hash);
}

#[test]
fn relay_settings() {
    let src = MINIMAL.replace(
        "accepted_domains = [\"example.com\"]",
        "accepted_domains = [\"example.com\", \".example.org\", \"example.net.\"]\n\
         relay_networks = [\"192.0.2.0/24\", \"2001:db8::/48\", \"198.51.100.7\"]",
    );
    let c = load(&src).unwrap().config;
    assert_eq!(
        c.server.relay.accepted_domains,
        ["example.com", ".example.org", "example.net."]
    );
    let nets: Vec<String> = c
        .server
        .relay
        .relay_networks
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["192.0.2.0/24", "2001:db8::/48", "198.51.100.7/32"]);
}

//! Every refusal, golden-style: the exact message with file:line:column and key path.
//! Line numbers refer to `common::MINIMAL` (10 lines) plus what each test appends.

mod common;

use common::{MINIMAL, error, load, with};
use postern_config::ErrorKind;

#[test]
fn syntax_error_has_location() {
    assert_eq!(
        error(&with("[tls\nmin_version = \"1.2\"\n")),
        "postern.toml:11:5: TOML syntax error: unclosed table, expected `]`"
    );
    let e = load(&with("hostname = 'x")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.key(), "");
}

#[test]
fn duplicate_toml_key_is_a_syntax_error() {
    assert_eq!(
        error("data_dir = \"a\"\ndata_dir = \"b\"\n"),
        "postern.toml:2:1: TOML syntax error: duplicate key"
    );
}

#[test]
fn unknown_top_level_key_lists_allowed_keys() {
    assert_eq!(
        error(&format!("hostnme = \"x\"\n{MINIMAL}")),
        "postern.toml:1:1: hostnme: unknown key; did you mean \"hostname\"? allowed: \"data_dir\", \"hostname\", \
         \"listener\", \"limits\", \"tls\", \"relay\", \"user\", \"smtp\", \"log\", \"danger\", \
         \"delivery\", \"route\", \"dns\", \"pickup\", \"admin\", \"spool\", \"sender_group\", \"mail_flow_policy\", \"dns_list\", \"greylist\", \"auth_ban\", \"counters\", \"recipients\", \"authentication\", \"dkim\", \"dmarc_reports\", \"tracking\", \"quarantine\", \"filters\", \"dictionary\", \"notification\", \"rspamd\", \"clamav\", \"milter\""
    );
}

#[test]
fn unknown_key_in_listener() {
    let src = MINIMAL.replace("kind = \"smtp\"\n", "kind = \"smtp\"\nstarttls = true\n");
    assert_eq!(
        error(&src),
        "postern.toml:8:1: listener[0].starttls: unknown key; allowed: \"name\", \"address\", \
         \"kind\", \"hostname\", \"tls\", \"auth\", \"limits\", \"proxy_protocol\", \
         \"trusted_proxies\", \"proxy_timeout\""
    );
}

#[test]
fn unknown_key_in_nested_tables() {
    assert_eq!(
        error(&with("[tls]\nmin_versoin = \"1.2\"\n")),
        "postern.toml:12:1: tls.min_versoin: unknown key; did you mean \"min_version\"? allowed: \"min_version\", \
         \"max_version\", \"cipher_suites\", \"groups\", \"session_tickets\", \"certificate\""
    );
    assert_eq!(
        error(&with("[danger]\nallow_everything = true\n")),
        "postern.toml:12:1: danger.allow_everything: unknown key; allowed: \
         \"allow_insecure_auth\", \"allow_open_relay\""
    );
    assert_eq!(
        error(&with(
            "[[tls.certificate]]\ncert = \"a.pem\"\nkey = \"a.key\"\nsni = []\n"
        )),
        "postern.toml:14:1: tls.certificate[0].sni: unknown key; allowed: \"cert\", \"key\", \
         \"hostnames\""
    );
}

#[test]
fn unknown_enum_value_in_second_listener() {
    let src = with(
        r#"
[[listener]]
name = "submission"
address = "127.0.0.1:587"
kind = "submission"
tls = "sometimes"
"#,
    );
    assert_eq!(
        error(&src),
        "postern.toml:16:7: listener[1].tls: unknown value \"sometimes\"; allowed: \"off\", \
         \"optional\", \"required\""
    );
}

#[test]
fn unknown_values_of_other_enums() {
    let src = MINIMAL.replace("kind = \"smtp\"", "kind = \"lmtp\"");
    assert_eq!(
        error(&src),
        "postern.toml:7:8: listener[0].kind: unknown value \"lmtp\"; allowed: \"smtp\", \
         \"submission\", \"submissions\""
    );
    assert_eq!(
        error(&with("[smtp]\nvrfy = \"yes\"\n")),
        "postern.toml:12:8: smtp.vrfy: unknown value \"yes\"; allowed: \"ambiguous\", \"disabled\""
    );
    assert_eq!(
        error(&with("[log]\nlevel = \"verbose\"\n")),
        "postern.toml:12:9: log.level: unknown value \"verbose\"; allowed: \"error\", \"warn\", \
         \"info\", \"debug\", \"trace\""
    );
    assert_eq!(
        error(&with("[log]\ntranscript_format = \"xml\"\n")),
        "postern.toml:12:21: log.transcript_format: unknown value \"xml\"; allowed: \"text\", \
         \"json\""
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        error(&MINIMAL.replace("hostname = \"mx.example.com\"", "hostname = 5")),
        "postern.toml:2:12: hostname: expected a string, found integer `5`"
    );
    assert_eq!(
        error(&with("[limits]\nmax_recipients = \"many\"\n")),
        "postern.toml:12:18: limits.max_recipients: expected a whole number, found string \"many\""
    );
    assert_eq!(
        error(&with("[limits]\nmax_errors = -1\n")),
        "postern.toml:12:14: limits.max_errors: -1 is negative; expected a whole number"
    );
    assert_eq!(
        error(&with("[log]\ntranscript = 1\n")),
        "postern.toml:12:14: log.transcript: expected true, false or a file path, found integer `1`"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        error(&MINIMAL.replace("data_dir = \"/var/lib/postern\"\n", "")),
        "postern.toml:1:1: data_dir: required key is missing"
    );
    assert_eq!(
        error(&MINIMAL.replace("address = \"127.0.0.1:25\"\n", "")),
        "postern.toml:4:1: listener[0].address: required key is missing"
    );
    assert_eq!(
        error(&with("[[user]]\nname = \"alice\"\n")),
        "postern.toml:11:1: user[0].password_hash: required key is missing"
    );
}

#[test]
fn at_least_one_listener() {
    let src = "data_dir = \"/d\"\nhostname = \"mx.example.com\"\n";
    assert_eq!(
        error(src),
        "postern.toml:1:1: listener: at least one [[listener]] is required"
    );
    assert_eq!(
        error(&format!("{src}listener = []\n")),
        "postern.toml:3:12: listener: at least one [[listener]] is required"
    );
}

#[test]
fn duplicate_listener_name() {
    let src = with(
        r#"
[[listener]]
name = "smtp"
address = "127.0.0.1:26"
kind = "smtp"
"#,
    );
    assert_eq!(
        error(&src),
        "postern.toml:13:8: listener[1].name: duplicate listener name \"smtp\" (also \
         listener[0]); names must be unique"
    );
}

#[test]
fn duplicate_listener_address() {
    let second = |addr: &str| {
        with(&format!(
            "\n[[listener]]\nname = \"other\"\naddress = \"{addr}\"\nkind = \"smtp\"\n"
        ))
    };
    assert_eq!(
        error(&second("127.0.0.1:25")),
        "postern.toml:14:11: listener[1].address: address 127.0.0.1:25 is already used by \
         listener[0] (127.0.0.1:25); each listener needs its own socket"
    );
    assert_eq!(
        error(&second("0.0.0.0:25")),
        "postern.toml:14:11: listener[1].address: address 0.0.0.0:25 is already used by \
         listener[0] (127.0.0.1:25); each listener needs its own socket"
    );
    // A different port, or port 0 (kernel's choice), is fine.
    assert!(load(&second("127.0.0.1:26")).is_ok());
    let zero = MINIMAL.replace("127.0.0.1:25", "127.0.0.1:0");
    let zero =
        format!("{zero}\n[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n");
    assert!(load(&zero).is_ok());
}

#[test]
fn invalid_listener_address_and_name() {
    assert_eq!(
        error(&MINIMAL.replace("127.0.0.1:25", "localhost:25")),
        "postern.toml:6:11: listener[0].address: invalid socket address \"localhost:25\"; \
         expected IP:port such as \"127.0.0.1:2525\", \"0.0.0.0:25\" or \"[::1]:587\" (host \
         names are not resolved)"
    );
    assert_eq!(
        error(&MINIMAL.replace("name = \"smtp\"", "name = \"my smtp\"")),
        "postern.toml:5:8: listener[0].name: invalid listener name \"my smtp\"; allowed: 1 to \
         64 letters, digits, '-', '_' or '.'"
    );
}

#[test]
fn hostnames_are_checked() {
    assert_eq!(
        error(&MINIMAL.replace("\"mx.example.com\"", "\"mx.example.com\\r\\n250 x\"")),
        "postern.toml:2:12: hostname: invalid hostname \"mx.example.com\\r\\n250 x\": only \
         letters, digits, '-' and '.' are allowed; expected a domain name such as \
         \"mail.example.com\""
    );
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\nhostname = \"a..b\"\n",
    );
    assert_eq!(
        error(&src),
        "postern.toml:8:12: listener[0].hostname: invalid hostname \"a..b\": empty label; \
         expected a domain name such as \"mail.example.com\""
    );
}

#[test]
fn listener_needs_a_hostname_from_somewhere() {
    let src = MINIMAL.replace("hostname = \"mx.example.com\"\n", "");
    assert_eq!(
        error(&src),
        "postern.toml:3:1: listener[0].hostname: no hostname: set hostname at the top of the \
         file or in this listener"
    );
    let own = src.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\nhostname = \"mx.example.com\"\n",
    );
    assert!(load(&own).is_ok());
}

#[test]
fn submissions_requires_tls() {
    for mode in ["off", "optional"] {
        let src = with(&format!(
            "\n[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:465\"\nkind = \"submissions\"\n\
             tls = \"{mode}\"\n"
        ));
        assert_eq!(
            error(&src),
            format!(
                "postern.toml:16:7: listener[1].tls: a submissions listener always uses implicit \
                 TLS (RFC 8314), so tls = \"{mode}\" is not possible; allowed: \"required\" (the \
                 default)"
            )
        );
    }
}

const CLEAR_AUTH: &str = "AUTH without TLS would send passwords in clear; set tls = \
                          \"optional\"/\"required\" or [danger] allow_insecure_auth = true";

#[test]
fn auth_without_tls_is_refused() {
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\ntls = \"off\"\nauth = \"offered\"\n",
    );
    assert_eq!(
        error(&src),
        format!("postern.toml:9:8: listener[0].auth: {CLEAR_AUTH}")
    );
    // A submission listener's AUTH is on by default: the tls key is blamed.
    let src = with(
        "\n[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:587\"\nkind = \"submission\"\n\
         tls = \"off\"\n",
    );
    assert_eq!(
        error(&src),
        format!("postern.toml:16:7: listener[1].tls: {CLEAR_AUTH}")
    );
}

#[test]
fn auth_without_tls_with_danger_flag_loads() {
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\ntls = \"off\"\nauth = \"offered\"\n",
    );
    let src = format!("{src}\n[danger]\nallow_insecure_auth = true\n");
    let loaded = load(&src).unwrap();
    assert!(loaded.config.server.allow_insecure_auth);
    assert!(loaded.config.danger.allow_insecure_auth);
}

#[test]
fn tls_min_above_max() {
    assert_eq!(
        error(&with(
            "[tls]\nmin_version = \"1.3\"\nmax_version = \"1.2\"\n"
        )),
        "postern.toml:12:15: tls.min_version: min_version \"1.3\" is above max_version \"1.2\""
    );
}

#[test]
fn legacy_tls_versions_are_explained() {
    let cases = [
        ("1.0", "TLS 1.0"),
        ("1.1", "TLS 1.1"),
        ("ssl3", "SSL 3.0"),
        ("TLSv1", "TLS 1.0"),
    ];
    for (v, name) in cases {
        assert_eq!(
            error(&with(&format!("[tls]\nmin_version = \"{v}\"\n"))),
            format!(
                "postern.toml:12:15: tls.min_version: {name} is not supported: rustls does not \
                 implement SSL 3.0, TLS 1.0 or TLS 1.1, and they are insecure (RFC 8996 \
                 deprecates TLS 1.0 and 1.1; RFC 7568 SSL 3.0); allowed: \"1.2\", \"1.3\""
            )
        );
    }
    assert_eq!(
        error(&with("[tls]\nmax_version = \"1.4\"\n")),
        "postern.toml:12:15: tls.max_version: unknown value \"1.4\"; allowed: \"1.2\", \"1.3\""
    );
    assert_eq!(
        error(&with("[tls]\nmin_version = 1.2\n")),
        "postern.toml:12:15: tls.min_version: TLS versions are strings: write \"1.2\" in quotes; \
         allowed: \"1.2\", \"1.3\""
    );
}

#[test]
fn limits_below_rfc_minimums() {
    let cases = [
        (
            "max_command_line = 511",
            20,
            "511 is below the minimum of 512 octets (RFC 5321 §4.5.3.1.4)",
        ),
        (
            "max_local_part = 63",
            18,
            "63 is below the minimum of 64 octets (RFC 5321 §4.5.3.1.1)",
        ),
        (
            "max_domain = 254",
            14,
            "254 is below the minimum of 255 octets (RFC 5321 §4.5.3.1.2)",
        ),
        (
            "max_text_line = 998",
            17,
            "998 is below the minimum of 1000 octets (RFC 5321 §4.5.3.1.6)",
        ),
        (
            "max_recipients = 50",
            18,
            "50 is below the minimum of 100 recipients (RFC 5321 §4.5.3.1.8)",
        ),
    ];
    for (line, col, msg) in cases {
        let key = line.split(' ').next().unwrap();
        assert_eq!(
            error(&with(&format!("[limits]\n{line}\n"))),
            format!("postern.toml:12:{col}: limits.{key}: {msg}; this limit may only be raised")
        );
    }
    assert_eq!(
        error(&with("[limits]\nmax_message_size = \"10KiB\"\n")),
        "postern.toml:12:20: limits.max_message_size: 10240 octets is below the minimum of 64KiB \
         (65536 octets, RFC 5321 §4.5.3.1.7); this limit may only be raised"
    );
}

#[test]
fn listener_limits_are_checked_with_their_own_path() {
    let src = with("\n[listener.limits]\nmax_recipients = 10\n");
    // `[listener.limits]` after `[[listener]]` belongs to the last listener.
    assert_eq!(
        error(&src),
        "postern.toml:13:18: listener[0].limits.max_recipients: 10 is below the minimum of 100 \
         recipients (RFC 5321 §4.5.3.1.8); this limit may only be raised"
    );
    let src = MINIMAL.replace(
        "kind = \"smtp\"\n",
        "kind = \"smtp\"\n[listener.limits]\nmax_connections = 5\n",
    );
    assert_eq!(
        error(&src),
        "postern.toml:9:19: listener[0].limits.max_connections: max_connections is a \
         server-wide limit; set it in [limits]"
    );
}

#[test]
fn zero_limits() {
    assert_eq!(
        error(&with("[limits]\nmax_errors = 0\n")),
        "postern.toml:12:14: limits.max_errors: must be at least 1"
    );
    assert_eq!(
        error(&with("[limits]\nmax_connections = 0\n")),
        "postern.toml:12:19: limits.max_connections: must be at least 1"
    );
    assert_eq!(
        error(&with("[limits]\ndata_timeout = \"0s\"\n")),
        "postern.toml:12:16: limits.data_timeout: must be greater than zero"
    );
}

#[test]
fn bad_sizes_and_durations() {
    assert_eq!(
        error(&with("[limits]\nmax_message_size = \"25XB\"\n")),
        "postern.toml:12:20: limits.max_message_size: invalid size \"25XB\"; allowed: a whole \
         number followed by B, KiB, MiB, GiB, KB, MB or GB (e.g. \"25MiB\"), or an integer \
         number of bytes"
    );
    assert_eq!(
        error(&with("[limits]\ncommand_timeout = \"5min\"\n")),
        "postern.toml:12:19: limits.command_timeout: invalid duration \"5min\"; allowed: a whole \
         number followed by ms, s, m, h or d (e.g. \"30s\", \"5m\", \"1h\", \"7d\", \"1500ms\")"
    );
    assert_eq!(
        error(&with("[limits]\ncommand_timeout = 300\n")),
        "postern.toml:12:19: limits.command_timeout: a duration needs a unit: write \"300s\" for \
         300 seconds; allowed: a whole number followed by ms, s, m, h or d (e.g. \"30s\", \
         \"5m\", \"1h\", \"7d\", \"1500ms\")"
    );
}

#[test]
fn relay_networks_must_parse() {
    assert_eq!(
        error(&with(
            "relay_networks = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n"
        )),
        "postern.toml:11:33: relay.relay_networks[1]: invalid network \"10.0.0.0/33\"; expected \
         CIDR notation such as \"192.0.2.0/24\" or \"2001:db8::/32\""
    );
    assert_eq!(
        error(&with("relay_networks = [\"192.168.1.7/24\"]\n")),
        "postern.toml:11:19: relay.relay_networks[0]: \"192.168.1.7/24\" has bits set after the \
         /24 prefix; write \"192.168.1.0/24\""
    );
}

#[test]
fn open_relay_needs_danger_flag() {
    for net in ["0.0.0.0/0", "::/0"] {
        assert_eq!(
            error(&with(&format!("relay_networks = [\"{net}\"]\n"))),
            format!(
                "postern.toml:11:19: relay.relay_networks[0]: {net} lets every host on the \
                 Internet relay mail through this server (open relay); list only your own client \
                 networks, or set [danger] allow_open_relay = true"
            )
        );
    }
    let ok = with("relay_networks = [\"0.0.0.0/0\"]\n[danger]\nallow_open_relay = true\n");
    let loaded = load(&ok).unwrap();
    assert_eq!(loaded.config.server.relay.relay_networks.len(), 1);
    assert_eq!(loaded.config.danger.enabled(), ["danger.allow_open_relay"]);
}

#[test]
fn accepted_domains_are_checked() {
    assert_eq!(
        error(&MINIMAL.replace(
            "[\"example.com\"]",
            "[\"example.com\", \"user@example.com\"]"
        )),
        "postern.toml:10:36: relay.accepted_domains[1]: invalid domain \"user@example.com\"; \
         expected a domain such as \"example.com\", or \".example.com\" for all its subdomains"
    );
}

#[test]
fn password_hash_must_be_argon2_and_is_not_echoed() {
    let src = with("[[user]]\nname = \"alice\"\npassword_hash = \"correct horse battery\"\n");
    let e = error(&src);
    assert_eq!(
        e,
        "postern.toml:13:17: user[0].password_hash: not an Argon2 hash; expected an Argon2 PHC \
         string (\"$argon2id$v=19$m=...,t=...,p=...$salt$hash\") as printed by `postern user hash`"
    );
    assert!(!e.contains("horse"));
    let bcrypt =
        with("[[user]]\nname = \"alice\"\npassword_hash = \"$2b$12$abcdefghijklmnopqrstuv\"\n");
    assert!(error(&bcrypt).contains("user[0].password_hash: not an Argon2 hash"));
    let truncated =
        with("[[user]]\nname = \"alice\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1\"\n");
    assert_eq!(
        error(&truncated),
        "postern.toml:13:17: user[0].password_hash: the salt or the hash is missing; expected an \
         Argon2 PHC string (\"$argon2id$v=19$m=...,t=...,p=...$salt$hash\") as printed by \
         `postern user hash`"
    );
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$BTwHbFXR2qMv9Ac3sAzfCrM6nyYK1A6B/aq5JG5CHwQ";

#[test]
fn duplicate_user() {
    let src = with(&format!(
        "[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n[[user]]\nname = \"alice\"\n\
         password_hash = \"{HASH}\"\n"
    ));
    assert_eq!(
        error(&src),
        "postern.toml:15:8: user[1].name: duplicate user \"alice\" (also user[0])"
    );
}

#[test]
fn empty_paths() {
    assert_eq!(
        error(&MINIMAL.replace("\"/var/lib/postern\"", "\"\"")),
        "postern.toml:1:12: data_dir: must not be empty"
    );
    assert_eq!(
        error(&with("[[tls.certificate]]\ncert = \"\"\nkey = \"k.pem\"\n")),
        "postern.toml:12:8: tls.certificate[0].cert: must not be empty"
    );
}

#[test]
fn certificate_hostnames_are_checked() {
    let src = with(
        "[[tls.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\nhostnames = [\"*.example.com\", \"bad name\"]\n",
    );
    assert_eq!(
        error(&src),
        "postern.toml:14:31: tls.certificate[0].hostnames[1]: invalid hostname \"bad name\": only \
         letters, digits, '-' and '.' are allowed; expected a domain name such as \
         \"mail.example.com\""
    );
}

#[test]
fn unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let e = postern_config::load_file(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Read);
    assert!(e.location().is_none());
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read the configuration file: ",
            path.display()
        )),
        "{e}"
    );
}

#[test]
fn error_accessors() {
    let e = load(&with("[smtp]\nvrfy = \"yes\"\n")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert_eq!(e.origin(), "postern.toml");
    assert_eq!(e.key(), "smtp.vrfy");
    let l = e.location().unwrap();
    assert_eq!((l.line, l.column), (12, 8));
    let src = with("[smtp]\nvrfy = \"yes\"\n");
    assert_eq!(&src[l.span.clone()], "\"yes\"");
}

#[test]
fn single_brackets_for_an_array_of_tables() {
    let src = MINIMAL.replace("[[listener]]", "[listener]");
    assert_eq!(
        error(&src),
        "postern.toml:4:1: listener: expected an array of tables: write [[listener]] (double \
         brackets) for each entry; found a single [listener] table"
    );
    assert_eq!(
        error(&with(
            "[tls.certificate]\ncert = \"c.pem\"\nkey = \"k.pem\"\n"
        )),
        "postern.toml:11:1: tls.certificate: expected an array of tables: write \
         [[tls.certificate]] (double brackets) for each entry; found a single [tls.certificate] \
         table"
    );
}

#[test]
fn value_where_a_table_belongs() {
    assert_eq!(
        error(&format!("smtp = \"ambiguous\"\n{MINIMAL}")),
        "postern.toml:1:8: smtp: expected a table, found string \"ambiguous\""
    );
}

#[test]
fn user_senders_are_checked_where_written() {
    let src = with(&format!(
        "[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\nsenders = [\"alice@example.com\", \"example.com\"]\n"
    ));
    let e = error(&src);
    assert!(
        e.starts_with(
            "postern.toml:14:33: user[0].senders[1]: \"example.com\" is not a sender pattern"
        ),
        "{e}"
    );
    let ok = with(&format!(
        "[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\nsenders = [\"alice@example.com\", \"@sales.example.com\"]\n"
    ));
    let c = postern_config::load_str(&ok, "postern.toml", std::path::Path::new("/etc/postern"))
        .unwrap()
        .config;
    assert_eq!(
        c.server.users[0].senders.as_deref(),
        Some(
            &[
                "alice@example.com".to_owned(),
                "@sales.example.com".to_owned()
            ][..]
        )
    );
}

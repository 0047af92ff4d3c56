//! What a new user runs first, as they run it: the real `postern` binary,
//! real pipes and sockets on 127.0.0.1, configurations in temporary folders,
//! often from another current directory (issue 8 §5).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;
use common::{BIN, Running};

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use postern_testkit::Dialogue;

/// `postern ARGS` in `cwd`, no POSTERN_CONFIG from the environment.
fn postern(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("POSTERN_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A configuration in `dir/conf/postern.toml` whose paths are all relative.
fn relative_config(dir: &Path, listen: &str) -> PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let p = conf.join("postern.toml");
    std::fs::write(
        &p,
        format!(
            r#"data_dir = "data"
hostname = "mx.test.example"

[[listener]]
name = "smtp"
address = "{listen}"
kind = "smtp"
tls = "optional"

[relay]
accepted_domains = ["example.com"]

[log]
transcript = "logs/transcript.log"

[[route]]
domains = ["example.com"]
maildir = "vmail/{{domain}}/{{user}}"
create = true
"#
        ),
    )
    .unwrap();
    p
}

async fn send_to_bob(addr: SocketAddr) -> String {
    let mut d = Dialogue::connect(addr).await;
    d.expect(220).await;
    d.cmd("EHLO first.run", 250).await;
    d.cmd("MAIL FROM:<alice@other.org>", 250).await;
    d.cmd("RCPT TO:<bob@example.com>", 250).await;
    d.cmd("DATA", 354).await;
    d.send_raw(b"Subject: hello\r\n\r\nHi Bob.\r\n.\r\n").await;
    let r = d.reply().await.unwrap();
    assert_eq!(r.code, 250, "{r:?}");
    r.lines[0].rsplit(' ').next().unwrap().to_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Relative paths (data_dir, transcript, Maildir template) resolve from the
/// configuration's folder, whatever the current directory of `serve` and of
/// the queue commands; logs carry no colour codes when stderr is a file.
#[test]
fn relative_paths_resolve_from_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = relative_config(dir.path(), "127.0.0.1:0");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let cfg_arg = cfg.to_str().unwrap();
    let server = Running::start_in(
        &elsewhere,
        &["serve", "--config", cfg_arg],
        dir.path().join("serve.stderr"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(send_to_bob(server.addr));

    let conf = dir.path().join("conf");
    let new = conf.join("vmail/example.com/bob/new");
    wait_for("the Maildir copy", || {
        std::fs::read_dir(&new).is_ok_and(|mut d| d.next().is_some())
    });
    assert!(conf.join("data/spool").is_dir());
    wait_for("the transcript", || {
        std::fs::read_to_string(conf.join("logs/transcript.log"))
            .is_ok_and(|t| t.contains("first.run"))
    });
    for stray in ["data", "vmail", "logs"] {
        assert!(
            !elsewhere.join(stray).exists(),
            "{stray} created in the cwd"
        );
    }
    let log = server.stderr();
    assert!(log.contains("postern started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );

    // The queue commands find the same data from yet another folder, by
    // --config, by POSTERN_CONFIG, and by ./postern.toml in the cwd.
    let other = tempfile::tempdir().unwrap();
    let show = postern(other.path(), &["queue", "show", &id, "--config", cfg_arg]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let by_env = Command::new(BIN)
        .args(["queue", "show", &id])
        .current_dir(other.path())
        .env("POSTERN_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(by_env.status.success(), "{}", text(&by_env.stderr));
    let by_cwd = postern(&conf, &["queue", "show", &id]);
    assert!(by_cwd.status.success(), "{}", text(&by_cwd.stderr));
    assert_eq!(text(&show.stdout), text(&by_env.stdout));
    assert_eq!(text(&show.stdout), text(&by_cwd.stdout));

    // config show resolves the same paths.
    let shown = postern(
        other.path(),
        &["config", "show", "--non-default", "-c", cfg_arg],
    );
    let shown = text(&shown.stdout);
    let conf_dir = conf.display();
    assert!(
        shown.contains(&format!("data_dir = \"{conf_dir}/data\"")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "maildir = \"{conf_dir}/vmail/{{domain}}/{{user}}\""
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("transcript = \"{conf_dir}/logs/transcript.log\"")),
        "{shown}"
    );
}

/// `--config FILE` works the same for `config check` as for every other
/// command; so do POSTERN_CONFIG and ./postern.toml. The old positional form
/// still works, with a deprecation warning.
#[test]
fn config_check_takes_the_config_like_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = relative_config(dir.path(), "127.0.0.1:2525");
    let conf = dir.path().join("conf");
    let cfg_arg = cfg.to_str().unwrap();
    for (cwd, args, env) in [
        (
            dir.path(),
            vec!["config", "check", "--config", cfg_arg],
            None,
        ),
        (dir.path(), vec!["config", "check", "-c", cfg_arg], None),
        (
            dir.path(),
            vec!["--config", cfg_arg, "config", "check"],
            None,
        ),
        (dir.path(), vec!["config", "check"], Some(&cfg)),
        (conf.as_path(), vec!["config", "check"], None),
        (dir.path(), vec!["config", "check", cfg_arg], None),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .current_dir(cwd)
            .env_remove("POSTERN_CONFIG");
        if let Some(e) = env {
            cmd.env("POSTERN_CONFIG", e);
        }
        let out = cmd.output().unwrap();
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            stdout.contains("ok: ") && stdout.contains("postern.toml is valid"),
            "{args:?}: {stdout}"
        );
        let deprecated = text(&out.stderr).contains("deprecated");
        assert_eq!(
            deprecated,
            args.len() == 3 && args[2] == cfg_arg,
            "{args:?}"
        );
    }
    // Without any file: the embedded default, and how to choose another.
    let empty = tempfile::tempdir().unwrap();
    let out = postern(empty.path(), &["config", "check"]);
    assert!(text(&out.stdout).contains("ok: <embedded default> is valid"));
    assert!(text(&out.stdout).contains("--config FILE (or POSTERN_CONFIG=FILE)"));
}

/// Every error of a file in one run, in file order, with "did you mean" for
/// a misspelt key; `--strict` turns security warnings into exit status 1.
#[test]
fn config_check_reports_every_error_and_strict_fails_on_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "data_dir = \"d\"\nhostnme = \"x\"\n[tls]\nmin_version = \"1.0\"\n\
         cipher_suites = [159, 3112]\n[admin]\nsoket = \"a.sock\"\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:2525\"\nkind = \"smtp\"\n",
    )
    .unwrap();
    let out = postern(dir.path(), &["config", "check", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines[0]
            .starts_with("error: bad.toml:2:1: hostnme: unknown key; did you mean \"hostname\"?"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("error: bad.toml:4:15: tls.min_version: TLS 1.0 is not supported"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("error: bad.toml:5:18: tls.cipher_suites: 2 of 2 suites"),
        "{err}"
    );
    assert!(
        lines[3]
            .starts_with("error: bad.toml:7:1: admin.soket: unknown key; did you mean \"socket\"?"),
        "{err}"
    );
    assert!(err.contains("write instead: cipher_suites = ["), "{err}");
    // True as well: the misspelt key leaves the listener without a hostname.
    assert!(
        lines[4].starts_with("error: bad.toml:8:1: listener[0].hostname: no hostname"),
        "{err}"
    );
    assert!(err.trim_end().ends_with("5 errors"), "{err}");

    // A valid file with a security warning (AUTH offered without users).
    let warn = dir.path().join("warn.toml");
    std::fs::write(
        &warn,
        "data_dir = \"d\"\nhostname = \"mx.example\"\n[[listener]]\nname = \"sub\"\n\
         address = \"127.0.0.1:2587\"\nkind = \"submission\"\n[relay]\naccepted_domains = [\"example.com\"]\n",
    )
    .unwrap();
    let lax = postern(dir.path(), &["config", "check", "-c", "warn.toml"]);
    assert!(lax.status.success(), "{}", text(&lax.stderr));
    assert!(text(&lax.stdout).contains("warning: "));
    let strict = postern(
        dir.path(),
        &["config", "check", "--strict", "-c", "warn.toml"],
    );
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stdout));
    assert!(text(&strict.stderr).contains("security warning(s), and --strict was given"));
}

/// `config show` prints the effective configuration (defaults filled in,
/// secrets hidden), `--non-default` only what the file changes; both load.
#[test]
fn config_show_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postern.toml");
    std::fs::write(
        &cfg,
        "data_dir = \"/srv/postern\"\nhostname = \"mx.example\"\n\
         [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:2525\"\nkind = \"smtp\"\n\
         [limits]\nmax_recipients = 100\nmax_errors = 20\n\
         [[user]]\nname = \"bob\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$Z2l2ZW5oYXNoZ2l2ZW5oYXNoZ2l2ZW5oYXNoZ2l2ZQ\"\n\
         [relay]\naccepted_domains = [\"example.com\"]\n",
    )
    .unwrap();
    let full = postern(dir.path(), &["config", "show"]);
    assert!(full.status.success(), "{}", text(&full.stderr));
    let full = text(&full.stdout);
    for want in [
        "max_errors = 20",
        "max_recipients = 100",
        "max_message_size = \"25MiB\"",
        "socket = \"/srv/postern/admin.sock\"",
        "dir = \"/srv/postern/pickup\"",
        "mail_log = \"/srv/postern/log/mail.log\"",
        "tls = \"optional\"",
        "password_hash = \"<secret>\"",
    ] {
        assert!(full.contains(want), "{want} in\n{full}");
    }
    assert!(!full.contains("$argon2id$"), "{full}");
    let short = text(&postern(dir.path(), &["config", "show", "--non-default"]).stdout);
    assert!(short.contains("max_errors = 20"), "{short}");
    assert!(
        !short.contains("max_recipients"),
        "a default is not shown: {short}"
    );
    assert!(!short.contains("[pickup]"), "{short}");
    // What `show` prints is a configuration that loads (secrets aside).
    for (name, shown) in [("full.toml", &full), ("short.toml", &short)] {
        let p = dir.path().join(name);
        std::fs::write(&p, shown.replace("\"<secret>\"", "\"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$Z2l2ZW5oYXNoZ2l2ZW5oYXNoZ2l2ZW5oYXNoZ2l2ZQ\"")).unwrap();
        let check = postern(dir.path(), &["config", "check", "-c", name]);
        assert!(
            check.status.success(),
            "{name}: {}\n{shown}",
            text(&check.stderr)
        );
    }
}

/// A reader that goes away (`| head -1`) ends the command quietly with
/// status 0, not a panic (101).
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Far more output than a pipe buffers (64 KiB), so writes after `head`
    // has gone must fail with EPIPE.
    let list = vec!["159,158,3112,3111,3092,3091,57,51"; 200].join(",");
    let script = format!(
        "\"{BIN}\" tls suites {list} | head -1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        "status=0",
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );

    // The command of the report: `queue list --json | head -1` on a spool.
    let cfg = relative_config(dir.path(), "127.0.0.1:0");
    let server = Running::start_in(
        dir.path(),
        &["serve", "-c", cfg.to_str().unwrap()],
        dir.path().join("serve.stderr"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for _ in 0..3 {
        rt.block_on(send_to_bob(server.addr));
    }
    let script = format!(
        "\"{BIN}\" queue list --json -c \"{}\" | head -1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
        cfg.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        "status=0",
        "{}",
        text(&out.stderr)
    );
}

/// `user hash` reads one line from a pipe and drops its line end: the hash
/// verifies the password without it.
#[test]
fn user_hash_reads_one_line_from_a_pipe() {
    use argon2::PasswordVerifier as _;
    for input in [
        "hunter2\n",
        "hunter2\r\n",
        "hunter2",
        "hunter2\nsecond line\n",
    ] {
        let mut child = Command::new(BIN)
            .args(["user", "hash"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{input:?}: {}", text(&out.stderr));
        let phc = text(&out.stdout);
        let hash = argon2::PasswordHash::new(phc.trim()).unwrap();
        let argon = argon2::Argon2::default();
        assert!(
            argon.verify_password(b"hunter2", &hash).is_ok(),
            "{input:?}"
        );
        assert!(argon.verify_password(input.as_bytes(), &hash).is_err() || input == "hunter2");
    }
    let empty = Command::new(BIN)
        .args(["user", "hash"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(2));
}

/// Each error text once: a port in use, a bad queue id. The bind error says
/// how to fix it.
#[test]
fn error_texts_are_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cfg = relative_config(dir.path(), &addr);
    let out = postern(dir.path(), &["serve", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert_eq!(line.matches("Address already in use").count(), 1, "{err}");
    assert_eq!(
        err.matches("Address already in use").count(),
        1,
        "said once: {err}"
    );
    assert!(line.contains(&format!("cannot bind {addr}")), "{err}");
    assert!(err.contains("fix: another process listens on"), "{err}");
    assert!(
        !dir.path().join("conf/data").exists(),
        "started before binding"
    );

    let out = postern(
        dir.path(),
        &["queue", "show", "X", "-c", cfg.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.matches("invalid queue id \"X\"").count(), 1, "{err}");
}

/// A port below 1024 without the capability: the error says how to allow
/// it without root. Run as `nobody` (setpriv) when the tests run as root.
#[test]
fn a_privileged_port_says_how_to_bind_it_without_root() {
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start <= 25 {
        eprintln!(
            "skipped: every user may bind port 25 here (ip_unprivileged_port_start = {start})"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let cfg = relative_config(dir.path(), "127.0.0.1:25");
    std::fs::set_permissions(
        dir.path().join("conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let root = text(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd
        .args(["serve", "-c", cfg.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("POSTERN_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot bind 127.0.0.1:25: Permission denied"),
        "{err}"
    );
    assert!(err.contains("contrib/postern.service"), "{err}");
    assert!(err.contains("setcap cap_net_bind_service=+ep"), "{err}");
    assert!(err.contains("a port from 1024 up"), "{err}");
    assert_eq!(err.matches("Permission denied").count(), 1, "{err}");
    // Refused before anything started: no data directory, no delivery.
    assert!(!dir.path().join("conf/data").exists());
}

/// Queue commands say which spool they read and how to read another.
#[test]
fn queue_commands_name_the_spool_they_read() {
    let empty = tempfile::tempdir().unwrap();
    let out = postern(empty.path(), &["queue", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let spool = empty.path().join("postern-data/spool");
    assert!(
        err.contains(&format!("no spool at {}", spool.display())),
        "{err}"
    );
    assert!(err.contains("of <embedded default>"), "{err}");
    assert!(
        err.contains("--config FILE (or POSTERN_CONFIG=FILE), or --spool DIR"),
        "{err}"
    );
}

/// `--log-format json`: one JSON object per line on stderr.
#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = relative_config(dir.path(), "127.0.0.1:0");
    let server = Running::start_in(
        dir.path(),
        &["serve", "--log-format", "json", "-c", cfg.to_str().unwrap()],
        dir.path().join("serve.stderr"),
    );
    wait_for("the start line", || {
        server.stderr().contains("postern started")
    });
    let log = server.stderr();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
}

/// `tls suites` explains MailSite's list whole and exits 1.
#[test]
fn tls_suites_explains_a_mailsite_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = postern(
        dir.path(),
        &["tls", "suites", "159,158,3112,3111,3092,3091,57,51"],
    );
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(
        s.contains("3112 = 0xc028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 (read as MailSite's 0xC28"),
        "{s}"
    );
    assert!(
        s.contains("write instead: cipher_suites = [\"TLS_AES_256_GCM_SHA384\""),
        "{s}"
    );
    assert!(
        s.trim_end()
            .ends_with("8 of 8 suites cannot be used as written"),
        "{s}"
    );
    let ok = postern(
        dir.path(),
        &["tls", "suites", "0xC0,0x30", "TLS_AES_128_GCM_SHA256"],
    );
    assert!(ok.status.success(), "{}", text(&ok.stdout));
}

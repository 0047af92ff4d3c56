//! Real engines for the tests and the latency example: `rspamd` and `clamd`
//! from the Debian packages (`.ci/run` installs them), each started once per
//! test binary on 127.0.0.1 with free ports, in a temporary directory, as the
//! invoking user, offline:
//! - rspamd runs the stock /etc/rspamd/rspamd.conf with `LOCAL_CONFDIR`,
//!   `DBDIR`, `RUNDIR` and `LOGDIR` pointed into the temporary directory;
//!   `override.d` moves the normal, controller and proxy workers onto free
//!   ports (the normal worker also on a Unix socket), `local.d` points its
//!   resolver at [`FakeDns`] (every name NXDOMAIN: hermetic and fast) and
//!   turns on milter headers; `rspamd.local.lua` adds one test rule.
//! - clamd gets a private clamd.conf and a signature database of one `.hdb`
//!   line for the EICAR test file, computed here ([`md5`]); no freshclam.
//!
//! The engines are shared by the tests of one binary (`OnceLock`), so they
//! outlive every test: each runs under a small `sh` watchdog that stops it
//! (by its PID) and removes its directory as soon as the test process ends.
//! Without the package, a test prints "skipped: X not installed" and passes,
//! unless `POSTERN_REQUIRE_TOOLS` is set (CI), where it fails.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The EICAR anti-virus test file (68 bytes).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// The signature our test database gives EICAR; clamd adds `.UNOFFICIAL`.
pub const EICAR_SIGNATURE: &str = "Postern.Test.EICAR";
/// The GTUBE spam test string (rspamd answers `reject`).
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
/// clamd's StreamMaxLength in the test configuration.
pub const CLAMD_STREAM_MAX: u64 = 256 * 1024;
/// The controller worker's password (rspamd's test configuration).
pub const CONTROLLER_PASSWORD: &str = "postern-test-controller";
/// An rspamd settings profile (`Settings-ID`) that disables `MIME_GOOD`.
pub const QUIET_SETTINGS: &str = "postern_quiet";
/// A Subject containing this makes the test rule force `rewrite subject`.
pub const REWRITE_MARKER: &str = "postern-rewrite";

/// The path of `program`: on PATH, or in /usr/sbin (clamd lives there, and
/// a non-root user's PATH often lacks it).
pub fn program(name: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(name);
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !on_path && sbin.is_file() {
        sbin
    } else {
        PathBuf::from(name)
    }
}

/// Whether `program` can be run; fails when it cannot and
/// POSTERN_REQUIRE_TOOLS is set.
pub fn installed(program: &str, package: &str) -> bool {
    let ok = Command::new(self::program(program))
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "{program} is required (POSTERN_REQUIRE_TOOLS is set): apt-get install {package}"
        );
        eprintln!("skipped: {program} not installed (apt-get install {package})");
    }
    ok
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A DNS server on 127.0.0.1 (UDP) answering NXDOMAIN to every query, on a
/// thread that lives as long as the process.
pub struct FakeDns {
    pub addr: SocketAddr,
}

impl FakeDns {
    pub fn start() -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if let Some(reply) = nxdomain(&buf[..n]) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        FakeDns { addr }
    }
}

/// The NXDOMAIN answer to `query` (RFC 1035 §4.1): the header with QR, RA
/// and RCODE 3, the question, nothing else.
fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        at += len;
    }
    let end = at + 4;
    if end > query.len() {
        return None;
    }
    let mut reply = query[..end].to_vec();
    reply[2] = 0x80 | (query[2] & 0x79);
    reply[3] = 0x80 | 3;
    reply[4..6].copy_from_slice(&[0, 1]);
    reply[6..12].fill(0);
    Some(reply)
}

/// Starts `program args` under a watchdog that stops it when this process
/// ends (or when the watchdog is killed) and then removes `dir`.
fn guarded(dir: &Path, program: &Path, args: &[String]) -> Child {
    const WATCHDOG: &str = r#"
parent=$1; dir=$2; shift 2
"$@" >"$dir/engine.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid; rm -rf "$dir"; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
kill "$pid" 2>/dev/null; wait "$pid"; rm -rf "$dir"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `ready` every 100 ms until it holds; panics with the engine's
/// output if the engine exits or `limit` passes.
fn wait_ready(
    name: &str,
    watchdog: &mut Child,
    dir: &Path,
    limit: Duration,
    ready: impl Fn() -> bool,
) {
    let start = Instant::now();
    while !ready() {
        let out = || std::fs::read_to_string(dir.join("engine.out")).unwrap_or_default();
        assert!(
            watchdog.try_wait().unwrap().is_none(),
            "{name} exited before it answered:\n{}",
            out()
        );
        if start.elapsed() > limit {
            let _ = watchdog.kill();
            panic!("{name} did not answer within {limit:?}:\n{}", out());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One plain HTTP/1.0 GET on 127.0.0.1:`port`; the whole answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A running rspamd.
pub struct Rspamd {
    /// The normal worker (`/checkv2`).
    pub normal: u16,
    /// The normal worker's Unix socket.
    pub socket: PathBuf,
    /// The controller worker.
    pub controller: u16,
    /// rspamd's log file (one line per scan, with the envelope it saw).
    pub log: PathBuf,
    _watchdog: Child,
}

impl Rspamd {
    /// The engine of this test binary; `None` when rspamd is not installed.
    pub fn get() -> Option<&'static Rspamd> {
        static ENGINE: OnceLock<Option<Rspamd>> = OnceLock::new();
        ENGINE
            .get_or_init(|| installed("rspamd", "rspamd").then(Rspamd::start))
            .as_ref()
    }

    fn start() -> Rspamd {
        let dir = tempfile::Builder::new()
            .prefix("postern-rspamd-")
            .tempdir()
            .unwrap()
            .keep();
        for sub in ["db", "run", "log", "conf/local.d", "conf/override.d"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let dns = FakeDns::start();
        let (normal, controller, proxy) = (free_port(), free_port(), free_port());
        let socket = dir.join("normal.sock");
        let conf = dir.join("conf");
        let write = |name: &str, text: String| std::fs::write(conf.join(name), text).unwrap();
        write(
            "override.d/worker-normal.inc",
            format!(
                "bind_socket = \"127.0.0.1:{normal}\";\nbind_socket = \"{} mode=0600\";\n",
                socket.display()
            ),
        );
        write(
            "override.d/worker-controller.inc",
            format!(
                "bind_socket = \"127.0.0.1:{controller}\";\npassword = \"{CONTROLLER_PASSWORD}\";\n\
                 secure_ip = \"192.0.2.255\";\n"
            ),
        );
        write(
            "override.d/worker-proxy.inc",
            format!("bind_socket = \"127.0.0.1:{proxy}\";\n"),
        );
        write(
            "local.d/options.inc",
            format!(
                "dns {{\n  nameserver = [\"{}\"];\n  timeout = 1s;\n  retransmits = 1;\n}}\n",
                dns.addr
            ),
        );
        write(
            "local.d/milter_headers.conf",
            "use = [\"x-spam-status\", \"x-spamd-result\", \"x-rspamd-queue-id\", \
             \"authentication-results\"];\nskip_local = false;\nskip_authenticated = false;\n"
                .into(),
        );
        write(
            "local.d/settings.conf",
            format!(
                "{QUIET_SETTINGS} {{\n  id = \"{QUIET_SETTINGS}\";\n  apply {{\n    \
                 symbols_disabled = [\"MIME_GOOD\"];\n  }}\n}}\n"
            ),
        );
        write(
            "rspamd.local.lua",
            format!(
                r"-- Postern's engine tests: a Subject containing the marker forces the
-- 'rewrite subject' action, whatever the score.
rspamd_config.POSTERN_TEST_REWRITE = {{
  callback = function(task)
    local subject = task:get_subject()
    if subject and subject:find('{REWRITE_MARKER}', 1, true) then
      task:set_pre_result('rewrite subject', 'subject rewritten for a test')
      return true
    end
    return false
  end,
  score = 0.0,
  description = 'Postern test marker',
  type = 'prefilter',
  priority = 10,
}}
"
            ),
        );
        let var = |k: &str, v: &Path| format!("{k}={}", v.display());
        let args = vec![
            "-f".into(),
            // The invoking user may be root (CI containers): allow it.
            "-i".into(),
            "-c".into(),
            "/etc/rspamd/rspamd.conf".into(),
            "--var".into(),
            var("LOCAL_CONFDIR", &conf),
            "--var".into(),
            var("DBDIR", &dir.join("db")),
            "--var".into(),
            var("RUNDIR", &dir.join("run")),
            "--var".into(),
            var("LOGDIR", &dir.join("log")),
        ];
        let mut watchdog = guarded(&dir, &program("rspamd"), &args);
        wait_ready(
            "rspamd",
            &mut watchdog,
            &dir,
            Duration::from_mins(2),
            || http_get(normal, "/ping").is_some_and(|r| r.contains("pong")),
        );
        Rspamd {
            normal,
            socket,
            controller,
            log: dir.join("log/rspamd.log"),
            _watchdog: watchdog,
        }
    }

    /// Waits (bounded) for the log line of the scan with queue id `qid`.
    pub fn log_line(&self, qid: &str) -> String {
        let needle = format!("qid: <{qid}>");
        for _ in 0..100 {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = log
                .lines()
                .find(|l| l.contains(&needle) && l.contains("rspamd_task_write_log"))
            {
                return line.to_owned();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no log line for {qid} in {}", self.log.display());
    }
}

/// A running clamd.
pub struct Clamd {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its Unix socket.
    pub socket: PathBuf,
    _watchdog: Child,
}

impl Clamd {
    /// The engine of this test binary; `None` when clamd is not installed.
    pub fn get() -> Option<&'static Clamd> {
        static ENGINE: OnceLock<Option<Clamd>> = OnceLock::new();
        ENGINE
            .get_or_init(|| installed("clamd", "clamav-daemon").then(Clamd::start))
            .as_ref()
    }

    fn start() -> Clamd {
        let dir = tempfile::Builder::new()
            .prefix("postern-clamd-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        // ClamAV's hash signature format: MD5:size:name (one file, whole).
        std::fs::write(
            dir.join("db/postern-test.hdb"),
            format!(
                "{}:{}:{EICAR_SIGNATURE}\n",
                md5(EICAR.as_bytes()),
                EICAR.len()
            ),
        )
        .unwrap();
        let port = free_port();
        let socket = dir.join("clamd.sock");
        let conf = dir.join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nDatabaseDirectory {db}\nLocalSocket {sock}\nTCPSocket {port}\n\
                 TCPAddr 127.0.0.1\nStreamMaxLength {max}\nTemporaryDirectory {tmp}\n\
                 LogFile {log}\nSelfCheck 0\n",
                db = dir.join("db").display(),
                sock = socket.display(),
                max = CLAMD_STREAM_MAX,
                tmp = dir.join("tmp").display(),
                log = dir.join("clamd.log").display(),
            ),
        )
        .unwrap();
        let mut watchdog = guarded(
            &dir,
            &program("clamd"),
            &["-c".into(), conf.display().to_string()],
        );
        wait_ready("clamd", &mut watchdog, &dir, Duration::from_mins(1), || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let mut reply = [0u8; 5];
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(b"zPING\0").is_ok()
                && s.read_exact(&mut reply).is_ok()
                && &reply == b"PONG\0"
        });
        Clamd {
            port,
            socket,
            _watchdog: watchdog,
        }
    }
}

/// A small message with CRLF line ends.
pub fn message(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Sun, 06 Dec 2026 20:00:00 +0000\r\nMessage-ID: <{}@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n",
        md5(subject.as_bytes()),
    )
    .into_bytes()
}

/// A message of about `size` bytes of plain prose.
pub fn message_of_size(size: usize) -> Vec<u8> {
    let line = "Minutes of the weekly meeting: the build is green and lunch is at noon.\r\n";
    let body = line.repeat(size / line.len() + 1);
    let mut m = message("weekly notes", &body);
    m.truncate(size.max(400));
    m.extend_from_slice(b"\r\n");
    m
}

/// A multipart message with `attachment` as a base64 attachment.
pub fn with_attachment(attachment: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
    let mut lines = String::new();
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).unwrap());
        lines.push_str("\r\n");
    }
    let filler = "This paragraph is here to make the message longer than one chunk. ".repeat(40);
    format!(
        "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: the file\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\n{filler}\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"notes.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"notes.com\"\r\n\r\n{lines}--b1--\r\n"
    )
    .into_bytes()
}

/// MD5 (RFC 1321) as lowercase hex: ClamAV's `.hdb` signatures need it and
/// no crate of the workspace offers it.
#[allow(clippy::many_single_char_names)]
pub fn md5(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321 §3.4.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let k: Vec<u32> = (0..64)
        .map(|i| ((f64::from(i + 1)).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for block in msg.chunks(64) {
        let m: Vec<u32> = block
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut hex = String::new();
    for word in state {
        for byte in word.to_le_bytes() {
            write!(hex, "{byte:02x}").unwrap();
        }
    }
    hex
}

#[test]
fn md5_matches_rfc_1321_and_the_published_eicar_hash() {
    assert_eq!(md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    // The EICAR file's MD5 as published by EICAR and in every AV vendor's docs.
    assert_eq!(md5(EICAR.as_bytes()), "44d88612fea8a8f36de82e1278abb02f");
}

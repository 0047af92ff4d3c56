//! `tls scan` against a legacy server rustls cannot be: Debian's
//! `openssl s_server` with TLS 1.0/1.1, CBC suites, DHE with 1024-bit
//! parameters and static RSA. The scan must report those protocols and suites
//! in the server's order, the DH size, and a grade of C or worse with reasons.
//! Skipped (with a message) when the `openssl` command is missing.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use postern_diag::scan::{self, Grade, ProtocolVersion, ScanOptions, ScanTarget, StartTls};
use postern_testkit::{KeyKind, TestCa};

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // CI installs openssl and sets POSTERN_REQUIRE_TOOLS: there a missing
    // tool is a failure, not a silent skip.
    assert!(
        ok || std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
        "the openssl command is required (POSTERN_REQUIRE_TOOLS is set)"
    );
    if !ok {
        eprintln!("SKIPPED: the openssl command is not installed (apt-get install openssl)");
    }
    ok
}

/// An `openssl s_server`, killed (by its own PID) on drop.
struct SServer {
    child: Child,
    // s_server exits when its stdin reaches EOF; hold the pipe open.
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 1024-bit MODP group of RFC 2409 §6.2 ("Oakley group 2").
const P: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22\
                 514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6\
                 F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381\
                 FFFFFFFFFFFFFFFF";

fn files(dir: &Path) -> (String, String, String) {
    let ca = TestCa::new();
    let (c, k) = ca
        .issue_with(&["legacy.test"], KeyKind::Rsa2048, None)
        .write(dir, "legacy");
    // DH parameters from the fixed group `P` (nothing is generated): DER
    // SEQUENCE { INTEGER p, INTEGER 2 }, turned into PEM by openssl itself.
    let p: Vec<u8> = (0..P.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&P[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(p.len(), 128);
    let mut der = vec![0x30, 0x81, 0x87, 0x02, 0x81, 0x81, 0x00];
    der.extend(&p);
    der.extend([0x02, 0x01, 0x02]);
    let der_path = dir.join("dh1024.der");
    std::fs::write(&der_path, der).unwrap();
    let dh = dir.join("dh1024.pem");
    let st = Command::new("openssl")
        .args(["dhparam", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&dh)
        .env("OPENSSL_CONF", "/dev/null")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    (
        c.display().to_string(),
        k.display().to_string(),
        dh.display().to_string(),
    )
}

fn s_server(dir: &Path, args: &[&str]) -> SServer {
    let (cert, key, dh) = files(dir);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new("openssl")
        .arg("s_server")
        .args(["-accept", &addr.to_string(), "-cert", &cert, "-key", &key])
        .args(["-dhparam", &dh, "-quiet"])
        .args(args)
        .env("OPENSSL_CONF", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    SServer {
        child,
        _stdin: stdin,
        addr,
    }
}

async fn scan(addr: SocketAddr) -> scan::ScanReport {
    let target = ScanTarget::parse(&addr.to_string(), Some(StartTls::None)).unwrap();
    let r = scan::scan(&target, &ScanOptions::default(), &|_| {})
        .await
        .unwrap();
    eprintln!("{}", scan::render_text(&r));
    r
}

#[tokio::test]
async fn scan_legacy_tls10_11_cbc_dhe_server_order() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let srv = s_server(
        dir.path(),
        &[
            "-no_ssl3",
            "-no_tls1_2",
            "-no_tls1_3",
            "-serverpref",
            // Server order: static RSA first, then DHE — the opposite of the
            // order the scanner offers (forward-secret first).
            "-cipher",
            "AES256-SHA:DHE-RSA-AES128-SHA:@SECLEVEL=0",
        ],
    );
    let r = scan(srv.addr).await;
    let accepted: Vec<ProtocolVersion> = r
        .protocols
        .iter()
        .filter(|p| p.accepted)
        .map(|p| p.version)
        .collect();
    assert_eq!(
        accepted,
        vec![ProtocolVersion::Tls10, ProtocolVersion::Tls11]
    );
    for v in [ProtocolVersion::Tls10, ProtocolVersion::Tls11] {
        assert_eq!(r.suite_ids(v), vec![0x0035, 0x0033], "{v}");
        let p = r.protocol(v).unwrap();
        assert_eq!(p.server_order_enforced, Some(true), "{v}");
        let rsa = &p.suites[0];
        assert_eq!(rsa.openssl.as_deref(), Some("AES256-SHA"));
        assert_eq!(rsa.kx_detail, "RSA 2048");
        assert!(!rsa.flags.forward_secrecy && !rsa.flags.aead && rsa.flags.weak);
        let dhe = &p.suites[1];
        assert_eq!(dhe.iana, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(dhe.id, 51);
        assert_eq!(dhe.kx_detail, "DH 1024");
        assert_eq!(dhe.kx_bits, Some(1024));
        assert!(dhe.flags.forward_secrecy && dhe.flags.weak && !dhe.flags.insecure);
    }
    assert!(r.groups.is_empty(), "no ECDHE suite, no TLS 1.3");
    assert_eq!(r.chains.len(), 1);
    assert_eq!(r.chains[0].certs[0].subject, "CN=legacy.test");

    assert_eq!(r.grade, Grade::C, "{:#?}", r.reasons);
    let text: Vec<&str> = r.reasons.iter().map(|x| x.text.as_str()).collect();
    for want in [
        "neither TLS 1.2 nor TLS 1.3 accepted (best: TLS 1.1)",
        "TLS 1.0 accepted (deprecated by RFC 8996)",
        "TLS 1.1 accepted (deprecated by RFC 8996)",
        "DH parameters below 2048 bits: TLS 1.0 DHE-RSA-AES128-SHA, TLS 1.1 DHE-RSA-AES128-SHA",
        "no forward secrecy (static RSA or ECDH key exchange): TLS 1.0 AES256-SHA, TLS 1.1 AES256-SHA",
        "no AEAD suite (GCM or ChaCha20-Poly1305) at all",
    ] {
        assert!(text.contains(&want), "missing {want:?} in {text:#?}");
    }
    assert_eq!(r.reasons[0].cap, Grade::C, "worst first");
}

#[tokio::test]
async fn scan_client_order_server_is_detected() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No -serverpref: OpenSSL follows the client's order.
    let srv = s_server(
        dir.path(),
        &[
            "-no_ssl3",
            "-no_tls1",
            "-no_tls1_1",
            "-no_tls1_3",
            "-cipher",
            "AES256-SHA:DHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        ],
    );
    let r = scan(srv.addr).await;
    let p = r.protocol(ProtocolVersion::Tls12).unwrap();
    assert!(p.accepted);
    // In the order offered (strongest first), and the reversal test shows it.
    assert_eq!(
        r.suite_ids(ProtocolVersion::Tls12),
        vec![0xc02f, 0x0033, 0x0035]
    );
    assert_eq!(p.server_order_enforced, Some(false));
    assert!(
        r.reasons
            .iter()
            .any(|x| x.cap == Grade::AMinus && x.text.contains("client's suite order")),
        "{:#?}",
        r.reasons
    );
    // TLS 1.2 groups through the ECDHE suite.
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].version, ProtocolVersion::Tls12);
    assert!(r.groups[0].groups.iter().any(|g| g.name == "x25519"));
    assert_eq!(r.grade, Grade::B, "{:#?}", r.reasons);
}

//! The web console in a real headless Chromium: starts the console on
//! 127.0.0.1:0 (a real spool, a real SQLite tracking store, a real user) and
//! runs `tests/browser/console.py` (Playwright for Python driving Debian's
//! `chromium`): keyboard-only login, dashboard, tracking search by recipient
//! and the message's TLS evidence, hold (htmx dialog) and release (the
//! no-JavaScript confirmation page), TLS posture, mail text with bidi
//! overrides and controls shown as U+FFFD, Swagger UI at `/api/docs`, labels
//! and landmarks, no console errors (the CSP holds), log out.
//!
//! `POSTERN_SCREENSHOTS=DIR` keeps a screenshot of each page in DIR.
//!
//! Skipped, with a message, when chromium or playwright is missing — unless
//! `POSTERN_REQUIRE_TOOLS` is set (CI), then it fails.

#![allow(clippy::unwrap_used)]

mod ui_support;

use std::path::{Path, PathBuf};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/console.py")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    let chromium = std::env::var("POSTERN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("chromium not installed ({chromium})"));
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Some("python3 with playwright (PyPI) not installed".into());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    if let Some(why) = missing_tools() {
        assert!(
            std::env::var_os("POSTERN_REQUIRE_TOOLS").is_none(),
            "POSTERN_REQUIRE_TOOLS is set but {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let c = ui_support::start(true, true).await;
    // Mail with bidi overrides and controls in every text field.
    ui_support::seed_hostile(&c);
    let base = format!("http://{}", c.addr);
    let mut cmd = tokio::process::Command::new("python3");
    // POSTERN_SCREENSHOTS=DIR: a screenshot of each page there, to look at.
    if let Some(dir) = std::env::var_os("POSTERN_SCREENSHOTS") {
        cmd.arg(script()).arg("--screenshots").arg(dir);
    } else {
        cmd.arg(script());
    }
    let out = cmd
        .args([
            "--base",
            &base,
            "--user",
            ui_support::USER,
            "--password",
            ui_support::PASSWORD,
        ])
        .args(["--queue-id", c.seeded.queued.as_ref()])
        .args(["--recipient", "dave@example.org"])
        .arg("--hostile")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "console.py failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "ok: keyboard-only login",
        "ok: skip link is the first Tab stop",
        "ok: dashboard renders",
        "ok: timeline with TLS evidence",
        "(JavaScript: dialog confirmation)",
        "(no JavaScript: confirmation page)",
        "ok: TLS posture, both tabs",
        "ok: hostile text shown with U+FFFD",
        "ok: Swagger UI at /api/docs",
        "ok: no console errors",
        "ok: log out",
    ] {
        assert!(stdout.contains(step), "missing step {step:?}");
    }
}

//! Figures of the admin HTTP listener (not run by default; release build):
//!
//! ```sh
//! cargo test --release -p postern-admin --test http_bench -- --ignored --nocapture
//! ```
//!
//! Login (pre-session token, form POST, argon2id verification), sequential
//! requests with a Bearer token on a new connection each, and 16 concurrent
//! session clients listing the queue status (read from the spool on disk).
//! Every answer must be 200; the times are printed, not asserted.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]

mod http_support;

use std::sync::Arc;
use std::time::Instant;

use http_support::{PASSWORD, Server, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures; run in release with --ignored --nocapture"]
async fn figures() {
    let s = Arc::new(Server::start().await);
    let logins = 10;
    let t = Instant::now();
    for _ in 0..logins {
        assert_eq!(s.login_as(USER, PASSWORD).await.status, 200);
    }
    println!(
        "login (GET /api/login + POST /login, argon2id verify): {:.1} ms each",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(logins)
    );
    let secret = postern_admin::http::auth::TokenStore::open(&s.state.settings.tokens_file)
        .unwrap()
        .create("bench")
        .unwrap();
    let bearer = format!("Bearer {secret}");
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        let r = s.get("/api/v1/whoami", &[("Authorization", &bearer)]).await;
        assert_eq!(r.status, 200);
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "sequential GET /api/v1/whoami (Bearer, new connection each): {:.0} req/s",
        f64::from(n) / e
    );
    let (cookie, _) = s.login().await;
    let (clients, each) = (16, 250);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (s, cookie) = (Arc::clone(&s), cookie.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                let r = s.get("/api/v1/status", &[("Cookie", &cookie)]).await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "{clients} concurrent clients GET /api/v1/status (session): {:.0} req/s",
        f64::from(clients * each) / t.elapsed().as_secs_f64()
    );
}

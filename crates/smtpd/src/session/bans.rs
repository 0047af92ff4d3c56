//! Bans for failed AUTH (`[auth_ban]`): failures are counted per client
//! network and per login name in the counter store (shared between nodes
//! with Redis); past a limit the network gets `421 4.7.0` at connect and the
//! login `454 4.7.0` to every AUTH, whatever the password, until the ban
//! expires.
//!
//! # Security
//! Password guessing (CWE-307): the per-session limit (`max_auth_failures`)
//! only makes a guesser reconnect; these limits span sessions, listeners and
//! nodes. A banned login answers the same for every password, so the ban
//! cannot be used as an oracle. Relay networks and groups whose policy has
//! `exempt_from_bans` are never banned: Stalwart users were locked out by
//! their own health checks and proxies. Login names are lower-cased and
//! bounded in keys; a store outage bans nobody (fail open).
//!
//! # Standards
//! RFC 4954 §6 (`454 4.7.0` temporary authentication failure), RFC 5321 §3.8.

use postern_policy::admission::flow;
use postern_proto::session::{AuthOutcome, Verdict};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::counting;

fn login_key(kind: &str, login: &str) -> String {
    postern_counters::key(&[kind, &login.to_ascii_lowercase()])
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Never banned: a relay network, or a policy with `exempt_from_bans`.
    fn ban_exempt(&self) -> bool {
        self.flow().exempt_from_bans
            || self
                .ctx
                .shared
                .policy
                .relay()
                .is_relay_client(self.gate.facts.ip)
    }

    /// At connect: `421 4.7.0` when the client's network is banned.
    pub(super) async fn network_ban(&mut self) -> Option<Verdict> {
        let settings = self.ctx.shared.settings.admission.auth_ban;
        if !settings.enabled || self.ban_exempt() {
            return None;
        }
        let ip = self.gate.facts.ip;
        let key = counting::key_ip("ban-ip", ip);
        let counters = self.ctx.counters.clone();
        counters.ok(&key, counters.store().get(&key).await)??;
        tracing::info!(%ip, "connection refused: network banned for failed logins");
        self.event("connect refused: network banned for failed logins ([auth_ban]): 421");
        let reply = flow::replies::banned(ip);
        self.log_decision("connect", "auth_ban", Some(&reply));
        Some(Verdict::Disconnect(reply))
    }

    /// Before checking a password: is the login banned?
    pub(super) async fn login_banned(&mut self, login: &str) -> bool {
        let settings = self.ctx.shared.settings.admission.auth_ban;
        if !settings.enabled || self.ban_exempt() {
            return false;
        }
        let key = login_key("ban-user", login);
        let counters = self.ctx.counters.clone();
        let banned = counters
            .ok(&key, counters.store().get(&key).await)
            .flatten()
            .is_some();
        if banned {
            tracing::info!(user = ?login, "AUTH refused: login banned for failed logins");
            self.event("AUTH refused: login banned for failed logins ([auth_ban]): 454");
            let reply = postern_proto::Reply::new(
                454,
                Some(postern_proto::EnhancedCode::new(4, 7, 0)),
                "Temporary authentication failure",
            );
            self.log_decision("auth", "auth_ban", Some(&reply));
        }
        banned
    }

    /// After a check: counts a failure and bans past the limits.
    pub(super) async fn count_auth(&mut self, login: &str, outcome: AuthOutcome) {
        let settings = self.ctx.shared.settings.admission.auth_ban;
        if outcome != AuthOutcome::Invalid || !settings.enabled || self.ban_exempt() {
            return;
        }
        let ip = self.gate.facts.ip;
        let counters = self.ctx.counters.clone();
        let store = counters.store();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ip_key = counting::key_ip("authfail-ip", ip);
        let by_ip = counters.hit(&ip_key, settings.window).await;
        if by_ip.is_some_and(|n| n >= settings.max_failures_per_ip) {
            let ban = counting::key_ip("ban-ip", ip);
            let _ = counters.ok(&ban, store.set(&ban, now, settings.ban).await);
            tracing::warn!(%ip, failures = ?by_ip, ban_s = settings.ban.as_secs(),
                "network banned for failed logins");
            self.event(&format!(
                "network {} banned for {}s: {} failed logins",
                counting::net(ip),
                settings.ban.as_secs(),
                by_ip.unwrap_or(0)
            ));
        }
        let user_key = login_key("authfail-user", login);
        let by_user = counters.hit(&user_key, settings.window).await;
        if by_user.is_some_and(|n| n >= settings.max_failures_per_login) {
            let ban = login_key("ban-user", login);
            let _ = counters.ok(&ban, store.set(&ban, now, settings.ban).await);
            tracing::warn!(user = ?login, failures = ?by_user, ban_s = settings.ban.as_secs(),
                "login banned for failed logins");
            self.event(&format!(
                "login banned for {}s: {} failed logins",
                settings.ban.as_secs(),
                by_user.unwrap_or(0)
            ));
        }
    }
}

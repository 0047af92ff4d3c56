//! Greylisting at RCPT for policies with `greylist = true`: a triplet
//! (client network, sender, recipient) seen for the first time is deferred
//! with `450 4.7.1`; a real MTA retries after the delay and passes, a
//! fire-and-forget spam engine usually does not come back.
//!
//! State lives in the counter store (Redis shares it between nodes):
//! `grey:<triplet>` holds the first attempt's time for `retry_window`,
//! `grey-ok:<triplet>` marks a passed triplet for `pass_lifetime`,
//! `grey-passes:<net>` counts passes and `grey-net-ok:<net>` auto-allows a
//! network after `auto_allow_after` of them.
//!
//! # Security
//! Never for authenticated, relay-network or `relay` clients (their own
//! mail must not wait), and a store that does not answer lets mail through
//! (fail open). The network is the /24 (IPv4) or /64 (IPv6): large providers
//! retry from another address of the same pool. With `[authentication]
//! verify` on, a sender whose MAIL FROM domain passes SPF is keyed on that
//! domain instead of the network (`spf:<domain>`, RFC 6647 §4.2.1): large
//! senders retry from any host their SPF record names. The recipient and sender are
//! lower-cased and made safe by `postern_counters::key` (encoded, bounded).
//!
//! # Standards
//! RFC 6647 (greylisting: §2.1 the triplet, §4 "450 4.7.1", §5 the
//! recommended 1–5 minute delay and network aggregation).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_policy::admission::matcher::canonical_ip;
use postern_policy::admission::{Greylisted, flow, greylist_decision};
use postern_proto::session::{Stage, Verdict};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;

/// The network greylisting aggregates: /24 or /64.
fn grey_net(ip: IpAddr) -> String {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Greylists the RCPT the machine waits on, if the client's policy says
    /// so; `Some(verdict)` defers it.
    pub(super) async fn greylist(&mut self) -> Option<Verdict> {
        if !self.flow().greylist || self.exempt() {
            return None;
        }
        let Some(Stage::Rcpt { from, to, .. }) = self.machine.stage() else {
            return None;
        };
        let from = from.reverse_path.to_string().to_ascii_lowercase();
        let to = to.forward_path.to_string().to_ascii_lowercase();
        // The client network, or the SPF-validated sender domain.
        let net = self.greylist_identity(grey_net(self.gate.facts.ip)).await;
        // Each key built whole by `key` (prefix included), so it never
        // exceeds MAX_KEY_LEN whatever the sender's length.
        let triplet = postern_counters::key(&[&net, &from, &to]);
        let g = self.ctx.shared.settings.admission.greylist;
        let counters = self.ctx.counters.clone();
        let store = counters.store();
        let ok_key = postern_counters::key(&["grey-ok", &net, &from, &to]);
        let net_key = postern_counters::key(&["grey-net-ok", &net]);
        if counters.ok(&ok_key, store.get(&ok_key).await)?.is_some()
            || counters.ok(&net_key, store.get(&net_key).await)?.is_some()
        {
            return None;
        }
        let first_key = postern_counters::key(&["grey", &net, &from, &to]);
        let now = now();
        let first = counters.ok(
            &first_key,
            store.set_if_absent(&first_key, now, g.retry_window).await,
        )?;
        let decision = match first {
            None => Greylisted::Defer(g.delay),
            Some(t) => greylist_decision(&g, t, now),
        };
        match decision {
            Greylisted::Pass => {
                let _ = counters.ok(&ok_key, store.set(&ok_key, now, g.pass_lifetime).await);
                let _ = counters.ok(&first_key, store.delete(&first_key).await);
                if g.auto_allow_after > 0 {
                    let passes_key = postern_counters::key(&["grey-passes", &net]);
                    let passes = counters
                        .ok(
                            &passes_key,
                            store.hit(&passes_key, 1, g.pass_lifetime).await,
                        )
                        .unwrap_or(0);
                    if passes >= g.auto_allow_after {
                        let _ =
                            counters.ok(&net_key, store.set(&net_key, now, g.pass_lifetime).await);
                    }
                }
                self.event(&format!("greylisting passed {triplet}"));
                None
            }
            Greylisted::Defer(wait) => {
                let reply = flow::replies::greylisted(wait.max(Duration::from_secs(1)));
                self.log_decision("rcpt", "greylist", Some(&reply));
                tracing::info!(%triplet, wait_s = wait.as_secs(), "greylisted");
                self.event(&format!(
                    "rcpt greylisted by policy {} ({triplet}): 450, retry in {}s",
                    self.flow().name,
                    wait.as_secs()
                ));
                Some(Verdict::Refuse(reply))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::grey_net;

    #[test]
    fn networks() {
        assert_eq!(grey_net("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            grey_net("::ffff:192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            grey_net("2001:db8:a:b:c::1".parse().unwrap()),
            "2001:db8:a:b::/64"
        );
    }
}

//! The SMTP call-ahead: before we accept a recipient of a gateway domain, we
//! ask the internal host that will receive the mail (`EHLO`, `MAIL FROM:<>`,
//! `RCPT TO:<addr>`, `RSET`, `QUIT`, through `postern_smtpc`) and remember
//! its answer for a while (Cisco ESA "SMTP Call-Ahead", Postfix
//! `reject_unverified_recipient`).
//!
//! `2xx` to RCPT: valid. `5xx`: unknown — refused with our own
//! `550 5.1.1 … User unknown`, never the internal host's text: that text can
//! carry internal host names and software versions, and one wording for
//! every unknown user is what the DHAP counter and the operator's log
//! searches expect; the internal reply is logged. `4xx`, a `5xx` to
//! `MAIL FROM:<>` (the host refuses the null sender: a setup problem, not
//! an answer about the user), a timeout or a connection failure: per
//! `on_error` (`451 4.4.3` by default), and not cached.
//!
//! TLS follows the route's level ([`CallAheadTls`]): STARTTLS when offered,
//! or required. The certificate is recorded, not verified, whatever the
//! route's level: the call-ahead carries one address to a host on the
//! operator's own network, and an active attacker there could at worst
//! change which of our recipients are refused — the message itself goes by
//! the route, under its full TLS policy.
//!
//! # Security
//! Answers are cached in a bounded map ([`Cache`]): a harvester sending a
//! million made-up names costs at most `cache_size` entries, and at most
//! `max_concurrent` call-aheads run at once per entry, so the internal host
//! is not flooded through us. The whole dialogue has one deadline.
//!
//! # Standards
//! RFC 5321 §3.5.3 (RCPT as verification), §4.5.5 (null reverse path),
//! RFC 3463 (5.1.1, 4.4.3).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

use postern_dns::Resolver;
use postern_policy::recipients::{RecipientVerdict, replies};
use postern_smtpc::{ClientSettings, Session};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{CallAheadSettings, CallAheadTls, OnError, RecipientCheck};

/// Bounded answers with their expiry.
pub(crate) struct Cache {
    map: HashMap<String, (bool, Instant)>,
    cap: usize,
}

impl Cache {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<bool> {
        match self.map.get(key) {
            Some(&(valid, expires)) if expires > now => Some(valid),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores an answer; when full, expired answers go first, then any one.
    pub(crate) fn put(&mut self, key: String, valid: bool, expires: Instant, now: Instant) {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.map.retain(|_, (_, e)| *e > now);
            if self.map.len() >= self.cap
                && let Some(k) = self.map.keys().next().cloned()
            {
                self.map.remove(&k);
            }
        }
        self.map.insert(key, (valid, expires));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// One `[[recipients]] call_ahead` entry at run time.
pub(crate) struct CallAhead {
    settings: CallAheadSettings,
    /// The STARTTLS client configuration (`None`: TLS off, or it could not
    /// be built — logged — and a required TLS fails each call-ahead).
    tls: Option<postern_tls::client::ClientTls>,
    cache: Mutex<Cache>,
    slots: Semaphore,
}

/// What the internal host said.
enum Answer {
    Valid,
    Unknown(String),
    Failed(String),
}

impl CallAhead {
    pub(crate) fn new(settings: CallAheadSettings) -> Self {
        let tls = match settings.tls {
            CallAheadTls::Off => None,
            CallAheadTls::Opportunistic | CallAheadTls::Required => {
                match postern_tls::client::ClientTls::new(
                    &postern_tls::client::ClientTlsSettings::default(),
                    postern_tls::client::Verify::Record,
                    std::sync::Arc::new(rustls::RootCertStore::empty()),
                ) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::error!(target = %settings.target(), error = %e,
                            "call-ahead: cannot build the TLS client; STARTTLS is not used");
                        None
                    }
                }
            }
        };
        Self {
            tls,
            cache: Mutex::new(Cache::new(settings.cache_size)),
            slots: Semaphore::new(settings.max_concurrent.max(1)),
            settings,
        }
    }

    pub(crate) fn settings(&self) -> &CallAheadSettings {
        &self.settings
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Validates `addr` (`local@domain`), from the cache or by asking.
    pub(crate) async fn check(&self, addr: &str, resolver: Option<&Resolver>) -> RecipientCheck {
        let source = format!("call-ahead {}", self.settings.target());
        let key = cache_key(addr);
        if let Some(valid) = self.cache().get(&key, Instant::now()) {
            return RecipientCheck {
                verdict: if valid {
                    RecipientVerdict::Valid
                } else {
                    RecipientVerdict::Unknown(replies::unknown(addr))
                },
                source,
                detail: Some("cached answer".into()),
            };
        }
        let timeout = self.settings.timeout;
        let answer = match tokio::time::timeout(timeout, async {
            let _slot = self.slots.acquire().await;
            self.ask(addr, resolver).await
        })
        .await
        {
            Ok(a) => a,
            Err(_) => Answer::Failed(format!("no answer within {}s", timeout.as_secs_f32())),
        };
        let now = Instant::now();
        match answer {
            Answer::Valid => {
                self.cache()
                    .put(key, true, now + self.settings.cache_ttl, now);
                RecipientCheck {
                    verdict: RecipientVerdict::Valid,
                    source,
                    detail: None,
                }
            }
            Answer::Unknown(said) => {
                self.cache()
                    .put(key, false, now + self.settings.negative_ttl, now);
                RecipientCheck {
                    verdict: RecipientVerdict::Unknown(replies::unknown(addr)),
                    source,
                    detail: Some(format!("the internal host said: {said}")),
                }
            }
            Answer::Failed(why) => RecipientCheck {
                verdict: match self.settings.on_error {
                    OnError::TempFail => {
                        RecipientVerdict::Unverifiable(replies::unverifiable(addr))
                    }
                    OnError::Accept => RecipientVerdict::NotChecked,
                },
                source,
                detail: Some(why),
            },
        }
    }

    /// One dialogue with the internal host.
    async fn ask(&self, addr: &str, resolver: Option<&Resolver>) -> Answer {
        let s = &self.settings;
        let target = match self.resolve(resolver).await {
            Ok(a) => a,
            Err(why) => return Answer::Failed(why),
        };
        let mut client = ClientSettings::new(s.helo_name.clone());
        client.connect_timeout = s.timeout;
        client.greeting_timeout = s.timeout;
        client.command_timeout = s.timeout;
        let (mut session, _banner) = match Session::connect(target, &client, None).await {
            Ok(c) => c,
            Err(e) => return Answer::Failed(e.to_string()),
        };
        let ehlo = match session.ehlo().await {
            Ok(e) => e,
            Err(e) => return Answer::Failed(e.to_string()),
        };
        if let Some(why) = self.starttls(&mut session, ehlo.starttls).await {
            let _ = session.quit().await;
            return Answer::Failed(why);
        }
        let probe = session.probe_recipient(addr).await;
        let _ = session.quit().await;
        let probe = match probe {
            Ok(p) => p,
            Err(e) => return Answer::Failed(e.to_string()),
        };
        let Some(rcpt) = probe.rcpt else {
            return Answer::Failed(format!("MAIL FROM:<> refused: {}", one_line(&probe.mail)));
        };
        match rcpt.code {
            200..=299 => Answer::Valid,
            500..=599 => Answer::Unknown(one_line(&rcpt)),
            _ => Answer::Failed(format!("RCPT TO answered {}", one_line(&rcpt))),
        }
    }

    /// STARTTLS per the settings; `Some(why)` when the call-ahead cannot go on.
    async fn starttls(&self, session: &mut Session, offered: bool) -> Option<String> {
        let required = self.settings.tls == CallAheadTls::Required;
        let Some(tls) = &self.tls else {
            return required.then(|| "TLS is required but the TLS client is unavailable".into());
        };
        if !offered {
            return required.then(|| "TLS is required but the host does not offer STARTTLS".into());
        }
        let name = self
            .settings
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Err(e) = session.starttls(name, tls).await {
            return Some(e.to_string());
        }
        session.ehlo().await.err().map(|e| e.to_string())
    }

    /// The internal host's address: an IP literal as is, a name through the
    /// server's resolver (static overrides apply), else the system's.
    async fn resolve(&self, resolver: Option<&Resolver>) -> Result<SocketAddr, String> {
        let s = &self.settings;
        let host = s.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, s.port));
        }
        if let Some(r) = resolver {
            return match r.addresses(host).await {
                Ok(found) => found
                    .addrs
                    .first()
                    .map(|ip| SocketAddr::new(*ip, s.port))
                    .ok_or_else(|| format!("{host}: no address")),
                Err(e) => Err(e.to_string()),
            };
        }
        tokio::net::lookup_host((host, s.port))
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))
    }
}

/// The cache key: the domain is case-insensitive, the local part kept as
/// sent (the internal host decides whether it is).
fn cache_key(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
        None => addr.to_owned(),
    }
}

/// `550 5.1.1 text` on one line.
fn one_line(r: &postern_smtpc::Reply) -> String {
    let text = String::from_utf8_lossy(&r.to_bytes()).into_owned();
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn cache_expires_and_stays_bounded() {
        let mut c = Cache::new(2);
        let now = Instant::now();
        c.put("a@x".into(), true, now + Duration::from_mins(1), now);
        c.put("b@x".into(), false, now + Duration::from_secs(10), now);
        assert_eq!(c.get("a@x", now), Some(true));
        assert_eq!(c.get("b@x", now), Some(false));
        tokio::time::advance(Duration::from_secs(10)).await;
        let later = Instant::now();
        assert_eq!(c.get("b@x", later), None, "negative answer expired");
        c.put("b@x".into(), false, later + Duration::from_secs(10), later);
        // Full: the third answer pushes one out, never grows past the cap.
        c.put("c@x".into(), true, later + Duration::from_mins(1), later);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("c@x", later), Some(true));
    }

    #[test]
    fn keys_fold_the_domain_only() {
        assert_eq!(cache_key("Alice@Example.COM"), "Alice@example.com");
    }
}

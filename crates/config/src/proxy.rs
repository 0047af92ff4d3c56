//! `[[listener]]` PROXY protocol keys, from the file to
//! `postern_smtpd::ProxyProtocol`.
//!
//! ```toml
//! [[listener]]
//! name = "smtp"
//! address = "0.0.0.0:25"
//! kind = "smtp"
//! proxy_protocol = true               # default false
//! trusted_proxies = ["10.0.0.0/8"]    # required with proxy_protocol
//! proxy_timeout = "5s"                # default: the header within 5 seconds
//! ```
//!
//! # Security
//! Parses operator input. A PROXY-protocol listener believes the client
//! address its peer claims, so it must name who may claim it: no
//! `trusted_proxies` is an error, and a wide or catch-all network a warning
//! (anyone in it can forge any client address and pass every per-IP limit).
//!
//! # Standards
//! HAProxy "The PROXY protocol" §2 (the receiver is configured to expect the
//! header from known senders only).

use std::ops::Range;

use ipnet::IpNet;
use postern_smtpd::ProxyProtocol;
use toml::Spanned;

use crate::build::{Ctx, parse_network};
use crate::error::ConfigError;
use crate::raw::RawListener;

/// Networks wider than these in `trusted_proxies` get a warning: a load
/// balancer pool rarely spans more than a /16 (IPv4) or a /48 (IPv6).
const WIDE_V4_PREFIX: u8 = 16;
const WIDE_V6_PREFIX: u8 = 48;

/// The PROXY protocol settings of listener `p` (`listener[i]`); `header` is
/// the span of its table, for errors about a missing key.
pub(crate) fn build(
    l: &RawListener,
    p: &str,
    header: Range<usize>,
    cx: &mut Ctx<'_>,
) -> Result<Option<ProxyProtocol>, ConfigError> {
    let enabled = l.proxy_protocol.as_ref().is_some_and(|v| *v.get_ref());
    if !enabled {
        // The other two keys mean nothing without it: say so rather than
        // let an operator believe the listener is behind a proxy.
        for (span, k) in [
            (
                l.trusted_proxies.as_ref().map(Spanned::span),
                "trusted_proxies",
            ),
            (l.proxy_timeout.as_ref().map(Spanned::span), "proxy_timeout"),
        ] {
            if let Some(span) = span {
                return Err(cx.error(
                    span,
                    format!("{p}.{k}"),
                    format!("{k} needs proxy_protocol = true in the same listener"),
                ));
            }
        }
        return Ok(None);
    }
    let list_key = format!("{p}.trusted_proxies");
    let Some(list) = l
        .trusted_proxies
        .as_ref()
        .filter(|t| !t.get_ref().is_empty())
    else {
        // Point at the empty list, else at `proxy_protocol = true`.
        let span = match (&l.trusted_proxies, &l.proxy_protocol) {
            (Some(t), _) => t.span(),
            (None, Some(v)) => v.span(),
            (None, None) => header,
        };
        return Err(cx.error(
            span,
            list_key,
            "proxy_protocol = true needs the load balancers' addresses, e.g. \
             trusted_proxies = [\"10.0.0.5\", \"10.0.1.0/24\"]: a PROXY header names any \
             client it likes, so it is believed only from these",
        ));
    };
    let mut trusted_proxies = Vec::with_capacity(list.get_ref().len());
    for (i, n) in list.get_ref().iter().enumerate() {
        let ki = format!("{list_key}[{i}]");
        let net = parse_network(n.get_ref()).map_err(|m| cx.error(n.span(), &ki, m))?;
        let (wide, limit) = match net {
            IpNet::V4(_) => (net.prefix_len() < WIDE_V4_PREFIX, WIDE_V4_PREFIX),
            IpNet::V6(_) => (net.prefix_len() < WIDE_V6_PREFIX, WIDE_V6_PREFIX),
        };
        if wide {
            cx.warn(
                Some(n.span()),
                &ki,
                format!(
                    "trusted proxy network {net} is wider than /{limit}: every host in it can \
                     claim any client address (and pass per-IP limits and sender groups); \
                     list only your load balancers"
                ),
            );
        }
        trusted_proxies.push(net);
    }
    let timeout = match &l.proxy_timeout {
        None => ProxyProtocol::DEFAULT_TIMEOUT,
        Some(t) => {
            let d = t.get_ref().0;
            if d.is_zero() || d > std::time::Duration::from_mins(1) {
                return Err(cx.error(
                    t.span(),
                    format!("{p}.proxy_timeout"),
                    "allowed: more than 0 and at most \"60s\"; a load balancer sends the \
                     header at once (default \"5s\")",
                ));
            }
            d
        }
    };
    Ok(Some(ProxyProtocol {
        trusted_proxies,
        timeout,
    }))
}

/// `config show`: the listener's PROXY protocol keys, defaults included.
pub(crate) fn complete(table: &mut toml::Table, pp: Option<&ProxyProtocol>) {
    use toml::Value;
    table.insert("proxy_protocol".into(), Value::Boolean(pp.is_some()));
    if let Some(pp) = pp {
        let t = pp.timeout;
        let timeout = if t.subsec_millis() == 0 {
            format!("{}s", t.as_secs())
        } else {
            format!("{}ms", t.as_millis())
        };
        table.insert("proxy_timeout".into(), Value::String(timeout));
        let nets = pp
            .trusted_proxies
            .iter()
            .map(|n| Value::String(n.to_string()))
            .collect();
        table.insert("trusted_proxies".into(), Value::Array(nets));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    const HEAD: &str = "data_dir = \"/var/lib/postern\"\nhostname = \"mx.example.com\"\n\
                        [relay]\naccepted_domains = [\"example.com\"]\n\n[[listener]]\n\
                        name = \"smtp\"\naddress = \"127.0.0.1:25\"\nkind = \"smtp\"\n";

    fn load(extra: &str) -> Result<crate::Loaded, crate::ConfigError> {
        crate::load_str(
            &format!("{HEAD}{extra}"),
            "postern.toml",
            Path::new("/etc/postern"),
        )
    }

    #[test]
    fn off_by_default() {
        let c = load("").unwrap().config;
        assert_eq!(c.server.listeners[0].proxy_protocol, None);
    }

    #[test]
    fn keys() {
        let loaded = load(
            "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             proxy_timeout = \"2s\"\n",
        )
        .unwrap();
        let pp = loaded.config.server.listeners[0]
            .proxy_protocol
            .clone()
            .unwrap();
        assert_eq!(pp.timeout, Duration::from_secs(2));
        assert_eq!(
            pp.trusted_proxies,
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
        );
        assert!(pp.trusts("10.1.2.3".parse().unwrap()));
        assert!(pp.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!pp.trusts("192.0.2.1".parse().unwrap()));
        // /8 is wider than /16: a warning naming the key.
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.key() == "listener[0].trusted_proxies[0]"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn config_show_prints_the_effective_keys() {
        let show = |extra: &str| {
            crate::effective(
                &format!("{HEAD}{extra}"),
                "postern.toml",
                Path::new("/etc/postern"),
                false,
            )
            .unwrap()
        };
        assert!(show("").contains("proxy_protocol = false"), "{}", show(""));
        let on = show("proxy_protocol = true\ntrusted_proxies = [\"10.0.0.5\"]\n");
        assert!(on.contains("proxy_protocol = true"), "{on}");
        assert!(on.contains("proxy_timeout = \"5s\""), "{on}");
        assert!(on.contains("trusted_proxies = [\"10.0.0.5/32\"]"), "{on}");
    }

    #[test]
    fn no_trusted_proxies_is_an_error_at_the_listener() {
        for (extra, line) in [
            ("proxy_protocol = true\n", 10),
            ("proxy_protocol = true\ntrusted_proxies = []\n", 11),
        ] {
            let e = load(extra).unwrap_err();
            assert_eq!(e.key(), "listener[0].trusted_proxies", "{e}");
            let text = e.to_string();
            assert!(text.contains(&format!("postern.toml:{line}:")), "{text}");
            assert!(text.contains("trusted_proxies = ["), "{text}");
        }
    }

    #[test]
    fn bad_values() {
        for (extra, k) in [
            (
                "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.1/8\"]\n",
                "listener[0].trusted_proxies[0]",
            ),
            (
                "proxy_protocol = true\ntrusted_proxies = [\"lb.example\"]\n",
                "listener[0].trusted_proxies[0]",
            ),
            (
                "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.1\"]\nproxy_timeout = \"0s\"\n",
                "listener[0].proxy_timeout",
            ),
            (
                "proxy_protocol = true\ntrusted_proxies = [\"10.0.0.1\"]\nproxy_timeout = \"5m\"\n",
                "listener[0].proxy_timeout",
            ),
            (
                "trusted_proxies = [\"10.0.0.1\"]\n",
                "listener[0].trusted_proxies",
            ),
            (
                "proxy_protocol = false\nproxy_timeout = \"1s\"\n",
                "listener[0].proxy_timeout",
            ),
        ] {
            let e = load(extra).unwrap_err();
            assert_eq!(e.key(), k, "{extra}: {e}");
        }
    }
}

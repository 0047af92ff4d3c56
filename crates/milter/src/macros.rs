//! Macros: which ones we send at each stage ([`MacroLists`]) and their
//! values for a message ([`value`]).
//!
//! A milter names the macros it wants per stage in negotiation
//! (`SMFIF_SETSYMLIST`); for a stage it does not name, the spec's list
//! applies, by default the Postfix defaults (`milter_*_macros`) with the
//! client's address and name added at connect. A macro without a value (no
//! TLS, no AUTH) is not sent.
//!
//! # Security
//! Values are our own facts about the session, some of them peer-supplied
//! (HELO name, addresses, the AUTH identity); the codec refuses a NUL in them
//! and the milter receives nothing it could not see in the message anyway.

use crate::{Envelope, MacroStage};

/// The macro names sent at each stage, indexed by [`MacroStage::number`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroLists(pub [Vec<String>; 7]);

impl MacroLists {
    /// The list of one stage.
    pub fn stage(&self, stage: MacroStage) -> &[String] {
        // number() is 0..=6, the array has 7 entries.
        self.0
            .get(usize::try_from(stage.number()).unwrap_or(usize::MAX))
            .map_or(&[], Vec::as_slice)
    }

    /// Replaces the list of one stage.
    pub fn set(&mut self, stage: MacroStage, names: Vec<String>) {
        if let Some(slot) = self
            .0
            .get_mut(usize::try_from(stage.number()).unwrap_or(usize::MAX))
        {
            *slot = names;
        }
    }
}

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for MacroLists {
    /// Postfix's defaults, plus `{client_addr}`, `{client_name}`,
    /// `{client_port}` and `{if_addr}` at connect.
    fn default() -> MacroLists {
        MacroLists([
            // connect
            list(&[
                "j",
                "{daemon_name}",
                "{daemon_addr}",
                "v",
                "_",
                "{client_addr}",
                "{client_name}",
                "{client_port}",
                "{if_addr}",
            ]),
            // helo
            list(&["{tls_version}", "{cipher}", "{cipher_bits}"]),
            // mail
            list(&[
                "i",
                "{auth_type}",
                "{auth_authen}",
                "{mail_addr}",
                "{mail_host}",
                "{mail_mailer}",
            ]),
            // rcpt
            list(&["i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"]),
            // data
            list(&["i"]),
            // eom
            list(&["i"]),
            // eoh
            list(&["i"]),
        ])
    }
}

fn bare(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name)
}

fn domain(addr: &str) -> Option<String> {
    addr.rsplit_once('@').map(|(_, d)| d.to_owned())
}

/// The value of macro `name` (`j` or `{daemon_name}`; braces optional) for
/// this message; `rcpt` is the recipient being sent at the rcpt stage.
/// `None` when we have no value.
pub fn value(env: &Envelope<'_>, rcpt: Option<&str>, name: &str) -> Option<String> {
    let key = bare(name);
    if let Some((_, v)) = env.extra_macros.iter().find(|(n, _)| bare(n) == key) {
        return Some(v.clone());
    }
    let ip = env.client_ip.map(|ip| ip.to_string());
    let opt = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    match key {
        "j" | "if_name" => opt(Some(env.hostname)),
        "daemon_name" => opt(Some(env.daemon_name)),
        "daemon_addr" | "if_addr" => env.daemon_addr.map(|a| a.to_string()),
        "v" => Some(concat!("Postern ", env!("CARGO_PKG_VERSION")).to_owned()),
        // Sendmail's `$_`: the client as "name [address]".
        "_" => Some(match (env.client_name, &ip) {
            (Some(name), Some(ip)) => format!("{name} [{ip}]"),
            (None, Some(ip)) => format!("[{ip}]"),
            (Some(name), None) => name.to_owned(),
            (None, None) => "localhost".to_owned(),
        }),
        "client_addr" => ip,
        "client_name" => Some(env.client_name.map_or_else(
            || {
                ip.as_ref()
                    .map_or_else(|| "localhost".to_owned(), |ip| format!("[{ip}]"))
            },
            str::to_owned,
        )),
        "client_port" => env.client_ip.map(|_| env.client_port.to_string()),
        "tls_version" => opt(env.tls_version),
        "cipher" => opt(env.cipher),
        "cipher_bits" => env.cipher_bits.map(|b| b.to_string()),
        "i" => opt(env.queue_id),
        "auth_type" => opt(env.auth_mechanism),
        "auth_authen" => opt(env.auth_user),
        "mail_addr" => Some(env.mail_from.to_owned()),
        "mail_host" => domain(env.mail_from),
        "mail_mailer" | "rcpt_mailer" => Some("smtp".to_owned()),
        "rcpt_addr" => rcpt.map(str::to_owned),
        "rcpt_host" => rcpt.and_then(domain),
        _ => None,
    }
}

/// The `(name, value)` pairs for `names`, skipping those without a value.
pub fn pairs(env: &Envelope<'_>, rcpt: Option<&str>, names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|n| value(env, rcpt, n).map(|v| (n.clone(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_the_envelope() {
        let extra = vec![
            ("{my}".to_owned(), "x".to_owned()),
            ("j".to_owned(), "override".to_owned()),
        ];
        let env = Envelope {
            hostname: "mx.example.org",
            client_ip: Some(
                "192.0.2.1"
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            ),
            client_name: Some("client.example.com"),
            mail_from: "a@example.com",
            queue_id: Some("Q1"),
            extra_macros: &extra,
            ..Envelope::default()
        };
        assert_eq!(
            value(&env, None, "_").as_deref(),
            Some("client.example.com [192.0.2.1]")
        );
        assert_eq!(
            value(&env, None, "{client_addr}").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            value(&env, None, "client_addr").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(value(&env, None, "j").as_deref(), Some("override"));
        assert_eq!(value(&env, None, "my").as_deref(), Some("x"));
        assert_eq!(
            value(&env, None, "{mail_host}").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            value(&env, Some("b@example.net"), "{rcpt_host}").as_deref(),
            Some("example.net")
        );
        assert_eq!(value(&env, None, "{tls_version}"), None);
        assert_eq!(value(&env, None, "{unknown}"), None);
        let names = vec!["i".to_owned(), "{auth_authen}".to_owned()];
        assert_eq!(
            pairs(&env, None, &names),
            vec![("i".to_owned(), "Q1".to_owned())]
        );
    }
}

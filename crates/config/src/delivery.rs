//! `[delivery]`, `[[route]]` and `[dns]` (with `[[dns.static]]`): from the file
//! to `postern_delivery::DeliverySettings` and `postern_dns::DnsSettings`.
//!
//! ```toml
//! [delivery]
//! tls = "opportunistic"              # default level for destinations no route names
//! retry_schedule = ["5m", "10m", "20m", "40m", "1h"]   # the last step repeats
//! max_lifetime = "120h"              # then bounce as expired (4.4.7)
//! delay_warning = "4h"               # or "off"
//! upgrade_tls = true                 # raise the default to dane / mta-sts when published
//!
//! [delivery.outbound_tls]            # our client side, every next hop
//! min_version = "1.2"
//! client_cert = "client.pem"         # presented when a server asks (with client_key)
//! relayhost = "smtp.isp.example:587" # optional global smart host
//!
//! [[route]]
//! domains = ["fabrikam.com", ".fabrikam.com"]
//! tls = "opportunistic"              # e.g. a partner that only speaks TLS 1.0
//!
//! [[route]]
//! domains = [".corp.example"]
//! smarthost = "exchange.corp.example:25"
//! tls = "verify"
//! ca_file = "corp-ca.pem"
//!
//! [[route]]                          # local delivery for a domain that lives here
//! domains = ["example.com"]
//! maildir = "/var/vmail/{domain}/{user}"
//! recipient_delimiter = "+"          # bob+news@ → the mailbox of bob
//! create = false                     # a missing Maildir bounces 550 5.1.1
//!
//! [dns]
//! nameservers = ["127.0.0.1:53"]
//! [[dns.static]]                     # the HOSTS-file equivalent
//! name = "fabrikam.com"
//! mx = ["10 mail.fabrikam.com"]
//! [[dns.static]]
//! name = "mail.fabrikam.com"
//! a = ["203.0.113.11"]
//! ```
//!
//! # Security
//! Refuses what would send a smart-host password in clear (AUTH on a route
//! whose level allows plaintext), and levels that could never be met:
//! `dane` without a resolver that can authenticate (`[dns] dnssec = "off"`),
//! `mta-sts` on a smart host (a policy is about a domain's MX hosts).
//! A Maildir template must be absolute after resolution, use only `{user}` and
//! `{domain}`, and name no `.`/`..` below its fixed part (the address-side
//! checks are in `postern_delivery::maildir`); a Maildir route refuses the
//! network keys (`smarthost`, `tls`, `ca_file`, `implicit_tls`, `auth_*`).
//! Warns when mail may leave in plaintext by configuration (`tls = "none"`).
//! Passwords are never echoed in messages.
//!
//! # Standards
//! RFC 5321 §4.5.4.1 (retry and give-up times), RFC 3207, RFC 8314, RFC 4954,
//! RFC 7505, RFC 7435.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use postern_delivery::{
    Credentials, DeliverySettings, DomainPattern, MaildirSettings, MaildirTemplate, RouteSettings,
    RouteTarget, SmartHost, TlsLevel,
};
use postern_dns::{DnsSettings, DnssecMode, StaticEntry};
use postern_tls::CertSettings;
use postern_tls::client::ClientTlsSettings;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::build::{Ctx, check_hostname};
use crate::error::ConfigError;
use crate::raw::{Choice, Count, Dur, NameOrId, Pick, Transcript, Version};
use crate::units::format_duration;

/// `[delivery]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDelivery {
    pub hostname: Option<Spanned<String>>,
    pub tls: Option<Spanned<Pick<TlsLevel>>>,
    pub ca_file: Option<Spanned<String>>,
    pub retry_schedule: Option<Spanned<Vec<Spanned<Dur>>>>,
    pub max_lifetime: Option<Spanned<Dur>>,
    pub delay_warning: Option<Spanned<OffOr>>,
    pub max_connections: Option<Spanned<Count>>,
    pub max_connections_per_destination: Option<Spanned<Count>>,
    pub max_messages_per_connection: Option<Spanned<Count>>,
    pub connect_timeout: Option<Spanned<Dur>>,
    pub command_timeout: Option<Spanned<Dur>>,
    pub relayhost: Option<Spanned<String>>,
    pub relayhost_tls: Option<Spanned<Pick<TlsLevel>>>,
    pub relayhost_implicit_tls: Option<Spanned<bool>>,
    pub relayhost_user: Option<Spanned<String>>,
    pub relayhost_password: Option<Spanned<String>>,
    pub badmail_dir: Option<Spanned<String>>,
    pub mail_log: Option<Spanned<Transcript>>,
    pub smtp_port: Option<Spanned<Count>>,
    pub upgrade_tls: Option<Spanned<bool>>,
    pub mta_sts_cache: Option<Spanned<Transcript>>,
    pub outbound_tls: Option<Spanned<RawOutboundTls>>,
}

/// `[delivery.outbound_tls]`: how our client speaks TLS to every next hop.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawOutboundTls {
    pub min_version: Option<Spanned<Version>>,
    pub max_version: Option<Spanned<Version>>,
    pub cipher_suites: Option<Spanned<Vec<Spanned<NameOrId>>>>,
    pub groups: Option<Spanned<Vec<Spanned<NameOrId>>>>,
    pub resumption: Option<bool>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
}

/// `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    pub domains: Spanned<Vec<Spanned<String>>>,
    pub smarthost: Option<Spanned<String>>,
    pub implicit_tls: Option<Spanned<bool>>,
    pub auth_user: Option<Spanned<String>>,
    pub auth_password: Option<Spanned<String>>,
    pub tls: Option<Spanned<Pick<TlsLevel>>>,
    pub ca_file: Option<Spanned<String>>,
    pub maildir: Option<Spanned<String>>,
    pub recipient_delimiter: Option<Spanned<String>>,
    pub create: Option<Spanned<bool>>,
    /// ARC-seal verified mail to these domains (read by the authentication
    /// settings; `[authentication] arc_domain`/`arc_selector` name the key).
    pub arc_seal: Option<Spanned<bool>>,
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDns {
    pub nameservers: Option<Vec<Spanned<String>>>,
    pub dnssec: Option<Spanned<Pick<DnssecMode>>>,
    pub timeout: Option<Spanned<Dur>>,
    pub attempts: Option<Spanned<Count>>,
    #[serde(rename = "static")]
    pub statics: Option<Vec<Spanned<RawStatic>>>,
}

/// `[[dns.static]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawStatic {
    pub name: Spanned<String>,
    pub a: Option<Vec<Spanned<String>>>,
    pub mx: Option<Vec<Spanned<String>>>,
}

impl Choice for TlsLevel {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("none", Self::None),
        ("opportunistic", Self::Opportunistic),
        ("opportunistic-strict", Self::OpportunisticStrict),
        ("required", Self::Required),
        ("verify", Self::Verify),
        ("dane", Self::Dane),
        ("mta-sts", Self::MtaSts),
    ];
}

impl Choice for DnssecMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("trust-ad-bit", Self::TrustAdBit),
        ("validate", Self::Validate),
    ];
}

/// `"off"` or a duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OffOr(pub Option<Duration>);

impl<'de> Deserialize<'de> for OffOr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(PhantomData<OffOr>);
        impl Visitor<'_> for V {
            type Value = OffOr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"off\" or a duration such as \"4h\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OffOr, E> {
                if s.eq_ignore_ascii_case("off") {
                    return Ok(OffOr(None));
                }
                crate::units::parse_duration(s)
                    .map(|d| OffOr(Some(d)))
                    .map_err(|e| E::custom(format!("{e}, or \"off\"")))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

fn count(
    v: Option<&Spanned<Count>>,
    default: usize,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<usize, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let n = v.get_ref().0;
    if n == 0 {
        return Err(cx.error(v.span(), key, "must be at least 1"));
    }
    usize::try_from(n).map_err(|_| cx.error(v.span(), key, format!("{n} is too large")))
}

fn positive_duration(
    v: Option<&Spanned<Dur>>,
    default: Duration,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<Duration, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    if v.get_ref().0.is_zero() {
        return Err(cx.error(v.span(), key, "must be greater than zero"));
    }
    Ok(v.get_ref().0)
}

fn path_of(
    v: &Spanned<String>,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<std::path::PathBuf, ConfigError> {
    if v.get_ref().trim().is_empty() {
        return Err(cx.error(v.span(), key, "must not be empty"));
    }
    Ok(crate::build::resolve(cx.base_dir, v.get_ref()))
}

/// `[delivery.outbound_tls]` → the client TLS settings of every connection.
fn outbound_tls(raw: &RawOutboundTls, cx: &mut Ctx<'_>) -> Result<ClientTlsSettings, ConfigError> {
    const T: &str = "delivery.outbound_tls";
    let d = ClientTlsSettings::default();
    let (min_version, max_version) = crate::build::version_range(
        raw.min_version.as_ref(),
        raw.max_version.as_ref(),
        (d.min_version, d.max_version),
        T,
        cx,
    )?;
    let range = (min_version, max_version);
    let cipher_suites = crate::tls_names::cipher_suites(raw.cipher_suites.as_ref(), range, T, cx)?;
    let kx_groups = crate::tls_names::groups(raw.groups.as_ref(), range, T, cx)?;
    let client_cert = match (&raw.client_cert, &raw.client_key) {
        (Some(c), Some(k)) => Some(CertSettings {
            cert_path: path_of(c, &format!("{T}.client_cert"), cx)?,
            key_path: path_of(k, &format!("{T}.client_key"), cx)?,
            hostnames: Vec::new(),
        }),
        (None, None) => None,
        (Some(v), None) | (None, Some(v)) => {
            return Err(cx.error(
                v.span(),
                T,
                "client_cert and client_key go together: set both (PEM files) or neither",
            ));
        }
    };
    Ok(ClientTlsSettings {
        min_version,
        max_version,
        cipher_suites,
        kx_groups,
        client_cert,
        resumption: raw.resumption.unwrap_or(d.resumption),
    })
}

/// `mta-sts` on a smart host can never be met: a policy lists a domain's MX
/// hosts (RFC 8461 §4.1).
fn not_mta_sts_for_smarthost(
    v: Option<&Spanned<Pick<TlsLevel>>>,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    match v {
        Some(t) if t.get_ref().0 == TlsLevel::MtaSts => Err(cx.error(
            t.span(),
            key,
            "\"mta-sts\" applies to MX delivery (a domain's policy lists its MX hosts), not \
             to a smart host; use \"verify\" (PKIX and the host name) or \"dane\"",
        )),
        _ => Ok(()),
    }
}

/// `host`, `host:port`, `[v6]:port` or `v4:port`; port 25 when absent.
pub(crate) fn smarthost(
    v: &Spanned<String>,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<(String, u16), ConfigError> {
    let s = v.get_ref().trim();
    let bad = |why: &str| {
        cx.error(
            v.span(),
            key,
            format!("invalid smart host {s:?}: {why}; expected \"host:port\", e.g. \"smtp.example.net:587\""),
        )
    };
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok((ip.to_string(), 25));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number from 1 to 65535"))?,
        ),
        None => (s, 25),
    };
    if port == 0 {
        return Err(bad("port 0"));
    }
    check_hostname(host, false).map_err(|m| bad(&m))?;
    Ok((host.to_ascii_lowercase(), port))
}

/// AUTH credentials: both keys or neither, and only where the level forbids
/// plaintext (smtpc refuses AUTH without TLS; config says so first).
fn credentials(
    user: Option<&Spanned<String>>,
    password: Option<&Spanned<String>>,
    tls: TlsLevel,
    implicit_tls: bool,
    prefix: &str,
    names: (&str, &str),
    cx: &Ctx<'_>,
) -> Result<Option<Credentials>, ConfigError> {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match (user, password) {
        (None, None) => Ok(None),
        (Some(u), None) => Err(cx.error(
            u.span(),
            key(names.0),
            format!("{} is set but {} is not", names.0, names.1),
        )),
        (None, Some(p)) => Err(cx.error(
            p.span(),
            key(names.1),
            format!("{} is set but {} is not", names.1, names.0),
        )),
        (Some(u), Some(p)) => {
            if !implicit_tls && !tls.requires_tls() {
                return Err(cx.error(
                    u.span(),
                    key(names.0),
                    format!(
                        "AUTH needs an encrypted session, but tls = \"{tls}\" allows plaintext, \
                         where the password would cross the network in clear (RFC 4954 §4); \
                         set tls = \"required\" or \"verify\", or use implicit TLS"
                    ),
                ));
            }
            Ok(Some(Credentials {
                user: u.get_ref().clone(),
                password: p.get_ref().clone(),
            }))
        }
    }
}

/// A `[[route]]` with `maildir`: the template, the extension delimiter and
/// `create`; the network keys are refused (nothing leaves the host).
fn maildir_target(
    rr: &RawRoute,
    m: &Spanned<String>,
    prefix: &str,
    cx: &mut Ctx<'_>,
) -> Result<MaildirSettings, ConfigError> {
    for (k, span, why) in [
        (
            "smarthost",
            rr.smarthost.as_ref().map(Spanned::span),
            "a route delivers either into local Maildir folders or to a smart host, not both",
        ),
        (
            "tls",
            rr.tls.as_ref().map(Spanned::span),
            "TLS levels do not apply to local Maildir delivery: nothing crosses the network",
        ),
        (
            "ca_file",
            rr.ca_file.as_ref().map(Spanned::span),
            "trust anchors do not apply to local Maildir delivery: nothing crosses the network",
        ),
        (
            "implicit_tls",
            rr.implicit_tls.as_ref().map(Spanned::span),
            "only applies to a smart host, and this route delivers into local Maildir folders",
        ),
        (
            "auth_user",
            rr.auth_user.as_ref().map(Spanned::span),
            "only applies to a smart host, and this route delivers into local Maildir folders",
        ),
        (
            "auth_password",
            rr.auth_password.as_ref().map(Spanned::span),
            "only applies to a smart host, and this route delivers into local Maildir folders",
        ),
    ] {
        if let Some(span) = span {
            return Err(cx.error(span, format!("{prefix}.{k}"), why));
        }
    }
    let key = format!("{prefix}.maildir");
    let path = path_of(m, &key, cx)?;
    let text = path.to_str().ok_or_else(|| {
        cx.error(
            m.span(),
            &key,
            "the resolved path is not valid UTF-8; write an absolute path",
        )
    })?;
    let template = MaildirTemplate::parse(text).map_err(|why| {
        cx.error(
            m.span(),
            &key,
            format!("invalid Maildir template: {why}; e.g. \"/var/vmail/{{domain}}/{{user}}\""),
        )
    })?;
    if !template.has_user() {
        cx.warn(
            Some(m.span()),
            &key,
            "the template has no {user}: every recipient of these domains shares one Maildir",
        );
    }
    let recipient_delimiter = match &rr.recipient_delimiter {
        None => None,
        Some(d) => {
            let v = d.get_ref();
            // RFC 5321 atext minus what would confuse a path or an address.
            let ok = !v.is_empty()
                && v.chars().all(|c| {
                    c.is_ascii_punctuation() && !matches!(c, '@' | '"' | '/' | '\\' | '.')
                });
            if !ok {
                return Err(cx.error(
                    d.span(),
                    format!("{prefix}.recipient_delimiter"),
                    format!(
                        "{v:?} is not a delimiter; write one or more punctuation characters \
                         such as \"+\" or \"+-\" (not @, \", /, \\ or .)"
                    ),
                ));
            }
            Some(v.clone())
        }
    };
    Ok(MaildirSettings {
        template,
        recipient_delimiter,
        create: rr.create.as_ref().is_some_and(|b| *b.get_ref()),
    })
}

/// Builds the delivery and DNS settings.
pub(crate) fn build(
    raw: Option<Spanned<RawDelivery>>,
    routes: Option<Vec<Spanned<RawRoute>>>,
    dns: Option<Spanned<RawDns>>,
    data_dir: &Path,
    server_hostname: Option<&String>,
    cx: &mut Ctx<'_>,
) -> Result<(DeliverySettings, DnsSettings), ConfigError> {
    let mut s = DeliverySettings::new(data_dir);
    let raw_span = raw.as_ref().map(Spanned::span);
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    // Where `dane` is asked for: it needs a resolver that can authenticate.
    let mut dane_at: Option<(std::ops::Range<usize>, String)> = None;
    let mut note_dane = |v: Option<&Spanned<Pick<TlsLevel>>>, key: String| {
        if let Some(v) = v.filter(|v| v.get_ref().0 == TlsLevel::Dane) {
            dane_at.get_or_insert((v.span(), key));
        }
    };
    note_dane(r.tls.as_ref(), "delivery.tls".into());
    note_dane(r.relayhost_tls.as_ref(), "delivery.relayhost_tls".into());

    if let Some(h) = &r.hostname {
        check_hostname(h.get_ref(), false)
            .map_err(|m| cx.error(h.span(), "delivery.hostname", m))?;
        s.hostname = h.get_ref().to_ascii_lowercase();
    } else if let Some(h) = server_hostname {
        s.hostname = h.to_ascii_lowercase();
    }
    if let Some(v) = &r.tls {
        s.default_tls = v.get_ref().0;
        if s.default_tls == TlsLevel::None {
            cx.warn(
                Some(v.span()),
                "delivery.tls",
                "tls = \"none\": mail to every destination without a [[route]] is sent in \
                 plaintext, even to servers that offer STARTTLS",
            );
        }
    }
    if let Some(v) = &r.ca_file {
        s.ca_file = Some(path_of(v, "delivery.ca_file", cx)?);
    }
    if let Some(v) = &r.retry_schedule {
        if v.get_ref().is_empty() {
            return Err(cx.error(
                v.span(),
                "delivery.retry_schedule",
                "must list at least one delay",
            ));
        }
        let mut steps = Vec::new();
        for (i, d) in v.get_ref().iter().enumerate() {
            if d.get_ref().0.is_zero() {
                return Err(cx.error(
                    d.span(),
                    format!("delivery.retry_schedule[{i}]"),
                    "must be greater than zero",
                ));
            }
            steps.push(d.get_ref().0);
        }
        s.retry_schedule = steps;
    }
    s.max_lifetime = positive_duration(
        r.max_lifetime.as_ref(),
        s.max_lifetime,
        "delivery.max_lifetime",
        cx,
    )?;
    if let Some(v) = &r.delay_warning {
        s.delay_warning = v.get_ref().0;
        if let Some(d) = s.delay_warning {
            if d.is_zero() {
                return Err(cx.error(
                    v.span(),
                    "delivery.delay_warning",
                    "must be greater than zero, or \"off\"",
                ));
            }
            if d >= s.max_lifetime {
                cx.warn(
                    Some(v.span()),
                    "delivery.delay_warning",
                    format!(
                        "{} is not shorter than max_lifetime ({}): no delay warning will ever be sent",
                        format_duration(d),
                        format_duration(s.max_lifetime)
                    ),
                );
            }
        }
    }
    s.max_connections = count(
        r.max_connections.as_ref(),
        s.max_connections,
        "delivery.max_connections",
        cx,
    )?;
    s.max_connections_per_destination = count(
        r.max_connections_per_destination.as_ref(),
        s.max_connections_per_destination,
        "delivery.max_connections_per_destination",
        cx,
    )?;
    s.max_messages_per_connection = count(
        r.max_messages_per_connection.as_ref(),
        s.max_messages_per_connection,
        "delivery.max_messages_per_connection",
        cx,
    )?;
    s.connect_timeout = positive_duration(
        r.connect_timeout.as_ref(),
        s.connect_timeout,
        "delivery.connect_timeout",
        cx,
    )?;
    s.command_timeout = positive_duration(
        r.command_timeout.as_ref(),
        s.command_timeout,
        "delivery.command_timeout",
        cx,
    )?;
    if let Some(v) = &r.smtp_port {
        let p = u16::try_from(v.get_ref().0)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                cx.error(
                    v.span(),
                    "delivery.smtp_port",
                    "must be a port from 1 to 65535",
                )
            })?;
        s.smtp_port = p;
    }
    if let Some(v) = &r.upgrade_tls {
        s.upgrade_tls = *v.get_ref();
    }
    if let Some(v) = &r.mta_sts_cache {
        s.mta_sts_cache = match v.get_ref() {
            Transcript::Enabled(false) => None,
            Transcript::Enabled(true) => Some(data_dir.join("mta-sts")),
            Transcript::Path(p) => Some(path_of(
                &Spanned::new(v.span(), p.clone()),
                "delivery.mta_sts_cache",
                cx,
            )?),
        };
    }
    if let Some(v) = &r.outbound_tls {
        s.client_tls = outbound_tls(v.get_ref(), cx)?;
    }
    if let Some(v) = &r.badmail_dir {
        s.badmail_dir = path_of(v, "delivery.badmail_dir", cx)?;
    }
    if let Some(v) = &r.mail_log {
        s.mail_log = match v.get_ref() {
            Transcript::Enabled(false) => None,
            Transcript::Enabled(true) => Some(data_dir.join("log").join("mail.log")),
            Transcript::Path(p) => Some(path_of(
                &Spanned::new(v.span(), p.clone()),
                "delivery.mail_log",
                cx,
            )?),
        };
    }

    // The global relay host.
    if let Some(v) = &r.relayhost {
        let (host, port) = smarthost(v, "delivery.relayhost", cx)?;
        not_mta_sts_for_smarthost(r.relayhost_tls.as_ref(), "delivery.relayhost_tls", cx)?;
        let tls = r.relayhost_tls.as_ref().map(|t| t.get_ref().0);
        let implicit_tls = r
            .relayhost_implicit_tls
            .as_ref()
            .is_some_and(|b| *b.get_ref());
        let effective = tls.unwrap_or(s.default_tls);
        if implicit_tls && effective == TlsLevel::None {
            let span = r
                .relayhost_tls
                .as_ref()
                .map_or_else(|| v.span(), Spanned::span);
            return Err(cx.error(
                span,
                "delivery.relayhost_tls",
                "\"none\" contradicts relayhost_implicit_tls = true",
            ));
        }
        let auth = credentials(
            r.relayhost_user.as_ref(),
            r.relayhost_password.as_ref(),
            effective,
            implicit_tls,
            "delivery",
            ("relayhost_user", "relayhost_password"),
            cx,
        )?;
        s.relayhost = Some(SmartHost {
            host,
            port,
            implicit_tls,
            auth,
        });
        s.relayhost_tls = tls;
    } else {
        for (k, span) in [
            ("relayhost_tls", r.relayhost_tls.as_ref().map(Spanned::span)),
            (
                "relayhost_implicit_tls",
                r.relayhost_implicit_tls.as_ref().map(Spanned::span),
            ),
            (
                "relayhost_user",
                r.relayhost_user.as_ref().map(Spanned::span),
            ),
            (
                "relayhost_password",
                r.relayhost_password.as_ref().map(Spanned::span),
            ),
        ] {
            if let Some(span) = span {
                return Err(cx.error(
                    span,
                    format!("delivery.{k}"),
                    "has no effect without delivery.relayhost",
                ));
            }
        }
    }

    // [[route]]
    for (i, route) in routes.unwrap_or_default().into_iter().enumerate() {
        let prefix = format!("route[{i}]");
        let rr = route.get_ref();
        if rr.domains.get_ref().is_empty() {
            return Err(cx.error(
                rr.domains.span(),
                format!("{prefix}.domains"),
                "must list at least one domain pattern",
            ));
        }
        let mut domains = Vec::new();
        let seals = rr.arc_seal.as_ref().is_some_and(|v| *v.get_ref());
        for (j, d) in rr.domains.get_ref().iter().enumerate() {
            let key = format!("{prefix}.domains[{j}]");
            let p = DomainPattern::parse(d.get_ref()).map_err(|m| cx.error(d.span(), &key, m))?;
            if seals {
                s.arc_seal_domains.push(p.to_string());
            }
            match &p {
                DomainPattern::Exact(n) | DomainPattern::Subdomains(n) => {
                    check_hostname(n, false).map_err(|m| cx.error(d.span(), &key, m))?;
                }
                DomainPattern::Any => {}
            }
            domains.push(p);
        }
        note_dane(rr.tls.as_ref(), format!("{prefix}.tls"));
        let tls = rr.tls.as_ref().map(|t| t.get_ref().0);
        let effective = tls.unwrap_or(s.default_tls);
        if let (Some(t), Some(TlsLevel::None)) = (&rr.tls, tls) {
            cx.warn(
                Some(t.span()),
                format!("{prefix}.tls"),
                "tls = \"none\": mail for these domains is sent in plaintext even when the \
                 server offers STARTTLS",
            );
        }
        let implicit_tls = rr.implicit_tls.as_ref().is_some_and(|b| *b.get_ref());
        let target = if let Some(m) = &rr.maildir {
            RouteTarget::Maildir(maildir_target(rr, m, &prefix, cx)?)
        } else if let Some(h) = &rr.smarthost {
            let (host, port) = smarthost(h, &format!("{prefix}.smarthost"), cx)?;
            not_mta_sts_for_smarthost(rr.tls.as_ref(), &format!("{prefix}.tls"), cx)?;
            if implicit_tls && effective == TlsLevel::None {
                let span = rr.tls.as_ref().map_or_else(|| h.span(), Spanned::span);
                return Err(cx.error(
                    span,
                    format!("{prefix}.tls"),
                    "\"none\" contradicts implicit_tls = true",
                ));
            }
            let auth = credentials(
                rr.auth_user.as_ref(),
                rr.auth_password.as_ref(),
                effective,
                implicit_tls,
                &prefix,
                ("auth_user", "auth_password"),
                cx,
            )?;
            RouteTarget::SmartHost(SmartHost {
                host,
                port,
                implicit_tls,
                auth,
            })
        } else {
            for (k, span) in [
                (
                    "recipient_delimiter",
                    rr.recipient_delimiter.as_ref().map(Spanned::span),
                ),
                ("create", rr.create.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    return Err(cx.error(
                        span,
                        format!("{prefix}.{k}"),
                        "only applies to local delivery: set maildir = \"/var/vmail/{domain}/{user}\" too",
                    ));
                }
            }
            for (k, span) in [
                ("implicit_tls", rr.implicit_tls.as_ref().map(Spanned::span)),
                ("auth_user", rr.auth_user.as_ref().map(Spanned::span)),
                (
                    "auth_password",
                    rr.auth_password.as_ref().map(Spanned::span),
                ),
            ] {
                if let Some(span) = span {
                    return Err(cx.error(
                        span,
                        format!("{prefix}.{k}"),
                        "only applies to a smart host: set smarthost = \"host:port\" too",
                    ));
                }
            }
            RouteTarget::Mx
        };
        let ca_file = match &rr.ca_file {
            Some(p) => Some(path_of(p, &format!("{prefix}.ca_file"), cx)?),
            None => None,
        };
        s.routes.push(RouteSettings {
            domains,
            target,
            tls,
            ca_file,
            origin: prefix,
        });
    }
    if s.max_connections_per_destination > s.max_connections {
        cx.warn(
            raw_span,
            "delivery.max_connections_per_destination",
            format!(
                "{} is more than max_connections ({}): the total limit applies first",
                s.max_connections_per_destination, s.max_connections
            ),
        );
    }

    let dns = dns_settings(dns, cx)?;
    if let Some((span, key)) = dane_at
        && dns.dnssec == DnssecMode::Off
    {
        // RFC 7672 §2.2: only DNSSEC-authenticated TLSA records count;
        // with `off` none ever does and every delivery would defer.
        return Err(cx.error(
            span,
            key,
            "\"dane\" needs DNSSEC-authenticated answers, but [dns] dnssec = \"off\"; set \
                 dnssec = \"trust-ad-bit\" (a local validating resolver) or \"validate\"",
        ));
    }
    Ok((s, dns))
}

fn dns_settings(raw: Option<Spanned<RawDns>>, cx: &Ctx<'_>) -> Result<DnsSettings, ConfigError> {
    let mut d = DnsSettings::default();
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return Ok(d);
    };
    for (i, ns) in raw.nameservers.unwrap_or_default().iter().enumerate() {
        let key = format!("dns.nameservers[{i}]");
        let text = ns.get_ref().trim();
        let addr = text
            .parse::<SocketAddr>()
            .or_else(|_| text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| {
                cx.error(
                    ns.span(),
                    &key,
                    format!("invalid name server {text:?}; expected an IP address, optionally with a port (\"127.0.0.1:53\")"),
                )
            })?;
        d.nameservers.push(addr);
    }
    if let Some(m) = &raw.dnssec {
        d.dnssec = m.get_ref().0;
    }
    d.timeout = positive_duration(raw.timeout.as_ref(), d.timeout, "dns.timeout", cx)?;
    d.attempts = count(raw.attempts.as_ref(), d.attempts, "dns.attempts", cx)?;
    for (i, st) in raw.statics.unwrap_or_default().iter().enumerate() {
        let prefix = format!("dns.static[{i}]");
        let st = st.get_ref();
        let name = st
            .name
            .get_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        check_hostname(&name, false)
            .map_err(|m| cx.error(st.name.span(), format!("{prefix}.name"), m))?;
        let mut entry = StaticEntry {
            name,
            a: Vec::new(),
            mx: Vec::new(),
        };
        for (j, a) in st.a.as_deref().unwrap_or_default().iter().enumerate() {
            let ip = a.get_ref().trim().parse::<IpAddr>().map_err(|_| {
                cx.error(
                    a.span(),
                    format!("{prefix}.a[{j}]"),
                    format!("{:?} is not an IPv4 or IPv6 address", a.get_ref()),
                )
            })?;
            entry.a.push(ip);
        }
        for (j, mx) in st.mx.as_deref().unwrap_or_default().iter().enumerate() {
            let key = format!("{prefix}.mx[{j}]");
            let text = mx.get_ref().trim();
            let bad = || {
                cx.error(
                    mx.span(),
                    &key,
                    format!("invalid MX {text:?}; expected \"preference host\", e.g. \"10 mail.example.com\" (\"0 .\" is a null MX)"),
                )
            };
            let (pref, host) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
            let pref: u16 = pref.parse().map_err(|_| bad())?;
            let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if !host.is_empty() {
                check_hostname(&host, false).map_err(|m| cx.error(mx.span(), &key, m))?;
            }
            entry.mx.push((
                pref,
                if host.is_empty() {
                    ".".to_owned()
                } else {
                    host
                },
            ));
        }
        if entry.a.is_empty() && entry.mx.is_empty() {
            return Err(cx.error(
                st.name.span(),
                format!("{prefix}.name"),
                "a static entry needs `a` or `mx` (or both)",
            ));
        }
        d.overrides.push(entry);
    }
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::load;
    use std::path::Path;
    use std::time::Duration;

    use postern_delivery::{DomainPattern, RouteTarget, TlsLevel};

    fn error(extra: &str) -> String {
        load(extra).unwrap_err().to_string()
    }

    #[test]
    fn defaults_without_tables() {
        let c = load("").unwrap().config;
        let d = &c.delivery;
        assert_eq!(d.hostname, "mx.example.com");
        assert_eq!(d.default_tls, TlsLevel::Opportunistic);
        assert_eq!(d.retry_schedule.len(), 5);
        assert_eq!(d.max_lifetime, Duration::from_hours(120));
        assert_eq!(d.delay_warning, Some(Duration::from_hours(4)));
        assert_eq!(d.max_connections, 100);
        assert_eq!(d.max_connections_per_destination, 20);
        assert_eq!(d.badmail_dir, Path::new("/var/lib/postern/badmail"));
        assert_eq!(
            d.mail_log.as_deref(),
            Some(Path::new("/var/lib/postern/log/mail.log"))
        );
        assert!(d.routes.is_empty() && d.relayhost.is_none());
        assert!(c.dns.overrides.is_empty());
    }

    #[test]
    fn full_tables() {
        let c = load(
            "[delivery]\ntls = \"required\"\nretry_schedule = [\"1m\", \"2h\"]\nmax_lifetime = \"48h\"\n\
             delay_warning = \"off\"\nrelayhost = \"[2001:db8::1]:587\"\nrelayhost_tls = \"verify\"\n\
             relayhost_user = \"u\"\nrelayhost_password = \"p\"\nmail_log = false\n\n\
             [[route]]\ndomains = [\"Fabrikam.com\", \".fabrikam.com\"]\ntls = \"opportunistic\"\n\n\
             [[route]]\ndomains = [\"*\"]\nsmarthost = \"relay.example.net\"\nimplicit_tls = true\nca_file = \"ca.pem\"\n\n\
             [dns]\nnameservers = [\"127.0.0.1\", \"[::1]:5353\"]\ndnssec = \"validate\"\n\n\
             [[dns.static]]\nname = \"fabrikam.com\"\nmx = [\"10 mail.fabrikam.com\"]\n\n\
             [[dns.static]]\nname = \"mail.fabrikam.com.\"\na = [\"203.0.113.11\"]\n\n\
             [[dns.static]]\nname = \"nomail.example\"\nmx = [\"0 .\"]\n",
        )
        .unwrap()
        .config;
        let d = &c.delivery;
        assert_eq!(d.default_tls, TlsLevel::Required);
        assert_eq!(
            d.retry_schedule,
            [Duration::from_mins(1), Duration::from_hours(2)]
        );
        assert_eq!(d.delay_warning, None);
        assert_eq!(d.mail_log, None);
        let relay = d.relayhost.as_ref().unwrap();
        assert_eq!((relay.host.as_str(), relay.port), ("2001:db8::1", 587));
        assert_eq!(relay.auth.as_ref().unwrap().user, "u");
        assert_eq!(d.relayhost_tls, Some(TlsLevel::Verify));
        assert_eq!(d.routes.len(), 2);
        assert_eq!(
            d.routes[0].domains[0],
            DomainPattern::Exact("fabrikam.com".into())
        );
        assert_eq!(d.routes[0].origin, "route[0]");
        let RouteTarget::SmartHost(h) = &d.routes[1].target else {
            panic!()
        };
        assert_eq!(
            (h.host.as_str(), h.port, h.implicit_tls),
            ("relay.example.net", 25, true)
        );
        assert_eq!(
            d.routes[1].ca_file.as_deref(),
            Some(Path::new("/etc/postern/ca.pem"))
        );
        assert_eq!(c.dns.nameservers.len(), 2);
        assert_eq!(c.dns.nameservers[0].port(), 53);
        assert_eq!(
            c.dns.overrides[0].mx,
            [(10, "mail.fabrikam.com".to_owned())]
        );
        assert_eq!(c.dns.overrides[1].name, "mail.fabrikam.com");
        assert_eq!(c.dns.overrides[2].mx, [(0, ".".to_owned())]);
    }

    #[test]
    fn errors_point_at_the_key() {
        assert_eq!(
            error(
                "[[route]]\ndomains = [\"a.example\"]\ntls = \"dane\"\n[dns]\ndnssec = \"off\"\n"
            ),
            "postern.toml:13:7: route[0].tls: \"dane\" needs DNSSEC-authenticated answers, but \
             [dns] dnssec = \"off\"; set dnssec = \"trust-ad-bit\" (a local validating resolver) or \
             \"validate\""
        );
        assert!(
            error("[[route]]\ndomains = [\"a.example\"]\nsmarthost = \"relay.example:25\"\ntls = \"mta-sts\"\n")
                .starts_with("postern.toml:14:7: route[0].tls: \"mta-sts\" applies to MX delivery")
        );
        // Both levels are accepted where they can be met.
        let d = load(
            "[delivery]\nupgrade_tls = false\nmta_sts_cache = false\n[[route]]\ndomains = [\"a.example\"]\n\
             tls = \"dane\"\n[[route]]\ndomains = [\"b.example\"]\ntls = \"mta-sts\"\n",
        )
        .unwrap()
        .config
        .delivery;
        let o = load(
            "[delivery.outbound_tls]\nmin_version = \"1.3\"\ncipher_suites = [\"TLS_AES_256_GCM_SHA384\"]\n\
             resumption = false\nclient_cert = \"c.pem\"\nclient_key = \"k.pem\"\n",
        )
        .unwrap()
        .config
        .delivery
        .client_tls;
        assert_eq!(o.min_version, postern_tls::TlsVersion::Tls13);
        assert_eq!(o.cipher_suites, vec![0x1302]);
        assert!(!o.resumption);
        assert!(o.client_cert.unwrap().key_path.ends_with("k.pem"));
        assert!(
            error("[delivery.outbound_tls]\nclient_cert = \"c.pem\"\n")
                .ends_with("delivery.outbound_tls: client_cert and client_key go together: set both (PEM files) or neither")
        );
        assert!(
            error("[delivery.outbound_tls]\nmin_version = \"1.3\"\nmax_version = \"1.2\"\n").ends_with(
                "delivery.outbound_tls.min_version: min_version \"1.3\" is above max_version \"1.2\""
            )
        );
        assert!(
            error("[delivery.outbound_tls]\ncipher_suites = [\"RC4-MD5\"]\n")
                .contains("delivery.outbound_tls.cipher_suites[0]: ")
        );
        assert_eq!(d.routes[0].tls, Some(TlsLevel::Dane));
        assert_eq!(d.routes[1].tls, Some(TlsLevel::MtaSts));
        assert!(!d.upgrade_tls);
        assert_eq!(d.mta_sts_cache, None);
        assert_eq!(
            error("[[route]]\ndomains = [\"a.example\"]\ntls = \"sometimes\"\n"),
            "postern.toml:13:7: route[0].tls: unknown value \"sometimes\"; allowed: \"none\", \
             \"opportunistic\", \"opportunistic-strict\", \"required\", \"verify\", \"dane\", \"mta-sts\""
        );
        assert!(
            error("[[route]]\ndomains = [\"*.a.example\"]\n")
                .starts_with("postern.toml:12:12: route[0].domains[0]: ")
        );
        let e = error(
            "[[route]]\ndomains = [\"a.example\"]\nsmarthost = \"h.example:587\"\nauth_user = \"u\"\nauth_password = \"hunter2\"\n",
        );
        assert!(
            e.starts_with(
                "postern.toml:14:13: route[0].auth_user: AUTH needs an encrypted session"
            ),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
        assert_eq!(
            error("[[route]]\ndomains = [\"a.example\"]\nauth_user = \"u\"\n"),
            "postern.toml:13:13: route[0].auth_user: only applies to a smart host: set smarthost = \"host:port\" too"
        );
        assert!(
            error("[delivery]\nrelayhost = \"h.example:99999\"\n")
                .contains("delivery.relayhost: invalid smart host")
        );
        assert!(
            error("[delivery]\nrelayhost_tls = \"verify\"\n")
                .contains("has no effect without delivery.relayhost")
        );
        assert!(
            error("[delivery]\nretry_schedule = []\n")
                .contains("delivery.retry_schedule: must list at least one delay")
        );
        assert!(
            error("[delivery]\ndelay_warning = \"soon\"\n").contains("delivery.delay_warning: ")
        );
        assert!(
            error("[[dns.static]]\nname = \"x.example\"\nmx = [\"mail.x.example\"]\n")
                .contains("dns.static[0].mx[0]: invalid MX")
        );
        assert!(
            error("[[dns.static]]\nname = \"x.example\"\na = [\"1.2.3\"]\n")
                .contains("dns.static[0].a[0]: ")
        );
        assert!(
            error("[dns]\nnameservers = [\"localhost\"]\n")
                .contains("dns.nameservers[0]: invalid name server")
        );
        assert!(error("[delivery]\nmax_lifetime = \"5days\"\n").contains("delivery.max_lifetime"));
    }

    #[test]
    fn maildir_routes() {
        let l = load(
            "[[route]]\ndomains = [\"example.com\"]\nmaildir = \"vmail/{domain}/{user}/\"\n\
             recipient_delimiter = \"+-\"\ncreate = true\n\n\
             [[route]]\ndomains = [\"shared.example\"]\nmaildir = \"/srv/mail/shared\"\n",
        )
        .unwrap();
        let d = &l.config.delivery;
        let RouteTarget::Maildir(m) = &d.routes[0].target else {
            panic!("{:?}", d.routes[0].target)
        };
        // Relative to the configuration file's folder, like every path.
        assert_eq!(m.template.to_string(), "/etc/postern/vmail/{domain}/{user}");
        assert_eq!(m.template.prefix(), Path::new("/etc/postern/vmail"));
        assert_eq!(m.recipient_delimiter.as_deref(), Some("+-"));
        assert!(m.create);
        assert_eq!(d.routes[0].tls, None);
        let RouteTarget::Maildir(shared) = &d.routes[1].target else {
            panic!()
        };
        assert!(!shared.create && shared.recipient_delimiter.is_none());
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("route[1].maildir") && w.contains("shares one Maildir")),
            "{w:?}"
        );
        // example.com is accepted by [relay]; shared.example is not.
        assert!(
            w.iter().any(|w| w.contains("route[1].domains")
                && w.contains("mail for shared.example is delivered into Maildir, but [relay] accepted_domains does not list it")),
            "{w:?}"
        );
        assert!(!w.iter().any(|w| w.contains("route[0].domains")), "{w:?}");
    }

    #[test]
    fn maildir_excludes_the_network_keys() {
        let base =
            "[[route]]\ndomains = [\"example.com\"]\nmaildir = \"/var/vmail/{domain}/{user}\"\n";
        let e = |extra: &str| error(&format!("{base}{extra}"));
        assert_eq!(
            e("smarthost = \"exchange.corp.example:25\"\n"),
            "postern.toml:14:13: route[0].smarthost: a route delivers either into local Maildir \
             folders or to a smart host, not both"
        );
        assert_eq!(
            e("tls = \"verify\"\n"),
            "postern.toml:14:7: route[0].tls: TLS levels do not apply to local Maildir delivery: \
             nothing crosses the network"
        );
        assert!(e("ca_file = \"ca.pem\"\n").starts_with("postern.toml:14:11: route[0].ca_file: "),);
        for k in [
            "implicit_tls = true",
            "auth_user = \"u\"",
            "auth_password = \"p\"",
        ] {
            let msg = e(&format!("{k}\n"));
            assert!(
                msg.starts_with("postern.toml:14:")
                    && msg.ends_with("only applies to a smart host, and this route delivers into local Maildir folders"),
                "{msg}"
            );
            assert!(!msg.contains("hunter2"));
        }
        assert_eq!(
            error("[[route]]\ndomains = [\"example.com\"]\ncreate = true\n"),
            "postern.toml:13:10: route[0].create: only applies to local delivery: set maildir = \
             \"/var/vmail/{domain}/{user}\" too"
        );
        assert!(
            error("[[route]]\ndomains = [\"example.com\"]\nrecipient_delimiter = \"+\"\n")
                .starts_with("postern.toml:13:23: route[0].recipient_delimiter: only applies to local delivery")
        );
        for bad in ["\"\"", "\"a\"", "\"@\"", "\"/\"", "\".\""] {
            let msg = e(&format!("recipient_delimiter = {bad}\n"));
            assert!(
                msg.starts_with("postern.toml:14:23: route[0].recipient_delimiter: ")
                    && msg.contains("is not a delimiter"),
                "{bad}: {msg}"
            );
        }
        let t = |tpl: &str| {
            error(&format!(
                "[[route]]\ndomains = [\"example.com\"]\nmaildir = \"{tpl}\"\n"
            ))
        };
        let msg = t("/var/vmail/{name}");
        assert!(
            msg.starts_with("postern.toml:13:11: route[0].maildir: invalid Maildir template: ")
                && msg.contains("{user}"),
            "{msg}"
        );
        assert!(t("/var/vmail/{domain}/../{user}").contains("\"..\""));
        assert!(t("").contains("route[0].maildir: must not be empty"));
    }

    #[test]
    fn warnings_for_plaintext() {
        let l = load("[delivery]\ntls = \"none\"\ndelay_warning = \"200h\"\n\n[[route]]\ndomains = [\"old.example\"]\ntls = \"none\"\n").unwrap();
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("delivery.tls") && w.contains("plaintext")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("route[0].tls") && w.contains("plaintext")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("no delay warning will ever be sent")),
            "{w:?}"
        );
    }
}

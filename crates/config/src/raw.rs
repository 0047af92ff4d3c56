//! The file as written: serde structs mirroring postern.toml one to one.
//!
//! Every table denies unknown keys, and every value the validator may complain
//! about is `Spanned` so the complaint can point at it. Scalars with a syntax of
//! their own (sizes, durations, enumerations, TLS versions) are checked here, in
//! `Deserialize`, so the toml deserializer attaches the value's span and
//! serde_path_to_error the key path. Checks that need more than one value live
//! in `build`.
//!
//! # Security
//! Parses operator input; nothing here touches the filesystem or the network.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use postern_smtpd::{AuthMode, ListenerKind, TlsMode, TranscriptFormat, VrfyMode};
use postern_tls::TlsVersion;

use crate::units;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawConfig {
    pub data_dir: Spanned<String>,
    pub hostname: Option<Spanned<String>>,
    pub listener: Option<Spanned<Vec<Spanned<RawListener>>>>,
    pub limits: Option<Spanned<RawLimits>>,
    pub tls: Option<Spanned<RawTls>>,
    pub relay: Option<Spanned<RawRelay>>,
    pub user: Option<Vec<Spanned<RawUser>>>,
    pub smtp: Option<RawSmtp>,
    pub log: Option<RawLog>,
    pub danger: Option<RawDanger>,
    pub delivery: Option<Spanned<crate::delivery::RawDelivery>>,
    pub route: Option<Vec<Spanned<crate::delivery::RawRoute>>>,
    pub dns: Option<Spanned<crate::delivery::RawDns>>,
    pub pickup: Option<Spanned<crate::pickup::RawPickup>>,
    pub admin: Option<Spanned<crate::admin::RawAdmin>>,
    pub spool: Option<Spanned<crate::spool::RawSpool>>,
    pub sender_group: Option<Vec<Spanned<crate::gateway::RawSenderGroup>>>,
    pub mail_flow_policy: Option<Vec<Spanned<crate::gateway::RawMailFlowPolicy>>>,
    pub dns_list: Option<Vec<Spanned<crate::gateway::RawDnsList>>>,
    pub greylist: Option<Spanned<crate::gateway::RawGreylist>>,
    pub auth_ban: Option<Spanned<crate::gateway::RawAuthBan>>,
    pub counters: Option<Spanned<crate::counters::RawCounters>>,
    pub recipients: Option<Vec<Spanned<crate::recipients::RawRecipients>>>,
    pub authentication: Option<Spanned<crate::authentication::RawAuthentication>>,
    pub dkim: Option<Vec<Spanned<crate::authentication::RawDkim>>>,
    pub dmarc_reports: Option<Spanned<crate::dmarc_reports::RawDmarcReports>>,
    pub tracking: Option<Spanned<crate::tracking::RawTracking>>,
    pub quarantine: Option<Vec<Spanned<crate::quarantine::RawQuarantine>>>,
    pub filters: Option<Spanned<crate::filters::RawFilters>>,
    pub dictionary: Option<Vec<Spanned<crate::filters::RawDictionary>>>,
    pub notification: Option<Vec<Spanned<crate::filters::RawNotification>>>,
    pub rspamd: Option<Spanned<crate::engines::RawRspamd>>,
    pub clamav: Option<Spanned<crate::engines::RawClamav>>,
    pub milter: Option<Vec<Spanned<crate::engines::RawMilter>>>,
}

/// `[[listener]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawListener {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    pub kind: Spanned<Pick<ListenerKind>>,
    pub hostname: Option<Spanned<String>>,
    pub tls: Option<Spanned<Pick<TlsMode>>>,
    pub auth: Option<Spanned<Pick<AuthMode>>>,
    pub limits: Option<Spanned<RawLimits>>,
    pub proxy_protocol: Option<Spanned<bool>>,
    pub trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub proxy_timeout: Option<Spanned<Dur>>,
}

/// `[limits]` and `[listener.limits]` (the last two keys are server-wide and
/// refused in a listener by `build`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLimits {
    pub max_command_line: Option<Spanned<Count>>,
    pub max_local_part: Option<Spanned<Count>>,
    pub max_domain: Option<Spanned<Count>>,
    pub max_text_line: Option<Spanned<Count>>,
    pub max_message_size: Option<Spanned<Size>>,
    pub max_recipients: Option<Spanned<Count>>,
    pub max_errors: Option<Spanned<Count>>,
    pub max_auth_failures: Option<Spanned<Count>>,
    pub command_timeout: Option<Spanned<Dur>>,
    pub data_timeout: Option<Spanned<Dur>>,
    pub min_data_rate: Option<Spanned<Count>>,
    pub write_timeout: Option<Spanned<Dur>>,
    pub tls_handshake_timeout: Option<Spanned<Dur>>,
    pub max_connections: Option<Spanned<Count>>,
    pub max_connections_per_ip: Option<Spanned<Count>>,
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTls {
    pub min_version: Option<Spanned<Version>>,
    pub max_version: Option<Spanned<Version>>,
    pub cipher_suites: Option<Spanned<Vec<Spanned<NameOrId>>>>,
    pub groups: Option<Spanned<Vec<Spanned<NameOrId>>>>,
    pub session_tickets: Option<bool>,
    pub certificate: Option<Vec<Spanned<RawCert>>>,
}

/// `[[tls.certificate]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCert {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    pub hostnames: Option<Vec<Spanned<String>>>,
}

/// `[relay]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRelay {
    pub accepted_domains: Option<Vec<Spanned<String>>>,
    pub relay_networks: Option<Vec<Spanned<String>>>,
}

/// `[[user]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUser {
    pub name: Spanned<String>,
    pub password_hash: Spanned<String>,
    pub senders: Option<Vec<Spanned<String>>>,
}

/// `[smtp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSmtp {
    pub vrfy: Option<Pick<VrfyMode>>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawLog {
    pub level: Option<Pick<LogLevel>>,
    pub transcript: Option<Spanned<Transcript>>,
    pub transcript_format: Option<Pick<TranscriptFormat>>,
}

/// `[danger]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDanger {
    pub allow_insecure_auth: Option<Spanned<bool>>,
    pub allow_open_relay: Option<Spanned<bool>>,
}

// ---------------------------------------------------------------------------
// Scalars

/// An enumeration written as one of a fixed set of strings.
pub(crate) trait Choice: Sized + Copy + 'static {
    /// Spellings and values, in the order error messages list them.
    const CHOICES: &'static [(&'static str, Self)];

    /// The spelling of `self`.
    fn name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::CHOICES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }
}

/// `"a", "b", "c"`: the allowed spellings, quoted, for messages.
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value of a [`Choice`] enumeration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pick<T>(pub T);

impl<'de, T: Choice> Deserialize<'de> for Pick<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: Choice> Visitor<'_> for V<T> {
            type Value = Pick<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "one of {}",
                    quoted_list(T::CHOICES.iter().map(|(n, _)| *n))
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Pick<T>, E> {
                T::CHOICES
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, v)| Pick(*v))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown value {s:?}; allowed: {}",
                            quoted_list(T::CHOICES.iter().map(|(n, _)| *n))
                        ))
                    })
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

impl Choice for ListenerKind {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("smtp", Self::Smtp),
        ("submission", Self::Submission),
        ("submissions", Self::Submissions),
    ];
}

impl Choice for TlsMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("optional", Self::Optional),
        ("required", Self::Required),
    ];
}

impl Choice for AuthMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("offered", Self::Offered),
        ("required", Self::Required),
    ];
}

impl Choice for VrfyMode {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("ambiguous", Self::Ambiguous), ("disabled", Self::Disabled)];
}

impl Choice for TranscriptFormat {
    const CHOICES: &'static [(&'static str, Self)] = &[("text", Self::Text), ("json", Self::Json)];
}

/// `[log] level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Choice for LogLevel {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("error", Self::Error),
        ("warn", Self::Warn),
        ("info", Self::Info),
        ("debug", Self::Debug),
        ("trace", Self::Trace),
    ];
}

/// A non-negative integer (octets, counts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
                Ok(Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                u64::try_from(n)
                    .map(Count)
                    .map_err(|_| E::custom(format!("{n} is negative; expected a whole number")))
            }
        }
        d.deserialize_u64(V)
    }
}

/// A size in octets: `"25MiB"` or an integer number of bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", units::SIZE_HELP)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size)
                    .map_err(|_| E::custom(format!("{n} is negative; expected a size")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                units::parse_size(s).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration with a unit: `"30s"`, `"5m"`, `"1h"`, `"1500ms"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration string: {}", units::DURATION_HELP)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" for {n} seconds; allowed: {}",
                    units::DURATION_HELP
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "invalid duration {n}; allowed: {}",
                        units::DURATION_HELP
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                units::parse_duration(s).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A TLS protocol version, `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version(pub TlsVersion);

/// Why each legacy protocol is refused, keyed by the spellings people use.
const LEGACY_VERSIONS: &[(&[&str], &str)] = &[
    (&["ssl3", "sslv3", "ssl3.0", "3.0"], "SSL 3.0"),
    (
        &["1.0", "1", "tls1", "tls1.0", "tlsv1", "tlsv1.0"],
        "TLS 1.0",
    ),
    (&["1.1", "tls1.1", "tlsv1.1"], "TLS 1.1"),
];

fn legacy_version_error(name: &str) -> String {
    format!(
        "{name} is not supported: rustls does not implement SSL 3.0, TLS 1.0 or TLS 1.1, \
         and they are insecure (RFC 8996 deprecates TLS 1.0 and 1.1; RFC 7568 SSL 3.0); \
         allowed: \"1.2\", \"1.3\""
    )
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"1.2\" or \"1.3\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Version, E> {
                match s {
                    "1.2" => return Ok(Version(TlsVersion::Tls12)),
                    "1.3" => return Ok(Version(TlsVersion::Tls13)),
                    _ => {}
                }
                let lower = s.to_ascii_lowercase();
                let lower = lower.replace([' ', '_'], "");
                if let Some((_, name)) = LEGACY_VERSIONS
                    .iter()
                    .find(|(spellings, _)| spellings.contains(&lower.as_str()))
                {
                    return Err(E::custom(legacy_version_error(name)));
                }
                Err(E::custom(format!(
                    "unknown value {s:?}; allowed: \"1.2\", \"1.3\""
                )))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Version, E> {
                // `min_version = 1.2` is a TOML float; say how to write it.
                Err(E::custom(format!(
                    "TLS versions are strings: write \"{f}\" in quotes; allowed: \"1.2\", \"1.3\""
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Version, E> {
                Err(E::custom(format!(
                    "TLS versions are strings: write \"{n}\" in quotes; allowed: \"1.2\", \"1.3\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A cipher suite or group: a name, or its id as a string or an integer.
#[derive(Debug, Clone)]
pub(crate) struct NameOrId(pub String);

impl<'de> Deserialize<'de> for NameOrId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NameOrId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name (\"TLS_AES_128_GCM_SHA256\") or an id (\"0x1301\")")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NameOrId, E> {
                Ok(NameOrId(s.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<NameOrId, E> {
                Ok(NameOrId(n.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<NameOrId, E> {
                Ok(NameOrId(n.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[log] transcript`: `true`, `false`, or a file path.
#[derive(Debug, Clone)]
pub(crate) enum Transcript {
    Enabled(bool),
    Path(String),
}

impl<'de> Deserialize<'de> for Transcript {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Transcript;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a file path")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Transcript, E> {
                Ok(Transcript::Enabled(b))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Transcript, E> {
                Ok(Transcript::Path(s.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

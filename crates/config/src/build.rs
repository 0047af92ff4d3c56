//! From the file as written ([`crate::raw`]) to the settings each crate takes,
//! checking everything that needs more than one value or knowledge of the
//! other crates, and collecting security warnings.
//!
//! # Security
//! This is where "never relay by accident" and "never send passwords in clear"
//! are enforced for the configuration: an open relay network or AUTH without
//! TLS is refused unless the operator spells it out in `[danger]`, and every
//! `[danger]` key that is set becomes a warning logged at each start.
//! Password hashes are checked but never echoed in messages (a plaintext
//! password pasted there by mistake must not reach a log).
//!
//! # Standards
//! RFC 5321 §4.5.3.1 (size limits, which may only be raised), §4.5.3.2.7
//! (5-minute server timeout); RFC 8314 (implicit TLS for submission);
//! RFC 8996 (no TLS 1.0/1.1); RFC 4954 §4 (AUTH over an encrypted channel).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use postern_policy::RelaySettings;
use postern_smtpd::{
    AuthMode, ListenerKind, ListenerSettings, ServerSettings, SessionLimits, TlsMode,
    TranscriptFormat, TranscriptSettings, User, VrfyMode,
};
use postern_tls::{CertSettings, TlsSettings, TlsVersion};

use crate::error::{ConfigError, ErrorKind, Location, Warning};
use crate::raw::{
    Choice, LogLevel, RawCert, RawConfig, RawDanger, RawLimits, RawListener, RawRelay, RawTls,
    RawUser, Transcript,
};
use crate::units::format_duration;
use crate::{Config, DangerSettings, LogSettings};

/// RFC 5321 §4.5.3.2.7: the server should wait at least 5 minutes for a command.
const RFC_COMMAND_TIMEOUT: Duration = Duration::from_mins(5);

/// `[limits] max_connections` and `max_connections_per_ip` defaults (the
/// documented defaults of `ServerSettings`).
const DEFAULT_MAX_CONNECTIONS: usize = 1000;
const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 20;

/// Relay networks wider than these get a warning.
const WIDE_V4_PREFIX: u8 = 16;
const WIDE_V6_PREFIX: u8 = 48;

/// State shared by the checks: the source (for locations), the warnings, and
/// the errors of the sections checked so far.
pub(crate) struct Ctx<'a> {
    pub src: &'a str,
    pub origin: &'a str,
    pub base_dir: &'a Path,
    pub warnings: Vec<Warning>,
    pub errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    /// The value, or `None` after recording the error (so the other sections
    /// are still checked and every error of the file reported in one run).
    pub(crate) fn keep<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    pub(crate) fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(
            ErrorKind::Invalid,
            self.origin,
            Some(Location::of(self.src, span)),
            key,
            message,
        )
    }

    pub(crate) fn warn(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let location = span.map(|s| Location::of(self.src, s));
        self.warnings
            .push(Warning::new(self.origin, location, key, message));
    }

    /// A path from the file, relative to the config file's directory.
    fn path(&self, value: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let s = value.get_ref();
        if s.trim().is_empty() {
            return Err(self.error(value.span(), key, "must not be empty"));
        }
        Ok(resolve(self.base_dir, s))
    }
}

/// `s` relative to `base` (absolute `s` as is), without `.` components.
pub(crate) fn resolve(base: &Path, s: &str) -> PathBuf {
    base.join(s).components().collect()
}

/// `a.b` or `b` when the prefix is empty.
fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks every section; each section's first error is recorded in
/// `cx.errors` and the other sections are checked all the same. `None` when
/// any error was found.
pub(crate) fn build(raw: RawConfig, cx: &mut Ctx<'_>) -> Option<Config> {
    let danger = danger(&raw.danger.unwrap_or_default(), cx);

    let data_dir = cx.path(&raw.data_dir, "data_dir");
    let data_dir = cx.keep(data_dir)?;

    if let Some(h) = &raw.hostname {
        let r = check_hostname(h.get_ref(), false).map_err(|m| cx.error(h.span(), "hostname", m));
        cx.keep(r);
    }

    // [limits]: defaults for every listener, plus the two server-wide limits.
    let global = raw.limits.map(Spanned::into_inner).unwrap_or_default();
    let base_limits = session_limits(&SessionLimits::default(), &global, "limits", cx);
    let base_limits = cx.keep(base_limits);
    let max_connections = positive(
        global.max_connections.as_ref(),
        DEFAULT_MAX_CONNECTIONS,
        "limits.max_connections",
        cx,
    );
    let max_connections = cx.keep(max_connections);
    let max_connections_per_ip = positive(
        global.max_connections_per_ip.as_ref(),
        DEFAULT_MAX_CONNECTIONS_PER_IP,
        "limits.max_connections_per_ip",
        cx,
    );
    let max_connections_per_ip = cx.keep(max_connections_per_ip);

    let delivery = crate::delivery::build(
        raw.delivery,
        raw.route,
        raw.dns,
        &data_dir,
        raw.hostname.as_ref().map(Spanned::get_ref),
        cx,
    );
    let delivery = cx.keep(delivery);

    let pickup = match (&delivery, &base_limits) {
        (Some((delivery, _)), Some(limits)) => {
            let p =
                crate::pickup::build(raw.pickup, &data_dir, delivery, limits.max_message_size, cx);
            cx.keep(p)
        }
        _ => None,
    };

    let admin = crate::admin::build(raw.admin.as_ref(), &data_dir, raw.data_dir.span(), cx);
    let admin = cx.keep(admin);
    let admin_http = crate::admin::build_http(
        raw.admin.as_ref(),
        &data_dir,
        raw.hostname.as_ref().map(|h| h.get_ref().as_str()),
        cx,
    );
    let admin_http = cx.keep(admin_http);
    let counters = crate::counters::build(raw.counters, cx);
    let counters = cx.keep(counters);
    let dmarc_reports = crate::dmarc_reports::build(raw.dmarc_reports, &data_dir, cx);
    let dmarc_reports = cx.keep(dmarc_reports);
    // Unknown after a [delivery] error: assume a mail log.
    let mail_log = match &delivery {
        Some((d, _)) => d.mail_log.clone(),
        None => Some(data_dir.join("log").join("mail.log")),
    };
    let tracking = crate::tracking::build(raw.tracking, &data_dir, mail_log.as_deref(), cx);
    let tracking = cx.keep(tracking);
    let quarantines = crate::quarantine::build(raw.quarantine, cx);
    let quarantines = cx.keep(quarantines);
    let spool = crate::spool::build(
        raw.spool,
        &data_dir,
        base_limits.as_ref().map(|l| l.max_message_size),
        cx,
    );

    let users = users(raw.user.unwrap_or_default(), cx);
    let users = cx.keep(users);
    let listener_names: Vec<String> = raw
        .listener
        .as_ref()
        .map(|ls| {
            ls.get_ref()
                .iter()
                .map(|l| l.get_ref().name.get_ref().clone())
                .collect()
        })
        .unwrap_or_default();
    let admission = crate::gateway::build(
        &crate::gateway::RawGateway {
            groups: raw.sender_group,
            policies: raw.mail_flow_policy,
            lists: raw.dns_list,
            greylist: raw.greylist,
            auth_ban: raw.auth_ban,
        },
        &listener_names,
        quarantines.as_ref(),
        cx,
    );
    let listeners = base_limits.as_ref().and_then(|limits| {
        let l = listeners(
            raw.listener,
            raw.hostname.as_ref().map(Spanned::get_ref),
            limits,
            danger,
            // Unknown after a [[user]] error: assume users, and say nothing
            // about listeners that need them.
            users.as_ref().is_none_or(|u| !u.is_empty()),
            cx,
        );
        cx.keep(l)
    });

    let tls = tls(raw.tls, cx);
    let tls = cx.keep(tls);
    let relay = relay(raw.relay.as_ref(), danger, cx);
    let relay = cx.keep(relay);

    let vrfy = raw
        .smtp
        .unwrap_or_default()
        .vrfy
        .map_or(VrfyMode::Ambiguous, |p| p.0);

    let log = raw.log.unwrap_or_default();
    let level = log.level.map_or(LogLevel::Info, |p| p.0);
    let transcript_path = match &log.transcript {
        None => Some(None),
        Some(t) => match t.get_ref() {
            Transcript::Enabled(false) => Some(None),
            Transcript::Enabled(true) => Some(Some(data_dir.join("log").join("transcript.log"))),
            Transcript::Path(p) => {
                let p = Spanned::new(t.span(), p.clone());
                let r = cx.path(&p, "log.transcript");
                cx.keep(r).map(Some)
            }
        },
    };

    // Past here every value is needed: stop if any section had an error.
    let (
        Some(max_connections),
        Some(max_connections_per_ip),
        Some((delivery, dns)),
        Some(pickup),
        Some(admin),
        Some(counters),
        Some(users),
        Some(listeners),
        Some(tls),
        Some(relay),
        Some(transcript_path),
        Some(admission),
        Some(dmarc_reports),
        Some(quarantines),
        Some(tracking),
        Some(admin_http),
    ) = (
        max_connections,
        max_connections_per_ip,
        delivery,
        pickup,
        admin,
        counters,
        users,
        listeners,
        tls,
        relay,
        transcript_path,
        admission,
        dmarc_reports,
        quarantines,
        tracking,
        admin_http,
    )
    else {
        return None;
    };
    let mut delivery = delivery;
    delivery.quarantines = quarantines;
    let transcript = TranscriptSettings {
        path: transcript_path,
        format: log
            .transcript_format
            .map_or(TranscriptFormat::Text, |p| p.0),
    };

    let recipients =
        crate::recipients::build(raw.recipients, &delivery, &relay.accepted_domains, cx)?;
    let authentication = crate::authentication::build(
        raw.authentication,
        raw.dkim,
        &dns,
        base_limits.as_ref().map(|l| l.max_message_size),
        raw.hostname.as_ref().map(|h| h.get_ref().as_str()),
        cx,
    );
    let mut authentication = cx.keep(authentication)?;
    match (&mut authentication.arc_seal, delivery.arc_seal_domains.is_empty()) {
        (Some(a), _) => a.routes.clone_from(&delivery.arc_seal_domains),
        (None, false) => cx.warn(
            None,
            "route.arc_seal",
            "a [[route]] has arc_seal = true but [authentication] has no arc_domain / arc_selector: \
             nothing is sealed",
        ),
        (None, true) => {}
    }
    let content = crate::filters::build(
        raw.filters,
        raw.dictionary,
        raw.notification,
        Some(&delivery.quarantines),
        // The largest message any listener accepts (a listener's own limit
        // may be above [limits]): every message is scanned whole by default.
        listeners
            .iter()
            .map(|l| l.limits.max_message_size)
            .chain(base_limits.as_ref().map(|l| l.max_message_size))
            .max(),
        cx,
    );
    let content = cx.keep(content);
    let engines = crate::engines::build(raw.rspamd, raw.clamav, raw.milter, cx);
    let engines = cx.keep(engines);
    let (Some(mut content), Some(engines)) = (content, engines) else {
        return None;
    };
    content.rspamd = engines.rspamd;
    content.clamav = engines.clamav;
    content.milters = engines.milters;
    content.milter_stages = engines.milter_stages;

    // Whole-server warnings.
    maildir_domains_accepted(&delivery, &relay.accepted_domains, cx);
    users_may_sign_for_any_domain(&users, &authentication.signing, cx);
    if relay.accepted_domains.is_empty() && relay.relay_networks.is_empty() {
        let message = if users.is_empty() {
            "no accepted_domains and no relay_networks (and no users): \
             the server can accept no mail; list the domains you receive mail for"
        } else {
            "no accepted_domains and no relay_networks: only authenticated users can send \
             mail, and only to other servers; list the domains you receive mail for"
        };
        cx.warn(raw.relay.as_ref().map(Spanned::span), "relay", message);
    }

    let server = ServerSettings {
        listeners,
        tls,
        spool,
        relay,
        admission,
        recipients,
        users,
        vrfy,
        max_connections,
        max_connections_per_ip,
        transcript,
        allow_insecure_auth: danger.allow_insecure_auth,
        authentication,
        content,
        record_subjects: tracking.subjects,
    };

    Some(Config {
        server,
        data_dir,
        log: LogSettings {
            level: level.name().to_owned(),
        },
        danger,
        delivery,
        dns,
        pickup,
        admin,
        counters,
        dmarc_reports,
        tracking,
        admin_http,
        source: cx.origin.to_owned(),
    })
}

// ---------------------------------------------------------------------------
// [danger]

fn danger(raw: &RawDanger, cx: &mut Ctx<'_>) -> DangerSettings {
    let mut d = DangerSettings::default();
    if let Some(v) = &raw.allow_insecure_auth {
        d.allow_insecure_auth = *v.get_ref();
        if d.allow_insecure_auth {
            cx.warn(
                Some(v.span()),
                "danger.allow_insecure_auth",
                "insecure option enabled: AUTH may be offered on listeners without TLS, \
                 so passwords can cross the network in clear",
            );
        }
    }
    if let Some(v) = &raw.allow_open_relay {
        d.allow_open_relay = *v.get_ref();
        if d.allow_open_relay {
            cx.warn(
                Some(v.span()),
                "danger.allow_open_relay",
                "insecure option enabled: relay_networks may contain 0.0.0.0/0 or ::/0, \
                 which lets anyone relay mail through this server (open relay)",
            );
        }
    }
    d
}

// ---------------------------------------------------------------------------
// [limits]

/// An RFC minimum for a limit that may only be raised.
struct Minimum {
    value: u64,
    unit: &'static str,
    rfc: &'static str,
}

const fn min(value: u64, unit: &'static str, rfc: &'static str) -> Minimum {
    Minimum { value, unit, rfc }
}

fn count_at_least(
    v: Option<&Spanned<crate::raw::Count>>,
    default: usize,
    minimum: &Minimum,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<usize, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let n = v.get_ref().0;
    if n < minimum.value {
        return Err(cx.error(
            v.span(),
            key,
            format!(
                "{n} is below the minimum of {} {} ({}); this limit may only be raised",
                minimum.value, minimum.unit, minimum.rfc
            ),
        ));
    }
    usize::try_from(n).map_err(|_| cx.error(v.span(), key, format!("{n} is too large")))
}

fn positive(
    v: Option<&Spanned<crate::raw::Count>>,
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

fn duration(
    v: Option<&Spanned<crate::raw::Dur>>,
    default: Duration,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<Duration, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let d = v.get_ref().0;
    if d.is_zero() {
        return Err(cx.error(v.span(), key, "must be greater than zero"));
    }
    Ok(d)
}

/// `base` with the keys set in `raw` overridden; `prefix` is `limits` or
/// `listener[i].limits`.
fn session_limits(
    base: &SessionLimits,
    raw: &RawLimits,
    prefix: &str,
    cx: &mut Ctx<'_>,
) -> Result<SessionLimits, ConfigError> {
    let k = |name: &str| key(prefix, name);
    let proto = postern_proto::Limits {
        max_command_line: count_at_least(
            raw.max_command_line.as_ref(),
            base.proto.max_command_line,
            &min(512, "octets", "RFC 5321 §4.5.3.1.4"),
            &k("max_command_line"),
            cx,
        )?,
        max_local_part: count_at_least(
            raw.max_local_part.as_ref(),
            base.proto.max_local_part,
            &min(64, "octets", "RFC 5321 §4.5.3.1.1"),
            &k("max_local_part"),
            cx,
        )?,
        max_domain: count_at_least(
            raw.max_domain.as_ref(),
            base.proto.max_domain,
            &min(255, "octets", "RFC 5321 §4.5.3.1.2"),
            &k("max_domain"),
            cx,
        )?,
        max_text_line: count_at_least(
            raw.max_text_line.as_ref(),
            base.proto.max_text_line,
            &min(1000, "octets", "RFC 5321 §4.5.3.1.6"),
            &k("max_text_line"),
            cx,
        )?,
    };
    let max_message_size = match &raw.max_message_size {
        None => base.max_message_size,
        Some(v) => {
            // RFC 5321 §4.5.3.1.7: message content of at least 64K octets.
            let n = v.get_ref().0;
            if n < 65_536 {
                return Err(cx.error(
                    v.span(),
                    k("max_message_size"),
                    format!(
                        "{n} octets is below the minimum of 64KiB (65536 octets, \
                         RFC 5321 §4.5.3.1.7); this limit may only be raised"
                    ),
                ));
            }
            n
        }
    };
    let max_recipients = count_at_least(
        raw.max_recipients.as_ref(),
        base.max_recipients,
        &min(100, "recipients", "RFC 5321 §4.5.3.1.8"),
        &k("max_recipients"),
        cx,
    )?;
    let max_errors = positive(
        raw.max_errors.as_ref(),
        base.max_errors,
        &k("max_errors"),
        cx,
    )?;
    let command_timeout = duration(
        raw.command_timeout.as_ref(),
        base.command_timeout,
        &k("command_timeout"),
        cx,
    )?;
    if let Some(v) = &raw.command_timeout
        && command_timeout < RFC_COMMAND_TIMEOUT
    {
        cx.warn(
            Some(v.span()),
            k("command_timeout"),
            format!(
                "{} is shorter than the 5m RFC 5321 §4.5.3.2.7 asks servers to wait for a \
                 command; slow but legitimate clients may be cut off",
                format_duration(command_timeout)
            ),
        );
    }
    let max_auth_failures = positive(
        raw.max_auth_failures.as_ref(),
        base.max_auth_failures,
        &k("max_auth_failures"),
        cx,
    )?;
    let min_data_rate = raw
        .min_data_rate
        .as_ref()
        .map_or(base.min_data_rate, |v| v.get_ref().0);
    let write_timeout = duration(
        raw.write_timeout.as_ref(),
        base.write_timeout,
        &k("write_timeout"),
        cx,
    )?;
    Ok(SessionLimits {
        proto,
        max_message_size,
        max_recipients,
        max_errors,
        max_auth_failures,
        min_data_rate,
        write_timeout,
        command_timeout,
        data_block_timeout: duration(
            raw.data_timeout.as_ref(),
            base.data_block_timeout,
            &k("data_timeout"),
            cx,
        )?,
        tls_handshake_timeout: duration(
            raw.tls_handshake_timeout.as_ref(),
            base.tls_handshake_timeout,
            &k("tls_handshake_timeout"),
            cx,
        )?,
    })
}

// ---------------------------------------------------------------------------
// [[listener]]

fn listeners(
    raw: Option<Spanned<Vec<Spanned<RawListener>>>>,
    default_hostname: Option<&String>,
    base_limits: &SessionLimits,
    danger: DangerSettings,
    has_users: bool,
    cx: &mut Ctx<'_>,
) -> Result<Vec<ListenerSettings>, ConfigError> {
    let (span, list) = match raw {
        Some(l) => (l.span(), l.into_inner()),
        None => (0..0, Vec::new()),
    };
    if list.is_empty() {
        return Err(cx.error(span, "listener", "at least one [[listener]] is required"));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut addrs: Vec<(SocketAddr, Range<usize>)> = Vec::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, l) in list.into_iter().enumerate() {
        let header = l.span();
        let l = l.into_inner();
        let p = format!("listener[{i}]");

        let name = l.name.get_ref();
        check_listener_name(name).map_err(|m| cx.error(l.name.span(), key(&p, "name"), m))?;
        if let Some(first) = names.get(name) {
            return Err(cx.error(
                l.name.span(),
                key(&p, "name"),
                format!("duplicate listener name {name:?} (also listener[{first}]); names must be unique"),
            ));
        }
        names.insert(name.clone(), i);

        let addr: SocketAddr = l.address.get_ref().parse().map_err(|_| {
            cx.error(
                l.address.span(),
                key(&p, "address"),
                format!(
                    "invalid socket address {:?}; expected IP:port such as \"127.0.0.1:2525\", \
                     \"0.0.0.0:25\" or \"[::1]:587\" (host names are not resolved)",
                    l.address.get_ref()
                ),
            )
        })?;
        if let Some(j) = addrs.iter().position(|(other, _)| conflicts(*other, addr)) {
            return Err(cx.error(
                l.address.span(),
                key(&p, "address"),
                format!(
                    "address {addr} is already used by listener[{j}] ({}); each listener needs its own socket",
                    addrs[j].0
                ),
            ));
        }
        addrs.push((addr, l.address.span()));

        let hostname = match (&l.hostname, default_hostname) {
            (Some(h), _) => {
                check_hostname(h.get_ref(), false)
                    .map_err(|m| cx.error(h.span(), key(&p, "hostname"), m))?;
                h.get_ref().clone()
            }
            (None, Some(h)) => h.clone(),
            (None, None) => {
                return Err(cx.error(
                    header,
                    key(&p, "hostname"),
                    "no hostname: set hostname at the top of the file or in this listener",
                ));
            }
        };

        let kind = l.kind.get_ref().0;
        let tls = l.tls.as_ref().map_or(
            match kind {
                ListenerKind::Smtp => TlsMode::Optional,
                ListenerKind::Submission | ListenerKind::Submissions => TlsMode::Required,
            },
            |t| t.get_ref().0,
        );
        if kind == ListenerKind::Submissions
            && tls != TlsMode::Required
            && let Some(t) = &l.tls
        {
            return Err(cx.error(
                t.span(),
                key(&p, "tls"),
                format!(
                    "a submissions listener always uses implicit TLS (RFC 8314), so tls = \"{}\" \
                     is not possible; allowed: \"required\" (the default)",
                    tls.name()
                ),
            ));
        }
        let auth = l.auth.as_ref().map_or(
            match kind {
                ListenerKind::Smtp => AuthMode::Off,
                ListenerKind::Submission | ListenerKind::Submissions => AuthMode::Required,
            },
            |a| a.get_ref().0,
        );
        if auth != AuthMode::Off && tls == TlsMode::Off && !danger.allow_insecure_auth {
            let (span, k) = match (&l.auth, &l.tls) {
                (Some(a), _) => (a.span(), key(&p, "auth")),
                (None, Some(t)) => (t.span(), key(&p, "tls")),
                (None, None) => (header.clone(), key(&p, "auth")),
            };
            return Err(cx.error(
                span,
                k,
                "AUTH without TLS would send passwords in clear; set tls = \"optional\"/\"required\" \
                 or [danger] allow_insecure_auth = true",
            ));
        }
        if tls == TlsMode::Off && !addr.ip().is_loopback() {
            cx.warn(
                Some(l.tls.as_ref().map_or(header.clone(), Spanned::span)),
                key(&p, "tls"),
                format!(
                    "listener \"{name}\" on non-loopback address {addr} has tls = \"off\": \
                     mail and envelopes cross the network in clear; set tls = \"optional\""
                ),
            );
        }
        if kind != ListenerKind::Smtp && auth == AuthMode::Off {
            cx.warn(
                Some(l.auth.as_ref().map_or(header.clone(), Spanned::span)),
                key(&p, "auth"),
                format!(
                    "{} listener \"{name}\" has auth = \"off\": clients cannot authenticate, \
                     so it accepts only what an smtp listener would (mail for accepted_domains, \
                     relay from relay_networks)",
                    kind.name()
                ),
            );
        }

        if auth != AuthMode::Off && !has_users {
            cx.warn(
                Some(l.auth.as_ref().map_or(header.clone(), Spanned::span)),
                key(&p, "auth"),
                format!(
                    "listener \"{name}\" offers AUTH but no [[user]] is defined, so every AUTH \
                     attempt fails; add users with a hash from `postern user hash`"
                ),
            );
        }

        let limits = match &l.limits {
            None => base_limits.clone(),
            Some(lim) => {
                let lp = key(&p, "limits");
                let lim = lim.get_ref();
                for (v, name) in [
                    (&lim.max_connections, "max_connections"),
                    (&lim.max_connections_per_ip, "max_connections_per_ip"),
                ] {
                    if let Some(v) = v {
                        return Err(cx.error(
                            v.span(),
                            key(&lp, name),
                            format!("{name} is a server-wide limit; set it in [limits]"),
                        ));
                    }
                }
                session_limits(base_limits, lim, &lp, cx)?
            }
        };

        let proxy_protocol = crate::proxy::build(&l, &p, header.clone(), cx)?;
        out.push(ListenerSettings {
            name: name.clone(),
            addr,
            kind,
            hostname,
            tls,
            auth,
            limits,
            proxy_protocol,
        });
    }
    Ok(out)
}

/// True when two listeners cannot both bind: the same address and port, or
/// the same port where one is the unspecified address of the same family.
/// Port 0 (a free port chosen by the kernel) never conflicts.
fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() || a.is_ipv4() != b.is_ipv4() {
        return false;
    }
    a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified()
}

fn check_listener_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid listener name {name:?}; allowed: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Checks a host name as used in the banner, EHLO and `Received:` (or a
/// certificate name when `wildcard` is true: `*.example.com`).
pub(crate) fn check_hostname(name: &str, wildcard: bool) -> Result<(), String> {
    let what = |why: &str| {
        format!(
            "invalid hostname {name:?}: {why}; expected a domain name such as \"mail.example.com\""
        )
    };
    let body = if wildcard {
        name.strip_prefix("*.").unwrap_or(name)
    } else {
        name
    };
    if body.is_empty() {
        return Err(what("empty"));
    }
    if !body.is_ascii() {
        return Err(what(
            "not ASCII (write an internationalized name in its xn-- A-label form)",
        ));
    }
    if body.len() > 253 {
        return Err(what("longer than 253 characters"));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(what("empty label"));
        }
        if label.len() > 63 {
            return Err(what("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(what("only letters, digits, '-' and '.' are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(what("a label starts or ends with '-'"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// [tls]

fn tls(raw: Option<Spanned<RawTls>>, cx: &mut Ctx<'_>) -> Result<TlsSettings, ConfigError> {
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let defaults = TlsSettings::default();
    let (min_version, max_version) = version_range(
        raw.min_version.as_ref(),
        raw.max_version.as_ref(),
        (defaults.min_version, defaults.max_version),
        "tls",
        cx,
    )?;

    let cipher_suites = crate::tls_names::cipher_suites(
        raw.cipher_suites.as_ref(),
        (min_version, max_version),
        "tls",
        cx,
    )?;
    let kx_groups =
        crate::tls_names::groups(raw.groups.as_ref(), (min_version, max_version), "tls", cx)?;

    let mut certificates = Vec::new();
    for (i, c) in raw.certificate.unwrap_or_default().into_iter().enumerate() {
        certificates.push(certificate(
            c.into_inner(),
            &format!("tls.certificate[{i}]"),
            cx,
        )?);
    }

    Ok(TlsSettings {
        min_version,
        max_version,
        cipher_suites,
        kx_groups,
        certificates,
        session_tickets: raw.session_tickets.unwrap_or(defaults.session_tickets),
    })
}

/// `<table>.min_version` / `max_version` with their defaults; min above max
/// is an error at whichever key was written.
pub(crate) fn version_range(
    min: Option<&Spanned<crate::raw::Version>>,
    max: Option<&Spanned<crate::raw::Version>>,
    defaults: (TlsVersion, TlsVersion),
    table: &str,
    cx: &Ctx<'_>,
) -> Result<(TlsVersion, TlsVersion), ConfigError> {
    let min_version = min.map_or(defaults.0, |v| v.get_ref().0);
    let max_version = max.map_or(defaults.1, |v| v.get_ref().0);
    if min_version > max_version {
        let (span, k) = match (min, max) {
            (Some(v), _) => (v.span(), format!("{table}.min_version")),
            (None, Some(v)) => (v.span(), format!("{table}.max_version")),
            (None, None) => (0..0, table.to_owned()),
        };
        return Err(cx.error(
            span,
            k,
            format!(
                "min_version \"{}\" is above max_version \"{}\"",
                version_name(min_version),
                version_name(max_version)
            ),
        ));
    }
    Ok((min_version, max_version))
}

pub(crate) fn version_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "1.2",
        TlsVersion::Tls13 => "1.3",
    }
}

fn certificate(raw: RawCert, p: &str, cx: &Ctx<'_>) -> Result<CertSettings, ConfigError> {
    let mut hostnames = Vec::new();
    for (i, h) in raw.hostnames.unwrap_or_default().into_iter().enumerate() {
        check_hostname(h.get_ref(), true)
            .map_err(|m| cx.error(h.span(), format!("{p}.hostnames[{i}]"), m))?;
        hostnames.push(h.into_inner());
    }
    Ok(CertSettings {
        cert_path: cx.path(&raw.cert, &key(p, "cert"))?,
        key_path: cx.path(&raw.key, &key(p, "key"))?,
        hostnames,
    })
}

// ---------------------------------------------------------------------------
// [relay]

fn relay(
    raw: Option<&Spanned<RawRelay>>,
    danger: DangerSettings,
    cx: &mut Ctx<'_>,
) -> Result<RelaySettings, ConfigError> {
    let empty = RawRelay::default();
    let raw = raw.map_or(&empty, Spanned::get_ref);
    let mut accepted_domains = Vec::new();
    for (i, d) in raw.accepted_domains.iter().flatten().enumerate() {
        let k = format!("relay.accepted_domains[{i}]");
        let s = d.get_ref();
        let bare = s.strip_prefix('.').unwrap_or(s);
        let bare = bare.strip_suffix('.').unwrap_or(bare);
        check_hostname(bare, false).map_err(|_| {
            cx.error(
                d.span(),
                &k,
                format!(
                    "invalid domain {s:?}; expected a domain such as \"example.com\", \
                     or \".example.com\" for all its subdomains"
                ),
            )
        })?;
        accepted_domains.push(s.clone());
    }

    let mut relay_networks = Vec::new();
    for (i, n) in raw.relay_networks.iter().flatten().enumerate() {
        let k = format!("relay.relay_networks[{i}]");
        let net = parse_network(n.get_ref()).map_err(|m| cx.error(n.span(), &k, m))?;
        if net.prefix_len() == 0 && !danger.allow_open_relay {
            return Err(cx.error(
                n.span(),
                &k,
                format!(
                    "{net} lets every host on the Internet relay mail through this server \
                     (open relay); list only your own client networks, or set \
                     [danger] allow_open_relay = true"
                ),
            ));
        }
        let (wide, limit) = match net {
            IpNet::V4(_) => (net.prefix_len() < WIDE_V4_PREFIX, WIDE_V4_PREFIX),
            IpNet::V6(_) => (net.prefix_len() < WIDE_V6_PREFIX, WIDE_V6_PREFIX),
        };
        if wide {
            cx.warn(
                Some(n.span()),
                &k,
                format!(
                    "relay network {net} is wider than /{limit}: every host in it may relay \
                     mail to any domain; list smaller networks if you can"
                ),
            );
        }
        relay_networks.push(net);
    }
    Ok(RelaySettings {
        accepted_domains,
        relay_networks,
    })
}

/// `"10.0.0.0/8"`, `"2001:db8::/32"`, or a single address (`"192.0.2.7"`).
/// Host bits after the prefix are refused: `10.1.2.3/8` is ambiguous.
pub(crate) fn parse_network(s: &str) -> Result<IpNet, String> {
    let net: IpNet = if s.contains('/') {
        s.parse().map_err(|_| {
            format!("invalid network {s:?}; expected CIDR notation such as \"192.0.2.0/24\" or \"2001:db8::/32\"")
        })?
    } else {
        let ip: std::net::IpAddr = s.parse().map_err(|_| {
            format!("invalid network {s:?}; expected CIDR notation such as \"192.0.2.0/24\" or \"2001:db8::/32\"")
        })?;
        IpNet::from(ip)
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has bits set after the /{} prefix; write \"{}\"",
            net.prefix_len(),
            net.trunc()
        ));
    }
    Ok(net)
}

// ---------------------------------------------------------------------------
// [[user]]

fn users(raw: Vec<Spanned<RawUser>>, cx: &Ctx<'_>) -> Result<Vec<User>, ConfigError> {
    let mut out: Vec<User> = Vec::with_capacity(raw.len());
    for (i, u) in raw.into_iter().enumerate() {
        let u = u.into_inner();
        let p = format!("user[{i}]");
        let name = u.name.get_ref();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(cx.error(
                u.name.span(),
                key(&p, "name"),
                "a user name must be non-empty and contain no control characters",
            ));
        }
        if let Some(j) = out.iter().position(|o| o.name == *name) {
            return Err(cx.error(
                u.name.span(),
                key(&p, "name"),
                format!("duplicate user {name:?} (also user[{j}])"),
            ));
        }
        check_password_hash(u.password_hash.get_ref())
            .map_err(|m| cx.error(u.password_hash.span(), key(&p, "password_hash"), m))?;
        let senders = match u.senders {
            None => None,
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for (j, v) in list.into_iter().enumerate() {
                    postern_policy::check_sender_pattern(v.get_ref()).map_err(|e| {
                        cx.error(
                            v.span(),
                            format!("{}[{j}]", key(&p, "senders")),
                            e.to_string(),
                        )
                    })?;
                    out.push(v.into_inner().trim().to_owned());
                }
                Some(out)
            }
        };
        out.push(User {
            name: name.clone(),
            password_hash: u.password_hash.into_inner(),
            senders,
        });
    }
    Ok(out)
}

/// Checks an Argon2 PHC string as verification will read it. The value is
/// never quoted back: it might be a plaintext password pasted by mistake.
pub(crate) fn check_password_hash(s: &str) -> Result<(), String> {
    const HELP: &str = "expected an Argon2 PHC string (\"$argon2id$v=19$m=...,t=...,p=...$salt$hash\") \
                        as printed by `postern user hash`";
    if !s.starts_with("$argon2") {
        return Err(format!("not an Argon2 hash; {HELP}"));
    }
    let hash = argon2::PasswordHash::new(s)
        .map_err(|e| format!("not a valid PHC string ({e}); {HELP}"))?;
    argon2::Algorithm::try_from(hash.algorithm.as_str())
        .map_err(|_| format!("unknown Argon2 variant; {HELP}"))?;
    argon2::Params::try_from(&hash)
        .map_err(|e| format!("invalid Argon2 parameters ({e}); {HELP}"))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(format!("the salt or the hash is missing; {HELP}"));
    }
    Ok(())
}

/// Keys for several domains sign authenticated mail, and a user has no
/// `senders` list: that user may send as (and get the signature of) any of
/// those domains. One warning naming the users (a shared server's
/// organisations are then not kept apart).
fn users_may_sign_for_any_domain(
    users: &[User],
    signing: &postern_auth::signing::SigningSettings,
    cx: &mut Ctx<'_>,
) {
    use postern_auth::signing::SignFor;
    let for_users = signing
        .sign_for
        .iter()
        .any(|s| matches!(s, SignFor::Authenticated | SignFor::All));
    let mut domains: Vec<&str> = signing
        .keys
        .iter()
        .filter(|k| k.sign)
        .map(|k| k.domain.as_str())
        .collect();
    domains.sort_unstable();
    domains.dedup();
    let open: Vec<&str> = users
        .iter()
        .filter(|u| u.senders.is_none())
        .map(|u| u.name.as_str())
        .collect();
    if !for_users || domains.len() < 2 || open.is_empty() {
        return;
    }
    cx.warn(
        None,
        "user.senders",
        format!(
            "[[dkim]] keys sign authenticated mail for {} domains ({}) and user(s) {} have no \
             senders list: each may send as, and be signed for, any of them; give each user \
             senders = [\"…\"]",
            domains.len(),
            domains.join(", "),
            open.join(", ")
        ),
    );
}

/// A Maildir route for a domain the smtp listener refuses (not in
/// `[relay] accepted_domains`) can only be reached by pickup files and
/// authenticated users: almost certainly a forgotten line.
fn maildir_domains_accepted(
    delivery: &postern_delivery::DeliverySettings,
    accepted: &[String],
    cx: &mut Ctx<'_>,
) {
    use postern_delivery::{DomainPattern, RouteTarget};
    let accepts = |d: &str| {
        accepted.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_prefix('.') {
                Some(parent) => d.strip_suffix(parent).is_some_and(|h| h.ends_with('.')),
                None => a == d,
            }
        })
    };
    for r in &delivery.routes {
        if !matches!(r.target, RouteTarget::Maildir(_)) {
            continue;
        }
        for p in &r.domains {
            let missing = match p {
                DomainPattern::Exact(d) => !accepts(d),
                DomainPattern::Subdomains(d) => !accepted
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&format!(".{d}"))),
                DomainPattern::Any => false,
            };
            if missing {
                cx.warn(
                    None,
                    format!("{}.domains", r.origin),
                    format!(
                        "mail for {p} is delivered into Maildir, but [relay] accepted_domains \
                         does not list it: the smtp listener refuses it (only pickup files and \
                         authenticated users can reach these mailboxes); add \"{p}\" to \
                         accepted_domains"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for ok in [
            "localhost",
            "mail.example.com",
            "a-b.example",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(check_hostname(ok, false), Ok(()), "{ok}");
        }
        assert_eq!(check_hostname("*.example.com", true), Ok(()));
        for bad in [
            "",
            "mail example.com",
            "mail.example.com\r\n250 x",
            "a..b",
            "-a.example",
            "bücher.example",
            "*.example.com",
            "mail.example.com.",
        ] {
            assert!(check_hostname(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_network("10.0.0.0/8"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_network("192.0.2.7"),
            Ok("192.0.2.7/32".parse().unwrap())
        );
        assert_eq!(
            parse_network("2001:db8::1"),
            Ok("2001:db8::1/128".parse().unwrap())
        );
        assert_eq!(
            parse_network("10.1.2.3/8"),
            Err("\"10.1.2.3/8\" has bits set after the /8 prefix; write \"10.0.0.0/8\"".to_owned())
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("example.com").is_err());
    }

    #[test]
    fn listener_address_conflicts() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(conflicts(a("127.0.0.1:25"), a("127.0.0.1:25")));
        assert!(conflicts(a("0.0.0.0:25"), a("127.0.0.1:25")));
        assert!(conflicts(a("[::1]:25"), a("[::]:25")));
        assert!(!conflicts(a("127.0.0.1:25"), a("127.0.0.2:25")));
        assert!(!conflicts(a("127.0.0.1:25"), a("127.0.0.1:587")));
        assert!(!conflicts(a("127.0.0.1:0"), a("127.0.0.1:0")));
        assert!(!conflicts(a("0.0.0.0:25"), a("[::1]:25")));
    }

    #[test]
    fn password_hashes() {
        let good = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                    BTwHbFXR2qMv9Ac3sAzfCrM6nyYK1A6B/aq5JG5CHwQ";
        assert_eq!(check_password_hash(good), Ok(()));
        let e = check_password_hash("hunter2").unwrap_err();
        assert!(e.starts_with("not an Argon2 hash;"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(check_password_hash("$argon2id$v=19$m=19456,t=2,p=1").is_err());
        assert!(check_password_hash("$argon2xx$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA").is_err());
        assert!(check_password_hash("$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$BTwHbFXR2qMv9Ac3sAzfCrM6nyYK1A6B/aq5JG5CHwQ").is_err());
        assert!(check_password_hash("$2b$12$abcdefghijklmnopqrstuv").is_err());
    }
}

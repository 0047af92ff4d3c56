//! `[rspamd]`, `[clamav]` and `[[milter]]` (issue 11): the content engines
//! the smtpd asks at end of data, into `postern_engines` / `postern_milter`
//! settings (`docs/engines.md`, `docs/milter.md`).
//!
//! ```toml
//! [rspamd]
//! address = "127.0.0.1:11333"     # the normal worker (or unix:/path)
//! timeout = "15s"                 # connect + the whole exchange
//! max_size = "20MiB"              # larger messages are not scanned
//! on_failure = "tempfail"         # or "accept" (go on unscanned, logged)
//! # password = "…"                # only for the controller worker
//!
//! [clamav]
//! address = "/var/run/clamav/clamd.ctl"   # or "127.0.0.1:3310"
//! timeout = "30s"
//! max_size = "25MiB"              # at most clamd's StreamMaxLength
//! on_failure = "tempfail"
//!
//! [[milter]]
//! name = "opendkim"
//! address = "inet:127.0.0.1:8891" # inet:port@host, unix:/path
//! connect_timeout = "30s"
//! command_timeout = "30s"
//! end_of_message_timeout = "5m"
//! default_action = "tempfail"     # accept | tempfail | reject
//! stage = "data"                  # first asked at: connect | helo | mail | rcpt | data
//! [milter.macros]                 # per stage, replacing the default list
//! mail = ["i", "{auth_authen}", "{mail_addr}"]
//! ```
//!
//! # Security
//! The rspamd password is a secret (`config show` hides it; `Debug` of the
//! settings too). Engine addresses are operator input, parsed strictly.

use std::collections::BTreeSet;
use std::time::Duration;

use postern_engines::{ClamdSettings, EngineAddr, RspamdSettings};
use postern_milter::{MilterAddr, MilterSpec};
use postern_policy::content::OnFailure;
use postern_proto::session::StageKind;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::raw::{Choice, Dur, Pick, Size};

impl Choice for OnFailure {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("tempfail", Self::TempFail), ("accept", Self::Accept)];
}

impl Choice for postern_milter::OnFailure {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("accept", Self::Accept),
        ("tempfail", Self::Tempfail),
        ("reject", Self::Reject),
    ];
}

/// `[rspamd]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRspamd {
    pub address: Option<Spanned<String>>,
    pub timeout: Option<Spanned<Dur>>,
    pub max_size: Option<Spanned<Size>>,
    pub password: Option<Spanned<String>>,
    pub pass_all: Option<bool>,
    pub on_failure: Option<Spanned<Pick<OnFailure>>>,
}

/// `[clamav]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawClamav {
    pub address: Option<Spanned<String>>,
    pub timeout: Option<Spanned<Dur>>,
    pub max_size: Option<Spanned<Size>>,
    pub on_failure: Option<Spanned<Pick<OnFailure>>>,
}

/// `[[milter]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawMilter {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    pub connect_timeout: Option<Spanned<Dur>>,
    pub command_timeout: Option<Spanned<Dur>>,
    pub end_of_message_timeout: Option<Spanned<Dur>>,
    pub default_action: Option<Spanned<Pick<postern_milter::OnFailure>>>,
    pub macros: Option<Spanned<RawMacros>>,
    pub stage: Option<Spanned<Pick<StageKind>>>,
}

impl Choice for StageKind {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("connect", Self::Connect),
        ("helo", Self::Helo),
        ("mail", Self::Mail),
        ("rcpt", Self::Rcpt),
        ("data", Self::DataEnd),
    ];
}

/// `[milter.macros]`: the macros sent per stage when the milter does not
/// name its own (each key replaces that stage's default list).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawMacros {
    pub connect: Option<Vec<Spanned<String>>>,
    pub helo: Option<Vec<Spanned<String>>>,
    pub mail: Option<Vec<Spanned<String>>>,
    pub rcpt: Option<Vec<Spanned<String>>>,
    pub data: Option<Vec<Spanned<String>>>,
    pub end_of_headers: Option<Vec<Spanned<String>>>,
    pub end_of_message: Option<Vec<Spanned<String>>>,
}

/// A macro name: `j`, `_`, `{name}` (printable ASCII, ≤ 64).
fn macro_name(s: &str) -> bool {
    let braced = s.len() > 2 && s.starts_with('{') && s.ends_with('}');
    (s.len() == 1 || braced) && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The engines, as the smtpd gets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Engines {
    pub rspamd: Option<(RspamdSettings, OnFailure)>,
    pub clamav: Option<(ClamdSettings, OnFailure)>,
    pub milters: Vec<MilterSpec>,
    pub milter_stages: Vec<StageKind>,
}

const MAX_TIMEOUT: Duration = Duration::from_mins(30);

fn timeout(
    v: Option<&Spanned<Dur>>,
    key: &str,
    cx: &Ctx<'_>,
) -> Result<Option<Duration>, ConfigError> {
    match v {
        Some(d) if d.get_ref().0.is_zero() || d.get_ref().0 > MAX_TIMEOUT => {
            Err(cx.error(d.span(), key, "must be between 1s and 30m"))
        }
        Some(d) => Ok(Some(d.get_ref().0)),
        None => Ok(None),
    }
}

fn engine_addr(v: &Spanned<String>, key: &str, cx: &Ctx<'_>) -> Result<EngineAddr, ConfigError> {
    v.get_ref()
        .parse::<EngineAddr>()
        .map_err(|e| cx.error(v.span(), key, e.to_string()))
}

/// Builds the three sections.
pub(crate) fn build(
    rspamd: Option<Spanned<RawRspamd>>,
    clamav: Option<Spanned<RawClamav>>,
    milters: Option<Vec<Spanned<RawMilter>>>,
    cx: &Ctx<'_>,
) -> Result<Engines, ConfigError> {
    let mut out = Engines::default();
    if let Some(raw) = rspamd {
        let r = raw.into_inner();
        let mut s = RspamdSettings::default();
        if let Some(a) = &r.address {
            s.address = engine_addr(a, "rspamd.address", cx)?;
        }
        if let Some(t) = timeout(r.timeout.as_ref(), "rspamd.timeout", cx)? {
            s.timeout = t;
        }
        if let Some(m) = &r.max_size {
            if m.get_ref().0 == 0 {
                return Err(cx.error(
                    m.span(),
                    "rspamd.max_size",
                    "must be above 0, e.g. \"20MiB\"",
                ));
            }
            s.max_size = m.get_ref().0;
        }
        if let Some(p) = &r.password {
            if p.get_ref().is_empty() || p.get_ref().chars().any(char::is_control) {
                return Err(cx.error(
                    p.span(),
                    "rspamd.password",
                    "must be a non-empty password without control characters",
                ));
            }
            s.password = Some(p.get_ref().clone());
        }
        s.pass_all = r.pass_all.unwrap_or(false);
        let on_failure = r
            .on_failure
            .map_or(OnFailure::TempFail, |v| v.into_inner().0);
        out.rspamd = Some((s, on_failure));
    }
    if let Some(raw) = clamav {
        let r = raw.into_inner();
        let mut s = ClamdSettings::default();
        if let Some(a) = &r.address {
            s.address = engine_addr(a, "clamav.address", cx)?;
        }
        if let Some(t) = timeout(r.timeout.as_ref(), "clamav.timeout", cx)? {
            s.timeout = t;
        }
        if let Some(m) = &r.max_size {
            if m.get_ref().0 == 0 {
                return Err(cx.error(
                    m.span(),
                    "clamav.max_size",
                    "must be above 0, e.g. \"25MiB\"",
                ));
            }
            s.max_size = m.get_ref().0;
        }
        let on_failure = r
            .on_failure
            .map_or(OnFailure::TempFail, |v| v.into_inner().0);
        out.clamav = Some((s, on_failure));
    }
    let mut names = BTreeSet::new();
    for (i, raw) in milters.unwrap_or_default().into_iter().enumerate() {
        let key = format!("milter[{i}]");
        let m = raw.into_inner();
        let name = m.name.get_ref().trim().to_owned();
        if !crate::quarantine::is_name(&name) {
            return Err(cx.error(
                m.name.span(),
                format!("{key}.name"),
                "must be 1-64 characters of a-z, 0-9, '-' and '_', e.g. \"opendkim\"",
            ));
        }
        if !names.insert(name.clone()) {
            return Err(cx.error(
                m.name.span(),
                format!("{key}.name"),
                format!("milter {name:?} is defined twice"),
            ));
        }
        let address = MilterAddr::parse(m.address.get_ref()).map_err(|why| {
            cx.error(
                m.address.span(),
                format!("{key}.address"),
                format!("{why}; write inet:HOST:PORT, inet:PORT@HOST, HOST:PORT or unix:/path"),
            )
        })?;
        let mut spec = MilterSpec::new(name, address);
        if let Some(t) = timeout(
            m.connect_timeout.as_ref(),
            &format!("{key}.connect_timeout"),
            cx,
        )? {
            spec.timeouts.connect = t;
        }
        if let Some(t) = timeout(
            m.command_timeout.as_ref(),
            &format!("{key}.command_timeout"),
            cx,
        )? {
            spec.timeouts.command = t;
        }
        if let Some(t) = timeout(
            m.end_of_message_timeout.as_ref(),
            &format!("{key}.end_of_message_timeout"),
            cx,
        )? {
            spec.timeouts.end_of_message = t;
        }
        if let Some(a) = m.default_action {
            spec.default_action = a.into_inner().0;
        }
        if let Some(raw) = &m.macros {
            use postern_milter::MacroStage as M;
            let r = raw.get_ref();
            for (list, stage, name) in [
                (&r.connect, M::Connect, "connect"),
                (&r.helo, M::Helo, "helo"),
                (&r.mail, M::MailFrom, "mail"),
                (&r.rcpt, M::Rcpt, "rcpt"),
                (&r.data, M::Data, "data"),
                (&r.end_of_headers, M::EndOfHeaders, "end_of_headers"),
                (&r.end_of_message, M::EndOfMessage, "end_of_message"),
            ] {
                let Some(list) = list else { continue };
                let mut names = Vec::with_capacity(list.len());
                for v in list {
                    if !macro_name(v.get_ref()) {
                        return Err(cx.error(
                            v.span(),
                            format!("{key}.macros.{name}"),
                            "a macro name is one character (\"j\", \"i\", \"_\") or a braced \
                             name (\"{client_addr}\", \"{auth_authen}\")",
                        ));
                    }
                    names.push(v.get_ref().clone());
                }
                spec.macros.set(stage, names);
            }
        }
        out.milters.push(spec);
        out.milter_stages
            .push(m.stage.map_or(StageKind::DataEnd, |s| s.into_inner().0));
    }
    Ok(out)
}

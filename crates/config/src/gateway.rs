//! `[[sender_group]]`, `[[mail_flow_policy]]` and `[[dns_list]]`: the gateway's
//! admission table, from the file to `postern_policy::admission::Admission`.
//!
//! ```toml
//! [[dns_list]]
//! zone = "zen.dnsbl.example"
//! codes = "127.0.0.[2..11]"     # optional: the answers that count
//! weight = 2                    # in dnsbl-score; negative for allowlists
//!
//! [[sender_group]]              # top-down; first match wins
//! name = "BLOCKLIST"
//! match = ["dnsbl:zen.dnsbl.example=127.0.0.2", "rdns:.dynamic.example"]
//! policy = "BLOCKED"
//! listeners = ["smtp"]          # optional: only on these listeners
//!
//! [[mail_flow_policy]]
//! name = "BLOCKED"
//! action = "reject"             # accept | relay | reject | tempfail | tcp-refuse | continue
//! reject_at = "connect"         # or "rcpt"
//! reply = "554 5.7.1 Go away"   # optional
//! ```
//!
//! The other policy keys are the limits (see `examples/postern.toml`).
//!
//! # Security
//! The lints of `postern_policy::admission::lint` become warnings here (so
//! `config check --strict` fails on a `relay` policy reachable from the
//! Internet). A custom reply must fit its action: `5xx` for `reject`, `4xx`
//! for `tempfail`, so a typo cannot turn a block into a deferral or back.

use std::ops::Range;

use postern_policy::admission::{
    Admission, AuthBanSettings, AuthChecks, CodePattern, DnsList, FlowAction, GreylistSettings,
    MailFlowPolicy, Matcher, RejectAt, SenderGroup, lint, matcher::normalise_zone,
};
use postern_policy::authentication::{
    AuthActions, DmarcFailAction, SpfFailAction, SpfStage, TempErrorAction,
};
use postern_proto::{EnhancedCode, Reply};
use postern_smtpd::{AuthMode, TlsMode};
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::{ConfigError, did_you_mean};
use crate::raw::{Choice, Count, Dur, Pick, Size};

/// `[[sender_group]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSenderGroup {
    pub name: Spanned<String>,
    #[serde(rename = "match")]
    pub matches: Spanned<Vec<Spanned<String>>>,
    pub policy: Spanned<String>,
    pub listeners: Option<Vec<Spanned<String>>>,
}

/// `[[mail_flow_policy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawMailFlowPolicy {
    pub name: Spanned<String>,
    pub action: Spanned<String>,
    pub reject_at: Option<Spanned<String>>,
    pub reply: Option<Spanned<String>>,
    pub banner: Option<Spanned<String>>,
    pub tls: Option<Spanned<Pick<TlsMode>>>,
    pub auth: Option<Spanned<Pick<AuthMode>>>,
    pub require_ptr: Option<bool>,
    pub max_messages_per_session: Option<Spanned<Count>>,
    pub max_recipients_per_message: Option<Spanned<Count>>,
    pub max_message_size: Option<Spanned<Size>>,
    pub max_concurrent_connections_per_ip: Option<Spanned<Count>>,
    pub max_connections_per_minute_per_ip: Option<Spanned<Count>>,
    pub max_recipients_per_hour_per_ip: Option<Spanned<Count>>,
    pub max_messages_per_hour_per_sender: Option<Spanned<Count>>,
    pub sender_rate_exceptions: Option<Vec<Spanned<String>>>,
    pub max_invalid_recipients_per_hour: Option<Spanned<Count>>,
    pub dhap_drop: Option<bool>,
    pub dhap_temporary: Option<bool>,
    pub greylist: Option<bool>,
    pub exempt_from_bans: Option<bool>,
    pub spf: Option<bool>,
    pub dkim: Option<bool>,
    pub dmarc: Option<bool>,
    pub spf_fail: Option<Spanned<Pick<SpfFailAction>>>,
    pub spf_at: Option<Spanned<Pick<SpfStage>>>,
    pub dmarc_reject: Option<Spanned<Pick<DmarcFailAction>>>,
    pub dmarc_quarantine: Option<Spanned<Pick<DmarcFailAction>>>,
    pub auth_temperror: Option<Spanned<Pick<TempErrorAction>>>,
    pub spam_scan: Option<bool>,
    pub virus_scan: Option<bool>,
    pub milters: Option<bool>,
    pub filters: Option<bool>,
    pub spam_positive: Option<Spanned<Pick<postern_policy::content::SpamAction>>>,
    pub spam_suspect: Option<Spanned<Pick<postern_policy::content::SpamAction>>>,
    pub spam_positive_score: Option<Spanned<f64>>,
    pub spam_suspect_score: Option<Spanned<f64>>,
    pub spam_subject_tag: Option<Spanned<String>>,
    pub spam_quarantine: Option<Spanned<String>>,
    pub virus_action: Option<Spanned<Pick<postern_policy::content::VirusAction>>>,
    pub virus_quarantine: Option<Spanned<String>>,
    pub rspamd_settings: Option<Spanned<String>>,
}

impl Choice for SpfFailAction {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("reject", Self::Reject),
        ("tag", Self::Tag),
        ("accept", Self::Accept),
    ];
}

impl Choice for SpfStage {
    const CHOICES: &'static [(&'static str, Self)] = &[("mail", Self::Mail), ("data", Self::Data)];
}

impl Choice for DmarcFailAction {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("reject", Self::Reject),
        ("quarantine", Self::Quarantine),
        ("tag", Self::Tag),
        ("accept", Self::Accept),
    ];
}

impl Choice for TempErrorAction {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("tempfail", Self::TempFail), ("accept", Self::Accept)];
}

/// `[[dns_list]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDnsList {
    pub zone: Spanned<String>,
    pub codes: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
}

/// `[greylist]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawGreylist {
    pub delay: Option<Spanned<Dur>>,
    pub retry_window: Option<Spanned<Dur>>,
    pub pass_lifetime: Option<Spanned<Dur>>,
    pub auto_allow_after: Option<Spanned<Count>>,
}

/// `[auth_ban]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAuthBan {
    pub enabled: Option<bool>,
    pub max_failures_per_ip: Option<Spanned<Count>>,
    pub max_failures_per_login: Option<Spanned<Count>>,
    pub window: Option<Spanned<Dur>>,
    pub ban: Option<Spanned<Dur>>,
}

/// The tables as they come from the file.
pub(crate) struct RawGateway {
    pub groups: Option<Vec<Spanned<RawSenderGroup>>>,
    pub policies: Option<Vec<Spanned<RawMailFlowPolicy>>>,
    pub lists: Option<Vec<Spanned<RawDnsList>>>,
    pub greylist: Option<Spanned<RawGreylist>>,
    pub auth_ban: Option<Spanned<RawAuthBan>>,
}

/// Builds the admission table; every error goes to `cx` (so all are
/// reported in one run) and `None` means at least one was found.
pub(crate) fn build(
    raw: &RawGateway,
    listeners: &[String],
    quarantines: Option<&postern_spool::Quarantines>,
    cx: &mut Ctx<'_>,
) -> Option<Admission> {
    let before = cx.errors.len();
    let mut policies = Vec::new();
    for (i, p) in raw.policies.iter().flatten().enumerate() {
        let key = format!("mail_flow_policy[{i}]");
        if policies
            .iter()
            .any(|q: &MailFlowPolicy| q.name == *p.get_ref().name.get_ref())
        {
            let e = cx.error(
                p.get_ref().name.span(),
                format!("{key}.name"),
                "a policy of this name is already defined; names must be unique",
            );
            cx.errors.push(e);
            continue;
        }
        if let Some(policy) = cx.keep(flow_policy(p.get_ref(), &key, quarantines, cx)) {
            policies.push(policy);
        }
    }

    let mut lists = Vec::new();
    for (i, l) in raw.lists.iter().flatten().enumerate() {
        let l = l.get_ref();
        let key = format!("dns_list[{i}]");
        let zone = normalise_zone(l.zone.get_ref())
            .map_err(|e| cx.error(l.zone.span(), format!("{key}.zone"), e.0));
        let codes = l
            .codes
            .as_ref()
            .map(|c| {
                CodePattern::parse(c.get_ref())
                    .map_err(|e| cx.error(c.span(), format!("{key}.codes"), e.0))
            })
            .transpose();
        let weight = match &l.weight {
            None => Ok(1),
            Some(w) => i32::try_from(*w.get_ref())
                .ok()
                .filter(|w| (-100..=100).contains(w))
                .ok_or_else(|| {
                    cx.error(
                        w.span(),
                        format!("{key}.weight"),
                        "a whole number from -100 to 100",
                    )
                }),
        };
        if let (Some(zone), Some(codes), Some(weight)) =
            (cx.keep(zone), cx.keep(codes), cx.keep(weight))
        {
            lists.push(DnsList {
                zone,
                codes,
                weight,
            });
        }
    }

    let mut groups = Vec::new();
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (i, g) in raw.groups.iter().flatten().enumerate() {
        let span = g.span();
        let g = g.get_ref();
        let key = format!("sender_group[{i}]");
        if groups
            .iter()
            .any(|h: &SenderGroup| h.name == *g.name.get_ref())
        {
            let e = cx.error(
                g.name.span(),
                format!("{key}.name"),
                "a sender group of this name is already defined; names must be unique",
            );
            cx.errors.push(e);
            continue;
        }
        let mut matchers = Vec::new();
        for m in g.matches.get_ref() {
            match Matcher::parse(m.get_ref()) {
                Ok(mt) => {
                    if let Matcher::Listener(l) = &mt
                        && !listeners.contains(l)
                    {
                        let e = cx.error(
                            m.span(),
                            format!("{key}.match"),
                            format!(
                                "no listener is called {l:?}; listeners: {}",
                                listeners.join(", ")
                            ),
                        );
                        cx.errors.push(e);
                    }
                    matchers.push(mt);
                }
                Err(e) => {
                    let e = cx.error(m.span(), format!("{key}.match"), e.0);
                    cx.errors.push(e);
                }
            }
        }
        if matchers.is_empty() && g.matches.get_ref().is_empty() {
            let e = cx.error(
                g.matches.span(),
                format!("{key}.match"),
                "needs at least one entry (use [\"all\"] for every client)",
            );
            cx.errors.push(e);
        }
        let mut scoped = Vec::new();
        for l in g.listeners.iter().flatten() {
            if listeners.contains(l.get_ref()) {
                scoped.push(l.get_ref().clone());
            } else {
                let e = cx.error(
                    l.span(),
                    format!("{key}.listeners"),
                    format!(
                        "no listener is called {:?}; listeners: {}",
                        l.get_ref(),
                        listeners.join(", ")
                    ),
                );
                cx.errors.push(e);
            }
        }
        let Some(policy) = policies.iter().position(|p| p.name == *g.policy.get_ref()) else {
            let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
            let hint = did_you_mean(g.policy.get_ref(), &names)
                .map(|n| format!(" (did you mean {n:?}?)"))
                .unwrap_or_default();
            let e = cx.error(
                g.policy.span(),
                format!("{key}.policy"),
                format!(
                    "no [[mail_flow_policy]] is called {:?}{hint}; defined: {}",
                    g.policy.get_ref(),
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            );
            cx.errors.push(e);
            continue;
        };
        spans.push(span);
        groups.push(SenderGroup {
            name: g.name.get_ref().clone(),
            matchers,
            policy,
            listeners: scoped,
        });
    }
    let greylist = greylist(raw.greylist.as_ref(), cx);
    let auth_ban = auth_ban(raw.auth_ban.as_ref(), cx);
    if cx.errors.len() > before {
        return None;
    }
    let mut admission = Admission::new(groups, policies, lists);
    admission.greylist = greylist;
    admission.auth_ban = auth_ban;
    for l in lint(&admission) {
        let span = admission
            .groups
            .iter()
            .position(|g| l.subject == format!("sender_group {}", g.name))
            .and_then(|i| spans.get(i).cloned());
        let key = if l.subject.starts_with("mail_flow_policy") {
            "mail_flow_policy"
        } else {
            "sender_group"
        };
        cx.warn(span, key, format!("{}: {}", l.subject, l.message));
    }
    Some(admission)
}

fn greylist(raw: Option<&Spanned<RawGreylist>>, cx: &mut Ctx<'_>) -> GreylistSettings {
    let mut g = GreylistSettings::default();
    let Some(raw) = raw else {
        return g;
    };
    let r = raw.get_ref();
    if let Some(v) = &r.delay {
        g.delay = v.get_ref().0;
    }
    if let Some(v) = &r.retry_window {
        g.retry_window = v.get_ref().0;
    }
    if let Some(v) = &r.pass_lifetime {
        g.pass_lifetime = v.get_ref().0;
    }
    if let Some(v) = &r.auto_allow_after {
        g.auto_allow_after = v.get_ref().0;
    }
    if g.retry_window <= g.delay {
        let span = r
            .retry_window
            .as_ref()
            .map_or_else(|| raw.span(), Spanned::span);
        let e = cx.error(
            span,
            "greylist.retry_window",
            "must be longer than greylist.delay (a retry must be able to come back in time)",
        );
        cx.errors.push(e);
    }
    // The counter store keeps values for 1 ms … 366 days; outside that a
    // setting would silently switch the feature off.
    let max = std::time::Duration::from_hours(366 * 24);
    for (v, key, val) in [
        (&r.retry_window, "greylist.retry_window", g.retry_window),
        (&r.pass_lifetime, "greylist.pass_lifetime", g.pass_lifetime),
    ] {
        if val > max || val.is_zero() {
            let span = v.as_ref().map_or_else(|| raw.span(), Spanned::span);
            let e = cx.error(span, key, "must be between 1s and 366d");
            cx.errors.push(e);
        }
    }
    if g.delay.is_zero() {
        let span = r.delay.as_ref().map_or_else(|| raw.span(), Spanned::span);
        let e = cx.error(span, "greylist.delay", "must be at least 1s");
        cx.errors.push(e);
    }
    g
}

fn auth_ban(raw: Option<&Spanned<RawAuthBan>>, cx: &mut Ctx<'_>) -> AuthBanSettings {
    let mut b = AuthBanSettings::default();
    let Some(raw) = raw else {
        return b;
    };
    let r = raw.get_ref();
    b.enabled = r.enabled.unwrap_or(true);
    for (v, key, field) in [
        (
            &r.max_failures_per_ip,
            "auth_ban.max_failures_per_ip",
            &mut b.max_failures_per_ip,
        ),
        (
            &r.max_failures_per_login,
            "auth_ban.max_failures_per_login",
            &mut b.max_failures_per_login,
        ),
    ] {
        if let Some(v) = v {
            if v.get_ref().0 == 0 {
                let e = cx.error(
                    v.span(),
                    key,
                    "must be at least 1 (set enabled = false to ban nobody)",
                );
                cx.errors.push(e);
            }
            *field = v.get_ref().0;
        }
    }
    for (v, key, field) in [
        (&r.window, "auth_ban.window", &mut b.window),
        (&r.ban, "auth_ban.ban", &mut b.ban),
    ] {
        if let Some(v) = v {
            let d = v.get_ref().0;
            if d.as_secs() == 0 || d > std::time::Duration::from_hours(366 * 24) {
                let e = cx.error(v.span(), key, "must be between 1s and 366d");
                cx.errors.push(e);
            }
            *field = v.get_ref().0;
        }
    }
    b
}

fn flow_policy(
    p: &RawMailFlowPolicy,
    key: &str,
    quarantines: Option<&postern_spool::Quarantines>,
    cx: &Ctx<'_>,
) -> Result<MailFlowPolicy, ConfigError> {
    let action = FlowAction::parse(p.action.get_ref()).ok_or_else(|| {
        cx.error(
            p.action.span(),
            format!("{key}.action"),
            format!(
                "unknown action {:?}; allowed: {}",
                p.action.get_ref(),
                FlowAction::ALL.join(", ")
            ),
        )
    })?;
    let mut f = MailFlowPolicy::new(p.name.get_ref().trim(), action);
    if f.name.is_empty() {
        return Err(cx.error(p.name.span(), format!("{key}.name"), "must not be empty"));
    }
    if let Some(r) = &p.reject_at {
        f.reject_at = match r.get_ref().as_str() {
            "connect" => RejectAt::Connect,
            "rcpt" => RejectAt::Rcpt,
            other => {
                return Err(cx.error(
                    r.span(),
                    format!("{key}.reject_at"),
                    format!("unknown value {other:?}; allowed: \"connect\", \"rcpt\""),
                ));
            }
        };
    }
    if let Some(r) = &p.reply {
        let reply = parse_reply(r.get_ref()).ok_or_else(|| {
            cx.error(
                r.span(),
                format!("{key}.reply"),
                "a reply is CODE [X.Y.Z] TEXT, e.g. \"554 5.7.1 Access denied\"",
            )
        })?;
        let fits = match action {
            FlowAction::Reject => reply.code >= 500,
            FlowAction::TempFail => (400..500).contains(&reply.code),
            _ => false,
        };
        if !fits {
            return Err(cx.error(
                r.span(),
                format!("{key}.reply"),
                format!(
                    "a {} policy's reply must be {}",
                    action.as_str(),
                    match action {
                        FlowAction::Reject => "a 5xx code",
                        FlowAction::TempFail => "a 4xx code",
                        _ => "absent: only reject and tempfail policies reply",
                    }
                ),
            ));
        }
        f.reply = Some(reply);
    }
    if let Some(b) = &p.banner {
        let text = b.get_ref();
        if text.len() > 400 || text.chars().any(char::is_control) {
            return Err(cx.error(
                b.span(),
                format!("{key}.banner"),
                "one line of printable text, at most 400 characters",
            ));
        }
        f.banner = Some(text.clone());
    }
    f.tls = p.tls.as_ref().map(|t| t.get_ref().0);
    f.auth = p.auth.as_ref().map(|a| a.get_ref().0);
    f.require_ptr = p.require_ptr.unwrap_or(false);
    let positive = |v: &Option<Spanned<Count>>, name: &str| -> Result<Option<u64>, ConfigError> {
        match v {
            None => Ok(None),
            Some(c) if c.get_ref().0 == 0 => Err(cx.error(
                c.span(),
                format!("{key}.{name}"),
                "must be at least 1 (leave the key out for no limit)",
            )),
            Some(c) => Ok(Some(c.get_ref().0)),
        }
    };
    f.max_messages_per_session = positive(&p.max_messages_per_session, "max_messages_per_session")?;
    f.max_recipients_per_message =
        positive(&p.max_recipients_per_message, "max_recipients_per_message")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    if let Some(s) = &p.max_message_size
        && s.get_ref().0 == 0
    {
        return Err(cx.error(
            s.span(),
            format!("{key}.max_message_size"),
            "must be at least 1 octet (leave the key out for the listener's limit)",
        ));
    }
    f.max_message_size = p.max_message_size.as_ref().map(|s| s.get_ref().0);
    f.max_concurrent_connections_per_ip = positive(
        &p.max_concurrent_connections_per_ip,
        "max_concurrent_connections_per_ip",
    )?;
    f.max_connections_per_minute_per_ip = positive(
        &p.max_connections_per_minute_per_ip,
        "max_connections_per_minute_per_ip",
    )?;
    f.max_recipients_per_hour_per_ip = positive(
        &p.max_recipients_per_hour_per_ip,
        "max_recipients_per_hour_per_ip",
    )?;
    f.max_messages_per_hour_per_sender = positive(
        &p.max_messages_per_hour_per_sender,
        "max_messages_per_hour_per_sender",
    )?;
    f.sender_rate_exceptions = p
        .sender_rate_exceptions
        .iter()
        .flatten()
        .map(|s| s.get_ref().trim().to_owned())
        .collect();
    f.max_invalid_recipients_per_hour = positive(
        &p.max_invalid_recipients_per_hour,
        "max_invalid_recipients_per_hour",
    )?;
    f.dhap_drop = p.dhap_drop.unwrap_or(false);
    f.dhap_temporary = p.dhap_temporary.unwrap_or(false);
    f.greylist = p.greylist.unwrap_or(false);
    f.exempt_from_bans = p.exempt_from_bans.unwrap_or(false);
    f.verify = AuthChecks {
        spf: p.spf.unwrap_or(true),
        dkim: p.dkim.unwrap_or(true),
        dmarc: p.dmarc.unwrap_or(true),
    };
    let mut a = AuthActions::default();
    if let Some(v) = &p.spf_fail {
        a.spf_fail = v.get_ref().0;
    }
    if let Some(v) = &p.spf_at {
        a.spf_at = v.get_ref().0;
    }
    if let Some(v) = &p.dmarc_reject {
        a.dmarc_reject = v.get_ref().0;
    }
    if let Some(v) = &p.dmarc_quarantine {
        a.dmarc_quarantine = v.get_ref().0;
        if a.dmarc_quarantine == DmarcFailAction::Reject {
            return Err(cx.error(
                v.span(),
                format!("{key}.dmarc_quarantine"),
                "must be \"quarantine\", \"tag\" or \"accept\": the domain asked for \
                 quarantine, not rejection (RFC 7489 §6.3)",
            ));
        }
    }
    if let Some(v) = &p.auth_temperror {
        a.temperror = v.get_ref().0;
    }
    f.auth_actions = a;
    f.content = crate::content_policy::actions(p, key, quarantines, cx)?;
    Ok(f)
}

/// `554 5.7.1 Access denied` → a reply; the enhanced code's class must match
/// the code's (RFC 3463 §2).
fn parse_reply(s: &str) -> Option<Reply> {
    let s = s.trim();
    let (code, rest) = s.split_once(' ').unwrap_or((s, ""));
    let code: u16 = code.parse().ok().filter(|c| (400..600).contains(c))?;
    let rest = rest.trim_start();
    let (enhanced, text) = match rest.split_once(' ') {
        Some((first, text)) if first.split('.').count() == 3 => (Some(first), text),
        None if rest.split('.').count() == 3 => (Some(rest), ""),
        _ => (None, rest),
    };
    let enhanced = match enhanced {
        None => None,
        Some(e) => {
            let parts: Vec<u16> = e
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let class = u8::try_from(parts[0]).ok()?;
            if u16::from(class) != code / 100 {
                return None;
            }
            Some(EnhancedCode::new(class, parts[1], parts[2]))
        }
    };
    if text.chars().any(char::is_control) || text.len() > 400 {
        return None;
    }
    let text = if text.is_empty() { "Refused" } else { text };
    Some(Reply::new(code, enhanced, text))
}

#[cfg(test)]
mod tests {
    use super::parse_reply;

    #[test]
    fn replies() {
        let r = parse_reply("554 5.7.1 Go away now").unwrap();
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "554 5.7.1 Go away now\r\n"
        );
        let r = parse_reply("450 try later").unwrap();
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "450 try later\r\n"
        );
        assert!(parse_reply("554 4.7.1 mismatch").is_none());
        assert!(parse_reply("250 ok").is_none());
        assert!(parse_reply("abc").is_none());
    }
}

//! `[authentication]` and `[[dkim]]`: SPF / DKIM / ARC / DMARC verification of
//! inbound mail and DKIM signing of outbound mail (issue 10), from the file to
//! `postern_smtpd::AuthenticationSettings`. The per-policy actions
//! (`spf_fail`, `dmarc_reject`, …) are keys of `[[mail_flow_policy]]`
//! (`gateway.rs`).
//!
//! ```toml
//! [authentication]
//! verify = true                        # default false
//! authserv_id = "mx.example.net"       # default: the top-level hostname
//! max_verify_size = "25MiB"            # default: [limits] max_message_size; larger: header only
//! verify_memory = "256MiB"             # all sessions' messages held for verification
//! public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat"  # default: built in
//! trusted_arc_sealers = ["forwarder.example"]
//! dkim_sign = ["authenticated", "relay-clients", "pickup"]   # default; "all" signs pass-through too
//!
//! [[authentication.override]]          # accept SPF/DMARC failures for a domain, with a reason
//! domain = "lists.example.org"
//! reason = "mailing list rewrites the subject"
//!
//! [[dkim]]
//! domain = "example.com"
//! selector = "s2026"
//! key = "/etc/postern/dkim/example.com.s2026.pem"   # postern dkim keygen writes it
//! sign = true                          # false: keep (record published), sign nothing
//! canonicalization = "relaxed/relaxed" # default; or simple/simple, relaxed/simple, simple/relaxed
//! headers = ["From", "From", "To", "Subject", "Date", "Message-ID"]  # default: a full list, From oversigned
//! expire = "7d"                        # x= (optional)
//! ```
//!
//! # Security
//! Key files are loaded here, so a missing or unreadable key is a
//! configuration error with its line, not a surprise on the first message.
//! A key file readable by others gets a warning. Signing pass-through mail
//! (`dkim_sign = ["all"]`) gets a warning: it lends the domain to anyone who
//! can relay through us.

use std::path::PathBuf;

use postern_auth::signing::{DkimSigning, SignFor};
use postern_auth::verify::PublicSuffixList;
use postern_auth::{SignOptions, load_key};
use postern_dns::DnsSettings;
use postern_policy::authentication::{AuthExceptions, AuthOverride};
use postern_smtpd::AuthenticationSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::{Ctx, check_hostname, resolve};
use crate::error::ConfigError;
use crate::raw::{Choice, Dur, Pick, Size};

/// `[authentication]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAuthentication {
    pub verify: Option<bool>,
    pub authserv_id: Option<Spanned<String>>,
    pub max_verify_size: Option<Spanned<Size>>,
    pub verify_memory: Option<Spanned<Size>>,
    pub public_suffix_list: Option<Spanned<String>>,
    pub trusted_arc_sealers: Option<Vec<Spanned<String>>>,
    pub dkim_sign: Option<Spanned<Vec<Spanned<Pick<SignFor>>>>>,
    pub arc_domain: Option<Spanned<String>>,
    pub arc_selector: Option<Spanned<String>>,
    #[serde(rename = "override")]
    pub overrides: Option<Vec<Spanned<RawOverride>>>,
}

/// `[[authentication.override]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawOverride {
    pub domain: Spanned<String>,
    pub reason: Spanned<String>,
}

/// `[[dkim]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDkim {
    pub domain: Spanned<String>,
    pub selector: Spanned<String>,
    pub key: Spanned<String>,
    pub sign: Option<bool>,
    pub canonicalization: Option<Spanned<Pick<Canon>>>,
    pub headers: Option<Spanned<Vec<String>>>,
    pub expire: Option<Spanned<Dur>>,
}

/// `c=` header/body canonicalization (RFC 6376 §3.4): relaxed or simple each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Canon {
    header_relaxed: bool,
    body_relaxed: bool,
}

impl Choice for Canon {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("relaxed/relaxed", Self::of(true, true)),
        ("simple/simple", Self::of(false, false)),
        ("relaxed/simple", Self::of(true, false)),
        ("simple/relaxed", Self::of(false, true)),
        ("relaxed", Self::of(true, true)),
        ("simple", Self::of(false, false)),
    ];
}

impl Canon {
    const fn of(header_relaxed: bool, body_relaxed: bool) -> Self {
        Self {
            header_relaxed,
            body_relaxed,
        }
    }
}

impl Choice for SignFor {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("authenticated", Self::Authenticated),
        ("relay-clients", Self::RelayClients),
        ("pickup", Self::Pickup),
        ("all", Self::All),
    ];
}

/// The smallest `max_verify_size` accepted.
const MIN_VERIFY_SIZE: u64 = 64 * 1024;

/// Builds the settings.
pub(crate) fn build(
    raw: Option<Spanned<RawAuthentication>>,
    dkim: Option<Vec<Spanned<RawDkim>>>,
    dns: &DnsSettings,
    max_message_size: Option<u64>,
    hostname: Option<&str>,
    cx: &mut Ctx<'_>,
) -> Result<AuthenticationSettings, ConfigError> {
    let mut s = AuthenticationSettings {
        nameservers: dns.nameservers.clone(),
        dns_timeout: dns.timeout,
        ..AuthenticationSettings::default()
    };
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    s.verify = r.verify.unwrap_or(false);
    // One authserv-id for the whole server (every listener, and every node
    // behind one MX that shares the name), so a forgery naming it is removed
    // whichever listener receives it.
    s.authserv_id = hostname.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    if let Some(v) = &r.authserv_id {
        let id = v
            .get_ref()
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if check_hostname(&id, false).is_err() {
            return Err(cx.error(
                v.span(),
                "authentication.authserv_id",
                "must be a host name (RFC 8601 §2.5 recommends the receiving host's name), \
                 e.g. \"mx.example.net\"",
            ));
        }
        s.authserv_id = Some(id);
    }
    // Unset: every message the server accepts is verified whole (the
    // memory is bounded by verify_memory, not by refusing to look).
    if let Some(max) = max_message_size {
        s.max_verify_size = s.max_verify_size.max(max);
    }
    if let Some(v) = &r.max_verify_size {
        let n = v.get_ref().0;
        if n < MIN_VERIFY_SIZE {
            return Err(cx.error(
                v.span(),
                "authentication.max_verify_size",
                "must be at least \"64KiB\", e.g. \"25MiB\"",
            ));
        }
        s.max_verify_size = n;
        if let Some(max) = max_message_size
            && n < max
        {
            cx.warn(
                Some(v.span()),
                "authentication.max_verify_size",
                format!(
                    "smaller than [limits] max_message_size ({max} bytes): for larger messages \
                     only the header is read, no DKIM signature can pass, and DMARC passes only \
                     on aligned SPF (mail from DKIM-only domains with p=reject is refused)"
                ),
            );
        }
    }
    if let Some(v) = &r.verify_memory {
        let n = v.get_ref().0;
        if n < MIN_VERIFY_SIZE {
            return Err(cx.error(
                v.span(),
                "authentication.verify_memory",
                "must be at least \"64KiB\", e.g. \"256MiB\"",
            ));
        }
        s.verify_memory = n;
    }
    let psl = match &r.public_suffix_list {
        Some(v) => {
            let path = resolve(cx.base_dir, v.get_ref());
            // Read now: a missing or broken list is an error here, not a
            // server that will not start.
            let list = PublicSuffixList::from_file(&path).map_err(|e| {
                cx.error(v.span(), "authentication.public_suffix_list", e.to_string())
            })?;
            s.public_suffix_list = Some(path);
            list
        }
        None => PublicSuffixList::shipped(),
    };
    let mut exceptions = AuthExceptions::default();
    for (i, sealer) in r.trusted_arc_sealers.iter().flatten().enumerate() {
        let d = domain(
            sealer,
            &format!("authentication.trusted_arc_sealers[{i}]"),
            cx,
        )?;
        exceptions.trusted_arc_sealers.push(d);
    }
    for (i, o) in r.overrides.iter().flatten().enumerate() {
        let o = o.get_ref();
        let key = format!("authentication.override[{i}]");
        let d = registrable(&o.domain, &format!("{key}.domain"), &psl, cx)?;
        let reason = o.reason.get_ref().trim();
        if reason.is_empty() || reason.len() > 200 || reason.chars().any(char::is_control) {
            return Err(cx.error(
                o.reason.span(),
                format!("{key}.reason"),
                "must be 1 to 200 printable characters saying why (it is logged and reported)",
            ));
        }
        exceptions.overrides.push(AuthOverride {
            domain: d,
            reason: reason.to_owned(),
        });
    }
    s.exceptions = exceptions;
    if let Some(v) = &r.dkim_sign {
        let list: Vec<SignFor> = v.get_ref().iter().map(|p| p.get_ref().0).collect();
        if list.contains(&SignFor::All) {
            cx.warn(
                Some(v.span()),
                "authentication.dkim_sign",
                "\"all\" signs mail merely passing through as well: anyone who can relay \
                 through this server gets your domain's signature",
            );
        }
        s.signing.sign_for = list;
    }
    s.signing.keys = keys(&dkim.unwrap_or_default(), cx)?;
    match (&r.arc_domain, &r.arc_selector) {
        (Some(d), Some(sel)) => {
            let dom = domain(d, "authentication.arc_domain", cx)?;
            let selector = sel.get_ref().trim().to_ascii_lowercase();
            let Some(k) = s
                .signing
                .keys
                .iter()
                .find(|k| k.domain == dom && k.selector == selector)
            else {
                return Err(cx.error(
                    sel.span(),
                    "authentication.arc_selector",
                    format!(
                        "no [[dkim]] key for domain {dom:?} and selector {selector:?}: ARC seals \
                         use a [[dkim]] RSA key (add one with `postern dkim keygen --algorithm rsa2048`)"
                    ),
                ));
            };
            if postern_auth::load_key(&k.key)
                .is_ok_and(|f| f.algorithm != postern_auth::Algorithm::Rsa)
            {
                return Err(cx.error(
                    sel.span(),
                    "authentication.arc_selector",
                    "the [[dkim]] key of this selector is Ed25519: ARC seals are rsa-sha256 only (RFC 8617 §4.1.3)",
                ));
            }
            s.arc_seal = Some(postern_smtpd::ArcSealSettings {
                domain: dom,
                selector,
                key: k.key.clone(),
                routes: Vec::new(),
            });
        }
        (Some(v), None) | (None, Some(v)) => {
            return Err(cx.error(
                v.span(),
                "authentication.arc_domain",
                "arc_domain and arc_selector go together: the [[dkim]] RSA key that seals",
            ));
        }
        (None, None) => {}
    }
    Ok(s)
}

/// A domain name value, lower case, no trailing dot.
fn domain(v: &Spanned<String>, key: &str, cx: &Ctx<'_>) -> Result<String, ConfigError> {
    let d = v
        .get_ref()
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if !d.contains('.') || check_hostname(&d, false).is_err() {
        return Err(cx.error(v.span(), key, "must be a domain name, e.g. \"example.com\""));
    }
    Ok(d)
}

/// A domain that must be registrable: an override or trusted sealer of a
/// public suffix (`co.uk`) would cover every domain under it.
fn registrable(
    v: &Spanned<String>,
    key: &str,
    psl: &PublicSuffixList,
    cx: &Ctx<'_>,
) -> Result<String, ConfigError> {
    let d = domain(v, key, cx)?;
    if psl.public_suffix(&d) == d {
        return Err(cx.error(
            v.span(),
            key,
            format!(
                "{d} is a public suffix (it would cover every domain registered under it): \
                 name the organisation's domain, e.g. \"example.{d}\""
            ),
        ));
    }
    Ok(d)
}

/// The `[[dkim]]` keys, each loaded once to check it.
fn keys(raw: &[Spanned<RawDkim>], cx: &mut Ctx<'_>) -> Result<Vec<DkimSigning>, ConfigError> {
    let mut out: Vec<DkimSigning> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let e = entry.get_ref();
        let key = format!("dkim[{i}]");
        let d = domain(&e.domain, &format!("{key}.domain"), cx)?;
        let selector = e.selector.get_ref().trim().to_ascii_lowercase();
        if postern_auth::keys::check_name("selector", &selector).is_err() {
            return Err(cx.error(
                e.selector.span(),
                format!("{key}.selector"),
                "must be one or more DNS labels (letters, digits, hyphens), e.g. \"s2026\"",
            ));
        }
        if out.iter().any(|k| k.domain == d && k.selector == selector) {
            return Err(cx.error(
                entry.span(),
                key,
                format!("a second key for {d} with selector {selector}"),
            ));
        }
        let path: PathBuf = resolve(cx.base_dir, e.key.get_ref());
        let sign = e.sign.unwrap_or(true);
        if sign {
            if let Err(err) = load_key(&path) {
                return Err(cx.error(e.key.span(), format!("{key}.key"), err.to_string()));
            }
            key_permissions(&path, &format!("{key}.key"), &e.key, cx);
        }
        let mut options = SignOptions::default();
        if let Some(c) = &e.canonicalization {
            let c = c.get_ref().0;
            options.header_relaxed = c.header_relaxed;
            options.body_relaxed = c.body_relaxed;
        }
        if let Some(h) = &e.headers {
            let list: Vec<String> = h.get_ref().iter().map(|s| s.trim().to_owned()).collect();
            if !list.iter().any(|n| n.eq_ignore_ascii_case("from")) {
                return Err(cx.error(
                    h.span(),
                    format!("{key}.headers"),
                    "must include \"From\" (RFC 6376 §5.4: the From field MUST be signed)",
                ));
            }
            if list
                .iter()
                .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
            {
                return Err(cx.error(
                    h.span(),
                    format!("{key}.headers"),
                    "header names are printable ASCII without ':' or spaces",
                ));
            }
            options.headers = list;
        }
        if let Some(x) = &e.expire {
            options.expire_after = x.get_ref().0.as_secs();
        }
        out.push(DkimSigning {
            domain: d,
            selector,
            key: path,
            sign,
            options,
        });
    }
    Ok(out)
}

/// Warns when a private key is readable by group or others.
fn key_permissions(path: &std::path::Path, key: &str, v: &Spanned<String>, cx: &mut Ctx<'_>) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        cx.warn(
            Some(v.span()),
            key,
            format!(
                "{} is readable by other users (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
        );
    }
}

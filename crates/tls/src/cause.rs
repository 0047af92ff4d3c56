//! The TLS failure-cause catalogue: a closed set of stable ids, each turned into
//! a one-line summary and the smallest safe fix for an operator. This is the
//! one place a TLS handshake error is classified (as rustls maps errors to
//! alerts): inbound failures here ([`classify_inbound`], called by the
//! listener's log), outbound ones in [`outbound`] ([`classify_outbound`],
//! called by the SMTP client for delivery, `tls verify`, `cert check` and
//! `send`).
//!
//! Ids are API: logs, the tracking DB and metrics key on them. Add ids; never
//! rename or reuse one ([`RETIRED`] lists the ids no longer produced).
//!
//! Fix texts name configuration keys as `` `[table] key` `` or
//! `` `[table] key = value, key = value` `` and commands as `` `postern …` ``,
//! always in backticks; `crates/postern/tests/catalogues.rs` renders every
//! cause and checks each key against the configuration schema and each
//! command against the CLI.
//!
//! # Security
//! Reads the error and what the peer offered (untrusted, but only compared and
//! printed as names). A fix never suggests enabling a protocol or suite rustls
//! cannot speak, and it says when the only fix is on the client.
//!
//! # Standards
//! RFC 8446 §6 (alerts), RFC 5246 §7.2, RFC 8996 (TLS 1.0/1.1 deprecated),
//! RFC 7435 (opportunistic security: most MTAs retry in plaintext).

pub mod outbound;

pub use outbound::{Advice, Peer, classify_outbound};

use std::error::Error as StdError;
use std::io;

use rustls::{AlertDescription, PeerIncompatible};

use crate::facts::ClientHelloSummary;
use crate::settings::{TlsSettings, TlsVersion};
use crate::suites;

/// Client and server have no protocol version in common.
pub const NO_SHARED_VERSION: &str = "tls.no_shared_version";
/// Client and server have no cipher suite in common.
pub const NO_SHARED_CIPHER: &str = "tls.no_shared_cipher";
/// Client and server have no key-exchange group in common.
pub const NO_SHARED_GROUP: &str = "tls.no_shared_group";
/// The client cannot verify a signature made with any of our keys.
pub const NO_SHARED_SIGNATURE_SCHEME: &str = "tls.no_shared_signature_scheme";
/// The client refused our certificate (bad_certificate, unknown_ca, …).
pub const CLIENT_REJECTED_CERTIFICATE: &str = "tls.client_rejected_certificate";
/// The client aborted with another alert.
pub const CLIENT_ALERT: &str = "tls.client_alert";
/// We had no certificate to present.
pub const NO_CERTIFICATE: &str = "tls.no_certificate";
/// The peer closed the connection during the handshake.
pub const PEER_CLOSED: &str = "tls.peer_closed";
/// The peer did not speak TLS at all (plaintext).
pub const NOT_TLS: &str = "tls.not_tls";
/// The handshake did not finish in time.
pub const TIMEOUT: &str = "tls.timeout";
/// The peer broke the protocol (malformed or unexpected messages).
pub const PROTOCOL_ERROR: &str = "tls.protocol_error";
/// A socket error other than a close.
pub const IO_ERROR: &str = "tls.io_error";
/// Anything else; the detail carries the raw error.
pub const UNKNOWN: &str = "tls.unknown";

/// Every cause id, for documentation and tests.
pub const ALL: &[&str] = &[
    NO_SHARED_VERSION,
    NO_SHARED_CIPHER,
    NO_SHARED_GROUP,
    NO_SHARED_SIGNATURE_SCHEME,
    CLIENT_REJECTED_CERTIFICATE,
    CLIENT_ALERT,
    NO_CERTIFICATE,
    PEER_CLOSED,
    NOT_TLS,
    TIMEOUT,
    PROTOCOL_ERROR,
    IO_ERROR,
    UNKNOWN,
];

/// Ids no longer produced, never to be reused: `tls.out.peer_closed_after_client_hello`
/// (a peer that closes after our ClientHello is `tls.no_shared_version`, like
/// one that sends a `protocol_version` alert: one root cause, one id).
pub const RETIRED: &[&str] = &["tls.out.peer_closed_after_client_hello"];

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cause {
    /// Stable id from the catalogue, e.g. `tls.no_shared_version`.
    pub id: &'static str,
    /// What happened, in one sentence.
    pub summary: String,
    /// The smallest safe fix, or why there is none on our side.
    pub fix: String,
    /// The raw error text, for the transcript.
    pub detail: String,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (fix: {})", self.id, self.summary, self.fix)
    }
}

/// Classifies an inbound handshake failure from the error (a `rustls::Error`, an
/// `io::Error` — possibly wrapping one, as tokio-rustls does — or anything with
/// either in its `source()` chain), what the client offered (when the
/// ClientHello was captured) and the listener's settings.
///
/// Timeouts: pass an `io::Error` of kind `TimedOut` (tokio's `Elapsed` is also
/// recognised).
pub fn classify_inbound(
    err: &(dyn StdError + 'static),
    offered: Option<&ClientHelloSummary>,
    settings: &TlsSettings,
) -> Cause {
    let detail = err.to_string();
    let (tls, io_kind) = find_errors(err);
    if let Some(tls) = tls {
        return from_rustls(tls, offered, settings, detail);
    }
    if let Some(kind) = io_kind {
        return from_io(kind, offered, detail);
    }
    if detail == "deadline has elapsed" {
        return from_io(io::ErrorKind::TimedOut, offered, detail);
    }
    cause(
        UNKNOWN,
        format!("the TLS handshake failed: {detail}"),
        "look at the detail; if it repeats, report it with the session transcript".to_owned(),
        detail,
    )
}

pub(crate) fn cause(id: &'static str, summary: String, fix: String, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix,
        detail,
    }
}

pub(crate) use cause as mk;

/// `host:port`, or `[v6]:port` for an IPv6 literal: what `postern cert check
/// --remote` and `postern tls scan` take.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `` `[[route]] domains = ["a.example"], tls = "opportunistic"` ``: a route
/// for the recipient domains (routes match recipient domains, not MX hosts);
/// `RECIPIENT-DOMAIN` stands in when they are not known.
pub fn route_snippet(domains: &[String], level: &str) -> String {
    let list = if domains.is_empty() {
        "\"RECIPIENT-DOMAIN\"".to_owned()
    } else {
        domains
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("`[[route]] domains = [{list}], tls = \"{level}\"`")
}

/// The first rustls error and the first io error kind in the chain.
pub(crate) fn find_errors<'a>(
    err: &'a (dyn StdError + 'static),
) -> (Option<&'a rustls::Error>, Option<io::ErrorKind>) {
    let mut io_kind = None;
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return (Some(tls), io_kind);
        }
        if let Some(ioe) = e.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(ioe.kind());
            // io::Error::source() skips the wrapped error itself; look inside.
            if let Some(inner) = ioe.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return (Some(tls), io_kind);
                }
                cur = Some(inner);
                continue;
            }
        }
        cur = e.source();
    }
    (None, io_kind)
}

fn ours(settings: &TlsSettings) -> Vec<TlsVersion> {
    TlsVersion::ALL
        .into_iter()
        .filter(|v| (settings.min_version..=settings.max_version).contains(v))
        .collect()
}

fn describe_versions(vs: &[TlsVersion]) -> String {
    match vs {
        [] => "no version".to_owned(),
        [one] => format!("{one} only"),
        [a, b] => format!("{a} and {}", b.as_config_str()),
        _ => vs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn from_rustls(
    err: &rustls::Error,
    offered: Option<&ClientHelloSummary>,
    settings: &TlsSettings,
    detail: String,
) -> Cause {
    use rustls::Error as E;
    match err {
        E::PeerIncompatible(p) => match p {
            PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::SignatureAlgorithmsExtensionRequired
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::ServerDoesNotSupportTls12Or13 => {
                no_shared_version(p, offered, settings, detail)
            }
            PeerIncompatible::NoCipherSuitesInCommon => no_shared_cipher(offered, settings, detail),
            PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NamedGroupsExtensionRequired
            | PeerIncompatible::KeyShareExtensionRequired => {
                let client = offered.map_or_else(
                    || "not captured".to_owned(),
                    |o| list_or_none(&o.group_names()),
                );
                cause(
                    NO_SHARED_GROUP,
                    format!(
                        "no key-exchange group in common: the client offered {client}; this \
                         listener accepts {}",
                        our_group_names(settings)
                    ),
                    "add one of the client's groups that rustls supports (x25519, secp256r1, \
                     secp384r1) to `[tls] groups`, or remove `[tls] groups` for the defaults"
                        .to_owned(),
                    detail,
                )
            }
            PeerIncompatible::NoSignatureSchemesInCommon => cause(
                NO_SHARED_SIGNATURE_SCHEME,
                "the client cannot verify a signature made with our certificate's key type"
                    .to_owned(),
                "add a second certificate with the other key type (RSA and ECDSA) for the same \
                 hostnames; the resolver picks the one each client can verify"
                    .to_owned(),
                detail,
            ),
            _ => cause(
                PROTOCOL_ERROR,
                format!(
                    "the client's ClientHello is incompatible with TLS 1.2/1.3 as rustls implements it ({p:?})"
                ),
                "none on our side; the client's TLS stack is outdated or broken".to_owned(),
                detail,
            ),
        },
        E::AlertReceived(alert) => from_alert(*alert, offered, settings, detail),
        E::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
            | rustls::InvalidMessage::UnknownProtocolVersion,
        ) => not_tls(detail),
        E::General(msg) if msg.contains("no server certificate") => cause(
            NO_CERTIFICATE,
            "we had no certificate to present to this client".to_owned(),
            "configure a certificate: `[[tls.certificate]] cert = \"FILE\", key = \"FILE\"`"
                .to_owned(),
            detail,
        ),
        E::InvalidMessage(_)
        | E::PeerMisbehaved(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError => cause(
            PROTOCOL_ERROR,
            format!("the client broke the TLS protocol: {err}"),
            "none on our side; if one client does this repeatedly, its TLS stack is broken or \
             something in the path rewrites traffic"
                .to_owned(),
            detail,
        ),
        _ => cause(
            UNKNOWN,
            format!("the TLS handshake failed: {err}"),
            "look at the detail; if it repeats, report it with the session transcript".to_owned(),
            detail,
        ),
    }
}

/// What we know of the versions a client offered.
enum Offered {
    /// These versions (1.2 and/or 1.3).
    Known(Vec<TlsVersion>),
    /// Only versions older than TLS 1.2.
    OlderOnly,
    /// Not known.
    Unknown,
}

fn no_shared_version(
    p: &PeerIncompatible,
    offered: Option<&ClientHelloSummary>,
    settings: &TlsSettings,
    detail: String,
) -> Cause {
    let ours = ours(settings);
    // rustls does not expose the supported_versions extension, but which check
    // failed (rustls server/hs.rs) together with our own range tells exactly what
    // the client offered; the suite-based hint is the fallback.
    let theirs = match p {
        // No supported_versions extension and legacy_version 1.2: TLS 1.2 at most.
        PeerIncompatible::SupportedVersionsExtensionRequired => {
            Offered::Known(vec![TlsVersion::Tls12])
        }
        // legacy_version below 1.2 and no supported_versions; or no
        // signature_algorithms extension, which every TLS 1.2+ client sends
        // (RFC 5246 §7.4.1.4.1; rustls requires it, so the Acceptor refuses such
        // a ClientHello before we see it).
        PeerIncompatible::Tls12NotOffered
        | PeerIncompatible::SignatureAlgorithmsExtensionRequired => Offered::OlderOnly,
        // supported_versions sent, but neither an offered 1.3 we enable nor an
        // offered 1.2 we enable.
        PeerIncompatible::Tls12NotOfferedOrEnabled => match ours.as_slice() {
            [TlsVersion::Tls12] => Offered::Known(vec![TlsVersion::Tls13]),
            [TlsVersion::Tls13] => Offered::Known(vec![TlsVersion::Tls12]),
            _ => Offered::OlderOnly,
        },
        _ => match offered {
            Some(o) if !o.suite_versions.is_empty() => Offered::Known(o.suite_versions.clone()),
            _ => Offered::Unknown,
        },
    };
    let accepts = describe_versions(&ours);
    let (summary, fix) = match theirs {
        Offered::Known(v) => {
            let summary = format!(
                "client offered {}; this listener accepts {accepts}",
                match v.as_slice() {
                    [one] => format!("only {one}"),
                    many => describe_versions(many),
                }
            );
            let fix = if v.contains(&TlsVersion::Tls12) && settings.min_version > TlsVersion::Tls12
            {
                "set `[tls] min_version = \"1.2\"` if you must accept it".to_owned()
            } else if v.contains(&TlsVersion::Tls13) && settings.max_version < TlsVersion::Tls13 {
                "set `[tls] max_version = \"1.3\"`; TLS 1.3 is the better protocol".to_owned()
            } else {
                "none on our side: rustls speaks only TLS 1.2 and 1.3; the client must be upgraded"
                    .to_owned()
            };
            (summary, fix)
        }
        Offered::OlderOnly => (
            format!("client offered only TLS 1.1 or older; this listener accepts {accepts}"),
            "none on our side: TLS 1.0/1.1 are deprecated (RFC 8996) and not implemented; the \
             client must be upgraded (most MTAs then retry without STARTTLS)"
                .to_owned(),
        ),
        Offered::Unknown => (
            format!("no protocol version in common; this listener accepts {accepts}"),
            "compare the client's TLS versions with `[tls] min_version` and `[tls] max_version`"
                .to_owned(),
        ),
    };
    cause(NO_SHARED_VERSION, summary, fix, detail)
}

fn our_suites(settings: &TlsSettings) -> Vec<u16> {
    let ids = if settings.cipher_suites.is_empty() {
        suites::default_order()
    } else {
        settings.cipher_suites.clone()
    };
    let ours = ours(settings);
    ids.into_iter()
        .filter(|id| {
            suites::by_id(*id).is_some_and(|s| {
                ours.contains(&if s.tls13 {
                    TlsVersion::Tls13
                } else {
                    TlsVersion::Tls12
                })
            })
        })
        .collect()
}

fn no_shared_cipher(
    offered: Option<&ClientHelloSummary>,
    settings: &TlsSettings,
    detail: String,
) -> Cause {
    let our = our_suites(settings);
    let our_names: Vec<String> = our.iter().map(|id| suites::display_name(*id)).collect();
    let Some(o) = offered else {
        return cause(
            NO_SHARED_CIPHER,
            format!(
                "no cipher suite in common (the client's offer was not captured); this listener \
                 accepts {}",
                list_or_none(&our_names)
            ),
            "capture the ClientHello (debug logging) to see what the client offers".to_owned(),
            detail,
        );
    };
    let summary = format!(
        "no cipher suite in common: the client offered {}; this listener accepts {}",
        list_or_none(&o.suite_names()),
        list_or_none(&our_names)
    );
    let shared: Vec<u16> = o
        .cipher_suites
        .iter()
        .copied()
        .filter(|id| our.contains(id))
        .collect();
    let addable: Vec<&'static suites::SuiteInfo> = o
        .cipher_suites
        .iter()
        .filter_map(|id| suites::by_id(*id))
        .filter(|s| s.is_rustls_supported() && !our.contains(&s.id))
        .collect();
    let fix = if !shared.is_empty() {
        format!(
            "the suites we share ({}) need a certificate key of another type than ours; add a \
             certificate with the other key type (RSA or ECDSA) for the same hostnames",
            shared
                .iter()
                .map(|id| suites::display_name(*id))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if let Some(first) = addable.first() {
        format!(
            "add {} to `[tls] cipher_suites` (the client supports it and it is a safe AEAD suite)",
            first.iana
        )
    } else {
        let why = o
            .cipher_suites
            .iter()
            .filter_map(|id| suites::by_id(*id))
            .find_map(suites::SuiteInfo::unsupported_reason)
            .unwrap_or("none of its suites is known");
        format!(
            "none on our side: every suite the client offered is unsupported (e.g. {why}); the \
             client must be upgraded (most MTAs then retry without STARTTLS)"
        )
    };
    cause(NO_SHARED_CIPHER, summary, fix, detail)
}

fn our_group_names(settings: &TlsSettings) -> String {
    let ids = if settings.kx_groups.is_empty() {
        crate::groups::default_order()
    } else {
        settings.kx_groups.clone()
    };
    ids.iter()
        .map(|id| crate::groups::display_name(*id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}

pub(crate) fn alert_name(alert: AlertDescription) -> String {
    // rustls' Debug spelling is CamelCase (`BadCertificate`); RFC 8446 §6 uses
    // snake_case (`bad_certificate`).
    let camel = format!("{alert:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.replace("_c_a", "_ca")
}

fn from_alert(
    alert: AlertDescription,
    offered: Option<&ClientHelloSummary>,
    settings: &TlsSettings,
    detail: String,
) -> Cause {
    use AlertDescription as A;
    let name = alert_name(alert);
    match alert {
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::BadCertificateStatusResponse => {
            let summary = match alert {
                A::UnknownCA => format!(
                    "the client does not trust our certificate: it does not know the issuing CA (alert {name})"
                ),
                A::CertificateExpired => format!(
                    "the client does not trust our certificate: it says the certificate has expired (alert {name})"
                ),
                _ => format!("the client does not trust our certificate (alert {name})"),
            };
            cause(
                CLIENT_REJECTED_CERTIFICATE,
                summary,
                "use a certificate from a CA the client trusts, covering the hostname it \
                 connects to (the MX name), and send the full intermediate chain; check it with \
                 `postern cert check --config FILE`"
                    .to_owned(),
                detail,
            )
        }
        A::ProtocolVersion => no_shared_version(
            &PeerIncompatible::ServerDoesNotSupportTls12Or13,
            offered,
            settings,
            detail,
        ),
        A::CloseNotify | A::UserCanceled => peer_closed(detail),
        _ => cause(
            CLIENT_ALERT,
            format!("the client aborted the handshake with alert {name}"),
            if matches!(alert, A::HandshakeFailure | A::InsufficientSecurity) {
                "the client accepts none of what we offered (suites, groups or key type); \
                 compare its ClientHello with our settings"
                    .to_owned()
            } else {
                "look at the client's side; the alert names its complaint".to_owned()
            },
            detail,
        ),
    }
}

fn not_tls(detail: String) -> Cause {
    cause(
        NOT_TLS,
        "the client did not send a TLS ClientHello (plaintext, e.g. SMTP commands on an \
         implicit-TLS port)"
            .to_owned(),
        "point the client at the right port: implicit TLS on 465, STARTTLS on 587 and 25"
            .to_owned(),
        detail,
    )
}

fn peer_closed(detail: String) -> Cause {
    cause(
        PEER_CLOSED,
        "the client closed the connection during the TLS handshake".to_owned(),
        "usually the client gave up on our certificate or offer without sending an alert; if \
         every client does this, check the certificate with `postern cert check --config FILE`"
            .to_owned(),
        detail,
    )
}

fn from_io(kind: io::ErrorKind, _offered: Option<&ClientHelloSummary>, detail: String) -> Cause {
    use io::ErrorKind as K;
    match kind {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            peer_closed(detail)
        }
        K::TimedOut | K::WouldBlock => cause(
            TIMEOUT,
            "the TLS handshake did not complete in time".to_owned(),
            "a slow or stalled client; if it is frequent, look for network problems (MTU, \
             middleboxes) before raising `[limits] tls_handshake_timeout`"
                .to_owned(),
            detail,
        ),
        _ => cause(
            IO_ERROR,
            format!("the connection failed during the TLS handshake: {detail}"),
            "a network problem between the client and us; nothing to change in TLS settings"
                .to_owned(),
            detail,
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tls13_only() -> TlsSettings {
        TlsSettings {
            min_version: TlsVersion::Tls13,
            ..TlsSettings::default()
        }
    }

    #[test]
    fn ids_are_unique_and_namespaced() {
        let mut ids = ALL.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        assert!(ALL.iter().all(|id| id.starts_with("tls.")));
    }

    #[test]
    fn tls12_client_vs_tls13_listener() {
        let err =
            rustls::Error::PeerIncompatible(PeerIncompatible::SupportedVersionsExtensionRequired);
        let c = classify_inbound(&err, None, &tls13_only());
        assert_eq!(c.id, NO_SHARED_VERSION);
        assert_eq!(
            c.summary,
            "client offered only TLS 1.2; this listener accepts TLS 1.3 only"
        );
        assert_eq!(
            c.fix,
            "set `[tls] min_version = \"1.2\"` if you must accept it"
        );
    }

    #[test]
    fn wrapped_in_io_error() {
        let inner = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        let err = io::Error::new(io::ErrorKind::InvalidData, inner);
        let c = classify_inbound(&err, None, &TlsSettings::default());
        assert_eq!(c.id, CLIENT_REJECTED_CERTIFICATE);
        assert!(c.summary.contains("does not trust our certificate"), "{c}");
        assert!(c.summary.contains("unknown_ca"), "{c}");
    }

    #[test]
    fn bad_certificate_alert() {
        let err = rustls::Error::AlertReceived(AlertDescription::BadCertificate);
        let c = classify_inbound(&err, None, &TlsSettings::default());
        assert_eq!(c.id, CLIENT_REJECTED_CERTIFICATE);
        assert!(c.summary.contains("(alert bad_certificate)"), "{c}");
    }

    #[test]
    fn io_kinds() {
        let s = TlsSettings::default();
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(classify_inbound(&eof, None, &s).id, PEER_CLOSED);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify_inbound(&reset, None, &s).id, PEER_CLOSED);
        let t = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify_inbound(&t, None, &s).id, TIMEOUT);
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(classify_inbound(&other, None, &s).id, IO_ERROR);
    }

    #[test]
    fn plaintext() {
        let err = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(
            classify_inbound(&err, None, &TlsSettings::default()).id,
            NOT_TLS
        );
    }

    #[test]
    fn legacy_client_no_cipher() {
        let offered = ClientHelloSummary {
            cipher_suites: vec![0x002f, 0x0035, 0x000a],
            suite_versions: vec![TlsVersion::Tls12],
            ..ClientHelloSummary::default()
        };
        let err = rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon);
        let c = classify_inbound(&err, Some(&offered), &TlsSettings::default());
        assert_eq!(c.id, NO_SHARED_CIPHER);
        assert!(
            c.summary
                .contains("the client offered TLS_RSA_WITH_AES_128_CBC_SHA"),
            "{c}"
        );
        assert!(
            c.summary
                .contains("this listener accepts TLS_AES_256_GCM_SHA384"),
            "{c}"
        );
        assert!(c.fix.starts_with("none on our side"), "{c}");
        assert!(c.fix.contains("static RSA"), "{c}");
    }

    #[test]
    fn alert_names_are_rfc_spelling() {
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
    }
}

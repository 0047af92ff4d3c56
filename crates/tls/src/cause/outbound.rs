//! The outbound side of the failure-cause catalogue: what an outbound
//! handshake error means, in the `tls.*` ids shared with the inbound side
//! where they fit and `tls.out.*` ids where only a client can fail.
//!
//! # Security
//! Reads the error only; summaries quote names the peer sent (untrusted),
//! printed only.
//!
//! # Standards
//! RFC 8446 §6 (alerts), RFC 8996 (TLS 1.0/1.1 deprecated), RFC 7435
//! (opportunistic security).

use std::error::Error as StdError;
use std::io;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use crate::cause::{self, Cause};
use crate::client::PkixRefusal;
use crate::settings::TlsVersion;

/// The peer closed the connection during our handshake, before any alert.
pub const PEER_CLOSED_AFTER_CLIENT_HELLO: &str = "tls.out.peer_closed_after_client_hello";
/// The peer aborted the handshake with an alert we have no better id for.
pub const PEER_ALERT: &str = "tls.out.peer_alert";
/// The peer refused the client certificate we presented.
pub const CLIENT_CERTIFICATE_REJECTED: &str = "tls.out.client_certificate_rejected";
/// The certificate does not cover the name we connected to (the MX name).
pub const CERT_NAME_MISMATCH: &str = "tls.out.cert_name_mismatch";
/// The chain ends in a certificate issued by a CA that was neither sent nor trusted.
pub const CHAIN_INCOMPLETE: &str = "tls.out.chain_incomplete";
/// The server certificate is self-signed.
pub const CERT_SELF_SIGNED: &str = "tls.out.cert_self_signed";
/// The chain ends in a root we do not trust.
pub const CERT_UNTRUSTED: &str = "tls.out.cert_untrusted";
/// A certificate of the chain has expired.
pub const CERT_EXPIRED: &str = "tls.out.cert_expired";
/// A certificate of the chain is not valid yet.
pub const CERT_NOT_YET_VALID: &str = "tls.out.cert_not_yet_valid";
/// Any other certificate problem (bad signature, encoding, purpose, revoked).
pub const CERT_INVALID: &str = "tls.out.cert_invalid";

/// Every outbound-only cause id (the shared ids of [`crate::cause`] are
/// reused where they fit: no shared version / cipher / group, not TLS,
/// timeout, protocol error, I/O error, unknown).
pub const OUTBOUND_IDS: &[&str] = &[
    PEER_CLOSED_AFTER_CLIENT_HELLO,
    PEER_ALERT,
    CLIENT_CERTIFICATE_REJECTED,
    CERT_NAME_MISMATCH,
    CHAIN_INCOMPLETE,
    CERT_SELF_SIGNED,
    CERT_UNTRUSTED,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    CERT_INVALID,
];

/// `TLS 1.2–1.3`, `TLS 1.3 only`.
fn describe_offer(offered: &[TlsVersion]) -> String {
    match offered {
        [] => "no TLS version".to_owned(),
        [one] => format!("{one} only"),
        [first, .., last] => format!("{first}–{}", last.as_config_str()),
    }
}

/// Classifies an outbound handshake failure: `err` is what the handshake
/// returned (a `rustls::Error`, an `io::Error` possibly wrapping one as
/// tokio-rustls does, or a tokio timeout), `offered` the versions we offered,
/// `domain` the destination for the fix text (`route <domain> with …`).
///
/// Certificate problems only reach here in [`Verify::Pkix`] mode; in
/// [`Verify::Record`] mode see [`PeerVerdict::cause`].
pub fn outbound_cause(
    err: &(dyn StdError + 'static),
    offered: &[TlsVersion],
    domain: Option<&str>,
) -> Cause {
    let detail = err.to_string();
    let (tls, io_kind) = find_errors(err);
    let dest = domain.unwrap_or("this destination");
    let ours = describe_offer(offered);
    if let Some(tls) = tls {
        return from_rustls(tls, &ours, offered, dest, detail);
    }
    match io_kind {
        Some(
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => peer_closed(&ours, offered, dest, detail),
        Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => timeout(detail),
        Some(_) => mk(
            cause::IO_ERROR,
            format!("the connection failed during the TLS handshake: {detail}"),
            "a network problem between us and the peer; nothing to change in TLS settings; \
             delivery retries later"
                .to_owned(),
            detail,
        ),
        None if detail == "deadline has elapsed" => timeout(detail),
        None => mk(
            cause::UNKNOWN,
            format!("the TLS handshake failed: {detail}"),
            "look at the detail; if it repeats, report it with the transcript".to_owned(),
            detail,
        ),
    }
}

fn mk(id: &'static str, summary: String, fix: String, detail: String) -> Cause {
    Cause {
        id,
        summary,
        fix,
        detail,
    }
}

fn timeout(detail: String) -> Cause {
    mk(
        cause::TIMEOUT,
        "the TLS handshake with the peer did not complete in time".to_owned(),
        "a slow or stalled peer or a middlebox dropping large packets (MTU); delivery retries \
         later"
            .to_owned(),
        detail,
    )
}

fn peer_closed(ours: &str, offered: &[TlsVersion], dest: &str, detail: String) -> Cause {
    let likely = if offered == [TlsVersion::Tls13] {
        "the peer most likely does not support TLS 1.3 (or only TLS 1.0/1.1)"
    } else {
        "the peer most likely supports only TLS 1.0/1.1"
    };
    let extra = if offered == [TlsVersion::Tls13] {
        format!("allow TLS 1.2 for {dest} (min_version = \"1.2\"), ")
    } else {
        String::new()
    };
    mk(
        PEER_CLOSED_AFTER_CLIENT_HELLO,
        format!(
            "peer closed the connection during the handshake after our ClientHello offering \
             {ours}: {likely}"
        ),
        format!(
            "options: {extra}route {dest} with `opportunistic` (plaintext retry) or ask them to \
             upgrade; `postern tls scan` shows what the peer accepts"
        ),
        detail,
    )
}

fn from_rustls(
    err: &rustls::Error,
    ours: &str,
    offered: &[TlsVersion],
    dest: &str,
    detail: String,
) -> Cause {
    use rustls::Error as E;
    let scan = "`postern tls scan HOST` shows what the peer accepts";
    match err {
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            match alert {
                AlertDescription::ProtocolVersion => mk(
                    cause::NO_SHARED_VERSION,
                    format!(
                        "the peer refused our offer of {ours} (alert {name}): it most likely \
                         supports only older versions"
                    ),
                    format!(
                        "options: route {dest} with `opportunistic` (plaintext retry) or ask \
                         them to upgrade (TLS 1.0/1.1 are deprecated, RFC 8996); {scan}"
                    ),
                    detail,
                ),
                AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => mk(
                    cause::NO_SHARED_CIPHER,
                    format!(
                        "the peer aborted the handshake with alert {name}: it accepts none of \
                         the cipher suites or groups we offered ({ours})"
                    ),
                    format!(
                        "{scan}; if it only has suites rustls cannot speak (CBC, static RSA), \
                         route {dest} with `opportunistic` (plaintext retry) or ask them to \
                         upgrade; if it lacks one of our groups, add x25519 or secp256r1 to \
                         kx_groups"
                    ),
                    detail,
                ),
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::AccessDenied => mk(
                    CLIENT_CERTIFICATE_REJECTED,
                    format!("the peer refused our client certificate (alert {name})"),
                    "check the client certificate configured for this route (CA the peer \
                     trusts, not expired), or remove it if the peer does not need one"
                        .to_owned(),
                    detail,
                ),
                _ => mk(
                    PEER_ALERT,
                    format!("the peer aborted the handshake with alert {name}"),
                    format!("the alert names the peer's complaint; {scan}"),
                    detail,
                ),
            }
        }
        E::PeerIncompatible(p) => match p {
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => {
                let fix = if offered == [TlsVersion::Tls13] {
                    format!(
                        "allow TLS 1.2 for {dest} (min_version = \"1.2\"), or route it with \
                         `opportunistic` (plaintext retry)"
                    )
                } else {
                    format!(
                        "options: route {dest} with `opportunistic` (plaintext retry) or ask \
                         them to upgrade"
                    )
                };
                mk(
                    cause::NO_SHARED_VERSION,
                    format!("the peer chose a TLS version we do not offer (we offer {ours})"),
                    fix,
                    detail,
                )
            }
            PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NamedGroupsExtensionRequired
            | PeerIncompatible::KeyShareExtensionRequired => mk(
                cause::NO_SHARED_GROUP,
                "no key-exchange group in common with the peer".to_owned(),
                format!("add x25519 and secp256r1 to the outbound kx_groups; {scan}"),
                detail,
            ),
            PeerIncompatible::NoCipherSuitesInCommon => mk(
                cause::NO_SHARED_CIPHER,
                format!("no cipher suite in common with the peer (we offer {ours})"),
                format!("{scan}; route {dest} with `opportunistic` if it only has legacy suites"),
                detail,
            ),
            other => mk(
                cause::PROTOCOL_ERROR,
                format!("the peer's TLS is incompatible with ours ({other:?})"),
                format!("none on our side; {scan}"),
                detail,
            ),
        },
        E::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
            | rustls::InvalidMessage::UnknownProtocolVersion,
        ) => mk(
            cause::NOT_TLS,
            "the peer did not answer our ClientHello with TLS (plaintext after its 220 to \
             STARTTLS, or a non-TLS port)"
                .to_owned(),
            format!("check the port and mode (implicit TLS on 465, STARTTLS on 25/587); {scan}"),
            detail,
        ),
        E::InvalidCertificate(ce) => certificate_cause(ce, dest, detail),
        E::InvalidMessage(_)
        | E::PeerMisbehaved(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError => mk(
            cause::PROTOCOL_ERROR,
            format!("the peer broke the TLS protocol: {err}"),
            "none on our side; the peer's TLS stack is broken or something in the path rewrites \
             traffic"
                .to_owned(),
            detail,
        ),
        _ => mk(
            cause::UNKNOWN,
            format!("the TLS handshake failed: {err}"),
            "look at the detail; if it repeats, report it with the transcript".to_owned(),
            detail,
        ),
    }
}

fn certificate_cause(ce: &CertificateError, dest: &str, detail: String) -> Cause {
    use CertificateError as C;
    if let C::Other(other) = ce
        && let Some(refusal) =
            (&*other.0 as &(dyn StdError + 'static)).downcast_ref::<PkixRefusal>()
        && let Some(mut cause) = refusal.verdict.cause()
    {
        cause.detail = detail;
        return cause;
    }
    let check = "run `postern cert check --remote HOST` to see the chain";
    match ce {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let (expected, presented) = match ce {
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => (expected.to_str().into_owned(), presented.join(", ")),
                _ => ("the MX name".to_owned(), "other names".to_owned()),
            };
            mk(
                CERT_NAME_MISMATCH,
                format!("certificate name mismatch: cert is for {presented}, MX is {expected}"),
                format!(
                    "the peer needs a certificate covering {expected}; or lower the policy for \
                     {dest} from `verify` to `required` (encrypted, unverified)"
                ),
                detail,
            )
        }
        C::UnknownIssuer => mk(
            CERT_UNTRUSTED,
            "the certificate is not issued by a CA we trust: self-signed, a private CA, or a \
             missing intermediate"
                .to_owned(),
            format!(
                "{check}; add a private CA to the CA file for {dest}, or lower its policy to \
                 `required`"
            ),
            detail,
        ),
        C::Expired | C::ExpiredContext { .. } => mk(
            CERT_EXPIRED,
            "the peer's certificate has expired".to_owned(),
            format!("the peer must renew it; {check}"),
            detail,
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => mk(
            CERT_NOT_YET_VALID,
            "the peer's certificate is not valid yet".to_owned(),
            "check our clock (NTP) and the peer's certificate dates".to_owned(),
            detail,
        ),
        _ => mk(
            CERT_INVALID,
            format!("the peer's certificate does not verify ({ce:?})"),
            check.to_owned(),
            detail,
        ),
    }
}

/// RFC 8446 spelling of an alert, e.g. `handshake_failure`.
fn alert_name(alert: AlertDescription) -> String {
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

/// The first rustls error and the first io error kind in the chain.
fn find_errors<'a>(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustls_pki_types::ServerName;

    #[test]
    fn outbound_ids_are_unique_and_namespaced() {
        let mut ids = OUTBOUND_IDS.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), OUTBOUND_IDS.len());
        assert!(OUTBOUND_IDS.iter().all(|id| id.starts_with("tls.out.")));
        assert!(OUTBOUND_IDS.iter().all(|id| !cause::ALL.contains(id)));
    }

    #[test]
    fn peer_closed_wording() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let c = outbound_cause(&eof, &TlsVersion::ALL, Some("fabrikam.com"));
        assert_eq!(c.id, PEER_CLOSED_AFTER_CLIENT_HELLO);
        assert_eq!(
            c.summary,
            "peer closed the connection during the handshake after our ClientHello offering \
             TLS 1.2–1.3: the peer most likely supports only TLS 1.0/1.1"
        );
        assert!(
            c.fix
                .starts_with("options: route fabrikam.com with `opportunistic` (plaintext retry) or ask them to upgrade"),
            "{c}"
        );
        let c13 = outbound_cause(&eof, &[TlsVersion::Tls13], None);
        assert!(c13.summary.contains("TLS 1.3 only"), "{c13}");
        assert!(c13.fix.contains("min_version = \"1.2\""), "{c13}");
    }

    #[test]
    fn classification_table() {
        let ours = TlsVersion::ALL;
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases: Vec<(Box<dyn StdError>, &str)> = vec![
            (
                Box::new(wrap(rustls::Error::AlertReceived(
                    AlertDescription::ProtocolVersion,
                ))),
                cause::NO_SHARED_VERSION,
            ),
            (
                Box::new(wrap(rustls::Error::AlertReceived(
                    AlertDescription::HandshakeFailure,
                ))),
                cause::NO_SHARED_CIPHER,
            ),
            (
                Box::new(rustls::Error::AlertReceived(
                    AlertDescription::CertificateRequired,
                )),
                CLIENT_CERTIFICATE_REJECTED,
            ),
            (
                Box::new(rustls::Error::AlertReceived(
                    AlertDescription::InternalError,
                )),
                PEER_ALERT,
            ),
            (
                Box::new(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                cause::NOT_TLS,
            ),
            (
                Box::new(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                )),
                CERT_UNTRUSTED,
            ),
            (
                Box::new(rustls::Error::InvalidCertificate(CertificateError::Expired)),
                CERT_EXPIRED,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
                PEER_CLOSED_AFTER_CLIENT_HELLO,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::TimedOut)),
                cause::TIMEOUT,
            ),
            (
                Box::new(io::Error::from(io::ErrorKind::PermissionDenied)),
                cause::IO_ERROR,
            ),
            (
                Box::new(rustls::Error::PeerIncompatible(
                    PeerIncompatible::ServerDoesNotSupportTls12Or13,
                )),
                cause::NO_SHARED_VERSION,
            ),
        ];
        for (err, id) in cases {
            let c = outbound_cause(err.as_ref(), &ours, Some("example.net"));
            assert_eq!(c.id, id, "{err}: {c}");
            assert!(!c.fix.is_empty());
        }
    }

    #[test]
    fn name_mismatch_names_both() {
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("mx1.fabrikam.com").unwrap(),
            presented: vec!["mail.other.example".into()],
        });
        let c = outbound_cause(&err, &TlsVersion::ALL, Some("fabrikam.com"));
        assert_eq!(c.id, CERT_NAME_MISMATCH);
        assert_eq!(
            c.summary,
            "certificate name mismatch: cert is for mail.other.example, MX is mx1.fabrikam.com"
        );
    }

    #[test]
    fn offer_description() {
        assert_eq!(describe_offer(&TlsVersion::ALL), "TLS 1.2–1.3");
        assert_eq!(describe_offer(&[TlsVersion::Tls13]), "TLS 1.3 only");
    }
}

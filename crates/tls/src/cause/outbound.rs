//! The outbound side of the failure-cause catalogue: what an outbound
//! handshake error means, in the `tls.*` ids shared with the inbound side
//! where they fit and `tls.out.*` ids where only a client can fail.
//!
//! The fix texts name what exists: the `[delivery.outbound_tls]` keys, a
//! `[[route]]` for the **recipient domains** (routes match recipient domains,
//! never MX host names), and `postern` commands with the host *and port* we
//! connected to. What the TLS layer cannot know (the recipient domains, and
//! whether the level in force already retries in plaintext) comes in an
//! [`Advice`] from the caller; a fix never suggests the level already in
//! force.
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

use crate::cause::{self, Cause, alert_name, find_errors, host_port, mk, route_snippet};
use crate::client::PkixRefusal;
use crate::settings::TlsVersion;

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
/// timeout, protocol error, I/O error, unknown). A peer that closes the
/// connection after our ClientHello is `tls.no_shared_version`, like one
/// that says so with an alert (one root cause, one id; the old
/// `tls.out.peer_closed_after_client_hello` is in [`cause::RETIRED`]).
pub const OUTBOUND_IDS: &[&str] = &[
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

/// Where the failed handshake went and what we offered.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The name we connected to (MX host or smart host; SNI).
    pub host: &'a str,
    /// The port we connected to.
    pub port: u16,
    /// The versions we offered, oldest first.
    pub offered: &'a [TlsVersion],
}

/// What the caller knows that the TLS layer does not, so the fix is true
/// and never suggests what is already in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advice {
    /// The recipient domains this connection was for (a `[[route]]` matches
    /// recipient domains); empty when unknown (`cert check`, `tls scan`).
    pub domains: Vec<String>,
    /// The level in force already retries in plaintext on a new connection
    /// after a failed handshake (`opportunistic`).
    pub plaintext_retry: bool,
}

impl Advice {
    /// Advice for mail to `domain` under a level that does (`true`) or does
    /// not retry in plaintext.
    pub fn for_domain(domain: &str, plaintext_retry: bool) -> Self {
        Self {
            domains: vec![domain.to_owned()],
            plaintext_retry,
        }
    }

    fn who(&self) -> String {
        if self.domains.is_empty() {
            "the recipient domain".to_owned()
        } else {
            self.domains.join(", ")
        }
    }

    /// The plaintext option, or that it is in force already.
    fn plaintext_option(&self) -> String {
        if self.plaintext_retry {
            "the level in force (opportunistic) already retries in plaintext on a new \
             connection, so mail still goes out"
                .to_owned()
        } else {
            format!(
                "if plaintext is acceptable for {}, add {} (routes match recipient domains; \
                 mail is then retried in plaintext on a new connection)",
                self.who(),
                route_snippet(&self.domains, "opportunistic")
            )
        }
    }
}

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
/// tokio-rustls does, or a tokio timeout).
///
/// Certificate problems only reach here in [`crate::client::Verify::Pkix`]
/// mode; in record mode see [`crate::client::PeerVerdict::cause`].
pub fn classify_outbound(
    err: &(dyn StdError + 'static),
    peer: &Peer<'_>,
    advice: &Advice,
) -> Cause {
    let detail = err.to_string();
    let (tls, io_kind) = find_errors(err);
    if let Some(tls) = tls {
        return from_rustls(tls, peer, advice, detail);
    }
    match io_kind {
        Some(
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => no_shared_version(Why::Closed, peer, advice, detail),
        Some(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => timeout(detail),
        Some(_) => mk(
            cause::IO_ERROR,
            format!("the connection failed during the TLS handshake: {detail}"),
            "none in the TLS settings: a network problem between us and the peer; delivery \
             retries later"
                .to_owned(),
            detail,
        ),
        None if detail == "deadline has elapsed" => timeout(detail),
        None => unknown(detail),
    }
}

fn unknown(detail: String) -> Cause {
    mk(
        cause::UNKNOWN,
        format!("the TLS handshake failed: {detail}"),
        "look at the detail; if it repeats, report it with the transcript".to_owned(),
        detail,
    )
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

/// How the peer told us it cannot do what we offered.
#[derive(Clone, Copy)]
enum Why {
    /// It closed the connection after our ClientHello, without an alert.
    Closed,
    /// It sent a `protocol_version` alert.
    Alert,
    /// It chose a version we did not offer.
    Chose,
}

/// One root cause, one id (`tls.no_shared_version`), however the peer
/// shows it.
fn no_shared_version(why: Why, peer: &Peer<'_>, advice: &Advice, detail: String) -> Cause {
    let ours = describe_offer(peer.offered);
    let host = peer.host;
    let only13 = peer.offered == [TlsVersion::Tls13];
    let older = if only13 {
        "TLS 1.2 or older"
    } else {
        "only TLS 1.0/1.1"
    };
    let summary = match why {
        Why::Closed => format!(
            "{host} closed the connection after our ClientHello offering {ours}, without an \
             alert: it most likely supports {older}"
        ),
        Why::Alert => format!(
            "{host} refused our offer of {ours} (alert protocol_version): it supports {older}"
        ),
        Why::Chose => format!("{host} chose a TLS version we do not offer (we offer {ours})"),
    };
    let scan = format!(
        "`postern tls scan {}` shows what it accepts",
        host_port(host, peer.port)
    );
    let fix = if only13 {
        format!(
            "allow TLS 1.2 with `[delivery.outbound_tls] min_version = \"1.2\"`; otherwise {}; \
             {scan}",
            advice.plaintext_option()
        )
    } else {
        format!(
            "none on our side for encryption: the peer must support TLS 1.2 or later (TLS 1.0/1.1 \
             are deprecated, RFC 8996; rustls does not speak them), ask its postmaster; {}; {scan}",
            advice.plaintext_option()
        )
    };
    mk(cause::NO_SHARED_VERSION, summary, fix, detail)
}

fn from_rustls(err: &rustls::Error, peer: &Peer<'_>, advice: &Advice, detail: String) -> Cause {
    use rustls::Error as E;
    let ours = describe_offer(peer.offered);
    let scan = format!(
        "`postern tls scan {}` shows what the peer accepts",
        host_port(peer.host, peer.port)
    );
    match err {
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            match alert {
                AlertDescription::ProtocolVersion => {
                    no_shared_version(Why::Alert, peer, advice, detail)
                }
                AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => mk(
                    cause::NO_SHARED_CIPHER,
                    format!(
                        "the peer aborted the handshake with alert {name}: it accepts none of \
                         the cipher suites or groups we offered ({ours})"
                    ),
                    format!(
                        "{scan}; if it lacks our groups, add x25519 or secp256r1 to \
                         `[delivery.outbound_tls] groups`; if it has only suites rustls cannot \
                         speak (CBC, static RSA), the peer must upgrade, and {}",
                        advice.plaintext_option()
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
                    "check `[delivery.outbound_tls] client_cert` and \
                     `[delivery.outbound_tls] client_key` (a CA the peer trusts, not expired), \
                     or remove them if the peer does not need a client certificate"
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
                no_shared_version(Why::Chose, peer, advice, detail)
            }
            PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NamedGroupsExtensionRequired
            | PeerIncompatible::KeyShareExtensionRequired => mk(
                cause::NO_SHARED_GROUP,
                "no key-exchange group in common with the peer".to_owned(),
                format!(
                    "add x25519 and secp256r1 to `[delivery.outbound_tls] groups` (or remove \
                     the key for the defaults); {scan}"
                ),
                detail,
            ),
            PeerIncompatible::NoCipherSuitesInCommon => mk(
                cause::NO_SHARED_CIPHER,
                format!("no cipher suite in common with the peer (we offer {ours})"),
                format!(
                    "{scan}; if it has only legacy suites, the peer must upgrade, and {}",
                    advice.plaintext_option()
                ),
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
        E::InvalidCertificate(ce) => certificate_cause(ce, peer, advice, detail),
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
        _ => unknown(detail),
    }
}

fn certificate_cause(
    ce: &CertificateError,
    peer: &Peer<'_>,
    advice: &Advice,
    detail: String,
) -> Cause {
    use CertificateError as C;
    if let C::Other(other) = ce
        && let Some(refusal) =
            (&*other.0 as &(dyn StdError + 'static)).downcast_ref::<PkixRefusal>()
    {
        let mut verdict = refusal.verdict.clone();
        verdict.port = Some(peer.port);
        if let Some(mut cause) = verdict.cause() {
            cause.detail = detail;
            return cause;
        }
    }
    let check = format!(
        "`postern cert check --remote {}` shows the chain",
        host_port(peer.host, peer.port)
    );
    let lower = format!(
        "or, to accept it unverified, add {} (encrypted, not verified)",
        route_snippet(&advice.domains, "required")
    );
    match ce {
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let (expected, presented) = match ce {
                C::NotValidForNameContext {
                    expected,
                    presented,
                } => (expected.to_str().into_owned(), presented.join(", ")),
                _ => (peer.host.to_owned(), "other names".to_owned()),
            };
            mk(
                CERT_NAME_MISMATCH,
                format!("certificate name mismatch: cert is for {presented}, MX is {expected}"),
                format!("the peer needs a certificate covering {expected}; {lower}; {check}"),
                detail,
            )
        }
        C::UnknownIssuer => mk(
            CERT_UNTRUSTED,
            "the certificate is not issued by a CA we trust: self-signed, a private CA, or a \
             missing intermediate"
                .to_owned(),
            format!(
                "{check}; if it is a private CA you trust, name its file in \
                 `[[route]] ca_file`; {lower}"
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
            check,
            detail,
        ),
    }
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

    fn peer(offered: &[TlsVersion]) -> Peer<'_> {
        Peer {
            host: "mx.partner.example",
            port: 25,
            offered,
        }
    }

    /// The TLS-1.0-only peer: closing after our ClientHello and alerting
    /// `protocol_version` are one root cause, one id; the fix names a route
    /// for the recipient domain, never the MX host.
    #[test]
    fn peer_too_old_one_id_and_a_route_for_the_recipient_domain() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let alert = rustls::Error::AlertReceived(AlertDescription::ProtocolVersion);
        let advice = Advice::for_domain("fabrikam.com", false);
        let closed = classify_outbound(&eof, &peer(&TlsVersion::ALL), &advice);
        let alerted = classify_outbound(&alert, &peer(&TlsVersion::ALL), &advice);
        assert_eq!(closed.id, cause::NO_SHARED_VERSION);
        assert_eq!(alerted.id, cause::NO_SHARED_VERSION);
        assert_eq!(
            closed.summary,
            "mx.partner.example closed the connection after our ClientHello offering \
             TLS 1.2–1.3, without an alert: it most likely supports only TLS 1.0/1.1"
        );
        for c in [&closed, &alerted] {
            assert!(
                c.fix.contains(
                    "add `[[route]] domains = [\"fabrikam.com\"], tls = \"opportunistic\"`"
                ),
                "{c}"
            );
            assert!(!c.fix.contains("route mx.partner.example"), "{c}");
            assert!(
                c.fix.contains("`postern tls scan mx.partner.example:25`"),
                "{c}"
            );
        }
        let c13 = classify_outbound(&eof, &peer(&[TlsVersion::Tls13]), &Advice::default());
        assert!(c13.summary.contains("TLS 1.3 only"), "{c13}");
        assert!(
            c13.fix
                .contains("`[delivery.outbound_tls] min_version = \"1.2\"`"),
            "{c13}"
        );
        assert!(c13.fix.contains("\"RECIPIENT-DOMAIN\""), "{c13}");
    }

    /// When the level in force already retries in plaintext, the fix does
    /// not suggest it again.
    #[test]
    fn no_advice_to_set_the_level_in_force() {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "eof");
        let c = classify_outbound(
            &eof,
            &peer(&TlsVersion::ALL),
            &Advice::for_domain("fabrikam.com", true),
        );
        assert!(!c.fix.contains("[[route]]"), "{c}");
        assert!(c.fix.contains("already retries in plaintext"), "{c}");
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
                cause::NO_SHARED_VERSION,
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
            let c = classify_outbound(err.as_ref(), &peer(&ours), &Advice::default());
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
        let c = classify_outbound(&err, &peer(&TlsVersion::ALL), &Advice::default());
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

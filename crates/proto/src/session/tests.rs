//! Protocol state tests without sockets: lines in, actions out.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::data::DataError;

fn config() -> SessionConfig {
    SessionConfig {
        hostname: "mx.test".into(),
        limits: Limits::default(),
        max_message_size: 1000,
        max_recipients: 3,
        max_errors: 10,
        max_auth_failures: 3,
        tls: TlsMode::Optional,
        tls_available: true,
        auth: AuthMode::Offered,
        auth_in_clear: false,
        vrfy: VrfyMode::Ambiguous,
    }
}

fn tls() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
    }
}

/// A driver without I/O: answers every action the way the test says.
struct Drive {
    s: Session,
    /// What the policy answers, per stage (default: accept).
    refuse: Vec<(StageKind, Verdict)>,
    /// The result of every credential check.
    auth: AuthOutcome,
    /// Body outcome for DATA / BDAT.
    body: Option<BodyOutcome>,
    /// Actions other than replies, in order.
    log: Vec<String>,
    closed: bool,
}

impl Drive {
    fn new(config: SessionConfig) -> Self {
        let s = Session::new(config, IpAddr::V4(Ipv4Addr::LOCALHOST), "smtp", None);
        let mut d = Self {
            s,
            refuse: Vec::new(),
            auth: AuthOutcome::Invalid,
            body: None,
            log: Vec::new(),
            closed: false,
        };
        d.event(Event::Connected);
        d
    }

    /// Feeds an event and runs the actions; returns the replies as text.
    fn event(&mut self, ev: Event<'_>) -> Vec<String> {
        self.s.handle(ev);
        let mut out = Vec::new();
        while let Some(action) = self.s.poll_action() {
            match action {
                Action::Reply(r) => {
                    out.push(
                        String::from_utf8(r.to_bytes())
                            .unwrap()
                            .trim_end()
                            .to_owned(),
                    );
                }
                Action::Close => {
                    self.closed = true;
                    self.log.push("close".into());
                }
                Action::Check(kind) => {
                    assert_eq!(self.s.stage().unwrap().kind(), kind);
                    self.log.push(format!("check {}", kind.as_str()));
                    let v = self
                        .refuse
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map_or(Verdict::Accept, |(_, v)| v.clone());
                    self.s.handle(Event::Verdict(v));
                }
                Action::Authenticate(c) => {
                    assert!(!format!("{c:?}").contains(&c.password) || c.password.is_empty());
                    self.log.push(format!("auth {}", c.user));
                    self.s.handle(Event::AuthResult(self.auth));
                }
                Action::StartTls => {
                    self.log.push("starttls".into());
                    self.s.handle(Event::TlsEstablished(tls()));
                }
                Action::ReceiveData => {
                    self.log.push("data".into());
                    let b = self.body.clone().unwrap();
                    self.s.handle(Event::BodyEnd(b));
                }
                Action::ReceiveChunk {
                    size,
                    last,
                    store,
                    first,
                } => {
                    self.log
                        .push(format!("chunk {size} {last} {store} {first}"));
                    let b = if store {
                        self.body.clone().unwrap()
                    } else {
                        BodyOutcome::Discarded
                    };
                    self.s.handle(Event::BodyEnd(b));
                }
                Action::DiscardBody => self.log.push("discard".into()),
                Action::Commit => {
                    let tx = self.s.transaction().unwrap();
                    self.log
                        .push(format!("commit {} rcpts", tx.recipients.len()));
                    self.s.handle(Event::Committed(Ok("Q1".into())));
                }
            }
        }
        out
    }

    fn line(&mut self, l: &str) -> Vec<String> {
        self.event(Event::Line(l.as_bytes()))
    }

    /// One line, one reply; returns it.
    fn one(&mut self, l: &str) -> String {
        let r = self.line(l);
        assert_eq!(r.len(), 1, "{l}: {r:?}");
        r.into_iter().next().unwrap()
    }
}

fn starts(reply: &str, prefix: &str) {
    assert!(
        reply.starts_with(prefix),
        "{reply:?} does not start with {prefix:?}"
    );
}

#[test]
fn greeting_follows_the_connect_stage() {
    let mut s = Session::new(config(), IpAddr::V4(Ipv4Addr::LOCALHOST), "smtp", None);
    s.handle(Event::Connected);
    assert_eq!(s.poll_action(), Some(Action::Check(StageKind::Connect)));
    assert_eq!(s.stage(), Some(Stage::Connect));
    // Nothing else is taken while the verdict is pending.
    s.handle(Event::Line(b"QUIT"));
    assert_eq!(s.poll_action(), None);
    s.handle(Event::Verdict(Verdict::Accept));
    let Some(Action::Reply(r)) = s.poll_action() else {
        panic!()
    };
    assert_eq!(r.code, 220);
}

/// RFC 5321 §3.1: a 554 greeting, then 503 to all but QUIT.
#[test]
fn refused_at_connect_serves_only_quit() {
    let mut d = Drive::new(config());
    d.refuse.push((
        StageKind::Connect,
        Verdict::Refuse(Reply::new(554, None, "go away")),
    ));
    let mut s = Session::new(config(), IpAddr::V4(Ipv4Addr::LOCALHOST), "smtp", None);
    std::mem::swap(&mut d.s, &mut s);
    assert_eq!(d.event(Event::Connected), vec!["554 go away"]);
    starts(&d.one("EHLO a.example"), "503 5.5.1");
    starts(&d.one("MAIL FROM:<a@b.example>"), "503 5.5.1");
    starts(&d.one("QUIT"), "221");
    assert!(d.closed);
}

#[test]
fn temporary_refusal_at_connect_closes() {
    let mut s = Session::new(config(), IpAddr::V4(Ipv4Addr::LOCALHOST), "smtp", None);
    s.handle(Event::Connected);
    s.poll_action();
    s.handle(Event::Verdict(Verdict::Refuse(Reply::new(
        421, None, "busy",
    ))));
    assert!(matches!(s.poll_action(), Some(Action::Reply(r)) if r.code == 421));
    assert_eq!(s.poll_action(), Some(Action::Close));
    assert!(s.is_closed());
}

/// RFC 5321 §2.3.8 / SMTP smuggling: a bare LF gets one error and the
/// session ends; nothing after it runs.
#[test]
fn bare_line_feed_closes() {
    let mut d = Drive::new(config());
    let r = d.event(Event::BareLineFeed);
    assert_eq!(r.len(), 1);
    starts(&r[0], "500 5.5.2 Bare <LF>");
    assert!(d.closed);
    assert!(d.line("NOOP").is_empty());
    assert_eq!(d.s.stats().to_string(), "unknown=0/1 commands=0/1");
}

#[test]
fn ehlo_argument_is_a_domain_or_address_literal() {
    let mut d = Drive::new(config());
    for bad in [
        "EHLO a..b",
        "EHLO -a.example",
        "EHLO [300.1.1.1]",
        "EHLO [IPv6:zz]",
        "HELO a.example..",
    ] {
        starts(&d.one(bad), "501 5.5.4");
    }
    // RFC 5321 §4.5.3.1.2: 255 octets pass, 256 do not.
    let at_limit = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(63));
    assert_eq!(at_limit.len(), 255);
    starts(&d.one(&format!("EHLO {at_limit}")), "250-mx.test");
    let over = format!("{}.{}.c", vec!["a".repeat(63); 3].join("."), "b".repeat(62));
    assert_eq!(over.len(), 256);
    starts(&d.one(&format!("EHLO {over}")), "501 5.5.4");
    let long = format!("EHLO {}", vec!["a".repeat(63); 5].join("."));
    assert!(long.len() > 255 + 5);
    starts(&d.one(&long), "501 5.5.4");
    starts(&d.one("EHLO [192.0.2.1]"), "250-mx.test");
    starts(&d.one("EHLO [IPv6:2001:db8::1]"), "250-mx.test");
    starts(&d.one("HELO client.example"), "250 mx.test");
    starts(&d.one("EHLO localhost"), "250-mx.test");
}

/// RFC 5321 §4.1.1.8: HELP names only what this session offers.
#[test]
fn help_lists_what_is_offered() {
    let mut d = Drive::new(config());
    let r = d.one("HELP");
    assert!(r.contains("STARTTLS") && !r.contains("AUTH"), "{r}");
    d.line("STARTTLS");
    let r = d.one("HELP");
    assert!(!r.contains("STARTTLS") && r.contains("AUTH"), "{r}");
    let mut c = config();
    c.auth = AuthMode::Off;
    c.tls = TlsMode::Off;
    c.vrfy = VrfyMode::Disabled;
    let mut d = Drive::new(c);
    let r = d.one("HELP");
    assert!(
        !r.contains("STARTTLS") && !r.contains("AUTH") && !r.contains("VRFY"),
        "{r}"
    );
}

#[test]
fn a_message_passes_every_stage() {
    let mut d = Drive::new(config());
    d.line("EHLO client.example");
    starts(&d.one("MAIL FROM:<a@b.example>"), "250 2.1.0");
    starts(&d.one("RCPT TO:<c@d.example>"), "250 2.1.5");
    d.body = Some(BodyOutcome::Stored { octets: 12 });
    let r = d.line("DATA");
    assert_eq!(r.len(), 2, "{r:?}");
    starts(&r[0], "354");
    assert_eq!(r[1], "250 2.0.0 Ok: queued as Q1");
    assert_eq!(
        d.log,
        [
            "check connect",
            "check helo",
            "check mail",
            "check rcpt",
            "data",
            "check data-end",
            "commit 1 rcpts"
        ]
    );
    assert!(d.s.transaction().is_none());
    assert_eq!(d.s.stats().messages, 1);
}

#[test]
fn policy_refusals_at_each_stage() {
    let mut d = Drive::new(config());
    let no = |code| {
        Verdict::Refuse(Reply::new(
            code,
            Some(crate::EnhancedCode::new(5, 7, 1)),
            "no",
        ))
    };
    d.refuse.push((StageKind::Rcpt, no(550)));
    d.refuse.push((StageKind::DataEnd, no(554)));
    d.line("EHLO client.example");
    d.line("MAIL FROM:<a@b.example>");
    starts(&d.one("RCPT TO:<c@d.example>"), "550 5.7.1 no");
    // DATA without a recipient.
    starts(&d.one("DATA"), "554 5.5.1");
    d.refuse.clear();
    d.refuse.push((StageKind::DataEnd, no(554)));
    d.line("RCPT TO:<c@d.example>");
    d.body = Some(BodyOutcome::Stored { octets: 1 });
    let r = d.line("DATA");
    starts(&r[1], "554 5.7.1 no");
    assert!(
        d.s.transaction().is_none(),
        "end of data ends the transaction"
    );
    assert!(!d.log.iter().any(|l| l.starts_with("commit")));
    assert_eq!(
        d.s.stats().to_string(),
        "ehlo=1 mail=1 rcpt=1/2 data=0/2 commands=3/6"
    );
}

#[test]
fn disconnect_verdict_closes() {
    let mut d = Drive::new(config());
    d.refuse.push((
        StageKind::Helo,
        Verdict::Disconnect(Reply::new(421, None, "bye")),
    ));
    assert_eq!(d.line("EHLO a.example"), vec!["421 bye"]);
    assert!(d.closed);
}

#[test]
fn body_failures_have_their_replies() {
    let cases = [
        (BodyOutcome::Malformed(DataError::BareLf), "554 5.6.0"),
        (BodyOutcome::TooBig, "552 5.3.4"),
        (
            BodyOutcome::StorageFailed(Reply::new(452, None, "full")),
            "452 full",
        ),
    ];
    for (outcome, want) in cases {
        let mut d = Drive::new(config());
        d.line("EHLO client.example");
        d.line("MAIL FROM:<a@b.example>");
        d.line("RCPT TO:<c@d.example>");
        d.body = Some(outcome);
        let r = d.line("DATA");
        starts(&r[1], want);
        assert!(d.s.transaction().is_none());
    }
}

/// RFC 3030 §2: a refused BDAT still has its chunk read.
#[test]
fn bdat_chunks_and_refusals() {
    let mut d = Drive::new(config());
    d.line("EHLO client.example");
    starts(&d.one("BDAT 5"), "503 5.5.1");
    d.line("MAIL FROM:<a@b.example>");
    starts(&d.one("BDAT 5"), "554 5.5.1");
    d.line("RCPT TO:<c@d.example>");
    d.body = Some(BodyOutcome::Stored { octets: 5 });
    starts(&d.one("BDAT 5"), "250 2.0.0 5 octets received");
    starts(&d.one("DATA"), "503 5.5.1");
    starts(&d.one("RCPT TO:<e@d.example>"), "503 5.5.1");
    d.body = Some(BodyOutcome::Stored { octets: 8 });
    assert_eq!(d.one("BDAT 3 LAST"), "250 2.0.0 Ok: queued as Q1");
    assert_eq!(
        d.log,
        [
            "check connect",
            "check helo",
            "chunk 5 false false false",
            "check mail",
            "chunk 5 false false false",
            "check rcpt",
            "chunk 5 false true true",
            "chunk 3 true true false",
            "check data-end",
            "commit 1 rcpts",
        ]
    );
    // RSET in the middle of a BDAT body drops it.
    d.line("MAIL FROM:<a@b.example>");
    d.line("RCPT TO:<c@d.example>");
    d.body = Some(BodyOutcome::Stored { octets: 2 });
    d.line("BDAT 2");
    d.line("RSET");
    assert_eq!(d.log.last().unwrap(), "discard");
}

/// RFC 3207 §4.2: everything learned in clear is forgotten after STARTTLS.
#[test]
fn starttls_resets_the_session() {
    let mut d = Drive::new(config());
    d.line("EHLO client.example");
    d.line("MAIL FROM:<a@b.example>");
    starts(&d.one("STARTTLS"), "220 2.0.0");
    assert!(d.s.facts().tls.is_some());
    assert!(d.s.facts().helo.is_none());
    assert!(d.s.transaction().is_none());
    starts(&d.one("MAIL FROM:<a@b.example>"), "503 5.5.1");
    starts(&d.one("STARTTLS"), "503 5.5.1");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn authed_ready() -> Drive {
    let mut d = Drive::new(config());
    d.line("STARTTLS");
    d.line("EHLO client.example");
    d
}

/// The AUTH bug: once a response is refused, the next line is a
/// command again (a NOOP is never eaten as a credential).
#[test]
fn a_refused_response_ends_the_exchange() {
    let mut d = authed_ready();
    starts(&d.one("AUTH LOGIN"), "334 VXNlcm5hbWU6");
    starts(&d.one("not base64!"), "501 5.5.2");
    starts(&d.one("NOOP"), "250 2.0.0");
    // `*` cancels at any step.
    starts(&d.one("AUTH LOGIN"), "334");
    starts(&d.one(&b64("alice")), "334 UGFzc3dvcmQ6");
    starts(&d.one("*"), "501 5.0.0");
    starts(&d.one("NOOP"), "250");
    starts(&d.one("AUTH PLAIN"), "334");
    starts(&d.one("*"), "501 5.0.0");
    starts(&d.one("NOOP"), "250");
}

/// RFC 4954 §4: a long wrong credential is a failed AUTH (535), not a
/// "line too long"; over 12 288 octets the exchange still ends.
#[test]
fn long_responses_and_the_failure_budget() {
    let mut d = authed_ready();
    assert!(d.s.line_limit() >= MAX_SASL_LINE);
    starts(&d.one("AUTH PLAIN"), "334");
    let long = b64(&format!("\0alice\0{}", "x".repeat(8000)));
    assert!(long.len() > 512);
    starts(&d.one(&long), "535 5.7.8");
    assert_eq!(d.log.last().unwrap(), "auth alice");
    starts(&d.one("AUTH PLAIN"), "334");
    assert_eq!(d.event(Event::LineTooLong).len(), 1);
    starts(&d.one("NOOP"), "250");
    // Third failure: 535 then 421 and close.
    let r = d.line(&format!("AUTH PLAIN {}", b64("\0alice\0wrong")));
    assert_eq!(r.len(), 2, "{r:?}");
    starts(&r[0], "535 5.7.8");
    starts(&r[1], "421 4.7.0");
    assert!(d.closed);
}

#[test]
fn successful_auth_and_busy_verifier() {
    let mut d = authed_ready();
    d.auth = AuthOutcome::Unavailable;
    starts(
        &d.one(&format!("AUTH PLAIN {}", b64("\0alice\0pw"))),
        "454 4.7.0",
    );
    d.auth = AuthOutcome::Success;
    starts(
        &d.one(&format!("AUTH PLAIN {}", b64("\0alice\0pw"))),
        "235 2.7.0",
    );
    assert_eq!(d.s.facts().auth_user.as_deref(), Some("alice"));
    assert_eq!(d.s.facts().auth_mechanism, Some("PLAIN"));
    starts(&d.one("AUTH PLAIN"), "503 5.5.1");
}

#[test]
fn auth_before_tls_and_command_line_limits() {
    let mut d = Drive::new(config());
    d.line("EHLO client.example");
    starts(&d.one("AUTH PLAIN"), "530 5.7.0");
    let long = format!("NOOP {}", "x".repeat(507));
    starts(&d.one(&long), "500 5.5.2 Line too long");
    starts(&d.one(&long[..510]), "250");
}

#[test]
fn error_budget_closes_with_421() {
    let mut c = config();
    c.max_errors = 2;
    let mut d = Drive::new(c);
    starts(&d.one("FOO"), "500");
    let r = d.line("BAR");
    starts(&r[1], "421 4.7.0");
    assert!(d.closed);
}

#[test]
fn timeout_and_shutdown_replies() {
    let mut d = Drive::new(config());
    let r = d.event(Event::Timeout);
    starts(&r[0], "421 4.4.2 mx.test");
    assert!(d.closed && d.s.stats().timeout);
    let mut d = Drive::new(config());
    starts(&d.event(Event::Shutdown)[0], "421 4.3.2");
}

/// CWE-117: a user name with LF or ESC is the client's text; the machine
/// hands it to the check unchanged (the driver escapes it when logging, an
/// unknown name fails like a wrong password).
#[test]
fn user_names_are_passed_as_sent() {
    let mut d = authed_ready();
    starts(&d.one("AUTH LOGIN"), "334");
    starts(&d.one(&b64("evil\u{1b}[31m\nFAKE line")), "334");
    starts(&d.one(&b64("pw")), "535 5.7.8");
    assert_eq!(d.log.last().unwrap(), "auth evil\u{1b}[31m\nFAKE line");
}

/// Real clients send a trailing dot or an underscore (Windows host names):
/// accepted; anything else that is not a name still gets 501 5.5.4.
#[test]
fn ehlo_leniency_for_real_clients() {
    let mut d = Drive::new(config());
    starts(&d.one("EHLO x.example."), "250-mx.test");
    starts(&d.one("EHLO DESKTOP_4F2A"), "250-mx.test");
    starts(&d.one("EHLO a_b.example"), "250-mx.test");
    starts(&d.one("EHLO bad_name!"), "501 5.5.4");
    starts(&d.one("EHLO a..b"), "501 5.5.4");
    starts(&d.one("EHLO ."), "501 5.5.4");
}

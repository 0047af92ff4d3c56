//! `postern send`: a swaks-like test sender on the same outbound client as
//! delivery (`postern-smtpc`), so what it shows is what delivery does. Prints
//! the whole dialogue (`>>>` sent, `<<<` received, `***` events such as the
//! TLS handshake line) and exits 0 only when the message was accepted after
//! the data.
//!
//! Exit codes: 0 accepted (2xx after DATA), 1 not accepted or the session
//! failed, 2 usage.
//!
//! # Security
//! Sends mail to the server the operator names. The AUTH password comes from
//! stdin (`--password-stdin`) or `POSTERN_PASSWORD`, never from the command
//! line (it would show in `ps`), and never reaches the output: the transcript
//! shows `[redacted]`. AUTH without TLS is refused unless
//! `--allow-plaintext-auth`. Certificates are recorded, not verified, unless
//! `--verify`.
//!
//! # Standards
//! RFC 5321, RFC 3207 (STARTTLS), RFC 8314 (implicit TLS), RFC 4954 (AUTH),
//! RFC 5322 §3.3 / §3.6.4 (Date and Message-ID of the generated message).

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use postern_diag::scan::{ScanTarget, StartTls};
use postern_smtpc::{
    AuthMechanism, ClientError, ClientSettings, Direction, OutEnvelope, OutRecipient, Session,
    TransactionOutcome, Transcript,
};
use postern_tls::client::{ClientTls, ClientTlsSettings, Roots, Verify, load_roots};

/// SASL mechanism for `--auth-mechanism`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendAuthMechanism {
    /// RFC 4616 PLAIN (initial response).
    Plain,
    /// The LOGIN mechanism.
    Login,
}

/// `postern send` arguments.
// Each flag is one switch of the command line, as in swaks.
#[allow(clippy::struct_excessive_bools)]
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// Server to talk to: HOST, HOST:PORT, [IPv6]:PORT. Port 465 implies --tls.
    #[arg(long, value_name = "HOST[:PORT]", default_value = "127.0.0.1:25")]
    pub(crate) server: String,
    /// Envelope sender (MAIL FROM); "" for the null sender.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) from: String,
    /// Envelope recipient (RCPT TO); repeatable.
    #[arg(long = "to", value_name = "ADDRESS", required = true)]
    pub(crate) to: Vec<String>,
    /// Upgrade with STARTTLS after EHLO (fails if not offered).
    #[arg(long, conflicts_with = "tls")]
    pub(crate) starttls: bool,
    /// Implicit TLS from the first byte (RFC 8314, port 465).
    #[arg(long)]
    pub(crate) tls: bool,
    /// Authenticate as USER; the password comes from --password-stdin or
    /// the POSTERN_PASSWORD environment variable.
    #[arg(long, value_name = "USER")]
    pub(crate) auth: Option<String>,
    /// Read the AUTH password from the first line of stdin.
    #[arg(long, requires = "auth")]
    pub(crate) password_stdin: bool,
    /// SASL mechanism. Default: PLAIN when offered, else LOGIN.
    #[arg(long, value_enum, requires = "auth")]
    pub(crate) auth_mechanism: Option<SendAuthMechanism>,
    /// Allow AUTH on a connection without TLS (the password crosses the
    /// network in clear).
    #[arg(long, requires = "auth")]
    pub(crate) allow_plaintext_auth: bool,
    /// The message (RFC 5322, headers and body); "-" for stdin. Default: a
    /// small generated test message with Date, Message-ID and Subject.
    #[arg(long, value_name = "FILE")]
    pub(crate) data: Option<PathBuf>,
    /// Subject of the generated test message.
    #[arg(long, default_value = "test message from postern send")]
    pub(crate) subject: String,
    /// Name to send in EHLO. Default: this machine's host name.
    #[arg(long, value_name = "NAME")]
    pub(crate) ehlo: Option<String>,
    /// Record the certificate verdict but accept any certificate (default).
    #[arg(long, conflicts_with = "verify")]
    pub(crate) insecure: bool,
    /// Verify the certificate (PKIX against the system roots and --ca, and
    /// the server name); refuse the handshake otherwise.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Extra trusted CA certificates (PEM), e.g. a private CA.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Server name for SNI and certificate checks. Default: the host.
    #[arg(long, value_name = "NAME")]
    pub(crate) sni: Option<String>,
    /// Use BDAT instead of DATA when the server offers CHUNKING.
    #[arg(long)]
    pub(crate) chunking: bool,
    /// Seconds to wait for connect and for each reply (end of data: twice that).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) timeout: u64,
}

pub(crate) fn run(args: &SendArgs) -> ExitCode {
    let plan = match Plan::from_args(args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let server = args.server.clone();
    match runtime.block_on(plan.execute()) {
        Ok(outcome) if outcome.is_accepted() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            // The same catalogue cause delivery would log for this error.
            let cause = e.cause(&server);
            crate::out::outln!("*** error: {e}");
            crate::out::outln!("*** cause: {}: {}", cause.id, cause.summary);
            crate::out::outln!("*** fix: {}", cause.fix);
            ExitCode::from(1)
        }
    }
}

/// The domains of `to`, lower-cased, each once.
fn recipient_domains(to: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in to {
        if let Some((_, d)) = a.rsplit_once('@') {
            let d = d.to_ascii_lowercase();
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// How the session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Implicit,
}

/// Everything checked and loaded before the first packet.
struct Plan {
    host: String,
    port: u16,
    server_name: String,
    security: Security,
    tls: Option<ClientTls>,
    settings: ClientSettings,
    envelope: OutEnvelope,
    auth: Option<(String, String, Option<AuthMechanism>)>,
    message: Message,
}

enum Message {
    File(PathBuf),
    Stdin,
    Generated(Vec<u8>),
}

impl Plan {
    fn from_args(args: &SendArgs) -> Result<Plan, String> {
        let target = ScanTarget::parse(&args.server, None).map_err(|e| e.to_string())?;
        let security = if args.tls || (target.starttls == StartTls::None && !args.starttls) {
            Security::Implicit
        } else if args.starttls {
            Security::StartTls
        } else {
            Security::Plain
        };
        let server_name = args.sni.clone().unwrap_or_else(|| target.host.clone());
        let tls = if security == Security::Plain {
            None
        } else {
            let roots = load_roots(&Roots {
                system: true,
                ca_file: args.ca.clone(),
            })
            .map_err(|e| e.to_string())?;
            let verify = if args.verify {
                Verify::Pkix
            } else {
                Verify::Record
            };
            Some(
                ClientTls::new(&ClientTlsSettings::default(), verify, Arc::new(roots))
                    .map_err(|e| e.to_string())?,
            )
        };
        let helo = args.ehlo.clone().unwrap_or_else(local_hostname);
        let timeout = Duration::from_secs(args.timeout);
        let settings = ClientSettings {
            connect_timeout: timeout,
            greeting_timeout: timeout,
            command_timeout: timeout,
            data_timeout: timeout * 2,
            prefer_chunking: args.chunking,
            allow_plaintext_auth: args.allow_plaintext_auth,
            // A TLS failure's fix names a `[[route]]` for these domains.
            advice: postern_smtpc::Advice {
                domains: recipient_domains(&args.to),
                plaintext_retry: false,
            },
            ..ClientSettings::new(helo.clone())
        };
        let auth = match &args.auth {
            None => None,
            Some(user) => {
                if args.password_stdin && args.data.as_deref() == Some(std::path::Path::new("-")) {
                    return Err("--password-stdin and --data - both want stdin".to_owned());
                }
                let password = if args.password_stdin {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                } else {
                    std::env::var("POSTERN_PASSWORD").map_err(|_| {
                        "--auth needs a password: use --password-stdin or set POSTERN_PASSWORD"
                            .to_owned()
                    })?
                };
                let mechanism = args.auth_mechanism.map(|m| match m {
                    SendAuthMechanism::Plain => AuthMechanism::Plain,
                    SendAuthMechanism::Login => AuthMechanism::Login,
                });
                Some((user.clone(), password, mechanism))
            }
        };
        let message = match &args.data {
            Some(p) if p.as_os_str() == "-" => Message::Stdin,
            Some(p) => Message::File(p.clone()),
            None => Message::Generated(test_message(
                &args.from,
                &args.to,
                &args.subject,
                &helo,
                time::OffsetDateTime::now_utc(),
                rand::random::<u64>(),
            )),
        };
        let size = match &message {
            Message::File(p) => Some(
                std::fs::metadata(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                    .len(),
            ),
            Message::Generated(bytes) => Some(bytes.len() as u64),
            Message::Stdin => None,
        };
        let envelope = OutEnvelope {
            mail_from: args.from.clone(),
            rcpts: args.to.iter().map(OutRecipient::new).collect(),
            size,
            ..OutEnvelope::default()
        };
        Ok(Plan {
            host: target.host,
            port: target.port,
            server_name,
            security,
            tls,
            settings,
            envelope,
            auth,
            message,
        })
    }

    async fn execute(self) -> Result<TransactionOutcome, ClientError> {
        let addrs = resolve(&self.host, self.port).await?;
        let mut last_err = None;
        for addr in addrs {
            match self.session(addr).await {
                Err(e @ (ClientError::Connect { .. } | ClientError::Timeout { .. }))
                    if e.stage() == postern_smtpc::Stage::Connect =>
                {
                    crate::out::outln!("*** {e}");
                    last_err = Some(e);
                }
                other => return other,
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::Invalid {
            stage: postern_smtpc::Stage::Connect,
            detail: format!("{} has no address", self.host),
        }))
    }

    async fn session(&self, addr: SocketAddr) -> Result<TransactionOutcome, ClientError> {
        let transcript = printer();
        let (mut session, _banner) = match (self.security, &self.tls) {
            (Security::Implicit, Some(tls)) => {
                let (s, banner, _info) = Session::connect_tls(
                    addr,
                    &self.server_name,
                    tls,
                    &self.settings,
                    Some(transcript),
                )
                .await?;
                (s, banner)
            }
            _ => Session::connect(addr, &self.settings, Some(transcript)).await?,
        };
        session.ehlo().await?;
        if let (Security::StartTls, Some(tls)) = (self.security, &self.tls) {
            session.starttls(&self.server_name, tls).await?;
            session.ehlo().await?;
        }
        if let Some((user, password, mechanism)) = &self.auth {
            let mechanism = mechanism.unwrap_or_else(|| {
                if session.ehlo_info().is_some_and(|e| e.has_auth("PLAIN")) {
                    AuthMechanism::Plain
                } else {
                    AuthMechanism::Login
                }
            });
            session.auth(mechanism, user, password).await?;
        }
        let outcome = match &self.message {
            Message::Generated(bytes) => session.send(&self.envelope, &mut bytes.as_slice()).await,
            Message::Stdin => session.send(&self.envelope, &mut tokio::io::stdin()).await,
            Message::File(path) => {
                let mut file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| ClientError::Body { source })?;
                session.send(&self.envelope, &mut file).await
            }
        }?;
        print_outcome(&self.envelope, &outcome);
        let _ = session.quit().await;
        Ok(outcome)
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ClientError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|source| ClientError::Io {
            stage: postern_smtpc::Stage::Connect,
            source: std::io::Error::new(source.kind(), format!("cannot resolve {host}: {source}")),
        })
}

/// The transcript on stdout, one line each: `>>> `, `<<< `, `*** `.
fn printer() -> Transcript {
    Box::new(|direction: Direction, line: &str| {
        crate::out::outln!("{}", transcript_line(direction, line));
    })
}

fn transcript_line(direction: Direction, line: &str) -> String {
    format!("{} {line}", direction.marker())
}

fn print_outcome(envelope: &OutEnvelope, outcome: &TransactionOutcome) {
    for (i, rcpt) in envelope.rcpts.iter().enumerate() {
        let verdict = match outcome.rcpt_result(i) {
            Some(r) if (200..300).contains(&r.code) => "accepted".to_owned(),
            Some(r) => format!("refused ({})", r.code),
            None => "not sent".to_owned(),
        };
        crate::out::outln!("*** {}: {verdict}", rcpt.address);
    }
    crate::out::outln!(
        "*** result: {}",
        if outcome.is_accepted() {
            "message accepted"
        } else {
            "message NOT accepted"
        }
    );
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A small RFC 5322 message with the headers receivers expect.
fn test_message(
    from: &str,
    to: &[String],
    subject: &str,
    helo: &str,
    now: time::OffsetDateTime,
    nonce: u64,
) -> Vec<u8> {
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| now.to_string());
    let from = if from.is_empty() {
        "<>".to_owned()
    } else {
        format!("<{from}>")
    };
    let to = to
        .iter()
        .map(|t| format!("<{t}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    format!(
        "Date: {date}\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{nonce:016x}.{}@{helo}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         X-Mailer: postern send\r\n\
         \r\n\
         This is a test message sent with `postern send`.\r\n",
        now.unix_timestamp()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_message_has_the_expected_headers() {
        let now = time::macros::datetime!(2026-03-01 12:00:00 UTC);
        let msg = test_message(
            "a@example.org",
            &["b@example.com".to_owned(), "c@example.com".to_owned()],
            "hello\r\nBcc: x",
            "client.example",
            now,
            0xabc,
        );
        let text = String::from_utf8(msg).unwrap_or_default();
        assert!(
            text.starts_with("Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("From: <a@example.org>\r\n"));
        assert!(text.contains("To: <b@example.com>, <c@example.com>\r\n"));
        assert!(
            text.contains("Subject: helloBcc: x\r\n"),
            "header injection: {text}"
        );
        assert!(text.contains("Message-ID: <0000000000000abc.1772366400@client.example>\r\n"));
        assert!(text.contains("\r\n\r\nThis is a test message"));
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
    }

    #[test]
    fn transcript_markers() {
        assert_eq!(transcript_line(Direction::Sent, "EHLO x"), ">>> EHLO x");
        assert_eq!(transcript_line(Direction::Received, "250 ok"), "<<< 250 ok");
        assert_eq!(transcript_line(Direction::Event, "TLS: x"), "*** TLS: x");
    }

    fn args(extra: &[&str]) -> SendArgs {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            send: SendArgs,
        }
        let mut argv = vec!["send", "--from", "a@example.org", "--to", "b@example.com"];
        argv.extend_from_slice(extra);
        Wrap::try_parse_from(argv).map_or_else(|e| panic!("{e}"), |w| w.send)
    }

    #[test]
    fn security_from_flags_and_port() {
        let cases: [(&[&str], Security); 5] = [
            (&[], Security::Plain),
            (&["--starttls"], Security::StartTls),
            (&["--tls"], Security::Implicit),
            (&["--server", "mx.example.com:465"], Security::Implicit),
            (
                &["--server", "mx.example.com:465", "--starttls"],
                Security::StartTls,
            ),
        ];
        for (extra, want) in cases {
            let plan = Plan::from_args(&args(extra)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(plan.security, want, "{extra:?}");
            assert_eq!(plan.tls.is_some(), want != Security::Plain);
        }
        let plan =
            Plan::from_args(&args(&["--server", "[::1]:2525"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.host.as_str(), plan.port), ("::1", 2525));
    }

    #[test]
    fn generated_message_sets_size() {
        let plan = Plan::from_args(&args(&[])).unwrap_or_else(|e| panic!("{e}"));
        let Message::Generated(bytes) = &plan.message else {
            panic!("expected a generated message");
        };
        assert_eq!(plan.envelope.size, Some(bytes.len() as u64));
        assert_eq!(plan.envelope.rcpts.len(), 1);
    }
}

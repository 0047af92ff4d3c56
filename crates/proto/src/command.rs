//! SMTP command lines: the typed [`Command`], its parser [`parse_command`], and
//! [`CommandError`] with the one table that maps every parse error to a reply.
//!
//! The parser is stateless: it does not know whether EHLO was sent, whether an
//! extension was advertised or whether the transaction uses SMTPUTF8. Those
//! checks (command order, `503`, `555` for parameters of extensions not offered,
//! UTF-8 recipients in a non-SMTPUTF8 transaction) belong to the session.
//! Why our own parser rather than smtp-proto's: `docs/adr/0002-own-smtp-command-parser.md`.
//!
//! # Security
//! Every byte is from an untrusted peer, and nothing here may panic. Lines are
//! length-checked before anything else. Any ASCII control character other than
//! HT is refused, so no CR, LF or NUL can reach a log, a header or a reply.
//! Lines that look like another protocol (HTTP, POP3, IMAP, a TLS handshake)
//! are classified separately ([`CommandError::is_cross_protocol`]) so the
//! session can drop the connection (the ALPACA class of attacks, and
//! cross-protocol scripting from browsers). AUTH initial responses are
//! credentials: [`Command`]'s `Debug` does not print them.
//!
//! # Standards
//! RFC 5321 §4.1 (commands and syntax), §4.2.4 and §4.5.3.1.10 (unrecognised
//! and unimplemented commands), §4.5.3.1.4 (line limit), RFC 3463 (enhanced
//! codes), RFC 1870 (SIZE), RFC 6152 (BODY=8BITMIME), RFC 3030 (BDAT,
//! BODY=BINARYMIME), RFC 6531 (SMTPUTF8), RFC 3461 (RET, ENVID, NOTIFY, ORCPT),
//! RFC 4954 (AUTH, AUTH=), RFC 4422 §3.1 (mechanism names).

use std::fmt;

use thiserror::Error;

use crate::address::{AddressError, ForwardPath, PathError, ReversePath, parse_path};
use crate::address::{Mailbox, strip_prefix_ignore_case};
use crate::limits::Limits;
use crate::reply::{EnhancedCode, Reply};
use crate::xtext::is_valid_xtext;

/// One parsed SMTP command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain` (the argument as sent: a domain or address literal;
    /// judging it is policy's job, see [`crate::is_valid_domain`]).
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`.
    Mail(MailFrom),
    /// `RCPT TO:<path> [params]`.
    Rcpt(RcptTo),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets in the chunk that follows the command line.
        size: u64,
        /// `LAST` was given.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `HELP [string]`.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64), `"="` meaning empty.
        /// A credential: never logged (see `Debug`).
        initial_response: Option<String>,
    },
    /// `VRFY string` (the argument is not kept: we never verify).
    Vrfy,
    /// `EXPN string` (the argument is not kept: we never expand).
    Expn,
}

impl Command {
    /// The verb, upper-cased, for logs and transcripts.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::Mail(_) => "MAIL",
            Command::Rcpt(_) => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Help => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Vrfy => "VRFY",
            Command::Expn => "EXPN",
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(d) => f.debug_tuple("Ehlo").field(d).finish(),
            Command::Helo(d) => f.debug_tuple("Helo").field(d).finish(),
            Command::Mail(m) => f.debug_tuple("Mail").field(m).finish(),
            Command::Rcpt(r) => f.debug_tuple("Rcpt").field(r).finish(),
            Command::Bdat { size, last } => f
                .debug_struct("Bdat")
                .field("size", size)
                .field("last", last)
                .finish(),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Command::Data
            | Command::Rset
            | Command::Noop
            | Command::Quit
            | Command::Help
            | Command::StartTls
            | Command::Vrfy
            | Command::Expn => {
                let name = match self {
                    Command::Data => "Data",
                    Command::Rset => "Rset",
                    Command::Noop => "Noop",
                    Command::Quit => "Quit",
                    Command::Help => "Help",
                    Command::StartTls => "StartTls",
                    Command::Vrfy => "Vrfy",
                    _ => "Expn",
                };
                f.write_str(name)
            }
        }
    }
}

/// `BODY=` (RFC 6152, RFC 3030).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// `BODY=7BIT`.
    SevenBit,
    /// `BODY=8BITMIME`.
    EightBitMime,
    /// `BODY=BINARYMIME` (BDAT only, RFC 3030 §3).
    BinaryMime,
}

/// `RET=` (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: return the whole message in a DSN.
    Full,
    /// `RET=HDRS`: return the headers only.
    Hdrs,
}

/// `NOTIFY=` (RFC 3461 §4.1). `never` excludes the others.
// The four keywords are independent flags on the wire; an enum set would only
// hide that.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Notify {
    /// `NEVER`.
    pub never: bool,
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

impl fmt::Display for Notify {
    /// `NEVER`, or the set keywords joined by commas (`SUCCESS,FAILURE`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let mut first = true;
        for (set, name) in [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ] {
            if set {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// `MAIL FROM:` and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// The sender, or `<>`.
    pub reverse_path: ReversePath,
    /// `SIZE=` (RFC 1870); values beyond `u64` saturate.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// `SMTPUTF8` was given (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext as sent (validated, at most 100 characters).
    pub envid: Option<String>,
    /// `AUTH=`, xtext or `<>` as sent (RFC 4954 §5).
    pub auth: Option<String>,
}

impl MailFrom {
    /// A MAIL command without parameters.
    pub fn new(reverse_path: ReversePath) -> Self {
        Self {
            reverse_path,
            size: None,
            body: None,
            smtputf8: false,
            ret: None,
            envid: None,
            auth: None,
        }
    }
}

/// `RCPT TO:` and its parameters.
///
/// A non-ASCII recipient is accepted by the parser (RCPT has no SMTPUTF8
/// parameter); the session must check [`ForwardPath::is_ascii`] against the
/// transaction and answer [`CommandError::Utf8WithoutSmtputf8`]'s reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    /// The recipient, or `Postmaster`.
    pub forward_path: ForwardPath,
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`, `addr-type ";" xtext` as sent (validated, at most 500
    /// characters).
    pub orcpt: Option<String>,
}

impl RcptTo {
    /// A RCPT command without parameters.
    pub fn new(forward_path: ForwardPath) -> Self {
        Self {
            forward_path,
            notify: None,
            orcpt: None,
        }
    }
}

/// Why a command line was refused. [`CommandError::to_reply`] is the table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// Over `Limits::max_command_line` (RFC 5321 §4.5.3.1.4).
    #[error("command line too long")]
    LineTooLong,
    /// An empty line.
    #[error("empty command line")]
    Empty,
    /// An ASCII control character other than HT (bare CR, NUL, ESC, …), in the
    /// verb or in the arguments.
    #[error("control character in command line")]
    ControlCharacter {
        /// Found after the verb (501) rather than in it (500).
        in_arguments: bool,
    },
    /// The arguments are not UTF-8.
    #[error("arguments are not UTF-8")]
    InvalidUtf8,
    /// The line belongs to another protocol (HTTP, POP3, IMAP, TLS): close the
    /// connection.
    #[error("non-SMTP protocol on the command channel")]
    CrossProtocol,
    /// Not an SMTP verb (RFC 5321 §4.2.4).
    #[error("unrecognised command")]
    Unrecognized,
    /// A known verb we do not implement (RFC 5321 §4.2.4: 502).
    #[error("command not implemented: {0}")]
    NotImplemented(&'static str),
    /// Wrong argument syntax for the verb.
    #[error("syntax error, expected {usage}")]
    Syntax {
        /// What the command should look like.
        usage: &'static str,
    },
    /// Arguments to a verb that takes none.
    #[error("{verb} takes no arguments")]
    UnexpectedArgument {
        /// The verb.
        verb: &'static str,
    },
    /// The MAIL path.
    #[error("bad sender: {0}")]
    BadSender(AddressError),
    /// The RCPT path.
    #[error("bad recipient: {0}")]
    BadRecipient(AddressError),
    /// A non-ASCII address without SMTPUTF8 (RFC 6531 §3.5).
    #[error("non-ASCII address without SMTPUTF8")]
    Utf8WithoutSmtputf8,
    /// A MAIL/RCPT parameter we do not know (RFC 5321 §4.1.1.11: 555).
    #[error("unsupported parameter {0}")]
    UnknownParameter(String),
    /// A parameter that is not `keyword[=value]`.
    #[error("malformed parameter")]
    MalformedParameter,
    /// A known parameter with a bad value.
    #[error("invalid value for {0}")]
    BadParameter(&'static str),
    /// A parameter given twice.
    #[error("duplicate parameter {0}")]
    DuplicateParameter(&'static str),
    /// `BDAT` size that is not a number (RFC 3030 §2).
    #[error("invalid BDAT chunk size")]
    BadChunkSize,
    /// `AUTH` mechanism that is not an RFC 4422 §3.1 name.
    #[error("invalid SASL mechanism name")]
    BadMechanism,
}

/// Builds a reply with an enhanced code.
fn reply(code: u16, (class, subject, detail): (u8, u16, u16), text: impl Into<String>) -> Reply {
    Reply::new(code, Some(EnhancedCode::new(class, subject, detail)), text)
}

impl CommandError {
    /// The reply for this error: the one table (RFC 5321 §4.2.4, §4.5.3.1.10,
    /// RFC 3463). Reply texts are ASCII.
    pub fn to_reply(&self) -> Reply {
        match self {
            // RFC 5321 §4.5.3.1.4: "500 Line too long".
            CommandError::LineTooLong => reply(500, (5, 5, 2), "Line too long"),
            CommandError::Empty => reply(500, (5, 5, 2), "Syntax error: empty command"),
            CommandError::ControlCharacter {
                in_arguments: false,
            } => reply(500, (5, 5, 2), "Syntax error: control character in command"),
            CommandError::ControlCharacter { in_arguments: true } => reply(
                501,
                (5, 5, 2),
                "Syntax error: control character in arguments",
            ),
            CommandError::InvalidUtf8 => {
                reply(501, (5, 5, 2), "Syntax error: arguments are not UTF-8")
            }
            CommandError::CrossProtocol => reply(500, (5, 5, 1), "Not an SMTP command"),
            // RFC 5321 §4.2.4: 500 for an unrecognised command, 502 for a
            // recognised but unimplemented one.
            CommandError::Unrecognized => reply(500, (5, 5, 1), "Command unrecognized"),
            CommandError::NotImplemented(_) => reply(502, (5, 5, 1), "Command not implemented"),
            CommandError::Syntax { usage } => reply(501, (5, 5, 2), format!("Syntax: {usage}")),
            CommandError::UnexpectedArgument { verb } => {
                reply(501, (5, 5, 4), format!("Syntax: {verb} takes no arguments"))
            }
            // RFC 3463: X.1.7 bad sender's mailbox address syntax.
            CommandError::BadSender(e) => reply(
                501,
                (5, 1, 7),
                address_text(*e, "Bad sender address syntax"),
            ),
            // RFC 3463: X.1.3 bad destination mailbox address syntax.
            CommandError::BadRecipient(e) => reply(
                501,
                (5, 1, 3),
                address_text(*e, "Bad recipient address syntax"),
            ),
            // RFC 6531 §3.5.
            CommandError::Utf8WithoutSmtputf8 => {
                reply(553, (5, 6, 7), "Non-ASCII address requires SMTPUTF8")
            }
            // RFC 5321 §4.1.1.11 / §4.2.3: 555 for unrecognised parameters.
            CommandError::UnknownParameter(name) => {
                reply(555, (5, 5, 4), format!("Unsupported parameter {name}"))
            }
            CommandError::MalformedParameter => reply(501, (5, 5, 4), "Malformed parameter"),
            CommandError::BadParameter(name) => {
                reply(501, (5, 5, 4), format!("Invalid value for {name}"))
            }
            CommandError::DuplicateParameter(name) => {
                reply(501, (5, 5, 4), format!("Duplicate parameter {name}"))
            }
            CommandError::BadChunkSize => reply(501, (5, 5, 4), "Invalid BDAT chunk size"),
            CommandError::BadMechanism => reply(501, (5, 5, 4), "Invalid mechanism name"),
        }
    }

    /// True when the line came from another protocol: the session should send
    /// the reply and close the connection.
    pub fn is_cross_protocol(&self) -> bool {
        matches!(self, CommandError::CrossProtocol)
    }
}

fn address_text(e: AddressError, syntax: &str) -> String {
    match e {
        AddressError::Syntax => syntax.to_owned(),
        AddressError::NullRecipient => "Null recipient not allowed".to_owned(),
        AddressError::LocalPartTooLong { limit } => {
            format!("Local part too long (limit {limit} octets)")
        }
        AddressError::DomainTooLong { limit } => format!("Domain too long (limit {limit} octets)"),
    }
}

/// The verbs we parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Help,
    StartTls,
    Auth,
    Vrfy,
    Expn,
}

const VERBS: [(&str, Verb); 14] = [
    ("EHLO", Verb::Ehlo),
    ("HELO", Verb::Helo),
    ("MAIL", Verb::Mail),
    ("RCPT", Verb::Rcpt),
    ("DATA", Verb::Data),
    ("BDAT", Verb::Bdat),
    ("RSET", Verb::Rset),
    ("NOOP", Verb::Noop),
    ("QUIT", Verb::Quit),
    ("HELP", Verb::Help),
    ("STARTTLS", Verb::StartTls),
    ("AUTH", Verb::Auth),
    ("VRFY", Verb::Vrfy),
    ("EXPN", Verb::Expn),
];

/// Registered SMTP verbs we do not implement: `502 5.5.1` (RFC 5321 §4.2.4).
const NOT_IMPLEMENTED: [&str; 7] = ["TURN", "ETRN", "SEND", "SOML", "SAML", "ATRN", "BURL"];

/// First words of HTTP requests (RFC 9110 §9, RFC 9113 §3.4 preface "PRI"),
/// POP3 (RFC 1939, RFC 2449, RFC 2595 "STLS") and NNTP (RFC 4643 "AUTHINFO")
/// that are never SMTP.
const FOREIGN_VERBS: [&str; 18] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PATCH", "PRI", "USER",
    "PASS", "APOP", "STLS", "CAPA", "UIDL", "RETR", "AUTHINFO",
];

/// IMAP commands (RFC 9051 §6) that follow a tag (`a1 LOGIN …`).
const IMAP_COMMANDS: [&str; 9] = [
    "CAPABILITY",
    "LOGIN",
    "AUTHENTICATE",
    "STARTTLS",
    "LOGOUT",
    "SELECT",
    "EXAMINE",
    "LIST",
    "ID",
];

/// True for control characters a command line may not hold (all C0 and DEL
/// except HT).
fn is_forbidden_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Does this line belong to another protocol?
fn is_cross_protocol(line: &[u8], verb: &[u8], args: &[u8], known: bool) -> bool {
    // A TLS record (content type 22, handshake) or an SSLv2 ClientHello sent in
    // plaintext.
    if matches!(line.first(), Some(0x16 | 0x80)) {
        return true;
    }
    if FOREIGN_VERBS
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(verb))
    {
        return true;
    }
    if known {
        return false;
    }
    // An HTTP header line ("Host: …", "User-Agent: …").
    if verb.len() >= 2
        && verb.ends_with(b":")
        && verb[..verb.len() - 1]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return true;
    }
    let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
    // "<method> <target> HTTP/1.1" with a method we do not list.
    if args
        .split(|&b| b == b' ')
        .next_back()
        .is_some_and(|last| last.len() >= 5 && last[..5].eq_ignore_ascii_case(b"HTTP/"))
    {
        return true;
    }
    // "<tag> LOGIN …".
    words.next().is_some_and(|second| {
        IMAP_COMMANDS
            .iter()
            .any(|c| c.as_bytes().eq_ignore_ascii_case(second))
    })
}

/// Parses one command line (without its line ending).
///
/// Never panics. Non-ASCII recipients are accepted here and must be checked by
/// the session (see [`RcptTo`]); everything else in the reply table is decided
/// here.
pub fn parse_command(line: &[u8], limits: &Limits) -> Result<Command, CommandError> {
    // RFC 5321 §4.5.3.1.4: the limit includes the CRLF.
    if line.len().saturating_add(2) > limits.max_command_line {
        return Err(CommandError::LineTooLong);
    }
    let end = line.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    let line = &line[..end];
    if line.is_empty() {
        return Err(CommandError::Empty);
    }
    let (verb_bytes, args) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    let verb = VERBS
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(verb_bytes))
        .map(|&(_, v)| v);
    if is_cross_protocol(line, verb_bytes, args, verb.is_some()) {
        return Err(CommandError::CrossProtocol);
    }
    if verb_bytes.iter().any(|&b| is_forbidden_control(b)) {
        return Err(CommandError::ControlCharacter {
            in_arguments: false,
        });
    }
    let Some(verb) = verb else {
        if let Some(name) = NOT_IMPLEMENTED
            .iter()
            .find(|name| name.as_bytes().eq_ignore_ascii_case(verb_bytes))
        {
            return Err(CommandError::NotImplemented(name));
        }
        return Err(CommandError::Unrecognized);
    };
    if args.iter().any(|&b| is_forbidden_control(b)) {
        return Err(CommandError::ControlCharacter { in_arguments: true });
    }
    let args = std::str::from_utf8(args).map_err(|_| CommandError::InvalidUtf8)?;
    match verb {
        Verb::Ehlo => hello(args, "EHLO domain").map(Command::Ehlo),
        Verb::Helo => hello(args, "HELO domain").map(Command::Helo),
        Verb::Mail => parse_mail(args, limits).map(Command::Mail),
        Verb::Rcpt => parse_rcpt(args, limits).map(Command::Rcpt),
        Verb::Data => no_args(args, "DATA", Command::Data),
        Verb::Bdat => parse_bdat(args),
        Verb::Rset => no_args(args, "RSET", Command::Rset),
        // RFC 5321 §4.1.1.9 / §4.1.1.8: NOOP and HELP take an optional string,
        // which we ignore.
        Verb::Noop => Ok(Command::Noop),
        Verb::Help => Ok(Command::Help),
        Verb::Quit => no_args(args, "QUIT", Command::Quit),
        Verb::StartTls => no_args(args, "STARTTLS", Command::StartTls),
        Verb::Auth => parse_auth(args),
        // The argument is ignored: the session answers 252 or 502 whatever it
        // is (RFC 5321 §3.5.3, §7.3).
        Verb::Vrfy => Ok(Command::Vrfy),
        Verb::Expn => Ok(Command::Expn),
    }
}

fn no_args(args: &str, verb: &'static str, command: Command) -> Result<Command, CommandError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(CommandError::UnexpectedArgument { verb })
    }
}

/// `EHLO domain` / `HELO domain`: one token, required (RFC 5321 §4.1.1.1).
fn hello(args: &str, usage: &'static str) -> Result<String, CommandError> {
    let arg = args.trim_matches(' ');
    if arg.is_empty() || arg.contains([' ', '\t']) {
        return Err(CommandError::Syntax { usage });
    }
    Ok(arg.to_owned())
}

/// `BDAT chunk-size [SP end-marker]` (RFC 3030 §2).
fn parse_bdat(args: &str) -> Result<Command, CommandError> {
    const USAGE: &str = "BDAT size [LAST]";
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let size = words.next().ok_or(CommandError::Syntax { usage: USAGE })?;
    // chunk-size = 1*DIGIT; a size that does not fit u64 cannot be received.
    if !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::BadChunkSize);
    }
    let size = size
        .parse::<u64>()
        .map_err(|_| CommandError::BadChunkSize)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax { usage: USAGE }),
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax { usage: USAGE });
    }
    Ok(Command::Bdat { size, last })
}

/// `AUTH mechanism [initial-response]` (RFC 4954 §4).
fn parse_auth(args: &str) -> Result<Command, CommandError> {
    const USAGE: &str = "AUTH mechanism [initial-response]";
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let mechanism = words.next().ok_or(CommandError::Syntax { usage: USAGE })?;
    // RFC 4422 §3.1: sasl-mech = 1*20mech-char; upper-case letters, digits,
    // "-" and "_". We accept lower case and upper-case it.
    if mechanism.is_empty()
        || mechanism.len() > 20
        || !mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CommandError::BadMechanism);
    }
    let initial_response = words.next().map(str::to_owned);
    if words.next().is_some() {
        return Err(CommandError::Syntax { usage: USAGE });
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response,
    })
}

/// Takes `FROM:` / `TO:`, then an optional single SP (common in the wild,
/// though RFC 5321 §4.1.1.2 has none), then a `<`.
fn path_start<'a>(
    args: &'a str,
    keyword: &str,
    usage: &'static str,
) -> Result<&'a str, CommandError> {
    let rest = strip_prefix_ignore_case(args, keyword).ok_or(CommandError::Syntax { usage })?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if rest.starts_with('<') {
        Ok(rest)
    } else {
        Err(CommandError::Syntax { usage })
    }
}

/// Splits `[SP esmtp-param *(SP esmtp-param)]` (RFC 5321 §4.1.2) into
/// `(keyword, value)` pairs.
fn params<'a>(
    rest: &'a str,
    usage: &'static str,
) -> Result<Vec<(&'a str, Option<&'a str>)>, CommandError> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::Syntax { usage });
    }
    rest.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (keyword, value) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
            let valid = keyword
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && keyword
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if valid {
                Ok((keyword, value))
            } else {
                Err(CommandError::MalformedParameter)
            }
        })
        .collect()
}

/// Marks a parameter as seen; a second occurrence is an error.
fn once(seen: &mut bool, name: &'static str) -> Result<(), CommandError> {
    if std::mem::replace(seen, true) {
        Err(CommandError::DuplicateParameter(name))
    } else {
        Ok(())
    }
}

fn unknown(keyword: &str) -> CommandError {
    CommandError::UnknownParameter(keyword.to_ascii_uppercase())
}

fn parse_mail(args: &str, limits: &Limits) -> Result<MailFrom, CommandError> {
    const USAGE: &str = "MAIL FROM:<address> [parameters]";
    let rest = path_start(args, "FROM:", USAGE)?;
    let (mailbox, rest) = parse_path(rest, limits).map_err(|e| match e {
        PathError::Unclosed => CommandError::Syntax { usage: USAGE },
        PathError::Address(a) => CommandError::BadSender(a),
    })?;
    let mut mail = MailFrom::new(mailbox.map_or(ReversePath::Null, ReversePath::Mailbox));
    let mut seen = [false; 6];
    for (keyword, value) in params(rest, USAGE)? {
        let is = |name: &str| keyword.eq_ignore_ascii_case(name);
        if is("SIZE") {
            once(&mut seen[0], "SIZE")?;
            mail.size = Some(parse_size(value).ok_or(CommandError::BadParameter("SIZE"))?);
        } else if is("BODY") {
            once(&mut seen[1], "BODY")?;
            let value = value.ok_or(CommandError::BadParameter("BODY"))?;
            mail.body = Some(if value.eq_ignore_ascii_case("7BIT") {
                Body::SevenBit
            } else if value.eq_ignore_ascii_case("8BITMIME") {
                Body::EightBitMime
            } else if value.eq_ignore_ascii_case("BINARYMIME") {
                Body::BinaryMime
            } else {
                return Err(CommandError::BadParameter("BODY"));
            });
        } else if is("SMTPUTF8") {
            once(&mut seen[2], "SMTPUTF8")?;
            // RFC 6531 §3.4: the parameter has no value.
            if value.is_some() {
                return Err(CommandError::BadParameter("SMTPUTF8"));
            }
            mail.smtputf8 = true;
        } else if is("RET") {
            once(&mut seen[3], "RET")?;
            let value = value.ok_or(CommandError::BadParameter("RET"))?;
            mail.ret = Some(if value.eq_ignore_ascii_case("FULL") {
                Ret::Full
            } else if value.eq_ignore_ascii_case("HDRS") {
                Ret::Hdrs
            } else {
                return Err(CommandError::BadParameter("RET"));
            });
        } else if is("ENVID") {
            once(&mut seen[4], "ENVID")?;
            // RFC 3461 §4.4: xtext, at most 100 characters.
            match value {
                Some(v) if !v.is_empty() && v.len() <= 100 && is_valid_xtext(v) => {
                    mail.envid = Some(v.to_owned());
                }
                _ => return Err(CommandError::BadParameter("ENVID")),
            }
        } else if is("AUTH") {
            once(&mut seen[5], "AUTH")?;
            // RFC 4954 §5: AUTH=xtext or AUTH=<>.
            match value {
                Some(v) if v == "<>" || (!v.is_empty() && is_valid_xtext(v)) => {
                    mail.auth = Some(v.to_owned());
                }
                _ => return Err(CommandError::BadParameter("AUTH")),
            }
        } else {
            return Err(unknown(keyword));
        }
    }
    // RFC 6531 §3.5: a non-ASCII address without SMTPUTF8 gets 553 5.6.7.
    if !mail.smtputf8 && !mail.reverse_path.is_ascii() {
        return Err(CommandError::Utf8WithoutSmtputf8);
    }
    Ok(mail)
}

/// RFC 1870 §3: `size-value = 1*20DIGIT`. Values beyond `u64` saturate: the
/// session will refuse them as too big (552), which is the truthful answer.
fn parse_size(value: Option<&str>) -> Option<u64> {
    let value = value?;
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn parse_rcpt(args: &str, limits: &Limits) -> Result<RcptTo, CommandError> {
    const USAGE: &str = "RCPT TO:<address> [parameters]";
    let rest = path_start(args, "TO:", USAGE)?;
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain, case-insensitive.
    let (forward_path, rest) = if let Some(rest) = strip_prefix_ignore_case(rest, "<Postmaster>") {
        (ForwardPath::Postmaster, rest)
    } else {
        let (mailbox, rest) = parse_path(rest, limits).map_err(|e| match e {
            PathError::Unclosed => CommandError::Syntax { usage: USAGE },
            PathError::Address(a) => CommandError::BadRecipient(a),
        })?;
        let mailbox: Mailbox =
            mailbox.ok_or(CommandError::BadRecipient(AddressError::NullRecipient))?;
        (ForwardPath::Mailbox(mailbox), rest)
    };
    let mut rcpt = RcptTo::new(forward_path);
    let mut seen = [false; 2];
    for (keyword, value) in params(rest, USAGE)? {
        if keyword.eq_ignore_ascii_case("NOTIFY") {
            once(&mut seen[0], "NOTIFY")?;
            rcpt.notify = Some(parse_notify(value).ok_or(CommandError::BadParameter("NOTIFY"))?);
        } else if keyword.eq_ignore_ascii_case("ORCPT") {
            once(&mut seen[1], "ORCPT")?;
            match value {
                Some(v) if is_valid_orcpt(v) => rcpt.orcpt = Some(v.to_owned()),
                _ => return Err(CommandError::BadParameter("ORCPT")),
            }
        } else {
            return Err(unknown(keyword));
        }
    }
    Ok(rcpt)
}

/// RFC 3461 §4.1: `"NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" )`.
fn parse_notify(value: Option<&str>) -> Option<Notify> {
    let value = value?;
    if value.eq_ignore_ascii_case("NEVER") {
        return Some(Notify {
            never: true,
            ..Notify::default()
        });
    }
    let mut notify = Notify::default();
    for item in value.split(',') {
        if item.eq_ignore_ascii_case("SUCCESS") {
            notify.success = true;
        } else if item.eq_ignore_ascii_case("FAILURE") {
            notify.failure = true;
        } else if item.eq_ignore_ascii_case("DELAY") {
            notify.delay = true;
        } else {
            // Includes NEVER combined with others, and empty items.
            return None;
        }
    }
    Some(notify)
}

/// RFC 3461 §4.2: `addr-type ";" xtext`, addr-type an RFC 822 atom; at most
/// 500 characters.
fn is_valid_orcpt(value: &str) -> bool {
    let Some((addr_type, address)) = value.split_once(';') else {
        return false;
    };
    value.len() <= 500
        && !addr_type.is_empty()
        && addr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        && !address.is_empty()
        && is_valid_xtext(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(local: &str, domain: &str) -> Mailbox {
        Mailbox {
            local_part: local.to_owned(),
            domain: domain.to_owned(),
        }
    }

    fn mail(local: &str, domain: &str) -> MailFrom {
        MailFrom::new(ReversePath::Mailbox(mb(local, domain)))
    }

    fn rcpt(local: &str, domain: &str) -> RcptTo {
        RcptTo::new(ForwardPath::Mailbox(mb(local, domain)))
    }

    fn parse(line: &str) -> Result<Command, CommandError> {
        parse_command(line.as_bytes(), &Limits::default())
    }

    #[test]
    fn accepted_commands() {
        let cases: Vec<(&str, Command)> = vec![
            (
                "EHLO client.example",
                Command::Ehlo("client.example".into()),
            ),
            (
                "ehlo client.example",
                Command::Ehlo("client.example".into()),
            ),
            ("EhLo [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
            (
                "EHLO  spaced.example  ",
                Command::Ehlo("spaced.example".into()),
            ),
            (
                "HELO client.example",
                Command::Helo("client.example".into()),
            ),
            (
                "MAIL FROM:<a@b.example>",
                Command::Mail(mail("a", "b.example")),
            ),
            (
                "mail from:<a@b.example>",
                Command::Mail(mail("a", "b.example")),
            ),
            (
                "MAIL FROM: <a@b.example>",
                Command::Mail(mail("a", "b.example")),
            ),
            (
                "MAIL FROM:<>",
                Command::Mail(MailFrom::new(ReversePath::Null)),
            ),
            ("MAIL FROM:<@r1,@r2:a@b>", Command::Mail(mail("a", "b"))),
            ("MAIL FROM:<\"a b\"@c>", Command::Mail(mail("a b", "c"))),
            (
                "MAIL FROM:<a@[IPv6:2001:db8::1]>",
                Command::Mail(mail("a", "[IPv6:2001:db8::1]")),
            ),
            (
                "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME",
                Command::Mail(MailFrom {
                    size: Some(1000),
                    body: Some(Body::EightBitMime),
                    ..mail("a", "b")
                }),
            ),
            (
                "MAIL FROM:<a@b>  size=0 body=7bit ret=hdrs envid=QQ+2B1 auth=<>  ",
                Command::Mail(MailFrom {
                    size: Some(0),
                    body: Some(Body::SevenBit),
                    ret: Some(Ret::Hdrs),
                    envid: Some("QQ+2B1".into()),
                    auth: Some("<>".into()),
                    ..mail("a", "b")
                }),
            ),
            (
                "MAIL FROM:<a@b> BODY=BINARYMIME RET=FULL AUTH=e+3Dmc2@example.com",
                Command::Mail(MailFrom {
                    body: Some(Body::BinaryMime),
                    ret: Some(Ret::Full),
                    auth: Some("e+3Dmc2@example.com".into()),
                    ..mail("a", "b")
                }),
            ),
            (
                "MAIL FROM:<a@b> SIZE=99999999999999999999",
                Command::Mail(MailFrom {
                    size: Some(u64::MAX),
                    ..mail("a", "b")
                }),
            ),
            (
                "MAIL FROM:<jürgen@bücher.example> SMTPUTF8",
                Command::Mail(MailFrom {
                    smtputf8: true,
                    ..mail("jürgen", "bücher.example")
                }),
            ),
            (
                "RCPT TO:<c@d.example>",
                Command::Rcpt(rcpt("c", "d.example")),
            ),
            (
                "RCPT TO: <c@d.example>",
                Command::Rcpt(rcpt("c", "d.example")),
            ),
            ("rcpt to:<c@d>", Command::Rcpt(rcpt("c", "d"))),
            (
                "RCPT TO:<Postmaster>",
                Command::Rcpt(RcptTo::new(ForwardPath::Postmaster)),
            ),
            (
                "RCPT TO:<postmaster>",
                Command::Rcpt(RcptTo::new(ForwardPath::Postmaster)),
            ),
            (
                "RCPT TO:<postmaster@d>",
                Command::Rcpt(rcpt("postmaster", "d")),
            ),
            ("RCPT TO:<@hop:c@d>", Command::Rcpt(rcpt("c", "d"))),
            // RCPT has no SMTPUTF8 parameter: the session checks is_ascii().
            ("RCPT TO:<ü@d>", Command::Rcpt(rcpt("ü", "d"))),
            (
                "RCPT TO:<c@d> NOTIFY=SUCCESS,failure ORCPT=rfc822;c+40d",
                Command::Rcpt(RcptTo {
                    notify: Some(Notify {
                        success: true,
                        failure: true,
                        ..Notify::default()
                    }),
                    orcpt: Some("rfc822;c+40d".into()),
                    ..rcpt("c", "d")
                }),
            ),
            (
                "RCPT TO:<c@d> NOTIFY=NEVER",
                Command::Rcpt(RcptTo {
                    notify: Some(Notify {
                        never: true,
                        ..Notify::default()
                    }),
                    ..rcpt("c", "d")
                }),
            ),
            ("DATA", Command::Data),
            ("data", Command::Data),
            ("DATA ", Command::Data),
            (
                "BDAT 0",
                Command::Bdat {
                    size: 0,
                    last: false,
                },
            ),
            (
                "BDAT 1000 LAST",
                Command::Bdat {
                    size: 1000,
                    last: true,
                },
            ),
            (
                "bdat 7 last",
                Command::Bdat {
                    size: 7,
                    last: true,
                },
            ),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("NOOP anything at all", Command::Noop),
            ("QUIT", Command::Quit),
            ("HELP", Command::Help),
            ("HELP MAIL", Command::Help),
            ("STARTTLS", Command::StartTls),
            ("starttls", Command::StartTls),
            (
                "AUTH plain",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: None,
                },
            ),
            (
                "AUTH PLAIN AGEAYg==",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("AGEAYg==".into()),
                },
            ),
            (
                "AUTH PLAIN =",
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("=".into()),
                },
            ),
            (
                "AUTH SCRAM-SHA-256",
                Command::Auth {
                    mechanism: "SCRAM-SHA-256".into(),
                    initial_response: None,
                },
            ),
            ("VRFY postmaster", Command::Vrfy),
            ("VRFY", Command::Vrfy),
            ("EXPN list", Command::Expn),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "{line:?}");
        }
    }

    /// The reply table: every error the parser produces, with its reply.
    #[test]
    fn rejected_commands_reply_table() {
        let long_local = format!("MAIL FROM:<{}@d>", "x".repeat(65));
        let long_rcpt_local = format!("RCPT TO:<{}@d>", "x".repeat(65));
        let cases: Vec<(&str, u16, &str, &str)> = vec![
            // line, code, enhanced, text (substring)
            ("FOO", 500, "5.5.1", "Command unrecognized"),
            ("LHLO x", 500, "5.5.1", "unrecognized"),
            ("MAILFROM:<a@b>", 500, "5.5.1", "unrecognized"),
            (" MAIL FROM:<a@b>", 500, "5.5.1", "unrecognized"),
            ("", 500, "5.5.2", "empty"),
            ("   ", 500, "5.5.2", "empty"),
            ("TURN", 502, "5.5.1", "not implemented"),
            ("ETRN example.org", 502, "5.5.1", "not implemented"),
            ("SEND FROM:<a@b>", 502, "5.5.1", "not implemented"),
            ("SOML FROM:<a@b>", 502, "5.5.1", "not implemented"),
            ("SAML FROM:<a@b>", 502, "5.5.1", "not implemented"),
            ("ATRN", 502, "5.5.1", "not implemented"),
            ("EHLO", 501, "5.5.2", "Syntax: EHLO domain"),
            ("EHLO ", 501, "5.5.2", "Syntax: EHLO domain"),
            ("HELO", 501, "5.5.2", "Syntax: HELO domain"),
            ("EHLO a b", 501, "5.5.2", "Syntax"),
            ("EHLO a\tb", 501, "5.5.2", "Syntax"),
            ("MAIL", 501, "5.5.2", "Syntax: MAIL FROM:<address>"),
            ("MAIL TO:<a@b>", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:a@b", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:  <a@b>", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:<a@b", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:<a@b>SIZE=1", 501, "5.5.2", "Syntax"),
            ("RCPT", 501, "5.5.2", "Syntax: RCPT TO:<address>"),
            ("RCPT TO:c@d", 501, "5.5.2", "Syntax"),
            ("RCPT TO:<c@d", 501, "5.5.2", "Syntax"),
            ("MAIL FROM:<a>", 501, "5.1.7", "Bad sender address syntax"),
            (
                "MAIL FROM:<a@b..c>",
                501,
                "5.1.7",
                "Bad sender address syntax",
            ),
            (
                "MAIL FROM:<a@[1.2.3.999]>",
                501,
                "5.1.7",
                "Bad sender address syntax",
            ),
            ("RCPT TO:<c>", 501, "5.1.3", "Bad recipient address syntax"),
            (
                "RCPT TO:<c@d_e>",
                501,
                "5.1.3",
                "Bad recipient address syntax",
            ),
            ("RCPT TO:<>", 501, "5.1.3", "Null recipient"),
            (
                &long_local,
                501,
                "5.1.7",
                "Local part too long (limit 64 octets)",
            ),
            (
                &long_rcpt_local,
                501,
                "5.1.3",
                "Local part too long (limit 64 octets)",
            ),
            ("MAIL FROM:<ü@d>", 553, "5.6.7", "SMTPUTF8"),
            ("MAIL FROM:<a@bücher.example>", 553, "5.6.7", "SMTPUTF8"),
            (
                "MAIL FROM:<a@b> FOO=1",
                555,
                "5.5.4",
                "Unsupported parameter FOO",
            ),
            ("MAIL FROM:<a@b> mt-priority=3", 555, "5.5.4", "MT-PRIORITY"),
            (
                "RCPT TO:<c@d> SIZE=1",
                555,
                "5.5.4",
                "Unsupported parameter SIZE",
            ),
            (
                "MAIL FROM:<a@b> SIZE=abc",
                501,
                "5.5.4",
                "Invalid value for SIZE",
            ),
            ("MAIL FROM:<a@b> SIZE=", 501, "5.5.4", "SIZE"),
            ("MAIL FROM:<a@b> SIZE", 501, "5.5.4", "SIZE"),
            ("MAIL FROM:<a@b> SIZE=-1", 501, "5.5.4", "SIZE"),
            (
                "MAIL FROM:<a@b> SIZE=123456789012345678901",
                501,
                "5.5.4",
                "SIZE",
            ),
            (
                "MAIL FROM:<a@b> BODY=FOO",
                501,
                "5.5.4",
                "Invalid value for BODY",
            ),
            ("MAIL FROM:<a@b> BODY", 501, "5.5.4", "BODY"),
            ("MAIL FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4", "SMTPUTF8"),
            ("MAIL FROM:<a@b> RET=ALL", 501, "5.5.4", "RET"),
            ("MAIL FROM:<a@b> ENVID=a+zz", 501, "5.5.4", "ENVID"),
            ("MAIL FROM:<a@b> ENVID=", 501, "5.5.4", "ENVID"),
            ("MAIL FROM:<a@b> AUTH=", 501, "5.5.4", "AUTH"),
            ("MAIL FROM:<a@b> AUTH=a+", 501, "5.5.4", "AUTH"),
            (
                "MAIL FROM:<a@b> SIZE=1 SIZE=2",
                501,
                "5.5.4",
                "Duplicate parameter SIZE",
            ),
            ("MAIL FROM:<a@b> =1", 501, "5.5.4", "Malformed parameter"),
            ("MAIL FROM:<a@b> -X=1", 501, "5.5.4", "Malformed parameter"),
            ("MAIL FROM:<a@b> X_Y=1", 501, "5.5.4", "Malformed parameter"),
            (
                "RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS",
                501,
                "5.5.4",
                "Invalid value for NOTIFY",
            ),
            ("RCPT TO:<c@d> NOTIFY=SOMETIMES", 501, "5.5.4", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY=SUCCESS,", 501, "5.5.4", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY", 501, "5.5.4", "NOTIFY"),
            ("RCPT TO:<c@d> ORCPT=rfc822", 501, "5.5.4", "ORCPT"),
            ("RCPT TO:<c@d> ORCPT=rfc822;", 501, "5.5.4", "ORCPT"),
            ("RCPT TO:<c@d> ORCPT=;a@b", 501, "5.5.4", "ORCPT"),
            ("RCPT TO:<c@d> ORCPT=rfc822;a+4", 501, "5.5.4", "ORCPT"),
            (
                "RCPT TO:<c@d> NOTIFY=DELAY NOTIFY=DELAY",
                501,
                "5.5.4",
                "Duplicate",
            ),
            ("DATA now", 501, "5.5.4", "DATA takes no arguments"),
            ("RSET x", 501, "5.5.4", "RSET takes no arguments"),
            ("QUIT x", 501, "5.5.4", "QUIT"),
            ("STARTTLS x", 501, "5.5.4", "STARTTLS"),
            ("BDAT", 501, "5.5.2", "Syntax: BDAT"),
            ("BDAT abc", 501, "5.5.4", "BDAT chunk size"),
            ("BDAT -1", 501, "5.5.4", "BDAT chunk size"),
            ("BDAT 1e3", 501, "5.5.4", "BDAT chunk size"),
            ("BDAT 99999999999999999999", 501, "5.5.4", "BDAT chunk size"),
            ("BDAT 10 FIRST", 501, "5.5.2", "Syntax: BDAT"),
            ("BDAT 10 LAST x", 501, "5.5.2", "Syntax: BDAT"),
            ("AUTH", 501, "5.5.2", "Syntax: AUTH"),
            ("AUTH PLAIN a b", 501, "5.5.2", "Syntax: AUTH"),
            ("AUTH PL/AIN", 501, "5.5.4", "mechanism"),
            ("AUTH ABCDEFGHIJKLMNOPQRSTU", 501, "5.5.4", "mechanism"),
            // Control characters, invalid UTF-8.
            ("MAIL FROM:<a@b>\r", 501, "5.5.2", "control character"),
            ("MAIL FROM:<a\r@b>", 501, "5.5.2", "control character"),
            ("EHLO a\0b", 501, "5.5.2", "control character"),
            ("EHLO a\x1bb", 501, "5.5.2", "control character"),
            ("NO\0OP", 500, "5.5.2", "control character"),
            ("QUIT\r", 500, "5.5.2", "control character"),
        ];
        for (line, code, enhanced, text) in cases {
            let err = parse(line).expect_err(line);
            let reply = err.to_reply();
            assert_eq!(reply.code, code, "{line:?} -> {err:?}");
            assert_eq!(
                reply.enhanced.map(|e| e.to_string()).as_deref(),
                Some(enhanced),
                "{line:?} -> {err:?}"
            );
            assert!(
                reply.lines[0].to_lowercase().contains(&text.to_lowercase()),
                "{line:?} -> {:?}",
                reply.lines
            );
            assert!(reply.lines.iter().all(|l| l.is_ascii()), "{line:?}");
            assert!(!err.is_cross_protocol(), "{line:?}");
        }
    }

    #[test]
    fn invalid_utf8_in_arguments() {
        let err = parse_command(b"MAIL FROM:<\xff@b>", &Limits::default());
        assert_eq!(err, Err(CommandError::InvalidUtf8));
        let r = CommandError::InvalidUtf8.to_reply();
        assert_eq!(
            (r.code, r.enhanced),
            (501, Some(EnhancedCode::new(5, 5, 2)))
        );
        // A non-UTF-8 verb is just unrecognised.
        assert_eq!(
            parse_command(b"\xc3\xa9HLO x", &Limits::default()),
            Err(CommandError::Unrecognized)
        );
    }

    #[test]
    fn cross_protocol_lines() {
        let lines: &[&[u8]] = &[
            b"GET / HTTP/1.1",
            b"get /",
            b"POST /form HTTP/1.0",
            b"HEAD / HTTP/1.1",
            b"PUT /x HTTP/1.1",
            b"CONNECT mx.example:25 HTTP/1.1",
            b"OPTIONS * HTTP/1.1",
            b"PRI * HTTP/2.0",
            b"PROPFIND /dav HTTP/1.1",
            b"Host: mx.example",
            b"User-Agent: curl/8",
            b"USER alice",
            b"PASS secret",
            b"STLS",
            b"CAPA",
            b"a1 LOGIN alice secret",
            b"A CAPABILITY",
            b". STARTTLS",
            b"AUTHINFO USER x",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x80\x2e\x01\x00\x02",
        ];
        for line in lines {
            let err = parse_command(line, &Limits::default());
            let Err(err) = err else {
                panic!("{line:?} parsed");
            };
            assert!(err.is_cross_protocol(), "{line:?} -> {err:?}");
            let r = err.to_reply();
            assert_eq!(
                (r.code, r.enhanced),
                (500, Some(EnhancedCode::new(5, 5, 1)))
            );
        }
        // SMTP verbs with HTTP-looking or IMAP-looking arguments stay SMTP.
        assert_eq!(parse("NOOP HTTP/1.1"), Ok(Command::Noop));
        assert_eq!(parse("HELP LOGIN"), Ok(Command::Help));
        assert_eq!(parse("EHLO LOGIN"), Ok(Command::Ehlo("LOGIN".into())));
    }

    #[test]
    fn line_limit_at_and_over() {
        let limits = Limits::default();
        // 510 octets + CRLF = 512: accepted; 511 is one over.
        let at = format!("NOOP {}", "x".repeat(505));
        assert_eq!(at.len(), 510);
        assert_eq!(parse_command(at.as_bytes(), &limits), Ok(Command::Noop));
        let over = format!("NOOP {}", "x".repeat(506));
        let err = parse_command(over.as_bytes(), &limits).expect_err("over the limit");
        assert_eq!(err, CommandError::LineTooLong);
        assert_eq!(
            String::from_utf8_lossy(&err.to_reply().to_bytes()),
            "500 5.5.2 Line too long\r\n"
        );
    }

    type LimitCase = (String, Result<(), (u16, &'static str, &'static str)>);

    #[test]
    fn local_part_and_domain_limits() {
        let limits = Limits {
            max_command_line: 2000,
            ..Limits::default()
        };
        let d255 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(63));
        assert_eq!(d255.len(), 255);
        let d256 = format!("{0}.{0}.{0}.{1}.e", "a".repeat(63), "b".repeat(62));
        assert_eq!(d256.len(), 256);
        let l64 = "l".repeat(64);
        let l65 = "l".repeat(65);
        let cases: Vec<LimitCase> = vec![
            (format!("MAIL FROM:<{l64}@d>"), Ok(())),
            (
                format!("MAIL FROM:<{l65}@d>"),
                Err((501, "5.1.7", "Local part too long (limit 64 octets)")),
            ),
            (format!("RCPT TO:<{l64}@d>"), Ok(())),
            (
                format!("RCPT TO:<{l65}@d>"),
                Err((501, "5.1.3", "Local part too long (limit 64 octets)")),
            ),
            (format!("MAIL FROM:<u@{d255}>"), Ok(())),
            (
                format!("MAIL FROM:<u@{d256}>"),
                Err((501, "5.1.7", "Domain too long (limit 255 octets)")),
            ),
            (format!("RCPT TO:<u@{d255}>"), Ok(())),
            (
                format!("RCPT TO:<u@{d256}>"),
                Err((501, "5.1.3", "Domain too long (limit 255 octets)")),
            ),
        ];
        for (line, want) in cases {
            let got = parse_command(line.as_bytes(), &limits)
                .map(|_| ())
                .map_err(|e| {
                    let r = e.to_reply();
                    (
                        r.code,
                        r.enhanced.map(|e| e.to_string()).unwrap_or_default(),
                        r.lines[0].clone(),
                    )
                });
            let want = want.map_err(|(c, e, t)| (c, e.to_owned(), t.to_owned()));
            assert_eq!(got, want, "{line}");
        }
        // Configured limits are honoured, and named in the reply.
        let small = Limits {
            max_local_part: 3,
            max_domain: 5,
            ..Limits::default()
        };
        assert!(parse_command(b"RCPT TO:<abc@d.efg>", &small).is_ok());
        let r = parse_command(b"RCPT TO:<abcd@d.efg>", &small)
            .expect_err("local part")
            .to_reply();
        assert_eq!(r.lines[0], "Local part too long (limit 3 octets)");
        let r = parse_command(b"RCPT TO:<abc@d.efgh>", &small)
            .expect_err("domain")
            .to_reply();
        assert_eq!(r.lines[0], "Domain too long (limit 5 octets)");
    }

    #[test]
    fn auth_debug_redacts_the_initial_response() {
        let cmd = parse("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm").expect("valid AUTH");
        let debug = format!("{cmd:?}");
        assert!(!debug.contains("AHRpbQB0"), "{debug}");
        assert!(debug.contains("PLAIN"), "{debug}");
        assert_eq!(format!("{:?}", Command::Data), "Data");
        assert!(format!("{:?}", parse("MAIL FROM:<a@b>")).contains("Mail"));
    }

    #[test]
    fn notify_display() {
        let n = |never, success, failure, delay| Notify {
            never,
            success,
            failure,
            delay,
        };
        assert_eq!(n(true, false, false, false).to_string(), "NEVER");
        assert_eq!(n(false, true, true, false).to_string(), "SUCCESS,FAILURE");
        assert_eq!(
            n(false, true, true, true).to_string(),
            "SUCCESS,FAILURE,DELAY"
        );
        assert_eq!(n(false, false, false, true).to_string(), "DELAY");
    }

    #[test]
    fn verbs() {
        for (line, verb) in [
            ("EHLO x", "EHLO"),
            ("bdat 1", "BDAT"),
            ("starttls", "STARTTLS"),
        ] {
            assert_eq!(parse(line).map(|c| c.verb()), Ok(verb));
        }
    }

    #[test]
    fn display_of_parsed_paths_is_canonical() {
        let Ok(Command::Mail(m)) = parse("MAIL FROM:<\"john.doe\"@Example.ORG>") else {
            panic!("MAIL did not parse");
        };
        assert_eq!(m.reverse_path.to_string(), "john.doe@Example.ORG");
        let Ok(Command::Mail(m)) = parse("MAIL FROM:<>") else {
            panic!("MAIL did not parse");
        };
        assert_eq!(format!("<{}>", m.reverse_path), "<>");
    }
}

//! Local delivery into Maildir folders, one recipient at a time: the final
//! delivery of a message for a `[[route]]` with `maildir = "…/{domain}/{user}"`.
//! No DNS, no network, no TLS: the SMTP transport hands such jobs here
//! (`smtp.rs`), and the work runs on the blocking pool.
//!
//! The Maildir protocol (<http://cr.yp.to/proto/maildir.html>, and Dovecot's
//! notes on it): the message is written to `<maildir>/tmp/<unique>`, fsynced,
//! linked (or renamed) to `<maildir>/new/<unique>`, and `new/` is fsynced.
//! Only then is the recipient delivered; a reader never sees half a message.
//! The file starts with `Return-Path: <sender>` (RFC 5321 §4.4: the final
//! delivery records the reverse path) and `Delivered-To: <recipient>`, then the
//! message streamed from the spool with LF line ends, as Postfix, Dovecot's LDA
//! and qmail store Maildir files (IMAP servers hand them out with CRLF).
//!
//! Outcomes per recipient: delivered; a missing Maildir with `create = false`
//! bounces `550 5.1.1`; a local part that cannot name a mailbox safely bounces
//! `553 5.1.3`; a full disk or quota (`ENOSPC`, `EDQUOT`) defers `452 4.2.2`;
//! anything else (permissions, a broken Maildir, I/O) defers `451 4.3.0`
//! (tenet 1: unknown errors defer). Each failure carries a `local.*` cause
//! with the smallest safe fix; the operator-only path is in the cause, never in
//! the reply, which reaches the sender in a DSN.
//!
//! # Security
//! The local part and the domain come from the network and become a path.
//! [`MaildirTemplate::resolve`] refuses (bounce `5.1.3`) a local part that
//! contains `/`, `\`, NUL or any control character, that is `.` or `..` or
//! starts with `.`, or that is longer than 64 octets (RFC 5321 §4.5.3.1.1);
//! the same rules hold for the domain (255 octets). Both are lower-cased
//! (ASCII). After substitution the path must stay under the template's fixed
//! prefix with only plain components below it (checked, not assumed). The
//! message file is created with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, so
//! a planted symlink is never followed and nothing is overwritten; `link(2)`
//! into `new/` never replaces an entry; directories made for `create = true`
//! get mode 0700. Symlinks the operator placed in the tree above a mailbox are
//! followed (that is their choice; the network can name only one component).
//! Header lines we add carry no control characters.
//!
//! # Standards
//! RFC 5321 §4.4 (Return-Path at final delivery), §4.5.3.1.1 (local part
//! length); RFC 3463 (5.1.1, 5.1.3, 4.2.2, 4.3.0); the Maildir specification
//! (D. J. Bernstein).

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postern_spool::Spool;
use postern_track::CauseInfo;

use crate::cause;
use crate::settings::MaildirSettings;
use crate::transport::{Job, RcptResult, Verdict};

/// RFC 5321 §4.5.3.1.1: the maximum total length of a local part.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: the maximum total length of a domain.
const MAX_DOMAIN: usize = 255;
/// Read size when copying a message from the spool.
const CHUNK: usize = 64 * 1024;
/// Tries to find a free name in `tmp/` or `new/` before giving up.
const NAME_TRIES: u32 = 8;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    User,
    Domain,
}

/// A Maildir path template such as `/var/vmail/{domain}/{user}`, absolute
/// (config resolves relative paths against the configuration file's folder).
/// `{user}` is the mailbox name (the local part without its `+tag`), `{domain}`
/// the recipient domain; both lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirTemplate {
    text: String,
    parts: Vec<Part>,
    /// The directory before the first placeholder: every resolved path lies
    /// below it.
    prefix: PathBuf,
}

impl MaildirTemplate {
    /// Parses a template. Errors (for config, which adds the location): not
    /// absolute, an unknown placeholder or a stray brace, `.` or `..` after
    /// the fixed prefix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let trimmed = if trimmed.len() > 1 {
            trimmed.trim_end_matches('/')
        } else {
            trimmed
        };
        if !Path::new(trimmed).is_absolute() {
            return Err(format!("{trimmed:?} is not an absolute path"));
        }
        let mut parts = Vec::new();
        let mut rest = trimmed;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                parts.push(Part::Text(rest.to_owned()));
                break;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let tail = &rest[open..];
            if let Some(r) = tail.strip_prefix("{user}") {
                parts.push(Part::User);
                rest = r;
            } else if let Some(r) = tail.strip_prefix("{domain}") {
                parts.push(Part::Domain);
                rest = r;
            } else {
                let shown: String = tail.chars().take(12).collect();
                return Err(format!(
                    "unknown placeholder or stray brace at {shown:?}; the template may use {{user}} \
                     (the local part without its +tag) and {{domain}}"
                ));
            }
        }
        // The fixed prefix: the literal text before the first placeholder,
        // cut back to a directory boundary.
        let head: String = parts
            .iter()
            .map_while(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let prefix = if parts.iter().all(|p| matches!(p, Part::Text(_))) {
            Path::new(&head)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
        } else {
            match head.rfind('/') {
                Some(0) | None => PathBuf::from("/"),
                Some(i) => PathBuf::from(&head[..i]),
            }
        };
        let t = Self {
            text: trimmed.to_owned(),
            parts,
            prefix,
        };
        let sample = t.substitute("user", "example.com");
        t.check_under_prefix(&sample).map_err(|why| {
            format!("{why}; write the template without \".\" or \"..\" after its fixed part")
        })?;
        Ok(t)
    }

    /// The directory every resolved path lies under.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Whether the template names `{user}` (without it, every recipient of a
    /// domain shares one Maildir).
    pub fn has_user(&self) -> bool {
        self.parts.contains(&Part::User)
    }

    fn substitute(&self, user: &str, domain: &str) -> PathBuf {
        let mut s = String::with_capacity(self.text.len() + user.len() + domain.len());
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::User => s.push_str(user),
                Part::Domain => s.push_str(domain),
            }
        }
        PathBuf::from(s)
    }

    /// Defence in depth: the path is below the prefix, with plain components
    /// only (no `..`, no `.`, no root) after it.
    fn check_under_prefix(&self, path: &Path) -> Result<(), String> {
        let rest = path
            .strip_prefix(&self.prefix)
            .map_err(|_| format!("{} is not under {}", path.display(), self.prefix.display()))?;
        if rest.as_os_str().is_empty() {
            return Err(format!("{} is the prefix itself", path.display()));
        }
        if rest.components().all(|c| matches!(c, Component::Normal(_)))
            && !rest
                .to_string_lossy()
                .split('/')
                .any(|c| c == "." || c == "..")
        {
            Ok(())
        } else {
            Err(format!(
                "{} leaves {} or names \".\" or \"..\"",
                path.display(),
                self.prefix.display()
            ))
        }
    }

    /// The Maildir of `address` (`local@domain`), with `delimiter` the set of
    /// characters that start an address extension (`+` for `bob+news`).
    pub fn resolve(&self, address: &str, delimiter: Option<&str>) -> Result<PathBuf, Unsafe> {
        let (local, domain) = address.rsplit_once('@').ok_or(Unsafe::NoDomain)?;
        let local = unquote(local)?;
        check_component(&local, MAX_LOCAL_PART).map_err(Unsafe::LocalPart)?;
        let user = mailbox_name(&local, delimiter).to_ascii_lowercase();
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        check_component(&domain, MAX_DOMAIN).map_err(Unsafe::Domain)?;
        let path = self.substitute(&user, &domain);
        self.check_under_prefix(&path).map_err(Unsafe::Escapes)?;
        Ok(path)
    }
}

impl fmt::Display for MaildirTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why an address cannot name a Maildir (bounced `553 5.1.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// No `@domain`.
    NoDomain,
    /// The local part breaks a rule (the reason).
    LocalPart(&'static str),
    /// The domain breaks a rule.
    Domain(&'static str),
    /// The substituted path leaves the prefix (never expected after the
    /// checks above; kept as a second line of defence).
    Escapes(String),
    /// A quoted local part that is not well formed.
    BadQuoting,
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsafe::NoDomain => f.write_str("the address has no domain"),
            Unsafe::LocalPart(why) => write!(f, "the local part {why}"),
            Unsafe::Domain(why) => write!(f, "the domain {why}"),
            Unsafe::Escapes(why) => write!(f, "the resolved path is unsafe: {why}"),
            Unsafe::BadQuoting => f.write_str("the quoted local part is not well formed"),
        }
    }
}

/// `"john doe"` → `john doe` (RFC 5321 §4.1.2 quoted-string, backslash
/// escapes removed); a dot-string is returned as is.
fn unquote(local: &str) -> Result<String, Unsafe> {
    let Some(inner) = local.strip_prefix('"') else {
        return Ok(local.to_owned());
    };
    let inner = inner.strip_suffix('"').ok_or(Unsafe::BadQuoting)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().ok_or(Unsafe::BadQuoting)?);
        } else if c == '"' {
            return Err(Unsafe::BadQuoting);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// One path component from the network: the rules of the module header.
fn check_component(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > max {
        return Err(if max == MAX_LOCAL_PART {
            "is longer than 64 octets (RFC 5321 §4.5.3.1.1)"
        } else {
            "is longer than 255 octets (RFC 5321 §4.5.3.1.2)"
        });
    }
    if s.contains(['/', '\\']) {
        return Err("contains a slash or a backslash");
    }
    if s.chars().any(char::is_control) {
        return Err("contains NUL or a control character");
    }
    if s.starts_with('.') {
        return Err("starts with a dot (\".\", \"..\" and hidden names are refused)");
    }
    Ok(())
}

/// The mailbox part of a local part: up to the first delimiter character,
/// unless that would leave nothing (Postfix `recipient_delimiter`).
fn mailbox_name<'a>(local: &'a str, delimiter: Option<&str>) -> &'a str {
    let Some(set) = delimiter.filter(|d| !d.is_empty()) else {
        return local;
    };
    match local.find(|c: char| set.contains(c)) {
        Some(i) if i > 0 => &local[..i],
        _ => local,
    }
}

/// What the SMTP transport records for one local job.
#[derive(Debug)]
pub(crate) struct LocalOutcome {
    /// One result per recipient of the job.
    pub(crate) results: Vec<RcptResult>,
    /// For the `attempt` event's `mx`: the Maildir path when every recipient
    /// resolved to the same one, else `local`.
    pub(crate) mailbox: String,
}

/// Delivers `job` to its recipients' Maildirs on the blocking pool. Never
/// fails as a whole: every recipient gets a result (a panic defers them).
pub(crate) async fn deliver(
    spool: Spool,
    hostname: String,
    settings: MaildirSettings,
    job: Job,
) -> LocalOutcome {
    let rcpts = job.rcpts.clone();
    let task =
        tokio::task::spawn_blocking(move || deliver_blocking(&spool, &hostname, &settings, &job));
    match task.await {
        Ok(out) => out,
        Err(e) => LocalOutcome {
            results: rcpts
                .iter()
                .map(|i| {
                    RcptResult::deferred(
                        *i,
                        cause::internal(&format!("the local delivery task failed: {e}")),
                    )
                })
                .collect(),
            mailbox: "local".into(),
        },
    }
}

fn deliver_blocking(
    spool: &Spool,
    hostname: &str,
    settings: &MaildirSettings,
    job: &Job,
) -> LocalOutcome {
    let sender = &job.envelope.reverse_path;
    let mut results = Vec::with_capacity(job.rcpts.len());
    let mut paths: Vec<PathBuf> = Vec::new();
    for &i in &job.rcpts {
        let Some(rcpt) = job.envelope.recipients.get(i) else {
            results.push(RcptResult::deferred(
                i,
                cause::internal("recipient index out of range"),
            ));
            continue;
        };
        let address = &rcpt.address;
        let outcome = match settings
            .template
            .resolve(address, settings.recipient_delimiter.as_deref())
        {
            Err(why) => {
                tracing::warn!(queue_id = %job.queue_id, rcpt = %address.escape_debug(), %why,
                    "maildir: address refused for local delivery");
                Err(Failure::Unsafe(why))
            }
            Ok(path) => {
                if !paths.contains(&path) {
                    paths.push(path.clone());
                }
                let delivered = spool
                    .open_message(&job.queue_id)
                    .map_err(|e| Failure::Spool(e.to_string()))
                    .and_then(|mut body| {
                        deliver_one(&path, settings.create, hostname, sender, address, &mut body)
                    });
                match &delivered {
                    Ok(file) => tracing::debug!(queue_id = %job.queue_id, rcpt = %address,
                        file = %file.display(), "maildir: delivered"),
                    Err(f) => tracing::warn!(queue_id = %job.queue_id, rcpt = %address,
                        maildir = %path.display(), error = %f.detail(), "maildir: not delivered"),
                }
                delivered.map(|_| ()).map_err(|f| f.at(&path))
            }
        };
        results.push(result_for(i, address, outcome));
    }
    let mailbox = match paths.as_slice() {
        [one] => one.display().to_string(),
        _ => "local".to_owned(),
    };
    LocalOutcome { results, mailbox }
}

/// Why one recipient was not delivered.
#[derive(Debug)]
enum Failure {
    /// The address cannot name a Maildir.
    Unsafe(Unsafe),
    /// The Maildir does not exist and `create = false`.
    Missing(PathBuf),
    /// The message could not be read from the spool.
    Spool(String),
    /// A file-system operation failed.
    Io {
        /// What we were doing (`creating`, `writing`, …).
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: io::Error,
        /// The Maildir (filled in by the caller for the cause).
        maildir: PathBuf,
    },
}

impl Failure {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Failure::Io {
            op,
            path: path.to_path_buf(),
            source,
            maildir: PathBuf::new(),
        }
    }

    fn at(self, maildir: &Path) -> Self {
        match self {
            Failure::Io {
                op, path, source, ..
            } => Failure::Io {
                op,
                path,
                source,
                maildir: maildir.to_path_buf(),
            },
            other => other,
        }
    }

    fn detail(&self) -> String {
        match self {
            Failure::Unsafe(u) => u.to_string(),
            Failure::Missing(p) => format!("{} does not exist", p.display()),
            Failure::Spool(e) => e.clone(),
            Failure::Io {
                op, path, source, ..
            } => format!("{op} {}: {source}", path.display()),
        }
    }
}

/// `ENOSPC` or `EDQUOT`, however the error reached us.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(c) if c == libc::ENOSPC || c == libc::EDQUOT)
}

fn result_for(rcpt: usize, address: &str, r: Result<(), Failure>) -> RcptResult {
    let (verdict, reply, cause) = match r {
        Ok(()) => (
            Verdict::Delivered,
            "250 2.0.0 Ok: delivered to the mailbox".to_owned(),
            None,
        ),
        Err(f) => {
            let (verdict, reply, c) = classify(address, &f);
            (verdict, reply.to_owned(), Some(c))
        }
    };
    RcptResult {
        rcpt,
        verdict,
        reply: Some(reply),
        cause,
        // No remote MTA: the DSN must not name one (RFC 3464 §2.3.5), and
        // the Maildir path is the operator's business, not the sender's.
        mx: String::new(),
        ip: String::new(),
        tls: None,
        remote_dsn: false,
        final_delivery: verdict == Verdict::Delivered,
    }
}

/// The verdict, the reply (it reaches the sender in a DSN: no path in it)
/// and the cause (operator: with the path and the fix).
fn classify(address: &str, f: &Failure) -> (Verdict, &'static str, CauseInfo) {
    let rcpt = address.escape_debug().to_string();
    match f {
        Failure::Unsafe(why) => (
            Verdict::Bounced,
            "553 5.1.3 bad address syntax: this local part cannot name a mailbox",
            cause::local_unsafe_address(&rcpt, &why.to_string()),
        ),
        Failure::Missing(p) => (
            Verdict::Bounced,
            "550 5.1.1 mailbox unavailable",
            cause::local_mailbox_unknown(&rcpt, &p.display().to_string()),
        ),
        Failure::Spool(e) => (
            Verdict::Deferred,
            "451 4.3.0 local delivery failed temporarily",
            cause::spool_read(e),
        ),
        Failure::Io {
            source, maildir, ..
        } if is_full(source) => (
            Verdict::Deferred,
            "452 4.2.2 mailbox full",
            cause::local_mailbox_full(&maildir.display().to_string(), &f.detail()),
        ),
        Failure::Io {
            source, maildir, ..
        } => (
            Verdict::Deferred,
            "451 4.3.0 local delivery failed temporarily",
            cause::local_io_error(
                &maildir.display().to_string(),
                source.kind() == io::ErrorKind::PermissionDenied,
                &f.detail(),
            ),
        ),
    }
}

/// Delivers one copy into `maildir`; returns the file in `new/`.
fn deliver_one(
    maildir: &Path,
    create: bool,
    hostname: &str,
    sender: &str,
    rcpt: &str,
    body: &mut dyn Read,
) -> Result<PathBuf, Failure> {
    prepare(maildir, create)?;
    let tmp_dir = maildir.join("tmp");
    let new_dir = maildir.join("new");
    let (name, tmp_path, file) = create_tmp(&tmp_dir, hostname)?;
    let written = write_message(file, &tmp_path, sender, rcpt, body)
        .and_then(|()| publish(&tmp_path, &new_dir, &name, hostname));
    match written {
        Ok(dest) => Ok(dest),
        Err(f) => {
            // Never leave a half message behind (readers ignore tmp/, but it
            // costs space and the spec asks writers to clean up).
            let _ = std::fs::remove_file(&tmp_path);
            Err(f)
        }
    }
}

/// Makes sure the Maildir exists (`create`: with `tmp/`, `new/` and `cur/`,
/// 0700). Without `create`, a missing Maildir is [`Failure::Missing`]; a
/// Maildir without `tmp/` or `new/` fails later as I/O (deferred: that is an
/// operator's repair, not a reason to bounce).
fn prepare(maildir: &Path, create: bool) -> Result<(), Failure> {
    if create {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(maildir)
            .map_err(|e| Failure::io("creating", maildir, e))?;
        for sub in ["tmp", "new", "cur"] {
            let p = maildir.join(sub);
            match DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Failure::io("creating", &p, e)),
            }
        }
        return Ok(());
    }
    match std::fs::metadata(maildir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Failure::io(
            "opening",
            maildir,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failure::Missing(maildir.into())),
        Err(e) => Err(Failure::io("opening", maildir, e)),
    }
}

/// Process-wide counter for unique names (the `Q` part).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<secs>.M<micros>P<pid>Q<n>.<host>`: unique per host, process and call
/// (Maildir spec, Dovecot's format). `/` and `:` in the host name are escaped
/// `\057` and `\072` as the spec asks.
fn unique_name(hostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut host = String::with_capacity(hostname.len());
    for c in hostname.chars() {
        match c {
            '/' => host.push_str("\\057"),
            ':' => host.push_str("\\072"),
            c if c.is_control() || c.is_whitespace() => {}
            c => host.push(c),
        }
    }
    if host.is_empty() {
        host.push_str("localhost");
    }
    format!(
        "{}.M{}P{}Q{n}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

/// Creates `tmp/<unique>`: `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600.
fn create_tmp(tmp_dir: &Path, hostname: &str) -> Result<(String, PathBuf, File), Failure> {
    let mut last = None;
    for _ in 0..NAME_TRIES {
        let name = unique_name(hostname);
        let path = tmp_dir.join(&name);
        match open_new(&path) {
            Ok(f) => return Ok((name, path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(e) => return Err(Failure::io("creating", &path, e)),
        }
    }
    let (path, e) = last.unwrap_or_else(|| {
        (
            tmp_dir.to_path_buf(),
            io::Error::other("no unique name found"),
        )
    });
    Err(Failure::io("creating", &path, e))
}

/// A new file that never follows a symlink and never replaces anything
/// (`create_new` is `O_CREAT|O_EXCL`, which with `O_NOFOLLOW` refuses a
/// planted link even when it dangles).
fn open_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Writes the two header lines and the message, and fsyncs the file.
fn write_message(
    file: File,
    path: &Path,
    sender: &str,
    rcpt: &str,
    body: &mut dyn Read,
) -> Result<(), Failure> {
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let head = format!(
        "Return-Path: <{}>\nDelivered-To: {}\n",
        header_safe(sender),
        header_safe(rcpt)
    );
    out.write_all(head.as_bytes())
        .map_err(|e| Failure::io("writing", path, e))?;
    copy_lf(body, &mut out).map_err(|e| match e {
        CopyError::Read(e) => Failure::Spool(e.to_string()),
        CopyError::Write(e) => Failure::io("writing", path, e),
    })?;
    let file = out
        .into_inner()
        .map_err(|e| Failure::io("writing", path, e.into_error()))?;
    file.sync_all().map_err(|e| Failure::io("syncing", path, e))
}

/// Control characters dropped: nothing we add can start a new header line.
fn header_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `src` to `dst`, turning each CRLF into LF (a CR split across two
/// reads included); a lone CR is kept.
fn copy_lf(src: &mut dyn Read, dst: &mut dyn Write) -> Result<(), CopyError> {
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK);
    let mut cr = false;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.clear();
        for &b in &buf[..n] {
            if cr {
                cr = false;
                if b == b'\n' {
                    out.push(b'\n');
                    continue;
                }
                out.push(b'\r');
            }
            if b == b'\r' {
                cr = true;
            } else {
                out.push(b);
            }
        }
        dst.write_all(&out).map_err(CopyError::Write)?;
    }
    if cr {
        dst.write_all(b"\r").map_err(CopyError::Write)?;
    }
    Ok(())
}

/// `tmp/<name>` → `new/<name>` (a fresh name if taken), then `new/` fsynced.
/// `link(2)` never replaces an entry; where links are not supported,
/// `rename(2)` (the name is unique). On a failed directory fsync the entry
/// is removed again and the recipient deferred: a duplicate later is better
/// than a loss now.
fn publish(
    tmp_path: &Path,
    new_dir: &Path,
    name: &str,
    hostname: &str,
) -> Result<PathBuf, Failure> {
    let mut dest = new_dir.join(name);
    let mut tries = 0;
    loop {
        match std::fs::hard_link(tmp_path, &dest) {
            Ok(()) => {
                if let Err(e) = std::fs::remove_file(tmp_path) {
                    tracing::warn!(file = %tmp_path.display(), error = %e,
                        "maildir: could not remove the tmp/ name after linking");
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < NAME_TRIES => {
                tries += 1;
                dest = new_dir.join(unique_name(hostname));
            }
            Err(link_err) => {
                if std::fs::symlink_metadata(&dest).is_ok() {
                    return Err(Failure::io("linking into", &dest, link_err));
                }
                std::fs::rename(tmp_path, &dest)
                    .map_err(|_| Failure::io("linking into", new_dir, link_err))?;
                break;
            }
        }
    }
    if let Err(e) = File::open(new_dir).and_then(|d| d.sync_all()) {
        let _ = std::fs::remove_file(&dest);
        return Err(Failure::io("syncing", new_dir, e));
    }
    Ok(dest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn t(s: &str) -> MaildirTemplate {
        MaildirTemplate::parse(s).unwrap()
    }

    #[test]
    fn templates() {
        let m = t("/var/vmail/{domain}/{user}/");
        assert_eq!(m.prefix(), Path::new("/var/vmail"));
        assert_eq!(m.to_string(), "/var/vmail/{domain}/{user}");
        assert!(m.has_user());
        assert_eq!(
            m.resolve("Bob@Example.COM", None).unwrap(),
            Path::new("/var/vmail/example.com/bob")
        );
        let home = t("/home/{user}/Maildir");
        assert_eq!(home.prefix(), Path::new("/home"));
        assert_eq!(
            home.resolve("carol@x.example", None).unwrap(),
            Path::new("/home/carol/Maildir")
        );
        let partial = t("/srv/mail/u-{user}");
        assert_eq!(partial.prefix(), Path::new("/srv/mail"));
        let fixed = t("/srv/catchall");
        assert!(!fixed.has_user());
        assert_eq!(
            fixed.resolve("x@y.example", None).unwrap(),
            Path::new("/srv/catchall")
        );
        for bad in [
            "vmail/{user}",
            "/var/vmail/{usr}",
            "/var/vmail/{user",
            "/var/vmail/}",
            "/var/vmail/{domain}/../{user}",
            "/var/vmail/{user}/./x",
        ] {
            assert!(MaildirTemplate::parse(bad).is_err(), "{bad}");
        }
        assert!(
            MaildirTemplate::parse("/v/{name}")
                .unwrap_err()
                .contains("{user}")
        );
    }

    #[test]
    fn delimiter_strips_the_extension() {
        let m = t("/v/{domain}/{user}");
        let r = |a: &str, d: Option<&str>| m.resolve(a, d).unwrap();
        assert_eq!(
            r("bob+news@a.example", Some("+")),
            Path::new("/v/a.example/bob")
        );
        assert_eq!(
            r("bob+news@a.example", None),
            Path::new("/v/a.example/bob+news")
        );
        assert_eq!(
            r("bob-x+y@a.example", Some("+-")),
            Path::new("/v/a.example/bob")
        );
        // A local part that starts with the delimiter is a mailbox name.
        assert_eq!(
            r("+tag@a.example", Some("+")),
            Path::new("/v/a.example/+tag")
        );
        assert_eq!(
            r("\"Bob Smith\"@a.example", None),
            Path::new("/v/a.example/bob smith")
        );
        // Only ASCII is folded; UTF-8 (SMTPUTF8) is kept.
        assert_eq!(
            r("Ünïcode@a.example", None),
            Path::new("/v/a.example/Ünïcode")
        );
    }

    #[test]
    fn unsafe_local_parts_and_domains_are_refused() {
        let m = t("/v/{domain}/{user}");
        let long = format!("{}@a.example", "a".repeat(65));
        let ok64 = format!("{}@a.example", "a".repeat(64));
        assert!(m.resolve(&ok64, None).is_ok());
        for bad in [
            long.as_str(),
            "../etc@a.example",
            "\"../../etc\"@a.example",
            "a/b@a.example",
            "a\\b@a.example",
            "\"a\\\\b\"@a.example",
            ".@a.example",
            "..@a.example",
            ".profile@a.example",
            "a\0b@a.example",
            "a\r\nb@a.example",
            "a\u{7f}@a.example",
            "@a.example",
            "noat",
            "\"open@a.example",
            "bob@..",
            "bob@a/b",
            "bob@.hidden",
            "bob@",
        ] {
            assert!(m.resolve(bad, None).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            m.resolve("../etc@a.example", None).unwrap_err().to_string(),
            "the local part contains a slash or a backslash"
        );
        // The delimiter never makes an unsafe local part acceptable.
        assert!(m.resolve("bob+../x@a.example", Some("+")).is_err());
    }

    #[test]
    fn unique_names_have_no_slash_or_colon() {
        let a = unique_name("mx/1:x.example");
        let b = unique_name("mx/1:x.example");
        assert_ne!(a, b);
        assert!(!a.contains('/') && !a.contains(':'), "{a}");
        assert!(
            a.contains(".M") && a.contains('P') && a.contains('Q'),
            "{a}"
        );
        assert!(a.ends_with("mx\\0571\\072x.example"), "{a}");
    }

    /// A reader that returns one byte at a time: every CRLF is split.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn crlf_becomes_lf_across_reads() {
        let src = b"A: b\r\n\r\nline\r\nlone\rcr\r\n\r";
        for whole in [true, false] {
            let mut out = Vec::new();
            let res = if whole {
                copy_lf(&mut &src[..], &mut out)
            } else {
                copy_lf(&mut Trickle(src), &mut out)
            };
            assert!(res.is_ok());
            assert_eq!(out, b"A: b\n\nline\nlone\rcr\n\r");
        }
    }

    #[test]
    fn failures_map_to_replies_and_causes() {
        let io = |code| Failure::Io {
            op: "writing",
            path: "/v/a/b/tmp/x".into(),
            source: io::Error::from_raw_os_error(code),
            maildir: "/v/a/b".into(),
        };
        for code in [libc::ENOSPC, libc::EDQUOT] {
            let (v, reply, c) = classify("b@a", &io(code));
            assert_eq!((v, reply), (Verdict::Deferred, "452 4.2.2 mailbox full"));
            assert_eq!(c.id, cause::LOCAL_MAILBOX_FULL);
        }
        let (v, reply, c) = classify("b@a", &io(libc::EACCES));
        assert_eq!(
            (v, reply),
            (
                Verdict::Deferred,
                "451 4.3.0 local delivery failed temporarily"
            )
        );
        assert_eq!(c.id, cause::LOCAL_IO_ERROR);
        assert!(c.fix.contains("writable"), "{}", c.fix);
        let (v, reply, c) = classify("b@a", &Failure::Missing("/v/a/b".into()));
        assert_eq!(
            (v, reply),
            (Verdict::Bounced, "550 5.1.1 mailbox unavailable")
        );
        assert_eq!(c.id, cause::LOCAL_MAILBOX_UNKNOWN);
        assert!(c.summary.contains("/v/a/b"));
        let (v, reply, c) = classify("b@a", &Failure::Unsafe(Unsafe::NoDomain));
        assert_eq!(v, Verdict::Bounced);
        assert!(reply.starts_with("553 5.1.3 "));
        assert_eq!(c.id, cause::LOCAL_UNSAFE_ADDRESS);
        let (v, _, c) = classify("b@a", &Failure::Spool("crc".into()));
        assert_eq!((v, c.id.as_str()), (Verdict::Deferred, cause::SPOOL_READ));
    }

    #[test]
    fn one_delivery_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("a.example").join("bob");
        let mut body = &b"Subject: x\r\n\r\nhi\r\n"[..];
        // Missing and not created: bounced, nothing made.
        let e = deliver_one(&md, false, "mx.test", "s@b", "bob@a.example", &mut body);
        assert!(matches!(e, Err(Failure::Missing(_))));
        assert!(!dir.path().join("a.example").exists());
        // Created owner-only.
        let file = deliver_one(
            &md,
            true,
            "mx.test",
            "s@b\r\nX: y",
            "bob@a.example",
            &mut body,
        )
        .unwrap();
        assert_eq!(file.parent().unwrap(), md.join("new"));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"Return-Path: <s@bX: y>\nDelivered-To: bob@a.example\nSubject: x\n\nhi\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        for d in [md.clone(), md.join("tmp"), md.join("new"), md.join("cur")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_planted_symlink_in_tmp_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_new(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(!target.exists(), "the dangling link's target was created");
    }

    #[test]
    fn a_failed_publish_leaves_no_tmp_file() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("bob");
        for sub in ["tmp", "cur"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        std::fs::write(md.join("new"), b"not a directory").unwrap();
        let mut body = &b"x\r\n"[..];
        let e = deliver_one(&md, false, "mx.test", "s@b", "bob@a", &mut body).unwrap_err();
        assert!(matches!(e, Failure::Io { .. }), "{e:?}");
        assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
    }
}

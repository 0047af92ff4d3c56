//! The pickup folder: a message file dropped into `<data_dir>/pickup/` is
//! queued as if it had arrived by SMTP (the IIS SMTP "Pickup" directory, or
//! Postfix's `sendmail -t`).
//!
//! Each regular file is one RFC 5322 message, optionally preceded by IIS
//! envelope lines:
//!
//! ```text
//! X-Sender: app@example.com
//! X-Receiver: alice@example.net
//! X-Receiver: bob@example.org
//! From: Billing <app@example.com>
//! To: Alice <alice@example.net>
//! Subject: Invoice 42
//!
//! Hello.
//! ```
//!
//! The leading `X-Sender:`/`X-Receiver:` lines (any case) give the envelope
//! and are not stored. Without them the sender comes from `Sender:` or
//! `From:` and the recipients from every `To:`, `Cc:` and `Bcc:`. `Bcc:` is
//! always removed from the stored copy (RFC 5322 §3.6.3). A leading mbox
//! `From ` line is dropped. Bare LF and bare CR become CRLF. `Date:` and
//! `Message-ID:` are added when missing (RFC 5322 §3.6), and a `Received:`
//! trace header is prepended (`from pickup by <hostname> (Postern) with
//! local-pickup id <queue id>`).
//!
//! Writers must create the file elsewhere (or under a name starting with `.`
//! or ending in `.tmp`, which are skipped) and then `rename` it into the
//! folder, so the watcher never sees half a file. A file that changes while
//! it is read is left alone and read again on a later scan.
//!
//! The watcher scans on start and then every `interval`, in name order, at most
//! [`MAX_FILES_PER_SCAN`] files per scan and one file at a time: the file is
//! streamed to the spool; only when [`Incoming::commit`] has returned (the
//! message is durable) is the file unlinked and the folder fsynced, and then
//! the scheduler is told ([`Notifier::notify_pickup`]). A crash between the
//! commit and the unlink queues the file again at the next start: a
//! duplicate, never a loss.
//!
//! A file that cannot become a message (no recipients, a bad address, no
//! blank line after the header within [`MAX_HEADER_BLOCK`], too big, empty,
//! unreadable, not a regular file) is moved to the badmail folder under a
//! name of its own with `<name>.reason.txt` beside it saying why, and logged:
//! never deleted. When the spool cannot take messages (disk full, poisoned)
//! the files stay where they are and are tried again every `spool_retry`,
//! logged once.
//!
//! # Security
//! Write access to the folder is the right to send mail as anyone to anyone
//! (like `sendmail`): the folder is created owner-only (0700), and the
//! operator decides who else may write to it (docs/threat-model.md). Files
//! are opened with `O_NOFOLLOW|O_NONBLOCK` and must be regular files with one
//! link, so a symlink or hard link cannot make Postern mail a file the writer
//! could not read itself, and a FIFO cannot block the watcher. The header
//! block is bounded ([`MAX_HEADER_BLOCK`]); bodies are streamed, never held
//! whole. File owners (uid) are logged with each queued message.
//!
//! # Standards
//! RFC 5322 §2.3 (CRLF), §3.6 (Date required, Message-ID should be present),
//! §3.6.2 (Sender/From), §3.6.3 (To/Cc/Bcc; Bcc removed), RFC 5321 §4.4
//! (trace information), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8 addresses).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mail_parser::{HeaderValue, MessageParser};
use postern_proto::{Limits, Mailbox};
use postern_spool::{
    Envelope, EnvelopeRecipient, Incoming, MailParams, QueueId, Receipt, Spool, SpoolError,
};
use postern_track::{MailEvent, MailLog, Received};
use tokio_util::sync::CancellationToken;

use crate::handle::Notifier;

/// The largest header block (envelope lines and header fields) read before
/// the blank line that ends it; past this the file is malformed.
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The most recipients one pickup file may name.
pub const MAX_RECIPIENTS: usize = 1000;
/// Files handled per scan; the next scan follows at once when more are waiting.
pub const MAX_FILES_PER_SCAN: usize = 100;
/// Directory entries looked at per scan (name order holds within a scan).
const MAX_NAMES_PER_SCAN: usize = 10_000;
/// Read size while streaming a body.
const READ_CHUNK: usize = 64 * 1024;
/// A file left in place for a reason of its own (badmail move failed, not
/// removable, several links) is looked at again after this long.
const HOLD_RETRY: Duration = Duration::from_mins(1);
/// Listener name in the envelope and the `received` event.
pub const LISTENER: &str = "pickup";

/// How the pickup folder works; built by `postern-config` from `[pickup]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupSettings {
    /// Watch the folder at all. Default true.
    pub enabled: bool,
    /// The folder. Default `<data_dir>/pickup`.
    pub dir: PathBuf,
    /// Where malformed files go (`[delivery] badmail_dir`).
    pub badmail_dir: PathBuf,
    /// Time between scans. Default 1 s.
    pub interval: Duration,
    /// The largest file accepted, in octets (`[limits] max_message_size`).
    pub max_message_size: u64,
    /// Our name in the `Received:` header and generated `Message-ID:`s
    /// (`[delivery] hostname`).
    pub hostname: String,
    /// After the spool refused a message (disk full, poisoned), wait this long
    /// before trying again. Default 30 s.
    pub spool_retry: Duration,
}

impl PickupSettings {
    /// The defaults for a data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            enabled: true,
            dir: data_dir.join("pickup"),
            badmail_dir: data_dir.join("badmail"),
            interval: Duration::from_secs(1),
            max_message_size: 25 * 1024 * 1024,
            hostname: "localhost".into(),
            spool_retry: Duration::from_secs(30),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing (pure)

/// Turns bare LF and bare CR into CRLF, across chunk boundaries.
#[derive(Debug, Default)]
struct Crlf {
    pending_cr: bool,
}

impl Crlf {
    fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while let Some(i) = input.iter().position(|&b| b == b'\r' || b == b'\n') {
            out.extend_from_slice(&input[..i]);
            if input[i] == b'\n' {
                out.extend_from_slice(b"\r\n");
                input = &input[i + 1..];
            } else if i + 1 == input.len() {
                // A CR at the end of a chunk: its LF may be in the next one.
                self.pending_cr = true;
                return;
            } else {
                out.extend_from_slice(b"\r\n");
                let skip = if input[i + 1] == b'\n' { 2 } else { 1 };
                input = &input[i + skip..];
            }
        }
        out.extend_from_slice(input);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Where the header ends in CRLF text: `(end of the last field's CRLF, start
/// of the body)`, or `None` while no blank line has been seen.
fn find_separator(text: &[u8]) -> Option<(usize, usize)> {
    if text.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    text.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i + 2, i + 4))
}

/// A pickup file's header block, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The reverse path; `""` is the null sender (`X-Sender: <>`).
    pub sender: String,
    /// The recipients, canonical and without duplicates, in order.
    pub recipients: Vec<String>,
    /// The header fields to store, CRLF-terminated, without the envelope
    /// lines, the mbox `From ` line and `Bcc:`.
    pub header: Vec<u8>,
    /// A `Date:` field is present.
    pub has_date: bool,
    /// A `Message-ID:` field is present.
    pub has_message_id: bool,
    /// Some envelope address is not ASCII (RFC 6531).
    pub smtputf8: bool,
}

/// One header line: byte range without its CRLF, and with it.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

fn lines(text: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (end, next) = match text[start..].windows(2).position(|w| w == b"\r\n") {
            Some(i) => (start + i, start + i + 2),
            None => (text.len(), text.len()),
        };
        out.push(Line { start, end, next });
        start = next;
    }
    out
}

/// The value after `name:` if `line` starts with that field name (any case).
fn envelope_value<'a>(line: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let n = name.len();
    (line.len() > n && line[..n].eq_ignore_ascii_case(name.as_bytes()) && line[n] == b':')
        .then(|| &line[n + 1..])
}

/// An mbox separator (`From alice@example.com Mon Jan  1 …`), not a `From:`
/// field (which may have blanks before its colon: RFC 5322 §4.5.3 obs-syntax).
fn is_mbox_from(line: &[u8]) -> bool {
    line.strip_prefix(b"From ")
        .is_some_and(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b':'))
}

/// Quotes a line for an operator message: lossy UTF-8, at most 80 characters.
fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    format!("{out:?}")
}

/// An address from an `X-Sender:`/`X-Receiver:` line: `addr` or `<addr>`.
fn envelope_address(value: &[u8]) -> Result<Option<Mailbox>, String> {
    let s = std::str::from_utf8(value)
        .map_err(|_| "the address is not valid UTF-8".to_owned())?
        .trim();
    let s = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s)
        .trim();
    if s.is_empty() {
        return Ok(None);
    }
    Mailbox::parse(s, &Limits::default())
        .map(Some)
        .map_err(|e| format!("{} ({e})", show(s.as_bytes())))
}

/// The addresses of one address field (`From:`, `To:` …), checked.
fn field_addresses(field: &[u8], name: &str, line_no: usize) -> Result<Vec<Mailbox>, String> {
    let mut raw = field.to_vec();
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = MessageParser::new().parse_headers(&raw);
    let mut out = Vec::new();
    let Some(msg) = parsed else {
        return Ok(out);
    };
    for h in msg.headers() {
        let HeaderValue::Address(list) = &h.value else {
            continue;
        };
        for addr in list.iter() {
            let text = addr.address.as_deref().map(str::trim).unwrap_or_default();
            if text.is_empty() {
                if let Some(display) = addr.name.as_deref().filter(|n| !n.trim().is_empty()) {
                    return Err(format!(
                        "bad address in the {name}: header (line {line_no}): {} is not an address",
                        show(display.as_bytes())
                    ));
                }
                continue;
            }
            let mb = Mailbox::parse(text, &Limits::default()).map_err(|e| {
                format!(
                    "bad address in the {name}: header (line {line_no}): {} ({e})",
                    show(text.as_bytes())
                )
            })?;
            out.push(mb);
        }
    }
    Ok(out)
}

/// Reads the header block of a pickup file: envelope lines, header fields,
/// the addresses that matter. `header` is CRLF text without the blank line
/// that ends it. The error is the reason for the badmail folder, in an
/// operator's words.
pub fn parse_header(header: &[u8]) -> Result<Parsed, String> {
    let all = lines(header);
    let mut i = 0;
    if all
        .first()
        .is_some_and(|l| is_mbox_from(&header[l.start..l.end]))
    {
        i = 1;
    }
    let mut x_sender: Option<Option<Mailbox>> = None;
    let mut x_receivers: Vec<Mailbox> = Vec::new();
    while let Some(l) = all.get(i) {
        let line = &header[l.start..l.end];
        if let Some(v) = envelope_value(line, "x-sender") {
            if x_sender.is_some() {
                return Err(format!("more than one X-Sender line (line {})", i + 1));
            }
            x_sender =
                Some(envelope_address(v).map_err(|e| {
                    format!("bad address in the X-Sender line (line {}): {e}", i + 1)
                })?);
        } else if let Some(v) = envelope_value(line, "x-receiver") {
            match envelope_address(v) {
                Ok(Some(mb)) => x_receivers.push(mb),
                Ok(None) => {
                    return Err(format!(
                        "bad address in the X-Receiver line (line {}): it is empty",
                        i + 1
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "bad address in the X-Receiver line (line {}): {e}",
                        i + 1
                    ));
                }
            }
        } else {
            break;
        }
        i += 1;
    }

    // Header fields: a line with a name and a colon, then its folded lines.
    let mut fields: Vec<(String, usize, usize, usize)> = Vec::new(); // (name, start, next, line no.)
    for (n, l) in all.iter().enumerate().skip(i) {
        let line = &header[l.start..l.end];
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            let Some(last) = fields.last_mut() else {
                return Err(format!(
                    "the header begins with an indented (folded) line (line {}): {}",
                    n + 1,
                    show(line)
                ));
            };
            last.2 = l.next;
            continue;
        }
        let name = line
            .iter()
            .position(|b| *b == b':')
            .map(|c| line[..c].trim_ascii_end())
            .filter(|name| !name.is_empty() && name.iter().all(|b| (33..=126).contains(b)));
        let Some(name) = name else {
            return Err(format!(
                "line {} of the header is not a header field (\"Name: value\"), and no blank \
                 line separates the header from the body before it: {}",
                n + 1,
                show(line)
            ));
        };
        fields.push((
            String::from_utf8_lossy(name).into_owned(),
            l.start,
            l.next,
            n + 1,
        ));
    }

    let mut kept = Vec::with_capacity(header.len());
    let (mut senders, mut froms, mut rcpts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut has_date, mut has_message_id) = (false, false);
    for (name, start, next, line_no) in &fields {
        let raw = &header[*start..*next];
        let lower = name.to_ascii_lowercase();
        let body = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        match lower.as_str() {
            "sender" => senders.extend(field_addresses(body, name, *line_no)?),
            "from" => froms.extend(field_addresses(body, name, *line_no)?),
            "to" | "cc" | "bcc" => {
                let found = field_addresses(body, name, *line_no)?;
                if x_receivers.is_empty() {
                    rcpts.extend(found);
                }
            }
            "date" => has_date = true,
            "message-id" => has_message_id = true,
            _ => {}
        }
        // RFC 5322 §3.6.3: blind recipients must not see each other.
        if lower != "bcc" {
            kept.extend_from_slice(raw);
            if !raw.ends_with(b"\r\n") {
                kept.extend_from_slice(b"\r\n");
            }
        }
    }

    let sender = match x_sender {
        Some(s) => s,
        None => Some(senders.into_iter().chain(froms).next().ok_or_else(|| {
            "no sender: no X-Sender line and no Sender or From header".to_owned()
        })?),
    };
    let candidates = if x_receivers.is_empty() {
        rcpts
    } else {
        x_receivers
    };
    let mut recipients: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut smtputf8 = sender.as_ref().is_some_and(|s| !s.is_ascii());
    for mb in candidates {
        smtputf8 |= !mb.is_ascii();
        let key = (mb.local_part.clone(), mb.domain.to_lowercase());
        if seen.insert(key) {
            recipients.push(mb.to_string());
        }
    }
    if recipients.is_empty() {
        return Err("no recipients: no X-Receiver line and no To/Cc/Bcc header".to_owned());
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(format!(
            "too many recipients: {}; a pickup file may name at most {MAX_RECIPIENTS}",
            recipients.len()
        ));
    }
    Ok(Parsed {
        sender: sender.map(|s| s.to_string()).unwrap_or_default(),
        recipients,
        header: kept,
        has_date,
        has_message_id,
        smtputf8,
    })
}

/// Our `Received:` header, folded like the smtpd's (RFC 5321 §4.4).
pub fn received_header(hostname: &str, queue_id: &QueueId, date: time::OffsetDateTime) -> String {
    format!(
        "Received: from pickup\r\n\tby {hostname} (Postern) with local-pickup\r\n\tid {queue_id}; {}\r\n",
        rfc5322_date(date)
    )
}

fn rfc5322_date(date: time::OffsetDateTime) -> String {
    date.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The watcher

/// What one scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Messages queued, in the order of their files.
    pub queued: Vec<QueueId>,
    /// Files moved to the badmail folder (their new paths).
    pub badmail: Vec<PathBuf>,
    /// Files seen but left in the folder (spool unavailable, changing, held).
    pub left: usize,
    /// More files were waiting than one scan handles.
    pub more: bool,
}

/// Identity and version of a file: same inode, same size, same mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Ident {
    fn of(m: &Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    fn same_inode(&self, other: &Ident) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Why a file is left in the folder for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldKind {
    /// Queued, but the unlink failed: never queue this version again.
    QueuedNotRemoved,
    /// The badmail move failed.
    BadmailFailed,
    /// More than one hard link.
    Linked,
    /// It changed while it was read.
    Changing,
}

#[derive(Debug)]
struct Held {
    ident: Ident,
    kind: HoldKind,
    /// `None`: as long as the file is unchanged.
    retry_at: Option<Instant>,
}

/// The spool refused a message: nothing is tried before `retry_at`.
#[derive(Debug)]
struct Stall {
    retry_at: Instant,
}

/// What became of one file.
enum Outcome {
    Queued(QueueId),
    Badmail(PathBuf),
    Left,
    Skipped,
}

/// Why a file could not be queued.
enum Failure {
    /// The file is not a message: badmail, with this reason.
    Malformed(String),
    /// The spool refused it: leave it, stall.
    Spool(SpoolError),
    /// It changed while being read: leave it, read it again later.
    Changing,
}

impl From<SpoolError> for Failure {
    fn from(e: SpoolError) -> Self {
        Failure::Spool(e)
    }
}

fn unreadable(e: &io::Error) -> String {
    format!("unreadable: {e}; make the file readable by the user Postern runs as")
}

/// The pickup folder watcher. [`Pickup::scan`] is one blocking pass;
/// [`Pickup::start`] runs passes on the tokio runtime until shut down.
pub struct Pickup {
    settings: PickupSettings,
    spool: Spool,
    notifier: Notifier,
    log: MailLog,
    stall: Option<Stall>,
    held: HashMap<OsString, Held>,
    dir_error: bool,
}

impl std::fmt::Debug for Pickup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pickup")
            .field("dir", &self.settings.dir)
            .field("stalled", &self.stall.is_some())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Names a writer may still be working on: hidden, or `*.tmp`.
fn is_skipped_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".") || (b.len() >= 4 && b[b.len() - 4..].eq_ignore_ascii_case(b".tmp"))
}

impl Pickup {
    /// A watcher over `settings.dir` (created owner-only if missing) that
    /// commits to `spool`, tells `notifier`, and logs to `log`.
    pub fn new(
        settings: PickupSettings,
        spool: Spool,
        notifier: Notifier,
        log: MailLog,
    ) -> io::Result<Self> {
        create_private_dir(&settings.dir)?;
        Ok(Self {
            settings,
            spool,
            notifier,
            log,
            stall: None,
            held: HashMap::new(),
            dir_error: false,
        })
    }

    /// Runs scans on the current tokio runtime (each on the blocking pool):
    /// one now, then every `interval`, or at once while files are waiting.
    pub fn start(self) -> PickupHandle {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let interval = self.settings.interval;
        tracing::info!(dir = %self.settings.dir.display(), interval = ?interval,
            badmail = %self.settings.badmail_dir.display(), "pickup: watching");
        let task = tokio::spawn(async move {
            let mut watcher = self;
            loop {
                let stop = token.clone();
                let res = tokio::task::spawn_blocking(move || {
                    let report = watcher.scan_until(&stop);
                    (watcher, report)
                })
                .await;
                let report;
                (watcher, report) = match res {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::error!(error = %e, "pickup: the scan failed (a bug); the pickup folder is no longer watched");
                        return;
                    }
                };
                if report.more && !token.is_cancelled() {
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        });
        PickupHandle { cancel, task }
    }

    /// One pass over the folder (blocking): at most [`MAX_FILES_PER_SCAN`]
    /// files, in name order.
    pub fn scan(&mut self) -> ScanReport {
        self.scan_until(&CancellationToken::new())
    }

    fn scan_until(&mut self, stop: &CancellationToken) -> ScanReport {
        let mut report = ScanReport::default();
        let now = Instant::now();
        if let Some(s) = &self.stall
            && now < s.retry_at
        {
            return report;
        }
        if self.spool.is_poisoned() {
            self.spool_failed(&SpoolError::Poisoned);
            return report;
        }
        let names = match self.names() {
            Ok(n) => n,
            Err(e) => {
                if !std::mem::replace(&mut self.dir_error, true) {
                    tracing::error!(dir = %self.settings.dir.display(), error = %e,
                        "pickup: cannot read the pickup folder");
                }
                let _ = create_private_dir(&self.settings.dir);
                return report;
            }
        };
        if std::mem::take(&mut self.dir_error) {
            tracing::info!(dir = %self.settings.dir.display(), "pickup: the pickup folder is readable again");
        }
        self.held
            .retain(|name, _| names.binary_search(name).is_ok());
        let mut handled = 0;
        for name in &names {
            if handled == MAX_FILES_PER_SCAN {
                report.more = true;
                break;
            }
            if stop.is_cancelled() {
                break;
            }
            match self.process(name) {
                Outcome::Queued(id) => report.queued.push(id),
                Outcome::Badmail(p) => report.badmail.push(p),
                Outcome::Left => report.left += 1,
                Outcome::Skipped => continue,
            }
            handled += 1;
            if self.stall.is_some() {
                break;
            }
        }
        report
    }

    /// The candidate names, sorted.
    fn names(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.settings.dir)? {
            let name = entry?.file_name();
            if !is_skipped_name(&name) {
                names.push(name);
                if names.len() == MAX_NAMES_PER_SCAN {
                    break;
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn spool_failed(&mut self, e: &SpoolError) {
        let retry = self.settings.spool_retry;
        if self.stall.is_none() {
            tracing::error!(error = %e, dir = %self.settings.dir.display(), retry = ?retry,
                "pickup: the spool does not accept messages; files stay in the pickup folder and are tried again later");
        }
        self.stall = Some(Stall {
            retry_at: Instant::now() + retry,
        });
    }

    /// Leaves `name` in the folder for `kind`; logs the first time only.
    fn hold(&mut self, name: &OsStr, ident: Ident, kind: HoldKind, what: &str) {
        let again = self
            .held
            .get(name)
            .is_some_and(|h| h.kind == kind && h.ident.same_inode(&ident));
        if !again {
            let file = self.settings.dir.join(name);
            match kind {
                HoldKind::QueuedNotRemoved | HoldKind::BadmailFailed => {
                    tracing::error!(file = %file.display(), "pickup: {what}");
                }
                HoldKind::Linked | HoldKind::Changing => {
                    tracing::warn!(file = %file.display(), "pickup: {what}");
                }
            }
        }
        let retry_at = match kind {
            HoldKind::QueuedNotRemoved => None,
            HoldKind::Changing => Some(Instant::now()),
            HoldKind::BadmailFailed | HoldKind::Linked => Some(Instant::now() + HOLD_RETRY),
        };
        self.held.insert(
            name.to_owned(),
            Held {
                ident,
                kind,
                retry_at,
            },
        );
    }

    fn process(&mut self, name: &OsStr) -> Outcome {
        let path = self.settings.dir.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Skipped,
            Err(e) => return self.badmail(name, &path, None, &format!("cannot examine it: {e}")),
        };
        if meta.is_dir() {
            return Outcome::Skipped;
        }
        let ident = Ident::of(&meta);
        if let Some(h) = self.held.get(name) {
            let unchanged = h.ident == ident;
            let waiting = h.retry_at.is_none_or(|t| Instant::now() < t);
            if unchanged && waiting {
                return Outcome::Skipped;
            }
        }
        if !meta.file_type().is_file() {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "not a regular file"
            };
            return self.badmail(
                name,
                &path,
                Some(ident),
                &format!("{what}: the pickup folder takes regular files only"),
            );
        }
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Skipped,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Outcome::Skipped,
            Err(e) => return self.badmail(name, &path, Some(ident), &unreadable(&e)),
        };
        let opened = match file.metadata() {
            Ok(m) => m,
            Err(e) => return self.badmail(name, &path, Some(ident), &unreadable(&e)),
        };
        let fident = Ident::of(&opened);
        if fident != ident || !opened.file_type().is_file() {
            // Replaced between the lstat and the open: look again next scan.
            return Outcome::Left;
        }
        if opened.nlink() > 1 {
            self.hold(
                name,
                ident,
                HoldKind::Linked,
                &format!(
                    "the file has {} hard links; the pickup folder takes files with one link only \
                     (copy it instead of linking it); left in place",
                    opened.nlink()
                ),
            );
            return Outcome::Left;
        }
        if ident.len == 0 {
            return self.badmail(name, &path, Some(ident), "empty file");
        }
        if ident.len > self.settings.max_message_size {
            return self.badmail(
                name,
                &path,
                Some(ident),
                &format!(
                    "too big: {} octets; the limit is {} octets ([limits] max_message_size)",
                    ident.len, self.settings.max_message_size
                ),
            );
        }
        match self.queue(file, ident) {
            Ok(env) => {
                if self.stall.take().is_some() {
                    tracing::info!("pickup: the spool accepts messages again");
                }
                self.log.emit(
                    env.queue_id,
                    MailEvent::Received(Received::from_envelope(&env)),
                );
                tracing::info!(queue_id = %env.queue_id, file = %path.display(), uid = opened.uid(),
                    from = %env.reverse_path, nrcpt = env.recipients.len(), size = env.message_size,
                    "pickup: queued");
                self.remove(name, &path, ident, &env.queue_id);
                self.notifier.notify_pickup(env.queue_id);
                Outcome::Queued(env.queue_id)
            }
            Err(Failure::Malformed(reason)) => self.badmail(name, &path, Some(ident), &reason),
            Err(Failure::Spool(e)) => {
                self.spool_failed(&e);
                Outcome::Left
            }
            Err(Failure::Changing) => {
                self.hold(
                    name,
                    ident,
                    HoldKind::Changing,
                    "the file changed while it was read; left in place and read again later \
                     (write pickup files elsewhere, then rename them into the folder)",
                );
                Outcome::Left
            }
        }
    }

    /// Reads, checks and commits one file. Returns the envelope as stored.
    fn queue(&self, mut file: File, ident: Ident) -> Result<Envelope, Failure> {
        let mut crlf = Crlf::default();
        let mut buf = vec![0; READ_CHUNK];
        let mut text = Vec::new();
        let mut read: u64 = 0;
        let mut eof = false;
        let mut scanned = 0;
        let (header_end, body_start) = loop {
            if let Some((h, b)) = find_separator(&text[scanned..]) {
                break (scanned + h, scanned + b);
            }
            scanned = text.len().saturating_sub(3);
            if eof {
                // No blank line: the whole file is a header (RFC 5322 §3.5:
                // the body is optional).
                if !text.is_empty() && !text.ends_with(b"\r\n") {
                    text.extend_from_slice(b"\r\n");
                }
                break (text.len(), text.len());
            }
            if text.len() > MAX_HEADER_BLOCK {
                return Err(Failure::Malformed(format!(
                    "no blank line between the header and the body within the first {MAX_HEADER_BLOCK} \
                     octets: the header is too long, or the file is not a message"
                )));
            }
            let n =
                read_some(&mut file, &mut buf).map_err(|e| Failure::Malformed(unreadable(&e)))?;
            if n == 0 {
                crlf.finish(&mut text);
                eof = true;
            } else {
                read += n as u64;
                if read > ident.len {
                    return Err(Failure::Changing);
                }
                crlf.push(&buf[..n], &mut text);
            }
        };
        let parsed = parse_header(&text[..header_end]).map_err(Failure::Malformed)?;
        let mut eight_bit = !text.is_ascii();

        let mut inc = self.spool.begin()?;
        let id = *inc.queue_id();
        let now = time::OffsetDateTime::now_utc();
        inc.write_all(received_header(&self.settings.hostname, &id, now).as_bytes())?;
        inc.write_all(&parsed.header)?;
        if !parsed.has_date {
            inc.write_all(format!("Date: {}\r\n", rfc5322_date(now)).as_bytes())?;
        }
        if !parsed.has_message_id {
            inc.write_all(format!("Message-ID: <{id}@{}>\r\n", self.settings.hostname).as_bytes())?;
        }
        inc.write_all(b"\r\n")?;
        inc.write_all(&text[body_start..])?;
        drop(text);
        if !eof {
            let mut out = Vec::with_capacity(READ_CHUNK + READ_CHUNK / 8);
            loop {
                let n = read_some(&mut file, &mut buf)
                    .map_err(|e| Failure::Malformed(unreadable(&e)))?;
                out.clear();
                if n == 0 {
                    crlf.finish(&mut out);
                    inc.write_all(&out)?;
                    break;
                }
                read += n as u64;
                if read > ident.len {
                    return Err(Failure::Changing);
                }
                crlf.push(&buf[..n], &mut out);
                eight_bit |= !out.is_ascii();
                inc.write_all(&out)?;
            }
        }
        // The file must be what it was when the scan looked at it.
        let now_meta = file
            .metadata()
            .map_err(|e| Failure::Malformed(unreadable(&e)))?;
        if read != ident.len || Ident::of(&now_meta) != ident {
            return Err(Failure::Changing);
        }
        commit(inc, &parsed, eight_bit).map_err(Failure::Spool)
    }

    /// Unlinks the queued file (if it is still the one we read) and makes the
    /// removal durable.
    fn remove(&mut self, name: &OsStr, path: &Path, ident: Ident, id: &QueueId) {
        match std::fs::symlink_metadata(path) {
            Ok(m) if Ident::of(&m).same_inode(&ident) => {}
            Ok(_) => {
                tracing::warn!(file = %path.display(), queue_id = %id,
                    "pickup: the file was replaced after it was read; the new file will be picked up on its own");
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => {}
        }
        if let Err(e) = std::fs::remove_file(path) {
            self.hold(
                name,
                ident,
                HoldKind::QueuedNotRemoved,
                &format!(
                    "queued as {id}, but the file cannot be removed ({e}); it is skipped while \
                     unchanged, and will be queued again after a restart: remove it by hand \
                     (give Postern write access to the pickup folder)"
                ),
            );
            return;
        }
        if let Err(e) = sync_dir(&self.settings.dir) {
            tracing::warn!(dir = %self.settings.dir.display(), error = %e, queue_id = %id,
                "pickup: fsync of the pickup folder failed; after a crash the file may be queued again");
        }
    }

    /// Moves a file that is not a message to the badmail folder with its
    /// reason beside it.
    fn badmail(
        &mut self,
        name: &OsStr,
        path: &Path,
        ident: Option<Ident>,
        reason: &str,
    ) -> Outcome {
        match self.move_to_badmail(name, path, reason) {
            Ok(dest) => {
                tracing::warn!(file = %path.display(), badmail = %dest.display(), %reason,
                    "pickup: not a message; moved to the badmail folder");
                Outcome::Badmail(dest)
            }
            Err(e) => {
                let ident = ident.unwrap_or(Ident {
                    dev: 0,
                    ino: 0,
                    len: 0,
                    mtime: (0, 0),
                });
                self.hold(
                    name,
                    ident,
                    HoldKind::BadmailFailed,
                    &format!(
                        "not a message ({reason}), and it cannot be moved to the badmail folder \
                         {} ({e}); left in place",
                        self.settings.badmail_dir.display()
                    ),
                );
                Outcome::Left
            }
        }
    }

    fn move_to_badmail(&self, name: &OsStr, path: &Path, reason: &str) -> io::Result<PathBuf> {
        let dir = &self.settings.badmail_dir;
        create_private_dir(dir)?;
        // Reserve a name: `<name>`, `<name>.1`, … whose reason file is new.
        let mut reserved = None;
        for n in 0..1000 {
            let mut candidate = name.to_owned();
            if n > 0 {
                candidate.push(format!(".{n}"));
            }
            let dest = dir.join(&candidate);
            if std::fs::symlink_metadata(&dest).is_ok() {
                continue;
            }
            let mut reason_name = candidate;
            reason_name.push(".reason.txt");
            let reason_path = dir.join(reason_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&reason_path)
            {
                Ok(f) => {
                    reserved = Some((dest, reason_path, f));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let Some((dest, reason_path, mut f)) = reserved else {
            return Err(io::Error::other("no free name in the badmail folder"));
        };
        let text = format!(
            "Postern did not queue this pickup file.\n\
             file: {}\n\
             moved: {}\n\
             reason: {reason}\n\
             \n\
             Fix the file and move it back into {} (write it elsewhere, then rename it in).\n",
            path.display(),
            postern_spool::rfc3339_now(),
            self.settings.dir.display(),
        );
        let written = f
            .write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .and_then(|()| move_file(path, &dest));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&reason_path);
            return Err(e);
        }
        sync_dir(dir)?;
        if let Err(e) = sync_dir(&self.settings.dir) {
            tracing::warn!(dir = %self.settings.dir.display(), error = %e,
                "pickup: fsync of the pickup folder failed");
        }
        Ok(dest)
    }
}

/// `rename`, or copy and unlink across file systems (regular files only).
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut src = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(from)?;
            if !src.metadata()?.file_type().is_file() {
                return Err(e);
            }
            let mut dst = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(to)?;
            io::copy(&mut src, &mut dst)?;
            dst.sync_all()?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The envelope of a pickup message, committed.
fn commit(inc: Incoming, parsed: &Parsed, eight_bit: bool) -> Result<Envelope, SpoolError> {
    let envelope = Envelope {
        queue_id: *inc.queue_id(),
        received_at: String::new(),
        reverse_path: parsed.sender.clone(),
        recipients: parsed
            .recipients
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.clone(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        params: MailParams {
            body: eight_bit.then(|| "8BITMIME".to_owned()),
            smtputf8: parsed.smtputf8,
            ..MailParams::default()
        },
        receipt: Receipt {
            listener: LISTENER.into(),
            peer: String::new(),
            helo: String::new(),
            auth_user: None,
            tls: None,
        },
        message_size: 0,
    };
    inc.commit(envelope)
}

/// The running watcher.
#[derive(Debug)]
pub struct PickupHandle {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PickupHandle {
    /// Stops watching: the file being queued, if any, is finished (at most
    /// `grace`); the rest stay in the folder for the next start.
    pub async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!("pickup: still busy after the shutdown grace period; abandoning");
            task.abort();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn crlf(input: &[&[u8]]) -> Vec<u8> {
        let mut c = Crlf::default();
        let mut out = Vec::new();
        for chunk in input {
            c.push(chunk, &mut out);
        }
        c.finish(&mut out);
        out
    }

    /// RFC 5322 §2.3: lines end in CRLF; bare LF and bare CR are normalised,
    /// also when a CRLF is split between two reads.
    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(crlf(&[b"a\nb\r\nc\rd"]), b"a\r\nb\r\nc\r\nd");
        assert_eq!(crlf(&[b"a\r", b"\nb"]), b"a\r\nb");
        assert_eq!(crlf(&[b"a\r", b"b"]), b"a\r\nb");
        assert_eq!(crlf(&[b"a\r"]), b"a\r\n");
        assert_eq!(crlf(&[b"\r\r\n\n"]), b"\r\n\r\n\r\n");
        assert_eq!(crlf(&[b"x", b"", b"\r", b"", b"\n"]), b"x\r\n");
    }

    #[test]
    fn separator() {
        assert_eq!(find_separator(b"\r\nbody"), Some((0, 2)));
        assert_eq!(find_separator(b"A: b\r\n\r\nbody"), Some((6, 8)));
        assert_eq!(find_separator(b"A: b\r\nC: d\r\n"), None);
    }

    fn parse(text: &str) -> Result<Parsed, String> {
        let norm = crlf(&[text.as_bytes()]);
        let (h, _) = find_separator(&norm).unwrap_or((norm.len(), norm.len()));
        parse_header(&norm[..h])
    }

    fn header(p: &Parsed) -> String {
        String::from_utf8(p.header.clone()).unwrap()
    }

    /// IIS pickup format: leading X-Sender/X-Receiver lines (any case) are the
    /// envelope and are not stored; the header's own addresses do not count.
    #[test]
    fn iis_envelope_lines() {
        let p = parse(
            "x-sender: <app@example.com>\nX-RECEIVER: alice@example.net\nX-Receiver: <bob@example.org>\n\
             From: Other <other@example.com>\nTo: carol@example.com\nSubject: hi\n\nbody\n",
        )
        .unwrap();
        assert_eq!(p.sender, "app@example.com");
        assert_eq!(p.recipients, ["alice@example.net", "bob@example.org"]);
        assert_eq!(
            header(&p),
            "From: Other <other@example.com>\r\nTo: carol@example.com\r\nSubject: hi\r\n"
        );
        assert!(!p.has_date && !p.has_message_id && !p.smtputf8);
        // X-Sender alone: recipients from the header.
        let p = parse("X-Sender: <>\nTo: a@b.example\n\nx").unwrap();
        assert_eq!(p.sender, "");
        assert_eq!(p.recipients, ["a@b.example"]);
        // An X-Sender further down is an ordinary header field.
        let p = parse("From: a@b.example\nX-Sender: z@z.example\nTo: c@d.example\n\nx").unwrap();
        assert_eq!(p.sender, "a@b.example");
        assert!(header(&p).contains("X-Sender: z@z.example\r\n"));
    }

    /// Without envelope lines: RFC 5322 §3.6.2 Sender before From; recipients
    /// from every To, Cc and Bcc (groups included), without duplicates; Bcc
    /// removed from the stored copy (§3.6.3), folded lines and all.
    #[test]
    fn header_fallback_and_bcc_removal() {
        let p = parse(
            "From: A <a@example.com>, B <b@example.com>\nSender: s@example.com\n\
             To: Team: x@example.net, y@example.net;, z@example.net\n\
             Cc: \"Quoted, Name\" <x@Example.NET>\nBcc: hidden@example.org,\n hidden2@example.org\n\
             Date: Mon, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <m@example.com>\n\nbody",
        )
        .unwrap();
        assert_eq!(p.sender, "s@example.com");
        assert_eq!(
            p.recipients,
            [
                "x@example.net",
                "y@example.net",
                "z@example.net",
                "hidden@example.org",
                "hidden2@example.org"
            ]
        );
        let h = header(&p);
        assert!(!h.to_ascii_lowercase().contains("bcc"), "{h}");
        assert!(!h.contains("hidden"), "{h}");
        assert!(h.starts_with("From: A <a@example.com>, B <b@example.com>\r\n"));
        assert!(p.has_date && p.has_message_id);

        let p =
            parse("From: a@example.com\nTo: undisclosed-recipients:;\nbcc: only@example.org\n\nx")
                .unwrap();
        assert_eq!(p.sender, "a@example.com");
        assert_eq!(p.recipients, ["only@example.org"]);
        assert_eq!(
            header(&p),
            "From: a@example.com\r\nTo: undisclosed-recipients:;\r\n"
        );
    }

    #[test]
    fn mbox_from_line_and_headers_only_file() {
        let p = parse("From alice@example.com Mon Jan  1 00:00:00 2026\nFrom: alice@example.com\nTo: b@example.net\n")
            .unwrap();
        assert_eq!(p.sender, "alice@example.com");
        assert_eq!(
            header(&p),
            "From: alice@example.com\r\nTo: b@example.net\r\n"
        );
        // RFC 5322 obs-syntax: blanks before the colon.
        let p = parse("From : a@example.com\nTo : b@example.net\n\n").unwrap();
        assert_eq!(p.sender, "a@example.com");
    }

    #[test]
    fn utf8_addresses_need_smtputf8() {
        let p = parse("From: a@example.com\nTo: jörg@bücher.example\n\nx").unwrap();
        assert!(p.smtputf8);
        assert_eq!(p.recipients, ["jörg@bücher.example"]);
    }

    /// Each malformed case gets a reason an operator can act on.
    #[test]
    fn malformed_files_say_why() {
        let cases: &[(&str, &str)] = &[
            (
                "From: a@example.com\nSubject: x\n\nbody",
                "no recipients: no X-Receiver line and no To/Cc/Bcc header",
            ),
            (
                "To: b@example.com\n\nbody",
                "no sender: no X-Sender line and no Sender or From header",
            ),
            (
                "X-Sender: a@example.com\nX-Receiver: bob@\n\nbody",
                "bad address in the X-Receiver line (line 2): \"bob@\" (bad address syntax)",
            ),
            (
                "X-Sender: a@example.com\nX-Receiver:\n\nbody",
                "bad address in the X-Receiver line (line 2): it is empty",
            ),
            (
                "X-Sender: a@example.com\nX-Sender: b@example.com\nX-Receiver: c@example.com\n\n",
                "more than one X-Sender line (line 2)",
            ),
            (
                "From: a@example.com\nTo: bob\n\nbody",
                "bad address in the To: header (line 2)",
            ),
            (
                "From: a@example.com\nTo: b@example.com\nthis is not a header\n\nbody",
                "line 3 of the header is not a header field",
            ),
            (
                " folded: first\nFrom: a@example.com\n\n",
                "the header begins with an indented (folded) line (line 1)",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        let mut many = String::new();
        for i in 0..=MAX_RECIPIENTS {
            many.push_str("X-Receiver: r");
            many.push_str(&i.to_string());
            many.push_str("@example.com\n");
        }
        let err = parse(&format!("X-Sender: a@example.com\n{many}\nx")).unwrap_err();
        assert!(err.starts_with("too many recipients: 1001"), "{err}");
    }

    #[test]
    fn received_header_format() {
        let id = QueueId::generate();
        let h = received_header(
            "mx.example.com",
            &id,
            time::macros::datetime!(2026-11-22 16:40:01 UTC),
        );
        assert_eq!(
            h,
            format!(
                "Received: from pickup\r\n\tby mx.example.com (Postern) with local-pickup\r\n\tid {id}; Sun, 22 Nov 2026 16:40:01 +0000\r\n"
            )
        );
    }

    #[test]
    fn skipped_names() {
        for n in [".hidden", "x.tmp", "X.TMP", ".tmp"] {
            assert!(is_skipped_name(OsStr::new(n)), "{n}");
        }
        for n in ["msg.eml", "tmp", "x.tmp.eml"] {
            assert!(!is_skipped_name(OsStr::new(n)), "{n}");
        }
    }
}

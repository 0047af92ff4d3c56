//! The watcher ([`Pickup`]): scans the folder, streams each file into the
//! spool, removes it once the commit is durable, moves malformed files to the
//! badmail folder, and stalls while the spool refuses. The crate
//! documentation has the protocol and its crash analysis.
//!
//! # Security
//! Files are opened `O_NOFOLLOW|O_NONBLOCK` and must be regular files with one
//! link (see the crate documentation); the folder is created owner-only.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_spool::{
    Envelope, EnvelopeRecipient, Incoming, MailParams, QueueId, Receipt, Spool, SpoolError,
};
use postern_track::{MailEvent, MailLog, Received};
use tokio_util::sync::CancellationToken;

use crate::parse::{
    Crlf, MAX_HEADER_BLOCK, Parsed, find_separator, parse_header, received_header, rfc5322_date,
};
use crate::settings::PickupSettings;

mod badmail;

/// Told the queue id of each message the watcher has queued (the binary passes
/// the scheduler's `Notifier::notify_pickup`). Called after the file is removed.
pub type OnQueued = Arc<dyn Fn(QueueId) + Send + Sync>;

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
    /// `[[dkim]]` keys (shared with reload): pickup mail is our users' mail.
    signing: Option<SharedSigning>,
    spool: Spool,
    on_queued: OnQueued,
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

/// The DKIM signing keys, replaced on `SIGHUP` by the binary.
pub type SharedSigning = std::sync::Arc<std::sync::RwLock<postern_auth::signing::SigningTable>>;

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
    /// commits to `spool`, calls `on_queued`, and logs to `log`.
    pub fn new(
        settings: PickupSettings,
        spool: Spool,
        on_queued: OnQueued,
        log: MailLog,
    ) -> io::Result<Self> {
        create_private_dir(&settings.dir)?;
        Ok(Self {
            settings,
            signing: None,
            spool,
            on_queued,
            log,
            stall: None,
            held: HashMap::new(),
            dir_error: false,
        })
    }

    /// Signs picked-up messages with these `[[dkim]]` keys when
    /// `[authentication] dkim_sign` includes `pickup` (RFC 6376 §5).
    #[must_use]
    pub fn with_signing(mut self, signing: SharedSigning) -> Self {
        self.signing = Some(signing);
        self
    }

    /// The `DKIM-Signature:` fields for the message written so far (empty
    /// when nothing signs it). A signing failure sends it unsigned, logged.
    fn signatures(&self, inc: &mut Incoming) -> Result<String, SpoolError> {
        let table = match &self.signing {
            Some(s) => s
                .read()
                .map_or_else(|poisoned| poisoned.into_inner().clone(), |t| t.clone()),
            None => return Ok(String::new()),
        };
        if !table.applies(postern_auth::signing::Origin::Pickup) {
            return Ok(String::new());
        }
        let message = inc.read_back(self.settings.max_message_size)?;
        match table.sign(&message) {
            Ok((fields, signed)) => {
                for s in &signed {
                    tracing::info!(queue_id = %inc.queue_id(), domain = %s.domain,
                        selector = %s.selector, "pickup: DKIM-signed");
                }
                Ok(fields)
            }
            Err(e) => {
                tracing::warn!(queue_id = %inc.queue_id(), error = %e,
                    "pickup: DKIM signing failed; queued unsigned");
                Ok(String::new())
            }
        }
    }

    /// Runs scans on the current tokio runtime (each on the blocking pool):
    /// one now, then every `interval`, or at once while files are waiting.
    pub fn start(self) -> PickupHandle {
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let (settings_tx, mut settings_rx) = tokio::sync::watch::channel(self.settings.clone());
        tracing::info!(dir = %self.settings.dir.display(), interval = ?self.settings.interval,
            badmail = %self.settings.badmail_dir.display(), "pickup: watching");
        let task = tokio::spawn(async move {
            let mut watcher = self;
            loop {
                // A reload's settings (`changed()` below marks them seen, so
                // look at the value itself; `apply` ignores equal settings).
                let new = settings_rx.borrow_and_update().clone();
                watcher.apply(new);
                let interval = watcher.settings.interval;
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
                    // A reload: scan the (new) folder at once.
                    Ok(()) = settings_rx.changed() => {}
                }
            }
        });
        PickupHandle {
            cancel,
            task,
            settings: settings_tx,
        }
    }

    /// New settings between two scans (`SIGHUP`). A new folder starts with a
    /// clean slate: what was held or stalled was about the old one's files.
    fn apply(&mut self, new: PickupSettings) {
        if new == self.settings {
            return;
        }
        if new.dir != self.settings.dir {
            self.held.clear();
            self.stall = None;
            self.dir_error = false;
        }
        tracing::info!(dir = %new.dir.display(), interval = ?new.interval,
            badmail = %new.badmail_dir.display(), "pickup: configuration reloaded");
        self.settings = new;
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
                (self.on_queued)(env.queue_id);
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
        let added = self.signatures(&mut inc).map_err(Failure::Spool)?;
        commit(inc, &parsed, eight_bit, added).map_err(Failure::Spool)
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
fn commit(
    inc: Incoming,
    parsed: &Parsed,
    eight_bit: bool,
    added_headers: String,
) -> Result<Envelope, SpoolError> {
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
            ..Default::default()
        },
        message_size: 0,
        added_headers,
        hold: None,
        quarantine: None,
        require_tls: false,
        content: Vec::new(),
        bounce: None,
        message_id: None,
        subject: None,
    };
    inc.commit(envelope)
}

/// The running watcher.
#[derive(Debug)]
pub struct PickupHandle {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    settings: tokio::sync::watch::Sender<PickupSettings>,
}

impl PickupHandle {
    /// `SIGHUP`: scan `settings.dir` every `settings.interval` from the next
    /// scan on (the file being queued, if any, is finished first). The new
    /// folder is created (owner-only) here, so a folder that cannot be made is
    /// an error now and the watcher keeps the old settings. `enabled` is the
    /// caller's business (start or shut down the watcher).
    pub fn reload(&self, settings: PickupSettings) -> io::Result<()> {
        create_private_dir(&settings.dir)?;
        self.settings.send_replace(settings);
        Ok(())
    }

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
mod tests {
    use super::*;

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

//! Mail-log files rotated away while the indexer was not running: finding
//! the checkpoint's file beside the path (renamed, perhaps compressed), the
//! newer rotated files after it, and reading a gzip-compressed one.
//!
//! logrotate names rotated files `<name>.N` (N = 1 newest) or, with
//! `dateext`, `<name>-YYYYMMDD`; with `compress` they end in `.gz` (a new
//! inode: the file id of the checkpoint no longer finds them, the
//! [`FileHead`] fingerprint does). Oldest first: dated names in ascending
//! order, then numbered names from the highest N down.
//!
//! # Security
//! Everything is bounded: at most [`ROTATED_SCAN`] directory entries and
//! [`MAX_CANDIDATES`] rotated files are looked at; a fingerprint check reads
//! at most [`HEAD_INPUT`] compressed bytes; a compressed file yields at most
//! [`MAX_RATIO`] times its own size ([`GzTail`]: a decompression bomb ends
//! with a warning, it never fills memory — one read buffer — nor runs for
//! long). A corrupt gzip is an error for that file only: the caller warns and
//! goes on with the next.
//!
//! # Standards
//! gzip is RFC 1952 (several members may follow each other: all are read).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::types::{Checkpoint, FileHead};

/// Directory entries looked at for rotated files.
pub(crate) const ROTATED_SCAN: usize = 1000;
/// Rotated files considered (logrotate's `rotate N` is usually ≤ 52).
pub(crate) const MAX_CANDIDATES: usize = 100;
/// Bytes of a file fingerprinted ([`FileHead`]).
pub(crate) const HEAD_MAX: usize = 4096;
/// Compressed bytes read at most to decompress a fingerprint.
pub(crate) const HEAD_INPUT: u64 = 1024 * 1024;
/// A compressed file yields at most this many times its size (JSON mail
/// logs compress 5–15×; gzip's worst case, a bomb, is ≈ 1 000×).
pub(crate) const MAX_RATIO: u64 = 100;
/// … and at least this much, whatever its size (a tiny file).
const MIN_OUTPUT: u64 = 16 * 1024 * 1024;

/// The fingerprint of `bytes` (the first up-to-[`HEAD_MAX`] bytes of a file).
pub(crate) fn head_of(bytes: &[u8]) -> Option<FileHead> {
    let bytes = &bytes[..bytes.len().min(HEAD_MAX)];
    let len = u32::try_from(bytes.len()).ok().filter(|l| *l > 0)?;
    Some(FileHead {
        len,
        crc32: crc32fast::hash(bytes),
    })
}

/// A rotated file beside the mail log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotated {
    pub path: PathBuf,
    /// Ends in `.gz`.
    pub compressed: bool,
    order: Order,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    /// `-YYYYMMDD…`: ascending = oldest first.
    Dated(String),
    /// `.N`: stored as `u32::MAX - N` so ascending = oldest first.
    Numbered(u32),
}

/// How `file_name` is a rotated `name`, if it is one.
fn classify(name: &str, file_name: &str) -> Option<(Order, bool)> {
    let rest = file_name.strip_prefix(name)?;
    let (rest, compressed) = match rest.strip_suffix(".gz") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    if let Some(n) = rest.strip_prefix('.') {
        let n: u32 = n
            .parse()
            .ok()
            .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))?;
        return Some((Order::Numbered(u32::MAX - n), compressed));
    }
    let date = rest.strip_prefix('-')?;
    (!date.is_empty()
        && date.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && date
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')))
    .then(|| (Order::Dated(date.to_owned()), compressed))
}

/// The rotated files beside `path`, oldest first.
pub(crate) fn siblings(path: &Path) -> Vec<Rotated> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.take(ROTATED_SCAN).flatten() {
        let file_name = entry.file_name();
        let Some((order, compressed)) = file_name.to_str().and_then(|f| classify(name, f)) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push(Rotated {
            path: entry.path(),
            compressed,
            order,
        });
        if out.len() >= MAX_CANDIDATES {
            break;
        }
    }
    out.sort_by(|a, b| a.order.cmp(&b.order));
    out
}

/// The first `len` bytes of `r` (fewer at its end).
fn read_head(r: impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    r.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Whether `file` (plain) starts with the bytes fingerprinted by `head`.
pub(crate) fn plain_matches(file: &File, head: FileHead) -> bool {
    read_head(file, head.len as usize)
        .ok()
        .and_then(|b| head_of(&b))
        .is_some_and(|h| h == head)
}

/// Whether the rotated file is the checkpoint's: the same file id
/// (uncompressed, renamed), or the same fingerprint (decompressed if need
/// be). A corrupt compressed file is not it.
fn is_checkpoint_file(r: &Rotated, cp: &Checkpoint, head: Option<&FileHead>) -> bool {
    let Ok(file) = File::open(&r.path) else {
        return false;
    };
    let Some(head) = head else {
        // A checkpoint of version 1 (no fingerprint): the file id only.
        return !r.compressed
            && file
                .metadata()
                .is_ok_and(|m| crate::indexer::file_id(&m) == cp.file_id);
    };
    if r.compressed {
        let decoder = MultiGzDecoder::new(BufReader::new(file.take(HEAD_INPUT)));
        read_head(decoder, head.len as usize)
            .ok()
            .and_then(|b| head_of(&b))
            .is_some_and(|h| h == *head)
    } else {
        plain_matches(&file, *head)
    }
}

/// The checkpoint's file among the rotated files beside `path`, and the
/// newer rotated files after it (oldest first); `None` when it is not there.
pub(crate) fn catch_up(
    path: &Path,
    cp: &Checkpoint,
    head: Option<&FileHead>,
) -> Option<(Rotated, Vec<Rotated>)> {
    let mut all = siblings(path);
    let i = all.iter().position(|r| is_checkpoint_file(r, cp, head))?;
    let newer = all.split_off(i + 1);
    let ours = all.pop()?;
    Some((ours, newer))
}

/// Counts the compressed bytes read (for the lag).
struct Counted {
    inner: File,
    read: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// What went wrong reading a compressed file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GzError {
    /// Not gzip, or damaged.
    #[error("{path}: not a readable gzip file ({source}); the rest of it is skipped")]
    Corrupt {
        path: String,
        source: std::io::Error,
    },
    /// More output than [`MAX_RATIO`] × its size.
    #[error(
        "{path}: decompresses to more than {limit} bytes ({MAX_RATIO}× its size): a decompression bomb? the rest of it is skipped"
    )]
    TooLarge { path: String, limit: u64 },
}

/// A compressed rotated file read from a byte offset of its decompressed
/// content to its end. It cannot seek: the bytes after the last complete
/// line are kept ([`GzTail::keep`]) and come first in the next read.
pub(crate) struct GzTail {
    path: PathBuf,
    decoder: MultiGzDecoder<BufReader<Counted>>,
    /// Decompressed bytes produced so far.
    produced: u64,
    /// Decompressed bytes before the caller's offset still to discard.
    skip: u64,
    limit: u64,
    size: u64,
    /// Bytes read but not consumed (a partial line).
    pending: Vec<u8>,
    /// The decoder reached the end.
    pub eof: bool,
}

impl GzTail {
    /// Opens `path` to be read from decompressed byte `offset`.
    pub(crate) fn open(path: &Path, offset: u64) -> std::io::Result<(GzTail, u64)> {
        let inner = File::open(path)?;
        let meta = inner.metadata()?;
        let size = meta.len();
        let id = crate::indexer::file_id(&meta);
        Ok((
            GzTail {
                path: path.to_path_buf(),
                decoder: MultiGzDecoder::new(BufReader::new(Counted { inner, read: 0 })),
                produced: 0,
                skip: offset,
                limit: size.saturating_mul(MAX_RATIO).max(MIN_OUTPUT),
                size,
                pending: Vec::new(),
                eof: false,
            },
            id,
        ))
    }

    /// Compressed bytes not read yet (the lag, roughly).
    pub(crate) fn behind(&self) -> u64 {
        let read = self.decoder.get_ref().get_ref().read;
        self.size.saturating_sub(read) + self.pending.len() as u64
    }

    fn fill(&mut self, out: &mut Vec<u8>, want: usize) -> Result<usize, GzError> {
        let start = out.len();
        out.resize(start + want, 0);
        let mut got = 0;
        while got < want {
            match self.decoder.read(&mut out[start + got..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    got += n;
                    self.produced += n as u64;
                    if self.produced > self.limit {
                        out.truncate(start);
                        return Err(GzError::TooLarge {
                            path: self.path.display().to_string(),
                            limit: self.limit,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    out.truncate(start);
                    return Err(GzError::Corrupt {
                        path: self.path.display().to_string(),
                        source,
                    });
                }
            }
        }
        out.truncate(start + got);
        Ok(got)
    }

    /// Puts into `buf` the kept bytes and then decompressed ones, up to
    /// `chunk` bytes in all (fewer only at the end); first discards what
    /// lies before the offset. Returns the length of `buf` (0 = the end).
    pub(crate) fn read_chunk(&mut self, buf: &mut Vec<u8>, chunk: usize) -> Result<usize, GzError> {
        while self.skip > 0 && !self.eof {
            buf.clear();
            let want = usize::try_from(self.skip).unwrap_or(chunk).min(chunk);
            let n = self.fill(buf, want)?;
            self.skip -= n as u64;
        }
        buf.clear();
        buf.append(&mut self.pending);
        if !self.eof && buf.len() < chunk {
            let want = chunk - buf.len();
            self.fill(buf, want)?;
        }
        Ok(buf.len())
    }

    /// Keeps `rest` (the bytes of the last read after the last consumed
    /// line) for the next read.
    pub(crate) fn keep(&mut self, rest: &[u8]) {
        self.pending.clear();
        self.pending.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        let n = "mail.log";
        assert_eq!(
            classify(n, "mail.log.1"),
            Some((Order::Numbered(u32::MAX - 1), false))
        );
        assert_eq!(
            classify(n, "mail.log.12.gz"),
            Some((Order::Numbered(u32::MAX - 12), true))
        );
        assert_eq!(
            classify(n, "mail.log-20261207.gz"),
            Some((Order::Dated("20261207".into()), true))
        );
        assert_eq!(
            classify(n, "mail.log-20261207"),
            Some((Order::Dated("20261207".into()), false))
        );
        for other in [
            "mail.log",
            "mail.log.bak",
            "mail.log.1.xz",
            "mail.log-old",
            "mail.logx.1",
            "mail.log.+1",
        ] {
            assert_eq!(classify(n, other), None, "{other}");
        }
        let mut v = [
            Order::Numbered(u32::MAX - 1),
            Order::Numbered(u32::MAX - 3),
            Order::Dated("20261207".into()),
            Order::Dated("20261201".into()),
        ];
        v.sort();
        assert_eq!(
            v,
            [
                Order::Dated("20261201".into()),
                Order::Dated("20261207".into()),
                Order::Numbered(u32::MAX - 3),
                Order::Numbered(u32::MAX - 1),
            ]
        );
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_from_an_offset_and_keeps_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log.1.gz");
        // Two members, as `cat a.gz b.gz` makes.
        let mut bytes = gz(b"one\ntwo\nthr");
        bytes.extend(gz(b"ee\nfour\n"));
        std::fs::write(&path, bytes).unwrap();
        let (mut t, _) = GzTail::open(&path, 4).unwrap();
        let mut buf = Vec::new();
        assert_eq!(t.read_chunk(&mut buf, 6).unwrap(), 6);
        assert_eq!(buf, b"two\nth");
        t.keep(b"th");
        assert_eq!(t.read_chunk(&mut buf, 64).unwrap(), 11);
        assert_eq!(buf, b"three\nfour\n");
        t.keep(b"");
        assert!(t.eof);
        assert_eq!(t.read_chunk(&mut buf, 64).unwrap(), 0);
    }

    #[test]
    fn a_bomb_stops_at_the_ratio_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.gz");
        // 64 MiB of zeros from ≈ 64 KiB: more than the 16 MiB floor.
        let member = gz(&vec![0u8; 1024 * 1024]);
        std::fs::write(&path, member.repeat(64)).unwrap();
        let (mut t, _) = GzTail::open(&path, 0).unwrap();
        let mut buf = Vec::new();
        let mut produced = 0u64;
        let err = loop {
            match t.read_chunk(&mut buf, 4 * 1024 * 1024) {
                Ok(n) => {
                    assert!(n > 0, "the end before the limit");
                    produced += n as u64;
                    t.keep(b"");
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(err, GzError::TooLarge { .. }), "{err}");
        assert!(produced <= MIN_OUTPUT, "{produced}");

        let mut damaged = gz(&b"a line\n".repeat(1000));
        let n = damaged.len();
        damaged[n - 6] ^= 0xff; // the trailer's CRC-32 / length
        std::fs::write(&path, damaged).unwrap();
        let (mut t, _) = GzTail::open(&path, 0).unwrap();
        let err = t.read_chunk(&mut buf, 1024 * 1024).unwrap_err();
        assert!(matches!(err, GzError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn head_is_at_most_4_kib() {
        assert_eq!(head_of(b""), None);
        let h = head_of(&[b'x'; 10_000]).unwrap();
        assert_eq!(h.len, 4096);
        assert_eq!(h.crc32, crc32fast::hash(&[b'x'; 4096]));
    }
}

//! The bytes of a message file (format version 1): header, body, envelope, trailer.
//! `docs/spool-format.md` §2 is the specification; this module is its only
//! implementation.
//!
//! # Security
//! Files are read as untrusted: lengths come from a CRC-checked trailer and must
//! agree with the file size, the envelope is bounded by `MAX_ENVELOPE_LEN` before
//! anything is allocated, and JSON is parsed only after its CRC matched.

use std::io::{self, Read, Seek, SeekFrom};

use crate::envelope::Envelope;
use crate::fs::ReadFile;
use crate::id::QueueId;

/// Length of the fixed header.
pub(crate) const HEADER_LEN: u64 = 16;
/// Length of the fixed trailer.
pub(crate) const TRAILER_LEN: u64 = 48;
/// The format version this code writes and accepts.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// First 8 bytes of every message file.
pub(crate) const HEADER_MAGIC: [u8; 8] = *b"POSTERNQ";
/// Last 8 bytes of every complete message file.
pub(crate) const END_MAGIC: [u8; 8] = *b"QFILEEND";
/// Largest envelope we write or read (a sanity bound, far above any real one).
pub(crate) const MAX_ENVELOPE_LEN: u64 = 64 << 20;

/// The 16-byte header.
pub(crate) fn header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..8].copy_from_slice(&HEADER_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // h[12..16]: flags, zero in version 1.
    h
}

fn check_header(h: &[u8; 16]) -> Result<(), String> {
    if h[0..8] != HEADER_MAGIC {
        return Err("bad header magic".into());
    }
    let version = u32_at(h, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version} in header"));
    }
    let flags = u32_at(h, 12);
    if flags != 0 {
        return Err(format!("unknown header flags {flags:#x}"));
    }
    Ok(())
}

/// The 48-byte trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub(crate) body_len: u64,
    pub(crate) envelope_offset: u64,
    pub(crate) envelope_len: u64,
    pub(crate) body_crc: u32,
    pub(crate) envelope_crc: u32,
}

impl Trailer {
    pub(crate) fn new(body_len: u64, body_crc: u32, envelope: &[u8]) -> Self {
        Self {
            body_len,
            envelope_offset: HEADER_LEN + body_len,
            envelope_len: envelope.len() as u64,
            body_crc,
            envelope_crc: crc32fast::hash(envelope),
        }
    }

    pub(crate) fn encode(&self) -> [u8; 48] {
        let mut t = [0u8; 48];
        t[0..8].copy_from_slice(&self.body_len.to_le_bytes());
        t[8..16].copy_from_slice(&self.envelope_offset.to_le_bytes());
        t[16..24].copy_from_slice(&self.envelope_len.to_le_bytes());
        t[24..28].copy_from_slice(&self.body_crc.to_le_bytes());
        t[28..32].copy_from_slice(&self.envelope_crc.to_le_bytes());
        t[32..36].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&t[0..36]);
        t[36..40].copy_from_slice(&crc.to_le_bytes());
        t[40..48].copy_from_slice(&END_MAGIC);
        t
    }

    /// Decode and check a trailer read from the end of a file of `file_len` bytes.
    pub(crate) fn decode(t: &[u8; 48], file_len: u64) -> Result<Self, String> {
        if t[40..48] != END_MAGIC {
            return Err("no end marker: incomplete or damaged file".into());
        }
        if crc32fast::hash(&t[0..36]) != u32_at(t, 36) {
            return Err("trailer checksum mismatch".into());
        }
        let version = u32_at(t, 32);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version} in trailer"));
        }
        let tr = Self {
            body_len: u64_at(t, 0),
            envelope_offset: u64_at(t, 8),
            envelope_len: u64_at(t, 16),
            body_crc: u32_at(t, 24),
            envelope_crc: u32_at(t, 28),
        };
        if tr.envelope_len > MAX_ENVELOPE_LEN {
            return Err(format!("envelope length {} too large", tr.envelope_len));
        }
        let consistent = HEADER_LEN.checked_add(tr.body_len) == Some(tr.envelope_offset)
            && tr
                .envelope_offset
                .checked_add(tr.envelope_len)
                .and_then(|n| n.checked_add(TRAILER_LEN))
                == Some(file_len);
        if !consistent {
            return Err(format!(
                "trailer lengths (body {}, envelope {} at {}) disagree with file size {file_len}",
                tr.body_len, tr.envelope_len, tr.envelope_offset
            ));
        }
        Ok(tr)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Why a file could not be read: the environment (I/O) or the file (invalid).
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Invalid(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Read and check header, trailer and envelope (not the body).
pub(crate) fn read_meta(
    file: &mut dyn ReadFile,
    expected_id: &QueueId,
) -> Result<(Trailer, Envelope), ReadError> {
    let file_len = file.seek(SeekFrom::End(0))?;
    if file_len < HEADER_LEN + TRAILER_LEN {
        return Err(ReadError::Invalid(format!(
            "truncated: {file_len} bytes is shorter than header and trailer"
        )));
    }
    let mut t = [0u8; 48];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    file.read_exact(&mut t)?;
    let trailer = Trailer::decode(&t, file_len).map_err(ReadError::Invalid)?;

    let mut h = [0u8; 16];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut h)?;
    check_header(&h).map_err(ReadError::Invalid)?;

    // Bounded by MAX_ENVELOPE_LEN in Trailer::decode, so it fits in memory and usize.
    let len = usize::try_from(trailer.envelope_len)
        .map_err(|_| ReadError::Invalid("envelope length overflows".into()))?;
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(trailer.envelope_offset))?;
    file.read_exact(&mut buf)?;
    if crc32fast::hash(&buf) != trailer.envelope_crc {
        return Err(ReadError::Invalid("envelope checksum mismatch".into()));
    }
    let envelope: Envelope = serde_json::from_slice(&buf)
        .map_err(|e| ReadError::Invalid(format!("envelope is not valid JSON: {e}")))?;
    if envelope.queue_id != *expected_id {
        return Err(ReadError::Invalid(format!(
            "envelope queue id {} does not match the file name",
            envelope.queue_id
        )));
    }
    if envelope.message_size != trailer.body_len {
        return Err(ReadError::Invalid(format!(
            "envelope message_size {} does not match body length {}",
            envelope.message_size, trailer.body_len
        )));
    }
    Ok((trailer, envelope))
}

/// Read the whole body and check its CRC.
pub(crate) fn verify_body(file: &mut dyn ReadFile, trailer: &Trailer) -> Result<(), ReadError> {
    file.seek(SeekFrom::Start(HEADER_LEN))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut remaining = trailer.body_len;
    let mut buf = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(ReadError::Invalid("body shorter than recorded".into()));
        }
        hasher.update(&buf[..n]);
        remaining -= n as u64;
    }
    if hasher.finalize() != trailer.body_crc {
        return Err(ReadError::Invalid("body checksum mismatch".into()));
    }
    Ok(())
}

/// Validate a whole message file held in memory (for fuzzing and offline checks):
/// every check of `docs/spool-format.md` §2, the file being named `expected_id`.
/// Returns the envelope, or the reason the file is invalid.
pub fn validate_message_bytes(bytes: &[u8], expected_id: &QueueId) -> Result<Envelope, String> {
    let mut file = io::Cursor::new(bytes);
    let result = read_meta(&mut file, expected_id)
        .and_then(|(trailer, envelope)| verify_body(&mut file, &trailer).map(|()| envelope));
    result.map_err(|e| match e {
        ReadError::Invalid(reason) => reason,
        ReadError::Io(e) => e.to_string(),
    })
}

/// A reader over a message body: bounded to `body_len` bytes, and checking the body
/// CRC at the end. If the CRC does not match, the last read returns an
/// `InvalidData` error instead of end-of-file, so a consumer that reads to the end
/// (delivery, before sending the final dot) never completes a damaged body.
pub struct MessageReader {
    /// Header fields added at end of data (`Envelope::added_headers`), yielded
    /// before the body; not covered by the body CRC (the envelope's CRC covers them).
    prefix: Vec<u8>,
    prefix_pos: usize,
    inner: io::BufReader<Box<dyn ReadFile>>,
    remaining: u64,
    len: u64,
    hasher: crc32fast::Hasher,
    expected_crc: u32,
    checked: bool,
}

impl MessageReader {
    pub(crate) fn new(mut file: Box<dyn ReadFile>, trailer: &Trailer) -> io::Result<Self> {
        file.seek(SeekFrom::Start(HEADER_LEN))?;
        Ok(Self {
            prefix: Vec::new(),
            prefix_pos: 0,
            inner: io::BufReader::with_capacity(64 * 1024, file),
            remaining: trailer.body_len,
            len: trailer.body_len,
            hasher: crc32fast::Hasher::new(),
            expected_crc: trailer.body_crc,
            checked: false,
        })
    }

    /// Yields `prefix` (the envelope's added header fields) before the body.
    pub(crate) fn with_prefix(mut self, prefix: Vec<u8>) -> Self {
        self.prefix = prefix;
        self.prefix_pos = 0;
        self
    }

    /// The message length in bytes: added header fields plus the body.
    pub fn len(&self) -> u64 {
        self.len + self.prefix.len() as u64
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.prefix_pos < self.prefix.len() {
            let rest = &self.prefix[self.prefix_pos..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.prefix_pos += n;
            return Ok(n);
        }
        if self.remaining == 0 {
            if !self.checked {
                let crc = self.hasher.clone().finalize();
                if crc != self.expected_crc {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "spool: message body checksum mismatch",
                    ));
                }
                self.checked = true;
            }
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool: message body shorter than recorded",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl std::fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("len", &self.len)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trip_and_checks() {
        let env = b"{}";
        let t = Trailer::new(10, 0xdead_beef, env);
        let file_len = HEADER_LEN + 10 + 2 + TRAILER_LEN;
        let bytes = t.encode();
        assert_eq!(Trailer::decode(&bytes, file_len), Ok(t));
        assert!(
            Trailer::decode(&bytes, file_len + 1).is_err(),
            "size must agree"
        );

        for i in 0..48 {
            for bit in 0..8 {
                let mut b = bytes;
                b[i] ^= 1 << bit;
                assert!(
                    Trailer::decode(&b, file_len).is_err(),
                    "flip {i}.{bit} accepted"
                );
            }
        }
    }

    /// A complete v1 file, built the way `Incoming::commit` builds it.
    fn build(id: QueueId, body: &[u8]) -> Vec<u8> {
        let envelope = Envelope {
            queue_id: id,
            received_at: "2026-01-01T00:00:00Z".into(),
            reverse_path: String::new(),
            recipients: vec![crate::EnvelopeRecipient {
                address: "a@example.org".into(),
                ..Default::default()
            }],
            params: crate::MailParams::default(),
            receipt: crate::Receipt::default(),
            message_size: body.len() as u64,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        };
        let json = serde_json::to_vec(&envelope).expect("serialize");
        let mut out = header().to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(&json);
        out.extend_from_slice(
            &Trailer::new(body.len() as u64, crc32fast::hash(body), &json).encode(),
        );
        out
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let id = QueueId::generate();
            let _ = validate_message_bytes(&bytes, &id);
        }

        #[test]
        fn valid_files_round_trip_and_damage_is_detected(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            cut in proptest::num::usize::ANY,
            flip in proptest::num::usize::ANY,
            bit in 0u8..8,
        ) {
            let id = QueueId::generate();
            let file = build(id, &body);
            let env = validate_message_bytes(&file, &id).expect("valid");
            proptest::prop_assert_eq!(env.message_size, body.len() as u64);
            proptest::prop_assert!(validate_message_bytes(&file, &QueueId::generate()).is_err(), "wrong name accepted");

            let cut = cut % file.len();
            proptest::prop_assert!(validate_message_bytes(&file[..cut], &id).is_err(), "truncation accepted");
            let mut flipped = file.clone();
            flipped[flip % file.len()] ^= 1 << bit;
            proptest::prop_assert!(validate_message_bytes(&flipped, &id).is_err(), "bit flip accepted");
        }
    }

    #[test]
    fn header_checks() {
        assert!(check_header(&header()).is_ok());
        let mut h = header();
        h[9] = 1;
        assert!(check_header(&h).expect_err("v2").contains("version"));
        let mut h = header();
        h[13] = 1;
        assert!(check_header(&h).is_err());
        let mut h = header();
        h[0] = b'X';
        assert!(check_header(&h).is_err());
    }
}

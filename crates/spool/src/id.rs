//! Queue ids: 18 characters of upper-case Crockford base32, time-sortable, unique
//! without coordination, and always a safe file name.
//!
//! Layout (90 bits): 52 bits of Unix time in microseconds (until the year 2112),
//! then 38 random bits. Within one process ids are strictly increasing: if the
//! clock has not moved (or moved back) since the last id, the time part is bumped
//! by one microsecond. Across processes the random part makes a collision
//! improbable, and the spool's `O_EXCL` create catches the rest.
//!
//! # Security
//! `QueueId::parse` is the only door from untrusted text (CLI, admin API) to a
//! path in the spool: it accepts exactly 18 characters of the alphabet below, so
//! `../x`, `a/b`, lower case and empty strings never reach the file system.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SpoolError;

/// Crockford's base32 alphabet, in ascending ASCII order (so string order is
/// numeric order).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Length of a queue id in characters.
pub const QUEUE_ID_LEN: usize = 18;
const TIME_BITS: u32 = 52;
const RANDOM_BITS: u32 = 38;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const RANDOM_MASK: u64 = (1 << RANDOM_BITS) - 1;

/// The time part of the last id this process generated.
static LAST_MICROS: AtomicU64 = AtomicU64::new(0);

/// Our id for an accepted message (never the `Message-ID:` header).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId([u8; QUEUE_ID_LEN]);

impl QueueId {
    /// A new id: now, plus randomness. Strictly greater than every id this process
    /// generated before.
    pub fn generate() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            & TIME_MASK;
        let mut last = LAST_MICROS.load(Ordering::Relaxed);
        let micros = loop {
            let next = if now > last { now } else { last + 1 };
            match LAST_MICROS.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        let random = rand::random::<u64>() & RANDOM_MASK;
        Self::from_parts(micros & TIME_MASK, random)
    }

    fn from_parts(micros: u64, random: u64) -> Self {
        let value = (u128::from(micros) << RANDOM_BITS) | u128::from(random);
        let mut out = [0u8; QUEUE_ID_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (QUEUE_ID_LEN - 1 - i);
            // The mask keeps the index below 32, the alphabet's length.
            let index = ((value >> shift) & 0x1f) as usize;
            *slot = ALPHABET[index];
        }
        Self(out)
    }

    /// Validate a queue id given as text: exactly 18 characters of upper-case
    /// Crockford base32.
    pub fn parse(s: &str) -> Result<Self, SpoolError> {
        let bytes = s.as_bytes();
        if bytes.len() != QUEUE_ID_LEN || !bytes.iter().all(|b| ALPHABET.contains(b)) {
            return Err(SpoolError::InvalidId(s.chars().take(64).collect()));
        }
        let mut out = [0u8; QUEUE_ID_LEN];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Only ALPHABET bytes are ever stored, and they are ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// When the id was generated, in microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        let mut value: u128 = 0;
        for b in self.0 {
            let digit = ALPHABET.iter().position(|a| *a == b).unwrap_or(0);
            value = (value << 5) | digit as u128;
        }
        // 90-bit value shifted right by 38 leaves 52 bits: fits in u64.
        u64::try_from(value >> RANDOM_BITS).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueId({})", self.as_str())
    }
}

impl std::str::FromStr for QueueId {
    type Err = SpoolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for QueueId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for QueueId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for QueueId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        QueueId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_valid_and_increasing() {
        let mut prev = QueueId::generate();
        for _ in 0..10_000 {
            let id = QueueId::generate();
            assert!(id > prev, "{id} <= {prev}");
            assert_eq!(id.as_str().len(), QUEUE_ID_LEN);
            assert_eq!(QueueId::parse(id.as_str()).expect("valid"), id);
            assert!(id.as_str() > prev.as_str(), "string order is id order");
            prev = id;
        }
    }

    #[test]
    fn time_part_is_now() {
        let id = QueueId::generate();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros();
        let ts = u128::from(id.timestamp_micros());
        assert!(now.abs_diff(ts) < 60_000_000, "{ts} vs {now}");
    }

    #[test]
    fn encoding_is_big_endian_base32() {
        assert_eq!(QueueId::from_parts(0, 0).as_str(), "000000000000000000");
        assert_eq!(QueueId::from_parts(0, 1).as_str(), "000000000000000001");
        assert_eq!(QueueId::from_parts(0, 31).as_str(), "00000000000000000Z");
        assert_eq!(
            QueueId::from_parts(TIME_MASK, RANDOM_MASK).as_str(),
            "ZZZZZZZZZZZZZZZZZZ"
        );
        assert_eq!(QueueId::from_parts(1, 0).timestamp_micros(), 1);
    }

    #[test]
    fn parse_rejects_bad_input() {
        for bad in [
            "",
            "../x",
            "../../../etc/passwd",
            "0000000000000000/0",
            "00000000000000000",
            "0000000000000000000",
            "00000000000000000a",
            "00000000000000000I",
            "00000000000000000L",
            "00000000000000000O",
            "00000000000000000U",
            "00000000000000000.",
            "00000000000000000é",
        ] {
            assert!(
                matches!(QueueId::parse(bad), Err(SpoolError::InvalidId(_))),
                "{bad:?} accepted"
            );
        }
        assert!(QueueId::parse("0123456789ABCDEFGH").is_ok());
    }

    #[test]
    fn unique_across_threads() {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| (0..5000).map(|_| QueueId::generate()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().expect("thread") {
                assert!(all.insert(id), "duplicate {id}");
            }
        }
        assert_eq!(all.len(), 40_000);
    }

    #[test]
    fn serde_validates() {
        let id = QueueId::generate();
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(
            serde_json::from_str::<QueueId>(&json).expect("deserialize"),
            id
        );
        assert!(serde_json::from_str::<QueueId>("\"../etc\"").is_err());
    }
}

//! [`key`]: building a store key from parts that may hold anything (an
//! SMTPUTF8 address, a HELO name with a colon) so that it is always a valid
//! key, the same on every node, and unambiguous.
//!
//! # Security
//! The parts are attacker-chosen. Percent-encoding `%`, `:` and every byte
//! outside printable ASCII keeps one part from running into the next
//! (`a:b` + `c` never equals `a` + `b:c`), and an over-long key is cut and
//! ends with a stable 64-bit FNV-1a digest of the whole, so it stays within
//! [`MAX_KEY_LEN`] and distinct keys stay distinct (up to a 2⁻⁶⁴ collision,
//! which an attacker could aim at; the worst outcome is sharing a counter
//! with another client, which is what an over-long key deserves).

use std::fmt::Write as _;

use crate::window::MAX_KEY_LEN;

/// What an over-long key keeps before its digest.
const KEPT: usize = MAX_KEY_LEN - 1 - 16;

/// `parts` joined by `:`, each percent-encoded (see the module
/// documentation): `key(&["rcpt", "ip", "192.0.2.7"])` is
/// `rcpt:ip:192.0.2.7`, `key(&["grey", "jos\u{e9}@example.org"])` is
/// `grey:jos%C3%A9@example.org`.
pub fn key(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        for b in part.bytes() {
            if b.is_ascii_graphic() && b != b'%' && b != b':' {
                out.push(char::from(b));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    if out.len() > MAX_KEY_LEN {
        let digest = fnv1a(out.as_bytes());
        // Everything pushed is ASCII, so any byte index is a char boundary.
        out.truncate(KEPT);
        let _ = write!(out, "#{digest:016x}");
    }
    out
}

/// FNV-1a, 64 bits: stable across builds and nodes (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::check_key;

    #[test]
    fn parts_are_joined_and_encoded() {
        assert_eq!(key(&["rcpt", "ip", "192.0.2.7"]), "rcpt:ip:192.0.2.7");
        assert_eq!(
            key(&["rcpt", "ip", "2001:db8::1"]),
            "rcpt:ip:2001%3Adb8%3A%3A1"
        );
        assert_eq!(
            key(&["grey", "jos\u{e9}@example.org"]),
            "grey:jos%C3%A9@example.org"
        );
        assert_eq!(key(&["a b", "100%", ""]), "a%20b:100%25:");
        assert_ne!(key(&["a:b", "c"]), key(&["a", "b:c"]));
        assert!(check_key(&key(&["x", "\r\n\0\u{7f}"])).is_ok());
    }

    #[test]
    fn long_keys_are_cut_with_a_digest() {
        let a = "\u{e9}".repeat(300); // 1800 bytes encoded
        let k1 = key(&["grey", &a, "x"]);
        let k2 = key(&["grey", &a, "y"]);
        assert_eq!(k1.len(), MAX_KEY_LEN);
        assert!(check_key(&k1).is_ok());
        assert_ne!(k1, k2);
        assert_eq!(k1, key(&["grey", &a, "x"]), "stable");
        // The reference value of FNV-1a 64 for "a".
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

//! The outbound body encoder: CRLF-only line ends and dot-stuffing, streamed
//! chunk by chunk (sans-I/O; the session feeds it what it reads from the
//! spool).
//!
//! The spool already holds CRLF message bytes (smtpd rejects bare CR/LF), but
//! the encoder does not rely on it: a bare LF or bare CR becomes CRLF (defence
//! in depth — we never relay a bare line end that a receiver might read
//! differently, the SMTP-smuggling class).
//!
//! # Security
//! The terminator `CRLF "." CRLF` can only come from [`BodyEncoder::finish`]:
//! every line starting with "." is stuffed (DATA), and every line end is
//! CRLF, so message content can never end the data early or smuggle a second
//! message. Memory is a few flags regardless of input.
//!
//! # Standards
//! RFC 5321 §2.3.8 (CRLF only), §4.1.1.4 (the terminator), §4.5.2
//! (transparency: dot-stuffing), RFC 3030 §2 (BDAT: no stuffing, no
//! terminator). CVE-2023-51764 (SMTP smuggling) for why bare line ends are
//! normalised on the way out too.

/// Streaming encoder for DATA (dot-stuffed, terminated) or BDAT (neither).
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    dot_stuff: bool,
    at_line_start: bool,
    pending_cr: bool,
    fixed_line_ends: u64,
    stuffed_dots: u64,
}

impl BodyEncoder {
    /// For DATA: dot-stuffing and, at [`BodyEncoder::finish`], the terminator.
    pub fn for_data() -> Self {
        Self::new(true)
    }

    /// For BDAT: line ends normalised only.
    pub fn for_bdat() -> Self {
        Self::new(false)
    }

    fn new(dot_stuff: bool) -> Self {
        Self {
            dot_stuff,
            at_line_start: true,
            pending_cr: false,
            fixed_line_ends: 0,
            stuffed_dots: 0,
        }
    }

    /// Encodes `input`, appending to `out`. A CR at the end of `input` is
    /// held until the next call shows whether an LF follows.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 4);
        let mut i = 0;
        while i < input.len() {
            if self.pending_cr {
                self.pending_cr = false;
                if input[i] == b'\n' {
                    i += 1;
                } else {
                    self.fixed_line_ends += 1;
                }
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                continue;
            }
            if !self.at_line_start {
                // Fast path: copy the run up to the next CR or LF.
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - i);
                out.extend_from_slice(&input[i..i + run]);
                i += run;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.fixed_line_ends += 1;
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
                b'.' if self.at_line_start && self.dot_stuff => {
                    self.stuffed_dots += 1;
                    out.extend_from_slice(b"..");
                    self.at_line_start = false;
                }
                _ => {
                    out.push(b);
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Ends the body: a held CR becomes CRLF, an unterminated last line gets
    /// its CRLF, and for DATA the terminator `.CRLF` follows.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.fixed_line_ends += 1;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        if self.dot_stuff {
            out.extend_from_slice(b".\r\n");
        }
    }

    /// Bare CRs and LFs turned into CRLF so far.
    pub fn fixed_line_ends(&self) -> u64 {
        self.fixed_line_ends
    }

    /// Dots added at line starts so far.
    pub fn stuffed_dots(&self) -> u64 {
        self.stuffed_dots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_proto::{DataDecoder, DataStatus, Limits};

    fn data(chunks: &[&[u8]]) -> Vec<u8> {
        let mut e = BodyEncoder::for_data();
        let mut out = Vec::new();
        for c in chunks {
            e.encode(c, &mut out);
        }
        e.finish(&mut out);
        out
    }

    #[test]
    fn data_table() {
        let cases: Vec<(&[u8], &[u8])> = vec![
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b".x\r\n..y\r\n", b"..x\r\n...y\r\n.\r\n"),
            (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n.\r\n"),
            (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"x.y\r\n", b"x.y\r\n.\r\n"),
            (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
            // A smuggling attempt in the content stays content.
            (
                b"a\n.\r\nMAIL FROM:<x>\r\n",
                b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&data(&[input])),
                String::from_utf8_lossy(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let input: &[u8] = b"line1\r\n.dot\r\n..two\nbare\rcr\r\nend.\r\n.";
        let whole = data(&[input]);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(data(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(data(&bytes), whole);
    }

    #[test]
    fn bdat_normalises_without_stuffing() {
        let mut e = BodyEncoder::for_bdat();
        let mut out = Vec::new();
        e.encode(b".a\nb", &mut out);
        e.finish(&mut out);
        assert_eq!(out, b".a\r\nb\r\n");
        assert_eq!(e.fixed_line_ends(), 1);
        assert_eq!(e.stuffed_dots(), 0);
    }

    #[test]
    fn our_decoder_gets_the_message_back() {
        // Round trip through the server-side decoder: content preserved (with
        // normalised line ends), no error, terminator found at the very end.
        let input: &[u8] = b"Subject: t\r\n\r\n.x\r\n..y\r\n.\r\nlast";
        let wire = data(&[input]);
        let mut dec = DataDecoder::new(&Limits::default());
        let mut out = Vec::new();
        let (used, status) = dec.decode(&wire, &mut out);
        assert_eq!(status, DataStatus::Done);
        assert_eq!(used, wire.len());
        assert_eq!(out, b"Subject: t\r\n\r\n.x\r\n..y\r\n.\r\nlast\r\n");
    }
}

//! The milter wire format without I/O: packets we send ([`Command`]) and
//! packets we receive ([`Response`]), with their bounds.
//!
//! A packet is a 4-byte big-endian length, then one command byte, then data;
//! the length counts the command byte and the data. [`Command::encode`]
//! appends one packet to a buffer; [`FrameReader`] splits received bytes into
//! packets and [`Response::parse`] turns one into a typed reply.
//!
//! # Security
//! Everything parsed here comes from the milter and is untrusted. A length
//! over [`MAX_PACKET`] is refused before any allocation (a milter cannot make
//! us buffer 4 GiB); string fields must be NUL-terminated exactly; each field
//! is checked by [`crate::fields`] (no CR/LF injection into headers, valid
//! mailboxes, 4xx/5xx reply codes only). On our side, a NUL inside a field we
//! send is refused ([`EncodeError::Nul`]): it would end the field early and
//! shift every later field.
//!
//! # Standards
//! Sendmail libmilter protocol version 6 (the `SMFIC_*`/`SMFIR_*` codes of
//! `mfdef.h`); body chunks at most `MILTER_CHUNK_SIZE` (65535) bytes.

use postern_proto::Reply;

use crate::fields;
use crate::{Actions, EncodeError, MacroStage, ProtocolError, ProtocolFlags};

/// The protocol version we speak and offer.
pub const PROTOCOL_VERSION: u32 = 6;
/// The oldest milter protocol version we accept.
pub const MIN_VERSION: u32 = 2;
/// Longest body chunk (`MILTER_CHUNK_SIZE`).
pub const MAX_CHUNK: usize = 65535;
/// Longest packet we accept from a milter (length field value). Milters
/// negotiating `SMFIP_MDS_1M` send at most 1 MiB of data.
pub const MAX_PACKET: usize = 1 << 20;

/// The address family of `SMFIC_CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `'U'`: unknown (no address follows): mail not received over TCP.
    Unknown,
    /// `'L'`: a Unix socket; the address is its path.
    Unix,
    /// `'4'`: IPv4.
    Inet4,
    /// `'6'`: IPv6 (the address without brackets or `IPv6:`).
    Inet6,
}

/// A packet we send to the milter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `SMFIC_OPTNEG` `'O'`: version, actions we allow, protocol steps we
    /// can skip.
    OptNeg {
        /// Protocol version ([`PROTOCOL_VERSION`]).
        version: u32,
        /// Actions offered.
        actions: Actions,
        /// Protocol flags offered.
        protocol: ProtocolFlags,
    },
    /// `SMFIC_MACRO` `'D'`: macro values for the command of `stage`.
    Macro {
        /// The stage (its command byte is sent).
        stage: MacroStage,
        /// `(name, value)`; names as `j` or `{daemon_name}`.
        pairs: &'a [(String, String)],
    },
    /// `SMFIC_CONNECT` `'C'`: client host name, family, port, address.
    Connect {
        /// The client's verified host name, or `[address]`.
        hostname: &'a str,
        /// The address family.
        family: Family,
        /// The client's port (0 when unknown).
        port: u16,
        /// The address (not sent for [`Family::Unknown`]).
        address: &'a str,
    },
    /// `SMFIC_HELO` `'H'`: the HELO/EHLO argument.
    Helo(&'a str),
    /// `SMFIC_MAIL` `'M'`: `<sender>` then each ESMTP parameter.
    Mail(&'a [String]),
    /// `SMFIC_RCPT` `'R'`: `<recipient>` then each ESMTP parameter.
    Rcpt(&'a [String]),
    /// `SMFIC_DATA` `'T'`.
    Data,
    /// `SMFIC_HEADER` `'L'`: name and value.
    Header {
        /// Field name.
        name: &'a str,
        /// Field value (leading white space as negotiated).
        value: &'a str,
    },
    /// `SMFIC_EOH` `'N'`.
    EndOfHeaders,
    /// `SMFIC_BODY` `'B'`: one chunk of at most [`MAX_CHUNK`] bytes.
    Body(&'a [u8]),
    /// `SMFIC_BODYEOB` `'E'`: end of message.
    EndOfBody,
    /// `SMFIC_ABORT` `'A'`: forget the current message.
    Abort,
    /// `SMFIC_QUIT` `'Q'`: close.
    Quit,
    /// `SMFIC_QUIT_NC` `'K'`: end this session, a new one follows on the same
    /// connection.
    QuitNewConnection,
}

fn put_str(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), EncodeError> {
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::Nul { field });
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

impl Command<'_> {
    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg { .. } => b'O',
            Command::Macro { .. } => b'D',
            Command::Connect { .. } => b'C',
            Command::Helo(_) => b'H',
            Command::Mail(_) => b'M',
            Command::Rcpt(_) => b'R',
            Command::Data => b'T',
            Command::Header { .. } => b'L',
            Command::EndOfHeaders => b'N',
            Command::Body(_) => b'B',
            Command::EndOfBody => b'E',
            Command::Abort => b'A',
            Command::Quit => b'Q',
            Command::QuitNewConnection => b'K',
        }
    }

    /// Appends this packet (length, code, data) to `out`. On error `out` is
    /// left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0, self.code()]);
        let result = self.encode_data(out);
        if let Err(e) = result {
            out.truncate(start);
            return Err(e);
        }
        // At most one 65535-byte chunk or a bounded set of strings: the
        // caller's fields are bounded far below 4 GiB (SMTP line limits,
        // the header section limit), so the length fits in u32.
        let len = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn encode_data(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&actions.0.to_be_bytes());
                out.extend_from_slice(&protocol.0.to_be_bytes());
            }
            Command::Macro { stage, pairs } => {
                out.push(stage.command());
                for (name, value) in *pairs {
                    put_str(out, "macro name", name)?;
                    put_str(out, "macro value", value)?;
                }
            }
            Command::Connect {
                hostname,
                family,
                port,
                address,
            } => {
                put_str(out, "client host name", hostname)?;
                out.push(match family {
                    Family::Unknown => b'U',
                    Family::Unix => b'L',
                    Family::Inet4 => b'4',
                    Family::Inet6 => b'6',
                });
                if *family != Family::Unknown {
                    out.extend_from_slice(&port.to_be_bytes());
                    put_str(out, "client address", address)?;
                }
            }
            Command::Helo(name) => put_str(out, "HELO name", name)?,
            Command::Mail(args) | Command::Rcpt(args) => {
                for arg in *args {
                    put_str(out, "envelope argument", arg)?;
                }
            }
            Command::Header { name, value } => {
                put_str(out, "header name", name)?;
                put_str(out, "header value", value)?;
            }
            Command::Body(chunk) => {
                if chunk.len() > MAX_CHUNK {
                    return Err(EncodeError::ChunkTooLong(chunk.len()));
                }
                out.extend_from_slice(chunk);
            }
            Command::Data
            | Command::EndOfHeaders
            | Command::EndOfBody
            | Command::Abort
            | Command::Quit
            | Command::QuitNewConnection => {}
        }
        Ok(())
    }
}

/// The milter's answer to `SMFIC_OPTNEG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptNegReply {
    /// The milter's protocol version.
    pub version: u32,
    /// The actions it wants.
    pub actions: Actions,
    /// The protocol steps it skips or does not answer.
    pub protocol: ProtocolFlags,
    /// The macros it wants per stage (`SMFIF_SETSYMLIST`), names as sent
    /// (`j`, `{auth_authen}`).
    pub symlists: Vec<(MacroStage, Vec<String>)>,
}

/// A packet from the milter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `'O'`: the negotiation answer.
    OptNeg(OptNegReply),
    /// `SMFIR_ACCEPT` `'a'`: accept; no more commands for this message.
    Accept,
    /// `SMFIR_CONTINUE` `'c'`: go on.
    Continue,
    /// `SMFIR_DISCARD` `'d'`: accept and silently drop.
    Discard,
    /// `SMFIR_REJECT` `'r'`: refuse (5xx).
    Reject,
    /// `SMFIR_TEMPFAIL` `'t'`: refuse for now (4xx).
    Tempfail,
    /// `SMFIR_REPLYCODE` `'y'`: refuse with this reply (4xx or 5xx).
    ReplyCode(Reply),
    /// `SMFIR_SKIP` `'s'`: send no more body chunks.
    Skip,
    /// `SMFIR_PROGRESS` `'p'`: still working; wait on.
    Progress,
    /// `SMFIR_CONN_FAIL` `'f'`: fail the connection (treated as tempfail).
    ConnFail,
    /// `SMFIR_SHUTDOWN` `'4'`: the milter shuts down (treated as tempfail).
    Shutdown,
    /// `SMFIR_ADDHEADER` `'h'`: append a header field.
    AddHeader {
        /// Field name.
        name: String,
        /// Value, CRLF folds, as sent (leading space not yet added).
        value: String,
    },
    /// `SMFIR_INSHEADER` `'i'`: insert a header field at a position.
    InsertHeader {
        /// 0 = before the first field.
        index: u32,
        /// Field name.
        name: String,
        /// Value as for `AddHeader`.
        value: String,
    },
    /// `SMFIR_CHGHEADER` `'m'`: change (empty value: delete) the
    /// `index`-th field of this name.
    ChangeHeader {
        /// 1-based among the fields with this name.
        index: u32,
        /// Field name.
        name: String,
        /// New value; empty deletes.
        value: String,
    },
    /// `SMFIR_ADDRCPT` `'+'`.
    AddRcpt(String),
    /// `SMFIR_ADDRCPT_PAR` `'2'`: a recipient with ESMTP parameters.
    AddRcptPar {
        /// The address.
        rcpt: String,
        /// Its parameters.
        args: Vec<String>,
    },
    /// `SMFIR_DELRCPT` `'-'`.
    DelRcpt(String),
    /// `SMFIR_CHGFROM` `'e'`: a new envelope sender (`""` = `<>`).
    ChangeFrom {
        /// The address, `""` for the null sender.
        from: String,
        /// Its parameters.
        args: Vec<String>,
    },
    /// `SMFIR_REPLBODY` `'b'`: one piece of the replacement body.
    ReplaceBody(Vec<u8>),
    /// `SMFIR_QUARANTINE` `'q'`: hold the message, with a reason.
    Quarantine(String),
    /// `SMFIR_SETSYMLIST` `'l'` as its own packet (defined, rarely sent).
    SetSymList(MacroStage, Vec<String>),
}

fn be_u32<'a>(what: &'static str, data: &'a [u8]) -> Result<(u32, &'a [u8]), ProtocolError> {
    match data.split_first_chunk::<4>() {
        Some((n, rest)) => Ok((u32::from_be_bytes(*n), rest)),
        None => Err(ProtocolError::Malformed {
            what,
            why: "shorter than its 4-byte number".to_owned(),
        }),
    }
}

fn symlist(what: &'static str, bytes: &[u8]) -> Result<Vec<String>, ProtocolError> {
    let text = fields::text(what, bytes)?;
    Ok(text
        .split([' ', '\t', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn stage(what: &'static str, n: u32) -> Result<MacroStage, ProtocolError> {
    MacroStage::from_number(n).ok_or_else(|| ProtocolError::Malformed {
        what,
        why: format!("macro stage {n} (0 to 6 exist)"),
    })
}

impl Response {
    /// The reply's `SMFIR_*` name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Response::OptNeg(_) => "SMFIC_OPTNEG",
            Response::Accept => "SMFIR_ACCEPT",
            Response::Continue => "SMFIR_CONTINUE",
            Response::Discard => "SMFIR_DISCARD",
            Response::Reject => "SMFIR_REJECT",
            Response::Tempfail => "SMFIR_TEMPFAIL",
            Response::ReplyCode(_) => "SMFIR_REPLYCODE",
            Response::Skip => "SMFIR_SKIP",
            Response::Progress => "SMFIR_PROGRESS",
            Response::ConnFail => "SMFIR_CONN_FAIL",
            Response::Shutdown => "SMFIR_SHUTDOWN",
            Response::AddHeader { .. } => "SMFIR_ADDHEADER",
            Response::InsertHeader { .. } => "SMFIR_INSHEADER",
            Response::ChangeHeader { .. } => "SMFIR_CHGHEADER",
            Response::AddRcpt(_) => "SMFIR_ADDRCPT",
            Response::AddRcptPar { .. } => "SMFIR_ADDRCPT_PAR",
            Response::DelRcpt(_) => "SMFIR_DELRCPT",
            Response::ChangeFrom { .. } => "SMFIR_CHGFROM",
            Response::ReplaceBody(_) => "SMFIR_REPLBODY",
            Response::Quarantine(_) => "SMFIR_QUARANTINE",
            Response::SetSymList(..) => "SMFIR_SETSYMLIST",
        }
    }

    /// Parses one packet: the command byte and its data (without the length).
    pub fn parse(packet: &[u8]) -> Result<Response, ProtocolError> {
        let Some((&code, data)) = packet.split_first() else {
            return Err(ProtocolError::Length {
                len: 0,
                max: MAX_PACKET,
            });
        };
        let no_data = |r: Response| {
            if data.is_empty() {
                Ok(r)
            } else {
                Err(ProtocolError::Malformed {
                    what: r.name(),
                    why: format!("{} unexpected data bytes", data.len()),
                })
            }
        };
        match code {
            b'O' => {
                const W: &str = "SMFIC_OPTNEG reply";
                let (version, rest) = be_u32(W, data)?;
                let (actions, rest) = be_u32(W, rest)?;
                let (protocol, mut rest) = be_u32(W, rest)?;
                let mut symlists = Vec::new();
                while !rest.is_empty() {
                    let (n, tail) = be_u32(W, rest)?;
                    let end = tail.iter().position(|b| *b == 0).ok_or_else(|| {
                        ProtocolError::Malformed {
                            what: W,
                            why: "macro list not NUL-terminated".to_owned(),
                        }
                    })?;
                    if symlists.len() >= MacroStage::ALL.len() {
                        return Err(ProtocolError::Malformed {
                            what: W,
                            why: "more macro lists than stages".to_owned(),
                        });
                    }
                    symlists.push((stage(W, n)?, symlist(W, &tail[..end])?));
                    rest = &tail[end + 1..];
                }
                Ok(Response::OptNeg(OptNegReply {
                    version,
                    actions: Actions(actions),
                    protocol: ProtocolFlags(protocol),
                    symlists,
                }))
            }
            b'a' => no_data(Response::Accept),
            b'c' => no_data(Response::Continue),
            b'd' => no_data(Response::Discard),
            b'r' => no_data(Response::Reject),
            b't' => no_data(Response::Tempfail),
            b's' => no_data(Response::Skip),
            b'p' => no_data(Response::Progress),
            b'f' => no_data(Response::ConnFail),
            b'4' => no_data(Response::Shutdown),
            b'y' => {
                let parts = fields::cstrings("SMFIR_REPLYCODE", data, 1)?;
                Ok(Response::ReplyCode(fields::reply_code(parts[0])?))
            }
            b'h' => {
                const W: &str = "SMFIR_ADDHEADER";
                let p = fields::cstrings(W, data, 2)?;
                Ok(Response::AddHeader {
                    name: fields::header_name(W, p[0])?,
                    value: fields::header_value(W, p[1])?,
                })
            }
            b'i' | b'm' => {
                let w = if code == b'i' {
                    "SMFIR_INSHEADER"
                } else {
                    "SMFIR_CHGHEADER"
                };
                let (index, rest) = be_u32(w, data)?;
                let p = fields::cstrings(w, rest, 2)?;
                let name = fields::header_name(w, p[0])?;
                let value = fields::header_value(w, p[1])?;
                Ok(if code == b'i' {
                    Response::InsertHeader { index, name, value }
                } else {
                    Response::ChangeHeader { index, name, value }
                })
            }
            b'+' => {
                const W: &str = "SMFIR_ADDRCPT";
                let p = fields::cstrings(W, data, 1)?;
                Ok(Response::AddRcpt(fields::mailbox(W, p[0], false)?))
            }
            b'-' => {
                const W: &str = "SMFIR_DELRCPT";
                let p = fields::cstrings(W, data, 1)?;
                Ok(Response::DelRcpt(fields::mailbox(W, p[0], false)?))
            }
            b'2' => {
                const W: &str = "SMFIR_ADDRCPT_PAR";
                let (rcpt, args) = fields::one_or_two(W, data)?;
                Ok(Response::AddRcptPar {
                    rcpt: fields::mailbox(W, rcpt, false)?,
                    args: args.map_or(Ok(Vec::new()), |a| fields::esmtp_args(W, a))?,
                })
            }
            b'e' => {
                const W: &str = "SMFIR_CHGFROM";
                let (from, args) = fields::one_or_two(W, data)?;
                Ok(Response::ChangeFrom {
                    from: fields::mailbox(W, from, true)?,
                    args: args.map_or(Ok(Vec::new()), |a| fields::esmtp_args(W, a))?,
                })
            }
            b'b' => Ok(Response::ReplaceBody(data.to_vec())),
            b'q' => {
                const W: &str = "SMFIR_QUARANTINE";
                let p = fields::cstrings(W, data, 1)?;
                Ok(Response::Quarantine(fields::text(W, p[0])?))
            }
            b'l' => {
                const W: &str = "SMFIR_SETSYMLIST";
                let (n, rest) = be_u32(W, data)?;
                let p = fields::cstrings(W, rest, 1)?;
                Ok(Response::SetSymList(stage(W, n)?, symlist(W, p[0])?))
            }
            other => Err(ProtocolError::UnknownReply(char::from(other))),
        }
    }
}

/// Checks a packet length prefix: 1 (the command byte alone) up to
/// [`MAX_PACKET`].
pub fn packet_len(prefix: [u8; 4]) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(prefix);
    match usize::try_from(len) {
        Ok(n) if (1..=MAX_PACKET).contains(&n) => Ok(n),
        _ => Err(ProtocolError::Length {
            len: u64::from(len),
            max: MAX_PACKET,
        }),
    }
}

/// Splits a byte stream from the milter into packets (for callers that do
/// their own I/O, and the fuzz target). Buffers at most one packet.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete packet, parsed; `Ok(None)` when more bytes are
    /// needed. A bad length is reported as soon as its 4 bytes are in.
    pub fn next_response(&mut self) -> Result<Option<Response>, ProtocolError> {
        let Some(prefix) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = packet_len(*prefix)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let packet: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
        Response::parse(&packet).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn enc(c: &Command<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn optneg_is_three_numbers() {
        let bytes = enc(&Command::OptNeg {
            version: 6,
            actions: Actions::ALL,
            protocol: ProtocolFlags::OFFERED,
        });
        assert_eq!(
            bytes,
            [
                0, 0, 0, 13, b'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xf7, 0xff
            ]
        );
    }

    #[test]
    fn commands_encode_as_documented() {
        let pairs = vec![("j".to_owned(), "mx.example".to_owned())];
        assert_eq!(
            enc(&Command::Macro {
                stage: MacroStage::Connect,
                pairs: &pairs
            }),
            b"\0\0\0\x0fDCj\0mx.example\0"
        );
        assert_eq!(
            enc(&Command::Connect {
                hostname: "[192.0.2.1]",
                family: Family::Inet4,
                port: 25,
                address: "192.0.2.1"
            }),
            b"\0\0\0\x1aC[192.0.2.1]\x004\0\x19192.0.2.1\0"
        );
        assert_eq!(
            enc(&Command::Connect {
                hostname: "localhost",
                family: Family::Unknown,
                port: 0,
                address: ""
            }),
            b"\0\0\0\x0cClocalhost\0U"
        );
        let args = vec!["<a@example.com>".to_owned(), "SIZE=10".to_owned()];
        assert_eq!(
            enc(&Command::Mail(&args)),
            b"\0\0\0\x19M<a@example.com>\0SIZE=10\0"
        );
        assert_eq!(enc(&Command::EndOfBody), b"\0\0\0\x01E");
        assert_eq!(
            enc(&Command::Header {
                name: "From",
                value: "a@example.com"
            }),
            b"\0\0\0\x14LFrom\0a@example.com\0"
        );
    }

    #[test]
    fn nul_in_our_fields_and_long_chunks_are_refused_without_output() {
        let mut out = vec![1];
        assert_eq!(
            Command::Helo("a\0b").encode(&mut out),
            Err(EncodeError::Nul { field: "HELO name" })
        );
        assert_eq!(
            Command::Body(&vec![0; 65536]).encode(&mut out),
            Err(EncodeError::ChunkTooLong(65536))
        );
        assert_eq!(out, vec![1]);
        Command::Body(&vec![0; 65535]).encode(&mut out).unwrap();
        assert_eq!(out.len(), 1 + 4 + 1 + 65535);
    }

    #[test]
    fn lengths_are_bounded() {
        assert!(packet_len([0, 0, 0, 0]).is_err());
        assert_eq!(packet_len([0, 0, 0, 1]).unwrap(), 1);
        assert_eq!(packet_len([0, 0x10, 0, 0]).unwrap(), MAX_PACKET);
        assert!(packet_len([0, 0x10, 0, 1]).is_err());
        assert!(packet_len([0xff; 4]).is_err());
    }

    #[test]
    fn every_reply_parses() {
        let cases: Vec<(&[u8], Response)> = vec![
            (b"a", Response::Accept),
            (b"c", Response::Continue),
            (b"d", Response::Discard),
            (b"r", Response::Reject),
            (b"t", Response::Tempfail),
            (b"s", Response::Skip),
            (b"p", Response::Progress),
            (b"f", Response::ConnFail),
            (b"4", Response::Shutdown),
            (
                b"hX-Spam\0yes\0",
                Response::AddHeader {
                    name: "X-Spam".into(),
                    value: "yes".into(),
                },
            ),
            (
                b"i\0\0\0\0DKIM-Signature\0v=1;\n\tb=x\0",
                Response::InsertHeader {
                    index: 0,
                    name: "DKIM-Signature".into(),
                    value: "v=1;\r\n\tb=x".into(),
                },
            ),
            (
                b"m\0\0\0\x02Subject\0\0",
                Response::ChangeHeader {
                    index: 2,
                    name: "Subject".into(),
                    value: String::new(),
                },
            ),
            (
                b"+<b@example.com>\0",
                Response::AddRcpt("b@example.com".into()),
            ),
            (
                b"-<b@example.com>\0",
                Response::DelRcpt("b@example.com".into()),
            ),
            (
                b"2<b@example.com>\0NOTIFY=NEVER\0",
                Response::AddRcptPar {
                    rcpt: "b@example.com".into(),
                    args: vec!["NOTIFY=NEVER".into()],
                },
            ),
            (
                b"e<>\0",
                Response::ChangeFrom {
                    from: String::new(),
                    args: vec![],
                },
            ),
            (
                b"bnew body\r\n",
                Response::ReplaceBody(b"new body\r\n".to_vec()),
            ),
            (
                b"qvirus found\0",
                Response::Quarantine("virus found".into()),
            ),
            (
                b"l\0\0\0\x02i {auth_authen}\0",
                Response::SetSymList(
                    MacroStage::MailFrom,
                    vec!["i".into(), "{auth_authen}".into()],
                ),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(Response::parse(bytes).unwrap(), want, "{bytes:?}");
        }
        let Response::ReplyCode(reply) = Response::parse(b"y554 5.7.1 no\0").unwrap() else {
            panic!("not a reply code");
        };
        assert_eq!(reply.code, 554);
    }

    #[test]
    fn optneg_reply_with_symlists() {
        let mut data = b"O\0\0\0\x06\0\0\0\x01\0\0\0\x10".to_vec();
        data.extend_from_slice(b"\0\0\0\x00j {daemon_name}\0\0\0\0\x05i\0");
        let Response::OptNeg(reply) = Response::parse(&data).unwrap() else {
            panic!("not optneg");
        };
        assert_eq!(reply.version, 6);
        assert_eq!(reply.actions, Actions::ADD_HEADERS);
        assert_eq!(reply.protocol, ProtocolFlags::NO_BODY);
        assert_eq!(
            reply.symlists,
            vec![
                (
                    MacroStage::Connect,
                    vec!["j".into(), "{daemon_name}".into()]
                ),
                (MacroStage::EndOfMessage, vec!["i".into()])
            ]
        );
        for bad in [
            &b"O\0\0\0\x06\0\0\0\x01"[..],
            b"O\0\0\0\x06\0\0\0\x01\0\0\0\x10\0\0\0\x09j\0",
            b"O\0\0\0\x06\0\0\0\x01\0\0\0\x10\0\0\0\x00j",
        ] {
            assert!(Response::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_replies_are_refused() {
        for bad in [
            &b""[..],
            b"z",
            b"ax",
            b"hX-Spam\0yes",
            b"hX Spam\0yes\0",
            b"hX-Spam\0yes\r\nBcc: x@example.net\0",
            b"i\0\0",
            b"+not an address\0",
            b"y250 ok\0",
            b"qreason\nwith newline\0",
        ] {
            assert!(Response::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn frame_reader_splits_and_bounds() {
        let mut r = FrameReader::new();
        r.push(&[0, 0, 0, 1, b'c', 0, 0]);
        assert_eq!(r.next_response().unwrap(), Some(Response::Continue));
        assert_eq!(r.next_response().unwrap(), None);
        r.push(&[0, 1, b'a']);
        assert_eq!(r.next_response().unwrap(), Some(Response::Accept));
        r.push(&[0x7f, 0, 0, 0]);
        assert!(r.next_response().is_err());
    }
}

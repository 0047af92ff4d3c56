//! The decoded message view: a bounded walk over a message's MIME tree that
//! yields what content rules test — top-level header fields (raw and RFC 2047
//! decoded), the subject, the body text, and the attachments with their file
//! names, declared and detected types, decoded sizes and text.
//!
//! What counts as what (ESA's meaning of "attachment": a named part or any
//! part that is not body text):
//! - **body text**: `text/plain` and `text/html` leaves without a file name
//!   and not `Content-Disposition: attachment`, in message order, HTML
//!   reduced to its visible text, all joined by `"\n"`. Both halves of a
//!   `multipart/alternative` are included: content hidden in either is seen.
//! - **attachment**: every other leaf, and every `message/rfc822` (or
//!   `message/global`) part. The forwarded message is walked too: its
//!   subject and body text become the attachment's `text`, its own
//!   attachments are listed (with their greater `depth`).
//! - A multipart whose boundary never occurs is shown as body text
//!   (`text/plain`), like a mail client would.
//! - Preambles and epilogues are ignored (RFC 2046 §5.1.1), except when they
//!   look like MIME structure (a `--` line or a `Content-` field) or the
//!   entity has two Content-Type fields: then their text is body text too.
//!   Ambiguous structure is an evasion technique (one parser sees a part
//!   where another sees an epilogue); the filter scans both readings' text.
//!   Of several `boundary` parameters, the first that occurs as a delimiter
//!   is used. Of repeated Content-Type, Content-Disposition or
//!   Content-Transfer-Encoding fields, the first is used.
//! - Zero-width characters and soft hyphens (U+200B–U+200D, U+2060, U+FEFF,
//!   U+00AD) are removed from all text, so `fr\u{ad}ee` is the word "free".
//!
//! # Security
//! The message is hostile. The walk never panics and its memory is bounded
//! whatever the input: at most `max_parts` entities and `max_depth` levels
//! are walked (recursion depth ≤ `max_depth`), the body text and all
//! attachment texts together each keep at most `max_text` bytes, top-level
//! header fields at most [`MAX_HEADER_FIELDS`] and `max_text` bytes; a
//! non-text attachment is decoded in one pass that keeps only the first
//! 32 KiB (`magic::PREFIX`) for type detection. Only a `message/rfc822` part
//! with a base64 or quoted-printable encoding is decoded whole (it must be
//! walked); all such copies together are at most the message's size (past
//! that, the part is listed but not walked). When a limit cuts
//! anything, `truncated` is set: a filter should treat a truncated view with
//! suspicion rather than as clean.
//!
//! # Standards
//! RFC 5322 (message format), RFC 2045 (MIME headers, transfer encodings,
//! §5.2 default type), RFC 2046 (media types, §5.1 multipart, §5.1.5 digest
//! default message/rfc822, §5.2 message/rfc822), RFC 2047 (encoded words),
//! RFC 2183 (Content-Disposition), RFC 2231 (parameter continuations and
//! charsets), RFC 6532 (UTF-8 headers).

mod decode;
mod header;
pub use header::decode_unstructured;
mod html;
mod magic;
mod multipart;

use std::borrow::Cow;

use decode::{Cte, Decoded};
use header::{MimeFields, Params};

/// Top-level header fields kept in [`MessageView::headers`]; more are dropped
/// (and `truncated` set).
pub const MAX_HEADER_FIELDS: usize = 1000;

/// Bounds on what [`MessageView::parse`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewLimits {
    /// Bytes of decoded text kept for the body text, and for all attachment
    /// texts together (so per part too); also the bytes of top-level header
    /// fields kept. Default 1 MiB.
    pub max_text: usize,
    /// Entities walked — the message itself, each multipart container, each
    /// leaf, each forwarded message — in message order; the rest are not
    /// seen. Default 500.
    pub max_parts: usize,
    /// Deepest [`Attachment::depth`] walked: the children of a multipart at
    /// depth `d`, and the message inside a `message/rfc822` at `d`, are at
    /// `d + 1`. Default 20.
    pub max_depth: usize,
}

impl Default for ViewLimits {
    fn default() -> Self {
        ViewLimits {
            max_text: 1024 * 1024,
            max_parts: 500,
            max_depth: 20,
        }
    }
}

/// One top-level header field (at most [`MAX_HEADER_FIELDS`] are kept, and
/// `max_text` bytes of them in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as written (case kept).
    pub name: String,
    /// The unfolded raw value (surrounding white space trimmed; bytes that
    /// are not UTF-8 replaced).
    pub raw: String,
    /// The value with RFC 2047 encoded words decoded.
    pub decoded: String,
}

/// One attachment: any part that is not body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name: Content-Disposition `filename`, else Content-Type
    /// `name`; RFC 2231 (continuations, charset) and RFC 2047 decoded, trimmed.
    pub filename: Option<String>,
    /// Lower-case `type/subtype` from Content-Type (default per RFC 2045 §5.2).
    pub declared_type: String,
    /// The type found from the decoded content's first bytes (magic numbers:
    /// executables, archives, OOXML/ODF, PDF, images, ISO images …); `None`
    /// when not recognised (plain text, for one) or for `message/rfc822`.
    pub detected_type: Option<String>,
    /// Decoded size in octets.
    pub size: u64,
    /// Decoded text when the part is textual: `text/*` (HTML reduced to its
    /// visible text), or a `message/rfc822`'s subject and body text. Bounded.
    pub text: Option<String>,
    /// Nesting depth: 0 for the message itself (a single-part message whose
    /// body is not text), 1 for a part of the top multipart, and so on (see
    /// [`ViewLimits::max_depth`]).
    pub depth: usize,
}

/// A decoded, bounded view of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageView {
    /// Raw octets of the message.
    pub size: u64,
    /// Top-level header fields in order.
    pub headers: Vec<HeaderField>,
    /// The subject, RFC 2047 decoded and unfolded (`""` when absent).
    pub subject: String,
    /// Body text (text/plain and tag-stripped text/html parts that are not
    /// attachments), decoded to UTF-8, joined by `"\n"`, bounded.
    pub body_text: String,
    /// The attachments, in message order.
    pub attachments: Vec<Attachment>,
    /// Some text, header fields or parts were cut by the limits: what a rule
    /// did not find may be in the part not seen.
    pub truncated: bool,
}

impl MessageView {
    /// Walks `raw` (a whole RFC 5322 message) within `limits`. Never fails:
    /// broken structure yields a best-effort view.
    pub fn parse(raw: &[u8], limits: &ViewLimits) -> MessageView {
        let size = raw.len() as u64;
        // An mbox "From " separator line (a saved .eml often has one) is not a header field.
        let raw = if raw.starts_with(b"From ") {
            memchr::memchr(b'\n', raw).map_or(&raw[raw.len()..], |i| &raw[i + 1..])
        } else {
            raw
        };
        let mut walker = Walker {
            limits,
            parts: 0,
            truncated: false,
            view: MessageView {
                size,
                ..MessageView::default()
            },
            header_bytes: 0,
            attachment_text: 0,
            decode_budget: raw.len(),
        };
        walker.entity(
            raw,
            Context {
                depth: 0,
                sink: Sink::Body,
                in_digest: false,
                is_message: true,
                is_top: true,
            },
        );
        let mut view = walker.view;
        view.truncated = walker.truncated;
        view
    }

    /// The top-level header fields named `name` (case-insensitive), in order.
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a HeaderField> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    }
}

/// Where the text of a body part goes.
#[derive(Debug, Clone, Copy)]
enum Sink {
    /// The message's body text.
    Body,
    /// The text of the `message/rfc822` attachment at this index.
    Attachment(usize),
}

#[derive(Debug, Clone, Copy)]
struct Context {
    depth: usize,
    sink: Sink,
    /// The parent is multipart/digest: the default type is message/rfc822.
    in_digest: bool,
    /// This entity is a message (the top one, or a message/rfc822 body).
    is_message: bool,
    is_top: bool,
}

struct Walker<'l> {
    limits: &'l ViewLimits,
    /// Entities walked so far.
    parts: usize,
    truncated: bool,
    view: MessageView,
    /// Bytes of top-level header fields kept.
    header_bytes: usize,
    /// Bytes of attachment text kept, all attachments together.
    attachment_text: usize,
    /// Bytes still allowed for decoded copies of encoded message/rfc822 parts.
    decode_budget: usize,
}

impl Walker<'_> {
    fn entity(&mut self, raw: &[u8], cx: Context) {
        if self.parts >= self.limits.max_parts {
            self.truncated = true;
            return;
        }
        self.parts += 1;

        let mut mime = MimeFields::default();
        let mut subject: Option<&[u8]> = None;
        let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
        let mut dropped = false;
        let body = header::split(raw, |name, value| {
            mime.note(name, value);
            if cx.is_message
                && subject.is_none()
                && name.trim_ascii().eq_ignore_ascii_case(b"subject")
            {
                subject = Some(value);
            }
            if cx.is_top {
                if fields.len() < MAX_HEADER_FIELDS {
                    fields.push((name, value));
                } else {
                    dropped = true;
                }
            }
        });
        self.truncated |= dropped;
        if cx.is_top {
            self.keep_headers(&fields);
        }
        if cx.is_message {
            let mut text = subject.map(header::decode_unstructured).unwrap_or_default();
            match cx.sink {
                Sink::Body => {
                    self.truncated |= decode::truncate_at_char(&mut text, self.limits.max_text);
                    self.view.subject = text;
                }
                Sink::Attachment(_) => {
                    if !text.is_empty() {
                        self.append(cx.sink, text);
                    }
                }
            }
        }

        let content_type = mime.content_type.map(Params::parse);
        let (kind, subtype, ct_params) = match content_type {
            Some(p)
                if !p.kind.is_empty() && p.subtype.as_deref().is_some_and(|s| !s.is_empty()) =>
            {
                let subtype = p.subtype.clone().unwrap_or_default();
                (p.kind.clone(), subtype, p)
            }
            // RFC 2045 §5.2 (absent or invalid → text/plain), RFC 2046 §5.1.5 (digest).
            _ if cx.in_digest => ("message".to_owned(), "rfc822".to_owned(), Params::default()),
            _ => ("text".to_owned(), "plain".to_owned(), Params::default()),
        };
        let cte = Cte::parse(mime.encoding);
        let disposition = mime.disposition.map(Params::parse).unwrap_or_default();
        // RFC 2231 continuations are joined here (before charset decoding);
        // the plain and RFC 2047 forms come from mail-parser.
        let filename = mime
            .disposition
            .and_then(|v| header::rfc2231_param(v, "filename"))
            .or_else(|| disposition.param("filename").map(str::to_owned))
            .or_else(|| {
                mime.content_type
                    .and_then(|v| header::rfc2231_param(v, "name"))
            })
            .or_else(|| ct_params.param("name").map(str::to_owned));
        let filename = filename
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        let declared_type = format!("{kind}/{subtype}");

        if kind == "multipart" {
            // Two boundary parameters are ambiguous (clients differ on which
            // wins): the first that occurs as a delimiter is used.
            let room = self.limits.max_parts.saturating_sub(self.parts);
            let split = ct_params
                .params("boundary")
                .take(4)
                .find_map(|boundary| multipart::split(body, boundary, room));
            if let Some(split) = split {
                if cx.depth >= self.limits.max_depth {
                    self.truncated = true;
                    return;
                }
                self.truncated |= split.more;
                let child = Context {
                    depth: cx.depth + 1,
                    sink: cx.sink,
                    in_digest: subtype == "digest",
                    is_message: false,
                    is_top: false,
                };
                let ambiguous = mime.content_types > 1;
                if ambiguous || looks_structured(split.preamble) {
                    self.body_text(split.preamble, Cte::Identity, None, false, cx.sink);
                }
                for part in split.parts {
                    self.entity(part, child);
                }
                if ambiguous || looks_structured(split.epilogue) {
                    self.body_text(split.epilogue, Cte::Identity, None, false, cx.sink);
                }
                return;
            }
            // No usable boundary: show the body as text, as a mail client would.
            self.body_text(
                body,
                Cte::Identity,
                ct_params.param("charset"),
                false,
                cx.sink,
            );
            return;
        }

        if kind == "message" && (subtype == "rfc822" || subtype == "global") {
            // RFC 2046 §5.2.1 allows only 7bit, 8bit and binary here, but
            // encoded ones are seen. Decoded copies are paid from a budget of
            // the message's size, so encoded messages nested in encoded
            // messages cannot multiply memory by the depth.
            let inner: Option<Cow<'_, [u8]>> = match cte {
                Cte::Identity | Cte::Unknown => Some(Cow::Borrowed(body)),
                Cte::Base64 | Cte::QuotedPrintable if body.len() <= self.decode_budget => {
                    self.decode_budget -= body.len();
                    // The decoded form is never longer than the encoded one.
                    Some(Cow::Owned(decode::decode(body, cte, body.len()).prefix))
                }
                Cte::Base64 | Cte::QuotedPrintable => None,
            };
            let Some(inner) = inner else {
                self.truncated = true;
                self.view.attachments.push(Attachment {
                    filename,
                    declared_type,
                    detected_type: None,
                    size: decode::decode(body, cte, 0).size,
                    text: None,
                    depth: cx.depth,
                });
                return;
            };
            let index = self.view.attachments.len();
            self.view.attachments.push(Attachment {
                filename,
                declared_type,
                detected_type: None,
                size: inner.len() as u64,
                text: Some(String::new()),
                depth: cx.depth,
            });
            if cx.depth >= self.limits.max_depth {
                self.truncated = true;
                return;
            }
            self.entity(
                &inner,
                Context {
                    depth: cx.depth + 1,
                    sink: Sink::Attachment(index),
                    in_digest: false,
                    is_message: true,
                    is_top: false,
                },
            );
            return;
        }

        let is_html = kind == "text" && subtype == "html";
        let is_body = kind == "text"
            && (subtype == "plain" || is_html)
            && filename.is_none()
            && !disposition.kind.eq_ignore_ascii_case("attachment");
        if is_body {
            self.body_text(body, cte, ct_params.param("charset"), is_html, cx.sink);
            return;
        }

        // An attachment.
        let textual = kind == "text";
        let text_room = self.limits.max_text.saturating_sub(self.attachment_text);
        let keep = if textual {
            magic::PREFIX.max(text_room.saturating_mul(4))
        } else {
            magic::PREFIX
        };
        let decoded = decode::decode(body, cte, keep);
        let detected_type =
            magic::detect(&decoded.prefix[..decoded.prefix.len().min(magic::PREFIX)])
                .map(str::to_owned);
        let text = textual.then(|| {
            let (text, cut) = to_text(&decoded, ct_params.param("charset"), is_html, text_room);
            self.truncated |= cut;
            self.attachment_text += text.len();
            text
        });
        self.view.attachments.push(Attachment {
            filename,
            declared_type,
            detected_type,
            size: decoded.size,
            text,
            depth: cx.depth,
        });
    }

    /// Keeps the top-level fields within the byte budget.
    fn keep_headers(&mut self, fields: &[(&[u8], &[u8])]) {
        for &(name, value) in fields {
            let room = self.limits.max_text.saturating_sub(self.header_bytes);
            let name = String::from_utf8_lossy(name.trim_ascii()).into_owned();
            let mut raw = header::unfold(value);
            let mut decoded = header::decode_unstructured(value);
            let cut_raw = decode::truncate_at_char(&mut raw, room / 2);
            let cut_decoded = decode::truncate_at_char(&mut decoded, room / 2);
            self.truncated |= cut_raw || cut_decoded;
            self.header_bytes += name.len() + raw.len() + decoded.len();
            self.view.headers.push(HeaderField { name, raw, decoded });
        }
    }

    /// Decodes a body-text part into `sink`, within the sink's budget.
    fn body_text(
        &mut self,
        body: &[u8],
        cte: Cte,
        charset: Option<&str>,
        is_html: bool,
        sink: Sink,
    ) {
        // Room for the text after the "\n" that joins it to what is there.
        let used = match sink {
            Sink::Body => self.view.body_text.len(),
            Sink::Attachment(_) => self.attachment_text,
        };
        let room = self
            .limits
            .max_text
            .saturating_sub(used + usize::from(used > 0));
        let decoded = decode::decode(body, cte, room.saturating_mul(4));
        let (text, cut) = to_text(&decoded, charset, is_html, room);
        self.truncated |= cut;
        self.append(sink, text);
    }

    /// Appends a piece of text to its sink, joined by a line break.
    fn append(&mut self, sink: Sink, text: String) {
        if text.is_empty() {
            return;
        }
        let target = match sink {
            Sink::Body => &mut self.view.body_text,
            Sink::Attachment(i) => {
                let Some(t) = self
                    .view
                    .attachments
                    .get_mut(i)
                    .and_then(|a| a.text.as_mut())
                else {
                    return;
                };
                self.attachment_text += text.len() + usize::from(!t.is_empty());
                t
            }
        };
        if target.is_empty() {
            *target = text;
        } else {
            target.push('\n');
            target.push_str(&text);
        }
    }
}

/// A preamble or epilogue with a line that looks like MIME structure (a
/// `--` delimiter-like line or a `Content-` field): text a parser that reads
/// the boundaries differently would show as a part. RFC 2046 §5.1.1 says to
/// ignore preambles and epilogues; a filter scans such ones anyway, so that
/// ambiguous structure cannot hide content from it.
fn looks_structured(text: &[u8]) -> bool {
    text.split(|&b| b == b'\n').any(|line| {
        let line = line.trim_ascii_start();
        line.starts_with(b"--")
            || line
                .get(..8)
                .is_some_and(|l| l.eq_ignore_ascii_case(b"content-"))
    })
}

/// Decoded bytes → UTF-8 text (HTML reduced to its visible text, invisible
/// characters removed), at most `room` bytes; true when anything was cut.
fn to_text(decoded: &Decoded, charset: Option<&str>, is_html: bool, room: usize) -> (String, bool) {
    let mut text = decode::to_utf8(&decoded.prefix, charset);
    if is_html {
        text = html::to_text(&text);
    }
    if text.contains(is_invisible) {
        text.retain(|c| !is_invisible(c));
    }
    let cut = decode::truncate_at_char(&mut text, room);
    (text, cut || decoded.is_cut())
}

/// Characters that render as nothing and split words: zero-width space,
/// non-joiner, joiner, word joiner, BOM, soft hyphen.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}'
    )
}

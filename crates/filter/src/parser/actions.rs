//! The action half of the parser: `then ACTION; ACTION …`, each action's values
//! validated where they are read (reply codes, header fields, addresses, names).
//!
//! # Security
//! Values a rule puts on the wire are checked here so a rule cannot inject a reply line
//! or a header line (RFC 5321 §4.2, RFC 5322 §2.2).
//!
//! # Standards
//! RFC 5321 §4.2.1 (reply codes), RFC 3463 §3 (enhanced status codes), RFC 5322 §3.6.8
//! (field names), RFC 5321 §4.1.2 (addresses).

use postern_proto::{EnhancedCode, Limits, Mailbox};

use super::values::{bad_field_name, bad_identifier, is_field_name, is_identifier, parse_enhanced};
use super::{MAX_HEADER_VALUE, MAX_REPLY_TEXT, PResult, Parser};
use crate::ast::{Action, NameKind, RuleReply};
use crate::lexer::{Tok, Token};

impl Parser<'_> {
    pub(super) fn actions(&mut self) -> PResult<Vec<Action>> {
        let mut out: Vec<Action> = Vec::new();
        let mut final_at: Option<Token> = None;
        loop {
            let at = self.peek().clone();
            let action = self.action()?;
            if let Some(f) = &final_at
                && action != Action::Stop
            {
                self.value_error(
                    &at,
                    format!(
                        "`{action}` follows a final action (line {}, column {}) and would never run: put it before, or in another rule",
                        f.line, f.column
                    ),
                );
            }
            if action.is_final() && final_at.is_none() {
                final_at = Some(at);
            }
            out.push(action);
            if !self.eat_punct(';') || self.peek().tok == Tok::Punct('}') {
                break;
            }
        }
        Ok(out)
    }

    fn action(&mut self) -> PResult<Action> {
        const ACTIONS: &str = "an action: accept, drop, reject, bounce, quarantine, add-header, remove-header, change-header, prefix-subject, redirect, bcc, notify, require-tls or stop";
        let w = match &self.peek().tok {
            Tok::Word(w) => w.to_ascii_lowercase(),
            _ => return Err(self.expected(ACTIONS)),
        };
        self.advance();
        Ok(match w.as_str() {
            "accept" => Action::Accept,
            "drop" => Action::Drop,
            "stop" => Action::Stop,
            "require-tls" => Action::RequireTls,
            "reject" => Action::Reject(self.reply(false)?),
            "bounce" => Action::Bounce(self.reply(true)?),
            "quarantine" => {
                let (name, tok) = self.expect_str("the quarantine name in double quotes")?;
                if !is_identifier(&name) {
                    self.value_error(&tok, bad_identifier("quarantine", &name));
                }
                self.name_ref(NameKind::Quarantine, &name, &tok);
                Action::Quarantine { name }
            }
            "add-header" | "change-header" => {
                let name = self.header_name()?;
                let (value, tok) = self.expect_str("the header field value in double quotes")?;
                self.check_header_value(&value, &tok);
                if w == "add-header" {
                    Action::AddHeader { name, value }
                } else {
                    Action::ChangeHeader { name, value }
                }
            }
            "remove-header" => Action::RemoveHeader {
                name: self.header_name()?,
            },
            "prefix-subject" => {
                let (text, tok) = self.expect_str("the subject prefix in double quotes")?;
                if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
                    self.value_error(
                        &tok,
                        "a subject prefix must be 1 to 200 bytes without control characters (no CR/LF)",
                    );
                }
                Action::PrefixSubject { text }
            }
            "redirect" => Action::Redirect {
                address: self.address()?,
            },
            "bcc" => Action::Bcc {
                address: self.address()?,
            },
            "notify" => {
                let address = self.address()?;
                self.expect_word("template", "`template \"name\"` after the address")?;
                let (template, tok) = self.expect_str("the template name in double quotes")?;
                if !is_identifier(&template) {
                    self.value_error(&tok, bad_identifier("template", &template));
                }
                self.name_ref(NameKind::Template, &template, &tok);
                Action::Notify { address, template }
            }
            _ => {
                self.pos -= 1;
                return Err(self.expected(ACTIONS));
            }
        })
    }

    fn header_name(&mut self) -> PResult<String> {
        let (name, tok) = self.expect_str("the header field name in double quotes")?;
        if !is_field_name(&name) {
            self.value_error(&tok, bad_field_name(&name));
        }
        Ok(name)
    }

    fn check_header_value(&mut self, value: &str, at: &Token) {
        // RFC 5322 §2.2: a field body may not contain CR or LF except as folding; we
        // never fold a value a rule gives, so none at all (header injection).
        if value.chars().any(|c| c.is_control() && c != '\t') {
            self.value_error(
                at,
                "a header value may not contain CR, LF or other control characters (only tab)",
            );
        } else if value.len() > MAX_HEADER_VALUE {
            self.value_error(
                at,
                format!("a header value may be at most {MAX_HEADER_VALUE} bytes (RFC 5322 §2.1.1 line limit)"),
            );
        }
    }

    fn address(&mut self) -> PResult<String> {
        let (addr, tok) = self.expect_str("an email address in double quotes")?;
        if Mailbox::parse(&addr, &Limits::default()).is_err() {
            self.value_error(
                &tok,
                format!("{addr:?} is not a valid address: expected local-part@domain (RFC 5321 §4.1.2), without <>"),
            );
        }
        Ok(addr)
    }

    /// `CODE "X.Y.Z" "text"`.
    fn reply(&mut self, bounce: bool) -> PResult<RuleReply> {
        let code_tok = self.advance();
        let Tok::Num(n) = code_tok.tok else {
            self.unadvance(&code_tok);
            return Err(self.expected("a reply code such as 550"));
        };
        let (enh, enh_tok) =
            self.expect_str("the enhanced status code in quotes, such as \"5.7.1\"")?;
        let (text, text_tok) = self.expect_str("the reply text in double quotes")?;
        // RFC 5321 §4.2.1: 4yz transient, 5yz permanent; y in 0..=5. 421 closes the
        // session (§3.8), which is not a filter's call.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let code = if n.fract() == 0.0 && (0.0..1000.0).contains(&n) {
            n as u16
        } else {
            0
        };
        let allowed = if bounce {
            (500..=559).contains(&code)
        } else {
            (400..=459).contains(&code) || (500..=559).contains(&code)
        };
        if !allowed || code == 421 {
            let allowed = if bounce {
                "a bounce needs a 5xx code (550 to 559 typically; RFC 5321 §4.2.1)"
            } else {
                "a 4xx (temporary, not 421) or 5xx (permanent) code with a second digit 0 to 5 (RFC 5321 §4.2.1)"
            };
            let src = &self.src[code_tok.start..code_tok.end];
            self.value_error(&code_tok, format!("bad reply code {src}: {allowed}"));
        }
        let enhanced = match parse_enhanced(&enh) {
            Some(e) if code / 100 == u16::from(e.class) => e,
            Some(e) => {
                self.value_error(
                    &enh_tok,
                    format!("enhanced code {enh:?} has class {} but the reply code is {code}: the first digits must agree (RFC 3463 §3.1)", e.class),
                );
                e
            }
            None => {
                self.value_error(
                    &enh_tok,
                    format!("bad enhanced status code {enh:?}: expected class.subject.detail such as \"5.7.1\" (class 4 or 5, then 1 to 3 digits each; RFC 3463 §3)"),
                );
                EnhancedCode::new(5, 0, 0)
            }
        };
        if text.is_empty()
            || text.len() > MAX_REPLY_TEXT
            || !text.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            self.value_error(
                &text_tok,
                format!("reply text must be 1 to {MAX_REPLY_TEXT} printable ASCII characters (no CR/LF: RFC 5321 §4.2)"),
            );
        }
        Ok(RuleReply {
            code,
            enhanced,
            text,
        })
    }
}

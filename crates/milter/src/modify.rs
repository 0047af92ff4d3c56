//! The milter's verdict ([`Verdict`], [`MilterResult`]), its modifications
//! ([`Modification`]) and [`apply`], which applies them to a header list and
//! a recipient list the way Sendmail and Postfix do.
//!
//! Header values here are the text after the colon, leading white space
//! included (`(" Subject text")`), folds as CRLF + WSP, no final CRLF: the
//! same shape [`crate::run`] takes. The client adds the one leading space a
//! milter leaves out unless it negotiated `SMFIP_HDR_LEADSPC`.
//!
//! # Index semantics (as Sendmail's libmilter documents them)
//! - `SMFIR_CHGHEADER` (`smfi_chgheader`): `index` counts only the fields of
//!   that name (case-insensitive), from 1; 0 is taken as 1. An empty value
//!   deletes the field. When there are fewer fields of that name than
//!   `index`, a non-empty value is appended as a new field (Sendmail and
//!   Postfix both do this); an empty one does nothing.
//! - `SMFIR_INSHEADER` (`smfi_insheader`): `index` counts every field, from
//!   0 = before the first; past the end appends. The list counted is the
//!   caller's header list as given to [`crate::run`] (our own `Received:`
//!   is in it if the caller put it there).
//! - Modifications apply in the order the milter sent them, each on the
//!   result of the previous one.
//!
//! # Security
//! Everything in a [`Modification`] was checked by the codec (header names
//! and folds, mailboxes, parameters); [`apply`] only places it.

use postern_proto::{EnhancedCode, Reply};

use crate::Stage;

/// `550 5.7.1 Command rejected`: a reject without a milter reply code
/// (Sendmail's and Postfix's text).
pub fn default_reject() -> Reply {
    Reply::new(550, Some(EnhancedCode::new(5, 7, 1)), "Command rejected")
}

/// `451 4.7.1 Service unavailable - try again later`: a tempfail without a
/// milter reply code (Sendmail's and Postfix's text).
pub fn default_tempfail() -> Reply {
    Reply::new(
        451,
        Some(EnhancedCode::new(4, 7, 1)),
        "Service unavailable - try again later",
    )
}

/// The milter's decision on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `SMFIR_ACCEPT`: accept; the milter wants to see no more of it (no
    /// modifications).
    Accept,
    /// `SMFIR_CONTINUE` at end of message: accept with the modifications.
    Continue,
    /// `SMFIR_DISCARD`: accept and drop silently (log it).
    Discard,
    /// `SMFIR_REJECT` or a 5xx `SMFIR_REPLYCODE`: answer this reply (`550
    /// 5.7.1 Command rejected` when the milter gave none).
    Reject(Reply),
    /// `SMFIR_TEMPFAIL`, a 4xx `SMFIR_REPLYCODE`, `SMFIR_CONN_FAIL` or
    /// `SMFIR_SHUTDOWN`: answer this reply (`451 4.7.1 Service
    /// unavailable - try again later` when the milter gave none). A `421`
    /// reply means the caller closes the session after sending it (RFC 5321
    /// §3.8).
    Tempfail(Reply),
}

impl Verdict {
    /// Whether the message goes on (accept or continue).
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accept | Verdict::Continue)
    }
}

/// One change the milter asked for at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modification {
    /// Append a header field.
    AddHeader {
        /// Field name.
        name: String,
        /// Value after the colon, leading space included.
        value: String,
    },
    /// Insert a header field before the `index`-th (0 = top).
    InsertHeader {
        /// Position among all fields.
        index: u32,
        /// Field name.
        name: String,
        /// Value after the colon, leading space included.
        value: String,
    },
    /// Change the `index`-th field named `name` (1-based); an empty value
    /// deletes it.
    ChangeHeader {
        /// Field name.
        name: String,
        /// 1-based among fields of this name.
        index: u32,
        /// New value after the colon (leading space included), or empty.
        value: String,
    },
    /// Add a recipient, with ESMTP parameters (`SMFIR_ADDRCPT_PAR`) or none.
    AddRcpt {
        /// Bare address.
        rcpt: String,
        /// Parameters (`NOTIFY=NEVER`, …).
        args: Vec<String>,
    },
    /// Remove a recipient (matched case-insensitively).
    DelRcpt(String),
    /// Replace the envelope sender.
    ChangeFrom {
        /// Bare address; `""` is `<>`.
        from: String,
        /// Parameters.
        args: Vec<String>,
    },
    /// Replace the body (everything after the header section) with these
    /// bytes: the milter's pieces joined, every line end made CRLF (a bare LF
    /// or CR from the milter becomes CRLF) and ending with CRLF.
    ReplaceBody(Vec<u8>),
    /// Hold the message in quarantine.
    Quarantine {
        /// The milter's reason.
        reason: String,
    },
}

/// What one milter conversation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterResult {
    /// The decision.
    pub verdict: Verdict,
    /// The stage that decided it ([`Stage::EndOfMessage`] unless the milter
    /// answered early).
    pub stage: Stage,
    /// Changes to make, in order; empty unless the verdict is
    /// [`Verdict::Continue`] or [`Verdict::Accept`] given at end of message.
    /// Per Sendmail, a reject/tempfail/discard at end of message drops them.
    pub modifications: Vec<Modification>,
}

/// The message after [`apply`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The recipients, in order: the originals not deleted, then the added
    /// ones (an address already present is not added twice).
    pub rcpts: Vec<String>,
    /// Parameters of added recipients that had some.
    pub rcpt_args: Vec<(String, Vec<String>)>,
    /// The new envelope sender and its parameters, if changed.
    pub mail_from: Option<(String, Vec<String>)>,
    /// The new body, if replaced.
    pub body: Option<Vec<u8>>,
    /// The quarantine reason, if the milter asked for quarantine (the last
    /// reason wins).
    pub quarantine: Option<String>,
}

/// Applies `mods` in order to `headers` and `rcpts` (see the module's index
/// semantics).
pub fn apply(headers: &[(String, String)], rcpts: &[String], mods: &[Modification]) -> Applied {
    let mut out = Applied {
        headers: headers.to_vec(),
        rcpts: rcpts.to_vec(),
        ..Applied::default()
    };
    for m in mods {
        match m {
            Modification::AddHeader { name, value } => {
                out.headers.push((name.clone(), value.clone()));
            }
            Modification::InsertHeader { index, name, value } => {
                let at = usize::try_from(*index)
                    .unwrap_or(usize::MAX)
                    .min(out.headers.len());
                out.headers.insert(at, (name.clone(), value.clone()));
            }
            Modification::ChangeHeader { name, index, value } => {
                let nth = usize::try_from((*index).max(1)).unwrap_or(usize::MAX);
                let found = out
                    .headers
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
                    .nth(nth - 1)
                    .map(|(i, _)| i);
                match (found, value.is_empty()) {
                    (Some(i), true) => {
                        out.headers.remove(i);
                    }
                    (Some(i), false) => out.headers[i].1.clone_from(value),
                    (None, false) => out.headers.push((name.clone(), value.clone())),
                    (None, true) => {}
                }
            }
            Modification::AddRcpt { rcpt, args } => {
                if !out.rcpts.iter().any(|r| r.eq_ignore_ascii_case(rcpt)) {
                    out.rcpts.push(rcpt.clone());
                    if !args.is_empty() {
                        out.rcpt_args.push((rcpt.clone(), args.clone()));
                    }
                }
            }
            Modification::DelRcpt(rcpt) => {
                out.rcpts.retain(|r| !r.eq_ignore_ascii_case(rcpt));
                out.rcpt_args.retain(|(r, _)| !r.eq_ignore_ascii_case(rcpt));
            }
            Modification::ChangeFrom { from, args } => {
                out.mail_from = Some((from.clone(), args.clone()));
            }
            Modification::ReplaceBody(body) => out.body = Some(body.clone()),
            Modification::Quarantine { reason } => out.quarantine = Some(reason.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn chg(name: &str, index: u32, value: &str) -> Modification {
        Modification::ChangeHeader {
            name: name.into(),
            index,
            value: value.into(),
        }
    }

    fn ins(index: u32, name: &str) -> Modification {
        Modification::InsertHeader {
            index,
            name: name.into(),
            value: " v".into(),
        }
    }

    const BASE: &[(&str, &str)] = &[
        ("Received", " r1"),
        ("X-Tag", " one"),
        ("Subject", " s"),
        ("x-tag", " two"),
    ];

    #[test]
    fn change_header_counts_fields_of_that_name_from_one() {
        let a = apply(&h(BASE), &[], &[chg("X-TAG", 2, " new")]);
        assert_eq!(a.headers[3], ("x-tag".to_owned(), " new".to_owned()));
        let a = apply(&h(BASE), &[], &[chg("X-Tag", 0, " first")]);
        assert_eq!(a.headers[1].1, " first");
        let a = apply(&h(BASE), &[], &[chg("X-Tag", 1, "")]);
        assert_eq!(
            a.headers,
            h(&[("Received", " r1"), ("Subject", " s"), ("x-tag", " two")])
        );
        // Past the last field of that name: a value is appended, a delete is
        // a no-op.
        let a = apply(&h(BASE), &[], &[chg("X-Tag", 3, " three")]);
        assert_eq!(
            a.headers.last(),
            Some(&("X-Tag".to_owned(), " three".to_owned()))
        );
        let a = apply(&h(BASE), &[], &[chg("X-Tag", 3, ""), chg("Nope", 1, "")]);
        assert_eq!(a.headers, h(BASE));
    }

    #[test]
    fn insert_header_counts_every_field_from_zero() {
        let names = |a: &Applied| a.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&apply(&h(BASE), &[], &[ins(0, "A")]))[0], "A");
        assert_eq!(names(&apply(&h(BASE), &[], &[ins(1, "A")]))[1], "A");
        assert_eq!(names(&apply(&h(BASE), &[], &[ins(99, "A")]))[4], "A");
        // In order, each on the previous result.
        let a = apply(&h(BASE), &[], &[ins(0, "A"), ins(0, "B"), chg("A", 1, "")]);
        assert_eq!(names(&a)[..2], ["B", "Received"]);
    }

    #[test]
    fn failure_actions_as_verdicts() {
        use crate::OnFailure;
        assert_eq!(OnFailure::Accept.verdict(), Verdict::Accept);
        let Verdict::Tempfail(r) = OnFailure::Tempfail.verdict() else {
            panic!("not a tempfail");
        };
        assert_eq!(
            r.to_bytes(),
            b"451 4.7.1 Service unavailable - try again later\r\n"
        );
        let Verdict::Reject(r) = OnFailure::Reject.verdict() else {
            panic!("not a reject");
        };
        assert_eq!(r.to_bytes(), b"550 5.7.1 Command rejected\r\n");
    }

    #[test]
    fn recipients_sender_body_quarantine() {
        let rcpts = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let a = apply(
            &[],
            &rcpts,
            &[
                Modification::DelRcpt("A@EXAMPLE.COM".into()),
                Modification::AddRcpt {
                    rcpt: "c@example.com".into(),
                    args: vec!["NOTIFY=NEVER".into()],
                },
                Modification::AddRcpt {
                    rcpt: "b@example.com".into(),
                    args: vec![],
                },
                Modification::ChangeFrom {
                    from: String::new(),
                    args: vec![],
                },
                Modification::ReplaceBody(b"x\r\n".to_vec()),
                Modification::Quarantine {
                    reason: "spam".into(),
                },
            ],
        );
        assert_eq!(a.rcpts, vec!["b@example.com", "c@example.com"]);
        assert_eq!(
            a.rcpt_args,
            vec![("c@example.com".to_owned(), vec!["NOTIFY=NEVER".to_owned()])]
        );
        assert_eq!(a.mail_from, Some((String::new(), vec![])));
        assert_eq!(a.body.as_deref(), Some(&b"x\r\n"[..]));
        assert_eq!(a.quarantine.as_deref(), Some("spam"));
    }
}

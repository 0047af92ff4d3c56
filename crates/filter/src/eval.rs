//! The evaluator: runs a rule set's conditions over [`Facts`] and folds the actions of
//! the rules that match into an [`Outcome`].
//!
//! Semantics (docs/filters.md says the same for admins):
//! - Rules run in file order. A rule whose condition holds is a *hit*; its actions run in
//!   order.
//! - Modifying actions (headers, subject prefix, redirect, bcc, notify, require-tls)
//!   accumulate over all hits.
//! - A final action (accept, drop, reject, bounce, quarantine) sets the disposition and
//!   ends evaluation; `stop` ends evaluation and keeps the disposition (deliver). The
//!   parser guarantees nothing but `stop` follows a final action in a rule.
//! - Conditions always see the message as received: edits of earlier rules are not
//!   visible to later conditions.
//! - A missing fact makes a test false (so `not` of it true); `exists` asks for it.
//!
//! # Security
//! Reads untrusted message data only through compiled regexes (linear time, the `regex`
//! crate has no backtracking) and dictionary automata; no allocation grows with the
//! number of matches beyond one cached result per (dictionary, text).
//!
//! # Standards
//! RFC 8601 (result words compared as given), RFC 5321 §4.1.2 (the domain of an address is
//! what follows the last `@`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use postern_content::Dictionary;
use regex::Regex;

use crate::RuleSet;
use crate::ast::{Action, Expr, Field, Flag, Op, Rule, Test};
use crate::facts::Facts;
use crate::outcome::{Disposition, HeaderEdit, Notify, Outcome, RuleHit};
use crate::parser::parse_tls_version;

/// One string value a test can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    Sender,
    SenderDomain,
    Recipient(usize),
    RecipientDomain(usize),
    Header(usize),
    Subject,
    Body,
    AttText(usize),
    AttName(usize),
    AttDeclared(usize),
    AttDetected(usize),
    SenderGroup,
    Policy,
    Listener,
    AuthUser,
    Helo,
    ClientIp,
    Spf,
    Dkim,
    Dmarc,
    TlsCipher,
    SpamAction,
    VirusName,
}

/// A dictionary's result over one text, computed once per evaluation.
#[derive(Debug, Clone)]
struct DictHit {
    first: Option<String>,
    score: u64,
}

/// Longest value quoted in a dry-run explanation.
const MAX_WITNESS: usize = 80;

pub(crate) struct Evaluator<'r, 'f> {
    rules: &'r RuleSet,
    facts: &'f Facts<'f>,
    /// Recipients the `recipient` tests see (all, or one in per-recipient mode).
    recipients: &'f [String],
    dicts: Vec<Option<Arc<Dictionary>>>,
    cache: HashMap<(usize, Src), DictHit>,
    /// Results of the tests that do not depend on the recipient, by the test's address
    /// (the rule set is borrowed for the evaluator's life, so addresses are stable).
    memo: HashMap<usize, Option<Witness>>,
    /// Set by [`Evaluator::with_recipients`]: the memo pays off only across recipients.
    per_recipient: bool,
    client_ip: Option<String>,
}

/// The dry-run record of one rule.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    pub matched: Option<Vec<String>>,
    pub skipped: bool,
}

impl<'r, 'f> Evaluator<'r, 'f> {
    pub fn new(rules: &'r RuleSet, facts: &'f Facts<'f>) -> Self {
        let dicts = rules
            .dictionaries
            .iter()
            .map(|name| facts.dictionaries.dictionary(name))
            .collect();
        Evaluator {
            rules,
            facts,
            recipients: facts.recipients,
            dicts,
            cache: HashMap::new(),
            memo: HashMap::new(),
            per_recipient: false,
            client_ip: facts.client_ip.map(|ip| ip.to_string()),
        }
    }

    /// Evaluates with `recipient` tests seeing only `recipients`.
    pub fn with_recipients(&mut self, recipients: &'f [String]) -> &mut Self {
        self.recipients = recipients;
        self.per_recipient = true;
        self
    }

    /// Runs every rule; `traces`, when given, gets one entry per rule.
    pub fn run(&mut self, mut traces: Option<&mut Vec<Trace>>) -> Outcome {
        let mut out = Outcome {
            missing_dictionaries: self
                .rules
                .dictionaries
                .iter()
                .zip(&self.dicts)
                .filter(|(_, d)| d.is_none())
                .map(|(n, _)| n.clone())
                .collect(),
            ..Outcome::default()
        };
        let mut stopped = false;
        for rule in &self.rules.rules {
            if stopped {
                if let Some(t) = traces.as_deref_mut() {
                    t.push(Trace {
                        matched: None,
                        skipped: true,
                    });
                }
                continue;
            }
            let mut why = traces.as_ref().map(|_| Vec::new());
            if !self.expr(&rule.cond, why.as_mut()) {
                if let Some(t) = traces.as_deref_mut() {
                    t.push(Trace {
                        matched: None,
                        skipped: false,
                    });
                }
                continue;
            }
            if let Some(t) = traces.as_deref_mut() {
                t.push(Trace {
                    matched: why,
                    skipped: false,
                });
            }
            stopped = apply(rule, &mut out);
        }
        out
    }

    fn expr(&mut self, e: &Expr, why: Option<&mut Vec<String>>) -> bool {
        match e {
            Expr::True => {
                if let Some(w) = why {
                    w.push("true".to_owned());
                }
                true
            }
            Expr::And(v) => {
                let mut why = why;
                let mark = why.as_ref().map_or(0, |w| w.len());
                for e in v {
                    if !self.expr(e, why.as_deref_mut()) {
                        if let Some(w) = why {
                            w.truncate(mark);
                        }
                        return false;
                    }
                }
                true
            }
            Expr::Or(v) => {
                let mut why = why;
                v.iter().any(|e| self.expr(e, why.as_deref_mut()))
            }
            Expr::Not(inner) => {
                let holds = !self.expr(inner, None);
                if holds && let Some(w) = why {
                    w.push(format!("not {}", Paren(inner)));
                }
                holds
            }
            Expr::Test(t) => match self.memo_test(t) {
                Some(witness) => {
                    if let Some(w) = why {
                        w.push(witness.render(t));
                    }
                    true
                }
                None => false,
            },
        }
    }

    fn sources(&self, field: &Field) -> Vec<Src> {
        let f = self.facts;
        let m = f.message;
        let opt = |present: bool, s: Src| if present { vec![s] } else { Vec::new() };
        let atts = |mk: fn(usize) -> Src| (0..m.attachments.len()).map(mk).collect();
        match field {
            Field::Sender => vec![Src::Sender],
            Field::SenderDomain => opt(f.sender.contains('@'), Src::SenderDomain),
            Field::Recipient => (0..self.recipients.len()).map(Src::Recipient).collect(),
            Field::RecipientDomain => (0..self.recipients.len())
                .filter(|&i| self.recipients[i].contains('@'))
                .map(Src::RecipientDomain)
                .collect(),
            Field::Header(name) => m
                .headers
                .iter()
                .enumerate()
                .filter(|(_, h)| h.name.eq_ignore_ascii_case(name))
                .map(|(i, _)| Src::Header(i))
                .collect(),
            Field::Subject => opt(!m.subject.is_empty(), Src::Subject),
            Field::Body => opt(!m.body_text.is_empty(), Src::Body),
            Field::AttachmentText => (0..m.attachments.len())
                .filter(|&i| m.attachments[i].text.is_some())
                .map(Src::AttText)
                .collect(),
            Field::AttachmentFilename => (0..m.attachments.len())
                .filter(|&i| m.attachments[i].filename.is_some())
                .map(Src::AttName)
                .collect(),
            Field::AttachmentDeclaredType => atts(Src::AttDeclared),
            Field::AttachmentDetectedType => (0..m.attachments.len())
                .filter(|&i| m.attachments[i].detected_type.is_some())
                .map(Src::AttDetected)
                .collect(),
            Field::SenderGroup => opt(f.sender_group.is_some(), Src::SenderGroup),
            Field::Policy => opt(f.policy.is_some(), Src::Policy),
            Field::Listener => opt(!f.listener.is_empty(), Src::Listener),
            Field::AuthUser => opt(f.auth_user.is_some(), Src::AuthUser),
            Field::Helo => opt(f.helo.is_some(), Src::Helo),
            Field::ClientIp => opt(self.client_ip.is_some(), Src::ClientIp),
            Field::Spf => opt(f.spf.is_some(), Src::Spf),
            Field::Dkim => opt(f.dkim.is_some(), Src::Dkim),
            Field::Dmarc => opt(f.dmarc.is_some(), Src::Dmarc),
            Field::TlsCipher => opt(f.tls.is_some(), Src::TlsCipher),
            Field::SpamAction => opt(f.spam.is_some(), Src::SpamAction),
            Field::VirusName => opt(f.virus.is_some(), Src::VirusName),
            Field::AttachmentSize
            | Field::AttachmentCount
            | Field::Size
            | Field::SpamScore
            | Field::TlsVersion
            | Field::Flag(_) => Vec::new(),
        }
    }

    fn text(&self, src: Src) -> &'f str {
        let f = self.facts;
        let m = f.message;
        let domain = |a: &'f str| a.rsplit_once('@').map_or("", |(_, d)| d);
        match src {
            Src::Sender => f.sender,
            Src::SenderDomain => domain(f.sender),
            Src::Recipient(i) => &self.recipients[i],
            Src::RecipientDomain(i) => domain(&self.recipients[i]),
            Src::Header(i) => &m.headers[i].decoded,
            Src::Subject => &m.subject,
            Src::Body => &m.body_text,
            Src::AttText(i) => m.attachments[i].text.as_deref().unwrap_or(""),
            Src::AttName(i) => m.attachments[i].filename.as_deref().unwrap_or(""),
            Src::AttDeclared(i) => &m.attachments[i].declared_type,
            Src::AttDetected(i) => m.attachments[i].detected_type.as_deref().unwrap_or(""),
            Src::SenderGroup => f.sender_group.unwrap_or(""),
            Src::Policy => f.policy.unwrap_or(""),
            Src::Listener => f.listener,
            Src::AuthUser => f.auth_user.unwrap_or(""),
            Src::Helo => f.helo.unwrap_or(""),
            Src::ClientIp => "",
            Src::Spf => f.spf.unwrap_or(""),
            Src::Dkim => f.dkim.unwrap_or(""),
            Src::Dmarc => f.dmarc.unwrap_or(""),
            Src::TlsCipher => f.tls.map_or("", |t| t.cipher.as_str()),
            Src::SpamAction => f.spam.map_or("", |s| s.action.as_str()),
            Src::VirusName => f.virus.map_or("", |v| v.name.as_str()),
        }
    }

    /// The string of a source (the client IP is formatted once, so it is owned here).
    fn value(&self, src: Src) -> &str {
        if src == Src::ClientIp {
            self.client_ip.as_deref().unwrap_or("")
        } else {
            self.text(src)
        }
    }

    fn dict(&mut self, d: usize, src: Src) -> Option<DictHit> {
        let dict = self.dicts.get(d)?.as_ref()?.clone();
        if let Some(hit) = self.cache.get(&(d, src)) {
            return Some(hit.clone());
        }
        let text = self.value(src);
        let mut first = None;
        let mut score = 0u64;
        for m in dict.find_in(text) {
            if first.is_none() {
                first = Some(m.matched.to_owned());
            }
            score = score.saturating_add(u64::from(m.weight));
        }
        let hit = DictHit { first, score };
        self.cache.insert((d, src), hit.clone());
        Some(hit)
    }

    /// [`Evaluator::test`], remembered across recipients for tests that do not look at
    /// the recipient (per-recipient evaluation runs the same tests once per recipient).
    fn memo_test(&mut self, test: &Test) -> Option<Witness> {
        if !self.per_recipient || matches!(test.field, Field::Recipient | Field::RecipientDomain) {
            return self.test(test);
        }
        let key = std::ptr::from_ref(test) as usize;
        if let Some(w) = self.memo.get(&key) {
            return w.clone();
        }
        let w = self.test(test);
        self.memo.insert(key, w.clone());
        w
    }

    /// `Some(witness)` when the test holds.
    fn test(&mut self, test: &Test) -> Option<Witness> {
        let facts = self.facts;
        let msg = facts.message;
        match (&test.op, &test.field) {
            (Op::Flag, Field::Flag(flag)) => {
                let holds = match flag {
                    Flag::Authenticated => facts.auth_user.is_some(),
                    Flag::Tls => facts.tls.is_some(),
                    Flag::TlsClientCertVerified => {
                        facts.tls.is_some_and(|tls| tls.client_cert_verified)
                    }
                    Flag::VirusInfected => facts.virus.is_some(),
                };
                holds.then_some(Witness::Plain)
            }
            (Op::Compare(op, n), field) => {
                let values: Vec<f64> = match field {
                    Field::Size => vec![as_f64(msg.size)],
                    Field::AttachmentSize => {
                        msg.attachments.iter().map(|a| as_f64(a.size)).collect()
                    }
                    Field::AttachmentCount => vec![as_f64(msg.attachments.len() as u64)],
                    Field::SpamScore => facts.spam.map(|s| s.score).into_iter().collect(),
                    _ => Vec::new(),
                };
                values
                    .into_iter()
                    .find(|v| op.holds(v, n))
                    .map(|v| Witness::Number(format_number(v)))
            }
            (Op::Version(op, want), _) => {
                let tls = facts.tls?;
                let have = parse_tls_version(&tls.version)?;
                op.holds(&have, want)
                    .then(|| Witness::Value(tls.version.clone()))
            }
            // The null reverse path `<>` is no sender (`sender is ""` still tests for it).
            (Op::Exists, Field::Sender) if facts.sender.is_empty() => None,
            (Op::Exists, field) => {
                let src = *self.sources(field).first()?;
                Some(Witness::Value(clip(self.value(src))))
            }
            (Op::Is(values), field) => self.sources(field).into_iter().find_map(|src| {
                let v = self.value(src).trim();
                values
                    .iter()
                    .any(|want| eq_ci(v, want))
                    .then(|| Witness::Value(clip(v)))
            }),
            (Op::Contains(phrases), field) => {
                let long = is_text(field);
                self.sources(field).into_iter().find_map(|src| {
                    let v = self.value(src);
                    let found = phrases.iter().find_map(|re| find_word(re, v))?;
                    Some(Witness::Value(clip(if long { found.as_str() } else { v })))
                })
            }
            (Op::Matches(re), field) => {
                let long = is_text(field);
                self.sources(field).into_iter().find_map(|src| {
                    let v = self.value(src);
                    let found = re.find(v)?;
                    Some(Witness::Value(clip(if long { found.as_str() } else { v })))
                })
            }
            (Op::InDictionary(d), field) => {
                let d = *d;
                if is_text(field) {
                    self.sources(field).into_iter().find_map(|src| {
                        let first = self.dict(d, src)?.first?;
                        Some(Witness::Value(clip(&first)))
                    })
                } else {
                    let dict = self.dicts.get(d)?.clone()?;
                    self.sources(field).into_iter().find_map(|src| {
                        let v = self.value(src);
                        dict.contains(v).then(|| Witness::Value(clip(v)))
                    })
                }
            }
            (Op::DictionaryScore(d, op, n), field) => {
                let (d, op, n) = (*d, *op, *n);
                let sources = self.sources(field);
                // Scores of a field with several values (headers, attachments) add up.
                let mut total = 0u64;
                for src in sources {
                    total = total.saturating_add(self.dict(d, src)?.score);
                }
                let total = as_f64(total);
                op.holds(&total, &n)
                    .then(|| Witness::Score(format_number(total)))
            }
            (Op::Flag, _) => None,
        }
    }
}

/// What made a test true, for the dry run.
#[derive(Clone)]
enum Witness {
    /// A bare flag.
    Plain,
    /// The value (or the matched part of a text) that satisfied the test.
    Value(String),
    /// A number (unquoted).
    Number(String),
    /// A dictionary score.
    Score(String),
}

impl Witness {
    fn render(&self, t: &Test) -> String {
        match self {
            Witness::Plain => t.text.clone(),
            Witness::Value(v) => format!("{} {v:?} {}", t.field_text, t.op_text),
            Witness::Number(n) => format!("{} {n} {}", t.field_text, t.op_text),
            Witness::Score(s) => format!("{} (score {s})", t.text),
        }
    }
}

/// Applies a matching rule's actions; true when evaluation must stop.
fn apply(rule: &Rule, out: &mut Outcome) -> bool {
    out.hits.push(RuleHit {
        rule: rule.name.clone(),
        origin: rule.origin.to_string(),
        line: rule.line,
    });
    let mut stop = false;
    for action in &rule.actions {
        let disposition = match action {
            Action::Accept => Some(Disposition::Deliver),
            Action::Drop => Some(Disposition::Drop),
            Action::Reject(r) => Some(Disposition::Reject(r.clone())),
            Action::Bounce(r) => Some(Disposition::Bounce(r.clone())),
            Action::Quarantine { name } => Some(Disposition::Quarantine { name: name.clone() }),
            Action::AddHeader { name, value } => {
                out.header_edits.push(HeaderEdit::Add {
                    name: name.clone(),
                    value: value.clone(),
                });
                None
            }
            Action::RemoveHeader { name } => {
                out.header_edits
                    .push(HeaderEdit::Remove { name: name.clone() });
                None
            }
            Action::ChangeHeader { name, value } => {
                out.header_edits.push(HeaderEdit::Set {
                    name: name.clone(),
                    value: value.clone(),
                });
                None
            }
            Action::PrefixSubject { text } => {
                let current = out.subject_prefix.take().unwrap_or_default();
                out.subject_prefix = Some(if current.contains(text.as_str()) {
                    current
                } else {
                    format!("{text}{current}")
                });
                None
            }
            Action::Redirect { address } => {
                out.redirect = Some(address.clone());
                None
            }
            Action::Bcc { address } => {
                if !out.bcc.iter().any(|b| b.eq_ignore_ascii_case(address)) {
                    out.bcc.push(address.clone());
                }
                None
            }
            Action::Notify { address, template } => {
                out.notify.push(Notify {
                    address: address.clone(),
                    template: template.clone(),
                    rule: rule.name.clone(),
                });
                None
            }
            Action::RequireTls => {
                out.require_tls = true;
                None
            }
            Action::Stop => {
                stop = true;
                None
            }
        };
        if let Some(d) = disposition {
            out.disposition = d;
            stop = true;
        }
    }
    if stop {
        out.decided_by = Some(rule.name.clone());
    }
    stop
}

/// A word character for `contains`: a letter, a digit (any script) or `_`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first match of `re` in `text` that sits on word boundaries: a match that starts
/// (ends) with a word character must not be preceded (followed) by one. A candidate
/// that fails is retried one character further, so a valid match overlapping it is not
/// missed; each retry starts where the last candidate did, so the work stays linear in
/// the text plus the candidates' lengths.
fn find_word<'t>(re: &Regex, text: &'t str) -> Option<regex::Match<'t>> {
    let mut at = 0;
    while at <= text.len() {
        let m = re.find_at(text, at)?;
        let s = m.as_str();
        let start_ok = !s.starts_with(is_word_char)
            || !text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(is_word_char);
        let end_ok =
            !s.ends_with(is_word_char) || !text[m.end()..].chars().next().is_some_and(is_word_char);
        if start_ok && end_ok {
            return Some(m);
        }
        at = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

fn is_text(field: &Field) -> bool {
    matches!(
        field,
        Field::Header(_) | Field::Subject | Field::Body | Field::AttachmentText
    )
}

/// ASCII case-insensitive for ASCII, full lowercase comparison otherwise (`want` is
/// already lowercase).
fn eq_ci(have: &str, want: &str) -> bool {
    if have.is_ascii() {
        have.eq_ignore_ascii_case(want)
    } else {
        have.to_lowercase() == want
    }
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^53
fn as_f64(n: u64) -> f64 {
    n as f64
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_WITNESS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_WITNESS).collect();
    out.push('…');
    out
}

/// An expression as written, parenthesised unless it is a single test.
struct Paren<'e>(&'e Expr);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Test(_) | Expr::True | Expr::Not(_) => write!(f, "{}", self.0),
            e => write!(f, "({e})"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, v: &[Expr], sep: &str| {
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{}", Paren(e))?;
            }
            Ok(())
        };
        match self {
            Expr::True => f.write_str("true"),
            Expr::Test(t) => f.write_str(&t.text),
            Expr::Not(e) => write!(f, "not {}", Paren(e)),
            Expr::And(v) => join(f, v, " and "),
            Expr::Or(v) => join(f, v, " or "),
        }
    }
}

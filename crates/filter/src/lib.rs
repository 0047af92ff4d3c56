//! Postern's filter rules (issue 11): a small, readable rule language for message and
//! content filters, its parser, the evaluator over a decoded message plus session facts,
//! and a dry run that explains which rules matched.
//!
//! ```text
//! rule "exe-attachments" {
//!     if attachment filename matches /\.(exe|scr|js)$/i
//!     then quarantine "attachments"
//! }
//! ```
//!
//! The language is documented for admins in `docs/filters.md`. Use:
//! [`RuleSet::parse`] once per file (every error is returned, with line and column);
//! check the names it uses against the configuration with [`RuleSet::check_names`]
//! (errors with positions) or [`RuleSet::referenced_dictionaries`] and friends; then per
//! message [`evaluate`] (message filters), [`evaluate_per_recipient`] (content filters)
//! or [`dry_run`] (`postern filter test`).
//!
//! This crate decides; it does no I/O and changes no message. The caller applies the
//! [`Outcome`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use postern_content::{Dictionary, MessageView, ViewLimits};
//! use postern_filter::{Disposition, Facts, RuleSet, evaluate};
//!
//! let rules = RuleSet::parse(r#"
//!     rule "ex-employees" {
//!         if sender in dictionary "ex-employees"
//!         then reject 550 "5.7.1" "This person no longer works here"
//!     }
//!     rule "tag" { if subject contains "invoice" then add-header "X-Invoice" "yes" }
//! "#, "rules.txt").expect("rules parse");
//!
//! // Once per configuration load: every referenced name must exist.
//! assert!(rules.referenced_dictionaries().contains("ex-employees"));
//! let mut dictionaries: BTreeMap<String, Arc<Dictionary>> = BTreeMap::new();
//! dictionaries.insert(
//!     "ex-employees".into(),
//!     Arc::new(Dictionary::parse("ex-employees", "mallory@example.org\n").expect("parses")),
//! );
//!
//! // Per message.
//! let raw = b"From: a@example.org\r\nSubject: Your invoice\r\n\r\nHello\r\n";
//! let view = MessageView::parse(raw, &ViewLimits::default());
//! let recipients = vec!["bob@corp.example".to_owned()];
//! let facts = Facts {
//!     listener: "inbound",
//!     ..Facts::new("mallory@example.org", &recipients, &view, &dictionaries)
//! };
//! let outcome = evaluate(&rules, &facts);
//! assert!(matches!(outcome.disposition, Disposition::Reject(ref r) if r.code == 550));
//! assert_eq!(outcome.to_string(), r#"reject 550 "5.7.1" "This person no longer works here" (rule "ex-employees")"#);
//! ```
//!
//! # Security
//! Rule files are configuration, but parsing is bounded (size, rule count, nesting,
//! regex size) and never panics (fuzzed: `fuzz/fuzz_targets/filter_rules.rs`). Values
//! that reach the wire (reply text, header fields, addresses) are validated at parse time
//! against CR/LF injection. Evaluation reads untrusted message data only through
//! linear-time regexes and dictionary automata.
//!
//! # Standards
//! RFC 5321 (reply codes, addresses), RFC 3463 (enhanced status codes), RFC 5322 (header
//! field names and values), RFC 8601 (authentication result words), RFC 8689 (the
//! REQUIRETLS idea behind `require-tls`).

mod apply;
mod ast;
mod dryrun;
mod error;
mod eval;
mod facts;
mod lexer;
mod outcome;
mod parser;

use std::collections::BTreeSet;

pub use apply::{apply_header_edits, unstructured_field};
pub use ast::{Action, NameKind, NameRef, RuleReply};
pub use dryrun::{DryRunReport, RuleResult, RuleTrace};
pub use error::{MAX_ERRORS, ParseError};
pub use facts::{DictionaryLookup, Facts, Spam, TlsInfo, Virus};
pub use outcome::{Disposition, HeaderEdit, Notify, Outcome, RecipientGroup, RuleHit};
pub use parser::{MAX_DEPTH, MAX_RULES, MAX_SOURCE, REGEX_SIZE_LIMIT};

use eval::Evaluator;

/// A parsed rule file: rules in order, regexes compiled, names of the dictionaries,
/// quarantines and templates it refers to. Cheap to share (`Arc<RuleSet>`), immutable.
#[derive(Debug)]
pub struct RuleSet {
    origin: String,
    rules: Vec<ast::Rule>,
    dictionaries: Vec<String>,
    names: Vec<NameRef>,
}

impl RuleSet {
    /// Parses a whole rule file. `origin` names it in errors and in the dry run (the
    /// file path). On failure every error found is returned, sorted by position.
    pub fn parse(source: &str, origin: &str) -> Result<RuleSet, Vec<ParseError>> {
        Self::parse_files(&[(source, origin)])
    }

    /// Parses several rule files, `(source, origin)` each, as one rule set: their rules in
    /// the order given, evaluated as if they were one file (a final action or `stop` in
    /// one file ends evaluation for the rest). Rule names are unique across the files.
    /// Errors of every file are returned, file by file, each sorted by position.
    pub fn parse_files(files: &[(&str, &str)]) -> Result<RuleSet, Vec<ParseError>> {
        let parsed = parser::parse(files)?;
        Ok(RuleSet {
            origin: files.first().map_or_else(String::new, |f| f.1.to_owned()),
            rules: parsed.rules,
            dictionaries: parsed.dictionaries,
            names: parsed.names,
        })
    }

    /// An empty rule set (every message: deliver, unchanged).
    pub fn empty(origin: &str) -> RuleSet {
        RuleSet {
            origin: origin.to_owned(),
            rules: Vec::new(),
            dictionaries: Vec::new(),
            names: Vec::new(),
        }
    }

    /// The origin given to [`RuleSet::parse`] (the first file's, for
    /// [`RuleSet::parse_files`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule names with their lines, in order.
    pub fn rule_names(&self) -> impl Iterator<Item = (&str, u32)> {
        self.rules.iter().map(|r| (r.name.as_str(), r.line))
    }

    /// The rules as `(name, origin, line)`, in order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        self.rules
            .iter()
            .map(|r| (r.name.as_str(), &*r.origin, r.line))
    }

    /// Dictionaries the rules test (`in dictionary "x"`, `dictionary "x" score`). A
    /// dictionary missing at evaluation time makes its tests false and is listed in
    /// [`Outcome::missing_dictionaries`].
    pub fn referenced_dictionaries(&self) -> BTreeSet<String> {
        self.referenced(NameKind::Dictionary)
    }

    /// Quarantines named by `quarantine "x"` actions.
    pub fn referenced_quarantines(&self) -> BTreeSet<String> {
        self.referenced(NameKind::Quarantine)
    }

    /// Templates named by `notify … template "x"` actions.
    pub fn referenced_templates(&self) -> BTreeSet<String> {
        self.referenced(NameKind::Template)
    }

    fn referenced(&self, kind: NameKind) -> BTreeSet<String> {
        self.names
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Every place a rule names a dictionary, quarantine or template, in file order.
    pub fn name_references(&self) -> &[NameRef] {
        &self.names
    }

    /// Checks every named dictionary, quarantine and template with `exists` (the
    /// configuration's answer) and returns an error at each place a missing one is named,
    /// e.g. `rules.txt:12:30: no quarantine named "hr" is configured`.
    pub fn check_names(&self, exists: impl Fn(NameKind, &str) -> bool) -> Vec<ParseError> {
        self.names
            .iter()
            .filter(|r| !exists(r.kind, &r.name))
            .map(|r| {
                ParseError::new(
                    &r.origin,
                    r.line,
                    r.column,
                    format!("no {} named {:?} is configured", r.kind, r.name),
                )
            })
            .collect()
    }
}

/// Message filters: evaluates the rules once for the message; `recipient` tests hold when
/// any recipient satisfies them.
pub fn evaluate(rules: &RuleSet, facts: &Facts<'_>) -> Outcome {
    Evaluator::new(rules, facts).run(None)
}

/// Content filters: evaluates the rules once per recipient, `recipient` tests seeing that
/// recipient only, and groups recipients whose outcomes are identical (in order of first
/// appearance). The caller makes one copy of the message per group. Tests on the
/// message are computed once, not once per recipient.
pub fn evaluate_per_recipient(rules: &RuleSet, facts: &Facts<'_>) -> Vec<RecipientGroup> {
    let mut ev = Evaluator::new(rules, facts);
    let mut groups: Vec<RecipientGroup> = Vec::new();
    for rcpt in facts.recipients {
        let outcome = ev.with_recipients(std::slice::from_ref(rcpt)).run(None);
        if let Some(g) = groups.iter_mut().find(|g| g.outcome == outcome) {
            g.recipients.push(rcpt.clone());
        } else {
            groups.push(RecipientGroup {
                recipients: vec![rcpt.clone()],
                outcome,
            });
        }
    }
    groups
}

/// Evaluates like [`evaluate`] and records, for each rule, whether it matched and why.
pub fn dry_run(rules: &RuleSet, facts: &Facts<'_>) -> DryRunReport {
    let mut traces = Vec::with_capacity(rules.rules.len());
    let outcome = Evaluator::new(rules, facts).run(Some(&mut traces));
    dryrun::report(rules, traces, outcome)
}

#[cfg(test)]
mod tests {
    // A compile-time check: a rule set is shared by every session (`Arc<RuleSet>`,
    // swapped on reload), an outcome crosses tasks.
    const fn shareable<T: Send + Sync>() {}
    const _: () = shareable::<super::RuleSet>();
    const _: () = shareable::<super::Outcome>();
    const _: () = shareable::<super::DryRunReport>();
}

//! The dry run: what each rule did with one message, and the outcome, printed the way
//! `postern filter test RULES MESSAGE.eml` shows it.

use std::fmt;

use serde::Serialize;

use crate::RuleSet;
use crate::ast::Action;
use crate::eval::Trace;
use crate::outcome::Outcome;

/// What happened to one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum RuleResult {
    /// The condition held: `because` lists the tests that made it hold (with the values
    /// seen), `actions` what the rule does.
    Matched {
        because: Vec<String>,
        actions: Vec<Action>,
    },
    NotMatched,
    /// An earlier rule ended evaluation (final action or `stop`).
    NotEvaluated {
        stopped_by: String,
    },
}

/// One rule in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    pub origin: String,
    pub line: u32,
    #[serde(flatten)]
    pub result: RuleResult,
}

/// Every rule, in order, and the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunReport {
    pub rules: Vec<RuleTrace>,
    pub outcome: Outcome,
}

pub(crate) fn report(rules: &RuleSet, traces: Vec<Trace>, outcome: Outcome) -> DryRunReport {
    let stopped_by = outcome.decided_by.clone().unwrap_or_default();
    let rules = rules
        .rules
        .iter()
        .zip(traces)
        .map(|(r, t)| RuleTrace {
            rule: r.name.clone(),
            origin: r.origin.to_string(),
            line: r.line,
            result: match (t.skipped, t.matched) {
                (true, _) => RuleResult::NotEvaluated {
                    stopped_by: stopped_by.clone(),
                },
                (false, Some(because)) => RuleResult::Matched {
                    because,
                    actions: r.actions.clone(),
                },
                (false, None) => RuleResult::NotMatched,
            },
        })
        .collect();
    DryRunReport { rules, outcome }
}

impl fmt::Display for RuleTrace {
    /// `rule "x" (rules.txt:7) matched: attachment filename "a.exe" matches /\.exe$/i → quarantine "q"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {:?} ({}:{}) ", self.rule, self.origin, self.line)?;
        match &self.result {
            RuleResult::Matched { because, actions } => {
                write!(f, "matched: {} →", because.join(" and "))?;
                for (i, a) in actions.iter().enumerate() {
                    write!(f, "{} {a}", if i == 0 { "" } else { ";" })?;
                }
                Ok(())
            }
            RuleResult::NotMatched => f.write_str("not matched"),
            RuleResult::NotEvaluated { stopped_by } => {
                write!(f, "not evaluated: rule {stopped_by:?} ended evaluation")
            }
        }
    }
}

impl fmt::Display for DryRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rules {
            writeln!(f, "{r}")?;
        }
        write!(f, "outcome: {}", self.outcome)
    }
}

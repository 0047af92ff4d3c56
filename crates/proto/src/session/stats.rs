//! Per-command counters of one session, written on its disconnect line the way
//! Postfix does (`ehlo=1 starttls=1 mail=1 rcpt=1/2 data=1 quit=1 commands=6/7`):
//! an operator sees at a glance what a client tried and what was refused.
//!
//! # Security
//! Counters saturate; nothing here grows with the input.

use std::fmt;

/// The commands counted (the order of the disconnect line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Vrfy,
    Expn,
    Help,
    Quit,
    Unknown,
}

const NAMES: [&str; 15] = [
    "ehlo", "helo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy",
    "expn", "help", "quit", "unknown",
];

/// Commands seen and commands that succeeded, per verb; and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    total: [u32; 15],
    ok: [u32; 15],
    /// The command whose final reply is still to come.
    current: Option<Verb>,
    /// Messages queued.
    pub messages: u32,
    /// A deadline ended the session (`421 4.4.2`).
    pub timeout: bool,
    /// A bare LF ended the session.
    pub bare_lf: bool,
}

impl Stats {
    /// A command arrived.
    pub(crate) fn begin(&mut self, verb: Verb) {
        let i = verb as usize;
        self.total[i] = self.total[i].saturating_add(1);
        self.current = Some(verb);
    }

    /// A reply was queued: a final positive one counts the current command as
    /// successful; `334`/`354` are intermediate.
    pub(crate) fn replied(&mut self, code: u16) {
        if code == 334 || code == 354 {
            return;
        }
        if let Some(verb) = self.current.take()
            && code < 400
        {
            let i = verb as usize;
            self.ok[i] = self.ok[i].saturating_add(1);
        }
    }

    /// No command yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.total.iter().all(|&n| n == 0)
    }

    /// Commands received.
    pub fn commands(&self) -> u32 {
        self.total.iter().fold(0u32, |a, &n| a.saturating_add(n))
    }

    /// Commands that succeeded.
    pub fn succeeded(&self) -> u32 {
        self.ok.iter().fold(0u32, |a, &n| a.saturating_add(n))
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            let (ok, total) = (self.ok[i], self.total[i]);
            if total == 0 {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            if ok == total {
                write!(f, "{name}={total}")?;
            } else {
                write!(f, "{name}={ok}/{total}")?;
            }
        }
        if !first {
            f.write_str(" ")?;
        }
        let (ok, total) = (self.succeeded(), self.commands());
        if ok == total {
            write!(f, "commands={total}")
        } else {
            write!(f, "commands={ok}/{total}")
        }
    }
}

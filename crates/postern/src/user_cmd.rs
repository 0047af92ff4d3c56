//! `postern user hash`: the argon2id hash of a password for `[[user]]
//! password_hash`.
//!
//! On a terminal the password is asked for twice without echo (the prompts
//! go to the terminal, the hash to stdout, so `postern user hash > h.txt`
//! works); otherwise one line is read from stdin and its line end (`\n` or
//! `\r\n`) removed, so `echo 'pw' | postern user hash` and
//! `printf %s 'pw' | postern user hash` give the same hash.
//!
//! # Security
//! The password is never echoed or printed; it stays in memory only while it
//! is hashed.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use crate::cli::UserHashArgs;

/// Why no password was read.
#[derive(Debug)]
enum ReadError {
    /// Reading stdin or the terminal failed.
    Io(std::io::Error),
    /// The two entries on the terminal differ.
    Mismatch,
}

pub(crate) fn hash(_args: &UserHashArgs) -> ExitCode {
    let password = match read_password("postern user hash") {
        Ok(p) => p,
        Err(code) => return code,
    };
    match postern_smtpd::hash_password(&password) {
        Ok(hash) => {
            crate::out::outln!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: hashing failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// A new password: twice without echo on a terminal, else one line of
/// stdin; empty is refused. `command` names the command in the hint.
pub(crate) fn read_password(command: &str) -> Result<String, ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let password = match if interactive {
        from_terminal()
    } else {
        from_stdin()
    } {
        Ok(p) => p,
        Err(ReadError::Io(e)) => {
            eprintln!("error: cannot read the password: {e}");
            return Err(ExitCode::from(1));
        }
        Err(ReadError::Mismatch) => {
            eprintln!("error: the two passwords differ; nothing was changed");
            return Err(ExitCode::from(1));
        }
    };
    if password.is_empty() {
        eprintln!(
            "error: empty password (type it at the prompt, or pipe it: `printf %s 'pw' | {command}`)"
        );
        return Err(ExitCode::from(2));
    }
    Ok(password)
}

/// Twice, without echo, from the controlling terminal.
fn from_terminal() -> Result<String, ReadError> {
    let first = rpassword::prompt_password("Password: ").map_err(ReadError::Io)?;
    if first.is_empty() {
        return Ok(first);
    }
    let again = rpassword::prompt_password("Again: ").map_err(ReadError::Io)?;
    if again == first {
        Ok(first)
    } else {
        Err(ReadError::Mismatch)
    }
}

/// One line from stdin, without its line end.
fn from_stdin() -> Result<String, ReadError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(ReadError::Io)?;
    Ok(strip_line_end(&line).to_owned())
}

/// `pw\n`, `pw\r\n` → `pw`; only one line end goes.
fn strip_line_end(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_end_is_removed() {
        assert_eq!(strip_line_end("pw\n"), "pw");
        assert_eq!(strip_line_end("pw\r\n"), "pw");
        assert_eq!(strip_line_end("pw"), "pw");
        assert_eq!(strip_line_end("pw \n"), "pw ");
        assert_eq!(strip_line_end("\n"), "");
    }
}

//! Writing to stdout without panicking on a closed pipe.
//!
//! `println!` panics (exit 101) when stdout is a pipe whose reader has gone,
//! as in `postern queue list --json | head -1`. A command-line tool should
//! stop quietly instead: [`outln!`] and [`out!`] write through [`write`],
//! which ends the process with status 0 on `BrokenPipe` (the reader took
//! what it wanted) and with status 1, after a message, on any other error.
//!
//! `postern serve` does not use these: a server must not stop because its
//! stdout went away (it uses [`write_lossy`]).
//!
//! # Security
//! No input is parsed here.

use std::fmt;
use std::io::Write as _;

/// Writes `args` to stdout; see the module documentation.
pub(crate) fn write(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = result {
        exit_on(&e);
    }
}

/// Ends the process for a stdout write error: status 0 for a closed pipe,
/// 1 (with a message on stderr) otherwise.
pub(crate) fn exit_on(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// Writes `args` to stdout and ignores errors (for the server's messages).
pub(crate) fn write_lossy(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(args).and_then(|()| stdout.flush());
}

/// `println!` that stops quietly on a closed pipe ([`write`]).
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that stops quietly on a closed pipe ([`write`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

/// `println!` that ignores write errors ([`write_lossy`]), for `serve`.
macro_rules! sayln {
    ($($arg:tt)*) => {
        $crate::out::write_lossy(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln, sayln};

//! `postern`: the command-line entry point. Glue only: parse arguments, load the
//! configuration, wire the crates together, handle signals, map errors to exit
//! codes (0 success, 1 failure, 2 usage or configuration error).
//!
//! # Security
//! Runs as whatever user starts it; writes only below the configured data
//! directory. Insecure `[danger]` settings are logged at every start.

mod admin_setup;
mod cert_cmd;
mod cli;
mod delivery_setup;
mod dns_cmd;
mod headers_cmd;
mod queue_cmd;
mod queue_show;
mod scan_cmd;
mod send_cmd;
mod serve;
mod tls_setup;
mod verify_cmd;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::Config {
            command: cli::ConfigCommand::Check(args),
        } => serve::config_check(&args),
        cli::Command::User {
            command: cli::UserCommand::Hash(args),
        } => user_hash(&args),
        cli::Command::Queue { command } => queue_cmd::run(&command),
        cli::Command::Tls {
            command: cli::TlsCommand::Scan(args),
        } => scan_cmd::run(&args),
        cli::Command::Tls {
            command: cli::TlsCommand::Verify(args),
        } => verify_cmd::run(&args),
        cli::Command::Dns {
            command: cli::DnsCommand::Mx(args),
        } => dns_cmd::run(&args),
        cli::Command::Headers {
            command: cli::HeadersCommand::Analyze(args),
        } => headers_cmd::run(&args),
        cli::Command::Cert {
            command: cli::CertCommand::Check(args),
        } => cert_cmd::run(&args),
        cli::Command::Send(args) => send_cmd::run(&args),
    }
}

/// `postern user hash`: reads a password from stdin, prints its argon2id PHC string.
fn user_hash(_args: &cli::UserHashArgs) -> ExitCode {
    use std::io::BufRead as _;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        eprintln!("error: cannot read the password from stdin");
        return ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!(
            "error: empty password (type it on stdin, e.g. `echo -n 'pw' | postern user hash`)"
        );
        return ExitCode::from(2);
    }
    match postern_smtpd::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: hashing failed: {e}");
            ExitCode::from(1)
        }
    }
}

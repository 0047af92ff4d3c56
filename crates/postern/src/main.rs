//! `postern`: the command-line entry point. Glue only: parse arguments, load the
//! configuration, wire the crates together, handle signals, map errors to exit
//! codes (0 success, 1 failure, 2 usage or configuration error).
//!
//! # Security
//! Runs as whatever user starts it; writes only below the configured data
//! directory. Insecure `[danger]` settings are logged at every start.

mod admin_cmd;
mod admin_setup;
mod auth_cmd;
mod cert_cmd;
mod cli;
mod config_cmd;
mod config_file;
mod console_setup;
mod delivery_setup;
mod dkim_cmd;
mod dmarc_reports;
mod dns_cmd;
mod filter_cmd;
mod headers_cmd;
mod out;
mod quarantine_cmd;
mod queue_cmd;
mod queue_show;
mod reload;
mod scan_cmd;
mod send_cmd;
mod serve;
mod spool_cmd;
mod suites_cmd;
mod tls_setup;
mod trace_cmd;
mod track_cmd;
mod user_cmd;
mod verify_cmd;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
        cli::Command::Serve => serve::run(config, cli.log_format),
        cli::Command::Config {
            command: cli::ConfigCommand::Check(args),
        } => config_cmd::check(config, &args),
        cli::Command::Config {
            command: cli::ConfigCommand::Show(args),
        } => config_cmd::show(config, &args),
        cli::Command::User {
            command: cli::UserCommand::Hash(args),
        } => user_cmd::hash(&args),
        cli::Command::Queue { command } => queue_cmd::run(config, &command),
        cli::Command::Quarantine { command } => quarantine_cmd::run(config, &command),
        cli::Command::Spool { command } => spool_cmd::run(config, &command),
        cli::Command::Track { command } => track_cmd::run(config, &command),
        cli::Command::Admin { command } => admin_cmd::run(config, &command),
        cli::Command::Tls {
            command: cli::TlsCommand::Posture(args),
        } => track_cmd::posture(config, &args),
        cli::Command::Tls {
            command: cli::TlsCommand::Scan(args),
        } => scan_cmd::run(&args),
        cli::Command::Tls {
            command: cli::TlsCommand::Suites(args),
        } => suites_cmd::run(&args),
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
        } => cert_cmd::run(config, &args),
        cli::Command::Dkim {
            command: cli::DkimCommand::Keygen(args),
        } => dkim_cmd::keygen(config, &args),
        cli::Command::Dkim {
            command: cli::DkimCommand::Check(args),
        } => dkim_cmd::check(config, &args),
        cli::Command::Dkim {
            command: cli::DkimCommand::Sign(args),
        } => dkim_cmd::sign(config, &args),
        cli::Command::Auth {
            command: cli::AuthCommand::Check(args),
        } => auth_cmd::check(config, &args),
        cli::Command::Dmarc {
            command: cli::DmarcCommand::Report(args),
        } => dmarc_reports::report(config, &args),
        cli::Command::Filter {
            command: cli::FilterCommand::Test(args),
        } => filter_cmd::test(config, &args),
        cli::Command::Send(args) => send_cmd::run(&args),
        cli::Command::Trace(args) => trace_cmd::run(config, &args),
    }
}

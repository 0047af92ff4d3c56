//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Postern: a secure SMTP server and mail gateway.
#[derive(Parser, Debug)]
#[command(name = "postern", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the server (without --config: the embedded default, loopback only).
    Serve(ServeArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// AUTH user tools.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the queue (works while the server runs).
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// TLS diagnostics for any SMTP server.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// DNS lookups as the mail system sees them.
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
    /// Message header analysis.
    Headers {
        #[command(subcommand)]
        command: HeadersCommand,
    },
    /// Certificate checks, local files or a remote server's chain.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Send a test message and print the whole dialogue (swaks-like).
    Send(crate::send_cmd::SendArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Key ↔ certificate match, chain order and completeness, expiry, names, weak keys.
    Check(crate::cert_cmd::CertCheckArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum TlsCommand {
    /// Graded report of protocols and cipher suites (in the server's order), groups and chain.
    Scan(crate::scan_cmd::TlsScanArgs),
    /// Per MX and address: STARTTLS, handshake, chain, PKIX, name, DANE, MTA-STS (IronPort's tlsverify).
    Verify(crate::verify_cmd::TlsVerifyArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum DnsCommand {
    /// MX records with preferences, addresses, null MX and DNSSEC status.
    Mx(crate::dns_cmd::DnsMxArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum HeadersCommand {
    /// Received chain as a hop table, authentication results, spam verdicts, anomalies.
    Analyze(crate::headers_cmd::HeadersAnalyzeArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Configuration file (postern.toml). Without it the embedded default is used.
    #[arg(short, long, env = "POSTERN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file, load its certificates, print security warnings.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The file to check.
    pub(crate) file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Read a password on stdin and print its argon2id hash for `[[user]] password_hash`.
    Hash(UserHashArgs),
}

#[derive(Args, Debug)]
pub(crate) struct UserHashArgs {}

#[derive(Args, Debug, Clone)]
pub(crate) struct SpoolLocation {
    /// Configuration file whose data directory holds the spool.
    #[arg(short, long, env = "POSTERN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Spool directory (overrides --config).
    #[arg(long)]
    pub(crate) spool: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QueueCommand {
    /// List queued messages.
    List {
        #[command(flatten)]
        location: SpoolLocation,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one message's envelope and receipt facts.
    Show {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: SpoolLocation,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

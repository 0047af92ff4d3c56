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
    /// Inspect and operate the queue (through the running server's admin socket, else on the spool).
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

#[derive(Args, Debug, Clone)]
pub(crate) struct ConfigLocation {
    /// Configuration file (its data directory holds the spool and the admin
    /// socket). Without it the embedded default is used.
    #[arg(short, long, env = "POSTERN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QueueCommand {
    /// List queued messages with their state (from the running server, else the spool).
    List {
        #[command(flatten)]
        location: SpoolLocation,
        /// Only messages in this state: pending, deferred, in_flight, held, deleting, finishing.
        #[arg(long)]
        state: Option<String>,
        /// Only messages with a recipient at this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only messages received longer ago than this (90s, 30m, 2h, 7d).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one message: envelope, recipients with their states, and its
    /// attempt history from the mail log (TLS facts, causes and fixes).
    Show {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: SpoolLocation,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Retry a message's deferred recipients now (or, with --all, every message's).
    Retry {
        /// Queue id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Retry every deferred recipient in the queue.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        location: ConfigLocation,
    },
    /// Hold a message: not attempted (and not expired) until released.
    Hold {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: ConfigLocation,
    },
    /// Release a held message.
    Release {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: ConfigLocation,
    },
    /// Delete a message from the queue without a DSN.
    Delete {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: ConfigLocation,
    },
    /// Retry now every deferred recipient at a domain.
    Flush {
        /// The recipient domain (example.com).
        domain: String,
        #[command(flatten)]
        location: ConfigLocation,
    },
}

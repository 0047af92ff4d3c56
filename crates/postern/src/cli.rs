//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Postern: a secure SMTP server and mail gateway.
#[derive(Parser, Debug)]
#[command(name = "postern", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Configuration file, for every command that reads one. Default: the
    /// first of /etc/postern/postern.toml and ./postern.toml that exists,
    /// else the embedded default (loopback only, data in ./postern-data).
    #[arg(
        short,
        long,
        global = true,
        env = "POSTERN_CONFIG",
        value_name = "FILE"
    )]
    pub(crate) config: Option<PathBuf>,
    /// Log format on stderr: `text` (coloured only on a terminal) or `json`
    /// (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the server (see --config for which configuration it reads).
    Serve,
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
    /// Named quarantines and the messages in them: list, show, release, delete.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Web console and HTTP API access: admin users and API tokens.
    Admin {
        #[command(subcommand)]
        command: crate::admin_cmd::AdminCommand,
    },
    /// Message tracking: search events, a message's whole life, its TLS evidence.
    Track {
        #[command(subcommand)]
        command: crate::track_cmd::TrackCommand,
    },
    /// The message spool: its health (`status`), `recheck` after a disk problem.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
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
    /// DKIM keys: generate one and print its DNS record, check the published record, sign a message.
    Dkim {
        #[command(subcommand)]
        command: DkimCommand,
    },
    /// Mail authentication: re-verify a saved message (SPF, DKIM, ARC, DMARC).
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Filter rules: run a rule file over a saved message without sending (dry run).
    Filter {
        #[command(subcommand)]
        command: FilterCommand,
    },
    /// DMARC aggregate reports: preview or send a day's reports.
    Dmarc {
        #[command(subcommand)]
        command: DmarcCommand,
    },
    /// Send a test message and print the whole dialogue (swaks-like).
    Send(crate::send_cmd::SendArgs),
    /// What the gateway would do with a client, step by step: PTR, FCrDNS, DNS
    /// lists, sender group, mail-flow policy, and every reply of the session —
    /// without sending mail or changing a counter.
    Trace(crate::trace_cmd::TraceArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum FilterCommand {
    /// Which rules match the message and what would happen; nothing is sent.
    Test(Box<crate::filter_cmd::FilterTestArgs>),
}

#[derive(Subcommand, Debug)]
pub(crate) enum SpoolCommand {
    /// The running server's spool: free space against [spool] min_free, poisoned or
    /// not, and the queue's counts. Exit 1 while new mail is refused (poisoned or
    /// below the floor), so monitoring can run it.
    Status,
    /// After an fsync failure poisoned the spool (new mail refused with 451) and
    /// the disk was checked: test a write and fsync in the spool and, if they
    /// succeed, accept mail again (through the running server's admin socket).
    Recheck,
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
    /// Explain a cipher-suite list (names, hex or decimal ids, MailSite's
    /// `3112` form too): what each suite is, whether Postern can use it, the
    /// closest one it can, and a `cipher_suites = [...]` line to paste.
    Suites(crate::suites_cmd::SuitesArgs),
    /// Per MX and address: STARTTLS, handshake, chain, PKIX, name, DANE, MTA-STS (IronPort's tlsverify).
    Verify(crate::verify_cmd::TlsVerifyArgs),
    /// Every peer seen (by domain, with its addresses): TLS versions and ciphers
    /// used, STARTTLS, certificate verification, DANE / MTA-STS, plaintext
    /// retries — the peers a stricter policy would break first (from the
    /// tracking database).
    Posture(crate::track_cmd::PostureArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum DnsCommand {
    /// MX records with preferences, addresses, null MX and DNSSEC status.
    Mx(crate::dns_cmd::DnsMxArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum DkimCommand {
    /// Generate a private key (0600, never overwriting) and print the TXT record to publish.
    Keygen(crate::dkim_cmd::KeygenArgs),
    /// Look up the published key record and say whether it matches our key (exit 0) or what to fix (exit 1).
    Check(crate::dkim_cmd::CheckArgs),
    /// Print a message with a DKIM-Signature added (relaxed/relaxed, From oversigned).
    Sign(crate::dkim_cmd::SignArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum AuthCommand {
    /// Re-verify a saved message offline: SPF (HELO, MAIL FROM), every DKIM
    /// signature, ARC, DMARC, one verdict per line with the reason, and the
    /// Authentication-Results field. Exit 0 unless DMARC fails (1).
    Check(crate::auth_cmd::AuthCheckArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum DmarcCommand {
    /// A day's aggregate reports (default yesterday, UTC): --dry-run prints per
    /// domain and destination what would be sent (--out DIR writes the XML);
    /// without it, queues them through the pickup folder and marks them sent.
    Report(crate::dmarc_reports::ReportArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum HeadersCommand {
    /// Received chain as a hop table, authentication results, spam verdicts, anomalies.
    Analyze(crate::headers_cmd::HeadersAnalyzeArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration (--config FILE), load its certificates,
    /// print every error and security warning.
    Check(CheckArgs),
    /// Print the effective configuration as TOML, paths resolved (like `postconf`).
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// Deprecated: write `--config FILE`.
    #[arg(hide = true, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Exit with status 1 when there are security warnings.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// Only the settings that differ from the defaults (like `postconf -n`).
    #[arg(long)]
    pub(crate) non_default: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Print the argon2id hash of a password for `[[user]] password_hash`: asked
    /// for without echo on a terminal, else read from stdin (one line).
    Hash(UserHashArgs),
}

#[derive(Args, Debug)]
pub(crate) struct UserHashArgs {}

#[derive(Args, Debug, Clone)]
pub(crate) struct SpoolLocation {
    /// Spool directory (overrides the configuration's `<data_dir>/spool`).
    #[arg(long, value_name = "DIR")]
    pub(crate) spool: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QuarantineCommand {
    /// The quarantines (retention, what happens at expiry, how many messages)
    /// and the messages in them.
    List {
        /// Only this quarantine.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        location: SpoolLocation,
        /// One JSON object per message and line.
        #[arg(long)]
        json: bool,
    },
    /// One quarantined message: why, until when, its header fields, its history.
    Show {
        /// Queue id.
        id: String,
        #[command(flatten)]
        location: SpoolLocation,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Release into delivery with the original envelope (a `released` event).
    Release {
        /// Queue id.
        id: String,
    },
    /// Delete without a DSN (a `deleted` event).
    Delete {
        /// Queue id.
        id: String,
    },
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
    },
    /// Hold a message: not attempted (and not expired) until released.
    Hold {
        /// Queue id.
        id: String,
    },
    /// Release a held message.
    Release {
        /// Queue id.
        id: String,
    },
    /// Delete a message from the queue without a DSN.
    Delete {
        /// Queue id.
        id: String,
    },
    /// Retry now every deferred recipient at a domain.
    Flush {
        /// The recipient domain (example.com).
        domain: String,
    },
}

//! `postern filter test RULES MESSAGE.eml [--from --rcpt --ip …]`: runs a
//! rule file over a saved message without sending anything and shows every
//! rule — matched or not, and why — and the outcome (the same dry-run
//! spirit as `postern trace`). `--per-recipient` evaluates the file as
//! content filters (one outcome per recipient group).
//!
//! Dictionaries come from the configuration's `[[dictionary]]` (when a
//! configuration is found) and from `--dictionary NAME=FILE`. Facts the
//! message cannot tell (spam score, virus, DMARC, TLS) are given as options
//! or absent (every test on an absent fact is false, as in the server).
//!
//! Exit 0 when the rules parse (whatever they decide), 1 when they do not
//! (every error with `file:line:column`), 2 for usage errors.
//!
//! # Security
//! Reads at most 64 MiB of message; rule files are bounded by
//! `postern_filter` (4 MiB, 10 000 rules, regex size). Nothing is sent.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use postern_content::{Dictionary, MessageView, ViewLimits};
use postern_filter::{Facts, RuleSet, Spam, TlsInfo, Virus};

use crate::out::outln;

const MAX_INPUT: u64 = 64 * 1024 * 1024;

/// `postern filter test` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct FilterTestArgs {
    /// The rule file.
    pub(crate) rules: PathBuf,
    /// The message file (headers and body); `-` reads stdin. Bare LF line
    /// ends become CRLF.
    pub(crate) message: PathBuf,
    /// The envelope sender (MAIL FROM); `""` for `<>`. Default: the From address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) from: Option<String>,
    /// An envelope recipient (repeatable). Default: the To/Cc addresses.
    #[arg(long, value_name = "ADDR")]
    pub(crate) rcpt: Vec<String>,
    /// The client's IP address.
    #[arg(long)]
    pub(crate) ip: Option<IpAddr>,
    /// The EHLO name.
    #[arg(long)]
    pub(crate) helo: Option<String>,
    /// The listener name.
    #[arg(long, default_value = "smtp")]
    pub(crate) listener: String,
    /// The sender group.
    #[arg(long)]
    pub(crate) sender_group: Option<String>,
    /// The mail-flow policy.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    /// The SMTP AUTH identity.
    #[arg(long)]
    pub(crate) auth_user: Option<String>,
    /// SPF result (pass, fail, softfail, neutral, none, temperror, permerror).
    #[arg(long)]
    pub(crate) spf: Option<String>,
    /// DKIM result.
    #[arg(long)]
    pub(crate) dkim: Option<String>,
    /// DMARC result.
    #[arg(long)]
    pub(crate) dmarc: Option<String>,
    /// The TLS version of the session (`TLSv1.3`); absent: plaintext.
    #[arg(long)]
    pub(crate) tls_version: Option<String>,
    /// The TLS cipher of the session.
    #[arg(long, requires = "tls_version")]
    pub(crate) tls_cipher: Option<String>,
    /// A spam score (with `--spam-action`).
    #[arg(long)]
    pub(crate) spam_score: Option<f64>,
    /// The spam engine's action (`reject`, `add header`, `no action`).
    #[arg(long)]
    pub(crate) spam_action: Option<String>,
    /// A virus name: the message is treated as infected.
    #[arg(long)]
    pub(crate) virus: Option<String>,
    /// A dictionary, `NAME=FILE` (repeatable); added to the configuration's.
    #[arg(long, value_name = "NAME=FILE")]
    pub(crate) dictionary: Vec<String>,
    /// Evaluate as content filters: one outcome per recipient group.
    #[arg(long)]
    pub(crate) per_recipient: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

fn read_message(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().take(MAX_INPUT).read_to_end(&mut raw)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_INPUT)
            .read_to_end(&mut raw)?;
    }
    // Bare LF → CRLF, as the server stores messages.
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Ok(out)
}

/// Addresses in `<…>` or bare in the header field values of `names`.
fn addresses(view: &MessageView, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        for f in view.header(name) {
            for part in f.decoded.split(',') {
                let a = match (part.find('<'), part.rfind('>')) {
                    (Some(l), Some(r)) if l < r => &part[l + 1..r],
                    _ => part.trim(),
                };
                if a.contains('@') && !a.contains(char::is_whitespace) {
                    out.push(a.to_owned());
                }
            }
        }
    }
    out
}

pub(crate) fn test(config: Option<&Path>, args: &FilterTestArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.rules) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.rules.display());
            return ExitCode::from(2);
        }
    };
    let origin = args.rules.display().to_string();
    let rules = match RuleSet::parse(&text, &origin) {
        Ok(r) => r,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); nothing evaluated", errors.len());
            return ExitCode::from(1);
        }
    };
    let raw = match read_message(&args.message) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.message.display());
            return ExitCode::from(2);
        }
    };
    // Dictionaries: the configuration's, then --dictionary.
    let mut specs: Vec<(String, PathBuf)> = Vec::new();
    let mut view_limits = ViewLimits::default();
    let chosen = crate::config_file::choose(config);
    if let Some(path) = chosen.as_deref()
        && path.exists()
    {
        match crate::config_file::load(Some(path)) {
            Ok(l) => {
                specs.extend(l.config.server.content.dictionaries.iter().cloned());
                view_limits = l.config.server.content.view.clone();
            }
            Err(e) => {
                eprintln!(
                    "warning: the configuration {} does not load ({e}); its dictionaries are not used",
                    path.display()
                );
            }
        }
    }
    for d in &args.dictionary {
        let Some((name, file)) = d.split_once('=') else {
            eprintln!("error: --dictionary {d:?}: write NAME=FILE");
            return ExitCode::from(2);
        };
        specs.retain(|(n, _)| n != name);
        specs.push((name.to_owned(), PathBuf::from(file)));
    }
    let mut dictionaries: BTreeMap<String, Arc<Dictionary>> = BTreeMap::new();
    for (name, path) in &specs {
        match Dictionary::load(name, path) {
            Ok(d) => {
                dictionaries.insert(name.clone(), Arc::new(d));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for missing in rules
        .referenced_dictionaries()
        .iter()
        .filter(|n| !dictionaries.contains_key(*n))
    {
        eprintln!(
            "warning: dictionary {missing:?} is not loaded (give --dictionary {missing}=FILE): tests on it are false"
        );
    }

    let view = MessageView::parse(&raw, &view_limits);
    let sender = args
        .from
        .clone()
        .or_else(|| addresses(&view, &["From"]).into_iter().next())
        .unwrap_or_default();
    let recipients = if args.rcpt.is_empty() {
        addresses(&view, &["To", "Cc"])
    } else {
        args.rcpt.clone()
    };
    let tls = args.tls_version.as_ref().map(|v| TlsInfo {
        version: v.clone(),
        cipher: args.tls_cipher.clone().unwrap_or_default(),
        client_cert_verified: false,
    });
    let spam = (args.spam_score.is_some() || args.spam_action.is_some()).then(|| Spam {
        score: args.spam_score.unwrap_or(0.0),
        action: args
            .spam_action
            .clone()
            .unwrap_or_else(|| "no action".into()),
    });
    let virus = args.virus.as_ref().map(|name| Virus { name: name.clone() });
    let facts = Facts {
        listener: &args.listener,
        sender_group: args.sender_group.as_deref(),
        policy: args.policy.as_deref(),
        auth_user: args.auth_user.as_deref(),
        client_ip: args.ip,
        helo: args.helo.as_deref(),
        spf: args.spf.as_deref(),
        dkim: args.dkim.as_deref(),
        dmarc: args.dmarc.as_deref(),
        tls: tls.as_ref(),
        spam: spam.as_ref(),
        virus: virus.as_ref(),
        ..Facts::new(&sender, &recipients, &view, &dictionaries)
    };
    if args.per_recipient {
        let groups = postern_filter::evaluate_per_recipient(&rules, &facts);
        if args.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&groups).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        outln!("envelope: <{sender}> → {}", recipients.join(", "));
        for g in &groups {
            outln!("recipients {}:", g.recipients.join(", "));
            outln!("  {}", g.outcome.to_string().replace('\n', "\n  "));
        }
        outln!(
            "-- {} recipient group(s): each would get its own copy of the message",
            groups.len()
        );
        return ExitCode::SUCCESS;
    }
    let report = postern_filter::dry_run(&rules, &facts);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        outln!("envelope: <{sender}> → {}", recipients.join(", "));
        outln!("{report}");
        if view.truncated {
            outln!(
                "note: the message was larger than the view's limits; rules saw part of its text"
            );
        }
    }
    ExitCode::SUCCESS
}

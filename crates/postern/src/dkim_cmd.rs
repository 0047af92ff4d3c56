//! `postern dkim …`: DKIM key tools (issue 10).
//!
//! - `keygen --domain D --selector S [--algorithm ed25519|rsa2048] [--out DIR]`
//!   writes `<DIR>/<domain>.<selector>.key` (default DIR `<data_dir>/dkim`)
//!   and prints the DNS TXT record to publish.
//! - `check --domain D --selector S [--key FILE]` looks the record up with
//!   the configured resolver (`[dns]`) and says whether it matches the key,
//!   and what to fix. Exit 0 match, 1 mismatch or lookup failure, 2 usage.
//! - `sign --domain D --selector S --key FILE [--simple] FILE|-` prints the
//!   message with a DKIM-Signature prepended (for tests and one-off mail).
//!
//! # Security
//! Private keys are written 0600 and never overwritten (`postern_auth::keys`);
//! only the public half is printed. Records from DNS are printed quoted.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postern_auth::keys::{self, Algorithm};
use postern_auth::sign::{SignOptions, Signer};

/// `--algorithm`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AlgorithmArg {
    /// Ed25519-SHA256 (RFC 8463).
    Ed25519,
    /// RSA-SHA256, 2048-bit key.
    Rsa2048,
}

/// `postern dkim keygen` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct KeygenArgs {
    /// The signing domain (d=), e.g. example.com.
    #[arg(long)]
    pub(crate) domain: String,
    /// The selector (s=), e.g. s2026.
    #[arg(long)]
    pub(crate) selector: String,
    /// Key algorithm.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Ed25519)]
    pub(crate) algorithm: AlgorithmArg,
    /// Directory for the key file (default: <data_dir>/dkim).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// The key `check` and `sign` use: domain, selector and where it is.
#[derive(clap::Args, Debug)]
pub(crate) struct KeyArgs {
    /// The signing domain (d=).
    #[arg(long)]
    pub(crate) domain: String,
    /// The selector (s=).
    #[arg(long)]
    pub(crate) selector: String,
    /// Private key file (default: <data_dir>/dkim/<domain>.<selector>.key).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
}

impl KeyArgs {
    /// Checks the names and loads the key: its path and the key, or the
    /// exit code after saying why.
    fn load(&self, config: Option<&Path>) -> Result<(PathBuf, keys::DkimKeyFile), ExitCode> {
        names(&self.domain, &self.selector)?;
        let path = key_path(config, self.key.as_deref(), &self.domain, &self.selector)?;
        let key = keys::load_key(&path).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })?;
        Ok((path, key))
    }
}

/// `postern dkim check` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
}

/// `postern dkim sign` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// Canonicalization simple/simple instead of relaxed/relaxed.
    #[arg(long)]
    pub(crate) simple: bool,
    /// The message file, `-` for stdin. Bare LF line ends become CRLF.
    pub(crate) file: PathBuf,
}

fn data_dir(config: Option<&Path>) -> Result<postern_config::Config, ExitCode> {
    let chosen = crate::config_file::choose(config);
    match crate::config_file::load(chosen.as_deref()) {
        Ok(l) => Ok(l.config),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn names(domain: &str, selector: &str) -> Result<(), ExitCode> {
    keys::check_name("domain", domain)
        .and_then(|()| keys::check_name("selector", selector))
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })
}

fn key_path(
    config: Option<&Path>,
    key: Option<&Path>,
    domain: &str,
    selector: &str,
) -> Result<PathBuf, ExitCode> {
    if let Some(k) = key {
        return Ok(k.to_path_buf());
    }
    let cfg = data_dir(config)?;
    Ok(cfg
        .data_dir
        .join("dkim")
        .join(keys::key_file_name(domain, selector)))
}

/// `postern dkim keygen`.
pub(crate) fn keygen(config: Option<&Path>, args: &KeygenArgs) -> ExitCode {
    if let Err(c) = names(&args.domain, &args.selector) {
        return c;
    }
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => match data_dir(config) {
            Ok(cfg) => cfg.data_dir.join("dkim"),
            Err(c) => return c,
        },
    };
    let path = dir.join(keys::key_file_name(&args.domain, &args.selector));
    if path.exists() {
        eprintln!("error: {}", keys::KeyError::Exists(path));
        return ExitCode::from(1);
    }
    let algorithm = match args.algorithm {
        AlgorithmArg::Ed25519 => Algorithm::Ed25519,
        AlgorithmArg::Rsa2048 => Algorithm::Rsa,
    };
    let (key, pem) = match keys::generate(algorithm) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = keys::write_key(&path, &pem) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    eprintln!("wrote {} (mode 0600)", path.display());
    eprintln!(
        "publish this TXT record, then run `postern dkim check --domain {} --selector {}`:",
        args.domain, args.selector
    );
    println!("{}", key.dns_record(&args.domain, &args.selector));
    ExitCode::SUCCESS
}

/// `postern dkim check`.
pub(crate) fn check(config: Option<&Path>, args: &CheckArgs) -> ExitCode {
    let (path, key) = match args.key.load(config) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let KeyArgs {
        domain, selector, ..
    } = &args.key;
    let cfg = match data_dir(config) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let resolver = match postern_dns::Resolver::new(&cfg.dns) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: setting up the DNS resolver ([dns]): {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let report = rt.block_on(postern_auth::check::lookup(
        &resolver, domain, selector, &key,
    ));
    println!("record  {}", report.name);
    for r in &report.records {
        println!("found   {r:?}");
    }
    println!("ours    {:?}", key.record_text());
    for f in &report.findings {
        let level = if f.fatal { "FAIL" } else { "WARN" };
        println!("{level}    {} [{}]", f.summary, f.id);
        println!("        fix: {}", f.fix);
    }
    if report.matches() {
        println!("OK      the published record matches {}", path.display());
        ExitCode::SUCCESS
    } else {
        println!(
            "MISMATCH the published record does not match {}",
            path.display()
        );
        ExitCode::from(1)
    }
}

/// `postern dkim sign`.
pub(crate) fn sign(config: Option<&Path>, args: &SignArgs) -> ExitCode {
    let (_, key) = match args.key.load(config) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let mut raw = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut raw)
    } else {
        std::fs::File::open(&args.file).and_then(|mut f| f.read_to_end(&mut raw))
    };
    if let Err(e) = read {
        eprintln!("error: {}: {e}", args.file.display());
        return ExitCode::from(2);
    }
    let message = postern_auth::canon::to_crlf(&raw);
    let options = SignOptions {
        header_relaxed: !args.simple,
        body_relaxed: !args.simple,
        ..SignOptions::default()
    };
    let signed = Signer::new(&key, &args.key.domain, &args.key.selector, &options)
        .and_then(|s| s.sign(&message));
    match signed {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout.write_all(&out).and_then(|()| stdout.flush()) {
                eprintln!("error: writing the message: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

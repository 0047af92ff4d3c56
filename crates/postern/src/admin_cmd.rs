//! `postern admin user add|passwd|remove|list` and `postern admin token
//! create|revoke|list`: who may use the web console and the HTTP API
//! (`[admin] http`, `docs/admin-http.md`).
//!
//! The files are the configured `[admin] users_file` / `tokens_file`
//! (written `0600`, replaced atomically); a running server re-reads them when
//! they change, so a removed user's sessions and a revoked token stop working
//! at once, without a restart.
//!
//! # Security
//! Passwords are read without echo (or from stdin) and stored as argon2id
//! hashes; a token's secret is printed once and stored only as its SHA-256.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use postern_admin::http::auth::{TokenScope, TokenStore, UserStore};

use crate::out::outln;

#[derive(Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Web console users.
    User {
        #[command(subcommand)]
        command: AdminUserCommand,
    },
    /// API tokens for scripts and Prometheus (`Authorization: Bearer …`).
    Token {
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AdminUserCommand {
    /// Add a user; the password is asked for twice without echo (or read from stdin).
    Add {
        /// User name.
        name: String,
    },
    /// Change a user's password (their sessions end).
    Passwd {
        /// User name.
        name: String,
    },
    /// Remove a user (their sessions end at once).
    Remove {
        /// User name.
        name: String,
    },
    /// The users.
    List,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AdminTokenCommand {
    /// Create a token and print its secret (shown once: store it now).
    Create {
        /// A name saying what uses it (`prometheus`, `backup-script`).
        name: String,
        /// Read only: views, searches and /metrics; every change is refused (403).
        #[arg(long)]
        read_only: bool,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Token name.
        name: String,
    },
    /// The tokens (names, creation, last use, revocation; never secrets).
    List,
}

pub(crate) fn run(config: Option<&Path>, cmd: &AdminCommand) -> ExitCode {
    let loaded = match crate::config_file::load_for_command(config) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let http = &loaded.config.admin_http;
    match cmd {
        AdminCommand::User { command } => user(&http.users_file, command),
        AdminCommand::Token { command } => token(&http.tokens_file, command),
    }
}

fn user(path: &Path, cmd: &AdminUserCommand) -> ExitCode {
    let store = match UserStore::open(path) {
        Ok(s) => s,
        Err(e) => return fail(path, &e),
    };
    let result = match cmd {
        AdminUserCommand::Add { name } => {
            let pw = match crate::user_cmd::read_password("postern admin user add NAME") {
                Ok(p) => p,
                Err(code) => return code,
            };
            store
                .add(name, &pw)
                .map(|()| format!("added user {name} ({})", path.display()))
        }
        AdminUserCommand::Passwd { name } => {
            let pw = match crate::user_cmd::read_password("postern admin user passwd NAME") {
                Ok(p) => p,
                Err(code) => return code,
            };
            store
                .set_password(name, &pw)
                .map(|()| format!("changed the password of {name}; their sessions ended"))
        }
        AdminUserCommand::Remove { name } => store
            .remove(name)
            .map(|()| format!("removed user {name}; their sessions ended")),
        AdminUserCommand::List => {
            let users = store.list();
            if users.is_empty() {
                Ok(format!(
                    "no admin users in {} (add one: postern admin user add NAME)",
                    path.display()
                ))
            } else {
                Ok(users
                    .iter()
                    .map(|u| format!("{:<24} created {}", u.name, u.created))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
    };
    match result {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(path, &e),
    }
}

fn token(path: &Path, cmd: &AdminTokenCommand) -> ExitCode {
    let store = match TokenStore::open(path) {
        Ok(s) => s,
        Err(e) => return fail(path, &e),
    };
    let result = match cmd {
        AdminTokenCommand::Create { name, read_only } => {
            let scope = if *read_only {
                TokenScope::Read
            } else {
                TokenScope::All
            };
            store.create_scoped(name, scope).map(|secret| {
                format!(
                    "{secret}\n(token {name}{}: shown once, stored only as its SHA-256 in {}; send \
                     it as `Authorization: Bearer {secret}`)",
                    if *read_only { ", read only" } else { "" },
                    path.display()
                )
            })
        }
        AdminTokenCommand::Revoke { name } => store
            .revoke(name)
            .map(|()| format!("revoked token {name}: it stops working at once")),
        AdminTokenCommand::List => {
            let tokens = store.list();
            if tokens.is_empty() {
                Ok(format!("no API tokens in {}", path.display()))
            } else {
                Ok(tokens
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<24} {:<10} created {}  last used {}{}",
                            t.name,
                            if t.scope == TokenScope::Read {
                                "read-only"
                            } else {
                                "all"
                            },
                            t.created,
                            t.last_used.as_deref().unwrap_or("never"),
                            t.revoked
                                .as_deref()
                                .map(|r| format!("  REVOKED {r}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
    };
    match result {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(path, &e),
    }
}

fn fail(path: &Path, e: &postern_admin::http::auth::AuthError) -> ExitCode {
    eprintln!("error: {} ({})", e, path.display());
    ExitCode::from(1)
}

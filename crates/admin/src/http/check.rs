//! What `config check` says about the admin HTTP listener: the sentences for
//! a listener that would be reachable off this host without TLS, one that
//! nobody can log in to (no admin user), and credential files other users
//! can read.
//!
//! # Security
//! Read-only: stats and reads the users file; never writes.

use std::os::unix::fs::PermissionsExt as _;

use super::auth::UserStore;
use super::serve::check_listen;
use crate::settings::HttpSettings;

/// Warnings for `settings` (empty when there is no listener or all is well).
pub fn config_warnings(settings: &HttpSettings) -> Vec<String> {
    let Some(addr) = settings.listen else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Err(e) = check_listen(addr, settings.tls.is_some()) {
        out.push(format!("{e} (the server will not start)"));
    }
    match UserStore::open(&settings.users_file) {
        Ok(users) if users.is_empty() => out.push(format!(
            "the admin HTTP listener {addr} has no admin user ({} is empty or missing): nobody \
             can log in to the console; add one with `postern admin user add NAME`",
            settings.users_file.display()
        )),
        Ok(_) => {}
        Err(e) => out.push(format!("admin users: {e}")),
    }
    for path in [&settings.users_file, &settings.tokens_file] {
        if let Ok(md) = std::fs::metadata(path)
            && md.permissions().mode() & 0o077 != 0
        {
            out.push(format!(
                "{} is accessible to other users (mode {:o}); run chmod 600 on it",
                path.display(),
                md.permissions().mode() & 0o777
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn warns_about_exposure_missing_users_and_loose_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = HttpSettings::new(dir.path());
        assert!(
            config_warnings(&s).is_empty(),
            "no listener, nothing to say"
        );
        s.listen = Some("0.0.0.0:8025".parse().unwrap());
        let w = config_warnings(&s);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("not a loopback address"), "{w:?}");
        assert!(w[1].contains("no admin user"), "{w:?}");
        s.listen = Some("127.0.0.1:8025".parse().unwrap());
        UserStore::open(&s.users_file)
            .unwrap()
            .add("alice", "long enough password")
            .unwrap();
        assert!(config_warnings(&s).is_empty(), "{:?}", config_warnings(&s));
        std::fs::set_permissions(&s.users_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = config_warnings(&s);
        assert!(w.len() == 1 && w[0].contains("chmod 600"), "{w:?}");
    }
}

//! Shared by the section modules' unit tests: a minimal valid file and a
//! loader for it plus a section under test.

use std::path::Path;

/// The smallest file that loads: one listener, one accepted domain.
pub(crate) const MINIMAL: &str = "data_dir = \"/var/lib/postern\"\nhostname = \"mx.example.com\"\n\n[[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:25\"\nkind = \"smtp\"\n\n[relay]\naccepted_domains = [\"example.com\"]\n";

/// Loads [`MINIMAL`] followed by `extra`, as `/etc/postern/postern.toml`.
pub(crate) fn load(extra: &str) -> Result<crate::Loaded, crate::ConfigError> {
    crate::load_str(
        &format!("{MINIMAL}{extra}"),
        "postern.toml",
        Path::new("/etc/postern"),
    )
}

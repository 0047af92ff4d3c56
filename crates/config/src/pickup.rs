//! `[pickup]`: the pickup folder, from the file to
//! `postern_pickup::PickupSettings`.
//!
//! ```toml
//! [pickup]
//! enabled = true                 # default
//! dir = "/var/lib/postern/pickup"  # default <data_dir>/pickup
//! interval = "1s"                # time between scans
//! ```
//!
//! The size limit is `[limits] max_message_size`, the badmail folder
//! `[delivery] badmail_dir`, and the name in the `Received:` header
//! `[delivery] hostname`.
//!
//! # Security
//! Parses operator input. Write access to the folder is the right to send
//! mail; the folder is created owner-only by the watcher, not here.

use std::path::Path;

use postern_pickup::PickupSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::error::ConfigError;
use crate::raw::Dur;

/// `[pickup]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawPickup {
    pub enabled: Option<Spanned<bool>>,
    pub dir: Option<Spanned<String>>,
    pub interval: Option<Spanned<Dur>>,
}

/// Builds the pickup settings; `delivery` gives the badmail folder and the
/// hostname, `max_message_size` the size limit.
pub(crate) fn build(
    raw: Option<Spanned<RawPickup>>,
    data_dir: &Path,
    delivery: &postern_delivery::DeliverySettings,
    max_message_size: u64,
    cx: &Ctx<'_>,
) -> Result<PickupSettings, ConfigError> {
    let mut s = PickupSettings::new(data_dir);
    s.badmail_dir.clone_from(&delivery.badmail_dir);
    s.hostname.clone_from(&delivery.hostname);
    s.max_message_size = max_message_size;
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    if let Some(v) = &r.enabled {
        s.enabled = *v.get_ref();
    }
    if let Some(v) = &r.dir {
        if v.get_ref().trim().is_empty() {
            return Err(cx.error(v.span(), "pickup.dir", "must not be empty"));
        }
        s.dir = crate::build::resolve(cx.base_dir, v.get_ref());
    }
    if let Some(v) = &r.interval {
        let d = v.get_ref().0;
        if d.is_zero() {
            return Err(cx.error(
                v.span(),
                "pickup.interval",
                "must be greater than zero, e.g. \"1s\"",
            ));
        }
        s.interval = d;
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::load;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn defaults_follow_data_dir_limits_and_delivery() {
        let c = load("[limits]\nmax_message_size = \"10MiB\"\n[delivery]\nbadmail_dir = \"bad\"\n")
            .unwrap()
            .config;
        let p = &c.pickup;
        assert!(p.enabled);
        assert_eq!(p.dir, Path::new("/var/lib/postern/pickup"));
        assert_eq!(p.badmail_dir, Path::new("/etc/postern/bad"));
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.max_message_size, 10 * 1024 * 1024);
        assert_eq!(p.hostname, "mx.example.com");
    }

    #[test]
    fn keys() {
        let c = load("[pickup]\nenabled = false\ndir = \"drop\"\ninterval = \"250ms\"\n")
            .unwrap()
            .config;
        assert!(!c.pickup.enabled);
        assert_eq!(c.pickup.dir, Path::new("/etc/postern/drop"));
        assert_eq!(c.pickup.interval, Duration::from_millis(250));
    }

    #[test]
    fn errors_name_the_place() {
        let err = |extra: &str| load(extra).unwrap_err().to_string();
        assert_eq!(
            err("[pickup]\ninterval = \"0s\"\n"),
            "postern.toml:12:12: pickup.interval: must be greater than zero, e.g. \"1s\""
        );
        assert_eq!(
            err("[pickup]\ndir = \" \"\n"),
            "postern.toml:12:7: pickup.dir: must not be empty"
        );
        assert_eq!(
            err("[pickup]\nfolder = \"x\"\n"),
            "postern.toml:12:1: pickup.folder: unknown key; allowed: \"enabled\", \"dir\", \"interval\""
        );
        assert!(
            err("[pickup]\nenabled = \"yes\"\n").starts_with("postern.toml:12:11: pickup.enabled:")
        );
    }
}

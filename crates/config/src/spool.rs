//! `[spool]`: the message spool, from the file to `postern_spool::SpoolSettings`.
//!
//! ```toml
//! [spool]
//! min_free = "100MiB"   # default; "0" turns the floor off
//! ```
//!
//! The spool lives in `<data_dir>/spool`.
//!
//! # Security
//! Parses operator input. The floor keeps a client (or a burst) from filling the
//! disk: below it new mail is refused at `MAIL` with `452 4.3.1`, like Postfix
//! `queue_minfree`.

use std::path::Path;

use postern_spool::SpoolSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::build::Ctx;
use crate::raw::Size;

/// `[spool]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSpool {
    pub min_free: Option<Spanned<Size>>,
}

/// Builds the spool settings; `max_message_size` is `[limits]`' (unknown after
/// an error there), for the warning about a floor that does not leave room for
/// one message.
pub(crate) fn build(
    raw: Option<Spanned<RawSpool>>,
    data_dir: &Path,
    max_message_size: Option<u64>,
    cx: &mut Ctx<'_>,
) -> SpoolSettings {
    let mut s = SpoolSettings::new(data_dir.join("spool"));
    let r = raw.map(Spanned::into_inner).unwrap_or_default();
    if let Some(v) = &r.min_free {
        s.min_free = v.get_ref().0;
        if s.min_free == 0 {
            cx.warn(
                Some(v.span()),
                "spool.min_free",
                "the free-space floor is off: a full disk is noticed only when a write \
                 fails (452 4.3.1 after DATA), and delivery state and logs may no longer \
                 fit; the default is \"100MiB\"",
            );
        } else if let Some(max_message_size) = max_message_size
            && s.min_free < max_message_size
        {
            cx.warn(
                Some(v.span()),
                "spool.min_free",
                format!(
                    "smaller than [limits] max_message_size ({max_message_size} bytes): \
                     Postfix's rule of thumb is a floor of at least 1.5 times the largest \
                     message"
                ),
            );
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::test_support::load;
    use std::path::Path;

    use postern_spool::DEFAULT_MIN_FREE;

    #[test]
    fn min_free_default_and_set() {
        let c = load("").unwrap().config;
        assert_eq!(c.server.spool.min_free, DEFAULT_MIN_FREE);
        assert_eq!(c.server.spool.dir, Path::new("/var/lib/postern/spool"));
        let l = load("[spool]\nmin_free = \"1GiB\"\n").unwrap();
        assert_eq!(l.config.server.spool.min_free, 1024 * 1024 * 1024);
        assert!(l.warnings.iter().all(|w| !w.to_string().contains("spool")));
    }

    #[test]
    fn a_floor_off_or_below_one_message_is_warned_about() {
        let l = load("[spool]\nmin_free = 0\n").unwrap();
        assert_eq!(l.config.server.spool.min_free, 0);
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("spool.min_free") && w.contains("off")),
            "{w:?}"
        );
        let l = load("[spool]\nmin_free = \"1MiB\"\n").unwrap();
        let w: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
        assert!(w.iter().any(|w| w.contains("max_message_size")), "{w:?}");
    }

    #[test]
    fn bad_min_free_names_the_place_the_key_and_what_is_allowed() {
        let err = load("[spool]\nmin_free = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("postern.toml:12:12"), "{err}");
        assert!(err.contains("spool.min_free"), "{err}");
        assert!(err.contains("MiB"), "{err}");
        let err = load("[spool]\nfloor = 1\n").unwrap_err().to_string();
        assert!(err.contains("floor"), "{err}");
    }
}

//! Small wordings shared by the pages: TLS versions in words, one line per
//! tracking event, sizes, shares, and running tracking-store queries off the
//! async threads.
//!
//! # Security
//! Returns plain strings; the templates escape them.

use std::fmt::Write as _;
use std::sync::Arc;

use postern_track::{MailEvent, TrackRecord};
use postern_trackdb::{StoreError, TrackStore};

/// Runs a tracking-store query on the blocking pool (the store is sync),
/// at most `QUERY_PERMITS` (crate::http::state) at a time. The permit goes
/// with the query into the blocking task: a request cancelled by its timeout
/// leaves the query running, and it still counts until it ends.
pub(crate) async fn store_call<T, F>(
    permits: &Arc<tokio::sync::Semaphore>,
    store: &Arc<dyn TrackStore>,
    f: F,
) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&dyn TrackStore) -> Result<T, StoreError> + Send + 'static,
{
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return Err("the tracking store is closed".to_owned());
    };
    let store = Arc::clone(store);
    let run = move || {
        let _permit = permit;
        f(store.as_ref())
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("the tracking store failed: {e}")),
        Err(_) => Err("the tracking store query was interrupted".to_owned()),
    }
}

/// `TLSv1.3` → `TLS 1.3`; `none` → `plaintext (no TLS)`; legacy versions say so.
pub(crate) fn tls_words(v: &str) -> String {
    match v {
        "none" | "" => "plaintext (no TLS)".to_owned(),
        "TLSv1.0" | "TLSv1" | "TLSv1.1" | "SSLv3" => format!("{v} (legacy)"),
        other => other.to_owned(),
    }
}

/// Whether a TLS version (or plaintext) is a risk to point out.
pub(crate) fn tls_is_weak(v: &str) -> bool {
    matches!(v, "none" | "" | "TLSv1.0" | "TLSv1" | "TLSv1.1" | "SSLv3")
}

/// One row of a share table: label, count, percent of the total.
#[derive(Debug, Clone)]
pub(crate) struct Share {
    pub label: String,
    pub count: u64,
    pub percent: String,
    /// Worth a warning (plaintext, legacy TLS).
    pub weak: bool,
}

/// The rows of a version mix, largest first.
pub(crate) fn shares(mix: &[(String, u64)]) -> Vec<Share> {
    let total: u64 = mix.iter().map(|(_, n)| n).sum();
    let mut rows: Vec<Share> = mix
        .iter()
        .map(|(k, n)| Share {
            label: tls_words(k),
            count: *n,
            percent: percent(*n, total),
            weak: tls_is_weak(k),
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    rows
}

/// `42.5 %` of `total` (`-` for an empty total).
pub(crate) fn percent(n: u64, total: u64) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    let tenths = n.saturating_mul(1000) / total;
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// `a@x, b@y (+3 more)`.
pub(crate) fn list_short(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        let _ = write!(s, " (+{} more)", items.len() - max);
    }
    s
}

/// The reverse path as shown (`<>` for the null sender).
pub(crate) fn sender(s: &str) -> String {
    if s.is_empty() {
        "<>".to_owned()
    } else {
        s.to_owned()
    }
}

/// One line saying what a tracking record is about.
pub(crate) fn describe(r: &TrackRecord) -> String {
    match &r.event {
        MailEvent::Received(x) => format!(
            "received from {} ({}) HELO {} on {}, {} bytes, {}, {} for {}",
            x.client_name.as_deref().unwrap_or("unknown name"),
            x.peer,
            x.helo,
            x.listener,
            x.size,
            x.tls
                .as_deref()
                .map_or_else(|| "plaintext".to_owned(), |t| format!("TLS {t}")),
            sender(&x.sender),
            list_short(&x.rcpts, 5)
        ),
        MailEvent::Queued(x) => format!(
            "queued ({}), {} recipient(s), {} bytes",
            x.origin, x.rcpt_count, x.size
        ),
        MailEvent::Attempt(a) => {
            let tls = a.tls.as_ref().map_or_else(
                || "no TLS".to_owned(),
                |t| format!("{} {}", t.version, t.cipher),
            );
            format!(
                "attempt {} to {} ({}) for {}: {} — {}{}",
                a.attempt,
                a.mx,
                if a.ip.is_empty() { "no address" } else { &a.ip },
                list_short(&a.rcpts, 5),
                a.outcome,
                tls,
                a.reply
                    .as_deref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            )
        }
        MailEvent::Delivered(o) | MailEvent::Deferred(o) | MailEvent::Bounced(o) => format!(
            "{} {} via {} {}{}{}",
            r.event.name(),
            o.rcpt,
            o.mx,
            o.ip,
            o.reply
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default(),
            o.cause
                .as_ref()
                .map(|c| format!(" [{}]", c.id))
                .unwrap_or_default()
        ),
        MailEvent::DsnSent(d) => format!(
            "{} DSN to {} for {}{}",
            d.kind,
            sender(&d.to),
            list_short(&d.rcpts, 5),
            d.suppressed
                .as_deref()
                .map(|s| format!(" (suppressed: {s})"))
                .unwrap_or_default()
        ),
        MailEvent::Expired(e) => format!(
            "expired after {} s (lifetime {} s): {}",
            e.age_secs,
            e.lifetime_secs,
            list_short(&e.rcpts, 5)
        ),
        MailEvent::Badmail(b) => format!("moved to badmail: {}", b.reason),
        MailEvent::Held(q) | MailEvent::Released(q) | MailEvent::Deleted(q) => format!(
            "{} by the operator via {} ({} recipient(s))",
            r.event.name(),
            q.via,
            q.rcpts.len()
        ),
        MailEvent::Filtered(f) => format!("content checks: {} decision(s)", f.decisions.len()),
        MailEvent::Quarantined(q) => format!("quarantined in {}: {}", q.quarantine, q.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordings() {
        assert_eq!(percent(1, 3), "33.3 %");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(tls_words("none"), "plaintext (no TLS)");
        assert_eq!(tls_words("TLSv1.0"), "TLSv1.0 (legacy)");
        let s = shares(&[("TLSv1.3".into(), 3), ("none".into(), 1)]);
        assert_eq!(s[0].label, "TLSv1.3");
        assert!(s[1].weak && !s[0].weak);
        assert_eq!(
            list_short(&["a".into(), "b".into(), "c".into()], 2),
            "a, b (+1 more)"
        );
        assert_eq!(sender(""), "<>");
    }
}

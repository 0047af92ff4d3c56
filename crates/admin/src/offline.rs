//! The verbs while the server is stopped: `hold`, `release` and `delete` act on
//! the spool directly; `retry` and `flush` need the scheduler and say so.
//!
//! The spool is opened with [`Spool::open`], which takes the spool's lock
//! file: a server starting meanwhile fails to open the spool instead of racing
//! us, and if a server already runs (its admin socket did not answer, or is
//! disabled) we fail with [`OfflineError::Locked`] instead of racing it.
//! Opening also runs the spool's recovery, as a server start would.
//!
//! Records and events are the ones the scheduler writes: a `hold` line in
//! `state/<id>` (fsynced), `Spool::remove` for a delete, and `held`,
//! `released`, `deleted` in the mail log with `via = "spool"`.
//!
//! # Security
//! Writes only below the spool directory, to names built from a [`QueueId`],
//! and appends to the configured mail log.

use std::path::Path;

use postern_spool::{
    Durability, MessageState, QueueId, Spool, SpoolError, SpoolOp, SpoolSettings, StateRecord,
    StateStore,
};
use postern_track::{MailEvent, MailLog, QueueAction};

use crate::control::{Verb, VerbOutcome, VerbReport};

/// Why an offline verb could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// Another process holds the spool lock: a server runs.
    #[error(
        "the spool at {0} is locked by a running server, but its admin socket does not answer \
         (is [admin] enabled = false?); stop the server or enable the admin socket"
    )]
    Locked(String),
    /// The spool could not be opened.
    #[error("cannot open the spool: {0}")]
    Spool(#[from] SpoolError),
}

/// Applies `verb` to the spool of a stopped server; events go to `mail_log`.
pub fn apply(
    settings: &SpoolSettings,
    mail_log: Option<&Path>,
    verb: &Verb,
) -> Result<VerbReport, OfflineError> {
    let id = match verb {
        Verb::Retry(_) | Verb::Flush(_) => {
            return Ok(VerbReport::outcome(verb, VerbOutcome::NotRunning));
        }
        Verb::Hold(id) | Verb::Release(id) | Verb::Delete(id) => *id,
    };
    let spool = match Spool::open(settings) {
        Ok((s, _)) => s,
        Err(SpoolError::Io {
            op: SpoolOp::Lock, ..
        }) => return Err(OfflineError::Locked(settings.dir.display().to_string())),
        Err(e) => return Err(e.into()),
    };
    let log = match mail_log {
        Some(p) => MailLog::open(p).unwrap_or_else(|e| {
            tracing::warn!(path = %p.display(), error = %e, "cannot open the mail log; no event recorded");
            MailLog::disabled()
        }),
        None => MailLog::disabled(),
    };
    let report = match verb {
        Verb::Delete(_) => delete(&spool, &log, verb, id),
        _ => hold(&spool, &log, verb, id, matches!(verb, Verb::Hold(_))),
    };
    log.flush();
    Ok(report.unwrap_or_else(|e| {
        VerbReport::new(verb, VerbOutcome::Failed, (0, 0, 0), Some(e.to_string()))
    }))
}

/// The envelope's addresses of recipients not final in `state`.
fn open_addresses(env: &postern_spool::Envelope, state: &MessageState) -> Vec<String> {
    env.recipients
        .iter()
        .zip(&state.rcpts)
        .filter(|(_, r)| !r.status.is_final())
        .map(|(e, _)| e.address.clone())
        .collect()
}

fn load(
    spool: &Spool,
    id: &QueueId,
) -> Result<Option<(postern_spool::Envelope, MessageState)>, SpoolError> {
    let env = match spool.envelope(id) {
        Ok(env) => env,
        Err(SpoolError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let n = env.recipients.len();
    let state = StateStore::new(spool.dir())
        .load(id, n)?
        .unwrap_or_else(|| MessageState::new(n));
    Ok(Some((env, state)))
}

fn hold(
    spool: &Spool,
    log: &MailLog,
    verb: &Verb,
    id: QueueId,
    held: bool,
) -> Result<VerbReport, SpoolError> {
    let Some((env, state)) = load(spool, &id)? else {
        return Ok(VerbReport::outcome(verb, VerbOutcome::NotFound));
    };
    if state.is_final() {
        return Ok(VerbReport::outcome(verb, VerbOutcome::Finishing));
    }
    if state.is_held() == held {
        let o = if held {
            VerbOutcome::AlreadyHeld
        } else {
            VerbOutcome::NotHeld
        };
        return Ok(VerbReport::outcome(verb, o));
    }
    let rec = StateRecord::Hold {
        held,
        at_ms: crate::view::now_ms(),
    };
    StateStore::new(spool.dir()).append(&id, &[rec], Durability::Sync)?;
    let rcpts = open_addresses(&env, &state);
    let n = rcpts.len();
    let action = QueueAction {
        rcpts,
        via: "spool".into(),
        in_flight: 0,
        by: String::new(),
    };
    log.emit(
        id,
        if held {
            MailEvent::Held(action)
        } else {
            MailEvent::Released(action)
        },
    );
    Ok(VerbReport::new(verb, VerbOutcome::Done, (1, n, 0), None))
}

fn delete(
    spool: &Spool,
    log: &MailLog,
    verb: &Verb,
    id: QueueId,
) -> Result<VerbReport, SpoolError> {
    let Some((env, state)) = load(spool, &id)? else {
        return Ok(VerbReport::outcome(verb, VerbOutcome::NotFound));
    };
    match spool.remove(&id) {
        Ok(()) => {}
        Err(SpoolError::NotFound(_)) => {
            return Ok(VerbReport::outcome(verb, VerbOutcome::NotFound));
        }
        Err(e) => return Err(e),
    }
    let rcpts = open_addresses(&env, &state);
    let n = rcpts.len();
    log.emit(
        id,
        MailEvent::Deleted(QueueAction {
            rcpts,
            via: "spool".into(),
            in_flight: 0,
            by: String::new(),
        }),
    );
    Ok(VerbReport::new(verb, VerbOutcome::Done, (1, n, 0), None))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use postern_spool::{Envelope, EnvelopeRecipient, MailParams, Receipt};

    fn commit(spool: &Spool, rcpts: &[&str]) -> QueueId {
        let mut inc = spool.begin().unwrap();
        inc.write_all(b"Subject: t\r\n\r\nhi\r\n").unwrap();
        let id = *inc.queue_id();
        inc.commit(Envelope {
            queue_id: id,
            received_at: String::new(),
            reverse_path: "a@example.com".into(),
            recipients: rcpts
                .iter()
                .map(|r| EnvelopeRecipient {
                    address: (*r).into(),
                    ..EnvelopeRecipient::default()
                })
                .collect(),
            params: MailParams::default(),
            receipt: Receipt::default(),
            message_size: 0,
            added_headers: String::new(),
            hold: None,
            quarantine: None,
            require_tls: false,
            content: Vec::new(),
            bounce: None,
            message_id: None,
            subject: None,
        })
        .unwrap();
        id
    }

    #[test]
    fn hold_release_delete_on_a_stopped_spool() {
        let dir = tempfile::tempdir().unwrap();
        let settings = SpoolSettings::new(dir.path().join("spool"));
        let log_path = dir.path().join("mail.log");
        let id = {
            let (spool, _) = Spool::open(&settings).unwrap();
            commit(&spool, &["b@example.net", "c@example.org"])
        };
        let run = |v: Verb| apply(&settings, Some(&log_path), &v).unwrap();
        let r = run(Verb::Hold(id));
        assert_eq!(r.outcome, VerbOutcome::Done);
        assert_eq!(r.text, format!("held {id} (2 recipients)"));
        assert_eq!(run(Verb::Hold(id)).outcome, VerbOutcome::AlreadyHeld);
        let st = StateStore::new(&settings.dir)
            .load(&id, 2)
            .unwrap()
            .unwrap();
        assert!(st.is_held());
        assert_eq!(run(Verb::Release(id)).outcome, VerbOutcome::Done);
        assert_eq!(run(Verb::Release(id)).outcome, VerbOutcome::NotHeld);
        assert_eq!(run(Verb::Retry(Some(id))).outcome, VerbOutcome::NotRunning);
        assert_eq!(
            run(Verb::Flush("example.net".into())).outcome,
            VerbOutcome::NotRunning
        );
        let r = run(Verb::Delete(id));
        assert_eq!(r.outcome, VerbOutcome::Done, "{}", r.text);
        assert!(!settings.dir.join("msg").join(id.as_str()).exists());
        assert!(!StateStore::new(&settings.dir).path(&id).exists());
        assert_eq!(run(Verb::Delete(id)).outcome, VerbOutcome::NotFound);
        let names: Vec<_> = postern_track::read_log(&log_path, &id)
            .unwrap()
            .iter()
            .map(|r| r.event.name())
            .collect();
        assert_eq!(names, ["held", "released", "deleted"]);
    }

    #[test]
    fn a_locked_spool_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = SpoolSettings::new(dir.path().join("spool"));
        let (spool, _) = Spool::open(&settings).unwrap();
        let id = commit(&spool, &["b@example.net"]);
        let err = apply(&settings, None, &Verb::Hold(id)).unwrap_err();
        assert!(matches!(err, OfflineError::Locked(_)), "{err}");
        assert!(err.to_string().contains("admin socket"));
    }
}

//! Reading the mail log back: the records about one message, in file order
//! (`postern queue show`, the admin API's message view).
//!
//! A linear scan of one file, like `grep`: each line is first searched for the
//! queue id as bytes and only matching lines are parsed. Good enough for an
//! operator's look-up; the tracking database will index the same records.
//!
//! # Security
//! The log is our own output, but it holds remote replies and may be damaged
//! (a crash mid-line, a disk full): lines longer than [`MAX_LINE`], lines that
//! do not parse and records of events this version does not know are skipped,
//! never fatal. Reads only the file it is given.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use postern_spool::QueueId;

use crate::event::TrackRecord;

/// Longest line considered; longer ones are skipped (records are a few KiB:
/// replies are cut to 512 characters, certificates to their facts).
pub const MAX_LINE: usize = 1024 * 1024;

/// The records about `queue_id` in the mail log at `path`, oldest first.
/// A missing file is an empty history.
pub fn read_log(path: &Path, queue_id: &QueueId) -> io::Result<Vec<TrackRecord>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    records_for(BufReader::new(file), queue_id)
}

/// [`read_log`] over any reader.
pub fn records_for(mut reader: impl BufRead, queue_id: &QueueId) -> io::Result<Vec<TrackRecord>> {
    let needle = queue_id.as_str().as_bytes();
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded read: at most MAX_LINE + 1 bytes of one line are kept.
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            // Too long: skip the rest of this line.
            skip_line(&mut reader)?;
            continue;
        }
        if !contains(&line, needle) {
            continue;
        }
        if let Ok(rec) = serde_json::from_slice::<TrackRecord>(&line)
            && rec.queue_id == *queue_id
        {
            out.push(rec);
        }
    }
    Ok(out)
}

fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            reader.consume(i + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::{MailEvent, QueueAction, Queued};
    use crate::log::MailLog;

    #[test]
    fn reads_one_messages_records_and_skips_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        let log = MailLog::open(&path).unwrap();
        let a = QueueId::generate();
        let b = QueueId::generate();
        log.emit(a, MailEvent::Queued(Queued::default()));
        log.emit(b, MailEvent::Queued(Queued::default()));
        log.emit(
            a,
            MailEvent::Held(QueueAction {
                rcpts: vec!["x@example.net".into()],
                via: "admin".into(),
                in_flight: 0,
                by: String::new(),
            }),
        );
        log.flush();
        // Damage: a torn line naming `a`, an unknown event, an overlong line.
        let extra = [
            format!("{{\"queue_id\":\"{a}\",\"ev\n"),
            format!(
                "{{\"ts\":\"t\",\"event_id\":\"E\",\"queue_id\":\"{a}\",\"event\":\"future\"}}\n"
            ),
            format!("{}{a}\n", "x".repeat(MAX_LINE + 10)),
        ]
        .concat();
        std::fs::write(
            &path,
            [std::fs::read(&path).unwrap(), extra.into_bytes()].concat(),
        )
        .unwrap();
        log.emit(a, MailEvent::Queued(Queued::default()));
        log.flush();
        let recs = read_log(&path, &a).unwrap();
        let names: Vec<_> = recs.iter().map(|r| r.event.name()).collect();
        assert_eq!(names, ["queued", "held", "queued"]);
        assert_eq!(read_log(&path, &b).unwrap().len(), 1);
        assert!(
            read_log(&dir.path().join("none.log"), &a)
                .unwrap()
                .is_empty()
        );
    }
}

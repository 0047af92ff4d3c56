//! The rules' `notify "ADDRESS" template "NAME"` action: after the message
//! is committed, one notification per request is built from the
//! `[[notification]]` template and queued like any message (null sender,
//! `Auto-Submitted: auto-generated`), then announced to delivery.
//!
//! # Security
//! A notification goes from `<>` (RFC 3834 §3.3 and RFC 5321 §4.5.5: no
//! reply, no bounce loop) with `Auto-Submitted: auto-generated`. Values put
//! into the template (`{sender}`, `{subject}` …) come from the client: made
//! one line (control characters replaced), bounded to 200 characters, and
//! the subject RFC 2047-encoded when not ASCII (`postern_filter::
//! unstructured_field`), so no header can be
//! injected. The address comes from the rule file (checked at parse time).
//!
//! # Standards
//! RFC 3834 (automatic responses), RFC 5322 §3.6 (required fields),
//! RFC 2047 (encoded words).

use postern_spool::{Envelope, EnvelopeRecipient};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::settings::Notification;

/// What a template can say about the message.
pub(super) struct About<'a> {
    pub(super) sender: &'a str,
    pub(super) recipients: &'a [String],
    pub(super) subject: &'a str,
    pub(super) rule: &'a str,
    pub(super) queue_ids: &'a str,
    pub(super) reason: &'a str,
}

/// One line, printable, at most 200 characters.
fn line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

fn fill(template: &str, about: &About<'_>) -> String {
    template
        .replace(
            "{sender}",
            &line(if about.sender.is_empty() {
                "<>"
            } else {
                about.sender
            }),
        )
        .replace("{recipients}", &line(&about.recipients.join(", ")))
        .replace("{subject}", &line(about.subject))
        .replace("{rule}", &line(about.rule))
        .replace("{queue_id}", &line(about.queue_ids))
        .replace("{reason}", &line(about.reason))
}

/// The notification message (CRLF line ends).
pub(super) fn build(
    t: &Notification,
    to: &str,
    from: &str,
    hostname: &str,
    about: &About<'_>,
) -> Vec<u8> {
    let subject = postern_filter::unstructured_field("Subject", &fill(&t.subject, about));
    let body = fill(&t.body, about)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let id = postern_spool::QueueId::generate();
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\n{subject}Date: {date}\r\n\
         Message-ID: <{id}.notify@{hostname}>\r\nAuto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Queues the notifications the rules asked for (after the message
    /// itself is durable). A failure is logged; the message stays accepted.
    pub(super) async fn send_notifications(
        &mut self,
        requests: Vec<(postern_filter::Notify, String)>,
        base: &Envelope,
        about: &About<'_>,
    ) {
        let shared = std::sync::Arc::clone(&self.ctx.shared);
        let hostname = self.ctx.listener.hostname.clone();
        for (n, reason) in requests {
            let Some(t) = shared
                .content
                .settings
                .notifications
                .iter()
                .find(|t| t.name == n.template)
            else {
                self.in_tx(|| {
                    tracing::warn!(template = %n.template, rule = %n.rule,
                        "notify: no [[notification]] of that name; nothing sent");
                });
                continue;
            };
            let from = t
                .from
                .clone()
                .unwrap_or_else(|| format!("postmaster@{hostname}"));
            let about = About {
                rule: &n.rule,
                reason: &reason,
                ..*about
            };
            let bytes = build(t, &n.address, &from, &hostname, &about);
            let mut envelope = base.clone();
            envelope.reverse_path = String::new();
            envelope.recipients = vec![EnvelopeRecipient {
                address: n.address.clone(),
                ..EnvelopeRecipient::default()
            }];
            envelope.params = postern_spool::MailParams::default();
            envelope.added_headers.clear();
            envelope.hold = None;
            envelope.quarantine = None;
            envelope.require_tls = false;
            envelope.content = vec![postern_spool::ContentDecision {
                by: format!("rule:{}", n.rule),
                verdict: format!("notification {:?} about {}", n.template, about.queue_ids),
                action: String::new(),
            }];
            envelope.bounce = None;
            let spool = self.ctx.spool.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let io = spool.clone();
            io.execute(move || {
                let inc = match spool
                    .begin()
                    .and_then(|mut inc| inc.write_all(&bytes).map(|()| inc))
                {
                    Ok(inc) => inc,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut envelope = envelope;
                envelope.queue_id = *inc.queue_id();
                inc.commit_then(envelope, move |res| {
                    let _ = tx.send(res);
                });
            });
            match rx.await {
                Ok(Ok(env)) => {
                    self.event(&format!(
                        "notification to <{}> queued as {}",
                        n.address, env.queue_id
                    ));
                    if let Some(hook) = &self.ctx.on_queued {
                        hook(&crate::server::Accepted {
                            queue_id: env.queue_id,
                            envelope: &env,
                            session: &self.id,
                        });
                    }
                }
                Ok(Err(e)) => self
                    .in_tx(|| tracing::error!(error = %e, "notify: cannot queue the notification")),
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_with_one_line_values() {
        let t = Notification {
            name: "hr".into(),
            subject: "Notice: {subject}".into(),
            body: "From {sender} to {recipients}\nrule {rule} ({reason}), {queue_id}\n".into(),
            from: None,
        };
        let rcpts = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let about = About {
            sender: "x@example.org",
            recipients: &rcpts,
            subject: "hi\r\nBcc: evil@example.net",
            rule: "r1",
            queue_ids: "Q1",
            reason: "quarantine",
        };
        let m = String::from_utf8(build(
            &t,
            "hr@example.com",
            "postmaster@mx.example",
            "mx.example",
            &about,
        ))
        .unwrap();
        assert!(
            m.contains("Subject: Notice: hi  Bcc: evil@example.net\r\n"),
            "{m}"
        );
        assert!(!m.contains("\r\nBcc:"), "{m}");
        assert!(m.contains("Auto-Submitted: auto-generated"), "{m}");
        assert!(
            m.contains(
                "From x@example.org to a@example.com, b@example.com\r\nrule r1 (quarantine), Q1\r\n"
            ),
            "{m}"
        );
        let about = About {
            subject: "Grüße",
            ..about
        };
        let m = String::from_utf8(build(
            &t,
            "hr@example.com",
            "p@mx.example",
            "mx.example",
            &about,
        ))
        .unwrap();
        assert!(m.contains("Subject: =?UTF-8?B?"), "{m}");
    }
}

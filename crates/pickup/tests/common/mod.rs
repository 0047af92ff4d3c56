//! Test support: a transport that defers every recipient, so picked-up
//! messages stay queued where the tests can look at them, and delivery
//! settings for a temporary directory.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use postern_delivery::{DeliverySettings, Job, JobFeed, JobOutcome, RcptResult, Transport};

/// Answers `451 4.3.0 try later` for every recipient of every job.
#[derive(Debug, Default)]
pub struct Deferring;

impl Transport for Deferring {
    async fn run(self: Arc<Self>, job: Job, mut feed: JobFeed) {
        let mut job = job;
        loop {
            let results = job
                .rcpts
                .iter()
                .map(|i| {
                    let mut r = RcptResult::deferred(*i, postern_delivery::cause::internal("test"));
                    r.reply = Some("451 4.3.0 try later".into());
                    r
                })
                .collect();
            let outcome = JobOutcome {
                job: job.clone(),
                results,
            };
            match feed.complete(outcome, true).await {
                Some(next) => job = next,
                None => return,
            }
        }
    }
}

pub fn settings(dir: &std::path::Path) -> DeliverySettings {
    let mut s = DeliverySettings::new(dir);
    s.hostname = "mx.postern.test".into();
    s.mail_log = None;
    s
}

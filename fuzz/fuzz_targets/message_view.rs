//! Fuzzes the decoded message view (postern-content) on its own: any bytes — a
//! hostile MIME structure, broken boundaries, bad encodings, deep nesting —
//! must give a view within its limits and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_content::{MessageView, ViewLimits};

const LIMITS: ViewLimits = ViewLimits {
    max_text: 64 * 1024,
    max_parts: 50,
    max_depth: 8,
};

fuzz_target!(|data: &[u8]| {
    let view = MessageView::parse(data, &LIMITS);
    // The body text and the attachments' texts are bounded by max_text.
    assert!(view.body_text.len() <= LIMITS.max_text, "body text over the limit");
    let attached: usize = view
        .attachments
        .iter()
        .filter_map(|a| a.text.as_ref().map(String::len))
        .sum();
    assert!(attached <= LIMITS.max_text, "attachment text over the limit");
    assert!(
        view.attachments.iter().all(|a| a.depth <= LIMITS.max_depth + 1),
        "deeper than max_depth"
    );
    let _ = view.header("subject").count();
});

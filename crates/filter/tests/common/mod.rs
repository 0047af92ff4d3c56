//! Shared fixtures for the filter tests: a message view built field by field (the MIME
//! tests build theirs from real .eml text), session facts, and one-line helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use postern_content::{Attachment, Dictionary, HeaderField, MessageView};
use postern_filter::{Facts, Outcome, RuleSet, Spam, TlsInfo, Virus};

pub type Dicts = BTreeMap<String, Arc<Dictionary>>;

pub fn header(name: &str, value: &str) -> HeaderField {
    HeaderField {
        name: name.to_owned(),
        raw: value.to_owned(),
        decoded: value.to_owned(),
    }
}

pub fn message() -> MessageView {
    MessageView {
        size: 52_000,
        headers: vec![
            header("From", "Big Boss <ceo@example.com>"),
            header("To", "bob@corp.example"),
            header("Subject", "Invoice 42 urgent"),
            header("X-Mailer", "PHPMailer 6.1"),
            header("Received", "from a.example"),
            header("Received", "from b.example"),
        ],
        subject: "Invoice 42 urgent".to_owned(),
        body_text: "Hello,\nPlease wire the FREE   money now.\nCall +1 555 0100.\n".to_owned(),
        attachments: vec![
            Attachment {
                filename: Some("invoice.exe".to_owned()),
                declared_type: "application/octet-stream".to_owned(),
                detected_type: Some("application/x-msdownload".to_owned()),
                size: 40_000,
                text: None,
                depth: 1,
            },
            Attachment {
                filename: Some("notes.txt".to_owned()),
                declared_type: "text/plain".to_owned(),
                detected_type: Some("text/plain".to_owned()),
                size: 300,
                text: Some("secret project apollo".to_owned()),
                depth: 1,
            },
        ],
        truncated: false,
    }
}

pub fn recipients() -> Vec<String> {
    vec![
        "bob@corp.example".to_owned(),
        "carol@other.example".to_owned(),
    ]
}

pub fn tls() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".to_owned(),
        cipher: "TLS13_AES_128_GCM_SHA256".to_owned(),
        client_cert_verified: false,
    }
}

pub fn spam() -> Spam {
    Spam {
        score: 6.5,
        action: "add header".to_owned(),
    }
}

pub fn virus() -> Virus {
    Virus {
        name: "Eicar-Signature".to_owned(),
    }
}

/// A session with everything set (except virus and auth): the table tests' default.
pub fn facts<'a>(
    msg: &'a MessageView,
    rcpts: &'a [String],
    tls: &'a TlsInfo,
    spam: &'a Spam,
    dicts: &'a Dicts,
) -> Facts<'a> {
    Facts {
        listener: "inbound",
        sender_group: Some("ALLOWLIST"),
        policy: Some("TRUSTED"),
        client_ip: Some("192.0.2.7".parse().expect("ip")),
        helo: Some("mail.example.com"),
        spf: Some("pass"),
        dkim: Some("fail"),
        dmarc: Some("fail"),
        tls: Some(tls),
        spam: Some(spam),
        ..Facts::new("Alice@Example.COM", rcpts, msg, dicts)
    }
}

pub fn rules(src: &str) -> RuleSet {
    match RuleSet::parse(src, "test.rules") {
        Ok(r) => r,
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("rules do not parse:\n{}\n---\n{src}", list.join("\n"))
        }
    }
}

/// The condition wrapped in a rule that adds a header when it holds.
pub fn holds(cond: &str, facts: &Facts<'_>) -> bool {
    let rs = rules(&format!(
        "rule \"t\" {{ if {cond} then add-header \"X-Hit\" \"1\" }}"
    ));
    let out = postern_filter::evaluate(&rs, facts);
    !out.hits.is_empty()
}

pub fn eval(src: &str, facts: &Facts<'_>) -> Outcome {
    postern_filter::evaluate(&rules(src), facts)
}

pub fn dictionary(name: &str, text: &str) -> Arc<Dictionary> {
    Arc::new(Dictionary::parse(name, text).expect("dictionary parses"))
}

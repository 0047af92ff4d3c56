//! Fuzzes the filter rule parser (postern-filter): any input must parse or give errors
//! with positions, never panic, never recurse without bound, never compile an unbounded
//! regex. Input that parses is evaluated (message mode, per recipient, and the dry run,
//! printed) against one fixed message, session and dictionary, and its header edits are
//! applied to the message's header section; none of it may panic. The input is also used
//! as a hostile header section for a fixed set of edits.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use postern_content::{Dictionary, MessageView, ViewLimits};
use postern_filter::{Facts, HeaderEdit, Outcome, RuleSet, Spam, TlsInfo, Virus, apply_header_edits};

const MESSAGE: &[u8] = b"From: Big Boss <ceo@example.com>\r\n\
Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=\r\n\
X-Mailer: PHPMailer 6.1\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nPlease wire the free money now. Call +1 555 0100.\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''invoice%20M%C3%A4rz.exe\r\n\
Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n";

struct Fixture {
    view: MessageView,
    dicts: BTreeMap<String, Arc<Dictionary>>,
    rcpts: Vec<String>,
    tls: TlsInfo,
    spam: Spam,
    virus: Virus,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut dicts = BTreeMap::new();
        for name in ["words", "spam-words", "x", "a", "d"] {
            if let Ok(d) = Dictionary::parse(name, "free money, 3\nwire\n@example.com\nceo@example.com\n") {
                dicts.insert(name.to_owned(), Arc::new(d));
            }
        }
        Fixture {
            view: MessageView::parse(MESSAGE, &ViewLimits::default()),
            dicts,
            rcpts: vec!["bob@corp.example".to_owned(), "carol@other.example".to_owned()],
            tls: TlsInfo {
                version: "TLSv1.3".to_owned(),
                cipher: "TLS13_AES_128_GCM_SHA256".to_owned(),
                client_cert_verified: true,
            },
            spam: Spam { score: 6.5, action: "add header".to_owned() },
            virus: Virus { name: "Eicar-Signature".to_owned() },
        }
    })
}

fn fixed_edits() -> &'static Outcome {
    static O: OnceLock<Outcome> = OnceLock::new();
    O.get_or_init(|| Outcome {
        header_edits: vec![
            HeaderEdit::Add { name: "X-Spam-Flag".into(), value: "YES".into() },
            HeaderEdit::Remove { name: "Received".into() },
            HeaderEdit::Set { name: "Subject".into(), value: "grüße".into() },
            HeaderEdit::Set { name: "X-Absent".into(), value: "ü".repeat(100) },
        ],
        subject_prefix: Some("[Verdächtig] ".into()),
        ..Outcome::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = apply_header_edits(data, fixed_edits());
    let source = String::from_utf8_lossy(data);
    let Ok(rules) = RuleSet::parse(&source, "fuzz.rules") else {
        return;
    };
    let f = fixture();
    let facts = Facts {
        listener: "inbound",
        sender_group: Some("ALLOWLIST"),
        auth_user: Some("alice"),
        spf: Some("pass"),
        dmarc: Some("fail"),
        tls: Some(&f.tls),
        spam: Some(&f.spam),
        virus: Some(&f.virus),
        client_ip: Some(std::net::IpAddr::from([192, 0, 2, 7])),
        ..Facts::new("alice@example.com", &f.rcpts, &f.view, &f.dicts)
    };
    let outcome = postern_filter::evaluate(&rules, &facts);
    let _ = outcome.to_string();
    let header_end = MESSAGE.windows(4).position(|w| w == b"\r\n\r\n").map_or(MESSAGE.len(), |i| i + 2);
    let _ = apply_header_edits(&MESSAGE[..header_end], &outcome);
    let _ = postern_filter::evaluate_per_recipient(&rules, &facts);
    let _ = postern_filter::dry_run(&rules, &facts).to_string();
});

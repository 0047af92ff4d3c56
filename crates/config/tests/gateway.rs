//! `[[sender_group]]`, `[[mail_flow_policy]]`, `[[dns_list]]`: a full table
//! loads; each mistake is reported with file:line:column, the key and what is
//! allowed; `config check` lints the table.

mod common;

use common::{error, load, warnings, with};

const TABLE: &str = r#"
[[dns_list]]
zone = "zen.dnsbl.example"
codes = "127.0.0.[2..11]"
weight = 2

[[sender_group]]
name = "BLOCKLIST"
match = ["dnsbl:zen.dnsbl.example=127.0.0.2", "rdns:.dynamic.example", "203.0.113.0/24"]
policy = "BLOCKED"

[[sender_group]]
name = "SUSPECT"
match = ["fcrdns:fail", "ptr:none", "dnsbl-score>=3"]
policy = "THROTTLED"
listeners = ["smtp"]

[[sender_group]]
name = "ALL"
match = ["all"]
policy = "ACCEPTED"

[[mail_flow_policy]]
name = "BLOCKED"
action = "reject"
reject_at = "rcpt"
reply = "550 5.7.1 Not from you"

[[mail_flow_policy]]
name = "THROTTLED"
action = "accept"
max_messages_per_session = 10
max_recipients_per_message = 20
max_message_size = "1MiB"
max_concurrent_connections_per_ip = 10
max_recipients_per_hour_per_ip = 20
max_invalid_recipients_per_hour = 10
dhap_temporary = true
greylist = true
tls = "optional"
banner = "Throttled"

[[mail_flow_policy]]
name = "ACCEPTED"
action = "accept"
"#;

#[test]
fn a_full_table_loads_without_warnings() {
    let l = load(&with(TABLE)).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let a = &l.config.server.admission;
    assert_eq!(a.groups.len(), 3);
    assert_eq!(a.policies[a.groups[1].policy].name, "THROTTLED");
    let t = &a.policies[1];
    assert_eq!(t.max_message_size, Some(1024 * 1024));
    assert_eq!(t.max_recipients_per_message, Some(20));
    assert_eq!(t.max_invalid_recipients_per_hour, Some(10));
    assert!(t.dhap_temporary && !t.dhap_drop);
    assert_eq!(a.policies[0].reply.as_ref().unwrap().code, 550);
    assert_eq!(a.lists[0].weight, 2);
    assert_eq!(a.zones(), ["zen.dnsbl.example"]);
}

#[test]
fn mistakes_point_at_the_value() {
    let e = error(&with(
        &TABLE.replace("policy = \"THROTTLED\"", "policy = \"THROTLED\""),
    ));
    assert!(
        e.contains("sender_group[1].policy: no [[mail_flow_policy]] is called \"THROTLED\" (did you mean \"THROTTLED\"?)"),
        "{e}"
    );
    assert!(e.starts_with("postern.toml:25:10: "), "{e}");

    let e = error(&with(&TABLE.replace("\"ptr:none\"", "\"ptr:maybe\"")));
    assert!(
        e.contains("sender_group[1].match: `ptr:maybe` is not a match: use all,"),
        "{e}"
    );

    let e = error(&with(
        &TABLE.replace("550 5.7.1 Not from you", "450 4.7.1 later"),
    ));
    assert!(
        e.contains("mail_flow_policy[0].reply: a reject policy's reply must be a 5xx code"),
        "{e}"
    );

    let e = error(&with(
        &TABLE.replace("listeners = [\"smtp\"]", "listeners = [\"smtps\"]"),
    ));
    assert!(
        e.contains("no listener is called \"smtps\"; listeners: smtp"),
        "{e}"
    );

    let e = error(&with(&TABLE.replace(
        "action = \"accept\"\nmax_messages",
        "action = \"allow\"\nmax_messages",
    )));
    assert!(e.contains("unknown action \"allow\"; allowed: accept, relay, reject, tempfail, tcp-refuse, continue"), "{e}");

    let e = error(&with(&TABLE.replace("127.0.0.[2..11]", "127.0.0")));
    assert!(
        e.contains("dns_list[0].codes: `127.0.0`: answer codes are four"),
        "{e}"
    );

    let e = error(&with(&TABLE.replace(
        "max_messages_per_session = 10",
        "max_messages_per_session = 0",
    )));
    assert!(
        e.contains("must be at least 1 (leave the key out for no limit)"),
        "{e}"
    );
}

#[test]
fn lints_become_warnings() {
    let src = with(&format!(
        "{TABLE}\n[[sender_group]]\nname = \"LATE\"\nmatch = [\"192.0.2.1\"]\npolicy = \"OPEN\"\n\
         [[mail_flow_policy]]\nname = \"OPEN\"\naction = \"relay\"\n\
         [[mail_flow_policy]]\nname = \"SPARE\"\naction = \"accept\"\n"
    ));
    let w = warnings(&src);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].contains("sender_group LATE: can never match: group ALL above it"),
        "{w:#?}"
    );
    assert!(
        w[1].contains("mail_flow_policy SPARE: no sender group uses this policy"),
        "{w:#?}"
    );
    // A relay policy for every client is flagged as an open relay.
    let open = with(&TABLE.replace(
        "name = \"ACCEPTED\"\naction = \"accept\"",
        "name = \"ACCEPTED\"\naction = \"relay\"",
    ));
    let w = warnings(&open);
    assert!(
        w.iter()
            .any(|w| w.contains("relays to any domain") && w.contains("open relay")),
        "{w:#?}"
    );
}

/// The commented gateway example in examples/postern.toml loads once
/// uncommented, and only the lints it is meant to show come up (none).
#[test]
fn the_example_table_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/postern.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("# [[dns_list]]").unwrap();
    let end = start + text[start..].find("\n# ----").unwrap();
    let block: String = text[start..end]
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .unwrap_or(l.strip_prefix('#').unwrap_or(l))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let l = load(&with(&block)).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.server.admission.groups.len(), 4);
    assert_eq!(l.config.server.admission.policies.len(), 4);
}

use super::*;

fn group(name: &str, matchers: &[&str], policy: usize) -> SenderGroup {
    SenderGroup {
        name: name.into(),
        matchers: matchers
            .iter()
            .map(|m| Matcher::parse(m).unwrap())
            .collect(),
        policy,
        listeners: Vec::new(),
    }
}

fn table() -> Admission {
    Admission::new(
        vec![
            group("ALLOW", &["192.0.2.0/28"], 0),
            group(
                "BLOCKLIST",
                &["dnsbl:bl.example=127.0.0.2", "rdns:.dynamic.example"],
                1,
            ),
            group("SUSPECT", &["fcrdns:fail", "ptr:none", "dnsbl-score>=3"], 2),
            group("ALL", &["all"], 0),
        ],
        vec![
            MailFlowPolicy::new("ACCEPTED", FlowAction::Accept),
            MailFlowPolicy::new("BLOCKED", FlowAction::Reject),
            MailFlowPolicy::new("THROTTLED", FlowAction::Accept),
        ],
        vec![
            DnsList {
                zone: "bl.example".into(),
                codes: None,
                weight: 2,
            },
            DnsList {
                zone: "other.example".into(),
                codes: Some(CodePattern::parse("127.0.0.[2..3]").unwrap()),
                weight: 1,
            },
        ],
    )
}

fn facts(ip: &str) -> ClientFacts {
    ClientFacts::new(ip.parse().unwrap(), "smtp")
}

fn lists(bl: &[&str], other: &[&str]) -> Lookup<Vec<ListAnswer>> {
    let a = |z: &str, codes: &[&str]| ListAnswer {
        zone: z.into(),
        result: Ok(codes.iter().map(|c| c.parse().unwrap()).collect()),
    };
    Lookup::Done(vec![a("bl.example", bl), a("other.example", other)])
}

fn done(a: &Admission, f: &ClientFacts) -> Classification {
    match a.classify(f) {
        Classified::Done(c) => c,
        Classified::Need(n) => panic!("needs {n:?}"),
    }
}

#[test]
fn an_address_match_costs_no_dns() {
    let a = table();
    let c = done(&a, &facts("192.0.2.5"));
    assert_eq!(c.group.as_deref(), Some("ALLOW"));
    assert_eq!(a.policy(&c).name, "ACCEPTED");
    // IPv4-mapped IPv6 is the same client.
    let c = done(&a, &facts("::ffff:192.0.2.5"));
    assert_eq!(c.group.as_deref(), Some("ALLOW"));
}

#[test]
fn dns_facts_are_asked_for_in_order_then_decide() {
    let a = table();
    let mut f = facts("198.51.100.7");
    assert_eq!(a.classify(&f), Classified::Need(Need::DnsLists));
    f.lists = lists(&[], &[]);
    assert_eq!(a.classify(&f), Classified::Need(Need::Ptr));
    f.ptr = Lookup::Done(vec!["host.dynamic.example".into()]);
    let c = done(&a, &f);
    assert_eq!(c.group.as_deref(), Some("BLOCKLIST"));
    assert_eq!(a.policy(&c).action, FlowAction::Reject);
    assert_eq!(
        c.steps.last().unwrap().to_string(),
        "BLOCKLIST: matched by rdns:.dynamic.example"
    );

    f.ptr = Lookup::Done(vec!["mail.good.example".into()]);
    assert_eq!(a.classify(&f), Classified::Need(Need::Fcrdns));
    f.fcrdns = Lookup::Done(true);
    let c = done(&a, &f);
    assert_eq!(c.group.as_deref(), Some("ALL"));
    assert_eq!(c.score, Some(0));
    f.fcrdns = Lookup::Done(false);
    assert_eq!(done(&a, &f).group.as_deref(), Some("SUSPECT"));
}

#[test]
fn dnsbl_codes_and_scores() {
    let a = table();
    let mut f = facts("198.51.100.7");
    f.ptr = Lookup::Done(vec!["mail.good.example".into()]);
    f.fcrdns = Lookup::Done(true);
    // Listed in bl.example with a code the BLOCKLIST entry does not count:
    // the score (2) stays under 3.
    f.lists = lists(&["127.0.0.4"], &[]);
    let c = done(&a, &f);
    assert_eq!((c.group.as_deref(), c.score), (Some("ALL"), Some(2)));
    // Both lists: 2 + 1 = 3, SUSPECT.
    f.lists = lists(&["127.0.0.4"], &["127.0.0.3"]);
    let c = done(&a, &f);
    assert_eq!((c.group.as_deref(), c.score), (Some("SUSPECT"), Some(3)));
    // other.example's code outside its pattern does not count.
    f.lists = lists(&["127.0.0.4"], &["127.0.0.9"]);
    assert_eq!(done(&a, &f).score, Some(2));
    // The exact code: BLOCKLIST.
    f.lists = lists(&["127.0.0.2"], &[]);
    assert_eq!(done(&a, &f).group.as_deref(), Some("BLOCKLIST"));
    // A Spamhaus-style error code is not a listing.
    f.lists = lists(&["127.255.255.254"], &["127.255.255.254"]);
    assert_eq!(done(&a, &f).score, Some(0));
}

#[test]
fn a_dns_failure_matches_nothing_and_says_why() {
    let a = table();
    let mut f = facts("198.51.100.7");
    f.lists = Lookup::Done(vec![
        ListAnswer {
            zone: "bl.example".into(),
            result: Err("timed out".into()),
        },
        ListAnswer {
            zone: "other.example".into(),
            result: Ok(vec![]),
        },
    ]);
    f.ptr = Lookup::Failed("SERVFAIL".into());
    f.fcrdns = Lookup::Failed("SERVFAIL".into());
    let c = done(&a, &f);
    assert_eq!(c.group.as_deref(), Some("ALL"));
    let text: Vec<String> = c.steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        text[1],
        "BLOCKLIST: no match (dnsbl:bl.example=127.0.0.2 undecided: timed out; \
         rdns:.dynamic.example undecided: SERVFAIL)"
    );
}

#[test]
fn continue_goes_on_and_listeners_scope_groups() {
    let mut a = table();
    a.policies
        .push(MailFlowPolicy::new("GO-ON", FlowAction::Continue));
    a.groups.insert(0, group("TAG", &["all"], 3));
    let mut sub = group("SUBMISSION", &["authenticated"], 2);
    sub.listeners = vec!["submission".into()];
    a.groups.insert(1, sub);
    let mut f = facts("192.0.2.5");
    f.authenticated = true;
    let c = done(&a, &f);
    assert_eq!(c.group.as_deref(), Some("ALLOW"));
    assert_eq!(c.steps[0].to_string(), "TAG: matched by all");
    assert_eq!(c.steps[1].to_string(), "SUBMISSION: not on this listener");
    f.listener = "submission".into();
    assert_eq!(done(&a, &f).group.as_deref(), Some("SUBMISSION"));
}

#[test]
fn no_group_means_the_default_policy() {
    let a = Admission::default();
    let c = done(&a, &facts("198.51.100.7"));
    assert_eq!(c.group, None);
    assert_eq!(a.policy(&c).name, "DEFAULT");
    assert_eq!(a.policy(&c).action, FlowAction::Accept);
}

#[test]
fn lints() {
    let mut a = table();
    assert!(lint(&a).is_empty(), "{:?}", lint(&a));
    a.groups.push(group("AFTER", &["192.0.2.99"], 2));
    a.policies
        .push(MailFlowPolicy::new("UNUSED", FlowAction::Accept));
    a.policies
        .push(MailFlowPolicy::new("RELAYED", FlowAction::Relay));
    a.groups.insert(0, group("OPEN", &["dnswl:wl.example"], 4));
    a.groups
        .insert(0, group("MINE", &["10.0.0.0/8", "authenticated"], 4));
    a.groups
        .insert(0, group("NAMED", &["rdns:.partner.example"], 0));
    let l = lint(&a);
    let texts: Vec<String> = l
        .iter()
        .map(|l| format!("{}: {}", l.subject, l.message))
        .collect();
    assert_eq!(l.len(), 4, "{texts:#?}");
    assert!(
        texts[0].starts_with("sender_group NAMED: trusts rdns: names, which are claims"),
        "{texts:#?}"
    );
    assert!(
        texts[1].starts_with("sender_group OPEN: policy RELAYED relays"),
        "{texts:#?}"
    );
    assert!(
        texts[2].starts_with("sender_group AFTER: can never match"),
        "{texts:#?}"
    );
    assert!(
        texts[3].starts_with("mail_flow_policy UNUSED"),
        "{texts:#?}"
    );
    assert!(l[0].security && l[1].security && !l[2].security);
    // No catch-all at all.
    // rdns-verified: is what an allowlist should use: no lint.
    let mut c = table();
    c.groups
        .insert(0, group("VERIFIED", &["rdns-verified:.partner.example"], 0));
    assert!(lint(&c).is_empty(), "{:?}", lint(&c));
    let b = Admission::new(
        vec![group("ONE", &["192.0.2.1"], 0)],
        table().policies[..1].to_vec(),
        vec![],
    );
    assert!(lint(&b)[0].message.starts_with("no group matches `all`"));
}

#[test]
fn broken_reverse_zones_can_be_matched() {
    let a = Admission::new(
        vec![
            group("BROKEN", &["ptr:error", "fcrdns:error"], 1),
            group("ALL", &["all"], 0),
        ],
        vec![
            MailFlowPolicy::new("ACCEPTED", FlowAction::Accept),
            MailFlowPolicy::new("THROTTLED", FlowAction::Accept),
        ],
        Vec::new(),
    );
    let mut f = facts("198.51.100.7");
    assert_eq!(a.classify(&f), Classified::Need(Need::Ptr));
    f.ptr = Lookup::Failed("SERVFAIL".into());
    let c = done(&a, &f);
    assert_eq!(c.group.as_deref(), Some("BROKEN"));
    assert_eq!(c.steps[0].to_string(), "BROKEN: matched by ptr:error");
    // PTR fine, the forward lookups failed.
    f.ptr = Lookup::Done(vec!["mx.example".into()]);
    assert_eq!(a.classify(&f), Classified::Need(Need::Fcrdns));
    f.fcrdns = Lookup::Failed("timeout".into());
    assert_eq!(done(&a, &f).group.as_deref(), Some("BROKEN"));
    // Both fine: not broken.
    f.fcrdns = Lookup::Done(false);
    assert_eq!(done(&a, &f).group.as_deref(), Some("ALL"));
}

//! RFC 7489 §7.1 external destination verification against FakeDns:
//! an authorised destination, one that is not, one of the same
//! organisational domain (no lookup at all), and a DNS failure (no report,
//! no marker: tried again at the next run).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use postern_auth::report::{
    Alignment, Disposition, OrgDomain, Outcome, Published, ReportRecord, ReportSettings, Reporter,
    Skip, authorized, day_file, execute, marker, parse_day, plan_day, same_name,
};
use postern_testkit::{DnsFailure, FakeDns};

const DAY: &str = "2026-12-05";
const NOON: i64 = 1_796_472_000;

fn authenticator(dns: &FakeDns) -> MessageAuthenticator {
    let mut config = ResolverConfig::default();
    let addr = dns.addr();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    config.name_servers.push(ns);
    let mut opts = ResolverOpts::default();
    // A silent server must fail the test quickly, not after 5 s × retries.
    opts.timeout = Duration::from_millis(300);
    opts.attempts = 1;
    MessageAuthenticator::new(config, opts).unwrap()
}

/// Organisational domain as the last two labels (enough for these names).
fn two_labels(name: &str) -> String {
    let labels: Vec<&str> = name.rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

#[tokio::test]
async fn authorised_external_destination() {
    let dns = FakeDns::start().await;
    dns.add_txt("a.example._report._dmarc.reports.example.net", "v=DMARC1");
    let auth = authenticator(&dns);
    assert_eq!(
        authorized(&auth, "a.example", "reports.example.net", &same_name).await,
        Some(true)
    );
    assert!(
        dns.queries()
            .iter()
            .any(|q| q.starts_with("a.example._report._dmarc.reports.example.net")),
        "{:?}",
        dns.queries()
    );
}

#[tokio::test]
async fn unauthorised_external_destination() {
    let dns = FakeDns::start().await;
    // A record for another policy domain does not authorise this one, and
    // a TXT that is not v=DMARC1 does not either.
    dns.add_txt("b.example._report._dmarc.reports.example.net", "v=DMARC1");
    dns.add_txt("a.example._report._dmarc.other.example.org", "hello");
    let auth = authenticator(&dns);
    assert_eq!(
        authorized(&auth, "a.example", "reports.example.net", &same_name).await,
        Some(false)
    );
    assert_eq!(
        authorized(&auth, "a.example", "other.example.org", &same_name).await,
        Some(false)
    );
}

#[tokio::test]
async fn same_organisation_needs_no_lookup() {
    let dns = FakeDns::start().await;
    let auth = authenticator(&dns);
    let org: &OrgDomain<'_> = &two_labels;
    // Subdomain of the policy domain: internal under any org function.
    assert_eq!(
        authorized(&auth, "corp.example", "reports.corp.example", &same_name).await,
        Some(true)
    );
    // Parent of the policy domain: the same organisational domain.
    assert_eq!(
        authorized(&auth, "mail.corp.example", "corp.example", org).await,
        Some(true)
    );
    assert_eq!(
        authorized(&auth, "mail.corp.example", "dmarc.corp.example", org).await,
        Some(true)
    );
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

fn settings(dir: &Path) -> ReportSettings {
    let mut s = ReportSettings::new(dir);
    s.enabled = true;
    s.reporter = Reporter {
        org_name: "R".into(),
        email: "dmarc@receiver.example".into(),
        contact_info: None,
    };
    s
}

fn write_record(s: &ReportSettings, rua: &[&str]) {
    let r = ReportRecord {
        time: NOON,
        source_ip: "192.0.2.9".parse().unwrap(),
        header_from: "a.example".into(),
        envelope_from: "a.example".into(),
        envelope_to: None,
        policy_domain: "a.example".into(),
        published: Published {
            adkim: Alignment::Relaxed,
            aspf: Alignment::Relaxed,
            p: Disposition::None,
            sp: Disposition::None,
            pct: 100,
        },
        rua: rua.iter().map(|s| (*s).to_owned()).collect(),
        disposition: Disposition::None,
        dkim_aligned: false,
        spf_aligned: true,
        override_reason: None,
        dkim: vec![],
        spf: vec![("a.example".into(), "mfrom".into(), "pass".into())],
    };
    std::fs::create_dir_all(&s.dir).unwrap();
    std::fs::write(
        day_file(&s.dir, parse_day(DAY).unwrap()),
        serde_json::to_string(&r).unwrap() + "\n",
    )
    .unwrap();
}

struct Collect(std::sync::Mutex<Vec<String>>);

impl postern_auth::report::ReportSink for Collect {
    fn queue(
        &self,
        _from: &str,
        to: &str,
        _message: &[u8],
    ) -> Result<String, postern_auth::report::ReportError> {
        self.0.lock().unwrap().push(to.to_owned());
        Ok(format!("id{}", self.0.lock().unwrap().len()))
    }
}

#[tokio::test]
async fn plan_sends_only_to_authorised_destinations() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path());
    write_record(
        &s,
        &[
            "mailto:ok@reports.example.net",
            "mailto:victim@third.example.org",
        ],
    );
    let dns = FakeDns::start().await;
    dns.add_txt("a.example._report._dmarc.reports.example.net", "v=DMARC1; ");
    let auth = authenticator(&dns);
    let day = parse_day(DAY).unwrap();
    let plan = plan_day(&s, day, &auth, &same_name, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let d = &plan.domains[0];
    assert!(
        matches!(&d.destinations[0].outcome, Outcome::Send { address, .. } if address == "ok@reports.example.net")
    );
    assert!(matches!(
        &d.destinations[1].outcome,
        Outcome::Skip(Skip::NotAuthorized(name)) if name == "a.example._report._dmarc.third.example.org"
    ));
    let sink = Collect(std::sync::Mutex::new(Vec::new()));
    execute(&s, &plan, &sink).unwrap();
    assert_eq!(*sink.0.lock().unwrap(), ["ok@reports.example.net"]);
    assert!(marker(&s.dir, day, "a.example").exists());
}

#[tokio::test]
async fn dns_failure_leaves_the_domain_for_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let s = settings(tmp.path());
    write_record(&s, &["mailto:r@reports.example.net"]);
    let dns = FakeDns::start().await;
    let name = "a.example._report._dmarc.reports.example.net";
    dns.fail(name, DnsFailure::Timeout);
    let auth = authenticator(&dns);
    let day = parse_day(DAY).unwrap();
    let plan = plan_day(&s, day, &auth, &same_name, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert!(
        matches!(
            &plan.domains[0].destinations[0].outcome,
            Outcome::Skip(Skip::DnsFailed(_))
        ),
        "{:?}",
        plan.domains[0].destinations[0].outcome
    );
    let sink = Collect(std::sync::Mutex::new(Vec::new()));
    execute(&s, &plan, &sink).unwrap();
    assert!(sink.0.lock().unwrap().is_empty());
    assert!(!marker(&s.dir, day, "a.example").exists());

    // The next run, DNS answering: sent.
    dns.clear_failures(name);
    dns.add_txt(name, "v=DMARC1");
    let plan = plan_day(&s, day, &auth, &same_name, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    execute(&s, &plan, &sink).unwrap();
    assert_eq!(*sink.0.lock().unwrap(), ["r@reports.example.net"]);
    assert!(marker(&s.dir, day, "a.example").exists());
}

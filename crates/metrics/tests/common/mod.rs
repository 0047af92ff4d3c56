//! Parses an exposition with the reference Prometheus text parser (Python
//! `prometheus_client.parser.text_string_to_metric_families`) and hands the
//! families back as JSON, so the tests check what a real scraper reads.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::process::Command;

use serde_json::Value;

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for fam in text_string_to_metric_families(text):
    out.append({
        "name": fam.name,
        "type": fam.type,
        "help": fam.documentation,
        "unit": fam.unit,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples],
    })
print(json.dumps(out))
"#;

/// The parsed families, or `None` (after printing "skipped: …") when python3
/// or its `prometheus_client` module is missing and `POSTERN_REQUIRE_TOOLS`
/// is unset; with it set, a missing tool fails the test.
pub fn parse(exposition: &str) -> Option<Families> {
    let require = std::env::var_os("POSTERN_REQUIRE_TOOLS").is_some();
    let probe = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                Err(e) => format!("python3: {e}"),
            };
            assert!(
                !require,
                "POSTERN_REQUIRE_TOOLS is set but the Prometheus parser is missing: {why}"
            );
            println!(
                "skipped: python3 with prometheus_client not installed (pip install prometheus_client): {why}"
            );
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("metrics.txt");
    let script = dir.path().join("parse.py");
    std::fs::write(&text, exposition).unwrap();
    std::fs::write(&script, PARSE).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(Families(v.as_array().unwrap().clone()))
}

/// Families as the parser read them.
#[derive(Debug)]
pub struct Families(pub Vec<Value>);

impl Families {
    /// The family called `name` (as the parser names it: counters without
    /// `_total`).
    pub fn family(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {:#?}", self.names()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|f| f["name"] == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The family's type (`counter`, `gauge`, `histogram`).
    pub fn kind(&self, name: &str) -> String {
        self.family(name)["type"].as_str().unwrap().to_owned()
    }

    /// The value of the sample `sample` with exactly `labels` in family
    /// `name`.
    pub fn value(&self, name: &str, sample: &str, labels: &[(&str, &str)]) -> f64 {
        self.try_value(name, sample, labels).unwrap_or_else(|| {
            panic!(
                "no sample {sample}{labels:?} in {:#}",
                self.family(name)["samples"]
            )
        })
    }

    pub fn try_value(&self, name: &str, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.family(name)["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["name"] == sample
                    && s["labels"].as_object().unwrap().len() == labels.len()
                    && labels.iter().all(|(k, v)| s["labels"][*k] == *v)
            })
            .map(|s| s["value"].as_f64().unwrap())
    }

    /// How many samples family `name` has.
    pub fn samples(&self, name: &str) -> usize {
        self.family(name)["samples"].as_array().unwrap().len()
    }
}

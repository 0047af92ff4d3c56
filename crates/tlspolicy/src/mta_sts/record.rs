//! The `_mta-sts.<domain>` TXT record (RFC 8461 §3.1): `v=STSv1; id=…;`.
//!
//! # Security
//! TXT data is untrusted; parsed with bounded, allocation-light string
//! operations. The id is at most 32 alphanumerics, so it is safe to print and
//! to store.
//!
//! # Standards
//! RFC 8461 §3.1.

/// A parsed `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StsRecord {
    /// The policy id (1–32 letters and digits): a change means a new policy.
    pub id: String,
}

/// Why there is no usable TXT record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No record starts with `v=STSv1;` (the domain has no MTA-STS).
    #[error("no TXT record starts with \"v=STSv1;\"")]
    None,
    /// More than one does (RFC 8461 §3.1: treated as no policy).
    #[error("{0} TXT records start with \"v=STSv1;\" (exactly one is allowed)")]
    Several(usize),
    /// The one record is malformed (treated as no policy).
    #[error("malformed TXT record {record:?}: {detail}")]
    Malformed {
        /// The record.
        record: String,
        /// What is wrong.
        detail: String,
    },
}

/// RFC 8461 §3.1: discard records that do not begin with `v=STSv1;`; if
/// not exactly one is left, or it is malformed, there is no policy.
pub fn select_record<S: AsRef<str>>(records: &[S]) -> Result<StsRecord, RecordError> {
    let candidates: Vec<&str> = records
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| begins_with_version(r))
        .collect();
    match candidates.as_slice() {
        [] => Err(RecordError::None),
        [one] => parse_record(one),
        many => Err(RecordError::Several(many.len())),
    }
}

/// `v=STSv1` then optional whitespace then `;` (whitespace around `;` is
/// allowed by the ABNF's `*WSP`).
fn begins_with_version(record: &str) -> bool {
    record
        .strip_prefix("v=STSv1")
        .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with(';'))
}

/// Parses one record: `v=STSv1` first, then `;`-separated `key=value`
/// fields, `id` required (first one wins), extension fields checked for
/// syntax and otherwise ignored.
pub fn parse_record(record: &str) -> Result<StsRecord, RecordError> {
    let bad = |detail: &str| RecordError::Malformed {
        record: record.to_owned(),
        detail: detail.to_owned(),
    };
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next() != Some("v=STSv1") {
        return Err(bad("it must begin with \"v=STSv1\""));
    }
    let mut id = None;
    for field in fields {
        if field.is_empty() {
            // A trailing ";" (allowed) or ";;" (tolerated).
            continue;
        }
        let Some((key, value)) = field.split_once('=') else {
            return Err(bad(&format!("field {field:?} is not key=value")));
        };
        if key == "id" {
            if value.is_empty()
                || value.len() > 32
                || !value.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(bad("id must be 1 to 32 letters and digits"));
            }
            id.get_or_insert_with(|| value.to_owned());
        } else if !is_ext_name(key) || !is_ext_value(value) {
            return Err(bad(&format!("field {field:?} is not a valid extension")));
        }
    }
    id.map(|id| StsRecord { id })
        .ok_or_else(|| bad("the id field is missing"))
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
fn is_ext_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII except `;` and `=`.
fn is_ext_value(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_table() {
        let ok = |r: &str, id: &str| {
            assert_eq!(parse_record(r), Ok(StsRecord { id: id.to_owned() }), "{r}");
        };
        ok("v=STSv1; id=20160831085700Z;", "20160831085700Z");
        ok("v=STSv1;id=abc", "abc");
        ok("v=STSv1 ; id=abc ; ext_1=x-y", "abc");
        ok("v=STSv1; id=first; id=second", "first");
        for bad in [
            "v=STSv1;",
            "v=STSv1; id=",
            "v=STSv1; id=has-dash",
            "v=STSv1; id=123456789012345678901234567890123",
            "v=STSv2; id=abc",
            "id=abc; v=STSv1",
            "v=STSv1; id=abc; broken",
            "v=STSv1; id=abc; x=a=b",
            "v=STSv1; id=abc; -x=1",
        ] {
            assert!(parse_record(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selection_rules() {
        assert_eq!(
            select_record(&["v=spf1 -all", "v=STSv1; id=1"]).map(|r| r.id),
            Ok("1".to_owned())
        );
        assert_eq!(select_record(&["v=spf1 -all"]), Err(RecordError::None));
        assert_eq!(select_record::<&str>(&[]), Err(RecordError::None));
        assert_eq!(
            select_record(&["v=STSv1; id=1", "v=STSv1; id=2"]),
            Err(RecordError::Several(2))
        );
        // Case-sensitive: "v=stsv1" is not a version tag.
        assert_eq!(select_record(&["v=stsv1; id=1"]), Err(RecordError::None));
        assert!(matches!(
            select_record(&["v=STSv1; nothing=here"]),
            Err(RecordError::Malformed { .. })
        ));
    }
}

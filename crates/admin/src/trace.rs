//! `GET /v1/trace?ip=…&helo=…&from=…&rcpt=…&rcpt=…&listener=…&tls=true`: the
//! running server's `postern trace` (its configuration, resolver and live
//! counters, read only). The smtpd installs the hook once it runs
//! ([`crate::AdminServer::set_trace`]); the answer is the trace's JSON.
//!
//! # Security
//! Same socket, same rights as the queue verbs (owner-only). The trace sends
//! DNS queries and changes nothing. Query strings are bounded by the HTTP
//! layer; at most [`MAX_RCPTS`] recipients.

use std::sync::Arc;

use serde::Deserialize;

use crate::control::BoxFuture;

/// Recipients one trace may name.
pub const MAX_RCPTS: usize = 100;

/// What to trace (the query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TraceRequest {
    /// The client address.
    pub ip: String,
    /// EHLO name.
    pub helo: Option<String>,
    /// MAIL FROM.
    pub from: Option<String>,
    /// RCPT TO, each.
    pub rcpt: Vec<String>,
    /// Listener name.
    pub listener: Option<String>,
    /// Assume TLS.
    pub tls: bool,
}

impl TraceRequest {
    /// Parses `ip=…&rcpt=…&rcpt=…` (repeated `rcpt`); the error says what is
    /// wrong.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|e| format!("bad query string: {e}"))?;
        let mut r = TraceRequest::default();
        for (k, v) in pairs {
            match k.as_str() {
                "ip" => r.ip = v,
                "helo" => r.helo = Some(v),
                "from" => r.from = Some(v),
                "rcpt" => r.rcpt.push(v),
                "listener" => r.listener = Some(v),
                "tls" => r.tls = v == "true" || v == "1",
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        if r.ip.is_empty() {
            return Err("ip= is required".into());
        }
        if r.rcpt.len() > MAX_RCPTS {
            return Err(format!("at most {MAX_RCPTS} rcpt= parameters"));
        }
        Ok(r)
    }

    /// The query string for this request.
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![("ip", &self.ip)];
        if let Some(h) = &self.helo {
            pairs.push(("helo", h));
        }
        if let Some(f) = &self.from {
            pairs.push(("from", f));
        }
        for r in &self.rcpt {
            pairs.push(("rcpt", r));
        }
        if let Some(l) = &self.listener {
            pairs.push(("listener", l));
        }
        if self.tls {
            pairs.push(("tls", "true"));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// The smtpd's trace: the report as JSON, or what went wrong.
pub type TraceFn = Arc<
    dyn Fn(TraceRequest) -> BoxFuture<'static, Result<serde_json::Value, String>> + Send + Sync,
>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let r = TraceRequest {
            ip: "2001:db8::7".into(),
            helo: Some("mx.example".into()),
            from: Some(String::new()),
            rcpt: vec!["a@b.example".into(), "\"x y\"@c.example".into()],
            listener: Some("smtp".into()),
            tls: true,
        };
        assert_eq!(TraceRequest::from_query(&r.to_query()).unwrap(), r);
        assert!(TraceRequest::from_query("helo=x").is_err());
        assert!(TraceRequest::from_query("ip=1.2.3.4&bogus=1").is_err());
    }
}

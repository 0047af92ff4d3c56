//! The console's static files (htmx, the style sheet, Swagger UI), embedded in the binary
//! and served under `/static/` with a strong ETag and a one-year cache: pages
//! link them as `/static/NAME?v=ETAG`, so a new build changes the URL.
//!
//! # Security
//! A fixed table: only these names are served, nothing is read from disk, and
//! no authentication is needed (the login page uses them; they hold no data).
//!
//! # Standards
//! RFC 9110 §8.8.3 (ETag), §13.1.2 (If-None-Match); RFC 9111 §5.2.2
//! (Cache-Control `max-age`, `immutable` from RFC 8246).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/htmx.min.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/console.css"),
    },
    // Swagger UI for /api/docs (static/README.md: version and checksums).
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/swagger-ui.css"),
    },
    Asset {
        name: "swagger-init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/swagger-init.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
];

/// Each file's ETag (quoted), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|f| format!("\"{:016x}\"", fnv1a(f.body)))
        .collect()
});

/// 64-bit FNV-1a: a content fingerprint for caching, not a security check.
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The URL a page links: `/static/NAME?v=FINGERPRINT`.
pub(crate) fn url(name: &str) -> String {
    match FILES.iter().position(|f| f.name == name) {
        Some(i) => format!("/static/{name}?v={}", ETAGS[i].trim_matches('"')),
        None => format!("/static/{name}"),
    }
}

/// `GET /static/{name}`.
pub(crate) async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|f| f.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let file = &FILES[i];
    let etag = &ETAGS[i];
    // RFC 9110 §13.1.2: a list of entity tags, or `*`.
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    let mut out = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            )],
            file.body,
        )
            .into_response()
    };
    let h = out.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_fingerprint() {
        let u = url("console.css");
        assert!(u.starts_with("/static/console.css?v="), "{u}");
        assert_eq!(u.len(), "/static/console.css?v=".len() + 16);
        assert_ne!(url("console.css"), url("htmx.min.js"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}

//! `GET /config`: the effective configuration (read-only, secrets redacted
//! by the binary) with the `config check` warnings.
//!
//! # Security
//! Read-only; the text is shown escaped in a `<pre>`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Layout, Nav, render};
use crate::http::{Authed, HttpState};

#[derive(Template)]
#[template(path = "config.html")]
pub(crate) struct ConfigPage {
    pub layout: Layout,
    pub warnings: Vec<String>,
    pub text: String,
}

/// `GET /config`.
pub(crate) async fn config(State(state): State<HttpState>, who: Authed) -> Response {
    let page = ConfigPage {
        layout: Layout::new(&state, &who, Nav::Config, "Configuration"),
        warnings: state.console.warnings(),
        text: state.console.config_text(),
    };
    render(StatusCode::OK, &page)
}

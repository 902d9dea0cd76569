//! The web console: one page of plain HTML, CSS and JavaScript (in `console/`), compiled into
//! the binary. No build step and nothing fetched from elsewhere: the page talks to this API
//! only.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// What every console file is sent with: no framing by other sites, no sniffing, and nothing
/// loaded from anywhere but here.
const SECURITY: [(header::HeaderName, &str); 3] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    ),
];

pub(super) async fn page() -> impl IntoResponse {
    (
        SECURITY,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE,
    )
}

pub(super) async fn style() -> impl IntoResponse {
    (
        SECURITY,
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE,
    )
}

pub(super) async fn script() -> impl IntoResponse {
    (
        SECURITY,
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

//! One JSON line on stderr per request: method, path, key name, status, rows, bytes, cache hit,
//! duration. The query string is left out (a `where` value is the caller's data) and so is
//! every header: no secret can reach the log. Handlers say what they served by putting
//! [`Served`] into the response's extensions; authentication puts the [`KeyName`].

use std::io::Write;
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// The name of the key a request was made with.
#[derive(Debug, Clone)]
pub struct KeyName(pub String);

/// What a response carried: rows, and whether the cache answered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Served {
    pub rows: Option<usize>,
    pub cache_hit: Option<bool>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    method: &'a str,
    path: &'a str,
    key: Option<&'a str>,
    status: u16,
    rows: Option<usize>,
    bytes: Option<u64>,
    cache_hit: Option<bool>,
    duration_ms: f64,
}

pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let served = response.extensions().get::<Served>().copied().unwrap_or_default();
    let bytes = response.body().size_hint().exact().or_else(|| {
        response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    });
    let line = Line {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        method: &method,
        path: &path,
        key: response.extensions().get::<KeyName>().map(|k| k.0.as_str()),
        status: response.status().as_u16(),
        rows: served.rows,
        bytes,
        cache_hit: served.cache_hit,
        duration_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
    };
    if let Ok(text) = serde_json::to_string(&line) {
        // One write per line, so lines of concurrent requests never interleave.
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
    response
}

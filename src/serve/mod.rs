//! 9. Serving what the pipelines publish: a read-only HTTP API over the catalog's tables, the
//! run history and the cost estimate (`/v1`, described by `/v1/openapi.json`), and a console
//! for people (`/`), in one server behind the same keys.
//!
//! It reads through what the commands use (the catalog, `transform::session` for SQL with its
//! partition pruning, `runs::history`, `cost`) and writes nothing but its keys: it never
//! publishes, crawls or runs a job. What it adds is what a service in front of tables needs and
//! a command does not: keys limited to tables ([`keys`]), one SELECT refused anything else
//! ([`select`]), pages of rows with stable cursors ([`rows`]), a cache that a publication
//! invalidates at once ([`cache`]), a cap on queries at once ([`limits`]), and a log line per
//! request ([`log`]). Requests are bounded in size and time; SIGTERM stops accepting and lets
//! the requests in progress finish.

pub mod api;
pub mod cache;
pub mod console;
pub mod encode;
pub mod error;
pub mod keys;
pub mod limits;
pub mod log;
pub mod openapi;
pub mod rows;
pub mod select;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use self::cache::Cache;
use self::error::ApiError;
use self::keys::{Key, KeyStore};
use self::limits::{Limiter, QueryRuntime};
use self::log::KeyName;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::runs::history::History;
use crate::runs::report::RunReport;

/// API Gateway's default cache TTL.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Bytes of responses the cache keeps at most.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// What bounds one request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows a page or a query returns at most.
    pub row_cap: usize,
    /// How long a query may run.
    pub query_timeout: Duration,
    /// Bytes of memory one query may use before it spills, then fails.
    pub memory_limit: usize,
    /// Bytes a request body may have.
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            row_cap: 10_000,
            query_timeout: Duration::from_secs(30),
            memory_limit: 512 * 1024 * 1024,
            body_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    pub cache_ttl: Duration,
    pub max_concurrency: usize,
    /// Queries that may wait for a slot before more are refused (429).
    pub queue: usize,
    pub limits: Limits,
    /// Folders of job files whose graphs the console draws.
    pub pipelines: Vec<PathBuf>,
    /// Serve HTTPS with this certificate chain and key (PEM files) instead of HTTP.
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServeOptions {
    /// Two queries per core, as many waiting.
    pub fn default_concurrency() -> usize {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct Server {
    pub catalog: Arc<dyn Catalog>,
    pub home: PathBuf,
    pub keys: KeyStore,
    /// Signs the cursors the server issues: a cursor edited by hand (another version pinned,
    /// a rolled-back one) is not taken.
    pub cursor_secret: Vec<u8>,
    pub history: History,
    pub cache: Cache,
    pub limiter: Limiter,
    pub queries: QueryRuntime,
    pub limits: Limits,
    pub pipelines: Vec<PathBuf>,
}

impl Server {
    /// The runs of `runs` that `key` may see, redacted to its tables: those that name a table
    /// it may read, and those that name no target (a run that failed before it wrote, or
    /// published nothing) of a job whose runs write such a table: a reader of a table learns
    /// that the job making it fails.
    pub fn runs_visible_to(&self, key: &keys::Key, runs: Vec<RunReport>) -> Result<Vec<RunReport>> {
        let mut jobs_of_key: HashMap<String, bool> = HashMap::new();
        let mut visible = Vec::with_capacity(runs.len());
        for run in runs {
            let seen = key.may_see(&run)
                || (run.targets.is_empty() && {
                    if !jobs_of_key.contains_key(&run.job) {
                        let writes = self
                            .history
                            .list(Some(&run.job), None)?
                            .iter()
                            .any(|r| !r.targets.is_empty() && key.may_see(r));
                        jobs_of_key.insert(run.job.clone(), writes);
                    }
                    jobs_of_key[&run.job]
                });
            if seen {
                visible.push(key.redacted(run));
            }
        }
        Ok(visible)
    }
}

/// Serves until `stop` completes, then lets the requests in progress finish. `listening` is
/// told the server's URL once the port is bound (with the port the system chose for port 0).
pub async fn serve(
    catalog: Arc<dyn Catalog>,
    home: PathBuf,
    options: ServeOptions,
    listening: impl FnOnce(String),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Read before binding: a bad certificate is a configuration error, not a server that
    // fails every handshake.
    let tls = match &options.tls {
        Some(tls) => Some(tls_config(tls).await?),
        None => None,
    };
    let keys = KeyStore::open(&home)?;
    let server = Arc::new(Server {
        catalog,
        cursor_secret: keys.cursor_secret()?,
        keys,
        history: History::open(&home)?,
        home,
        cache: Cache::new(options.cache_ttl, CACHE_BYTES),
        limiter: Limiter::new(options.max_concurrency, options.queue),
        queries: QueryRuntime::new(std::thread::available_parallelism().map_or(1, |n| n.get()))?,
        limits: options.limits.clone(),
        pipelines: options.pipelines.clone(),
    });
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|e| Error::config(format!("--bind {}: {e}", options.bind)))?;
    let address = listener.local_addr()?;
    let Some(tls) = tls else {
        listening(format!("http://{address}"));
        axum::serve(listener, router(server)).with_graceful_shutdown(stop).await?;
        return Ok(());
    };
    listening(format!("https://{address}"));
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        stop.await;
        stopping.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router(server).into_make_service())
        .await?;
    Ok(())
}

async fn tls_config(tls: &Tls) -> Result<axum_server::tls_rustls::RustlsConfig> {
    // The AWS SDK and the HTTP client bring two crypto providers into rustls; name one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| Error::config(format!("--tls-cert {} --tls-key {}: {e}", tls.cert.display(), tls.key.display())))
}

/// Every route, with its layers.
pub fn router(server: Arc<Server>) -> Router {
    let api = Router::new()
        .route("/v1/tables", get(api::tables))
        .route("/v1/tables/{name}", get(api::table))
        .route("/v1/tables/{name}/rows", get(api::rows))
        .route("/v1/query", post(api::query))
        .route("/v1/runs", get(api::runs))
        .route("/v1/runs/{id}", get(api::run))
        .route("/v1/cost", get(api::cost))
        .route_layer(middleware::from_fn_with_state(server.clone(), require_key));
    // A request may take the query time limit and a little more to encode its answer.
    let request_timeout = server.limits.query_timeout + Duration::from_secs(10);
    let row_cap = server.limits.row_cap;
    Router::new()
        .merge(api)
        .route("/v1/openapi.json", get(move || async move { axum::Json(openapi::document(row_cap)) }))
        .merge(console::router(server.clone()))
        .fallback(|| async { ApiError::not_found("no such endpoint: GET /v1/openapi.json lists them") })
        .layer(RequestBodyLimitLayer::new(server.limits.body_bytes))
        .layer(middleware::map_response(close_after_a_refused_body))
        .layer(middleware::map_response(refusals_as_json))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(middleware::from_fn(log::access_log))
        .with_state(server)
}

/// A body refused for its size was not read: the connection cannot carry another request, and
/// a client that does not know it sends the next one into a closed socket.
async fn close_after_a_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    response
}

/// The layers and the router refuse some requests themselves (a method a route does not take,
/// a body over the limit, a request over time) with an empty or plain-text body; a client of
/// the API reads every refusal as the same JSON error, headers such as `Allow` kept.
async fn refusals_as_json(response: Response) -> Response {
    // The API's own errors are JSON, and the console's pages HTML: only a body that is empty
    // or plain text came from a layer.
    let is_plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    let status = response.status();
    if !is_plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("refused").to_lowercase(),
        text => text.to_string(),
    };
    let json = ApiError::new(status, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(json.headers().clone());
    Response::from_parts(parts, json.into_body())
}

/// `Authorization: Bearer SECRET`, else 401.
async fn require_key(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 9110, 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret.trim())
        .map(str::to_string);
    let key = match secret {
        None => Err(ApiError::unauthorized("send a key: Authorization: Bearer SECRET (etl serve keys create)")),
        Some(secret) => match server.keys.verify(&secret) {
            Ok(Some(key)) => Ok(key),
            Ok(None) => Err(ApiError::unauthorized("the key is not valid (unknown, revoked or expired)")),
            Err(error) => Err(ApiError::from(error)),
        },
    };
    match key {
        Ok(key) => with_key(key, request, next).await,
        Err(error) => {
            let mut response = error.into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"etl\""));
            response
        }
    }
}

/// Runs the request as `key`, and names the key to the access log.
async fn with_key(key: Key, mut request: Request, next: Next) -> Response {
    let name = KeyName(key.name.clone());
    request.extensions_mut().insert(key);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(name);
    response
}

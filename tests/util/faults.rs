//! A fault-injecting HTTP/1.1 proxy on loopback, between `etl` and the local AWS endpoint.
//!
//! Each connection carries one request: the proxy reads it (headers, then a `Content-Length`
//! or chunked body), and for a chosen fraction of requests, drawn from a seeded generator,
//! injects one fault of the kinds it was given:
//! - `InternalError`: 500, S3's XML `InternalError` (Glue/Athena: JSON `InternalServiceException`);
//! - `SlowDown`: S3's 503 `SlowDown` (Glue/Athena: 400 `ThrottlingException`, as AWS JSON
//!   services throttle, named in `x-amzn-ErrorType`);
//! - `Reset`: the connection is reset (RST) before any response;
//! - `Truncated`: the endpoint's real answer, its full `Content-Length` announced, half of the
//!   body sent, then the connection closed;
//! - `Delayed`: the endpoint's real answer, late (a fault that must not fail anything).
//!
//! Everything else is forwarded to the endpoint on a fresh connection with `Connection: close`,
//! the `Host` header unchanged (moto checks no signature), and the answer returned with
//! `Connection: close`. The proxy counts requests and injected faults per kind, so tests can
//! assert that the faults they survived really happened.
//!
//! Deliberate limits: errors and resets are injected *instead of* forwarding (the request never
//! reaches the endpoint, as when S3 throttles or a connection drops on the way), and a body is
//! truncated only on reads (S3 GET, Glue/Athena `Get*`, `List*`, `Search*`, `BatchGet*`). A
//! write that succeeded but whose answer was lost is another fault: its retry meets the write
//! already done, which is the business of the racing-writers and killed-runs tests. Which
//! request draws which fault is fixed by the seed only up to the order in which concurrent
//! requests arrive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    InternalError,
    SlowDown,
    Reset,
    Truncated,
    Delayed,
}

impl Fault {
    pub const ALL: [Fault; 5] = [Fault::InternalError, Fault::SlowDown, Fault::Reset, Fault::Truncated, Fault::Delayed];
    /// The kinds that fail a request (all but `Delayed`).
    pub const FAILING: [Fault; 4] = [Fault::InternalError, Fault::SlowDown, Fault::Reset, Fault::Truncated];

    fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// What to inject.
#[derive(Debug, Clone)]
pub struct Faults {
    /// The fraction of requests that get a fault, from 0 to 1.
    pub fraction: f64,
    /// The kinds to choose from, uniformly (a kind that does not apply to a request, such as
    /// truncating a write, gives way to another kind of the list).
    pub kinds: Vec<Fault>,
    pub seed: u64,
    /// The longest delay of a `Delayed` answer (each one is drawn below it).
    pub max_delay: Duration,
    /// Requests answered without fault before the first fault may come: with `fraction` 1,
    /// the endpoint goes down after this many requests, part-way through a run.
    pub healthy_first: u64,
}

impl Faults {
    pub fn new(fraction: f64, kinds: &[Fault], seed: u64) -> Self {
        Faults { fraction, kinds: kinds.to_vec(), seed, max_delay: Duration::from_millis(500), healthy_first: 0 }
    }
}

/// Requests seen and faults injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub faults: BTreeMap<Fault, u64>,
}

impl Counts {
    pub fn of(&self, fault: Fault) -> u64 {
        self.faults.get(&fault).copied().unwrap_or(0)
    }

    pub fn injected(&self) -> u64 {
        self.faults.values().sum()
    }

    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        for (fault, n) in &other.faults {
            *self.faults.entry(*fault).or_default() += n;
        }
    }
}

struct State {
    upstream: String,
    faults: Faults,
    rng: Mutex<SplitMix64>,
    requests: AtomicU64,
    injected: [AtomicU64; 5],
    stopped: AtomicBool,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    url: String,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the proxy");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("the proxy binds a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let state = Arc::new(State {
            upstream: upstream.trim_start_matches("http://").trim_end_matches('/').to_string(),
            rng: Mutex::new(SplitMix64(faults.seed)),
            faults,
            requests: AtomicU64::new(0),
            injected: Default::default(),
            stopped: AtomicBool::new(false),
        });
        let accepting = state.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting.stopped.load(Ordering::Relaxed) {
                    break;
                }
                let state = accepting.clone();
                tokio::spawn(async move {
                    // A client that gave up mid-request is none of the test's business.
                    let _ = serve(client, &state).await;
                });
            }
        });
        FaultProxy { url, state, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn counts(&self) -> Counts {
        let mut faults = BTreeMap::new();
        for fault in Fault::ALL {
            let n = self.state.injected[fault.index()].load(Ordering::Relaxed);
            if n > 0 {
                faults.insert(fault, n);
            }
        }
        Counts { requests: self.state.requests.load(Ordering::Relaxed), faults }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::Relaxed);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A small, seedable generator (SplitMix64): the test needs repeatable draws, not a crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In [0, 1).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One request as read from the client.
struct Request {
    head: String,
    /// The body exactly as it came (chunked framing included).
    body: Vec<u8>,
}

impl Request {
    fn method(&self) -> &str {
        self.head.split(' ').next().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }

    /// The Glue/Athena action (`AWSGlue.GetTable` -> `GetTable`); None for S3.
    fn json_action(&self) -> Option<&str> {
        self.header("x-amz-target").map(|t| t.rsplit('.').next().unwrap_or(t))
    }

    /// Whether the request only reads, so a lost answer can be asked again.
    fn is_read(&self) -> bool {
        match self.json_action() {
            Some(action) => ["Get", "List", "Search", "BatchGet"].iter().any(|p| action.starts_with(p)),
            None => self.method() == "GET",
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

async fn serve(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let number = state.requests.fetch_add(1, Ordering::Relaxed);
    let (fault, delay) = choose(state, &request, number);
    let count = |fault: Fault| state.injected[fault.index()].fetch_add(1, Ordering::Relaxed);
    match fault {
        Some(kind @ (Fault::InternalError | Fault::SlowDown)) => {
            count(kind);
            let answer = error_answer(fault == Some(Fault::SlowDown), request.json_action().is_some());
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Some(Fault::Reset) => {
            count(Fault::Reset);
            client.set_zero_linger()?;
            drop(client);
            Ok(())
        }
        Some(Fault::Truncated) | Some(Fault::Delayed) | None => {
            let answer = match forward(&state.upstream, &request).await {
                Ok(answer) => answer,
                Err(e) => {
                    let body = format!("the fault proxy could not reach the endpoint: {e}");
                    format!(
                        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                }
            };
            let answer = with_connection_close(&answer);
            if fault == Some(Fault::Delayed) {
                count(Fault::Delayed);
                tokio::time::sleep(delay).await;
            }
            let body_start = find(&answer, b"\r\n\r\n").map(|i| i + 4).unwrap_or(answer.len());
            let body_length = answer.len() - body_start;
            if fault == Some(Fault::Truncated) && body_length < 2 {
                // Nothing to cut in half: the answer is lost another way.
                count(Fault::Reset);
                client.set_zero_linger()?;
                return Ok(());
            }
            if fault == Some(Fault::Truncated) {
                count(Fault::Truncated);
                client.write_all(&answer[..body_start + body_length / 2]).await?;
                client.flush().await?;
                // Closed without the rest: the client must notice from `Content-Length`.
                return client.shutdown().await;
            }
            client.write_all(&answer).await?;
            client.shutdown().await
        }
    }
}

/// The fault for this request, if any, and the delay of a `Delayed` one.
fn choose(state: &State, request: &Request, number: u64) -> (Option<Fault>, Duration) {
    let mut rng = state.rng.lock().unwrap_or_else(|e| e.into_inner());
    let delay = state.faults.max_delay.mul_f64(rng.fraction());
    if state.faults.kinds.is_empty() || number < state.faults.healthy_first || rng.fraction() >= state.faults.fraction {
        return (None, delay);
    }
    let start = (rng.next() % state.faults.kinds.len() as u64) as usize;
    // Truncating needs a body worth truncating on a read; HEAD answers have none.
    let applies = |fault: &Fault| match fault {
        Fault::Truncated => request.is_read() && request.method() != "HEAD",
        _ => true,
    };
    let kinds = &state.faults.kinds;
    let fault = (0..kinds.len()).map(|i| kinds[(start + i) % kinds.len()]).find(applies);
    (fault, delay)
}

fn error_answer(throttle: bool, json: bool) -> Vec<u8> {
    let (status, kind, message, content_type) = match (throttle, json) {
        (false, false) => (
            "500 Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
            "application/xml",
        ),
        (true, false) => ("503 Slow Down", "SlowDown", "Please reduce your request rate.", "application/xml"),
        (false, true) => (
            "500 Internal Server Error",
            "InternalServiceException",
            "Internal service error (injected).",
            "application/x-amz-json-1.1",
        ),
        (true, true) => {
            ("400 Bad Request", "ThrottlingException", "Rate exceeded (injected).", "application/x-amz-json-1.1")
        }
    };
    let body = if json {
        format!(r#"{{"__type":"{kind}","message":"{message}"}}"#)
    } else {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{kind}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"#
        )
    };
    let error_type = if json { format!("x-amzn-ErrorType: {kind}\r\n") } else { String::new() };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{error_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one request: None when the client closed before sending one.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i + 4;
        }
        if !read_more(client, &mut buffer).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut body = buffer[head_end..].to_vec();
    if header(&head, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        while !chunked_complete(&body) {
            if !read_more(client, &mut body).await? {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "chunked body ended early"));
            }
        }
    } else {
        let length: usize = header(&head, "content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        while body.len() < length {
            if !read_more(client, &mut body).await? {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "body ended early"));
            }
        }
    }
    Ok(Some(Request { head, body }))
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Whether a chunked body holds its last (empty) chunk and the trailer's end.
fn chunked_complete(body: &[u8]) -> bool {
    let mut at = 0;
    loop {
        let Some(line_end) = find(&body[at..], b"\r\n").map(|i| at + i) else {
            return false;
        };
        let size_text = String::from_utf8_lossy(&body[at..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return false;
        };
        if size == 0 {
            return find(&body[line_end..], b"\r\n\r\n").is_some();
        }
        at = line_end + 2 + size + 2;
        if at > body.len() {
            return false;
        }
    }
}

/// The endpoint's whole answer to `request`, sent on a fresh connection.
async fn forward(upstream: &str, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut endpoint = TcpStream::connect(upstream).await?;
    let mut head: Vec<&str> = request
        .head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("Connection: close");
    let head = format!("{}\r\n\r\n", head.join("\r\n"));
    endpoint.write_all(head.as_bytes()).await?;
    endpoint.write_all(&request.body).await?;
    let mut answer = Vec::new();
    endpoint.read_to_end(&mut answer).await?;
    Ok(answer)
}

/// The answer with `Connection: close` in place of whatever the endpoint said.
fn with_connection_close(answer: &[u8]) -> Vec<u8> {
    let Some(head_end) = find(answer, b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let mut lines: Vec<&str> =
        head.split("\r\n").filter(|line| !line.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    let mut out = format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes();
    out.extend_from_slice(&answer[head_end + 4..]);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

//! The local AWS endpoint the test command starts (moto): its address, buckets, unique names.
//!
//! `scripts/test` starts the endpoint and sets `AWS_ENDPOINT_URL` and `ETL_REQUIRE_AWS=1`;
//! then a missing endpoint fails the suite instead of skipping it. Run alone (`cargo test`
//! without an endpoint), the AWS cases say they did not run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};

/// The endpoint, or None when this run has none (and does not require one).
pub fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("ETL_REQUIRE_AWS").as_deref() == Ok("1") => {
            panic!("ETL_REQUIRE_AWS=1 but AWS_ENDPOINT_URL is not set: the local AWS endpoint did not start")
        }
        _ => {
            eprintln!("NOT RUN: no AWS_ENDPOINT_URL (scripts/test starts a local endpoint)");
            None
        }
    }
}

/// A name no other test (or earlier run against the same endpoint) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}{}{:x}{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Sends one plain HTTP request to the endpoint. Moto checks no signature, but it treats a
/// request without an `Authorization` header as anonymous, and refuses an anonymous overwrite.
const AUTHORIZATION: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n";

fn request(method: &str, path: &str, body: &[u8]) -> String {
    let url = endpoint().expect("an endpoint");
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("the endpoint accepts connections");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n{AUTHORIZATION}\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{method} {path}: {response}"
    );
    response
}

pub fn create_bucket(bucket: &str) {
    request("PUT", &format!("/{bucket}"), b"");
}

pub fn put_object(bucket: &str, key: &str, body: &[u8]) {
    request("PUT", &format!("/{bucket}/{key}"), body);
}

/// Keys under a prefix (from the ListObjectsV2 XML).
pub fn list_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let response = request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), b"");
    let mut keys: Vec<String> =
        response.split("<Key>").skip(1).filter_map(|part| part.split("</Key>").next()).map(str::to_string).collect();
    keys.sort();
    keys
}

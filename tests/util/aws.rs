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

/// One call of the Glue JSON API (`action`, e.g. `DeletePartition`), as another tool makes it.
pub fn glue(action: &str, body: &str) -> String {
    json_call("glue", &format!("AWSGlue.{action}"), body)
}

/// The JSON document a response of [`glue`] or [`athena`] carries.
pub fn json_body(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).expect("a response has a body");
    serde_json::from_str(body).expect("a JSON body")
}

/// One call of the Athena JSON API (`action`, e.g. `GetQueryExecution`).
pub fn athena(action: &str, body: &str) -> String {
    json_call("athena", &format!("AmazonAthena.{action}"), body)
}

/// One call of a JSON protocol API (`target`: its `X-Amz-Target`); the response with headers.
fn json_call(service: &str, target: &str, body: &str) -> String {
    let url = endpoint().expect("an endpoint");
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("the endpoint accepts connections");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {target}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{target}: {response}");
    response
}

/// The KMS key an object is encrypted with (its `x-amz-server-side-encryption-aws-kms-key-id`).
pub fn kms_key_of(bucket: &str, key: &str) -> Option<String> {
    let response = request("HEAD", &format!("/{bucket}/{key}"), b"");
    response.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-server-side-encryption-aws-kms-key-id").then(|| value.trim().to_string())
    })
}

/// Keys under a prefix (from the ListObjectsV2 XML).
pub fn list_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let response = request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"), b"");
    let mut keys: Vec<String> =
        response.split("<Key>").skip(1).filter_map(|part| part.split("</Key>").next()).map(str::to_string).collect();
    keys.sort();
    keys
}

/// Keys under a prefix that Hive readers list: none in a folder whose name starts with `_` or
/// `.` (journals, version manifests, the files of replaced versions kept for rollback).
pub fn visible_keys(bucket: &str, prefix: &str) -> Vec<String> {
    list_keys(bucket, prefix).into_iter().filter(|k| !k.split('/').any(|part| part.starts_with(['_', '.']))).collect()
}

/// Runs a request of the SQS client against the endpoint, on a runtime of its own.
fn sqs<T>(work: impl AsyncFnOnce(&aws_sdk_sqs::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint().expect("an endpoint"))
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        work(&aws_sdk_sqs::Client::new(&config)).await
    })
}

/// A queue with a 2-second visibility timeout, and a redrive policy to `dead_letter` after
/// that many receives; its URL.
pub fn create_queue(name: &str, dead_letter: Option<(&str, u32)>) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    sqs(async |client: &aws_sdk_sqs::Client| {
        let mut create = client.create_queue().queue_name(name).attributes(QueueAttributeName::VisibilityTimeout, "2");
        if let Some((queue, max_receives)) = dead_letter {
            let attributes = client
                .get_queue_attributes()
                .queue_url(queue)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap();
            let arn = attributes.attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
            let policy = format!(r#"{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": "{max_receives}"}}"#);
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        create.send().await.unwrap().queue_url.unwrap()
    })
}

pub fn send_message(queue: &str, body: &str) {
    sqs(async |client: &aws_sdk_sqs::Client| {
        client.send_message().queue_url(queue).message_body(body).send().await.unwrap();
    })
}

/// The body of a message received from `queue` within `limit`.
pub fn receive_message(queue: &str, limit: std::time::Duration) -> Option<String> {
    sqs(async |client: &aws_sdk_sqs::Client| {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            let received = client.receive_message().queue_url(queue).wait_time_seconds(5).send().await.unwrap();
            if let Some(message) = received.messages.unwrap_or_default().into_iter().next() {
                return message.body;
            }
        }
        None
    })
}

/// Messages in `queue`, visible or not.
pub fn queue_depth(queue: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName::{ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible};
    sqs(async |client: &aws_sdk_sqs::Client| {
        let attributes = client
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(ApproximateNumberOfMessages)
            .attribute_names(ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attributes = attributes.attributes().unwrap();
        [ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible]
            .iter()
            .map(|name| attributes.get(name).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
            .sum()
    })
}

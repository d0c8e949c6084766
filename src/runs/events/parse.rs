//! Events as AWS delivers them, read into the objects they name.
//!
//! Two shapes carry an object created in S3:
//! - an EventBridge event (`source: aws.s3`, `detail-type`, `detail.bucket.name`,
//!   `detail.object.key`, `version-id`, `etag`), whose key is as stored;
//! - an S3 event notification (`Records[].s3.bucket.name`, `.object.key`, `versionId`,
//!   `eTag`), whose key is URL-encoded as a form value (`red flower.jpg` comes as
//!   `red+flower.jpg`, a `+` as `%2B`), decoded here.
//!
//! Each may come wrapped as the services that carry it wrap it: an SNS notification
//! (`Type: Notification`, the event as text in `Message`), records of SQS messages
//! (`Records[].body`) or of SNS (`Records[].Sns.Message`) as Lambda receives them. The test
//! event S3 sends when a notification is configured names no object. Anything else is refused,
//! naming the field that is missing or wrong: an event that cannot be read is a configuration
//! error of whoever sends it, not something to guess at.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ObjectRef;

/// One object an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub object: ObjectRef,
    /// Whether the event is a creation (`Object Created`, `ObjectCreated:*`); only those
    /// start jobs.
    pub created: bool,
    /// When it happened, as the event says.
    pub time: Option<DateTime<Utc>>,
}

/// The objects of an event's text; why it is not an S3 event, naming the field.
pub fn parse(text: &str) -> Result<Vec<Notice>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    notices(&value, "")
}

fn notices(value: &Value, at: &str) -> Result<Vec<Notice>, String> {
    let Some(fields) = value.as_object() else {
        return Err(format!("{}: expected a JSON object", name(at, "")));
    };
    if let Some(records) = fields.get("Records") {
        let records = records.as_array().ok_or_else(|| format!("{}: expected an array", name(at, "Records")))?;
        let mut all = Vec::new();
        for (i, record) in records.iter().enumerate() {
            all.extend(record_notices(record, &name(at, &format!("Records[{i}]")))?);
        }
        return Ok(all);
    }
    if ["source", "detail-type", "detail"].iter().any(|k| fields.contains_key(*k)) {
        return eventbridge(value, at).map(|notice| vec![notice]);
    }
    if fields.get("Type").and_then(Value::as_str) == Some("Notification") {
        return wrapped(value, "Message", at);
    }
    if fields.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    Err(format!(
        "{}neither an EventBridge event (source, detail-type, detail) nor an S3 event notification (Records)",
        match at.is_empty() {
            true => String::new(),
            false => format!("{at}: "),
        }
    ))
}

/// A record of a notification: S3's own, or an SQS message or SNS notification carrying one.
fn record_notices(record: &Value, at: &str) -> Result<Vec<Notice>, String> {
    if record.get("s3").is_some() {
        return s3_record(record, at).map(|notice| vec![notice]);
    }
    if record.get("body").is_some() {
        return wrapped(record, "body", at);
    }
    if let Some(sns) = record.get("Sns") {
        return wrapped(sns, "Message", &name(at, "Sns"));
    }
    Err(format!("{at}: a record with no s3 (nor an SQS body or SNS message carrying one)"))
}

/// An event carried as text in a field of another.
fn wrapped(value: &Value, field: &str, at: &str) -> Result<Vec<Notice>, String> {
    let at = name(at, field);
    let text = string(value, field, &at)?;
    let inner: Value = serde_json::from_str(text).map_err(|e| format!("{at}: not JSON: {e}"))?;
    notices(&inner, &at)
}

fn eventbridge(event: &Value, at: &str) -> Result<Notice, String> {
    let source = string(event, "source", &name(at, "source"))?;
    if source != "aws.s3" {
        return Err(format!("{}: '{source}' is not an S3 event (expected aws.s3)", name(at, "source")));
    }
    let detail_type = string(event, "detail-type", &name(at, "detail-type"))?;
    let detail = event.get("detail").ok_or_else(|| format!("{}: missing", name(at, "detail")))?;
    let bucket = bucket(detail, &name(at, "detail.bucket.name"))?;
    let object = detail.get("object").ok_or_else(|| format!("{}: missing", name(at, "detail.object")))?;
    let key = string(object, "key", &name(at, "detail.object.key"))?;
    Ok(Notice {
        object: ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: optional(object, "version-id"),
            etag: optional(object, "etag"),
        },
        created: detail_type == "Object Created",
        time: time(event, "time", &name(at, "time"))?,
    })
}

fn s3_record(record: &Value, at: &str) -> Result<Notice, String> {
    let s3 = &record["s3"];
    let bucket = bucket(s3, &name(at, "s3.bucket.name"))?;
    let object = s3.get("object").ok_or_else(|| format!("{}: missing", name(at, "s3.object")))?;
    let key = string(object, "key", &name(at, "s3.object.key"))?;
    let event_name = record.get("eventName").and_then(Value::as_str).unwrap_or_default();
    Ok(Notice {
        object: ObjectRef {
            bucket: bucket.to_string(),
            key: form_decode(key),
            version_id: optional(object, "versionId"),
            etag: optional(object, "eTag"),
        },
        created: event_name.starts_with("ObjectCreated:"),
        time: time(record, "eventTime", &name(at, "eventTime"))?,
    })
}

/// A form value's text: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> String {
    crate::location::percent_decode(&text.replace('+', " "))
}

fn name(at: &str, field: &str) -> String {
    match (at.is_empty(), field.is_empty()) {
        (true, true) => "the event".into(),
        (true, false) => field.into(),
        (false, true) => at.into(),
        (false, false) => format!("{at}.{field}"),
    }
}

fn string<'a>(value: &'a Value, field: &str, at: &str) -> Result<&'a str, String> {
    match value.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(format!("{at}: empty")),
        Some(other) => Err(format!("{at}: expected a string, found {other}")),
        None => Err(format!("{at}: missing")),
    }
}

/// `bucket.name`: empty, null or missing for a local file, whose key is its path.
fn bucket<'a>(value: &'a Value, at: &str) -> Result<&'a str, String> {
    match value.get("bucket").and_then(|b| b.get("name")) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(name)) => Ok(name),
        Some(other) => Err(format!("{at}: expected a string, found {other}")),
    }
}

/// A version id or ETag; S3 sends `null` or nothing for an unversioned bucket's version.
fn optional(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).filter(|text| !text.is_empty() && *text != "null").map(str::to_string)
}

/// When the event says it happened; none when it does not say, refused when what it says is
/// not a time (the logical date of the runs it starts comes from it).
fn time(value: &Value, field: &str, at: &str) -> Result<Option<DateTime<Utc>>, String> {
    let Some(given) = value.get(field).filter(|v| !v.is_null()) else { return Ok(None) };
    let text = given.as_str().ok_or_else(|| format!("{at}: expected an RFC 3339 time, got {given}"))?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| format!("{at}: '{text}' is not an RFC 3339 time ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's sample of an EventBridge `Object Created` event (S3 user guide, "EventBridge event
    /// message structure"), with our bucket and key.
    const EVENTBRIDGE: &str = include_str!("../../../data/events/eventbridge_object_created.json");

    /// AWS's sample of an S3 event notification (S3 user guide, "Event message structure"),
    /// with our bucket and key, URL-encoded as S3 sends it.
    const NOTIFICATION: &str = include_str!("../../../data/events/s3_notification.json");

    #[test]
    fn an_eventbridge_object_created_event_names_its_object_as_stored() {
        let notices = parse(EVENTBRIDGE).unwrap();
        assert_eq!(notices.len(), 1);
        let notice = &notices[0];
        assert!(notice.created);
        assert_eq!(notice.object.to_string(), "s3://raw-data/orders/2021-11-12/part 1+2.csv");
        assert_eq!(notice.object.version(), "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e");
        assert_eq!(notice.object.etag.as_deref(), Some("b1946ac92492d2347c6235b4d2611184"));
        assert_eq!(notice.time.unwrap().to_rfc3339(), "2021-11-12T00:00:00+00:00");
        let deleted = EVENTBRIDGE.replace("Object Created", "Object Deleted");
        assert!(!parse(&deleted).unwrap()[0].created);
    }

    #[test]
    fn an_s3_notification_key_is_decoded_as_a_form_value() {
        let notices = parse(NOTIFICATION).unwrap();
        let object = &notices[0].object;
        assert_eq!((object.bucket.as_str(), object.key.as_str()), ("raw-data", "orders/2026-11-02/part 1+2.csv"));
        assert_eq!(object.version(), "096fKKXTRTtl3on89fVO.nfljtsv6qko");
        assert!(notices[0].created);
        let removed = NOTIFICATION.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert!(!parse(&removed).unwrap()[0].created);
        // Without a version id (an unversioned bucket), the ETag tells writes apart.
        let unversioned = NOTIFICATION.replace("\"096fKKXTRTtl3on89fVO.nfljtsv6qko\"", "null");
        assert_eq!(parse(&unversioned).unwrap()[0].object.version(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn events_wrapped_by_sns_sqs_and_lambda_are_unwrapped() {
        let text = |json: &str| serde_json::to_string(&Value::String(json.to_string())).unwrap();
        let sns = format!(r#"{{"Type": "Notification", "MessageId": "m", "Message": {}}}"#, text(NOTIFICATION));
        let from_sqs = format!(r#"{{"Records": [{{"eventSource": "aws:sqs", "body": {}}}]}}"#, text(EVENTBRIDGE));
        let from_sns =
            format!(r#"{{"Records": [{{"EventSource": "aws:sns", "Sns": {{"Message": {}}}}}]}}"#, text(NOTIFICATION));
        for wrapped in [sns, from_sqs, from_sns] {
            let notices = parse(&wrapped).unwrap();
            assert_eq!(notices.len(), 1, "{wrapped}");
            assert_eq!(notices[0].object.bucket, "raw-data");
        }
        let test_event = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-02T10:00:00.000Z", "Bucket": "raw-data"}"#;
        assert_eq!(parse(test_event).unwrap(), []);
    }

    #[test]
    fn a_local_file_has_no_bucket_and_its_path_as_key() {
        for bucket in ["\"bucket\": {\"name\": \"\"}, ", "\"bucket\": {\"name\": null}, ", ""] {
            let event = format!(
                "{{\"source\": \"aws.s3\", \"detail-type\": \"Object Created\", \"detail\": {{{bucket}\"object\": {{\"key\": \"/data/in/a.csv\"}}}}}}"
            );
            let object = &parse(&event).unwrap()[0].object;
            assert!(object.is_local(), "{event}");
            assert_eq!((object.to_string().as_str(), object.version()), ("/data/in/a.csv", ""));
        }
    }

    #[test]
    fn what_is_not_an_s3_event_is_refused_naming_the_field() {
        for (text, expected) in [
            ("{", "not JSON"),
            ("[]", "the event: expected a JSON object"),
            ("{\"hello\": 1}", "neither an EventBridge event"),
            (&EVENTBRIDGE.replace("\"aws.s3\"", "\"aws.ec2\"") as &str, "source: 'aws.ec2' is not an S3 event"),
            (&EVENTBRIDGE.replace("\"key\"", "\"name\""), "detail.object.key: missing"),
            (
                &NOTIFICATION.replacen("\"name\": \"raw-data\"", "\"name\": 7", 1),
                "Records[0].s3.bucket.name: expected a string, found 7",
            ),
            ("{\"Records\": [{\"eventSource\": \"aws:sqs\", \"body\": \"{}\"}]}", "Records[0].body: neither"),
            ("{\"Records\": [{\"eventSource\": \"aws:sqs\"}]}", "Records[0]: a record with no s3"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "expected '{expected}' in: {error}");
        }
    }
}

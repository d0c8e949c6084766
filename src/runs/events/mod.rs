//! Events: jobs started by objects arriving, as S3 event notifications or EventBridge rules
//! with Step Functions or Lambda would start them.
//!
//! A job declares what it waits for with `[[trigger]]` sections ([`trigger`]): an S3 prefix
//! or a local folder, and an optional suffix. An event as AWS delivers it ([`parse`]) names
//! objects; each object created runs every job of the folder whose trigger matches it, then
//! the jobs downstream of those in the pipeline graph, as one pipeline run ([`dispatch`]).
//! `etl trigger` hands one event over; the scheduler reads them from an SQS queue ([`queue`])
//! and notices new files in local trigger folders itself ([`watch`]).
//!
//! An object is its bucket, key, and version id or ETag: the same object never starts the
//! same job twice, whichever way its event comes, and however often (S3 delivers at least
//! once, SQS redelivers). The run history records which pipeline run each object started for
//! each job; a delivery of an object whose pipeline run failed resumes that run instead, so a
//! redelivered message is how a failed event is retried.

pub mod dispatch;
pub mod listen;
pub mod parse;
pub mod queue;
pub mod trigger;
pub mod watch;

use std::fmt;

use serde::{Deserialize, Serialize};

/// An object an event names: in a bucket, or a local file (no bucket, its path as the key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Empty for a local file.
    pub bucket: String,
    /// Decoded: the key as S3 stores it, or the file's path.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ObjectRef {
    /// What tells two writes of one key apart: its version id, else its ETag (the same
    /// content written again is the same object), else nothing.
    pub fn version(&self) -> &str {
        self.version_id.as_deref().or(self.etag.as_deref()).unwrap_or("")
    }

    pub fn is_local(&self) -> bool {
        self.bucket.is_empty()
    }
}

/// `s3://bucket/key`, or a local file's path.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.is_local() {
            true => f.write_str(&self.key),
            false => write!(f, "s3://{}/{}", self.bucket, self.key),
        }
    }
}

/// The object that started a run, as its report keeps it (`started_by` is `event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventObject {
    /// `s3://bucket/key` or the file's path, as `etl runs` shows it.
    pub object: String,
    #[serde(flatten)]
    pub id: ObjectRef,
}

impl From<&ObjectRef> for EventObject {
    fn from(id: &ObjectRef) -> Self {
        EventObject { object: id.to_string(), id: id.clone() }
    }
}

//! The one error type of `etl`.
//!
//! Every failure carries a [`ErrorKind`] that decides the exit status (usage and configuration
//! errors exit 2, everything that fails while running exits 1) and a message that names what
//! failed: the file, the line or record, the column, the option. Foreign errors are converted at
//! the boundary where they enter (DataFusion, object_store, SQLite, I/O), never deeper.
//!
//! Errors raised inside DataFusion execution (a bad record found by our scan, for example) travel
//! through DataFusion as `DataFusionError::External` and are unwrapped again here, so their kind
//! and message survive the trip.

use std::fmt;

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure this is; decides the exit status and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command line: unknown option, missing argument (exit 2).
    Usage,
    /// Bad configuration: invalid job file, schedule, parameter, location (exit 2).
    Config,
    /// Bad input data: a record, file or schema that cannot be read (exit 1).
    Input,
    /// A SQL statement failed to plan or run (exit 1).
    Query,
    /// Whoever reads our output stopped reading (a closed pipe): not a failure (exit 0).
    OutputClosed,
    /// A concurrent writer changed what this one read (exit 1).
    Conflict,
    /// The data failed a check of severity error: nothing was published (exit 1).
    Check,
    /// Something asked for does not exist (exit 1).
    NotFound,
    /// Storage, catalog or any other runtime failure (exit 1).
    Runtime,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::OutputClosed => 0,
            ErrorKind::Usage | ErrorKind::Config => 2,
            ErrorKind::Input
            | ErrorKind::Query
            | ErrorKind::Conflict
            | ErrorKind::Check
            | ErrorKind::NotFound
            | ErrorKind::Runtime => 1,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }
    pub fn query(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Query, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn check(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Check, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn runtime(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Runtime, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A read of an object that is not there (any longer): the object store's words, which
    /// DataFusion passes on as text inside its own.
    pub fn is_missing_object(&self) -> bool {
        self.message.contains("Object at location") && self.message.contains("not found")
    }

    /// Prefixes the message with where the failure happened ("reading s3://b/k.csv: ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Wraps the error so it can travel through DataFusion and be unwrapped by `From` below.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Adds context to any fallible result whose error converts into ours.
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Self {
        if let Some(ours) = find_ours(&error) {
            return Error::new(ours.kind, ours.message.clone());
        }
        // The root cause is what a user can act on; DataFusion's wrappers name its internal
        // passes ("type_coercion"), which mean nothing to them.
        let root = error.find_root();
        let text = root.to_string();
        if let Some(remote) = ours_printed_in(&text) {
            return remote;
        }
        if let Some(missing) = no_such_bucket(&text) {
            return missing;
        }
        // DataFusion words a function given the wrong types (`sum` of a string) as an internal
        // error to report as its bug; it is the query's, and its last sentences say so.
        if let Some(at) = text.find(NO_SIGNATURE) {
            return Error::query(text[at..].trim());
        }
        let kind = match root {
            DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorKind::Runtime,
            DataFusionError::ResourcesExhausted(_) => ErrorKind::Runtime,
            _ => ErrorKind::Query,
        };
        Error::new(kind, strip_datafusion_prefixes(&root.to_string()))
    }
}

const NO_SIGNATURE: &str = "No function matches the given name and argument types";

/// An error of ours that crossed a process boundary as text: a cluster's executor sends a
/// task's failure to the scheduler as its debug print (`…External(Error { kind: Input,
/// message: "bad record in …" })…`), which is given back its kind and message.
fn ours_printed_in(text: &str) -> Option<Error> {
    let at = text.find("Error { kind: ")?;
    let rest = &text[at + "Error { kind: ".len()..];
    let (kind, rest) = rest.split_once(", message: \"")?;
    let kind = match kind {
        "Usage" => ErrorKind::Usage,
        "Config" => ErrorKind::Config,
        "Input" => ErrorKind::Input,
        "Query" => ErrorKind::Query,
        "Conflict" => ErrorKind::Conflict,
        "Check" => ErrorKind::Check,
        "NotFound" => ErrorKind::NotFound,
        "Runtime" => ErrorKind::Runtime,
        _ => return None,
    };
    let (message, _) = debug_literal(rest)?;
    Some(Error::new(kind, message))
}

/// A string literal as Rust's debug print quotes it, from after its opening quote: its text,
/// and what follows its closing quote.
fn debug_literal(quoted: &str) -> Option<(String, &str)> {
    let mut text = String::new();
    let mut chars = quoted.char_indices();
    loop {
        match chars.next()? {
            (at, '"') => return Some((text, &quoted[at + 1..])),
            (_, '\\') => match chars.next()?.1 {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                'r' => text.push('\r'),
                '0' => text.push('\0'),
                'u' => {
                    let code: String = chars.by_ref().skip(1).map(|(_, c)| c).take_while(|c| *c != '}').collect();
                    text.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
                }
                other => text.push(other),
            },
            (_, other) => text.push(other),
        }
    }
}

/// A failed task's error as the local run says it. Ballista reports it as the debug print of
/// the executor's error, behind the job and stage that failed (`Job … failed: … Task failed due
/// to runtime execution error: DataFusionError(Shared(External(ArrowError(CastError("…")))))`):
/// its messages, each after the words arrow or DataFusion print before its variant.
pub fn task_error(text: &str) -> String {
    const MARK: &str = "runtime execution error: ";
    let Some(at) = text.find(MARK) else { return text.to_string() };
    let debug = text[at + MARK.len()..].trim_end();
    let (messages, unit) = debug_messages(debug);
    if messages.is_empty() {
        // A unit variant: `ArrowError(DivideByZero, None)`.
        return match unit {
            Some("DivideByZero") => "Divide by zero error".to_string(),
            _ => debug.to_string(),
        };
    }
    let prefix = |variant: &str| match variant {
        "CastError" => "Cast error: ",
        "ComputeError" => "Compute error: ",
        "ArithmeticOverflow" => "Arithmetic overflow: ",
        "ParseError" => "Parser error: ",
        "InvalidArgumentError" => "Invalid argument error: ",
        "NotImplemented" => "This feature is not implemented: ",
        "ResourcesExhausted" => "Resources exhausted: ",
        _ => "",
    };
    messages.iter().map(|(variant, message)| format!("{}{message}", prefix(variant))).collect::<Vec<_>>().join(": ")
}

/// The string literals of debug text, each with the variant it is the first field of; and the
/// innermost unit variant, for text with no literal.
fn debug_messages(debug: &str) -> (Vec<(&str, String)>, Option<&str>) {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    let (mut messages, mut unit) = (Vec::new(), None);
    let mut rest = debug;
    while let Some(c) = rest.chars().next() {
        let before = &debug[..debug.len() - rest.len()];
        if c == '"' {
            let variant = before.strip_suffix('(').and_then(|b| b.rsplit(|c| !is_name(c)).next()).unwrap_or("");
            let Some((literal, after)) = debug_literal(&rest[1..]) else { break };
            messages.push((variant, literal));
            rest = after;
        } else if is_name(c) {
            let end = rest.find(|c| !is_name(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            rest = &rest[end..];
            if rest.starts_with([')', ',']) && !matches!(word, "None" | "Some" | "true" | "false") {
                unit = Some(word);
            }
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    (messages, unit)
}

/// Walks DataFusion's wrappers (Context, Shared, External, ArrowError::ExternalError) looking
/// for an error we raised ourselves.
fn find_ours<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return Some(ours);
        }
        if let Some(DataFusionError::External(inner)) = e.downcast_ref::<DataFusionError>() {
            if let Some(ours) = inner.downcast_ref::<Error>() {
                return Some(ours);
            }
        }
        if let Some(datafusion::arrow::error::ArrowError::ExternalError(inner)) =
            e.downcast_ref::<datafusion::arrow::error::ArrowError>()
        {
            if let Some(found) = find_ours(inner.as_ref()) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// DataFusion prefixes messages with its internal category ("Error during planning: "), which
/// says nothing to a user that the message itself does not.
fn strip_datafusion_prefixes(message: &str) -> String {
    const PREFIXES: &[&str] = &[
        "Error during planning: ",
        "SQL error: ",
        "Execution error: ",
        "External error: ",
        "Schema error: ",
        "Arrow error: ",
    ];
    let mut rest = message;
    loop {
        let before = rest;
        for prefix in PREFIXES {
            if let Some(stripped) = rest.strip_prefix(prefix) {
                rest = stripped;
            }
        }
        // DataFusion's Parquet error prints its cause's text, which says it again.
        if let Some(stripped) = rest.strip_prefix("Parquet error: ").filter(|r| r.starts_with("Parquet error: ")) {
            rest = stripped;
        }
        if before == rest {
            return rest.trim().to_string();
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            return Error::new(ErrorKind::OutputClosed, "output closed");
        }
        Error::runtime(error.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { path, .. } => Error::not_found(format!("{path} does not exist")),
            other => {
                let text = other.to_string();
                no_such_bucket(&text).unwrap_or_else(|| Error::runtime(text))
            }
        }
    }
}

/// S3's answer for a bucket that does not exist, which the object store passes on as its XML
/// (with the request's URL and id): the bucket's name is what a user can act on.
fn no_such_bucket(text: &str) -> Option<Error> {
    if !text.contains("<Code>NoSuchBucket</Code>") {
        return None;
    }
    let bucket = text.split("<BucketName>").nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("?");
    Some(Error::not_found(format!("bucket {bucket} does not exist (S3 answered NoSuchBucket)")))
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        match error {
            datafusion::arrow::error::ArrowError::ExternalError(inner) => match find_ours(inner.as_ref()) {
                Some(ours) => Error::new(ours.kind, ours.message.clone()),
                None => Error::runtime(inner.to_string()),
            },
            other => Error::runtime(other.to_string()),
        }
    }
}

impl From<datafusion::parquet::errors::ParquetError> for Error {
    fn from(error: datafusion::parquet::errors::ParquetError) -> Self {
        Error::input(error.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::runtime(format!("catalog database: {error}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        if error.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) {
            return Error::new(ErrorKind::OutputClosed, "output closed");
        }
        Error::runtime(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing bucket was reported as S3's XML, the request's URL and its id.
    #[test]
    fn a_missing_bucket_is_named() {
        let text = "Generic S3 error: Error performing list request: Client error with status 404 Not Found: <?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>raw-nope</BucketName><RequestID>X</RequestID></Error>";
        let error = Error::from(object_store::Error::Generic { store: "S3", source: text.into() });
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(error.message(), "bucket raw-nope does not exist (S3 answered NoSuchBucket)");
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::usage("x").kind().exit_code(), 2);
        assert_eq!(Error::config("x").kind().exit_code(), 2);
        assert_eq!(Error::input("x").kind().exit_code(), 1);
        assert_eq!(Error::conflict("x").kind().exit_code(), 1);
    }

    #[test]
    fn our_errors_printed_by_a_remote_executor_are_ours_again() {
        let ours = Error::input("bad record in \"a.csv\" line 3\n\u{1}");
        let printed = format!("Task failed: DataFusionError(Shared(External({ours:?})))");
        let back = Error::from(DataFusionError::Execution(printed));
        assert_eq!((back.kind(), back.message()), (ErrorKind::Input, "bad record in \"a.csv\" line 3\n\u{1}"));
    }

    #[test]
    fn our_errors_survive_a_trip_through_datafusion() {
        let ours = Error::input("bad record in a.csv line 3");
        let wrapped = DataFusionError::Context("scan".into(), Box::new(ours.into_datafusion()));
        let back = Error::from(wrapped);
        assert_eq!(back.kind(), ErrorKind::Input);
        assert_eq!(back.message(), "bad record in a.csv line 3");
    }

    #[test]
    fn datafusion_prefixes_are_dropped() {
        let e = Error::from(DataFusionError::Plan("table 'x.y' not found".into()));
        assert_eq!(e.message(), "table 'x.y' not found");
        assert_eq!(e.kind(), ErrorKind::Query);
    }

    /// A query that planned on files a publication then moved aside fails reading them; this
    /// is how `etl sql` knows to plan it again.
    #[tokio::test]
    async fn a_file_gone_while_a_query_reads_is_a_missing_object() {
        use datafusion::prelude::{ParquetReadOptions, SessionContext};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let ctx = SessionContext::new();
        let frame = ctx
            .sql("SELECT value AS a, repeat(CAST(value AS VARCHAR), 20) AS b FROM generate_series(1, 200000)")
            .await
            .unwrap();
        frame.write_parquet(path.to_str().unwrap(), Default::default(), None).await.unwrap();
        let frame = ctx.read_parquet(path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        let plan = frame.create_physical_plan().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let error = Error::from(datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap_err());
        assert!(error.is_missing_object(), "{error}");
        assert!(!Error::query("table raw.x not found").is_missing_object());
    }

    #[test]
    fn a_failed_tasks_error_reads_as_the_local_one() {
        let failed = "Execution error: Job 038JG failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: ";
        let cast = format!(
            "{failed}DataFusionError(Shared(External(ArrowError(CastError(\"Cannot cast string 'a' to value of Int32 type\")))))"
        );
        assert_eq!(task_error(&cast), "Cast error: Cannot cast string 'a' to value of Int32 type");
        assert_eq!(task_error(&format!("{failed}ArrowError(DivideByZero, None)")), "Divide by zero error");
        let context = format!("{failed}Context(\"writing \\\"t\\\"\", Execution(\"bigint addition overflow: 1 + 2\"))");
        assert_eq!(task_error(&context), "writing \"t\": bigint addition overflow: 1 + 2");
        assert_eq!(task_error("connection refused"), "connection refused");
    }
}

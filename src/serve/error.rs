//! What a failed request answers: a status and a JSON body that says what was wrong, naming the
//! parameter and the value when a parameter was. The crate's errors map to statuses here and
//! nowhere else: a bad query or parameter is the caller's (400), a missing table 404, anything
//! of ours or of the storage 500 (without internals beyond the message).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, ErrorKind};

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Seconds to wait before trying again (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), parameter: None, value: None, retry_after: None }
    }

    /// A bad value of a request parameter (400), named with its value.
    pub fn parameter(parameter: &str, value: &str, why: impl std::fmt::Display) -> Self {
        ApiError {
            parameter: Some(parameter.to_string()),
            value: Some(value.to_string()),
            ..Self::new(StatusCode::BAD_REQUEST, format!("{parameter}={value}: {why}"))
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match error.kind() {
            ErrorKind::Usage | ErrorKind::Config | ErrorKind::Query => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Input | ErrorKind::Check | ErrorKind::Runtime | ErrorKind::OutputClosed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        // A query over the memory limit is the query's size, not a fault of the server.
        let status = if error.message().contains("Resources exhausted") { StatusCode::BAD_REQUEST } else { status };
        ApiError::new(status, error.message().to_string())
    }
}

impl From<datafusion::error::DataFusionError> for ApiError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        Error::from(error).into()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a ApiError,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(Body { error: &self })).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

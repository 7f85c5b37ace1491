//! The portal's one error type. Server functions return it; forms read field-level messages out
//! of it; on the server it also decides the HTTP status.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("Please log in.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found.")]
    NotFound,
    #[error("Please correct the highlighted fields.")]
    Invalid(Vec<FieldMessage>),
    #[error("{0}")]
    Conflict(String),
    #[error("Too many attempts. Try again in {0} seconds.")]
    Throttled(u64),
    #[error("The database is unavailable. Try again in a moment.")]
    Unavailable,
    /// Too many heavy queries (body searches) are running at once: the caller retries (a 429,
    /// not a 5xx: the server is fine and keeps serving everything else).
    #[error("{0}")]
    Overloaded(String),
    /// Details are logged on the server under this reference; the browser only sees the id.
    #[error("Something went wrong on our side (reference {0}).")]
    Internal(String),
    /// The request never reached the function or its answer could not be read.
    #[error("Request failed: {0}")]
    Request(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldMessage {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    /// The message for one form field, if this error has one.
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            ApiError::Invalid(fields) => fields
                .iter()
                .find(|f| f.field == name)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }

    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ApiError::Unauthenticated => S::UNAUTHORIZED,
            ApiError::Forbidden(_) => S::FORBIDDEN,
            ApiError::NotFound => S::NOT_FOUND,
            ApiError::Invalid(_) => S::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => S::CONFLICT,
            ApiError::Throttled(_) | ApiError::Overloaded(_) => S::TOO_MANY_REQUESTS,
            ApiError::Unavailable => S::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => S::INTERNAL_SERVER_ERROR,
            ApiError::Request(_) => S::BAD_REQUEST,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Request(value.to_string())
    }
}

/// The message of a form field from an action's latest result.
pub fn field_error<T>(result: &Option<Result<T, ApiError>>, name: &str) -> Option<String> {
    match result {
        Some(Err(e)) => e.field(name),
        _ => None,
    }
}

/// A form-level message: any error that is not about one field.
pub fn form_error<T>(result: &Option<Result<T, ApiError>>) -> Option<String> {
    match result {
        Some(Err(ApiError::Invalid(_))) | None | Some(Ok(_)) => None,
        Some(Err(e)) => Some(e.to_string()),
    }
}

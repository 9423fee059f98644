//! Errors as RFC 9457 problem details (`application/problem+json`): a status, a short title and
//! a detail that names what was wrong with the request, never field values of a licence. Library
//! errors map here as `cmd::exit_code_for` maps them to exit codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::registry::RegistryError;
use crate::share::ShareError;

/// One problem response (RFC 9457 §3.1 members `type`, `title`, `status`, `detail`).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Seconds for `Retry-After` (RFC 9110 §10.2.3) on a 429.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status`; `title` is the status's reason phrase.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            // RFC 9457 §4.2.1: "about:blank" when the status code says it all.
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A 429 whose client may retry after `seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u64) -> Problem {
        Problem {
            retry_after: Some(seconds),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// A server-side failure: the detail stays in the server's log, the client gets none.
    pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
        eprintln!("{}", serde_json::json!({"level": "error", "error": cause.to_string()}));
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
    }

    /// As [`Problem::internal`], logging `error` with its causes.
    pub fn internal_chain(error: &dyn std::error::Error) -> Problem {
        Problem::internal(&crate::logs::error_chain(error))
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme the client must use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ShareError> for Problem {
    fn from(e: ShareError) -> Problem {
        let status = match &e {
            ShareError::Input(_) | ShareError::Credential(_) => StatusCode::BAD_REQUEST,
            ShareError::NotAuthenticated { .. } => StatusCode::UNAUTHORIZED,
            ShareError::Disabled { .. } | ShareError::NotPermitted { .. } => StatusCode::FORBIDDEN,
            ShareError::NotFound { .. } => StatusCode::NOT_FOUND,
            ShareError::Registry(r) => return Problem::internal(r),
        };
        Problem::new(status, e.to_string())
    }
}

impl From<RegistryError> for Problem {
    fn from(e: RegistryError) -> Problem {
        Problem::internal(&e)
    }
}

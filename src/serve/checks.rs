//! Check requests (核查) over the API, as `elicence check-request` and `check-answer` make them
//! ([`crate::share::check`]): `POST /api/v1/check-requests` opens one (the 事由 in
//! `X-Reason`), `GET /api/v1/check-requests[?all=true]` lists those the department made or must
//! answer, `POST /api/v1/check-requests/{id}/answer` records the issuer's answer (issuer only).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::problem::Problem;
use super::routes::{api_ask, as_department, gate, json_body, reason, with_registry};
use crate::share::check::{self, CheckError, Finding};
use crate::share::input;

/// Largest body of these routes: an identifier, or a finding and a note.
pub const CHECK_BODY_LIMIT: usize = 4 * 1024;

impl From<CheckError> for Problem {
    fn from(e: CheckError) -> Problem {
        match e {
            CheckError::Share(e) => e.into(),
            CheckError::AlreadyAnswered { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            CheckError::Registry(e) => e.into(),
        }
    }
}

/// `POST /api/v1/check-requests` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    identifier: String,
}

/// `POST /api/v1/check-requests/{id}/answer` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    result: Finding,
    note: String,
}

/// `GET /api/v1/check-requests` query: `all=true` lists answered requests too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub all: bool,
}

/// Opens a check request; `201` with its number, the issuer and the due day.
pub async fn open(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let reason = reason(&headers);
    as_department(state, &headers, |state, dept| async move {
        let request: OpenBody = json_body(raw, "{\"identifier\": ID}")?;
        let opened = with_registry(&state, move |state, r| {
            let ask = api_ask("api-check-request", &dept, input::for_audit(&request.identifier))?;
            let (department, reason) = gate(r, &ask, &reason)?;
            let catalog = (&*state.catalog.now(r)?, &state.holidays);
            Ok(check::request(r, catalog, &department, &reason, &request.identifier, &ask)?)
        })
        .await?;
        Ok((StatusCode::CREATED, Json(opened)).into_response())
    })
    .await
}

/// Lists the open (or, with `all=true`, every) check request the department made or must
/// answer, each with `overdue`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    as_department(state, &headers, |state, dept| async move {
        let Ok(Query(query)) = query else {
            return Err(Problem::bad_request("the only parameter is all=true|false"));
        };
        let listed = with_registry(&state, move |_, r| {
            let ask = api_ask("api-check-requests", &dept, "check-requests".into())?;
            // No reason is asked for a list, as `check-request --list` asks none.
            let (department, _) = gate(r, &ask, &Ok(String::new()))?;
            Ok(check::list(r, &department, query.all, &ask)?)
        })
        .await?;
        Ok(Json(listed).into_response())
    })
    .await
}

/// The issuer answers check request `{id}`; `200` with the request as answered.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    number: Result<Path<i64>, PathRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    as_department(state, &headers, |state, dept| async move {
        let Ok(Path(number)) = number else {
            return Err(Problem::bad_request("a check request's number is a positive integer"));
        };
        let request: AnswerBody =
            json_body(raw, "{\"result\": \"consistent\"|\"inconsistent\", \"note\": TEXT}")?;
        let answered = with_registry(&state, move |_, r| {
            let ask = api_ask("api-check-answer", &dept, format!("check-request:{number}"))?;
            let (department, _) = gate(r, &ask, &Ok(String::new()))?;
            let finding = (number, request.result);
            Ok(check::answer(r, &department, finding, Some(&request.note), &ask)?)
        })
        .await?;
        Ok(Json(answered).into_response())
    })
    .await
}

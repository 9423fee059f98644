//! `GET /api/v1/events[?since=CURSOR]`: the changes and revocations of the licences the token's
//! department has queried or been handed, after a cursor, as `elicence events --json` answers
//! ([`crate::share::events`]); the read is audited. Delivery is at least once: store the
//! answer's `next_cursor` and pass it as `since` next time.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::problem::Problem;
use super::routes::{api_ask, as_department, gate, with_registry};
use crate::share::events::read_events;

/// `GET /api/v1/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    since: u64,
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    as_department(state, &headers, |state, dept| async move {
        let Ok(Query(query)) = query else {
            return Err(Problem::bad_request("the only parameter is since=CURSOR (an integer)"));
        };
        let answer = with_registry(&state, move |_, r| {
            let ask = api_ask("api-events", &dept, format!("events:{}", query.since))?;
            // No reason is asked, as `elicence events` asks none.
            let (department, _) = gate(r, &ask, &Ok(String::new()))?;
            Ok(read_events(r, &department.code, query.since, ask.at)?)
        })
        .await?;
        Ok(Json(answer).into_response())
    })
    .await
}

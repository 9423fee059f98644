//! The review queue over HTTP (审核 → 签发, Art. 9), for named operators: the same operations as
//! `elicence review list|show|approve|reject`, through the same library calls, with an
//! operator token instead of `--operator` and a credential file.
//!
//! - `POST /api/v1/operator-token` `{operator, credential}`: a bearer token for a registered,
//!   enabled operator (audited `operator_token`; refusals audited as on the command line). A
//!   registry without an admin operator authenticates nobody here (403): review over HTTP needs
//!   named operators.
//! - `GET /api/v1/review[?run=N&state=pending|approved|rejected|all]`, `GET /api/v1/review/{id}`:
//!   the queue and one item with its differences (any role).
//! - `GET /api/v1/review/{id}/preview`: the item's unsigned preview PDF, from the store (any
//!   role), what `review show` points to on the registry's machine.
//! - `POST /api/v1/review/approve` `{ids: [..]}` or `{run: N}`: signs and commits
//!   (`engine::approve`: reviewer role, four eyes, stale items refused), one approval at a time.
//! - `POST /api/v1/review/reject` `{ids: [..], reason}` (reviewer role).
//!
//! Every request re-checks the token's operator with the registry (still enabled, the role the
//! command needs): `elicence operator disable` cuts a live token at once.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::problem::Problem;
use super::routes::{json_body, now, operator_bearer, with_registry};
use super::token;
use crate::engine::approve::{ApproveOptions, Selection, approve};
use crate::engine::review;
use crate::operators::{self, Claim, OperatorError};
use crate::registry::{
    AuditEntry, FileKind, RegistryError, RejectOutcome, ReviewFilter, ReviewState, Role, RunId,
};
use crate::share::input;

/// Largest body of these routes: a credential, or a list of item numbers and a reason.
pub const REVIEW_BODY_LIMIT: usize = 256 * 1024;

/// Audit action of an operator token handed out.
pub const OPERATOR_TOKEN: &str = "operator_token";

/// What an approval needs besides the request: where the registry is and what signs.
#[derive(Debug, Clone)]
pub struct Approval {
    pub data: std::path::PathBuf,
    pub registry: Option<String>,
    pub store: Option<String>,
    /// `serve --keys`; `None`: the registry's development key set, as `review approve` does.
    pub keys: Option<std::path::PathBuf>,
    pub passphrase_file: Option<std::path::PathBuf>,
    /// `serve --public-url`: the address the approved faces' QR codes open.
    pub public_url: Option<String>,
}

impl From<OperatorError> for Problem {
    fn from(e: OperatorError) -> Problem {
        match e {
            OperatorError::Registry(r) => r.into(),
            OperatorError::NotAuthenticated { .. } | OperatorError::Disabled { .. } => {
                Problem::unauthorized(e.to_string())
            }
            OperatorError::NoOperator { .. } | OperatorError::Credential(_) => {
                Problem::bad_request(e.to_string())
            }
            OperatorError::MissingRole { .. }
            | OperatorError::FourEyes { .. }
            | OperatorError::NotEnforced => Problem::new(StatusCode::FORBIDDEN, e.to_string()),
        }
    }
}

/// `POST /api/v1/operator-token` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    operator: String,
    credential: String,
}

/// Trades an operator's credential for a bearer token of the review routes. Rate-limited per
/// client address, like the department token.
pub async fn operator_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(p) = super::public::limit(&state, peer) {
        return p.into_response();
    }
    let request: TokenRequest = match json_body(raw, "{\"operator\": NAME, \"credential\": TEXT}") {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let issued = with_registry(&state, move |state, r| {
        let at = now()?;
        let name = input::text("operator", Some(&request.operator), operators::MAX_NAME)
            .map_err(|e| Problem::bad_request(e.to_string()))?;
        let operator =
            operators::authenticate(r, &name, &request.credential, "operator-token", &[], at)?;
        let (token, claims) =
            state.tokens.issue_operator(&operator.name, token::unix_now(), state.token_ttl);
        r.audit_append(&AuditEntry {
            action: OPERATOR_TOKEN.into(),
            operator: operator.name.clone(),
            at,
            subject: "token".into(),
            reason: None,
            details: json!({"operator": operator.name, "expires": claims.exp}),
        })?;
        Ok((token, claims))
    })
    .await;
    match issued {
        Ok((token, claims)) => Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims.exp.saturating_sub(claims.iat),
        }))
        .into_response(),
        Err(p) => p.into_response(),
    }
}

/// The claim of the request's operator token, vouched for (its credential was checked when the
/// token was signed).
fn vouched(state: &AppState, headers: &HeaderMap) -> Result<Claim, Box<Response>> {
    let name = operator_bearer(state, headers)?;
    Ok(Claim { name: Some(name), credential_file: None, vouched: true })
}

/// The vouched claim of the request's operator token and the review item number in its path.
fn vouched_item(
    state: &AppState,
    headers: &HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<(Claim, i64), Box<Response>> {
    let claim = vouched(state, headers)?;
    let Ok(Path(id)) = id else {
        let p = Problem::bad_request("a review item's number is an integer");
        return Err(Box::new(p.into_response()));
    };
    Ok((claim, id))
}

/// The shapes of the approve and reject bodies, for the 400 that names what was expected.
const APPROVE_SHAPE: &str = "{\"ids\": [N, …]} or {\"run\": N}";
const REJECT_SHAPE: &str = "{\"ids\": [N, …], \"reason\": TEXT}";

/// The vouched claim of the request's operator token, then its JSON body of shape `T`.
fn vouched_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    raw: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<(Claim, T), Box<Response>> {
    let claim = vouched(state, headers)?;
    let body = json_body(raw, shape).map_err(|p| Box::new(p.into_response()))?;
    Ok((claim, body))
}

/// `GET /api/v1/review` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    run: Option<i64>,
    state: Option<String>,
}

/// The review queue, as `review list --json`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let claim = match vouched(&state, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Ok(Query(query)) = query else {
        return Problem::bad_request("parameters: run=N, state=pending|approved|rejected|all")
            .into_response();
    };
    let wanted = match query.state.as_deref().unwrap_or("pending") {
        "pending" => Some(ReviewState::Pending),
        "approved" => Some(ReviewState::Approved),
        "rejected" => Some(ReviewState::Rejected),
        "all" => None,
        _ => {
            return Problem::bad_request("state is pending, approved, rejected or all")
                .into_response();
        }
    };
    let listed = with_registry(&state, move |_, r| {
        operators::authorize(r, &claim, "review list", &[], "", now()?)?;
        let filter =
            ReviewFilter { run: query.run.map(RunId), state: wanted, ..Default::default() };
        Ok(r.review_items(&filter)?)
    })
    .await;
    match listed {
        Ok(items) => Json(items).into_response(),
        Err(p) => p.into_response(),
    }
}

/// One review item with its fields and differences, as `review show --json` (the preview by
/// its SHA-256: it is in the store, not on the caller's disk).
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let (claim, id) = match vouched_item(&state, &headers, id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let shown = with_registry(&state, move |_, r| {
        operators::authorize(r, &claim, "review show", &[], "", now()?)?;
        review::detail(r, id).map_err(|e| Problem::internal_chain(e.as_ref()))
    })
    .await;
    match shown {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => Problem::not_found(format!("no review item {id}")).into_response(),
        Err(p) => p.into_response(),
    }
}

/// The unsigned preview PDF of one review item (`review show` names its file in the store).
pub async fn preview(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let (claim, id) = match vouched_item(&state, &headers, id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let read = with_registry(&state, move |_, r| {
        operators::authorize(r, &claim, "review preview", &[], "", now()?)?;
        let Some(item) = r.review_item(id)? else {
            return Err(Problem::not_found(format!("no review item {id}")));
        };
        let Some(sha256) = item.preview_sha256 else {
            return Err(Problem::not_found(format!("review item {id} has no preview")));
        };
        Ok(r.store().read(&sha256, FileKind::Pdf).map_err(RegistryError::from)?)
    })
    .await;
    match read {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            let disposition = format!("inline; filename=\"review-{id}-preview.pdf\"");
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(p) => p.into_response(),
    }
}

/// `POST /api/v1/review/approve` body: item numbers, or every pending item of a run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    ids: Vec<i64>,
    run: Option<i64>,
}

/// Signs and commits the selected items (`engine::approve`, on the blocking pool, one approval
/// at a time); `200` with the approval's report (stale items listed, left pending).
pub async fn approve_items(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let (claim, body) = match vouched_body::<ApproveBody>(&state, &headers, raw, APPROVE_SHAPE) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    let selection = match (body.ids.is_empty(), body.run) {
        (false, None) if body.ids.len() <= 100_000 => Selection::Items(body.ids),
        (true, Some(run)) => Selection::Run(RunId(run)),
        _ => {
            return Problem::bad_request("give either ids (at most 100000) or run").into_response();
        }
    };
    // One approval at a time: each signs on several cores, and two would race for the items.
    let _turn = state.approving.lock().await;
    let setup = state.approval.clone();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2));
    let result = tokio::task::spawn_blocking(move || {
        let at = crate::clock::now()?;
        approve(&ApproveOptions {
            data: setup.data,
            registry: setup.registry,
            store: setup.store,
            keys: setup.keys,
            passphrase_file: setup.passphrase_file,
            tsa: None,
            public_url: setup.public_url,
            approver: claim,
            default_operator: String::new(),
            selection,
            jobs: Some(jobs),
            at,
            interrupt: None,
        })
    })
    .await;
    match result {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => match e.downcast::<OperatorError>() {
            Ok(refused) => Problem::from(refused).into_response(),
            Err(other) => Problem::internal_chain(other.as_ref()).into_response(),
        },
        Err(join) => Problem::internal(&join).into_response(),
    }
}

/// `POST /api/v1/review/reject` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    ids: Vec<i64>,
    reason: String,
}

/// Rejects items with a reason (reviewer role); `200` with each item's outcome.
pub async fn reject(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let (claim, body) = match vouched_body::<RejectBody>(&state, &headers, raw, REJECT_SHAPE) {
        Ok(ok) => ok,
        Err(r) => return *r,
    };
    if body.ids.is_empty() || body.ids.len() > 100_000 {
        return Problem::bad_request("ids: 1 to 100000 review item numbers").into_response();
    }
    let reason = match input::text("reason", Some(&body.reason), input::MAX_TEXT) {
        Ok(r) => r,
        Err(e) => return Problem::bad_request(e.to_string()).into_response(),
    };
    let rejected = with_registry(&state, move |_, r| {
        let at = now()?;
        let actor = operators::authorize(r, &claim, "review reject", &[Role::Reviewer], "", at)?;
        Ok(r.review_reject(&body.ids, &reason, actor.name(), at)?)
    })
    .await;
    match rejected {
        Ok(outcomes) => {
            let items: Vec<_> = outcomes
                .into_iter()
                .map(|(id, outcome)| {
                    let outcome = match outcome {
                        RejectOutcome::Rejected => "rejected",
                        RejectOutcome::AlreadyDecided => "already_decided",
                        RejectOutcome::Unknown => "unknown",
                    };
                    json!({"id": id, "outcome": outcome})
                })
                .collect();
            Json(json!({ "items": items })).into_response()
        }
        Err(p) => p.into_response(),
    }
}

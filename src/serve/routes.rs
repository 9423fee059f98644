//! The router and its handlers. Each handler checks the request's shape (query, headers, body)
//! in the async task, then does all registry work in one `spawn_blocking` call
//! ([`with_registry`]) through the same `share` functions `elicence query` uses. The access
//! log and metrics middleware wraps every route: one JSON line per request with time, method,
//! route template, status, duration and department, never a path, query or field value.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::problem::Problem;
use super::token::{self, TokenError};
use crate::registry::{Department, FileKind, Registry};
use crate::share::query::{self, By};
use crate::share::{self, Ask, Refusal, ShareError, audit_refusal, input};

/// Largest token request body: a department code and a credential.
pub(super) const TOKEN_BODY_LIMIT: usize = 4 * 1024;

/// The department a response was for, for the access log (a response extension).
#[derive(Debug, Clone)]
pub(super) struct LoggedDepartment(pub(super) String);

/// The router of every route, with the access log and metrics around it.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/token", limited(post(token), TOKEN_BODY_LIMIT))
        .route("/api/v1/licences", get(licences))
        .route("/api/v1/licences/{identifier}", get(licence))
        .route("/api/v1/licences/{identifier}/files/{kind}", get(file))
        .route("/api/v1/copies", limited(post(super::copies::copy), super::copies::COPY_BODY_LIMIT))
        .route(
            "/api/v1/check-requests",
            limited(post(super::checks::open), super::checks::CHECK_BODY_LIMIT)
                .get(super::checks::list),
        )
        .route(
            "/api/v1/check-requests/{number}/answer",
            limited(post(super::checks::answer), super::checks::CHECK_BODY_LIMIT),
        )
        .route(
            "/api/v1/verify",
            limited(post(super::public::verify), super::public::VERIFY_BODY_LIMIT),
        )
        .route(
            "/api/v1/operator-token",
            limited(post(super::review::operator_token), TOKEN_BODY_LIMIT),
        )
        .route("/api/v1/review", get(super::review::list))
        .route("/api/v1/review/{id}", get(super::review::show))
        .route("/api/v1/review/{id}/preview", get(super::review::preview))
        .route(
            "/api/v1/review/approve",
            limited(post(super::review::approve_items), super::review::REVIEW_BODY_LIMIT),
        )
        .route(
            "/api/v1/review/reject",
            limited(post(super::review::reject), super::review::REVIEW_BODY_LIMIT),
        )
        .route("/api/v1/events", get(super::events::events))
        .route("/v/{identifier}", get(super::public::page))
        .route(
            "/v/{identifier}/check",
            // Bounded by its handler, so that a browser is answered with a page, not JSON.
            post(super::public::check_file)
                .layer(DefaultBodyLimit::max(super::public::CHECK_FORM_LIMIT)),
        )
        .route("/api/v1/log/checkpoint", get(super::log::latest))
        .route("/api/v1/log/checkpoints/{size}", get(super::log::by_size))
        .route("/api/v1/log/proof/{identifier}", get(super::log::proof))
        .route("/api/v1/log/consistency", get(super::log::consistency))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

/// `route` with its request bodies bounded by `limit` bytes: a larger announced
/// `Content-Length` is refused (413) before any of the body is read, and a streamed body is cut
/// off (413) as soon as it passes the limit, so nothing beyond `limit` is ever buffered.
pub(super) fn limited(
    route: MethodRouter<Arc<AppState>>,
    limit: usize,
) -> MethodRouter<Arc<AppState>> {
    route
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(limit, announced_length))
}

async fn announced_length(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        let detail = format!("request body over the limit of {limit} bytes");
        return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, detail).into_response();
    }
    next.run(request).await
}

/// Runs `f` with a registry connection on the blocking pool: the registry is synchronous and
/// must not block an async worker. Waits for a free connection first (the pool is bounded),
/// and afterwards, with the connection given back, until every audit entry `f` made is
/// committed: whatever `f` answers, answer or refusal, leaves only after its audit entries are
/// durable; if one is not, the request fails (500).
pub(super) async fn with_registry<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState, &mut Registry) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let permit = state.pool.permit().await;
    let shared = state.clone();
    let (out, receipts) =
        tokio::task::spawn_blocking(move || shared.pool.with_deferred(|r| f(&shared, r)))
            .await
            .map_err(|e| Problem::internal(&e))?
            .map_err(Problem::from)?;
    drop(permit);
    for receipt in receipts {
        receipt.recorded().await.map_err(Problem::from)?;
    }
    out
}

/// Answers 503 when a request (its body upload included) takes longer than `limit`, so a
/// client that trickles a body cannot hold a connection and a task for ever. Registry work
/// already on the blocking pool finishes on its own; its answer is dropped.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let detail = format!("the request took longer than {} s", limit.as_secs());
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail).into_response()
        }
    }
}

async fn access_log(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(&route, status, took);
    let department = response.extensions().get::<LoggedDepartment>().map(|d| d.0.as_str());
    eprintln!(
        "{}",
        json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": (took.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "department": department,
        })
    );
    response
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the registry answers a query.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match with_registry(&state, |_, r| r.departments().map(|_| ()).map_err(Problem::from)).await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(_) => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "registry not reachable").into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn openapi() -> Response {
    axum::Json(super::openapi::document()).into_response()
}

/// `POST /api/v1/token` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    department: String,
    credential: String,
}

/// A body as bytes, with the extractor's refusals as problems (413 beyond the route's limit).
pub(super) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        } else {
            Problem::bad_request("cannot read the request body")
        }
    })
}

/// Trades a department's credential for a bearer token (argon2 check on the blocking pool;
/// refusals audited by `share::authenticate_credential`). Rate-limited per client address, so
/// credentials cannot be guessed at the speed of the network.
async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    super::public::limit(&state, peer)?;
    let request: TokenRequest = json_body(raw, "{\"department\": USCC, \"credential\": TEXT}")?;
    let code = request.department.trim().to_owned();
    let logged = LoggedDepartment(input::for_audit(&code));
    let issued = with_registry(&state, move |state, r| {
        let ask = Ask {
            command: "token",
            as_code: &request.department,
            credential_file: None,
            subject: "token".into(),
            at: now()?,
        };
        let (department, _) =
            share::authenticate_credential(r, &ask, Some(&request.credential), None, false)?;
        let (token, claims) =
            state.tokens.issue(&department.code, token::unix_now(), state.token_ttl);
        r.audit_append(&crate::registry::AuditEntry {
            action: share::action::TOKEN.into(),
            operator: department.code.clone(),
            at: ask.at,
            subject: "token".into(),
            reason: None,
            details: json!({"department": department.code, "expires": claims.exp}),
        })?;
        Ok((token, claims))
    })
    .await;
    let (token, claims) = match issued {
        Ok(ok) => ok,
        Err(p) => return Ok(with_department(p.into_response(), logged)),
    };
    let answer = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims.exp.saturating_sub(claims.iat),
    });
    Ok(with_department(axum::Json(answer).into_response(), logged))
}

/// A JSON body of shape `T`, or a 400 naming the expected `shape` and what was wrong in
/// serde_json's category (never echoing the body back); 413 beyond the route's limit.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    raw: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, Problem> {
    let raw = body(raw)?;
    serde_json::from_slice(&raw)
        .map_err(|e| Problem::bad_request(format!("body must be {shape}: {}", e.classify_name())))
}

/// The token's department (after [`bearer`]), then `answer` with it: the response, or the
/// problem, carrying the department for the access log.
pub(super) async fn as_department<F, Fut>(
    state: Arc<AppState>,
    headers: &HeaderMap,
    answer: F,
) -> Response
where
    F: FnOnce(Arc<AppState>, String) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Problem>>,
{
    let dept = match bearer(&state, headers) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let logged = LoggedDepartment(dept.clone());
    let response = answer(state, dept).await.unwrap_or_else(IntoResponse::into_response);
    with_department(response, logged)
}

/// serde_json's error category, without echoing the body back.
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "missing, unknown or mistyped fields",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

pub(super) fn with_department(mut response: Response, d: LoggedDepartment) -> Response {
    response.extensions_mut().insert(d);
    response
}

/// The injected clock (`ELICENCE_NOW`) for audit times; a broken setting is a server fault.
pub(super) fn now() -> Result<chrono::DateTime<chrono::Utc>, Problem> {
    crate::clock::now().map_err(|e| Problem::internal(&e))
}

/// The facts of an API call of department `dept` about `subject`, now.
pub(super) fn api_ask<'a>(
    command: &'static str,
    dept: &'a str,
    subject: String,
) -> Result<Ask<'a>, Problem> {
    Ok(Ask { command, as_code: dept, credential_file: None, subject, at: now()? })
}

fn refuse_token(e: TokenError) -> Box<Response> {
    Box::new(Problem::unauthorized(e.to_string()).into_response())
}

/// The claims of the request's bearer token, after its signature and expiry.
fn token_claims(state: &AppState, headers: &HeaderMap) -> Result<token::Claims, Box<Response>> {
    let value =
        headers.get(header::AUTHORIZATION).ok_or_else(|| refuse_token(TokenError::Missing))?;
    let value = value.to_str().map_err(|_| refuse_token(TokenError::Malformed))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| refuse_token(TokenError::Missing))?;
    state.tokens.check(token.trim(), token::unix_now()).map_err(refuse_token)
}

/// The operator an operator token names, after its signature, expiry and rate limit; whether
/// the operator is still enabled and holds the role is checked with the registry
/// (`operators::authorize` with a vouched claim).
pub(super) fn operator_bearer(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<String, Box<Response>> {
    let claims = token_claims(state, headers)?;
    if claims.op.is_empty() {
        return Err(refuse_token(TokenError::NotOperator));
    }
    if let Err(wait) = state.rate.take(&format!("op:{}", claims.op), Instant::now()) {
        let detail = "rate limit of this operator exceeded";
        return Err(Box::new(Problem::too_many_requests(detail, wait).into_response()));
    }
    Ok(claims.op)
}

/// The department a bearer token names, after its signature, expiry and rate limit; the
/// registry check (still enabled) happens in [`gate`].
pub(super) fn bearer(state: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let claims = token_claims(state, headers)?;
    if claims.dept.is_empty() {
        return Err(refuse_token(TokenError::NotDepartment));
    }
    if let Err(wait) = state.rate.take(&claims.dept, Instant::now()) {
        let detail = format!("rate limit of department {} exceeded", claims.dept);
        let r = Problem::too_many_requests(detail, wait).into_response();
        return Err(Box::new(with_department(r, LoggedDepartment(claims.dept))));
    }
    Ok(claims.dept)
}

/// The 事由 of `X-Reason`: percent-decoded UTF-8, then the CLI's `--reason` checks (bounded,
/// no control characters: a decoded CR/LF is refused here, never written to a log).
pub(super) fn reason(headers: &HeaderMap) -> Result<String, ShareError> {
    let Some(raw) = headers.get("x-reason") else {
        return Err(input::InputError::Missing { field: "X-Reason" }.into());
    };
    let invalid =
        |reason: &str| input::InputError::Invalid { field: "X-Reason", reason: reason.to_owned() };
    let raw = raw.to_str().map_err(|_| invalid("not ASCII: percent-encode UTF-8"))?;
    if raw.len() > 4 * 3 * input::MAX_TEXT {
        return Err(invalid("too long").into());
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("not percent-encoded UTF-8"))?;
    // Checked before trimming too: a header must not carry control characters anywhere, even
    // where the CLI's trim would drop them.
    input::bounded("X-Reason", &decoded, input::MAX_TEXT)?;
    Ok(input::text("X-Reason", Some(&decoded), input::MAX_TEXT)?)
}

/// In the blocking task: the token's department must exist and be enabled (so `dept disable`
/// cuts live tokens), and the reason must pass its checks. Refusals are audited.
pub(super) fn gate(
    r: &mut Registry,
    ask: &Ask<'_>,
    reason: &Result<String, ShareError>,
) -> Result<(Department, String), Problem> {
    let department = match r.department(ask.as_code)? {
        Some((d, _)) if d.enabled => d,
        found => {
            let refusal =
                if found.is_some() { Refusal::Disabled } else { Refusal::UnknownDepartment };
            let detail = "token no longer valid: the department is disabled or unknown";
            audit_refusal(r, ask, None, refusal, detail)?;
            return Err(Problem::unauthorized(detail));
        }
    };
    match reason {
        Ok(reason) => Ok((department, reason.clone())),
        Err(e) => {
            audit_refusal(r, ask, None, Refusal::BadInput, &e.to_string())?;
            Err(Problem::bad_request(e.to_string()))
        }
    }
}

/// `GET /api/v1/licences?holder=|number=|qr=` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    holder: Option<String>,
    number: Option<String>,
    qr: Option<String>,
}

async fn licences(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    search: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(search)) = search else {
        return Problem::bad_request("give exactly one of holder, number, qr").into_response();
    };
    let (by, key) = match (search.holder, search.number, search.qr) {
        (Some(k), None, None) => (By::Holder, k),
        (None, Some(k), None) => (By::Number, k),
        (None, None, Some(k)) => (By::Qr, k),
        _ => return Problem::bad_request("give exactly one of holder, number, qr").into_response(),
    };
    answer(state, headers, by, key, false).await
}

async fn licence(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(identifier): Path<String>,
) -> Response {
    answer(state, headers, By::Identifier, identifier, true).await
}

/// A query through `share::query::answer`, as `elicence query --json` answers it. `single`:
/// the route names one licence, so an empty answer is 404.
async fn answer(
    state: Arc<AppState>,
    headers: HeaderMap,
    by: By,
    key: String,
    single: bool,
) -> Response {
    let dept = match bearer(&state, &headers) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let logged = LoggedDepartment(dept.clone());
    let reason = reason(&headers);
    let result = with_registry(&state, move |state, r| {
        let ask = query::ask("api-query", &dept, (by, &key), now()?);
        let (department, reason) = gate(r, &ask, &reason)?;
        Ok(query::answer(r, &*state.catalog.now(r)?, &department, &reason, (by, &key), &ask)?)
    })
    .await;
    let response = match result {
        Ok(a) if single && a.licences.is_empty() => {
            Problem::not_found("no licence with this identifier").into_response()
        }
        Ok(a) => axum::Json(a).into_response(),
        Err(p) => p.into_response(),
    };
    with_department(response, logged)
}

/// `GET /api/v1/licences/{identifier}/files/{pdf|xml|ofd}`: the signed e-licence as issued, within
/// rights (`share::files::signed_file`), as an attachment.
async fn file(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((identifier, kind)): Path<(String, String)>,
) -> Response {
    let dept = match bearer(&state, &headers) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let logged = LoggedDepartment(dept.clone());
    let kind = match kind.as_str() {
        "pdf" => FileKind::Pdf,
        "xml" => FileKind::Xml,
        "ofd" => FileKind::Ofd,
        _ => {
            let p = Problem::not_found("files are pdf, xml or ofd");
            return with_department(p.into_response(), logged);
        }
    };
    let reason = reason(&headers);
    let id = identifier.clone();
    let result = with_registry(&state, move |state, r| {
        let ask = api_ask("api-file", &dept, input::for_audit(&id))?;
        let (department, reason) = gate(r, &ask, &reason)?;
        let request = (id.trim(), kind);
        Ok(share::files::signed_file(
            r,
            &*state.catalog.now(r)?,
            &department,
            &reason,
            request,
            &ask,
        )?)
    })
    .await;
    let response = match result {
        Ok(bytes) => {
            let content_type = match kind {
                FileKind::Pdf => "application/pdf",
                // GB/T 33190's media type (registered with IANA as application/ofd).
                FileKind::Ofd => "application/ofd",
                _ => "application/xml",
            };
            // The identifier passed LicenceId::parse: [0-9A-Z.] only, safe in the header.
            let disposition =
                format!("attachment; filename=\"{}.{}\"", identifier.trim(), kind.ext());
            let mut r = bytes.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(p) => p.into_response(),
    };
    with_department(response, logged)
}

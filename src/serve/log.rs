//! The transparency log, public: the newest and every stored checkpoint, a licence version's
//! inclusion proofs, and consistency proofs between checkpoints — what a mirror or a citizen's
//! app needs to check the registry without a shell on its machine (the same answers as
//! `elicence log export` and `log proof --json`). Rate limited per address like the other
//! public routes; no personal data (identifiers, file hashes, times).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::problem::Problem;
use super::public::limit;
use super::routes::with_registry;

/// `GET /api/v1/log/checkpoint`: the newest checkpoint.
pub async fn latest(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    checkpoint(state, peer, None).await
}

/// `GET /api/v1/log/checkpoints/{size}`: the checkpoint of a tree of `size` leaves.
pub async fn by_size(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    size: Result<Path<u64>, axum::extract::rejection::PathRejection>,
) -> Response {
    match size {
        Ok(Path(size)) => checkpoint(state, peer, Some(size)).await,
        Err(_) => Problem::bad_request("the tree size must be a whole number").into_response(),
    }
}

async fn checkpoint(state: Arc<AppState>, peer: SocketAddr, size: Option<u64>) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    let found = with_registry(&state, move |_, r| {
        let all = r.log_checkpoints()?;
        Ok(match size {
            None => all.into_iter().last(),
            Some(size) => all.into_iter().find(|c| c.tree_size == size),
        })
    })
    .await;
    match found {
        Ok(Some(c)) => axum::Json(c).into_response(),
        Ok(None) => Problem::not_found("no such checkpoint").into_response(),
        Err(p) => p.into_response(),
    }
}

/// `GET /api/v1/log/proof/{identifier}`: the version's leaves and their inclusion proofs in
/// the newest checkpoint (leaves newer than it have none yet).
pub async fn proof(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(identifier): Path<String>,
) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    if identifier.len() > 128 {
        return Problem::bad_request("identifier too long").into_response();
    }
    let found = with_registry(&state, move |_, r| {
        let (leaves, proofs) = r.log_proofs(&identifier)?;
        Ok((identifier, leaves, proofs.unwrap_or_default()))
    })
    .await;
    match found {
        Ok((_, leaves, _)) if leaves.is_empty() => {
            Problem::not_found("no leaf of this identifier in the transparency log").into_response()
        }
        Ok((identifier, leaves, proofs)) => {
            let checkpoint = proofs.first().map(|p| p.checkpoint.clone());
            axum::Json(json!({
                "identifier": identifier,
                "leaves": leaves,
                "proofs": proofs,
                "checkpoint": checkpoint,
            }))
            .into_response()
        }
        Err(p) => p.into_response(),
    }
}

/// Query of `GET /api/v1/log/consistency`.
#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// `GET /api/v1/log/consistency?from=N[&to=M]`: the RFC 9162 consistency proof from a tree of
/// N leaves to the stored checkpoint of M leaves (default: the newest).
pub async fn consistency(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(p) = limit(&state, peer) {
        return p.into_response();
    }
    let Ok(Query(q)) = query else {
        return Problem::bad_request("give from=N (and optionally to=M), whole numbers")
            .into_response();
    };
    let found = with_registry(&state, move |_, r| {
        let all = r.log_checkpoints()?;
        let to = match q.to {
            Some(size) => all.into_iter().find(|c| c.tree_size == size),
            None => all.into_iter().last(),
        };
        let Some(to) = to else { return Ok(None) };
        let proof = r.log_consistency(q.from, to.tree_size)?;
        Ok(Some((q.from, to, proof)))
    })
    .await;
    match found {
        Ok(Some((from, to, Some(proof)))) => axum::Json(json!({
            "from": from,
            "to": to.tree_size,
            "root_hash": to.root_hash,
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            "checkpoint": to,
        }))
        .into_response(),
        Ok(Some((_, to, None))) => Problem::bad_request(format!(
            "from must be at most the checkpoint's tree size {}",
            to.tree_size
        ))
        .into_response(),
        Ok(None) => Problem::not_found("no such checkpoint").into_response(),
        Err(p) => p.into_response(),
    }
}

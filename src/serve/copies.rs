//! `POST /api/v1/copies`: a copy for use (加注件) for the token's department, as `elicence copy`
//! makes it ([`crate::share::copy`]): body `{"identifier", "expires"}`, the 事由 in `X-Reason`,
//! answered `201` with the signed PDF. The signer is loaded and the face font found at start
//! ([`Copier::load`]); the font is read on the first copy (parsed, a CJK font takes ~90 MB,
//! which a server that makes no copies should not hold). Without a key the route answers 503.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::problem::Problem;
use super::routes::{api_ask, as_department, gate, json_body, reason, with_registry};
use super::{AppState, ServeConfig, ServeError};
use crate::font::FaceFont;
use crate::share::copy::{self, CopyError, CopyRequest};
use crate::share::input;
use crate::sign::{RsaSigner, Signer, check_production_key, passphrase_from_env_or_file};

/// Largest copy request body: an identifier and a date.
pub const COPY_BODY_LIMIT: usize = 4 * 1024;

/// What signs copies for use: the key set, and the face font, read once when first needed.
pub struct Copier {
    signer: RsaSigner,
    font_file: (std::path::PathBuf, usize),
    font: std::sync::OnceLock<Result<FaceFont, String>>,
}

impl Copier {
    /// The copier of `config`: its `--keys`, else the registry's development key set when it
    /// exists (never on a `production` registry, which needs `--keys` with a key that is not a
    /// development one). `Ok(None)` when there is no key: copies are then refused with 503.
    /// Fails when a key is there but does not load (or is refused), or when no face font is
    /// found.
    pub fn load(config: &ServeConfig, production: bool) -> Result<Option<Copier>, ServeError> {
        let folder = match &config.keys {
            Some(k) => k.clone(),
            None if production => return Ok(None),
            None => {
                let dev = config.data.join("dev-keys");
                if !dev.join(crate::sign::keys::CA_CERT_FILE).exists() {
                    return Ok(None);
                }
                dev
            }
        };
        let at = crate::clock::now().map_err(|e| ServeError::Clock { detail: format!("{e:#}") })?;
        let keys_error = |source| ServeError::Keys { keys: folder.clone(), source };
        let passphrase =
            passphrase_from_env_or_file(config.passphrase_file.as_deref()).map_err(keys_error)?;
        let signer = RsaSigner::load(&folder, passphrase.as_ref(), at).map_err(keys_error)?;
        check_production_key(production, Some(&folder), Some(&signer as &dyn Signer))?;
        let font_file = FaceFont::find_default().map_err(ServeError::Font)?;
        Ok(Some(Copier { signer, font_file, font: std::sync::OnceLock::new() }))
    }

    /// The face font, read on first use (a font that stopped reading is a 500, every time).
    fn font(&self) -> Result<&FaceFont, Problem> {
        let (path, index) = &self.font_file;
        let loaded = self.font.get_or_init(|| {
            FaceFont::load(path, *index).map_err(|e| format!("the face font: {e}"))
        });
        loaded.as_ref().map_err(|e| Problem::internal(e))
    }
}

/// `POST /api/v1/copies` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyBody {
    identifier: String,
    /// Last day the copy may be used (YYYY-MM-DD).
    expires: NaiveDate,
}

impl From<CopyError> for Problem {
    fn from(e: CopyError) -> Problem {
        match e {
            CopyError::Share(e) => e.into(),
            CopyError::NotCurrent { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            CopyError::NoFace { .. } => Problem::not_found(e.to_string()),
            CopyError::Watermark { .. } | CopyError::Sign { .. } | CopyError::Registry(_) => {
                Problem::internal_chain(&e)
            }
        }
    }
}

/// Makes, records and returns a copy for use; refusals as `elicence copy` refuses (audited).
pub async fn copy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let reason = reason(&headers);
    as_department(state, &headers, |state, dept| async move {
        if state.copier.is_none() {
            let detail = "this server has no signing key for copies for use (start it with --keys)";
            return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail));
        }
        let request: CopyBody =
            json_body(raw, "{\"identifier\": ID, \"expires\": \"YYYY-MM-DD\"}")?;
        let (id, made) = with_registry(&state, move |state, r| {
            let Some(copier) = &state.copier else {
                return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "no signing key"));
            };
            let ask = api_ask("api-copy", &dept, input::for_audit(&request.identifier))?;
            let (department, reason) = gate(r, &ask, &reason)?;
            let request = CopyRequest {
                identifier: &request.identifier,
                reason: &reason,
                expires: request.expires,
            };
            let keys = (&copier.signer as &dyn Signer, copier.font()?);
            Ok(copy::make(r, &*state.catalog.now(r)?, keys, &department, &request, &ask)?)
        })
        .await?;
        // The identifier passed LicenceId::parse: [0-9A-Z.] only, safe in the header.
        let disposition = format!("attachment; filename=\"{}.copy-{id}.pdf\"", made.identifier);
        let mut r = (StatusCode::CREATED, made.pdf).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
        h.insert("x-copy-id", HeaderValue::from(id));
        if let Ok(v) = HeaderValue::from_str(&made.sha256) {
            h.insert("x-copy-sha256", v);
        }
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(r)
    })
    .await
}

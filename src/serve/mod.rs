//! `elicence serve`: the registry as an HTTP service for departments (the v1 JSON API behind
//! short-lived bearer tokens) with health, readiness and Prometheus metrics. A front end like
//! `cmd/`: it turns requests into calls of the same library functions (`share`, `registry`) and
//! maps their typed errors to RFC 9457 problems ([`problem`]); it holds no business rules and
//! nothing below it imports it.
//!
//! - [`ServeConfig`]: the checked configuration; plain HTTP only on a loopback address;
//! - [`pool`]: registry connections used from blocking threads, never on the async runtime;
//! - [`routes`]: the router, the access log and metrics middleware, the department handlers;
//! - [`public`]: the public verification API and page;
//! - [`checks`]: check requests (核查) opened, listed and answered;
//! - [`copies`]: copies for use (`POST /api/v1/copies`), signed with the key loaded at start;
//! - [`review`]: the review queue for operators (operator tokens; approve signs and commits);
//! - [`events`]: change events of the licences a department relied on;
//! - [`token`], [`rate`], [`metrics`], [`problem`], [`openapi`]: the pieces they use.
//!
//! The server runs on tokio with axum (HTTP/1.1 and HTTP/2, TLS by rustls through axum-server)
//! and stops gracefully on SIGTERM or Ctrl-C: the listener closes, in-flight requests finish
//! (up to [`SHUTDOWN_GRACE`]).

pub mod checks;
pub mod copies;
pub mod events;
pub mod log;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod problem;
pub mod public;
pub mod rate;
pub mod review;
pub mod routes;
pub mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::catalog::{Catalog, CatalogError};
use crate::registry::RegistryError;

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The server's checked configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Certificate chain and private key (PEM); `None` serves plain HTTP (loopback only).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Public base URL (for links; the QR payload later).
    pub public_url: Option<String>,
    pub data: PathBuf,
    pub registry: Option<String>,
    /// Store other than `data/store` (`file:PATH`, `s3://bucket/prefix`).
    pub store: Option<String>,
    pub catalog: PathBuf,
    pub rate: rate::RateLimit,
    /// Lifetime of department tokens, seconds (capped at [`token::MAX_TTL`]).
    pub token_ttl: u64,
    /// Trust anchor certificates (PEM) for `POST /api/v1/verify`, besides the registry's
    /// development CA (`<data>/dev-keys/ca.pem`) when present, as `elicence verify --data`.
    pub trust: Vec<PathBuf>,
    /// The key folder that signs copies for use (`--keys`); `None`: the registry's development
    /// key set (`<data>/dev-keys`) when it has one, else no copies are made (503).
    pub keys: Option<PathBuf>,
    /// File with the key's passphrase (else `ELICENCE_KEY_PASSPHRASE`).
    pub passphrase_file: Option<PathBuf>,
    /// Public holidays skipped when a check request's due day is counted (`--holidays`).
    pub holidays: Option<PathBuf>,
    /// Time a client has to send a request's headers (`--header-timeout`): a slow client
    /// (slowloris) holds a connection no longer than this.
    pub header_timeout: Duration,
    /// Time a request may take, body upload included (`--request-timeout`); then 503.
    pub request_timeout: Duration,
    /// Registry connections at most (`--db-connections`; `None`: four per core).
    pub connections: Option<usize>,
}

/// Why the server did not start or stopped.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "{addr} is not a loopback address: serving plain HTTP there would send credentials \
         and tokens in clear; give --tls-cert and --tls-key"
    )]
    PlainHttpNotLoopback { addr: SocketAddr },
    #[error("--tls-cert and --tls-key go together")]
    HalfTls,
    #[error("--token-ttl must be 1 to {max} seconds, not {found}")]
    TokenTtl { max: u64, found: u64 },
    #[error("--rate and --burst must be positive")]
    Rate,
    #[error("cannot load the catalog from {path}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: CatalogError,
    },
    #[error("cannot load the trust anchors")]
    Trust(#[source] crate::verify::TrustError),
    #[error("cannot read the trust anchor {path}")]
    TrustFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A production registry is not served with a development CA as a trust anchor.
    #[error(
        "{path}: a development certificate (made by `elicence keys init`), refused as a trust \
         anchor of a production registry"
    )]
    DevelopmentTrust { path: PathBuf },
    #[error("cannot load the signing key of copies for use from {keys}")]
    Keys {
        keys: PathBuf,
        #[source]
        source: crate::sign::KeyError,
    },
    #[error(transparent)]
    ProductionKey(#[from] crate::sign::ProductionKeyError),
    #[error(transparent)]
    Holidays(crate::workdays::HolidayError),
    #[error("cannot load the face font of copies for use")]
    Font(#[source] crate::font::FontError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot load the TLS certificate and key ({cert}, {key})")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `ELICENCE_NOW` does not parse.
    #[error("cannot read the clock: {detail}")]
    Clock { detail: String },
    #[error("cannot draw a random token key")]
    Random,
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the async runtime failed")]
    Runtime(#[source] std::io::Error),
}

impl ServeError {
    /// The process exit code: a bad flag 2, a configuration problem 3, anything else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::PlainHttpNotLoopback { .. }
            | ServeError::HalfTls
            | ServeError::TokenTtl { .. }
            | ServeError::Rate => crate::exit::USAGE,
            ServeError::Catalog { .. }
            | ServeError::Tls { .. }
            | ServeError::Trust(_)
            | ServeError::TrustFile { .. }
            | ServeError::DevelopmentTrust { .. }
            | ServeError::Keys { .. }
            | ServeError::ProductionKey(_)
            | ServeError::Font(_)
            | ServeError::Clock { .. }
            | ServeError::Holidays(_) => crate::exit::CONFIG,
            _ => crate::exit::FAILURE,
        }
    }
}

/// The catalog that decides rights: the registry's newest published version, with its number.
pub struct RightsCatalog {
    current: std::sync::RwLock<(i64, Arc<Catalog>)>,
}

impl RightsCatalog {
    fn new(number: i64, catalog: Catalog) -> RightsCatalog {
        RightsCatalog { current: std::sync::RwLock::new((number, Arc::new(catalog))) }
    }

    /// The catalog in force on `registry` now: the one held, or the newly published version
    /// when its number changed (`elicence catalog publish` while the server runs).
    pub fn now(
        &self,
        registry: &crate::registry::Registry,
    ) -> Result<Arc<Catalog>, problem::Problem> {
        let number = registry.published_catalog_number()?;
        if let Ok(held) = self.current.read()
            && held.0 == number
        {
            return Ok(held.1.clone());
        }
        let Some(version) = registry.published_catalog()? else {
            return Err(problem::Problem::internal(&"the published catalog is gone"));
        };
        let catalog = Arc::new(version.catalog()?);
        if let Ok(mut held) = self.current.write() {
            *held = (version.number, catalog.clone());
        }
        Ok(catalog)
    }
}

/// What every handler shares.
pub struct AppState {
    pub pool: pool::RegistryPool,
    /// Rights: the registry's published catalog (`--catalog` is adopted only by a registry
    /// that published none).
    pub catalog: RightsCatalog,
    pub tokens: token::TokenKey,
    pub token_ttl: u64,
    pub rate: rate::RateLimiter,
    pub metrics: metrics::Metrics,
    pub public_url: Option<String>,
    /// Trust anchors of `POST /api/v1/verify`.
    pub trust: crate::verify::TrustAnchors,
    /// The signer and face font of copies for use; `None` when no key was given or found.
    pub copier: Option<copies::Copier>,
    /// Holidays skipped, like weekends, when a check request's due day is counted.
    pub holidays: crate::workdays::Holidays,
    /// Where approvals sign and commit (`POST /api/v1/review/approve`).
    pub approval: review::Approval,
    /// Held by the approval in progress: one at a time.
    pub approving: tokio::sync::Mutex<()>,
}

impl ServeConfig {
    /// Checks what can be checked without effects.
    pub fn check(&self) -> Result<(), ServeError> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(ServeError::PlainHttpNotLoopback { addr: self.listen });
        }
        if !(1..=token::MAX_TTL).contains(&self.token_ttl) {
            return Err(ServeError::TokenTtl { max: token::MAX_TTL, found: self.token_ttl });
        }
        if !(self.rate.per_second > 0.0 && self.rate.burst >= 1.0) {
            return Err(ServeError::Rate);
        }
        Ok(())
    }
}

/// Runs the server until SIGTERM or Ctrl-C. Checks the configuration, loads the catalog and
/// opens the registry (so a broken setup fails before listening), then serves.
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    config.check()?;
    // Opens one connection now: migrations run once, and an unreachable registry stops here.
    let pool = pool::RegistryPool::open(
        config.data.clone(),
        config.registry.clone(),
        config.store.clone(),
        config.connections,
    )?;
    let production = pool.with(|r| r.is_production())??;
    let at = crate::clock::now().map_err(|e| ServeError::Clock { detail: format!("{e:#}") })?;
    let (catalog, version) =
        pool.with(|r| r.rights_catalog(&config.catalog, at))?.map_err(|e| match e {
            RegistryError::Catalog { what, source } => {
                ServeError::Catalog { path: what.into(), source }
            }
            other => other.into(),
        })?;
    let mut anchors = config.trust.clone();
    let dev_ca = config.data.join("dev-keys").join(crate::sign::keys::CA_CERT_FILE);
    if production {
        // A production registry trusts no development CA, given or found.
        for path in &anchors {
            if crate::sign::production::pem_file_is_development(path)
                .map_err(|source| ServeError::TrustFile { path: path.clone(), source })?
            {
                return Err(ServeError::DevelopmentTrust { path: path.clone() });
            }
        }
    } else if dev_ca.exists() {
        anchors.push(dev_ca);
    }
    let trust = crate::verify::TrustAnchors::from_pem_files(&anchors).map_err(ServeError::Trust)?;
    let copier = copies::Copier::load(&config, production)?;
    let holidays = match &config.holidays {
        Some(path) => crate::workdays::Holidays::load(path).map_err(ServeError::Holidays)?,
        None => crate::workdays::Holidays::default(),
    };
    let state = Arc::new(AppState {
        pool,
        catalog: RightsCatalog::new(version.number, catalog),
        tokens: token::TokenKey::random().map_err(|_| ServeError::Random)?,
        token_ttl: config.token_ttl,
        rate: rate::RateLimiter::new(config.rate),
        metrics: metrics::Metrics::default(),
        public_url: config.public_url.clone(),
        trust,
        copier,
        holidays,
        approval: review::Approval {
            data: config.data.clone(),
            registry: config.registry.clone(),
            store: config.store.clone(),
            keys: config.keys.clone(),
            passphrase_file: config.passphrase_file.clone(),
            public_url: config.public_url.clone(),
        },
        approving: tokio::sync::Mutex::new(()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(config, state))
}

async fn serve(config: ServeConfig, state: Arc<AppState>) -> Result<(), ServeError> {
    let app = routes::router(state, config.request_timeout)
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let bound = listener.local_addr().unwrap_or(config.listen);
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    // One line a supervisor (or a test) can wait for; it names the bound port when 0 was asked.
    eprintln!(
        "{}",
        serde_json::json!({"level": "info", "event": "listening", "url": format!("{scheme}://{bound}")})
    );
    match &config.tls {
        None => {
            eprintln!(
                "{}",
                serde_json::json!({"level": "warning", "event": "plain_http",
                    "detail": "serving plain HTTP on a loopback address; use TLS for anything else"})
            );
            let mut server = axum_server::from_tcp(listener)
                .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
            server.http_builder().http1().header_read_timeout(config.header_timeout);
            server
                .first_request_timeout(config.header_timeout)
                .handle(handle)
                .serve(app)
                .await
                .map_err(ServeError::Runtime)
        }
        Some((cert, key)) => {
            let tls =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(
                    |source| ServeError::Tls { cert: cert.clone(), key: key.clone(), source },
                )?;
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
            server.http_builder().http1().header_read_timeout(config.header_timeout);
            server
                .first_request_timeout(config.header_timeout)
                .handle(handle)
                .serve(app)
                .await
                .map_err(ServeError::Runtime)
        }
    }
}

/// Waits for SIGTERM or Ctrl-C, then stops accepting and lets in-flight requests finish.
async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("{}", serde_json::json!({"level": "info", "event": "shutdown"}));
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}

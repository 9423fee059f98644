//! `elicence serve --listen ADDR [--tls-cert PEM --tls-key PEM]`: the registry as an HTTP
//! service for departments (see `serve`). Flags become a `serve::ServeConfig`; the server runs
//! until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cmd::args::{CatalogArgs, KeyArgs, RegistryArgs};
use crate::serve::{ServeConfig, rate::RateLimit};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence serve --listen 127.0.0.1:8080\n  \
    elicence serve --listen 0.0.0.0:8443 --tls-cert server.pem --tls-key server.key\n\n\
    Plain HTTP is served only on a loopback address. Exit codes: 0 stopped by SIGTERM or \
    Ctrl-C, 1 failure, 2 usage, 3 bad catalog or TLS files.")]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, named in the `listening` log line).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Certificate chain (PEM) for TLS; required unless --listen is a loopback address.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Public base URL of this service: the address the faces' QR codes open (give `run` the
    /// same, or set ELICENCE_PUBLIC_URL for both).
    #[arg(long, env = "ELICENCE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Trust anchor certificates (PEM) for POST /api/v1/verify; may be repeated. The registry's
    /// development CA (<data>/dev-keys/ca.pem) is trusted when present.
    #[arg(long, value_name = "PEM")]
    pub trust: Vec<PathBuf>,
    /// Requests per second allowed per department (and per address on public routes).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Requests a department may send at once after a quiet period.
    #[arg(long, default_value_t = 100.0)]
    pub burst: f64,
    /// Lifetime of department tokens in seconds (at most 3600).
    #[arg(long, default_value_t = 900)]
    pub token_ttl: u64,
    /// Public holidays (one YYYY-MM-DD a line) skipped, like weekends, when a check request's
    /// due day is counted.
    #[arg(long, env = "ELICENCE_HOLIDAYS", value_name = "FILE")]
    pub holidays: Option<PathBuf>,
    /// Seconds a client has to send a request's headers (HTTP/1.1; also the first request on
    /// a new connection); a slower one is disconnected.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout: u64,
    /// Seconds a request may take from its headers to the end of the answer, body upload
    /// included; a longer one is answered 503.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Registry connections the server opens at most (requests beyond wait for one); default
    /// four per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub db_connections: Option<u16>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    #[cfg(unix)]
    restart_with_server_allocator_settings();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    crate::serve::run(ServeConfig {
        listen: args.listen,
        tls,
        public_url: args.public_url.as_deref().map(crate::render::check_public_url).transpose()?,
        data: args.registry.data.clone(),
        registry: args.registry.registry.clone(),
        store: args.registry.store.store.clone(),
        catalog: args.catalog.catalog.clone(),
        rate: RateLimit { per_second: args.rate, burst: args.burst },
        token_ttl: args.token_ttl,
        trust: args.trust.clone(),
        keys: args.keys.keys.clone(),
        passphrase_file: args.keys.passphrase_file.clone(),
        holidays: args.holidays.clone(),
        header_timeout: Duration::from_secs(args.header_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        connections: args.db_connections.map(usize::from),
    })?;
    Ok(crate::exit::OK)
}

/// The allocator settings of a long-running server: mimalloc gives freed memory back at once
/// and commits arena memory only when used. Under `scripts/bench-serve.sh` they cut the peak
/// from 277 MB to 118 MB for about 5 % more CPU per request (BENCHMARKS.md, session 10).
const SERVER_ALLOCATOR_SETTINGS: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];

/// mimalloc reads its options from the environment when the process starts, and setting them
/// later needs unsafe code (forbidden here): so `serve` replaces itself once, before it does
/// anything else, with the same program, arguments and process id and these settings added
/// (`exec`). Settings the operator gave (either variable present) are left as they are. If the
/// restart fails the server runs with the defaults and says so.
#[cfg(unix)]
fn restart_with_server_allocator_settings() {
    use std::os::unix::process::CommandExt as _;
    if SERVER_ALLOCATOR_SETTINGS.iter().any(|(name, _)| std::env::var_os(name).is_some()) {
        return;
    }
    let Ok(program) = std::env::current_exe() else { return };
    let error = std::process::Command::new(&program)
        .args(std::env::args_os().skip(1))
        .envs(SERVER_ALLOCATOR_SETTINGS)
        .exec();
    tracing::warn!(
        "could not restart {} with the server's allocator settings ({error}); serving with the \
         defaults (set MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0 to avoid the restart)",
        program.display()
    );
}

//! Command-line definitions (clap). Each subcommand's arguments live beside its code in
//! `cmd/<name>.rs`; this file only assembles them.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::logs::LogFormat;

/// Turns legacy paper-licence exports (CSV, Excel) into signed, registered e-licences.
#[derive(Debug, Parser)]
#[command(
    name = "elicence",
    version,
    about,
    after_help = "Examples:\n  \
        elicence validate pipelines/food-business-permit.toml --input fixtures/food-business-permit/export-utf8.csv --out out/\n  \
        elicence catalog check\n  \
        elicence catalog show food-business-permit\n\n\
        Exit codes: 0 done (rejects are data), 1 failure, 2 usage, 3 bad pipeline or catalog, \
        4 unreadable input, 5 --max-reject-rate exceeded, 6 not permitted (operator or department refused), 130 interrupted (SIGINT), \
        143 stopped (SIGTERM).\n\n\
        Log lines go to stderr: --log-format text|json, filtered by ELICENCE_LOG (e.g. warn)."
)]
pub struct Cli {
    /// Log lines on stderr as text or as one JSON object per line (every line of a run
    /// carries its run id). Filter with ELICENCE_LOG (default info).
    #[arg(long, global = true, value_enum, env = "ELICENCE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the registry ahead of the first run; --production marks it production (no
    /// development keys from then on).
    Init(cmd::init::InitArgs),
    /// The main job: read, validate, render, sign and load exports into the registry.
    Run(cmd::run::RunArgs),
    /// Review staged versions before they are issued (采集 → 审核 → 签发): list, show, approve,
    /// reject.
    #[command(subcommand)]
    Review(cmd::review::ReviewCommand),
    /// Operators (named staff) with roles: add, list, disable, grant.
    #[command(subcommand)]
    Operator(cmd::operator::OperatorCommand),
    /// Revoke a licence in the registry (status revoked with date, reason, operator).
    Revoke(cmd::revoke::RevokeArgs),
    /// Check the content-addressed store against the registry.
    #[command(subcommand)]
    Store(cmd::store::StoreCommand),
    /// Verify the hash-chained audit trail.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Write a consistent backup of registry and store with a manifest of hashes.
    Backup(cmd::backup::BackupArgs),
    /// The field key that encrypts personal data at rest: rotate.
    #[command(subcommand)]
    Secrets(cmd::secrets::SecretsCommand),
    /// Check a backup's hashes and restore it into a new data folder.
    Restore(cmd::restore::RestoreArgs),
    /// Copy a registry into an empty one on another backend (SQLite → PostgreSQL), verified.
    Migrate(cmd::migrate::MigrateArgs),
    /// Read and validate an export without signing or loading anything.
    Validate(cmd::validate::ValidateArgs),
    /// Validate, then render and sign a PDF and an XML e-licence per valid row (a preview).
    Render(cmd::render::RenderArgs),
    /// Verify signed PDF and XML e-licences.
    Verify(cmd::verify::VerifyArgs),
    /// Write a synthetic export with defects and the expected outcome of every row.
    Gen(cmd::r#gen::GenArgs),
    /// Development signing keys.
    Keys(cmd::keys::KeysArgs),
    /// Electronic seals (GB/T 38540) of issuing authorities: make, list, show.
    #[command(subcommand)]
    Seal(cmd::seal::SealCommand),
    /// The transparency log of issued, changed and revoked versions: checkpoint, proof,
    /// verify, export.
    #[command(subcommand)]
    Log(cmd::log::LogCommand),
    /// Document timestamps of PAdES B-LTA files: extend (archive renewal).
    #[command(subcommand)]
    Timestamp(cmd::timestamp::TimestampCommand),
    /// Departments that consume the registry: add, list, disable, grant.
    #[command(subcommand)]
    Dept(cmd::dept::DeptCommand),
    /// Query licences within the department's sharing rights (事由 required).
    Query(cmd::query::QueryArgs),
    /// Write a watermarked, signed copy for use (加注件) of a licence.
    Copy(cmd::copy::CopyArgs),
    /// Ask the issuer to check a licence (核查), or list open check requests.
    CheckRequest(cmd::check_request::CheckRequestArgs),
    /// Changes and revocations of the licences a department queried or was handed (cursor).
    Events(cmd::events::EventsArgs),
    /// Answer a check request (issuer only).
    CheckAnswer(cmd::check_answer::CheckAnswerArgs),
    /// Figures for oversight: per issuer and per consuming department.
    Stats(cmd::stats::StatsArgs),
    /// Serve the registry over HTTPS: the department API (v1), health and metrics.
    Serve(cmd::serve::ServeArgs),
    /// List, show or check the catalog of licence types.
    #[command(subcommand)]
    Catalog(cmd::catalog::CatalogCommand),
    /// Write the man pages and shell completions (for packaging; see scripts/build-deb).
    #[command(hide = true)]
    PackageAssets {
        /// Folder for man/ (elicence.1, elicence-run.1, …) and completions/ (bash, zsh, fish).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Writes the man pages (clap_mangen: one per command) into `out/man` and the bash, zsh and
/// fish completions (clap_complete) into `out/completions`, from the definitions above. Lives
/// here rather than in `cmd/` because it reads the whole command line (`cmd` must not import
/// `cli`). Returns the files written.
pub fn package_assets(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    let mut written: Vec<PathBuf> =
        std::fs::read_dir(&man)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    written.sort();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        written.push(clap_complete::generate_to(shell, &mut cmd, "elicence", &completions)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag name, short name and flattened argument block is unambiguous.
    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

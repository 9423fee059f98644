//! The `elicence` binary: parse flags, run the subcommand, map the result to an exit code.
#![forbid(unsafe_code)]

use clap::Parser;
use elicence::cli::{Cli, Command};
use elicence::cmd;
use elicence::logs::LogFormat;

// Rows are allocated on the reader thread and freed on the workers and the sink: glibc malloc
// spent over a third of validate time in malloc/free/consolidate across threads (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // With the kernel's transparent huge pages on ("always", Debian's default), mimalloc's
    // arenas are faulted in and zeroed 2 MiB at a time: a run's peak RSS was 35–45 MB higher
    // and no faster (BENCHMARKS.md, session 14). Off for this process before it allocates
    // much; where the kernel refuses, nothing changes but the memory figure.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    if let Err(e) = elicence::logs::init(cli.log_format) {
        eprintln!("error: {e}");
        std::process::exit(elicence::exit::USAGE);
    }
    let result = match &cli.command {
        Command::Init(args) => cmd::init::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Review(c) => cmd::review::run(c),
        Command::Operator(c) => cmd::operator::run(c),
        Command::Revoke(args) => cmd::revoke::run(args),
        Command::Store(c) => cmd::store::run(c),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Backup(args) => cmd::backup::run(args),
        Command::Secrets(c) => cmd::secrets::run(c),
        Command::Restore(args) => cmd::restore::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Render(args) => cmd::render::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Keys(args) => cmd::keys::run(args),
        Command::Seal(c) => cmd::seal::run(c),
        Command::Log(c) => cmd::log::run(c),
        Command::Timestamp(c) => cmd::timestamp::run(c),
        Command::Gen(args) => cmd::r#gen::run(args),
        Command::Catalog(c) => cmd::catalog::run(c),
        Command::Dept(c) => cmd::dept::run(c),
        Command::Query(args) => cmd::query::run(args),
        Command::Copy(args) => cmd::copy::run(args),
        Command::CheckRequest(args) => cmd::check_request::run(args),
        Command::CheckAnswer(args) => cmd::check_answer::run(args),
        Command::Events(args) => cmd::events::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::PackageAssets { out } => elicence::cli::package_assets(out)
            .map(|files| {
                for f in files {
                    println!("{}", f.display());
                }
                elicence::exit::OK
            })
            .map_err(anyhow::Error::from),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                std::process::exit(0);
            }
            let code = cmd::exit_code_for(&err);
            let causes = cmd::distinct_causes(&err);
            match cli.log_format {
                LogFormat::Text => {
                    eprintln!("error: {err}");
                    for cause in &causes {
                        eprintln!("  caused by: {cause}");
                    }
                }
                LogFormat::Json => {
                    tracing::error!(exit_code = code, causes = ?causes, "{err}");
                }
            }
            code
        }
    };
    std::process::exit(code);
}

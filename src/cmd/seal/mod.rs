//! `elicence seal …`: electronic seals (电子印章, GB/T 38540) in a key directory, one file per
//! subcommand: [`make`] (made and signed by the seal maker), [`list`], [`show`].

pub mod list;
pub mod make;
pub mod show;

use clap::Subcommand;

/// Subcommands of `elicence seal`.
#[derive(Debug, Subcommand)]
pub enum SealCommand {
    /// Make an issuer's seal, signed by the key directory's seal maker (seals/<CODE>.esl).
    #[command(after_help = "Example:\n  elicence seal make --keys keys --issuer \
        11220104MB1875524M --name 长春市朝阳区市场监督管理局 --image fixtures/seals/seal.png \
        --valid-to 2036-12-31")]
    Make(make::MakeArgs),
    /// List the seals of a key directory.
    List(list::ListArgs),
    /// Show a seal file: header, esID, name, validity, picture, certList, maker.
    Show(show::ShowArgs),
}

/// Runs `elicence seal …`; returns the process exit code.
pub fn run(cmd: &SealCommand) -> anyhow::Result<i32> {
    match cmd {
        SealCommand::Make(args) => make::run(args),
        SealCommand::List(args) => list::run(args),
        SealCommand::Show(args) => show::run(args),
    }
}

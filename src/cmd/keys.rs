//! `elicence keys init DIR`: writes a development key set (CA + signer) for tests and
//! trials. The keys are marked and announced as development-only.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::sign::keys::{DevKeyOptions, init_dev_keys};
use crate::sign::{PASSPHRASE_ENV, passphrase_from_env_or_file};

/// Arguments of `elicence keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// Subcommands of `elicence keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Write a DEVELOPMENT-ONLY CA and signer key set into DIR.
    Init {
        /// Directory for ca.pem, ca.key, signer.pem, signer.key (created if missing).
        dir: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
        /// Encrypt the private keys with the passphrase in this file (first line).
        /// Without it, ELICENCE_KEY_PASSPHRASE is used if set.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// Runs `elicence keys …`; returns the process exit code.
pub fn run(args: &KeysArgs) -> anyhow::Result<i32> {
    match &args.command {
        KeysCommand::Init { dir, force, passphrase_file } => {
            let passphrase = passphrase_from_env_or_file(passphrase_file.as_deref())
                .context("reading the key passphrase")?;
            let encrypted = passphrase.is_some();
            let opts = DevKeyOptions { force: *force, passphrase, ..DevKeyOptions::default() };
            let paths = init_dev_keys(dir, crate::clock::now()?, &opts)
                .with_context(|| format!("writing development keys to {}", dir.display()))?;
            println!(
                "DEVELOPMENT ONLY: these keys are self-made and must never sign real licences."
            );
            println!("  trust anchor (CA certificate): {}", paths.ca_cert.display());
            println!("  CA private key:                {}", paths.ca_key.display());
            println!("  signer chain (signer, CA):     {}", paths.signer_chain.display());
            println!("  signer private key:            {}", paths.signer_key.display());
            println!("  SM2 trust anchor (OFD seals):  {}", paths.sm2.ca_cert.display());
            println!("  seal maker chain (maker, CA):  {}", paths.sm2.seal_maker_chain.display());
            println!("  SM2 signer chain (signer, CA): {}", paths.sm2.signer_chain.display());
            if encrypted {
                println!("Private keys are encrypted; set {PASSPHRASE_ENV} to use them.");
            } else {
                println!("Private keys are NOT encrypted (mode 0600).");
            }
            Ok(0)
        }
    }
}

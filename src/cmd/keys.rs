//! `elicence keys init DIR [--pipeline P]…`: writes a development key set (CAs, the default
//! signer, and with `--pipeline` one identity and seal per known issuer) for tests and trials;
//! `elicence keys crl`: the CA's revocation list. The keys are marked and announced as
//! development-only.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::keyset::{IssuerRequest, development_seal_picture, ensure_development_identities};
use crate::render::layout::Layout;
use crate::sign::crl::write_crl;
use crate::sign::key_files::KEY_FILE;
use crate::sign::keys::{CA_CERT_FILE, DevKeyOptions, init_dev_issuer, init_dev_keys, issuer_dir};
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
        /// CRL distribution point written into the signer certificate (RFC 5280
        /// §4.2.1.13): where verifiers fetch the CRL that `elicence keys crl` writes.
        #[arg(long, value_name = "URL")]
        crl_url: Option<String>,
        /// Also give every known issuer of this pipeline its own identity (RSA signer, SM2
        /// signer, in DIR/issuers/<USCC>/) and seal (DIR/seals/<USCC>.esl, the layout's seal
        /// picture, 10 years); may be repeated. Into an existing key set, adds only what is
        /// missing (with --force, remakes the issuers' identities and seals).
        #[arg(long, value_name = "PIPELINE")]
        pipeline: Vec<PathBuf>,
    },
    /// Write the CRL (DER) of DIR's CA, listing every certificate revoked so far and those of
    /// --revoke (kept in DIR/revoked.txt; the CRL number in DIR/crlnumber).
    #[command(
        after_help = "Example:\n  elicence keys crl keys --revoke keys/signer.pem --out keys/ca.crl"
    )]
    Crl {
        /// The key set whose ca.key and ca.pem sign the CRL.
        dir: PathBuf,
        /// Certificate (PEM) to revoke now; may be repeated.
        #[arg(long, value_name = "CERT.pem")]
        revoke: Vec<PathBuf>,
        /// Where to write the CRL (DER).
        #[arg(long, value_name = "FILE.crl")]
        out: PathBuf,
        /// Days until the CRL's nextUpdate (a verifier treats it as stale after).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=3650))]
        next_update_days: u16,
        /// File with the CA key's passphrase (else ELICENCE_KEY_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// Gives every known issuer of `pipelines` an identity and a seal in `dir` (see
/// [`ensure_development_identities`]); with `opts.force`, new ones. Returns what was made.
fn init_issuers(
    dir: &Path,
    pipelines: &[PathBuf],
    opts: &DevKeyOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut made = Vec::new();
    for path in pipelines {
        let plan = crate::pipeline::load(path)?;
        let layout = Layout::load(&plan.layout_path)?;
        let picture = development_seal_picture(layout.seal.as_ref().map(|s| s.path.as_path()))?;
        let issuers = IssuerRequest::of_plan(&plan);
        // A new identity is made here with every option (the CRL distribution point
        // included); `ensure_development_identities` then only adds the seals.
        for issuer in &issuers {
            let missing = !issuer_dir(dir, &issuer.code).join(KEY_FILE).exists();
            if opts.force || missing {
                init_dev_issuer(dir, &issuer.code, &issuer.name, now, opts).with_context(|| {
                    format!("writing the identity of {} into {}", issuer.code, dir.display())
                })?;
                made.push(format!(
                    "made a DEVELOPMENT signing identity for {} ({}) in {}",
                    issuer.name,
                    issuer.code,
                    issuer_dir(dir, &issuer.code).display()
                ));
            }
        }
        let passphrase = opts.passphrase.as_ref();
        made.extend(ensure_development_identities(dir, passphrase, &issuers, true, &picture, now)?);
    }
    Ok(made)
}

/// Runs `elicence keys …`; returns the process exit code.
pub fn run(args: &KeysArgs) -> anyhow::Result<i32> {
    match &args.command {
        KeysCommand::Crl { dir, revoke, out, next_update_days, passphrase_file } => {
            let passphrase = passphrase_from_env_or_file(passphrase_file.as_deref())
                .context("reading the key passphrase")?;
            let made = write_crl(
                dir,
                passphrase.as_ref(),
                revoke,
                crate::clock::now()?,
                chrono::Duration::days(i64::from(*next_update_days)),
            )
            .with_context(|| format!("writing the CRL of the CA in {}", dir.display()))?;
            std::fs::write(out, &made.der)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "CRL number {} of {}: {} revoked certificate(s), next update {}; written to {}",
                made.number,
                dir.display(),
                made.revoked.len(),
                made.next_update.to_rfc3339(),
                out.display()
            );
            Ok(0)
        }
        KeysCommand::Init { dir, force, passphrase_file, crl_url, pipeline } => {
            let passphrase = passphrase_from_env_or_file(passphrase_file.as_deref())
                .context("reading the key passphrase")?;
            let encrypted = passphrase.is_some();
            let opts = DevKeyOptions {
                force: *force,
                passphrase,
                crl_url: crl_url.clone(),
                ..DevKeyOptions::default()
            };
            let now = crate::clock::now()?;
            // With --pipeline, an existing key set keeps its roots and gains issuers.
            let base =
                if pipeline.is_empty() || *force || !dir.join(CA_CERT_FILE).exists() {
                    Some(init_dev_keys(dir, now, &opts).with_context(|| {
                        format!("writing development keys to {}", dir.display())
                    })?)
                } else {
                    None
                };
            let made = init_issuers(dir, pipeline, &opts, now)?;
            println!(
                "DEVELOPMENT ONLY: these keys are self-made and must never sign real licences."
            );
            if let Some(paths) = base {
                println!("  trust anchor (CA certificate): {}", paths.ca_cert.display());
                println!("  CA private key:                {}", paths.ca_key.display());
                println!("  default signer (signer, CA):   {}", paths.signer_chain.display());
                println!("  default signer private key:    {}", paths.signer_key.display());
                println!("  SM2 trust anchor (OFD seals):  {}", paths.sm2.ca_cert.display());
                println!(
                    "  seal maker (maker, CA):        {}",
                    paths.sm2.seal_maker_chain.display()
                );
                println!("  default SM2 signer:            {}", paths.sm2.signer_chain.display());
            }
            for line in &made {
                println!("  {line}");
            }
            if encrypted {
                println!("Private keys are encrypted; set {PASSPHRASE_ENV} to use them.");
            } else {
                println!("Private keys are NOT encrypted (mode 0600).");
            }
            Ok(0)
        }
    }
}

//! `elicence seal make`: an issuer's seal, signed by the seal maker of a key directory, naming
//! the issuer's SM2 signer certificate (or the directory's default SM2 signer) in its certList.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDate, Utc};

use crate::codes::check_uscc;
use crate::exit;
use crate::seal::{Seal, SealSpec, seal_path};
use crate::sign::key_files::SM2_CHAIN_FILE;
use crate::sign::keys::{SEAL_MAKER_CHAIN_FILE, SEAL_MAKER_KEY_FILE, issuer_dir};
use crate::sign::{Signer, Sm2Signer, passphrase_from_env_or_file};

/// Arguments of `elicence seal make`.
#[derive(Debug, clap::Args)]
pub struct MakeArgs {
    /// Key directory holding seal-maker.key and seal-maker.pem; the seal goes to
    /// DIR/seals/<CODE>.esl.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// The issuing authority's unified social credit code (统一社会信用代码).
    #[arg(long, value_name = "CODE")]
    pub issuer: String,
    /// The seal's name: the authority's name.
    #[arg(long)]
    pub name: String,
    /// The seal picture (PNG).
    #[arg(long, value_name = "PNG")]
    pub image: PathBuf,
    /// First day of validity (YYYY-MM-DD or RFC 3339); default now.
    #[arg(long, value_name = "D")]
    pub valid_from: Option<String>,
    /// Last moment of validity (YYYY-MM-DD = the end of that day, or RFC 3339).
    #[arg(long, value_name = "D")]
    pub valid_to: String,
    /// Size of the picture on the page, mm (square).
    #[arg(long, default_value_t = 40)]
    pub size_mm: u32,
    /// Signer certificate (PEM, first certificate) the seal allows; may be repeated.
    /// Default: DIR/issuers/<CODE>/sm2-signer.pem, else DIR/sm2-signer.pem.
    #[arg(long, value_name = "PEM")]
    pub signer_cert: Vec<PathBuf>,
    /// Replace an existing seal file.
    #[arg(long)]
    pub force: bool,
    /// Passphrase file of the seal maker's key (else ELICENCE_KEY_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Runs `elicence seal make`.
pub fn run(args: &MakeArgs) -> anyhow::Result<i32> {
    let now = crate::clock::now()?;
    if let Err(e) = check_uscc(&args.issuer) {
        eprintln!("seal make: --issuer {}: {e}", args.issuer);
        return Ok(exit::USAGE);
    }
    let valid_from = match &args.valid_from {
        Some(text) => parse_day(text, false).context("--valid-from")?,
        None => now,
    };
    let valid_to = parse_day(&args.valid_to, true).context("--valid-to")?;
    let out = seal_path(&args.keys, &args.issuer);
    if out.exists() && !args.force {
        bail!("{}: already exists (use --force to replace it)", out.display());
    }
    let passphrase = passphrase_from_env_or_file(args.passphrase_file.as_deref())?;
    let maker = Sm2Signer::load_files(
        &args.keys.join(SEAL_MAKER_KEY_FILE),
        &args.keys.join(SEAL_MAKER_CHAIN_FILE),
        passphrase.as_ref(),
        now,
    )
    .context("loading the seal maker")?;
    let cert_files = if args.signer_cert.is_empty() {
        vec![default_signer_cert(&args.keys, &args.issuer)]
    } else {
        args.signer_cert.clone()
    };
    let signer_certs =
        cert_files.iter().map(|p| first_cert_der(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let picture_png =
        std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let spec = SealSpec {
        es_id: format!("{}{}", args.issuer, now.format("%Y%m%d%H%M%S")),
        name: args.name.clone(),
        signer_certs,
        created: now,
        valid_from,
        valid_to,
        picture_png,
        picture_mm: (args.size_mm, args.size_mm),
    };
    let seal = Seal::make(&maker, &spec)?;
    seal.write(&out)?;
    println!(
        "{}: seal {:?} ({}), valid {} .. {}, made by {}",
        out.display(),
        seal.name(),
        seal.es_id(),
        seal.valid_from().to_rfc3339(),
        seal.valid_to().to_rfc3339(),
        maker.subject_cn()
    );
    Ok(exit::OK)
}

/// The SM2 signer certificate a new seal of `issuer` names by default.
pub fn default_signer_cert(keys: &Path, issuer: &str) -> PathBuf {
    let own = issuer_dir(keys, issuer).join(SM2_CHAIN_FILE);
    if own.exists() { own } else { keys.join(SM2_CHAIN_FILE) }
}

fn first_cert_der(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = x509_cert::Certificate::load_pem_chain(&text)
        .with_context(|| format!("{}: not a PEM certificate", path.display()))?;
    let first = certs.first().with_context(|| format!("{}: no certificate", path.display()))?;
    Ok(der::Encode::to_der(first)?)
}

/// `YYYY-MM-DD` (the start of the day, or its last second when `end_of_day`) or RFC 3339.
fn parse_day(text: &str, end_of_day: bool) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if end_of_day { day.and_hms_opt(23, 59, 59) } else { day.and_hms_opt(0, 0, 0) };
        return time.map(|t| t.and_utc()).context("not a time");
    }
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text:?} is neither YYYY-MM-DD nor RFC 3339"))?
        .with_timezone(&Utc))
}

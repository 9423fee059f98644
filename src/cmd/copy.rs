//! `elicence copy ID --as DEPT --reason TEXT --expires DATE --out FILE`: a copy for use (加注件)
//! of a licence for one department and one purpose, made by [`crate::share::copy`] (who may
//! have one, of which versions, the watermark, the signature, the record) and written to
//! `--out`. The signer and the face font are loaded before the department is authenticated.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::Args;

use crate::clock::now;
use crate::cmd::args::{CatalogArgs, KeyArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::font::FaceFont;
use crate::share::copy::{self, CopyRequest};
use crate::share::{Ask, authenticate};
use crate::sign::{Signer, check_production_key};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    elicence copy 1.2.156.3005.2.… --as 11220100MB18300819 --reason 医保定点资格审核 \
--expires 2026-12-31 --out copy.pdf --keys /etc/elicence/keys\n\n\
    The copy is signed with --keys (default <data>/dev-keys). Check it with \
    `elicence verify copy.pdf --data DIR`: status copy, or expired after --expires.")]
pub struct CopyArgs {
    /// Identifier of the current version to copy.
    pub identifier: String,
    #[command(flatten)]
    pub request: RequestArgs,
    /// Last day the copy may be used (YYYY-MM-DD), today or later.
    #[arg(long)]
    pub expires: NaiveDate,
    /// Where to write the copy (PDF).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: &CopyArgs) -> anyhow::Result<i32> {
    let at = now()?;
    let identifier = args.identifier.trim();
    let mut registry = args.registry.open()?;
    let cat = args.catalog.rights(&mut registry, at)?;
    // Loaded before anything is asked or audited: a production registry signs copies with the
    // issuing authority's key only.
    let keys = args.keys.keys.as_deref();
    let production = registry.is_production()?;
    if production && keys.is_none() {
        check_production_key(true, None, None)?;
    }
    let signer = args.keys.load_signer(&args.registry.data, at)?;
    check_production_key(production, keys, Some(&signer as &dyn Signer))?;
    let font = FaceFont::load_default()?;
    let ask = Ask {
        command: "copy",
        as_code: &args.request.department.as_code,
        credential_file: args.request.department.credential_file.as_deref(),
        subject: identifier.to_string(),
        at,
    };
    let (department, reason) =
        authenticate(&mut registry, &ask, args.request.reason.as_deref(), true)?;
    let reason = reason.unwrap_or_default();
    let request = CopyRequest { identifier, reason: &reason, expires: args.expires };
    let copy = copy::prepare(&mut registry, &cat, (&signer, &font), &department, &request, &ask)?;

    // Written beside the target, recorded, then moved into place: a copy on disk is always
    // a recorded one.
    let tmp = temp_beside(&args.out);
    std::fs::write(&tmp, &copy.pdf).with_context(|| format!("cannot write {}", tmp.display()))?;
    let id = match copy::record(&mut registry, &copy) {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot move the copy to {}", args.out.display()))?;
    println!(
        "copy #{id} of {identifier} for {} until {} written to {} (sha256 {})",
        department.code,
        args.expires,
        args.out.display(),
        copy.sha256
    );
    Ok(exit::OK)
}

fn temp_beside(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

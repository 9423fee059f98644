//! `elicence copy ID --as DEPT --reason TEXT --expires DATE --out FILE`: a copy for use (加注件)
//! of a licence for one department and one purpose. The registry's stored PDF face gets a
//! visible watermark ("仅供<事由>使用 · <部门> · 有效期至 <日期>", see
//! [`crate::share::watermark`]), its original signature is removed and the copy is signed by the
//! registry's key, recorded (by its SHA-256) in `copies` and audited. `elicence verify --data`
//! recognises the file as a copy for use, and as expired after its date. The original file is
//! never handed out.
//!
//! The face shows every field in clear, so a department needs a grant with unmasking for the
//! type when the type has personal or trade-secret fields; only the current version is copied.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::Args;
use serde_json::json;

use crate::catalog;
use crate::clock::now;
use crate::cmd::args::{CatalogArgs, KeyArgs, RegistryArgs, RequestArgs};
use crate::exit;
use crate::font::FaceFont;
use crate::identify::LicenceId;
use crate::registry::{AuditEntry, FileKind, RegistryStatus, sha256_hex};
use crate::share::{
    self, Ask, Refusal, ShareError, action, audit_refusal, authenticate, input, watermark,
};
use crate::sign::pades::{PdfSignOptions, sign_pdf};
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
    let cat = catalog::load_dir(&args.catalog.catalog).with_context(|| {
        format!("cannot load the catalog from {}", args.catalog.catalog.display())
    })?;
    let identifier = args.identifier.trim();
    let mut registry = args.registry.open()?;
    if registry.is_production()? {
        // Checked before anything is asked or audited: a production registry signs copies
        // with the issuing authority's key only.
        let keys = args.keys.keys.as_deref();
        let signer = keys.map(|_| args.keys.load_signer(&args.registry.data, at)).transpose()?;
        check_production_key(true, keys, signer.as_ref().map(|s| s as &dyn Signer))?;
    }
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
    let checked = input::bounded("identifier", identifier, input::MAX_KEY)
        .and_then(|()| {
            LicenceId::parse(identifier).map(|_| ()).map_err(|e| input::InputError::Invalid {
                field: "identifier",
                reason: format!("not a GB/T 36904 identifier: {e}"),
            })
        })
        .and_then(|()| {
            if args.expires < at.date_naive() {
                Err(input::InputError::Invalid {
                    field: "--expires",
                    reason: format!("{} is in the past", args.expires),
                })
            } else {
                Ok(())
            }
        });
    if let Err(e) = checked {
        let e = ShareError::from(e);
        audit_refusal(&mut registry, &ask, Some(&reason), Refusal::BadInput, &e.to_string())?;
        return Err(e.into());
    }
    let Some(version) = registry.licence_by_identifier(identifier)? else {
        return Err(ShareError::NotFound { what: identifier.to_string() }.into());
    };
    let grants = registry.grants_of(&department.code)?;
    let refusal = match share::rights_on(&cat, &grants, &department, &version) {
        Err(r) => Some(r),
        Ok((t, _, unmask)) => {
            let protected = t.fields.iter().any(|f| f.personal || f.trade_secret);
            (protected && !unmask).then_some(Refusal::NeedsUnmask)
        }
    };
    if let Some(refusal) = refusal {
        let e = ShareError::NotPermitted {
            department: department.code.clone(),
            what: format!("have a copy of {identifier}"),
            refusal,
        };
        audit_refusal(&mut registry, &ask, Some(&reason), refusal, &e.to_string())?;
        return Err(e.into());
    }
    if version.status() != RegistryStatus::Current {
        anyhow::bail!(
            "{identifier} is not current ({:?}): only the current version is copied",
            version.status()
        );
    }
    let stored = version
        .file(FileKind::Pdf)
        .ok_or_else(|| anyhow::anyhow!("{identifier}: the registry holds no PDF"))?;
    let original = registry.store().read(&stored.sha256, FileKind::Pdf)?;

    let font = FaceFont::load_default()?;
    let text = watermark::watermark_text(&reason, &department.name, args.expires);
    let unsigned = watermark::watermark(&original, &font, &text, &watermark::banner_text(&reason))?;
    let signer = args.keys.load_signer(&args.registry.data, at)?;
    let opts = PdfSignOptions {
        reason: format!("加注件：{text}"),
        location: String::new(),
        name: department.name.clone(),
        tsa: None,
    };
    let signed = sign_pdf(&unsigned, &signer, at, &opts)?;
    let sha256 = sha256_hex(&signed);

    // Written beside the target, recorded, then moved into place: a copy on disk is always
    // a recorded one.
    let tmp = temp_beside(&args.out);
    std::fs::write(&tmp, &signed).with_context(|| format!("cannot write {}", tmp.display()))?;
    let recorded = registry.copy_record(
        identifier,
        &department.code,
        &reason,
        args.expires,
        &sha256,
        at,
        &AuditEntry {
            action: action::COPY.into(),
            operator: department.code.clone(),
            at,
            subject: identifier.to_string(),
            reason: Some(reason.clone()),
            details: json!({
                "department": department.code,
                "expires": args.expires.to_string(),
                "sha256": sha256,
            }),
        },
    );
    let id = match recorded {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    std::fs::rename(&tmp, &args.out)
        .with_context(|| format!("cannot move the copy to {}", args.out.display()))?;
    println!(
        "copy #{id} of {identifier} for {} until {} written to {} (sha256 {sha256})",
        department.code,
        args.expires,
        args.out.display()
    );
    Ok(exit::OK)
}

fn temp_beside(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

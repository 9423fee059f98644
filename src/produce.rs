//! Identify → render → sign for one validated licence: computes its GB/T 36904 identifier,
//! writes the canonical XML e-licence and the PDF face (whose QR code carries the identifier and
//! a digest of the XML), and signs both through the [`Signer`] seam; when the run writes OFD,
//! also the OFD face sealed with the issuer's electronic seal ([`OfdSealing`]). Built once per run (font
//! parsed once, layouts prepared once); `produce` is pure given the injected signing time, so
//! same licence, key and time ⇒ byte-identical artefacts (unless a TSA adds its own time). Safe to call from many threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::font::FaceFont;
use crate::identify::{IdError, LicenceId};
use crate::licence::Licence;
pub use crate::pipeline::Formats;
use crate::render::RenderError;
use crate::render::layout::Layout;
use crate::render::ofd::render_ofd;
use crate::render::pdf::PdfRenderer;
use crate::render::qr::qr_payload;
use crate::render::xml::{SealMeta, render_xml};
use crate::seal::ofd::{OfdSealError, seal_ofd_with};
use crate::seal::{Seal, SealError, seal_files};
use crate::sign::key_files::Passphrase;
use crate::sign::pades::{PdfSignOptions, sign_rendered_pdf};
use crate::sign::signer::Signer;
use crate::sign::xmldsig::sign_xml_with;
use crate::sign::{KeyError, SignError, Sm2Signer};
use crate::timestamp::Tsa;

/// The signed artefacts of one licence version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefacts {
    pub id: LicenceId,
    pub pdf: Vec<u8>,
    pub xml: String,
    /// The sealed OFD, when the producer writes OFD.
    pub ofd: Option<Vec<u8>>,
}

/// What seals OFD e-licences: the SM2 signer of the key directory and the seals of the
/// issuers (`seals/<USCC>.esl`, see [`crate::seal::seal_path`]).
pub struct OfdSealing {
    signer: Arc<Sm2Signer>,
    seals: HashMap<String, Seal>,
}

/// Why the OFD sealing identity of a key directory cannot be used: a configuration error,
/// reported before any effect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealSetError {
    /// The SM2 signer could not be loaded.
    #[error("SM2 signer: {0}")]
    Signer(#[from] KeyError),
    /// A seal file could not be read.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// An issuer of the pipeline has no seal in the key directory.
    #[error("issuer {issuer} has no seal (expected {})", path.display())]
    NoSeal { issuer: String, path: PathBuf },
    /// An issuer's seal cannot seal with this signer at this time.
    #[error("issuer {issuer}: {problem}")]
    Unusable { issuer: String, problem: OfdSealError },
}

impl OfdSealing {
    /// Loads the SM2 signer of `keys` (valid at `at`) and every seal in `keys/seals/`.
    pub fn load(
        keys: &Path,
        passphrase: Option<&Passphrase>,
        at: DateTime<Utc>,
    ) -> Result<OfdSealing, SealSetError> {
        let signer = Arc::new(Sm2Signer::load(keys, passphrase, at)?);
        let mut seals = HashMap::new();
        for file in seal_files(keys)? {
            let Some(issuer) = file.file_stem().and_then(|s| s.to_str()) else { continue };
            seals.insert(issuer.to_string(), Seal::read(&file)?);
        }
        Ok(OfdSealing { signer, seals })
    }

    /// Checks that each of `issuers` has a seal that is valid at `at` and names the signer
    /// (what [`crate::seal::ofd::seal_ofd`] would refuse), so a run stops before its first effect. `keys` is
    /// only used to name the expected seal file.
    pub fn check_issuers<'a>(
        &self,
        keys: &Path,
        issuers: impl IntoIterator<Item = &'a str>,
        at: DateTime<Utc>,
    ) -> Result<(), SealSetError> {
        use crate::sign::Signer as _;
        for issuer in issuers {
            let Some(seal) = self.seals.get(issuer) else {
                return Err(SealSetError::NoSeal {
                    issuer: issuer.to_string(),
                    path: crate::seal::seal_path(keys, issuer),
                });
            };
            let unusable = |problem| SealSetError::Unusable { issuer: issuer.to_string(), problem };
            if !seal.is_valid_at(at) {
                return Err(unusable(OfdSealError::SealNotValidAt {
                    es_id: seal.es_id().to_string(),
                    valid_from: seal.valid_from(),
                    valid_to: seal.valid_to(),
                    at,
                }));
            }
            if !seal.names_signer(self.signer.certificate_der()) {
                return Err(unusable(OfdSealError::SignerNotInCertList {
                    es_id: seal.es_id().to_string(),
                    signer: self.signer.subject_cn().to_string(),
                }));
            }
        }
        Ok(())
    }

    /// The seal of `issuer`, if the key directory has one.
    pub fn seal(&self, issuer: &str) -> Option<&Seal> {
        self.seals.get(issuer)
    }
}

/// Why a licence could not be turned into signed artefacts.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("identifier: {0}")]
    Identifier(#[from] IdError),
    #[error("render: {0}")]
    Render(#[from] RenderError),
    #[error("sign: {0}")]
    Sign(#[from] SignError),
    #[error("OFD seal: {0}")]
    OfdSeal(#[from] OfdSealError),
    /// The licence's issuer has no seal in the key directory.
    #[error("issuer {issuer} has no seal")]
    NoSeal { issuer: String },
}

/// Renders and signs licences of the types whose layouts it was given.
pub struct Producer {
    renderer: PdfRenderer,
    signer: Arc<dyn Signer>,
    signed_at: DateTime<Utc>,
    tsa: Option<Arc<dyn Tsa>>,
    ofd: Option<OfdSealing>,
}

impl Producer {
    /// Loads the face font (see [`FaceFont::load_default`]) and the layout files. Fails on a missing
    /// font or a broken layout, before any row is read.
    pub fn new(
        layouts: &[&Path],
        signer: Arc<dyn Signer>,
        signed_at: DateTime<Utc>,
    ) -> Result<Producer, RenderError> {
        Ok(Producer::with_renderer(Producer::load_renderer(layouts)?, signer, signed_at))
    }

    /// The face renderer for `layouts`: the font (see [`FaceFont::load_default`]), the layout
    /// files and the seal images they name, all loaded and checked. Touches nothing but those
    /// files, so a run calls it before any effect.
    pub fn load_renderer(layouts: &[&Path]) -> Result<PdfRenderer, RenderError> {
        let font = Arc::new(FaceFont::load_default()?);
        let layouts = layouts.iter().map(|p| Layout::load(p)).collect::<Result<Vec<_>, _>>()?;
        PdfRenderer::new(font, layouts)
    }

    /// A producer over a renderer already loaded (see [`Producer::load_renderer`]).
    pub fn with_renderer(
        renderer: PdfRenderer,
        signer: Arc<dyn Signer>,
        signed_at: DateTime<Utc>,
    ) -> Producer {
        Producer { renderer, signer, signed_at, tsa: None, ofd: None }
    }

    /// Timestamps every signature with `tsa` (PAdES and XAdES B-T). The token's time is the TSA's,
    /// so artefacts are no longer byte-identical across runs.
    pub fn with_tsa(mut self, tsa: Option<Arc<dyn Tsa>>) -> Producer {
        self.tsa = tsa;
        self
    }

    /// This producer, also writing each licence as an OFD sealed by `sealing`.
    pub fn with_ofd(self, sealing: OfdSealing) -> Producer {
        Producer { ofd: Some(sealing), ..self }
    }

    /// The face renderer (font and layouts loaded).
    pub fn renderer(&self) -> &PdfRenderer {
        &self.renderer
    }

    /// The signing time stamped into every artefact of this run.
    pub fn signed_at(&self) -> DateTime<Utc> {
        self.signed_at
    }

    /// The UNSIGNED face of one licence as version `id`, for a reviewer (审核) to look at before
    /// anything is signed: the same page the signed PDF will show, with no signature and no
    /// signature field, so no verifier takes it for an e-licence.
    pub fn preview(&self, licence: &Licence, id: &LicenceId) -> Result<Vec<u8>, ProduceError> {
        let identifier = id.to_string();
        let seal = SealMeta {
            signer_name: licence.issuer_name.clone(),
            sign_time: self.signed_at,
            seal_name: format!("{}电子印章", licence.issuer_name),
        };
        let xml = render_xml(licence, &identifier, &seal);
        let digest = hex::encode(Sha256::digest(xml.as_bytes()));
        let qr = qr_payload(&identifier, &digest);
        Ok(self.renderer.render(licence, &identifier, &qr, self.signed_at)?)
    }

    /// Renders and signs one licence as version `id` (decided by the registry, or numbered
    /// within the input for a preview).
    pub fn produce(&self, licence: &Licence, id: &LicenceId) -> Result<Artefacts, ProduceError> {
        let identifier = id.to_string();
        let seal = SealMeta {
            signer_name: licence.issuer_name.clone(),
            sign_time: self.signed_at,
            seal_name: format!("{}电子印章", licence.issuer_name),
        };
        let xml = render_xml(licence, &identifier, &seal);
        let digest = hex::encode(Sha256::digest(xml.as_bytes()));
        let qr = qr_payload(&identifier, &digest);
        let pdf = self.renderer.render_signable(licence, &identifier, &qr, self.signed_at)?;
        let opts = PdfSignOptions {
            reason: format!("{} 电子证照签发", licence.type_name),
            location: licence.region_code.clone(),
            name: licence.issuer_name.clone(),
            tsa: self.tsa.clone(),
        };
        let pdf = sign_rendered_pdf(pdf, self.signer.as_ref(), self.signed_at, &opts)?;
        let xml = sign_xml_with(&xml, self.signer.as_ref(), self.tsa.as_deref())?;
        let ofd = match &self.ofd {
            Some(sealing) => {
                let seal = sealing
                    .seal(&licence.issuer_code)
                    .ok_or_else(|| ProduceError::NoSeal { issuer: licence.issuer_code.clone() })?;
                let package =
                    render_ofd(&self.renderer, licence, &identifier, &qr, self.signed_at)?;
                Some(seal_ofd_with(
                    &package,
                    sealing.signer.as_ref(),
                    seal,
                    self.signed_at,
                    self.tsa.as_deref(),
                )?)
            }
            None => None,
        };
        Ok(Artefacts { id: id.clone(), pdf, xml, ofd })
    }
}

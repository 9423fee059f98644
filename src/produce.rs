//! Identify → render → sign for one validated licence: computes its GB/T 36904 identifier,
//! writes the canonical XML e-licence and the PDF face (whose QR code carries the identifier and
//! a digest of the XML), and signs both through the [`Signer`](crate::sign::Signer) seam; when the run writes OFD,
//! also the OFD face sealed with the issuer's electronic seal. Every licence is signed with its
//! own issuer's identity ([`Identities`], from the run's key set). Built once per run (font
//! parsed once, layouts prepared once); `produce` is pure given the injected signing time, so
//! same licence, key and time ⇒ byte-identical artefacts (unless a TSA adds its own time). Safe to call from many threads.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::font::FaceFont;
use crate::identify::{IdError, LicenceId};
pub use crate::keyset::Identities;
use crate::licence::Licence;
pub use crate::pipeline::Formats;
use crate::render::RenderError;
use crate::render::layout::Layout;
use crate::render::ofd::render_ofd;
use crate::render::pdf::PdfRenderer;
use crate::render::qr::face_qr_payload;
use crate::render::xml::{SealMeta, render_xml};
use crate::seal::ofd::{OfdSealError, seal_ofd_with};
use crate::sign::SignError;
use crate::sign::pades::{PdfSignOptions, sign_rendered_pdf};
use crate::sign::xmldsig::sign_xml_with;
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
    /// The licence's issuer has no identity in the key set of the run (its pipeline did not
    /// name it as a known issuer).
    #[error("issuer {issuer} has no signing identity in this run's key set")]
    NoIdentity { issuer: String },
}

/// Renders and signs licences of the types whose layouts it was given.
pub struct Producer {
    renderer: PdfRenderer,
    identities: Identities,
    signed_at: DateTime<Utc>,
    tsa: Option<Arc<dyn Tsa>>,
    /// Base of the public verification page the QR code opens (checked by
    /// [`crate::render::check_public_url`]); `None`: the `ELIC1:` payload.
    public_url: Option<String>,
}

impl Producer {
    /// Loads the face font (see [`FaceFont::load_default`]) and the layout files. Fails on a missing
    /// font or a broken layout, before any row is read.
    pub fn new(
        layouts: &[&Path],
        identities: Identities,
        signed_at: DateTime<Utc>,
    ) -> Result<Producer, RenderError> {
        Ok(Producer::with_renderer(Producer::load_renderer(layouts)?, identities, signed_at))
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
        identities: Identities,
        signed_at: DateTime<Utc>,
    ) -> Producer {
        Producer { renderer, identities, signed_at, tsa: None, public_url: None }
    }

    /// Timestamps every signature with `tsa` (PAdES and XAdES B-T). The token's time is the TSA's,
    /// so artefacts are no longer byte-identical across runs.
    pub fn with_tsa(mut self, tsa: Option<Arc<dyn Tsa>>) -> Producer {
        self.tsa = tsa;
        self
    }

    /// Makes every face's QR code the address of its public verification page under
    /// `public_url` (one [`crate::render::check_public_url`] accepted); `None` keeps `ELIC1:`.
    pub fn with_public_url(mut self, public_url: Option<String>) -> Producer {
        self.public_url = public_url;
        self
    }

    /// The signing identities, by issuer.
    pub fn identities(&self) -> &Identities {
        &self.identities
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
        let qr = face_qr_payload(self.public_url.as_deref(), &identifier, &digest);
        Ok(self.renderer.render(licence, &identifier, &qr, self.signed_at)?)
    }

    /// Renders and signs one licence as version `id` (decided by the registry, or numbered
    /// within the input for a preview) with its issuer's identity: the PDF and XML by its RSA
    /// signer, and when the identity has one, the OFD sealed with its seal.
    pub fn produce(&self, licence: &Licence, id: &LicenceId) -> Result<Artefacts, ProduceError> {
        let identity = self
            .identities
            .for_issuer(&licence.issuer_code)
            .ok_or_else(|| ProduceError::NoIdentity { issuer: licence.issuer_code.clone() })?;
        let identifier = id.to_string();
        let seal = SealMeta {
            signer_name: licence.issuer_name.clone(),
            sign_time: self.signed_at,
            seal_name: format!("{}电子印章", licence.issuer_name),
        };
        let xml = render_xml(licence, &identifier, &seal);
        let digest = hex::encode(Sha256::digest(xml.as_bytes()));
        let qr = face_qr_payload(self.public_url.as_deref(), &identifier, &digest);
        let pdf = self.renderer.render_signable(licence, &identifier, &qr, self.signed_at)?;
        let opts = PdfSignOptions {
            reason: format!("{} 电子证照签发", licence.type_name),
            location: licence.region_code.clone(),
            name: licence.issuer_name.clone(),
            tsa: self.tsa.clone(),
        };
        let pdf = sign_rendered_pdf(pdf, identity.signer.as_ref(), self.signed_at, &opts)?;
        let xml = sign_xml_with(&xml, identity.signer.as_ref(), self.tsa.as_deref())?;
        let ofd = match &identity.ofd {
            Some(sealing) => {
                let package =
                    render_ofd(&self.renderer, licence, &identifier, &qr, self.signed_at)?;
                Some(seal_ofd_with(
                    &package,
                    sealing.signer.as_ref(),
                    &sealing.seal,
                    self.signed_at,
                    self.tsa.as_deref(),
                )?)
            }
            None => None,
        };
        Ok(Artefacts { id: id.clone(), pdf, xml, ofd })
    }
}

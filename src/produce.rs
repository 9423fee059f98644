//! Identify → render → sign for one validated licence: computes its GB/T 36904 identifier,
//! writes the canonical XML e-licence and the PDF face (whose QR code carries the identifier and
//! a digest of the XML), and signs both through the [`Signer`] seam. Built once per run (font
//! parsed once, layouts prepared once); `produce` is pure given the injected signing time, so
//! same licence, key and time ⇒ byte-identical artefacts (unless a TSA adds its own time). Safe to call from many threads.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::font::FaceFont;
use crate::identify::{IdError, LicenceId};
use crate::licence::Licence;
use crate::render::RenderError;
use crate::render::layout::Layout;
use crate::render::pdf::PdfRenderer;
use crate::render::qr::qr_payload;
use crate::render::xml::{SealMeta, render_xml};
use crate::sign::SignError;
use crate::sign::pades::{PdfSignOptions, sign_rendered_pdf};
use crate::sign::signer::Signer;
use crate::sign::xmldsig::sign_xml_with;
use crate::timestamp::Tsa;

/// The signed artefacts of one licence version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefacts {
    pub id: LicenceId,
    pub pdf: Vec<u8>,
    pub xml: String,
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
}

/// Renders and signs licences of the types whose layouts it was given.
pub struct Producer {
    renderer: PdfRenderer,
    signer: Arc<dyn Signer>,
    signed_at: DateTime<Utc>,
    tsa: Option<Arc<dyn Tsa>>,
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
        Producer { renderer, signer, signed_at, tsa: None }
    }

    /// Timestamps every signature with `tsa` (PAdES and XAdES B-T). The token's time is the TSA's,
    /// so artefacts are no longer byte-identical across runs.
    pub fn with_tsa(mut self, tsa: Option<Arc<dyn Tsa>>) -> Producer {
        self.tsa = tsa;
        self
    }

    /// The face renderer (font and layouts loaded).
    pub fn renderer(&self) -> &PdfRenderer {
        &self.renderer
    }

    /// The signing time stamped into every artefact of this run.
    pub fn signed_at(&self) -> DateTime<Utc> {
        self.signed_at
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
        Ok(Artefacts { id: id.clone(), pdf, xml })
    }
}

//! Identify → render → sign for one validated licence: computes its GB/T 36904 identifier,
//! writes the canonical XML e-licence and the PDF face (whose QR code carries the identifier and
//! a digest of the XML), and signs both through the [`Signer`](crate::sign::Signer) seam; when the run writes OFD,
//! also the OFD face sealed with the issuer's electronic seal. Every licence is signed with its
//! own issuer's identity ([`Identities`], from the run's key set). Built once per run (font
//! parsed once, layouts prepared once); `produce` is pure given the injected signing time, so
//! same licence, key and time ⇒ byte-identical artefacts (unless a TSA adds its own time). Safe to call from many threads.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::font::FaceFont;
use crate::identify::{IdError, LicenceId};
pub use crate::keyset::Identities;
use crate::licence::Licence;
pub use crate::pipeline::Formats;
pub use crate::pipeline::PadesLevel;
use crate::render::RenderError;
use crate::render::layout::Layout;
use crate::render::ofd::render_ofd_face;
use crate::render::pdf::PdfRenderer;
use crate::render::qr::face_qr_payload;
use crate::render::xml::{SealMeta, render_xml};
use crate::seal::ofd::{OfdSealError, StartedSeal};
use crate::sign::SignError;
use crate::sign::ltv::{append_doc_timestamp, append_dss};
use crate::sign::pades::{PdfSignOptions, StartedPdf, start_rendered_pdf};
use crate::sign::signer::SignatureAlgorithm;
use crate::sign::validation_data::{CrlSource, ValidationData, ValidationDataError, gather};
use crate::sign::xmldsig::{StartedXml, start_xml};
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
    /// PAdES B-LT was asked for, but the run gathered no validation data for this signer.
    #[error("no PAdES B-LT validation data for the signer of issuer {issuer}")]
    NoValidationData { issuer: String },
}

/// What PAdES B-LT and B-LTA add to every PDF of a run: the level, the TSA of the document
/// timestamp, and per PDF signer (by certificate DER) its validation data, gathered once.
#[derive(Debug, Clone)]
pub struct LongTerm {
    pub level: PadesLevel,
    tsa: Arc<dyn Tsa>,
    by_signer: HashMap<Vec<u8>, Arc<ValidationData>>,
}

impl LongTerm {
    /// Gathers, once for the run, the validation data of every PDF signer of `identities`
    /// (its chain) and of `tsa` (the chain a token of it carries), with a checked CRL for
    /// each certificate (see [`gather`]). Fails naming the certificate whose CRL cannot be
    /// obtained, or when the TSA gives no token.
    pub fn gather(
        level: PadesLevel,
        identities: &Identities,
        tsa: Arc<dyn Tsa>,
        key_dirs: &[&Path],
        at: DateTime<Utc>,
    ) -> Result<LongTerm, LongTermError> {
        let probe = tsa.stamp(b"elicence: validation data of the TSA")?;
        let tsa_chain = crate::timestamp::token_certificates(&probe.der);
        let crls = CrlSource::new(key_dirs)?;
        let mut by_signer = HashMap::new();
        for signer in identities.signers() {
            if signer.algorithm() == SignatureAlgorithm::Sm2Sm3 {
                continue; // OFD seals: no PDF signature
            }
            let data = gather(&[signer.chain(), &tsa_chain], &crls, at)?;
            by_signer.insert(signer.certificate_der().to_vec(), Arc::new(data));
        }
        Ok(LongTerm { level, tsa, by_signer })
    }
}

/// Why the PAdES B-LT validation data of a run could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum LongTermError {
    #[error("PAdES B-LT validation data: {0}")]
    ValidationData(#[from] ValidationDataError),
    #[error("PAdES B-LT validation data of the TSA: {0}")]
    Tsa(#[from] crate::timestamp::TsaError),
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
    long_term: Option<LongTerm>,
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
        Producer { renderer, identities, signed_at, tsa: None, public_url: None, long_term: None }
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

    /// Makes every PDF PAdES B-LT (a `/DSS` update after the B-T signature) or B-LTA (and a
    /// document timestamp update), as `long_term` says. Needs [`Producer::with_tsa`] too.
    pub fn with_long_term(mut self, long_term: Option<LongTerm>) -> Producer {
        self.long_term = long_term;
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
        self.start(licence, id)?.finish()
    }

    /// The first half of [`Producer::produce`]: everything rendered and signed, the timestamp
    /// tokens asked for and not awaited ([`crate::timestamp::Tsa::request`]), so that a chunk's
    /// licences are all signed while a pipelining TSA answers; [`StartedLicence::finish`]
    /// puts the tokens in. Without a TSA (or with one that does not pipeline), nothing is left
    /// to wait for.
    pub fn start(
        &self,
        licence: &Licence,
        id: &LicenceId,
    ) -> Result<StartedLicence<'_>, ProduceError> {
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
        // One layout pass, one QR code and one font subset for the PDF and the OFD.
        let face = self.renderer.lay_out(licence, &identifier, &qr)?;
        let pdf = self.renderer.render_face(&face, self.signed_at)?;
        let opts = PdfSignOptions {
            reason: format!("{} 电子证照签发", licence.type_name),
            location: licence.region_code.clone(),
            name: licence.issuer_name.clone(),
            tsa: self.tsa.clone(),
        };
        let signer = identity.signer.as_ref();
        let long_term = match &self.long_term {
            None => None,
            Some(long_term) => {
                let data = long_term.by_signer.get(signer.certificate_der()).ok_or_else(|| {
                    ProduceError::NoValidationData { issuer: licence.issuer_code.clone() }
                })?;
                Some((long_term, data.as_ref()))
            }
        };
        let pdf = start_rendered_pdf(pdf, signer, self.signed_at, &opts)?;
        let xml = start_xml(&xml, signer, self.tsa.as_deref())?;
        let ofd = match &identity.ofd {
            Some(sealer) => {
                let package =
                    render_ofd_face(&self.renderer, &face, licence, &identifier, self.signed_at)?;
                Some(sealer.start_seal(package, self.signed_at, self.tsa.as_deref())?)
            }
            None => None,
        };
        Ok(StartedLicence { id: id.clone(), pdf, xml, ofd, long_term })
    }
}

/// A licence rendered and signed by [`Producer::start`], its timestamp tokens on the way.
#[derive(Debug)]
pub struct StartedLicence<'p> {
    id: LicenceId,
    pdf: StartedPdf<'p>,
    xml: StartedXml,
    ofd: Option<StartedSeal<'p>>,
    /// PAdES B-LT/B-LTA: what the updates after the signature add.
    long_term: Option<(&'p LongTerm, &'p ValidationData)>,
}

impl StartedLicence<'_> {
    /// Waits for the tokens and gives the signed artefacts.
    pub fn finish(self) -> Result<Artefacts, ProduceError> {
        let (mut pdf, mut tail) = self.pdf.finish()?;
        if let Some((long_term, data)) = self.long_term {
            append_dss(&mut pdf, &mut tail, data);
            if long_term.level >= PadesLevel::BLta {
                append_doc_timestamp(&mut pdf, &mut tail, long_term.tsa.as_ref())?;
            }
        }
        let xml = self.xml.finish()?;
        let ofd = self.ofd.map(StartedSeal::finish).transpose()?;
        Ok(Artefacts { id: self.id, pdf, xml, ofd })
    }
}

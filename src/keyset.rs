//! The key set of a run (`--keys DIR`): one signing identity per issuing authority, so that a
//! licence is always signed by its own issuer, and a run over an export from ten bureaus signs
//! with ten identities.
//!
//! A key set is a folder:
//!
//! | file | what |
//! |---|---|
//! | `issuers/<USCC>/signer.key`, `signer.pem` | the issuer's RSA signer (PDF, XML) |
//! | `issuers/<USCC>/sm2-signer.key`, `sm2-signer.pem` | the issuer's SM2 signer (OFD) |
//! | `seals/<USCC>.esl` | the issuer's electronic seal, naming its SM2 signer |
//! | `signer.key`, `signer.pem` | the key set's own signer: the registry's checkpoints and copies for use; a licence only when its pipeline allows the default signer |
//! | `sm2-signer.key`, `sm2-signer.pem` | the default SM2 signer, likewise |
//! | `ca.pem`, `sm2-ca.pem`, `seal-maker.pem` | the roots and the seal maker (制章者) |
//!
//! [`load_identities`] reads what a run needs and checks it **before** anything is signed: an
//! issuer without an identity of its own is [`KeySetError::NoIdentity`] (exit 3) unless its
//! pipeline says `allow_default_signer = true` and the key set has a default signer; an issuer
//! whose seal is missing, expired or does not name its SM2 signer is refused the same way.
//! [`ensure_development_identities`] writes DEVELOPMENT identities and seals (for `keys init
//! --pipeline` and a run's development key set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::seal::ofd::{OfdSealError, OfdSealer};
use crate::seal::{Seal, SealError, SealSpec, seal_path};
use crate::sign::key_files::{CHAIN_FILE, KEY_FILE, Passphrase, SM2_CHAIN_FILE, SM2_KEY_FILE};
use crate::sign::keys::{
    DevKeyOptions, SEAL_MAKER_CHAIN_FILE, SEAL_MAKER_KEY_FILE, init_dev_issuer, issuer_dir,
};
use crate::sign::{KeyError, RsaSigner, Signer, Sm2Signer};

/// What seals a licence's OFD: the issuer's SM2 signer and the seal that names it, made
/// ready to seal many documents.
pub type OfdIdentity = OfdSealer;

/// The identity one issuer's licences are signed with.
#[derive(Debug)]
pub struct Identity {
    /// Signs the PDF (PAdES) and the XML (XML-DSig).
    pub signer: Arc<dyn Signer>,
    /// Seals the OFD; `None` when the run writes no OFD.
    pub ofd: Option<OfdIdentity>,
    /// True when the RSA signer is the issuer's own (not the key set's default).
    pub own: bool,
}

/// The identities of a run, by issuer USCC.
#[derive(Debug, Default)]
pub struct Identities {
    by_issuer: HashMap<String, Identity>,
    /// One identity for every issuer: a single-signer producer (benchmarks, library users).
    any: Option<Identity>,
}

impl Identities {
    /// One RSA signer for every issuer and no OFD: for a producer that is not a run (benches,
    /// tests of the formats).
    pub fn single(signer: Arc<dyn Signer>) -> Identities {
        Identities {
            by_issuer: HashMap::new(),
            any: Some(Identity { signer, ofd: None, own: false }),
        }
    }

    /// The identity that signs for the issuer `uscc`.
    pub fn for_issuer(&self, uscc: &str) -> Option<&Identity> {
        self.by_issuer.get(uscc).or(self.any.as_ref())
    }

    /// Every signer loaded (RSA and SM2), each once, for checks such as a production
    /// registry's refusal of development keys.
    pub fn signers(&self) -> Vec<&dyn Signer> {
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut out: Vec<&dyn Signer> = Vec::new();
        for identity in self.by_issuer.values().chain(self.any.as_ref()) {
            let sm2 = identity.ofd.as_ref().map(|o| o.signer().as_ref() as &dyn Signer);
            for signer in std::iter::once(identity.signer.as_ref()).chain(sm2) {
                if !seen.contains(&signer.certificate_der()) {
                    seen.push(signer.certificate_der());
                    out.push(signer);
                }
            }
        }
        out
    }

    /// The issuers with an identity, sorted, with whether it is their own.
    pub fn issuers(&self) -> Vec<(&str, bool)> {
        let mut out: Vec<(&str, bool)> =
            self.by_issuer.iter().map(|(code, id)| (code.as_str(), id.own)).collect();
        out.sort_unstable();
        out
    }
}

/// An issuer a run may sign for, and whether its pipeline lets the default signer sign for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRequest {
    /// USCC (统一社会信用代码).
    pub code: String,
    /// Name, for messages and development certificates.
    pub name: String,
    /// The pipeline's `allow_default_signer`.
    pub allow_default: bool,
}

impl IssuerRequest {
    /// The known issuers of `plan`.
    pub fn of_plan(plan: &crate::pipeline::Plan) -> Vec<IssuerRequest> {
        plan.issuer
            .known()
            .into_iter()
            .map(|k| IssuerRequest {
                code: k.code.clone(),
                name: k.name.clone(),
                allow_default: plan.allow_default_signer,
            })
            .collect()
    }

    /// `requests` with each issuer once (the default signer allowed if any request allows it).
    pub fn merged(requests: impl IntoIterator<Item = IssuerRequest>) -> Vec<IssuerRequest> {
        let mut out: Vec<IssuerRequest> = Vec::new();
        for request in requests {
            match out.iter_mut().find(|r| r.code == request.code) {
                Some(known) => known.allow_default |= request.allow_default,
                None => out.push(request),
            }
        }
        out
    }
}

/// Why a key set cannot sign what a run asks: a configuration error (exit 3), reported before
/// anything is signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// An issuer has no identity of its own and may not use the default signer.
    #[error(
        "issuer {name} ({code}) has no {what} of its own in {}: expected {} and {} \
         (development: `elicence keys init {} --pipeline PIPELINE`){}",
        keys.display(),
        expected_key.display(),
        expected_key.with_extension("pem").display(),
        keys.display(),
        default_hint(*default_exists)
    )]
    NoIdentity {
        code: String,
        name: String,
        what: &'static str,
        keys: PathBuf,
        expected_key: PathBuf,
        default_exists: bool,
    },
    /// A signer of the key set could not be loaded.
    #[error("{what} of {owner}: {source}")]
    Key { what: &'static str, owner: String, source: KeyError },
    /// A seal file could not be read.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// An issuer has no seal in the key set.
    #[error("issuer {name} ({code}) has no seal (expected {})", path.display())]
    NoSeal { code: String, name: String, path: PathBuf },
    /// An issuer's seal cannot seal with its signer at this time.
    #[error("issuer {name} ({code}): {problem}")]
    Unusable { code: String, name: String, problem: Box<OfdSealError> },
}

fn default_hint(default_exists: bool) -> &'static str {
    if default_exists {
        "; or let the key set's default signer sign for it with `allow_default_signer = true` \
         in the pipeline"
    } else {
        ""
    }
}

/// Loads the identity of every issuer of `issuers` from the key set `keys`, valid at `at`: the
/// RSA signer, and with `ofd` the SM2 signer and the seal (valid at `at`, naming that signer).
/// Signers shared by several issuers (the default) are loaded once.
pub fn load_identities(
    keys: &Path,
    passphrase: Option<&Passphrase>,
    at: DateTime<Utc>,
    issuers: &[IssuerRequest],
    ofd: bool,
) -> Result<Identities, KeySetError> {
    let mut default_rsa: Option<Arc<dyn Signer>> = None;
    let mut default_sm2: Option<Arc<Sm2Signer>> = None;
    let mut by_issuer = HashMap::new();
    for issuer in issuers {
        let own_dir = issuer_dir(keys, &issuer.code);
        let no_identity = |what, file: &str| KeySetError::NoIdentity {
            code: issuer.code.clone(),
            name: issuer.name.clone(),
            what,
            keys: keys.to_path_buf(),
            expected_key: own_dir.join(file),
            default_exists: keys.join(file).exists(),
        };
        let key_error = |what, owner: &str| {
            let owner = owner.to_owned();
            move |source| KeySetError::Key { what, owner, source }
        };
        let own_rsa = own_dir.join(KEY_FILE).exists() || own_dir.join(CHAIN_FILE).exists();
        let signer: Arc<dyn Signer> = if own_rsa {
            Arc::new(
                RsaSigner::load(&own_dir, passphrase, at)
                    .map_err(key_error("RSA signer", &issuer.code))?,
            )
        } else if issuer.allow_default && keys.join(KEY_FILE).exists() {
            match &default_rsa {
                Some(s) => s.clone(),
                None => {
                    let s: Arc<dyn Signer> =
                        Arc::new(RsaSigner::load(keys, passphrase, at).map_err(key_error(
                            "default RSA signer",
                            &keys.display().to_string(),
                        ))?);
                    default_rsa = Some(s.clone());
                    s
                }
            }
        } else {
            return Err(no_identity("signing identity", KEY_FILE));
        };
        let ofd = if ofd {
            let own_sm2 =
                own_dir.join(SM2_KEY_FILE).exists() || own_dir.join(SM2_CHAIN_FILE).exists();
            let sm2 = if own_sm2 {
                Arc::new(
                    Sm2Signer::load(&own_dir, passphrase, at)
                        .map_err(key_error("SM2 signer", &issuer.code))?,
                )
            } else if issuer.allow_default && keys.join(SM2_KEY_FILE).exists() {
                match &default_sm2 {
                    Some(s) => s.clone(),
                    None => {
                        let s = Arc::new(Sm2Signer::load(keys, passphrase, at).map_err(
                            key_error("default SM2 signer", &keys.display().to_string()),
                        )?);
                        default_sm2 = Some(s.clone());
                        s
                    }
                }
            } else {
                return Err(no_identity("SM2 signer", SM2_KEY_FILE));
            };
            let seal = usable_seal(keys, issuer, sm2.as_ref(), at)?;
            let sealer = OfdSealer::new(sm2, seal).map_err(|e| KeySetError::Unusable {
                code: issuer.code.clone(),
                name: issuer.name.clone(),
                problem: Box::new(e),
            })?;
            Some(sealer)
        } else {
            None
        };
        by_issuer.insert(issuer.code.clone(), Identity { signer, ofd, own: own_rsa });
    }
    Ok(Identities { by_issuer, any: None })
}

/// The seal of `issuer` in `keys`, checked as sealing would check it (valid at `at`, naming
/// `signer`), so that a run stops before its first effect.
fn usable_seal(
    keys: &Path,
    issuer: &IssuerRequest,
    signer: &Sm2Signer,
    at: DateTime<Utc>,
) -> Result<Seal, KeySetError> {
    let path = seal_path(keys, &issuer.code);
    if !path.exists() {
        return Err(KeySetError::NoSeal {
            code: issuer.code.clone(),
            name: issuer.name.clone(),
            path,
        });
    }
    let seal = Seal::read(&path)?;
    let unusable = |problem| KeySetError::Unusable {
        code: issuer.code.clone(),
        name: issuer.name.clone(),
        problem: Box::new(problem),
    };
    if !seal.is_valid_at(at) {
        return Err(unusable(OfdSealError::SealNotValidAt {
            es_id: seal.es_id().to_string(),
            valid_from: seal.valid_from(),
            valid_to: seal.valid_to(),
            at,
        }));
    }
    if !seal.names_signer(signer.certificate_der()) {
        return Err(unusable(OfdSealError::SignerNotInCertList {
            es_id: seal.es_id().to_string(),
            signer: signer.subject_cn().to_string(),
        }));
    }
    Ok(seal)
}

/// Gives every issuer of `issuers` a DEVELOPMENT identity of its own in the key set `keys`
/// (made by its CAs, see [`init_dev_issuer`]) when it has none, and with `ofd` a development
/// seal (picture `seal_png`, ten years from `at`) when it has none or its seal does not name
/// the issuer's SM2 signer. Returns what was made, one line each.
pub fn ensure_development_identities(
    keys: &Path,
    passphrase: Option<&Passphrase>,
    issuers: &[IssuerRequest],
    ofd: bool,
    seal_png: &[u8],
    at: DateTime<Utc>,
) -> Result<Vec<String>, KeySetError> {
    let mut made = Vec::new();
    let opts = DevKeyOptions { passphrase: passphrase.cloned(), ..DevKeyOptions::default() };
    let mut maker: Option<Sm2Signer> = None;
    for issuer in issuers {
        let own_dir = issuer_dir(keys, &issuer.code);
        if !own_dir.join(KEY_FILE).exists() {
            init_dev_issuer(keys, &issuer.code, &issuer.name, at, &opts).map_err(|source| {
                KeySetError::Key {
                    what: "development identity",
                    owner: issuer.code.clone(),
                    source,
                }
            })?;
            made.push(format!(
                "made a DEVELOPMENT signing identity for {} ({}) in {}",
                issuer.name,
                issuer.code,
                own_dir.display()
            ));
        }
        if !ofd {
            continue;
        }
        let key_error = |what| {
            let owner = issuer.code.clone();
            move |source| KeySetError::Key { what, owner, source }
        };
        let signer = Sm2Signer::load(&own_dir, passphrase, at).map_err(key_error("SM2 signer"))?;
        let path = seal_path(keys, &issuer.code);
        if path.exists() && Seal::read(&path)?.names_signer(signer.certificate_der()) {
            continue;
        }
        let maker = match &mut maker {
            Some(m) => m,
            None => maker.insert(
                Sm2Signer::load_files(
                    &keys.join(SEAL_MAKER_KEY_FILE),
                    &keys.join(SEAL_MAKER_CHAIN_FILE),
                    passphrase,
                    at,
                )
                .map_err(key_error("seal maker"))?,
            ),
        };
        let spec = SealSpec {
            es_id: format!("{}{}", issuer.code, at.format("%Y%m%d%H%M%S")),
            name: issuer.name.clone(),
            signer_certs: vec![signer.certificate_der().to_vec()],
            created: at,
            valid_from: at - Duration::days(1),
            valid_to: at + Duration::days(3650),
            picture_png: seal_png.to_vec(),
            picture_mm: (40, 40),
        };
        Seal::make(maker, &spec)?.write(&path)?;
        made.push(format!(
            "made a DEVELOPMENT seal for {} ({}) in {}",
            issuer.name,
            issuer.code,
            path.display()
        ));
    }
    Ok(made)
}

/// The picture of a development seal: the layout's seal image when it has one, else a red ring.
pub fn development_seal_picture(seal_image: Option<&Path>) -> Result<Vec<u8>, SealPictureError> {
    if let Some(path) = seal_image {
        return std::fs::read(path)
            .map_err(|source| SealPictureError::Read { path: path.to_path_buf(), source });
    }
    let size = 200u32;
    let img = image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - 99.5, y as f32 - 99.5);
        let r = (dx * dx + dy * dy).sqrt();
        if (88.0..98.0).contains(&r) {
            image::Rgba([200, 16, 16, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(SealPictureError::Encode)?;
    Ok(png)
}

/// Why a development seal picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SealPictureError {
    #[error("cannot read the seal image {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot encode the seal picture: {0}")]
    Encode(image::ImageError),
}

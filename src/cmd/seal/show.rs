//! `elicence seal show FILE.esl`: what a seal says (header, esID, name, validity, picture,
//! certList subjects, maker) and whether the maker's signature over it is correct.

use std::path::PathBuf;

use der::Decode;
use serde::Serialize;
use x509_cert::Certificate;

use crate::exit;
use crate::seal::{CertList, Seal};
use crate::sign::key_files::subject_label;

/// Arguments of `elicence seal show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The seal file (DER SESeal, e.g. keys/seals/<CODE>.esl or an OFD's Seal.esl).
    pub file: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A seal as `seal show` and `seal list` print it.
#[derive(Debug, Serialize)]
pub struct SealSummary {
    pub file: PathBuf,
    pub header: String,
    pub es_id: String,
    pub name: String,
    pub seal_type: u32,
    pub created: String,
    pub valid_from: String,
    pub valid_to: String,
    pub picture: String,
    /// Subjects of the certList certificates (or `sm3:<hex>` digests).
    pub cert_list: Vec<String>,
    pub maker: String,
    /// Whether the maker's SM2 signature over the seal is correct (not whether it is trusted).
    pub maker_signature_ok: bool,
}

impl SealSummary {
    /// Summarises a parsed seal read from `file`.
    pub fn of(file: PathBuf, seal: &Seal) -> SealSummary {
        let cert_list = match seal.cert_list() {
            Ok(CertList::Certificates(certs)) => certs.iter().map(|c| subject_of(c)).collect(),
            Ok(CertList::Digests(digests)) => {
                digests.iter().map(|(kind, d)| format!("{kind}:{}", hex::encode(d))).collect()
            }
            Err(e) => vec![format!("unreadable: {e}")],
        };
        let picture = seal.picture();
        let asn1 = seal.asn1();
        SealSummary {
            file,
            header: format!(
                "{} v{} ({})",
                asn1.e_seal_info.header.id,
                asn1.e_seal_info.header.version,
                seal.vendor()
            ),
            es_id: seal.es_id().to_string(),
            name: seal.name().to_string(),
            seal_type: seal.seal_type(),
            created: seal.created().to_rfc3339(),
            valid_from: seal.valid_from().to_rfc3339(),
            valid_to: seal.valid_to().to_rfc3339(),
            picture: format!(
                "{} {} bytes, {}×{} mm",
                picture.format,
                picture.data.len(),
                picture.width_mm,
                picture.height_mm
            ),
            cert_list,
            maker: subject_of(seal.maker_cert_der()),
            maker_signature_ok: seal.maker_signature_ok(),
        }
    }

    fn print(&self) {
        println!("file:        {}", self.file.display());
        println!("header:      {}", self.header);
        println!("esID:        {}", self.es_id);
        println!("name:        {}", self.name);
        println!("type:        {}", self.seal_type);
        println!("created:     {}", self.created);
        println!("valid:       {} .. {}", self.valid_from, self.valid_to);
        println!("picture:     {}", self.picture);
        for subject in &self.cert_list {
            println!("certList:    {subject}");
        }
        println!("maker:       {}", self.maker);
        println!("maker signature: {}", if self.maker_signature_ok { "correct" } else { "WRONG" });
    }
}

fn subject_of(cert_der: &[u8]) -> String {
    match Certificate::from_der(cert_der) {
        Ok(cert) => subject_label(&cert),
        Err(_) => "(not a DER certificate)".to_string(),
    }
}

/// Runs `elicence seal show`: exit 0 when the seal reads and its maker signature is correct.
pub fn run(args: &ShowArgs) -> anyhow::Result<i32> {
    let seal = Seal::read(&args.file)?;
    let summary = SealSummary::of(args.file.clone(), &seal);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        summary.print();
    }
    Ok(if summary.maker_signature_ok { exit::OK } else { exit::FAILURE })
}

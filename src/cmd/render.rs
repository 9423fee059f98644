//! `elicence render`: the preview a data team looks at before a real run. Validates an export and
//! writes a signed PDF and a signed XML e-licence (and with `--formats …,ofd` an OFD sealed with
//! the issuer's seal) for every valid row into a folder, named by identifier. Versions are numbered within the input (a licence's first row 001, its next
//! change 002, …) until the registry decides them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;

use crate::clock::now;
use crate::engine::Dedupe;
use crate::engine::{self, Outcome, RowSink};
use crate::exit;
use crate::identify::LicenceId;
use crate::keyset::{IssuerRequest, load_identities};
use crate::licence::Licence;
use crate::pipeline::{self, LevelNeedsTsa, PadesLevel};
use crate::produce::{Formats, LongTerm, ProduceError, Producer, StartedLicence};
use crate::registry::Registry;
use crate::report::Counts;
use crate::sign::{check_production_key, passphrase_from_env_or_file};
use crate::timestamp;

use super::args::{PublicUrlArgs, RegistryArgs, TsaArgs};

/// Licences rendered per parallel batch.
const BATCH: usize = 256;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    elicence keys init keys/\n  \
    elicence render pipelines/food-business-permit.toml --input fixtures/food-business-permit/export-utf8.csv --keys keys/ --out preview/\n  \
    elicence verify preview/*.pdf preview/*.xml --keys keys/")]
pub struct RenderArgs {
    /// Pipeline file (pipelines/*.toml).
    pub pipeline: PathBuf,
    /// Export to read.
    #[arg(long)]
    pub input: PathBuf,
    /// Key set: each issuer's identity in issuers/<USCC>/ (see `elicence keys init --pipeline`;
    /// a production registry at --data/--registry refuses development keys).
    #[arg(long, env = "ELICENCE_KEYS")]
    pub keys: PathBuf,
    /// File with the key's passphrase (else ELICENCE_KEY_PASSPHRASE, if the key is encrypted).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Folder for the signed <identifier>.pdf and <identifier>.xml files.
    #[arg(long)]
    pub out: PathBuf,
    /// Render at most N licences.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub tsa: TsaArgs,
    #[command(flatten)]
    pub public_url: PublicUrlArgs,
    /// PAdES level of the PDF signatures: b-b (default without a TSA), b-t (default with
    /// one), b-lt (adds a /DSS with the chains and CRLs), b-lta (and a document timestamp).
    /// b-t and above need --tsa. Default: the pipeline's [output] pades_level.
    #[arg(long, value_name = "LEVEL")]
    pub pades_level: Option<PadesLevel>,
    /// The registry whose production mark applies (nothing is loaded into it; a registry that
    /// does not exist is not created).
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Formats to write: any of pdf, xml, ofd (OFD needs each issuer's SM2 signer and seal
    /// in --keys: issuers/<USCC>/sm2-signer.key, .pem, seals/<USCC>.esl). Default: the
    /// pipeline's [output] formats, else pdf,xml.
    #[arg(long, value_name = "LIST")]
    pub formats: Option<Formats>,
}

pub fn run(args: &RenderArgs) -> anyhow::Result<i32> {
    let plan = pipeline::load(&args.pipeline)?;
    let formats = args.formats.unwrap_or(plan.formats);
    let at = now()?;
    let passphrase = passphrase_from_env_or_file(args.passphrase_file.as_deref())?;
    let identities = load_identities(
        &args.keys,
        passphrase.as_ref(),
        at,
        &IssuerRequest::of_plan(&plan),
        formats.ofd,
    )?;
    let production =
        Registry::is_production_at(&args.registry.data, args.registry.registry.as_deref())?;
    for signer in identities.signers() {
        check_production_key(production, Some(args.keys.as_path()), Some(signer))?;
    }
    let tsa_url = args.tsa.tsa.as_deref().or(plan.tsa.as_deref());
    let level = PadesLevel::resolve(args.pades_level.or(plan.pades_level), tsa_url.is_some());
    if level.needs_tsa() && tsa_url.is_none() {
        return Err(LevelNeedsTsa { level }.into());
    }
    let tsa = tsa_url.map(timestamp::connect).transpose()?;
    // A TSA that pipelines needs no thread waiting on it (see `RenderSink::flush`).
    let waits_for_tsa = tsa.as_ref().is_some_and(|tsa| !tsa.pipelines());
    let public_url = args.public_url.public_url.as_deref().or(plan.public_url.as_deref());
    let public_url = public_url.map(crate::render::check_public_url).transpose()?;
    let long_term = match (&tsa, level >= PadesLevel::BLt) {
        (Some(tsa), true) => {
            Some(LongTerm::gather(level, &identities, tsa.clone(), &[args.keys.as_path()], at)?)
        }
        _ => None,
    };
    let producer = Producer::new(&[plan.layout_path.as_path()], identities, at)?
        .with_tsa(tsa)
        .with_public_url(public_url)
        .with_long_term(long_term);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    let production = engine::production_pool(args.jobs, waits_for_tsa)?;

    let mut sink = RenderSink {
        pool: production.as_ref().unwrap_or(&pool),
        producer: &producer,
        out: &args.out,
        formats,
        limit: args.limit.unwrap_or(usize::MAX),
        pending: Vec::with_capacity(BATCH),
        started: Vec::new(),
        versions: HashMap::new(),
        rendered: 0,
        failed: 0,
    };
    let mut dedupe = Dedupe::default();
    let today = at.date_naive();
    let summary = engine::validate_input(&plan, &args.input, today, &pool, &mut dedupe, &mut sink)?;
    sink.flush()?;
    sink.write_started()?;
    let c: Counts = summary.counts;
    eprintln!(
        "read {}: valid {}, rejected {}, duplicates {}; rendered and signed {} licence(s) into {}{}",
        c.read,
        c.valid,
        c.rejected,
        c.duplicates,
        sink.rendered,
        args.out.display(),
        if sink.failed > 0 {
            format!("; {} could not be rendered (see above)", sink.failed)
        } else {
            String::new()
        }
    );
    Ok(if sink.failed > 0 { exit::FAILURE } else { exit::OK })
}

struct RenderSink<'a> {
    /// Renders on the command's threads (the sink itself runs outside the pool).
    pool: &'a rayon::ThreadPool,
    producer: &'a Producer,
    out: &'a Path,
    formats: Formats,
    limit: usize,
    pending: Vec<(Licence, u16)>,
    /// The batch signed last, its timestamps asked for: its files are written once the next
    /// batch is signed, so that the TSA answers its last requests meanwhile.
    started: Vec<(Licence, Result<StartedLicence<'a>, ProduceError>)>,
    /// Rows seen per natural key (type, issuer, printed number): the next row's version.
    versions: HashMap<(String, String), u16>,
    rendered: usize,
    failed: usize,
}

impl<'a> RenderSink<'a> {
    /// Signs the pending batch with its timestamps asked for, then writes the batch signed
    /// before it (as a run does: a pipelining TSA answers meanwhile).
    fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.pending);
        let producer = self.producer;
        let started = self.pool.install(|| {
            batch
                .into_par_iter()
                .map(|(licence, version)| {
                    let started = LicenceId::for_printed_number(
                        &licence.type_code,
                        &licence.issuer_code,
                        &licence.printed_no,
                        version,
                    )
                    .map_err(ProduceError::from)
                    .and_then(|id| producer.start(&licence, &id));
                    (licence, started)
                })
                .collect()
        });
        self.write_started()?;
        self.started = started;
        Ok(())
    }

    /// Rows taken towards `--limit`: written, failed, signed and waiting, pending.
    fn taken(&self) -> usize {
        self.rendered + self.failed + self.started.len() + self.pending.len()
    }

    /// Puts the tokens into the batch signed last and writes its files.
    fn write_started(&mut self) -> anyhow::Result<()> {
        let started = std::mem::take(&mut self.started);
        let results: Vec<_> = self.pool.install(|| {
            started
                .into_par_iter()
                .map(|(licence, started)| (licence, started.and_then(StartedLicence::finish)))
                .collect()
        });
        for (licence, result) in results {
            match result {
                Ok(a) => {
                    let name = a.id.to_string();
                    let files = [
                        ("pdf", self.formats.pdf.then_some(a.pdf.as_slice())),
                        ("xml", self.formats.xml.then_some(a.xml.as_bytes())),
                        ("ofd", a.ofd.as_deref()),
                    ];
                    for (ext, bytes) in files.into_iter().filter_map(|(e, b)| Some((e, b?))) {
                        let path = self.out.join(format!("{name}.{ext}"));
                        std::fs::write(&path, bytes)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                    self.rendered += 1;
                }
                Err(e) => {
                    eprintln!("{}: {}: {e}", licence.pos, licence.printed_no);
                    self.failed += 1;
                }
            }
        }
        Ok(())
    }
}

impl RowSink for RenderSink<'_> {
    fn headers(&mut self, _: &[String]) -> anyhow::Result<()> {
        Ok(())
    }

    fn row(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        if let Outcome::Valid(row) = outcome {
            if self.taken() >= self.limit {
                return Ok(());
            }
            let l = row.licence;
            let v = self.versions.entry((l.issuer_code.clone(), l.printed_no.clone())).or_insert(0);
            *v += 1;
            let version = *v;
            self.pending.push((l, version));
            if self.pending.len() == BATCH {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.taken() >= self.limit
    }
}

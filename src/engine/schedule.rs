//! The chunk scheduler of a run: valid rows are gathered into chunks; each chunk is decided
//! against the registry in input order (new, unchanged, change, revoke), its new versions are
//! rendered and signed on all cores with their timestamps asked for, and once the next chunk
//! has been started the same way, its tokens are put in and it goes to the loader thread,
//! which commits it in one transaction while the chunks after it are produced. A row that
//! touches a licence (or, for single-instance types, a holder) of a chunk still in flight
//! waits, so that every decision sees the registry as the earlier rows left it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;

use crate::licence::Licence;
use crate::pipeline::Plan;
use crate::produce::{Artefacts, ProduceError, Producer, StartedLicence};
use crate::progress::{Interrupt, Progress};
use crate::registry::{
    Decision, DecisionInput, LoadItem, NaturalKey, PaperRevocation, Registry, RejectRecord,
    RunCounts,
};
use crate::report::{RowFiles, StageTimes};
use crate::seal::ofd::OfdSealError;
use crate::sign::SignError;
use crate::timestamp::TsaError;
use crate::validate::{Problem, RowReject, Rule, ValidRow};

use super::loader::{ChunkOutcome, DecidedChunk, Loader};
use super::shard::Shard;
use super::stream::{Outcome, RowSink};

/// Valid rows decided, rendered and committed together (one transaction).
pub(super) const CHUNK: usize = 256;

/// Decides, renders and signs valid rows chunk by chunk and hands them to the loader thread;
/// writes and records rejects; keeps the counts as chunks come back committed.
pub(super) struct ChunkScheduler<'a, 'scope> {
    /// Renders and signs on the run's threads (the sink itself runs outside the pool).
    pub(super) pool: &'a rayon::ThreadPool,
    pub(super) plan: &'a Plan,
    pub(super) producer: &'a Producer,
    /// This thread's connection: decisions only (the loader commits on its own).
    pub(super) registry: &'a Registry,
    pub(super) loader: Loader<'scope>,
    /// Natural keys and holders of each chunk in flight (started or with the loader), oldest
    /// first.
    pub(super) in_flight: VecDeque<(HashSet<NaturalKey>, HashSet<String>)>,
    /// The newest chunk: signed, its timestamps asked for, not yet finished. It is finished
    /// (its tokens put in) once the next chunk is started, so that the TSA answers its last
    /// requests while the cores sign the next chunk instead of waiting for them.
    pub(super) started: Option<StartedChunk<'a>>,
    pub(super) files: Option<RowFiles>,
    pub(super) pending: Vec<ValidRow>,
    pub(super) rejects: Vec<RejectRecord>,
    pub(super) counts: RunCounts,
    pub(super) by_rule: BTreeMap<String, u64>,
    /// Folder of the current input: archive-copy paths are relative to it.
    pub(super) input_dir: PathBuf,
    pub(super) progress: Progress,
    pub(super) interrupt: Interrupt,
    /// Busy time of the decide, render-and-sign and load stages.
    pub(super) stages: StageTimes,
    /// `--shard K/N`: rows of other shards are only counted.
    pub(super) shard: Option<Shard>,
    /// Stage rows for review: render unsigned previews, sign nothing, record pending items
    /// (decided as if the pending items before them were issued).
    pub(super) review: bool,
}

/// What the scheduler leaves behind when the inputs are done (or the run stopped).
pub(super) struct ScheduledTotals {
    pub(super) result: anyhow::Result<()>,
    pub(super) interrupted: Option<crate::progress::StopSignal>,
    pub(super) counts: RunCounts,
    pub(super) by_rule: BTreeMap<String, u64>,
    pub(super) files: Option<RowFiles>,
    pub(super) stages: StageTimes,
}

/// Attempts at deciding one chunk when other processes keep changing the same licences.
const MAX_ATTEMPTS: u32 = 5;

impl<'a> ChunkScheduler<'a, '_> {
    fn reject(&mut self, r: &RowReject) -> anyhow::Result<()> {
        self.counts.rejected += 1;
        if let Some(p) = r.primary() {
            *self.by_rule.entry(p.rule.as_str().to_string()).or_default() += 1;
        }
        if let Some(f) = self.files.as_mut() {
            f.reject(r)?;
        }
        self.rejects.push(RejectRecord {
            file: r.pos.file.to_string(),
            sheet: r.pos.sheet.as_deref().map(str::to_string),
            line: r.pos.row,
            field: r.primary().map(|p| p.field.clone()).unwrap_or_default(),
            rule: r.primary().map(|p| p.rule.as_str().to_string()).unwrap_or_default(),
            message: r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "),
        });
        Ok(())
    }

    fn decision_input(&self, row: &ValidRow) -> DecisionInput {
        decision_input(self.plan, row)
    }

    /// Hands the pending rows (and the rejects so far) to the load stage.
    fn flush(&mut self) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.pending);
        let rejects = std::mem::take(&mut self.rejects);
        if rows.is_empty() && rejects.is_empty() {
            return Ok(());
        }
        self.submit(rows, rejects, 1)
    }

    /// Submits every pending row, including rows held back behind chunks in flight (at the
    /// end of an input: archive-copy paths are relative to it).
    pub(super) fn drain_pending(&mut self) -> anyhow::Result<()> {
        while !self.pending.is_empty() || !self.rejects.is_empty() {
            self.flush()?;
        }
        Ok(())
    }

    /// Submits every pending row, then waits until every chunk is committed.
    pub(super) fn finish(&mut self) -> anyhow::Result<()> {
        self.drain_pending()?;
        while self.collect(true)? {}
        Ok(())
    }

    /// Finishes the started chunk (if any) and hands it to the loader. When it cannot be
    /// finished (the TSA failed), nothing of it is loaded and it is no longer in flight.
    fn send_started(&mut self) -> anyhow::Result<()> {
        let Some(started) = self.started.take() else {
            return Ok(());
        };
        let sent = self.finish_chunk(started).and_then(|chunk| self.loader.send(chunk));
        if sent.is_err() {
            // It was the newest chunk in flight.
            self.in_flight.pop_back();
        }
        sent
    }

    /// Splits `rows` into those that can be decided now and those that touch a licence (or,
    /// for single-instance types, a holder) of a chunk still in flight: those wait, and so do
    /// later rows of the same licence or holder, so that each licence's rows keep their order.
    fn hold_back(&self, rows: Vec<ValidRow>) -> (Vec<ValidRow>, Vec<ValidRow>) {
        if self.in_flight.is_empty() {
            return (rows, Vec::new());
        }
        let single = self.plan.licence_type.single_instance;
        let mut held_keys: HashSet<NaturalKey> = HashSet::new();
        let mut held_holders: HashSet<String> = HashSet::new();
        let (mut ready, mut held) = (Vec::with_capacity(rows.len()), Vec::new());
        for row in rows {
            let l = &row.licence;
            let key = NaturalKey::of(l);
            let holder = single.then_some(l.holder_code.as_str());
            let busy = held_keys.contains(&key)
                || holder.is_some_and(|h| held_holders.contains(h))
                || self.in_flight.iter().any(|(k, h)| {
                    k.contains(&key) || holder.is_some_and(|holder| h.contains(holder))
                });
            if busy {
                held_keys.insert(key);
                if let Some(h) = holder {
                    held_holders.insert(h.to_string());
                }
                held.push(row);
            } else {
                ready.push(row);
            }
        }
        (ready, held)
    }

    /// Decides, renders and signs `rows` and queues them for the loader. Rows that touch a
    /// chunk still in flight go back to the pending rows (see [`ChunkScheduler::hold_back`]), so that
    /// every decision sees the registry as the earlier rows left it while the loader commits.
    fn submit(
        &mut self,
        rows: Vec<ValidRow>,
        rejects: Vec<RejectRecord>,
        attempt: u32,
    ) -> anyhow::Result<()> {
        while self.collect(false)? {}
        let mut rows = rows;
        loop {
            let (ready, held) = self.hold_back(rows);
            if ready.is_empty() && !held.is_empty() {
                // Everything waits for the oldest chunk in flight.
                self.collect(true)?;
                rows = held;
                continue;
            }
            if !held.is_empty() {
                let later = std::mem::replace(&mut self.pending, held);
                self.pending.extend(later);
            }
            rows = ready;
            break;
        }
        if rows.is_empty() && rejects.is_empty() {
            return Ok(());
        }
        let inputs: Vec<DecisionInput> = rows.iter().map(|r| self.decision_input(r)).collect();
        let keys: HashSet<NaturalKey> = inputs.iter().map(|i| i.key.clone()).collect();
        let holders: HashSet<String> =
            inputs.iter().filter(|i| i.single_instance).map(|i| i.holder_code.clone()).collect();
        let chunk = self.start_chunk(rows, inputs, rejects, attempt)?;
        // The previous chunk's tokens came back while this one was signed.
        self.send_started()?;
        self.in_flight.push_back((keys, holders));
        self.started = Some(chunk);
        Ok(())
    }

    /// Takes one finished chunk from the loader (waiting for it when `wait`, after handing it
    /// the started chunk). False when there was none.
    fn collect(&mut self, wait: bool) -> anyhow::Result<bool> {
        if wait {
            self.send_started()?;
        }
        let Some(outcome) = self.loader.next(wait)? else {
            return Ok(false);
        };
        self.in_flight.pop_front();
        match outcome {
            ChunkOutcome::Committed { chunk, results, seconds, cpu_seconds } => {
                self.stages.load_s += seconds;
                self.stages.load_cpu_s += cpu_seconds;
                for r in &results {
                    self.counts.tally(r);
                }
                self.progress.chunk(chunk.signed, results.len() as u64);
                for r in &chunk.late {
                    self.reject(r)?;
                }
                // The accepted rows of the chunk, in input order, once committed.
                if let Some(f) = self.files.as_mut() {
                    for &i in &chunk.accepted {
                        if let Some(row) = chunk.rows.get(i) {
                            f.valid(row)?;
                        }
                    }
                }
            }
            ChunkOutcome::Stale { chunk } => {
                if chunk.attempt >= MAX_ATTEMPTS {
                    anyhow::bail!("the registry kept changing under this run; try again");
                }
                // Decide again once everything before it is committed.
                while self.collect(true)? {}
                self.submit(chunk.rows, Vec::new(), chunk.attempt + 1)?;
            }
            ChunkOutcome::Failed(e) => return Err(e),
        }
        Ok(true)
    }

    /// Decides `rows` against the registry, renders and signs the new versions on all cores
    /// with their timestamps asked for, and reads archive copies; [`Self::finish_chunk`] puts
    /// the tokens in.
    fn start_chunk(
        &mut self,
        rows: Vec<ValidRow>,
        inputs: Vec<DecisionInput>,
        rejects: Vec<RejectRecord>,
        attempt: u32,
    ) -> anyhow::Result<StartedChunk<'a>> {
        let started = Instant::now();
        let decisions = if self.review {
            self.registry.decide_staged(&inputs)?
        } else {
            self.registry.decide_many(&inputs)?
        };
        self.stages.decide_s += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let producer = self.producer;
        let input_dir = &self.input_dir;
        let review = self.review;
        let signing: Vec<RowStarted<'a>> = self.pool.install(|| {
            rows.par_iter()
                .zip(decisions.par_iter())
                .map(|(row, decision)| start_row(producer, input_dir, row, decision, review))
                .collect()
        });
        self.stages.render_sign_s += started.elapsed().as_secs_f64();
        Ok(StartedChunk { rows, inputs, decisions, signing, rejects, attempt })
    }

    /// Waits for a started chunk's timestamps (a pipelining TSA answered them meanwhile, so
    /// no thread waits on it per licence) and builds the chunk for the loader.
    fn finish_chunk(&mut self, started_chunk: StartedChunk<'a>) -> anyhow::Result<DecidedChunk> {
        let StartedChunk { rows, inputs, decisions, signing, rejects, attempt } = started_chunk;
        let started = Instant::now();
        let produced: Vec<RowArtefacts> =
            self.pool.install(|| signing.into_par_iter().map(RowStarted::finish).collect());
        self.stages.render_sign_s += started.elapsed().as_secs_f64();
        let mut chunk = DecidedChunk {
            items: Vec::with_capacity(rows.len()),
            rejects,
            rows: Vec::new(),
            accepted: Vec::with_capacity(rows.len()),
            late: Vec::new(),
            signed: 0,
            attempt,
            review: self.review,
            licences: Vec::new(),
        };
        for (i, ((row, input), (decision, produced))) in
            rows.iter().zip(inputs).zip(decisions.into_iter().zip(produced)).enumerate()
        {
            if let Decision::Refused(refusal) = &decision {
                let rule = match refusal.rule() {
                    "single_instance" => Rule::SingleInstance,
                    "change_after_revoke" => Rule::ChangeAfterRevoke,
                    _ => Rule::Identifier,
                };
                chunk.late.push(late_reject(row, rule, refusal.to_string()));
                continue;
            }
            let (files, archive) = match produced {
                RowArtefacts::Refused(rule, message) => {
                    chunk.late.push(late_reject(row, rule, message));
                    continue;
                }
                RowArtefacts::Ready(files, archive) => (files, archive),
                RowArtefacts::Outage(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "{}: no timestamp, so nothing of this chunk was loaded; run the same \
                         command again once the TSA answers",
                        row.licence.pos
                    )));
                }
            };
            let l = &row.licence;
            let (pdf, xml, ofd) = match files {
                Some((p, x, o)) => {
                    chunk.signed += 1;
                    (Some(p), Some(x), o)
                }
                None => (None, None, None),
            };
            chunk.accepted.push(i);
            if self.review {
                chunk.licences.push(l.to_json());
            }
            chunk.items.push(LoadItem {
                input,
                decision,
                holder_name: l.holder_name.clone(),
                issue_date: l.issue_date,
                valid_to: l.valid_to,
                fields_json: fields_json(l),
                pdf,
                xml,
                ofd,
                archive_image: archive,
                source: l.pos.to_string(),
                revocation: row
                    .revoked_on
                    .map(|on| PaperRevocation { on, reason: row.revoked_reason.clone() }),
            });
        }
        chunk.rows = rows;
        Ok(chunk)
    }
}

/// The face fields of a licence as a JSON object (key → display value), as the registry keeps
/// them for queries.
pub(super) fn fields_json(l: &Licence) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = l
        .fields
        .iter()
        .map(|f| (f.key.to_string(), serde_json::Value::String(f.value.clone())))
        .collect();
    serde_json::Value::Object(fields).to_string()
}

/// Threads that render and sign per core when every signature waits for a TSA that does not
/// pipeline (see [`crate::timestamp::Tsa::pipelines`]): the round trip then overlaps other
/// licences' rendering instead of holding a core idle.
const THREADS_PER_CORE_WITH_TSA: usize = 8;

/// A pool of its own for rendering and signing when each signature waits for a TSA
/// (`waits_for_tsa`): [`THREADS_PER_CORE_WITH_TSA`] threads per core of `jobs` (all cores when
/// `None`), since most of them wait on the network while the others render (CPU work still
/// runs on the cores there are). `None` otherwise: the run's pool renders, as it validates.
pub fn production_pool(
    jobs: Option<usize>,
    waits_for_tsa: bool,
) -> Result<Option<rayon::ThreadPool>, rayon::ThreadPoolBuildError> {
    if !waits_for_tsa {
        return Ok(None);
    }
    let cores = jobs.filter(|&n| n > 0).unwrap_or_else(rayon::current_num_threads);
    let threads = cores * THREADS_PER_CORE_WITH_TSA;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().map(Some)
}

/// Renders and signs one row's new version (if the decision makes one), asking for its
/// timestamps, and reads its archive copy (if it has one); [`RowStarted::finish`] collects
/// the timestamps.
///
/// For review (`review`), only an unsigned preview PDF is rendered (as the `pdf`; nothing is
/// signed); the signed files come when a reviewer approves.
fn start_row<'p>(
    producer: &'p Producer,
    input_dir: &Path,
    row: &ValidRow,
    decision: &Decision,
    review: bool,
) -> RowStarted<'p> {
    let version = match decision.new_version() {
        Some(identifier) if review => match producer.preview(&row.licence, identifier) {
            Ok(pdf) => NewVersion::Preview(Artefacts {
                id: identifier.clone(),
                pdf,
                xml: String::new(),
                ofd: None,
            }),
            Err(e) => return RowStarted::Done(RowArtefacts::Refused(Rule::Render, e.to_string())),
        },
        Some(identifier) => match producer.start(&row.licence, identifier) {
            Ok(started) => NewVersion::Signing(Box::new(started)),
            Err(e) => return RowStarted::Done(not_produced(e)),
        },
        None => NewVersion::None,
    };
    let archive = match &row.archive_copy {
        Some(path) => match read_archive_copy(&input_dir.join(path)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let refusal = RowArtefacts::Refused(Rule::ArchiveCopy, format!("{path}: {e}"));
                return RowStarted::Done(refusal);
            }
        },
        None => None,
    };
    RowStarted::Producing(version, archive)
}

/// A chunk decided and signed, its timestamps asked for ([`ChunkScheduler::start_chunk`]).
pub(super) struct StartedChunk<'p> {
    rows: Vec<ValidRow>,
    inputs: Vec<DecisionInput>,
    decisions: Vec<Decision>,
    /// One per row of `rows`.
    signing: Vec<RowStarted<'p>>,
    rejects: Vec<RejectRecord>,
    attempt: u32,
}

/// A row between [`start_row`] and [`RowStarted::finish`].
enum RowStarted<'p> {
    Producing(NewVersion<'p>, Option<Vec<u8>>),
    Done(RowArtefacts),
}

enum NewVersion<'p> {
    None,
    Preview(Artefacts),
    Signing(Box<StartedLicence<'p>>),
}

impl RowStarted<'_> {
    /// Waits for the row's timestamps and gives its files.
    fn finish(self) -> RowArtefacts {
        let (version, archive) = match self {
            RowStarted::Done(done) => return done,
            RowStarted::Producing(version, archive) => (version, archive),
        };
        let artefacts = match version {
            NewVersion::None => None,
            NewVersion::Preview(artefacts) => Some(artefacts),
            NewVersion::Signing(started) => match started.finish() {
                Ok(artefacts) => Some(artefacts),
                Err(e) => return not_produced(e),
            },
        };
        RowArtefacts::Ready(artefacts.map(|a| (a.pdf, a.xml.into_bytes(), a.ofd)), archive)
    }
}

/// Why a new version was not produced: the row's own fault, or the TSA's (then the run stops
/// before this chunk is loaded).
fn not_produced(e: ProduceError) -> RowArtefacts {
    match e {
        ProduceError::Sign(SignError::Timestamp(e))
        | ProduceError::OfdSeal(OfdSealError::Sign(SignError::Timestamp(e))) => {
            RowArtefacts::Outage(e)
        }
        e => RowArtefacts::Refused(Rule::Render, e.to_string()),
    }
}

/// What the registry decides a valid row from.
pub(super) fn decision_input(plan: &Plan, row: &ValidRow) -> DecisionInput {
    let l = &row.licence;
    DecisionInput {
        key: NaturalKey::of(l),
        content_hash: row.content_key,
        status: l.status,
        holder_code: l.holder_code.clone(),
        single_instance: plan.licence_type.single_instance,
    }
}

/// A valid row refused at a later stage becomes a reject with its position.
pub(super) fn late_reject(row: &ValidRow, rule: Rule, message: String) -> RowReject {
    RowReject {
        pos: row.licence.pos.clone(),
        problems: vec![Problem::new("", rule, message)],
        cells: row.licence.fields.iter().map(|f| f.value.clone()).collect(),
    }
}

/// A new version's signed PDF, XML and (when the run writes OFD) sealed OFD.
type SignedFiles = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

enum RowArtefacts {
    /// The signed files of a new version, and the archive copy.
    Ready(Option<SignedFiles>, Option<Vec<u8>>),
    Refused(Rule, String),
    /// A service the run depends on failed (the TSA): stop, load nothing of the chunk.
    Outage(TsaError),
}

/// Largest scanned archive copy accepted (a scan of one page).
const MAX_ARCHIVE_BYTES: u64 = 32 * 1024 * 1024;

/// Reads a scanned image of the paper licence and checks that it decodes as an image. It is
/// stored as the archive copy (存档副本), never as the e-licence.
fn read_archive_copy(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size =
        std::fs::metadata(path).with_context(|| "cannot read the archive copy".to_string())?.len();
    if size > MAX_ARCHIVE_BYTES {
        anyhow::bail!("archive copy is {size} bytes, at most {MAX_ARCHIVE_BYTES}");
    }
    let bytes = std::fs::read(path)?;
    image::load_from_memory(&bytes).map_err(|e| anyhow::anyhow!("not a readable image: {e}"))?;
    Ok(bytes)
}

impl RowSink for ChunkScheduler<'_, '_> {
    fn headers(&mut self, headers: &[String]) -> anyhow::Result<()> {
        if let Some(f) = self.files.as_mut() {
            f.set_source_headers(headers)?;
        }
        Ok(())
    }

    fn row(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        self.counts.read += 1;
        if self.shard.is_some_and(|s| !s.owns(&outcome)) {
            self.counts.other_shard += 1;
            return Ok(());
        }
        self.progress.row(matches!(outcome, Outcome::Valid(_)));
        match outcome {
            Outcome::Valid(row) => {
                self.pending.push(*row);
                if self.pending.len() == CHUNK {
                    self.flush()?;
                }
            }
            Outcome::Duplicate { pos, first } => {
                self.counts.duplicates += 1;
                if let Some(f) = self.files.as_mut() {
                    f.duplicate(&pos, &first)?;
                }
            }
            Outcome::Rejected(r) => self.reject(&r)?,
        }
        Ok(())
    }

    /// SIGINT or SIGTERM: stop reading; the pending chunk is committed, then the run ends as
    /// interrupted.
    fn done(&self) -> bool {
        self.interrupt.is_set()
    }

    fn read_fraction(&mut self, fraction: f64) {
        self.progress.read_fraction(fraction);
    }
}

//! Progress of a long run: indicatif bars per stage (read and validated, rendered and signed,
//! settled; with rates and an ETA) when stderr is a terminal, a plain log line every 10 s
//! otherwise, nothing with `--quiet`.
//! Also the stop flag: a run interrupted by SIGINT (Ctrl-C) or SIGTERM stops at the next chunk
//! boundary.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, log lines otherwise.
    #[default]
    Auto,
    /// Bars even when stderr is not a terminal.
    Always,
    /// Log lines only.
    Never,
}

/// Default interval between plain progress lines.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The ETA uses the rate over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(60);
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

enum Display {
    Quiet,
    Bars { _multi: MultiProgress, read: ProgressBar, signed: ProgressBar, loaded: ProgressBar },
    Lines { last: Instant, every: Duration },
}

/// Counts per stage and how they are shown.
///
/// The ETA comes from how much of the input bytes (CSV) or sheet rows (workbooks) the reader
/// has consumed: rows read ÷ that fraction estimates the rows in all inputs, and a row is
/// settled once it is rejected, a duplicate, or committed to the registry. The rate of settled
/// rows over the last minute gives the time left.
pub struct Progress {
    display: Display,
    started: Instant,
    read: u64,
    valid: u64,
    signed: u64,
    loaded: u64,
    /// Sizes in bytes of all inputs, of those finished, and of the one being read.
    total_bytes: u64,
    bytes_before: u64,
    current_bytes: u64,
    /// How much of the current input was read (0.0 to 1.0), if its format can tell, and the
    /// rows read by then.
    fraction: Option<(f64, u64)>,
    /// (time, settled rows), oldest first, for the recent rate.
    samples: VecDeque<(Instant, u64)>,
}

impl Progress {
    /// `total_bytes`: the sizes of all inputs of the run, for the ETA.
    pub fn new(mode: ProgressMode, quiet: bool, total_bytes: u64) -> Progress {
        let bars = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let display = if quiet {
            Display::Quiet
        } else if bars {
            // `always` must draw into a file or pipe too: indicatif's stderr target hides
            // itself when stderr is not a terminal, a `TermLike` target never does.
            let target = if mode == ProgressMode::Always {
                ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 4)
            } else {
                ProgressDrawTarget::stderr_with_hz(4)
            };
            let multi = MultiProgress::with_draw_target(target);
            let counted = ProgressStyle::with_template(
                "{prefix:>18} {wide_bar} {human_pos:>10}/~{human_len} {msg} ({per_sec}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let spinner = ProgressStyle::with_template(
                "{prefix:>18} {spinner} {human_pos:>10} {msg} ({per_sec}, {elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = |name: &str, style: &ProgressStyle| {
                let b = multi.add(ProgressBar::no_length());
                b.set_style(style.clone());
                b.set_prefix(name.to_string());
                b
            };
            let read = bar("read / validated", &counted);
            let signed = bar("rendered + signed", &spinner);
            let loaded = bar("settled", &counted);
            Display::Bars { _multi: multi, read, signed, loaded }
        } else {
            Display::Lines { last: Instant::now(), every: LOG_EVERY }
        };
        Progress {
            display,
            started: Instant::now(),
            read: 0,
            valid: 0,
            signed: 0,
            loaded: 0,
            total_bytes,
            bytes_before: 0,
            current_bytes: 0,
            fraction: None,
            samples: VecDeque::new(),
        }
    }

    /// Plain progress lines every `every` (default 10 s).
    pub fn log_every(mut self, every: Duration) -> Progress {
        if let Display::Lines { every: e, .. } = &mut self.display {
            *e = every;
        }
        self
    }

    /// The next input (of `bytes` bytes) starts.
    pub fn begin_input(&mut self, bytes: u64) {
        self.bytes_before += self.current_bytes;
        self.current_bytes = bytes;
        self.fraction = None;
    }

    /// How much of the current input was read, 0.0 to 1.0.
    pub fn read_fraction(&mut self, fraction: f64) {
        self.fraction = Some((fraction.clamp(0.0, 1.0), self.read));
        self.update();
    }

    /// One row read (and validated or rejected).
    pub fn row(&mut self, valid: bool) {
        self.read += 1;
        self.valid += u64::from(valid);
        if let Display::Bars { read, .. } = &self.display {
            read.set_position(self.read);
        }
        if self.read.is_multiple_of(1024) {
            self.update();
        }
    }

    /// Licences rendered and signed, and rows committed to the registry.
    pub fn chunk(&mut self, signed: u64, loaded: u64) {
        self.signed += signed;
        self.loaded += loaded;
        self.update();
    }

    /// Rows read, rejected or duplicate, or committed: valid rows still on their way are not.
    fn settled(&self) -> u64 {
        self.read.saturating_sub(self.valid.saturating_sub(self.loaded))
    }

    /// Estimated rows in all inputs, once a little of the input has been read.
    fn estimated_rows(&self) -> Option<u64> {
        let (f, read) = self.fraction?;
        if self.total_bytes == 0 {
            return None;
        }
        let done =
            (self.bytes_before as f64 + f * self.current_bytes as f64) / self.total_bytes as f64;
        (done >= 0.001).then(|| ((read as f64 / done).round() as u64).max(self.read))
    }

    /// Time left at the settled-row rate of the last minute or so (a resumed run settles its
    /// committed rows fast, then signs the rest: the rate since the start would be far off).
    fn eta(&self) -> Option<Duration> {
        self.eta_at(Instant::now())
    }

    fn eta_at(&self, now: Instant) -> Option<Duration> {
        let total = self.estimated_rows()?;
        let settled = self.settled();
        let (since, base) = self.samples.front().copied().unwrap_or((self.started, 0));
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if settled <= base || secs <= 0.0 {
            return None;
        }
        let rate = (settled - base) as f64 / secs;
        let left = total.saturating_sub(settled) as f64 / rate;
        Some(Duration::from_secs_f64(left.min(1e7)))
    }

    /// Keeps one (time, settled rows) sample a second, back to [`RATE_WINDOW`] ago.
    fn sample(&mut self, now: Instant) {
        if self
            .samples
            .back()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) < SAMPLE_EVERY)
        {
            return;
        }
        self.samples.push_back((now, self.settled()));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn update(&mut self) {
        self.sample(Instant::now());
        let (total, settled) = (self.estimated_rows(), self.settled());
        match &mut self.display {
            Display::Quiet => {}
            Display::Bars { read, signed, loaded, .. } => {
                if let Some(total) = total {
                    read.set_length(total);
                    loaded.set_length(total);
                }
                read.set_message(format!("{} valid", self.valid));
                signed.set_position(self.signed);
                loaded.set_position(settled);
            }
            Display::Lines { last, every } => {
                if last.elapsed() < *every {
                    return;
                }
                *last = Instant::now();
                tracing::info!(
                    read = self.read,
                    valid = self.valid,
                    signed = self.signed,
                    loaded = self.loaded,
                    settled = settled,
                    "{}",
                    self.line()
                );
            }
        }
    }

    /// One plain progress line.
    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let of = match self.estimated_rows() {
            Some(total) => format!(" of ~{total}"),
            None => String::new(),
        };
        let eta = match self.eta() {
            Some(left) => format!(", ETA {}", hms(left)),
            None => String::new(),
        };
        format!(
            "progress: read {}{of} ({:.0} rows/s), valid {}, signed {} ({:.0}/s), loaded {}, \
             settled {}{eta}",
            self.read,
            self.read as f64 / secs,
            self.valid,
            self.signed,
            self.signed as f64 / secs,
            self.loaded,
            self.settled(),
        )
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Display::Bars { read, signed, loaded, .. } = &self.display {
            for b in [read, signed, loaded] {
                b.finish();
            }
        }
    }
}

/// `1h02m03s`, `4m05s`, `6s`.
fn hms(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

/// The signal that stopped a run at a chunk boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C at a terminal).
    Interrupt,
    /// SIGTERM (a scheduler stopping the job: Kubernetes, Slurm, systemd, `kill`).
    Terminate,
}

impl StopSignal {
    /// The exit code a shell gives a process killed by the signal (128 + its number): 130 for
    /// SIGINT, 143 for SIGTERM, what schedulers expect of a job that stopped because asked to.
    pub fn exit_code(self) -> i32 {
        match self {
            StopSignal::Interrupt => crate::exit::INTERRUPTED,
            StopSignal::Terminate => crate::exit::TERMINATED,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// Set by SIGINT (Ctrl-C) or SIGTERM: the run stops at the next chunk boundary. Holds the
/// number of the last such signal received (0: none).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    /// Installs handlers for SIGINT and SIGTERM that only record the signal (signal-hook: the
    /// handler stores into an atomic, nothing else); the run polls [`Interrupt::signal`].
    pub fn install() -> Interrupt {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Interrupt::default();
        for signal in [SIGINT, SIGTERM] {
            let number = usize::try_from(signal).unwrap_or_default();
            if let Err(e) = signal_hook::flag::register_usize(signal, flag.0.clone(), number) {
                tracing::warn!(
                    "cannot install the handler of signal {signal} ({e}); an interrupted run \
                     resumes on re-run"
                );
            }
        }
        flag
    }

    pub fn is_set(&self) -> bool {
        self.signal().is_some()
    }

    /// Which signal asked the run to stop, if any.
    pub fn signal(&self) -> Option<StopSignal> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let n = self.0.load(Ordering::SeqCst);
        match i32::try_from(n).ok()? {
            0 => None,
            s if s == SIGTERM => Some(StopSignal::Terminate),
            s if s == SIGINT => Some(StopSignal::Interrupt),
            _ => Some(StopSignal::Interrupt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(total_bytes: u64) -> Progress {
        Progress::new(ProgressMode::Never, true, total_bytes)
    }

    #[test]
    fn estimates_rows_from_the_fraction_read_across_inputs() {
        let mut p = quiet(300);
        assert_eq!(p.estimated_rows(), None, "nothing read yet");
        p.begin_input(100);
        for _ in 0..50 {
            p.row(true);
        }
        p.read_fraction(0.5);
        // 50 rows in half of the first third of the bytes: about 300 rows in all.
        assert_eq!(p.estimated_rows(), Some(300));
        // Rows of the next chunk arrive before its fraction: the estimate does not jump.
        for _ in 0..20 {
            p.row(true);
        }
        assert_eq!(p.estimated_rows(), Some(300));
        p.read_fraction(0.7);
        assert_eq!(p.estimated_rows(), Some(300));
        p.read_fraction(1.0);
        p.begin_input(200);
        for _ in 0..80 {
            p.row(false);
        }
        p.read_fraction(0.5);
        // 150 rows in 200 of 300 bytes.
        assert_eq!(p.estimated_rows(), Some(225));
    }

    #[test]
    fn settled_rows_wait_for_the_load_and_drive_the_eta() {
        let mut p = quiet(100);
        p.begin_input(100);
        for i in 0..100 {
            p.row(i % 10 != 0);
        }
        p.read_fraction(0.5);
        // 90 valid rows, none committed: only the 10 rejects are settled.
        assert_eq!(p.settled(), 10);
        p.chunk(80, 90);
        assert_eq!(p.settled(), 100);
        assert!(p.eta().is_some_and(|left| left <= p.started.elapsed() * 2));
        assert!(p.line().contains("of ~200"), "{}", p.line());
    }

    #[test]
    fn the_eta_follows_the_recent_rate_not_the_rate_since_the_start() {
        let mut p = quiet(1000);
        p.begin_input(1000);
        let t0 = p.started;
        let at = |s: u64| t0 + Duration::from_secs(s);
        // A resumed run: 500 committed rows come back as unchanged within the first second...
        for _ in 0..500 {
            p.row(true);
        }
        p.chunk(0, 500);
        p.read_fraction(0.5);
        p.sample(at(1));
        // ...then 10 new licences a second for two minutes.
        for s in 2..=120 {
            for _ in 0..10 {
                p.row(true);
            }
            p.chunk(10, 10);
            p.sample(at(s));
        }
        // 1,690 rows read and settled of about 2,000.
        p.read_fraction(0.845);
        assert_eq!((p.settled(), p.estimated_rows()), (1690, Some(2000)));
        // At the last minute's 10 rows/s, 310 rows take 31 s (the average since the start,
        // 14 rows/s, would say 22 s).
        let left = p.eta_at(at(120)).unwrap().as_secs_f64();
        assert!((30.0..=32.0).contains(&left), "ETA {left} s");
        assert!(p.samples.len() <= 62, "{} samples kept", p.samples.len());
    }

    #[test]
    fn hms_formats() {
        assert_eq!(hms(Duration::from_secs(6)), "6s");
        assert_eq!(hms(Duration::from_secs(245)), "4m05s");
        assert_eq!(hms(Duration::from_secs(3723)), "1h02m03s");
    }
}

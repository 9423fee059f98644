//! Progress of a long run: indicatif bars per stage (read, validated, signed, loaded; with rates)
//! when stderr is a terminal, periodic plain log lines otherwise, nothing with `--quiet`.
//! Also the Ctrl-C flag: an interrupted run stops at the next chunk boundary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Interval between plain progress lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

enum Display {
    Quiet,
    Bars { _multi: MultiProgress, read: ProgressBar, signed: ProgressBar, loaded: ProgressBar },
    Lines { last: Instant },
}

/// Counts per stage and how they are shown.
pub struct Progress {
    display: Display,
    started: Instant,
    read: u64,
    valid: u64,
    signed: u64,
    loaded: u64,
}

impl Progress {
    pub fn new(mode: ProgressMode, quiet: bool) -> Progress {
        let bars = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let display = if quiet {
            Display::Quiet
        } else if bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "{prefix:>18} {spinner} {human_pos:>10} {msg} ({per_sec}, {elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = |name: &str| {
                let b = multi.add(ProgressBar::no_length());
                b.set_style(style.clone());
                b.set_prefix(name.to_string());
                b
            };
            let read = bar("read / validated");
            let signed = bar("rendered + signed");
            let loaded = bar("loaded");
            Display::Bars { _multi: multi, read, signed, loaded }
        } else {
            Display::Lines { last: Instant::now() }
        };
        Progress { display, started: Instant::now(), read: 0, valid: 0, signed: 0, loaded: 0 }
    }

    /// One row read (and validated or rejected).
    pub fn row(&mut self, valid: bool) {
        self.read += 1;
        self.valid += u64::from(valid);
        if let Display::Bars { read, .. } = &self.display {
            read.set_position(self.read);
            if self.read.is_multiple_of(1024) {
                read.set_message(format!("{} valid", self.valid));
            }
        }
        self.log_line();
    }

    /// Licences rendered and signed, and rows committed to the registry.
    pub fn chunk(&mut self, signed: u64, loaded: u64) {
        self.signed += signed;
        self.loaded += loaded;
        if let Display::Bars { signed: s, loaded: l, read, .. } = &self.display {
            s.set_position(self.signed);
            l.set_position(self.loaded);
            read.set_message(format!("{} valid", self.valid));
        }
        self.log_line();
    }

    fn log_line(&mut self) {
        if let Display::Lines { last } = &mut self.display
            && last.elapsed() >= LOG_EVERY
        {
            *last = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "progress: read {} ({:.0} rows/s), valid {}, signed {}, loaded {}",
                self.read,
                self.read as f64 / secs,
                self.valid,
                self.signed,
                self.loaded
            );
        }
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

/// Set by Ctrl-C (SIGINT/SIGTERM): the run stops at the next chunk boundary.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handler once per process; later calls return a flag that is never set.
    pub fn install() -> Interrupt {
        let flag = Interrupt::default();
        let f = flag.0.clone();
        if ctrlc::set_handler(move || f.store(true, Ordering::SeqCst)).is_err() {
            eprintln!(
                "warning: cannot install the Ctrl-C handler; an interrupted run resumes on re-run"
            );
        }
        flag
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

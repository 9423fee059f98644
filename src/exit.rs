//! The process exit codes, documented in the README. A leaf: library modules name the code an
//! error maps to (e.g. a sharing refusal is [`DENIED`]) without importing the command layer.

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 2;
pub const CONFIG: i32 = 3;
pub const INPUT: i32 = 4;
pub const REJECT_RATE: i32 = 5;
/// A sharing command refused: not authenticated, disabled, or outside the rights.
pub const DENIED: i32 = 6;
/// Interrupted (Ctrl-C, SIGINT) at a chunk boundary; run again to resume. 128 + 2.
pub const INTERRUPTED: i32 = 130;
/// Stopped by SIGTERM (a scheduler's stop: Kubernetes, Slurm, systemd) at a chunk boundary;
/// run again to resume. 128 + 15, what those schedulers expect.
pub const TERMINATED: i32 = 143;

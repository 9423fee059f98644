//! elicence: turns legacy paper-licence exports into signed, registered e-licences.
//!
//! The modules follow the pipeline, one per stage:
//! read → normalise → validate → identify → render → sign → (registry) → report.
//! `engine` drives the stages over bounded chunks; `cmd` holds one file per subcommand.
#![forbid(unsafe_code)]

pub mod archive;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod codes;
pub mod engine;
pub mod exit;
pub mod font;
pub mod r#gen;
pub mod identify;
pub mod keyset;
pub mod licence;
pub mod logs;
pub mod merkle;
pub mod normalise;
pub mod operators;
pub mod pdf;
pub mod pipeline;
pub mod produce;
pub mod progress;
pub mod read;
pub mod record;
pub mod registry;
pub mod render;
pub mod report;
pub mod seal;
pub mod serve;
pub mod share;
pub mod sign;
pub mod timestamp;
pub mod validate;
pub mod verify;
pub mod workdays;

//! Pipeline files (`pipelines/*.toml`): which catalog type an export holds, how to read it, which
//! column feeds which field through which normalisers, what the status words mean, who the
//! issuer is and which face formats a run writes. Two levels: [`spec`] is the raw serde form (no I/O, no checks); [`Plan`] is the
//! checked form, built once before the first record is read, with every problem reported at once.

mod plan;
pub mod spec;

pub use plan::{
    BindProblems, Binding, BoundColumn, ColumnPlan, Formats, IssuerPlan, KnownIssuer,
    LevelNeedsTsa, PadesLevel, PipelineError, Plan, StatusPlan, load,
};

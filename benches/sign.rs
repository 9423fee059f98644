//! Criterion bench (placeholder until the stage lands).
fn main() {}

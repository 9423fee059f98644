//! Validation against the catalog.
pub mod codes;

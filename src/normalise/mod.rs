//! Normalisation of raw cells.
pub mod dates;
pub mod ids;
pub mod width;

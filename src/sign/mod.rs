//! Signing.

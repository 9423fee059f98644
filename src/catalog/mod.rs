//! Catalog of licence types (GB/T 36902).

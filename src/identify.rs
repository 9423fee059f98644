//! GB/T 36904 identifier.

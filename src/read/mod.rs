//! Readers for CSV and workbooks.

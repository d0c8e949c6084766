//! 1. What is out there: objects under a location, their formats and compression, the
//! partition values in their folder names, and the decoders that turn CSV and JSON into Arrow
//! batches under a table's schema, reporting what they cannot read.

pub mod csv;
pub mod files;
pub mod footer;
pub mod format;
pub mod json;
pub mod rejects;
pub mod scan;
pub mod spool;
pub mod text;

//! 6. What Athena would bill.
//!
//! Athena bills bytes scanned at a price per terabyte, rounded up to the next megabyte, with a
//! 10 MB minimum per query. A "terabyte" here is 2^40 bytes and a megabyte 2^20: AWS prices
//! data volumes in binary units (its GB is 1024 MB), and the binary reading is never the lower
//! estimate of the two.

pub mod athena;
pub mod billing;
pub mod estimate;
pub mod footers;
pub mod measure;

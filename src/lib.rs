//! `etl`: a columnar ETL engine for data teams on AWS.
//!
//! The modules follow the pipeline, in the order data flows through it.

pub mod error;
pub mod location;
pub mod source;
pub mod schema;
pub mod catalog;
pub mod transform;

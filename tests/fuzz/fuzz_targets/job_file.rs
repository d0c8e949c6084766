//! Job files: any text is a job or a configuration error, never a panic.
//!
//! The job sits in a folder that does not exist, so relative SQL files are never found and a
//! run of the fuzzer reads nothing from the disk it is run on.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(error) = etl::runs::job::Job::parse(text, Path::new("/nonexistent-etl-fuzz/job.toml")) {
        assert_eq!(error.kind().exit_code(), 2, "a bad job file is a configuration error: {error}");
    }
});

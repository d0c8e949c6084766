//! Schedules: any text is a schedule or an error; a schedule's next fire times are computed
//! without a panic or an endless search, and each is strictly later than the one before.
#![no_main]

use chrono::{DateTime, Utc};
use etl::runs::schedule::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(schedule) = text.parse::<Schedule>() else { return };
    for start in [DateTime::<Utc>::UNIX_EPOCH, "2026-11-29T06:00:00Z".parse().unwrap(), DateTime::<Utc>::MAX_UTC] {
        let mut previous = start;
        for next in schedule.iter_after(start).take(3) {
            assert!(next > previous, "{text}: {next} is not after {previous}");
            previous = next;
        }
    }
});

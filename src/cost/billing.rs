//! Athena's billing rules, as numbers.

use serde::{Deserialize, Serialize};

pub const MEGABYTE: u64 = 1 << 20;
pub const TERABYTE: u64 = 1 << 40;
/// Athena bills at least this much for every query that runs.
pub const MINIMUM_BILLED_BYTES: u64 = 10 * MEGABYTE;
/// US dollars per terabyte scanned in most regions.
pub const DEFAULT_PRICE_PER_TB: f64 = 5.0;

/// What one query scanning `bytes_scanned` is billed for.
pub fn billed_bytes(bytes_scanned: u64) -> u64 {
    bytes_scanned.div_ceil(MEGABYTE).saturating_mul(MEGABYTE).max(MINIMUM_BILLED_BYTES)
}

pub fn usd(billed_bytes: u64, price_per_tb: f64) -> f64 {
    billed_bytes as f64 / TERABYTE as f64 * price_per_tb
}

/// An estimate as reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Estimate {
    pub bytes_scanned: u64,
    pub billed_bytes: u64,
    pub usd: f64,
}

impl Estimate {
    /// The bill of one query scanning `bytes_scanned`.
    pub fn query(bytes_scanned: u64, price_per_tb: f64) -> Self {
        let billed = billed_bytes(bytes_scanned);
        Estimate { bytes_scanned, billed_bytes: billed, usd: usd(billed, price_per_tb) }
    }

    /// The bill of several queries: each is rounded and has its minimum on its own.
    pub fn queries(scans: impl IntoIterator<Item = u64>, price_per_tb: f64) -> Self {
        scans.into_iter().fold(Estimate::default(), |total, bytes| {
            let one = Estimate::query(bytes, price_per_tb);
            Estimate {
                bytes_scanned: total.bytes_scanned + one.bytes_scanned,
                billed_bytes: total.billed_bytes + one.billed_bytes,
                usd: total.usd + one.usd,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_minimum_and_price() {
        assert_eq!(billed_bytes(0), 10 * MEGABYTE);
        assert_eq!(billed_bytes(1), 10 * MEGABYTE);
        assert_eq!(billed_bytes(10 * MEGABYTE), 10 * MEGABYTE);
        assert_eq!(billed_bytes(10 * MEGABYTE + 1), 11 * MEGABYTE);
        assert_eq!(billed_bytes(TERABYTE), TERABYTE);
        assert_eq!(usd(TERABYTE, 5.0), 5.0);
        assert_eq!(usd(10 * MEGABYTE, 5.0), 10.0 * 5.0 / (1u64 << 20) as f64);
        let two = Estimate::queries([1, 11 * MEGABYTE - 1], 5.0);
        assert_eq!(two.billed_bytes, 21 * MEGABYTE);
    }
}

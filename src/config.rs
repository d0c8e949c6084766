//! What the environment configures, in one place: the state folder, the catalog, and every
//! `ETL_*` variable. AWS's own settings (credentials, region, `AWS_ENDPOINT_URL*`) are read by
//! the AWS chain in [`crate::location::aws`], under AWS's names.
//!
//! | Variable | Default | What it sets |
//! |---|---|---|
//! | `ETL_HOME` | `./.etl` | the state folder: embedded catalog, run history, caches, quarantine |
//! | `ETL_CATALOG` | `local` | the catalog: `local` (embedded, under `ETL_HOME`) or `glue` |
//! | `ETL_RETRY_MAX_ATTEMPTS` | 8 | attempts per AWS request ([`crate::location::retry`]) |
//! | `ETL_RETRY_DEADLINE_SECS` | 300 | seconds one AWS operation may take, retries included |
//! | `ETL_ATHENA_WORKGROUP` | | the Athena workgroup of `etl cost --athena` |
//! | `ETL_ATHENA_OUTPUT` | | where Athena writes results for `etl cost --athena` |
//! | `ETL_KILL_POINT` | | crash tests only: where a run stops to be killed ([`crate::kill_points`]) |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const ETL_HOME: &str = "ETL_HOME";
pub const ETL_CATALOG: &str = "ETL_CATALOG";
/// Where queries run: local, or df://HOST:PORT (`--engine`).
pub const ETL_ENGINE: &str = "ETL_ENGINE";
pub const ETL_RETRY_MAX_ATTEMPTS: &str = "ETL_RETRY_MAX_ATTEMPTS";
pub const ETL_RETRY_DEADLINE_SECS: &str = "ETL_RETRY_DEADLINE_SECS";
pub const ETL_ATHENA_WORKGROUP: &str = "ETL_ATHENA_WORKGROUP";
pub const ETL_ATHENA_OUTPUT: &str = "ETL_ATHENA_OUTPUT";
pub const ETL_KILL_POINT: &str = "ETL_KILL_POINT";

/// The state folder: `$ETL_HOME`, or `./.etl`.
pub fn home() -> PathBuf {
    std::env::var_os(ETL_HOME).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".etl"))
}

/// Which catalog records the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogChoice {
    /// The embedded catalog, under `$ETL_HOME`.
    #[default]
    Local,
    /// The AWS Glue Data Catalog of the account and region the AWS chain resolves.
    Glue,
}

impl CatalogChoice {
    /// The choice of a command: its flag (or `ETL_CATALOG`) first, then the job file's, then
    /// the embedded catalog.
    pub fn resolve(flag: Option<CatalogChoice>, job: Option<CatalogChoice>) -> CatalogChoice {
        flag.or(job).unwrap_or_default()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CatalogChoice::Local => "local",
            CatalogChoice::Glue => "glue",
        }
    }
}

impl FromStr for CatalogChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "local" => Ok(CatalogChoice::Local),
            "glue" => Ok(CatalogChoice::Glue),
            other => Err(format!("unknown catalog '{other}' (expected local or glue)")),
        }
    }
}

impl fmt::Display for CatalogChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `512M`, `2G`, `1.5G`, `1048576`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = upper.trim_end_matches("IB").trim_end_matches('B');
    let (number, unit) = match upper.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&upper[..i], &upper[i..]),
        None => (upper, ""),
    };
    let scale: f64 = match unit {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("'{text}' is not a size (like 512M or 2G)")),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("'{text}' is not a size (like 512M or 2G)"))?;
    if value <= 0.0 {
        return Err(format!("'{text}' is not a positive size"));
    }
    Ok((value * scale) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_job_which_wins_over_the_default() {
        use CatalogChoice::*;
        assert_eq!(CatalogChoice::resolve(Some(Glue), Some(Local)), Glue);
        assert_eq!(CatalogChoice::resolve(None, Some(Glue)), Glue);
        assert_eq!(CatalogChoice::resolve(None, None), Local);
        assert_eq!("glue".parse(), Ok(Glue));
        assert_eq!("hive".parse::<CatalogChoice>().unwrap_err(), "unknown catalog 'hive' (expected local or glue)");
    }
}

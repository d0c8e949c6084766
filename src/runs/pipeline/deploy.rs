//! The `[deploy]` table of `pipeline.toml`: what only `etl deploy` ([`crate::deploy`]) reads,
//! validated when the pipeline loads, as every other option is.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Fargate's smallest task that holds a DataFusion plan over gigabytes comfortably.
const DEFAULT_CPU: u32 = 1024;
const DEFAULT_MEMORY_MIB: u32 = 4096;
const DEFAULT_LOG_RETENTION_DAYS: u32 = 30;

/// The `[deploy]` table of `pipeline.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The task's vCPU units and memory (Fargate's pairs: 1024 CPU with 2048–8192 MiB, …).
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    /// `true` for every bucket the pipeline names, or the buckets to create.
    pub create_buckets: Option<CreateBuckets>,
    /// Default encryption of created buckets: `sse-s3` or `sse-kms` (the default, with
    /// `kms_key_arn` or a key the template creates).
    pub bucket_encryption: Option<String>,
    pub kms_key_arn: Option<String>,
    /// Cross-region replication of created buckets: bucket = replica bucket (which must exist,
    /// versioned, in another region); `replica_kms_key_arn` encrypts the replicas of SSE-KMS
    /// objects.
    #[serde(default)]
    pub replicas: BTreeMap<String, String>,
    pub replica_kms_key_arn: Option<String>,
    pub log_retention_days: Option<u32>,
    /// Glue databases that exist already (another pipeline's stack made them, or a person):
    /// the template does not declare them (CloudFormation fails to create what exists), and
    /// the runner's policy still grants what the jobs need in them.
    #[serde(default)]
    pub existing_databases: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum CreateBuckets {
    All(bool),
    Named(Vec<String>),
}

/// Fargate's valid CPU units and, for each, the memory range in MiB and its step.
const FARGATE_SIZES: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

impl Settings {
    /// Refuses what CloudFormation would refuse later, naming the option.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let (cpu, memory) = (self.cpu(), self.memory());
        match FARGATE_SIZES.iter().find(|(units, ..)| *units == cpu) {
            None => {
                let valid: Vec<String> = FARGATE_SIZES.iter().map(|(units, ..)| units.to_string()).collect();
                return Err(("deploy.cpu".into(), format!("{cpu} is not a Fargate size ({})", valid.join(", "))));
            }
            Some((_, low, high, step)) if memory < *low || memory > *high || (memory - low) % step != 0 => {
                return Err((
                    "deploy.memory".into(),
                    format!(
                        "{memory} MiB does not go with cpu = {cpu} (Fargate: {low} to {high} MiB in steps of {step})"
                    ),
                ));
            }
            Some(_) => {}
        }
        match self.bucket_encryption.as_deref() {
            None | Some("sse-kms") => {}
            Some("sse-s3") if self.kms_key_arn.is_some() => {
                return Err(("deploy.kms_key_arn".into(), "is for bucket_encryption = \"sse-kms\"".into()));
            }
            Some("sse-s3") => {}
            Some(other) => {
                return Err((
                    "deploy.bucket_encryption".into(),
                    format!("unknown value '{other}' (expected sse-s3 or sse-kms)"),
                ));
            }
        }
        if let Some(arn) = self.kms_key_arn.as_deref().filter(|a| !a.starts_with("arn:")) {
            return Err(("deploy.kms_key_arn".into(), format!("'{arn}' is not a key ARN (arn:aws:kms:…:key/…)")));
        }
        for (bucket, replica) in &self.replicas {
            if replica.is_empty() || replica.contains('/') || replica == bucket {
                return Err((format!("deploy.replicas.{bucket}"), format!("'{replica}' is not another bucket's name")));
            }
        }
        if self.replica_kms_key_arn.is_some() && self.replicas.is_empty() {
            return Err(("deploy.replica_kms_key_arn".into(), "needs replicas".into()));
        }
        if self.log_retention_days.is_some_and(|d| !LOG_RETENTION_DAYS.contains(&d)) {
            return Err((
                "deploy.log_retention_days".into(),
                format!("must be one of CloudWatch Logs' retentions: {LOG_RETENTION_DAYS:?}"),
            ));
        }
        Ok(())
    }

    pub fn cpu(&self) -> u32 {
        self.cpu.unwrap_or(DEFAULT_CPU)
    }

    pub fn memory(&self) -> u32 {
        self.memory.unwrap_or(DEFAULT_MEMORY_MIB)
    }

    pub fn log_retention_days(&self) -> u32 {
        self.log_retention_days.unwrap_or(DEFAULT_LOG_RETENTION_DAYS)
    }

    pub fn kms_buckets(&self) -> bool {
        self.bucket_encryption.as_deref() != Some("sse-s3")
    }
}

/// The values CloudWatch Logs accepts for `RetentionInDays`.
const LOG_RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_what_cloudformation_would() {
        assert_eq!(Settings::default().validate(), Ok(()));
        let cases: [(&str, &str); 7] = [
            ("cpu = 1000", "deploy.cpu: 1000 is not a Fargate size"),
            ("cpu = 256\nmemory = 4096", "deploy.memory: 4096 MiB does not go with cpu = 256"),
            ("bucket_encryption = \"aes\"", "deploy.bucket_encryption: unknown value 'aes'"),
            ("kms_key_arn = \"alias/x\"", "deploy.kms_key_arn: 'alias/x' is not a key ARN"),
            ("replica_kms_key_arn = \"arn:aws:kms:eu-west-1:1:key/k\"", "deploy.replica_kms_key_arn: needs replicas"),
            ("log_retention_days = 10", "deploy.log_retention_days: must be one of"),
            ("replicas = { lake = \"lake\" }", "deploy.replicas.lake: 'lake' is not another bucket's name"),
        ];
        for (text, expected) in cases {
            let settings: Settings = toml::from_str(text).unwrap();
            let (option, why) = settings.validate().unwrap_err();
            assert!(format!("{option}: {why}").starts_with(expected), "{text}: {option}: {why}");
        }
        let sized: Settings = toml::from_str("cpu = 2048\nmemory = 8192\ncreate_buckets = [\"raw\"]").unwrap();
        assert_eq!(sized.validate(), Ok(()));
        assert_eq!(sized.create_buckets, Some(CreateBuckets::Named(vec!["raw".into()])));
    }
}

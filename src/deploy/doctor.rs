//! `etl doctor`: before the first run, try each access a run needs, against the account the
//! AWS chain resolves (or the local endpoint), and name what is missing.
//!
//! Every probe reads, or writes only under a target's staging folder and removes what it
//! wrote (an object, a multipart upload it aborts): nothing a reader lists, no table, no
//! bucket setting changes. A denied probe names the IAM action and resource, with the
//! statement of the runner's policy ([`super::policy`]) that grants it.
//!
//! What cannot be tried without a change is said so: creating or updating a Glue table is
//! checked by reading the table and database (Glue has no dry run).

use std::collections::BTreeMap;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use serde::Serialize;

use super::policy::{self, Account, Statement};
use super::{Needs, Options};
use crate::catalog::TableName;
use crate::config::CatalogChoice;
use crate::location::aws::{AWS_ENDPOINT_URL_GLUE, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS, endpoint, sdk_config};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// The IAM action a denied probe needed, and on what.
    pub missing_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// A statement that grants it (the runner policy's, for this account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<Statement>,
}

impl Check {
    fn ok(check: String, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail: detail.into(),
            missing_action: None,
            resource: None,
            statement: None,
        }
    }

    fn failed(check: String, detail: impl Into<String>) -> Check {
        Check { status: Status::Failed, ..Check::ok(check, detail) }
    }

    fn warning(check: String, detail: impl Into<String>) -> Check {
        Check { status: Status::Warning, ..Check::ok(check, detail) }
    }
}

/// What went wrong with a call, as far as a doctor cares.
enum Refused {
    Denied(String),
    NotFound(String),
    Other(String),
}

fn refused<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Refused {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().unwrap_or("");
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        // No error code: the answer did not come, or could not be read. The SDK's full context
        // (its headers and body) is too long for a line.
        _ => DisplayErrorContext(error).to_string().chars().take(240).collect(),
    };
    if code.contains("AccessDenied") || code == "UnauthorizedOperation" || code == "Forbidden" || status == Some(403) {
        Refused::Denied(message)
    } else if code.starts_with("NoSuch")
        || code.contains("NotFound")
        || code == "EntityNotFoundException"
        || status == Some(404)
    {
        Refused::NotFound(message)
    } else {
        Refused::Other(message)
    }
}

struct Doctor<'a> {
    needs: &'a Needs,
    /// Every bucket the runner uses (its statements are named apart by them).
    buckets: BTreeMap<String, super::BucketUse>,
    statements: Vec<Statement>,
    account: Account,
    checks: Vec<Check>,
    s3: aws_sdk_s3::Client,
}

impl Doctor<'_> {
    /// A denied probe: the action, the resource, and the statement that grants it.
    fn denied(&mut self, check: String, action: &str, resource: String, why: String, sid: Option<String>) {
        let statement = sid
            .and_then(|sid| self.statements.iter().find(|s| s.sid == sid && s.grants(action)))
            .or_else(|| self.statements.iter().find(|s| s.grants(action)))
            .map(|s| s.resolved(&self.account))
            .map(|mut s| {
                s.action = vec![action.to_string()];
                s
            });
        let statement =
            statement.unwrap_or_else(|| Statement::allow("Doctor".into(), &[action], vec![resource.clone()]));
        self.checks.push(Check {
            check,
            status: Status::Failed,
            detail: format!("denied: {why}"),
            missing_action: Some(action.to_string()),
            resource: Some(resource),
            statement: Some(statement),
        });
    }

    async fn bucket(&mut self, bucket: &str, used: &super::BucketUse) {
        if used.reads.is_empty() && used.writes.is_empty() {
            // Only a trigger's: its events reach the runs, which never read the bucket.
            if !used.triggers.is_empty() {
                self.notifications(bucket).await;
            }
            return;
        }
        let id = policy::bucket_id(bucket, &self.buckets);
        let bucket_arn = self.account.resolve(&policy::bucket_arn(bucket));
        let check = format!("bucket {bucket} exists");
        // Asked as a run asks, by listing a prefix it uses: the policy allows listing those
        // prefixes only, and HeadBucket needs the whole bucket's.
        let prefix = used.reads.iter().chain(&used.writes).next().map(|p| folder(p)).unwrap_or_default();
        match self.s3.list_objects_v2().bucket(bucket).prefix(prefix).max_keys(1).send().await {
            Ok(_) => self.checks.push(Check::ok(check, "")),
            Err(e) => match refused(&e) {
                Refused::NotFound(_) => {
                    self.checks.push(Check::failed(
                        check,
                        format!("no bucket {bucket} (etl deploy --create-buckets makes it)"),
                    ));
                    return;
                }
                Refused::Denied(why) => {
                    self.denied(check, "s3:ListBucket", bucket_arn.clone(), why, Some(format!("List{id}")))
                }
                Refused::Other(why) => {
                    self.checks.push(Check::failed(check, why));
                    return;
                }
            },
        }
        for prefix in &used.reads {
            self.read_prefix(bucket, prefix, &id).await;
        }
        for prefix in &used.writes {
            if !used.reads.contains(prefix) {
                self.list_prefix(bucket, prefix, &id).await;
            }
            self.write_prefix(bucket, prefix, used, &id).await;
        }
        if !used.writes.is_empty() {
            self.disaster_recovery(bucket).await;
        }
        if !used.triggers.is_empty() {
            self.notifications(bucket).await;
        }
    }

    /// Lists the prefix; the first key it holds, if any, and whether that object is empty. A
    /// folder marker (`data/`, an empty object the S3 console leaves) is passed over when the
    /// first page holds another object: a ranged read of an empty object fails (416).
    async fn list_prefix(&mut self, bucket: &str, prefix: &str, id: &str) -> Option<Option<(String, bool)>> {
        let folder = folder(prefix);
        let check = format!("list s3://{bucket}/{folder}");
        match self.s3.list_objects_v2().bucket(bucket).prefix(&folder).max_keys(100).send().await {
            Ok(listing) => {
                let objects = listing.contents();
                let first = objects
                    .iter()
                    .find(|o| o.size().unwrap_or(0) > 0)
                    .or(objects.first())
                    .and_then(|o| Some((o.key()?.to_string(), o.size().unwrap_or(0) == 0)));
                self.checks.push(Check::ok(check, if first.is_some() { "" } else { "no objects yet" }));
                Some(first)
            }
            Err(e) => {
                match refused(&e) {
                    Refused::Denied(why) => {
                        let resource = self.account.resolve(&policy::bucket_arn(bucket));
                        self.denied(check, "s3:ListBucket", resource, why, Some(format!("List{id}")));
                    }
                    Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
                }
                None
            }
        }
    }

    async fn read_prefix(&mut self, bucket: &str, prefix: &str, id: &str) {
        let Some(first) = self.list_prefix(bucket, prefix, id).await else {
            return;
        };
        // A source may name one object (`s3://b/ref/customers.json`), as a run first asks.
        let first = match first {
            None if !prefix.is_empty() => match self.s3.head_object().bucket(bucket).key(prefix).send().await {
                Ok(head) => Some((prefix.to_string(), head.content_length().unwrap_or(0) == 0)),
                Err(_) => None,
            },
            first => first,
        };
        let Some((key, empty)) = first else {
            let check = format!("read an object under s3://{bucket}/{}", folder(prefix));
            self.checks.push(Check::warning(check, "the prefix holds no object yet: reading was not tried"));
            return;
        };
        let check = format!("read s3://{bucket}/{key}");
        let read = self.s3.get_object().bucket(bucket).key(&key);
        let read = if empty { read } else { read.range("bytes=0-0") };
        match read.send().await {
            Ok(_) => self.checks.push(Check::ok(check, "")),
            Err(e) => match refused(&e) {
                Refused::Denied(why) => {
                    let resource = self.account.resolve(&policy::objects_arn(bucket, prefix));
                    let action = if why.to_lowercase().contains("kms") { "kms:Decrypt" } else { "s3:GetObject" };
                    self.denied(check, action, resource, why, Some(format!("Read{id}")));
                }
                Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
            },
        }
    }

    /// Writes and deletes a probe object, and starts and aborts a multipart upload, under the
    /// target's staging folder (which no reader lists).
    async fn write_prefix(&mut self, bucket: &str, prefix: &str, used: &super::BucketUse, id: &str) {
        let key = format!("{}{}/doctor-{}/probe", folder(prefix), crate::layout::STAGING_FOLDER, std::process::id());
        let resource = self.account.resolve(&policy::objects_arn(bucket, prefix));
        let kms_key = used.kms_keys.iter().next().cloned();
        let mut put = self.s3.put_object().bucket(bucket).key(&key).body(Vec::new().into());
        if let Some(kms_key) = &kms_key {
            put = put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).ssekms_key_id(kms_key);
        }
        let check = format!("write s3://{bucket}/{key}");
        match put.send().await {
            Ok(_) => {
                self.checks.push(Check::ok(check, ""));
                let check = format!("delete s3://{bucket}/{key}");
                match self.s3.delete_object().bucket(bucket).key(&key).send().await {
                    Ok(_) => self.checks.push(Check::ok(check, "")),
                    Err(e) => match refused(&e) {
                        Refused::Denied(why) => {
                            let why = format!("{why} (the probe object stays: remove it by hand)");
                            self.denied(check, "s3:DeleteObject", resource.clone(), why, Some(format!("Write{id}")));
                        }
                        Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
                    },
                }
            }
            Err(e) => match refused(&e) {
                Refused::Denied(why) => {
                    let action =
                        if why.to_lowercase().contains("kms") { "kms:GenerateDataKey" } else { "s3:PutObject" };
                    let resource = match (action, &kms_key) {
                        ("kms:GenerateDataKey", Some(kms_key)) => kms_key.clone(),
                        _ => resource.clone(),
                    };
                    self.denied(check, action, resource, why, Some(format!("Write{id}")));
                }
                Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
            },
        }
        let check = format!("multipart upload to s3://{bucket}/{key}");
        match self.s3.create_multipart_upload().bucket(bucket).key(&key).send().await {
            Ok(upload) => {
                let upload_id = upload.upload_id().unwrap_or_default().to_string();
                match self.s3.abort_multipart_upload().bucket(bucket).key(&key).upload_id(&upload_id).send().await {
                    Ok(_) => self.checks.push(Check::ok(check, "started and aborted")),
                    Err(e) => match refused(&e) {
                        Refused::Denied(why) => {
                            let why = format!("{why} (the bucket's lifecycle rule removes the upload)");
                            self.denied(check, "s3:AbortMultipartUpload", resource, why, Some(format!("Write{id}")));
                        }
                        Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
                    },
                }
            }
            Err(e) => match refused(&e) {
                Refused::Denied(why) => self.denied(check, "s3:PutObject", resource, why, Some(format!("Write{id}"))),
                Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
            },
        }
    }

    /// Versioning and replication of a written bucket: the recovery checklist (warnings).
    async fn disaster_recovery(&mut self, bucket: &str) {
        let resource = self.account.resolve(&policy::bucket_arn(bucket));
        let check = format!("versioning of bucket {bucket}");
        match self.s3.get_bucket_versioning().bucket(bucket).send().await {
            Ok(v) if v.status() == Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled) => {
                self.checks.push(Check::ok(check, "enabled"))
            }
            Ok(_) => self.checks.push(Check::warning(
                check,
                "off: an object overwritten or deleted by mistake cannot be recovered (etl deploy --create-buckets turns it on)",
            )),
            Err(e) => self.warn_refused(check, "s3:GetBucketVersioning", resource.clone(), &refused(&e)),
        }
        let check = format!("replication of bucket {bucket}");
        match self.s3.get_bucket_replication().bucket(bucket).send().await {
            Ok(r) => {
                let rules = r.replication_configuration().map(|c| c.rules().len()).unwrap_or(0);
                self.checks.push(Check::ok(check, format!("{rules} rule(s)")));
            }
            Err(e) => match refused(&e) {
                Refused::NotFound(_) => self.checks.push(Check::warning(
                    check,
                    "none: no copy in another region ([deploy] replicas in pipeline.toml configures it)",
                )),
                other => self.warn_refused(check, "s3:GetReplicationConfiguration", resource, &other),
            },
        }
    }

    async fn notifications(&mut self, bucket: &str) {
        let resource = self.account.resolve(&policy::bucket_arn(bucket));
        let check = format!("EventBridge notifications of bucket {bucket}");
        match self.s3.get_bucket_notification_configuration().bucket(bucket).send().await {
            Ok(n) if n.event_bridge_configuration().is_some() => self.checks.push(Check::ok(check, "on")),
            Ok(_) => self.checks.push(Check::warning(
                check,
                "off: objects created here start nothing on AWS (the deployed rules match EventBridge's events)",
            )),
            Err(e) => self.warn_refused(check, "s3:GetBucketNotification", resource, &refused(&e)),
        }
    }

    /// A setting that could not be read: a warning, with what reading it needs.
    fn warn_refused(&mut self, check: String, action: &str, resource: String, refused: &Refused) {
        let (Refused::Denied(why) | Refused::NotFound(why) | Refused::Other(why)) = refused;
        let mut warning = Check::warning(check, format!("could not be read: {why}"));
        if let Refused::Denied(_) = refused {
            warning.missing_action = Some(action.to_string());
            warning.resource = Some(resource.clone());
            warning.statement = Some(Statement::allow("Doctor".into(), &[action], vec![resource]));
        }
        self.checks.push(warning);
    }

    async fn catalog(&mut self) {
        let mut builder = aws_sdk_glue::config::Builder::from(sdk_config().await);
        if let Some(url) = endpoint(AWS_ENDPOINT_URL_GLUE) {
            builder = builder.endpoint_url(url);
        }
        let glue = aws_sdk_glue::Client::from_conf(builder.build());
        let account = self.account.clone();
        let glue_arn = |resource: &str| account.resolve(&policy::glue_arn(resource));
        for database in self.needs.databases.clone() {
            let check = format!("Glue database {database}");
            let resource = glue_arn(&format!("database/{database}"));
            match glue.get_database().name(&database).send().await {
                Ok(_) => self.checks.push(Check::ok(check, "readable")),
                Err(e) => match refused(&e) {
                    Refused::NotFound(_) => self.checks.push(Check::warning(
                        check,
                        "does not exist yet: the first run creates it (glue:CreateDatabase)",
                    )),
                    Refused::Denied(why) => {
                        self.denied(check, "glue:GetDatabase", resource, why, Some("GlueDatabases".into()))
                    }
                    Refused::Other(why) => self.checks.push(Check::failed(check, why)),
                },
            }
        }
        let written = self.needs.tables_written.clone();
        let tables: Vec<(TableName, bool)> = self
            .needs
            .tables_read
            .iter()
            .map(|t| (t.clone(), false))
            .chain(written.iter().map(|t| (t.clone(), true)))
            .collect();
        for (table, writes) in tables {
            let check = format!("Glue table {table}");
            let resource = glue_arn(&format!("table/{}/{}", table.database, table.table));
            match glue.get_table().database_name(&table.database).name(&table.table).send().await {
                Ok(_) if writes => self.checks.push(Check::ok(
                    check,
                    "readable; creating and updating it are not tried (Glue has no dry run): the runner policy's \
                     GlueWriteTables statement grants them",
                )),
                Ok(_) => self.checks.push(Check::ok(check, "readable")),
                Err(e) => match refused(&e) {
                    Refused::NotFound(_) if writes => {
                        self.checks.push(Check::ok(check, "does not exist yet: a run creates it"))
                    }
                    Refused::NotFound(_) => self.checks.push(Check::failed(
                        check,
                        "does not exist, and no job of the pipeline writes it: a job reads it",
                    )),
                    Refused::Denied(why) => {
                        self.denied(check, "glue:GetTable", resource, why, Some("GlueReadTables".into()))
                    }
                    Refused::Other(why) => self.checks.push(Check::failed(check, why)),
                },
            }
        }
    }

    async fn queue(&mut self, queue_url: &str) {
        let mut builder = aws_sdk_sqs::config::Builder::from(sdk_config().await);
        if let Some(url) = endpoint(AWS_ENDPOINT_URL_SQS) {
            builder = builder.endpoint_url(url);
        }
        let sqs = aws_sdk_sqs::Client::from_conf(builder.build());
        let check = format!("queue {queue_url}");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await;
        match attributes {
            Ok(_) => self.checks.push(Check::ok(
                check,
                "exists and its attributes are readable (receiving is not tried: a receive counts toward its \
                 dead-letter redrive)",
            )),
            Err(e) => match refused(&e) {
                Refused::Denied(why) => self.denied(
                    check,
                    "sqs:GetQueueAttributes",
                    queue_url.to_string(),
                    why,
                    Some("TriggerQueue".into()),
                ),
                Refused::NotFound(why) | Refused::Other(why) => self.checks.push(Check::failed(check, why)),
            },
        }
    }
}

/// A prefix as a folder to list: `p/`, or the whole bucket.
fn folder(prefix: &str) -> String {
    match prefix {
        "" => String::new(),
        prefix => format!("{prefix}/"),
    }
}

fn local_path_checks(needs: &Needs) -> Vec<Check> {
    let checks = needs.local_paths.iter();
    checks.map(|path| Check::ok(format!("local path {path}"), "not on AWS: nothing to check")).collect()
}

fn embedded_catalog_check() -> Check {
    Check::ok("catalog".into(), "the embedded catalog, under ETL_HOME: no Glue access needed")
}

/// Runs every probe of what `needs` uses, in a fixed order.
pub async fn examine(needs: &Needs, options: &Options, catalog: CatalogChoice, queue_url: Option<&str>) -> Vec<Check> {
    if needs.buckets.is_empty() && catalog == CatalogChoice::Local && queue_url.is_none() {
        // Nothing to probe: no credentials are needed, so none missing is a failure.
        let mut checks = local_path_checks(needs);
        checks.push(embedded_catalog_check());
        checks.push(Check::ok("aws".into(), "no bucket, Glue catalog or queue is used: no AWS access needed"));
        return checks;
    }
    let config = sdk_config().await;
    let mut checks = Vec::new();
    let region = config.region().map(|r| r.to_string());
    match &region {
        Some(region) => checks.push(Check::ok("region".into(), region.clone())),
        None => checks.push(Check::failed("region".into(), "no region: set AWS_REGION or a profile's region")),
    }
    let mut sts = aws_sdk_sts::config::Builder::from(config);
    if let Some(url) = endpoint("AWS_ENDPOINT_URL_STS") {
        sts = sts.endpoint_url(url);
    }
    let identity = aws_sdk_sts::Client::from_conf(sts.build()).get_caller_identity().send().await;
    let account = match identity {
        Ok(identity) => {
            let arn = identity.arn().unwrap_or_default().to_string();
            checks.push(Check::ok("credentials".into(), arn.clone()));
            Account {
                partition: arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws").to_string(),
                region: region.unwrap_or_default(),
                id: identity.account().unwrap_or_default().to_string(),
            }
        }
        Err(e) => {
            let why = DisplayErrorContext(&e).to_string();
            checks.push(Check::failed(
                "credentials".into(),
                format!("the AWS chain resolves no working credentials: {why}"),
            ));
            return checks;
        }
    };
    let mut s3 = aws_sdk_s3::config::Builder::from(config);
    if let Some(url) = endpoint(AWS_ENDPOINT_URL_S3) {
        s3 = s3.endpoint_url(url).force_path_style(true);
    }
    let mut doctor = Doctor {
        needs,
        statements: policy::runner(needs, options, None, None),
        buckets: policy::runner_buckets(needs, options),
        account,
        checks,
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
    };
    doctor.checks.extend(local_path_checks(needs));
    for (bucket, used) in needs.buckets.clone() {
        doctor.bucket(&bucket, &used).await;
    }
    match catalog {
        CatalogChoice::Glue => doctor.catalog().await,
        CatalogChoice::Local => doctor.checks.push(embedded_catalog_check()),
    }
    if let Some(queue_url) = queue_url {
        doctor.queue(queue_url).await;
    }
    doctor.checks
}

//! The runner's least-privilege policy, derived from what the pipeline's jobs touch.
//!
//! Each statement grants what a code path of `etl` calls, on exactly the buckets, prefixes,
//! databases and tables the jobs name (never `*` for S3 or Glue). Resources are written as
//! CloudFormation `Fn::Sub` strings (`${AWS::Partition}`, `${AWS::AccountId}`, `${Key.Arn}`):
//! the template wraps them, and `etl doctor` substitutes the account it runs in to print a
//! statement that grants what it found missing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{BucketUse, Needs, Options};
use crate::error::{Error, Result};

/// The S3 actions a target's writer, publication and clean-up call (object_store's multipart
/// uploads included).
pub const S3_WRITE_ACTIONS: &[&str] =
    &["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"];
/// What the Glue catalog code calls on a database (it creates a missing one).
pub const GLUE_DATABASE_ACTIONS: &[&str] = &["glue:GetDatabase", "glue:GetDatabases", "glue:CreateDatabase"];
/// What reading a catalog table calls: its definition, partitions and versions.
pub const GLUE_READ_ACTIONS: &[&str] =
    &["glue:GetTable", "glue:GetTables", "glue:GetPartitions", "glue:GetTableVersions"];
/// What publishing a table calls (src/catalog/glue).
pub const GLUE_WRITE_ACTIONS: &[&str] = &[
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:BatchCreatePartition",
    "glue:BatchUpdatePartition",
    "glue:BatchDeletePartition",
];
pub const KMS_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];
pub const ATHENA_ACTIONS: &[&str] =
    &["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"];
pub const SQS_ACTIONS: &[&str] =
    &["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: String,
    pub effect: &'static str,
    pub action: Vec<String>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

impl Statement {
    pub fn allow(sid: String, actions: &[&str], resource: Vec<String>) -> Statement {
        Statement {
            sid,
            effect: "Allow",
            action: actions.iter().map(|a| a.to_string()).collect(),
            resource,
            condition: None,
        }
    }

    /// The statement as a template writes it: resources with a substitution through `Fn::Sub`.
    pub fn to_template(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("a statement serialises");
        value["Resource"] = self
            .resource
            .iter()
            .map(|r| match r.contains("${") {
                true => json!({ "Fn::Sub": r }),
                false => json!(r),
            })
            .collect();
        value
    }

    /// The statement for an account: the pseudo parameters replaced.
    pub fn resolved(&self, account: &Account) -> Statement {
        let mut resolved = self.clone();
        resolved.resource = self.resource.iter().map(|r| account.resolve(r)).collect();
        if let Some(condition) = &self.condition {
            resolved.condition = serde_json::from_str(&account.resolve(&condition.to_string())).ok();
        }
        resolved
    }

    pub fn grants(&self, action: &str) -> bool {
        self.action.iter().any(|a| a == action)
    }
}

/// The account a template is deployed to, or the doctor runs in.
#[derive(Debug, Clone)]
pub struct Account {
    pub partition: String,
    pub region: String,
    pub id: String,
}

impl Account {
    /// An `Fn::Sub` string of this module's, for this account.
    pub fn resolve(&self, text: &str) -> String {
        text.replace("${AWS::Partition}", &self.partition)
            .replace("${AWS::Region}", &self.region)
            .replace("${AWS::AccountId}", &self.id)
            .replace("${!", "${")
    }
}

/// Text from a job file inside an `Fn::Sub` string: `${` would start a substitution.
pub fn literal(text: &str) -> String {
    text.replace("${", "${!")
}

/// A KMS key as a target names it (`kms_key_id`), as IAM policies take it.
enum KmsKey {
    /// A key's ARN (a bare key id made one in the stack's account and region).
    Arn(String),
    /// An alias (`alias/NAME`, a condition's value, not substituted), and the keys it may
    /// name: the account's in the stack's region, or those of the account and region its ARN
    /// gives.
    Alias { alias: String, keys: String },
}

impl KmsKey {
    fn of(id: &str) -> KmsKey {
        if let Some((arn, alias)) = id.split_once(":alias/") {
            // arn:PARTITION:kms:REGION:ACCOUNT
            let keys = format!("{}:key/*", literal(arn));
            return KmsKey::Alias { alias: format!("alias/{alias}"), keys };
        }
        if id.starts_with("alias/") {
            let keys = "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*".to_string();
            return KmsKey::Alias { alias: id.to_string(), keys };
        }
        if id.starts_with("arn:") {
            return KmsKey::Arn(literal(id));
        }
        KmsKey::Arn(format!("arn:${{AWS::Partition}}:kms:${{AWS::Region}}:${{AWS::AccountId}}:key/{}", literal(id)))
    }
}

pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:${{AWS::Partition}}:s3:::{}", literal(bucket))
}

/// The objects under a prefix (the whole bucket for an empty one).
pub fn objects_arn(bucket: &str, prefix: &str) -> String {
    match prefix {
        "" => format!("{}/*", bucket_arn(bucket)),
        prefix => format!("{}/*", object_arn(bucket, prefix)),
    }
}

/// The object whose key is `key`.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("{}/{}", bucket_arn(bucket), literal(key))
}

pub fn glue_arn(resource: &str) -> String {
    format!("arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")
}

/// The buckets the runner uses: the jobs', and Athena's results bucket.
pub fn runner_buckets(needs: &Needs, options: &Options) -> BTreeMap<String, BucketUse> {
    let mut buckets = needs.buckets.clone();
    if let Some(results) = options.athena.as_ref().and_then(|a| a.results.as_ref())
        && let Some(bucket) = results.bucket()
    {
        buckets.entry(bucket.to_string()).or_default().writes.insert(super::prefix_of(results));
    }
    buckets
}

/// What the runner policy's statements for `bucket`, one of `buckets`, are named by.
pub fn bucket_id(bucket: &str, buckets: &BTreeMap<String, BucketUse>) -> String {
    super::logical_id_among(&[], bucket, buckets.keys().map(String::as_str))
}

/// The runner role's statements. `created_key` is the KMS key the template creates, as an
/// `Fn::Sub` reference, when it creates one.
pub fn runner(needs: &Needs, options: &Options, created_key: Option<&str>, topic: Option<&str>) -> Vec<Statement> {
    let mut statements = Vec::new();
    let buckets = runner_buckets(needs, options);
    let mut kms_keys: Vec<String> = Vec::new();
    for (bucket, used) in &buckets {
        let id = bucket_id(bucket, &buckets);
        let prefixes: Vec<&String> = used.reads.iter().chain(&used.writes).collect();
        if prefixes.is_empty() {
            continue;
        }
        let mut list = Statement::allow(format!("List{id}"), &["s3:ListBucket"], vec![bucket_arn(bucket)]);
        if !prefixes.iter().any(|p| p.is_empty()) {
            let mut allowed: Vec<String> = Vec::new();
            for prefix in &prefixes {
                allowed.push(prefix.to_string());
                allowed.push(format!("{prefix}/*"));
            }
            allowed.sort();
            allowed.dedup();
            list.condition = Some(json!({ "StringLike": { "s3:prefix": allowed } }));
        }
        statements.push(list);
        // A location is first asked for as an object (a source may name one file): the key
        // itself, without the slash, is read as well as the objects under it.
        let mut read: Vec<String> = prefixes.iter().map(|p| objects_arn(bucket, p)).collect();
        read.extend(prefixes.iter().filter(|p| !p.is_empty()).map(|p| object_arn(bucket, p)));
        read.sort();
        read.dedup();
        statements.push(Statement::allow(format!("Read{id}"), &["s3:GetObject"], read));
        if !used.writes.is_empty() {
            let written = used.writes.iter().map(|p| objects_arn(bucket, p)).collect();
            statements.push(Statement::allow(format!("Write{id}"), S3_WRITE_ACTIONS, written));
        }
        kms_keys.extend(used.kms_keys.iter().cloned());
    }
    let mut key_arns: Vec<String> = Vec::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in kms_keys {
        match KmsKey::of(&key) {
            KmsKey::Arn(arn) => key_arns.push(arn),
            KmsKey::Alias { alias, keys } => aliases.entry(keys).or_default().push(alias),
        }
    }
    key_arns.extend(created_key.map(str::to_string));
    key_arns.sort();
    key_arns.dedup();
    if !key_arns.is_empty() {
        statements.push(Statement::allow("UseKeys".into(), KMS_ACTIONS, key_arns));
    }
    // A grant on an alias's ARN does not let a key be used: the keys of the alias's account
    // and region are, those the aliases name.
    for (index, (keys, mut names)) in aliases.into_iter().enumerate() {
        names.sort();
        names.dedup();
        let sid = if index == 0 { "UseKeysByAlias".to_string() } else { format!("UseKeysByAlias{}", index + 1) };
        let mut by_alias = Statement::allow(sid, KMS_ACTIONS, vec![keys]);
        by_alias.condition = Some(json!({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": names } }));
        statements.push(by_alias);
    }

    let catalog = glue_arn("catalog");
    let databases: Vec<String> =
        needs.databases.iter().map(|d| glue_arn(&format!("database/{}", literal(d)))).collect();
    if !databases.is_empty() {
        let mut on_databases = vec![catalog.clone()];
        on_databases.extend(databases.iter().cloned());
        statements.push(Statement::allow("GlueDatabases".into(), GLUE_DATABASE_ACTIONS, on_databases.clone()));
        let table =
            |t: &crate::catalog::TableName| glue_arn(&format!("table/{}/{}", literal(&t.database), literal(&t.table)));
        let mut read = on_databases.clone();
        read.extend(needs.tables_read.iter().chain(&needs.tables_written).map(table));
        statements.push(Statement::allow("GlueReadTables".into(), GLUE_READ_ACTIONS, read));
        if !needs.tables_written.is_empty() {
            let mut written = vec![catalog];
            let written_databases: std::collections::BTreeSet<&String> =
                needs.tables_written.iter().map(|t| &t.database).collect();
            written.extend(written_databases.iter().map(|d| glue_arn(&format!("database/{}", literal(d)))));
            written.extend(needs.tables_written.iter().map(table));
            statements.push(Statement::allow("GlueWriteTables".into(), GLUE_WRITE_ACTIONS, written));
        }
    }
    if let Some(athena) = &options.athena {
        let workgroup = format!(
            "arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:workgroup/{}",
            literal(&athena.workgroup)
        );
        statements.push(Statement::allow("Athena".into(), ATHENA_ACTIONS, vec![workgroup]));
        if let Some(bucket) = athena.results.as_ref().and_then(|r| r.bucket()) {
            // Athena asks for its results bucket's region as the caller: without it, queries
            // fail with "Unable to verify/create output bucket".
            let arn = vec![bucket_arn(bucket)];
            statements.push(Statement::allow("AthenaResultsBucket".into(), &["s3:GetBucketLocation"], arn));
        }
    }
    if let Some(queue) = &options.queue_arn {
        statements.push(Statement::allow("TriggerQueue".into(), SQS_ACTIONS, vec![literal(queue)]));
    }
    if let Some(topic) = topic {
        statements.push(Statement::allow("NotifyFailures".into(), &["sns:Publish"], vec![topic.to_string()]));
    }
    statements
}

/// `statements` in policies in their order: the first of at most `first` characters, the
/// others of at most `each`, measured as IAM measures them (no whitespace; `${AWS::…}` is
/// never shorter than what it stands for). A statement too large for one policy is split
/// into statements granting a part of its resources (or, for one resource, of its
/// condition's prefixes) each.
pub fn split_by_size(statements: &[Statement], first: usize, each: usize) -> Result<Vec<Vec<Statement>>> {
    // `{"Version":"2012-10-17","Statement":[]}` and the policy's name.
    const DOCUMENT_CHARS: usize = 40 + 64;
    let size = |statement: &Statement| serde_json::to_string(statement).expect("a statement serialises").len() + 1;
    let mut pieces = Vec::new();
    for statement in statements {
        pieces.extend(in_pieces(statement.clone(), each - DOCUMENT_CHARS, &size)?);
    }
    let mut policies: Vec<Vec<Statement>> = vec![Vec::new()];
    let mut used = DOCUMENT_CHARS;
    for statement in pieces {
        let limit = if policies.len() == 1 { first } else { each };
        if used + size(&statement) > limit {
            policies.push(Vec::new());
            used = DOCUMENT_CHARS;
        }
        used += size(&statement);
        policies.last_mut().expect("one at least").push(statement);
    }
    Ok(policies)
}

/// `statement` as statements of at most `limit` characters each, numbered after it.
fn in_pieces(statement: Statement, limit: usize, size: &dyn Fn(&Statement) -> usize) -> Result<Vec<Statement>> {
    if size(&statement) <= limit {
        return Ok(vec![statement]);
    }
    let mut pieces = vec![statement];
    while let Some(index) = pieces.iter().position(|p| size(p) > limit) {
        let piece = pieces.remove(index);
        let Some((a, b)) = halves(&piece) else {
            return Err(Error::config(format!(
                "the runner's statement {} is {} characters, more than IAM takes in one policy",
                piece.sid,
                size(&piece)
            )));
        };
        pieces.insert(index, b);
        pieces.insert(index, a);
    }
    let sid = pieces[0].sid.clone();
    for (number, piece) in pieces.iter_mut().enumerate() {
        piece.sid = format!("{sid}{}", number + 1);
    }
    Ok(pieces)
}

/// A statement as two that grant together what it grants: each with half its resources, or
/// with its one resource and half its condition's values.
fn halves(statement: &Statement) -> Option<(Statement, Statement)> {
    let (mut a, mut b) = (statement.clone(), statement.clone());
    if statement.resource.len() > 1 {
        let middle = statement.resource.len() / 2;
        a.resource.truncate(middle);
        b.resource.drain(..middle);
        return Some((a, b));
    }
    let condition = statement.condition.as_ref()?.as_object()?;
    let [(operator, keys)] = condition.iter().collect::<Vec<_>>()[..] else { return None };
    let [(key, Value::Array(values))] = keys.as_object()?.iter().collect::<Vec<_>>()[..] else { return None };
    if values.len() < 2 {
        return None;
    }
    let middle = values.len() / 2;
    a.condition = Some(json!({ operator: { key: values[..middle] } }));
    b.condition = Some(json!({ operator: { key: values[middle..] } }));
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::BucketUse;

    fn needs() -> Needs {
        let mut buckets = std::collections::BTreeMap::new();
        buckets.insert("raw".to_string(), BucketUse { reads: ["orders".to_string()].into(), ..BucketUse::default() });
        buckets.insert(
            "lake".to_string(),
            BucketUse {
                writes: ["curated/sales".to_string()].into(),
                kms_keys: ["arn:aws:kms:us-east-1:1:key/k".to_string()].into(),
                ..BucketUse::default()
            },
        );
        Needs {
            buckets,
            databases: ["curated".to_string(), "raw".to_string()].into(),
            tables_read: [].into(),
            tables_written: ["raw.orders".parse().unwrap(), "curated.sales".parse().unwrap()].into(),
            schedule: None,
            job_schedules: Vec::new(),
            local_paths: Vec::new(),
        }
    }

    #[test]
    fn each_statement_names_exactly_the_prefixes_and_tables() {
        let statements = runner(&needs(), &Options::default(), None, None);
        let by_sid = |sid: &str| statements.iter().find(|s| s.sid == sid).unwrap_or_else(|| panic!("{sid}"));
        assert_eq!(by_sid("ListRaw").condition, Some(json!({"StringLike": {"s3:prefix": ["orders", "orders/*"]}})));
        // The location itself is asked for as an object before it is listed.
        assert_eq!(
            by_sid("ReadRaw").resource,
            ["arn:${AWS::Partition}:s3:::raw/orders", "arn:${AWS::Partition}:s3:::raw/orders/*"]
        );
        assert!(!statements.iter().any(|s| s.sid == "WriteRaw"), "sources are read only");
        assert_eq!(by_sid("WriteLake").resource, ["arn:${AWS::Partition}:s3:::lake/curated/sales/*"]);
        assert_eq!(by_sid("UseKeys").resource, ["arn:aws:kms:us-east-1:1:key/k"]);
        let written = &by_sid("GlueWriteTables").resource;
        assert!(
            written.contains(&"arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/curated/sales".into())
        );
        for statement in &statements {
            assert!(statement.resource.iter().all(|r| r != "*" && !r.ends_with(":::*")), "{statement:?}");
        }
        let account = Account { partition: "aws".into(), region: "eu-west-1".into(), id: "123".into() };
        let resolved = by_sid("ListRaw").resolved(&account);
        assert_eq!(resolved.resource, ["arn:aws:s3:::raw"]);
    }

    #[test]
    fn kms_keys_are_granted_by_arn_and_aliases_by_condition() {
        let mut needs = needs();
        let lake = needs.buckets.get_mut("lake").unwrap();
        lake.kms_keys =
            ["1234abcd-12ab".to_string(), "alias/curated".to_string(), "arn:aws:kms:r:1:alias/raw".to_string()].into();
        let statements = runner(&needs, &Options::default(), None, None);
        let by_sid = |sid: &str| statements.iter().find(|s| s.sid == sid).unwrap_or_else(|| panic!("{sid}"));
        assert_eq!(
            by_sid("UseKeys").resource,
            ["arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/1234abcd-12ab"]
        );
        let by_alias = by_sid("UseKeysByAlias");
        assert_eq!(by_alias.resource, ["arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"]);
        assert_eq!(
            by_alias.condition,
            Some(json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/curated"]}}))
        );
        // An alias's ARN keeps its own account and region.
        let other = by_sid("UseKeysByAlias2");
        assert_eq!(other.resource, ["arn:aws:kms:r:1:key/*"]);
        assert_eq!(other.condition, Some(json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/raw"]}})));
    }

    #[test]
    fn text_that_looks_like_a_substitution_stays_text() {
        assert_eq!(objects_arn("b", "x/${y}"), "arn:${AWS::Partition}:s3:::b/x/${!y}/*");
        let statement = Statement::allow("S".into(), &["s3:GetObject"], vec![objects_arn("b", "x/${y}")]);
        let account = Account { partition: "aws".into(), region: "r".into(), id: "1".into() };
        assert_eq!(statement.resolved(&account).resource, ["arn:aws:s3:::b/x/${y}/*"]);
    }
}

//! The CloudFormation template of a pipeline: what runs it on AWS, least privilege included.
//!
//! The template is a function of the pipeline's files and the command line: the same input
//! gives the same bytes (maps keep the order resources are added in, and every list is
//! sorted). Every resource that has a name is named `etl-PIPELINE-…`, and every resource that
//! takes tags carries `etl:pipeline`. Data stays when the stack goes: buckets, databases and
//! the KMS key are `Retain`ed.

use serde_json::{Map, Value, json};

use super::policy::{self, Statement};
use super::{CreateBuckets, Needs, Options, Settings, logical_id_among, states};
use crate::error::{Error, Result};
use crate::runs::pipeline::Pipeline;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "yaml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format '{other}' (expected yaml or json)")),
        }
    }
}

/// The tag every resource carries.
pub const PIPELINE_TAG: &str = "etl:pipeline";
/// Where the image holds the pipeline's folder, unless the stack's parameter says otherwise.
pub const DEFAULT_PIPELINE_PATH: &str = "/etl/pipeline";

/// A template and what a user should know about it.
#[derive(Debug, Clone)]
pub struct Template {
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Template {
    /// `(logical id, type)` of each resource, in the template's order.
    pub fn resources(&self) -> Vec<(String, String)> {
        self.body["Resources"]
            .as_object()
            .map(|resources| {
                resources.iter().map(|(id, r)| (id.clone(), r["Type"].as_str().unwrap_or("").to_string())).collect()
            })
            .unwrap_or_default()
    }

    pub fn render(&self, format: Format) -> Result<String> {
        match format {
            Format::Json => Ok(serde_json::to_string_pretty(&self.body)? + "\n"),
            Format::Yaml => yaml_serde::to_string(&self.body)
                .map_err(|e| Error::runtime(format!("writing the template as YAML: {e}"))),
        }
    }
}

/// The pipeline's template.
pub fn build(pipeline: &Pipeline, settings: &Settings, options: &Options) -> Result<Template> {
    let needs = Needs::of(pipeline);
    let mut t =
        Builder { name: pipeline.name.clone(), resources: Map::new(), outputs: Map::new(), warnings: Vec::new() };
    for path in &needs.local_paths {
        t.warnings
            .push(format!("{path} is a local path: a deployed task cannot read or write it; use s3:// locations"));
    }
    // The task's $ETL_HOME lives as long as the task: what an incremental source has read is
    // not known to the next task, which would read (and append) every object again.
    for job in pipeline.jobs.iter().filter(|j| j.sources.iter().any(|s| s.incremental)) {
        t.warnings.push(format!(
            "job {} has incremental sources, but a deployed task keeps no state between runs yet ($ETL_HOME is the task's own): each run would read every object again; deploy it once its sources are not incremental, or run it where $ETL_HOME persists",
            job.name
        ));
    }
    let created = buckets_to_create(&needs, settings, options)?;
    let key = t.kms_key(settings, &created);
    t.buckets(&needs, settings, &created, key.as_ref())?;
    t.databases(&needs, settings)?;
    t.log_group(settings);
    t.resource(
        "FailureTopic",
        "AWS::SNS::Topic",
        json!({ "TopicName": t.named("failures"), "KmsMasterKeyId": "alias/aws/sns" }),
        true,
    );
    t.output("FailureTopicArn", json!({ "Ref": "FailureTopic" }), "The topic a failed pipeline run is published to");

    let created_key = key.as_ref().and_then(|k| k.get("Fn::GetAtt").map(|_| "${BucketKey.Arn}"));
    let statements = policy::runner(&needs, options, created_key, Some("${FailureTopic}"));
    t.roles(&statements)?;
    t.task(settings);
    t.state_machine(pipeline);
    t.rules(&needs);

    let image = match &options.image {
        Some(image) => json!({ "Type": "String", "Default": image, "Description": "The etl image" }),
        None => {
            json!({ "Type": "String", "Description": "The etl image (its entrypoint is etl; it holds the pipeline's folder at PipelinePath)" })
        }
    };
    let parameters = json!({
        "ImageUri": image,
        "PipelinePath": { "Type": "String", "Default": DEFAULT_PIPELINE_PATH, "Description": "The pipeline's folder in the image" },
        "Subnets": { "Type": "List<AWS::EC2::Subnet::Id>", "Description": "Subnets the tasks run in" },
        "SecurityGroups": { "Type": "List<AWS::EC2::SecurityGroup::Id>", "Description": "Security groups of the tasks" },
        "AssignPublicIp": {
            "Type": "String",
            "Default": "ENABLED",
            "AllowedValues": ["ENABLED", "DISABLED"],
            "Description": "DISABLED in subnets with a NAT gateway or VPC endpoints for ECR, S3, Glue and CloudWatch Logs",
        },
    });
    t.output("ImageUri", json!({ "Ref": "ImageUri" }), "The etl image the tasks run");
    let body = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("etl pipeline {}: written by etl deploy", pipeline.name),
        "Parameters": parameters,
        "Resources": t.resources,
        "Outputs": t.outputs,
    });
    Ok(Template { body, warnings: t.warnings })
}

/// The buckets the template creates: those `--create-buckets` or `pipeline.toml` name.
fn buckets_to_create(needs: &Needs, settings: &Settings, options: &Options) -> Result<Vec<String>> {
    let mut created: Vec<String> = match &settings.create_buckets {
        _ if options.create_buckets => needs.buckets.keys().cloned().collect(),
        Some(CreateBuckets::All(true)) => needs.buckets.keys().cloned().collect(),
        Some(CreateBuckets::All(false)) | None => Vec::new(),
        Some(CreateBuckets::Named(named)) => {
            if let Some(unknown) = named.iter().find(|b| !needs.buckets.contains_key(*b)) {
                let known: Vec<&String> = needs.buckets.keys().collect();
                return Err(Error::config(format!(
                    "pipeline file: deploy.create_buckets: '{unknown}' is not a bucket the pipeline uses ({known:?})"
                )));
            }
            named.clone()
        }
    };
    created.sort();
    created.dedup();
    for source in settings.replicas.keys() {
        if !created.contains(source) {
            return Err(Error::config(format!(
                "pipeline file: deploy.replicas: '{source}' is not a bucket this template creates (deploy.create_buckets \
                 or --create-buckets): replication is configured on the bucket"
            )));
        }
    }
    Ok(created)
}

struct Builder {
    name: String,
    resources: Map<String, Value>,
    outputs: Map<String, Value>,
    warnings: Vec<String>,
}

impl Builder {
    fn named(&self, what: &str) -> String {
        format!("etl-{}-{what}", short(&self.name))
    }

    fn tags(&self) -> Value {
        json!([{ "Key": PIPELINE_TAG, "Value": self.name }])
    }

    /// Adds a resource; `tagged` when its type takes `Tags` as a list of `Key`/`Value`.
    fn resource(&mut self, id: &str, kind: &str, mut properties: Value, tagged: bool) {
        if tagged {
            properties["Tags"] = self.tags();
        }
        self.resources.insert(id.to_string(), json!({ "Type": kind, "Properties": properties }));
    }

    /// Keeps what a resource holds when the stack is deleted or the resource replaced.
    fn retain(&mut self, id: &str) {
        let resource = &mut self.resources[id];
        resource["DeletionPolicy"] = json!("Retain");
        resource["UpdateReplacePolicy"] = json!("Retain");
    }

    fn output(&mut self, id: &str, value: Value, description: &str) {
        self.outputs.insert(id.to_string(), json!({ "Description": description, "Value": value }));
    }

    /// The KMS key of created buckets (`deploy.kms_key_arn`, or one this template creates),
    /// as a value for the template; none for SSE-S3 or when no bucket is created.
    fn kms_key(&mut self, settings: &Settings, created: &[String]) -> Option<Value> {
        if created.is_empty() || !settings.kms_buckets() {
            return None;
        }
        if let Some(arn) = &settings.kms_key_arn {
            return Some(json!(arn));
        }
        let administers = json!({
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": { "AWS": { "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root" } },
            "Action": "kms:*",
            "Resource": "*",
        });
        let description = format!("etl pipeline {}: encrypts its buckets", self.name);
        self.resource(
            "BucketKey",
            "AWS::KMS::Key",
            json!({
                "Description": description,
                "EnableKeyRotation": true,
                "KeyPolicy": { "Version": "2012-10-17", "Statement": [administers] },
            }),
            true,
        );
        self.retain("BucketKey");
        let alias = format!("alias/{}", self.named("buckets"));
        self.resource(
            "BucketKeyAlias",
            "AWS::KMS::Alias",
            json!({ "AliasName": alias, "TargetKeyId": { "Ref": "BucketKey" } }),
            false,
        );
        self.output("BucketKeyArn", json!({ "Fn::GetAtt": ["BucketKey", "Arn"] }), "The KMS key of the buckets");
        Some(json!({ "Fn::GetAtt": ["BucketKey", "Arn"] }))
    }

    fn buckets(&mut self, needs: &Needs, settings: &Settings, created: &[String], key: Option<&Value>) -> Result<()> {
        for bucket in created {
            let used = &needs.buckets[bucket];
            let id = logical_id_among(&["bucket"], bucket, needs.buckets.keys().map(String::as_str));
            let by_default = match key {
                Some(key) => json!({ "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key }),
                None => json!({ "SSEAlgorithm": "AES256" }),
            };
            let mut properties = json!({
                "BucketName": bucket,
                "VersioningConfiguration": { "Status": "Enabled" },
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{ "ServerSideEncryptionByDefault": by_default, "BucketKeyEnabled": key.is_some() }],
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true,
                },
                "LifecycleConfiguration": {
                    "Rules": [{
                        "Id": "AbortIncompleteMultipartUploads",
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
                    }],
                },
            });
            if !used.triggers.is_empty() {
                properties["NotificationConfiguration"] =
                    json!({ "EventBridgeConfiguration": { "EventBridgeEnabled": true } });
            }
            if let Some(replica) = settings.replicas.get(bucket) {
                let role = logical_id_among(&["replication"], bucket, needs.buckets.keys().map(String::as_str));
                properties["ReplicationConfiguration"] = self.replication(&role, bucket, replica, settings, key)?;
            }
            self.resource(&id, "AWS::S3::Bucket", properties, true);
            self.retain(&id);
            self.output(&format!("{id}Name"), json!({ "Ref": id }), &format!("The bucket {bucket}"));
        }
        for (bucket, used) in &needs.buckets {
            if !used.triggers.is_empty() && !created.contains(bucket) {
                self.warnings.push(format!(
                    "bucket {bucket} starts jobs but this template does not create it: turn on its EventBridge \
                     notifications (aws s3api put-bucket-notification-configuration --bucket {bucket} \
                     --notification-configuration '{{\"EventBridgeConfiguration\": {{}}}}')"
                ));
            }
        }
        Ok(())
    }

    /// Cross-region replication of `bucket` to `replica`, with the role S3 replicates as.
    fn replication(
        &mut self,
        role: &str,
        bucket: &str,
        replica: &str,
        settings: &Settings,
        key: Option<&Value>,
    ) -> Result<Value> {
        let source = policy::bucket_arn(bucket);
        let target = policy::bucket_arn(replica);
        let mut statements = vec![
            json!({ "Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": { "Fn::Sub": source } }),
            json!({
                "Effect": "Allow",
                "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                "Resource": { "Fn::Sub": format!("{source}/*") },
            }),
            json!({
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": { "Fn::Sub": format!("{target}/*") },
            }),
        ];
        let mut rule = json!({
            "Id": "ReplicateEverything",
            "Status": "Enabled",
            "Priority": 1,
            "Filter": { "Prefix": "" },
            "DeleteMarkerReplication": { "Status": "Enabled" },
            "Destination": { "Bucket": { "Fn::Sub": target } },
        });
        if let Some(key) = key {
            let Some(replica_key) = &settings.replica_kms_key_arn else {
                return Err(Error::config(format!(
                    "pipeline file: deploy.replicas: bucket {bucket} is encrypted with SSE-KMS: set \
                     deploy.replica_kms_key_arn (a key in the replica's region), or bucket_encryption = \"sse-s3\""
                )));
            };
            rule["SourceSelectionCriteria"] = json!({ "SseKmsEncryptedObjects": { "Status": "Enabled" } });
            rule["Destination"]["EncryptionConfiguration"] = json!({ "ReplicaKmsKeyID": replica_key });
            statements.push(json!({ "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key }));
            statements.push(json!({ "Effect": "Allow", "Action": "kms:Encrypt", "Resource": replica_key }));
        }
        let trust = service_trust("s3.amazonaws.com");
        let policies = json!([{ "PolicyName": self.named("replication"), "PolicyDocument": { "Version": "2012-10-17", "Statement": statements } }]);
        self.resource(
            role,
            "AWS::IAM::Role",
            json!({ "RoleName": self.named(&format!("repl-{}", short(bucket))), "AssumeRolePolicyDocument": trust, "Policies": policies }),
            true,
        );
        Ok(json!({ "Role": { "Fn::GetAtt": [role, "Arn"] }, "Rules": [rule] }))
    }

    fn databases(&mut self, needs: &Needs, settings: &Settings) -> Result<()> {
        if let Some(unknown) = settings.existing_databases.iter().find(|d| !needs.databases.contains(*d)) {
            let known: Vec<&String> = needs.databases.iter().collect();
            return Err(Error::config(format!(
                "pipeline file: deploy.existing_databases: '{unknown}' is not a database the pipeline uses ({known:?})"
            )));
        }
        // A database the pipeline only reads from must exist already: its creation would fail
        // the stack (AlreadyExists), and its tables' files are where Glue says, which deploy
        // does not ask.
        let written: std::collections::BTreeSet<&str> =
            needs.tables_written.iter().map(|t| t.database.as_str()).collect();
        let only_read: Vec<String> = needs
            .tables_read
            .iter()
            .filter(|t| !written.contains(t.database.as_str()))
            .map(ToString::to_string)
            .collect();
        if !only_read.is_empty() {
            self.warnings.push(format!(
                "the pipeline reads {}, which none of its jobs writes or crawls: their databases are not created \
                 (they must exist), and the runner's policy lets it read their Glue definitions but not their \
                 files; declare them as sources, or grant s3:ListBucket and s3:GetObject on their locations",
                only_read.join(", ")
            ));
        }
        let created = needs.databases.iter().filter(|d| written.contains(d.as_str()));
        for database in created.filter(|d| !settings.existing_databases.contains(d)) {
            let id = logical_id_among(&["database"], database, needs.databases.iter().map(String::as_str));
            let input = json!({ "Name": database, "Description": format!("Tables of etl pipeline {}", self.name) });
            self.resource(
                &id,
                "AWS::Glue::Database",
                json!({ "CatalogId": { "Ref": "AWS::AccountId" }, "DatabaseInput": input }),
                false,
            );
            self.retain(&id);
        }
        Ok(())
    }

    fn log_group(&mut self, settings: &Settings) {
        let properties =
            json!({ "LogGroupName": format!("/etl/{}", self.name), "RetentionInDays": settings.log_retention_days() });
        self.resource("LogGroup", "AWS::Logs::LogGroup", properties, true);
        self.output("LogGroupName", json!({ "Ref": "LogGroup" }), "Where the tasks' JSON logs go");
    }

    /// The runner's role (the tasks'), with the pipeline's least-privilege policy, and the role
    /// ECS pulls the image and writes logs as.
    /// The statements that do not fit the role's inline policy go to managed policies it is
    /// given (IAM's limits: 10,240 characters of inline policy a role, 6,144 a managed policy).
    fn roles(&mut self, statements: &[Statement]) -> Result<()> {
        let document = |statements: &[Statement]| json!({ "Version": "2012-10-17", "Statement": statements.iter().map(Statement::to_template).collect::<Vec<_>>() });
        let mut policies = policy::split_by_size(statements, INLINE_POLICY_CHARS, MANAGED_POLICY_CHARS)?.into_iter();
        let inline = policies.next().unwrap_or_default();
        let inline = json!([{ "PolicyName": self.named("runner"), "PolicyDocument": document(&inline) }]);
        let mut managed = Vec::new();
        for (index, statements) in policies.enumerate() {
            let id = format!("RunnerPolicy{}", index + 2);
            let properties = json!({
                "ManagedPolicyName": self.named(&format!("runner-{}", index + 2)),
                "PolicyDocument": document(&statements),
            });
            self.resource(&id, "AWS::IAM::ManagedPolicy", properties, false);
            managed.push(json!({ "Ref": id }));
        }
        if managed.len() > MANAGED_POLICIES_PER_ROLE {
            return Err(Error::config(format!(
                "the runner's permissions need {} managed policies besides its inline one, more than the {MANAGED_POLICIES_PER_ROLE} \
                 IAM attaches to a role: split the pipeline, or give its jobs fewer locations",
                managed.len()
            )));
        }
        let mut role = json!({ "RoleName": self.named("runner"), "AssumeRolePolicyDocument": service_trust("ecs-tasks.amazonaws.com"), "Policies": inline });
        if !managed.is_empty() {
            role["ManagedPolicyArns"] = json!(managed);
        }
        self.resource("RunnerRole", "AWS::IAM::Role", role, true);
        self.output("RunnerRoleArn", json!({ "Fn::GetAtt": ["RunnerRole", "Arn"] }), "The role etl runs as");
        let managed = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
        self.resource(
            "ExecutionRole",
            "AWS::IAM::Role",
            json!({
                "RoleName": self.named("execution"),
                "AssumeRolePolicyDocument": service_trust("ecs-tasks.amazonaws.com"),
                "ManagedPolicyArns": [{ "Fn::Sub": managed }],
            }),
            true,
        );
        Ok(())
    }

    fn task(&mut self, settings: &Settings) {
        self.resource("Cluster", "AWS::ECS::Cluster", json!({ "ClusterName": self.named("cluster") }), true);
        let container = json!({
            "Name": states::CONTAINER,
            "Image": { "Ref": "ImageUri" },
            "Essential": true,
            "EntryPoint": ["etl"],
            "Command": ["pipeline", "run", { "Ref": "PipelinePath" }, "--json"],
            "Environment": [
                { "Name": "AWS_REGION", "Value": { "Ref": "AWS::Region" } },
                { "Name": "ETL_CATALOG", "Value": "glue" },
                { "Name": "ETL_HOME", "Value": "/tmp/etl" },
            ],
            "LogConfiguration": {
                "LogDriver": "awslogs",
                "Options": {
                    "awslogs-group": { "Ref": "LogGroup" },
                    "awslogs-region": { "Ref": "AWS::Region" },
                    "awslogs-stream-prefix": "etl",
                },
            },
        });
        self.resource(
            "TaskDefinition",
            "AWS::ECS::TaskDefinition",
            json!({
                "Family": self.named("task"),
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": settings.cpu().to_string(),
                "Memory": settings.memory().to_string(),
                "ExecutionRoleArn": { "Fn::GetAtt": ["ExecutionRole", "Arn"] },
                "TaskRoleArn": { "Fn::GetAtt": ["RunnerRole", "Arn"] },
                "ContainerDefinitions": [container],
            }),
            true,
        );
    }

    fn state_machine(&mut self, pipeline: &Pipeline) {
        let prefix = "arn:${AWS::Partition}";
        let statements = json!([
            { "Effect": "Allow", "Action": "ecs:RunTask", "Resource": { "Fn::Sub": format!("{prefix}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:task-definition/{}:*", self.named("task")) } },
            { "Effect": "Allow", "Action": ["ecs:StopTask", "ecs:DescribeTasks"], "Resource": { "Fn::Sub": format!("{prefix}:ecs:${{AWS::Region}}:${{AWS::AccountId}}:task/{}/*", self.named("cluster")) } },
            { "Effect": "Allow", "Action": "iam:PassRole", "Resource": [{ "Fn::GetAtt": ["RunnerRole", "Arn"] }, { "Fn::GetAtt": ["ExecutionRole", "Arn"] }] },
            // Step Functions waits for a task's end (runTask.sync) through a rule it manages.
            { "Effect": "Allow", "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"], "Resource": { "Fn::Sub": format!("{prefix}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/StepFunctionsGetEventsForECSTaskRule") } },
            { "Effect": "Allow", "Action": "sns:Publish", "Resource": { "Ref": "FailureTopic" } },
        ]);
        let policies = json!([{ "PolicyName": self.named("states"), "PolicyDocument": { "Version": "2012-10-17", "Statement": statements } }]);
        self.resource(
            "StateMachineRole",
            "AWS::IAM::Role",
            json!({ "RoleName": self.named("states"), "AssumeRolePolicyDocument": service_trust("states.amazonaws.com"), "Policies": policies }),
            true,
        );
        let variables = json!({
            "ClusterArn": { "Fn::GetAtt": ["Cluster", "Arn"] },
            "TaskDefinitionArn": { "Ref": "TaskDefinition" },
            "TopicArn": { "Ref": "FailureTopic" },
            "SubnetList": { "Fn::Join": [",", { "Ref": "Subnets" }] },
            "SecurityGroupList": { "Fn::Join": [",", { "Ref": "SecurityGroups" }] },
            "AssignPublicIp": { "Ref": "AssignPublicIp" },
            "PipelinePath": { "Ref": "PipelinePath" },
        });
        self.resource(
            "StateMachine",
            "AWS::StepFunctions::StateMachine",
            json!({
                "StateMachineName": self.named("pipeline"),
                "RoleArn": { "Fn::GetAtt": ["StateMachineRole", "Arn"] },
                "DefinitionString": { "Fn::Sub": [states::definition(pipeline), variables] },
            }),
            true,
        );
        self.output("StateMachineArn", json!({ "Ref": "StateMachine" }), "Runs the pipeline's jobs in graph order");
    }

    /// EventBridge rules: the pipeline's schedule, each job's own, and each S3 trigger.
    fn rules(&mut self, needs: &Needs) {
        let mut rules: Vec<(String, Value)> = Vec::new();
        if let Some(schedule) = &needs.schedule {
            let target = self.rule_target(Some("{}".to_string()));
            rules.push((
                "PipelineSchedule".into(),
                json!({
                    "Name": self.named("schedule"),
                    "Description": format!("Runs pipeline {} on its schedule", self.name),
                    "ScheduleExpression": schedule.to_string(),
                    "State": "ENABLED",
                    "Targets": [target],
                }),
            ));
        }
        for (job, file, schedule) in &needs.job_schedules {
            let input = json!({ "job_file": file }).to_string();
            rules.push((
                logical_id_among(&["schedule"], job, needs.job_schedules.iter().map(|(job, ..)| job.as_str())),
                json!({
                    "Name": self.named(&format!("job-{}", short(job))),
                    "Description": format!("Runs job {job} on its own schedule"),
                    "ScheduleExpression": schedule.to_string(),
                    "State": "ENABLED",
                    "Targets": [self.rule_target(Some(input))],
                }),
            ));
        }
        let mut index = 0;
        for (bucket, used) in &needs.buckets {
            for (prefix, suffix) in &used.triggers {
                index += 1;
                let key = match suffix {
                    None => json!({ "prefix": prefix }),
                    // One pattern for both ends: EventBridge's wildcard (`*` and `\` escaped).
                    Some(suffix) => {
                        json!({ "wildcard": format!("{}*{}", wildcard_literal(prefix), wildcard_literal(suffix)) })
                    }
                };
                let pattern = json!({
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": { "bucket": { "name": [bucket] }, "object": { "key": [key] } },
                });
                rules.push((
                    format!("Trigger{index}"),
                    json!({
                        "Name": self.named(&format!("trigger-{index}")),
                        "Description": format!("Runs the jobs objects created under s3://{bucket}/{prefix} start"),
                        "EventPattern": pattern,
                        "State": "ENABLED",
                        "Targets": [self.rule_target(None)],
                    }),
                ));
            }
        }
        if rules.is_empty() {
            return;
        }
        let start =
            json!([{ "Effect": "Allow", "Action": "states:StartExecution", "Resource": { "Ref": "StateMachine" } }]);
        let policies = json!([{ "PolicyName": self.named("events"), "PolicyDocument": { "Version": "2012-10-17", "Statement": start } }]);
        self.resource(
            "EventsRole",
            "AWS::IAM::Role",
            json!({ "RoleName": self.named("events"), "AssumeRolePolicyDocument": service_trust("events.amazonaws.com"), "Policies": policies }),
            true,
        );
        for (id, properties) in rules {
            self.resource(&id, "AWS::Events::Rule", properties, false);
        }
    }

    /// The state machine as a rule's target; `input` replaces the event (a schedule's).
    fn rule_target(&self, input: Option<String>) -> Value {
        let mut target = json!({
            "Id": "StateMachine",
            "Arn": { "Ref": "StateMachine" },
            "RoleArn": { "Fn::GetAtt": ["EventsRole", "Arn"] },
        });
        if let Some(input) = input {
            target["Input"] = json!(input);
        }
        target
    }
}

fn service_trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }],
    })
}

/// IAM's limits on policy text (characters, whitespace not counted): a role's inline policies
/// together, one managed policy, and the managed policies a role takes.
const INLINE_POLICY_CHARS: usize = 10_240;
const MANAGED_POLICY_CHARS: usize = 6_144;
const MANAGED_POLICIES_PER_ROLE: usize = 10;

/// A name part that keeps names within AWS's limits (64 characters for roles and rules).
/// At most 24 characters of `text`; a longer one keeps 19 and a digest of the whole, so that
/// `daily_orders_by_region_eu_west` and `…_east` stay two names.
fn short(text: &str) -> String {
    if text.chars().count() <= 24 {
        return text.to_string();
    }
    let kept: String = text.chars().take(19).collect();
    format!("{kept}-{:04x}", crate::schema::names::digest(text) as u16)
}

fn wildcard_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('*', "\\*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_apart() {
        let (west, east) = (short("daily_orders_by_region_eu_west"), short("daily_orders_by_region_eu_east"));
        assert_ne!(west, east);
        assert!(west.starts_with("daily_orders_by_reg-") && west.len() == 24, "{west}");
        assert_eq!(short("daily_orders"), "daily_orders");
    }
}

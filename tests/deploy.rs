//! `etl deploy` and `etl doctor`: the template of the example pipeline pinned whole, a larger
//! pipeline's template checked resource by resource (the runner policy statement by statement
//! against the jobs' locations), refusals, and the doctor against the local endpoint.
//! `tests/independent/check_deploy.py` lints the templates with cfn-lint, creates them as
//! stacks on the endpoint, and runs the doctor as a user whose policy denies an action.

use serde_json::Value;

use crate::util::Sandbox;
use crate::util::aws::{create_bucket, endpoint, list_keys, put_object, unique};

/// A pipeline on S3: two crawls triggered by objects (one with a suffix), a join of both,
/// a report on its own schedule, and an SSE-KMS target.
pub fn larger_pipeline(s: &Sandbox, raw: &str, lake: &str) {
    s.write(
        "p/pipeline.toml",
        "name = \"sales\"\nschedule = \"cron(0 2 * * ? *)\"\n[deploy]\ncpu = 2048\nmemory = 8192\nbucket_encryption = \"sse-s3\"\nlog_retention_days = 90\n",
    );
    s.write(
        "p/orders.toml",
        format!(
            "name = \"orders\"\n[[source]]\ntable = \"raw.orders\"\nlocation = \"s3://{raw}/orders/\"\nformat = \"csv\"\n\
             [[target]]\ntable = \"clean.orders\"\nquery = \"SELECT * FROM raw.orders\"\nlocation = \"s3://{lake}/clean/orders/\"\n\
             [[trigger]]\ns3 = \"s3://{raw}/orders/\"\nsuffix = \".csv\"\n"
        ),
    );
    s.write(
        "p/customers.toml",
        format!(
            "name = \"customers\"\n[[source]]\ntable = \"raw.customers\"\nlocation = \"s3://{raw}/customers/\"\nformat = \"csv\"\n\
             [[target]]\ntable = \"clean.customers\"\nquery = \"SELECT * FROM raw.customers\"\nlocation = \"s3://{lake}/clean/customers/\"\n\
             [[trigger]]\ns3 = \"s3://{raw}/customers/\"\n"
        ),
    );
    s.write(
        "p/joined.toml",
        format!(
            "name = \"joined\"\n[[target]]\ntable = \"mart.sales\"\nquery = \"SELECT o.id, c.name FROM clean.orders o JOIN clean.customers c ON o.customer = c.id\"\n\
             location = \"s3://{lake}/mart/sales/\"\nencryption = \"aws:kms\"\nkms_key_id = \"arn:aws:kms:us-east-1:123456789012:key/k1\"\n"
        ),
    );
    s.write(
        "p/report.toml",
        format!(
            "name = \"report\"\nschedule = \"rate(6 hours)\"\n[[target]]\ntable = \"mart.report\"\nquery = \"SELECT count(*) AS n FROM mart.sales\"\nlocation = \"s3://{lake}/mart/report/\"\n"
        ),
    );
}

fn template(s: &Sandbox, extra: &[&str]) -> Value {
    let mut args = vec!["deploy", "p", "--template", "t.json", "--image", "etl:test"];
    args.extend_from_slice(extra);
    let report = s.json(&args);
    assert_eq!(report["format"], "json");
    serde_json::from_str(&std::fs::read_to_string(s.path("t.json")).unwrap()).unwrap()
}

#[test]
fn the_example_pipelines_template_is_pinned_and_the_same_every_time() {
    let s = Sandbox::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/pipeline_example");
    let first = s.etl(&[
        "deploy",
        example,
        "--template",
        "a.yaml",
        "--image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:1",
    ]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("is a local path: a deployed task cannot read or write it"), "{}", first.stderr);
    let listed = |line: &str| {
        line.split_whitespace().collect::<Vec<_>>() == ["StateMachine", "AWS::StepFunctions::StateMachine"]
    };
    assert!(first.stdout.lines().any(listed), "{}", first.stdout);
    s.etl(&[
        "deploy",
        example,
        "--template",
        "b.yaml",
        "--image",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:1",
    ]);
    let (a, b) = (std::fs::read(s.path("a.yaml")).unwrap(), std::fs::read(s.path("b.yaml")).unwrap());
    assert_eq!(a, b, "the same pipeline gives the same bytes");
    crate::golden::assert_golden("deploy_example.yaml", &String::from_utf8(a).unwrap());
}

#[test]
fn the_runner_policy_grants_exactly_what_the_jobs_touch() {
    let s = Sandbox::new();
    larger_pipeline(&s, "raw-in", "the-lake");
    let t = template(&s, &[]);
    let policy = &t["Resources"]["RunnerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let statement = |sid: &str| -> &Value {
        policy
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}: {policy}"))
    };
    let resources = |sid: &str| -> Vec<String> {
        let text = |r: &Value| r["Fn::Sub"].as_str().or(r.as_str()).unwrap().to_string();
        statement(sid)["Resource"].as_array().unwrap().iter().map(text).collect()
    };
    let actions = |sid: &str| -> Vec<String> {
        statement(sid)["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
    };
    // Sources: listed under their prefixes and read, never written.
    assert_eq!(actions("ListRawIn"), ["s3:ListBucket"]);
    assert_eq!(resources("ListRawIn"), ["arn:${AWS::Partition}:s3:::raw-in"]);
    assert_eq!(
        statement("ListRawIn")["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!(["customers", "customers/*", "orders", "orders/*"])
    );
    // Each location is first asked for as an object (a source may name one file).
    assert_eq!(
        resources("ReadRawIn"),
        [
            "arn:${AWS::Partition}:s3:::raw-in/customers",
            "arn:${AWS::Partition}:s3:::raw-in/customers/*",
            "arn:${AWS::Partition}:s3:::raw-in/orders",
            "arn:${AWS::Partition}:s3:::raw-in/orders/*"
        ]
    );
    assert!(policy.as_array().unwrap().iter().all(|s| s["Sid"] != "WriteRawIn"), "sources are read only");
    // Targets: written under their roots, staging and run folders included.
    let written = [
        "arn:${AWS::Partition}:s3:::the-lake/clean/customers/*",
        "arn:${AWS::Partition}:s3:::the-lake/clean/orders/*",
        "arn:${AWS::Partition}:s3:::the-lake/mart/report/*",
        "arn:${AWS::Partition}:s3:::the-lake/mart/sales/*",
    ];
    assert_eq!(resources("WriteTheLake"), written);
    assert_eq!(
        actions("WriteTheLake"),
        ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    );
    assert_eq!(resources("UseKeys"), ["arn:aws:kms:us-east-1:123456789012:key/k1"]);
    // Glue: exactly the databases and tables named; written tables are the crawled sources
    // and the targets.
    let glue = |what: &str| format!("arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{what}");
    let mut expected: Vec<String> = vec![glue("catalog")];
    expected.extend(["clean", "mart", "raw"].iter().map(|d| glue(&format!("database/{d}"))));
    expected.extend(
        ["clean/customers", "clean/orders", "mart/report", "mart/sales", "raw/customers", "raw/orders"]
            .iter()
            .map(|t| glue(&format!("table/{t}"))),
    );
    let mut write_tables = resources("GlueWriteTables");
    write_tables.sort();
    expected.sort();
    assert_eq!(write_tables, expected);
    // No statement of S3 or Glue on everything.
    for statement in policy.as_array().unwrap() {
        for resource in statement["Resource"].as_array().unwrap() {
            let text = resource["Fn::Sub"].as_str().unwrap_or(resource.as_str().unwrap_or(""));
            assert!(text != "*" && !text.ends_with(":::*") && !text.ends_with(":table/*"), "{statement}");
        }
    }
    assert!(policy.as_array().unwrap().iter().all(|s| s["Sid"] != "Athena"), "Athena only with --athena");
    let with_athena = template(&s, &["--athena", "primary", "--athena-results", "s3://the-lake/athena/"]);
    let policy = &with_athena["Resources"]["RunnerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    assert!(policy.as_array().unwrap().iter().any(|s| s["Sid"] == "Athena"), "{policy}");
}

#[test]
fn schedules_triggers_and_the_state_machine_follow_the_graph() {
    let s = Sandbox::new();
    larger_pipeline(&s, "raw-in", "the-lake");
    let t = template(&s, &["--create-buckets"]);
    let resources = t["Resources"].as_object().unwrap();
    assert_eq!(resources["PipelineSchedule"]["Properties"]["ScheduleExpression"], "cron(0 2 * * ? *)");
    let report = &resources["ScheduleReport"]["Properties"];
    assert_eq!(report["ScheduleExpression"], "rate(6 hours)");
    assert_eq!(report["Targets"][0]["Input"], r#"{"job_file":"report.toml"}"#);
    let patterns: Vec<&Value> = resources
        .iter()
        .filter(|(id, _)| id.starts_with("Trigger"))
        .map(|(_, r)| &r["Properties"]["EventPattern"])
        .collect();
    assert_eq!(patterns.len(), 2);
    assert_eq!(patterns[0]["detail"]["object"]["key"][0], serde_json::json!({ "prefix": "customers/" }));
    assert_eq!(patterns[1]["detail"]["object"]["key"][0], serde_json::json!({ "wildcard": "orders/*.csv" }));
    assert_eq!(patterns[1]["detail"]["bucket"]["name"][0], "raw-in");
    assert_eq!(patterns[1]["detail-type"][0], "Object Created");
    // Created buckets: versioned, encrypted, private, multipart uploads aborted after 7 days,
    // EventBridge notifications where objects start jobs.
    let raw = &resources["BucketRawIn"];
    assert_eq!(raw["DeletionPolicy"], "Retain");
    let properties = &raw["Properties"];
    assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    assert_eq!(properties["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"], true);
    assert_eq!(
        properties["LifecycleConfiguration"]["Rules"][0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"],
        7
    );
    assert_eq!(properties["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"], true);
    assert!(resources["BucketTheLake"]["Properties"].get("NotificationConfiguration").is_none());
    // The task: the size pipeline.toml asks for, the Glue catalog, logs kept 90 days.
    let task = &resources["TaskDefinition"]["Properties"];
    assert_eq!((task["Cpu"].as_str(), task["Memory"].as_str()), (Some("2048"), Some("8192")));
    assert_eq!(resources["LogGroup"]["Properties"]["RetentionInDays"], 90);
    // Every resource that takes tags is tagged after the pipeline; names say it too.
    for (id, resource) in resources {
        if let Some(tags) = resource["Properties"].get("Tags") {
            assert_eq!(tags[0], serde_json::json!({ "Key": "etl:pipeline", "Value": "sales" }), "{id}");
        }
    }
    assert_eq!(resources["StateMachine"]["Properties"]["StateMachineName"], "etl-sales-pipeline");
    // The state machine: the crawls at once, then the join, then the report; each retried and
    // caught by the failure notification.
    let sub = &resources["StateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"];
    let machine: Value = serde_json::from_str(sub[0].as_str().unwrap()).unwrap();
    let states = &machine["States"];
    assert_eq!(states["Which"]["Default"], "Level1");
    let branches: Vec<&str> =
        states["Level1"]["Branches"].as_array().unwrap().iter().map(|b| b["StartAt"].as_str().unwrap()).collect();
    assert_eq!(branches, ["Job_customers", "Job_orders"]);
    assert_eq!(states["Level1"]["Next"], "Job_joined");
    assert_eq!(states["Job_joined"]["Next"], "Job_report");
    assert_eq!(states["Job_report"]["Retry"][0]["MaxAttempts"], 3);
    assert_eq!(states["Job_report"]["Retry"][0]["BackoffRate"], 2.0);
    assert_eq!(states["Job_report"]["Catch"][0]["Next"], "NotifyFailure");
    assert_eq!(states["NotifyFailure"]["Parameters"]["TopicArn"], "${TopicArn}");
    for variable in [
        "ClusterArn",
        "TaskDefinitionArn",
        "TopicArn",
        "SubnetList",
        "SecurityGroupList",
        "AssignPublicIp",
        "PipelinePath",
    ] {
        assert!(sub[1].get(variable).is_some(), "{variable} is filled in");
    }
    for output in ["RunnerRoleArn", "FailureTopicArn", "StateMachineArn", "ImageUri", "BucketRawInName"] {
        assert!(t["Outputs"].get(output).is_some(), "output {output}");
    }
    assert_eq!(t["Parameters"]["ImageUri"]["Default"], "etl:test");
}

#[test]
fn what_cloudformation_would_refuse_is_refused_first() {
    let s = Sandbox::new();
    larger_pipeline(&s, "raw-in", "the-lake");
    let deploy = || s.etl(&["deploy", "p", "--template", "t.yaml"]);
    s.write("p/pipeline.toml", "[deploy]\ncpu = 256\nmemory = 8192\n");
    deploy().assert_failure(2, "deploy.memory: 8192 MiB does not go with cpu = 256");
    s.write("p/pipeline.toml", "[deploy]\ncreate_buckets = [\"elsewhere\"]\n");
    deploy().assert_failure(2, "deploy.create_buckets: 'elsewhere' is not a bucket the pipeline uses");
    s.write("p/pipeline.toml", "[deploy]\ncreate_buckets = true\nreplicas = { the-lake = \"the-lake-dr\" }\n");
    deploy().assert_failure(2, "bucket the-lake is encrypted with SSE-KMS: set deploy.replica_kms_key_arn");
    s.write(
        "p/pipeline.toml",
        "[deploy]\ncreate_buckets = [\"the-lake\"]\nreplicas = { the-lake = \"the-lake-dr\" }\nreplica_kms_key_arn = \"arn:aws:kms:eu-west-1:123456789012:key/r\"\n",
    );
    assert_eq!(deploy().code, 0);
    s.write("p/pipeline.toml", "[deploy]\nreplicas = { the-lake = \"the-lake-dr\" }\n");
    deploy().assert_failure(2, "deploy.replicas: 'the-lake' is not a bucket this template creates");
    s.etl(&["deploy", "p", "--template", "t.yaml", "--format", "xml"]).assert_failure(2, "unknown format 'xml'");
    s.etl(&["deploy", "nowhere", "--template", "t.yaml"]).assert_failure(2, "nowhere: not a folder of job files");
    // A refused pipeline writes no template.
    std::fs::remove_file(s.path("t.yaml")).unwrap();
    s.write("p/pipeline.toml", "[deploy]\ncpu = 3\n");
    deploy().assert_failure(2, "deploy.cpu: 3 is not a Fargate size");
    assert!(!s.path("t.yaml").exists());
}

#[test]
fn doctor_passes_where_everything_is_reachable_and_names_a_missing_bucket() {
    if endpoint().is_none() {
        return;
    }
    let (raw, lake) = (unique("docraw"), unique("doclake"));
    create_bucket(&raw);
    create_bucket(&lake);
    put_object(&raw, "orders/a.csv", b"id,customer\n1,c1\n");
    let s = Sandbox::new();
    larger_pipeline(&s, &raw, &lake);
    let doctor = s.etl_with_env(&["doctor", "p", "--json"], &[("ETL_CATALOG", "glue")]);
    assert_eq!(doctor.code, 0, "{doctor:?}");
    let checks: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let checks = checks["checks"].as_array().unwrap();
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "failed").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let named = |text: &str| {
        checks
            .iter()
            .find(|c| c["check"].as_str().unwrap().contains(text))
            .unwrap_or_else(|| panic!("{text}: {checks:?}"))
    };
    assert_eq!(named("credentials")["status"], "ok");
    assert_eq!(named(&format!("read s3://{raw}/orders/a.csv"))["status"], "ok");
    assert_eq!(named(&format!("write s3://{lake}/mart/sales/_etl_staging/"))["status"], "ok");
    assert_eq!(named(&format!("multipart upload to s3://{lake}/clean/orders/"))["status"], "ok");
    assert_eq!(named(&format!("versioning of bucket {lake}"))["status"], "warning");
    assert_eq!(named(&format!("EventBridge notifications of bucket {raw}"))["status"], "warning");
    assert_eq!(named("Glue table mart.sales")["status"], "ok");
    // The probes left nothing behind.
    assert!(list_keys(&lake, "").is_empty(), "{:?}", list_keys(&lake, ""));

    let s = Sandbox::new();
    larger_pipeline(&s, &raw, &unique("ghost"));
    let doctor = s.etl_with_env(&["doctor", "p/joined.toml"], &[("ETL_CATALOG", "glue")]);
    assert_eq!(doctor.code, 1, "{doctor:?}");
    assert!(doctor.stdout.contains("FAILED   bucket ghost"), "{}", doctor.stdout);
    assert!(
        doctor
            .stdout
            .contains("FAILED   Glue table clean.orders: does not exist, and no job of the pipeline writes it"),
        "{}",
        doctor.stdout
    );
    assert!(doctor.stderr.contains("check(s) failed"), "{}", doctor.stderr);
}

//! S3 and Glue end to end, on the local endpoint: the same commands as on local files, with
//! `s3://` locations and `--catalog glue`.

use crate::util::{Sandbox, aws, columns};

/// A sandbox whose catalog is Glue, with a raw and a curated bucket of its own.
struct Cloud {
    sandbox: Sandbox,
    raw: String,
    curated: String,
    database: String,
}

impl Cloud {
    fn new() -> Option<Cloud> {
        aws::endpoint()?;
        let cloud = Cloud {
            sandbox: Sandbox::new(),
            raw: aws::unique("raw"),
            curated: aws::unique("curated"),
            database: aws::unique("db"),
        };
        aws::create_bucket(&cloud.raw);
        aws::create_bucket(&cloud.curated);
        Some(cloud)
    }

    fn etl(&self, args: &[&str]) -> crate::util::Output {
        let mut all = args.to_vec();
        all.extend(["--catalog", "glue"]);
        self.sandbox.etl(&all)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.etl(&all).json()
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    fn job(&self, mode: &str, extra_target: &str) {
        self.sandbox.write("job.sql", "CREATE VIEW per_day AS SELECT day, count(*) AS orders, sum(amount) AS amount FROM ${db}.orders GROUP BY day;\n".replace("${db}", &self.database));
        self.sandbox.write(
            "job.toml",
            format!(
                r#"name = "s3job"
catalog = "glue"
[[source]]
table = "{db}.orders"
location = "s3://{raw}/orders/"
[[step]]
sql = "job.sql"
[[target]]
table = "{db}.per_day"
query = "SELECT * FROM per_day"
location = "s3://{curated}/per_day/"
partition_by = ["day"]
mode = "{mode}"
{extra_target}
"#,
                db = self.database,
                raw = self.raw,
                curated = self.curated
            ),
        );
    }
}

#[test]
fn crawl_and_schema_versions_from_s3_into_glue() {
    let Some(cloud) = Cloud::new() else { return };
    aws::put_object(&cloud.raw, "orders/day=2026-11-02/a.csv", b"id,amount\n1,10\n2,20\n");
    aws::put_object(&cloud.raw, "orders/day=2026-11-03/b.csv.gz", &gzip(b"id,amount\n3,5\n"));
    let location = format!("s3://{}/orders/", cloud.raw);
    let inferred = cloud.json(&["infer", &location]);
    assert_eq!(columns(&inferred["columns"]), ["id bigint", "amount bigint"]);
    assert_eq!(columns(&inferred["partition_keys"]), ["day date"]);
    assert_eq!(inferred["files"], 2);

    let table = cloud.table("orders");
    let created = cloud.json(&["crawl", &location, "--table", &table]);
    assert_eq!((created["version"].as_u64(), created["change"].as_str()), (Some(1), Some("created")));
    aws::put_object(&cloud.raw, "orders/day=2026-11-04/c.csv", b"id,amount,coupon\n4,7.5,X\n");
    let updated = cloud.json(&["crawl", &location, "--table", &table]);
    assert_eq!((updated["version"].as_u64(), updated["change"].as_str()), (Some(2), Some("updated")));
    let history = cloud.json(&["schema", "history", &table]);
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    let diff = cloud.json(&["schema", "diff", &table, "1", "2"]);
    assert_eq!(diff["added"], serde_json::json!([{"name": "coupon", "type": "string"}]));
    let show = cloud.json(&["schema", "show", &table]);
    assert_eq!(show["table_type"], "EXTERNAL_TABLE");
    assert_eq!(show["partitions"].as_array().unwrap().len(), 3);
    let rows = cloud.sandbox.etl(&[
        "sql",
        &format!("SELECT sum(amount) AS total FROM {table}"),
        "--format",
        "json",
        "--catalog",
        "glue",
    ]);
    assert_eq!(rows.json()[0]["total"], 42.5);
}

#[test]
fn a_job_publishes_partitioned_parquet_to_s3_and_reruns_replace_it() {
    let Some(cloud) = Cloud::new() else { return };
    aws::put_object(&cloud.raw, "orders/day=2026-11-02/a.csv", b"id,amount\n1,10\n2,20\n");
    aws::put_object(&cloud.raw, "orders/day=2026-11-03/a.csv", b"id,amount\n3,5\n");
    cloud.job("overwrite_partitions", "encryption = \"aws:kms\"\nkms_key_id = \"alias/etl-test\"");
    let report = cloud.json(&["run", "job.toml", "--logical-date", "2026-11-03"]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["targets"][0]["partitions"], 2);
    assert_eq!(report["targets"][0]["location"], format!("s3://{}/per_day", cloud.curated));
    let first = aws::visible_keys(&cloud.curated, "per_day/");
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|k| k.starts_with("per_day/day=2026-11-0") && k.contains("/run-")), "{first:?}");

    // The objects' encryption is checked by an independent client (tests/independent/check_aws.py):
    // the endpoint answers unsigned requests for KMS-encrypted objects with 403.
    cloud.json(&["run", "job.toml", "--logical-date", "2026-11-03"]);
    let second = aws::visible_keys(&cloud.curated, "per_day/");
    assert_eq!(second.len(), 2, "the rerun replaced both partitions: {second:?}");
    assert!(second.iter().all(|k| !first.contains(k)));
    let per_day = cloud.table("per_day");
    let total = cloud.sandbox.etl(&[
        "sql",
        &format!("SELECT sum(orders) AS n FROM {per_day}"),
        "--format",
        "json",
        "--catalog",
        "glue",
    ]);
    assert_eq!(total.json()[0]["n"], 3);
    let show = cloud.json(&["schema", "show", &per_day]);
    assert_eq!(show["serde"]["library"], "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
    let partitions = show["partitions"].as_array().unwrap();
    assert!(partitions.iter().all(|p| p["location"].as_str().unwrap().contains("/run-")), "{partitions:?}");
}

#[test]
fn a_compaction_on_s3_and_glue_lays_the_files_out_as_they_were_written() {
    let Some(cloud) = Cloud::new() else { return };
    aws::put_object(&cloud.raw, "orders/day=2026-11-02/a.csv", b"id,amount\n1,10\n2,20\n");
    aws::put_object(&cloud.raw, "orders/day=2026-11-03/a.csv", b"id,amount\n3,5\n");
    cloud.job("append", "sort_by = [\"orders\"]\nbloom_filter = [\"amount\"]");
    for date in ["2026-11-03", "2026-11-04"] {
        assert_eq!(cloud.json(&["run", "job.toml", "--logical-date", date])["status"], "succeeded");
    }
    let per_day = cloud.table("per_day");
    let compacted = cloud.json(&["compact", &per_day]);
    assert_eq!((compacted["files_before"].as_u64(), compacted["files_after"].as_u64()), (Some(4), Some(2)));
    // The order the job wrote in, read from a file's footer on S3: without it, etl would choose
    // none for these columns.
    assert_eq!(compacted["sort_by"], serde_json::json!(["orders"]));
    assert_eq!(aws::visible_keys(&cloud.curated, "per_day/").len(), 2);
    let idle = cloud.json(&["compact", &per_day]);
    assert_eq!(
        (idle["version"].clone(), idle["run_id"].clone()),
        (compacted["version"].clone(), serde_json::Value::Null)
    );
}

#[test]
fn racing_first_runs_one_wins_the_other_gets_a_conflict() {
    let Some(cloud) = Cloud::new() else { return };
    aws::put_object(&cloud.raw, "orders/day=2026-11-02/a.csv", b"id,amount\n1,10\n");
    cloud.job("append", "");
    // Both runs find no target table and create it; Glue lets one.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let binary = env!("CARGO_BIN_EXE_etl");
            std::process::Command::new(binary)
                .args(["run", "job.toml", "--catalog", "glue", "--json"])
                .current_dir(cloud.sandbox.path(""))
                .env("ETL_HOME", cloud.sandbox.path(".etl-home"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = runs.into_iter().map(|r| r.wait_with_output().unwrap()).collect();
    let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
    let stderr: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    let succeeded = codes.iter().filter(|c| **c == 0).count();
    assert!(succeeded >= 1, "{stderr:?}");
    if succeeded == 1 {
        let loser = codes.iter().position(|c| *c != 0).unwrap();
        assert_eq!(codes[loser], 1);
        assert!(
            stderr[loser].contains("conflict on") || stderr[loser].contains("another run of job"),
            "{}",
            stderr[loser]
        );
    }
    // Whatever the interleaving: one copy of the rows, no leftover files.
    let per_day = cloud.table("per_day");
    let total = cloud.sandbox.etl(&[
        "sql",
        &format!("SELECT sum(orders) AS n FROM {per_day}"),
        "--format",
        "json",
        "--catalog",
        "glue",
    ]);
    assert_eq!(total.json()[0]["n"], 1, "{stderr:?}");
    assert_eq!(
        aws::visible_keys(&cloud.curated, "per_day/").len(),
        1,
        "{:?}",
        aws::list_keys(&cloud.curated, "per_day/")
    );
}

#[test]
fn an_incremental_s3_source_reads_new_and_rewritten_objects_once() {
    let Some(cloud) = Cloud::new() else { return };
    aws::put_object(&cloud.raw, "events/a.csv", b"id\n1\n2\n");
    cloud.sandbox.write(
        "events.toml",
        format!(
            "name = \"s3events\"\ncatalog = \"glue\"\n[[source]]\ntable = \"{db}.events\"\nlocation = \"s3://{raw}/events/\"\nincremental = true\n[[target]]\ntable = \"{db}.seen\"\nquery = \"SELECT id FROM {db}.events\"\nlocation = \"s3://{curated}/seen/\"\nmode = \"append\"\n",
            db = cloud.database,
            raw = cloud.raw,
            curated = cloud.curated
        ),
    );
    let files_read =
        |date: &str| cloud.json(&["run", "events.toml", "--logical-date", date])["sources"][0]["files"].clone();
    assert_eq!(files_read("2026-11-02"), 1);
    assert_eq!(files_read("2026-11-03"), 0);
    aws::put_object(&cloud.raw, "events/b.csv", b"id\n3\n");
    aws::put_object(&cloud.raw, "events/a.csv", b"id\n1\n2\n4\n"); // a new ETag
    assert_eq!(files_read("2026-11-04"), 2);
    let seen = cloud.table("seen");
    let ids = cloud.etl(&["sql", &format!("SELECT id FROM {seen} ORDER BY id"), "--format", "csv"]);
    assert_eq!(ids.stdout, "id\n1\n1\n2\n2\n3\n4\n");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

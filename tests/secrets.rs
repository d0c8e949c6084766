//! What a hostile or careless input must not do: leak credentials into any output, change a
//! query's structure through a parameter value, or let a job write where it reads.

use crate::util::{Output, Sandbox, aws};

const SECRET_KEY: &str = "CANARYsecretKEYwJalrXUtnFEMIK7MDENGbPxRfiCY0123";
const SESSION_TOKEN: &str = "CANARYsessionTOKENFwoGZXIvYXdzEJr0123456789";

fn canaries() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_ACCESS_KEY_ID", "AKIACANARY"),
    ]
}

/// Fails if either canary is in the command's stdout or stderr.
fn clean(what: &str, out: &Output) {
    for canary in [SECRET_KEY, SESSION_TOKEN] {
        assert!(!out.stdout.contains(canary), "{what}: a credential on stdout:\n{}", out.stdout);
        assert!(!out.stderr.contains(canary), "{what}: a credential on stderr:\n{}", out.stderr);
    }
}

/// Fails if either canary is in any file under the sandbox: run history, catalog database,
/// quarantine files, published output.
fn no_file_holds_a_canary(s: &Sandbox) {
    let files = s.files("");
    assert!(files.iter().any(|f| f.starts_with(".etl-home")), "the run left state to search: {files:?}");
    for file in files {
        let bytes = std::fs::read(s.path(&file)).unwrap();
        for canary in [SECRET_KEY, SESSION_TOKEN] {
            assert!(!bytes.windows(canary.len()).any(|w| w == canary.as_bytes()), "a credential in {file}");
        }
    }
}

fn local_job(s: &Sandbox, sql: &str) {
    s.write("in/a.csv", "id,when\n1,2026-11-02\n2,someday\n3,2026-11-04\n");
    s.write("step.sql", sql);
    s.write(
        "job.toml",
        r#"name = "canary"
[[source]]
table = "raw.src"
location = "in/"
bad_records = "quarantine"
sample_rows = 1
[[step]]
sql = "step.sql"
[[target]]
table = "mart.out"
query = "SELECT * FROM v"
location = "out/"
"#,
    );
}

#[test]
fn credentials_never_reach_output_reports_history_or_quarantine() {
    let s = Sandbox::new();
    let env = canaries();
    local_job(&s, "CREATE VIEW v AS SELECT * FROM raw.src;\n");
    for args in [&["run", "job.toml", "-v"][..], &["run", "job.toml", "-v", "--json"], &["run", "job.toml"]] {
        let out = s.etl_with_env(args, &env);
        assert_eq!(out.code, 0, "{out:?}");
        clean("a successful run", &out);
    }
    local_job(&s, "CREATE VIEW v AS SELECT nope FROM raw.src;\n");
    for args in [&["run", "job.toml", "-v"][..], &["run", "job.toml", "-v", "--json"]] {
        let out = s.etl_with_env(args, &env);
        assert_eq!(out.code, 1, "{out:?}");
        clean("a failing run", &out);
    }
    s.write("in/b.csv", "id,when\n4,2026-11-05,extra\n");
    s.write("job.toml", std::fs::read_to_string(s.path("job.toml")).unwrap().replace("quarantine", "fail"));
    let out = s.etl_with_env(&["run", "job.toml", "-v", "--json"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    clean("a run failing on a bad record", &out);
    for args in
        [&["runs", "--json"][..], &["runs"], &["sql", "SELECT * FROM mart.out", "-v"], &["sql", "SELECT x FROM y"]]
    {
        clean(&args.join(" "), &s.etl_with_env(args, &env));
    }
    no_file_holds_a_canary(&s);
}

#[test]
fn credentials_never_reach_output_on_s3_and_glue() {
    let Some(_) = aws::endpoint() else { return };
    let s = Sandbox::new();
    let (raw, curated, db) = (aws::unique("raw"), aws::unique("cur"), aws::unique("db"));
    aws::create_bucket(&raw);
    aws::create_bucket(&curated);
    aws::put_object(&raw, "in/a.csv", b"id,when\n1,2026-11-02\n2,someday\n");
    let job = |source_bucket: &str| {
        format!(
            r#"name = "canary_s3"
catalog = "glue"
[[source]]
table = "{db}.src"
location = "s3://{source_bucket}/in/"
bad_records = "quarantine"
sample_rows = 1
[[target]]
table = "{db}.out"
query = "SELECT * FROM {db}.src"
location = "s3://{curated}/out/"
"#
        )
    };
    let env = canaries();
    s.write("job.toml", job(&raw));
    let out = s.etl_with_env(&["run", "job.toml", "-v", "--json"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    clean("a successful S3 run", &out);
    s.write("job.toml", job("no-such-bucket-canary"));
    let out = s.etl_with_env(&["run", "job.toml", "-v", "--json"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    clean("a failing S3 run", &out);
    for args in [
        &["runs", "--json"][..],
        &["infer", "s3://no-such-bucket-canary/x/", "-v"],
        &["sql", &format!("SELECT count(*) FROM {db}.out"), "--catalog", "glue", "-v"],
        &["schema", "show", &format!("{db}.missing"), "--catalog", "glue"],
    ] {
        clean(&args.join(" "), &s.etl_with_env(args, &env));
    }
    no_file_holds_a_canary(&s);
}

/// Values that would change a query if they were spliced into its text.
const HOSTILE: &[&str] = &[
    "'; DROP TABLE x; --",
    "x' OR '1'='1",
    "1 OR 1=1",
    "*/ SELECT 1 /*",
    "$other",
    "${other}",
    "-- comment",
    "a\"b\\c'd",
    "line\none; two",
];

#[test]
fn parameter_values_arrive_as_literal_values_in_sql() {
    let s = Sandbox::new();
    s.write("t/a.csv", "id,name\n1,ann\n2,bob\n");
    s.json(&["crawl", &s.at("t"), "--table", "raw.x"]);
    for value in HOSTILE {
        let param = format!("p={value}");
        let out =
            s.etl(&["sql", "SELECT $p AS v, ${p} AS w", "--format", "json", "--param", &param, "--param", "other=1"]);
        assert_eq!(out.json(), serde_json::json!([{"v": value, "w": value}]), "{value}");
        let out =
            s.etl(&["sql", "SELECT count(*) AS n FROM raw.x WHERE name = $p", "--format", "json", "--param", &param]);
        assert_eq!(out.json()[0]["n"], 0, "{value} matched rows");
        let typed = s.etl(&["sql", "SELECT $p AS v", "--param", &format!("p:bigint={value}")]);
        typed.assert_failure(2, "is not a valid bigint");
    }
    assert_eq!(s.query("SELECT count(*) AS n FROM raw.x")[0]["n"], 2, "the table is still there");
}

#[test]
fn parameter_values_arrive_as_literal_values_in_jobs() {
    let s = Sandbox::new();
    s.write("in/a.csv", "id,name\n1,ann\n2,bob\n");
    s.write("step.sql", "CREATE VIEW v AS\nSELECT id, $p AS p, ${p} AS q FROM raw.x WHERE name = $p OR id = 1;\n");
    s.write(
        "job.toml",
        r#"name = "params"
[params]
p = "default"
[[source]]
table = "raw.x"
location = "in/"
[[step]]
sql = "step.sql"
[[target]]
table = "mart.v"
query = "SELECT * FROM v"
location = "out/"
"#,
    );
    for value in HOSTILE {
        let report = s.json(&["run", "job.toml", "--param", &format!("p={value}")]);
        assert_eq!(report["targets"][0]["rows"], 1, "{value} matched a row");
        let rows = s.query("SELECT id, p, q FROM mart.v");
        assert_eq!(rows, vec![serde_json::json!({"id": 1, "p": value, "q": value})], "{value}");
    }
    assert_eq!(s.query("SELECT count(*) AS n FROM raw.x")[0]["n"], 2, "the source is still there");
}

fn overlap_job(s: &Sandbox, source: &str, target: &str, extra: &str) {
    s.write("data/in/a.csv", "id\n1\n");
    s.write(
        "job.toml",
        format!(
            r#"name = "overlap"
[[source]]
table = "raw.src"
location = "{source}"
[[target]]
table = "mart.dst"
query = "SELECT * FROM raw.src"
location = "{target}"
{extra}
"#
        ),
    );
}

#[test]
fn a_target_that_overlaps_a_source_is_refused_unless_allowed() {
    let s = Sandbox::new();
    let absolute = format!("file://{}/", s.at("data/in"));
    for (source, target) in [
        ("data/in/", "./data/in"),
        ("data/in", "data/in/sub/"),
        ("./data/in/sub/../", "data/"),
        (absolute.as_str(), "data/in/out"),
        ("s3://bucket/raw/", "s3://bucket/raw/curated/"),
        ("s3://bucket/raw", "s3://bucket/"),
    ] {
        overlap_job(&s, source, target, "");
        let out = s.etl(&["run", "job.toml"]);
        out.assert_failure(2, "target[0].location");
        // Local locations are named joined to the job's folder, `./` and `..` as written;
        // S3 locations as written.
        let resolved =
            |l: &str| if l.starts_with("s3://") { l.trim_end_matches('/').to_string() } else { "data".into() };
        for name in ["raw.src".to_string(), "mart.dst".into(), resolved(source), resolved(target)] {
            assert!(out.stderr.contains(&name), "expected {name} in: {}", out.stderr);
        }
        assert!(out.stderr.contains("allow_source_overlap"), "the message says how to allow it: {}", out.stderr);
    }
    // S3 prefixes that share a beginning but not a folder are the overlap predicate's unit tests.
    overlap_job(&s, "data/in/", "data/inx/", "");
    assert_eq!(s.json(&["run", "job.toml"])["targets"][0]["rows"], 1);
    overlap_job(&s, "data/in/", "data/in/derived/", "allow_source_overlap = true");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["targets"][0]["rows"], 1);
    overlap_job(&s, "data/in/", "data/in/derived/", "allow_source_overlap = \"yes\"");
    s.etl(&["run", "job.toml"]).assert_failure(2, "allow_source_overlap");
}

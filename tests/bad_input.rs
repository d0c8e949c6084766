//! Bad input: every kind gets an exit status, a message that names the file, the line, the
//! column and the value, and nothing published. Never a panic.

use crate::util::Sandbox;

/// A job that copies `in/` into `out/` through the catalog.
pub fn job(s: &Sandbox, bad_records: &str, extra_source: &str) {
    s.write(
        "job.toml",
        format!(
            r#"name = "copy"
[[source]]
table = "raw.src"
location = "in/"
bad_records = "{bad_records}"
{extra_source}
[[target]]
table = "mart.copy"
query = "SELECT * FROM raw.src"
location = "out/"
"#
        ),
    );
}

/// Runs the job, expecting failure with `message`; checks nothing was published.
fn fails(s: &Sandbox, message: &str) {
    let out = s.etl(&["run", "job.toml"]);
    out.assert_failure(1, message);
    assert!(s.files("out").is_empty(), "nothing published: {:?}", s.files("out"));
    s.etl(&["schema", "show", "mart.copy"]).assert_failure(1, "does not exist");
}

#[test]
fn a_value_past_the_sample_that_contradicts_the_type() {
    let s = Sandbox::new();
    job(&s, "fail", "sample_rows = 2");
    s.write("in/a.csv", "id,price\n1,2.5\n2,3\n3,abc\n");
    fails(&s, "bad record in in/a.csv line 4, column price: value \"abc\" is not a double");
}

#[test]
fn rows_with_too_many_or_too_few_fields() {
    let s = Sandbox::new();
    job(&s, "fail", "");
    s.write("in/a.csv", "id,name\n1,a\n2,b,extra\n");
    fails(&s, "in/a.csv line 3: expected 2 fields, found 3");
    s.write("in/a.csv", "id,name\n1,a\n2\n");
    fails(&s, "in/a.csv line 3: expected 2 fields, found 1");
}

#[test]
fn bytes_that_are_not_utf8() {
    let s = Sandbox::new();
    job(&s, "fail", "");
    s.write("in/a.csv", b"id,name\n1,caf\xe9\n".as_slice());
    fails(&s, "in/a.csv line 2, column name: value \"caf\u{fffd}\" is not valid UTF-8");
}

#[test]
fn truncated_compressed_files() {
    let s = Sandbox::new();
    job(&s, "fail", "");
    let mut text = String::from("id,name\n");
    for i in 0..5000 {
        text.push_str(&format!("{i},name {i}\n"));
    }
    s.write_gzip("in/a.csv.gz", text.as_bytes());
    let whole = std::fs::read(s.path("in/a.csv.gz")).unwrap();
    s.write("in/a.csv.gz", &whole[..whole.len() / 2]);
    fails(&s, "in/a.csv.gz: truncated or corrupt compressed data");
    let zst = zstd_frame(text.as_bytes());
    std::fs::remove_file(s.path("in/a.csv.gz")).unwrap();
    s.write("in/a.csv.zst", &zst[..zst.len() - 10]);
    fails(&s, "in/a.csv.zst: truncated or corrupt compressed data");
}

fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    // zstd is a dependency of the crate under test, not of the tests: shell out to the same
    // encoding through the library would add a dev-dependency for one test, so frame it here.
    let s = Sandbox::new();
    s.write("plain.csv", bytes);
    let out = std::process::Command::new("zstd").arg("-q").arg("-c").arg(s.path("plain.csv")).output();
    match out {
        Ok(out) if out.status.success() => out.stdout,
        _ => {
            // Without a zstd tool, a frame header followed by garbage is as corrupt as a cut one.
            let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58];
            frame.extend_from_slice(&[0xff; 64]);
            frame
        }
    }
}

#[test]
fn corrupt_parquet() {
    let s = Sandbox::new();
    job(&s, "fail", "format = \"parquet\"");
    s.write("in/a.parquet", b"PAR1 this is not really parquet PAR1".as_slice());
    fails(&s, "in/a.parquet: not a readable Parquet file");
}

#[test]
fn not_json_at_all() {
    let s = Sandbox::new();
    job(&s, "fail", "format = \"json\"");
    s.write("in/a.json", "id,name\n1,a\n");
    fails(&s, "in/a.json: not newline-delimited JSON (line 1");
    s.write("in/a.json", "{\"id\":1}\n{\"id\":\"two\"}\n");
    job(&s, "fail", "format = \"json\"\nsample_rows = 1");
    fails(&s, "bad record in in/a.json line 2, column id");
}

#[test]
fn empty_and_header_only_files() {
    let s = Sandbox::new();
    job(&s, "fail", "");
    s.write("in/empty.csv", "");
    fails(&s, "in: only empty objects");
    s.write("in/header.csv", "id,name\n");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["sources"][0]["rows"], 0);
    assert_eq!(report["targets"][0]["rows"], 0);
    s.write("in/data.csv", "id,name\n1,a\n");
    let out = s.etl(&["run", "job.toml", "--json"]);
    assert!(out.stderr.contains("skipping empty object") && out.stderr.contains("empty.csv"), "{}", out.stderr);
    assert_eq!(out.json()["targets"][0]["rows"], 1);
}

#[test]
fn drop_counts_and_quarantine_keeps_the_rejected_rows() {
    let s = Sandbox::new();
    job(&s, "drop", "sample_rows = 1");
    s.write("in/a.csv", "id,when\n1,2026-11-02\n2,someday\n3,2026-11-04\n4\n");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["rejected_rows"], 2);
    assert_eq!(report["targets"][0]["rows"], 2);

    let s = Sandbox::new();
    job(&s, "quarantine", "sample_rows = 1");
    s.write("in/a.csv", "id,when\n1,2026-11-02\n2,someday\n3,2026-11-04\n4\n");
    let report = s.json(&["run", "job.toml"]);
    assert_eq!(report["rejected_rows"], 2);
    let folder = std::path::PathBuf::from(report["quarantine"].as_str().unwrap());
    let kept = std::fs::read_to_string(folder.join("raw.src.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = kept.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["line"], 3);
    assert_eq!(records[0]["column"], "when");
    assert_eq!(records[0]["value"], "someday");
    assert!(records[0]["file"].as_str().unwrap().ends_with("in/a.csv"));
    assert!(records[0]["reason"].as_str().unwrap().contains("is not a date"));
    assert_eq!(records[1]["line"], 5);
    assert_eq!(records[1]["reason"], "expected 2 fields, found 1");
}

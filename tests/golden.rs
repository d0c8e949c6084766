//! Golden output: what users read (`--help`, `schema show`, `runs`, a run report), compared
//! whole with `tests/golden/NAME`, with what changes from run to run scrubbed (the sandbox's
//! path, run ids, times, durations). A change to what users see then shows in review as a
//! diff of these files. After an intended change: `ETL_UPDATE_GOLDEN=1 cargo test --test
//! integration golden`, then read the diff.

use std::path::PathBuf;

use regex::Regex;

use crate::util::Sandbox;

fn scrub(sandbox: &Sandbox, text: &str) -> String {
    let root = sandbox.at("");
    let text = text.replace(root.trim_end_matches('/'), "$SANDBOX");
    let rules = [
        (r"\d{8}T\d{6}Z-[0-9a-f]{6}", "RUN_ID"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", "TIME"),
        (r" in \d+\.\d+s", " in Ns"),
        (r"\b\d+\.\d+s\b", "Ns"),
    ];
    rules.iter().fold(text, |text, (pattern, with)| Regex::new(pattern).unwrap().replace_all(&text, *with).into_owned())
}

pub(crate) fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("ETL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from what etl prints now (ETL_UPDATE_GOLDEN=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Two days of orders, and a job that writes revenue per day.
fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.write("in/orders/day=2026-11-02/a.csv", "order_id,customer,amount\n1,ann,10.5\n2,bob,20\n");
    s.write("in/orders/day=2026-11-03/a.csv", "order_id,customer,amount\n3,ann,5.25\n");
    s.write(
        "jobs/daily.toml",
        r#"name = "daily"
[[source]]
table = "raw.orders"
location = "../in/orders/"
[[target]]
table = "mart.revenue"
query = "SELECT day, count(*) AS orders, sum(amount) AS revenue FROM raw.orders GROUP BY day"
location = "../out/revenue/"
partition_by = ["day"]
mode = "overwrite_partitions"
"#,
    );
    s
}

#[test]
fn help_lists_every_command() {
    let s = Sandbox::new();
    let output = s.etl(&["--help"]);
    assert_eq!(output.code, 0);
    assert_golden("help.txt", &output.stdout);
}

#[test]
fn a_run_report_and_the_history() {
    let s = sandbox();
    let run = s.etl(&["run", "jobs/daily.toml", "--logical-date", "2026-11-03", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_golden("run_report.json", &scrub(&s, &run.stdout));
    let summary = s.etl(&["run", "jobs/daily.toml", "--logical-date", "2026-11-03"]);
    assert_eq!(summary.code, 0, "{summary:?}");
    assert_golden("run_summary.txt", &scrub(&s, &summary.stdout));
    let runs = s.etl(&["runs"]);
    assert_eq!(runs.code, 0);
    assert_golden("runs.txt", &scrub(&s, &runs.stdout));
}

#[test]
fn schema_show_of_a_crawled_and_a_written_table() {
    let s = sandbox();
    assert_eq!(s.etl(&["run", "jobs/daily.toml", "--logical-date", "2026-11-03", "-q"]).code, 0);
    let crawled = s.etl(&["schema", "show", "raw.orders"]);
    assert_eq!(crawled.code, 0);
    let written = s.etl(&["schema", "show", "mart.revenue"]);
    assert_eq!(written.code, 0);
    assert_golden("schema_show.txt", &scrub(&s, &format!("{}\n{}", crawled.stdout, written.stdout)));
}

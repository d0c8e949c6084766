//! Racing writers: two runs of one job and logical date at once, and two jobs writing
//! different partitions of one table at once. No lost update, no duplicate rows: the second
//! run of a date fails at once with a conflict (it did nothing, exit 1); jobs writing
//! different partitions both publish, except that when both create the table, the one that
//! loses that race fails with a conflict and succeeds when run again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::util::Sandbox;

fn job(s: &Sandbox, name: &str, region: &str, mode: &str) {
    s.write(&format!("in/{region}/day=2026-11-02/a.csv"), format!("id,amount\n1,10\n2,20\n3,{}\n", region.len()));
    s.write(
        &format!("{name}.toml"),
        format!(
            r#"name = "{name}"
[[source]]
table = "raw.{region}"
location = "in/{region}/"
[[target]]
table = "mart.sales"
query = "SELECT '{region}' AS region, day, count(*) AS orders, sum(amount) AS amount FROM raw.{region} GROUP BY day"
location = "out/sales/"
partition_by = ["region"]
mode = "{mode}"
"#
        ),
    );
}

fn start(s: &Sandbox, job: &str, kill_point: Option<&str>) -> Child {
    let mut command = s.command(&["run", &format!("{job}.toml"), "--logical-date", "2026-11-02"]);
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(point) = kill_point {
        command.env("ETL_KILL_POINT", point);
    }
    command.spawn().expect("the etl binary runs")
}

fn finish(child: Child) -> (i32, String) {
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn rows(s: &Sandbox) -> Vec<String> {
    let out = s.etl(&["sql", "SELECT region, day, orders, amount FROM mart.sales ORDER BY region", "--format", "csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.lines().skip(1).map(str::to_string).collect()
}

fn no_garbage(s: &Sandbox) {
    let gc = s.etl(&["gc", "--json"]).json();
    assert!(gc["removed"].as_array().unwrap().is_empty(), "runs left files behind: {gc}");
}

#[test]
fn a_second_run_of_a_date_fails_at_once_while_the_first_runs() {
    let s = Sandbox::new();
    job(&s, "east", "east", "append");
    let mut first = start(&s, "east", Some("publish"));
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap_or_default().contains("kill point")), "the first run reaches publication");

    let second = s.etl(&["run", "east.toml", "--logical-date", "2026-11-02"]);
    second.assert_failure(1, "another run of job east is running");
    // Another date of the same job is another run's business: it may go on.
    s.etl(&["run", "east.toml", "--logical-date", "2026-11-03", "--json"]).json();

    first.kill().unwrap();
    first.wait().unwrap();
    // The killed run's lease does not outlive it.
    s.etl(&["run", "east.toml", "--logical-date", "2026-11-02", "--json"]).json();
    // Appended once per logical date, the killed run's nothing.
    assert_eq!(rows(&s), ["east,2026-11-02,3,34", "east,2026-11-02,3,34"]);
    no_garbage(&s);
}

#[test]
fn two_runs_of_one_date_started_together_publish_once() {
    let s = Sandbox::new();
    job(&s, "east", "east", "append");
    for round in 0..4 {
        let runs = [start(&s, "east", None), start(&s, "east", None)];
        let results: Vec<(i32, String)> = runs.into_iter().map(finish).collect();
        assert!(results.iter().any(|(code, _)| *code == 0), "round {round}: {results:?}");
        for (code, stderr) in &results {
            assert!(
                *code == 0
                    || (*code == 1 && (stderr.contains("another run of job east") || stderr.contains("conflict on"))),
                "round {round}: {stderr}"
            );
        }
        assert_eq!(rows(&s), ["east,2026-11-02,3,34"], "round {round}: {results:?}");
    }
    no_garbage(&s);
}

#[test]
fn two_jobs_writing_different_partitions_of_one_table_both_publish() {
    for mode in ["overwrite_partitions", "append"] {
        let s = Sandbox::new();
        job(&s, "east", "east", mode);
        job(&s, "west", "west", mode);
        for round in 0..3 {
            let runs = [start(&s, "east", None), start(&s, "west", None)];
            let results: Vec<(i32, String)> = runs.into_iter().map(finish).collect();
            for (job, (code, stderr)) in ["east", "west"].iter().zip(&results) {
                if *code == 0 {
                    continue;
                }
                // Only creating the table can be lost; the loser did nothing and may run again.
                assert!(round == 0 && stderr.contains("conflict on mart.sales"), "{mode} round {round}: {stderr}");
                s.etl(&["run", &format!("{job}.toml"), "--logical-date", "2026-11-02", "--json"]).json();
            }
            assert_eq!(rows(&s), ["east,2026-11-02,3,34", "west,2026-11-02,3,34"], "{mode} round {round}: {results:?}");
        }
        no_garbage(&s);
    }
}

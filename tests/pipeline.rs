//! Pipelines through the binary: the example pipeline (`sql/pipeline_example`: two raw crawls,
//! a join, a report) over the example data, copied to a sandbox. `pipeline show` in each
//! format; runs in dependency order with independent jobs at once; a failing middle job that
//! skips exactly its dependents, and `--resume`; backfills; refusals; a scheduler killed in
//! the middle of a pipeline run and started again; `on_failure = "rollback"`, locally, on
//! Glue and S3, and fired by the scheduler.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Sandbox, Scheduler, aws};

pub(crate) const DIR: &str = "sql/pipeline_example";

/// The example pipeline and its data, in a sandbox: it writes under the sandbox.
pub(crate) fn example() -> Sandbox {
    let s = Sandbox::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy(&repo.join("data/orders"), &s.path("data/orders"));
    copy(&repo.join("data/customers"), &s.path("data/customers"));
    copy(&repo.join(DIR), &s.path(DIR));
    s
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => copy(&path, &to.join(entry.file_name())),
            false => {
                std::fs::copy(&path, to.join(entry.file_name())).unwrap();
            }
        }
    }
}

/// The stdout of a command that may fail, as JSON.
fn document(output: &crate::util::Output) -> Value {
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {output:?}"))
}

/// `job status` of each job of a pipeline run.
fn statuses(run: &Value) -> Vec<String> {
    run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| format!("{} {}", j["job"].as_str().unwrap(), j["status"].as_str().unwrap()))
        .collect()
}

fn run_id<'a>(run: &'a Value, job: &str) -> &'a Value {
    &run["jobs"].as_array().unwrap().iter().find(|j| j["job"] == job).unwrap()["run_id"]
}

/// Where in `lines` the event `job: state` is.
fn position(lines: &[&str], event: &str) -> usize {
    lines.iter().position(|l| l.contains(event)).unwrap_or_else(|| panic!("no '{event}' in {lines:#?}"))
}

#[test]
fn show_draws_the_graph_as_json_text_mermaid_and_dot() {
    let s = example();
    let graph = s.json(&["pipeline", "show", DIR]);
    assert_eq!(graph["pipeline"], "daily_sales");
    assert_eq!(graph["schedule"], "cron(0 3 * * ? *)");
    let jobs: Vec<Value> = graph["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| serde_json::json!([j["job"], j["reads"], j["writes"], j["depends_on"]]))
        .collect();
    assert_eq!(
        jobs,
        [
            serde_json::json!(["customers", ["raw.customers"], ["clean.customers"], []]),
            serde_json::json!(["orders", ["raw.orders"], ["clean.orders"], []]),
            serde_json::json!([
                "sales",
                ["clean.customers", "clean.orders"],
                ["mart.daily_sales"],
                ["customers", "orders"]
            ]),
            serde_json::json!(["report", ["mart.daily_sales"], ["mart.segment_report"], ["sales"]]),
        ]
    );
    assert_eq!(
        graph["edges"],
        serde_json::json!([
            {"from": "customers", "to": "sales", "why": "clean.customers"},
            {"from": "orders", "to": "sales", "why": "clean.orders"},
            {"from": "sales", "to": "report", "why": "mart.daily_sales"},
        ])
    );

    let text = s.etl(&["pipeline", "show", DIR]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("pipeline daily_sales (sql/pipeline_example): 4 jobs, 3 edges"), "{}", text.stdout);
    assert!(text.stdout.contains("3. sales  (after customers, orders)\n   reads  clean.customers, clean.orders\n"));
    assert!(text.stdout.contains("  sales -> report     mart.daily_sales\n"), "{}", text.stdout);
    let mermaid = s.etl(&["pipeline", "show", DIR, "--format", "mermaid"]);
    assert!(mermaid.stdout.starts_with("flowchart LR\n"), "{mermaid:?}");
    assert!(mermaid.stdout.contains("    job_orders -->|\"clean.orders\"| job_sales\n"), "{}", mermaid.stdout);
    let dot = s.etl(&["pipeline", "show", DIR, "--format", "dot"]);
    assert!(dot.stdout.starts_with("digraph \"daily_sales\" {\n"), "{dot:?}");
    assert!(dot.stdout.contains("    \"sales\" -> \"report\" [label=\"mart.daily_sales\"];\n"), "{}", dot.stdout);
    s.etl(&["pipeline", "show", DIR, "--format", "svg"]).assert_failure(2, "invalid value 'svg'");
    s.etl(&["pipeline", "show", "sql/none"]).assert_failure(2, "sql/none: not a folder of job files");
}

#[test]
fn a_run_goes_in_dependency_order_with_independent_jobs_at_once() {
    let s = example();
    let out = s.etl(&["pipeline", "run", DIR, "--logical-date", "2026-11-02"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Both crawls start before either ends (concurrency 2); each later job starts after what
    // it reads was written.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines[0].ends_with("customers: running") && lines[1].ends_with("orders: running"), "{lines:#?}");
    assert!(position(&lines, "sales: running") > position(&lines, "customers: succeeded"));
    assert!(position(&lines, "sales: running") > position(&lines, "orders: succeeded"));
    assert!(position(&lines, "report: running") > position(&lines, "sales: succeeded"));

    let history = s.json(&["runs", "--pipeline", "daily_sales"]);
    let run = &history["runs"][0];
    assert_eq!(history["runs"].as_array().unwrap().len(), 1);
    assert_eq!(
        (run["status"].as_str(), run["logical_date"].as_str(), run["started_by"].as_str()),
        (Some("succeeded"), Some("2026-11-02"), Some("manual"))
    );
    assert_eq!(statuses(run), ["customers succeeded", "orders succeeded", "sales succeeded", "report succeeded"]);
    assert_eq!(run["rolled_back"], serde_json::json!([]));
    // The job runs are ordinary runs, that say which pipeline run started them.
    let sales = &s.json(&["runs", "--job", "sales"])["runs"][0];
    assert_eq!(&sales["run_id"], run_id(run, "sales"));
    assert_eq!(sales["started_by"], "pipeline");
    assert_eq!(sales["pipeline_run_id"], run["pipeline_run_id"]);
    let written: u64 = ["customers", "orders", "sales", "report"]
        .iter()
        .map(|job| {
            let report = &s.json(&["runs", "--job", job])["runs"][0];
            report["targets"].as_array().unwrap().iter().map(|t| t["rows"].as_u64().unwrap()).sum::<u64>()
        })
        .sum();
    assert_eq!(run["totals"]["rows"], written);
    assert!(run["totals"]["athena"]["bytes_scanned"].as_u64().unwrap() > 0, "{run}");
    let report = s.query("SELECT segment, segment_rank FROM mart.segment_report ORDER BY segment_rank");
    assert_eq!(report.len(), 4, "{report:?}");
    assert_eq!(report[0]["segment"], "mid_market");

    // One at a time: each job ends before the next starts.
    let one = s.etl(&["pipeline", "run", DIR, "--logical-date", "2026-11-03", "--concurrency", "1"]);
    assert_eq!(one.code, 0, "{one:?}");
    let states: Vec<&str> =
        one.stderr.lines().map(|l| l.split(": ").nth(1).unwrap().split(' ').next().unwrap()).collect();
    assert_eq!(states, ["running", "succeeded"].repeat(4), "{}", one.stderr);
    s.etl(&["pipeline", "run", DIR, "--concurrency", "0"]).assert_failure(2, "--concurrency");
}

#[test]
fn a_failing_middle_job_skips_exactly_its_dependents_and_resume_runs_only_those() {
    let s = example();
    // A fifth job beside the join: it reads only what the customers job writes.
    s.write(
        &format!("{DIR}/countries.toml"),
        "name = \"countries\"\n[[target]]\ntable = \"mart.countries\"\nquery = \"SELECT country, count(*) AS customers FROM clean.customers GROUP BY country\"\nlocation = \"../../.etl/warehouse/mart/countries/\"\n",
    );
    let sql = std::fs::read_to_string(s.path(&format!("{DIR}/sales.sql"))).unwrap();
    s.write(&format!("{DIR}/sales.sql"), sql.replace("o.channel,\n", "o.no_such_column,\n"));
    let out = s.etl(&["pipeline", "run", DIR, "--logical-date", "2026-11-02", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = document(&out);
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        statuses(&failed),
        ["customers succeeded", "countries succeeded", "orders succeeded", "sales failed", "report skipped"]
    );
    let jobs = failed["jobs"].as_array().unwrap();
    assert!(jobs[3]["reason"].as_str().unwrap().contains("no_such_column"), "{failed}");
    assert!(jobs[3]["run_id"].is_string());
    assert_eq!((&jobs[4]["reason"], &jobs[4]["run_id"]), (&serde_json::json!("upstream sales failed"), &Value::Null));
    let id = failed["pipeline_run_id"].as_str().unwrap();
    assert!(out.stderr.contains(&format!("--resume {id}")), "{}", out.stderr);
    assert_eq!(s.json(&["runs", "--pipeline", "daily_sales"])["runs"][0]["status"], "failed");

    // Fixed, and resumed: only the failed job and the one it held back run, for the same date.
    s.write(&format!("{DIR}/sales.sql"), sql);
    let resumed = s.json(&["pipeline", "run", DIR, "--resume", id]);
    assert_eq!(resumed["pipeline_run_id"], id);
    assert_eq!(resumed["logical_date"], "2026-11-02");
    assert_eq!(resumed["status"], "succeeded");
    for job in ["countries", "customers", "orders"] {
        assert_eq!(run_id(&resumed, job), run_id(&failed, job), "{job} ran again");
        assert_eq!(s.json(&["runs", "--job", job])["runs"].as_array().unwrap().len(), 1);
    }
    assert_ne!(run_id(&resumed, "sales"), run_id(&failed, "sales"));
    assert_eq!(resumed["jobs"][3]["earlier_run_ids"], serde_json::json!([run_id(&failed, "sales")]));
    assert!(run_id(&resumed, "report").is_string());
    assert_eq!(s.query("SELECT count(*) AS n FROM mart.segment_report")[0]["n"], 4);
    // Nothing left to run: a resume of a run that succeeded runs nothing.
    let again = s.json(&["pipeline", "run", DIR, "--resume", id]);
    assert_eq!(again["jobs"], resumed["jobs"]);
    assert_eq!(s.json(&["runs", "--pipeline", "daily_sales"])["runs"].as_array().unwrap().len(), 1);
    s.etl(&["pipeline", "run", DIR, "--resume", "20260101T000000Z-000000"]).assert_failure(2, "no such pipeline run");
    s.etl(&["pipeline", "run", DIR, "--resume", id, "--logical-date", "2026-11-02"])
        .assert_failure(2, "cannot be used with");
}

#[test]
fn only_runs_the_jobs_named() {
    let s = example();
    s.json(&["pipeline", "run", DIR, "--logical-date", "2026-11-02"]);
    let only = s.json(&["pipeline", "run", DIR, "--logical-date", "2026-11-02", "--only", "sales", "report"]);
    assert_eq!(statuses(&only), ["sales succeeded", "report succeeded"]);
    assert_eq!(s.json(&["runs", "--job", "orders"])["runs"].as_array().unwrap().len(), 1);
    s.etl(&["pipeline", "run", DIR, "--only", "sale"])
        .assert_failure(2, "--only sale: no such job in pipeline daily_sales");
}

#[test]
fn a_backfill_runs_the_graph_date_by_date_and_stops_at_a_failed_date() {
    let s = example();
    let backfill = s.json(&["pipeline", "run", DIR, "--from", "2026-11-02", "--to", "2026-11-04"]);
    let dates: Vec<(&str, &str, &str)> = backfill["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["logical_date"].as_str().unwrap(), r["status"].as_str().unwrap(), r["started_by"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        dates,
        [
            ("2026-11-02", "succeeded", "backfill"),
            ("2026-11-03", "succeeded", "backfill"),
            ("2026-11-04", "succeeded", "backfill")
        ]
    );
    // The document is the last date's report, with every date's in `runs`.
    assert_eq!(
        (&backfill["logical_date"], &backfill["status"]),
        (&serde_json::json!("2026-11-04"), &serde_json::json!("succeeded"))
    );
    assert_eq!(backfill["pipeline_run_id"], backfill["runs"][2]["pipeline_run_id"]);
    let days = s.query("SELECT DISTINCT CAST(order_date AS VARCHAR) AS d FROM mart.segment_report ORDER BY d");
    assert_eq!(
        days.iter().map(|r| r["d"].as_str().unwrap()).collect::<Vec<_>>(),
        ["2026-11-02", "2026-11-03", "2026-11-04"]
    );
    // Date after date.
    let sales: Vec<String> = s.json(&["runs", "--job", "sales"])["runs"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["logical_date"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sales, ["2026-11-02", "2026-11-03", "2026-11-04"]);

    // The report fails on 2026-11-08: the backfill stops there.
    let report = std::fs::read_to_string(s.path(&format!("{DIR}/report.toml"))).unwrap();
    s.write(
        &format!("{DIR}/report.toml"),
        report.replace(
            "WHERE order_date = $logical_date",
            "WHERE order_date = $logical_date AND 1 / CASE WHEN order_date = DATE '2026-11-08' THEN 0 ELSE 1 END = 1",
        ),
    );
    let out = s.etl(&["pipeline", "run", DIR, "--from", "2026-11-07", "--to", "2026-11-09", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let stopped = document(&out);
    let dates: Vec<&str> = stopped["runs"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(dates, ["succeeded", "failed"]);
    assert_eq!(
        (&stopped["logical_date"], &stopped["status"]),
        (&serde_json::json!("2026-11-08"), &serde_json::json!("failed"))
    );
    assert!(out.stderr.contains("backfill stopped at 2026-11-08"), "{}", out.stderr);
    s.etl(&["pipeline", "run", DIR, "--from", "2026-11-09", "--to", "2026-11-07"]).assert_failure(2, "after --to");
}

/// A folder of job files, each `(name, reads, writes, extra keys)`.
fn folder(s: &Sandbox, dir: &str, jobs: &[(&str, &str, &str, &str)]) {
    for (name, reads, writes, extra) in jobs {
        let query = match *reads {
            "" => "SELECT 1 AS x".to_string(),
            table => format!("SELECT * FROM {table}"),
        };
        s.write(
            &format!("{dir}/{name}.toml"),
            format!("name = \"{name}\"\n{extra}\n[[target]]\ntable = \"{writes}\"\nquery = \"{query}\"\nlocation = \"../out/{writes}/\"\n"),
        );
    }
}

#[test]
fn cycles_unknown_dependencies_and_overlapping_writers_are_refused_before_anything_runs() {
    let s = Sandbox::new();
    folder(&s, "cycle", &[("a", "m.c", "m.a", ""), ("b", "m.a", "m.b", ""), ("c", "", "m.c", "depends_on = [\"b\"]")]);
    for command in ["show", "run"] {
        s.etl(&["pipeline", command, "cycle"]).assert_failure(
            2,
            "pipeline cycle (cycle): the jobs a, b, c form a cycle: a -> b (m.a) -> c (depends_on) -> a (m.c)",
        );
    }

    folder(&s, "missing", &[("a", "", "m.a", ""), ("b", "m.a", "m.b", "depends_on = [\"a\", \"loader\"]")]);
    s.etl(&["pipeline", "run", "missing"])
        .assert_failure(2, "missing/b.toml: depends_on: job loader is not a job of this pipeline (its jobs: a, b)");

    folder(&s, "overlap", &[("east", "", "m.sales", ""), ("west", "", "m.sales", "")]);
    s.etl(&["pipeline", "run", "overlap"])
        .assert_failure(2, "jobs east and west both write table m.sales")
        .assert_failure(2, "overwrites the whole table");

    s.write("rollback/pipeline.toml", "on_failure = \"rollback\"\n");
    folder(&s, "rollback", &[("a", "", "m.a", "retain_versions = 1")]);
    s.etl(&["pipeline", "run", "rollback"])
        .assert_failure(2, "retain_versions = 1 would delete the files of the version");

    assert_eq!(s.json(&["runs"])["runs"], serde_json::json!([]), "nothing ran");
    assert!(!s.path("out").exists());
}

#[test]
fn two_jobs_may_write_disjoint_partitions_of_one_table() {
    let s = Sandbox::new();
    for region in ["east", "west"] {
        s.write(
            &format!("p/{region}.toml"),
            format!(
                "name = \"{region}\"\n[[target]]\ntable = \"m.sales\"\nquery = \"SELECT '{region}' AS region, 1 AS orders\"\nlocation = \"../out/sales/\"\npartition_by = [\"region\"]\nmode = \"overwrite_partitions\"\n"
            ),
        );
    }
    s.write("p/total.toml", "name = \"total\"\n[[target]]\ntable = \"m.total\"\nquery = \"SELECT sum(orders) AS orders FROM m.sales\"\nlocation = \"../out/total/\"\n");
    let graph = s.json(&["pipeline", "show", "p"]);
    assert_eq!(graph["edges"].as_array().unwrap().len(), 2, "{graph}");
    // Writers of one table never run at once, so neither loses the race to create it.
    let run = s.json(&["pipeline", "run", "p", "--concurrency", "4"]);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(s.query("SELECT orders FROM m.total")[0]["orders"], 2);
}

#[test]
fn a_scheduler_killed_in_the_middle_of_a_pipeline_run_resumes_it_and_no_job_runs_twice() {
    let s = example();
    let settings = std::fs::read_to_string(s.path(&format!("{DIR}/pipeline.toml"))).unwrap();
    s.write(&format!("{DIR}/pipeline.toml"), settings.replace("cron(0 3 * * ? *)", "rate(1 minute)"));
    // The third publication is the join's (the two crawls publish first): killed there. One
    // run at once: a slow first run must not meet the next minute's, whose crawls would
    // publish third.
    let one_at_once = ["scheduler", DIR, "--json", "--concurrency", "1"];
    let mut first = Scheduler::spawn(&s, &one_at_once, &[("ETL_KILL_POINT", "publish#3")]);
    first.wait_for(|e| e["job"] == "sales" && e["state"] == "running", Duration::from_secs(90));
    first.wait_for_log("kill point publish#3 reached", Duration::from_secs(60));
    first.kill();
    let events = first.events();
    let pipeline_run_id = events.iter().find_map(|e| e["pipeline_run_id"].as_str()).unwrap().to_string();
    let fire = events[0]["fire_time"].clone();
    let runs = s.json(&["runs", "--pipeline", "daily_sales"]);
    let killed = runs["runs"].as_array().unwrap().iter().find(|r| r["pipeline_run_id"] == pipeline_run_id.as_str());
    assert_eq!(
        statuses(killed.unwrap()),
        ["customers succeeded", "orders succeeded", "sales failed", "report skipped"]
    );

    // A later minute's fire may be queued too: the killed run's end is the one awaited.
    let resumed =
        |e: &Value| e["job"].is_null() && e["state"] == "succeeded" && e["pipeline_run_id"] == pipeline_run_id.as_str();
    let mut second = Scheduler::start_with_args(&s, &one_at_once);
    second.wait_for(resumed, Duration::from_secs(120));
    assert!(second.stop().success());
    let events = second.events();
    let finished = events.iter().find(|e| resumed(e)).unwrap();
    assert_eq!((&finished["pipeline_run_id"], &finished["fire_time"]), (&serde_json::json!(pipeline_run_id), &fire));
    let ran: Vec<&str> = events
        .iter()
        .filter(|e| e["pipeline_run_id"] == pipeline_run_id.as_str() && e["state"] == "running" && e["job"].is_string())
        .map(|e| e["job"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["sales", "report"], "{events:#?}");

    let run = s.json(&["runs", "--pipeline", "daily_sales"])["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pipeline_run_id"] == pipeline_run_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!((&run["status"], &run["started_by"]), (&serde_json::json!("succeeded"), &serde_json::json!("schedule")));
    // One successful run of each job for the fire: the crawls ran once, the join twice (the
    // killed run failed, nothing of it published).
    for (job, runs) in [("customers", 1), ("orders", 1), ("sales", 2), ("report", 1)] {
        let of_this_run: Vec<Value> = s.json(&["runs", "--job", job])["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["pipeline_run_id"] == pipeline_run_id.as_str())
            .cloned()
            .collect();
        assert_eq!(of_this_run.len(), runs, "{job}: {of_this_run:#?}");
        assert_eq!(of_this_run.iter().filter(|r| r["status"] == "succeeded").count(), 1, "{job}");
    }
}

// --- on_failure = "rollback" -----------------------------------------------------------------

/// `one -> two -> three`, and `fresh` (after `one`, before `three`): each writes its logical
/// date; three's check accepts only 2026-11-02. `catalog` and `out` say where tables go.
fn three_jobs(s: &Sandbox, on_failure: &str, db: &str, out: &str, catalog: &str) {
    s.write(
        "p/pipeline.toml",
        format!("name = \"nightly\"\nschedule = \"rate(1 minute)\"\non_failure = \"{on_failure}\"\n"),
    );
    let job = |name: &str, query: &str, extra: &str| {
        s.write(
            &format!("p/{name}.toml"),
            format!(
                "name = \"{name}\"\n{catalog}\n{extra}\n[[target]]\ntable = \"{db}.{name}\"\nquery = \"{query}\"\nlocation = \"{out}/{name}/\"\n"
            ),
        );
    };
    job("one", "SELECT CAST($logical_date AS DATE) AS day, 1 AS n", "");
    job("two", &format!("SELECT day, n + 1 AS n FROM {db}.one"), "");
    job("fresh", &format!("SELECT day FROM {db}.one"), "");
    job("three", &format!("SELECT day, n + 1 AS n FROM {db}.two"), "depends_on = [\"fresh\"]\nmax_attempts = 1");
    let three = std::fs::read_to_string(s.path("p/three.toml")).unwrap();
    s.write("p/three.toml", format!("{three}[[target.check]]\nexpression = \"day = DATE '2026-11-02'\"\n"));
}

/// The days a table holds, through `etl sql` (with `args` such as `--catalog glue`).
fn days(s: &Sandbox, table: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["sql", "--format", "json"];
    all.extend(args);
    let query = format!("SELECT CAST(day AS VARCHAR) AS day FROM {table} ORDER BY day");
    all.push(&query);
    let rows = s.etl(&all).json();
    rows.as_array().unwrap().iter().map(|r| r["day"].as_str().unwrap().to_string()).collect()
}

/// (version, rows, rollback_of) of each data version of a table.
fn history(s: &Sandbox, table: &str, args: &[&str]) -> Vec<(u64, u64, Value)> {
    let mut all = vec!["table", "history", table, "--json"];
    all.extend(args);
    s.etl(&all).json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["rows"].as_u64().unwrap(), v["rollback_of"].clone()))
        .collect()
}

#[test]
fn a_failed_check_in_the_third_job_rolls_back_what_the_first_two_published() {
    let s = Sandbox::new();
    three_jobs(&s, "rollback", "m", "../out", "");
    // Without fresh: m.fresh is new in the second run, which it had no data before.
    let first = s.json(&["pipeline", "run", "p", "--logical-date", "2026-11-02", "--only", "one,two,three"]);
    assert_eq!((&first["status"], &first["rolled_back"]), (&serde_json::json!("succeeded"), &serde_json::json!([])));
    assert_eq!(s.json(&["pipeline", "show", "p"])["on_failure"], "rollback");
    let out = s.etl(&["pipeline", "run", "p", "--logical-date", "2026-11-03", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = document(&out);
    assert_eq!(failed["status"], "failed");
    assert_eq!(statuses(&failed), ["one succeeded", "fresh succeeded", "two succeeded", "three failed"]);
    assert!(failed["jobs"][3]["reason"].as_str().unwrap().contains("check"), "{failed}");
    assert_eq!(failed["rolled_back"], serde_json::json!(["m.fresh", "m.one", "m.two"]));
    assert!(out.stderr.contains("rolled back m.fresh, m.one, m.two"), "{}", out.stderr);
    // Readers see the first run's rows, and the history says how.
    for table in ["m.one", "m.two", "m.three"] {
        assert_eq!(days(&s, table, &[]), ["2026-11-02"], "{table}");
    }
    let rollback = serde_json::json!(1);
    for table in ["m.one", "m.two"] {
        assert_eq!(history(&s, table, &[]), [(1, 1, Value::Null), (2, 1, Value::Null), (3, 1, rollback.clone())]);
    }
    assert_eq!(history(&s, "m.three", &[]), [(1, 1, Value::Null)], "the failed check published nothing");
    assert_eq!(days(&s, "m.fresh", &[]), Vec::<String>::new());
    assert_eq!(history(&s, "m.fresh", &[]), [(1, 1, Value::Null), (2, 0, serde_json::json!(0))]);
    let text = s.etl(&["table", "history", "m.one"]);
    assert!(text.stdout.contains("rollback to version 1"), "{}", text.stdout);

    // The text report says what went back; a resume runs the rolled-back jobs again.
    s.write(
        "p/three.toml",
        std::fs::read_to_string(s.path("p/three.toml")).unwrap().replace("= DATE '2026-11-02'", ">= DATE '2026-11-02'"),
    );
    let id = failed["pipeline_run_id"].as_str().unwrap();
    let resumed = s.etl(&["pipeline", "run", "p", "--resume", id]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(days(&s, "m.three", &[]), ["2026-11-03"]);
    assert_eq!(days(&s, "m.one", &[]), ["2026-11-03"]);
    let runs = s.json(&["runs", "--job", "one"])["runs"].as_array().unwrap().len();
    assert_eq!(runs, 3, "one ran again after its rollback");

    // The text of a rolled-back run.
    s.write("p/three.toml", std::fs::read_to_string(s.path("p/three.toml")).unwrap().replace(">= DATE", "< DATE"));
    let text = s.etl(&["pipeline", "run", "p", "--logical-date", "2026-11-04"]);
    assert_eq!(text.code, 1, "{text:?}");
    assert!(text.stdout.contains("  rolled back m.one to version 4: now version 6\n"), "{}", text.stdout);
    assert!(text.stdout.contains("(rolled back)"), "{}", text.stdout);
    assert_eq!(days(&s, "m.one", &[]), ["2026-11-03"]);
}

#[test]
fn with_on_failure_stop_nothing_is_rolled_back() {
    let s = Sandbox::new();
    three_jobs(&s, "stop", "m", "../out", "");
    assert_eq!(s.json(&["pipeline", "run", "p", "--logical-date", "2026-11-02"])["status"], "succeeded");
    let out = s.etl(&["pipeline", "run", "p", "--logical-date", "2026-11-03", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = document(&out);
    assert_eq!(statuses(&failed), ["one succeeded", "fresh succeeded", "two succeeded", "three failed"]);
    assert_eq!(failed["rolled_back"], serde_json::json!([]));
    assert!(failed.get("rollback").is_none(), "{failed}");
    assert_eq!(days(&s, "m.one", &[]), ["2026-11-03"]);
    assert_eq!(days(&s, "m.three", &[]), ["2026-11-02"]);
    assert_eq!(history(&s, "m.two", &[]), [(1, 1, Value::Null), (2, 1, Value::Null)]);
}

#[test]
fn a_pipeline_on_glue_and_s3_rolls_back_too() {
    let Some(_) = aws::endpoint() else { return };
    let s = Sandbox::new();
    let (bucket, db) = (aws::unique("pipeline"), aws::unique("db"));
    aws::create_bucket(&bucket);
    three_jobs(&s, "rollback", &db, &format!("s3://{bucket}"), "catalog = \"glue\"");
    let glue = ["--catalog", "glue"];
    let first = s.json(&["pipeline", "run", "p", "--logical-date", "2026-11-02", "--only", "one,two,three"]);
    assert_eq!(first["status"], "succeeded");
    let out = s.etl(&["pipeline", "run", "p", "--logical-date", "2026-11-03", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = document(&out);
    let (one, two, three) = (format!("{db}.one"), format!("{db}.two"), format!("{db}.three"));
    assert_eq!(failed["rolled_back"], serde_json::json!([format!("{db}.fresh"), one.clone(), two.clone()]));
    for table in [&one, &two, &three] {
        assert_eq!(days(&s, table, &glue), ["2026-11-02"], "{table}");
    }
    assert_eq!(history(&s, &one, &glue), [(1, 1, Value::Null), (2, 1, Value::Null), (3, 1, serde_json::json!(1))]);
    assert_eq!(history(&s, &two, &glue)[2], (3, 1, serde_json::json!(1)));
    let fresh = format!("{db}.fresh");
    assert_eq!(days(&s, &fresh, &glue), Vec::<String>::new());
    assert_eq!(history(&s, &fresh, &glue), [(1, 1, Value::Null), (2, 0, serde_json::json!(0))]);
    // Readers of the bucket see the first run's files only.
    let parquet: Vec<String> =
        aws::visible_keys(&bucket, "one/").into_iter().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 1, "{parquet:?}");
}

#[test]
fn a_scheduled_pipeline_run_rolls_back_as_a_manual_one_does() {
    let s = Sandbox::new();
    three_jobs(&s, "rollback", "m", "../out", "");
    assert_eq!(s.json(&["pipeline", "run", "p", "--logical-date", "2026-11-02"])["status"], "succeeded");
    // The scheduler's fire is for today, which three's check refuses.
    let mut scheduler = Scheduler::start(&s, "p");
    scheduler.wait_for(|e| e["job"].is_null() && e["state"] == "failed", Duration::from_secs(120));
    assert!(scheduler.stop().success());
    let events = scheduler.events();
    let failed = events.iter().find(|e| e["job"].is_null() && e["state"] == "failed").unwrap();
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("failed: three; rolled back m.fresh, m.one, m.two"), "{error}");
    let run = &s.json(&["runs", "--pipeline", "nightly"])["runs"][0];
    assert_eq!(
        (&run["started_by"], &run["rolled_back"]),
        (&serde_json::json!("schedule"), &serde_json::json!(["m.fresh", "m.one", "m.two"]))
    );
    for table in ["m.one", "m.two", "m.three", "m.fresh"] {
        assert_eq!(days(&s, table, &[]), ["2026-11-02"], "{table}");
    }
}

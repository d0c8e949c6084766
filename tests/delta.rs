//! Delta Lake targets (`table_format = "delta"`): every mode as one commit of the table's log,
//! MERGE, rollback as a commit, compaction, `gc`, a run killed between its commit and its
//! publication, and the refusals. The log is read here by replaying its JSON entries (our own
//! reader of the protocol, not delta-rs's); `tests/independent/check_delta.py` reads the
//! tables with the `deltalake` Python package.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::util::{Sandbox, aws};

/// Sales in three batches: batch 1 has days a and b, batch 2 day c, batch 3 day b again.
fn sales(s: &Sandbox) {
    s.write(
        "in/sales.csv",
        "id,day,amount,batch\n1,a,10,1\n2,a,20,1\n3,b,30,1\n4,b,40,1\n5,c,50,2\n6,c,60,2\n7,b,70,3\n",
    );
}

fn sales_job(s: &Sandbox, mode: &str) {
    s.write(
        "job.toml",
        format!(
            "name = \"sales\"\n[params]\nbatch = 1\n[[source]]\ntable = \"raw.sales\"\nlocation = \"in/\"\n\
             format = \"csv\"\n[[target]]\ntable = \"mart.sales\"\n\
             query = \"SELECT id, day, amount FROM raw.sales WHERE batch = $batch\"\nlocation = \"out/sales/\"\n\
             partition_by = [\"day\"]\ntable_format = \"delta\"\nmode = \"{mode}\"\n"
        ),
    );
}

fn run(s: &Sandbox, batch: u32, date: &str) -> serde_json::Value {
    s.json(&["run", "job.toml", "--param", &format!("batch={batch}"), "--logical-date", date])
}

/// The table as its log says it is at `version` (the latest when `None`): its files (relative
/// paths) with their `numRecords`, by replaying the log's add and remove actions in order.
pub(crate) fn replay(s: &Sandbox, table: &str, version: Option<u64>) -> BTreeMap<String, u64> {
    let log = s.path(&format!("{table}/_delta_log"));
    let mut entries: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    entries.sort();
    let mut files = BTreeMap::new();
    for (number, entry) in entries.iter().enumerate() {
        assert_eq!(entry, &format!("{number:020}.json"), "the log's entries are numbered without gaps");
        if version.is_some_and(|v| number as u64 > v) {
            break;
        }
        for line in std::fs::read_to_string(log.join(entry)).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                let stats: serde_json::Value = serde_json::from_str(add["stats"].as_str().unwrap_or("{}")).unwrap();
                let rows = stats["numRecords"].as_u64().expect("etl's adds carry numRecords");
                files.insert(add["path"].as_str().unwrap().to_string(), rows);
            }
            if let Some(remove) = action.get("remove") {
                files.remove(remove["path"].as_str().unwrap());
            }
        }
    }
    files
}

/// The latest version of the log.
pub(crate) fn log_version(s: &Sandbox, table: &str) -> u64 {
    let entries = std::fs::read_dir(s.path(&format!("{table}/_delta_log"))).unwrap().flatten();
    entries.filter(|e| e.file_name().to_string_lossy().ends_with(".json")).count() as u64 - 1
}

fn count(s: &Sandbox, sql: &str) -> u64 {
    s.query(sql)[0]["n"].as_u64().unwrap()
}

/// What etl reads equals what the log holds: the same rows, in files that exist, and the
/// version `etl table history` records for its latest publication is the log's.
fn assert_in_step(s: &Sandbox) {
    let files = replay(s, "out/sales", None);
    let rows: u64 = files.values().sum();
    assert_eq!(count(s, "SELECT count(*) AS n FROM mart.sales"), rows);
    for path in files.keys() {
        assert!(s.path(&format!("out/sales/{path}")).exists(), "{path} is in the log and on disk");
    }
    let history = s.json(&["table", "history", "mart.sales"]);
    let latest = history["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(latest["delta_version"].as_u64(), Some(log_version(s, "out/sales")), "{history}");
    assert_eq!(latest["files"].as_u64(), Some(files.len() as u64));
}

#[test]
fn every_mode_is_one_commit_that_the_log_and_etl_read_alike() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    run(&s, 1, "2026-11-30");
    assert_eq!(log_version(&s, "out/sales"), 0);
    let first = replay(&s, "out/sales", None);
    assert_eq!(first.values().sum::<u64>(), 4);
    assert!(first.keys().all(|p| p.starts_with("day=a/") || p.starts_with("day=b/")), "{first:?}");
    assert_in_step(&s);

    // A rerun of the same work replaces its own files, in one commit.
    let report = run(&s, 1, "2026-11-30");
    assert_eq!(report["targets"][0]["replaced"][0]["rows"], 4, "{report}");
    assert_eq!(log_version(&s, "out/sales"), 1);
    assert!(replay(&s, "out/sales", None).keys().all(|p| !first.contains_key(p)));
    assert_in_step(&s);

    // Another batch adds to it; the first's files stay where the log names them.
    run(&s, 2, "2026-11-30");
    let appended = replay(&s, "out/sales", None);
    assert_eq!((appended.len(), appended.values().sum::<u64>()), (3, 6));
    assert_in_step(&s);

    // overwrite_partitions replaces day b only.
    sales_job(&s, "overwrite_partitions");
    run(&s, 3, "2026-12-01");
    let days = s.query("SELECT day, sum(amount) AS total FROM mart.sales GROUP BY day ORDER BY day");
    let totals: Vec<(String, i64)> =
        days.iter().map(|r| (r["day"].as_str().unwrap().to_string(), r["total"].as_i64().unwrap())).collect();
    assert_eq!(totals, [("a".to_string(), 30), ("b".to_string(), 70), ("c".to_string(), 110)]);
    assert_in_step(&s);

    // overwrite replaces everything.
    sales_job(&s, "overwrite");
    run(&s, 2, "2026-12-02");
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales"), 2);
    assert_eq!(log_version(&s, "out/sales"), 4);
    assert_in_step(&s);

    // Every version the log has is one etl published: the same rows read either way.
    let history = s.json(&["table", "history", "mart.sales"]);
    for version in history["versions"].as_array().unwrap() {
        let ours = version["version"].as_u64().unwrap();
        let delta = version["delta_version"].as_u64().unwrap();
        let rows: u64 = replay(&s, "out/sales", Some(delta)).values().sum();
        let sql = format!("SELECT count(*) AS n FROM version_of('mart.sales', {ours})");
        assert_eq!(count(&s, &sql), rows, "version {ours} (Delta {delta})");
    }
    // The table is registered for Athena's Delta reader.
    let schema = s.json(&["schema", "show", "mart.sales"]);
    assert_eq!(schema["parameters"]["table_type"], "DELTA", "{schema}");
    assert!(schema["location"].as_str().unwrap().ends_with("out/sales"), "{schema}");
}

fn customers_job(s: &Sandbox, options: &str) {
    customers_job_at(s, "mart.customers", "out/customers/", options);
}

fn customers_job_at(s: &Sandbox, table: &str, location: &str, options: &str) {
    s.write(
        "in/customers.csv",
        "id,name,tier,batch\n1,ann,gold,1\n2,bob,silver,1\n3,cy,bronze,1\n2,bob,gold,2\n4,dee,silver,2\n3,cy,x,3\n",
    );
    s.write(
        "job.toml",
        format!(
            "name = \"customers\"\n[params]\nbatch = 1\n[[source]]\ntable = \"raw.customers\"\nlocation = \"in/\"\n\
             format = \"csv\"\n[[target]]\ntable = \"{table}\"\n\
             query = \"SELECT id, name, tier FROM raw.customers WHERE batch = $batch\"\n\
             location = \"{location}\"\ntable_format = \"delta\"\nmode = \"merge\"\nmerge_on = [\"id\"]\n{options}\n"
        ),
    );
}

fn tiers(s: &Sandbox) -> Vec<(i64, String)> {
    tiers_of(s, "mart.customers", &[])
}

fn tiers_of(s: &Sandbox, table: &str, catalog: &[&str]) -> Vec<(i64, String)> {
    let sql = format!("SELECT id, tier FROM {table} ORDER BY id");
    let rows = s.etl(&[&["sql", sql.as_str(), "--format", "json"][..], catalog].concat()).json();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["tier"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn merge_updates_matched_rows_and_inserts_the_others_in_one_commit() {
    let s = Sandbox::new();
    customers_job(&s, "");
    run(&s, 1, "2026-11-30");
    assert_eq!(tiers(&s), [(1, "gold".into()), (2, "silver".into()), (3, "bronze".into())]);
    let before = log_version(&s, "out/customers");
    run(&s, 2, "2026-11-30");
    assert_eq!(tiers(&s), [(1, "gold".into()), (2, "gold".into()), (3, "bronze".into()), (4, "silver".into())]);
    assert_eq!(log_version(&s, "out/customers"), before + 1, "one commit");
    let rows: u64 = replay(&s, "out/customers", None).values().sum();
    assert_eq!(rows, 4);
    let last = std::fs::read_to_string(s.path(&format!("out/customers/_delta_log/{:020}.json", before + 1))).unwrap();
    assert!(last.contains("\"operation\":\"MERGE\""), "{last}");
}

#[test]
fn merge_with_when_matched_delete_removes_the_matched_rows() {
    let s = Sandbox::new();
    customers_job(&s, "when_matched = \"delete\"\nwhen_not_matched = \"ignore\"");
    run(&s, 1, "2026-11-30");
    // Nothing matched and nothing inserted: the table exists, empty.
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.customers"), 0);
    customers_job(&s, "");
    run(&s, 1, "2026-11-30");
    customers_job(&s, "when_matched = \"delete\"\nwhen_not_matched = \"ignore\"");
    run(&s, 3, "2026-11-30");
    assert_eq!(tiers(&s), [(1, "gold".into()), (2, "silver".into())]);
}

#[test]
fn a_rollback_is_a_commit_and_time_travel_reads_each_version() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    run(&s, 1, "2026-11-30");
    run(&s, 2, "2026-11-30");
    let two = log_version(&s, "out/sales");
    s.json(&["rollback", "mart.sales", "--to", "1"]);
    assert_eq!(log_version(&s, "out/sales"), two + 1);
    assert_eq!(replay(&s, "out/sales", None), replay(&s, "out/sales", Some(0)));
    assert_in_step(&s);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM version_of('mart.sales', 2)"), 6);
    // Rolling forward again finds the files where they were.
    s.json(&["rollback", "mart.sales", "--to", "2"]);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales"), 6);
    assert_in_step(&s);
}

#[test]
fn compaction_and_gc_keep_the_log_and_the_files_of_kept_versions() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    for batch in [1, 2, 3] {
        run(&s, batch, "2026-11-30");
    }
    let files_before = replay(&s, "out/sales", None).len();
    let report = s.json(&["compact", "mart.sales", "--sort-by", "id,amount", "--zorder"]);
    assert_eq!(
        (&report["sort_by"], &report["zorder"]),
        (&serde_json::json!(["id", "amount"]), &serde_json::json!(true))
    );
    let compacted = replay(&s, "out/sales", None);
    assert!(compacted.len() < files_before, "{compacted:?}");
    // The same rows rearranged: a commit that says so, which streaming readers skip.
    let entry = format!("out/sales/_delta_log/{:020}.json", log_version(&s, "out/sales"));
    let commit = std::fs::read_to_string(s.path(&entry)).unwrap();
    assert!(commit.contains("\"add\"") && !commit.contains("\"dataChange\":true"), "{commit}");
    assert!(commit.contains("\"operation\":\"OPTIMIZE\""), "{commit}");
    assert_eq!(compacted.values().sum::<u64>(), 7);
    assert_in_step(&s);
    s.json(&["gc", "mart.sales"]);
    // Every version retention keeps is still readable where the log names its files.
    for version in 0..=log_version(&s, "out/sales") {
        for path in replay(&s, "out/sales", Some(version)).keys() {
            assert!(s.path(&format!("out/sales/{path}")).exists(), "version {version}: {path}");
        }
    }
    assert_in_step(&s);
}

/// Starts a run of `batch` and kills it (SIGKILL) once it has committed to the Delta log,
/// before its catalog publication.
fn kill_after_commit(s: &Sandbox, batch: u32) {
    let mut child = s
        .command(&["run", "job.toml", "--param", &format!("batch={batch}"), "--logical-date", "2026-11-30"])
        .env("ETL_KILL_POINT", "delta.committed")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reached = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .any(|line| line.unwrap_or_default().contains("kill point delta.committed#1 reached"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the run reached its commit");
}

#[test]
fn a_run_killed_after_its_commit_is_undone_by_the_next_run() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    run(&s, 1, "2026-11-30");
    kill_after_commit(&s, 2);
    // Delta readers see the killed run's whole commit; etl's readers the last publication.
    assert_eq!(replay(&s, "out/sales", None).values().sum::<u64>(), 6);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales"), 4);
    // The next run undoes that commit, then makes its own.
    let report = run(&s, 3, "2026-11-30");
    assert!(report["warnings"].to_string().contains("undid Delta commits 1..1"), "{report}");
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales"), 5);
    assert_in_step(&s);
}

#[test]
fn a_first_run_killed_after_creating_the_table_leaves_it_to_the_next() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    kill_after_commit(&s, 1);
    assert_eq!(replay(&s, "out/sales", None).values().sum::<u64>(), 4);
    s.etl(&["sql", "SELECT * FROM mart.sales"]).assert_failure(1, "mart.sales");
    let report = run(&s, 2, "2026-11-30");
    assert!(report["warnings"].to_string().contains("undid Delta commits 0..0"), "{report}");
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales"), 2);
    assert_in_step(&s);
}

#[test]
fn refusals_name_the_option_and_write_nothing() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "merge");
    s.etl(&["run", "job.toml"]).assert_failure(2, "target[0].merge_on: mode = \"merge\" needs the key columns");
    let hive = std::fs::read_to_string(s.path("job.toml")).unwrap().replace("table_format = \"delta\"\n", "");
    s.write("job.toml", hive.replace("mode = \"merge\"", "mode = \"merge\"\nmerge_on = [\"id\"]"));
    s.etl(&["run", "job.toml"]).assert_failure(2, "target[0].mode: merge needs table_format = \"delta\"");
    s.write("job.toml", hive.replace("mode = \"merge\"", "mode = \"append\"\nmerge_on = [\"id\"]"));
    s.etl(&["run", "job.toml"]).assert_failure(2, "target[0].merge_on: applies to mode = \"merge\" only");
    s.write("job.toml", hive.replace("mode = \"merge\"", "mode = \"append\"\ndata_change = false"));
    s.etl(&["run", "job.toml"]).assert_failure(2, "target[0].data_change: false applies to Delta targets");
    s.write("job.toml", hive.replace("mode = \"merge\"", "mode = \"append\"\ntable_format = \"iceberg\""));
    s.etl(&["run", "job.toml"]).assert_failure(2, "target[0].table_format: unknown table format 'iceberg'");
    sales_job(&s, "merge");
    let delta = std::fs::read_to_string(s.path("job.toml")).unwrap();
    s.write("job.toml", delta.replace("mode = \"merge\"", "mode = \"merge\"\nmerge_on = [\"missing\"]"));
    s.etl(&["run", "job.toml"]).assert_failure(1, "merge_on column 'missing' is not in the query's output");
    let checked = "mode = \"merge\"\nmerge_on = [\"id\"]\n[[target.check]]\nrow_count_change = { max_drop = 0.1 }";
    s.write("job.toml", delta.replace("mode = \"merge\"", checked));
    s.etl(&["run", "job.toml"])
        .assert_failure(2, "target[0].check[0]: row_count_change cannot be judged before a merge");
    assert!(s.files("out").is_empty(), "{:?}", s.files("out"));

    // A Hive table is not written as Delta, nor the other way round.
    s.write("job.toml", hive.replace("mode = \"merge\"", "mode = \"append\""));
    s.json(&["run", "job.toml"]);
    sales_job(&s, "append");
    s.etl(&["run", "job.toml"]).assert_failure(1, "mart.sales is a hive table; a target with table_format = \"delta\"");
    assert!(!s.path("out/sales/_delta_log").exists());

    // A Delta log etl did not write is not taken over: here one whose commit another tool
    // made (no etl run in its commitInfo).
    let other = Sandbox::new();
    sales(&other);
    sales_job(&other, "append");
    other.json(&["run", "job.toml"]);
    std::fs::rename(other.path("out/sales"), s.path("out/foreign")).unwrap();
    let first = s.path("out/foreign/_delta_log/00000000000000000000.json");
    let lines: Vec<String> = std::fs::read_to_string(&first)
        .unwrap()
        .lines()
        .map(|line| {
            let mut action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(info) = action.get_mut("commitInfo").and_then(|i| i.as_object_mut()) {
                info.remove("etl.run_id");
            }
            action.to_string()
        })
        .collect();
    std::fs::write(&first, lines.join("\n")).unwrap();
    let job = std::fs::read_to_string(s.path("job.toml")).unwrap();
    s.write("job.toml", job.replace("mart.sales", "mart.taken").replace("out/sales/", "out/foreign/"));
    s.etl(&["run", "job.toml"]).assert_failure(1, "a Delta table is already at");
    assert_eq!(log_version(&s, "out/foreign"), 0);
}

#[test]
fn a_delta_table_only_widens_by_new_columns_outside_overwrite() {
    let s = Sandbox::new();
    sales(&s);
    sales_job(&s, "append");
    run(&s, 1, "2026-11-30");
    let job = std::fs::read_to_string(s.path("job.toml")).unwrap();
    // A new column is added to the log's schema; rows written before read it as null.
    s.write("job.toml", job.replace("SELECT id, day, amount", "SELECT id, day, amount, 'x' AS note"));
    run(&s, 2, "2026-11-30");
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.sales WHERE note IS NULL"), 4);
    let schema = std::fs::read_to_string(s.path("out/sales/_delta_log/00000000000000000001.json")).unwrap();
    assert!(schema.contains("metaData") && schema.contains("\\\"name\\\":\\\"note\\\""), "{schema}");
    assert_in_step(&s);
    // A type changed is refused: the log's readers would need Delta's type widening.
    s.write(
        "job.toml",
        job.replace("SELECT id, day, amount", "SELECT id, day, CAST(amount AS DOUBLE) AS amount, 'x' AS note"),
    );
    s.etl(&["run", "job.toml", "--param", "batch=3"])
        .assert_failure(1, "not compatible with the files already in the table");
}

/// Two jobs appending to one Delta table at once, `rounds` times: each run publishes whole or
/// fails with nothing published; the log and the catalog end holding the same files, with the
/// rows of the runs that succeeded.
pub(crate) fn race(s: &Sandbox, location: &str, table: &str, catalog: &[&str], rounds: usize) {
    s.write("in/rows.csv", "id,writer\n1,a\n2,a\n3,b\n");
    for writer in ["a", "b"] {
        s.write(
            &format!("{writer}.toml"),
            format!(
                "name = \"writer_{writer}\"\n[[source]]\ntable = \"raw.rows_{writer}\"\nlocation = \"in/\"\nformat = \"csv\"\n\
                 [[target]]\ntable = \"{table}\"\nquery = \"SELECT id, writer FROM raw.rows_{writer} WHERE writer = '{writer}'\"\n\
                 location = \"{location}\"\ntable_format = \"delta\"\nmode = \"append\"\n"
            ),
        );
    }
    let mut expected = 0;
    for round in 0..rounds {
        let date = format!("2026-11-{:02}", round + 1);
        let spawn = |writer: &str| {
            let mut args = vec!["run", &*format!("{writer}.toml"), "--logical-date", &date, "--json"]
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>();
            args.extend(catalog.iter().map(|a| a.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            s.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        };
        let children = [("a", spawn("a")), ("b", spawn("b"))];
        for (writer, child) in children {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
            match output.status.code() {
                Some(0) => expected += if writer == "a" { 2 } else { 1 },
                Some(1) => assert!(
                    ["another", "is writing"].iter().any(|why| stderr.contains(why)),
                    "{writer} failed for a reason other than the race: {stderr}"
                ),
                other => panic!("{writer}: exit {other:?}: {stderr}"),
            }
        }
    }
    let mut args = vec!["sql", "SELECT count(*) AS n FROM TABLE", "--format", "json"];
    let sql = args[1].replace("TABLE", table);
    args[1] = &sql;
    args.extend(catalog);
    let rows = s.etl(&args).json()[0]["n"].as_u64().unwrap();
    assert_eq!(rows, expected, "the rows of every run that succeeded, and none of the others'");
    let history = s.etl(&[&["table", "history", table, "--json"][..], catalog].concat()).json();
    let latest = history["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(latest["rows"].as_u64(), Some(expected), "{history}");
}

#[test]
fn two_writers_racing_on_one_delta_table_lose_no_update() {
    let s = Sandbox::new();
    race(&s, "out/raced/", "mart.raced", &[], 4);
    let files = replay(&s, "out/raced", None);
    assert_eq!(count(&s, "SELECT count(*) AS n FROM mart.raced"), files.values().sum::<u64>());
}

#[test]
fn on_s3_and_glue_a_delta_table_merges_rolls_back_and_races() {
    if aws::endpoint().is_none() {
        return;
    }
    let s = Sandbox::new();
    let bucket = aws::unique("delta");
    aws::create_bucket(&bucket);
    let table = format!("{}.customers", aws::unique("db"));
    let glue = ["--catalog", "glue"];
    customers_job_at(&s, &table, &format!("s3://{bucket}/customers/"), "");
    let run = |batch: u32| {
        let args = ["run", "job.toml", "--param", &format!("batch={batch}"), "--json", "--catalog", "glue"];
        s.etl(&args).json()
    };
    run(1);
    run(2);
    let merged = [(1, "gold".to_string()), (2, "gold".into()), (3, "bronze".into()), (4, "silver".into())];
    assert_eq!(tiers_of(&s, &table, &glue), merged);
    let log = aws::list_keys(&bucket, "customers/_delta_log/");
    assert_eq!(log.iter().filter(|k| k.ends_with(".json")).count(), 3, "create, then a MERGE a run: {log:?}");
    s.etl(&["rollback", &table, "--to", "1", "--json", "--catalog", "glue"]).json();
    assert_eq!(tiers_of(&s, &table, &glue), [(1, "gold".into()), (2, "silver".into()), (3, "bronze".into())]);
    assert_eq!(aws::list_keys(&bucket, "customers/_delta_log/").len(), 4);
    let schema = s.etl(&["schema", "show", &table, "--json", "--catalog", "glue"]).json();
    assert_eq!(schema["parameters"]["table_type"], "DELTA", "Athena reads it through its log: {schema}");
    assert_eq!(schema["location"], format!("s3://{bucket}/customers"));

    let raced = format!("{}.raced", aws::unique("db"));
    race(&s, &format!("s3://{bucket}/raced/"), &raced, &glue, 3);
}

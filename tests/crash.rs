//! Killed runs: `etl run` stopped at a kill point (`ETL_KILL_POINT`, see `src/kill_points.rs`)
//! and killed there with SIGKILL, at points spread over listing, reading, writing and
//! committing, on local files with the embedded catalog and on S3 with Glue.
//!
//! After each kill: readers through the catalog see exactly the old output or the new one,
//! never a mix (two targets, one partitioned and appended to, one replaced); the history
//! says the run failed; the next run succeeds with exactly the new output; and after
//! `etl gc` every data file under the targets is one the catalog names (or, for Delta tables,
//! one a version of its log names), and no staging folder is left. With Delta targets, readers
//! of each log also see its old version or its new one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::util::{Sandbox, aws};

const OLD_DATE: &str = "2026-11-02";
const NEW_DATE: &str = "2026-11-09";

/// Where a scenario keeps its data and catalog.
enum Place {
    Local,
    /// Buckets and a Glue database of its own.
    Cloud {
        raw: String,
        curated: String,
        database: String,
    },
}

struct Scenario {
    sandbox: Sandbox,
    place: Place,
    /// Both targets are Delta tables (`table_format = "delta"`).
    delta: bool,
}

impl Scenario {
    fn local() -> Scenario {
        let s = Scenario { sandbox: Sandbox::new(), place: Place::Local, delta: false };
        s.write_job();
        s
    }

    fn local_delta() -> Scenario {
        let s = Scenario { sandbox: Sandbox::new(), place: Place::Local, delta: true };
        s.write_job();
        s
    }

    fn cloud() -> Option<Scenario> {
        aws::endpoint()?;
        let place =
            Place::Cloud { raw: aws::unique("raw"), curated: aws::unique("cur"), database: aws::unique("crash") };
        if let Place::Cloud { raw, curated, .. } = &place {
            aws::create_bucket(raw);
            aws::create_bucket(curated);
        }
        let s = Scenario { sandbox: Sandbox::new(), place, delta: false };
        s.write_job();
        Some(s)
    }

    fn database(&self) -> &str {
        match &self.place {
            Place::Local => "mart",
            Place::Cloud { database, .. } => database,
        }
    }

    fn input(&self, key: &str, body: &str) {
        match &self.place {
            Place::Local => {
                self.sandbox.write(&format!("in/{key}"), body);
            }
            Place::Cloud { raw, .. } => aws::put_object(raw, key, body.as_bytes()),
        }
    }

    fn write_job(&self) {
        let (input, output, catalog) = match &self.place {
            Place::Local => (self.sandbox.at("in"), self.sandbox.at("out"), "local"),
            Place::Cloud { raw, curated, .. } => (format!("s3://{raw}"), format!("s3://{curated}"), "glue"),
        };
        let db = self.database();
        let format = if self.delta { "table_format = \"delta\"" } else { "" };
        self.sandbox.write(
            "job.sql",
            format!(
                "CREATE VIEW per_day AS\nSELECT o.day, c.segment, count(*) AS orders, sum(o.amount) AS revenue\nFROM {db}.orders o JOIN {db}.customers c USING (customer_id)\nGROUP BY o.day, c.segment;\n"
            ),
        );
        self.sandbox.write(
            "job.toml",
            format!(
                r#"name = "crashy"
catalog = "{catalog}"
[[source]]
table = "{db}.orders"
location = "{input}/orders/"
[[source]]
table = "{db}.customers"
location = "{input}/customers/"
[[step]]
sql = "job.sql"
[[target]]
table = "{db}.per_day"
query = "SELECT * FROM per_day"
location = "{output}/per_day/"
partition_by = ["day"]
mode = "append"
{format}
[[target]]
table = "{db}.totals"
query = "SELECT count(*) AS orders, sum(amount) AS revenue FROM {db}.orders"
location = "{output}/totals/"
mode = "overwrite"
{format}
"#
            ),
        );
        self.input(
            "customers/c.json",
            "{\"customer_id\":1,\"segment\":\"smb\"}\n{\"customer_id\":2,\"segment\":\"ent\"}\n",
        );
        self.input("orders/day=2026-11-02/a.csv", "order_id,customer_id,amount\n1,1,10\n2,2,20\n");
        self.input("orders/day=2026-11-02/b.csv", "order_id,customer_id,amount\n3,1,1.5\n");
        self.input("orders/day=2026-11-03/a.csv", "order_id,customer_id,amount\n4,2,7\n");
    }

    /// The second week's data: a new file in an old partition, and a new partition.
    fn add_new_data(&self) {
        self.input("orders/day=2026-11-03/b.csv", "order_id,customer_id,amount\n5,1,2\n6,1,3\n");
        self.input("orders/day=2026-11-04/a.csv", "order_id,customer_id,amount\n7,2,100\n");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command(args);
        if let Place::Cloud { .. } = self.place {
            command.args(["--catalog", "glue"]);
        }
        command
    }

    fn etl(&self, args: &[&str]) -> crate::util::Output {
        match self.place {
            Place::Local => self.sandbox.etl(args),
            Place::Cloud { .. } => self.sandbox.etl(&[args, &["--catalog", "glue"]].concat()),
        }
    }

    fn run(&self, date: &str) -> serde_json::Value {
        self.etl(&["run", "job.toml", "--logical-date", date, "--json"]).json()
    }

    /// Starts a run, waits until it reaches `point`, and kills it with SIGKILL.
    fn kill_run_at(&self, point: &str, date: &str) {
        let mut args = vec!["run", "job.toml", "--logical-date", date];
        if let Place::Cloud { .. } = self.place {
            args.extend(["--catalog", "glue"]);
        }
        self.sandbox.kill_at(&args, point);
    }

    /// `etl gc` of the two targets (the catalog of the cloud cases is shared with other tests).
    fn gc(&self) -> serde_json::Value {
        let db = self.database();
        self.etl(&["gc", &format!("{db}.per_day"), &format!("{db}.totals"), "--json"]).json()
    }

    /// What readers of the two targets see, through the catalog.
    fn snapshot(&self) -> String {
        let db = self.database();
        let per_day = self.etl(&[
            "sql",
            &format!("SELECT day, segment, orders, revenue FROM {db}.per_day ORDER BY day, segment, orders, revenue"),
            "--format",
            "csv",
        ]);
        let totals = self.etl(&["sql", &format!("SELECT orders, revenue FROM {db}.totals"), "--format", "csv"]);
        assert_eq!(per_day.code, 0, "{per_day:?}");
        assert_eq!(totals.code, 0, "{totals:?}");
        format!("{}{}", per_day.stdout, totals.stdout)
    }

    /// Folders the catalog reads each target from.
    fn current_folders(&self) -> Vec<String> {
        let db = self.database();
        let mut folders = Vec::new();
        for table in ["per_day", "totals"] {
            let show = self.etl(&["schema", "show", &format!("{db}.{table}"), "--json"]).json();
            let partitions = show["partitions"].as_array().cloned().unwrap_or_default();
            if partitions.is_empty() {
                folders.push(show["location"].as_str().unwrap().to_string());
            }
            folders.extend(partitions.iter().map(|p| p["location"].as_str().unwrap().to_string()));
        }
        folders.sort();
        folders
    }

    /// Every object under the targets, as URLs.
    fn output_objects(&self) -> Vec<String> {
        match &self.place {
            Place::Local => self
                .sandbox
                .files("out")
                .into_iter()
                .map(|f| format!("file://{}/{f}", self.sandbox.at("out")))
                .collect(),
            Place::Cloud { curated, .. } => {
                aws::list_keys(curated, "").into_iter().map(|k| format!("s3://{curated}/{k}")).collect()
            }
        }
    }
}

/// What each scenario shows after the first week, and after the second, with no kill.
fn expected(cloud: bool) -> &'static (String, String) {
    static LOCAL: OnceLock<(String, String)> = OnceLock::new();
    static CLOUD: OnceLock<(String, String)> = OnceLock::new();
    (if cloud { &CLOUD } else { &LOCAL }).get_or_init(|| {
        let s = if cloud { Scenario::cloud().unwrap() } else { Scenario::local() };
        assert_eq!(s.run(OLD_DATE)["status"], "succeeded");
        let old = s.snapshot();
        s.add_new_data();
        assert_eq!(s.run(NEW_DATE)["status"], "succeeded");
        (old, s.snapshot())
    })
}

fn killed_at(s: Scenario, point: &str) {
    let cloud = matches!(s.place, Place::Cloud { .. });
    let (old, new) = expected(cloud);
    assert_eq!(s.run(OLD_DATE)["status"], "succeeded");
    assert_eq!(&s.snapshot(), old);
    s.add_new_data();

    s.kill_run_at(point, NEW_DATE);
    let seen = s.snapshot();
    assert!(&seen == old || &seen == new, "killed at {point}, readers see a mix:\n{seen}\nold:\n{old}\nnew:\n{new}");
    if s.delta {
        // Readers of each Delta log see its old or its new version too (each log on its own:
        // one may be ahead of the other until the next run).
        let per_day: u64 = crate::delta::replay(&s.sandbox, "out/per_day", None).values().sum();
        assert!(
            [per_day_rows(old), per_day_rows(new)].contains(&per_day),
            "killed at {point}: per_day's log: {per_day} rows"
        );
        assert_eq!(crate::delta::replay(&s.sandbox, "out/totals", None).values().sum::<u64>(), 1);
    }
    let runs = s.etl(&["runs", "--json"]).json();
    let killed = &runs["runs"][0];
    // A run killed after it recorded its publication succeeded (readers see its output), and
    // says it was killed; one killed before failed, and published nothing.
    let published = killed["targets"].as_array().is_some_and(|t| t.iter().any(|t| !t["version"].is_null()));
    match published {
        true => {
            assert_eq!((killed["status"].as_str(), &seen), (Some("succeeded"), new), "killed at {point}: {killed}");
            assert!(killed["warnings"].to_string().contains("killed"), "{killed}");
        }
        false => {
            assert_eq!(killed["status"], "failed", "killed at {point}: {killed}");
            assert!(killed["error"].as_str().unwrap_or_default().contains("killed"), "{killed}");
        }
    }

    let next = s.run(NEW_DATE);
    assert_eq!(next["status"], "succeeded", "after a kill at {point}: {next}");
    assert_eq!(&s.snapshot(), new, "after a kill at {point}, the next run");

    let gc = s.gc();
    let removed = gc["removed"].as_array().unwrap().len();
    eprintln!(
        "killed at {point}: readers saw the {} output; gc removed {removed} objects",
        if &seen == old { "old" } else { "new" }
    );
    let folders = s.current_folders();
    let objects = s.output_objects();
    // The files of replaced versions kept for rollback, and the manifests of versions, are
    // the catalog's too.
    // A Delta table's files stay where any version of its log names them.
    let logged: std::collections::BTreeSet<String> = match s.delta {
        true => ["per_day", "totals"]
            .into_iter()
            .flat_map(|table| {
                let folder = format!("out/{table}");
                (0..=crate::delta::log_version(&s.sandbox, &folder))
                    .flat_map(|v| crate::delta::replay(&s.sandbox, &folder, Some(v)).into_keys())
                    .map(|path| format!("file://{}/{table}/{path}", s.sandbox.at("out")))
                    .collect::<Vec<_>>()
            })
            .collect(),
        false => Default::default(),
    };
    let kept = |o: &String| {
        o.contains("/_etl_retained/")
            || o.contains("/_etl_versions/")
            || o.contains("/_delta_log/")
            || logged.contains(o)
    };
    let orphans: Vec<&String> =
        objects.iter().filter(|o| !kept(o) && !folders.iter().any(|f| o.starts_with(&format!("{f}/")))).collect();
    assert!(orphans.is_empty(), "killed at {point}: objects no catalog entry names: {orphans:?}\nfolders: {folders:?}");
    assert!(s.gc()["removed"].as_array().unwrap().is_empty(), "a second sweep finds nothing");
}

/// The rows of per_day in a snapshot (the CSV before totals' header).
fn per_day_rows(snapshot: &str) -> u64 {
    snapshot.lines().skip(1).take_while(|line| *line != "orders,revenue").count() as u64
}

macro_rules! kill_points {
    ($scenario:expr, $($test:ident: $point:expr,)*) => {
        $(
            #[test]
            fn $test() {
                let Some(scenario) = $scenario else { return };
                killed_at(scenario, $point);
            }
        )*
    };
}

mod local {
    use super::*;

    kill_points! { Some(Scenario::local()),
        listing_the_first_source: "list#1",
        listing_the_second_source: "list#2",
        crawled_the_first_source: "crawl#1",
        crawled_both_sources: "crawl#2",
        reading_the_first_object: "read.file#1",
        reading_the_fourth_object: "read.file#4",
        reading_the_seventh_object: "read.file#7",
        reading_the_ninth_object: "read.file#9",
        one_target_written: "stage.written#1",
        both_targets_written: "stage.written#2",
        reading_back_the_first_file: "stage.file#1",
        reading_back_the_fourth_file: "stage.file#4",
        moved_the_first_file: "materialize.move#1",
        moved_the_third_file: "materialize.move#3",
        copied_the_first_kept_file: "materialize.copy#1",
        copied_the_second_kept_file: "materialize.copy#2",
        before_publishing: "publish#1",
        inside_the_catalog_transaction: "catalog.commit#1",
        after_publishing: "published#1",
        deleted_the_first_replaced_file: "cleanup.delete#1",
        deleted_the_third_replaced_file: "cleanup.delete#3",
        before_recording_the_end: "finished#1",
    }
}

/// Both targets Delta tables: the kill points of a run that commits to Delta logs.
mod delta {
    use super::*;

    kill_points! { Some(Scenario::local_delta()),
        both_targets_written: "stage.written#2",
        moved_the_first_file: "materialize.move#1",
        moved_the_third_file: "materialize.move#3",
        committed_the_first_table: "delta.committed#1",
        committed_both_tables: "delta.committed#2",
        before_publishing: "publish#1",
        inside_the_catalog_transaction: "catalog.commit#1",
        after_publishing: "published#1",
        before_recording_the_end: "finished#1",
    }
}

mod cloud {
    use super::*;

    kill_points! { Scenario::cloud(),
        listing_the_first_source: "list#1",
        crawled_both_sources: "crawl#2",
        reading_the_first_object: "read.file#1",
        reading_the_seventh_object: "read.file#7",
        one_target_written: "stage.written#1",
        both_targets_written: "stage.written#2",
        reading_back_the_second_file: "stage.file#2",
        moved_the_first_file: "materialize.move#1",
        moved_the_fourth_file: "materialize.move#4",
        copied_the_first_kept_file: "materialize.copy#1",
        before_publishing: "publish#1",
        after_the_first_glue_call: "catalog.commit#1",
        after_the_second_glue_call: "catalog.commit#2",
        after_the_third_glue_call: "catalog.commit#3",
        after_the_fourth_glue_call: "catalog.commit#4",
        after_the_fifth_glue_call: "catalog.commit#5",
        after_the_sixth_glue_call: "catalog.commit#6",
        after_the_seventh_glue_call: "catalog.commit#7",
        after_publishing: "published#1",
        deleted_the_first_replaced_file: "cleanup.delete#1",
        deleted_the_third_replaced_file: "cleanup.delete#3",
        before_recording_the_end: "finished#1",
    }
}

#[test]
fn gc_removes_what_a_killed_run_left_where_no_later_run_writes() {
    let s = Scenario::local();
    assert_eq!(s.run(OLD_DATE)["status"], "succeeded");
    s.add_new_data();
    // Killed with its files in their run folders, the new partition's among them.
    s.kill_run_at("materialize.move#4", NEW_DATE);
    std::fs::remove_file(s.sandbox.path("in/orders/day=2026-11-04/a.csv")).unwrap();
    assert_eq!(s.run(NEW_DATE)["status"], "succeeded");
    let left: Vec<String> =
        s.sandbox.files("out/per_day").into_iter().filter(|f| f.starts_with("day=2026-11-04/")).collect();
    assert_eq!(left.len(), 1, "the next run does not write 2026-11-04, so the killed run's file stays: {left:?}");

    let dry = s.etl(&["gc", "--dry-run", "--json"]).json();
    assert_eq!(dry["removed"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(s.sandbox.files("out/per_day").iter().filter(|f| f.starts_with("day=2026-11-04/")).count(), 1);
    let gc = s.etl(&["gc"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(
        gc.stdout.contains(&format!("removed file://{}/per_day/{}", s.sandbox.at("out"), left[0])),
        "{}",
        gc.stdout
    );
    assert!(gc.stdout.contains("removed 1 objects"), "{}", gc.stdout);
    assert!(!s.sandbox.path("out/per_day/day=2026-11-04").exists(), "its empty folders go too");
    let folders = s.current_folders();
    let kept = |o: &String| o.contains("/_etl_retained/") || o.contains("/_etl_versions/");
    assert!(s.output_objects().iter().all(|o| kept(o) || folders.iter().any(|f| o.starts_with(&format!("{f}/")))));
}

#[test]
fn gc_leaves_a_running_run_alone() {
    let s = Scenario::local();
    assert_eq!(s.run(OLD_DATE)["status"], "succeeded");
    s.add_new_data();
    let mut child = s
        .command(&["run", "job.toml", "--logical-date", NEW_DATE])
        .env("ETL_KILL_POINT", "publish")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap_or_default().contains("kill point")), "the run reaches publication");
    // Paused before publishing, with every file in place: alive, so nothing of it is garbage.
    let gc = s.etl(&["gc", "--json"]).json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gc["removed"].as_array().unwrap().is_empty(), "{gc}");
    // Four new files and two kept ones copied into the run's folders; killed, they are garbage.
    assert_eq!(gc["live"], 6, "{gc}");
    assert_eq!(s.etl(&["gc", "--json"]).json()["removed"].as_array().unwrap().len(), 6);
}

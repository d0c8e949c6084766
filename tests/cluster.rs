//! Jobs and queries on an Apache Ballista cluster: a scheduler and executors started as
//! `etl cluster` processes on loopback ports, against the same commands run locally.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{Sandbox, Scheduler as Role};

const STARTED: Duration = Duration::from_secs(60);
/// The roles log their start (and an executor its registration) at this level.
const LOG: (&str, &str) = ("RUST_LOG", "info");

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A scheduler and its executors, each its own `etl` process.
pub struct Cluster {
    pub scheduler: String,
    roles: Vec<Role>,
}

impl Cluster {
    /// A scheduler and `executors` executors of 2 task slots, each registered before this returns.
    pub fn start(s: &Sandbox, executors: usize) -> Cluster {
        let mut cluster = Cluster::scheduler_only(s);
        for _ in 0..executors {
            cluster.add_executor(s, 2, &[]);
        }
        cluster
    }

    pub fn scheduler_only(s: &Sandbox) -> Cluster {
        let address = format!("127.0.0.1:{}", free_port());
        let args = ["cluster", "scheduler", "--bind", &address, "--executor-timeout", "10"];
        let mut scheduler = Role::spawn(s, &args, &[LOG]);
        scheduler.wait_for_log("listening on", STARTED);
        Cluster { scheduler: address, roles: vec![scheduler] }
    }

    /// One more executor running `concurrency` tasks at once (with variables of its own: a
    /// kill point), on ports it chooses, once registered.
    pub fn add_executor(&mut self, s: &Sandbox, concurrency: usize, variables: &[(&str, &str)]) -> &mut Role {
        self.add(s, "127.0.0.1:0", concurrency, variables)
    }

    /// One more executor of 2 task slots listening on `bind`, once registered.
    pub fn add_executor_bound(&mut self, s: &Sandbox, bind: &str) -> &mut Role {
        self.add(s, bind, 2, &[])
    }

    fn add(&mut self, s: &Sandbox, bind: &str, concurrency: usize, variables: &[(&str, &str)]) -> &mut Role {
        let work = s.at(&format!("executor-{}", self.roles.len()));
        let concurrency = concurrency.to_string();
        let args = [
            "cluster",
            "executor",
            "--scheduler",
            &self.scheduler,
            "--bind",
            bind,
            "--work-dir",
            &work,
            "--concurrency",
            &concurrency,
        ];
        std::fs::create_dir_all(&work).unwrap();
        for attempt in 1.. {
            let mut executor = Role::spawn(s, &args, &[&[LOG], variables].concat());
            match executor.log_line("registration succeed", STARTED) {
                Ok(()) => {
                    self.roles.push(executor);
                    break;
                }
                // A free port it picked (`:0`) may be taken by another test's process before
                // it binds it: another start picks others.
                Err(log)
                    if attempt < 3
                        && log.iter().any(|line| line.contains("cannot listen") || line.contains("in use")) =>
                {
                    continue;
                }
                Err(log) => panic!("the executor did not register; its log: {log:?}"),
            }
        }
        self.roles.last_mut().unwrap()
    }

    pub fn scheduler(&mut self) -> &mut Role {
        &mut self.roles[0]
    }

    pub fn engine(&self) -> String {
        format!("df://{}", self.scheduler)
    }
}

/// `etl sql …` run locally, then on a cluster of one executor: both succeed with the same
/// output, which is returned.
pub fn same_locally_and_on_a_cluster(s: &Sandbox, sql_args: &[&str]) -> String {
    let mut args = vec!["sql"];
    args.extend_from_slice(sql_args);
    let local = s.etl(&args);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let cluster = Cluster::start(s, 1);
    let engine = cluster.engine();
    args.extend(["--engine", &engine]);
    let remote = s.etl(&args);
    assert_eq!((remote.code, remote.stdout.as_str()), (0, local.stdout.as_str()), "{}", remote.stderr);
    local.stdout
}

/// The example weekly job and its inputs, in a sandbox of its own.
fn weekly_job() -> Sandbox {
    let s = Sandbox::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (from, to) in
        [("sql/weekly_orders.toml", "sql/weekly_orders.toml"), ("sql/weekly_orders.sql", "sql/weekly_orders.sql")]
    {
        s.write(to, std::fs::read(root.join(from)).unwrap());
    }
    for folder in ["data/orders", "data/customers"] {
        for entry in walk(&root.join(folder)) {
            let relative = entry.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            s.write(&relative, std::fs::read(&entry).unwrap());
        }
    }
    s
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        match entry.path().is_dir() {
            true => files.extend(walk(&entry.path())),
            false => files.push(entry.path()),
        }
    }
    files
}

/// What a run's report says it read, wrote and set apart (run ids and times aside).
fn summary(report: &serde_json::Value) -> serde_json::Value {
    let sources: Vec<_> = report["sources"].as_array().unwrap().iter().map(|s| (&s["table"], &s["rows"])).collect();
    let targets: Vec<_> = report["targets"].as_array().unwrap().iter().map(|t| (&t["table"], &t["rows"])).collect();
    serde_json::json!({
        "status": report["status"],
        "sources": sources,
        "targets": targets,
        "rejected_rows": report["rejected_rows"],
    })
}

const WEEKLY_ROWS: &str = "SELECT * FROM curated.weekly_revenue ORDER BY order_week, segment";

#[test]
fn the_weekly_job_on_a_cluster_publishes_what_it_publishes_locally() {
    let local = weekly_job();
    let on_cluster = weekly_job();
    let cluster = Cluster::start(&on_cluster, 2);
    let args = ["run", "sql/weekly_orders.toml", "--logical-date", "2026-11-30", "--json"];
    let expected = local.etl(&args).json();
    let engine = cluster.engine();
    let report = on_cluster.etl(&[&args[..], &["--engine", &engine]].concat()).json();
    assert_eq!(summary(&report), summary(&expected));
    assert!(report["sources"][0]["rows"].as_u64().unwrap() > 1000, "{report}");
    assert_eq!(on_cluster.query(WEEKLY_ROWS), local.query(WEEKLY_ROWS));
    // The same query read back on the cluster, and the job file's `engine` in place of the flag.
    let on_cluster_rows = on_cluster.etl(&["sql", WEEKLY_ROWS, "--format", "json", "--engine", &engine]).json();
    assert_eq!(on_cluster_rows, serde_json::Value::Array(local.query(WEEKLY_ROWS)));
    // A table made in the session's memory travels inside the plan to the executors.
    let joined = "CREATE TABLE segments AS SELECT DISTINCT segment FROM curated.weekly_revenue; \
                  SELECT count(*) AS n FROM curated.weekly_revenue JOIN segments USING (segment)";
    let counted = on_cluster.etl(&["sql", joined, "--format", "json", "--engine", &engine]).json();
    assert_eq!(counted, serde_json::Value::Array(local.query(joined)));
    assert!(counted[0]["n"].as_u64().unwrap() > 0, "{counted}");
    let job = on_cluster.path("sql/weekly_orders.toml");
    let text =
        std::fs::read_to_string(&job).unwrap().replace("schedule =", &format!("engine = \"{engine}\"\nschedule ="));
    std::fs::write(&job, text).unwrap();
    let rerun = on_cluster.etl(&args).json();
    assert_eq!(summary(&rerun), summary(&expected));
    assert!(on_cluster.files(".etl/warehouse").iter().all(|f| !f.contains("_sources")));
}

/// lineitem rows of TPC-H's shape, made up deterministically (a linear congruential walk).
fn lineitem_csv(rows: usize) -> String {
    let mut state: u64 = 42;
    let mut next = |n: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut text =
        String::from("l_orderkey,l_quantity,l_extendedprice,l_discount,l_tax,l_returnflag,l_linestatus,l_shipdate\n");
    for row in 0..rows {
        let flag = ["A", "N", "R"][next(3) as usize];
        let status = ["F", "O"][next(2) as usize];
        let day = 1 + next(28);
        let month = 1 + next(12);
        let year = 1992 + next(7);
        text.push_str(&format!(
            "{},{}.00,{}.{:02},0.0{},0.0{},{flag},{status},{year}-{month:02}-{day:02}\n",
            row / 4,
            1 + next(50),
            900 + next(100_000),
            next(100),
            next(10),
            next(9),
        ));
    }
    text
}

const Q1: &str = "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, \
    sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, \
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, avg(l_quantity) AS avg_qty, \
    avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order \
    FROM tpch.lineitem WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY \
    GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus";

#[test]
fn tpch_q1_and_a_written_table_are_the_same_on_a_cluster() {
    let s = Sandbox::new();
    s.write("raw/lineitem.csv", lineitem_csv(20_000));
    s.write(
        "job.toml",
        "name = \"lineitem\"\n[[source]]\ntable = \"raw.lineitem\"\nlocation = \"raw/\"\n\
         [[target]]\ntable = \"tpch.lineitem\"\nquery = \"SELECT * FROM raw.lineitem\"\nlocation = \"lineitem/\"\n\
         partition_by = [\"l_returnflag\"]\n",
    );
    let cluster = Cluster::start(&s, 2);
    let engine = cluster.engine();
    s.etl(&["run", "job.toml", "--logical-date", "2026-11-30", "--engine", &engine, "--json"]).json();
    let written_on_cluster = s.query("SELECT * FROM tpch.lineitem ORDER BY l_orderkey, l_shipdate, l_extendedprice");
    s.etl(&["run", "job.toml", "--logical-date", "2026-11-30", "--json"]).json();
    let written_locally = s.query("SELECT * FROM tpch.lineitem ORDER BY l_orderkey, l_shipdate, l_extendedprice");
    assert_eq!(written_on_cluster.len(), 20_000);
    assert_eq!(written_on_cluster, written_locally);

    let local = s.etl(&["sql", Q1, "--format", "csv"]);
    let remote = s.etl(&["sql", Q1, "--format", "csv", "--engine", &engine]);
    assert_eq!(local.code, 0, "{local:?}");
    assert_eq!(remote.code, 0, "{remote:?}");
    assert_eq!(remote.stdout, local.stdout);
    assert_eq!(local.stdout.lines().count(), 1 + 6, "{}", local.stdout);
}

/// Orders with bad records (as tests/quarantine.rs has them).
fn orders_with_bad_records(s: &Sandbox) {
    s.write(
        "in/day=2026-11-30/a.csv",
        "id,name,amount\r\n1,ann,10\r\n2,\"bob\nsmith\",x\r\n3,cy,30,extra\r\n4,dee,40\r\n",
    );
    s.write_gzip("in/day=2026-12-01/b.csv.gz", b"id,name,amount\n5,eve,50\n6,fay,6O\n");
}

fn orders_job(s: &Sandbox, bad_records: &str) {
    s.write(
        "job.toml",
        format!(
            "name = \"orders\"\n[[source]]\ntable = \"raw.orders\"\nlocation = \"in/\"\nbad_records = \"{bad_records}\"\nsample_rows = 1\n\
             [[target]]\ntable = \"mart.orders\"\nquery = \"SELECT id, name, amount FROM raw.orders\"\nlocation = \"out/\"\n"
        ),
    );
}

#[test]
fn records_set_apart_on_executors_are_quarantined_as_locally() {
    let local = Sandbox::new();
    let on_cluster = Sandbox::new();
    for s in [&local, &on_cluster] {
        orders_with_bad_records(s);
        orders_job(s, "quarantine");
    }
    let cluster = Cluster::start(&on_cluster, 2);
    let args = ["run", "job.toml", "--logical-date", "2026-11-30", "--json"];
    let expected = local.etl(&args).json();
    let report = on_cluster.etl(&[&args[..], &["--engine", &cluster.engine()]].concat()).json();
    assert_eq!(report["rejected_rows"], 3, "{report}");
    assert_eq!(summary(&report), summary(&expected));
    let records = |s: &Sandbox| {
        let shown = s.json(&["quarantine", "show", "orders"]);
        let mut records: Vec<(String, u64, String)> = shown["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let file = r["file"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
                (file, r["line"].as_u64().unwrap(), r["record"].as_str().unwrap().to_string())
            })
            .collect();
        records.sort();
        records
    };
    assert_eq!(records(&on_cluster), records(&local));
    let copies = |s: &Sandbox, run: &serde_json::Value| {
        let folder = format!(".etl-home/quarantine/orders/{}/raw.orders", run["run_id"].as_str().unwrap());
        s.files(&folder)
            .into_iter()
            .map(|f| (std::fs::read(s.path(&format!("{folder}/{f}"))).unwrap(), f))
            .collect::<Vec<_>>()
    };
    assert_eq!(copies(&on_cluster, &report), copies(&local, &expected));

    // Under `fail`, the first bad record is the run's error, named as locally; nothing is published.
    orders_job(&on_cluster, "fail");
    let failed = on_cluster.etl(&["run", "job.toml", "--logical-date", "2026-12-01", "--engine", &cluster.engine()]);
    failed.assert_failure(1, "line 3, column amount");
    assert!(failed.stderr.contains("a.csv"), "{}", failed.stderr);
    // The executor's error reads as a local run's, not as its debug print.
    assert!(failed.stderr.contains(": bad record in ") && !failed.stderr.contains("kind: Input"), "{}", failed.stderr);
    assert_eq!(on_cluster.json(&["table", "history", "mart.orders"])["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn an_executor_killed_during_a_job_loses_nothing() {
    let local = weekly_job();
    let s = weekly_job();
    let args = ["run", "sql/weekly_orders.toml", "--logical-date", "2026-11-30", "--json"];
    let expected = local.etl(&args).json();
    let mut cluster = Cluster::scheduler_only(&s);
    // The only executor stops at its first source file, and is killed there once a second
    // executor has registered: its tasks can only run again on the second.
    cluster.add_executor(&s, 2, &[("ETL_KILL_POINT", "read.file")]);
    let doomed = cluster.roles.len() - 1;
    let engine = cluster.engine();
    let run = s
        .command(&[&args[..], &["--engine", &engine]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    cluster.roles[doomed].wait_for_log("kill point read.file#1 reached", STARTED);
    cluster.add_executor(&s, 2, &[]);
    cluster.roles[doomed].kill();
    let output = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.code() {
        Some(0) => {
            let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(summary(&report), summary(&expected));
            assert_eq!(s.query(WEEKLY_ROWS), local.query(WEEKLY_ROWS));
        }
        _ => {
            // Failing is allowed; publishing part of it is not.
            let history = s.etl(&["table", "history", "curated.weekly_revenue"]);
            assert_ne!(history.code, 0, "a failed run published: {}", history.stdout);
            assert!(s.visible_files(".etl/warehouse").is_empty(), "{:?}", s.visible_files(".etl/warehouse"));
        }
    }
}

#[test]
fn a_pipeline_on_a_cluster_publishes_what_it_publishes_locally() {
    // Two raw crawls, a join of their tables (through a step's view) and a report over the
    // join's table: every job's queries on the executors.
    let (local, on_cluster) = (crate::pipeline::example(), crate::pipeline::example());
    let cluster = Cluster::start(&on_cluster, 2);
    let args = ["pipeline", "run", crate::pipeline::DIR, "--logical-date", "2026-11-02"];
    let statuses = |run: serde_json::Value| -> Vec<(String, String)> {
        let jobs = run["jobs"].as_array().unwrap_or_else(|| panic!("{run}"));
        jobs.iter().map(|j| (j["job"].to_string(), j["status"].to_string())).collect()
    };
    let expected = statuses(local.json(&args));
    assert!(expected.iter().all(|(_, status)| status == "\"succeeded\""), "{expected:?}");
    assert_eq!(statuses(on_cluster.json(&[&args[..], &["--engine", &cluster.engine()]].concat())), expected);
    for (table, key) in
        [("mart.daily_sales", "order_date, segment, channel"), ("mart.segment_report", "order_date, segment")]
    {
        let rows = format!("SELECT * FROM {table} ORDER BY {key}");
        assert!(!local.query(&rows).is_empty(), "{table}");
        assert_eq!(on_cluster.query(&rows), local.query(&rows), "{table}");
    }
}

#[test]
fn engines_are_checked_before_anything_runs() {
    let s = weekly_job();
    let args = ["run", "sql/weekly_orders.toml", "--logical-date", "2026-11-30"];
    s.etl(&[&args[..], &["--engine", "spark://x:1"]].concat()).assert_failure(2, "unknown engine 'spark://x:1'");
    s.etl(&[&args[..], &["--engine", "df://nohost"]].concat()).assert_failure(2, "expected df://HOST:PORT");
    // A scheduler nobody runs: the run fails, names it, and publishes nothing.
    let address = format!("127.0.0.1:{}", free_port());
    let failed = s.etl(&[&args[..], &["--engine", &format!("df://{address}")]].concat());
    failed.assert_failure(1, &format!("on the cluster at http://{address}"));
    assert!(s.visible_files(".etl/warehouse").is_empty());
    let job = s.path("sql/weekly_orders.toml");
    let text = std::fs::read_to_string(&job).unwrap().replace("schedule =", "engine = \"ballista\"\nschedule =");
    std::fs::write(&job, text).unwrap();
    s.etl(&args).assert_failure(2, "engine: unknown engine 'ballista'");
}

#[test]
fn a_job_reading_and_writing_s3_on_a_cluster_matches_the_local_run() {
    if crate::util::aws::endpoint().is_none() {
        return;
    }
    use crate::util::aws;
    let bucket = aws::unique("cluster");
    aws::create_bucket(&bucket);
    aws::put_object(&bucket, "in/day=2026-11-30/a.csv", b"id,name,amount\n1,ann,10\n2,bob,x\n4,dee,40\n");
    aws::put_object(&bucket, "in/day=2026-12-01/b.csv", b"id,name,amount\n5,eve,50\n6,fay,60\n");
    let job = |s: &Sandbox, out: &str| {
        s.write(
            "job.toml",
            format!(
                "name = \"orders\"\n[[source]]\ntable = \"raw.orders\"\nlocation = \"s3://{bucket}/in/\"\nbad_records = \"quarantine\"\nsample_rows = 1\n\
                 [[target]]\ntable = \"mart.orders\"\nquery = \"SELECT id, name, amount, day FROM raw.orders\"\n\
                 location = \"s3://{bucket}/{out}/\"\npartition_by = [\"day\"]\n"
            ),
        );
    };
    let (local, on_cluster) = (Sandbox::new(), Sandbox::new());
    job(&local, "local");
    job(&on_cluster, "cluster");
    let cluster = Cluster::start(&on_cluster, 2);
    let args = ["run", "job.toml", "--logical-date", "2026-11-30", "--json"];
    let expected = local.etl(&args).json();
    let report = on_cluster.etl(&[&args[..], &["--engine", &cluster.engine()]].concat()).json();
    assert_eq!(report["rejected_rows"], 1, "{report}");
    assert_eq!(summary(&report), summary(&expected));
    let rows = "SELECT * FROM mart.orders ORDER BY id";
    assert_eq!(on_cluster.query(rows), local.query(rows));
    assert_eq!(on_cluster.query(rows).len(), 4);
    let visible = aws::visible_keys(&bucket, "cluster/");
    assert_eq!(visible.len(), 2, "{visible:?}");
    assert!(aws::list_keys(&bucket, "cluster/").iter().all(|k| !k.contains("_sources")));
}

/// Files written on a cluster lacked the `etl.layout` footer (DataFusion's protobuf drops a
/// Parquet sink's key-value metadata when read back), so a later `etl compact` forgot the
/// target's sort.
#[test]
fn files_written_on_a_cluster_record_their_layout() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let s = Sandbox::new();
    let rows: String = (0..500).map(|k| format!("{k},{}\n", (k * 7) % 13)).collect();
    s.write("in/a.csv", format!("k,v\n{rows}"));
    s.write("job.toml", "name = \"l\"\n[[source]]\ntable = \"raw.a\"\nlocation = \"in/\"\n[[target]]\ntable = \"cur.a\"\nquery = \"SELECT k, v FROM raw.a\"\nlocation = \"out/\"\nsort_by = [\"v\"]\nrow_group_rows = 100\n");
    let cluster = Cluster::start(&s, 1);
    let report = s.etl(&["run", "job.toml", "--engine", &cluster.engine(), "--json"]).json();
    assert_eq!(report["status"], "succeeded", "{report}");
    let file = s.files("out").into_iter().find(|f| f.ends_with(".parquet")).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(s.path("out").join(file)).unwrap()).unwrap();
    let metadata = reader.metadata();
    let layout = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == "etl.layout").cloned());
    assert_eq!(layout.and_then(|kv| kv.value).as_deref(), Some(r#"{"sort_by":["v"],"row_group_rows":100}"#));
    assert_eq!(metadata.num_row_groups(), 5);
}

//! Flaky storage and catalog: `etl` talks to the local S3/Glue endpoint through a proxy that
//! injects 500s, throttling, reset connections, truncated bodies and delays
//! (`util::faults`). With a tenth of the requests failing, jobs, reads, crawls and inference
//! give exactly what they give without faults; with every request failing, a run fails within
//! its retry deadline, says why, and publishes nothing.

use std::time::{Duration, Instant};

use crate::util::faults::{Counts, Fault, FaultProxy, Faults};
use crate::util::{Output, Sandbox, aws, columns};

/// The fraction of failing requests the survivable runs meet.
const FLAKY: f64 = 0.10;

/// A sandbox with its own raw and curated buckets, sources on S3, and Glue as the catalog.
struct Flaky {
    sandbox: Sandbox,
    endpoint: String,
    raw: String,
    curated: String,
}

impl Flaky {
    fn new() -> Option<Flaky> {
        let endpoint = aws::endpoint()?;
        let flaky =
            Flaky { sandbox: Sandbox::new(), endpoint, raw: aws::unique("fraw"), curated: aws::unique("fcurated") };
        aws::create_bucket(&flaky.raw);
        aws::create_bucket(&flaky.curated);
        for (day, files) in [("2026-11-02", 0..2), ("2026-11-03", 2..4), ("2026-11-04", 4..6)] {
            for file in files {
                flaky.put_orders(day, file);
            }
        }
        for file in 0..2 {
            let customers: String = (file * 5..file * 5 + 5)
                .map(|c| format!("{{\"customer_id\":{c},\"segment\":\"{}\"}}\n", ["smb", "ent"][c as usize % 2]))
                .collect();
            aws::put_object(&flaky.raw, &format!("customers/part-{file}.json"), customers.as_bytes());
        }
        Some(flaky)
    }

    /// 20 orders in file `file` of `day`.
    fn put_orders(&self, day: &str, file: u32) {
        let mut csv = String::from("id,customer_id,amount,note\n");
        for i in 0..20 {
            let id = file * 20 + i;
            csv.push_str(&format!("{id},{},{}.{:02},\"n {id}, quoted\"\n", id % 10, id * 3, id % 100));
        }
        aws::put_object(&self.raw, &format!("orders/day={day}/part-{file}.csv"), csv.as_bytes());
    }

    /// A job reading both sources into its own Glue database and target folder.
    fn job(&self, database: &str) -> String {
        let file = format!("{database}.toml");
        self.sandbox.write(
            &file,
            format!(
                r#"name = "flaky"
catalog = "glue"
[[source]]
table = "{database}.orders"
location = "s3://{raw}/orders/"
format = "csv"
[[source]]
table = "{database}.customers"
location = "s3://{raw}/customers/"
format = "json"
[[target]]
table = "{database}.enriched"
query = """SELECT o.id, o.customer_id, c.segment, o.amount, o.note, o.amount * 2 AS doubled, o.day
           FROM {database}.orders o JOIN {database}.customers c USING (customer_id)"""
location = "s3://{curated}/{database}/enriched/"
partition_by = ["day"]
mode = "overwrite_partitions"
"#,
                raw = self.raw,
                curated = self.curated
            ),
        );
        file
    }

    /// `etl ... --catalog glue`, straight to the endpoint or through a proxy.
    fn etl(&self, args: &[&str], proxy: Option<&FaultProxy>, extra: &[(&str, &str)]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--catalog", "glue"]);
        let endpoint = proxy.map(FaultProxy::url).unwrap_or(&self.endpoint);
        let mut variables = vec![("AWS_ENDPOINT_URL", endpoint)];
        variables.extend_from_slice(extra);
        self.sandbox.etl_with_env(&all, &variables)
    }

    /// The published rows, sorted, as CSV text read through the catalog.
    fn rows(&self, database: &str, proxy: Option<&FaultProxy>) -> String {
        let sql = format!("SELECT * FROM {database}.enriched ORDER BY id");
        let output = self.etl(&["sql", &sql, "--format", "csv"], proxy, &[]);
        assert_eq!(output.code, 0, "reading {database}.enriched: {output:?}");
        output.stdout
    }

    fn json(&self, args: &[&str], proxy: Option<&FaultProxy>) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.etl(&all, proxy, &[]).json()
    }
}

fn proxy(flaky: &Flaky, fraction: f64, kinds: &[Fault], seed: u64) -> FaultProxy {
    FaultProxy::start(&flaky.endpoint, Faults::new(fraction, kinds, seed))
}

/// Seeds are tried until every kind of fault was injected at least once (and at least
/// `minimum` of them), so the assertion that each kind was survived never depends on luck.
fn until_every_kind(minimum: u64, mut one: impl FnMut(u64) -> Counts) -> (Counts, u64) {
    const MAXIMUM: u64 = 12;
    let mut total = Counts::default();
    let mut seed = 0;
    while seed < MAXIMUM && (seed < minimum || Fault::ALL.iter().any(|f| total.of(*f) == 0)) {
        seed += 1;
        total.add(&one(seed));
    }
    for fault in Fault::ALL {
        assert!(total.of(fault) > 0, "no {fault:?} injected in {seed} runs: {total:?}");
    }
    (total, seed)
}

#[test]
fn a_tenth_of_requests_failing_changes_nothing_that_is_published() {
    let Some(flaky) = Flaky::new() else { return };
    let baseline_db = aws::unique("fbase");
    let job = flaky.job(&baseline_db);
    let report = flaky.json(&["run", &job, "--logical-date", "2026-11-04"], None);
    assert_eq!(report["status"], "succeeded");
    let expected = flaky.rows(&baseline_db, None);
    assert_eq!(expected.lines().count(), 121, "{expected}");

    let (total, runs) = until_every_kind(3, |seed| {
        let database = aws::unique("fflaky");
        let job = flaky.job(&database);
        let proxy = proxy(&flaky, FLAKY, &Fault::ALL, seed);
        // A first publication creates tables and partitions; the rerun replaces them.
        for attempt in ["first", "rerun"] {
            let run = flaky.etl(&["run", &job, "--logical-date", "2026-11-04", "--json"], Some(&proxy), &[]);
            assert_eq!(run.code, 0, "seed {seed}, {attempt} run failed under faults ({:?}): {run:?}", proxy.counts());
            assert_eq!(run.json()["status"], "succeeded");
        }
        assert_eq!(flaky.rows(&database, Some(&proxy)), expected, "seed {seed}: read through the faults");
        assert_eq!(flaky.rows(&database, None), expected, "seed {seed}: read straight from the endpoint");
        let versions = flaky.json(&["schema", "history", &format!("{database}.enriched")], None);
        assert_eq!(versions["versions"].as_array().map(Vec::len), Some(1), "seed {seed}: {versions}");
        proxy.counts()
    });
    eprintln!(
        "faults: {runs} seeds, {} runs and {} reads survived, {} requests, {} faults injected: {:?}",
        runs * 2,
        runs,
        total.requests,
        total.injected(),
        total.faults
    );
}

#[test]
fn every_request_failing_fails_the_run_within_its_deadline_and_publishes_nothing() {
    let Some(flaky) = Flaky::new() else { return };
    let database = aws::unique("fdown");
    let job = flaky.job(&database);
    assert_eq!(flaky.json(&["run", &job, "--logical-date", "2026-11-04"], None)["status"], "succeeded");
    let old_rows = flaky.rows(&database, None);
    let old_objects = aws::list_keys(&flaky.curated, &format!("{database}/"));
    let table = format!("{database}.enriched");
    let old_definition = flaky.json(&["schema", "show", &table], None);
    // New input that a successful run would publish.
    flaky.put_orders("2026-11-05", 6);

    let proxy = proxy(&flaky, 1.0, &Fault::FAILING, 7);
    let budget = [("ETL_RETRY_MAX_ATTEMPTS", "4"), ("ETL_RETRY_DEADLINE_SECS", "3")];
    let started = Instant::now();
    let failed = flaky.etl(&["run", &job, "--logical-date", "2026-11-05"], Some(&proxy), &budget);
    let took = started.elapsed();
    failed.assert_failure(1, "gave up");
    assert!(failed.stderr.contains("retry budget"), "{}", failed.stderr);
    assert!(took < Duration::from_secs(30), "the deadline is 3 s, the run took {took:?}");
    let counts = proxy.counts();
    assert!(counts.requests > 0 && counts.injected() == counts.requests, "{counts:?}");
    eprintln!(
        "all requests failing: exit 1 after {:.1} s, {} requests, {:?}; stderr: {}",
        took.as_secs_f64(),
        counts.requests,
        counts.faults,
        failed.stderr.trim()
    );

    // With attempts to spare, the deadline is what stops the retries.
    let patient = [("ETL_RETRY_MAX_ATTEMPTS", "100"), ("ETL_RETRY_DEADLINE_SECS", "3")];
    let started = Instant::now();
    let failed = flaky.etl(&["run", &job, "--logical-date", "2026-11-05"], Some(&proxy), &patient);
    let until_deadline = started.elapsed();
    failed.assert_failure(1, "gave up");
    assert!(
        until_deadline >= Duration::from_secs(2) && until_deadline < Duration::from_secs(20),
        "a 3 s deadline, a run of {until_deadline:?}: {}",
        failed.stderr
    );
    eprintln!("all requests failing, 100 attempts allowed: exit 1 after {:.1} s", until_deadline.as_secs_f64());

    // The catalog fails as clearly when it is the first to be asked.
    let sql = format!("SELECT count(*) FROM {table}");
    let query = flaky.etl(&["sql", &sql], Some(&proxy), &budget);
    query.assert_failure(1, "Glue");
    assert!(query.stderr.contains("gave up") && query.stderr.contains("retry budget"), "{}", query.stderr);

    // Nothing changed for readers, asked straight at the endpoint.
    assert_eq!(flaky.rows(&database, None), old_rows);
    assert_eq!(aws::list_keys(&flaky.curated, &format!("{database}/")), old_objects);
    assert_eq!(flaky.json(&["schema", "show", &table], None), old_definition);
    let history = flaky.json(&["schema", "history", &table], None);
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(1), "{history}");
}

#[test]
fn an_endpoint_going_down_part_way_leaves_the_old_output_or_the_new_never_a_mix() {
    let Some(flaky) = Flaky::new() else { return };
    let database = aws::unique("fcut");
    let job = flaky.job(&database);
    // The first run through a proxy without faults, to count what a run asks.
    let counter = FaultProxy::start(&flaky.endpoint, Faults::new(0.0, &Fault::FAILING, 0));
    assert_eq!(flaky.json(&["run", &job, "--logical-date", "2026-11-04"], Some(&counter))["status"], "succeeded");
    let old_rows = flaky.rows(&database, None);
    flaky.put_orders("2026-11-05", 6);
    let budget = [("ETL_RETRY_MAX_ATTEMPTS", "2"), ("ETL_RETRY_DEADLINE_SECS", "2")];
    // The endpoint dies after 0, step, 2 step, ... requests, until a run gets through: about
    // 15 cuts spread over a run's requests.
    let step = (counter.counts().requests / 15).max(5);
    let mut failed = 0;
    let mut published_by_failed_run = Vec::new();
    let mut new_rows = None;
    for healthy_first in (0..).step_by(step as usize).take(40) {
        let proxy = FaultProxy::start(
            &flaky.endpoint,
            Faults { healthy_first, ..Faults::new(1.0, &Fault::FAILING, healthy_first) },
        );
        let run = flaky.etl(&["run", &job, "--logical-date", "2026-11-05"], Some(&proxy), &budget);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        let rows = flaky.rows(&database, None);
        if run.code == 0 {
            assert_eq!(rows.lines().count(), 141, "the run that got through published everything");
            new_rows = Some(rows);
            break;
        }
        assert_eq!(run.code, 1, "{run:?}");
        failed += 1;
        if rows != old_rows {
            // A failure after the publication (its cleanup, its history): the new output whole.
            assert_eq!(rows.lines().count(), 141, "down after {healthy_first} requests: a mix of old and new output");
            published_by_failed_run.push(healthy_first);
        }
    }
    let new_rows = new_rows.expect("a run got through before the endpoint went down");
    assert!(failed >= 3, "only {failed} runs failed part-way");
    eprintln!(
        "endpoint down part-way: {failed} failed runs (down after 0..{} requests in steps of {step}), readers saw old or new output; failed runs that had published: {published_by_failed_run:?}",
        failed as u64 * step
    );
    // The next run, on a healthy endpoint, publishes the same output.
    assert_eq!(flaky.json(&["run", &job, "--logical-date", "2026-11-05"], None)["status"], "succeeded");
    assert_eq!(flaky.rows(&database, None), new_rows);
}

#[test]
fn a_bad_retry_budget_is_a_configuration_error() {
    let sandbox = Sandbox::new();
    let output = sandbox.etl_with_env(&["infer", "."], &[("ETL_RETRY_MAX_ATTEMPTS", "zero")]);
    output.assert_failure(2, "ETL_RETRY_MAX_ATTEMPTS='zero'");
    let output = sandbox.etl_with_env(&["infer", "."], &[("ETL_RETRY_DEADLINE_SECS", "0")]);
    output.assert_failure(2, "ETL_RETRY_DEADLINE_SECS='0'");
}

#[test]
fn crawl_and_infer_under_faults_find_the_same_schema() {
    let Some(flaky) = Flaky::new() else { return };
    let orders = format!("s3://{}/orders/", flaky.raw);
    let customers = format!("s3://{}/customers/", flaky.raw);
    let expected_orders = flaky.json(&["infer", &orders], None);
    let expected_customers = flaky.json(&["infer", &customers], None);
    assert_eq!(
        columns(&expected_orders["columns"]),
        ["id bigint", "customer_id bigint", "amount double", "note string"]
    );

    let (total, runs) = until_every_kind(3, |seed| {
        let proxy = proxy(&flaky, FLAKY, &Fault::ALL, 100 + seed);
        assert_eq!(flaky.json(&["infer", &orders], Some(&proxy)), expected_orders, "seed {seed}");
        assert_eq!(flaky.json(&["infer", &customers], Some(&proxy)), expected_customers, "seed {seed}");
        let database = aws::unique("fcrawl");
        for (location, table, expected) in
            [(&orders, "orders", &expected_orders), (&customers, "customers", &expected_customers)]
        {
            let table = format!("{database}.{table}");
            let crawled = flaky.json(&["crawl", location, "--table", &table], Some(&proxy));
            assert_eq!(crawled["change"], "created", "seed {seed}: {crawled}");
            let again = flaky.json(&["crawl", location, "--table", &table], Some(&proxy));
            assert_eq!(again["change"], "unchanged", "seed {seed}: {again}");
            let shown = flaky.json(&["schema", "show", &table], None);
            assert_eq!(columns(&shown["columns"]), columns(&expected["columns"]), "seed {seed}");
            assert_eq!(columns(&shown["partition_keys"]), columns(&expected["partition_keys"]), "seed {seed}");
        }
        proxy.counts()
    });
    eprintln!(
        "faults: {runs} seeds of 2 infers and 4 crawls survived, {} requests, {} faults injected: {:?}",
        total.requests,
        total.injected(),
        total.faults
    );
}

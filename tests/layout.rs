//! How targets lay their rows out in files (what Athena's pruning, and so its bill, depends
//! on): `sort_by` (stable), the order etl chooses when none is set, row groups, bloom filters;
//! `etl compact` and `compact_after_files`.

use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::parquet::file::statistics::Statistics;

use crate::util::Sandbox;

/// 6,000 flights in an order no column follows: year, month, day, carrier, and `seq`, the
/// line's place in the file.
pub(crate) fn flights(s: &Sandbox) {
    let mut text = String::from("year,month,day,carrier,seq\n");
    let mut x: u64 = 7;
    for seq in 0..6000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let year = 2013 + (x >> 60) % 3;
        let month = 1 + (x >> 50) % 12;
        let day = 1 + (x >> 40) % 28;
        let carrier = ["AA", "DL", "UA", "WN"][((x >> 33) % 4) as usize];
        text.push_str(&format!("{year},{month},{day},{carrier},{seq}\n"));
    }
    s.write("in/flights.csv", text);
}

pub(crate) fn job(s: &Sandbox, file: &str, table: &str, options: &str) {
    s.write(
        file,
        format!(
            "name = \"{}\"\n[[source]]\ntable = \"raw.flights\"\nlocation = \"in/\"\n[[target]]\ntable = \"{table}\"\n\
             query = \"SELECT * FROM raw.flights\"\nlocation = \"out/{table}/\"\n{options}\n",
            file.trim_end_matches(".toml")
        ),
    );
}

/// Every Parquet file under `folder`, opened.
fn parquet_files(s: &Sandbox, folder: &str) -> Vec<SerializedFileReader<std::fs::File>> {
    s.files(folder)
        .iter()
        .filter(|f| f.ends_with(".parquet") && !f.contains("/_etl"))
        .map(|f| SerializedFileReader::new(std::fs::File::open(s.path(folder).join(f)).unwrap()).unwrap())
        .collect()
}

/// `(min, max)` of an int64 column in each row group of a file.
fn ranges(file: &SerializedFileReader<std::fs::File>, column: usize) -> Vec<(i64, i64)> {
    file.metadata()
        .row_groups()
        .iter()
        .map(|rg| match rg.column(column).statistics() {
            Some(Statistics::Int64(s)) => (*s.min_opt().unwrap(), *s.max_opt().unwrap()),
            other => panic!("int64 statistics expected: {other:?}"),
        })
        .collect()
}

#[test]
fn sort_by_is_stable_and_row_groups_and_bloom_filters_are_as_asked() {
    let s = Sandbox::new();
    flights(&s);
    job(
        &s,
        "sorted.toml",
        "mart.sorted",
        "sort_by = [\"carrier\"]\nrow_group_rows = 1024\nbloom_filter = [\"carrier\"]",
    );
    let report = s.json(&["run", "sorted.toml"]);
    assert_eq!(report["targets"][0]["sort_by"], serde_json::json!(["carrier"]));
    assert_eq!(report["targets"][0]["sort_reason"], "sort_by");
    let rows = s.query("SELECT carrier, seq FROM mart.sorted");
    let pairs: Vec<(String, i64)> =
        rows.iter().map(|r| (r["carrier"].as_str().unwrap().to_string(), r["seq"].as_i64().unwrap())).collect();
    let mut expected = pairs.clone();
    // Stable: by carrier, and within a carrier in the input's order.
    expected.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    assert_eq!(pairs, expected);
    let files = parquet_files(&s, "out/mart.sorted");
    assert_eq!(files.len(), 1);
    let metadata = files[0].metadata();
    assert_eq!(metadata.num_row_groups(), 6, "6,000 rows in row groups of 1,024");
    assert!(
        metadata.row_groups().iter().all(|rg| rg.column(3).bloom_filter_offset().is_some()),
        "carrier's bloom filters"
    );
    assert!(metadata.row_groups().iter().all(|rg| rg.column(0).bloom_filter_offset().is_none()), "only carrier's");
}

#[test]
fn without_a_sort_etl_chooses_the_calendar_and_says_why() {
    let s = Sandbox::new();
    flights(&s);
    job(&s, "chosen.toml", "mart.chosen", "row_group_rows = 1024");
    let report = s.json(&["run", "chosen.toml"]);
    assert_eq!(report["targets"][0]["sort_by"], serde_json::json!(["year", "month", "day"]));
    assert!(report["targets"][0]["sort_reason"].as_str().unwrap().contains("calendar columns year, month, day"));
    let text = s.etl(&["run", "chosen.toml"]);
    assert!(
        text.stdout.contains("sorted by year, month, day (chosen: calendar columns year, month, day)"),
        "{}",
        text.stdout
    );
    // Row groups of one year each at most but where a year ends: a filter on one year reads
    // two or three of the six.
    let years = ranges(&parquet_files(&s, "out/mart.chosen")[0], 0);
    let spanning = years.iter().filter(|(low, high)| low != high).count();
    assert!(spanning <= 2, "{years:?}");
    // `sort_by = []` keeps the input's order.
    job(&s, "kept.toml", "mart.kept", "sort_by = []");
    let report = s.json(&["run", "kept.toml"]);
    assert_eq!(report["targets"][0]["sort_by"], serde_json::json!([]));
    let seqs: Vec<i64> = s.query("SELECT seq FROM mart.kept").iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (0..6000).collect::<Vec<i64>>());
}

#[test]
fn layout_options_are_refused_naming_the_option() {
    let s = Sandbox::new();
    flights(&s);
    let cases = [
        ("row_group_rows = 0", "target[0].row_group_rows: 0 is outside 1..="),
        ("row_group_bytes = \"lots\"", "target[0].row_group_bytes: 'lots' is not a size"),
        ("sort_by = [\"year\", \"year\"]", "target[0].sort_by: 'year' is listed twice"),
        ("partition_by = [\"year\"]\nsort_by = [\"year\"]", "target[0].sort_by: 'year' is a partition key"),
        ("compact_after_files = 1", "target[0].compact_after_files: 1 is not a number of files above 1"),
    ];
    for (options, message) in cases {
        job(&s, "bad.toml", "mart.bad", options);
        s.etl(&["run", "bad.toml"]).assert_failure(2, message);
    }
    // Columns are known once the query is planned: before anything is written.
    job(&s, "bad.toml", "mart.bad", "bloom_filter = [\"tail\"]");
    s.etl(&["run", "bad.toml"])
        .assert_failure(2, "target mart.bad: bloom_filter: the query's output has no column 'tail'");
    assert!(!s.path("out/mart.bad").exists() || s.visible_files("out/mart.bad").is_empty());
}

#[test]
fn compact_rewrites_many_small_files_as_one_version_readers_see_whole() {
    let s = Sandbox::new();
    flights(&s);
    job(&s, "daily.toml", "mart.daily", "mode = \"append\"\npartition_by = [\"year\"]\nsort_by = []");
    for day in 1..=4 {
        s.json(&["run", "daily.toml", "--logical-date", &format!("2026-11-0{day}")]);
    }
    let count = |sql: &str| s.query(sql)[0]["n"].as_i64().unwrap();
    assert_eq!(count("SELECT count(*) AS n FROM mart.daily"), 24000);
    let before = s.json(&["table", "history", "mart.daily"])["versions"].as_array().unwrap().len();
    let compacted = s.json(&["compact", "mart.daily", "--partition", "year=2014"]);
    assert_eq!(
        (compacted["table"].as_str(), compacted["files_before"].as_u64(), compacted["files_after"].as_u64()),
        (Some("mart.daily"), Some(4), Some(1))
    );
    assert_eq!(compacted["version"].as_u64(), Some(before as u64 + 1));
    // The files were written in the query's order (`sort_by = []`), and are compacted so.
    assert_eq!(compacted["sort_by"], serde_json::json!([]));
    // The same rows, the other partitions untouched, one new version that a rollback undoes.
    assert_eq!(count("SELECT count(*) AS n FROM mart.daily"), 24000);
    assert_eq!(
        count("SELECT count(DISTINCT seq) AS n FROM mart.daily WHERE year = 2014"),
        count("SELECT count(*) AS n FROM raw.flights WHERE year = 2014")
    );
    let files_in = |year: &str| {
        s.visible_files("out/mart.daily").iter().filter(|f| f.starts_with(&format!("year={year}/"))).count()
    };
    assert_eq!((files_in("2013"), files_in("2014")), (4, 1));
    let all = s.json(&["compact", "mart.daily", "--target-file-size", "1M"]);
    assert_eq!((all["files_before"].as_u64(), all["files_after"].as_u64()), (Some(9), Some(3)));
    s.json(&["rollback", "mart.daily", "--to", &before.to_string()]);
    assert_eq!(count("SELECT count(*) AS n FROM mart.daily"), 24000);
    assert_eq!(files_in("2014"), 4);

    s.etl(&["compact", "mart.daily", "--partition", "year=1999"])
        .assert_failure(2, "mart.daily has no partition where year=1999");
    s.etl(&["compact", "mart.daily", "--partition", "month=1"])
        .assert_failure(2, "mart.daily's partition keys are year");
    s.etl(&["compact", "raw.flights"]).assert_failure(2, "raw.flights is a crawled table");
    s.etl(&["compact", "mart.nothing"]).assert_failure(1, "table mart.nothing does not exist");
}

#[test]
fn compact_after_files_compacts_the_partitions_a_run_crowds() {
    let s = Sandbox::new();
    flights(&s);
    job(&s, "daily.toml", "mart.daily", "mode = \"append\"\npartition_by = [\"year\"]\ncompact_after_files = 2");
    for day in 1..=3 {
        s.json(&["run", "daily.toml", "--logical-date", &format!("2026-11-0{day}")]);
    }
    let files = s.visible_files("out/mart.daily");
    assert_eq!(files.len(), 3, "one file per year after the third run: {files:?}");
    let compactions = s.json(&["runs", "--job", "compact_mart_daily"])["runs"].as_array().unwrap().len();
    assert_eq!(compactions, 1, "the three years in one compaction, after the third run");
    assert_eq!(s.query("SELECT count(*) AS n FROM mart.daily")[0]["n"], 18000);
}

#[test]
fn cost_advise_measures_the_proposed_layout_before_anything_changes() {
    let s = Sandbox::new();
    flights(&s);
    job(&s, "kept.toml", "mart.kept", "sort_by = []\nrow_group_rows = 1024");
    s.json(&["run", "kept.toml"]);
    s.write("q.sql", "SELECT count(*) FROM mart.kept WHERE carrier = 'DL';\nSELECT count(*) FROM mart.kept WHERE year = 2014 AND month = 3;\n");
    let files_before = s.files("out/mart.kept");
    let advice = s.json(&["cost", "--advise", "mart.kept", "-f", "q.sql"]);
    assert_eq!(advice["sort_by"], serde_json::json!(["year", "carrier", "month"]), "{advice}");
    let queries = advice["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2);
    for query in queries {
        let (now, proposed) = (query["current_bytes"].as_u64().unwrap(), query["proposed_bytes"].as_u64().unwrap());
        // Sorted, in the table's own row groups of 1,024 rows (0.76 and 0.51 of now when written).
        assert!(proposed * 10 < now * 8, "the proposal scans less: {query}");
    }
    // The current bytes are what `etl cost` says now; nothing of the table changed.
    let now = s.json(&["cost", "-f", "q.sql"]);
    assert_eq!(now["bytes_scanned"], advice["current_bytes"]);
    assert_eq!(s.files("out/mart.kept"), files_before);
    s.etl(&["cost", "--advise", "mart.kept", "SELECT * FROM mart.kept JOIN raw.flights USING (seq)"])
        .assert_failure(2, "--advise mart.kept takes queries over mart.kept alone; this one reads raw.flights");
    s.etl(&["cost", "--advise", "mart.none", "SELECT 1"]).assert_failure(2, "--advise mart.none: no such table");
}

#[test]
fn zorder_clusters_every_sort_column_where_a_linear_sort_clusters_the_first() {
    let s = Sandbox::new();
    flights(&s);
    let spread = |table: &str, options: &str| -> (f64, f64) {
        job(&s, &format!("{table}.toml"), &format!("mart.{table}"), options);
        let report = s.json(&["run", &format!("{table}.toml")]);
        assert_eq!(report["targets"][0]["sort_by"], serde_json::json!(["month", "day"]));
        let files = parquet_files(&s, &format!("out/mart.{table}"));
        let mean = |column: usize, span: f64| {
            let ranges: Vec<(i64, i64)> = files.iter().flat_map(|f| ranges(f, column)).collect();
            ranges.iter().map(|(lo, hi)| (hi - lo) as f64 / span).sum::<f64>() / ranges.len() as f64
        };
        // month is column 1 (1..=12), day column 2 (1..=28).
        (mean(1, 11.0), mean(2, 27.0))
    };
    let options = "sort_by = [\"month\", \"day\"]\nrow_group_rows = 1024";
    let (linear_month, linear_day) = spread("linear", options);
    let (z_month, z_day) = spread("zordered", &format!("{options}\nzorder = true"));
    // A linear sort packs a row group into a month or two, but each spans every day; Z-order
    // gives up a little of the first column for much of the second.
    assert!(linear_day > 0.9, "linear: every row group spans the days ({linear_day})");
    assert!(
        z_day < 0.6 && z_month + z_day < linear_month + linear_day,
        "zorder {z_month}/{z_day}, linear {linear_month}/{linear_day}"
    );
    assert_eq!(
        s.query("SELECT count(*) AS n FROM mart.zordered")[0]["n"],
        s.query("SELECT count(*) AS n FROM mart.linear")[0]["n"]
    );
    let reason = s.json(&["run", "zordered.toml"])["targets"][0]["sort_reason"].as_str().unwrap().to_string();
    assert!(reason.contains("Z-order"), "{reason}");
    job(&s, "bad.toml", "mart.bad", "sort_by = []\nzorder = true");
    s.etl(&["run", "bad.toml"]).assert_failure(2, "target[0].zorder: needs columns to interleave");
}

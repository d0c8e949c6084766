//! Memory: a run over input several times larger than `--memory-limit` spills to disk and
//! completes, instead of failing with "resources exhausted" or being killed.

use std::io::Write;

use crate::util::Sandbox;

/// Rows of input: about 60 MB of CSV, four files.
const ROWS: usize = 800_000;

#[test]
fn a_run_larger_than_its_memory_limit_spills_and_completes() {
    let s = Sandbox::new();
    std::fs::create_dir_all(s.path("in")).unwrap();
    let mut bytes = 0;
    for part in 0..4 {
        let mut file = std::io::BufWriter::new(std::fs::File::create(s.path(&format!("in/part-{part}.csv"))).unwrap());
        writeln!(file, "id,customer,amount,note").unwrap();
        for i in (part..ROWS).step_by(4) {
            // Ids out of order, so the sort has work to do; notes make the rows wide.
            let id = (i * 7_919) % ROWS;
            let line = format!(
                "{id},c{},{}.{:02},note number {id} of a rather wide row and padded\n",
                id % 50_000,
                i % 1000,
                i % 100
            );
            bytes += line.len();
            file.write_all(line.as_bytes()).unwrap();
        }
    }
    assert!(bytes > 50_000_000, "{bytes} bytes of input");
    s.write(
        "job.toml",
        r#"name = "spill"
[[source]]
table = "raw.orders"
location = "in/"
[[target]]
table = "mart.by_id"
query = """
SELECT id, customer, sum(amount) AS amount, max(note) AS note, count(*) AS n
FROM raw.orders GROUP BY id, customer ORDER BY id
"""
location = "out/"
"#,
    );
    let started = std::time::Instant::now();
    let out = s.etl(&["run", "job.toml", "--memory-limit", "16M", "--json"]);
    let report = out.json();
    assert_eq!(report["sources"][0]["rows"], ROWS);
    assert_eq!(report["targets"][0]["rows"], ROWS);
    eprintln!("spilling run: {:?}", started.elapsed());
    let check = s.query("SELECT count(*) AS rows, sum(n) AS n, min(id) AS lo, max(id) AS hi FROM mart.by_id");
    assert_eq!(check[0], serde_json::json!({"rows": ROWS, "n": ROWS, "lo": 0, "hi": ROWS - 1}));
}

//! `etl serve`: the real binary on a free port, driven by a real HTTP client. Every endpoint of
//! the OpenAPI document, the formats, filters against `etl sql`, pagination across a
//! publication, keys (401/403), SELECT only, the cache and its invalidation, 429 under a
//! burst, limits, and SIGTERM during a request.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::util::Sandbox;

/// Orders over five days (the partitions), `rows` of them, amounts with repeats so that an
/// order by amount has ties.
fn orders(rows: usize, first_id: usize) -> String {
    let mut csv = String::from("order_id,day,status,amount,note\n");
    for i in first_id..first_id + rows {
        let status = ["placed", "shipped", "returned"][i % 3];
        let note = if i % 4 == 0 { "" } else { "gift, wrapped" };
        csv.push_str(&format!("{i},2026-11-0{},{status},{}.5,\"{note}\"\n", 2 + i % 5, i % 17));
    }
    csv
}

/// A sandbox whose job wrote `mart.orders` (partitioned by day) and crawled `raw.orders`.
pub(crate) fn published() -> Sandbox {
    let s = Sandbox::new();
    s.write("in/orders/a.csv", orders(240, 1));
    s.write(
        "jobs/orders.toml",
        r#"name = "orders"
[[source]]
table = "raw.orders"
location = "../in/orders/"
[[target]]
table = "mart.orders"
query = "SELECT * FROM raw.orders"
location = "../out/orders/"
partition_by = ["day"]
mode = "overwrite"
"#,
    );
    publish(&s);
    s
}

fn publish(s: &Sandbox) -> String {
    let report = s.json(&["run", "jobs/orders.toml", "--logical-date", "2026-11-30"]);
    assert_eq!(report["status"], "succeeded", "{report}");
    report["run_id"].as_str().unwrap().to_string()
}

pub(crate) fn key(s: &Sandbox, name: &str, tables: &str) -> String {
    let out = s.etl(&["serve", "keys", "create", "--name", name, "--tables", tables]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_string()
}

/// A running `etl serve`, its access log read as it comes.
pub(crate) struct Server {
    child: Child,
    url: String,
    log: Mutex<Receiver<String>>,
    client: Client,
}

impl Server {
    pub(crate) fn start(s: &Sandbox, flags: &[&str]) -> Server {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let mut child = s.command(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, log) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        // Ready when it says so: no fixed wait.
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.split("listening on ").nth(1) {
                        break url.trim().to_string();
                    }
                }
                Err(_) => panic!("etl serve did not start listening"),
            }
        };
        Server {
            child,
            url,
            log: Mutex::new(log),
            client: Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
        }
    }

    pub(crate) fn get(&self, path: &str, secret: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        request.send().unwrap()
    }

    pub(crate) fn get_with_header(&self, path: &str, secret: &str, header: (&str, &str)) -> Response {
        self.client.get(format!("{}{path}", self.url)).bearer_auth(secret).header(header.0, header.1).send().unwrap()
    }

    pub(crate) fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client.post(format!("{}{path}", self.url)).form(form).send().unwrap()
    }

    pub(crate) fn delete(&self, path: &str, secret: &str) -> Response {
        self.client.delete(format!("{}{path}", self.url)).bearer_auth(secret).send().unwrap()
    }

    pub(crate) fn query(&self, secret: &str, body: Value) -> Response {
        self.post(secret, "/v1/query", &body)
    }

    fn post(&self, secret: &str, path: &str, body: &Value) -> Response {
        let request = self.client.post(format!("{}{path}", self.url)).bearer_auth(secret);
        request.header("content-type", "application/json").body(body.to_string()).send().unwrap()
    }

    /// The access-log lines written so far.
    fn log_lines(&self) -> Vec<Value> {
        self.log.lock().unwrap().try_iter().filter_map(|line| serde_json::from_str(&line).ok()).collect()
    }

    fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

/// `{"columns", "rows"}` as row objects, to compare with `etl sql --format json`.
fn objects(page: &Value) -> Vec<Value> {
    let columns: Vec<&str> = page["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let fields = columns.iter().zip(row.as_array().unwrap()).map(|(c, v)| (c.to_string(), v.clone()));
            Value::Object(fields.collect())
        })
        .collect()
}

#[test]
fn every_documented_operation_is_served() {
    let s = published();
    let secret = key(&s, "app", "*");
    let server = Server::start(&s, &[]);
    let run_id = s.json(&["runs"])["runs"][0]["run_id"].as_str().unwrap().to_string();
    let (status, document) = json_of(server.get("/v1/openapi.json", None));
    assert_eq!(status, 200);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{name}", "mart.orders").replace("{id}", &run_id);
            let response = match method.as_str() {
                "get" if path == "/v1/cost" => {
                    server.get("/v1/cost?sql=SELECT%20amount%20FROM%20mart.orders", Some(&secret))
                }
                "get" => server.get(&concrete, Some(&secret)),
                "post" => server.query(&secret, json!({"sql": "SELECT 1 AS one"})),
                other => panic!("a method the test does not know: {other}"),
            };
            assert_eq!(response.status(), 200, "{method} {concrete}: {:?}", response.text());
            operations += 1;
        }
    }
    assert_eq!(operations, 8);
    let (status, body) = json_of(server.get("/v1/nothing", Some(&secret)));
    assert_eq!(status, 404);
    assert!(body["error"]["message"].as_str().unwrap().contains("openapi.json"));
}

#[test]
fn tables_runs_and_cost_describe_what_was_published() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &[]);
    let (_, tables) = json_of(server.get("/v1/tables", Some(&secret)));
    let names: Vec<&str> = tables["tables"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
    assert_eq!(names, ["mart.orders"], "raw.orders is outside the key's tables");
    let (_, table) = json_of(server.get("/v1/tables/mart.orders", Some(&secret)));
    assert_eq!(table["partition_keys"], json!([{"name": "day", "type": "date"}]));
    assert_eq!(table["partitions"].as_array().unwrap().len(), 5);
    assert_eq!(table["data_versions"][0]["rows"], 240);
    assert_eq!(table["last_run"]["status"], "succeeded");
    let (_, runs) = json_of(server.get("/v1/runs", Some(&secret)));
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    let run_id = runs["runs"][0]["run_id"].as_str().unwrap();
    let (status, run) = json_of(server.get(&format!("/v1/runs/{run_id}"), Some(&secret)));
    assert_eq!((status, run["job"].as_str()), (StatusCode::OK, Some("orders")));
    assert_eq!(server.get("/v1/runs/nope", Some(&secret)).status(), 404);
    let (status, estimate) = json_of(server.get(
        "/v1/cost?sql=SELECT%20amount%20FROM%20mart.orders%20WHERE%20day%20%3D%20DATE%20%272026-11-03%27",
        Some(&secret),
    ));
    assert_eq!(status, 200, "{estimate}");
    let cli = s.json(&["cost", "SELECT amount FROM mart.orders WHERE day = DATE '2026-11-03'"]);
    assert_eq!(estimate["bytes_scanned"], cli["bytes_scanned"]);
    assert_eq!(estimate["tables"][0]["files_pruned"], 4, "{estimate}");
}

#[test]
fn filters_give_what_etl_sql_gives() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &["--row-cap", "1000"]);
    let cases = [
        ("where=day:eq:2026-11-03", "day = DATE '2026-11-03'"),
        ("where=status:in:placed,returned&where=amount:ge:8", "status IN ('placed', 'returned') AND amount >= 8"),
        ("where=order_id:lt:50&where=day:ne:2026-11-02", "order_id < 50 AND day <> DATE '2026-11-02'"),
        ("where=amount:gt:15.5&where=amount:le:16.5", "amount > 15.5 AND amount <= 16.5"),
        ("where=note:eq:gift, wrapped&where=order_id:le:20", "note = 'gift, wrapped' AND order_id <= 20"),
    ];
    for (filters, condition) in cases {
        let path = format!("/v1/tables/mart.orders/rows?{}&order=order_id&limit=1000", filters.replace(' ', "%20"));
        let (status, page) = json_of(server.get(&path, Some(&secret)));
        assert_eq!(status, 200, "{filters}: {page}");
        let expected = s.query(&format!("SELECT * FROM mart.orders WHERE {condition} ORDER BY order_id"));
        assert!(!expected.is_empty(), "{condition} selects rows");
        assert_eq!(objects(&page), expected, "{filters}");
    }
    let (_, page) =
        json_of(server.get("/v1/tables/mart.orders/rows?columns=order_id,day&where=order_id:eq:7", Some(&secret)));
    assert_eq!(page, json!({"columns": ["order_id", "day"], "rows": [[7, "2026-11-04"]], "next_cursor": null}));
}

#[test]
fn formats_by_parameter_and_by_accept() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &[]);
    let path = "/v1/tables/mart.orders/rows?columns=order_id,note&where=order_id:le:4&order=order_id";
    let csv = server.get(&format!("{path}&format=csv"), Some(&secret));
    assert_eq!(csv.headers()["content-type"], "text/csv");
    assert_eq!(
        csv.text().unwrap(),
        "order_id,note\n1,\"gift, wrapped\"\n2,\"gift, wrapped\"\n3,\"gift, wrapped\"\n4,\n"
    );
    let ndjson = server.get(&format!("{path}&format=ndjson"), Some(&secret)).text().unwrap();
    let lines: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[3], json!({"order_id": 4, "note": null}));
    let accepted = server
        .client
        .get(format!("{}{path}", server.url))
        .bearer_auth(&secret)
        .header("accept", "application/vnd.apache.arrow.stream")
        .send()
        .unwrap();
    assert_eq!(accepted.headers()["content-type"], "application/vnd.apache.arrow.stream");
    let bytes = accepted.bytes().unwrap();
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    assert_eq!(batches[0].schema().field(0).name(), "order_id");
    let body = json!({"sql": "SELECT order_id FROM mart.orders WHERE order_id = $id", "params": {"id": 9}});
    let query = server.post(&secret, "/v1/query?format=csv", &body);
    assert_eq!(query.text().unwrap(), "order_id\n9\n");
    let (status, error) = json_of(server.get(&format!("{path}&format=xml"), Some(&secret)));
    assert_eq!((status.as_u16(), &error["error"]["parameter"]), (400, &json!("format")));
}

/// Every page, following `next_cursor`, as row objects; `between` runs after the first page.
fn all_pages(server: &Server, secret: &str, request: &str, mut between: impl FnMut()) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{request}&cursor={c}"),
            None => request.to_string(),
        };
        let (status, page) = json_of(server.get(&path, Some(secret)));
        assert_eq!(status, 200, "{page}");
        rows.extend(objects(&page));
        pages += 1;
        if pages == 1 {
            between();
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return rows,
        }
    }
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

#[test]
fn pages_have_no_gaps_or_repeats_even_across_a_publication() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &["--cache-ttl", "0"]);
    let everything = s.query("SELECT * FROM mart.orders");
    // In scan order, and ordered by a column with ties (amount repeats every 17 orders).
    for request in ["/v1/tables/mart.orders/rows?limit=7", "/v1/tables/mart.orders/rows?limit=11&order=amount:desc"] {
        let rows = all_pages(&server, &secret, request, || {});
        assert_eq!(rows.len(), 240, "{request}");
        assert_eq!(sorted(rows.clone()), sorted(everything.clone()), "{request}");
        if request.contains("order=") {
            let amounts: Vec<f64> = rows.iter().map(|r| r["amount"].as_f64().unwrap()).collect();
            assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "descending");
        }
    }
    // A new publication while a client pages: the pages go on reading the version they began.
    let rows = all_pages(&server, &secret, "/v1/tables/mart.orders/rows?limit=50&where=status:eq:placed", || {
        s.write("in/orders/a.csv", orders(30, 1000));
        publish(&s);
    });
    let placed: Vec<Value> = everything.iter().filter(|r| r["status"] == "placed").cloned().collect();
    assert_eq!(sorted(rows), sorted(placed), "the pinned version, whole");
    let (_, fresh) = json_of(server.get("/v1/tables/mart.orders/rows?limit=100", Some(&secret)));
    assert_eq!(fresh["rows"].as_array().unwrap().len(), 30, "a new first page reads the new version");
    // A cursor is only good for the request that issued it.
    let (_, first) = json_of(server.get("/v1/tables/mart.orders/rows?limit=5", Some(&secret)));
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, error) =
        json_of(server.get(
            &format!("/v1/tables/mart.orders/rows?limit=5&where=day:eq:2026-11-02&cursor={cursor}"),
            Some(&secret),
        ));
    assert_eq!((status.as_u16(), &error["error"]["parameter"]), (400, &json!("cursor")));
}

#[test]
fn keys_decide_who_reads_what() {
    let s = published();
    let mart = key(&s, "mart-reader", "mart.*");
    let raw = key(&s, "raw-reader", "raw.orders");
    let expired = {
        let out = s.etl(&["serve", "keys", "create", "--name", "old", "--tables", "*", "--expires", "0s"]);
        out.stdout.trim().to_string()
    };
    let server = Server::start(&s, &[]);
    for (secret, why) in [(None, "no key"), (Some("etl_nope"), "unknown"), (Some(expired.as_str()), "expired")] {
        let response = server.get("/v1/tables", secret);
        assert_eq!(response.status(), 401, "{why}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"etl\"");
    }
    assert_eq!(server.get("/v1/tables/raw.orders/rows", Some(&mart)).status(), 403);
    assert_eq!(server.get("/v1/tables/raw.orders", Some(&mart)).status(), 403);
    assert_eq!(server.get("/v1/tables/raw.missing", Some(&mart)).status(), 403, "no hint that it does not exist");
    assert_eq!(server.get("/v1/tables/raw.orders/rows", Some(&raw)).status(), 200);
    let join = json!({"sql": "SELECT count(*) FROM mart.orders m JOIN raw.orders r ON m.order_id = r.order_id"});
    assert_eq!(server.query(&mart, join.clone()).status(), 403);
    let subquery = json!({"sql": "SELECT * FROM mart.orders WHERE order_id IN (SELECT order_id FROM raw.orders)"});
    assert_eq!(server.query(&mart, subquery).status(), 403);
    assert_eq!(server.get("/v1/cost?sql=SELECT%20*%20FROM%20raw.orders", Some(&mart)).status(), 403);
    // An answer cached for one key is no answer for a key that may not read its tables.
    let count = json!({"sql": "SELECT count(*) FROM raw.orders"});
    assert_eq!(server.query(&raw, count.clone()).status(), 200);
    assert_eq!(server.query(&raw, count.clone()).headers()["x-cache"], "hit");
    assert_eq!(server.query(&mart, count).status(), 403);
    // Revoked in another process: refused from the next request on.
    assert_eq!(s.etl(&["serve", "keys", "revoke", "raw-reader"]).code, 0);
    assert_eq!(server.get("/v1/tables", Some(&raw)).status(), 401);
    let listed = s.etl(&["serve", "keys", "list", "--json"]);
    assert!(!listed.stdout.contains(&mart), "secrets are never listed");
    let names: Vec<Value> = listed.json()["keys"].as_array().unwrap().iter().map(|k| k["name"].clone()).collect();
    assert_eq!(names, [json!("mart-reader"), json!("old")]);
    let home = s.path(".etl-home/keys.sqlite");
    let stored = std::fs::read(home).unwrap();
    assert!(!stored.windows(mart.len()).any(|w| w == mart.as_bytes()), "only hashes are stored");
    let log = server.log_lines();
    assert!(log.iter().any(|l| l["key"] == "mart-reader" && l["status"] == 403));
    for line in &log {
        let text = line.to_string();
        assert!(
            !text.contains(&mart) && !text.contains(&raw) && !text.contains(&expired),
            "a secret in the log: {text}"
        );
    }
}

#[test]
fn only_one_select_is_run() {
    let s = published();
    let secret = key(&s, "app", "*");
    let server = Server::start(&s, &[]);
    for sql in [
        "DROP TABLE mart.orders",
        "INSERT INTO mart.orders SELECT * FROM mart.orders",
        "CREATE VIEW v AS SELECT 1",
        "SELECT * INTO copied FROM mart.orders",
        "COPY (SELECT 1) TO '/tmp/etl-serve-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "EXPLAIN SELECT 1",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM version_of('mart.orders', 1)",
    ] {
        let (status, body) = json_of(server.query(&secret, json!({ "sql": sql })));
        assert_eq!(status, 403, "{sql}: {body}");
    }
    for sql in ["SELECT 1; SELECT 2", "SELECT 1; DROP TABLE mart.orders"] {
        let (status, body) = json_of(server.query(&secret, json!({ "sql": sql })));
        assert_eq!(status, 403, "{sql}: {body}");
    }
    let (status, body) = json_of(server.query(&secret, json!({"sql": "SELEC 1"})));
    assert_eq!(status, 400, "{body}");
    // Parameters are values, never SQL.
    let (status, page) = json_of(server.query(
        &secret,
        json!({"sql": "SELECT count(*) AS n FROM mart.orders WHERE status = $s", "params": {"s": "x' OR '1'='1"}}),
    ));
    assert_eq!((status.as_u16(), &page["rows"]), (200, &json!([[0]])));
    let (_, page) = json_of(server.query(
        &secret,
        json!({"sql": "SELECT count(*) AS n FROM mart.orders WHERE status = $s AND amount > $a", "params": {"s": "placed", "a": 10.5}}),
    ));
    let expected = s.query("SELECT count(*) AS n FROM mart.orders WHERE status = 'placed' AND amount > 10.5");
    assert_eq!(page["rows"][0][0], expected[0]["n"]);
    assert!(s.query("SELECT count(*) AS n FROM mart.orders")[0]["n"] == 240, "nothing was changed");
}

#[test]
fn the_cache_answers_until_a_publication() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &[]);
    let path = "/v1/tables/mart.orders/rows?where=day:eq:2026-11-02&limit=500";
    let first = server.get(path, Some(&secret));
    assert_eq!(first.headers()["x-cache"], "miss");
    let first = first.text().unwrap();
    let second = server.get(path, Some(&secret));
    assert_eq!(second.headers()["x-cache"], "hit");
    assert_eq!(second.text().unwrap(), first);
    let sql = json!({"sql": "SELECT count(*) AS n FROM mart.orders"});
    assert_eq!(server.query(&secret, sql.clone()).headers()["x-cache"], "miss");
    assert_eq!(server.query(&secret, sql.clone()).headers()["x-cache"], "hit");
    s.write("in/orders/a.csv", orders(10, 500));
    publish(&s);
    let after = server.get(path, Some(&secret));
    assert_eq!(after.headers()["x-cache"], "miss", "a new publication is served at once");
    assert_eq!(json_of(after).1["rows"].as_array().unwrap().len(), 2);
    let (_, count) = json_of(server.query(&secret, sql));
    assert_eq!(count["rows"], json!([[10]]));
    let hits: Vec<Value> = server.log_lines().into_iter().filter(|l| l["cache_hit"] == true).collect();
    assert_eq!(hits.len(), 2, "the log says which requests the cache answered");
    assert!(hits.iter().all(|l| l["rows"].is_number() && l["bytes"].is_number() && l["duration_ms"].is_number()));
}

#[test]
fn a_burst_beyond_the_queue_gets_429() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &["--max-concurrency", "1", "--queue", "1", "--cache-ttl", "0"]);
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..12)
            .map(|i| {
                let (server, secret) = (&server, &secret);
                scope.spawn(move || {
                    let sql = format!(
                        "SELECT count(*) FROM mart.orders a CROSS JOIN mart.orders b CROSS JOIN mart.orders c WHERE a.order_id > {i}"
                    );
                    let response = server.query(secret, json!({ "sql": sql }));
                    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                    (response.status().as_u16(), retry)
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(statuses.iter().any(|(s, _)| *s == 200), "{statuses:?}");
    assert!(statuses.iter().any(|(s, retry)| *s == 429 && retry.is_some()), "{statuses:?}");
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 429), "{statuses:?}");
}

#[test]
fn limits_bound_rows_time_and_bodies() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let server = Server::start(&s, &["--row-cap", "50", "--query-timeout", "1"]);
    for answer in ["miss", "hit"] {
        let response = server.query(&secret, json!({"sql": "SELECT * FROM mart.orders"}));
        assert_eq!(
            (&response.headers()["rows-truncated"], &response.headers()["x-cache"]),
            (&"true".parse().unwrap(), &answer.parse().unwrap())
        );
        assert_eq!(json_of(response).1["rows"].as_array().unwrap().len(), 50);
    }
    let (status, error) = json_of(server.get("/v1/tables/mart.orders/rows?limit=51", Some(&secret)));
    assert_eq!(
        (status.as_u16(), &error["error"]["parameter"], &error["error"]["value"]),
        (400, &json!("limit"), &json!("51"))
    );
    let slow = json!({"sql": "SELECT count(*) FROM mart.orders a, mart.orders b, mart.orders c, mart.orders d WHERE a.amount + b.amount > c.amount + d.amount"});
    let (status, error) = json_of(server.query(&secret, slow));
    assert_eq!(status, 504, "{error}");
    let huge = json!({"sql": format!("SELECT '{}'", "x".repeat(200_000))});
    assert_eq!(server.query(&secret, huge).status(), 413);
    for (path, parameter) in [
        ("/v1/tables/mart.orders/rows?limit=abc", "limit"),
        ("/v1/tables/mart.orders/rows?where=amount", "where"),
        ("/v1/tables/mart.orders/rows?where=amount:like:1", "where"),
        ("/v1/tables/mart.orders/rows?where=amount:eq:cheap", "where"),
        ("/v1/tables/mart.orders/rows?columns=nope", "columns"),
        ("/v1/tables/mart.orders/rows?order=note:sideways", "order"),
        ("/v1/tables/mart.orders/rows?cursor=xyz", "cursor"),
        ("/v1/tables/mart.orders/rows?filter=1", "filter"),
        ("/v1/tables/Mart.orders", "table"),
        ("/v1/runs?status=great", "status"),
        ("/v1/cost", "sql"),
    ] {
        let (status, error) = json_of(server.get(path, Some(&secret)));
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["error"]["parameter"], parameter, "{path}: {error}");
    }
}

#[test]
fn sigterm_lets_the_request_in_progress_finish() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let flags = ["--max-concurrency", "1", "--queue", "0", "--cache-ttl", "0", "--query-timeout", "300"];
    let mut server = Server::start(&s, &flags);
    let sql =
        "SELECT count(*) AS n FROM mart.orders a, mart.orders b, mart.orders c WHERE a.amount + b.amount > c.amount";
    let expected = s.query(sql)[0]["n"].clone();
    std::thread::scope(|scope| {
        // The probes below may hold the one slot for a moment: the query retries until it runs.
        let request = scope.spawn(|| {
            loop {
                let response = server.query(&secret, json!({ "sql": sql }));
                if response.status() != 429 {
                    return json_of(response);
                }
            }
        });
        // The one slot is taken once the server runs that query: a probe is then refused.
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.query(&secret, json!({"sql": "SELECT 1 AS probe"})).status() != 429 {
            assert!(Instant::now() < deadline, "the query never started");
        }
        server.terminate();
        let (status, page) = request.join().unwrap();
        assert_eq!((status.as_u16(), &page["rows"][0][0]), (200, &expected));
    });
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = server.log.lock().unwrap().try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
}

#[test]
fn bad_command_lines_exit_2() {
    let s = Sandbox::new();
    s.etl(&["serve", "--bind", "nonsense"]).assert_failure(2, "--bind");
    s.etl(&["serve", "--max-concurrency", "0"]).assert_failure(2, "--max-concurrency");
    s.etl(&["serve", "keys", "create", "--name", "a", "--tables", "orders"]).assert_failure(2, "DATABASE.TABLE");
    s.etl(&["serve", "keys", "create", "--name", "a", "--tables", "*", "--expires", "soon"])
        .assert_failure(2, "--expires");
    s.etl(&["serve", "keys", "revoke", "nobody"]).assert_failure(1, "no key named 'nobody'");
    s.etl(&["serve", "--pipelines", "missing/"]).assert_failure(2, "--pipelines");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    s.etl(&["serve", "--bind", &address]).assert_failure(2, &address);
}

#[test]
fn tls_serves_https_with_the_given_certificate() {
    let s = published();
    let secret = key(&s, "app", "mart.*");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", s.path("key.pem").to_str().unwrap(), "-out", s.path("cert.pem").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let (cert, key_file) = (s.path("cert.pem"), s.path("key.pem"));
    let mut server =
        Server::start(&s, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key_file.to_str().unwrap()]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let pem = std::fs::read(&cert).unwrap();
    let trusting = Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build();
    server.client = trusting.unwrap();
    let (status, tables) = json_of(server.get("/v1/tables", Some(&secret)));
    assert_eq!(status, StatusCode::OK, "{tables}");
    // A client that does not trust the certificate gets no answer.
    let plain = Client::new().get(format!("{}/v1/tables", server.url)).send();
    assert!(plain.is_err(), "{plain:?}");

    s.etl(&["serve", "--tls-cert", cert.to_str().unwrap()]).assert_failure(2, "--tls-key");
    s.etl(&["serve", "--tls-cert", "nope.pem", "--tls-key", "nope.pem"]).assert_failure(2, "--tls-cert nope.pem");
}

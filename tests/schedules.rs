//! `etl schedule`, `etl scheduler`, backfill ranges, incremental sources and `etl bookmarks`,
//! through the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use crate::util::{Sandbox, Scheduler};

const WEEKLY: &str = "name = \"weekly\"\nschedule = \"cron(0 2 ? * MON *)\"\n";

/// A job over `in/events/` (CSV) appending one row per event to `mart.events_seen`.
fn incremental_sandbox(header: &str) -> Sandbox {
    let s = Sandbox::new();
    s.write(
        "jobs/events.toml",
        format!(
            r#"{header}
[[source]]
table = "raw.events"
location = "../in/events/"
format = "csv"
incremental = true
on_schema_change = "fail"
[[target]]
table = "mart.events_seen"
query = "SELECT id, note, CAST($logical_date AS DATE) AS seen_on FROM raw.events"
location = "../out/events_seen/"
mode = "append"
"#
        ),
    );
    s
}

/// Ids the target holds for each date they were seen on: `["2026-11-02:1", ...]`.
fn seen(s: &Sandbox) -> Vec<String> {
    s.query(
        "SELECT CAST(seen_on AS VARCHAR) || ':' || CAST(id AS VARCHAR) AS s FROM mart.events_seen ORDER BY seen_on, id",
    )
    .iter()
    .map(|r| r["s"].as_str().unwrap().to_string())
    .collect()
}

fn run_on(s: &Sandbox, date: &str) -> serde_json::Value {
    s.etl(&["run", "jobs/events.toml", "--logical-date", date, "--json"]).json()
}

#[test]
fn schedule_lists_the_next_fire_times_of_a_job_or_a_folder() {
    let s = Sandbox::new();
    s.write(
        "jobs/a.toml",
        format!("{WEEKLY}[[target]]\ntable = \"m.a\"\nquery = \"SELECT 1 AS x\"\nlocation = \"../out/a/\"\n"),
    );
    s.write(
        "jobs/b.toml",
        "name = \"month_end\"\nschedule = \"cron(30 23 L * ? *)\"\n[[target]]\ntable = \"m.b\"\nquery = \"SELECT 1 AS x\"\nlocation = \"../out/b/\"\n",
    );
    let all = s.json(&["schedule", "jobs", "--from", "2026-11-28T00:00:00Z", "--count", "3"]);
    assert_eq!(
        all,
        serde_json::json!({"jobs": [
            {"job": "weekly", "schedule": "cron(0 2 ? * MON *)",
             "next": ["2026-11-30T02:00:00Z", "2026-12-07T02:00:00Z", "2026-12-14T02:00:00Z"]},
            {"job": "month_end", "schedule": "cron(30 23 L * ? *)",
             "next": ["2026-11-30T23:30:00Z", "2026-12-31T23:30:00Z", "2027-01-31T23:30:00Z"]},
        ]})
    );
    // Strictly after --from; the default count is 5.
    let one = s.json(&["schedule", "jobs/a.toml", "--from", "2026-11-30T02:00:00Z"]);
    assert_eq!(one["jobs"][0]["next"][0], "2026-12-07T02:00:00Z");
    assert_eq!(one["jobs"][0]["next"].as_array().unwrap().len(), 5);
}

#[test]
fn a_bad_schedule_exits_2_with_the_position_and_the_reason() {
    let s = Sandbox::new();
    s.write(
        "jobs/bad.toml",
        "name = \"bad\"\nschedule = \"cron(0 25 ? * MON *)\"\n[[target]]\ntable = \"m.a\"\nquery = \"SELECT 1\"\nlocation = \"../out/\"\n",
    );
    for command in [&["schedule", "jobs/bad.toml"][..], &["run", "jobs/bad.toml"], &["scheduler", "jobs"]] {
        s.etl(command).assert_failure(2, "position 8").assert_failure(2, "hour 25 is out of range 0-23");
    }
    s.etl(&["schedule", "jobs/bad.toml", "--from", "monday"]).assert_failure(2, "not an RFC 3339 time");
}

#[test]
fn a_backfill_runs_each_scheduled_date_in_order() {
    let s = Sandbox::new();
    s.write(
        "jobs/w.toml",
        format!(
            "{WEEKLY}[[target]]\ntable = \"m.dates\"\nquery = \"SELECT CAST($logical_date AS DATE) AS d, $week_start AS ws\"\nlocation = \"../out/dates/\"\nmode = \"append\"\n"
        ),
    );
    let out = s.json(&["run", "jobs/w.toml", "--from", "2026-11-01", "--to", "2026-11-23"]);
    let dates: Vec<&str> =
        out["runs"].as_array().unwrap().iter().map(|r| r["logical_date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]);
    let rows = s.query("SELECT CAST(d AS VARCHAR) AS d FROM m.dates ORDER BY d");
    assert_eq!(rows.iter().map(|r| r["d"].as_str().unwrap()).collect::<Vec<_>>(), dates);
    let history = s.json(&["runs", "--job", "weekly"]);
    assert_eq!(history["runs"].as_array().unwrap().len(), 4);
    s.etl(&["run", "jobs/w.toml", "--from", "2026-11-23", "--to", "2026-11-01"]).assert_failure(2, "after --to");
    s.etl(&["run", "jobs/w.toml", "--from", "2026-11-23"]).assert_failure(2, "--to");
}

#[test]
fn incremental_runs_process_exactly_the_new_and_changed_objects() {
    let s = incremental_sandbox("name = \"events\"");
    s.write("in/events/a.csv", "id,note\n1,a\n2,a\n");
    s.write("in/events/b.csv", "id,note\n3,b\n");
    let first = run_on(&s, "2026-11-02");
    assert_eq!(first["sources"][0]["files"], 2);
    assert_eq!(seen(&s), ["2026-11-02:1", "2026-11-02:2", "2026-11-02:3"]);

    // Nothing new: a successful run that publishes nothing.
    let idle = run_on(&s, "2026-11-03");
    assert_eq!(idle["status"], "succeeded");
    assert_eq!(idle["sources"][0]["files"], 0);
    assert_eq!(seen(&s).len(), 3);

    // A new object, and a changed one (its size and time change).
    s.write("in/events/c.csv", "id,note\n4,c\n");
    std::thread::sleep(Duration::from_millis(20));
    s.write("in/events/a.csv", "id,note\n1,a2\n2,a2\n5,a2\n");
    let second = run_on(&s, "2026-11-09");
    assert_eq!(second["sources"][0]["files"], 2);
    assert_eq!(
        seen(&s),
        [
            "2026-11-02:1",
            "2026-11-02:2",
            "2026-11-02:3",
            "2026-11-09:1",
            "2026-11-09:2",
            "2026-11-09:4",
            "2026-11-09:5"
        ]
    );

    // A failed run (here: `id` would become a string) does not advance the bookmark: its
    // objects are processed by the next run.
    s.write("in/events/d.csv", "id,note\nnot-a-number,d\n");
    s.write("in/events/e.csv", "id,note\n6,e\n");
    s.etl(&["run", "jobs/events.toml", "--logical-date", "2026-11-16"]).assert_failure(1, "id");
    s.write("in/events/d.csv", "id,note\n7,d\n");
    let third = run_on(&s, "2026-11-16");
    assert_eq!(third["sources"][0]["files"], 2, "{third}");
    assert_eq!(&seen(&s)[7..], ["2026-11-16:6", "2026-11-16:7"]);

    let bookmarks = s.json(&["bookmarks", "show", "events"]);
    assert_eq!(bookmarks["job"], "events");
    assert_eq!(bookmarks["sources"][0]["table"], "raw.events");
    assert_eq!(bookmarks["sources"][0]["objects"], 5);
    assert_eq!(bookmarks["sources"][0]["last_run_id"], third["run_id"]);

    // A reset forgets them: the next run processes every object again.
    assert_eq!(s.json(&["bookmarks", "reset", "events"])["forgotten"], 5);
    assert_eq!(s.json(&["bookmarks", "show", "events"])["sources"], serde_json::json!([]));
    let again = run_on(&s, "2026-11-23");
    assert_eq!(again["sources"][0]["files"], 5);
    assert_eq!(seen(&s).iter().filter(|r| r.starts_with("2026-11-23")).count(), 7);

    // A second run of a date reads what is new since, and adds it to what the first wrote.
    s.write("in/events/f.csv", "id,note\n8,f\n");
    assert_eq!(run_on(&s, "2026-11-23")["sources"][0]["files"], 1);
    assert_eq!(seen(&s).iter().filter(|r| r.starts_with("2026-11-23")).count(), 8);
}

#[test]
fn a_webhook_receives_the_report_of_a_run_that_finally_failed() {
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/etl", receiver.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        let (mut stream, _) = receiver.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").unwrap();
        (request_line, String::from_utf8(body).unwrap())
    });
    let s = Sandbox::new();
    let marker = s.at("notified.json");
    s.write(
        "jobs/fails.toml",
        format!(
            "name = \"fails\"\nschedule = \"rate(1 minute)\"\nmax_attempts = 1\n[on_failure]\nwebhook = \"{url}\"\ncommand = \"cat > '{marker}'\"\n[[target]]\ntable = \"m.f\"\nquery = \"SELECT 1 / 0 AS boom FROM no_such_table\"\nlocation = \"../out/\"\n"
        ),
    );
    let mut scheduler = Scheduler::start(&s, "jobs");
    let (request_line, body) = received.join().unwrap();
    scheduler.stop();
    assert!(request_line.starts_with("POST /hooks/etl "), "{request_line}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["job"], "fails");
    assert_eq!(report["status"], "failed");
    assert!(report["error"].as_str().unwrap().contains("no_such_table"), "{report}");
    let by_command: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(marker).unwrap()).unwrap();
    assert_eq!(by_command["run_id"], report["run_id"]);
    let events = scheduler.events();
    assert!(events.iter().any(|e| e["state"] == "failed" && e["attempt"] == 1), "{events:?}");
}

#[test]
fn the_scheduler_runs_jobs_on_time_and_stops_cleanly_on_sigterm() {
    let s = Sandbox::new();
    s.write(
        "jobs/every_minute.toml",
        "name = \"every_minute\"\nschedule = \"rate(1 minute)\"\n[[target]]\ntable = \"m.ticks\"\nquery = \"SELECT CAST($logical_date AS DATE) AS d, $run_id AS run\"\nlocation = \"../out/ticks/\"\nmode = \"append\"\n",
    );
    let mut scheduler = Scheduler::start(&s, "jobs");
    scheduler.wait_for(|e| e["state"] == "succeeded", Duration::from_secs(90));
    let status = scheduler.stop();
    assert!(status.success(), "stopped with {status}");
    let events = scheduler.events();
    let states: Vec<&str> = events.iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(&states[..3], ["queued", "running", "succeeded"], "{events:?}");
    let fire = events[0]["fire_time"].as_str().unwrap();
    assert!(fire.ends_with(":00Z"), "fires on the minute: {fire}");
    assert_eq!(events[0]["logical_date"], &fire[..10]);
    let history = s.json(&["runs", "--job", "every_minute"]);
    let run = &history["runs"][0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["run_id"], events[2]["run_id"]);
    assert_eq!(
        s.query("SELECT count(*) AS n FROM m.ticks")[0]["n"].as_i64().unwrap() as usize,
        history["runs"].as_array().unwrap().len()
    );
}

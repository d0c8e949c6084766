use super::facts::{TimestampSpelling, is_plain_double, timestamp_spelling};
use super::*;
use crate::infer::{FileShape, csv, json};
use crate::source::text::DEFAULT_NULL_VALUES;

fn csv_sample(text: &str) -> FileShape {
    let nulls: Vec<String> = DEFAULT_NULL_VALUES.iter().map(|s| s.to_string()).collect();
    let hints = csv::CsvHints { delimiter: None, header: None, null_values: &nulls, sample_rows: 1000 };
    csv::infer(text.as_bytes(), true, "t.csv", &hints).unwrap()
}

fn columns_of(shape: &FileShape) -> Vec<Column> {
    shape.columns.iter().map(|(name, shape)| Column::new(name.clone(), shape.finish())).collect()
}

/// `name type` of every column as Glue declares it, and the reason of each that differs.
fn declared(columns: &[Column], declaration: &Declaration) -> (String, Vec<(String, String)>) {
    let types = columns
        .iter()
        .map(|c| {
            let ty = declaration.athena_types.get(&c.name).map_or(&c.ty, |a| &a.ty);
            format!("{} {ty}", c.name)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let reasons = declaration.athena_types.iter().map(|(n, a)| (n.clone(), a.reason.clone())).collect();
    (types, reasons)
}

fn why(reasons: &[(&str, Reason)]) -> Vec<(String, String)> {
    reasons.iter().map(|(name, reason)| (name.to_string(), reason.to_string())).collect()
}

/// The CSV rules of the module doc's table, one case each: the sample, the SerDe, every
/// column as declared, and the reason of each declared otherwise than etl reads it.
/// C21-C24 (parameters) are in `catalog::definition`'s tests, which write them. C26 (a
/// delimiter of several characters) cannot arise: a dialect's delimiter is one byte.
#[test]
fn csv_rules_case_by_case() {
    use GlueType as T;
    use TextSerDe::{LazySimple, OpenCsv};
    // (case, sample, SerDe, columns as declared, reasons)
    type Case = (&'static str, &'static str, TextSerDe, &'static str, Vec<(&'static str, Reason)>);
    let cases: Vec<Case> = vec![
        ("C1", "id,amt\n1,2.5\n2,3.5\n", LazySimple, "id bigint, amt double", vec![]),
        ("C2 quoted fields", "id,name\n1,\"a,b\"\n2,c\n", OpenCsv, "id bigint, name string", vec![]),
        ("C3 quoted numbers", "id,name\n\"1\",\"x\"\n\"2\",\"y\"\n", OpenCsv, "id bigint, name string", vec![]),
        (
            "C4 empty numeric",
            "id,n\n\"a\",1\n\"b\",\n",
            OpenCsv,
            "id string, n string",
            vec![("n", Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false })],
        ),
        (
            "C5 null marker",
            "id,n\n\"a\",1\n\"b\",NA\n",
            OpenCsv,
            "id string, n string",
            vec![("n", Reason::EmptyInOpenCsv { empty: false, marker: true, boolean: false })],
        ),
        ("C6 empty numeric unquoted", "id,n\na,1\nb,\n", LazySimple, "id string, n bigint", vec![]),
        (
            "C7 quoted dates",
            "d\n\"2020-01-15\"\n\"2020-01-16\"\n",
            OpenCsv,
            "d string",
            vec![("d", Reason::OpenCsvDate)],
        ),
        (
            "C8 quoted timestamps",
            "a,t\n\"x\",\"2020-01-15 10:00:00\"\n",
            OpenCsv,
            "a string, t string",
            vec![("t", Reason::OpenCsvTimestamp)],
        ),
        (
            "C9 quoted decimals",
            "p\n\"12345678901234.567\"\n",
            OpenCsv,
            "p string",
            vec![("p", Reason::NotAnOpenCsvType(T::decimal(17, 3)))],
        ),
        ("C10 decimals", "p\n12345678901234.567\n", LazySimple, "p decimal(17,3)", vec![]),
        ("C11 dates", "d\n2020-01-15\n2020-01-16\n", LazySimple, "d date", vec![]),
        ("C12 timestamps", "t\n2020-01-15 10:00:00\n2020-01-15 10:00:00.123\n", LazySimple, "t timestamp", vec![]),
        (
            "C13 T separator",
            "t\n2020-01-15T10:00:00\n2020-01-16T10:00:00\n",
            LazySimple,
            "t string",
            vec![("t", Reason::TimestampT)],
        ),
        (
            "C14 zone",
            "t\n2020-01-15 10:00:00\n2020-01-15T10:00:00Z\n",
            LazySimple,
            "t string",
            vec![("t", Reason::TimestampZone)],
        ),
        ("C15 date-only", "t\n2020-01-15\n2020-01-15 10:00:00\n", LazySimple, "t timestamp", vec![]),
        ("C16 booleans", "b\nTrue\nfalse\n", LazySimple, "b boolean", vec![]),
        // OpenCSVSerDe's boolean spellings are unconfirmed (inferred); etl's are true/false.
        ("C17 quoted booleans", "b\n\"true\"\n\"FALSE\"\n", OpenCsv, "b boolean", vec![]),
        (
            "C18 empty boolean",
            "a,b\n\"x\",true\n\"y\",\n",
            OpenCsv,
            "a string, b string",
            vec![("b", Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: true })],
        ),
        ("C19 never int", "n\n\"3000000000\"\n", OpenCsv, "n bigint", vec![]),
        (
            "C20 line break in quotes",
            "a,b\n\"x\ny\",1\n",
            OpenCsv,
            "a string, b string",
            vec![("a", Reason::SplitRows("t.csv line 2".into())), ("b", Reason::SplitRows("t.csv line 2".into()))],
        ),
        ("C21 tab", "a\tb\n1\t2\n", LazySimple, "a bigint, b bigint", vec![]),
        ("C22 semicolon", "a;b\n\"x\";1\n", OpenCsv, "a string, b bigint", vec![]),
        ("C24 empty strings", "s,n\n,1\nx,2\n", LazySimple, "s string, n bigint", vec![]),
        ("C25 backslash", "a,b\n\"C:\\temp\",1\n", OpenCsv, "a string, b bigint", vec![("a", Reason::Backslashes)]),
        // Beyond the numbered rules: what else they imply (EmptyStrings, DoubleSpelling,
        // TimestampForm and quoting in the module doc's table).
        (
            "empty strings under OpenCSVSerDe",
            "a,b\n\"x\",1\n,2\n",
            OpenCsv,
            "a string, b bigint",
            vec![("a", Reason::EmptyStrings)],
        ),
        (
            "a double spelled NaN",
            "x\n1.5\nNaN\n",
            LazySimple,
            "x string",
            vec![("x", Reason::DoubleSpelling(TextSerDe::LazySimple))],
        ),
        (
            "a fraction of ten digits",
            "t\n2020-01-15 10:00:00.1234567890\n",
            LazySimple,
            "t string",
            vec![("t", Reason::TimestampForm)],
        ),
        ("a quoted header alone", "\"id\",\"n\"\n1,2\n", LazySimple, "id bigint, n bigint", vec![]),
        ("a quote inside a field", "id,n\n1,5\"\n2,6\n", LazySimple, "id bigint, n string", vec![]),
    ];
    for (case, text, serde, types, reasons) in cases {
        let shape = csv_sample(text);
        let columns = columns_of(&shape);
        let declaration = declare_csv(&columns, &shape.facts);
        assert_eq!(declaration.serde, serde, "{case}");
        assert_eq!(declared(&columns, &declaration), (types.to_string(), why(&reasons)), "{case}");
    }
}

/// A declaration differs from etl's view in type, or only in what the values read as.
#[test]
fn a_column_that_only_reads_differently_keeps_its_type() {
    let shape = csv_sample("a,b\n\"C:\\x\",1\n,2\n");
    let declaration = declare_csv(&columns_of(&shape), &shape.facts);
    let a = &declaration.athena_types["a"];
    assert_eq!(a.ty, GlueType::String);
    assert_eq!(a.reason, format!("{}; {}", Reason::Backslashes, Reason::EmptyStrings));
}

fn json_sample(text: &str) -> Result<FileShape, String> {
    json::infer(text.as_bytes(), true, "t.json", 0).map_err(|e| e.message().to_string())
}

/// The JSON rules of the module doc's table: the sample, every column as declared, the
/// mappings written and the reasons. J5's error comes from inference itself.
#[test]
fn json_rules_case_by_case() {
    // (case, sample, columns as declared, mappings, reasons)
    type Case =
        (&'static str, &'static str, &'static str, Vec<(&'static str, &'static str)>, Vec<(&'static str, Reason)>);
    let cases: Vec<Case> = vec![
        ("J1", "{\"id\":1,\"ok\":true,\"x\":1.5}", "id bigint, ok boolean, x double", vec![], vec![]),
        ("J2 renamed key", "{\"Order ID\":1}", "order_id bigint", vec![("order_id", "Order ID")], vec![]),
        ("J3 dotted key", "{\"a.b\":1}", "a_b bigint", vec![("a_b", "a.b")], vec![]),
        ("J4 case alone", "{\"Id\":1}", "id bigint", vec![], vec![]),
        ("J6 scalar for struct", "{\"c\":{\"n\":1}}\n{\"c\":2}", "c string", vec![], vec![]),
        ("J7 kinds disagree", "{\"t\":[\"x\"]}\n{\"t\":\"y\"}", "t string", vec![], vec![]),
        ("J8 beyond bigint", "{\"u\":18446744073709551615}", "u string", vec![], vec![("u", Reason::JsonDecimal)]),
        ("J9 nested rename", "{\"c\":{\"Na.me\":\"x\"}}", "c struct<na_me:string>", vec![("na_me", "Na.me")], vec![]),
        // Beyond the numbered rules: J8, J9 and KeyConflict at other depths and keys.
        (
            "a decimal inside a struct",
            "{\"c\":{\"u\":18446744073709551615,\"v\":1}}",
            "c struct<u:string,v:bigint>",
            vec![],
            vec![("c", Reason::JsonDecimal)],
        ),
        (
            "one name from two keys at two depths",
            "{\"na_me\":1,\"c\":{\"Na.me\":\"x\"}}",
            "na_me bigint, c string",
            vec![],
            vec![(
                "c",
                Reason::KeyConflict {
                    name: "na_me".into(),
                    keys: vec!["Na.me".into(), "na_me".into()],
                    mapped: None,
                    parent: true,
                },
            )],
        ),
        (
            "one column from two keys",
            "{\"Order ID\":1}\n{\"order-id\":2}",
            "order_id bigint",
            vec![("order_id", "Order ID")],
            vec![(
                "order_id",
                Reason::KeyConflict {
                    name: "order_id".into(),
                    keys: vec!["Order ID".into(), "order-id".into()],
                    mapped: Some("Order ID".into()),
                    parent: false,
                },
            )],
        ),
        (
            "keys in arrays of objects",
            "{\"a\":[{\"X Y\":1}]}",
            "a array<struct<x_y:bigint>>",
            vec![("x_y", "X Y")],
            vec![],
        ),
    ];
    for (case, text, types, mappings, reasons) in cases {
        let shape = json_sample(text).unwrap();
        let columns = columns_of(&shape);
        let declaration = declare_json(&columns, &shape.facts);
        assert_eq!(declaration.serde, TextSerDe::OpenXJson, "{case}");
        assert_eq!(declared(&columns, &declaration), (types.to_string(), why(&reasons)), "{case}");
        let mappings: BTreeMap<String, String> = mappings.iter().map(|(n, k)| (n.to_string(), k.to_string())).collect();
        assert_eq!(declaration.mappings, mappings, "{case}");
    }
    let collision = json_sample("{\"A\":1,\"a\":2}").unwrap_err();
    assert!(collision.contains("keys 'A' and 'a' both become 'a'"), "J5: {collision}");
}

/// Facts of several files are the union of each file's.
#[test]
fn facts_of_files_add_up() {
    let (a, b) = (csv_sample("id,n\n1,2\n"), csv_sample("id,n\n\"3\",\n"));
    let facts = a.facts.clone().union(&b.facts);
    assert!(facts.quoted && facts.columns["n"].empty && !facts.columns["id"].empty);
    let declaration = declare_csv(&columns_of(&a), &facts);
    assert_eq!(declaration.serde, TextSerDe::OpenCsv);
    assert_eq!(declaration.athena_types.keys().collect::<Vec<_>>(), ["n"]);
}

/// What an earlier crawl recorded outlives the files that showed it, while the column keeps
/// its type; once the type changes the facts behind it are unknown, and assumed the worst.
#[test]
fn recorded_declarations_hold_for_the_files_behind_them() {
    let columns = [Column::new("n", GlueType::BigInt)];
    let earlier = AthenaType {
        ty: GlueType::String,
        reason: Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false }.to_string(),
    };
    let recorded = |etl_type: GlueType| TextFacts {
        quoted: true,
        recorded_serde: Some(TextSerDe::OpenCsv),
        recorded: BTreeMap::from([("n".to_string(), Recorded { etl_type, athena: Some(earlier.clone()) })]),
        ..TextFacts::default()
    };
    let kept = declare_csv(&columns, &recorded(GlueType::BigInt));
    assert_eq!(kept.athena_types["n"], earlier);
    let widened = declare_csv(&[Column::new("n", GlueType::Double)], &recorded(GlueType::BigInt));
    assert_eq!(widened.athena_types["n"].reason, Reason::EmptinessUnknown.to_string());
    // Declared for LazySimpleSerDe, now quoted: the earlier files were never checked for
    // empty values.
    let unquoted_before = TextFacts {
        quoted: true,
        recorded_serde: Some(TextSerDe::LazySimple),
        columns: BTreeMap::from([("n".to_string(), ColumnFacts { emptiness_unknown: true, ..Default::default() })]),
        ..TextFacts::default()
    };
    let switched = declare_csv(&columns, &unquoted_before);
    assert_eq!(switched.serde, TextSerDe::OpenCsv);
    assert_eq!(switched.athena_types["n"].reason, Reason::EmptinessUnknown.to_string());
}

#[test]
fn every_reason_reads_as_written() {
    let cases = [
        (
            Reason::EmptyInOpenCsv { empty: true, marker: false, boolean: false },
            "empty values in a numeric column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in queries",
        ),
        (
            Reason::EmptyInOpenCsv { empty: false, marker: true, boolean: false },
            "null-marker values in a numeric column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in queries",
        ),
        (
            Reason::EmptyInOpenCsv { empty: true, marker: true, boolean: true },
            "empty and null-marker values in a boolean column fail OpenCSVSerDe queries (HIVE_BAD_DATA); CAST in \
             queries",
        ),
        (
            Reason::EmptinessUnknown,
            "files crawled before the table had quoted fields may hold empty values, which fail OpenCSVSerDe \
             queries in a non-string column (HIVE_BAD_DATA); a full crawl checks them",
        ),
        (
            Reason::NotAnOpenCsvType(GlueType::decimal(17, 3)),
            "OpenCSVSerDe reads only boolean, int, bigint and double besides string, not decimal(17,3) (Athena docs)",
        ),
        (
            Reason::OpenCsvDate,
            "OpenCSVSerDe reads DATE only as days since 1970-01-01, not yyyy-MM-dd text (Athena docs)",
        ),
        (
            Reason::OpenCsvTimestamp,
            "OpenCSVSerDe reads TIMESTAMP only as epoch milliseconds, not as text (Athena docs)",
        ),
        (
            Reason::SplitRows("a.csv line 2".into()),
            "a quoted field holds a line break (a.csv line 2): Athena's CSV SerDes read one line per row, so that \
             row reads split",
        ),
        (
            Reason::Backslashes,
            "OpenCSVSerDe's escape character drops a backslash not before a quote or backslash: such values read \
             changed",
        ),
        (Reason::EmptyStrings, "OpenCSVSerDe reads an empty field as '' where etl reads NULL"),
        (
            Reason::DoubleSpelling(TextSerDe::OpenCsv),
            "doubles spelled other than [+-]digits[.digits][e[+-]digits] (NaN, inf, .5) may fail OpenCSVSerDe queries",
        ),
        (
            Reason::DoubleSpelling(TextSerDe::LazySimple),
            "doubles spelled other than [+-]digits[.digits][e[+-]digits] (NaN, inf, .5) may read as NULL in \
             LazySimpleSerDe",
        ),
        (
            Reason::TimestampZone,
            "timestamps with a zone (Z, +hh:mm) read as NULL in LazySimpleSerDe, which reads yyyy-MM-dd \
             HH:mm:ss[.fff]",
        ),
        (
            Reason::TimestampT,
            "LazySimpleSerDe reads timestamps as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs), not with a 'T' before the \
             time",
        ),
        (
            Reason::TimestampForm,
            "LazySimpleSerDe reads timestamps only as yyyy-MM-dd HH:mm:ss[.fff] (Athena docs); other spellings read \
             as NULL",
        ),
        (
            Reason::NotACsvType("array<bigint>".parse().unwrap()),
            "LazySimpleSerDe reads array<bigint> from text with its own collection delimiters, not as etl does",
        ),
        (Reason::JsonDecimal, "AWS does not document DECIMAL for the OpenX JSON SerDe"),
        (
            Reason::JsonTimestamp,
            "the OpenX JSON SerDe reads only some timestamp spellings (no date-only values), which etl does not check",
        ),
        (Reason::JsonBinary, "AWS does not document BINARY for the OpenX JSON SerDe"),
        (
            Reason::KeyConflict {
                name: "na_me".into(),
                keys: vec!["Na.me".into(), "na_me".into()],
                mapped: None,
                parent: true,
            },
            "JSON keys \"Na.me\", \"na_me\" all become \"na_me\", and the OpenX SerDe reads one key per name at \
             every depth (the key \"na_me\"): declared string, the JSON text",
        ),
        (
            Reason::KeyConflict {
                name: "order_id".into(),
                keys: vec!["Order ID".into(), "order-id".into()],
                mapped: Some("Order ID".into()),
                parent: false,
            },
            "JSON keys \"Order ID\", \"order-id\" all become \"order_id\", and the OpenX SerDe reads one key per \
             name at every depth (mapping.order_id=\"Order ID\"): others read NULL",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text, "{reason:?}");
    }
}

#[test]
fn timestamp_spellings() {
    let cases = [
        ("2020-01-15", TimestampSpelling::Hive),
        ("2020-01-15 10:00:00", TimestampSpelling::Hive),
        ("2020-01-15 10:00:00.1", TimestampSpelling::Hive),
        ("2020-01-15 10:00:00.123456789", TimestampSpelling::Hive),
        ("2020-01-15 10:00:00.1234567890", TimestampSpelling::Other),
        ("2020-01-15 10:00", TimestampSpelling::Other),
        ("2020-01-15 10:00:00.", TimestampSpelling::Other),
        ("2020-01-15T10:00:00", TimestampSpelling::WithT),
        ("2020-01-15t10:00:00", TimestampSpelling::WithT),
        ("2020-01-15T10:00:00Z", TimestampSpelling::WithZone),
        ("2020-01-15 10:00:00+01:00", TimestampSpelling::WithZone),
        ("2020-01-15T10:00:00-0500", TimestampSpelling::WithZone),
        ("2020-01-15 10:00:00.5z", TimestampSpelling::WithZone),
    ];
    for (text, spelling) in cases {
        assert_eq!(timestamp_spelling(text), spelling, "{text}");
    }
}

#[test]
fn plain_doubles() {
    for text in ["1", "-1", "+1.5", "1.25e3", "1E-3", "007.5"] {
        assert!(is_plain_double(text), "{text}");
    }
    for text in [".5", "5.", "NaN", "inf", "-Infinity", "1e", "1.5.2", "", "+", "1e+"] {
        assert!(!is_plain_double(text), "{text}");
    }
}

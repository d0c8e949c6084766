//! SQL parameters: values bound to `$name` placeholders, never spliced into SQL text.
//!
//! A value has a type: a job's `[params]` take their TOML type, `--param k:TYPE=v` names one,
//! and a plain `--param k=v` is a string that SQL may cast, unless it overrides a typed
//! default, whose type it then takes. The built-ins are `logical_date`, `week_start` (the
//! Monday on or before it), `week_end` (six days later) and `run_id`.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;

use crate::error::{Error, Result};
use crate::source::text::{parse_date, parse_double, parse_int, parse_timestamp};

pub const BUILT_INS: [&str; 4] = ["logical_date", "week_start", "week_end", "run_id"];

#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, ScalarValue>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&ScalarValue> {
        self.values.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: ScalarValue) {
        self.values.insert(name.to_string(), value);
    }

    /// The values a run or query binds: these defaults, `overrides` applied in order, and the
    /// built-ins for `logical_date` and `run_id`.
    pub fn resolve(&self, overrides: &[String], logical_date: NaiveDate, run_id: &str) -> Result<Params> {
        let mut params = self.clone();
        params.apply_overrides(overrides)?;
        Ok(params.with_built_ins(logical_date, run_id))
    }

    /// The values a user chose (defaults and overrides, not the built-ins) as one text:
    /// runs with the same fingerprint redo the same work.
    pub fn fingerprint(&self) -> String {
        let chosen: Vec<String> = self
            .values
            .iter()
            .filter(|(name, _)| !BUILT_INS.contains(&name.as_str()))
            .map(|(name, value)| format!("{name}:{}={value}", value.data_type()))
            .collect();
        format!("params({})", chosen.join(", "))
    }

    /// The values a user chose (not the built-ins) as `--param NAME:TYPE=VALUE` texts, which
    /// [`Params::resolve`] takes back: what a run's recorded checks ran with.
    pub fn chosen(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|(name, _)| !BUILT_INS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                let ty = match value {
                    ScalarValue::Int32(Some(_)) => "int",
                    ScalarValue::Int64(Some(_)) => "bigint",
                    ScalarValue::Float64(Some(_)) => "double",
                    ScalarValue::Date32(Some(_)) => "date",
                    ScalarValue::TimestampMicrosecond(Some(_), None) => "timestamp",
                    ScalarValue::Utf8(Some(_)) => "string",
                    _ => return None,
                };
                Some(format!("{name}:{ty}={value}"))
            })
            .collect()
    }

    /// The built-ins for a logical date and run.
    pub fn with_built_ins(mut self, logical_date: NaiveDate, run_id: &str) -> Self {
        let week_start = logical_date - Days::new(logical_date.weekday().num_days_from_monday() as u64);
        let week_end = week_start + Days::new(6);
        self.set("logical_date", date_value(logical_date));
        self.set("week_start", date_value(week_start));
        self.set("week_end", date_value(week_end));
        self.set("run_id", ScalarValue::Utf8(Some(run_id.to_string())));
        self
    }

    /// Applies `--param` overrides (`k=v` or `k:TYPE=v`), in order.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<()> {
        for text in overrides {
            let (name, value) = parse_override(text, |name| self.values.get(name).map(ScalarValue::data_type))?;
            if BUILT_INS.contains(&name.as_str()) {
                let how = match name.as_str() {
                    "run_id" => "each run is given its own",
                    _ => "--logical-date sets the date it follows",
                };
                return Err(Error::config(format!("--param {text}: '{name}' is a built-in parameter ({how})")));
            }
            self.set(&name, value);
        }
        Ok(())
    }
}

fn date_value(date: NaiveDate) -> ScalarValue {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    ScalarValue::Date32(Some((date - epoch).num_days() as i32))
}

/// Parameter names are SQL identifiers: letters, digits, underscores, not starting with a digit.
pub fn check_name(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid { Ok(()) } else { Err(Error::config(format!("'{name}' is not a valid parameter name"))) }
}

/// `k=v` or `k:TYPE=v`; an untyped value takes the type of the default it overrides.
fn parse_override(text: &str, default_type: impl Fn(&str) -> Option<DataType>) -> Result<(String, ScalarValue)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| Error::usage(format!("--param {text}: expected NAME=VALUE or NAME:TYPE=VALUE")))?;
    let (name, ty) = match key.split_once(':') {
        Some((name, ty)) => (name.trim(), Some(ty.trim().to_ascii_lowercase())),
        None => (key.trim(), None),
    };
    check_name(name).map_err(|e| e.context(format!("--param {text}")))?;
    let value = match ty.as_deref() {
        Some(ty) => typed_value(ty, value).map_err(|e| e.context(format!("--param {text}")))?,
        None => match default_type(name) {
            Some(data_type) if data_type != DataType::Utf8 => cast_text(value, &data_type)
                .map_err(|e| e.context(format!("--param {text} (the job's default is a {data_type})")))?,
            _ => ScalarValue::Utf8(Some(value.to_string())),
        },
    };
    Ok((name.to_string(), value))
}

fn typed_value(ty: &str, value: &str) -> Result<ScalarValue> {
    let bad = || Error::config(format!("'{value}' is not a valid {ty}"));
    Ok(match ty {
        "int" => ScalarValue::Int32(Some(parse_int(value).and_then(|v| i32::try_from(v).ok()).ok_or_else(bad)?)),
        "bigint" => ScalarValue::Int64(Some(parse_int(value).ok_or_else(bad)?)),
        // SQL has no literal for an infinite or undefined double (one would bind as NULL).
        "double" => ScalarValue::Float64(Some(parse_double(value).filter(|v| v.is_finite()).ok_or_else(bad)?)),
        "date" => ScalarValue::Date32(Some(parse_date(value).ok_or_else(bad)?)),
        "timestamp" => ScalarValue::TimestampMicrosecond(Some(parse_timestamp(value).ok_or_else(bad)?), None),
        "string" => ScalarValue::Utf8(Some(value.to_string())),
        other => {
            return Err(Error::config(format!(
                "unknown parameter type '{other}' (expected int, bigint, double, date, timestamp or string)"
            )));
        }
    })
}

/// A text value as `data_type`, or an error that says which value did not fit.
pub fn cast_text(value: &str, data_type: &DataType) -> Result<ScalarValue> {
    let name = match data_type {
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Date32 => "date",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp",
        DataType::Boolean => {
            return match value.to_ascii_lowercase().as_str() {
                "true" => Ok(ScalarValue::Boolean(Some(true))),
                "false" => Ok(ScalarValue::Boolean(Some(false))),
                _ => Err(Error::config(format!("'{value}' is not a valid boolean"))),
            };
        }
        other => {
            return ScalarValue::Utf8(Some(value.to_string()))
                .cast_to(other)
                .map_err(|_| Error::config(format!("'{value}' is not a valid {other}")));
        }
    };
    typed_value(name, value)
}

/// A job file's `[params]` value.
pub fn from_toml(name: &str, value: &toml::Value) -> Result<ScalarValue> {
    check_name(name)?;
    Ok(match value {
        toml::Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        toml::Value::Integer(i) => ScalarValue::Int64(Some(*i)),
        toml::Value::Float(f) if f.is_finite() => ScalarValue::Float64(Some(*f)),
        toml::Value::Boolean(b) => ScalarValue::Boolean(Some(*b)),
        toml::Value::Datetime(d) => {
            let text = d.to_string();
            let value = match (d.date.is_some(), d.time.is_some()) {
                (true, false) => parse_date(&text).map(|days| ScalarValue::Date32(Some(days))),
                (true, true) => {
                    parse_timestamp(&text).map(|micros| ScalarValue::TimestampMicrosecond(Some(micros), None))
                }
                // A time of day alone has no parameter type to bind to.
                _ => None,
            };
            value.ok_or_else(|| {
                Error::config(format!("parameter '{name}': {text} is not a date or a timestamp (a time alone is not a SQL value here; write it as a string)"))
            })?
        }
        toml::Value::Float(f) => {
            return Err(Error::config(format!("parameter '{name}': {f} has no SQL literal (a double must be finite)")));
        }
        other => {
            return Err(Error::config(format!("parameter '{name}': a {} cannot be a SQL value", other.type_str())));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_follow_the_iso_week() {
        let saturday = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let params = Params::default().with_built_ins(saturday, "r1");
        assert_eq!(params.get("week_start").unwrap().to_string(), "2026-11-23");
        assert_eq!(params.get("week_end").unwrap().to_string(), "2026-11-29");
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let params = Params::default().with_built_ins(monday, "r1");
        assert_eq!(params.get("week_start").unwrap().to_string(), "2026-11-23");
    }

    #[test]
    fn a_fingerprint_is_the_users_values_whatever_the_run_and_their_order() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let mut first = Params::default();
        first.apply_overrides(&["region=eu".into(), "batch:bigint=2".into()]).unwrap();
        let mut second = Params::default();
        second.apply_overrides(&["batch:bigint=2".into(), "region=eu".into()]).unwrap();
        let first = first.with_built_ins(day, "run-1").fingerprint();
        assert_eq!(first, second.with_built_ins(day + Days::new(1), "run-2").fingerprint());
        assert_eq!(first, "params(batch:Int64=2, region:Utf8=eu)");
        let mut other = Params::default();
        other.apply_overrides(&["region=eu".into(), "batch=2".into()]).unwrap();
        assert_ne!(first, other.fingerprint(), "a value of another type is another choice");
        assert_eq!(Params::default().with_built_ins(day, "r").fingerprint(), "params()");
    }

    #[test]
    fn overrides_are_strings_typed_or_take_the_defaults_type() {
        let mut params = Params::default();
        params.set("limit", ScalarValue::Int64(Some(5)));
        params
            .apply_overrides(&[
                "region=eu".into(),
                "limit=7".into(),
                "since:date=2026-01-01".into(),
                "x:double=1.5".into(),
            ])
            .unwrap();
        assert_eq!(params.get("region"), Some(&ScalarValue::Utf8(Some("eu".into()))));
        assert_eq!(params.get("limit"), Some(&ScalarValue::Int64(Some(7))));
        assert_eq!(params.get("since").unwrap().to_string(), "2026-01-01");
        assert_eq!(params.get("x"), Some(&ScalarValue::Float64(Some(1.5))));
    }

    #[test]
    fn bad_overrides_name_the_option() {
        let mut params = Params::default();
        params.set("limit", ScalarValue::Int64(Some(5)));
        for (text, expected) in [
            ("novalue", "expected NAME=VALUE"),
            ("limit=seven", "the job's default is a Int64"),
            ("d:date=tomorrow", "'tomorrow' is not a valid date"),
            ("d:uuid=1", "unknown parameter type 'uuid'"),
            ("1x=2", "not a valid parameter name"),
            ("run_id=x", "built-in"),
        ] {
            let err = params.apply_overrides(&[text.to_string()]).unwrap_err();
            assert!(err.message().contains(expected), "{text}: {err}");
            assert_eq!(err.kind().exit_code(), 2);
        }
    }
}

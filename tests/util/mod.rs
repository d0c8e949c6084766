//! A sandbox per test: a temporary folder, its own `$ETL_HOME`, and the binary.

pub mod aws;
pub mod faults;

use std::path::PathBuf;
use std::process::Command;

pub struct Sandbox {
    dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stdout as JSON, after checking the command succeeded.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "expected success, got {self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.stdout))
    }

    pub fn assert_failure(&self, code: i32, message: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}, got {self:?}");
        assert!(self.stderr.contains(message), "expected '{message}' in stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"), "{}", self.stderr);
        self
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox { dir: tempfile::tempdir().expect("temporary folder") }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The absolute path of `relative`, as a string for arguments and job files.
    pub fn at(&self, relative: &str) -> String {
        self.path(relative).to_string_lossy().into_owned()
    }

    pub fn write(&self, relative: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub fn write_gzip(&self, relative: &str, content: &[u8]) -> &Self {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).unwrap();
        self.write(relative, encoder.finish().unwrap())
    }

    pub fn etl(&self, args: &[&str]) -> Output {
        self.etl_with_env(args, &[])
    }

    /// The `etl` command in this sandbox, not yet started (for tests that spawn and signal it).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_etl"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("ETL_HOME", self.path(".etl-home"))
            .env_remove("ETL_CATALOG")
            .env_remove("ETL_KILL_POINT");
        command
    }

    /// `etl` with variables set for this process only (an endpoint, a retry budget).
    pub fn etl_with_env(&self, args: &[&str], variables: &[(&str, &str)]) -> Output {
        let output = self.command(args).envs(variables.iter().copied()).output().expect("the etl binary runs");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed with `--json`, returning its document.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        self.etl(&all).json()
    }

    /// Files under `relative`, sorted, as paths relative to it.
    pub fn files(&self, relative: &str) -> Vec<String> {
        let root = self.path(relative);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// Rows of a query, as JSON objects.
    pub fn query(&self, sql: &str) -> Vec<serde_json::Value> {
        match self.etl(&["sql", sql, "--format", "json"]).json() {
            serde_json::Value::Array(rows) => rows,
            other => panic!("expected an array, got {other}"),
        }
    }
}

/// `[{"name": "a", "type": "bigint"}, ...]` -> `["a bigint", ...]`.
pub fn columns(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list of columns")
        .iter()
        .map(|c| format!("{} {}", c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect()
}

//! A sandbox per test: a temporary folder, its own `$ETL_HOME`, and the binary; a scheduler
//! started in it, whose events are read as they come.

pub mod aws;
pub mod faults;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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
    fn of(output: std::process::Output) -> Output {
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

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

    /// Starts `etl ARGS` with `ETL_KILL_POINT=point`, and kills it (SIGKILL) once it says it
    /// reached the point.
    pub fn kill_at(&self, args: &[&str], point: &str) {
        use std::io::{BufRead, BufReader};
        let mut child = self
            .command(args)
            .env("ETL_KILL_POINT", point)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the etl binary runs");
        let mut said = Vec::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap_or_default();
            if line.contains("kill point") && line.contains("reached") {
                child.kill().expect("SIGKILL");
                child.wait().unwrap();
                return;
            }
            said.push(line);
        }
        let status = child.wait().unwrap();
        panic!("etl {args:?} ended ({status}) without reaching kill point {point}:\n{}", said.join("\n"));
    }

    /// `etl` with variables set for this process only (an endpoint, a retry budget).
    pub fn etl_with_env(&self, args: &[&str], variables: &[(&str, &str)]) -> Output {
        let output = self.command(args).envs(variables.iter().copied()).output().expect("the etl binary runs");
        Output::of(output)
    }

    /// `etl` reading `input` on its standard input.
    pub fn etl_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the etl binary runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        Output::of(child.wait_with_output().unwrap())
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

    /// Files under `relative` that Hive readers list: none in a folder whose name starts with
    /// `_` or `.` (staging, journals, the files of replaced versions kept for rollback).
    pub fn visible_files(&self, relative: &str) -> Vec<String> {
        self.files(relative).into_iter().filter(|f| !f.split('/').any(|part| part.starts_with(['_', '.']))).collect()
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

/// `etl scheduler DIR --json` (or another long-running `etl` command: a cluster's role), its
/// events (stdout) and its log (stderr) read as they come; killed if still running when dropped.
pub struct Scheduler {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
    log: std::sync::mpsc::Receiver<String>,
}

impl Scheduler {
    pub fn start(s: &Sandbox, jobs: &str) -> Scheduler {
        Self::start_with_env(s, jobs, &[])
    }

    /// A scheduler with variables set for it only (a kill point).
    pub fn start_with_env(s: &Sandbox, jobs: &str, variables: &[(&str, &str)]) -> Scheduler {
        Self::spawn(s, &["scheduler", jobs, "--json"], variables)
    }

    /// `etl ARGS` (a scheduler with more flags), its stdout one JSON event a line.
    pub fn start_with_args(s: &Sandbox, args: &[&str]) -> Scheduler {
        Self::spawn(s, args, &[])
    }

    /// `etl ARGS` with variables set for it only.
    pub fn spawn(s: &Sandbox, args: &[&str], variables: &[(&str, &str)]) -> Scheduler {
        use std::io::{BufRead, BufReader};
        let mut child = s
            .command(args)
            .envs(variables.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"));
                if send.send(event).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (send, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Scheduler { child, events, seen: Vec::new(), log }
    }

    pub fn wait_for(&mut self, done: impl Fn(&serde_json::Value) -> bool, limit: Duration) {
        self.wait_until(|seen| seen.iter().any(&done), limit);
    }

    /// Waits until the events seen so far satisfy `done`.
    pub fn wait_until(&mut self, done: impl Fn(&[serde_json::Value]) -> bool, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen) {
            let left = deadline.checked_duration_since(Instant::now()).expect("the event came in time");
            match self.events.recv_timeout(left) {
                Ok(event) => self.seen.push(event),
                Err(e) => panic!("no such event ({e}); saw {:?}", self.seen),
            }
        }
    }

    /// Waits for a line of its log (stderr) that contains `text`.
    pub fn wait_for_log(&mut self, text: &str, limit: Duration) {
        if let Err(passed) = self.log_line(text, limit) {
            panic!("no log line with '{text}'; its log: {passed:?}; events: {:?}", self.seen);
        }
    }

    /// Waits for a line of its log (stderr) that contains `text`; when none comes in time (or
    /// the process ended), the lines it passed over.
    pub fn log_line(&mut self, text: &str, limit: Duration) -> Result<(), Vec<String>> {
        let deadline = Instant::now() + limit;
        let mut passed = Vec::new();
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return Err(passed) };
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Ok(()),
                Ok(line) => passed.push(line),
                Err(_) => return Err(passed),
            }
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the scheduler did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the scheduler ends the way a recycled machine ends it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// Every event, once it stopped.
    pub fn events(&mut self) -> Vec<serde_json::Value> {
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(event);
        }
        self.seen.clone()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

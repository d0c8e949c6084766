//! What a run shows while it goes: a spinner with what it is doing and how far it got, and its
//! warnings. The spinner is silent when stderr is not a terminal, with `--json` or `-q`, so
//! logs and pipes stay clean; warnings go to stderr unless the progress is hidden.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Print each step as a line on stderr (`-v` when stderr is not a terminal).
    lines: bool,
    /// Print warnings on stderr.
    warnings: bool,
}

impl Progress {
    /// Shows nothing (the caller reads the warnings from the run's report).
    pub fn hidden() -> Self {
        Progress { bar: None, lines: false, warnings: false }
    }

    /// Warnings on stderr, and nothing else (runs of the scheduler).
    pub fn warnings_only() -> Self {
        Progress { bar: None, lines: false, warnings: true }
    }

    /// A spinner on stderr if it is a terminal and `wanted`; with `verbose`, steps as lines
    /// where there is no terminal. Warnings on stderr in any case.
    pub fn on_terminal(wanted: bool, verbose: bool) -> Self {
        if !wanted {
            return Self::warnings_only();
        }
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, lines: verbose, warnings: true };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar), lines: false, warnings: true }
    }

    pub fn step(&self, message: impl Into<String>) {
        let message = message.into();
        if self.lines {
            eprintln!("{message}");
        }
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    pub fn warn(&self, warning: &str) {
        if !self.warnings {
            return;
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("warning: {warning}")),
            None => eprintln!("warning: {warning}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

//! Progress on a terminal: a spinner with what the run is doing and how far it got. Silent when
//! stderr is not a terminal, with `--json` or `-q`, so logs and pipes stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Print each step as a line on stderr (`-v` when stderr is not a terminal).
    lines: bool,
}

impl Progress {
    pub fn hidden() -> Self {
        Progress { bar: None, lines: false }
    }

    /// A spinner on stderr if it is a terminal and `wanted`; with `verbose`, steps as lines
    /// where there is no terminal.
    pub fn on_terminal(wanted: bool, verbose: bool) -> Self {
        if !wanted {
            return Self::hidden();
        }
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, lines: verbose };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar), lines: false }
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

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `1234567` -> `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

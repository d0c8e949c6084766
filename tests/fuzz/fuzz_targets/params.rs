//! Parameters: `--param` overrides, job-file `[params]` values and scripts with placeholders.
//!
//! The input is lines: the first is a script, the others `--param` overrides. Whatever they
//! hold, overrides parse or fail with an error, splitting never panics, and a bound value
//! cannot change a statement's structure: `SELECT $name AS v` plans to exactly one column, `v`,
//! for every parameter that parsed.
#![no_main]

use std::sync::LazyLock;

use datafusion::prelude::SessionContext;
use etl::transform::params::{Params, from_toml};
use etl::transform::script::{Statement, plan_statement, split};
use libfuzzer_sys::fuzz_target;

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().expect("a runtime"));
static CONTEXT: LazyLock<SessionContext> = LazyLock::new(SessionContext::new);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let script = lines.next().unwrap_or("");
    let overrides: Vec<String> = lines.map(str::to_string).collect();
    let _ = split(script);

    let mut params = Params::default();
    if params.apply_overrides(&overrides).is_err() {
        return;
    }
    if let Ok(value) = toml::from_str::<toml::Table>(script) {
        for (name, value) in &value {
            let _ = from_toml(name, value);
        }
    }
    let names: Vec<String> = params.names().map(str::to_string).collect();
    for name in names.iter().take(3) {
        let statement = Statement { text: format!("SELECT ${name} AS v"), line: 1 };
        let plan = RUNTIME
            .block_on(plan_statement(&CONTEXT, "fuzz.sql", &statement, &params))
            .unwrap_or_else(|e| panic!("binding ${name} = {:?}: {e}", params.get(name)));
        let fields = plan.schema().fields();
        assert_eq!(fields.len(), 1, "{name}");
        assert_eq!(fields[0].name(), "v");
    }
});

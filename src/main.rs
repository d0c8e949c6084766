//! The `etl` binary: parse the command line, run it, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc (v3) commits its whole arena at once on Linux and then never gives back what is
/// freed in it: every page a run ever touched stays resident until it exits. Committed on
/// demand, freed pages go back to the system after the purge delay: W3 peaked at 101 MiB
/// instead of 152, W2 at 89 instead of 140, at no measurable cost in time (returning them at
/// once, with no delay, cost W1 20% more CPU). The arena is reserved by the first allocation,
/// before `main`, so a constructor that runs right after mimalloc's own sets the option.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00102")]
static COMMIT_ARENAS_ON_DEMAND: extern "C" fn() = commit_arenas_on_demand;

#[cfg(target_os = "linux")]
extern "C" fn commit_arenas_on_demand() {
    /// `mi_option_arena_eager_commit` in the vendored v3 `include/mimalloc.h`.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // The environment's setting, when there is one, still decides.
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: sets an integer option; mimalloc is initialised by its constructor (101).
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    }
}

/// Writes a line to stderr, or nothing when stderr is closed (`2>&-`, a pipe whose reader
/// ended): `eprintln!` would panic there, and a panic while handling one aborts the process,
/// losing the exit status the command decided.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn main() -> ExitCode {
    let cli = etl::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(etl::pool::THREAD_STACK_BYTES)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say(format_args!("error: cannot start: {e}"));
            return ExitCode::from(1);
        }
    };
    // A panic is a bug of ours: say so in one line, without a backtrace, and fail the command.
    std::panic::set_hook(Box::new(|info| {
        if !etl::panics::is_contained() {
            say(format_args!("error: internal error: {info}"));
        }
    }));
    // The command runs on a thread of its own with the workers' stack: planning a query of a
    // thousand conditions recurses deeper than a main thread's 8 MiB allows.
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(etl::pool::THREAD_STACK_BYTES)
            .spawn_scoped(scope, || runtime.block_on(etl::cli::run(cli)))
            .map_err(|e| say(format_args!("error: cannot start: {e}")))
            .and_then(|command| command.join().map_err(|_| ()))
    });
    let code = match outcome {
        Err(_) => ExitCode::from(1),
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) if error.kind() == etl::error::ErrorKind::OutputClosed => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            say(format_args!("error: {error}"));
            ExitCode::from(error.kind().exit_code() as u8)
        }
    };
    // The outcome is decided. Work it abandoned (a file reader of a failed query still waiting
    // on a retry) ends with the process rather than being waited for; a shut-down runtime
    // panics in whatever of it still runs, which says nothing about this command.
    std::panic::set_hook(Box::new(|_| {}));
    runtime.shutdown_background();
    code
}

//! `etl cluster scheduler|executor`: the two roles of an Apache Ballista cluster that runs
//! `etl`'s jobs (`--engine df://HOST:PORT`).

use clap::{Args, Subcommand};

use super::GlobalArgs;
use crate::config::parse_size;
use crate::error::Result;
use crate::transform::cluster::{self, DEFAULT_EXECUTOR_TIMEOUT_SECONDS, ExecutorOptions};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: it splits the jobs clients submit into tasks for its executors.
    Scheduler(SchedulerArgs),
    /// Run an executor: it registers with a scheduler and runs the tasks it is given.
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "HOST:PORT")]
    pub bind: String,
    /// Seconds without a heartbeat after which an executor is taken for lost and its tasks
    /// run elsewhere.
    #[arg(long, default_value_t = DEFAULT_EXECUTOR_TIMEOUT_SECONDS, value_name = "SECONDS")]
    pub executor_timeout: u64,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler's address.
    #[arg(long, value_name = "HOST:PORT")]
    pub scheduler: String,
    /// The address to listen on for other executors and clients fetching results (Arrow
    /// Flight); port 0 takes a free one.
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "HOST:PORT")]
    pub bind: String,
    /// The port of its control service (default: a free one).
    #[arg(long)]
    pub grpc_port: Option<u16>,
    /// Where it keeps shuffle files (default: a temporary folder).
    #[arg(long)]
    pub work_dir: Option<String>,
    /// Tasks at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub concurrency: usize,
    /// Memory its tasks share before they spill, e.g. 4G (default: most of the machine's).
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<usize>,
}

pub async fn run(args: ClusterArgs, _global: &GlobalArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Scheduler(args) => cluster::scheduler(&args.bind, args.executor_timeout).await,
        ClusterCommand::Executor(args) => {
            cluster::executor(ExecutorOptions {
                scheduler: args.scheduler,
                bind: args.bind,
                grpc_port: args.grpc_port,
                work_dir: args.work_dir,
                concurrency: args.concurrency,
                memory_limit: args.memory_limit.map(|bytes| bytes as u64),
            })
            .await
        }
    }
}

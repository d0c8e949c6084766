//! Running the same jobs on an Apache Ballista cluster: the two roles of the `etl` binary
//! (`etl cluster scheduler`, `etl cluster executor`), and the engine a session runs on.
//!
//! The client plans every query as it would locally (our catalog, our optimizer rules, the
//! pruned file lists) and hands the physical plan to the scheduler (`planner`); the plan
//! travels with our own nodes encoded by `codec`, which every role of the binary knows.
//! Inference, the catalog, checks' bookkeeping and the publication stay in the client.

pub mod codec;
pub mod planner;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use crate::error::{Error, Result};
use crate::location::stores::Registry;

/// Where a session's queries run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// In this process.
    #[default]
    Local,
    /// On the Ballista cluster whose scheduler listens at `host:port` (`df://host:port`).
    Cluster { scheduler: String },
}

impl Engine {
    /// The scheduler's gRPC address, as Ballista's client takes it.
    pub fn scheduler_url(&self) -> Option<String> {
        match self {
            Engine::Local => None,
            Engine::Cluster { scheduler } => Some(format!("http://{scheduler}")),
        }
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text == "local" {
            return Ok(Engine::Local);
        }
        let address = text
            .strip_prefix("df://")
            .ok_or_else(|| format!("unknown engine '{text}' (expected local or df://HOST:PORT)"))?
            .trim_end_matches('/');
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Engine::Cluster { scheduler: address.to_string() })
            }
            _ => Err(format!("engine '{text}': expected df://HOST:PORT, a scheduler's host and port")),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Cluster { scheduler } => write!(f, "df://{scheduler}"),
        }
    }
}

/// Splits `HOST:PORT`, naming the option in errors.
pub fn host_and_port(option: &str, text: &str) -> Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| Error::usage(format!("{option} '{text}': expected HOST:PORT")))?;
    let port = port.parse().map_err(|_| Error::usage(format!("{option} '{text}': '{port}' is not a port")))?;
    Ok((host.to_string(), port))
}

/// How often executors tell the scheduler they are alive, and how long the scheduler waits
/// before it takes an executor for lost and runs its tasks elsewhere (Ballista: 60 s and
/// 180 s, minutes of a batch job waiting on a dead machine).
pub const HEARTBEAT_SECONDS: u64 = 5;
pub const DEFAULT_EXECUTOR_TIMEOUT_SECONDS: u64 = 20;

/// The role's log on stderr, at RUST_LOG's level (warnings by default).
fn start_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

/// Runs a scheduler until the process is stopped.
pub async fn scheduler(bind: &str, executor_timeout_seconds: u64) -> Result<()> {
    start_log();
    let (host, port) = host_and_port("--bind", bind)?;
    let address = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Error::usage(format!("--bind {bind}: {e}")))?
        .next()
        .ok_or_else(|| Error::usage(format!("--bind {bind}: no address")))?;
    // Under two heartbeats, one late heartbeat would lose a live executor.
    if executor_timeout_seconds < 2 * HEARTBEAT_SECONDS {
        return Err(Error::usage(format!(
            "--executor-timeout {executor_timeout_seconds}: at least {} seconds (executors send a heartbeat every {HEARTBEAT_SECONDS} s)",
            2 * HEARTBEAT_SECONDS
        )));
    }
    let config = SchedulerConfig {
        bind_host: host.clone(),
        bind_port: port,
        external_host: host,
        executor_timeout_seconds,
        no_executors_grace_period_seconds: executor_timeout_seconds,
        expire_dead_executor_interval_seconds: HEARTBEAT_SECONDS,
        override_physical_codec: Some(Arc::new(codec::EtlCodec::default())),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(cluster_error)?;
    eprintln!("etl cluster scheduler listening on {address}");
    ballista_scheduler::scheduler_process::start_server(cluster, address, Arc::new(config)).await.map_err(cluster_error)
}

/// What an executor is started with.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: String,
    pub bind: String,
    /// Its gRPC port; a free one when not given.
    pub grpc_port: Option<u16>,
    pub work_dir: Option<String>,
    /// Tasks run at once; 0 means one per core.
    pub concurrency: usize,
    /// Bytes of memory its tasks share before they spill.
    pub memory_limit: Option<u64>,
}

/// Runs an executor until the process is stopped: it registers with the scheduler and runs
/// the tasks it is given, reading and writing through the same stores as the rest of `etl`.
pub async fn executor(options: ExecutorOptions) -> Result<()> {
    start_log();
    let (scheduler_host, scheduler_port) = host_and_port("--scheduler", &options.scheduler)?;
    let (host, port) = host_and_port("--bind", &options.bind)?;
    // Ballista tells the scheduler the ports it was given, so a port left to the system is
    // chosen here (executors bound on neighbouring ports must not meet on a default +1).
    let port = free_port_if_zero(&host, port)?;
    let grpc_port = free_port_if_zero(&host, options.grpc_port.unwrap_or(0))?;
    // Ballista logs a port it cannot bind and goes on (exit 0 in the end), and finds an
    // unusable work folder only when a task writes there: both are refused before it starts.
    if port == grpc_port {
        return Err(Error::usage(format!("--bind and --grpc-port both name port {port}: an executor needs two")));
    }
    for taken in [port, grpc_port] {
        std::net::TcpListener::bind((host.as_str(), taken))
            .map_err(|e| Error::runtime(format!("cluster executor: cannot listen on {host}:{taken}: {e}")))?;
    }
    if let Some(folder) = &options.work_dir {
        usable_work_dir(std::path::Path::new(folder))?;
    }
    await_scheduler(&scheduler_host, scheduler_port).await?;
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        external_host: advertised_host(&host),
        bind_host: host,
        port,
        grpc_port,
        scheduler_host,
        scheduler_port,
        vcores: if options.concurrency > 0 { options.concurrency } else { defaults.vcores },
        work_dir: options.work_dir.clone(),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        // Scheduler and executors may start in any order (services of a cluster do).
        scheduler_connect_timeout_seconds: SCHEDULER_CONNECT_SECONDS,
        memory_pool_size: options.memory_limit,
        override_runtime_producer: Some(Arc::new(|_config| {
            RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(Registry::default())).build_arc()
        })),
        override_physical_codec: Some(Arc::new(codec::EtlCodec::default())),
        override_function_registry: Some(Arc::new(executor_functions())),
        ..defaults
    };
    eprintln!(
        "etl cluster executor {} on {}:{} (gRPC {}), scheduler {}",
        config.executor_id, config.bind_host, config.port, config.grpc_port, options.scheduler
    );
    start_executor_process(Arc::new(config)).await.map_err(cluster_error)
}

/// The functions an executor finds by name: Ballista's registry holds DataFusion's core
/// ones only, and a plan calling an array or map function (`cardinality`, `tags[1]`) failed
/// on every executor.
fn executor_functions() -> ballista_core::registry::BallistaFunctionRegistry {
    let mut registry = ballista_core::registry::BallistaFunctionRegistry::default();
    for function in datafusion::functions_nested::all_default_nested_functions() {
        for name in function.aliases().iter().chain([&function.name().to_string()]) {
            registry.scalar_functions.insert(name.clone(), function.clone());
        }
    }
    registry
}

/// The address an executor gives the scheduler for itself. Bound on every interface (as in a
/// container, whose address is known only once it runs), it gives none: the scheduler then
/// uses the address the executor's registration came from.
fn advertised_host(bind_host: &str) -> Option<String> {
    match bind_host.parse::<std::net::IpAddr>() {
        Ok(address) if address.is_unspecified() => None,
        _ => Some(bind_host.to_string()),
    }
}

/// How long an executor keeps trying to reach its scheduler when it starts.
const SCHEDULER_CONNECT_SECONDS: u16 = 60;

/// Waits for the scheduler to take connections, for [`SCHEDULER_CONNECT_SECONDS`] at most
/// (Ballista's own connection retries outlast its timeout).
async fn await_scheduler(host: &str, port: u16) -> Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(SCHEDULER_CONNECT_SECONDS.into());
    loop {
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::runtime(format!(
                    "cluster executor: the scheduler at {host}:{port} could not be reached for {SCHEDULER_CONNECT_SECONDS} s: {e}"
                )));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

/// A folder the executor can write its shuffle files to, made if missing.
fn usable_work_dir(folder: &std::path::Path) -> Result<()> {
    let refused = |why: String| Error::usage(format!("--work-dir {}: {why}", folder.display()));
    std::fs::create_dir_all(folder).map_err(|e| refused(e.to_string()))?;
    tempfile::tempfile_in(folder).map(drop).map_err(|e| refused(format!("cannot write there: {e}")))
}

fn free_port_if_zero(host: &str, port: u16) -> Result<u16> {
    if port != 0 {
        return Ok(port);
    }
    let listener = std::net::TcpListener::bind((host, 0)).map_err(|e| Error::usage(format!("--bind {host}: {e}")))?;
    Ok(listener.local_addr()?.port())
}

fn cluster_error(error: ballista_core::error::BallistaError) -> Error {
    Error::runtime(format!("cluster: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_bound_on_every_interface_is_known_by_the_address_it_registers_from() {
        assert_eq!(advertised_host("0.0.0.0"), None);
        assert_eq!(advertised_host("10.0.0.6"), Some("10.0.0.6".to_string()));
        assert_eq!(advertised_host("executor-1.internal"), Some("executor-1.internal".to_string()));
    }
}

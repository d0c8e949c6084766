//! `etl serve`: the data API and console over the catalog, until SIGTERM; `etl serve keys
//! create|list|revoke`: who may call it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{GlobalArgs, print_json};
use crate::checks::parse_age;
use crate::config::home;
use crate::config::parse_size;
use crate::error::{Error, Result};
use crate::serve::keys::{Key, KeyStore};
use crate::serve::{DEFAULT_CACHE_TTL, Limits, ServeOptions};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The address to listen on (port 0: any free port, printed when listening).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Seconds a rows or query answer is reused while its tables are unchanged (0: no cache).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_CACHE_TTL.as_secs())]
    pub cache_ttl: u64,
    /// Queries at once (default: 2 per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrency: Option<u32>,
    /// Queries that may wait for a slot before more are refused with 429 (default: as many as
    /// --max-concurrency).
    #[arg(long, value_name = "N")]
    pub queue: Option<u32>,
    /// Rows a page or a query returns at most.
    #[arg(long, value_name = "N", default_value_t = Limits::default().row_cap as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub row_cap: u64,
    /// Seconds a query may run (a day at most: a request's own limit is this and some more).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().query_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub query_timeout: u64,
    /// Memory one query may use before it spills to disk, e.g. 512M or 2G.
    #[arg(long, value_parser = parse_size, default_value = "512M")]
    pub query_memory: usize,
    /// A folder of job files whose pipeline the console draws (repeatable).
    #[arg(long = "pipelines", value_name = "DIR")]
    pub pipelines: Vec<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Create, list or revoke the keys that requests carry.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once and stored only as a hash.
    Create {
        /// The key's name (letters, digits, '_' and '-'), as the access log shows it.
        #[arg(long)]
        name: String,
        /// The tables it may read: comma-separated patterns, like 'curated.*' ('*' for all).
        #[arg(long, value_name = "GLOB")]
        tables: String,
        /// How long it is valid, like 90d or 12h (default: until revoked).
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        expires: Option<Duration>,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke a key: its secret stops working at once.
    Revoke { name: String },
}

pub async fn run(args: ServeArgs, global: &GlobalArgs) -> Result<()> {
    match args.command {
        Some(ServeCommand::Keys { command }) => keys(command, global),
        None => serve(args.server, global).await,
    }
}

async fn serve(args: ServerArgs, global: &GlobalArgs) -> Result<()> {
    for dir in &args.pipelines {
        if !dir.is_dir() {
            return Err(Error::usage(format!("--pipelines {}: not a folder", dir.display())));
        }
    }
    let max_concurrency = args.max_concurrency.map_or_else(ServeOptions::default_concurrency, |n| n as usize);
    let options = ServeOptions {
        bind: args.bind,
        cache_ttl: Duration::from_secs(args.cache_ttl),
        max_concurrency,
        queue: args.queue.map_or(max_concurrency, |n| n as usize),
        limits: Limits {
            row_cap: args.row_cap as usize,
            query_timeout: Duration::from_secs(args.query_timeout),
            memory_limit: args.query_memory,
            ..Limits::default()
        },
        pipelines: args.pipelines,
        tls: args.tls_cert.zip(args.tls_key).map(|(cert, key)| crate::serve::Tls { cert, key }),
    };
    let catalog = global.catalog().await?;
    let json = global.json;
    let listening = move |url: String| {
        // Tests and scripts wait for this line rather than for a fixed time.
        eprintln!("etl serve: listening on {url}");
        if json {
            let _ = print_json(&serde_json::json!({ "url": url }));
        }
    };
    let stop = async {
        super::stop_signal().await;
        eprintln!("etl serve: stopping; finishing the requests in progress");
    };
    crate::serve::serve(catalog, home(), options, listening, stop).await
}

#[derive(Serialize)]
struct KeysJson {
    keys: Vec<Key>,
}

fn keys(command: KeysCommand, global: &GlobalArgs) -> Result<()> {
    let store = KeyStore::open(&home())?;
    let mut out = std::io::stdout().lock();
    match command {
        KeysCommand::Create { name, tables, expires } => {
            let created = store.create(&name, &tables, expires)?;
            if global.json {
                return print_json(&created);
            }
            writeln!(out, "{}", created.secret)?;
            if !global.quiet {
                eprintln!(
                    "key '{}' may read {}{}; the secret above is shown only now",
                    created.key.name,
                    created.key.tables.join(", "),
                    created.key.expires_at.as_deref().map(|t| format!(" until {t}")).unwrap_or_default()
                );
            }
        }
        KeysCommand::List => {
            let keys = store.list()?;
            if global.json {
                return print_json(&KeysJson { keys });
            }
            if keys.is_empty() {
                writeln!(out, "no keys")?;
            }
            for key in &keys {
                writeln!(
                    out,
                    "{:<20} {:<30} created {}  {}",
                    key.name,
                    key.tables.join(","),
                    key.created_at,
                    key.expires_at.as_deref().map_or("no expiry".to_string(), |t| format!("expires {t}"))
                )?;
            }
        }
        KeysCommand::Revoke { name } => {
            store.revoke(&name)?;
            if global.json {
                return print_json(&serde_json::json!({ "revoked": name }));
            }
            if !global.quiet {
                writeln!(out, "revoked key '{name}'")?;
            }
        }
    }
    Ok(())
}

//! Kafka Connect in standalone mode: `sluice connect-standalone WORKER
//! CONNECTOR...` reads Kafka's own configuration files and runs the file
//! source and sink connectors, converters, source offsets and the REST API.
//!
//! Layering: `data` and `json`/`converter` know nothing of Kafka clients;
//! `connector` defines what a connector is (`file_source`, `file_sink` are
//! its users); `worker` runs tasks through [`crate::client`]; `rest` drives
//! the worker.

pub mod config;
pub mod connector;
pub mod converter;
pub mod data;
mod file_sink;
mod file_source;
pub mod json;
mod offsets;
mod rest;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use worker::Worker;

/// Connect data that cannot be converted (Kafka's DataException).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// A configuration that cannot be used (Kafka's ConfigException).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `sluice connect-standalone` arguments (as `connect-standalone.sh`).
#[derive(clap::Args, Debug)]
pub struct StandaloneArgs {
    /// The worker's properties file (e.g. config/connect-standalone.properties).
    #[arg(value_name = "WORKER.properties")]
    pub worker: PathBuf,
    /// Connector configurations (.properties or .json).
    #[arg(value_name = "CONNECTOR.properties")]
    pub connectors: Vec<PathBuf>,
}

/// Runs the worker until SIGINT or SIGTERM, then stops every task, commits
/// and flushes offsets.
pub fn run_standalone(args: StandaloneArgs) -> anyhow::Result<()> {
    let props = config::read_properties(&args.worker)?;
    let worker_config = config::WorkerConfig::from_props(&props)
        .with_context(|| format!("in {}", args.worker.display()))?;
    let mut connectors = Vec::new();
    for path in &args.connectors {
        connectors.push(
            config::read_connector_file(path).with_context(|| format!("in {}", path.display()))?,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let flush_interval = Duration::from_millis(worker_config.offset_flush_interval_ms);
    let listeners = worker_config.rest_listeners.clone();
    let worker = Worker::new(worker_config);
    let rest = rest::start(worker.clone(), &listeners, stop.clone())?;
    for (props, path) in connectors.into_iter().zip(&args.connectors) {
        if let Err(e) = worker.add(props) {
            stop.store(true, Ordering::Relaxed);
            worker.shutdown();
            rest.join();
            return Err(anyhow::anyhow!("{e}")).with_context(|| format!("in {}", path.display()));
        }
    }
    tracing::info!("Kafka Connect standalone worker started");
    let mut last_flush = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last_flush.elapsed() >= flush_interval {
            worker.flush_offsets();
            last_flush = Instant::now();
        }
    }
    tracing::info!("Kafka Connect stopping");
    worker.shutdown();
    rest.join();
    tracing::info!("Kafka Connect stopped");
    Ok(())
}

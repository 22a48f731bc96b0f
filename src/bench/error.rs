//! Why a benchmark run stopped early. Each variant says what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("workload: {0}")]
    Workload(#[from] super::workload::WorkloadError),
    #[error("cannot reach broker at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("setting up topics: {0}")]
    Setup(String),
    #[error("broker {addr}: {api} failed: {reason}")]
    Broker {
        addr: String,
        api: &'static str,
        reason: String,
    },
    #[error("no response from broker {addr} to {api} within {timeout_ms} ms")]
    Timeout {
        addr: String,
        api: &'static str,
        timeout_ms: u64,
    },
    #[error("load generator runtime: {0}")]
    Runtime(String),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl BenchError {
    pub fn file(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        BenchError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

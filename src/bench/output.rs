//! The results directory: result.json, one .hgrm per latency, chart.svg.

use std::path::{Path, PathBuf};

use super::chart;
use super::error::BenchError;
use super::hgrm;
use super::result::RunResult;
use super::run::Outcome;

pub const RESULT_FILE: &str = "result.json";
pub const PUBLISH_HGRM: &str = "publish-latency.hgrm";
pub const E2E_HGRM: &str = "e2e-latency.hgrm";
pub const CHART_FILE: &str = "chart.svg";

/// `perf/results/<UTC timestamp>/`, the default output directory.
pub fn default_dir() -> PathBuf {
    let ts = super::run::rfc3339_now().replace(':', "-");
    PathBuf::from("perf/results").join(ts)
}

fn write(path: &Path, contents: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, contents).map_err(|e| BenchError::file(path, e))
}

pub fn save(dir: &Path, o: &Outcome) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::file(dir, e))?;
    let json = serde_json::to_vec_pretty(&o.result).map_err(|e| BenchError::file(dir, e))?;
    write(&dir.join(RESULT_FILE), &json)?;
    write(&dir.join(PUBLISH_HGRM), hgrm::write(&o.publish).as_bytes())?;
    write(&dir.join(E2E_HGRM), hgrm::write(&o.e2e).as_bytes())?;
    let svg = chart::render(&o.result, &o.publish, &o.e2e);
    write(&dir.join(CHART_FILE), svg.as_bytes())
}

/// Read a saved `result.json` (or the one inside a results directory).
pub fn load(path: &Path) -> Result<RunResult, BenchError> {
    let file = if path.is_dir() {
        path.join(RESULT_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| BenchError::file(&file, e))?;
    serde_json::from_str(&text)
        .map_err(|e| BenchError::file(&file, format!("not a sluice bench result: {e}")))
}

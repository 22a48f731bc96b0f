//! What a connector is: a plugin that checks its configuration, splits it
//! into task configurations, and starts source tasks (poll records with
//! their source offsets) or sink tasks (put records, flush). The worker
//! does the rest: converters, producing, consuming, offsets, REST.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use super::config::ConnectorConfig;
use super::data::{Schema, Value};
use super::{file_sink, file_source, ConfigError};

/// A task failed; the worker marks it FAILED with this as its trace.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TaskError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Sink,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Sink => "sink",
        }
    }
}

/// One record a source task produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The source partition (`{"filename": F}`); `None` when the source has
    /// no position to resume from (stdin).
    pub partition: Option<Json>,
    /// Where the source is after this record (`{"position": N}`).
    pub offset: Option<Json>,
    pub topic: String,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
}

/// One record handed to a sink task.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
}

pub trait SourceTask: Send {
    /// Records ready now, waiting up to about `wait` for some; empty when none.
    fn poll(&mut self, wait: Duration) -> Result<Vec<SourceRecord>, TaskError>;
}

pub trait SinkTask: Send {
    /// Takes records in offset order per partition.
    fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError>;
    /// Makes everything put so far durable: the worker commits the
    /// consumed offsets only after this returns.
    fn flush(&mut self) -> Result<(), TaskError>;
}

/// Task configuration: the connector's settings as the connector split them.
pub type TaskConfig = BTreeMap<String, String>;

pub trait Connector: Sync {
    /// Kafka's full class name (`org.apache.kafka.connect.file.FileStreamSourceConnector`).
    fn class(&self) -> &'static str;
    fn kind(&self) -> Kind;
    /// Checks the connector's own settings, naming the first bad one.
    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError>;
    /// The connector's own setting names (others are warned about).
    fn keys(&self) -> &'static [&'static str];
    /// At most `config.tasks_max` task configurations.
    fn task_configs(&self, config: &ConnectorConfig) -> Vec<TaskConfig>;
    /// Starts a source task; `stored` looks up the last flushed offset of a
    /// source partition.
    fn start_source(
        &self,
        _task: &TaskConfig,
        _stored: &dyn Fn(&Json) -> Option<Json>,
    ) -> Result<Box<dyn SourceTask>, TaskError> {
        Err(TaskError(format!(
            "{} is not a source connector",
            self.class()
        )))
    }
    fn start_sink(&self, _task: &TaskConfig) -> Result<Box<dyn SinkTask>, TaskError> {
        Err(TaskError(format!(
            "{} is not a sink connector",
            self.class()
        )))
    }
}

/// The connectors this build has.
pub static PLUGINS: [&dyn Connector; 2] =
    [&file_source::FileStreamSource, &file_sink::FileStreamSink];

/// The plugin named by its full class name, simple name, or simple name
/// without `Connector` (Kafka's aliases).
pub fn find(class: &str) -> Option<&'static dyn Connector> {
    let class = class.trim();
    PLUGINS.iter().copied().find(|p| {
        let full = p.class();
        let simple = full.rsplit('.').next().unwrap_or(full);
        class == full || class == simple || Some(class) == simple.strip_suffix("Connector")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_every_alias() {
        for name in [
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "FileStreamSourceConnector",
            "FileStreamSource",
        ] {
            assert_eq!(find(name).map(|p| p.kind()), Some(Kind::Source), "{name}");
        }
        assert_eq!(find("FileStreamSink").map(|p| p.kind()), Some(Kind::Sink));
        assert!(find("org.apache.kafka.connect.file.Other").is_none());
    }
}

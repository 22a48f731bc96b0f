//! `FileStreamSink`: appends each record's value to a file (or stdout) as a
//! line, as Kafka's task prints `record.value()`.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::config::ConnectorConfig;
use super::connector::{Connector, Kind, SinkRecord, SinkTask, TaskConfig, TaskError};
use super::data::Value;
use super::ConfigError;

pub struct FileStreamSink;

impl Connector for FileStreamSink {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSinkConnector"
    }

    fn kind(&self) -> Kind {
        Kind::Sink
    }

    fn keys(&self) -> &'static [&'static str] {
        &["file", "topics", "topics.regex"]
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        let has = |k| config.get(k).is_some_and(|v| !v.trim().is_empty());
        match (has("topics"), has("topics.regex")) {
            (true, true) => Err(ConfigError(
                "topics and topics.regex are mutually exclusive options, but both are set.".into(),
            )),
            (false, false) => Err(ConfigError(
                "Must configure one of topics or topics.regex".into(),
            )),
            _ => Ok(()),
        }
    }

    fn task_configs(&self, config: &ConnectorConfig) -> Vec<TaskConfig> {
        // Every task appends to the same file (each put is one write to a
        // file opened for appending, so tasks' lines never interleave).
        let mut task = TaskConfig::new();
        if let Some(f) = config.get("file") {
            task.insert("file".into(), f.to_string());
        }
        vec![task; config.tasks_max as usize]
    }

    fn start_sink(&self, task: &TaskConfig) -> Result<Box<dyn SinkTask>, TaskError> {
        let path = task
            .get("file")
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let file = match &path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        TaskError(format!(
                            "Couldn't find or create file '{}' for FileStreamSinkTask: {e}",
                            p.display()
                        ))
                    })?,
            ),
            None => None,
        };
        Ok(Box::new(FileSinkTask { path, file }))
    }
}

struct FileSinkTask {
    path: Option<PathBuf>,
    /// `None`: stdout.
    file: Option<File>,
}

impl FileSinkTask {
    fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or("stdout".into(), |p| p.display().to_string())
    }
}

impl SinkTask for FileSinkTask {
    fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        for r in records {
            match &r.value {
                // Raw bytes as they are (Java would print the array's identity).
                Value::Bytes(b) => out.extend_from_slice(b),
                v => out.extend_from_slice(v.to_string().as_bytes()),
            }
            out.push(b'\n');
        }
        let written = match &mut self.file {
            Some(f) => f.write_all(&out),
            None => std::io::stdout().lock().write_all(&out),
        };
        written.map_err(|e| TaskError(format!("cannot write to {}: {e}", self.name())))
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        let flushed = match &mut self.file {
            Some(f) => f.sync_data(),
            None => std::io::stdout().lock().flush(),
        };
        flushed.map_err(|e| TaskError(format!("cannot flush {}: {e}", self.name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::data::{Schema, Type};

    fn record(v: Value) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key_schema: None,
            key: Value::Null,
            value_schema: Some(Schema::of(Type::String)),
            value: v,
        }
    }

    #[test]
    fn appends_values_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "before\n").unwrap();
        let cfg: TaskConfig = [("file".to_string(), path.display().to_string())].into();
        let mut t = FileStreamSink.start_sink(&cfg).unwrap();
        t.put(&[
            record(Value::String("foo".into())),
            record(Value::Struct(vec![("a".into(), Value::Int32(1))])),
            record(Value::Null),
        ])
        .unwrap();
        t.flush().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "before\nfoo\nStruct{a=1}\nnull\n"
        );
    }

    #[test]
    fn an_unwritable_file_is_a_clear_error() {
        let cfg: TaskConfig = [("file".to_string(), "/nonexistent-dir/x.txt".to_string())].into();
        let e = FileStreamSink.start_sink(&cfg).err().unwrap();
        assert!(e.0.contains("Couldn't find or create file"), "{e}");
    }
}

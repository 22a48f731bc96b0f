//! `FileStreamSource`: one record per line of a file (or stdin), following
//! the file as lines are appended, resuming from the stored position.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::config::ConnectorConfig;
use super::connector::{Connector, Kind, SourceRecord, SourceTask, TaskConfig, TaskError};
use super::data::{Schema, Type, Value};
use super::ConfigError;

/// Kafka's `batch.size` default: lines per poll.
const DEFAULT_BATCH_SIZE: usize = 2000;
/// A line longer than this fails the task: a broker takes about 1 MiB per
/// record by default (`message.max.bytes`), so it could not be produced.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Bytes read from the file per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Lines of stdin read ahead of the task.
const STDIN_QUEUE_LINES: usize = 10_000;

pub struct FileStreamSource;

impl Connector for FileStreamSource {
    fn class(&self) -> &'static str {
        "org.apache.kafka.connect.file.FileStreamSourceConnector"
    }

    fn kind(&self) -> Kind {
        Kind::Source
    }

    fn keys(&self) -> &'static [&'static str] {
        &["file", "topic", "batch.size"]
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        let topic = config.get("topic").map(str::trim).unwrap_or("");
        if topic.is_empty() {
            return Err(ConfigError(
                "Missing required configuration \"topic\" which has no default value.".into(),
            ));
        }
        if topic.contains(',') {
            return Err(ConfigError(
                "'topic' configuration requires definition of a single topic".into(),
            ));
        }
        batch_size(config.get("batch.size"))?;
        Ok(())
    }

    fn task_configs(&self, config: &ConnectorConfig) -> Vec<TaskConfig> {
        // One file, one reader: Kafka's connector makes one task whatever tasks.max says.
        let mut task = TaskConfig::new();
        for key in self.keys() {
            if let Some(v) = config.get(key) {
                task.insert(key.to_string(), v.to_string());
            }
        }
        vec![task]
    }

    fn start_source(
        &self,
        task: &TaskConfig,
        stored: &dyn Fn(&Json) -> Option<Json>,
    ) -> Result<Box<dyn SourceTask>, TaskError> {
        let topic = task.get("topic").cloned().unwrap_or_default();
        let batch_size =
            batch_size(task.get("batch.size").map(String::as_str)).map_err(|e| TaskError(e.0))?;
        let file = task
            .get("file")
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty());
        let input = match &file {
            Some(name) => {
                let partition = json!({ "filename": name });
                let position = match stored(&partition) {
                    Some(offset) => match offset.get("position").and_then(Json::as_u64) {
                        Some(p) => p,
                        None => {
                            return Err(TaskError(format!(
                                "Unexpected offset value {offset} for file {name}: expected {{\"position\": N}}"
                            )))
                        }
                    },
                    None => 0,
                };
                if position > 0 {
                    tracing::info!("FileStreamSource: resuming {name} at byte {position}");
                }
                Input::File {
                    path: PathBuf::from(name),
                    partition,
                    file: None,
                    position,
                    waiting_logged: false,
                }
            }
            None => Input::Stdin(spawn_stdin_reader()),
        };
        Ok(Box::new(FileSourceTask {
            topic,
            batch_size,
            input,
            buf: Vec::new(),
        }))
    }
}

fn batch_size(raw: Option<&str>) -> Result<usize, ConfigError> {
    match raw {
        None => Ok(DEFAULT_BATCH_SIZE),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ConfigError(format!(
                "Invalid value {v} for configuration batch.size: must be a positive integer"
            ))),
        },
    }
}

enum Input {
    File {
        path: PathBuf,
        partition: Json,
        file: Option<File>,
        /// Byte offset after the last line handed out.
        position: u64,
        waiting_logged: bool,
    },
    Stdin(Receiver<std::io::Result<Vec<u8>>>),
}

struct FileSourceTask {
    topic: String,
    batch_size: usize,
    input: Input,
    /// Bytes read past `position` that do not end a line yet.
    buf: Vec<u8>,
}

/// Kafka's FileStreamSourceTask.extractLine: a line ends at `\n`, `\r` or
/// `\r\n`; a `\r` at the end of what was read waits for the next byte.
/// Returns the line and the bytes it used, terminator included.
pub fn extract_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    for (i, b) in buf.iter().enumerate() {
        match b {
            b'\n' => return Some((&buf[..i], i + 1)),
            b'\r' => {
                let next = buf.get(i + 1)?;
                let used = if *next == b'\n' { i + 2 } else { i + 1 };
                return Some((&buf[..i], used));
            }
            _ => {}
        }
    }
    None
}

impl FileSourceTask {
    fn record(&self, line: &[u8], partition: Option<&Json>, position: u64) -> SourceRecord {
        SourceRecord {
            partition: partition.cloned(),
            offset: partition.map(|_| json!({ "position": position })),
            topic: self.topic.clone(),
            key_schema: None,
            key: Value::Null,
            value_schema: Some(Schema::of(Type::String)),
            value: Value::String(String::from_utf8_lossy(line).into_owned()),
        }
    }

    fn poll_file(&mut self, wait: Duration) -> Result<Vec<SourceRecord>, TaskError> {
        let Input::File {
            path,
            partition,
            file,
            position,
            waiting_logged,
        } = &mut self.input
        else {
            unreachable!("poll_file on stdin")
        };
        if file.is_none() {
            match File::open(&*path) {
                Ok(mut f) => {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    if *position > len {
                        tracing::warn!(
                            "FileStreamSource: {} is shorter ({len} bytes) than its stored position {}; \
                             waiting for it to grow past that position",
                            path.display(),
                            position
                        );
                    }
                    f.seek(SeekFrom::Start(*position))
                        .map_err(|e| TaskError(format!("cannot seek {}: {e}", path.display())))?;
                    tracing::info!("FileStreamSource: reading {}", path.display());
                    *file = Some(f);
                    *waiting_logged = false;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !*waiting_logged {
                        tracing::warn!(
                            "Couldn't find file {} for FileStreamSourceTask, sleeping to wait for it to be created",
                            path.display()
                        );
                        *waiting_logged = true;
                    }
                    std::thread::sleep(wait);
                    return Ok(Vec::new());
                }
                Err(e) => {
                    return Err(TaskError(format!(
                        "cannot open {} for FileStreamSourceTask: {e}",
                        path.display()
                    )))
                }
            }
        }
        let f = file.as_mut().expect("opened above");
        let buf = &mut self.buf;
        let mut lines: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            // Hand out every complete line already read.
            while lines.len() < self.batch_size {
                let Some((line, used)) = extract_line(buf) else {
                    break;
                };
                *position += used as u64;
                lines.push((line.to_vec(), *position));
                buf.drain(..used);
            }
            if lines.len() >= self.batch_size {
                break;
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(TaskError(format!(
                    "line at byte {position} of {} is longer than {MAX_LINE_BYTES} bytes",
                    path.display()
                )));
            }
            let n = f
                .read(&mut chunk)
                .map_err(|e| TaskError(format!("cannot read {}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let partition = partition.clone();
        let records: Vec<SourceRecord> = lines
            .iter()
            .map(|(line, at)| self.record(line, Some(&partition), *at))
            .collect();
        if records.is_empty() {
            // At the end of the file: wait for lines to be appended (tail -f).
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
        Ok(records)
    }

    fn poll_stdin(&mut self, wait: Duration) -> Result<Vec<SourceRecord>, TaskError> {
        let Input::Stdin(lines) = &self.input else {
            unreachable!("poll_stdin on a file")
        };
        let mut out = Vec::new();
        let first = match lines.recv_timeout(wait) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => return Ok(out),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(wait);
                return Ok(out);
            }
        };
        let mut batch = vec![first];
        while batch.len() < self.batch_size {
            match lines.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        for line in batch {
            let line = line.map_err(|e| TaskError(format!("cannot read stdin: {e}")))?;
            out.push(self.record(&line, None, 0));
        }
        Ok(out)
    }
}

impl SourceTask for FileSourceTask {
    fn poll(&mut self, wait: Duration) -> Result<Vec<SourceRecord>, TaskError> {
        match self.input {
            Input::File { .. } => self.poll_file(wait),
            Input::Stdin(_) => self.poll_stdin(wait),
        }
    }
}

/// Reads stdin lines on their own thread (a read would block pause and stop).
fn spawn_stdin_reader() -> Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx): (SyncSender<_>, _) = std::sync::mpsc::sync_channel(STDIN_QUEUE_LINES);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        line.pop();
                    }
                    if tx.send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_end_as_kafka_ends_them() {
        assert_eq!(extract_line(b"ab\ncd"), Some((&b"ab"[..], 3)));
        assert_eq!(extract_line(b"ab\r\ncd"), Some((&b"ab"[..], 4)));
        assert_eq!(extract_line(b"ab\rcd"), Some((&b"ab"[..], 3)));
        // A trailing \r might be the first half of \r\n: wait.
        assert_eq!(extract_line(b"ab\r"), None);
        assert_eq!(extract_line(b"no end"), None);
    }

    fn task(file: &std::path::Path, stored: Option<u64>) -> Box<dyn SourceTask> {
        let cfg: TaskConfig = [
            ("file".to_string(), file.display().to_string()),
            ("topic".to_string(), "t".to_string()),
            ("batch.size".to_string(), "2".to_string()),
        ]
        .into();
        FileStreamSource
            .start_source(&cfg, &|_| stored.map(|p| json!({ "position": p })))
            .unwrap()
    }

    fn values(records: &[SourceRecord]) -> Vec<String> {
        records.iter().map(|r| r.value.to_string()).collect()
    }

    #[test]
    fn follows_the_file_and_resumes_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let wait = Duration::from_millis(1);
        let mut t = task(&path, None);
        // Not there yet: nothing, no failure.
        assert!(t.poll(wait).unwrap().is_empty());
        std::fs::write(&path, "foo\r\nbar\nbaz").unwrap();
        let first = t.poll(wait).unwrap();
        assert_eq!(values(&first), ["foo", "bar"]);
        assert_eq!(first[1].offset, Some(json!({"position": 9})));
        assert_eq!(
            first[1].partition,
            Some(json!({"filename": path.display().to_string()}))
        );
        // "baz" has no end yet.
        assert!(t.poll(wait).unwrap().is_empty());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"\nqux\n").unwrap();
        let next = t.poll(wait).unwrap();
        assert_eq!(values(&next), ["baz", "qux"]);
        assert_eq!(next[1].offset, Some(json!({"position": 17})));
        // A restart at the stored position re-reads nothing.
        let mut again = task(&path, Some(9));
        assert_eq!(values(&again.poll(wait).unwrap()), ["baz", "qux"]);
    }

    #[test]
    fn an_endless_line_fails_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, vec![b'x'; MAX_LINE_BYTES + READ_CHUNK_BYTES + 1]).unwrap();
        let mut t = task(&path, None);
        let e = t.poll(Duration::from_millis(1)).unwrap_err();
        assert!(e.0.contains("longer than"), "{e}");
    }
}

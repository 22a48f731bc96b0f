//! Source offsets in `offset.storage.file.filename`, as Kafka's
//! FileOffsetBackingStore keeps them: per connector, a source partition
//! (`{"filename":"test.txt"}`) maps to its offset (`{"position":N}`).
//!
//! The file is sluice's own JSON (Kafka writes Java serialization, which
//! sluice does not read): written whole to a temporary file, synced and
//! renamed over the old one, so a crash leaves the old or the new offsets,
//! never a mix. A file that cannot be read is moved aside and every source
//! starts from the beginning, saying so.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value as Json};

/// Version of the file's format.
const FORMAT_VERSION: u64 = 1;
/// Java serialization's magic: a file Apache Kafka wrote.
const JAVA_SERIALIZATION_MAGIC: [u8; 2] = [0xAC, 0xED];

/// (connector, source partition as compact JSON) -> offset.
type Offsets = BTreeMap<(String, String), Json>;

pub struct OffsetStore {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// What the file holds (or will once flushed).
    data: Offsets,
    /// Changed since the last flush.
    dirty: bool,
}

impl OffsetStore {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: &Path) -> OffsetStore {
        let data = match std::fs::read(path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(data) => data,
                Err(why) => {
                    let aside = path.with_extension("corrupt");
                    let moved = std::fs::rename(path, &aside).is_ok();
                    tracing::warn!(
                        "offset file {} {why}: every source connector starts from the beginning{}",
                        path.display(),
                        if moved {
                            format!(" (the file was moved to {})", aside.display())
                        } else {
                            String::new()
                        }
                    );
                    Offsets::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Offsets::new(),
            Err(e) => {
                tracing::warn!(
                    "cannot read offset file {}: {e}: every source connector starts from the beginning",
                    path.display()
                );
                Offsets::new()
            }
        };
        OffsetStore {
            path: path.to_path_buf(),
            state: Mutex::new(State { data, dirty: false }),
        }
    }

    /// The stored offset of `connector`'s source `partition`.
    pub fn get(&self, connector: &str, partition: &Json) -> Option<Json> {
        let key = (connector.to_string(), partition.to_string());
        self.lock().data.get(&key).cloned()
    }

    /// Records an acknowledged offset; written at the next flush.
    pub fn put(&self, connector: &str, partition: &Json, offset: Json) {
        let mut s = self.lock();
        s.data
            .insert((connector.to_string(), partition.to_string()), offset);
        s.dirty = true;
    }

    /// Writes the offsets if any changed.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut s = self.lock();
        if !s.dirty {
            return Ok(());
        }
        let entries: Vec<Json> = s
            .data
            .iter()
            .map(|((connector, partition), offset)| {
                let partition: Json = serde_json::from_str(partition).unwrap_or(Json::Null);
                json!({"connector": connector, "partition": partition, "offset": offset})
            })
            .collect();
        let text = json!({"version": FORMAT_VERSION, "offsets": entries}).to_string();
        write_atomically(&self.path, text.as_bytes())?;
        s.dirty = false;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking task thread must not take every other task's offsets with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn parse(bytes: &[u8]) -> Result<Offsets, String> {
    if bytes.starts_with(&JAVA_SERIALIZATION_MAGIC) {
        return Err(
            "was written by Apache Kafka (Java serialization), which sluice cannot read".into(),
        );
    }
    let json: Json = serde_json::from_slice(bytes).map_err(|e| format!("is corrupt ({e})"))?;
    if json["version"].as_u64() != Some(FORMAT_VERSION) {
        return Err(format!("has unknown format version {}", json["version"]));
    }
    let entries = json["offsets"]
        .as_array()
        .ok_or("is corrupt (no \"offsets\" array)")?;
    let mut out = Offsets::new();
    for e in entries {
        let connector = e["connector"]
            .as_str()
            .ok_or("is corrupt (an entry without \"connector\")")?;
        out.insert(
            (connector.to_string(), e["partition"].to_string()),
            e["offset"].clone(),
        );
    }
    Ok(out)
}

/// Temporary file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        d.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let part = json!({"filename": "test.txt"});
        let store = OffsetStore::open(&path);
        assert_eq!(store.get("src", &part), None);
        store.put("src", &part, json!({"position": 8}));
        store.flush().unwrap();
        let again = OffsetStore::open(&path);
        assert_eq!(again.get("src", &part), Some(json!({"position": 8})));
        assert_eq!(again.get("other", &part), None);
    }

    #[test]
    fn a_corrupt_file_starts_from_the_beginning_and_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        std::fs::write(&path, b"{\"version\":1,\"offs").unwrap();
        let store = OffsetStore::open(&path);
        assert_eq!(store.get("src", &json!({"filename": "a"})), None);
        assert!(dir.path().join("connect.corrupt").exists());
        std::fs::write(&path, [0xAC, 0xED, 0, 5]).unwrap();
        assert_eq!(
            OffsetStore::open(&path).get("src", &json!({"filename": "a"})),
            None
        );
    }
}

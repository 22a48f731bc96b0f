//! One segment: `.log` plus its sparse `.index` and `.timeindex`.

use std::io;
use std::path::{Path, PathBuf};

use super::appender::Appender;
use super::files::FileHandle;
use super::format::{self, OffsetEntry, TimeEntry};
use super::index::SegmentIndex;

pub struct Segment {
    pub base_offset: i64,
    pub dir: PathBuf,
    /// The `.log` file, through the shard's open-file cache; the active
    /// segment's writer appends through the same handle.
    pub file: FileHandle,
    /// Bytes of complete, written batches (what readers may see).
    pub size_bytes: u64,
    /// Offset after the last batch in this segment.
    pub next_offset: i64,
    pub index: SegmentIndex,
    /// Indexes of older segments are loaded on first use, so a clean restart
    /// does not read every index of a long log.
    pub index_loaded: bool,
    /// Wall-clock ms the segment was created; drives `segment.ms` rolls.
    pub created_ms: i64,
}

/// Write handles of the active segment.
pub struct SegmentWriter {
    pub log: Appender,
    pub index: Appender,
    pub time_index: Appender,
}

impl Segment {
    pub fn new(dir: &Path, base_offset: i64, file: FileHandle, created_ms: i64) -> Self {
        Self {
            base_offset,
            dir: dir.to_path_buf(),
            file,
            size_bytes: 0,
            next_offset: base_offset,
            index: SegmentIndex::new(base_offset),
            index_loaded: true,
            created_ms,
        }
    }

    pub fn path(&self, ext: &str) -> PathBuf {
        format::segment_file(&self.dir, self.base_offset, ext)
    }

    /// Load both index files; false if missing or inconsistent (then rebuild).
    pub fn load_indexes(&mut self) -> bool {
        let (Ok(o), Ok(t)) = (
            std::fs::read(self.path("index")),
            std::fs::read(self.path("timeindex")),
        ) else {
            return false;
        };
        const O: usize = format::OFFSET_INDEX_ENTRY_BYTES;
        const T: usize = format::TIME_INDEX_ENTRY_BYTES;
        // After an unclean stop the files end in the zero padding of their
        // last direct write (a clean close trims it): drop it.
        let (o, t) = (strip_zero_padding(&o, O), strip_zero_padding(&t, T));
        let offsets = o.chunks(O).map(OffsetEntry::decode).collect();
        let times = t.chunks(T).map(TimeEntry::decode).collect();
        self.index_loaded = self.index.adopt(offsets, times, self.size_bytes.max(1));
        self.index_loaded
    }
}

/// `buf` cut to whole entries, without trailing all-zero entries (padding,
/// or a zero-filled file: an all-zero entry says nothing an absent one does
/// not, and a zero timestamp would make retention think the segment ancient).
fn strip_zero_padding(buf: &[u8], entry: usize) -> &[u8] {
    let mut end = buf.len() / entry * entry;
    while end > 0 && buf[end - entry..end].iter().all(|b| *b == 0) {
        end -= entry;
    }
    &buf[..end]
}

/// Index entries not yet in the files, copied out so the write can run
/// without holding the log borrowed.
pub struct UnpersistedIndex {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl SegmentIndex {
    pub fn unpersisted(&self) -> UnpersistedIndex {
        UnpersistedIndex {
            offsets: self.offsets[self.offsets_persisted..].to_vec(),
            times: self.times[self.times_persisted..].to_vec(),
        }
    }

    pub fn mark_persisted(&mut self, u: &UnpersistedIndex) {
        self.offsets_persisted += u.offsets.len();
        self.times_persisted += u.times.len();
    }
}

impl UnpersistedIndex {
    pub fn offsets_len(&self) -> usize {
        self.offsets.len()
    }

    /// Append the entries to the index files.
    pub async fn write(&self, w: &mut SegmentWriter) -> io::Result<()> {
        const O: usize = format::OFFSET_INDEX_ENTRY_BYTES;
        const T: usize = format::TIME_INDEX_ENTRY_BYTES;
        w.index
            .append_with(self.offsets.len() * O, |d| {
                for (e, c) in self.offsets.iter().zip(d.chunks_mut(O)) {
                    c.copy_from_slice(&e.encode());
                }
            })
            .await?;
        w.time_index
            .append_with(self.times.len() * T, |d| {
                for (e, c) in self.times.iter().zip(d.chunks_mut(T)) {
                    c.copy_from_slice(&e.encode());
                }
            })
            .await
    }
}

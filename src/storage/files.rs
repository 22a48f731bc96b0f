//! Open segment files, bounded. Every segment file (log, index, time index)
//! is reached through a `FileHandle`; each shard keeps at most its share of
//! `sluice.log.open.files.max` descriptors open and closes the least recently
//! used one when it needs another. A closed file is opened again on its next
//! use, so an idle partition holds no descriptor at all.
//!
//! Kafka keeps every segment file open and asks for a high ulimit; at three
//! files per segment, 10,000 partitions alone exceed RLIMIT_NOFILE on
//! machines like these (hard limit 20,000), and the broker failed to create
//! them.
//!
//! The bound is on what the cache holds. A descriptor evicted while an I/O
//! on it is in flight closes when that I/O lets go of it, so the process may
//! briefly hold one more per operation in flight (bounded by the fetch and
//! commit concurrency limits).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::shard::io::DmaFile;

/// Fewest descriptors a shard's cache may be given: an append touches the
/// log and, now and then, both index files; a fetch one log.
pub const MIN_OPEN_FILES_PER_SHARD: usize = 8;

pub struct OpenFiles {
    capacity: usize,
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Use counter: larger is more recent.
    clock: u64,
    open: HashMap<u64, Open>,
    /// `clock` of last use -> handle id, oldest first.
    by_use: BTreeMap<u64, u64>,
    stats: FileStats,
}

struct Open {
    file: Rc<DmaFile>,
    used_at: u64,
}

/// What the cache did, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Descriptors the cache holds now.
    pub open: usize,
    /// open(2) calls made, first opens and reopens.
    pub opens: u64,
    /// Descriptors closed to make room.
    pub evictions: u64,
}

impl OpenFiles {
    pub fn new(capacity: usize) -> Rc<Self> {
        assert!(
            capacity >= MIN_OPEN_FILES_PER_SHARD,
            "open files per shard {capacity} < {MIN_OPEN_FILES_PER_SHARD}"
        );
        Rc::new(Self {
            capacity,
            inner: Default::default(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn stats(&self) -> FileStats {
        let i = self.inner.borrow();
        FileStats {
            open: i.open.len(),
            ..i.stats
        }
    }

    /// Open `path` (creating it if `create`) and return its handle. The file
    /// is opened now, so a missing file or a failed create is reported here.
    pub async fn open(self: &Rc<Self>, path: &Path, create: bool) -> io::Result<FileHandle> {
        let id = {
            let mut i = self.inner.borrow_mut();
            i.next_id += 1;
            i.next_id
        };
        let handle = FileHandle(Rc::new(HandleInner {
            id,
            path: path.to_path_buf(),
            files: self.clone(),
        }));
        self.load(id, path, create).await?;
        Ok(handle)
    }

    /// The open file of handle `id`, opening it (again) if it was closed.
    async fn get(&self, id: u64, path: &Path) -> io::Result<Rc<DmaFile>> {
        if let Some(file) = self.get_open(id) {
            return Ok(file);
        }
        // Reopened, never created: the file exists until its owner deletes it
        // (a read racing a retention delete must fail, not make an empty file).
        self.load(id, path, false).await
    }

    /// The file of handle `id` if it is open (marked as just used).
    fn get_open(&self, id: u64) -> Option<Rc<DmaFile>> {
        let mut i = self.inner.borrow_mut();
        i.clock += 1;
        let now = i.clock;
        let o = i.open.get_mut(&id)?;
        let before = std::mem::replace(&mut o.used_at, now);
        let file = o.file.clone();
        i.by_use.remove(&before);
        i.by_use.insert(now, id);
        Some(file)
    }

    async fn load(&self, id: u64, path: &Path, create: bool) -> io::Result<Rc<DmaFile>> {
        // Make room first, so the open below cannot be the one past the limit.
        self.evict_down_to(self.capacity - 1);
        let file = match DmaFile::open_rw(path, create).await {
            Err(e) if is_out_of_descriptors(&e) && !self.inner.borrow().open.is_empty() => {
                // Sockets or other processes took what the limit assumed was
                // free: give back an eighth of the cache and try once more.
                let keep = self.inner.borrow().open.len() * 7 / 8;
                tracing::warn!(file = %path.display(), open = keep, error = %e,
                    "out of file descriptors; closing least recently used segment files");
                self.evict_down_to(keep);
                DmaFile::open_rw(path, create).await?
            }
            r => r?,
        };
        let file = Rc::new(file);
        let mut i = self.inner.borrow_mut();
        i.stats.opens += 1;
        i.clock += 1;
        let now = i.clock;
        // Two tasks may have opened the same closed file at once: keep the
        // newer, the older closes when its task lets go of it.
        if let Some(old) = i.open.insert(
            id,
            Open {
                file: file.clone(),
                used_at: now,
            },
        ) {
            i.by_use.remove(&old.used_at);
        }
        i.by_use.insert(now, id);
        drop(i);
        self.evict_down_to(self.capacity);
        Ok(file)
    }

    fn evict_down_to(&self, keep: usize) {
        let mut i = self.inner.borrow_mut();
        while i.open.len() > keep {
            let (_, id) = i.by_use.pop_first().expect("by_use mirrors open");
            i.open.remove(&id);
            i.stats.evictions += 1;
        }
        debug_assert_eq!(i.open.len(), i.by_use.len());
    }

    fn close(&self, id: u64) {
        let mut i = self.inner.borrow_mut();
        if let Some(o) = i.open.remove(&id) {
            i.by_use.remove(&o.used_at);
        }
    }
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// One file reached through the shard's `OpenFiles`. Clones share it; when
/// the last clone goes, so does its descriptor.
#[derive(Clone)]
pub struct FileHandle(Rc<HandleInner>);

struct HandleInner {
    id: u64,
    path: PathBuf,
    files: Rc<OpenFiles>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.files.close(self.id);
    }
}

impl FileHandle {
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The cache this handle's descriptor lives in (for the segment's other
    /// files).
    pub fn files(&self) -> &Rc<OpenFiles> {
        &self.0.files
    }

    /// The open file, opened again if the cache had closed it. Hold the
    /// result only for the I/O at hand: while held, the descriptor stays
    /// open even if the cache lets go of it.
    pub async fn file(&self) -> io::Result<Rc<DmaFile>> {
        self.0.files.get(self.0.id, &self.0.path).await
    }

    /// The open file if the cache holds it open; `None` rather than open it
    /// again (for work that can as well be skipped).
    pub fn file_if_open(&self) -> Option<Rc<DmaFile>> {
        self.0.files.get_open(self.0.id)
    }

    /// Close the descriptor now (the segment is sealed, or its file is about
    /// to be deleted); the file itself stays, and the next use opens it.
    pub fn close(&self) {
        self.0.files.close(self.0.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors of this process open on files under `dir` (other tests
    /// run in the same process, so not all of them).
    fn open_fds_under(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_reopens_what_it_closed() {
        crate::shard::block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let files = OpenFiles::new(MIN_OPEN_FILES_PER_SHARD);
            let mut handles = Vec::new();
            for n in 0..40 {
                let path = dir.path().join(format!("{n}.log"));
                std::fs::write(&path, vec![n as u8; 4096]).unwrap();
                handles.push(files.open(&path, false).await.unwrap());
                assert!(files.stats().open <= MIN_OPEN_FILES_PER_SHARD);
            }
            assert_eq!(files.stats().open, MIN_OPEN_FILES_PER_SHARD);
            assert_eq!(
                files.stats().evictions,
                40 - MIN_OPEN_FILES_PER_SHARD as u64
            );
            // Every file reads back its own bytes, whether it was still open
            // or had to be opened again.
            for round in 0..2 {
                for (n, h) in handles.iter().enumerate() {
                    let f = h.file().await.unwrap();
                    let b = f.read_at(0, 4096).await.unwrap();
                    assert!(b.iter().all(|x| *x == n as u8), "file {n}, round {round}");
                    drop(f);
                    assert!(files.stats().open <= MIN_OPEN_FILES_PER_SHARD);
                }
            }
            // The most recently used stay: using them again opens nothing.
            let opens = files.stats().opens;
            for h in &handles[40 - MIN_OPEN_FILES_PER_SHARD..] {
                h.file().await.unwrap();
            }
            assert_eq!(files.stats().opens, opens);
            // `file_if_open` answers from the cache and never opens.
            assert!(handles[0].file_if_open().is_none(), "closed by the cache");
            assert!(handles[39].file_if_open().is_some());
            assert_eq!(files.stats().opens, opens);
            // Dropping handles closes their descriptors.
            handles.clear();
            assert_eq!(files.stats().open, 0);
        });
    }

    #[test]
    fn descriptors_are_really_closed_and_a_deleted_file_is_not_recreated() {
        crate::shard::block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let files = OpenFiles::new(MIN_OPEN_FILES_PER_SHARD);
            let mut handles = Vec::new();
            for n in 0..100 {
                let path = dir.path().join(format!("{n}.index"));
                handles.push(files.open(&path, true).await.unwrap());
            }
            // glommio closes a dropped descriptor on its next I/O cycle.
            crate::shard::sleep(std::time::Duration::from_millis(10)).await;
            let held = open_fds_under(dir.path());
            assert!(
                held <= MIN_OPEN_FILES_PER_SHARD,
                "{held} descriptors held for 100 files"
            );
            // A file deleted under a closed handle fails to reopen; it is
            // not created again empty.
            let gone = &handles[0];
            std::fs::remove_file(gone.path()).unwrap();
            let e = gone.file().await.err().expect("reopening a deleted file");
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert!(!gone.path().exists());
            drop(handles);
            crate::shard::sleep(std::time::Duration::from_millis(10)).await;
            assert_eq!(open_fds_under(dir.path()), 0);
        });
    }
}

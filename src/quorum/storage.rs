//! raft-rs `Storage` on disk: entries appended to `raft-entries.log` and
//! fsync'ed before `append` returns, hard and conf state replaced
//! atomically, snapshots in `.checkpoint` files, compaction by rewriting the
//! entries after the snapshot. Opening cuts a torn or corrupt tail and says
//! so. Everything is also kept in memory (the metadata log is small and
//! compacted), so raft-rs' reads never touch the disk.
//!
//! I/O here is plain blocking file I/O: metadata writes are rare, small and
//! happen on one shard.
//!
//! A full disk must not stop the metadata log (a broker that cannot record
//! its own election could not even restart to serve what it has): the
//! directory keeps `raft-reserve`, a file of zeros given back in slices when
//! a write finds no space, and refilled at start when there is space again.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

use super::format;
use crate::storage::replace::write_atomically;

/// Space held back for the metadata log on a full disk.
pub const RESERVE_FILE: &str = "raft-reserve";
pub const RESERVE_BYTES: u64 = 1 << 20;
/// Given back per write that found the disk full.
const RESERVE_SLICE_BYTES: u64 = 64 << 10;

struct Core {
    dir: PathBuf,
    file: File,
    /// Entries after the snapshot, in index order, and where each starts in
    /// the file.
    entries: Vec<Entry>,
    positions: Vec<u64>,
    file_len: u64,
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
}

/// Cheap to clone: raft-rs owns one handle, the driver keeps another.
#[derive(Clone)]
pub struct DiskStorage(Rc<RefCell<Core>>);

impl DiskStorage {
    /// Open (or create) the storage in `dir`.
    pub fn open(dir: &Path) -> io::Result<DiskStorage> {
        std::fs::create_dir_all(dir)?;
        refill_reserve(dir);
        let (hard_state, conf_state) = match std::fs::read(dir.join(format::STATE_FILE)) {
            Ok(b) => format::decode_state(&b).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(format::STATE_FILE).display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(e),
        };
        let snapshot = load_newest_snapshot(dir)?;
        let path = dir.join(format::ENTRIES_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        let (scanned, mut valid_end, stopped) = format::scan_entries(&buf);
        if let Some(why) = stopped {
            tracing::warn!(file = %path.display(), position = valid_end,
                bytes_cut = buf.len() - valid_end, error = %why,
                "metadata log: cut a torn or corrupt tail after the last valid entry");
            file.set_len(valid_end as u64)?;
            file.sync_all()?;
        }
        let snap_index = snapshot.get_metadata().index;
        let (mut positions, mut entries): (Vec<u64>, Vec<Entry>) = scanned
            .into_iter()
            .filter(|(_, e)| e.index > snap_index)
            .unzip();
        let mut hard_state = hard_state;
        // Frames are appended in index order and a conflict truncates first,
        // so the entries after the snapshot run without a gap. If they do not
        // (the snapshot they followed was lost or corrupt), they cannot be
        // used: drop them and catch up from the leader, saying so.
        let follows = entries.first().is_none_or(|e| e.index == snap_index + 1)
            && entries.windows(2).all(|w| w[1].index == w[0].index + 1);
        if !follows {
            tracing::error!(file = %path.display(), entries = entries.len(), snapshot_index = snap_index,
                "metadata log does not follow its snapshot; dropping its entries to catch up from the leader");
            entries.clear();
            positions.clear();
            file.set_len(0)?;
            file.sync_all()?;
            valid_end = 0;
        }
        // What was committed beyond what is left (entries cut, a snapshot
        // lost) must come again from the leader: raft-rs refuses a commit
        // index past the log.
        let last = entries.last().map_or(snap_index, |e| e.index);
        if hard_state.commit > last {
            tracing::warn!(
                commit = hard_state.commit,
                last_index = last,
                "metadata log ends before its commit index; catching up from the leader"
            );
            hard_state.commit = last;
            write_atomically(
                &dir.join(format::STATE_FILE),
                &format::encode_state(&hard_state, &conf_state),
            )?;
        }
        Ok(DiskStorage(Rc::new(RefCell::new(Core {
            dir: dir.to_path_buf(),
            file,
            entries,
            positions,
            file_len: valid_end as u64,
            hard_state,
            conf_state,
            snapshot,
        }))))
    }

    /// Start a new cluster: these voters, nothing else.
    pub fn initialize_voters(&self, voters: Vec<u64>) -> io::Result<()> {
        let mut c = self.0.borrow_mut();
        assert!(
            c.entries.is_empty() && c.snapshot.get_metadata().index == 0,
            "voters are set on a new log only"
        );
        c.conf_state = ConfState::from((voters, vec![]));
        c.persist_state()
    }

    /// Append entries from a `Ready`, replacing any conflicting suffix, and
    /// make them durable before returning.
    pub fn append(&self, new: &[Entry]) -> io::Result<()> {
        let Some(first) = new.first() else {
            return Ok(());
        };
        let mut c = self.0.borrow_mut();
        let snap_index = c.snapshot.get_metadata().index;
        assert!(
            first.index > snap_index,
            "append at {} below the snapshot at {snap_index}",
            first.index
        );
        let next = c.entries.last().map_or(snap_index + 1, |e| e.index + 1);
        assert!(
            first.index <= next,
            "append at {} leaves a gap after {}",
            first.index,
            next - 1
        );
        // Raft replaces a conflicting suffix: cut it from memory and file.
        let keep = (first.index - snap_index - 1) as usize;
        if keep < c.entries.len() {
            let cut_at = c.positions[keep];
            c.entries.truncate(keep);
            c.positions.truncate(keep);
            c.file.set_len(cut_at)?;
            c.file_len = cut_at;
        }
        let mut bytes = Vec::new();
        let mut at = c.file_len;
        let mut positions = Vec::with_capacity(new.len());
        for e in new {
            let frame = format::encode_entry(e);
            positions.push(at);
            at += frame.len() as u64;
            bytes.extend(frame);
        }
        // Memory follows the file only once the entries are durable; a
        // failed or partial write is cut before the next try.
        let (dir, len) = (c.dir.clone(), c.file_len);
        let file = &mut c.file;
        with_space(&dir, || {
            file.set_len(len)?;
            file.write_all(&bytes)?;
            file.sync_data()
        })?;
        c.positions.extend(positions);
        c.entries.extend(new.iter().cloned());
        c.file_len = at;
        Ok(())
    }

    pub fn set_hard_state(&self, hs: HardState) -> io::Result<()> {
        let mut c = self.0.borrow_mut();
        c.hard_state = hs;
        c.persist_state()
    }

    pub fn set_conf_state(&self, cs: ConfState) -> io::Result<()> {
        let mut c = self.0.borrow_mut();
        c.conf_state = cs;
        c.persist_state()
    }

    /// A snapshot from the leader (we were behind): it replaces the whole
    /// log, as raft-rs expects.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> io::Result<()> {
        self.store_snapshot(snapshot, false)
    }

    /// Our own snapshot after applying up to its index: it replaces the
    /// entries it covers; later ones stay.
    pub fn compact_with(&self, snapshot: Snapshot) -> io::Result<()> {
        self.store_snapshot(snapshot, true)
    }

    fn store_snapshot(&self, snapshot: Snapshot, keep_later: bool) -> io::Result<()> {
        let mut c = self.0.borrow_mut();
        let meta = snapshot.get_metadata().clone();
        if meta.index <= c.snapshot.get_metadata().index {
            return Ok(());
        }
        let name = format::snapshot_file_name(meta.index, meta.term);
        let encoded = format::encode_snapshot(&snapshot);
        with_space(&c.dir, || write_atomically(&c.dir.join(&name), &encoded))?;
        if c.hard_state.commit < meta.index {
            c.hard_state.commit = meta.index;
        }
        if c.hard_state.term < meta.term {
            c.hard_state.term = meta.term;
        }
        c.conf_state = meta.get_conf_state().clone();
        c.snapshot = snapshot;
        c.persist_state()?;
        c.compact_to(if keep_later { meta.index } else { u64::MAX })?;
        // Older snapshots are covered by this one.
        for (at, path) in snapshot_files(&c.dir) {
            if at < meta.index {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    pub fn hard_state(&self) -> HardState {
        self.0.borrow().hard_state.clone()
    }
}

impl Core {
    fn persist_state(&self) -> io::Result<()> {
        let bytes = format::encode_state(&self.hard_state, &self.conf_state);
        with_space(&self.dir, || {
            write_atomically(&self.dir.join(format::STATE_FILE), &bytes)
        })
    }

    /// Keep only entries after `index`: rewrite the file (atomically).
    fn compact_to(&mut self, index: u64) -> io::Result<()> {
        let keep_from = self.entries.partition_point(|e| e.index <= index);
        self.entries.drain(..keep_from);
        let mut bytes = Vec::new();
        self.positions.clear();
        for e in &self.entries {
            self.positions.push(bytes.len() as u64);
            bytes.extend(format::encode_entry(e));
        }
        let path = self.dir.join(format::ENTRIES_FILE);
        with_space(&self.dir, || write_atomically(&path, &bytes))?;
        self.file = OpenOptions::new().read(true).append(true).open(&path)?;
        self.file_len = bytes.len() as u64;
        Ok(())
    }

    fn first_index(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.get_metadata().index, |e| e.index)
    }
}

/// Run `op`; while it fails for want of space, give back a slice of the
/// reserve and try again.
fn with_space<T>(dir: &Path, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && release_reserve(dir) => {
                tracing::warn!(dir = %dir.display(),
                    "disk full: the metadata log used part of its reserved space");
            }
            r => return r,
        }
    }
}

/// Shrink the reserve by a slice; false if nothing is left to give.
fn release_reserve(dir: &Path) -> bool {
    let path = dir.join(RESERVE_FILE);
    let Ok(f) = OpenOptions::new().write(true).open(&path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return false;
    }
    f.set_len(len.saturating_sub(RESERVE_SLICE_BYTES)).is_ok() && f.sync_all().is_ok()
}

/// Bring the reserve back to its size, if the disk has the space (written,
/// not sparse: the space must really be held).
fn refill_reserve(dir: &Path) {
    let path = dir.join(RESERVE_FILE);
    let have = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if have >= RESERVE_BYTES {
        return;
    }
    let filled = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; (RESERVE_BYTES - have) as usize])?;
            f.sync_all()
        });
    if let Err(e) = filled {
        // Keep what was written; a later start tries again.
        tracing::warn!(file = %path.display(), error = %e,
            "cannot fill the metadata log's reserved space");
    }
}

fn snapshot_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let (index, _) = format::parse_snapshot_file_name(e.file_name().to_str()?)?;
            Some((index, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// The newest snapshot that reads back whole; unreadable ones are set aside.
fn load_newest_snapshot(dir: &Path) -> io::Result<Snapshot> {
    for (_, path) in snapshot_files(dir).into_iter().rev() {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| format::decode_snapshot(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::warn!(snapshot = %path.display(), error = %e,
                    "metadata snapshot unreadable; deleting it and using an older one");
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(Snapshot::default())
}

impl raft::Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.0.borrow();
        Ok(RaftState::new(c.hard_state.clone(), c.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let c = self.0.borrow();
        if low < c.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > c.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = c.first_index();
        let mut out = c.entries[(low - offset) as usize..(high - offset) as usize].to_vec();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let c = self.0.borrow();
        let snap = c.snapshot.get_metadata();
        if idx == snap.index {
            return Ok(snap.term);
        }
        if idx < c.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > c.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(c.entries[(idx - c.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.0.borrow().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let c = self.0.borrow();
        if c.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(c.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Config, RawNode, Storage};

    fn entry(index: u64, term: u64, data: &str) -> Entry {
        Entry {
            index,
            term,
            data: data.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    fn ctx() -> GetEntriesContext {
        GetEntriesContext::empty(false)
    }

    #[test]
    fn entries_and_state_survive_reopening_and_conflicts_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStorage::open(dir.path()).unwrap();
        s.initialize_voters(vec![1, 2, 3]).unwrap();
        s.append(&(1..=5).map(|i| entry(i, 1, "a")).collect::<Vec<_>>())
            .unwrap();
        // A new leader's entries from 3 on replace ours.
        s.append(&[entry(3, 2, "b"), entry(4, 2, "b")]).unwrap();
        let hs = HardState {
            term: 2,
            vote: 3,
            commit: 4,
            ..Default::default()
        };
        s.set_hard_state(hs.clone()).unwrap();
        drop(s);
        let s = DiskStorage::open(dir.path()).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 4));
        assert_eq!(s.term(3).unwrap(), 2);
        let got = s.entries(1, 5, None, ctx()).unwrap();
        assert_eq!(
            got.iter().map(|e| e.term).collect::<Vec<_>>(),
            vec![1, 1, 2, 2]
        );
        let st = s.initial_state().unwrap();
        assert_eq!(st.hard_state, hs);
        assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
        assert!(matches!(
            s.entries(1, 6, None, ctx()),
            Err(raft::Error::Store(StorageError::Unavailable))
        ));
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStorage::open(dir.path()).unwrap();
        s.append(&(1..=3).map(|i| entry(i, 1, "x")).collect::<Vec<_>>())
            .unwrap();
        drop(s);
        let path = dir.path().join(format::ENTRIES_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let torn = format::encode_entry(&entry(4, 1, "torn"));
        f.write_all(&torn[..torn.len() - 2]).unwrap();
        drop(f);
        let s = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(s.last_index().unwrap(), 3);
        // The file was cut: appending goes on cleanly after it.
        s.append(&[entry(4, 1, "y")]).unwrap();
        drop(s);
        let s = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(s.last_index().unwrap(), 4);
        assert_eq!(&s.entries(4, 5, None, ctx()).unwrap()[0].data[..], b"y");
    }

    #[test]
    fn snapshots_compact_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskStorage::open(dir.path()).unwrap();
        s.initialize_voters(vec![1]).unwrap();
        s.append(&(1..=10).map(|i| entry(i, 3, "z")).collect::<Vec<_>>())
            .unwrap();
        let mut snap = Snapshot {
            data: b"image at 6".to_vec().into(),
            ..Default::default()
        };
        snap.mut_metadata().index = 6;
        snap.mut_metadata().term = 3;
        snap.mut_metadata()
            .set_conf_state(ConfState::from((vec![1], vec![])));
        s.compact_with(snap.clone()).unwrap();
        assert_eq!(s.first_index().unwrap(), 7);
        assert_eq!(s.term(6).unwrap(), 3);
        assert!(matches!(
            s.entries(5, 8, None, ctx()),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        drop(s);
        let s = DiskStorage::open(dir.path()).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (7, 10));
        assert_eq!(s.snapshot(6, 0).unwrap(), snap);
        assert!(s.snapshot(8, 0).is_err());
        // A leader's snapshot replaces the whole log.
        let mut newer = snap.clone();
        newer.mut_metadata().index = 20;
        newer.mut_metadata().term = 4;
        s.apply_snapshot(newer).unwrap();
        assert_eq!(
            (s.first_index().unwrap(), s.last_index().unwrap()),
            (21, 20)
        );
        drop(s);
        // A corrupt newest snapshot is set aside for an older one (none is
        // left here): the entries no longer follow a snapshot, so they are
        // dropped to catch up from the leader, and the commit index with them.
        std::fs::write(
            dir.path().join(format::snapshot_file_name(20, 4)),
            b"garbage",
        )
        .unwrap();
        let s = DiskStorage::open(dir.path()).unwrap();
        s.append(&[entry(1, 5, "again")]).unwrap();
        let s2 = DiskStorage::open(dir.path()).unwrap();
        assert_eq!(
            (s2.first_index().unwrap(), s2.last_index().unwrap()),
            (1, 1)
        );
        assert_eq!(s2.initial_state().unwrap().hard_state.commit, 0);
    }

    /// raft-rs itself drives the storage: a one-voter cluster elects itself,
    /// commits proposals, and after a restart from disk knows all of it.
    #[test]
    fn raft_rs_runs_on_it_and_restarts_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let cfg = Config {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 1,
            ..Default::default()
        };
        let mut applied = Vec::new();
        {
            let s = DiskStorage::open(dir.path()).unwrap();
            s.initialize_voters(vec![1]).unwrap();
            let mut node = RawNode::new(&cfg, s.clone(), &logger).unwrap();
            node.campaign().unwrap();
            let mut proposed = false;
            for _ in 0..20 {
                if node.raft.state == raft::StateRole::Leader && !proposed {
                    for i in 0..3 {
                        node.propose(vec![], format!("record-{i}").into_bytes())
                            .unwrap();
                    }
                    proposed = true;
                }
                if !node.has_ready() {
                    continue;
                }
                let mut rd = node.ready();
                s.append(rd.entries()).unwrap();
                if let Some(hs) = rd.hs() {
                    s.set_hard_state(hs.clone()).unwrap();
                }
                for e in rd.take_committed_entries() {
                    if !e.data.is_empty() {
                        applied.push(String::from_utf8(e.data.to_vec()).unwrap());
                    }
                }
                let mut light = node.advance(rd);
                if let Some(commit) = light.commit_index() {
                    let mut hs = s.hard_state();
                    hs.commit = commit;
                    s.set_hard_state(hs).unwrap();
                }
                for e in light.take_committed_entries() {
                    if !e.data.is_empty() {
                        applied.push(String::from_utf8(e.data.to_vec()).unwrap());
                    }
                }
                node.advance_apply();
            }
            assert_eq!(applied, vec!["record-0", "record-1", "record-2"]);
        }
        let s = DiskStorage::open(dir.path()).unwrap();
        let node = RawNode::new(&cfg, s.clone(), &logger).unwrap();
        let last = s.last_index().unwrap();
        assert_eq!(
            node.raft.raft_log.committed, last,
            "every entry was committed"
        );
        let data: Vec<String> = s
            .entries(1, last + 1, None, ctx())
            .unwrap()
            .into_iter()
            .filter(|e| !e.data.is_empty())
            .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
            .collect();
        assert_eq!(data, applied);
    }
}

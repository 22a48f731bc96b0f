//! A partition's leader epochs (Kafka's `LeaderEpochFileCache`): each epoch
//! with the first offset written in it, oldest first, and the
//! `leader-epoch-checkpoint` file that holds them.
//!
//! The file has two kinds of writers. The shard thread writes it right
//! after a change, durably, before the records the change is about (as
//! Kafka's `assign` flushes before the batch is appended). Helper threads
//! write entries *ahead* of the change ([`LeaderEpochs::ahead`]), many
//! partitions' at once, so that a failover's new leaders, or a follower's
//! first records of a newer epoch, cost the shard no fsyncs; the shard takes
//! such an entry only once it is durable ([`LeaderEpochs::take_ahead`]).
//!
//! Both may write one partition's file at the same time (a metadata image
//! or a fetch arrives while a helper thread writes). They must not share
//! its temporary file unordered, and an older content must never replace a
//! newer one, or the file would lack an entry the cache has and a restart
//! would truncate by the wrong epochs. So every write carries the order key
//! of the content it puts in place, and writes take a per-file lock: one
//! older than what the file holds is dropped. Keys: the shard's content at
//! version `v` is `2v`, content written ahead of version `v` is `2v + 1`;
//! taking an ahead entry makes the version `v + 1`, whose writes (`2v + 2`)
//! order after it. The lock is contended only while a helper thread writes
//! that same partition's file, which happens only around leadership changes.

use std::io;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use super::format;
use super::replace::write_replacing;

pub struct LeaderEpochs {
    entries: Vec<(i32, i64)>,
    path: PathBuf,
    /// Bumped by every change of `entries`.
    version: u64,
    /// The order key of the content in the file; held while writing it.
    file: Arc<Mutex<u64>>,
}

/// Entries written ahead by [`LeaderEpochs::ahead`]: owned, so that a helper
/// thread writes them.
pub struct EpochsAhead {
    path: PathBuf,
    data: Vec<u8>,
    file: Arc<Mutex<u64>>,
    /// The version of the entries they extend.
    version: u64,
    /// The new entries.
    pub added: Vec<(i32, i64)>,
    /// The log end when they were taken (for the log to check it did not move).
    pub at: i64,
}

impl EpochsAhead {
    /// Put the file in place (fsync'd when `durable`). False when the file
    /// already holds a newer content: then these entries are stale, and
    /// [`LeaderEpochs::take_ahead`] would refuse them anyway.
    pub fn write(&self, durable: bool) -> io::Result<bool> {
        write_ordered(
            &self.file,
            2 * self.version + 1,
            &self.path,
            &self.data,
            durable,
        )
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

fn write_ordered(
    file: &Mutex<u64>,
    key: u64,
    path: &std::path::Path,
    data: &[u8],
    durable: bool,
) -> io::Result<bool> {
    // A writer that panicked left at worst a temporary file, which the next
    // write replaces: the key it guards is still right.
    let mut in_place = file.lock().unwrap_or_else(PoisonError::into_inner);
    if *in_place >= key {
        return Ok(false);
    }
    write_replacing(path, data, durable)?;
    *in_place = key;
    Ok(true)
}

impl LeaderEpochs {
    /// The entries `path` holds now (read by the caller), unchanged.
    pub fn loaded(path: PathBuf, entries: Vec<(i32, i64)>) -> Self {
        debug_assert!(increasing(&entries), "{entries:?}");
        LeaderEpochs {
            entries,
            path,
            version: 0,
            file: Arc::new(Mutex::new(0)),
        }
    }

    /// The latest epoch known (-1 if none).
    pub fn latest(&self) -> i32 {
        self.entries.last().map_or(-1, |(e, _)| *e)
    }

    /// Replace every entry and write the file (fsync'd when `durable`;
    /// otherwise the caller makes it durable).
    pub fn set(&mut self, entries: Vec<(i32, i64)>, durable: bool) -> io::Result<()> {
        assert!(
            increasing(&entries),
            "leader epochs out of order: {entries:?}"
        );
        self.entries = entries;
        self.changed(durable)
    }

    /// `epoch` starts at `offset`, if newer than every epoch known: written
    /// durably. False (and nothing written) when not newer.
    pub fn assign(&mut self, epoch: i32, offset: i64) -> io::Result<bool> {
        if self.latest() >= epoch {
            return Ok(false);
        }
        // An entry starting past `offset` covers no record (the log ends at
        // `offset`): dropped, as Kafka's `assign` drops conflicting entries.
        while let Some(&last) = self.entries.last().filter(|(_, s)| *s > offset) {
            tracing::warn!(file = %self.path.display(), dropped = ?last, epoch, offset,
                "leader epoch entry starting past a newer epoch's start dropped");
            self.entries.pop();
        }
        self.entries.push((epoch, offset));
        self.changed(true).map(|()| true)
    }

    /// Drop the entries that start at or past `end` (the log was cut
    /// there); written durably if any was. Kafka's `truncateFromEnd`.
    pub fn truncate_from_end(&mut self, end: i64) -> io::Result<bool> {
        let before = self.entries.len();
        self.entries.retain(|(_, s)| *s < end);
        if self.entries.len() == before {
            return Ok(false);
        }
        self.changed(true).map(|()| true)
    }

    fn changed(&mut self, durable: bool) -> io::Result<()> {
        self.version += 1;
        let data = format::encode_leader_epochs(&self.entries);
        // Not newer than the file only if the file holds entries written
        // ahead of a later version, which cannot be: taking them bumps the
        // version past theirs.
        let written = write_ordered(
            &self.file,
            2 * self.version,
            &self.path,
            data.as_bytes(),
            durable,
        )?;
        debug_assert!(written, "the shard's write is always the newest");
        Ok(())
    }

    /// The file with `added` appended (those newer than every epoch known,
    /// in increasing order, starting at or past `at`, the log end now), for
    /// a helper thread to write before the log takes them with
    /// [`Self::take_ahead`]. None if none is.
    pub fn ahead(
        &self,
        added: impl IntoIterator<Item = (i32, i64)>,
        at: i64,
    ) -> Option<EpochsAhead> {
        let mut latest = self.latest();
        let mut from = self.entries.last().map_or(at, |(_, s)| at.max(*s));
        let added: Vec<(i32, i64)> = added
            .into_iter()
            .filter(|&(e, s)| {
                let fits = e > latest && s >= from;
                if fits {
                    (latest, from) = (e, s);
                }
                fits
            })
            .collect();
        if added.is_empty() {
            return None;
        }
        let mut entries = self.entries.clone();
        entries.extend_from_slice(&added);
        debug_assert!(increasing(&entries), "{entries:?}");
        Some(EpochsAhead {
            path: self.path.clone(),
            data: format::encode_leader_epochs(&entries).into_bytes(),
            file: self.file.clone(),
            version: self.version,
            added,
            at,
        })
    }

    /// Take entries written ahead (their `write` returned true): only if
    /// nothing changed since they were taken. False otherwise: the caller
    /// then assigns what is still needed, which writes it again.
    pub fn take_ahead(&mut self, ahead: &EpochsAhead) -> bool {
        assert!(
            Arc::ptr_eq(&ahead.file, &self.file),
            "another partition's epochs"
        );
        if ahead.version != self.version {
            return false;
        }
        self.entries.extend_from_slice(&ahead.added);
        self.version += 1;
        true
    }

    /// Entries written ahead that are not taken (refused, or their write or
    /// syncfs failed): if the file may hold them (nothing wrote it since),
    /// write it again from the cache, so that it never holds an entry the
    /// cache lacks (a restart would trust it).
    pub fn forget_ahead(&mut self, ahead: &EpochsAhead) -> io::Result<()> {
        assert!(
            Arc::ptr_eq(&ahead.file, &self.file),
            "another partition's epochs"
        );
        if ahead.version != self.version {
            return Ok(());
        }
        self.changed(true)
    }
}

impl Deref for LeaderEpochs {
    type Target = [(i32, i64)];

    fn deref(&self) -> &[(i32, i64)] {
        &self.entries
    }
}

impl std::fmt::Debug for LeaderEpochs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entries.fmt(f)
    }
}

/// Epochs strictly increasing, start offsets never decreasing.
fn increasing(entries: &[(i32, i64)]) -> bool {
    entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(path: &std::path::Path) -> Vec<(i32, i64)> {
        format::decode_leader_epochs(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn cache(dir: &tempfile::TempDir) -> LeaderEpochs {
        let path = dir.path().join(format::LEADER_EPOCH_FILE);
        let mut e = LeaderEpochs::loaded(path, Vec::new());
        e.set(vec![(0, 0)], true).unwrap();
        e
    }

    /// The shard changed the entries while a helper thread was still to
    /// write entries taken ahead of the change: the helper's older content
    /// must not replace the shard's, and is not taken.
    #[test]
    fn entries_written_ahead_never_replace_a_newer_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        let ahead = e.ahead([(5, 10)], 10).unwrap();
        // Meanwhile a follower's batch of epoch 3 arrived (written at once).
        assert!(e.assign(3, 10).unwrap());
        assert!(
            !ahead.write(true).unwrap(),
            "an older content must be dropped"
        );
        assert_eq!(on_disk(ahead.path()), vec![(0, 0), (3, 10)]);
        assert!(!e.take_ahead(&ahead));
        assert_eq!(&*e, &[(0, 0), (3, 10)]);
    }

    /// Written ahead first, then the shard changed them before taking
    /// them: the shard's write comes last and stands; nothing is taken.
    #[test]
    fn a_change_after_the_write_ahead_replaces_it_and_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        let ahead = e.ahead([(5, 10)], 10).unwrap();
        assert!(ahead.write(true).unwrap());
        assert_eq!(on_disk(ahead.path()), vec![(0, 0), (5, 10)]);
        assert!(e.truncate_from_end(0).unwrap());
        assert_eq!(on_disk(ahead.path()), Vec::<(i32, i64)>::new());
        assert!(!e.take_ahead(&ahead));
        assert!(e.is_empty());
    }

    /// Written ahead, then not taken (the log moved, or the syncfs
    /// failed): the file goes back to what the cache holds.
    #[test]
    fn entries_written_ahead_and_not_taken_leave_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        let ahead = e.ahead([(5, 10)], 10).unwrap();
        assert!(ahead.write(true).unwrap());
        assert_eq!(on_disk(ahead.path()), vec![(0, 0), (5, 10)]);
        e.forget_ahead(&ahead).unwrap();
        assert_eq!(on_disk(ahead.path()), vec![(0, 0)]);
        assert!(!e.take_ahead(&ahead), "forgotten");
        // Forgetting entries the shard already wrote over writes nothing.
        let stale = e.ahead([(6, 10)], 10).unwrap();
        assert!(e.assign(2, 10).unwrap());
        assert!(!stale.write(true).unwrap());
        e.forget_ahead(&stale).unwrap();
        assert_eq!(on_disk(ahead.path()), vec![(0, 0), (2, 10)]);
    }

    /// Taken: the cache holds what the file holds, and later changes are
    /// written after it.
    #[test]
    fn taken_ahead_entries_are_the_files_and_later_writes_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        assert!(e.ahead([(0, 4)], 4).is_none(), "epoch 0 is known");
        // Only newer epochs, in order: (2, 5) is older than (4, 5).
        let ahead = e.ahead([(4, 5), (2, 5), (6, 9)], 5).unwrap();
        assert_eq!(ahead.added, vec![(4, 5), (6, 9)]);
        assert!(ahead.write(true).unwrap());
        assert!(e.take_ahead(&ahead));
        assert_eq!(&*e, on_disk(ahead.path()).as_slice());
        assert!(!e.assign(6, 12).unwrap(), "known");
        assert!(e.assign(7, 12).unwrap());
        assert_eq!(on_disk(ahead.path()), vec![(0, 0), (4, 5), (6, 9), (7, 12)]);
    }

    /// An entry that starts past a newer epoch's start covers no record:
    /// the newer epoch replaces it (as Kafka's `assign` does) rather than
    /// stopping the broker; entries written ahead never start before the
    /// log end or the last entry.
    #[test]
    fn a_newer_epoch_drops_entries_starting_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        e.set(vec![(0, 0), (4, 170), (5, 190)], true).unwrap();
        assert!(e.assign(6, 150).unwrap());
        assert_eq!(&*e, &[(0, 0), (6, 150)]);
        assert_eq!(
            on_disk(&dir.path().join(format::LEADER_EPOCH_FILE)),
            vec![(0, 0), (6, 150)]
        );
        let a = e.ahead([(7, 140), (8, 150), (9, 160)], 155).unwrap();
        assert_eq!(
            a.added,
            vec![(9, 160)],
            "before the log end or the last entry"
        );
    }

    /// Shard and helper threads writing one file at once leave it whole,
    /// holding the newest content.
    #[test]
    fn writers_on_many_threads_leave_the_newest_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = cache(&dir);
        for round in 1..50i32 {
            let ahead = e.ahead([(round * 2, round as i64 * 10)], 0).unwrap();
            let helper = std::thread::spawn(move || ahead.write(false).map(|_| ()));
            e.assign(round * 2 - 1, round as i64 * 10 - 1).unwrap();
            helper.join().unwrap().unwrap();
            assert_eq!(
                &*e,
                on_disk(&dir.path().join(format::LEADER_EPOCH_FILE)).as_slice()
            );
        }
    }
}

//! Kafka's `.lock` file: an exclusive `flock` on each log dir, held for the
//! life of the process, so a second broker started on the same data refuses
//! to start instead of recovering (and truncating) logs that are in use.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

/// Held lock; released when dropped (or when the process dies, however).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("log dir {dir} is in use by another broker{holder} (its {LOCK_FILE} is locked); stop that broker or give this one another log.dirs")]
    InUse { dir: String, holder: String },
    #[error("cannot lock log dir {dir}: {source}")]
    Io { dir: String, source: io::Error },
}

impl DirLock {
    /// Take `<dir>/.lock` or fail at once, naming the holder's pid if the
    /// file says it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own and keep open in `file` for as
        // long as the lock is meant to last; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(LockError::InUse {
                    dir: dir.display().to_string(),
                    holder,
                });
            }
            return Err(io_err(e));
        }
        // Ours now: say who holds it, for the next one's message.
        file.set_len(0).map_err(io_err)?;
        write!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(DirLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file, so a second open in the same
        // process conflicts just as another process would.
        let e = DirLock::acquire(dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, LockError::InUse { .. }), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}

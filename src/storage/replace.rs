//! Replacing a small file whole (checkpoints, snapshots, metadata): through
//! a temporary file and a rename, so that a reader or a crash sees the old
//! content or the new, never a torn one.

use std::path::PathBuf;

/// A file's new contents, to be put in place by [`write_replacing`], owned
/// so that a blocking thread can write it.
pub struct Replacement {
    pub path: PathBuf,
    pub data: Vec<u8>,
}

impl Replacement {
    /// Write it through a temporary file and a rename; `durable`: fsync'd.
    pub fn write(&self, durable: bool) -> std::io::Result<()> {
        write_replacing(&self.path, &self.data, durable)
    }
}

/// Replace `path` with `data` so that a crash leaves the old or the new file,
/// never a torn one.
pub fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    write_replacing(path, data, true)
}

/// Replace `path` with `data` through a temporary file and a rename, so a
/// reader sees the old content or the new, never a mix. `durable`: fsync'd,
/// file and directory, before returning; otherwise the caller makes it
/// durable (a syncfs covering many files).
pub fn write_replacing(path: &std::path::Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    if durable {
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

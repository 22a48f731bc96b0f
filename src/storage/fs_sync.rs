//! One device flush for a whole commit round: `syncfs(2)` on the log dir's
//! file system in place of one fdatasync per partition, when a round has
//! many partitions to sync (`sluice.log.sync.filesystem.min.partitions`).
//!
//! Why it is as durable as the fdatasyncs it replaces. Every log write is
//! O_DIRECT: when it completes, its bytes are at the device (perhaps in its
//! volatile cache) and no page cache holds them. An fdatasync then adds the
//! metadata the data needs (allocation, file size) and a device cache flush.
//! syncfs writes back every dirty inode, page and metadata block of the file
//! system, and ext4's `sync_fs` then flushes the device cache whether or not
//! anything was written ("Data writeback is possible w/o journal
//! transaction, so barrier must being sent at the end of the function",
//! `ext4_sync_fs` in fs/ext4/super.c). Not every file system promises that
//! flush: XFS's `sync_fs` forces its log, which flushes the cache only when
//! the log had something to write, so a round of pure overwrites could stay
//! in the device's cache. Hence ext4 only, read from /proc/self/mountinfo.
//! And syncfs reports errors only since Linux 5.8 (before, `sync_fs`'s
//! result was dropped), so older kernels keep the fdatasyncs.
//!
//! Why: a device flush costs the same for one file as for fifty. On the
//! 2-core VM, 50 files each given a 4 KiB O_DIRECT write and then an
//! fdatasync each (all concurrently) made 34 device flushes a round and
//! 257 rounds/s; one syncfs made one flush a round and 499 rounds/s.
//!
//! The cost: syncfs also writes other processes' dirty data on that file
//! system, so the log dir should be on a file system of its own, as Kafka
//! advises for its log dirs.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kernel whose syncfs first reports errors (write-back errors since
/// the descriptor was opened, and the file system's `sync_fs` result).
const SYNCFS_REPORTS_ERRORS_SINCE: (u32, u32) = (5, 8);

pub struct FsSync {
    dir: Arc<std::fs::File>,
    path: PathBuf,
}

impl FsSync {
    /// `Some` when one syncfs on `dir`'s file system is a sound replacement
    /// for fdatasyncs of files in it; otherwise why not.
    pub fn for_dir(dir: &Path) -> Result<FsSync, String> {
        let dir_path = dir
            .canonicalize()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let kernel = kernel_version().ok_or("the kernel version is unknown")?;
        if kernel < SYNCFS_REPORTS_ERRORS_SINCE {
            return Err(format!(
                "Linux {}.{} (syncfs reports errors from {}.{})",
                kernel.0, kernel.1, SYNCFS_REPORTS_ERRORS_SINCE.0, SYNCFS_REPORTS_ERRORS_SINCE.1
            ));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let fs_type = fs_type_of(&mountinfo, &dir_path)
            .ok_or_else(|| format!("no mount holds {}", dir_path.display()))?;
        if fs_type != "ext4" {
            return Err(format!("{} is on {fs_type}, not ext4", dir_path.display()));
        }
        let f =
            std::fs::File::open(&dir_path).map_err(|e| format!("{}: {e}", dir_path.display()))?;
        Ok(FsSync {
            dir: Arc::new(f),
            path: dir_path,
        })
    }

    /// The same file system through a descriptor of its own. syncfs reports
    /// a write-back error once per descriptor (to the first caller after
    /// it), and only errors since the descriptor was opened: one opened
    /// before some writes, and synced by one caller alone, reports theirs.
    pub fn reopen(&self) -> io::Result<FsSync> {
        Ok(FsSync {
            dir: Arc::new(std::fs::File::open(&self.path)?),
            path: self.path.clone(),
        })
    }

    /// Whatever the file system (tests of the callers).
    #[cfg(test)]
    pub fn of_any_file_system(dir: &Path) -> FsSync {
        FsSync {
            dir: Arc::new(std::fs::File::open(dir).unwrap()),
            path: dir.to_path_buf(),
        }
    }

    /// Write back and flush everything on the file system, on the shard's
    /// helper thread (io_uring has no syncfs).
    pub async fn sync(&self) -> io::Result<()> {
        let dir = self.dir.clone();
        crate::shard::run_blocking(move || {
            // SAFETY: syncfs only reads its descriptor argument, and `dir`
            // (moved into this closure) keeps that descriptor open for the
            // call. A closed or reused descriptor would fail with EBADF or
            // sync another file system; `sync_reaches_the_device` checks
            // the call succeeds on a live one.
            let r = unsafe { libc::syncfs(dir.as_raw_fd()) };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
        .await
    }
}

/// The running kernel's (major, minor), from `uname -r`'s text in /proc.
fn kernel_version() -> Option<(u32, u32)> {
    parse_kernel_version(&std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The file system type of the mount that holds `path` (canonical): the
/// mount whose point is the longest prefix of it, the last such line when
/// one is mounted over another.
fn fs_type_of(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
        let (left, right) = line.split_once(" - ")?;
        let mount_point = unescape(left.split(' ').nth(4)?);
        let fs_type = right.split(' ').next()?;
        if path.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fs_type.to_string()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 22 0:26 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw
31 22 0:27 / /data rw shared:6 - xfs /dev/vdb rw
32 31 253:2 / /data/kafka\\040logs rw shared:7 - ext4 /dev/vdc rw
33 22 0:28 / /tmp rw shared:8 - ext4 /dev/vdd rw
";

    #[test]
    fn the_longest_mount_point_holding_the_path_wins() {
        let t = |p: &str| fs_type_of(MOUNTINFO, Path::new(p));
        assert_eq!(t("/var/lib/sluice").as_deref(), Some("ext4"));
        assert_eq!(t("/data/x").as_deref(), Some("xfs"));
        // An escaped space in the mount point; a sibling sharing a prefix is
        // not under it.
        assert_eq!(t("/data/kafka logs/p-0").as_deref(), Some("ext4"));
        assert_eq!(t("/data/kafka logsx").as_deref(), Some("xfs"));
        // Mounted over: the later line is what the path sees.
        assert_eq!(t("/tmp/d").as_deref(), Some("ext4"));
        assert_eq!(fs_type_of("", Path::new("/x")), None);
    }

    #[test]
    fn kernel_versions_parse_and_order() {
        assert_eq!(parse_kernel_version("6.18.0-1-amd64\n"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.8-rc1"), Some((5, 8)));
        assert!(parse_kernel_version("5.4.0").unwrap() < SYNCFS_REPORTS_ERRORS_SINCE);
        assert!(parse_kernel_version("5.10.0").unwrap() >= SYNCFS_REPORTS_ERRORS_SINCE);
        assert_eq!(parse_kernel_version("garbage"), None);
    }

    #[test]
    fn sync_reaches_the_device() {
        let dir = std::env::temp_dir().join(format!("sluice-fs-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Whatever the file system here, the call itself must work on a live
        // descriptor (it is only used when `for_dir` accepts the dir).
        let s = FsSync::of_any_file_system(&dir);
        crate::shard::block_on(async { s.sync().await }).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let why = FsSync::for_dir(&dir).err().expect("a dir that is gone");
        assert!(why.contains("sluice-fs-sync"), "{why}");
    }
}

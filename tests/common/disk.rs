//! A real filesystem the test can break: ext4 on a loop device over a file,
//! mounted on a broker's (empty) data dir. `fail` shuts the filesystem down
//! (EXT4_IOC_SHUTDOWN, as xfstests simulate a dead disk): from then on every
//! read, write and fsync on it fails with EIO. `repair` unmounts and mounts
//! it again, as after replacing a cable: what reached the disk before the
//! failure is there.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LoopDisk {
    image: tempfile::NamedTempFile,
    dev: String,
    mount: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {}: {} (this test makes a loop device and needs root, as CI has)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl LoopDisk {
    /// An ext4 filesystem of `size_mib` MiB mounted on `dir`.
    pub fn mount(dir: &Path, size_mib: u64) -> LoopDisk {
        let image = tempfile::Builder::new()
            .prefix("sluice-disk-")
            .tempfile()
            .expect("image file");
        image.as_file().set_len(size_mib << 20).unwrap();
        let path = image.path().to_str().unwrap().to_string();
        let dev = run("losetup", &["-f", "--show", &path]);
        run("mkfs.ext4", &["-q", &dev]);
        let d = LoopDisk {
            image,
            dev,
            mount: dir.to_path_buf(),
        };
        d.mount_again();
        d
    }

    fn mount_again(&self) {
        run("mount", &[&self.dev, self.mount.to_str().unwrap()]);
    }

    /// The disk dies: every I/O on the filesystem fails with EIO from now on.
    pub fn fail(&self) {
        // _IOR('X', 125, __u32): EXT4_IOC_SHUTDOWN (XFS's GOINGDOWN).
        const EXT4_IOC_SHUTDOWN: libc::c_ulong =
            (2 << 30) | (4 << 16) | ((b'X' as libc::c_ulong) << 8) | 125;
        // Do not even flush the journal: a disk that stopped answering.
        const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
        let dir = File::open(&self.mount).expect("open mount point");
        let flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: the ioctl reads one u32 from the pointer, which points at
        // a live local; the fd is an open directory on the ext4 filesystem.
        let rc = unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_SHUTDOWN, &flags as *const u32) };
        assert_eq!(
            rc,
            0,
            "EXT4_IOC_SHUTDOWN: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Unmount and mount again (the journal is replayed).
    pub fn repair(&self) {
        run("umount", &[self.mount.to_str().unwrap()]);
        self.mount_again();
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = &self.image; // removed after the device lets go of it
    }
}

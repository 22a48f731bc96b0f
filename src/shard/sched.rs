//! The shard threads' CPU scheduling: a short EEVDF slice.
//!
//! A shard sleeps in io_uring until a completion, a connection or another
//! shard wakes it. Pinned to its core, it cannot be moved elsewhere when that
//! core is running something else (a client, another process): it waits for
//! the running task's slice to end, measured at up to 4 ms per cross-shard
//! hop (perf/results, W4). Since Linux 6.12 a SCHED_OTHER thread may ask for
//! a shorter slice (`sched_attr.sched_runtime`, 0.1-100 ms); a task with a
//! shorter slice gets an earlier virtual deadline when it wakes, so it
//! preempts the running one instead of waiting behind it. Its share of the
//! CPU is unchanged (same weight); it only runs in shorter turns.

use std::io;

/// Ask for a slice of `slice_us` microseconds for the calling thread,
/// keeping its policy (SCHED_OTHER) and nice value. Older kernels ignore
/// the field (and the call succeeds); read it back with `slice_us()`.
pub fn set_slice_us(slice_us: u64) -> io::Result<()> {
    // getpriority returns -1 both for nice -1 and for errors: clear errno.
    // SAFETY: errno is this thread's; getpriority has no memory arguments.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        n
    };
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: slice_us * 1000,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `attr` is a valid, fully initialised sched_attr whose `size`
    // says how many bytes the kernel may read; pid 0 is the calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0,
            &attr as *const libc::sched_attr,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's slice in microseconds, as the kernel reports it
/// (0 where the kernel has no per-thread slice).
pub fn slice_us() -> io::Result<u64> {
    let mut attr = std::mem::MaybeUninit::<libc::sched_attr>::zeroed();
    // SAFETY: the kernel writes at most `size` (the last argument) bytes
    // into `attr`, which is that large and zero-initialised.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            attr.as_mut_ptr(),
            std::mem::size_of::<libc::sched_attr>() as u32,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised and then filled by the kernel: every field
    // is a plain integer, valid for any bits.
    let attr = unsafe { attr.assume_init() };
    Ok(attr.sched_runtime / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_the_slice_it_asks_for_and_keeps_its_nice_value() {
        // A thread of its own: the slice stays with the thread that asked.
        std::thread::spawn(|| {
            let before = slice_us().unwrap();
            // SAFETY: plain syscall on the calling thread, no pointers.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            set_slice_us(300).unwrap();
            // SAFETY: as above.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, nice);
            if before == 0 {
                eprintln!("this kernel reports no per-thread slice (before 6.12): not checked");
                return;
            }
            assert_eq!(slice_us().unwrap(), 300);
            set_slice_us(100).unwrap();
            assert_eq!(slice_us().unwrap(), 100);
        })
        .join()
        .unwrap();
        // Other threads keep the default.
        assert_ne!(slice_us().unwrap(), 300);
    }
}

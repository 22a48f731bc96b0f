//! The process allocator: the system allocator, except that huge requests are
//! served by reserving address space instead of memory.
//!
//! Why: kafka-protocol 0.18 decodes an array by `Vec::with_capacity(n)` with
//! `n` taken from the wire before checking the bytes exist, so a 60-byte frame
//! claiming 2^32 elements asks for hundreds of GiB, malloc refuses, and Rust
//! aborts the whole broker. Reserving (MAP_NORESERVE) never fails for such a
//! request and costs nothing until pages are touched; the decoder then runs
//! out of frame bytes after touching at most the frame's worth of elements,
//! fails cleanly, and the reservation is returned. Remove this once the codec
//! bounds array lengths by the remaining bytes.

use std::alloc::{GlobalAlloc, Layout, System};

pub struct Allocator;

/// Requests at least this large are reserved with mmap.
const RESERVE_THRESHOLD_BYTES: usize = 1 << 30;
const PAGE_BYTES: usize = 4096;

fn reserved(layout: &Layout) -> bool {
    layout.size() >= RESERVE_THRESHOLD_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY: small requests go to `System` unchanged; large ones get page-aligned
// private anonymous mappings of exactly `size` bytes, unmapped with the same
// size, which satisfies any alignment up to a page.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserved(&layout) {
            return System.alloc(layout);
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            layout.size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p as *mut u8
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if reserved(&layout) {
            libc::munmap(ptr as *mut libc::c_void, layout.size());
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if !reserved(&layout) && !reserved(&new_layout) {
            return System.realloc(ptr, layout, new_size);
        }
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_capacity_is_reserved_not_fatal() {
        // 300 GiB of capacity: would abort with the plain system allocator.
        let v: Vec<u64> = Vec::with_capacity(300 << 27);
        assert!(v.capacity() >= 300 << 27);
    }
}

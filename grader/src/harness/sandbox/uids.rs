//! One uid per grade: grades that run at the same time on this machine (two
//! grader processes, or `grade-class -j N` in one) never share a uid, so
//! whatever one graded program leaves readable, writable or signalable is
//! out of reach of another grade's.
//!
//! A grade takes the first free slot `N` and runs its programs as
//! `GUEST_UID + N`. A slot is held by an exclusive `flock` on a file of a
//! root-only folder, which the kernel releases when the holder closes it or
//! dies: a crashed grader never leaks its slot.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use rustix::fs::FlockOperation;

/// How many grades may run at once as root on one machine.
pub const SLOTS: u32 = 256;

/// Where the slot locks live: a folder only root may write.
const LOCK_FOLDER: &str = "/run/socket-labs/uids";

/// A uid slot, held until dropped.
#[derive(Debug)]
pub struct UidSlot {
    index: u32,
    _lock: fs::File,
}

impl UidSlot {
    /// Takes the first free slot.
    pub fn take() -> io::Result<UidSlot> {
        let folder = Path::new(LOCK_FOLDER);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)?;
        let meta = fs::symlink_metadata(folder)?;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "{LOCK_FOLDER} must be a folder that only root may write"
            )));
        }
        for index in 0..SLOTS {
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(folder.join(index.to_string()))?;
            if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Ok(UidSlot { index, _lock: lock });
            }
        }
        Err(io::Error::other(format!(
            "all {SLOTS} guest uids are taken by grades running now"
        )))
    }

    /// The slot's index, added to the first guest uid and gid.
    pub fn index(&self) -> u32 {
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_grades_at_once_never_share_a_slot() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let first = UidSlot::take().unwrap();
        let second = UidSlot::take().unwrap();
        assert_ne!(first.index(), second.index());
        let freed = first.index();
        drop(first);
        let third = UidSlot::take().unwrap();
        assert!(third.index() <= freed.max(second.index()));
        assert_ne!(third.index(), second.index());
    }
}

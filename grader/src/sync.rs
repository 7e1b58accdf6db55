//! Locks that outlive a panic: the one way the grader takes a lock.

use std::sync::{LockResult, PoisonError};

/// The value of a lock's result whether or not a thread panicked while
/// holding the lock: `mutex.lock().unpoison()`, `condvar.wait(guard).unpoison()`,
/// `rwlock.write().unpoison()`, `mutex.into_inner().unpoison()`.
///
/// A check that panics is reported as a failed check; what it guarded (a
/// record, a queue, a list of process groups) stays consistent between
/// statements, and the grade must go on and clean up after it.
pub trait Unpoison<T> {
    /// The guard (or value), poisoned or not.
    fn unpoison(self) -> T;
}

impl<T> Unpoison<T> for LockResult<T> {
    fn unpoison(self) -> T {
        self.unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_opens() {
        let mutex = Arc::new(Mutex::new(1));
        let held = Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unpoison();
            panic!("a check panics while holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        *mutex.lock().unpoison() += 1;
        assert_eq!(*mutex.lock().unpoison(), 2);
    }
}

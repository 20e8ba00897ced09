//! Blocking catchable signals around a critical section.
//!
//! popa3d rewrites the mailbox with every signal blocked, so that a SIGTERM or SIGHUP
//! from an administrator cannot stop a compaction half-way. (SIGKILL and a power loss
//! still can; a crash-safe UPDATE is a separate piece of work.)

use std::io;

/// While alive, every blockable signal is blocked for the calling thread; dropping it
/// restores the previous mask. Signals that arrive meanwhile stay pending and are
/// delivered on drop.
pub struct BlockedSignals {
    old: libc::sigset_t,
}

impl BlockedSignals {
    /// Blocks all signals (the kernel silently keeps SIGKILL and SIGSTOP deliverable).
    pub fn block_all() -> io::Result<BlockedSignals> {
        // SAFETY: sigset_t is plain data; sigfillset/sigemptyset initialise it fully before
        // use, and all-zero is a valid starting value.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` is a valid, writable sigset_t.
        if unsafe { libc::sigfillset(&mut all) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both pointers refer to valid sigset_t values owned by this frame.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(BlockedSignals { old })
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: `self.old` is the mask pthread_sigmask returned; restoring it is always
        // valid. The old-mask output pointer may be null.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn blocked(sig: libc::c_int) -> bool {
        // SAFETY: plain data; filled by pthread_sigmask below.
        let mut cur: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying the mask (null new set) with a valid output pointer.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
        // SAFETY: `cur` was initialised by the call above.
        unsafe { libc::sigismember(&cur, sig) == 1 }
    }

    #[test]
    fn blocks_and_restores() {
        assert!(!blocked(libc::SIGTERM));
        {
            let _g = BlockedSignals::block_all().unwrap();
            assert!(blocked(libc::SIGTERM));
            assert!(blocked(libc::SIGHUP));
        }
        assert!(!blocked(libc::SIGTERM));
    }
}

//! Signals: blocked around a critical section, or read from a descriptor.
//!
//! popa3d rewrites the mailbox with every signal blocked, so that a SIGTERM or SIGHUP
//! from an administrator cannot stop a compaction half-way. (SIGKILL and a power loss
//! still can; a crash-safe UPDATE is a separate piece of work.)
//!
//! The standalone daemon takes SIGCHLD, SIGHUP, SIGTERM and SIGINT through a
//! [`SignalFd`] instead of handlers: they are blocked and then read like any other input
//! in its poll loop, so no code runs at an arbitrary moment and nothing is async-signal
//! unsafe. Its children must call [`unblock_all`] first thing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGTERM};

/// Blocks `signals` for the calling thread and returns a non-blocking, close-on-exec
/// signalfd that reports them. Reading it ([`SignalFd::pending`]) accepts them.
pub struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    pub fn new(signals: &[libc::c_int]) -> io::Result<SignalFd> {
        // SAFETY: plain data, initialised by sigemptyset before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        for &sig in signals {
            // SAFETY: as above; an invalid number gives EINVAL, checked.
            if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: `set` is initialised; the old-mask pointer may be null.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd { fd })
    }

    /// The signals that arrived since the last call, in order (a signal that arrived
    /// twice before being read is reported once, as with handlers).
    pub fn pending(&self) -> io::Result<Vec<libc::c_int>> {
        let mut out = Vec::new();
        loop {
            // SAFETY: plain data; filled by read below.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is writable for `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n == -1 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => return Ok(out),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
            if n as usize != size {
                return Ok(out);
            }
            out.push(info.ssi_signo as libc::c_int);
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Unblocks every signal for the calling thread: for a child of the daemon, which
/// inherits its parent's mask (SIGTERM blocked would make a session unkillable).
pub fn unblock_all() -> io::Result<()> {
    // SAFETY: plain data, initialised by sigemptyset.
    let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `none` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut none) };
    // SAFETY: `none` is initialised; the old-mask pointer may be null.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

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
    fn signalfd_reports_blocked_signals_once_each() {
        let fd = SignalFd::new(&[libc::SIGUSR1, libc::SIGUSR2]).unwrap();
        assert!(blocked(libc::SIGUSR1));
        assert_eq!(fd.pending().unwrap(), Vec::<i32>::new());
        // SAFETY: raising a signal this thread has blocked only makes it pending.
        unsafe {
            libc::raise(libc::SIGUSR2);
            libc::raise(libc::SIGUSR1);
            libc::raise(libc::SIGUSR1);
        }
        let mut got = fd.pending().unwrap();
        got.sort();
        assert_eq!(got, vec![libc::SIGUSR1, libc::SIGUSR2]);
        assert_eq!(fd.pending().unwrap(), Vec::<i32>::new());
        unblock_all().unwrap();
        assert!(!blocked(libc::SIGUSR1));
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

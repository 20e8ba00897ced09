//! fork, pipes, waiting for children, descriptor hygiene.
//!
//! popa3d-rs runs each stage of a session (pre-auth, verifier, transaction) as its own
//! single-threaded process, like popa3d. The one rule this module enforces is the
//! project's "no fork() after threads exist": a child forked from a multi-threaded
//! process inherits only the calling thread, so any lock another thread held at that
//! moment (the allocator's, stdout's, a Mutex of ours) stays locked forever in the child,
//! which then deadlocks or reads half-updated state. [`fork`] therefore counts the
//! process's threads first and refuses when there is more than one.
//!
//! This module must never exec anything, and never hand out a raw `fork` without that
//! check.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pid(libc::pid_t);

impl Pid {
    /// The number the kernel knows the process by.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The process with this number (one of our children, whose number we were told).
    pub fn from_raw(raw: i32) -> Pid {
        Pid(raw)
    }
}

/// Which side of a [`fork`] we are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// The new process.
    Child,
    /// The original process; the child has this id.
    Parent(Pid),
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this status (0..=255).
    Exited(i32),
    /// It was killed by this signal (a seccomp violation shows up as `SIGSYS`).
    Signaled(i32),
}

/// Whether the calling process has exactly one thread, from the `Threads:` line of
/// `/proc/self/status`. An error if /proc is not mounted: we cannot tell, so we do not
/// guess.
pub fn is_single_threaded() -> io::Result<bool> {
    let status = fs::read_to_string("/proc/self/status")?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))?;
    Ok(threads == 1)
}

/// Forks the calling process. Only allowed while the process is single-threaded (see the
/// module documentation); otherwise returns an error without forking.
///
/// The check cannot race: the only thread that could start another one is the caller.
///
/// Under the key holder's filter ([`crate::sandbox::confine_key_holder`]) /proc cannot be
/// opened, and needs not be: that filter kills any attempt to create a thread, and it was
/// installed only in a single-threaded process.
pub fn fork() -> io::Result<Fork> {
    if !crate::sandbox::threads_impossible() && !is_single_threaded()? {
        return Err(io::Error::other(
            "refusing to fork: the process has more than one thread",
        ));
    }
    // SAFETY: the process has a single thread (checked above, and only this thread could
    // have changed that since), so the child gets a consistent copy of every lock and of
    // the allocator. fork has no memory-safety preconditions beyond that.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(Pid(pid))),
    }
}

/// A pipe, both ends close-on-exec: `(read end, write end)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(ends)
}

/// Waits for the child `pid` to end and reaps it. An interrupted wait is retried.
pub fn wait(pid: Pid) -> io::Result<Exit> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a live, writable int; waitpid writes only there.
        let rc = unsafe { libc::waitpid(pid.0, &mut status, 0) };
        if rc == pid.0 {
            break;
        }
        let err = io::Error::last_os_error();
        if rc == -1 && err.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(if rc == -1 {
            err
        } else {
            io::Error::other("waitpid returned another process")
        });
    }
    if libc::WIFEXITED(status) {
        Ok(Exit::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Ok(Exit::Signaled(libc::WTERMSIG(status)))
    } else {
        // Without WUNTRACED/WCONTINUED waitpid reports only terminations.
        Err(io::Error::other(format!(
            "unexpected wait status {status:#x}"
        )))
    }
}

/// Ends the calling process at once with `code`, like `_exit(2)`: no atexit handlers, no
/// flushing of buffers, no destructors. For forked children, which must not flush or
/// clean up state they share with their parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from 3 up that is not listed in `keep` (0, 1 and 2 are always
/// kept). Used right after start-up and in fresh children, so that nothing inherited
/// (from inetd, a shell, a test harness) reaches a process that parses hostile input.
///
/// Uses close_range(2) (Linux 5.9); without it, the list in /proc/self/fd; without /proc,
/// every number below the descriptor limit. It cannot fail, so it returns nothing.
///
/// Contract: the caller must own every descriptor it does not keep. Any `File`,
/// `OwnedFd` or socket still alive for a closed number must be forgotten, not dropped:
/// dropping it later would close whatever the number has been reused for.
pub fn close_other_fds(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    // The gaps between kept descriptors, from 3 to the largest possible number.
    let mut gaps = Vec::with_capacity(keep.len() + 1);
    let mut lo: u32 = 3;
    for &k in &keep {
        let k = k as u32; // k >= 3
        if k > lo {
            gaps.push((lo, k - 1));
        }
        lo = k + 1;
    }
    gaps.push((lo, u32::MAX));

    if gaps.iter().all(|&(lo, hi)| close_range(lo, hi).is_ok()) {
        return;
    }
    // No close_range: close what /proc says is open, or else every possible number.
    let open = open_fds().unwrap_or_else(|_| (3..max_fds()).collect());
    for fd in open {
        if fd >= 3 && keep.binary_search(&fd).is_err() {
            close_raw(fd);
        }
    }
}

fn close_range(lo: u32, hi: u32) -> io::Result<()> {
    // Through syscall(2) rather than glibc's wrapper, which only glibc 2.34+ has.
    // SAFETY: close_range takes integers only. Closing descriptors cannot violate memory
    // safety; ownership is the caller's contract (see `close_other_fds`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            lo as libc::c_uint,
            hi as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The descriptors open in this process, read before any is closed (the directory
/// stream's own descriptor is closed again by the time this returns).
fn open_fds() -> io::Result<Vec<RawFd>> {
    let mut fds = Vec::new();
    for entry in fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

fn max_fds() -> RawFd {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a live, writable struct rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 1024;
    }
    rl.rlim_cur.min(1 << 20) as RawFd
}

fn close_raw(fd: RawFd) {
    // SAFETY: closing a number we were told we own (the `close_other_fds` contract); an
    // error (EBADF for a number that was not open) is irrelevant here.
    unsafe {
        libc::close(fd);
    }
}

/// Makes `target` refer to the same open file as `fd` (dup2), closing what `target`
/// referred to before. For putting an accepted connection on descriptors 0 and 1. The
/// new descriptor is not close-on-exec.
///
/// Contract as for [`close_other_fds`]: nothing else may own `target`.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes integers only; `fd` is open for the duration of the call.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling process's id.
pub fn getpid() -> Pid {
    // SAFETY: getpid has no preconditions and cannot fail.
    Pid(unsafe { libc::getpid() })
}

/// Sets the file-creation mask (popa3d starts with 077) and returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask((mask & 0o777) as libc::mode_t) as u32 }
}

/// Makes the calling process the leader of a new session and process group
/// (setsid(2)): the daemon after it forks into the background, and each session of the
/// daemon, so that a session and the processes it forks can be signalled as one group.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid has no memory-safety preconditions.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to the process group led by `leader` (`kill(-leader, signal)`): a
/// session of the daemon and its pre-auth and verifier processes. Only for groups this
/// process created (see [`setsid`]); a `leader` of 1 or less is refused, since
/// `kill(-1, ...)` and `kill(0, ...)` mean something else entirely.
pub fn kill_group(leader: Pid, signal: i32) -> io::Result<()> {
    if leader.0 <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group <= 1",
        ));
    }
    // SAFETY: kill has no memory-safety preconditions; the group is checked above.
    if unsafe { libc::kill(-leader.0, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reaps one child that has ended, without waiting: `Ok(None)` when none has (or there
/// are no children at all).
pub fn try_wait_any() -> io::Result<Option<(Pid, Exit)>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a live, writable int; waitpid writes only there.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc == 0 {
            return Ok(None);
        }
        if rc == -1 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(err),
            }
        }
        let exit = if libc::WIFEXITED(status) {
            Exit::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signaled(libc::WTERMSIG(status))
        } else {
            continue;
        };
        return Ok(Some((Pid(rc), exit)));
    }
}

/// Raises the soft limit on open descriptors to at least `want` (never above the hard
/// limit) and returns the new soft limit. The daemon holds one descriptor per session,
/// and the TLS key holder one per channel waiting for its request (it asks for
/// `u64::MAX`: as many as the hard limit allows).
pub fn raise_fd_limit(want: u64) -> io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a live, writable struct rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if rl.rlim_cur >= want {
        return Ok(rl.rlim_cur);
    }
    rl.rlim_cur = want.min(rl.rlim_max);
    // SAFETY: `rl` is a valid struct rlimit with cur <= max.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rl.rlim_cur)
}

/// Sets the soft and hard limits on open descriptors (`RLIMIT_NOFILE`): descriptors
/// numbered `soft` or more cannot be created, and only a privileged process may raise
/// `hard` again. For tests that need a process (and the children it forks) short of
/// descriptors; `soft` above `hard` is an `InvalidInput` error.
pub fn set_fd_limit(soft: u64, hard: u64) -> io::Result<()> {
    if soft > hard {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor soft limit {soft} above hard limit {hard}"),
        ));
    }
    let rl = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `rl` is a valid struct rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets whether the calling process is "dumpable" (prctl `PR_SET_DUMPABLE`). Not
/// dumpable: no core dump, no ptrace attach and no reading of its memory through
/// /proc/PID/mem by anyone without `CAP_SYS_PTRACE`, and its /proc/PID files belong to
/// root. The key holder clears it so its private keys stay in its own memory. Inherited
/// by fork children; reset by execve and by a change of user or group id (to the
/// `fs.suid_dumpable` setting).
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    let value = libc::c_ulong::from(dumpable);
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, value, zero, zero, zero) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the calling process is dumpable (prctl `PR_GET_DUMPABLE`); see
/// [`set_dumpable`].
pub fn is_dumpable() -> io::Result<bool> {
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl with integer arguments only.
    match unsafe { libc::prctl(libc::PR_GET_DUMPABLE, zero, zero, zero, zero) } {
        -1 => Err(io::Error::last_os_error()),
        v => Ok(v != 0),
    }
}

/// Lets the kernel reap this process's children as they end: SIGCHLD is ignored, with
/// `SA_NOCLDWAIT` (POSIX: children of such a process never become zombies). For the key
/// holder, which forks one child per request and never waits for any: it stays blocked
/// in its poll of the control socket and its idle channels, where a loop of
/// [`try_wait_any`] would only run between requests, and its system call filter needs
/// no wait4. Afterwards [`wait`] and
/// [`try_wait_any`] never report a child. Inherited by fork children.
pub fn ignore_child_exits() -> io::Result<()> {
    // SAFETY: struct sigaction is plain data; all-zero is an empty mask and no flags.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_IGN;
    action.sa_flags = libc::SA_NOCLDWAIT;
    // SAFETY: `action` is initialised and SIG_IGN installs no handler code; the
    // old-action pointer may be null.
    if unsafe { libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to the process `pid`, one of our children (a key holder that did not
/// report in time gets SIGKILL). A `pid` of 1 or less is refused: `kill(0, ...)`,
/// `kill(-1, ...)` and negative numbers mean groups, and 1 is init.
pub fn kill(pid: Pid, signal: i32) -> io::Result<()> {
    if pid.0 <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process <= 1",
        ));
    }
    // SAFETY: kill has no memory-safety preconditions; the pid is checked above.
    if unsafe { libc::kill(pid.0, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

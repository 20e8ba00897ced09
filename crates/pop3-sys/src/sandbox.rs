//! Confinement of the pre-auth process: chroot, rlimits, no_new_privs, Landlock, seccomp.
//!
//! The pre-auth process parses everything a stranger sends before login, so it gets
//! nothing to abuse if that parsing goes wrong. popa3d confines it with chroot to an
//! empty directory and a switch to the `popa3d` user (research/popa3d.md §2.2). We do the
//! same and add what Linux offers since: no_new_privs, resource limits, Landlock with no
//! filesystem access at all, and a seccomp filter that kills the process on any system
//! call outside a short list ([`allowed_syscalls`]).
//!
//! Everything the process will need afterwards (the client descriptors, the syslog
//! socket, the pipe to the privileged side) must be open before [`confine`]: afterwards
//! it can read, write, allocate, sleep and exit, and nothing else. Every step only takes
//! rights away; this module must never grant any.
//!
//! The TLS key holder (docs/tls-design.md) gets its own, shorter filter from
//! [`confine_key_holder`]: it holds private keys rather than parsing a stranger's bytes,
//! so it keeps its uid and root but loses every call but those that serve a channel.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Resource limits for the confined process (soft and hard limit alike, so the process
/// cannot raise them again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_NOFILE: descriptors numbered below this can exist. The pre-auth process
    /// holds about six; Landlock needs one more for a moment during [`confine`].
    pub open_files: u64,
    /// RLIMIT_NPROC: processes of the user. 0: it cannot fork (seccomp forbids it too).
    pub processes: u64,
    /// RLIMIT_FSIZE: largest file it may write. 0: it writes no files.
    pub file_size: u64,
    /// RLIMIT_CORE: 0, a core dump could hold another client's bytes.
    pub core_size: u64,
    /// RLIMIT_AS, in bytes: all mappings, the program's own included.
    pub address_space: u64,
}

impl Default for Limits {
    /// Limits for the pre-auth process. 64 MiB of address space: a confined Rust process
    /// maps about 4 MiB (measured on the tests' child; VmSize in /proc) and
    /// AUTHORIZATION allocates a few KiB; the limit only has to stop a runaway
    /// allocation loop, not a normal session.
    fn default() -> Limits {
        Limits {
            open_files: 16,
            processes: 0,
            file_size: 0,
            core_size: 0,
            address_space: 64 << 20,
        }
    }
}

/// What [`confine`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// The directory to chroot into: an existing directory owned by root that neither
    /// its group nor others can write (popa3d: `/var/empty`; Debian `/var/lib/popa3d`).
    pub root: PathBuf,
    /// The account to become (never 0), with `gid` as its only group.
    pub uid: u32,
    pub gid: u32,
    pub limits: Limits,
}

impl Confinement {
    /// Chroot to `root`, become `uid`/`gid`, default [`Limits`].
    pub fn new(root: PathBuf, uid: u32, gid: u32) -> Confinement {
        Confinement {
            root,
            uid,
            gid,
            limits: Limits::default(),
        }
    }
}

/// What [`confine`] enforced beyond chroot, the uid switch, no_new_privs and the limits,
/// which are never optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The Landlock ABI version used, or `None` when the kernel has no Landlock (built
    /// without it, or disabled at boot): then there is only the chroot.
    pub landlock: Option<u32>,
    /// Whether the seccomp filter is installed. Always on x86_64 and aarch64 (failing to
    /// install it is an error); `false` on other architectures, which have no filter.
    pub seccomp: bool,
}

/// Confines the calling process for good, in this order: chroot to `cfg.root` and chdir
/// to "/"; switch to `cfg.uid`/`cfg.gid` ([`crate::privileges::drop_to`]); set
/// no_new_privs; set the limits; Landlock without any filesystem access; the seccomp
/// filter.
///
/// The process must be single-threaded (several of these steps apply to the calling
/// thread only) and running as root. On an error the process is half-confined and must
/// exit: the caller must not carry on.
pub fn confine(cfg: &Confinement) -> io::Result<Applied> {
    if cfg.uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing to confine as uid 0",
        ));
    }
    if !crate::process::is_single_threaded()? {
        return Err(io::Error::other(
            "refusing to confine a process with more than one thread",
        ));
    }
    enter_chroot(&cfg.root)?;
    crate::privileges::drop_to(cfg.uid, cfg.gid).map_err(|e| context("setuid", e))?;
    set_no_new_privs()?;
    set_limits(&cfg.limits)?;
    let landlock = forbid_filesystem()?;
    let seccomp = install_seccomp()?;
    Ok(Applied { landlock, seccomp })
}

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// chroot to `dir` and chdir to "/". `dir` must be a directory owned by root that its
/// group and others cannot write: anyone who can write to it can plant files for the
/// process to find (and a hard link to a setuid program, were it ever to exec one).
///
/// The check and the chroot use one open descriptor, so the directory cannot be swapped
/// between them.
pub fn enter_chroot(dir: &Path) -> io::Result<()> {
    let what = || format!("chroot {}", dir.display());
    let d = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOCTTY)
        .open(dir)
        .map_err(|e| context(&what(), e))?;
    let meta = d.metadata().map_err(|e| context(&what(), e))?;
    if meta.uid() != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: owned by uid {}, not root", what(), meta.uid()),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: writable by group or others (mode {:04o})",
                what(),
                meta.mode() & 0o7777
            ),
        ));
    }
    // SAFETY: `d` is an open directory descriptor for the duration of the call.
    if unsafe { libc::fchdir(d.as_raw_fd()) } != 0 {
        return Err(context(&what(), io::Error::last_os_error()));
    }
    // SAFETY: the argument is a NUL-terminated string literal.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(context(&what(), io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(context("chdir /", io::Error::last_os_error()));
    }
    Ok(())
}

/// Sets no_new_privs: from now on execve can never grant privileges (setuid bits, file
/// capabilities). Required before an unprivileged process may use Landlock or seccomp.
/// Irreversible, and inherited by children.
pub fn set_no_new_privs() -> io::Result<()> {
    let one: libc::c_ulong = 1;
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) } != 0 {
        return Err(context(
            "prctl(PR_SET_NO_NEW_PRIVS)",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn set_limits(l: &Limits) -> io::Result<()> {
    let table: [(Resource, &str, u64); 5] = [
        (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", l.open_files),
        (libc::RLIMIT_NPROC, "RLIMIT_NPROC", l.processes),
        (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE", l.file_size),
        (libc::RLIMIT_CORE, "RLIMIT_CORE", l.core_size),
        (libc::RLIMIT_AS, "RLIMIT_AS", l.address_space),
    ];
    for (resource, name, value) in table {
        let rl = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: `rl` is a valid struct rlimit that setrlimit only reads.
        if unsafe { libc::setrlimit(resource, &rl) } != 0 {
            return Err(context(
                &format!("setrlimit({name})"),
                io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Landlock (linux/landlock.h; the libc crate has the syscall numbers but not the types).

/// `struct landlock_ruleset_attr` as of ABI 6. The kernel accepts a longer struct than it
/// knows as long as the extra fields are zero, so one layout serves every ABI.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

/// Every filesystem access right the given ABI version knows. ABI 1: execute, write,
/// read, read_dir, remove_dir, remove_file, make_{char,dir,reg,sock,fifo,block,sym}
/// (bits 0-12); ABI 2 adds REFER (13); ABI 3 TRUNCATE (14); ABI 5 IOCTL_DEV (15). ABI 4,
/// 6 and 7 add nothing for files.
fn landlock_fs_rights(abi: u32) -> u64 {
    let mut rights = (1u64 << 13) - 1;
    if abi >= 2 {
        rights |= 1 << 13;
    }
    if abi >= 3 {
        rights |= 1 << 14;
    }
    if abi >= 5 {
        rights |= 1 << 15;
    }
    rights
}

/// ABI 4: BIND_TCP and CONNECT_TCP.
fn landlock_net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        0b11
    } else {
        0
    }
}

/// ABI 6: SCOPE_SIGNAL only, so no signal reaches a process outside the domain (other
/// sessions' processes run as the same user). SCOPE_ABSTRACT_UNIX_SOCKET is left out on
/// purpose: it would also block datagrams on an already connected syslog socket if the
/// logger listens on an abstract address, and seccomp forbids creating or connecting
/// sockets anyway.
fn landlock_scopes(abi: u32) -> u64 {
    if abi >= 6 {
        0b10
    } else {
        0
    }
}

/// The Landlock ABI version the running kernel supports, or `None` without Landlock.
pub fn landlock_abi() -> Option<u32> {
    // SAFETY: with the VERSION flag the kernel reads no attribute: the pointer must be
    // null and the size 0, which they are.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(rc).ok().filter(|&v| v >= 1)
}

/// Restricts the calling thread (and its future children) with a Landlock ruleset that
/// handles every filesystem right the kernel knows and grants none: no file or directory
/// can be opened, created, executed, renamed or removed anywhere. Also, where the kernel
/// supports it, no TCP bind/connect and no signals to processes outside the domain.
///
/// Sets no_new_privs first (Landlock requires it). `Ok(None)` when the kernel has no
/// Landlock; any other failure is an error, including a restriction that does not show:
/// afterwards it checks that "." can no longer be opened.
pub fn forbid_filesystem() -> io::Result<Option<u32>> {
    set_no_new_privs()?;
    let Some(abi) = landlock_abi() else {
        return Ok(None);
    };
    let attr = RulesetAttr {
        handled_access_fs: landlock_fs_rights(abi),
        handled_access_net: landlock_net_rights(abi),
        scoped: landlock_scopes(abi),
    };
    // SAFETY: `attr` is a live, initialised struct of the size passed, which the kernel
    // only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0 as libc::c_uint,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(None),
            _ => Err(context("landlock_create_ruleset", err)),
        };
    }
    let Ok(raw) = i32::try_from(rc) else {
        return Err(io::Error::other("landlock_create_ruleset: bad descriptor"));
    };
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    let ruleset = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: integer arguments only; `ruleset` is open for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_restrict_self,
            ruleset.as_raw_fd(),
            0 as libc::c_uint,
        )
    };
    if rc != 0 {
        return Err(context(
            "landlock_restrict_self",
            io::Error::last_os_error(),
        ));
    }
    drop(ruleset);
    verify_no_filesystem()?;
    Ok(Some(abi))
}

/// Proves the restriction took effect, as `drop_to` proves a uid switch: listing the
/// current directory needs READ_DIR, which the ruleset handles and never grants, so the
/// open must fail with EACCES. (An open that fails for another reason proves nothing and
/// is an error too.)
fn verify_no_filesystem() -> io::Result<()> {
    match File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(".")
    {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
        Ok(_) => Err(io::Error::other(
            "Landlock restriction did not take effect: \".\" can still be opened",
        )),
        Err(e) => Err(context("checking the Landlock restriction", e)),
    }
}

// ---------------------------------------------------------------------------------------
// seccomp

/// An extra condition on a system call's arguments.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// Always allowed.
    None,
    /// Allowed only if none of `mask`'s bits are set in the low 32 bits of argument
    /// `arg`.
    BitsClear { arg: u32, mask: u32 },
    /// Allowed only if the low 32 bits of argument `arg` equal `value` (for `int`
    /// arguments, of which the kernel reads only those bits).
    Low32Is { arg: u32, value: u32 },
    /// Allowed only if argument `arg` is 0 (all 64 bits: for pointers).
    Zero { arg: u32 },
}

struct Rule {
    name: &'static str,
    nr: libc::c_long,
    check: Check,
}

const fn allow(name: &'static str, nr: libc::c_long) -> Rule {
    Rule {
        name,
        nr,
        check: Check::None,
    }
}

const fn allow_if(name: &'static str, nr: libc::c_long, check: Check) -> Rule {
    Rule { name, nr, check }
}

/// The pre-auth allow-list. Why each is here:
/// - read, write, readv, writev, close: the client connection and the pipe to the
///   privileged side (std uses the vectored forms for some writes).
/// - ppoll (poll on x86_64 too, for glibc or std code that calls poll(2)): [`TimedFd`]
///   waits; recvfrom/sendto: [`TimedFd`] on a socket (MSG_DONTWAIT) and the syslog
///   datagram socket, which is connected before confinement: sendto must carry no
///   destination address, so nothing new can be reached.
/// - exit, exit_group: leaving. rt_sigreturn, rt_sigprocmask, sigaltstack,
///   restart_syscall: signal delivery and std's stack-overflow handler; restart_syscall
///   is what the kernel runs when a stopped process resumes inside clock_nanosleep.
/// - brk, mmap (never with PROT_EXEC, and mprotect is not allowed, so no new code can be
///   mapped), munmap, mremap, madvise: the allocator.
/// - futex: std's locks (stdout, once-cells) under contention.
/// - clock_gettime, clock_nanosleep, nanosleep: timeouts and sleeps (normally served by
///   the vDSO without a system call, but the vDSO falls back to one on some clocks).
/// - getrandom: std's HashMap seeds, and the TLS relay's randoms, key shares and
///   nonces. getpid: syslog's `popa3d[PID]`.
/// - shutdown: the TLS relay (which runs under this same list) passes on the end of each
///   direction: the client's close_notify to the session, the session's end to the
///   client before the last bytes are drained. It only affects sockets already held.
/// - fcntl(fd, F_GETFD) and no other command: in builds with debug assertions std checks
///   that a descriptor is still open before closing it (`OwnedFd::drop`), so without it
///   dropping a `File` kills a debug build. It only reads the close-on-exec flag.
///
/// Not here, and so fatal: open/openat, stat and friends, socket, connect, bind, execve,
/// fork/clone/vfork, kill/tgkill, ptrace, mprotect, ioctl, any other fcntl, prctl, setuid
/// and every other call. A panic's abort ends in tgkill, so a panicking confined process dies of
/// SIGSYS rather than SIGABRT: it dies either way.
///
/// [`TimedFd`]: crate::poll::TimedFd
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const RULES: &[Rule] = &[
    allow("read", libc::SYS_read),
    allow("write", libc::SYS_write),
    allow("readv", libc::SYS_readv),
    allow("writev", libc::SYS_writev),
    allow("close", libc::SYS_close),
    #[cfg(target_arch = "x86_64")]
    allow("poll", libc::SYS_poll),
    allow("ppoll", libc::SYS_ppoll),
    allow("recvfrom", libc::SYS_recvfrom),
    allow_if("sendto", libc::SYS_sendto, Check::Zero { arg: 4 }),
    allow("exit", libc::SYS_exit),
    allow("exit_group", libc::SYS_exit_group),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask),
    allow("sigaltstack", libc::SYS_sigaltstack),
    allow("restart_syscall", libc::SYS_restart_syscall),
    allow("brk", libc::SYS_brk),
    allow_if(
        "mmap",
        libc::SYS_mmap,
        Check::BitsClear {
            arg: 2,
            mask: libc::PROT_EXEC as u32,
        },
    ),
    allow("munmap", libc::SYS_munmap),
    allow("mremap", libc::SYS_mremap),
    allow("madvise", libc::SYS_madvise),
    allow("futex", libc::SYS_futex),
    allow("clock_gettime", libc::SYS_clock_gettime),
    allow("clock_nanosleep", libc::SYS_clock_nanosleep),
    allow("nanosleep", libc::SYS_nanosleep),
    allow("getrandom", libc::SYS_getrandom),
    allow("getpid", libc::SYS_getpid),
    allow("shutdown", libc::SYS_shutdown),
    allow_if(
        "fcntl",
        libc::SYS_fcntl,
        Check::Low32Is {
            arg: 1,
            value: libc::F_GETFD as u32,
        },
    ),
];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const RULES: &[Rule] = &[];

/// The clone(2) flags of glibc's fork: `CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID`, exit
/// signal SIGCHLD. The key holder's filter allows clone with exactly these (the kernel
/// reads only the low 32 bits): no thread (`CLONE_VM`, `CLONE_THREAD`), no shared
/// tables, no new namespace, no other parent.
const FORK_CLONE_FLAGS: u32 =
    (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u32;

/// The key holder's allow-list (see [`confine_key_holder`]), measured with `strace -f`
/// on the holder tests (pop3-tls tests/holder.rs: TLS 1.3 and 1.2 handshakes with RSA
/// and P-256 keys, public keys, refusals, timeouts, idle, closed and evicted channels,
/// end of file). After the filter is installed the holder itself makes ppoll, recvmsg,
/// recvfrom, clone, close, fcntl(F_GETFD), sendto (its one report) and exit_group, and
/// its per-request children set_robust_list, recvfrom, getrandom, sendto, close,
/// fcntl(F_GETFD) and exit_group:
/// - ppoll: the holder waits on its control socket and its idle channels at once.
/// - recvmsg: the control socket (a channel with its key index, `SCM_RIGHTS`).
/// - clone, with [`FORK_CLONE_FLAGS`] only: glibc's fork, one child per request. clone3
///   (what pthread_create uses) is not allowed, so no thread can ever be created, which
///   is what lets [`crate::process::fork`] skip its look at /proc here.
/// - set_robust_list: glibc's fork calls it in the child.
/// - recvfrom, sendto: std's socket reads and writes (recv(2), and send(2) with
///   MSG_NOSIGNAL): the first byte of a request, which tells the holder that a channel
///   was asked on rather than closed, and the children's requests and answers. sendto
///   only without a destination address, as for pre-auth.
/// - close: a channel closed by its peer or pushed out of a full idle set, each
///   channel after use, and in each child every channel but its own. fcntl(fd, F_GETFD)
///   only: std's debug-build check before closing a descriptor (as for pre-auth).
/// - getrandom: ECDSA nonces, RSA blinding and PSS salts (ring).
/// - exit_group: leaving.
/// - brk, mmap without PROT_EXEC, munmap, mremap, madvise: not seen in the tests (the
///   heap was large enough), but the allocator needs them for a large or a freed
///   allocation, such as the poll set of thousands of idle channels.
///
/// Not here, and so fatal: open/openat (the keys are read before confinement), read and
/// write (std uses neither on sockets), socket, connect, sendmsg, setsockopt (the daemon
/// sets a channel's timeouts before passing it), setrlimit/prlimit64 (the holder raises
/// its descriptor limit before confinement), wait4 (the kernel reaps the children:
/// [`crate::process::ignore_child_exits`]), poll (the holder calls ppoll itself; nothing
/// calls poll), close_range, clone3, execve, kill, ptrace, prctl, mprotect,
/// rt_sigaction, rt_sigprocmask, and every other call. A panic's abort needs
/// rt_sigprocmask and tgkill, so a panicking holder dies of SIGSYS.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const HOLDER_RULES: &[Rule] = &[
    allow("ppoll", libc::SYS_ppoll),
    allow("recvmsg", libc::SYS_recvmsg),
    allow_if(
        "clone",
        libc::SYS_clone,
        Check::Low32Is {
            arg: 0,
            value: FORK_CLONE_FLAGS,
        },
    ),
    allow("set_robust_list", libc::SYS_set_robust_list),
    allow("recvfrom", libc::SYS_recvfrom),
    allow_if("sendto", libc::SYS_sendto, Check::Zero { arg: 4 }),
    allow("close", libc::SYS_close),
    allow_if(
        "fcntl",
        libc::SYS_fcntl,
        Check::Low32Is {
            arg: 1,
            value: libc::F_GETFD as u32,
        },
    ),
    allow("getrandom", libc::SYS_getrandom),
    allow("exit_group", libc::SYS_exit_group),
    allow("brk", libc::SYS_brk),
    allow_if(
        "mmap",
        libc::SYS_mmap,
        Check::BitsClear {
            arg: 2,
            mask: libc::PROT_EXEC as u32,
        },
    ),
    allow("munmap", libc::SYS_munmap),
    allow("mremap", libc::SYS_mremap),
    allow("madvise", libc::SYS_madvise),
];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const HOLDER_RULES: &[Rule] = &[];

/// The names of the system calls the key holder's filter allows, in its order (empty
/// where there is no filter): ppoll, recvmsg, clone, set_robust_list, recvfrom, sendto,
/// close, fcntl, getrandom, exit_group, brk, mmap, munmap, mremap, madvise. clone is
/// allowed only with fork's flags, sendto only without a destination, fcntl only for
/// F_GETFD, mmap only without PROT_EXEC.
pub fn key_holder_allowed_syscall_names() -> impl Iterator<Item = &'static str> {
    HOLDER_RULES.iter().map(|r| r.name)
}

/// Set once the key holder's filter is installed: from then on no thread can be
/// created (see [`HOLDER_RULES`]), and [`confine_key_holder`] installed it only in a
/// single-threaded process. Inherited by fork children, like the filter itself.
static THREADS_IMPOSSIBLE: AtomicBool = AtomicBool::new(false);

/// Whether this process is provably single-threaded for good (it is under the key
/// holder's filter), so [`crate::process::fork`] needs no look at /proc.
pub(crate) fn threads_impossible() -> bool {
    THREADS_IMPOSSIBLE.load(Ordering::Relaxed)
}

/// Confines the TLS key holder for good, once it has read its keys: no_new_privs,
/// RLIMIT_CORE 0 and not dumpable (no core file, no ptrace, no /proc/PID/mem for anyone
/// without `CAP_SYS_PTRACE`, so the keys stay in this process's memory), then a seccomp
/// filter that allows only what serving channels needs
/// ([`key_holder_allowed_syscall_names`]): waiting on the control socket and the idle
/// channels, receiving a channel, forking a child for a request, reading and writing the
/// sockets it has, closing them, allocating, randomness and exiting. Any other call,
/// opening a file first of all, kills the process with SIGSYS. No chroot and no uid change: the holder may stay root (then the relays, uid
/// `popa3d`, cannot ptrace it), and with no open(2) at all a chroot adds nothing.
///
/// The process must be single-threaded (refused otherwise: the filter applies to the
/// calling thread). On an architecture without a filter (other than x86_64 and aarch64)
/// everything but the filter is applied. On an error the process is half-confined and
/// must exit.
pub fn confine_key_holder() -> io::Result<()> {
    if !crate::process::is_single_threaded()? {
        return Err(io::Error::other(
            "refusing to confine a process with more than one thread",
        ));
    }
    set_no_new_privs()?;
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `no_core` is a valid struct rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) } != 0 {
        return Err(context(
            "setrlimit(RLIMIT_CORE)",
            io::Error::last_os_error(),
        ));
    }
    crate::process::set_dumpable(false).map_err(|e| context("prctl(PR_SET_DUMPABLE)", e))?;
    if crate::process::is_dumpable().map_err(|e| context("prctl(PR_GET_DUMPABLE)", e))? {
        return Err(io::Error::other("the process is still dumpable"));
    }
    if install_filter(HOLDER_RULES)? {
        THREADS_IMPOSSIBLE.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// `AUDIT_ARCH_*` (linux/audit.h): the ELF machine, 64-bit, little-endian. The filter
/// compares it first: a process can make system calls under another ABI (int 0x80 on
/// x86_64 gives i386 numbers), where our numbers mean something else.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(62 | 0x8000_0000 | 0x4000_0000);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(183 | 0x8000_0000 | 0x4000_0000);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

const RULE_COUNT: usize = RULES.len();

// c_long is i64 on every architecture with rules; the cast is for the others.
#[allow(clippy::unnecessary_cast)]
static ALLOWED_NRS: [i64; RULE_COUNT] = {
    let mut nrs = [0i64; RULE_COUNT];
    let mut i = 0;
    while i < RULE_COUNT {
        nrs[i] = RULES[i].nr as i64;
        i += 1;
    }
    nrs
};

/// The system call numbers the pre-auth filter allows on this architecture (empty where
/// there is no filter). mmap is allowed only without PROT_EXEC and sendto only without a
/// destination address; see [`allowed_syscall_names`] for the names.
pub fn allowed_syscalls() -> &'static [i64] {
    &ALLOWED_NRS
}

/// The names of [`allowed_syscalls`], in the same order.
pub fn allowed_syscall_names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.name)
}

/// Offsets into `struct seccomp_data`.
const NR_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
const ARCH_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
const ARGS_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, args) as u32;

/// The offsets of the low and high 32-bit halves of argument `i`.
fn arg_offsets(i: u32) -> (u32, u32) {
    let at = ARGS_OFFSET + 8 * i;
    if cfg!(target_endian = "little") {
        (at, at + 4)
    } else {
        (at + 4, at)
    }
}

/// A classic-BPF program builder just big enough for a seccomp allow-list: loads of a
/// 32-bit word of `seccomp_data`, two kinds of conditional jump, and two final returns
/// (kill and allow) that every jump can name instead of counting instructions.
mod bpf {
    use std::io;

    /// Where a conditional jump goes.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum To {
        /// The next instruction.
        Next,
        /// Skip this many instructions.
        Skip(u8),
        /// `return SECCOMP_RET_KILL_PROCESS`.
        Kill,
        /// `return SECCOMP_RET_ALLOW`.
        Allow,
    }

    enum Op {
        Load(u32),
        JumpEq(u32, To, To),
        JumpSet(u32, To, To),
    }

    #[derive(Default)]
    pub(super) struct Builder {
        ops: Vec<Op>,
    }

    impl Builder {
        /// A = the 32-bit word at `offset` in `seccomp_data`.
        pub(super) fn load(&mut self, offset: u32) {
            self.ops.push(Op::Load(offset));
        }

        /// if A == k goto t else goto f
        pub(super) fn jump_eq(&mut self, k: u32, t: To, f: To) {
            self.ops.push(Op::JumpEq(k, t, f));
        }

        /// if A & k != 0 goto t else goto f
        pub(super) fn jump_set(&mut self, k: u32, t: To, f: To) {
            self.ops.push(Op::JumpSet(k, t, f));
        }

        /// The program: the instructions so far, falling through to "kill", then
        /// "allow".
        pub(super) fn finish(self) -> io::Result<Vec<libc::sock_filter>> {
            let kill = self.ops.len();
            let allow = kill + 1;
            if allow + 1 > libc::BPF_MAXINSNS as usize {
                return Err(io::Error::other("seccomp filter too long"));
            }
            let mut prog = Vec::with_capacity(allow + 1);
            for (i, op) in self.ops.iter().enumerate() {
                let offset = |to: To| -> io::Result<u8> {
                    let target = match to {
                        To::Next => return Ok(0),
                        To::Skip(n) => return Ok(n),
                        To::Kill => kill,
                        To::Allow => allow,
                    };
                    u8::try_from(target - i - 1)
                        .map_err(|_| io::Error::other("seccomp filter jump too far"))
                };
                prog.push(match *op {
                    Op::Load(off) => insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, off),
                    Op::JumpEq(k, t, f) => insn(
                        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                        offset(t)?,
                        offset(f)?,
                        k,
                    ),
                    Op::JumpSet(k, t, f) => insn(
                        libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                        offset(t)?,
                        offset(f)?,
                        k,
                    ),
                });
            }
            let ret = libc::BPF_RET | libc::BPF_K;
            prog.push(insn(ret, 0, 0, libc::SECCOMP_RET_KILL_PROCESS));
            prog.push(insn(ret, 0, 0, libc::SECCOMP_RET_ALLOW));
            Ok(prog)
        }
    }

    fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }
}

/// The pre-auth filter program, or `None` on an architecture without one.
#[cfg(test)]
fn filter() -> io::Result<Option<Vec<libc::sock_filter>>> {
    filter_for(RULES)
}

/// The filter program allowing `rules` (and killing everything else), or `None` on an
/// architecture without one.
fn filter_for(rules: &[Rule]) -> io::Result<Option<Vec<libc::sock_filter>>> {
    use bpf::To;
    let Some(arch) = AUDIT_ARCH else {
        return Ok(None);
    };
    let mut b = bpf::Builder::default();
    b.load(ARCH_OFFSET);
    b.jump_eq(arch, To::Next, To::Kill);
    b.load(NR_OFFSET);
    // On x86_64 the x32 ABI shares AUDIT_ARCH_X86_64 and marks its numbers with bit 30;
    // they never equal one of ours, so they fall through to "kill" like everything else.
    for rule in rules {
        let nr = rule.nr as u32;
        match rule.check {
            Check::None => b.jump_eq(nr, To::Allow, To::Next),
            Check::BitsClear { arg, mask } => {
                let (lo, _) = arg_offsets(arg);
                b.jump_eq(nr, To::Next, To::Skip(2));
                b.load(lo);
                b.jump_set(mask, To::Kill, To::Allow);
            }
            Check::Low32Is { arg, value } => {
                let (lo, _) = arg_offsets(arg);
                b.jump_eq(nr, To::Next, To::Skip(2));
                b.load(lo);
                b.jump_eq(value, To::Allow, To::Kill);
            }
            Check::Zero { arg } => {
                let (lo, hi) = arg_offsets(arg);
                b.jump_eq(nr, To::Next, To::Skip(4));
                b.load(lo);
                b.jump_eq(0, To::Next, To::Kill);
                b.load(hi);
                b.jump_eq(0, To::Allow, To::Kill);
            }
        }
    }
    b.finish().map(Some)
}

/// Installs the pre-auth filter on the calling thread. Needs no_new_privs (or
/// CAP_SYS_ADMIN). `Ok(false)` on an architecture without a filter.
fn install_seccomp() -> io::Result<bool> {
    install_filter(RULES)
}

/// Installs the filter allowing `rules` on the calling thread; see [`install_seccomp`].
fn install_filter(rules: &[Rule]) -> io::Result<bool> {
    let Some(mut prog) = filter_for(rules)? else {
        return Ok(false);
    };
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort, // at most BPF_MAXINSNS, checked by finish()
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points to `prog`, a valid array of `len` instructions that stays
    // alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(context("seccomp(SECCOMP_SET_MODE_FILTER)", err));
    }
    // Kernels before 3.17 have no seccomp(2), only the prctl.
    // SAFETY: as above.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(context("prctl(PR_SET_SECCOMP)", io::Error::last_os_error()));
    }
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the four instructions the builder emits, so the
    /// filter's decisions can be checked without installing it.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let word = |off: u32| {
            let o = off as usize;
            u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => acc = word(i.k),
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if acc == i.k { i.jt } else { i.jf })
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += usize::from(if acc & i.k != 0 { i.jt } else { i.jf })
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                _ => panic!("unexpected opcode {code:#x}"),
            }
        }
    }

    /// Arguments that pass the rule's extra check, if any.
    fn passing_args(nr: i64) -> [u64; 6] {
        let mut args = [0; 6];
        if nr == libc::SYS_fcntl {
            args[1] = libc::F_GETFD as u64;
        }
        args
    }

    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn filter_allows_the_list_and_kills_the_rest() {
        let prog = filter().unwrap().unwrap();
        let arch = AUDIT_ARCH.unwrap();
        assert_eq!(allowed_syscalls().len(), allowed_syscall_names().count());
        for &nr in allowed_syscalls() {
            assert_eq!(run(&prog, arch, nr, passing_args(nr)), ALLOW, "nr {nr}");
        }
        let forbidden = [
            libc::SYS_openat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_bind,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_kill,
            libc::SYS_tgkill,
            libc::SYS_ptrace,
            libc::SYS_mprotect,
            libc::SYS_ioctl,
            libc::SYS_prctl,
            libc::SYS_setuid,
            libc::SYS_sendmsg,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_chdir,
            libc::SYS_seccomp,
            libc::SYS_landlock_create_ruleset,
        ];
        for nr in forbidden {
            assert!(!allowed_syscalls().contains(&nr), "{nr} is allowed");
            assert_eq!(run(&prog, arch, nr, [0; 6]), KILL, "nr {nr}");
        }
        for nr in 0..1024 {
            let expected = if allowed_syscalls().contains(&nr) {
                ALLOW
            } else {
                KILL
            };
            assert_eq!(run(&prog, arch, nr, passing_args(nr)), expected, "nr {nr}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn filter_kills_legacy_and_x32_system_calls() {
        let prog = filter().unwrap().unwrap();
        let i386 = 3 | 0x4000_0000; // AUDIT_ARCH_I386
                                    // i386 number 3 is read, 4 is write: allowed numbers under another ABI.
        assert_eq!(run(&prog, i386, 3, [0; 6]), KILL);
        assert_eq!(run(&prog, i386, 4, [0; 6]), KILL);
        // x32: same AUDIT_ARCH, number | 0x40000000.
        let x86_64 = AUDIT_ARCH.unwrap();
        assert_eq!(run(&prog, x86_64, libc::SYS_read, [0; 6]), ALLOW);
        assert_eq!(
            run(&prog, x86_64, libc::SYS_read | 0x4000_0000, [0; 6]),
            KILL
        );
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn filter_checks_mmap_and_sendto_arguments() {
        let prog = filter().unwrap().unwrap();
        let arch = AUDIT_ARCH.unwrap();
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let rwx = rw | libc::PROT_EXEC as u64;
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_mmap,
                [0, 4096, rw, 0x22, u64::MAX, 0]
            ),
            ALLOW
        );
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_mmap,
                [0, 4096, rwx, 0x22, u64::MAX, 0]
            ),
            KILL
        );
        let exec_only = libc::PROT_EXEC as u64;
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_mmap,
                [0, 4096, exec_only, 0x22, 0, 0]
            ),
            KILL
        );
        // sendto(fd, buf, len, flags, dest_addr, addrlen)
        assert_eq!(
            run(&prog, arch, libc::SYS_sendto, [3, 0x1000, 10, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_sendto,
                [3, 0x1000, 10, 0, 0x7fff_0000_1000, 16]
            ),
            KILL
        );
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_sendto,
                [3, 0x1000, 10, 0, 0x1000, 16]
            ),
            KILL
        );
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_sendto,
                [3, 0x1000, 10, 0, 1 << 32, 16]
            ),
            KILL
        );
        // fcntl: F_GETFD only.
        let getfd = libc::F_GETFD as u64;
        assert_eq!(
            run(&prog, arch, libc::SYS_fcntl, [3, getfd, 0, 0, 0, 0]),
            ALLOW
        );
        for cmd in [
            libc::F_SETFD,
            libc::F_GETFL,
            libc::F_SETFL,
            libc::F_DUPFD,
            libc::F_SETLK,
        ] {
            assert_eq!(
                run(&prog, arch, libc::SYS_fcntl, [3, cmd as u64, 0, 0, 0, 0]),
                KILL,
                "{cmd}"
            );
        }
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn holder_filter_allows_its_list_and_kills_the_rest() {
        let prog = filter_for(HOLDER_RULES).unwrap().unwrap();
        let arch = AUDIT_ARCH.unwrap();
        let allowed: Vec<i64> = HOLDER_RULES.iter().map(|r| r.nr).collect();
        let passing = |nr: i64| {
            let mut args = [0u64; 6];
            if nr == libc::SYS_fcntl {
                args[1] = libc::F_GETFD as u64;
            }
            if nr == libc::SYS_clone {
                args[0] = u64::from(FORK_CLONE_FLAGS);
            }
            args
        };
        for nr in 0..1024 {
            let expected = if allowed.contains(&nr) { ALLOW } else { KILL };
            assert_eq!(run(&prog, arch, nr, passing(nr)), expected, "nr {nr}");
        }
        let names: Vec<_> = key_holder_allowed_syscall_names().collect();
        assert_eq!(names.len(), allowed.len());
        for forbidden in [
            "open",
            "openat",
            "read",
            "write",
            "socket",
            "connect",
            "sendmsg",
            "setsockopt",
            "wait4",
            "poll",
            "close_range",
            "setrlimit",
            "prlimit64",
            "clone3",
            "vfork",
            "execve",
            "kill",
            "tgkill",
            "ptrace",
            "prctl",
            "mprotect",
            "rt_sigaction",
            "rt_sigprocmask",
            "seccomp",
        ] {
            assert!(!names.contains(&forbidden), "{forbidden} is allowed");
        }
        assert_eq!(
            names,
            [
                "ppoll",
                "recvmsg",
                "clone",
                "set_robust_list",
                "recvfrom",
                "sendto",
                "close",
                "fcntl",
                "getrandom",
                "exit_group",
                "brk",
                "mmap",
                "munmap",
                "mremap",
                "madvise"
            ]
        );
        // The pre-auth list is untouched by the holder's.
        assert!(allowed_syscall_names().any(|n| n == "ppoll"));
        assert!(!allowed_syscall_names().any(|n| n == "clone" || n == "recvmsg"));
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn holder_filter_allows_fork_but_no_thread() {
        let prog = filter_for(HOLDER_RULES).unwrap().unwrap();
        let arch = AUDIT_ARCH.unwrap();
        let clone = |flags: u64| run(&prog, arch, libc::SYS_clone, [flags, 0, 0, 0, 0, 0]);
        let fork = u64::from(FORK_CLONE_FLAGS);
        assert_eq!(clone(fork), ALLOW);
        // pthread_create's flags, if it ever fell back to clone.
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        for flags in [
            thread,
            fork | libc::CLONE_VM as u64,
            fork | libc::CLONE_NEWUSER as u64,
            fork | libc::CLONE_NEWNS as u64,
            fork | libc::CLONE_PARENT as u64,
            fork | libc::CLONE_PTRACE as u64,
            libc::SIGCHLD as u64,
            (fork & !0xff) | libc::SIGUSR1 as u64,
        ] {
            assert_eq!(clone(flags), KILL, "clone flags {flags:#x}");
        }
        // sendto without a destination only; fcntl F_GETFD only; mmap never executable.
        assert_eq!(
            run(&prog, arch, libc::SYS_sendto, [3, 0x1000, 1, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(&prog, arch, libc::SYS_sendto, [3, 0x1000, 1, 0, 0x1000, 16]),
            KILL
        );
        let setfl = libc::F_SETFL as u64;
        assert_eq!(
            run(&prog, arch, libc::SYS_fcntl, [3, setfl, 0, 0, 0, 0]),
            KILL
        );
        let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
        assert_eq!(
            run(
                &prog,
                arch,
                libc::SYS_mmap,
                [0, 4096, rwx, 0x22, u64::MAX, 0]
            ),
            KILL
        );
    }

    #[test]
    fn builder_resolves_named_targets() {
        use bpf::To;
        let mut b = bpf::Builder::default();
        b.load(0);
        b.jump_eq(7, To::Allow, To::Next);
        b.jump_eq(8, To::Next, To::Kill);
        let prog = b.finish().unwrap();
        assert_eq!(prog.len(), 5);
        // jump_eq at 1: allow is at 4, so jt = 2; jump_eq at 2: kill is at 3, jf = 0.
        assert_eq!((prog[1].jt, prog[1].jf), (2, 0));
        assert_eq!((prog[2].jt, prog[2].jf), (0, 0));
        assert_eq!(prog[3].k, KILL);
        assert_eq!(prog[4].k, ALLOW);
        assert_eq!(run(&prog, 0, 7, [0; 6]), ALLOW);
        assert_eq!(run(&prog, 0, 8, [0; 6]), KILL); // falls through to kill
        assert_eq!(run(&prog, 0, 9, [0; 6]), KILL);

        let mut b = bpf::Builder::default();
        for _ in 0..300 {
            b.jump_eq(1, To::Allow, To::Next);
        }
        assert!(
            b.finish().is_err(),
            "a jump over 255 instructions must be refused"
        );
    }

    #[test]
    fn landlock_rights_grow_with_the_abi() {
        assert_eq!(landlock_fs_rights(1), 0x1fff);
        assert_eq!(landlock_fs_rights(2), 0x3fff);
        assert_eq!(landlock_fs_rights(3), 0x7fff);
        assert_eq!(landlock_fs_rights(4), 0x7fff);
        assert_eq!(landlock_fs_rights(5), 0xffff);
        assert_eq!(landlock_fs_rights(7), 0xffff);
        assert_eq!(landlock_net_rights(3), 0);
        assert_eq!(landlock_net_rights(4), 3);
        assert_eq!(landlock_scopes(5), 0);
        assert_eq!(landlock_scopes(6), 2);
    }

    #[test]
    fn limits_default_as_documented() {
        let l = Limits::default();
        assert_eq!(l.open_files, 16);
        assert_eq!((l.processes, l.file_size, l.core_size), (0, 0, 0));
        assert!(l.address_space >= 32 << 20 && l.address_space <= 128 << 20);
    }
}

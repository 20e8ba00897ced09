//! Confinement of the pre-auth process, checked from outside: each scenario runs in a
//! fresh single-threaded process, forks the children it confines, and inspects them the
//! way the privilege tests of the whole server do: `/proc/<pid>/status` read by the
//! parent while the child waits, and the child's wait status.
//!
//! libtest runs every test on a thread of its own, so a test process can neither fork
//! (pop3-sys refuses) nor be confined (seccomp and Landlock apply per thread, and
//! `confine` refuses). Each #[test] therefore re-executes this binary with
//! `POP3_SYS_SCENARIO` set; a function in `.init_array` runs the scenario before libtest's
//! `main` starts any thread and exits with 0 (pass) or 1 (fail, reason on stderr).
//!
//! A confined child that panics dies of SIGSYS (abort needs tgkill), so the children
//! here never panic: they report progress over a pipe, and every death test checks that
//! the child got past `confine` before it died.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ensure, ok, run_scenario, Outcome};

use pop3_sys::poll::TimedFd;
use pop3_sys::process::{close_other_fds, dup_onto, exit_now, fork, pipe, wait, Exit, Fork, Pid};
use pop3_sys::sandbox::{
    allowed_syscall_names, allowed_syscalls, confine, enter_chroot, forbid_filesystem,
    landlock_abi, Applied, Confinement, Limits,
};
use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The pre-auth identity used here: nobody/nogroup. drop_to needs no passwd entry.
const UID: u32 = 65534;
const GID: u32 = 65534;

/// The scenario called `name` (common::run_scenario).
fn dispatch(name: &str) -> Outcome {
    // As std's runtime would before main (and popa3d does): a write to a closed pipe is
    // an EPIPE error, not a signal.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    match name {
        "status" => confined_status(),
        "forbidden" => forbidden_calls_kill(),
        "works" => confined_child_works(),
        "chroot_refusals" => chroot_refusals(),
        "landlock" => landlock_alone(),
        "threads" => confine_refuses_threads(),
        other => Err(format!("unknown scenario {other:?}")),
    }
}

fn require_root() {
    assert_eq!(
        pop3_sys::privileges::euid(),
        0,
        "this test must run as root: scripts/test.sh"
    );
}

/// A fresh chroot directory: owned by root (we are root), mode 0755, empty.
struct ChrootDir(PathBuf);

impl ChrootDir {
    fn new(tag: &str) -> Result<ChrootDir, String> {
        let p = std::env::temp_dir().join(format!("pop3-sys-chroot-{}-{tag}", std::process::id()));
        ok("mkdir", std::fs::create_dir(&p))?;
        ok(
            "chmod",
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)),
        )?;
        Ok(ChrootDir(p))
    }

    fn confinement(&self) -> Confinement {
        Confinement::new(self.0.clone(), UID, GID)
    }
}

impl Drop for ChrootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn status_field<'a>(status: &'a str, key: &str) -> Vec<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default()
}

/// `Max open files  16  16  files` -> ("16", "16")
fn limit<'a>(limits: &'a str, name: &str) -> (&'a str, &'a str) {
    let Some(rest) = limits.lines().find_map(|l| l.strip_prefix(name)) else {
        return ("?", "?");
    };
    let mut it = rest.split_whitespace();
    (it.next().unwrap_or("?"), it.next().unwrap_or("?"))
}

fn describe(a: &Applied) -> String {
    format!("landlock={:?} seccomp={}", a.landlock, a.seccomp)
}

// ---------------------------------------------------------------------------------------
// After confine: identity, no_new_privs, seccomp, root, limits, as the parent sees them.

fn confined_status() -> Outcome {
    let dir = ChrootDir::new("status")?;
    let cfg = dir.confinement();
    let (ready_r, ready_w) = ok("pipe", pipe())?;
    let (go_r, go_w) = ok("pipe", pipe())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop((ready_r, go_w));
            let mut ready = File::from(ready_w);
            let report = match confine(&cfg) {
                Ok(a) => describe(&a),
                Err(e) => format!("error {e}"),
            };
            let _ = ready.write_all(report.as_bytes());
            drop(ready);
            // Wait, confined, until the parent has looked at us.
            let _ = File::from(go_r).read(&mut [0]);
            exit_now(0);
        }
        Fork::Parent(pid) => pid,
    };
    drop((ready_w, go_r));
    let mut report = String::new();
    ok(
        "read report",
        File::from(ready_r).read_to_string(&mut report),
    )?;
    let inspected = inspect_confined(pid, &dir.0, &report);
    drop(go_w); // let the child go, whatever we found
    let status = ok("wait", wait(pid))?;
    inspected?;
    ensure!(status == Exit::Exited(0), "confined child ended {status:?}");
    Ok(())
}

fn inspect_confined(pid: Pid, root: &Path, report: &str) -> Outcome {
    let abi = landlock_abi();
    let expected = describe(&Applied {
        landlock: abi,
        seccomp: cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
    });
    ensure!(
        report == expected,
        "confine reported {report:?}, expected {expected:?}"
    );
    eprintln!("confine applied: {report} (kernel Landlock ABI {abi:?})");

    let proc = PathBuf::from(format!("/proc/{}", pid.as_raw()));
    let status = ok("status", std::fs::read_to_string(proc.join("status")))?;
    let id = UID.to_string();
    let gid = GID.to_string();
    let want = |key: &str, v: Vec<&str>| -> Outcome {
        let got = status_field(&status, key);
        ensure!(got == v, "{key} is {got:?}, expected {v:?}");
        Ok(())
    };
    want("Uid:", vec![&id; 4])?;
    want("Gid:", vec![&gid; 4])?;
    want("Groups:", vec![&gid])?;
    want("NoNewPrivs:", vec!["1"])?;
    want("Seccomp:", vec!["2"])?;
    want("Seccomp_filters:", vec!["1"])?;
    want("CapEff:", vec!["0000000000000000"])?;
    want("CapPrm:", vec!["0000000000000000"])?;
    want("Threads:", vec!["1"])?;
    eprintln!("confined VmSize: {:?}", status_field(&status, "VmSize:"));

    let proc_root = ok("readlink root", std::fs::read_link(proc.join("root")))?;
    ensure!(
        proc_root == root,
        "root is {proc_root:?}, expected {root:?}"
    );
    let cwd = ok("readlink cwd", std::fs::read_link(proc.join("cwd")))?;
    ensure!(cwd == root, "cwd is {cwd:?}, expected {root:?}");

    let limits = ok("limits", std::fs::read_to_string(proc.join("limits")))?;
    let d = Limits::default();
    for (name, value) in [
        ("Max open files", d.open_files),
        ("Max processes", d.processes),
        ("Max file size", d.file_size),
        ("Max core file size", d.core_size),
        ("Max address space", d.address_space),
    ] {
        let v = value.to_string();
        let got = limit(&limits, name);
        ensure!(got == (&v, &v), "{name}: {got:?}, expected {v} {v}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Forbidden system calls kill the confined process with SIGSYS.

/// Forks a child that prepares with `before` (unconfined), confines itself, reports "R"
/// and runs `call`. It must die of SIGSYS having reported exactly "R": dying earlier (in
/// confine) or surviving the call ("RS") both fail.
fn dies_of_sigsys<T>(
    what: &str,
    cfg: &Confinement,
    before: impl FnOnce() -> T,
    call: impl FnOnce(T),
) -> Outcome {
    let (r, w) = ok("pipe", pipe())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop(r);
            let mut w = File::from(w);
            let state = before();
            if confine(cfg).is_err() {
                exit_now(10);
            }
            let _ = w.write_all(b"R");
            call(state);
            let _ = w.write_all(b"S");
            exit_now(11);
        }
        Fork::Parent(pid) => pid,
    };
    drop(w);
    let mut got = Vec::new();
    ok("read", File::from(r).read_to_end(&mut got))?;
    let status = ok("wait", wait(pid))?;
    ensure!(
        got == b"R" && status == Exit::Signaled(libc::SIGSYS),
        "{what}: child reported {:?} and ended {status:?}, expected \"R\" and SIGSYS",
        String::from_utf8_lossy(&got)
    );
    eprintln!("{what}: killed by SIGSYS");
    Ok(())
}

fn forbidden_calls_kill() -> Outcome {
    let dir = ChrootDir::new("forbidden")?;
    let cfg = dir.confinement();
    let nothing = || ();

    dies_of_sigsys("open (std File::open, openat)", &cfg, nothing, |()| {
        let _ = File::open("/");
    })?;
    #[cfg(target_arch = "x86_64")]
    dies_of_sigsys("open(2) itself", &cfg, nothing, |()| {
        // SAFETY: the path is a NUL-terminated literal; the call does not return.
        unsafe { libc::syscall(libc::SYS_open, c"/".as_ptr(), libc::O_RDONLY) };
    })?;
    dies_of_sigsys("stat", &cfg, nothing, |()| {
        let _ = std::fs::metadata("/");
    })?;
    dies_of_sigsys("socket", &cfg, nothing, |()| {
        let _ = UnixDatagram::unbound();
    })?;
    dies_of_sigsys(
        "connect on a socket made before confine",
        &cfg,
        || UnixDatagram::unbound().ok(),
        |s| {
            if let Some(s) = s {
                let _ = s.connect("/dev/log");
            }
        },
    )?;
    dies_of_sigsys(
        "sendto with a destination address",
        &cfg,
        || UnixDatagram::unbound().ok(),
        |s| {
            if let Some(s) = s {
                let _ = s.send_to(b"x", "/dev/log");
            }
        },
    )?;
    dies_of_sigsys("execve", &cfg, nothing, |()| {
        let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: NUL-terminated path, NULL-terminated argv and envp arrays that outlive
        // the call.
        unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    })?;
    dies_of_sigsys("fork", &cfg, nothing, |()| {
        // SAFETY: the child, if there ever were one, exits at once.
        if unsafe { libc::fork() } == 0 {
            exit_now(0);
        }
    })?;
    dies_of_sigsys("kill", &cfg, nothing, |()| {
        // SAFETY: signal 0 to our parent only checks for existence.
        unsafe { libc::kill(libc::getppid(), 0) };
    })?;
    dies_of_sigsys("ptrace", &cfg, nothing, |()| {
        // SAFETY: PTRACE_TRACEME with null pointers, which the kernel does not use.
        unsafe {
            libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
    })?;
    dies_of_sigsys("setuid", &cfg, nothing, |()| {
        // SAFETY: integer argument only.
        unsafe { libc::setuid(0) };
    })?;
    dies_of_sigsys("mmap with PROT_EXEC", &cfg, nothing, |()| {
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
    })?;
    dies_of_sigsys(
        "mprotect",
        &cfg,
        || {
            // SAFETY: a fresh anonymous mapping, used only by the mprotect below.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        },
        |page| {
            // SAFETY: `page` is our own mapping of one page (or MAP_FAILED, which
            // mprotect rejects); no Rust value refers to it.
            unsafe { libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) };
        },
    )?;
    #[cfg(target_arch = "x86_64")]
    legacy_abi_is_killed(&cfg)?;
    Ok(())
}

/// `int 0x80` from a 64-bit process makes an i386 system call, where 20 is getpid (and
/// 3, 4 are read and write: numbers our list allows under the other ABI). The filter
/// checks the architecture first, so it must kill. Skipped if the kernel has no i386
/// emulation (then the instruction faults even unconfined).
#[cfg(target_arch = "x86_64")]
fn legacy_abi_is_killed(cfg: &Confinement) -> Outcome {
    fn int80_getpid() -> i32 {
        let mut ret: i32 = 20;
        // SAFETY: an i386 getpid through int 0x80: no memory is read or written, and
        // the kernel preserves every register except eax.
        unsafe { std::arch::asm!("int 0x80", inlateout("eax") ret, options(nostack)) };
        ret
    }
    let pid = match ok("fork", fork())? {
        Fork::Child => exit_now(i32::from(int80_getpid() <= 0)),
        Fork::Parent(pid) => pid,
    };
    if ok("wait", wait(pid))? != Exit::Exited(0) {
        eprintln!("int 0x80: no i386 emulation in this kernel, skipped");
        return Ok(());
    }
    dies_of_sigsys(
        "i386 getpid via int 0x80",
        cfg,
        || (),
        |()| {
            int80_getpid();
        },
    )
}

// ---------------------------------------------------------------------------------------
// What the pre-auth process does keeps working under confinement.

fn confined_child_works() -> Outcome {
    let dir = ChrootDir::new("works")?;
    let cfg = dir.confinement();
    let (in_r, in_w) = ok("pipe", pipe())?;
    let (out_r, out_w) = ok("pipe", pipe())?;
    let (client_here, client_there) = ok("socketpair", UnixStream::pair())?;
    let (log_here, log_there) = ok("socketpair", UnixDatagram::pair())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop((in_w, out_r, client_here, log_here));
            if dup_onto(in_r.as_fd(), 0).is_err() || dup_onto(out_w.as_fd(), 1).is_err() {
                exit_now(20);
            }
            drop((in_r, out_w));
            close_other_fds(&[client_there.as_raw_fd(), log_there.as_raw_fd()]);
            let client = TimedFd::new(
                OwnedFd::from(client_there),
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(5)),
            );
            let code = match confine(&cfg) {
                Ok(_) => confined_workload(client, &log_there),
                Err(e) => {
                    eprintln!("confine: {e}");
                    21
                }
            };
            let _ = std::io::stdout().flush();
            // The ordinary way out (atexit handlers, std's cleanup), not exit_now.
            std::process::exit(code);
        }
        Fork::Parent(pid) => pid,
    };
    drop((in_r, out_w, client_there, log_there));

    ok("stdin", File::from(in_w).write_all(b"USER bob\r\n"))?;
    let mut client = client_here;
    ok("client", client.write_all(b"PASS secret\r\n"))?;
    let mut out = String::new();
    ok("stdout", File::from(out_r).read_to_string(&mut out))?;
    let mut reply = Vec::new();
    ok(
        "client timeout",
        client.set_read_timeout(Some(Duration::from_secs(10))),
    )?;
    ok("client reply", client.read_to_end(&mut reply))?;
    ok(
        "log timeout",
        log_here.set_read_timeout(Some(Duration::from_secs(10))),
    )?;
    let mut datagram = [0; 128];
    let n = log_here.recv(&mut datagram);
    let status = ok("wait", wait(pid))?;
    ensure!(status == Exit::Exited(0), "confined child ended {status:?}");
    ensure!(out == "+OK bob\n", "stdout carried {out:?}");
    ensure!(reply == b"+OK secret\r\n", "client got {reply:?}");
    let n = ok("log datagram", n)?;
    let expected = format!("<30>popa3d[{}]: confined", pid.as_raw());
    ensure!(
        datagram[..n] == *expected.as_bytes(),
        "syslog got {:?}",
        String::from_utf8_lossy(&datagram[..n])
    );
    Ok(())
}

/// Runs confined. Returns an exit code: 0, or the step that went wrong (which it also
/// prints, so a SIGSYS can be placed too).
fn confined_workload(mut client: TimedFd, log: &UnixDatagram) -> i32 {
    macro_rules! step {
        ($code:expr, $name:expr, $ok:expr) => {{
            eprintln!("confined: {}", $name);
            if !$ok {
                eprintln!("confined: {} failed", $name);
                return $code;
            }
        }};
    }
    let mut line = String::new();
    step!(
        30,
        "read a line from stdin",
        std::io::stdin().read_line(&mut line).is_ok() && line == "USER bob\r\n"
    );
    let mut buf = [0u8; 64];
    let n = client.read(&mut buf).unwrap_or(0);
    step!(
        31,
        "read from the client socket",
        &buf[..n] == b"PASS secret\r\n"
    );
    client.set_read_timeout(Some(Duration::from_millis(100)));
    let start = Instant::now();
    let timed_out = matches!(client.read(&mut buf), Err(e) if e.kind() == ErrorKind::TimedOut);
    step!(
        32,
        "a read with nothing to read times out",
        timed_out && start.elapsed() >= Duration::from_millis(100)
    );
    step!(33, "allocate, grow and free 16 MiB", {
        let mut v = vec![1u8; 8 << 20];
        v.resize(16 << 20, 2);
        let sum: u64 = v.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        sum == 2048 + 2 * 2048
    });
    step!(34, "many small allocations", {
        let boxes: Vec<Box<[u8; 100]>> = (0..20_000).map(|i| Box::new([i as u8; 100])).collect();
        boxes.len() == 20_000
    });
    step!(35, "a HashMap (random seed)", {
        let mut h = HashMap::new();
        h.insert("user", "bob");
        h.get("user") == Some(&"bob")
    });
    step!(36, "sleep and read the clocks", {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        start.elapsed() >= Duration::from_millis(20) && SystemTime::now() > SystemTime::UNIX_EPOCH
    });
    let line_out = format!("<30>popa3d[{}]: confined", std::process::id());
    step!(
        37,
        "log to the connected syslog socket",
        log.send(line_out.as_bytes()).is_ok()
    );
    step!(38, "write to stdout", {
        let user = line.trim_end().trim_start_matches("USER ");
        println!("+OK {user}");
        std::io::stdout().flush().is_ok()
    });
    step!(
        39,
        "write to the client socket",
        client.write_all(b"+OK secret\r\n").is_ok()
    );
    drop(client);
    0
}

// ---------------------------------------------------------------------------------------
// chroot refuses directories others could write to.

fn root_is_slash() -> Result<bool, String> {
    Ok(ok("readlink", std::fs::read_link("/proc/self/root"))? == Path::new("/"))
}

fn chroot_refusals() -> Outcome {
    let cases: [(&str, u32, Option<u32>, &str); 5] = [
        ("world-writable", 0o757, None, "writable by group or others"),
        ("group-writable", 0o775, None, "writable by group or others"),
        ("sticky-1777", 0o1777, None, "writable by group or others"),
        ("not-root", 0o755, Some(UID), "not root"),
        ("other-owner-0700", 0o700, Some(1), "not root"),
    ];
    for (tag, mode, owner, why) in cases {
        let dir = ChrootDir::new(tag)?;
        ok(
            "chmod",
            std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(mode)),
        )?;
        if let Some(uid) = owner {
            ok("chown", std::os::unix::fs::chown(&dir.0, Some(uid), None))?;
        }
        let err = match enter_chroot(&dir.0) {
            Ok(()) => return Err(format!("{tag}: chroot accepted")),
            Err(e) => e,
        };
        ensure!(err.kind() == ErrorKind::PermissionDenied, "{tag}: {err:?}");
        let msg = err.to_string();
        ensure!(
            msg.contains(why) && msg.contains(&*dir.0.to_string_lossy()),
            "{tag}: unclear error {msg:?}"
        );
        ensure!(root_is_slash()?, "{tag}: the root changed although refused");
        // confine refuses for the same reason, before changing anything.
        let e = match confine(&dir.confinement()) {
            Ok(_) => return Err(format!("{tag}: confine accepted")),
            Err(e) => e,
        };
        ensure!(e.to_string().contains(why), "{tag}: confine said {e}");
        ensure!(
            pop3_sys::privileges::euid() == 0 && root_is_slash()?,
            "{tag}: confine changed something"
        );
        eprintln!("{tag}: refused: {msg}");
    }

    let missing = std::env::temp_dir().join("pop3-sys-no-such-dir");
    ensure!(
        enter_chroot(&missing).map_err(|e| e.kind()) == Err(ErrorKind::NotFound),
        "missing directory not reported as such"
    );
    let file = std::env::temp_dir().join(format!("pop3-sys-file-{}", std::process::id()));
    ok("create", std::fs::write(&file, b""))?;
    let r = enter_chroot(&file);
    let _ = std::fs::remove_file(&file);
    ensure!(r.is_err(), "chroot into a regular file accepted");

    let dir = ChrootDir::new("root-uid")?;
    let e = confine(&Confinement::new(dir.0.clone(), 0, 0));
    ensure!(
        e.as_ref().is_err_and(|e| e.to_string().contains("uid 0")),
        "confine as uid 0: {e:?}"
    );
    ensure!(root_is_slash()?, "confine as uid 0 changed the root");

    // And a proper directory is entered (in a child, so that we can clean up after).
    let good = ChrootDir::new("good")?;
    let marker = good.0.join("marker");
    ok("marker", std::fs::write(&marker, b""))?;
    let pid = match ok("fork", fork())? {
        Fork::Child => match enter_good_chroot(&good.0) {
            Ok(()) => exit_now(0),
            Err(why) => {
                eprintln!("{why}");
                exit_now(1)
            }
        },
        Fork::Parent(pid) => pid,
    };
    let status = ok("wait", wait(pid))?;
    let _ = std::fs::remove_file(&marker);
    ensure!(
        status == Exit::Exited(0),
        "chroot into a good directory: {status:?}"
    );
    Ok(())
}

fn enter_good_chroot(dir: &Path) -> Outcome {
    ok("chroot", enter_chroot(dir))?;
    let names: Vec<_> = ok("read_dir /", std::fs::read_dir("/"))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    ensure!(names == ["marker"], "/ after chroot holds {names:?}");
    ensure!(
        std::env::current_dir().ok().as_deref() == Some(Path::new("/")),
        "cwd is not / after chroot"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Landlock on its own (no root needed): nothing on any filesystem can be opened.

fn landlock_alone() -> Outcome {
    let exe = ok("current_exe", std::env::current_exe())?;
    ok("open before", File::open(&exe))?;
    let (keep_r, keep_w) = ok("pipe", pipe())?;
    let abi = landlock_abi();
    let applied = ok("forbid_filesystem", forbid_filesystem())?;
    ensure!(
        applied == abi,
        "applied {applied:?}, kernel reports {abi:?}"
    );
    let Some(abi) = applied else {
        eprintln!("Landlock: not available in this kernel, not enforced");
        return Ok(());
    };
    eprintln!("Landlock: enforced with ABI {abi}");
    for (what, r) in [
        ("open the test binary", File::open(&exe).map(drop)),
        ("open /", File::open("/").map(drop)),
        ("list /", std::fs::read_dir("/").map(drop)),
        (
            "create a file",
            File::create(std::env::temp_dir().join("pop3-sys-landlock")).map(drop),
        ),
        (
            "read /proc/self/status",
            std::fs::read("/proc/self/status").map(drop),
        ),
        (
            "make a directory",
            std::fs::create_dir(std::env::temp_dir().join("pop3-sys-landlock-dir")),
        ),
    ] {
        match r {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            other => return Err(format!("{what}: {other:?}, expected permission denied")),
        }
    }
    // Descriptors opened before still work.
    ok("write", File::from(keep_w).write_all(b"ok"))?;
    let mut got = Vec::new();
    ok("read", File::from(keep_r).read_to_end(&mut got))?;
    ensure!(got == b"ok", "pipe carried {got:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn confine_refuses_threads() -> Outcome {
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = wait_for_go.recv();
    });
    let root = std::env::temp_dir(); // never reached: the thread check comes first
    let r = confine(&Confinement::new(root, UID, GID));
    go.send(()).map_err(|e| e.to_string())?;
    thread.join().map_err(|_| "thread panicked")?;
    ensure!(
        r.as_ref().is_err_and(|e| e.to_string().contains("thread")),
        "confine with two threads: {r:?}"
    );
    ensure!(root_is_slash()?, "the root changed");
    let status = ok("status", std::fs::read_to_string("/proc/self/status"))?;
    ensure!(
        status_field(&status, "NoNewPrivs:") == ["0"],
        "no_new_privs was set"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn confined_process_as_its_parent_sees_it() {
    require_root();
    run_scenario("status");
}

#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn forbidden_system_calls_kill_with_sigsys() {
    require_root();
    run_scenario("forbidden");
}

#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn confined_process_reads_writes_allocates_sleeps_and_exits() {
    require_root();
    run_scenario("works");
}

#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn chroot_refuses_directories_others_can_write() {
    require_root();
    run_scenario("chroot_refusals");
}

#[test]
fn landlock_forbids_every_filesystem_access() {
    run_scenario("landlock");
}

#[test]
fn confine_refuses_a_multithreaded_process() {
    run_scenario("threads");
}

#[test]
fn allow_list_is_short_and_named() {
    let names: Vec<_> = allowed_syscall_names().collect();
    assert_eq!(names.len(), allowed_syscalls().len());
    for forbidden in [
        "open", "openat", "socket", "connect", "execve", "clone", "fork", "kill",
    ] {
        assert!(!names.contains(&forbidden), "{forbidden} is allowed");
    }
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        for needed in ["read", "write", "exit_group", "ppoll", "mmap", "sendto"] {
            assert!(names.contains(&needed), "{needed} is missing");
        }
    }
    eprintln!("allowed: {}", names.join(" "));
}

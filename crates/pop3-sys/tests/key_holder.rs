//! The key holder's confinement (`sandbox::confine_key_holder`) and the calls it relies
//! on (`poll::wait_any_readable`, `net::send_fd`/`recv_fd`, `process::fork` under that
//! filter, `process::ignore_child_exits`, `set_dumpable`, `kill`, the descriptor
//! limits), each scenario in a fresh single-threaded process (tests/common). None needs
//! root.
//!
//! A confined child cannot write to a pipe (write(2) is not in the holder's list), so
//! the children here report over a Unix socket, which std writes with sendto(2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ensure, ok, run_scenario, Outcome};

use pop3_sys::net::{recv_fd, send_fd};
use pop3_sys::poll::wait_any_readable;
use pop3_sys::process::{
    self, exit_now, fork, ignore_child_exits, is_dumpable, set_dumpable, try_wait_any, wait, Exit,
    Fork, Pid,
};
use pop3_sys::sandbox::{confine_key_holder, key_holder_allowed_syscall_names};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The scenario called `name` (common::run_scenario).
fn dispatch(name: &str) -> Outcome {
    // As std's runtime would before main: a write to a closed pipe is an EPIPE error.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    match name {
        "serves" => confined_holder_serves(),
        "forbidden" => forbidden_calls_kill(),
        "threads" => refuses_threads(),
        "reaping" => children_are_reaped(),
        "dumpable" => dumpable(),
        "kill" => kill_child(),
        "fd_limit" => fd_limit(),
        other => Err(format!("unknown scenario {other:?}")),
    }
}

fn status_field(pid: Pid, key: &str) -> Result<String, String> {
    let status = ok(
        "status",
        std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw())),
    )?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .ok_or_else(|| format!("no {key} for {pid:?}"))
}

/// Polls until `done` holds, for at most TIMEOUT.
fn eventually(what: &str, mut done: impl FnMut() -> Result<bool, String>) -> Outcome {
    let start = Instant::now();
    while !done()? {
        ensure!(start.elapsed() < TIMEOUT, "{what}: not after {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// What the holder does keeps working under its filter: wait (ppoll), receive a
// descriptor, fork (with no look at /proc), and in the child allocate, draw random
// bytes, answer, exit.

fn confined_holder_serves() -> Outcome {
    let (parent_end, child_end) = ok("socketpair", UnixStream::pair())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop(parent_end);
            exit_now(holder_loop(child_end))
        }
        Fork::Parent(pid) => pid,
    };
    drop(child_end);
    let control = parent_end;
    ok("timeout", control.set_read_timeout(Some(TIMEOUT)))?;
    let mut ready = [0u8; 1];
    ok("ready", (&control).read_exact(&mut ready))?;
    ensure!(ready == *b"R", "child reported {ready:?}");

    let want = |key: &str, value: &str| -> Outcome {
        let got = status_field(pid, key)?;
        ensure!(got == value, "{key} {got:?}, expected {value:?}");
        Ok(())
    };
    want("NoNewPrivs:", "1")?;
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        want("Seccomp:", "2")?;
        want("Seccomp_filters:", "1")?;
    }
    let limits = ok(
        "limits",
        std::fs::read_to_string(format!("/proc/{}/limits", pid.as_raw())),
    )?;
    ensure!(
        limits.lines().any(|l| l.starts_with("Max core file size")
            && l.split_whitespace().skip(4).take(2).eq(["0", "0"])),
        "core limit not 0:\n{limits}"
    );

    for round in 0..3 {
        let (ours, theirs) = ok("channel", UnixStream::pair())?;
        ok("send_fd", send_fd(&control, &[round], theirs.as_fd()))?;
        drop(theirs);
        ok("timeout", ours.set_read_timeout(Some(TIMEOUT)))?;
        let mut answer = String::new();
        ok("answer", (&ours).read_to_string(&mut answer))?;
        ensure!(
            answer == format!("answer {round}: 16 MiB, 20000 boxes, 32 random bytes"),
            "round {round}: {answer:?}"
        );
    }
    // The grandchildren are gone, not zombies.
    let children = format!("/proc/{0}/task/{0}/children", pid.as_raw());
    eventually("the holder's children are reaped", || {
        Ok(ok("children", std::fs::read_to_string(&children))?
            .trim()
            .is_empty())
    })?;
    drop(control);
    let status = ok("wait", wait(pid))?;
    ensure!(status == Exit::Exited(0), "holder ended {status:?}");
    Ok(())
}

/// The child's side: confine, report, serve until end of file. Returns an exit code.
fn holder_loop(control: UnixStream) -> i32 {
    if ignore_child_exits().is_err() || confine_key_holder().is_err() {
        return 10;
    }
    if (&control).write_all(b"R").is_err() {
        return 11;
    }
    loop {
        // As the holder waits: ppoll, here with one descriptor and no timeout.
        match wait_any_readable(&[control.as_fd()], None) {
            Ok(ready) if ready == [true] => {}
            Ok(_) => continue,
            Err(_) => return 15,
        }
        let mut byte = [0u8; 1];
        let (n, fd) = match recv_fd(&control, &mut byte) {
            Ok(got) => got,
            Err(_) => return 12,
        };
        let Some(fd) = fd else {
            return if n == 0 { 0 } else { 13 };
        };
        let channel = UnixStream::from(fd);
        match fork() {
            Ok(Fork::Child) => exit_now(answer(byte[0], channel)),
            Ok(Fork::Parent(_)) => drop(channel),
            Err(_) => return 14,
        }
    }
}

fn answer(round: u8, channel: UnixStream) -> i32 {
    let big = vec![7u8; 16 << 20];
    let boxes: Vec<Box<[u8; 100]>> = (0..20_000).map(|i| Box::new([i as u8; 100])).collect();
    let mut random = [0u8; 32];
    // SAFETY: `random` is writable for its length.
    let n = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    let text = format!(
        "answer {round}: {} MiB, {} boxes, {n} random bytes",
        big.len() >> 20,
        boxes.len()
    );
    drop((big, boxes));
    match (&channel).write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

// ---------------------------------------------------------------------------------------
// Everything else kills with SIGSYS.

/// Forks a child that prepares with `before`, confines itself as the key holder,
/// reports "R" and runs `call`. It must die of SIGSYS having reported exactly "R".
fn dies_of_sigsys<T>(what: &str, before: impl FnOnce() -> T, call: impl FnOnce(T)) -> Outcome {
    let (parent_end, child_end) = ok("socketpair", UnixStream::pair())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop(parent_end);
            let state = before();
            if confine_key_holder().is_err() {
                exit_now(10);
            }
            let _ = (&child_end).write_all(b"R");
            call(state);
            let _ = (&child_end).write_all(b"S");
            exit_now(11);
        }
        Fork::Parent(pid) => pid,
    };
    drop(child_end);
    ok("timeout", parent_end.set_read_timeout(Some(TIMEOUT)))?;
    let mut got = Vec::new();
    ok("read", (&parent_end).read_to_end(&mut got))?;
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
    let nothing = || ();
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        eprintln!("no key holder filter on this architecture");
        return Ok(());
    }
    eprintln!(
        "allowed: {}",
        key_holder_allowed_syscall_names()
            .collect::<Vec<_>>()
            .join(" ")
    );
    dies_of_sigsys("openat (File::open)", nothing, |()| {
        let _ = File::open("/etc/hostname");
    })?;
    #[cfg(target_arch = "x86_64")]
    dies_of_sigsys("open(2) itself", nothing, |()| {
        // SAFETY: the path is a NUL-terminated literal; the call does not return.
        unsafe { libc::syscall(libc::SYS_open, c"/".as_ptr(), libc::O_RDONLY) };
    })?;
    dies_of_sigsys("reading /proc (is_single_threaded)", nothing, |()| {
        let _ = process::is_single_threaded();
    })?;
    dies_of_sigsys(
        "write(2) on a pipe",
        || process::pipe().ok(),
        |p| {
            if let Some((_r, w)) = p {
                let _ = File::from(w).write_all(b"x");
            }
        },
    )?;
    dies_of_sigsys("socketpair", nothing, |()| {
        let _ = UnixStream::pair();
    })?;
    dies_of_sigsys(
        "sendmsg (send_fd)",
        || UnixStream::pair().ok(),
        |p| {
            if let Some((a, b)) = p {
                let _ = send_fd(&a, b"x", b.as_fd());
            }
        },
    )?;
    dies_of_sigsys(
        "setsockopt (a read timeout)",
        || UnixStream::pair().ok(),
        |p| {
            if let Some((a, _b)) = p {
                let _ = a.set_read_timeout(Some(TIMEOUT));
            }
        },
    )?;
    #[cfg(target_arch = "x86_64")]
    dies_of_sigsys(
        "poll(2) (ppoll is allowed)",
        || UnixStream::pair().ok(),
        |p| {
            if let Some((a, _b)) = p {
                let mut pfd = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&a),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, for the duration of the call.
                unsafe { libc::poll(&mut pfd, 1, 0) };
            }
        },
    )?;
    dies_of_sigsys("prlimit64 (raise_fd_limit)", nothing, |()| {
        let _ = process::raise_fd_limit(u64::MAX);
    })?;
    dies_of_sigsys("a thread (clone3)", nothing, |()| {
        let _ = std::thread::Builder::new().spawn(|| ());
    })?;
    dies_of_sigsys("clone with CLONE_NEWUSER", nothing, |()| {
        // SAFETY: a fork-like clone (no shared memory, no new stack); the child, if one
        // were ever made, exits at once.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if rc == 0 {
            exit_now(0);
        }
    })?;
    dies_of_sigsys("wait4", nothing, |()| {
        let _ = try_wait_any();
    })?;
    dies_of_sigsys("rt_sigaction", nothing, |()| {
        let _ = ignore_child_exits();
    })?;
    dies_of_sigsys("prctl", nothing, |()| {
        let _ = is_dumpable();
    })?;
    dies_of_sigsys("kill", nothing, |()| {
        // SAFETY: signal 0 to our parent only checks for existence.
        unsafe { libc::kill(libc::getppid(), 0) };
    })?;
    dies_of_sigsys("execve", nothing, |()| {
        let argv = [c"/bin/true".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null()];
        // SAFETY: NUL-terminated path, NULL-terminated argv and envp that outlive the call.
        unsafe { libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    })?;
    dies_of_sigsys("ptrace", nothing, |()| {
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
    dies_of_sigsys("mmap with PROT_EXEC", nothing, |()| {
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
            // SAFETY: `page` is our own one-page mapping (or MAP_FAILED, which mprotect
            // rejects); no Rust value refers to it.
            unsafe { libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) };
        },
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn refuses_threads() -> Outcome {
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = wait_for_go.recv();
    });
    let r = confine_key_holder();
    go.send(()).map_err(|e| e.to_string())?;
    thread.join().map_err(|_| "thread panicked")?;
    ensure!(
        r.as_ref().is_err_and(|e| e.to_string().contains("thread")),
        "confine_key_holder with two threads: {r:?}"
    );
    ensure!(
        status_field(process::getpid(), "NoNewPrivs:")? == "0",
        "no_new_privs was set"
    );
    ensure!(ok("dumpable", is_dumpable())?, "dumpable was cleared");
    Ok(())
}

/// After ignore_child_exits a child that ends leaves no zombie and is never reported.
fn children_are_reaped() -> Outcome {
    ok("ignore_child_exits", ignore_child_exits())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => exit_now(3),
        Fork::Parent(pid) => pid,
    };
    let proc = format!("/proc/{}", pid.as_raw());
    eventually("the child's /proc entry goes away", || {
        Ok(!std::path::Path::new(&proc).exists())
    })?;
    let reaped = ok("try_wait_any", try_wait_any())?;
    ensure!(reaped.is_none(), "a child was reported: {reaped:?}");
    Ok(())
}

fn dumpable() -> Outcome {
    ok("set false", set_dumpable(false))?;
    ensure!(!ok("get", is_dumpable())?, "still dumpable");
    ok("set true", set_dumpable(true))?;
    ensure!(ok("get", is_dumpable())?, "not dumpable again");
    Ok(())
}

fn kill_child() -> Outcome {
    for pid in [0, 1, -1, -5] {
        ensure!(
            process::kill(Pid::from_raw(pid), 0).is_err(),
            "kill({pid}) accepted"
        );
    }
    let (r, w) = ok("pipe", process::pipe())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop(w);
            // Blocks until killed (the parent never writes).
            let _ = File::from(r).read(&mut [0]);
            exit_now(0);
        }
        Fork::Parent(pid) => pid,
    };
    drop(r);
    ok("kill", process::kill(pid, libc::SIGKILL))?;
    let status = ok("wait", wait(pid))?;
    drop(w);
    ensure!(
        status == Exit::Signaled(libc::SIGKILL),
        "killed child ended {status:?}"
    );
    Ok(())
}

/// The holder raises its soft descriptor limit to the hard one before confinement; a
/// test lowers both to watch it.
fn fd_limit() -> Outcome {
    let limits = || -> Result<Vec<String>, String> {
        let text = ok("limits", std::fs::read_to_string("/proc/self/limits"))?;
        Ok(text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(|l| {
                l.split_whitespace()
                    .skip(3)
                    .take(2)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default())
    };
    ok("set_fd_limit", process::set_fd_limit(40, 50))?;
    ensure!(limits()? == ["40", "50"], "limits {:?}", limits()?);
    let e = process::set_fd_limit(51, 50);
    ensure!(
        e.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidInput),
        "soft above hard: {e:?}"
    );
    ensure!(limits()? == ["40", "50"], "changed by a refused call");
    let raised = ok("raise_fd_limit", process::raise_fd_limit(u64::MAX))?;
    ensure!(raised == 50, "raised to {raised}");
    ensure!(limits()? == ["50", "50"], "limits {:?}", limits()?);
    // Descriptor numbers stop below the limit.
    let mut held = Vec::new();
    let err = loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
        ensure!(held.len() < 100, "no limit on descriptors");
    };
    ensure!(
        err.raw_os_error() == Some(libc::EMFILE),
        "opening past the limit: {err}"
    );
    let highest = held
        .iter()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .max()
        .unwrap_or(0);
    ensure!(highest == 49, "highest descriptor {highest}");
    Ok(())
}

// ---------------------------------------------------------------------------------------

#[test]
fn confined_key_holder_receives_forks_and_answers() {
    run_scenario("serves");
}

#[test]
fn key_holder_forbidden_calls_kill_with_sigsys() {
    run_scenario("forbidden");
}

#[test]
fn confine_key_holder_refuses_a_multithreaded_process() {
    run_scenario("threads");
}

#[test]
fn ignored_child_exits_leave_no_zombie() {
    run_scenario("reaping");
}

#[test]
fn dumpable_flag_can_be_cleared_and_set() {
    run_scenario("dumpable");
}

#[test]
fn kill_signals_a_child_and_refuses_groups() {
    run_scenario("kill");
}

#[test]
fn descriptor_limits_can_be_lowered_and_raised_to_the_hard_limit() {
    run_scenario("fd_limit");
}

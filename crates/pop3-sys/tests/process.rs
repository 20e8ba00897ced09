//! fork, wait, pipes, exit_now and descriptor hygiene, each scenario in a fresh
//! single-threaded process.
//!
//! libtest runs every test on a thread of its own (even with `--test-threads=1`), so a
//! test process is never single-threaded and `pop3_sys::process::fork` rightly refuses
//! to fork it. Each #[test] therefore re-executes this binary with `POP3_SYS_SCENARIO`
//! set; a function in `.init_array` sees the variable, runs the scenario before libtest's
//! `main` has started any thread, and exits with 0 (pass) or 1 (fail, reason on stderr).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ensure, ok, run_scenario, Outcome, ENV};

use pop3_sys::process::{
    close_other_fds, dup_onto, exit_now, fork, getpid, is_single_threaded, pipe, set_umask, wait,
    Exit, Fork,
};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, RawFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// The scenario called `name` (common::run_scenario).
fn dispatch(name: &str) -> Outcome {
    match name {
        "fork_wait_pipe" => fork_wait_pipe(),
        "fork_refuses_threads" => fork_refuses_threads(),
        "exit_now_skips_cleanup" => exit_now_skips_cleanup(),
        "close_other_fds_keeps_only_listed" => close_other_fds_keeps_only_listed(),
        "umask_and_pid" => umask_and_pid(),
        other => Err(format!("unknown scenario {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------

fn fork_wait_pipe() -> Outcome {
    ensure!(
        ok("threads", is_single_threaded())?,
        "scenario process has threads"
    );
    let (r, w) = ok("pipe", pipe())?;
    let pid = match ok("fork", fork())? {
        Fork::Child => {
            drop(r);
            let _ = File::from(w).write_all(b"hello from the child");
            exit_now(7);
        }
        Fork::Parent(pid) => pid,
    };
    drop(w);
    let mut got = String::new();
    ok("read", File::from(r).read_to_string(&mut got))?;
    ensure!(got == "hello from the child", "pipe carried {got:?}");
    ensure!(pid != getpid(), "child has the parent's pid");
    let status = ok("wait", wait(pid))?;
    ensure!(status == Exit::Exited(7), "child ended {status:?}");
    ensure!(wait(pid).is_err(), "a reaped child can be waited for twice");

    // Killed by a signal.
    let pid = match ok("fork", fork())? {
        Fork::Child => std::process::abort(),
        Fork::Parent(pid) => pid,
    };
    let status = ok("wait", wait(pid))?;
    ensure!(
        status == Exit::Signaled(libc::SIGABRT),
        "aborted child ended {status:?}"
    );

    // Both ends close-on-exec.
    let (r, w) = ok("pipe", pipe())?;
    for fd in [r.as_raw_fd(), w.as_raw_fd()] {
        // SAFETY: F_GETFD on a descriptor we own; integer arguments only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        ensure!(
            flags & libc::FD_CLOEXEC != 0,
            "pipe end {fd} is not close-on-exec"
        );
    }
    Ok(())
}

fn fork_refuses_threads() -> Outcome {
    ensure!(
        ok("threads", is_single_threaded())?,
        "scenario process has threads"
    );
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = wait_for_go.recv();
    });
    ensure!(
        !ok("threads", is_single_threaded())?,
        "a second thread was not counted"
    );
    match fork() {
        Err(e) => ensure!(
            e.to_string().contains("thread"),
            "refusal does not say why: {e}"
        ),
        Ok(Fork::Child) => exit_now(0),
        Ok(Fork::Parent(pid)) => {
            let _ = wait(pid);
            return Err("fork() succeeded with two threads".into());
        }
    }
    go.send(()).map_err(|e| e.to_string())?;
    thread.join().map_err(|_| "thread panicked")?;
    // The kernel may take a moment to drop the finished thread from the count.
    let start = Instant::now();
    while !ok("threads", is_single_threaded())? {
        ensure!(
            start.elapsed() < Duration::from_secs(5),
            "thread count never went back to 1"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    match ok("fork after join", fork())? {
        Fork::Child => exit_now(0),
        Fork::Parent(pid) => {
            let status = ok("wait", wait(pid))?;
            ensure!(status == Exit::Exited(0), "{status:?}");
        }
    }
    Ok(())
}

/// exit_now must not run exit-time cleanup: bytes left in stdout's buffer are lost, where
/// std::process::exit would flush them.
fn exit_now_skips_cleanup() -> Outcome {
    let run = |clean: bool| -> Result<Vec<u8>, String> {
        let (r, w) = ok("pipe", pipe())?;
        let pid = match ok("fork", fork())? {
            Fork::Child => {
                if dup_onto(w.as_fd(), 1).is_err() {
                    exit_now(9);
                }
                print!("buffered, no newline");
                if clean {
                    std::process::exit(0);
                }
                exit_now(0);
            }
            Fork::Parent(pid) => pid,
        };
        drop(w);
        let mut got = Vec::new();
        ok("read", File::from(r).read_to_end(&mut got))?;
        let status = ok("wait", wait(pid))?;
        ensure!(status == Exit::Exited(0), "{status:?}");
        Ok(got)
    };
    let flushed = run(true)?;
    ensure!(
        flushed == b"buffered, no newline",
        "std::process::exit did not flush (control case): {flushed:?}"
    );
    let lost = run(false)?;
    ensure!(lost.is_empty(), "exit_now flushed stdout: {lost:?}");
    Ok(())
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table; integer arguments only.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn close_other_fds_keeps_only_listed() -> Outcome {
    // A spread of descriptors, with gaps, some kept.
    let mut fds = Vec::new();
    for _ in 0..6 {
        let (r, w) = ok("pipe", pipe())?;
        fds.push(r.into_raw_fd());
        fds.push(w.into_raw_fd());
    }
    let devnull = ok("open", File::open("/dev/null"))?;
    ok("dup onto 200", dup_onto(devnull.as_fd(), 200))?;
    fds.push(devnull.into_raw_fd());
    fds.push(200);
    let keep = [fds[1], fds[4], fds[5], 200, 0, 1, 2, -1];
    for &fd in &fds {
        ensure!(is_open(fd), "fd {fd} not open before");
    }
    // Every descriptor not kept is owned by no Rust value (into_raw_fd above).
    close_other_fds(&keep);
    for fd in 0..256 {
        let expected = fd <= 2 || keep.contains(&fd);
        ensure!(
            is_open(fd) == expected,
            "fd {fd}: open = {}, expected {expected}",
            is_open(fd)
        );
    }
    close_other_fds(&[]);
    for fd in 3..256 {
        ensure!(!is_open(fd), "fd {fd} survived close_other_fds(&[])");
    }
    ensure!(is_open(0) && is_open(1) && is_open(2), "stdio was closed");
    Ok(())
}

fn umask_and_pid() -> Outcome {
    let before = set_umask(0o077);
    ensure!(set_umask(0o022) == 0o077, "umask did not read back");
    set_umask(before);
    ensure!(
        getpid().as_raw() as u32 == std::process::id(),
        "getpid disagrees with std"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------

#[test]
fn fork_wait_and_pipe_in_a_single_threaded_process() {
    run_scenario("fork_wait_pipe");
}

#[test]
fn fork_refuses_while_a_second_thread_exists() {
    run_scenario("fork_refuses_threads");
}

/// The test harness itself always has at least two threads.
#[test]
fn fork_refuses_in_the_multithreaded_test_harness() {
    assert!(!is_single_threaded().unwrap());
    match fork() {
        Err(e) => assert!(e.to_string().contains("thread"), "{e}"),
        // Should the check ever break, leave the copy of the harness at once.
        Ok(Fork::Child) => exit_now(0),
        Ok(Fork::Parent(pid)) => {
            let _ = wait(pid);
            panic!("fork() succeeded in a multi-threaded process");
        }
    }
}

#[test]
fn exit_now_skips_exit_time_cleanup() {
    run_scenario("exit_now_skips_cleanup");
}

#[test]
fn close_other_fds_keeps_only_what_is_listed() {
    run_scenario("close_other_fds_keeps_only_listed");
}

#[test]
fn umask_and_getpid() {
    run_scenario("umask_and_pid");
}

#[test]
fn a_failing_scenario_is_reported() {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ENV, "no such scenario")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario"));
}

#!/usr/bin/env python3
"""ptrace tools for tests/privsep.rs: look at server processes where /proc alone cannot.

    ptrace_tool.py inject PID NR [ARG...]     (x86_64 only)
    ptrace_tool.py hold-exit PID

inject: makes the live process PID execute system call NR and reports how that ended.
  The test cannot make the confined pre-auth process call something forbidden through
  POP3 (no client input leads to such a call: that is the point), so this plays the
  part of an attacker who has taken over the process and runs the call from inside
  it. PID must be blocked in a system call (the pre-auth process waits in ppoll for
  the client). Prints
    `attached`
    `control: getpid returned N`  getpid() was run first, at the same place: N must be
                                  PID (the injection works; an allowed call is fine)
  and then one of
    `syscall NR: killed by signal S`  the process died (SIGSYS is 31)
    `syscall NR: returned R`          the call was executed and returned R; the
                                      process is then killed with SIGKILL (its state
                                      is no longer the one it had)
    `syscall NR: exited with status S`
  Arguments are decimal or 0x hex, at most six, missing ones 0. Pointers may be 0:
  the filter decides on the number (and a few arguments) before the kernel reads any
  memory.

hold-exit: attaches to PID, lets it run, and stops it at the moment it exits
  (PTRACE_EVENT_EXIT: its credentials, root directory and descriptors are still there
  for /proc to show). Prints `attached`, then `exiting W` (W: the wait status it is
  exiting with) or `gone` if it vanished otherwise, then waits until its standard input
  is closed (or gives a line), lets the process finish exiting and exits. Signals the
  process receives meanwhile are passed on unchanged.

Exit status 0 when an outcome was printed, 1 on an error of this script (message on
stderr). Needs CAP_SYS_PTRACE (root).
"""
import ctypes
import os
import platform
import signal
import sys

PTRACE_PEEKTEXT = 1
PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_GETEVENTMSG = 0x4201
PTRACE_O_TRACESYSGOOD = 1
PTRACE_O_TRACEEXIT = 0x40
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_STOP = 128
WALL = 0x40000000
SYS_GETPID = 39  # x86_64

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


class Regs(ctypes.Structure):
    """struct user_regs_struct (x86_64, sys/user.h)."""

    _fields_ = [
        (name, ctypes.c_ulonglong)
        for name in (
            "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip "
            "cs eflags rsp ss fs_base gs_base ds es fs gs"
        ).split()
    ]


def fail(msg):
    print(f"ptrace_tool: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(msg):
    print(msg, flush=True)


def ptrace(req, pid, addr=0, data=0):
    ctypes.set_errno(0)
    r = libc.ptrace(req, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    err = ctypes.get_errno()
    if r == -1 and err != 0:
        fail(f"ptrace({req:#x}, {pid}): {os.strerror(err)}")
    return r


def getregs(pid):
    regs = Regs()
    ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    return regs


def setregs(pid, regs):
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))


def wait(pid):
    _, status = os.waitpid(pid, WALL)
    return status


def ended(status):
    """How the process ended, or None if it is only stopped."""
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return None


def sigsys_pending(pid):
    """Whether SIGSYS is pending for the process (/proc/PID/status SigPnd, ShdPnd)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("SigPnd", "ShdPnd") and int(value, 16) >> (signal.SIGSYS - 1) & 1:
                return True
    return False


def run_syscall(pid, at, nr, args):
    """Executes system call `nr` at address `at` (a `syscall` instruction) in the
    stopped process and leaves it in the syscall-exit stop. Returns ("returned", rax,
    sigsys_pending) or ("ended", how, None) if the process died."""
    regs = getregs(pid)
    regs.rip = at
    regs.rax = nr
    # orig_rax -1: the kernel must not treat this as the restart of an interrupted call.
    regs.orig_rax = (1 << 64) - 1
    regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9 = args
    setregs(pid, regs)
    # The entry stop, then the exit stop. A call the seccomp filter refuses is skipped
    # (seccomp runs after the entry stop; the registers are rolled back, so rax reads
    # NR) and SIGSYS is forced on the process, to be delivered on the way out.
    for _ in range(2):
        ptrace(PTRACE_SYSCALL, pid)
        status = wait(pid)
        how = ended(status)
        if how:
            return ("ended", how, None)
        if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP | 0x80):
            fail(f"unexpected stop: status {status:#x}")
    rax = getregs(pid).rax
    return ("returned", rax - (1 << 64) if rax >= 1 << 63 else rax, sigsys_pending(pid))


def let_it_die(pid):
    """Resumes the process, which has SIGSYS pending, until it dies. Since Linux 5.17
    the tracer is not even shown a signal forced by seccomp; before, it saw a
    signal-delivery stop and could have discarded the signal, so it is passed on."""
    sig = 0
    while True:
        ptrace(PTRACE_CONT, pid, 0, sig)
        status = wait(pid)
        how = ended(status)
        if how:
            return how
        if not os.WIFSTOPPED(status):
            fail(f"unexpected status {status:#x}")
        sig = os.WSTOPSIG(status)
        if sig != signal.SIGSYS:
            fail(f"unexpected stop with signal {sig} while SIGSYS was pending")


def inject(pid, nr, args):
    if platform.machine() != "x86_64":
        fail(f"inject: only x86_64 is supported, not {platform.machine()}")
    ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD)
    ptrace(PTRACE_INTERRUPT, pid)
    status = wait(pid)
    if not (os.WIFSTOPPED(status) and status >> 16 == PTRACE_EVENT_STOP):
        fail(f"the process did not stop as expected: status {status:#x}")
    say("attached")
    saved = getregs(pid)
    if saved.orig_rax >= 1 << 63:
        fail("the process is not in a system call")
    at = saved.rip - 2
    word = ptrace(PTRACE_PEEKTEXT, pid, at) & 0xFFFF
    if word != 0x050F:
        fail(f"no syscall instruction before rip {saved.rip:#x} (found {word:#06x})")

    kind, value, pending = run_syscall(pid, at, SYS_GETPID, [0] * 6)
    if kind != "returned" or pending:
        fail(f"control: getpid: {value}, SIGSYS pending: {pending}")
    say(f"control: getpid returned {value}")

    kind, value, pending = run_syscall(pid, at, nr, args)
    if kind == "ended":
        say(f"syscall {nr}: {value}")
    elif pending:
        say(f"syscall {nr}: {let_it_die(pid)}")
    else:
        say(f"syscall {nr}: returned {value}")
        os.kill(pid, signal.SIGKILL)
        wait(pid)


def hold_exit(pid):
    ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACEEXIT)
    say("attached")
    while True:
        status = wait(pid)
        if ended(status):
            say("gone")
            break
        if not os.WIFSTOPPED(status):
            fail(f"unexpected status {status:#x}")
        event = status >> 16
        if event == PTRACE_EVENT_EXIT:
            msg = ctypes.c_ulong()
            ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(msg))
            say(f"exiting {msg.value}")
            sys.stdin.readline()
            ptrace(PTRACE_DETACH, pid)
            break
        # A signal-delivery stop: pass the signal on. A group stop (event
        # PTRACE_EVENT_STOP): resume without one.
        sig = 0 if event == PTRACE_EVENT_STOP else os.WSTOPSIG(status)
        ptrace(PTRACE_CONT, pid, 0, sig)


def main():
    if 4 <= len(sys.argv) <= 10 and sys.argv[1] == "inject":
        args = [int(a, 0) % (1 << 64) for a in sys.argv[4:]]
        inject(int(sys.argv[2]), int(sys.argv[3], 0), args + [0] * (6 - len(args)))
    elif len(sys.argv) == 3 and sys.argv[1] == "hold-exit":
        hold_exit(int(sys.argv[2]))
    else:
        fail("usage: ptrace_tool.py inject PID NR [ARG...] | hold-exit PID")


main()

#!/usr/bin/env python3
"""Client sides of the standalone-daemon tests (tests/daemon.rs), run inside scripts/sysenv.

    daemon_scenarios.py SCENARIO OUT

Starts `$POPA3D_BIN -D -F -c CONF` itself (CONF in $SYSENV_TMP; listeners on 127.0.0.1:1110
and, when $SYSENV_IPV6 is 1, [::1]:1110), plays SCENARIO against it with plain sockets,
stops it by its PID and records what happened in OUT for daemon.rs to check:

  OUT/facts     one fact a line, `KEY VALUE` (VALUE to the end of the line; bytes the
                server sent are shown with Python's repr, e.g. b'+OK\\r\\n')
  OUT/NAME      larger answers (list.data, retr1.data: LF line ends, dot-stuffing
                undone) and mailboxes (carol.before, carol.after, bob.after)
  OUT/*.stderr  what the daemon wrote to stdout/stderr (daemon.stderr, busy.stderr)

Nothing is judged here: the assertions are in daemon.rs. A scenario stops with a
traceback only when the harness itself cannot go on (the daemon did not start). Every
client socket binds its source address first: all of 127.0.0.0/8 is local on `lo`.
"""
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

POPA3D = os.environ["POPA3D_BIN"]
TMP = os.environ["SYSENV_TMP"]
LOG = os.environ["SYSENV_LOG"]
IPV6 = os.environ.get("SYSENV_IPV6") == "1"
PORT = 1110
PORT2 = 1111
OUT = sys.argv[2] if len(sys.argv) > 2 else "."

# ---------------------------------------------------------------------------------
# Results.

_facts = []
_facts_lock = threading.Lock()


def fact(key, value):
    if isinstance(value, bytes):
        value = repr(value)
    value = str(value)
    assert "\n" not in value and " " not in key, (key, value)
    with _facts_lock:
        _facts.append("%s %s" % (key, value))


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def write_facts():
    with open(os.path.join(OUT, "facts"), "w") as f:
        f.write("".join(line + "\n" for line in _facts))


# ---------------------------------------------------------------------------------
# Syslog (scripts/sysenv appends each datagram to $SYSENV_LOG, one a line).


def log_entries():
    """(pid, text) of every popa3d line logged so far."""
    with open(LOG, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    out = []
    for line in data.split("\n"):
        head, sep, text = line.partition("]: ")
        if not sep or "popa3d[" not in head:
            continue
        pid = head.rsplit("popa3d[", 1)[1]
        if pid.isdigit():
            out.append((int(pid), text))
    return out


def wait_log(pred, timeout, what, proc=None):
    """Waits until a logged (pid, text) satisfies pred; returns the seconds waited."""
    start = time.monotonic()
    while True:
        if any(pred(pid, text) for pid, text in log_entries()):
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the daemon exited (%s) while waiting for %s" % (proc.returncode, what))
        if time.monotonic() - start > timeout:
            raise RuntimeError("not logged within %s s: %s" % (timeout, what))
        time.sleep(0.02)


# ---------------------------------------------------------------------------------
# Processes.


def proc_stat(pid):
    """(state, ppid, session id) from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[3])


def children(pid, zombies=False):
    """The children of pid (the daemon's session processes): running ones, and with
    `zombies` also those not reaped yet."""
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid and (zombies or st[0] != "Z"):
                n += 1
    return n


def wait_until(cond, timeout, step=0.02):
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            return False
        time.sleep(step)
    return True


def listeners(port=PORT, extra=()):
    addrs = ["127.0.0.1:%d" % port] + (["[::1]:%d" % port] if IPV6 else [])
    return list(addrs) + list(extra)


def config_text(settings="", addrs=None):
    text = settings.strip() + "\n" if settings.strip() else ""
    for a in addrs if addrs is not None else listeners():
        text += '\n[[listener]]\naddress = "%s"\n' % a
    return text


DAEMONS = []


class Daemon:
    """`popa3d -D -F -c CONF` in the foreground, ready once it logged its listeners."""

    def __init__(self, name, settings="", addrs=None):
        self.name = name
        self.conf = os.path.join(TMP, name + ".toml")
        self.write_config(settings, addrs)
        self.out = open(os.path.join(OUT, name + ".stderr"), "wb")
        self.p = subprocess.Popen(
            [POPA3D, "-D", "-F", "-c", self.conf],
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=self.out,
        )
        self.pid = self.p.pid
        DAEMONS.append(self)
        fact(name + ".pid", self.pid)
        fact(name + ".conf", self.conf)
        for a in addrs if addrs is not None else listeners():
            wait_log(
                lambda pid, text, a=a: pid == self.pid and text == "listening on " + a,
                10,
                "listening on " + a,
                self.p,
            )

    def write_config(self, settings="", addrs=None):
        # Written to a temporary name and renamed: a SIGHUP never sees half a file.
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(config_text(settings, addrs))
        os.rename(tmp, self.conf)

    def running(self):
        return self.p.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=15, quiesce=True):
        """SIGTERM; the exit status, or None if it did not exit within timeout. With
        `quiesce`, first waits until the daemon has reaped every session, so that it
        logs `stopping: 0 sessions running`."""
        if quiesce:
            fact(self.name + ".quiesced", wait_until(lambda: children(self.pid, True) == 0, 10))
        if self.running():
            self.signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


BACKGROUND = []


def cleanup():
    for pid in BACKGROUND:
        if (proc_stat(pid) or ("Z",))[0] != "Z":
            os.kill(pid, signal.SIGTERM)
    for d in DAEMONS:
        if d.p.poll() is None:
            d.signal(signal.SIGTERM)
            try:
                d.p.wait(15)
            except subprocess.TimeoutExpired:
                d.signal(signal.SIGKILL)
                d.p.wait()


# ---------------------------------------------------------------------------------
# A POP3 client on a plain socket.


class Conn:
    def __init__(self, src, port=PORT, host="127.0.0.1", timeout=30):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if src:
            self.s.bind((src, 0))
        t = time.monotonic()
        self.s.connect((host, port))
        self.connect_time = time.monotonic() - t
        self.buf = b""

    def first(self, timeout=5):
        """The first bytes the server sends: b'' when it closes at once without a word,
        'timeout' when it sends nothing, 'reset' on ECONNRESET."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(4096)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        self.buf = data
        return data

    def greeting(self, timeout=30):
        """The greeting line (b'+OK'), or what first() says instead."""
        got = self.first(timeout)
        if got in ("timeout", "reset", b""):
            return got
        self.s.settimeout(timeout)
        return self.line()

    def line(self):
        """One line without its CRLF; what is left (maybe b'') at EOF."""
        while b"\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                rest, self.buf = self.buf, b""
                return rest
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, command):
        self.s.sendall(command.encode() + b"\r\n")
        return self.line()

    def multi(self, command):
        """(status line, data) of a multi-line answer; data with LF line ends, unstuffed."""
        status = self.cmd(command)
        if not status.startswith(b"+OK"):
            return status, b""
        data = []
        while True:
            line = self.line()
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]
            data.append(line + b"\n")
        return status, b"".join(data)

    def login(self, user="bob", password="bobpw"):
        """USER and PASS: the PASS reply."""
        self.cmd("USER " + user)
        return self.cmd("PASS " + password)

    def wait_eof(self, timeout):
        """Seconds until the server closes ('timeout' if it does not)."""
        t = time.monotonic()
        self.s.settimeout(timeout)
        try:
            while self.s.recv(4096):
                pass
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            pass
        return time.monotonic() - t

    def close(self):
        self.s.close()


def refused(src, port=PORT, host="127.0.0.1"):
    """Connects and returns what the server sent first (b'' for a refusal)."""
    c = Conn(src, port, host)
    try:
        return c.first()
    finally:
        c.close()


def connect_error(host, port=PORT):
    """The errno name of a failing connect, or 'connected'."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return e.__class__.__name__
    finally:
        s.close()


# ---------------------------------------------------------------------------------
# Scenarios.


def concurrent():
    """200 clients from 200 addresses in four /24s, all logged in at once."""
    n = 200
    d = Daemon("daemon", "flood_window = 2")
    sources = ["127.0.%d.%d" % (20 + i // 50, 1 + i % 50) for i in range(n)]
    results = [None] * n
    at_barrier = []

    def all_in():
        # Run by the last thread to arrive, while all 200 are logged in and waiting.
        at_barrier.append(children(d.pid))

    barrier = threading.Barrier(n, action=all_in, timeout=120)

    def client(i):
        r = {"greeting": None, "pass": None, "stat": None, "barrier": False, "quit": None}
        results[i] = r
        try:
            c = Conn(sources[i], timeout=120)
            r["greeting"] = c.greeting(120)
            r["pass"] = c.login()
            r["stat"] = c.cmd("STAT")
            barrier.wait()
            r["barrier"] = True
            r["quit"] = c.cmd("QUIT")
            c.close()
        except threading.BrokenBarrierError:
            r["error"] = "barrier broken"
        except Exception as e:  # recorded; daemon.rs reports the first
            r["error"] = repr(e)
            barrier.abort()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fact("elapsed", "%.2f" % (time.monotonic() - t0))
    fact("greetings", sum(r["greeting"] == b"+OK" for r in results))
    fact("passes", sum(r["pass"] == b"+OK" for r in results))
    fact("stats", ",".join(sorted({repr(r["stat"]) for r in results})))
    fact("barrier", sum(r["barrier"] for r in results))
    fact("quits", sum(r["quit"] == b"+OK" for r in results))
    fact("children_at_barrier", at_barrier[0] if at_barrier else -1)
    errors = [r["error"] for r in results if "error" in r]
    fact("errors", len(errors))
    fact("first_error", errors[0] if errors else "none")
    fact("alive_after", d.running())
    c = Conn("127.0.0.1")
    fact("after_greeting", c.greeting())
    fact("after_pass", c.login())
    fact("after_quit", c.cmd("QUIT"))
    c.close()
    fact("exit", d.stop())


def per_source():
    """popa3d's defaults: 50 per source, a 10 s window (research/popa3d.md §5 item 6)."""
    d = Daemon("daemon")
    src = "127.0.0.5"
    held = []
    t_first = time.monotonic()
    for _ in range(50):
        c = Conn(src)
        held.append((c, c.greeting()))
    t_last = time.monotonic()
    fact("held_greetings", sum(g == b"+OK" for _, g in held))
    fact("held_seconds", "%.2f" % (t_last - t_first))
    for i in range(51, 54):
        fact("refused_%d" % i, refused(src))
    other = Conn("127.0.9.1")
    fact("other_greeting", other.greeting())
    fact("other_quit", other.cmd("QUIT"))
    other.close()
    for c, _ in held:
        c.close()
    fact("reaped", wait_until(lambda: children(d.pid, True) == 0, 5))
    fact("closed_at", "%.2f" % (time.monotonic() - t_first))
    time.sleep(max(0.0, t_first + 8.5 - time.monotonic()))
    fact("at_8_5_seconds", "%.2f" % (time.monotonic() - t_first))
    fact("at_8_5", refused(src))
    time.sleep(max(0.0, t_last + 11.5 - time.monotonic()))
    fact("at_11_5_seconds", "%.2f" % (time.monotonic() - t_last))
    c = Conn(src)
    fact("at_11_5", c.greeting())
    fact("at_11_5_quit", c.cmd("QUIT"))
    c.close()
    fact("exit", d.stop())


def per_network():
    d = Daemon("daemon", "max_per_source = 50\nmax_per_network = 6\nflood_window = 2")
    held = []
    for i in range(1, 7):
        c = Conn("127.0.3.%d" % i)
        held.append(c)
        fact("greeting_%d" % i, c.greeting())
    fact("refused_7", refused("127.0.3.7"))
    fact("refused_again", refused("127.0.3.1"))
    c = Conn("127.0.4.1")
    fact("other_greeting", c.greeting())
    fact("other_quit", c.cmd("QUIT"))
    c.close()
    for c in held:
        c.close()
    fact("exit", d.stop())


def global_limit():
    d = Daemon("daemon", "max_sessions = 20\nflood_window = 2")
    held = []
    for i in range(1, 21):
        c = Conn("127.0.50.%d" % i)
        held.append(c)
        fact("greeting_%d" % i, c.greeting())
    t_last = time.monotonic()
    fact("refused_21", refused("127.0.51.1"))
    # Past the window the 20 still count: they are running.
    time.sleep(max(0.0, t_last + 2.5 - time.monotonic()))
    fact("refused_after_window", refused("127.0.51.2"))
    held.pop().close()
    fact("reaped", wait_until(lambda: children(d.pid, True) == 19, 5))
    c = Conn("127.0.51.3")
    fact("after_one_ended", c.greeting())
    fact("after_one_ended_quit", c.cmd("QUIT"))
    c.close()
    for c in held:
        c.close()
    fact("exit", d.stop())


def flood_process(stop, results):
    """32 threads guessing bob's password from 127.0.0.2 until `stop` is set: in a process
    of its own, so that their Python code does not slow down the timed client."""
    counts = {"attempts": 0, "refused": 0, "greeted": 0, "other": 0}
    lock = threading.Lock()

    def flooder(k):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c = Conn("127.0.0.2", timeout=5)
            except OSError:
                with lock:
                    counts["other"] += 1
                time.sleep(0.02)
                continue
            try:
                g = c.greeting(5)
                with lock:
                    counts["attempts"] += 1
                    if g == b"":
                        counts["refused"] += 1
                    elif g == b"+OK":
                        counts["greeted"] += 1
                    else:
                        counts["other"] += 1
                if g == b"+OK":
                    # A guess; the -ERR comes late (the failure delay): give up after 1 s.
                    c.s.settimeout(1)
                    c.login("bob", "guess-%d-%d" % (k, i))
                else:
                    time.sleep(0.02)
            except OSError:
                pass
            finally:
                c.close()

    threads = [threading.Thread(target=flooder, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(counts)


def flood():
    """A password-guessing flood from 127.0.0.2 while 127.1.0.1 logs in 20 times."""
    d = Daemon("daemon", "flood_window = 3\nshutdown_timeout = 1")
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    results = ctx.Queue()
    flooders = ctx.Process(target=flood_process, args=(stop, results))
    t0 = time.monotonic()
    flooders.start()
    try:
        fact(
            "flood_logged_after",
            "%.2f" % wait_log(lambda pid, text: text == "127.0.0.2: per source limit reached", 20, "the flood's limit line"),
        )
        connects, logins, replies = [], [], []
        for _ in range(20):
            t = time.monotonic()
            c = Conn("127.1.0.1", timeout=30)
            connects.append(c.connect_time)
            g = c.greeting()
            p = c.login()
            logins.append(time.monotonic() - t)
            q = c.cmd("QUIT")
            c.close()
            replies.append((g, p, q))
            # One login every 0.15 s: the flood's slots expire and refill meanwhile.
            time.sleep(max(0.0, t + 0.15 - time.monotonic()))
        fact("flood_running", flooders.is_alive())
        fact("flood_seconds", "%.2f" % (time.monotonic() - t0))
    finally:
        stop.set()
        counts = results.get(timeout=30)
        flooders.join(30)
    fact("legit_ok", sum(r == (b"+OK", b"+OK", b"+OK") for r in replies))
    fact("legit_replies", ",".join(sorted({repr(r) for r in replies})))
    fact("connect_max", "%.3f" % max(connects))
    fact("login_median", "%.3f" % statistics.median(logins))
    fact("login_max", "%.3f" % max(logins))
    for k, v in counts.items():
        fact("flood_" + k, v)
    fact("exit", d.stop(quiesce=False))


def sighup():
    """30 logged-in sessions across a reload that adds a listener and lowers a limit,
    then a reload of a broken file."""
    d = Daemon("daemon", "flood_window = 2")
    held = []
    for _ in range(30):
        c = Conn("127.0.0.1")
        g = c.greeting()
        held.append((c, g, c.login()))
    fact("held_ok", sum(g == b"+OK" and p == b"+OK" for _, g, p in held))

    d.write_config("max_per_source = 32\nflood_window = 2", listeners(extra=["127.0.0.1:%d" % PORT2]))
    d.signal(signal.SIGHUP)
    wait_log(lambda pid, text: pid == d.pid and text == "configuration reloaded", 10, "configuration reloaded", d.p)
    wait_log(lambda pid, text: pid == d.pid and text == "listening on 127.0.0.1:%d" % PORT2, 10, "the new listener", d.p)
    new = Conn("127.0.0.1", PORT2)
    fact("new_listener_greeting", new.greeting())
    fact("new_listener_pass", new.login())
    c32 = Conn("127.0.0.1")
    fact("session_32_greeting", c32.greeting())
    fact("session_33", refused("127.0.0.1"))

    lists, retrs, quits = [], [], []
    for c, _, _ in held:
        lists.append(c.multi("LIST"))
        retrs.append(c.multi("RETR 1"))
        quits.append(c.cmd("QUIT"))
        c.close()
    fact("list_status", ",".join(sorted({repr(s) for s, _ in lists})))
    fact("lists_identical", len({data for _, data in lists}) == 1)
    put("list.data", lists[0][1])
    fact("retr_status", ",".join(sorted({repr(s) for s, _ in retrs})))
    fact("retrs_identical", len({data for _, data in retrs}) == 1)
    put("retr1.data", retrs[0][1])
    fact("quits_ok", sum(q == b"+OK" for q in quits))
    fact("new_listener_quit", new.cmd("QUIT"))
    new.close()
    c32.close()

    # A broken file, which would also drop the second listener: nothing changes.
    d.write_config("max_per_source = 0", listeners())
    d.signal(signal.SIGHUP)
    wait_log(lambda pid, text: pid == d.pid and text.startswith("reload: "), 10, "the failed reload", d.p)
    fact("alive_after_bad_reload", d.running())
    for port in (PORT, PORT2):
        c = Conn("127.0.0.9", port)
        fact("after_bad_reload_%d" % port, "%r %r %r" % (c.greeting(), c.login(), c.cmd("QUIT")))
        c.close()
    fact("exit", d.stop())


def sigterm():
    """SIGTERM with three logged-in sessions: they finish, one of them with an UPDATE."""
    d = Daemon("daemon", "flood_window = 2")
    with open("/var/mail/carol", "rb") as f:
        put("carol.before", f.read())
    a = Conn("127.0.0.1")
    b = Conn("127.0.0.1")
    c = Conn("127.0.0.1")
    fact("logins", "%r %r %r" % (a.greeting() + a.login("carol", "carolpw"), b.greeting() + b.login(), c.greeting() + c.login()))
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    fact(
        "stopping_logged_after",
        "%.3f" % wait_log(lambda pid, text: pid == d.pid and text.startswith("stopping: "), 5, "stopping", d.p),
    )
    fact("connect_v4", connect_error("127.0.0.1"))
    fact("connect_v6", connect_error("::1") if IPV6 else "no-ipv6")
    fact("refused_after", "%.3f" % (time.monotonic() - t0))
    fact("a_dele", a.cmd("DELE 1"))
    fact("a_quit", a.cmd("QUIT"))
    a.close()
    list_status, list_data = b.multi("LIST")
    fact("b_list", list_status)
    put("list.data", list_data)
    retr_status, retr_data = b.multi("RETR 1")
    fact("b_retr", retr_status)
    put("retr1.data", retr_data)
    fact("b_quit", b.cmd("QUIT"))
    b.close()
    time.sleep(0.5)
    fact("running_with_one_left", d.running())
    fact("c_stat", c.cmd("STAT"))
    fact("c_quit", c.cmd("QUIT"))
    t1 = time.monotonic()
    c.close()
    try:
        fact("exit", d.p.wait(10))
    except subprocess.TimeoutExpired:
        fact("exit", "still running")
    fact("exit_after_last", "%.3f" % (time.monotonic() - t1))
    with open("/var/mail/carol", "rb") as f:
        put("carol.after", f.read())


def shutdown_timeout():
    d = Daemon("daemon", "flood_window = 2\nshutdown_timeout = 1")
    c = Conn("127.0.0.1")
    fact("login", c.greeting() + c.login())
    fact("stat", c.cmd("STAT"))
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    fact("closed_after", c.wait_eof(10))
    c.close()
    try:
        fact("exit", d.p.wait(10))
    except subprocess.TimeoutExpired:
        fact("exit", "still running")
    fact("exited_after", "%.3f" % (time.monotonic() - t0))
    with open("/var/mail/bob", "rb") as f:
        put("bob.after", f.read())


def ipv6():
    fact("ipv6", int(IPV6))
    if not IPV6:
        return
    d = Daemon("daemon", "max_per_source = 3\nflood_window = 2")
    held = []
    for i in range(3):
        c = Conn("::1", host="::1")
        held.append(c)
        fact("held_%d" % i, c.greeting())
    t_last = time.monotonic()
    fact("refused_4", refused("::1", host="::1"))
    c = Conn("127.0.0.1")
    fact("ipv4_meanwhile", c.greeting())
    c.close()
    for c in held:
        c.close()
    time.sleep(max(0.0, t_last + 2.5 - time.monotonic()))
    c = Conn("::1", host="::1")
    fact("greeting", c.greeting())
    fact("pass", c.login())
    status, data = c.multi("RETR 1")
    fact("retr", status)
    put("retr1.data", data)
    fact("quit", c.cmd("QUIT"))
    c.close()
    fact("exit", d.stop())


def login_delay():
    d = Daemon("daemon", "flood_window = 2")

    def attempt(src, password):
        c = Conn(src)
        c.greeting()
        c.cmd("USER bob")
        t = time.monotonic()
        reply = c.cmd("PASS " + password)
        took = time.monotonic() - t
        if reply == b"+OK":
            c.cmd("QUIT")
        c.close()
        return reply, took

    for i in range(1, 4):
        reply, took = attempt("127.0.6.1", "wrong%d" % i)
        fact("wrong_%d" % i, reply)
        fact("wrong_%d_seconds" % i, "%.3f" % took)
    reply, took = attempt("127.0.6.1", "bobpw")
    fact("right", reply)
    fact("right_seconds", "%.3f" % took)
    reply, took = attempt("127.0.7.1", "wrong")
    fact("other", reply)
    fact("other_seconds", "%.3f" % took)
    # A QUIT pipelined while the failure is being delayed: the connection must still end
    # with the -ERR and a clean close (FIN), not a reset.
    s = socket.create_connection(("127.0.0.1", PORT), source_address=("127.0.8.1", 0))
    s.settimeout(10)
    s.recv(100)
    s.sendall(b"USER bob\r\nPASS wrong\r\n")
    time.sleep(0.3)
    s.sendall(b"QUIT\r\n")
    data, end = b"", "eof"
    try:
        while True:
            chunk = s.recv(1000)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        end = "reset"
    s.close()
    # USER's +OK, then the -ERR; nothing answers the QUIT.
    fact("pipelined_quit_reply", data.split(b"\r\n")[-2] if data.endswith(b"\r\n") else data)
    fact("pipelined_quit_end", end)
    fact("exit", d.stop())


def in_use():
    """bob's mailbox locked by another program for longer than lock_timeout."""
    import fcntl
    d = Daemon("daemon", "lock_timeout = 1")
    with open("/var/mail/bob", "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        c = Conn("127.0.10.1")
        c.greeting()
        c.cmd("USER bob")
        t = time.monotonic()
        fact("locked_pass", c.cmd("PASS bobpw"))
        fact("locked_seconds", "%.3f" % (time.monotonic() - t))
        c.close()
        fcntl.lockf(f, fcntl.LOCK_UN)
    c = Conn("127.0.10.1")
    c.greeting()
    c.cmd("USER bob")
    fact("unlocked_pass", c.cmd("PASS bobpw"))
    fact("unlocked_quit", c.cmd("QUIT"))
    c.close()
    fact("exit", d.stop())


def find_daemons():
    """The processes running $POPA3D_BIN (in this PID namespace, only ours)."""
    exe = os.path.realpath(POPA3D)
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % entry) == exe:
                    st = proc_stat(int(entry))
                    if st and st[0] != "Z":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def background():
    """`popa3d -D` without -F goes into the background; a port in use fails at once."""
    conf = os.path.join(TMP, "background.toml")
    with open(conf, "w") as f:
        f.write(config_text("flood_window = 2"))
    fact("conf", conf)
    t = time.monotonic()
    r = subprocess.run([POPA3D, "-D", "-c", conf], stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    fact("start_seconds", "%.3f" % (time.monotonic() - t))
    fact("start_rc", r.returncode)
    fact("start_output", r.stdout + r.stderr)
    pids = find_daemons()
    fact("daemons", len(pids))
    if len(pids) != 1:
        return
    pid = pids[0]
    BACKGROUND.append(pid)
    fact("pid", pid)
    state, ppid, sid = proc_stat(pid)
    fact("ppid", ppid)
    fact("session_leader", sid == pid)
    wait_log(lambda p, text: p == pid and text == "listening on 127.0.0.1:%d" % PORT, 10, "listening")
    c = Conn("127.0.0.1")
    fact("greeting", c.greeting())
    fact("pass", c.login())
    fact("stat", c.cmd("STAT"))
    fact("quit", c.cmd("QUIT"))
    c.close()
    fact("alive", proc_stat(pid) is not None)
    fact("quiesced", wait_until(lambda: children(pid, True) == 0, 10))
    os.kill(pid, signal.SIGTERM)
    fact("gone", wait_until(lambda: (proc_stat(pid) or ("Z",))[0] == "Z", 10))
    wait_log(lambda p, text: p == pid and text == "stopped", 5, "stopped")

    # The port taken by someone else: the error on stderr, status 1, nothing left behind.
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", PORT))
    busy.listen(1)
    r = subprocess.run([POPA3D, "-D", "-c", conf], stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    busy.close()
    fact("busy_rc", r.returncode)
    fact("busy_stdout", r.stdout)
    put("busy.stderr", r.stderr)
    fact("busy_daemons", len(find_daemons()))


SCENARIOS = {
    "concurrent": concurrent,
    "per_source": per_source,
    "per_network": per_network,
    "global_limit": global_limit,
    "flood": flood,
    "sighup": sighup,
    "sigterm": sigterm,
    "shutdown_timeout": shutdown_timeout,
    "ipv6": ipv6,
    "login_delay": login_delay,
    "in_use": in_use,
    "background": background,
}


def main():
    try:
        SCENARIOS[sys.argv[1]]()
    finally:
        cleanup()
        write_facts()


if __name__ == "__main__":
    main()

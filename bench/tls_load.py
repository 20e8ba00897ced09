#!/usr/bin/env python3
"""What TLS costs: ours (popa3d -D) and Dovecot's POP3 server, with and without implicit TLS.

Subcommands (python3 standard library only; `suite` runs as root inside scripts/sysenv,
whose accounts, PAM service, /dev/log and private network namespace it relies on;
bench/tls.sh starts it):

  suite    set up certificates, accounts and mailboxes; then for each row (a server,
           its password backend, TLS or not, the key type) start the server, run
           rate, latency and retr against it, stop it, and print the comparison
  rate     W client threads, each looping over one session: connect, (TLS handshake,)
           greeting, USER, PASS, STAT, RETR 1, QUIT and its +OK, the server's end of
           the stream; sessions that end inside a D-second window after a warm-up
           are counted
  latency  the same session from one client, N times in a row: phase times
  retr     sessions of a user whose mailbox is one large message: RETR 1 timed from
           the command to the final ".", several times per session
  _reaper  (internal) a child subreaper that starts the server and reaps everything
           of its tree, so that the tree's CPU time stays countable

Ports: 995 with implicit TLS (RFC 8314), 110 without, on 0.0.0.0, one server at a time.
Clients bind source addresses all over 127/8 (see `sources`), so that no per-source
or per-network limit is reached.

Server CPU is the CPU time of the server's whole process tree: every live process's
own run time (/proc/PID/schedstat) plus that of the children it reaped (cutime and
cstime in /proc/PID/stat), plus what the reaper reaped (processes whose parent ended
first).  Taken at both ends of a window, the difference is the CPU the tree used in
it.  Not in it: children that the kernel reaps without a parent's wait (SA_NOCLDWAIT:
ours' key holder forks one per TLS handshake and has them reaped that way); they show
up in "other CPUs", the machine's busy time minus the server tree, the load
generator, this process and interrupts.
"""

import argparse
import ctypes
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_load import Hasher, dist_ms, listener_pids, machine_cpu, wait_idle  # noqa: E402

HERE = os.path.abspath(__file__)
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PR_SET_CHILD_SUBREAPER = 36
TLS_PORT, PLAIN_PORT = 995, 110
PASSWORDS = {"bob": "bobpw", "carol": "carolpw", "big": "carolpw"}
BIG_USER = "big"  # added in the namespace: carol's password, the large mailbox
NOISY_CPUS = 0.2
TERMINATOR = b"\r\n.\r\n"


def die(msg):
    sys.exit("tls_load.py: " + msg)


# ---------------------------------------------------------------------------------
# One POP3 session.


class Failure(Exception):
    """A session that did not go as expected: kind is a short category."""

    def __init__(self, kind, detail):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind


class Client:
    """What a session needs: address, account, TLS context (None: plaintext)."""

    def __init__(self, a):
        self.host, self.port, self.timeout = a.host, a.port, a.timeout
        self.user, self.password = a.user.encode(), a.password.encode()
        self.ctx = None
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and name
            ctx.load_verify_locations(cafile=a.ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self.ctx = ctx


class Conn:
    """A connected session: line reader over a socket or an SSL socket."""

    def __init__(self, client, src, t):
        self.client = client
        self.buf = bytearray()
        self.clean_eof = None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # The port is chosen at connect() by the 4-tuple, so that thousands of
            # connections from a few addresses do not each hold a port from bind() on.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
            s.settimeout(client.timeout)
            t["start"] = time.monotonic()
            try:
                s.connect((client.host, client.port))
            except OSError as e:
                raise Failure("connect", str(e)) from None
            t["connect"] = time.monotonic()
            if client.ctx is not None:
                try:
                    s = client.ctx.wrap_socket(s, server_hostname="localhost")
                except OSError as e:  # ssl.SSLError and certificate errors too
                    raise Failure("tls", "handshake: %s" % e) from None
                t["handshake"] = time.monotonic()
        except BaseException:
            s.close()
            raise
        self.sock = s

    def close(self):
        self.sock.close()

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Failure("closed", "EOF after %r" % bytes(self.buf[-60:]))
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i]).rstrip(b"\r")
                del self.buf[: i + 1]
                return line
            self.fill()

    def ok(self, what):
        line = self.line()
        if not line.startswith(b"+OK"):
            raise Failure("err", "%s: %r" % (what, line[:80]))
        return line

    def command(self, cmd, what):
        self.sock.sendall(cmd)
        return self.ok(what)

    def multiline(self, cmd, what, view=None):
        """Sends cmd and reads its multi-line reply to the final "."; returns the
        bytes received (status line included).  With view (a memoryview), reads into
        it with recv_into and keeps nothing: the large-RETR path."""
        self.sock.sendall(cmd)
        status = self.line()
        if not status.startswith(b"+OK"):
            raise Failure("err", "%s: %r" % (what, status[:80]))
        total = len(status) + 2 + len(self.buf)
        # The status line ended with CRLF, so a reply whose body is empty ends ".\r\n".
        tail = (b"\r\n" + bytes(self.buf[-5:]))[-5:]
        done = tail == TERMINATOR
        self.buf.clear()
        while not done:
            if view is None:
                data = self.sock.recv(65536)
                n = len(data)
            else:
                n = self.sock.recv_into(view)
                data = view[:n]
            if n == 0:
                raise Failure("closed", "EOF inside the reply to %s" % what)
            total += n
            tail = (tail + bytes(data[-5:]))[-5:]
            done = tail == TERMINATOR
        return total

    def drain(self):
        """Reads to the server's end of the stream; notes whether a TLS peer sent
        close_notify first."""
        try:
            while self.sock.recv(65536):
                pass
            self.clean_eof = True
        except ssl.SSLEOFError:
            self.clean_eof = False
        except (ssl.SSLError, ConnectionResetError):
            self.clean_eof = False


def session(client, src):
    """The measured session.  Returns its phase times (monotonic seconds), RETR 1's
    reply size and, under TLS, version, cipher and whether the end was clean."""
    t = {}
    c = Conn(client, src, t)
    try:
        try:
            c.ok("greeting")
            t["greeting"] = time.monotonic()
            c.command(b"USER %s\r\n" % client.user, "USER")
            c.command(b"PASS %s\r\n" % client.password, "PASS")
            t["login"] = time.monotonic()
            c.command(b"STAT\r\n", "STAT")
            size = c.multiline(b"RETR 1\r\n", "RETR 1")
            c.command(b"QUIT\r\n", "QUIT")
            t["quit"] = time.monotonic()
            c.drain()
            t["eof"] = time.monotonic()
        except socket.timeout:
            raise Failure("timeout", "no reply in %g s" % client.timeout) from None
        except ssl.SSLError as e:
            raise Failure("tls", str(e)) from None
        except OSError as e:
            raise Failure("socket", str(e)) from None
        info = {"retr_bytes": size}
        if client.ctx is not None:
            info["version"] = c.sock.version()
            info["cipher"] = c.sock.cipher()[0]
            info["clean_eof"] = c.clean_eof
        return t, info
    finally:
        c.close()


def sources(first, count, per):
    """count lists of `per` source addresses; list i is 127.(first+i).j.1 for j < per:
    each address in a /24 of its own, so that ours' per-source (50 sessions in 10 s)
    and per-/24 (100) limits stay far away at any rate reached here."""
    return [["127.%d.%d.1" % (first + i, j) for j in range(per)] for i in range(count)]


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------
# rate


class Tally:
    def __init__(self):
        self.ok = 0
        self.failures = {}
        self.examples = []
        self.session = []  # connect() to QUIT's +OK, seconds
        self.info = None
        self.unclean = 0  # TLS sessions that ended without close_notify

    def fail(self, f, src):
        self.failures[f.kind] = self.failures.get(f.kind, 0) + 1
        if len(self.examples) < 5:
            self.examples.append("%s (from %s)" % (f, src))


def worker(client, srcs, win0, win1, tally):
    i = 0
    while time.monotonic() < win1:
        src = srcs[i % len(srcs)]
        i += 1
        try:
            t, info = session(client, src)
        except Failure as f:
            if win0 <= time.monotonic() < win1:
                tally.fail(f, src)
            time.sleep(0.05)  # a failing server is not hammered by a busy loop
            continue
        if win0 <= t["eof"] < win1:
            tally.ok += 1
            tally.session.append(t["quit"] - t["start"])
            tally.info = tally.info or info
            if info.get("clean_eof") is False:
                tally.unclean += 1


def cmd_rate(a):
    client = Client(a)
    src = sources(1, a.workers, 16)
    tallies = [Tally() for _ in range(a.workers)]
    threads = [threading.Thread(target=worker, args=(client, src[i], a.win0, a.win1, tallies[i]), daemon=True)
               for i in range(a.workers)]
    for th in threads:
        th.start()
    time.sleep(max(0.0, a.win0 - time.monotonic()))
    c0 = self_cpu()
    time.sleep(max(0.0, a.win1 - time.monotonic()))
    c1 = self_cpu()
    for th in threads:
        th.join(a.timeout + 5)
    out = {"sessions": 0, "failures": {}, "examples": [], "session_ms": None, "info": None, "unclean_eof": 0}
    every = []
    for t in tallies:
        out["sessions"] += t.ok
        for k, v in t.failures.items():
            out["failures"][k] = out["failures"].get(k, 0) + v
        out["examples"] = (out["examples"] + t.examples)[:5]
        every += t.session
        out["info"] = out["info"] or t.info
        out["unclean_eof"] += t.unclean
    out["session_ms"] = dist_ms(every)
    out["client_cpu_s"] = c1 - c0
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------
# latency


def cmd_latency(a):
    client = Client(a)
    srcs = [s[0] for s in sources(100, 100, 1)]
    phases = {k: [] for k in ("connect", "handshake", "greeting", "login", "session", "eof")}
    failures, examples, info = {}, [], None
    for k in range(a.n + a.warmup_n):
        src = srcs[k % len(srcs)]
        try:
            t, inf = session(client, src)
        except Failure as f:
            failures[f.kind] = failures.get(f.kind, 0) + 1
            if len(examples) < 5:
                examples.append("%s (from %s)" % (f, src))
            time.sleep(0.05)
            continue
        if k < a.warmup_n:
            continue
        info = info or inf
        s0 = t["start"]
        phases["connect"].append(t["connect"] - s0)
        if "handshake" in t:
            phases["handshake"].append(t["handshake"] - s0)
        phases["greeting"].append(t["greeting"] - s0)
        phases["login"].append(t["login"] - s0)
        phases["session"].append(t["quit"] - s0)
        phases["eof"].append(t["eof"] - s0)
    out = {k: dist_ms(v) for k, v in phases.items()}
    out.update({"failures": failures, "examples": examples, "info": info, "n": a.n})
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------
# retr: the large message


def cmd_retr(a):
    client = Client(a)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    srcs = [s[0] for s in sources(230, 20, 1)]
    samples = []  # (bytes, wall s, server CPU s, client thread CPU s)
    failures, examples = {}, []
    for k in range(a.sessions):
        src = srcs[k % len(srcs)]
        t = {}
        try:
            c = Conn(client, src, t)
        except Failure as f:
            failures[f.kind] = failures.get(f.kind, 0) + 1
            examples.append(str(f))
            continue
        try:
            c.ok("greeting")
            c.command(b"USER %s\r\n" % client.user, "USER")
            c.command(b"PASS %s\r\n" % client.password, "PASS")
            c.command(b"STAT\r\n", "STAT")
            for r in range(a.retrs + (1 if k == 0 else 0)):  # the very first is a warm-up
                s0 = tree_cpu(a.tree_root)
                c0 = time.thread_time()
                w0 = time.monotonic()
                n = c.multiline(b"RETR 1\r\n", "RETR 1", view)
                w1 = time.monotonic()
                c1 = time.thread_time()
                s1 = tree_cpu(a.tree_root)
                if k == 0 and r == 0:
                    continue
                samples.append((n, w1 - w0, s1 - s0, c1 - c0))
            c.command(b"QUIT\r\n", "QUIT")
            c.drain()
        except (Failure, OSError) as f:
            kind = f.kind if isinstance(f, Failure) else "socket"
            failures[kind] = failures.get(kind, 0) + 1
            examples.append(str(f))
        finally:
            c.close()
    out = {"failures": failures, "examples": examples[:5], "samples": samples}
    if samples:
        out["bytes"] = samples[0][0]
        out["mb_per_s"] = statistics.median(n / w / 1e6 for n, w, _, _ in samples)
        out["server_cpu_ms_per_mb"] = statistics.median(s * 1000 / (n / 1e6) for n, _, s, _ in samples)
        out["client_cpu_share"] = statistics.median(c / w for _, w, _, c in samples)
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------------
# The server's process tree: CPU and memory.


def read_stat(pid):
    """(ppid, own CPU s, reaped children's CPU s, comm, state, start time) of pid, or
    None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    i, j = data.index(b"("), data.rindex(b")")
    v = data[j + 2:].split()
    # v[0] is field 3 (state); ppid is field 4, utime..cstime are 14..17, num_threads 20,
    # starttime 22.
    # utime and stime come in clock ticks, each rounded down: a relay's share of one RETR
    # would read 0.  A single-threaded process's exact run time is in schedstat (ns).
    own = None
    if v[17] == b"1":
        try:
            with open("/proc/%d/schedstat" % pid, "rb") as f:
                own = int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            pass
    if own is None:
        own = (int(v[11]) + int(v[12])) / CLK_TCK
    return (int(v[1]), own, (int(v[13]) + int(v[14])) / CLK_TCK, data[i + 1:j].decode("ascii", "replace"),
            v[0].decode(), int(v[19]))


def tree(root):
    """{pid: stat} for root and every descendant."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None:
                stats[int(name)] = st
    children = {}
    for pid, st in stats.items():
        children.setdefault(st[0], []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid]
            todo += children.get(pid, [])
    return out


def tree_cpu(root):
    """CPU seconds used so far by root's tree, root's own time excepted (the reaper)."""
    total = 0.0
    for pid, (_, own, reaped, _, _, _) in tree(root).items():
        total += reaped if pid == root else own + reaped
    return total


def proc_memory(pid):
    """(Pss kB, Rss kB) from /proc/PID/smaps_rollup, or None."""
    pss = rss = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        return None
    return None if pss is None else (pss, rss)


def proc_uid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[2])  # effective
    except OSError:
        pass
    return None


def tcp_connections(port):
    """(connections to local `port` established or closing on our side, connections
    waiting in the accept queue of `port`'s listener).  Slow under load: the file lists
    every TIME_WAIT socket too."""
    conns, backlog = 0, 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    v = line.split()
                    if int(v[1].rsplit(":", 1)[1], 16) != port:
                        continue
                    if v[3] in ("01", "08"):
                        conns += 1
                    elif v[3] == "0A":  # a listener's rx_queue is its accept queue
                        backlog += int(v[4].split(":")[1], 16)
        except OSError:
            pass
    return conns, backlog


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("ascii", "replace")
    except OSError:
        return ""


class Roles:
    """Names each process of a server tree, for the memory table."""

    def __init__(self, server, tls, daemon_pid, popa3d_uid):
        self.server, self.tls, self.daemon, self.popa3d_uid = server, tls, daemon_pid, popa3d_uid
        self.holders = set()

    def note_idle(self, procs):
        """Ours at rest, before any connection: the daemon's children are key holders."""
        self.holders = {p for p, st in procs.items() if st[0] == self.daemon}

    def role(self, pid, procs):
        """The role's name, or None for a process that has ended."""
        ppid, comm = procs[pid][0], procs[pid][3]
        if self.server == "dovecot":
            if pid == self.daemon:
                return "master"
            if comm == "auth" and cmdline(pid).rstrip().endswith(" -w"):
                return "auth worker"
            return comm
        if pid == self.daemon:
            return "daemon"
        if pid in self.holders:
            return "key holder"
        if ppid in self.holders:
            return "holder child"
        if ppid == self.daemon:
            return "session"
        uid = proc_uid(pid)
        if uid is None:
            return None
        if uid == self.popa3d_uid:
            # Both are confined alike.  The session forks the relay first, and the relay
            # lives as long as the session: the earliest of the session's children with
            # this uid is it.
            if not self.tls:
                return "pre-auth"
            mates = [(st[5], p) for p, st in procs.items() if st[0] == ppid and proc_uid(p) == uid]
            return "TLS relay" if mates and min(mates)[1] == pid else "pre-auth"
        if uid == 0:
            return "verifier"
        return "other (uid %s)" % uid


LONG_LIVED = {"ours": ("daemon", "key holder"),
              "dovecot": ("master", "config", "log", "anvil", "stats", "auth", "auth worker")}
# The processes that live as long as a session: ours' session process (pre-auth, then
# the mail user) and TLS relay; Dovecot's login process (which stays as the TLS proxy)
# and its pop3 process.  Pre-auth, verifier and auth workers are the login's.
PER_SESSION = {"ours": ("session", "TLS relay"), "dovecot": ("pop3-login", "pop3")}


class MemorySampler(threading.Thread):
    """Pss of every process of the tree, once per interval, while the window lasts; and
    the connections open to the port then."""

    def __init__(self, root, roles, port, win0, win1, interval):
        super().__init__(daemon=True)
        self.root, self.roles, self.port = root, roles, port
        self.win0, self.win1, self.interval = win0, win1, interval
        self.samples = []

    def run(self):
        # Each sample is a burst of /proc reads, a few ms; at a high priority, so that
        # the processes read are those that were there at its start.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        except OSError:
            pass
        time.sleep(max(0.0, self.win0 + 0.5 - time.monotonic()))
        while time.monotonic() < self.win1 - 0.5:
            t0 = time.monotonic()
            procs = tree(self.root)
            sample = {"procs": []}
            for pid, st in procs.items():
                if pid == self.root or st[4] == "Z":  # a zombie has no memory left
                    continue
                role = self.roles.role(pid, procs)
                mem = proc_memory(pid)
                if role is None or mem is None:  # it ended meanwhile
                    continue
                sample["procs"].append((role, mem[0], mem[1]))
            # Last: under load this file lists thousands of TIME_WAIT sockets.
            sample["connections"], sample["backlog"] = tcp_connections(self.port)
            self.samples.append(sample)
            time.sleep(max(0.0, self.interval - (time.monotonic() - t0)))


def memory_summary(samples, server):
    """Per role: processes per sample and Pss per process (medians); the whole tree's
    Pss; the Pss of everything but the long-lived processes per accepted connection
    (open connections minus those still in the accept queue)."""
    if not samples:
        return None
    per_role, rss_role, counts = {}, {}, {}
    totals, per_session, conns, backlog = [], [], [], []
    for s in samples:
        total = sum(p[1] for p in s["procs"])
        fixed = sum(p[1] for p in s["procs"] if p[0] in LONG_LIVED[server])
        totals.append(total)
        conns.append(s["connections"])
        backlog.append(s["backlog"])
        accepted = s["connections"] - s["backlog"]
        if accepted > 0:
            per_session.append((total - fixed) / accepted)
        c = {}
        for role, pss, rss in s["procs"]:
            per_role.setdefault(role, []).append(pss)
            rss_role.setdefault(role, []).append(rss)
            c[role] = c.get(role, 0) + 1
        for role in per_role:
            counts.setdefault(role, []).append(c.get(role, 0))
    return {
        "samples": len(samples),
        "total_pss_kb": statistics.median(totals),
        "long_lived_pss_kb": statistics.median(
            [sum(p[1] for p in s["procs"] if p[0] in LONG_LIVED[server]) for s in samples]),
        "per_connection_pss_kb": statistics.median(per_session) if per_session else None,
        "per_session_pss_kb": sum(statistics.median(v) for r, v in per_role.items() if r in PER_SESSION[server])
        if any(r in PER_SESSION[server] for r in per_role) else None,
        "connections": statistics.median(conns),
        "backlog": statistics.median(backlog),
        "roles": {r: {"pss_kb": statistics.median(v), "max_pss_kb": max(v), "rss_kb": statistics.median(rss_role[r]),
                      "per_sample": statistics.median(counts[r])} for r, v in per_role.items()},
    }


# ---------------------------------------------------------------------------------
# The reaper: starts the server as its child and reaps everything of its tree.


def cmd_reaper(a):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        die("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))
    pid = os.fork()
    if pid == 0:
        try:
            # As inetd or systemd would: default dispositions (Python ignores SIGPIPE
            # and SIGXFSZ, and exec keeps ignored signals ignored), an empty mask, a
            # session of its own, cwd /.
            for sig in signal.valid_signals():
                if sig not in (signal.SIGKILL, signal.SIGSTOP):
                    try:
                        signal.signal(sig, signal.SIG_DFL)
                    except (OSError, ValueError):
                        pass
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.setsid()
            os.chdir("/")
            os.execve(a.argv[0], a.argv, ENV)
        except BaseException as e:
            os.write(2, b"reaper: cannot run %s: %s\n" % (a.argv[0].encode(), str(e).encode()))
        finally:
            os._exit(127)
    with open(a.pid_file + ".tmp", "w") as f:
        f.write("%d\n" % pid)
    os.rename(a.pid_file + ".tmp", a.pid_file)
    status = None
    while True:
        try:
            p, st = os.wait()
        except ChildProcessError:
            break
        if p == pid:
            status = st
    code = os.waitstatus_to_exitcode(status) if status is not None else 125
    return 128 - code if code < 0 else code


# ---------------------------------------------------------------------------------
# The environment inside scripts/sysenv: certificates, accounts, mailboxes.


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    if r.returncode != 0:
        die("%s failed: %s" % (" ".join(cmd), r.stdout.decode(errors="replace")))
    return r.stdout


def make_certs(d):
    """A P-256 CA, and leaf certificates for localhost and 127.0.0.1 with a P-256 and
    an RSA-2048 key, signed by it.  Returns {"ca": path, "ec": (cert, key), "rsa": ...}."""
    os.makedirs(d, mode=0o700, exist_ok=True)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "3650", "-subj", "/CN=tls_load.py test CA"])
    with open(p("leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    out = {"ca": p("ca.pem")}
    for kind, newkey in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        run(["openssl", "req", "-new"] + newkey + ["-nodes", "-keyout", p(kind + ".key"), "-out",
                                                   p(kind + ".csr"), "-subj", "/CN=localhost"])
        run(["openssl", "x509", "-req", "-in", p(kind + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
             "-CAcreateserial", "-days", "3650", "-out", p(kind + ".pem"), "-extfile", p("leaf.ext")])
        os.chmod(p(kind + ".key"), 0o600)
        out[kind] = (p(kind + ".pem"), p(kind + ".key"))
    return out


def add_user(name, like):
    """A user `name` with `like`'s password hash (this namespace's /etc only)."""
    with open("/etc/shadow") as f:
        hashes = {ln.split(":")[0]: ln.split(":")[1] for ln in f if ":" in ln}
    used_uids = {u.pw_uid for u in pwd.getpwall()}
    with open("/etc/group") as f:
        used_gids = {int(ln.split(":")[2]) for ln in f if ln.count(":") >= 3}
    if name in {u.pw_name for u in pwd.getpwall()}:
        return
    uid = 2101
    while uid in used_uids or uid in used_gids:
        uid += 1
    with open("/etc/group", "a") as f:
        f.write("%s:x:%d:\n" % (name, uid))
    with open("/etc/passwd", "a") as f:
        f.write("%s:x:%d:%d::/nonexistent:/bin/sh\n" % (name, uid, uid))
    with open("/etc/shadow", "a") as f:
        f.write("%s:%s:19000:0:99999:7:::\n" % (name, hashes[like]))


def small_mbox():
    """Three messages; the first (RETR 1) about 7 KB of headers and text."""
    words = ("the of and to in is that for it as with was on be by this are or from at "
             "mailbox server message session process key holder relay").split()
    out = []
    for m in range(3):
        out.append("From alice@example.org Mon Jan  1 00:0%d:00 2024\n" % m)
        out.append("Date: Mon, 1 Jan 2024 00:0%d:00 +0000\nFrom: Alice <alice@example.org>\n"
                   "To: bob@example.org\nSubject: tls_load %d\nMessage-ID: <tls-load-%d@example.org>\n"
                   "Received: from mx.example.org by mail.example.org with ESMTPS id %d;\n"
                   "\tMon, 1 Jan 2024 00:0%d:00 +0000\n\n" % (m, m, m, m, m))
        for i in range(90 if m == 0 else 20):
            out.append(" ".join(words[(i * 7 + k * 3) % len(words)] for k in range(12)) + "\n")
        out.append("\n")
    return "".join(out).encode()


def big_mbox(mb):
    """One message of about mb * 10^6 bytes of 72-character text lines."""
    line = b"".join(bytes([65 + (i % 26)]) for i in range(71)) + b"\n"
    head = (b"From alice@example.org Mon Jan  1 00:00:00 2024\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
            b"From: Alice <alice@example.org>\nTo: big@example.org\nSubject: large\n"
            b"Message-ID: <tls-load-big@example.org>\n\n")
    return head + line * (mb * 1000000 // len(line)) + b"\n"


def put_mailbox(user, data):
    path = "/var/mail/" + user
    with open(path, "wb") as f:
        f.write(data)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    os.chmod(path, 0o600)
    # An old mtime: popa3d-style servers sleep over a mailbox modified this second.
    os.utime(path, (1704067200, 1704067200))


# ---------------------------------------------------------------------------------
# The servers.


class Row:
    """One measured configuration."""

    def __init__(self, server, auth, tls, key):
        self.server, self.auth, self.tls, self.key = server, auth, tls, key
        self.id = "%s-%s-%s" % (server, auth, key if tls else "plain")
        kname = {"ec": "P-256", "rsa": "RSA-2048"}.get(key, "")
        self.label = "%s %s %s" % ("ours" if server == "ours" else "Dovecot", auth,
                                   "TLS " + kname if tls else "plaintext")
        self.port = TLS_PORT if tls else PLAIN_PORT

    def peer_id(self):
        """The Dovecot row this ours row is compared with."""
        return self.id.replace("ours-", "dovecot-", 1) if self.server == "ours" else None

    def plain_id(self):
        return "%s-%s-plain" % (self.server, self.auth)


def ours_conf(row, certs):
    lines = ['auth = "%s"' % row.auth,
             "# popa3d's global limit (500 sessions within 10 s) would cap the rate at 50/s.",
             "max_sessions = 5000", "", "[[listener]]", 'address = "0.0.0.0:%d"' % row.port]
    if row.tls:
        cert, key = certs[row.key]
        lines += ['tls = "implicit"', 'tls_cert = "%s"' % cert, 'tls_key = "%s"' % key]
    return "\n".join(lines) + "\n"


def dovecot_conf(row, certs, base):
    """A minimal Dovecot 2.3 configuration; every setting not here is the default."""
    if row.tls:
        cert, key = certs[row.key]
        ssl = ("ssl = required\nssl_cert = <%s\nssl_key = <%s\nssl_min_protocol = TLSv1.2\n" % (cert, key))
        plain_port, tls_port = 0, row.port
    else:
        ssl = "ssl = no\n# Plaintext logins from other loopback addresses too.\ndisable_plaintext_auth = no\n"
        plain_port, tls_port = row.port, 0
    if row.auth == "pam":
        passdb = "  driver = pam\n  # sysenv's /etc/pam.d/popa3d: the PAM stack ours uses\n  args = popa3d\n"
    else:
        passdb = "  driver = shadow\n"
    return """# Written by bench/tls_load.py
base_dir = {base}/run
state_dir = {base}/state
instance_name = tls_load
protocols = pop3
listen = *
log_path = syslog
{ssl}mail_location = mbox:~/mail:INBOX=/var/mail/%u
mail_privileged_group = mail
passdb {{
{passdb}}}
userdb {{
  driver = passwd
  # sysenv's accounts have /nonexistent as home
  override_fields = home={base}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {plain_port}
  }}
  inet_listener pop3s {{
    port = {tls_port}
    ssl = yes
  }}
}}
""".format(base=base, ssl=ssl, passdb=passdb, plain_port=plain_port, tls_port=tls_port)


class Server:
    """A running server under the reaper."""

    def __init__(self, a, row, certs, tmp):
        self.a, self.row, self.certs, self.tmp = a, row, certs, tmp
        self.reaper = None
        self.pid = None

    def start(self):
        row = self.row
        if listener_pids(row.port):
            die("port %d is already in use before starting %s" % (row.port, row.label))
        conf = os.path.join(self.tmp, row.id + ".conf")
        if row.server == "ours":
            with open(conf, "w") as f:
                f.write(ours_conf(row, self.certs))
            argv = [self.a.ours, "-D", "-F", "-c", conf]
        else:
            base = os.path.join(self.tmp, "dovecot")
            shutil.rmtree(base, ignore_errors=True)
            os.makedirs(os.path.join(base, "home"), mode=0o755)
            for user in (self.a.user, BIG_USER):
                pw = pwd.getpwnam(user)
                home = os.path.join(base, "home", user)
                os.makedirs(home, mode=0o700)
                os.chown(home, pw.pw_uid, pw.pw_gid)
            with open(conf, "w") as f:
                f.write(dovecot_conf(row, self.certs, base))
            argv = [self.a.dovecot, "-F", "-c", conf]
        self.conf = conf
        self.stderr_path = os.path.join(self.tmp, row.id + ".stderr")
        pid_file = os.path.join(self.tmp, row.id + ".pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        err = open(self.stderr_path, "ab")
        self.reaper = subprocess.Popen([sys.executable, HERE, "_reaper", "--pid-file", pid_file, "--"] + argv,
                                       env=ENV, cwd="/", stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                       start_new_session=True)
        err.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.pid is None and os.path.exists(pid_file):
                with open(pid_file) as f:
                    self.pid = int(f.read())
            if self.pid is not None and self.pid in listener_pids(row.port):
                time.sleep(0.3)  # Dovecot's auth, config, log processes; ours' holder
                return self.pid
            if self.reaper.poll() is not None:
                die("%s exited %d: %s" % (" ".join(argv), self.reaper.returncode, self.stderr()))
            time.sleep(0.02)
        self.stop()
        die("%s: nothing listens on port %d after 20 s: %s" % (" ".join(argv), row.port, self.stderr()))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "backslashreplace").strip()[-2000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to the daemon; the reaper exits once every process of the tree is
        gone; after 20 s whatever is left of the tree is killed."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.reaper.wait(20)
        except subprocess.TimeoutExpired:
            left = [p for p in tree(self.reaper.pid) if p != self.reaper.pid]
            print("suite: %s: %d process(es) still running 20 s after SIGTERM; killing them"
                  % (self.row.label, len(left)), file=sys.stderr)
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.reaper.wait(10)
        status = self.reaper.returncode
        self.pid = None
        return status


# ---------------------------------------------------------------------------------
# suite


def client_args(a, row, user, password):
    out = ["--host", "127.0.0.1", "--port", str(row.port), "--user", user, "--password", password,
           "--timeout", str(a.timeout)]
    if row.tls:
        out += ["--tls", "--ca", a.certs["ca"]]
    return out


def run_client(cmd):
    r = subprocess.run([sys.executable, HERE] + cmd, stdout=subprocess.PIPE)
    try:
        return json.loads(r.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "%s exited %d" % (cmd[0], r.returncode)}


def syslog_counts(path, offset):
    """Syslog lines since offset by severity (the PRI's low 3 bits), and examples of
    warnings and worse."""
    counts, examples = {}, []
    names = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                if line.startswith(b"<") and b">" in line[:6]:
                    try:
                        sev = int(line[1:line.index(b">")]) & 7
                    except ValueError:
                        continue
                    counts[names[sev]] = counts.get(names[sev], 0) + 1
                    if sev <= 4 and len(examples) < 5:
                        examples.append(line.decode("utf-8", "backslashreplace").strip()[:300])
    except OSError:
        pass
    return counts, examples


def log_size():
    try:
        return os.path.getsize(os.environ.get("SYSENV_LOG", ""))
    except OSError:
        return 0


def measure_row(a, row, tmp, hasher):
    """Starts row's server, runs rate (with CPU and memory sampling), latency and
    retr, stops it.  Returns the row's result."""
    put_mailbox(a.user, a.small)
    put_mailbox(BIG_USER, a.big)
    res = {"row": row.id, "label": row.label, "server": row.server, "auth": row.auth, "tls": row.tls,
           "key": row.key if row.tls else None}
    hashes = [hasher.time_one() for _ in range(10)]
    log0 = log_size()
    srv = Server(a, row, a.certs, tmp)
    pid = srv.start()
    try:
        procs = tree(srv.reaper.pid)
        roles = Roles(row.server, row.tls, pid, pwd.getpwnam("popa3d").pw_uid if row.server == "ours" else None)
        roles.note_idle(procs)
        res["idle_processes"] = len(procs) - 1
        # One session first: it must work, and shows what the client negotiated.
        probe = run_client(["latency", "--n", "1", "--warmup-n", "0"] + client_args(a, row, a.user, a.password))
        res["probe"] = probe
        if probe.get("error") or probe.get("failures"):
            res["error"] = "the first session failed: %s" % (probe.get("examples") or probe.get("error"))
            return res
        # (1) rate, with the tree's CPU and memory.
        now = time.monotonic()
        win0 = now + 1.0 + a.warmup
        win1 = win0 + a.duration
        load = subprocess.Popen([sys.executable, HERE, "rate", "--workers", str(a.workers), "--win0", repr(win0),
                                 "--win1", repr(win1)] + client_args(a, row, a.user, a.password),
                                stdout=subprocess.PIPE)
        sampler = MemorySampler(srv.reaper.pid, roles, row.port, win0, win1, a.memory_interval)
        sampler.start()
        time.sleep(max(0.0, win0 - time.monotonic()))
        m0, s0, me0, t0 = machine_cpu(), tree_cpu(srv.reaper.pid), self_cpu(), time.monotonic()
        hash_in_run = []
        while time.monotonic() < win1 - 1.0:
            time.sleep(1.0)
            hash_in_run.append(hasher.time_one())
        time.sleep(max(0.0, win1 - time.monotonic()))
        m1, s1, me1, t1 = machine_cpu(), tree_cpu(srv.reaper.pid), self_cpu(), time.monotonic()
        out, _ = load.communicate(timeout=a.timeout + 60)
        sampler.join(10)
        try:
            rate = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            rate = {"error": "the rate client failed (status %d)" % load.returncode}
        wall = t1 - t0
        rate["wall_s"] = wall
        rate["server_cpu_s"] = s1 - s0
        rate["server_cpus"] = (s1 - s0) / wall
        rate["client_cpus"] = (rate.get("client_cpu_s", 0.0) + me1 - me0) / wall
        rate["softirq_cpus"] = (m1[2] - m0[2]) / wall
        rate["steal_cpus"] = (m1[1] - m0[1]) / wall
        rate["other_cpus"] = (m1[0] - m0[0]) / wall - rate["softirq_cpus"] - rate["client_cpus"] - rate["server_cpus"]
        if rate.get("sessions"):
            rate["sessions_per_s"] = rate["sessions"] / a.duration
            rate["server_cpu_ms_per_session"] = rate["server_cpu_s"] * 1000 / rate["sessions"]
            rate["all_but_client_ms_per_session"] = ((rate["server_cpu_s"] + rate["other_cpus"] * wall) * 1000
                                                     / rate["sessions"])
        rate["hash_ms"] = statistics.median(hash_in_run) * 1000 if hash_in_run else None
        res["rate"] = rate
        res["memory"] = memory_summary(sampler.samples, row.server)
        # (2) latency, one client.
        res["latency"] = run_client(["latency", "--n", str(a.latency_n), "--warmup-n", "5"]
                                    + client_args(a, row, a.user, a.password))
        # (3) RETR of the large message.
        res["retr"] = run_client(["retr", "--sessions", str(a.retr_sessions), "--retrs", str(a.retrs),
                                  "--tree-root", str(srv.reaper.pid)]
                                 + client_args(a, row, BIG_USER, PASSWORDS[BIG_USER]))
    finally:
        status = srv.stop()
        res["exit_status"] = status
        res["stderr"] = srv.stderr()
        hashes += [hasher.time_one() for _ in range(10)]
        res["hash_ms_around"] = statistics.median(hashes) * 1000
        res["syslog"], res["syslog_examples"] = syslog_counts(os.environ.get("SYSENV_LOG", ""), log0)
    return res


def unexpected(res):
    """Why a row's result is not clean, or None."""
    why = []
    if res.get("error"):
        why.append(res["error"])
    for part in ("rate", "latency", "retr"):
        r = res.get(part) or {}
        if r.get("error"):
            why.append("%s: %s" % (part, r["error"]))
        if r.get("failures"):
            why.append("%s: failures %s, e.g. %s" % (part, r["failures"], r.get("examples", [])[:2]))
    if res.get("server") == "ours" and res.get("exit_status") not in (0, None):
        why.append("ours exited %s after SIGTERM" % res.get("exit_status"))
    if res.get("stderr"):
        why.append("stderr: %s" % res["stderr"][-300:])
    return "; ".join(why) or None


def noise(res):
    return (res.get("rate") or {}).get("other_cpus", 0.0)


def cmd_suite(a):
    tmp = os.environ.get("SYSENV_TMP") or "/tmp"
    if a.quick:
        a.warmup, a.duration = 1.0, 10.0
        a.latency_n = min(a.latency_n, 100)
        a.retr_sessions, a.retrs = 2, 2
    a.password = PASSWORDS[a.user]
    add_user(BIG_USER, "carol")
    a.small = small_mbox()
    a.big = big_mbox(a.big_mb)
    a.certs = make_certs(os.path.join(tmp, "tls"))
    hasher = Hasher(a.user, a.password)
    rows = []
    auths = [x for x in a.auth.split(",") if x]
    keys = [x for x in a.keys.split(",") if x]
    servers = [s for s in ("ours", "dovecot") if a.only in (None, s)]
    # Pairs side by side, so that drift over the run hits both servers alike.
    plan = [(auths[0], False, None)] + [(au, True, "ec") for au in auths if "ec" in keys]
    plan += [(auths[0], True, k) for k in keys if k != "ec"]
    for auth, tls, key in plan:
        for s in servers:
            rows.append(Row(s, auth, tls, key))
    versions = {"dovecot": None, "ours": None}
    if "dovecot" in servers:
        versions["dovecot"] = run([a.dovecot, "--version"]).decode().strip()
    if "ours" in servers:
        versions["ours"] = run([a.ours, "-V"]).decode().strip()
    print("== %d rows: %s" % (len(rows), ", ".join(r.label for r in rows)), flush=True)
    print("== account %s for rate and latency; %s for RETR of one %d MB message; %d CPUs"
          % (a.user, BIG_USER, a.big_mb, os.cpu_count()), flush=True)
    results = []
    for rep in range(a.repeat):
        for row in rows:
            best = None
            for attempt in range(1 + a.retry_noisy):
                if a.wait_idle:
                    wait_idle(a.wait_idle)
                print("== %s%s%s" % (row.label, " (repeat %d)" % (rep + 1) if a.repeat > 1 else "",
                                     " (again: other processes used %.2f CPUs)" % noise(best) if attempt else ""),
                      flush=True)
                res = measure_row(a, row, tmp, hasher)
                res["repeat"], res["attempts"] = rep + 1, attempt + 1
                brief(res)
                if best is None or noise(res) < noise(best):
                    best = res
                if noise(best) <= NOISY_CPUS or res.get("error"):
                    break
            best["noisy"] = noise(best) > NOISY_CPUS
            best["unexpected"] = unexpected(best)
            results.append(best)
    summary(results, rows, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine_cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                       "versions": versions, "user": a.user, "big_mb": a.big_mb, "duration_s": a.duration,
                       "warmup_s": a.warmup, "workers": a.workers, "results": results},
                      f, indent=1, sort_keys=True)
            f.write("\n")
    bad = [r for r in results if r.get("unexpected")]
    for r in bad:
        print("UNEXPECTED in %s: %s" % (r["label"], r["unexpected"]), file=sys.stderr)
    return 3 if bad else 0


def brief(res):
    r, l, t = res.get("rate") or {}, res.get("latency") or {}, res.get("retr") or {}
    if res.get("error"):
        print("   ERROR: %s" % res["error"], flush=True)
        return
    print("   %s sessions/s, %s ms CPU/session (server CPUs %s, client %s, other %s); latency median %s ms; "
          "RETR %s MB/s; %s" % (f(r.get("sessions_per_s")), f(r.get("server_cpu_ms_per_session"), 2),
                                f(r.get("server_cpus"), 2), f(r.get("client_cpus"), 2), f(r.get("other_cpus"), 2),
                                f(get(l, "session", "median")), f(t.get("mb_per_s")),
                                (r.get("info") or {}).get("cipher") or "plaintext"), flush=True)
    if unexpected(res):
        print("   UNEXPECTED: %s" % unexpected(res), flush=True)


# ---------------------------------------------------------------------------------
# Tables


def f(x, digits=1):
    return "-" if x is None else "%.*f" % (digits, x)


def get(r, *path):
    for k in path:
        r = (r or {}).get(k)
    return r


def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def mib(kb):
    return None if kb is None else kb / 1024


# (heading, value, digits, compared with Dovecot's row by)  by: "/" ratio, None: not.
RATE = [("sessions/s", lambda r: get(r, "rate", "sessions_per_s"), 1, "/"),
        ("CPU ms/session", lambda r: get(r, "rate", "server_cpu_ms_per_session"), 2, "/"),
        ("+other ms", lambda r: get(r, "rate", "all_but_client_ms_per_session"), 2, None),
        ("server CPUs", lambda r: get(r, "rate", "server_cpus"), 2, None),
        ("client CPUs", lambda r: get(r, "rate", "client_cpus"), 2, None),
        ("other CPUs", lambda r: get(r, "rate", "other_cpus"), 2, None),
        ("median ms", lambda r: get(r, "rate", "session_ms", "median"), 1, None),
        ("hash ms", lambda r: get(r, "rate", "hash_ms"), 1, None)]
LATENCY = [("median ms", lambda r: get(r, "latency", "session", "median"), 1, "/"),
           ("p90 ms", lambda r: get(r, "latency", "session", "p90"), 1, None),
           ("p99 ms", lambda r: get(r, "latency", "session", "p99"), 1, "/"),
           ("greeting ms", lambda r: get(r, "latency", "greeting", "median"), 2, "/"),
           ("login ms", lambda r: get(r, "latency", "login", "median"), 1, None),
           ("to EOF ms", lambda r: get(r, "latency", "eof", "median"), 1, None)]
RETR = [("MB/s", lambda r: get(r, "retr", "mb_per_s"), 0, "/"),
        ("server CPU ms/MB", lambda r: get(r, "retr", "server_cpu_ms_per_mb"), 2, "/"),
        ("client CPU share", lambda r: get(r, "retr", "client_cpu_share"), 2, None),
        ("bytes", lambda r: get(r, "retr", "bytes"), 0, None)]
MEMORY = [("tree Pss MiB", lambda r: mib(get(r, "memory", "total_pss_kb")), 1, None),
          ("long-lived MiB", lambda r: mib(get(r, "memory", "long_lived_pss_kb")), 2, "/"),
          ("per session MiB", lambda r: mib(get(r, "memory", "per_session_pss_kb")), 2, "/"),
          ("per conn MiB", lambda r: mib(get(r, "memory", "per_connection_pss_kb")), 2, "/"),
          ("connections", lambda r: get(r, "memory", "connections"), 0, None),
          ("not accepted", lambda r: get(r, "memory", "backlog"), 0, None)]


def row_value(results, row_id, fn, repeat=None):
    return med(fn(r) for r in results if r["row"] == row_id and (repeat is None or r["repeat"] == repeat))


def table(title, results, rows, columns, a):
    print()
    print(title)
    head = "%-30s" % "row"
    for name, _, _, by in columns:
        head += " %*s" % (max(len(name), 8), name)
        if by:
            head += " %7s" % "ours/D"
    print(head)
    for row in rows:
        reps = sorted({r["repeat"] for r in results if r["row"] == row.id})
        lines = [(rep, "%s #%d" % (row.label, rep) if a.repeat > 1 else row.label) for rep in reps]
        if len(reps) > 1:
            lines.append((None, row.label + " median"))
        for rep, label in lines:
            noisy = any(r.get("noisy") for r in results if r["row"] == row.id and (rep is None or r["repeat"] == rep))
            line = "%-30s" % (label + (" *" if noisy and rep is not None else ""))
            for name, fn, digits, by in columns:
                v = row_value(results, row.id, fn, rep)
                line += " %*s" % (max(len(name), 8), f(v, digits))
                if by:
                    peer = row.peer_id()
                    p = row_value(results, peer, fn, rep) if peer else None
                    line += " %7s" % (f(v / p, 2) if v is not None and p else "")
            print(line)


def overhead(results, rows):
    """TLS minus plaintext, per server: the first auth's plaintext row against each TLS
    row of the same server and auth."""
    cols = [("rate TLS/pl", RATE[0][1], "/"), ("CPU ms added", RATE[1][1], "-"),
            ("+other added", RATE[2][1], "-"), ("CPU ×", RATE[1][1], "/"),
            ("latency +ms", LATENCY[0][1], "-"), ("p99 +ms", LATENCY[2][1], "-"),
            ("RETR MB/s ×", RETR[0][1], "/"), ("CPU/MB ×", RETR[1][1], "/")]
    print()
    print("(4) What TLS adds: each TLS row against the same server's plaintext row (medians)")
    print("%-30s" % "row" + "".join(" %12s" % c[0] for c in cols))
    for row in rows:
        plain = row.plain_id()
        if not row.tls or not any(r["row"] == plain for r in results):
            continue
        line = "%-30s" % row.label
        for _, fn, op in cols:
            v, p = row_value(results, row.id, fn), row_value(results, plain, fn)
            if v is None or not p:
                line += " %12s" % "-"
            else:
                line += " %12s" % ("%.2f" % (v / p) if op == "/" else "%+.2f" % (v - p))
        print(line)


def summary(results, rows, a):
    good = [r for r in results if not r.get("error")]
    print()
    print("TLS cost, %d CPUs, %s s windows after %s s warm-up, %d clients%s; account %s; ours/D: ours ÷ Dovecot's "
          "same row" % (os.cpu_count(), f(a.duration, 0), f(a.warmup, 0), a.workers,
                        ", %d repeats" % a.repeat if a.repeat > 1 else "", a.user))
    for r in results:
        if r.get("error"):
            print("  %s: %s" % (r["label"], r["error"]))
    table("(1) Sessions per second, %d clients: connect, TLS, USER, PASS, STAT, RETR 1, QUIT; CPU of the server's "
          "whole process tree" % a.workers, good, rows, RATE, a)
    table("(2) One client, %d sessions in a row: connect() to QUIT's +OK" % a.latency_n, good, rows, LATENCY, a)
    table("(3) RETR of one %d MB message, one client (median of %d)" % (a.big_mb, a.retr_sessions * a.retrs),
          good, rows, RETR, a)
    overhead(good, rows)
    table("(5) Memory during (1): Pss, medians of samples every %g s" % a.memory_interval, good, rows, MEMORY, a)
    print()
    print("Pss/Rss per process by role (MiB, medians; processes per sample in brackets):")
    for row in rows:
        roles = {}
        for r in good:
            if r["row"] == row.id:
                for role, v in (get(r, "memory", "roles") or {}).items():
                    roles.setdefault(role, []).append(v)
        parts = ["%s %.2f/%.1f [%g]" % (role, med(x["pss_kb"] for x in v) / 1024, med(x["rss_kb"] for x in v) / 1024,
                                         med(x["per_sample"] for x in v))
                 for role, v in sorted(roles.items(), key=lambda kv: -med(x["pss_kb"] for x in kv[1]))]
        print("  %-28s %s" % (row.label, ", ".join(parts)))
    print()
    for row in rows:
        info = unclean = logs = None
        for r in good:
            if r["row"] == row.id:
                info = get(r, "rate", "info") or info
                unclean = get(r, "rate", "unclean_eof")
                logs = r.get("syslog")
        if row.tls and info:
            print("  %-28s %s %s; %s sessions ended without close_notify; syslog %s"
                  % (row.label, info.get("version"), info.get("cipher"), unclean, logs))
        else:
            print("  %-28s syslog %s" % (row.label, logs if any(r["row"] == row.id for r in good) else "-"))
    if any(r.get("noisy") for r in results):
        print()
        print("* other processes used more than %g CPUs during the rate window: doubtful figures" % NOISY_CPUS)


# ---------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def client(p):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--user", required=True)
        p.add_argument("--password", required=True)
        p.add_argument("--timeout", type=float, default=10.0)
        p.add_argument("--tls", action="store_true")
        p.add_argument("--ca")

    p = sub.add_parser("rate")
    client(p)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--win0", type=float, required=True)
    p.add_argument("--win1", type=float, required=True)
    p = sub.add_parser("latency")
    client(p)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--warmup-n", type=int, default=5)
    p = sub.add_parser("retr")
    client(p)
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--retrs", type=int, default=3)
    p.add_argument("--tree-root", type=int, required=True)
    p = sub.add_parser("_reaper")
    p.add_argument("--pid-file", required=True)
    p.add_argument("argv", nargs="+")
    p = sub.add_parser("suite")
    p.add_argument("--ours", required=True)
    p.add_argument("--dovecot", default="/usr/sbin/dovecot")
    p.add_argument("--only", choices=("ours", "dovecot"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--latency-n", type=int, default=300)
    p.add_argument("--retr-sessions", type=int, default=3)
    p.add_argument("--retrs", type=int, default=5)
    p.add_argument("--big-mb", type=int, default=20)
    p.add_argument("--user", choices=("bob", "carol"), default="bob")
    p.add_argument("--auth", default="shadow,pam")
    p.add_argument("--keys", default="ec,rsa")
    p.add_argument("--memory-interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--wait-idle", type=float, default=0.0)
    p.add_argument("--retry-noisy", type=int, default=0)
    p.add_argument("--json")
    a = ap.parse_args()
    if a.cmd == "rate":
        return cmd_rate(a)
    if a.cmd == "latency":
        return cmd_latency(a)
    if a.cmd == "retr":
        return cmd_retr(a)
    if a.cmd == "_reaper":
        return cmd_reaper(a)
    for name in ("auth", "keys"):
        allowed = ("shadow", "pam") if name == "auth" else ("ec", "rsa")
        vals = [x for x in getattr(a, name).split(",") if x]
        if not vals or any(v not in allowed for v in vals) or len(set(vals)) != len(vals):
            die("--%s wants a comma-separated list of %s" % (name, " and ".join(allowed)))
    if a.repeat < 1 or a.duration <= 0 or a.warmup < 0 or a.latency_n < 1 or a.big_mb < 1:
        die("--repeat, --duration, --latency-n and --big-mb must be positive, --warmup not negative")
    if os.geteuid() != 0:
        die("suite must run as root inside scripts/sysenv (bench/tls.sh)")
    a.ours, a.dovecot = os.path.abspath(a.ours), os.path.abspath(a.dovecot)
    return cmd_suite(a)


if __name__ == "__main__":
    sys.exit(main())

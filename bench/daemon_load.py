#!/usr/bin/env python3
"""Load for a standalone POP3 daemon: logins per second, and login latency under a flood.

Subcommands (python3 standard library only; run as root inside scripts/sysenv, whose
accounts, PAM service and private network namespace they rely on):

  rate   N workers (default 16) each loop over: connect, greeting, USER, PASS, QUIT and
         its reply, close.  Worker i binds the source addresses 127.(i+1).0.1,
         127.(i+1).1.1, 127.(i+1).2.1, 127.(i+1).3.1 in turn (all of 127/8 is
         loopback), four addresses in four /24 networks, so that neither a per-source
         limit (popa3d: 50 sessions in 10 s) nor a per-/24 one (ours: 100 in 10 s) is
         reached.  Counts the logins completed in a D-second window after a warm-up.
  flood  32 workers doing the same login loop, all from 127.0.0.2, retrying at once
         when refused (connection closed before any greeting), in a child process of
         their own so that the probe never waits for their GIL.  Meanwhile a probe
         starts a login every 200 ms and times connect() and connect() to the +OK
         after PASS.  It alternates between 127.1.0.1 and 127.1.0.3: from one
         address, 5 logins/s would be exactly the per-source limit (50 in 10 s), and
         the probe would be refused itself.  Before the flood, 10 logins from
         127.1.0.2 give the unloaded latency.
  suite  start each server in turn as a daemon on 0.0.0.0:110 (Debian's popa3d -D,
         ours with -D -F -c FILE), run rate, then flood, against it, stop it by pid,
         and print the comparison (bench/daemon.sh runs this).

A refusal is a connection the server accepts and closes without a byte, which is how
popa3d (and ours) turn away a connection over a limit.  Anything else that is not the
expected reply (-ERR, a connection closed mid-session, a timeout, a refused connect) is
a failure, and failures are "unexpected": they are shown with examples and make the
exit status 3.  In `rate`, refusals are unexpected too unless --allow-refused; in
`flood`, a flood connection that times out is the flood's fate and only counted.

Each run prints one JSON line (prefix `RESULT `) and a short table.  Server CPU is read
from /proc/PID/stat of the daemon (--server-pid): its own user + system time plus that
of the children it reaped (cutime, cstime), which includes every finished session and
whatever those sessions reaped in turn.  A session's CPU counts when it is reaped, so
sessions running across the window's edges blur it by a few logins' worth.
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
CLK_TCK = os.sysconf("SC_CLK_TCK")
STALL_S = 0.2  # a connect() slower than this waited for a SYN retransmission
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC"}
PORT = 110
HERE = os.path.abspath(__file__)


def die(msg):
    sys.exit("daemon_load.py: " + msg)


# ---------------------------------------------------------------------------------
# One POP3 login session.


class Refused(Exception):
    """The server closed the connection before sending a greeting."""

    def __init__(self, connect_s):
        super().__init__("refused")
        self.connect_s = connect_s


class Failure(Exception):
    """Anything else that went wrong: kind is a short category."""

    def __init__(self, kind, detail, connect_s=None):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind
        self.detail = detail
        self.connect_s = connect_s


def read_line(sock, buf):
    """One reply line (without CRLF), or None at EOF before any byte of it."""
    while True:
        i = buf.find(b"\n")
        if i >= 0:
            line = bytes(buf[:i]).rstrip(b"\r")
            del buf[: i + 1]
            return line
        data = sock.recv(4096)
        if not data:
            if buf:
                raise Failure("closed", "EOF inside a line: %r" % bytes(buf[:60]))
            return None
        buf += data


def login(src, host, port, user, password, timeout):
    """A whole session.  Returns (connect_s, login_s, total_s): connect() alone, from
    before connect() to the +OK after PASS, and to the end of the server's EOF after
    QUIT.  Raises Refused or Failure."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connect_s = None
    step = "connect"
    try:
        # Choose the port at connect(), by the 4-tuple: thousands of connections from
        # one address must not each hold a port from bind() on.
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
        s.settimeout(timeout)
        t0 = time.monotonic()
        try:
            s.connect((host, port))
        except OSError as e:
            raise Failure("connect", "%s after %.3f s" % (e, time.monotonic() - t0)) from None
        t1 = time.monotonic()
        connect_s = t1 - t0
        buf = bytearray()
        step = "greeting"
        try:
            greeting = read_line(s, buf)
        except ConnectionResetError:
            raise Refused(connect_s) from None
        if greeting is None:
            raise Refused(connect_s)
        reply = greeting
        if reply.startswith(b"+OK"):
            for step, cmd in (("USER", b"USER %s\r\n" % user), ("PASS", b"PASS %s\r\n" % password)):
                s.sendall(cmd)
                reply = read_line(s, buf)
                if reply is None:
                    raise Failure("closed", "EOF after %s" % step, connect_s)
                if not reply.startswith(b"+OK"):
                    break
        if not reply.startswith(b"+OK"):
            raise Failure("err", "%s: %r" % (step, reply[:80]), connect_s)
        t2 = time.monotonic()
        step = "QUIT"
        s.sendall(b"QUIT\r\n")
        reply = read_line(s, buf)
        if reply is None or not reply.startswith(b"+OK"):
            raise Failure("quit", "QUIT: %r" % (reply,), connect_s)
        while s.recv(4096):
            pass
        return connect_s, t2 - t0, time.monotonic() - t0
    except socket.timeout:
        raise Failure("timeout", "no reply to %s in %g s" % (step, timeout), connect_s) from None
    except OSError as e:
        raise Failure("socket", "%s: %s" % (step, e), connect_s) from None
    finally:
        s.close()


class Tally:
    """Counts of one or more workers, for events that end inside [win0, win1)."""

    def __init__(self):
        self.ok = 0
        self.refused = 0
        self.accepted = 0  # connections that got a greeting
        self.failures = {}
        self.examples = []
        self.connect = []  # connect() seconds, every connection
        self.login = []  # connect to +OK after PASS, successful logins
        self.total = []  # whole session, successful logins
        self.stalls = 0

    def note_connect(self, connect_s):
        if connect_s is not None:
            self.connect.append(connect_s)
            if connect_s > STALL_S:
                self.stalls += 1

    def merge(self, other):
        self.ok += other.ok
        self.refused += other.refused
        self.accepted += other.accepted
        for k, v in other.failures.items():
            self.failures[k] = self.failures.get(k, 0) + v
        self.examples = (self.examples + other.examples)[:5]
        self.connect += other.connect
        self.login += other.login
        self.total += other.total
        self.stalls += other.stalls


def worker_loop(sources, a, win0, win1, tally, refused_backoff, stop_at=None):
    """Log in over and over until win1 (or stop_at), counting what ends in the window."""
    stop_at = win1 if stop_at is None else stop_at
    user, password = a.user.encode(), a.password.encode()
    i = 0
    while time.monotonic() < stop_at:
        src = sources[i % len(sources)]
        i += 1
        try:
            c, lg, tot = login(src, a.host, a.port, user, password, a.timeout)
        except Refused as r:
            if win0 <= time.monotonic() < win1:
                tally.refused += 1
                tally.note_connect(r.connect_s)
            if refused_backoff:
                time.sleep(refused_backoff)
            continue
        except Failure as f:
            if win0 <= time.monotonic() < win1:
                tally.failures[f.kind] = tally.failures.get(f.kind, 0) + 1
                if f.kind != "connect":
                    tally.accepted += 1
                tally.note_connect(f.connect_s)
                if len(tally.examples) < 5:
                    tally.examples.append("%s from %s" % (f, src))
            time.sleep(0.05)  # a failing server must not be hammered by a busy loop
            continue
        if win0 <= time.monotonic() < win1:
            tally.ok += 1
            tally.accepted += 1
            tally.note_connect(c)
            tally.login.append(lg)
            tally.total.append(tot)


# ---------------------------------------------------------------------------------
# CPU figures.


def proc_cpu(pid):
    """utime + stime + cutime + cstime of pid, in seconds (None if it is gone)."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime..cstime are fields 14..17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def machine_cpu():
    """(busy, steal, interrupts) CPU seconds of the whole machine, from /proc/stat;
    busy includes interrupts (irq + softirq: loopback TCP is mostly softirq work that
    no process is charged for)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    v += [0] * (10 - len(v))
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK, (irq + softirq) / CLK_TCK


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


class CpuWindow:
    def __init__(self, server_pid):
        self.server_pid = server_pid

    def start(self):
        self.t0 = time.monotonic()
        self.s0 = proc_cpu(self.server_pid)
        self.m0 = machine_cpu()
        self.c0 = self_cpu()

    def stop(self):
        self.t1 = time.monotonic()
        self.s1 = proc_cpu(self.server_pid)
        self.m1 = machine_cpu()
        self.c1 = self_cpu()

    def result(self, extra_client_cpu=0.0):
        wall = self.t1 - self.t0
        out = {
            "wall_s": wall,
            "machine_busy_cpus": (self.m1[0] - self.m0[0]) / wall,
            "machine_steal_cpus": (self.m1[1] - self.m0[1]) / wall,
            "softirq_cpus": (self.m1[2] - self.m0[2]) / wall,
            "client_cpus": (self.c1 - self.c0 + extra_client_cpu) / wall,
            "server_cpu_s": None,
            "server_cpus": None,
        }
        if self.s0 is not None and self.s1 is not None:
            out["server_cpu_s"] = self.s1 - self.s0
            out["server_cpus"] = (self.s1 - self.s0) / wall
        # Every other process on the machine (a build next door; also scripts/sysenv's
        # syslog receiver): what makes a run noisy.
        out["other_cpus"] = (out["machine_busy_cpus"] - out["softirq_cpus"] - out["client_cpus"]
                             - (out["server_cpus"] or 0.0))
        return out


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def dist_ms(values):
    if not values:
        return None
    return {
        "n": len(values),
        "median": statistics.median(values) * 1000,
        "p90": pct(values, 0.90) * 1000,
        "p99": pct(values, 0.99) * 1000,
        "max": max(values) * 1000,
    }


def f1(x, unit=""):
    return "-" if x is None else "%.1f%s" % (x, unit)


# ---------------------------------------------------------------------------------
# rate


def cmd_rate(a):
    sources = [["127.%d.%d.1" % (i + 1, j) for j in range(4)] for i in range(a.workers)]
    now = time.monotonic()
    win0 = now + a.warmup
    win1 = win0 + a.duration
    tallies = [Tally() for _ in range(a.workers)]
    threads = [
        threading.Thread(target=worker_loop, args=(sources[i], a, win0, win1, tallies[i], a.refused_backoff), daemon=True)
        for i in range(a.workers)
    ]
    for t in threads:
        t.start()
    cpu = CpuWindow(a.server_pid)
    hash_s = []
    try:
        hasher = Hasher(a.user, a.password)
    except OSError:
        hasher = None  # not root, or not in scripts/sysenv: no hash figure
    time.sleep(max(0.0, win0 - time.monotonic()))
    cpu.start()
    # One hash per second during the window (about 1% of the machine).
    while hasher is not None and time.monotonic() < win1 - 1.0:
        hash_s.append(hasher.time_one())
        time.sleep(max(0.0, min(1.0, win1 - 1.0 - time.monotonic())))
    time.sleep(max(0.0, win1 - time.monotonic()))
    cpu.stop()
    for t in threads:
        t.join(a.timeout + 5)
    tally = Tally()
    for t in tallies:
        tally.merge(t)
    failures = sum(tally.failures.values())
    unexpected = failures + (0 if a.allow_refused else tally.refused)
    res = {
        "test": "rate",
        "label": a.label,
        "workers": a.workers,
        "warmup_s": a.warmup,
        "duration_s": a.duration,
        "logins": tally.ok,
        "logins_per_s": tally.ok / a.duration,
        "refused": tally.refused,
        "failures": tally.failures,
        "unexpected": unexpected,
        "examples": tally.examples,
        "login_ms": dist_ms(tally.login),
        "session_ms": dist_ms(tally.total),
        "connect_ms": dist_ms(tally.connect),
        "connect_stalls": tally.stalls,
        "cpu": cpu.result(),
        "hash_ms_in_run": statistics.median(hash_s) * 1000 if hash_s else None,
    }
    if res["cpu"]["server_cpu_s"] is not None and tally.ok:
        res["server_cpu_ms_per_login"] = res["cpu"]["server_cpu_s"] * 1000 / tally.ok
    emit(res, a.json_out)
    lm = res["login_ms"] or {}
    print("rate  %-28s %7.1f logins/s  (%d in %g s, %d workers)  refused %d  failures %d"
          % (a.label, res["logins_per_s"], tally.ok, a.duration, a.workers, tally.refused, failures))
    print("      login latency ms: median %s p90 %s max %s; connect max %s ms, stalls %d"
          % (f1(lm.get("median")), f1(lm.get("p90")), f1(lm.get("max")),
             f1((res["connect_ms"] or {}).get("max")), tally.stalls))
    print_cpu(res)
    report_unexpected(res)
    return 3 if unexpected else 0


def print_cpu(res):
    c = res["cpu"]
    per = res.get("server_cpu_ms_per_login")
    print("      CPUs busy: server %s, load generator %.2f, softirq %.2f, other %.2f, whole machine %.2f "
          "(steal %.2f)%s"
          % ("-" if c["server_cpus"] is None else "%.2f" % c["server_cpus"], c["client_cpus"],
             c["softirq_cpus"], c["other_cpus"], c["machine_busy_cpus"], c["machine_steal_cpus"],
             "" if per is None else "; server %.1f ms CPU per login" % per))


def report_unexpected(res):
    if res["unexpected"]:
        print("      UNEXPECTED: %d (failures %s, refused %d); e.g.:" % (res["unexpected"], res["failures"], res["refused"]),
              file=sys.stderr)
        for e in res.get("examples", []):
            print("        " + e, file=sys.stderr)


def emit(res, json_out):
    line = json.dumps(res, sort_keys=True)
    print("RESULT " + line)
    if json_out:
        with open(json_out, "w") as f:
            f.write(line + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------
# flood


def cmd_flood_workers(a):
    """The flood, in its own process: prints one JSON object on stdout at the end."""
    tallies = [Tally() for _ in range(a.flood_workers)]
    threads = [
        threading.Thread(target=worker_loop, args=([a.flood_source], a, a.win0, a.win1, tallies[i], 0.0), daemon=True)
        for i in range(a.flood_workers)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, a.win0 - time.monotonic()))
    c0 = self_cpu()
    time.sleep(max(0.0, a.win1 - time.monotonic()))
    c1 = self_cpu()
    for t in threads:
        t.join(a.timeout + 5)
    tally = Tally()
    for t in tallies:
        tally.merge(t)
    out = {
        "ok": tally.ok,
        "accepted": tally.accepted,
        "refused": tally.refused,
        "failures": tally.failures,
        "examples": tally.examples,
        "connect_stalls": tally.stalls,
        "connect_ms": dist_ms(tally.connect),
        "login_ms": dist_ms(tally.login),
        "cpu_s": c1 - c0,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def baseline_ms(a, n=10):
    """Login latency with no load: n sequential logins from --baseline-source."""
    user, password = a.user.encode(), a.password.encode()
    lat = []
    for _ in range(n):
        try:
            lat.append(login(a.baseline_source, a.host, a.port, user, password, a.timeout)[1])
        except (Refused, Failure) as e:
            die("the unloaded baseline login failed: %s" % e)
    return dist_ms(lat)


def cmd_flood(a):
    base = baseline_ms(a) if a.baseline_source else None
    now = time.monotonic()
    win0 = now + a.warmup
    win1 = win0 + a.duration
    cmd = [sys.executable, HERE, "_flood-workers", "--host", a.host, "--port", str(a.port),
           "--user", a.user, "--password", a.password, "--timeout", str(a.timeout),
           "--flood-workers", str(a.flood_workers), "--flood-source", a.flood_source,
           "--win0", repr(win0), "--win1", repr(win1)]
    flood = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    cpu = CpuWindow(a.server_pid)
    probe = Tally()
    samples = []  # (seconds into the window, login ms or None)
    user, password = a.user.encode(), a.password.encode()
    time.sleep(max(0.0, win0 - time.monotonic()))
    cpu.start()
    next_t = win0
    probe_sources = a.probe_source.split(",")
    n = 0
    while True:
        now = time.monotonic()
        if now >= win1:
            break
        if now < next_t:
            time.sleep(next_t - now)
        at = round(time.monotonic() - win0, 3)
        samples.append([at, None])
        try:
            src = probe_sources[n % len(probe_sources)]
            n += 1
            c, lg, tot = login(src, a.host, a.port, user, password, a.timeout)
            samples[-1][1] = round(lg * 1000, 2)
            probe.ok += 1
            probe.accepted += 1
            probe.note_connect(c)
            probe.login.append(lg)
            probe.total.append(tot)
        except Refused as r:
            probe.refused += 1
            probe.note_connect(r.connect_s)
        except Failure as f:
            probe.failures[f.kind] = probe.failures.get(f.kind, 0) + 1
            probe.note_connect(f.connect_s)
            if len(probe.examples) < 5:
                probe.examples.append("probe: %s" % f)
        next_t += a.probe_interval
        next_t = max(next_t, time.monotonic() - a.probe_interval)  # no catch-up burst
    cpu.stop()
    out, _ = flood.communicate(timeout=a.timeout + 30)
    if flood.returncode != 0:
        die("the flood process failed (status %d)" % flood.returncode)
    fl = json.loads(out)
    flood_failures = sum(fl["failures"].values())
    # A flood connection may time out: when the server's accept queue is full, the
    # kernel drops the handshake's last ACK, the client believes it is connected and
    # the server never sees it.  That is the flood's fate, reported; the probe must
    # never time out, and nobody may get a wrong reply.
    flood_unexpected = sum(v for k, v in fl["failures"].items() if k != "timeout")
    probe_failures = sum(probe.failures.values())
    unexpected = flood_unexpected + probe_failures + probe.refused
    res = {
        "test": "flood",
        "label": a.label,
        "flood_workers": a.flood_workers,
        "flood_source": a.flood_source,
        "probe_source": a.probe_source,
        "probe_interval_s": a.probe_interval,
        "warmup_s": a.warmup,
        "duration_s": a.duration,
        "probe_logins": probe.ok,
        "probe_refused": probe.refused,
        "probe_failures": probe.failures,
        "probe_login_ms": dist_ms(probe.login),
        "probe_samples": samples,
        "baseline_login_ms": base,
        "probe_connect_ms": dist_ms(probe.connect),
        "probe_connect_stalls": probe.stalls,
        "flood": fl,
        "flood_accepted_per_s": fl["accepted"] / a.duration,
        "flood_refused_per_s": fl["refused"] / a.duration,
        "flood_logins_per_s": fl["ok"] / a.duration,
        "flood_timeouts": fl["failures"].get("timeout", 0),
        "unexpected": unexpected,
        "failures": dict(fl["failures"], **{"probe_" + k: v for k, v in probe.failures.items()}),
        "refused": probe.refused,
        "examples": probe.examples + fl["examples"],
        "cpu": cpu.result(extra_client_cpu=fl["cpu_s"]),
    }
    emit(res, a.json_out)
    pm = res["probe_login_ms"] or {}
    pc = res["probe_connect_ms"] or {}
    print("flood %-28s probe login ms: median %s p90 %s p99 %s max %s  (%d logins, %d refused, %d failed)"
          % (a.label, f1(pm.get("median")), f1(pm.get("p90")), f1(pm.get("p99")), f1(pm.get("max")),
             probe.ok, probe.refused, probe_failures))
    if base:
        print("      unloaded (10 logins from %s before the flood): median %s ms" % (a.baseline_source, f1(base["median"])))
    print("      probe connect max %s ms, stalls (>%d ms) %d; flood from %s: %.1f accepted/s, %.1f refused/s, "
          "%.1f logins/s, %d failed (%d timed out), connect stalls %d"
          % (f1(pc.get("max")), STALL_S * 1000, probe.stalls, a.flood_source, res["flood_accepted_per_s"],
             res["flood_refused_per_s"], res["flood_logins_per_s"], flood_failures, res["flood_timeouts"],
             fl["connect_stalls"]))
    print_cpu(res)
    report_unexpected(res)
    return 3 if unexpected else 0


# ---------------------------------------------------------------------------------
# suite: start, measure, stop each server.


def pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def listener_pids(port):
    """Processes holding a TCP socket that listens on `port`."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    v = line.split()
                    if v[3] == "0A" and int(v[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % v[9])
        except OSError:
            pass
    found = set()
    if not inodes:
        return found
    for pid in pids():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                        found.add(pid)
                        break
                except OSError:
                    pass
        except OSError:
            pass
    return found


class Server:
    """One server configuration; start() returns the daemon's pid."""

    def __init__(self, key, label, argv, conf=None):
        self.key, self.label, self.argv, self.conf = key, label, argv, conf
        self.proc = None
        self.pid = None

    def start(self, tmp, extra_conf=""):
        if listener_pids(PORT):
            die("port %d is already in use before starting %s" % (PORT, self.label))
        self.baseline = pids()
        self.stderr_path = os.path.join(tmp, "%s.stderr" % self.key)
        err = open(self.stderr_path, "ab")
        argv = list(self.argv)
        if self.conf is not None:
            conf_path = os.path.join(tmp, "%s.toml" % self.key)
            with open(conf_path, "w") as f:
                f.write(self.conf + extra_conf + '\n[[listener]]\naddress = "0.0.0.0:%d"\n' % PORT)
            argv += ["-c", conf_path]
        self.proc = subprocess.Popen(argv, env=ENV, cwd="/", stdin=subprocess.DEVNULL, stdout=err,
                                     stderr=err, start_new_session=True)
        err.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            holders = listener_pids(PORT)
            if self.conf is None:
                # popa3d -D forks: the parent exits 0, the child listens.
                if holders and self.proc.poll() is not None:
                    if self.proc.returncode != 0:
                        die("%s exited %d: %s" % (argv, self.proc.returncode, self.stderr()))
                    if len(holders) != 1:
                        die("several processes listen on port %d: %s" % (PORT, sorted(holders)))
                    self.pid = holders.pop()
                    return self.pid
            else:
                if self.proc.pid in holders:
                    self.pid = self.proc.pid
                    return self.pid
            if self.proc.poll() not in (None, 0):
                die("%s exited %d: %s" % (" ".join(argv), self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        die("%s: nothing listens on port %d after 15 s: %s" % (" ".join(argv), PORT, self.stderr()))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "backslashreplace").strip()[-2000:] or "(no output on stderr)"
        except OSError:
            return "(no stderr file)"

    def stop(self):
        """SIGTERM to the daemon; wait for it and every process started since start()
        (its sessions) to end; SIGKILL what is left after 20 s (all of it ours: this is
        a private PID namespace)."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 20
        me = os.getpid()
        while True:
            left = [p for p in pids() - self.baseline if p != me and proc_state(p) not in (None, "Z")]
            if not left:
                break
            if time.monotonic() > deadline:
                print("suite: %d process(es) of %s still running 20 s after SIGTERM; killing them: %s"
                      % (len(left), self.label, left), file=sys.stderr)
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.5)
                break
            time.sleep(0.05)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.pid = None


def wait_idle(limit_s, quiet_s=3.0, max_busy=0.15):
    """Wait up to limit_s seconds until the machine has had fewer than max_busy CPUs
    busy for quiet_s seconds (other sessions' builds spoil the figures)."""
    deadline = time.monotonic() + limit_s
    while True:
        m0 = machine_cpu()
        time.sleep(quiet_s)
        busy = (machine_cpu()[0] - m0[0]) / quiet_s
        if busy < max_busy:
            return True
        if time.monotonic() > deadline:
            print("suite: the machine is still busy (%.2f CPUs); measuring anyway" % busy, flush=True)
            return False


NOISY_CPUS = 0.2  # other processes busier than this spoil a run


def noise(res):
    return (res or {}).get("cpu", {}).get("other_cpus", 0.0)


def run_test(a, srv, test, tmp):
    json_out = os.path.join(tmp, "%s-%s.json" % (test, srv.key))
    cmd = [sys.executable, HERE, test, "--label", srv.label, "--server-pid", str(srv.pid),
           "--warmup", str(a.warmup), "--duration", str(a.duration), "--json-out", json_out]
    if test == "rate":
        cmd += ["--workers", str(a.workers)]
        if srv.key == "popa3d":
            cmd.append("--allow-refused")  # its global limit: 50 new sessions/s at most
    else:
        cmd += ["--flood-workers", str(a.flood_workers)]
    rc = subprocess.call(cmd)
    try:
        with open(json_out) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return {"test": test, "label": srv.label, "error": "the %s run failed (status %d)" % (test, rc), "unexpected": 1}
    res["server"] = srv.key
    return res


class Hasher:
    """libxcrypt's crypt() of a user's password on that user's hash from /etc/shadow,
    as both servers compute it (directly or through pam_unix): the floor of a login's
    CPU.  Timed next to every run, and during rate runs, because a virtual machine's
    CPU speed drifts by several per cent within minutes."""

    def __init__(self, user, password):
        import ctypes

        self.setting = None
        with open("/etc/shadow") as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == user:
                    self.setting = fields[1].encode()
        if not self.setting:
            raise OSError("no %s in /etc/shadow" % user)
        self.password = password.encode()
        self.lib = ctypes.CDLL("libcrypt.so.1")
        self.lib.crypt.restype = ctypes.c_char_p
        self.lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

    def time_one(self):
        """CPU seconds of one crypt() in this thread (ctypes releases the GIL)."""
        t0 = time.thread_time()
        out = self.lib.crypt(self.password, self.setting)
        t = time.thread_time() - t0
        if out != self.setting:
            die("crypt() of the password does not give the hash in /etc/shadow")
        return t


def hash_times(user, password, n):
    h = Hasher(user, password)
    return [h.time_one() for _ in range(n)]


def cmd_suite(a):
    tmp = os.environ.get("SYSENV_TMP") or "/tmp"
    servers = []
    if a.only in (None, "popa3d"):
        servers.append(Server("popa3d", "popa3d -D (Debian, PAM)", [a.popa3d, "-D"]))
    if a.only in (None, "ours"):
        servers.append(Server("ours-pam", "ours -D (auth=pam)", [a.ours, "-D", "-F"], 'auth = "pam"\n'))
        servers.append(Server("ours-shadow", "ours -D (auth=shadow)", [a.ours, "-D", "-F"], 'auth = "shadow"\n'))
    results = []
    for rep in range(a.repeat):
        for test in a.tests:
            for srv in servers:
                res = run_quietest(a, srv, test, tmp)
                res["repeat"] = rep + 1
                results.append(res)
    summary(results, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine_cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                       "results": results}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 3 if any(r.get("unexpected") for r in results) else 0


def run_quietest(a, srv, test, tmp):
    """One run of test against srv, repeated up to --retry-noisy times while other
    processes were busy during it; the quietest attempt is returned."""
    # The rate run lifts ours' global limit (popa3d's 500 sessions within 10 s caps
    # any server at 50 new sessions/s); the flood run keeps every default.
    extra = "max_sessions = 5000\n" if test == "rate" and srv.conf is not None else ""
    best = None
    for attempt in range(1 + a.retry_noisy):
        if a.wait_idle:
            wait_idle(a.wait_idle)
        print("== %s: %s%s%s" % (test, srv.label, " with max_sessions = 5000" if extra else "",
                                  " (again: other processes used %.2f CPUs)" % noise(best) if attempt else ""),
              flush=True)
        hashes = hash_times("bob", "bobpw", 10)
        try:
            srv.start(tmp, extra)
            res = run_test(a, srv, test, tmp)
        finally:
            srv.stop()
        hashes += hash_times("bob", "bobpw", 10)
        res["hash_ms_around_run"] = statistics.median(hashes) * 1000
        if srv.proc is not None and srv.conf is not None and srv.proc.returncode not in (0, None):
            print("suite: %s exited %d after SIGTERM" % (srv.label, srv.proc.returncode), file=sys.stderr)
        res["attempts"] = attempt + 1
        if best is None or noise(res) < noise(best):
            best = res
        time.sleep(1)
        if noise(best) <= NOISY_CPUS or "error" in best:
            break
    best["noisy"] = noise(best) > NOISY_CPUS
    return best


# Hashes per login: pam_unix computes two (bench/README.md, "Login CPU per session").
HASHES = {"popa3d": 2, "ours-pam": 2, "ours-shadow": 1}


def get(r, *path):
    for k in path:
        r = (r or {}).get(k)
    return r


def rate_hash_ms(r):
    return r.get("hash_ms_in_run") or r.get("hash_ms_around_run")


def rate_bound(r):
    h = rate_hash_ms(r)
    return h and os.cpu_count() * 1000 / (HASHES[r["server"]] * h)


def rate_rest(r):
    per, h = r.get("server_cpu_ms_per_login"), rate_hash_ms(r)
    return per and h and per - HASHES[r["server"]] * h


# (heading, width, format, value): the summary tables.  "ratio" marks the column
# that is also shown as ours / popa3d.
RATE_COLUMNS = [
    ("logins/s", 9, "%.1f", lambda r: r["logins_per_s"]),
    ("refused", 7, "%d", lambda r: r["refused"]),
    ("failed", 6, "%d", lambda r: sum(r["failures"].values())),
    ("median ms", 9, "%.1f", lambda r: get(r, "login_ms", "median")),
    ("p90 ms", 7, "%.1f", lambda r: get(r, "login_ms", "p90")),
    ("server CPUs", 11, "%.2f", lambda r: get(r, "cpu", "server_cpus")),
    ("CPU ms/login", 12, "%.1f", lambda r: r.get("server_cpu_ms_per_login")),
    ("hash ms", 7, "%.1f", rate_hash_ms),
    ("bound/s", 7, "%.1f", rate_bound),
    ("rest ms", 7, "%.1f", rate_rest),
    ("other CPUs", 10, "%.2f", lambda r: get(r, "cpu", "other_cpus")),
]
FLOOD_COLUMNS = [
    ("unloaded", 8, "%.1f", lambda r: get(r, "baseline_login_ms", "median")),
    ("median", 7, "%.1f", lambda r: get(r, "probe_login_ms", "median")),
    ("p90", 7, "%.1f", lambda r: get(r, "probe_login_ms", "p90")),
    ("p99", 7, "%.1f", lambda r: get(r, "probe_login_ms", "p99")),
    ("max ms", 7, "%.1f", lambda r: get(r, "probe_login_ms", "max")),
    ("conn max", 8, "%.1f", lambda r: get(r, "probe_connect_ms", "max")),
    ("stalls", 6, "%d", lambda r: r["probe_connect_stalls"]),
    ("probe fail", 10, "%d", lambda r: r["probe_refused"] + sum(r["probe_failures"].values())),
    ("flood acc/s", 11, "%.1f", lambda r: r["flood_accepted_per_s"]),
    ("flood ref/s", 11, "%.0f", lambda r: r["flood_refused_per_s"]),
    ("flood t/o", 9, "%d", lambda r: r["flood_timeouts"]),
    ("server CPUs", 11, "%.2f", lambda r: get(r, "cpu", "server_cpus")),
    ("other CPUs", 10, "%.2f", lambda r: get(r, "cpu", "other_cpus")),
]


def summary(results, a):
    print()
    print("Standalone daemon, %d CPUs, %s s window after %s s warm-up%s" % (
        os.cpu_count(), a.duration, a.warmup, ", %d repeats" % a.repeat if a.repeat > 1 else ""))
    for r in results:
        if "error" in r:
            print("  %s %s: %s" % (r["test"], r["label"], r["error"]))
    good = [r for r in results if "error" not in r]
    if "rate" in a.tests:
        print()
        print("(1) logins/s, %d clients from their own addresses (ours: max_sessions = 5000)" % a.workers)
        table(good, "rate", RATE_COLUMNS, 0, a.repeat)
        print("hash ms: bob's yescrypt hash alone (CPU, sampled during the run); bound/s: CPUs / hashes per login")
        print("(2 for popa3d and auth=pam: pam_unix hashes twice; 1 for auth=shadow); rest ms: CPU per login")
        print("minus the hashes.  Target: >= 100 logins/s.")
    if "flood" in a.tests:
        print()
        print("(2) login latency (ms, connect to +OK after PASS) of a probe from 127.1.0.1 and .3, one login per")
        print("200 ms, while %d login loops flood from 127.0.0.2; default limits.  unloaded: 10 logins before"
              % a.flood_workers)
        print("the flood; stalls: probe connect() > 200 ms; flood t/o: flood sessions that got no greeting.")
        table(good, "flood", FLOOD_COLUMNS, 1, a.repeat)
        print("Target: median <= 50 ms, no connect stall.")
    if any(r.get("noisy") for r in results):
        print()
        print("* other processes used more than %g CPUs during this run: its figures are doubtful" % NOISY_CPUS)


def table(results, test, columns, ratio_col, repeats):
    """One row per run (and per server a median row when repeated), with the ratio
    ours / popa3d of column ratio_col."""
    keys = [k for k in HASHES if any(r["test"] == test and r["server"] == k for r in results)]
    head = "%-32s %7s" % ("server", "ours/p")
    for name, width, _, _ in columns:
        head += " %*s" % (width, name)
    print(head)

    def value(rows, fn):
        vals = [fn(r) for r in rows]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None

    medians = {}
    for key in keys:
        rows = [r for r in results if r["test"] == test and r["server"] == key]
        medians[key] = value(rows, columns[ratio_col][3])
        lines = [("%s%s" % (r["label"], " #%d" % r["repeat"] if repeats > 1 else "") + (" *" if r.get("noisy") else ""),
                  [r]) for r in rows]
        if len(rows) > 1:
            lines.append(("%s median" % rows[0]["label"], rows))
        for label, rs in lines:
            base = medians.get("popa3d")
            mine = value(rs, columns[ratio_col][3])
            ratio = "" if key == "popa3d" or not base or mine is None else "%.2f" % (mine / base)
            if len(rs) == 1 and key != "popa3d" and repeats > 1:
                same = [r for r in results if r["test"] == test and r["server"] == "popa3d"
                        and r.get("repeat") == rs[0].get("repeat")]
                b = value(same, columns[ratio_col][3])
                ratio = "" if not b or mine is None else "%.2f" % (mine / b)
            line = "%-32s %7s" % (label, ratio)
            for _, width, fmt, fn in columns:
                v = value(rs, fn)
                line += " %*s" % (width, "-" if v is None else fmt % v)
            print(line)


# ---------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, timing=True):
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=PORT)
        p.add_argument("--user", default="bob")
        p.add_argument("--password", default="bobpw")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds per socket operation")
        if timing:
            p.add_argument("--warmup", type=float, default=3.0)
            p.add_argument("--duration", type=float, default=20.0)
            p.add_argument("--server-pid", type=int, default=0, help="the daemon, for its CPU time")
            p.add_argument("--label", default="server")
            p.add_argument("--json-out", help="also write the JSON result here")

    p = sub.add_parser("rate", help="logins per second")
    common(p)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--allow-refused", action="store_true", help="refusals are not failures")
    p.add_argument("--refused-backoff", type=float, default=0.01,
                   help="seconds a worker waits after a refusal (default 0.01)")
    p = sub.add_parser("flood", help="probe latency under a flood")
    common(p)
    p.add_argument("--flood-workers", type=int, default=32)
    p.add_argument("--flood-source", default="127.0.0.2")
    p.add_argument("--probe-source", default="127.1.0.1,127.1.0.3", help="addresses, used in turn")
    p.add_argument("--probe-interval", type=float, default=0.2)
    p.add_argument("--baseline-source", default="127.1.0.2",
                   help="10 unloaded logins from here first ('' to skip)")
    p = sub.add_parser("_flood-workers")
    common(p, timing=False)
    p.add_argument("--flood-workers", type=int, required=True)
    p.add_argument("--flood-source", required=True)
    p.add_argument("--win0", type=float, required=True)
    p.add_argument("--win1", type=float, required=True)
    p = sub.add_parser("suite", help="start each server, run the tests, compare")
    p.add_argument("--popa3d", required=True)
    p.add_argument("--ours", required=True)
    p.add_argument("--only", choices=("popa3d", "ours"))
    p.add_argument("--tests", default="rate,flood")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--flood-workers", type=int, default=32)
    p.add_argument("--json", help="write every result here")
    p.add_argument("--repeat", type=int, default=1, help="run everything this many times (default 1)")
    p.add_argument("--wait-idle", type=float, default=0.0,
                   help="before each run, wait up to this many seconds for an idle machine")
    p.add_argument("--retry-noisy", type=int, default=0,
                   help="repeat a run up to this many times while other processes used more than %g CPUs "
                        "during it; the quietest attempt counts" % NOISY_CPUS)
    a = ap.parse_args()

    if a.cmd == "suite":
        a.popa3d, a.ours = os.path.abspath(a.popa3d), os.path.abspath(a.ours)  # servers run from /
        a.tests = [t for t in a.tests.split(",") if t]
        for t in a.tests:
            if t not in ("rate", "flood"):
                die("--tests: unknown test %r" % t)
        return cmd_suite(a)
    for name in ("duration", "warmup"):
        if getattr(a, name, 1) < 0:
            die("--%s must not be negative" % name)
    if a.cmd == "rate":
        if not 1 <= a.workers <= 254:
            die("--workers must be 1 to 254")
        return cmd_rate(a)
    if a.cmd == "flood":
        return cmd_flood(a)
    return cmd_flood_workers(a)


if __name__ == "__main__":
    sys.exit(main())

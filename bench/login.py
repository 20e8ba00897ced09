#!/usr/bin/env python3
"""CPU per login session: Debian's popa3d and ours, side by side, on the same accounts.

Runs inside scripts/sysenv (bench/login.sh starts it there): real accounts (bob with a
yescrypt hash, carol with a sha512-crypt hash), a two-message mailbox for each in
/var/mail, PAM's popa3d service, /dev/log.  This process is its own inetd and its own
client: for each session it connects to its listening socket on 127.0.0.1, accepts,
spawns the server with the socket as stdin and stdout (as scripts/sysenv's inetd does:
new session, default signal dispositions, empty mask, cwd /, environment PATH and TZ
only; stderr to a file, which must stay empty), speaks the greeting, USER, PASS, STAT,
QUIT, reading each reply and checking it, and reaps.

The CPU of a session is the user + system time of the whole server process tree: this
process is a child subreaper (PR_SET_CHILD_SUBREAPER), so it reaps the server and any
process of its tree that outlives its parent, and wait4's rusage of a process includes
every descendant it reaped itself (the pre-auth child, the verifier or PAM child, the
session).  The client's work is in this process and not counted.  Wall time is from
connect() to the last reap.

Sessions run one at a time, in rounds: for each account, popa3d, ours, ours with
`auth = "pam"`, then that account's password hash alone (libxcrypt's crypt() of the
password on the very hash from /etc/shadow, timed in this process).  A few warm-up
rounds are not counted.  The hash is timed in every round because a virtual machine's
CPU speed drifts: the per-round figures "session minus k hashes" and "ours / popa3d"
compare like with like.  bob's yescrypt hash is the realistic case (Debian 12's
default, ~25 ms); carol's sha512-crypt hash (~4 ms) shows the cost that is not the
hash with less noise.
"""

import argparse
import ctypes
import json
import os
import signal
import socket
import statistics
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC"}
ACCOUNTS = [("bob", b"bobpw", "yescrypt"), ("carol", b"carolpw", "sha512-crypt")]


def die(msg):
    sys.exit("login.py: " + msg)


def ms(x):
    return "%.2f" % (x * 1000)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def cpu_times():
    """Whole-machine busy and steal CPU seconds (/proc/stat), and our own (self and
    children)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    steal = fields[7] / hz
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / hz - steal  # not idle, iowait
    t = os.times()
    return busy, steal, t.user + t.system + t.children_user + t.children_system


def shadow_hash(user):
    with open("/etc/shadow") as f:
        for line in f:
            fields = line.split(":")
            if fields[0] == user:
                return fields[1].encode()
    die("no %s in /etc/shadow" % user)


class Crypt:
    """libxcrypt's crypt(), as both servers use it (through pam_unix or directly)."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcrypt.so.1")
        self.lib.crypt.restype = ctypes.c_char_p
        self.lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]

    def time(self, password, setting):
        """CPU seconds of one crypt() call."""
        t0 = time.process_time()
        out = self.lib.crypt(password, setting)
        t = time.process_time() - t0
        if out != setting:
            die("crypt() of the known password does not give %r" % setting.decode())
        return t


def read_line(sock, buf):
    while b"\n" not in buf:
        data = sock.recv(4096)
        if not data:
            return None, buf
        buf += data
    line, _, rest = buf.partition(b"\n")
    return line + b"\n", rest


class Server:
    def __init__(self, label, path, args, hashes, stderr_path):
        self.label, self.path, self.args = label, path, args
        self.hashes = hashes  # password hashes per login
        self.stderr_path = stderr_path

    def session(self, listener, user, password):
        """One session; (CPU seconds of the server's tree, wall seconds, STAT reply)."""
        sigs = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
        err = os.open(self.stderr_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        t0 = time.perf_counter()
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        try:
            os.posix_spawn(
                self.path, [self.path] + self.args, ENV,
                file_actions=[(os.POSIX_SPAWN_DUP2, conn.fileno(), 0),
                              (os.POSIX_SPAWN_DUP2, conn.fileno(), 1),
                              (os.POSIX_SPAWN_DUP2, err, 2)],
                setsid=True, setsigdef=sigs, setsigmask=[])
        finally:
            conn.close()
            os.close(err)
        script = [(b"USER %s\r\n" % user.encode(), b"+OK"), (b"PASS %s\r\n" % password, b"+OK"),
                  (b"STAT\r\n", b"+OK "), (b"QUIT\r\n", b"+OK")]
        line, buf = read_line(client, b"")
        replies = [line]
        for cmd, want in script:
            if line is None or not line.startswith(b"+OK"):
                break
            client.sendall(cmd)
            line, buf = read_line(client, buf)
            replies.append(line)
        while True:
            data = client.recv(4096)
            if not data:
                break
            buf += data
        client.close()
        cpu = 0.0
        while True:  # the server, and anything of its tree that outlived its parent
            try:
                _, _, ru = os.wait4(-1, 0)
            except ChildProcessError:
                break
            cpu += ru.ru_utime + ru.ru_stime
        wall = time.perf_counter() - t0
        want = [b"+OK"] + [w for _, w in script]
        if len(replies) != len(want) or buf or any(
                r is None or not r.startswith(w) for r, w in zip(replies, want)):
            die("%s, %s: unexpected session %r (then %r); its stderr is in %s" % (
                self.label, user, replies, buf, self.stderr_path))
        return cpu, wall, replies[3]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--popa3d", required=True, help="Debian's popa3d")
    ap.add_argument("--ours", required=True, help="our popa3d")
    ap.add_argument("-n", "--sessions", type=int, default=200,
                    help="counted rounds (sessions per server and account)")
    ap.add_argument("--warmup", type=int, default=5, help="uncounted rounds first")
    ap.add_argument("--no-pam", action="store_true", help='skip ours with auth = "pam"')
    ap.add_argument("--json", help="write every figure here")
    opts = ap.parse_args()

    tmp = os.environ.get("SYSENV_TMP")
    if not tmp or not os.environ.get("SYSENV_LOG"):
        die("run me through bench/login.sh (inside scripts/sysenv)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        die("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))
    pam_conf = os.path.join(tmp, "pam.toml")
    with open(pam_conf, "w") as f:
        f.write('auth = "pam"\n')
    # pam_unix (Linux-PAM 1.5.2, Debian 12) hashes twice: verify_pwd_hash() does
    # x_strdup(crypt_r(...)), a macro that evaluates its argument twice.
    servers = [
        Server("popa3d (Debian, PAM)", opts.popa3d, [], 2, os.path.join(tmp, "stderr-popa3d")),
        Server("ours (shadow)", opts.ours, [], 1, os.path.join(tmp, "stderr-ours")),
    ]
    if not opts.no_pam:
        servers.append(Server('ours (auth = "pam")', opts.ours, ["-c", pam_conf], 2,
                              os.path.join(tmp, "stderr-ours-pam")))
    os.chdir("/")

    crypt = Crypt()
    hashes = {user: shadow_hash(user) for user, _, _ in ACCOUNTS}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    # cpu[(server label, user)], wall[...], hash_cpu[user]: one entry per counted round.
    cpu = {(s.label, u): [] for s in servers for u, _, _ in ACCOUNTS}
    wall = {(s.label, u): [] for s in servers for u, _, _ in ACCOUNTS}
    stat = {}
    hash_cpu = {u: [] for u, _, _ in ACCOUNTS}
    busy0, steal0, own0 = cpu_times()
    t0 = time.monotonic()
    for i in range(opts.warmup + opts.sessions):
        for user, password, _ in ACCOUNTS:
            for s in servers:
                c, w, st = s.session(listener, user, password)
                if stat.setdefault(user, st) != st:
                    die("%s: STAT for %s is %r, earlier %r" % (s.label, user, st, stat[user]))
                if i >= opts.warmup:
                    cpu[(s.label, user)].append(c)
                    wall[(s.label, user)].append(w)
            h = crypt.time(password, hashes[user])
            if i >= opts.warmup:
                hash_cpu[user].append(h)
    elapsed = time.monotonic() - t0
    busy1, steal1, own1 = cpu_times()
    other = max(0.0, (busy1 - busy0) - (own1 - own0))
    steal = steal1 - steal0
    for s in servers:
        if os.path.exists(s.stderr_path) and os.path.getsize(s.stderr_path):
            with open(s.stderr_path, errors="replace") as f:
                die("%s wrote to stderr:\n%s" % (s.label, f.read()))

    ref = servers[0]
    n = opts.sessions
    print("CPU per login session (connect, USER, PASS, STAT, QUIT): the whole server process")
    print("tree, %d sessions per server and account after %d warm-up rounds, one at a time"
          % (n, opts.warmup))
    print("over loopback TCP.  Times in ms.")
    result = {"sessions": n, "warmup": opts.warmup, "accounts": {}}
    for user, _, scheme in ACCOUNTS:
        hc = hash_cpu[user]
        h = statistics.median(hc)
        print()
        print("== %s (%s): one hash alone %s (median of %d, one per round; min %s, p90 %s)"
              % (user, scheme, ms(h), len(hc), ms(min(hc)), ms(pct(hc, 0.9))))
        print("%-22s %7s %7s %7s %7s %8s %8s  %-8s %s" % (
            "", "CPU med", "mean", "min", "p90", "wall med", "mean", "ours/ref",
            "CPU = hashes + the rest"))
        ref_cpu = cpu[(ref.label, user)]
        rows = []
        for s in servers:
            c, w = cpu[(s.label, user)], wall[(s.label, user)]
            k = s.hashes
            over1 = statistics.median(x - y for x, y in zip(c, hc))
            over2 = statistics.median(x - 2 * y for x, y in zip(c, hc))
            ratio = statistics.median(x / y for x, y in zip(c, ref_cpu))
            print("%-22s %7s %7s %7s %7s %8s %8s  %-8s %s" % (
                s.label, ms(statistics.median(c)), ms(statistics.mean(c)), ms(min(c)),
                ms(pct(c, 0.9)), ms(statistics.median(w)), ms(statistics.mean(w)),
                "-" if s is ref else "%.3f" % ratio,
                ("1 hash + %s" % ms(over1)) if k == 1 else ("2 hashes + %s" % ms(over2))))
            rows.append({"server": s.label, "path": s.path, "args": s.args,
                         "cpu_median_ms": statistics.median(c) * 1000,
                         "cpu_mean_ms": statistics.mean(c) * 1000,
                         "cpu_min_ms": min(c) * 1000, "cpu_p90_ms": pct(c, 0.9) * 1000,
                         "wall_median_ms": statistics.median(w) * 1000,
                         "wall_mean_ms": statistics.mean(w) * 1000,
                         "ratio_to_popa3d_per_round_median": None if s is ref else ratio,
                         "minus_one_hash_ms": over1 * 1000, "minus_two_hashes_ms": over2 * 1000,
                         "cpu_ms": [x * 1000 for x in c], "wall_ms": [x * 1000 for x in w]})
        result["accounts"][user] = {"scheme": scheme, "stat": stat[user].decode().strip(),
                                    "hash_median_ms": h * 1000,
                                    "hash_ms": [x * 1000 for x in hc], "servers": rows}

    # The target, on the realistic account.
    user = ACCOUNTS[0][0]
    ours_c, ref_c, hc = cpu[(servers[1].label, user)], cpu[(ref.label, user)], hash_cpu[user]
    ratio = statistics.median(x / y for x, y in zip(ours_c, ref_c))
    over = statistics.median(x - y for x, y in zip(ours_c, hc))
    print()
    print("target (%s): ours (shadow) at most half of popa3d's, that is one hash + at most 2 ms"
          % user)
    print("  ours / popa3d  %.3f   %s" % (ratio, "met" if ratio <= 0.5 else "NOT MET"))
    print("  one hash + %s ms   %s" % (ms(over), "met" if over <= 0.002 else "NOT MET"))
    print()
    print("run: %.1f s; other processes used %.1f CPU-s meanwhile (%.0f%% of one CPU); "
          "steal %.1f s%s"
          % (elapsed, other, 100 * other / elapsed, steal,
             "  WARNING: a busy machine; re-run when idle" if other / elapsed > 0.15 else ""))
    result.update({"elapsed_s": elapsed, "other_cpu_s": other, "steal_s": steal,
                   "target": {"ratio": ratio, "minus_one_hash_ms": over * 1000}})
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(result, f, indent=1)
        print("figures: %s" % opts.json)


if __name__ == "__main__":
    main()

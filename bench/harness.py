#!/usr/bin/env python3
"""Timing harness for bench/run.sh.  Runs INSIDE the private mount namespace
that run.sh sets up (root, overlay /etc, tmpfs /var/mail with the spool
bind-mounted on /var/mail/bob).  Not meant to be run by hand.

Every run is a fresh process fed a pipelined command script through a pipe;
its stdout is drained by this process (discarded, kept, or hashed).  Wall time
is measured with time.perf_counter() from just before the spawn to just after
the child has been reaped.
"""

import argparse
import hashlib
import json
import os
import platform
import pwd
import resource
import statistics
import subprocess
import sys
import threading
import time

OK = b"+OK\r\n"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
BUF = bytearray(1 << 20)
MV = memoryview(BUF)


class RunError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run(cmd, script, uid=None, mode="discard", strip=0, errfile=None):
    """Spawn cmd, feed script on stdin, drain stdout.

    Returns (wall seconds, output bytes, result, child CPU seconds) where
    result depends on mode:
          "discard" -> None
          "keep"    -> the output minus the first `strip` bytes (small outputs only)
          "hash"    -> sha256 hex of the output minus the first `strip` bytes
    The first `strip` bytes must be `strip//5` copies of "+OK\\r\\n" (the
    greeting and login replies); they are checked, not hashed/kept."""
    kw = {}
    if uid is not None:
        pw = pwd.getpwuid(uid)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    err = open(errfile, "wb") if errfile else subprocess.DEVNULL
    h = hashlib.sha256() if mode == "hash" else None
    kept = [] if mode == "keep" else None
    head = bytearray()
    total = 0
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                         bufsize=0, env=ENV, close_fds=True, cwd="/", **kw)
    writer = None

    def feed():
        try:
            p.stdin.write(script)
        except (BrokenPipeError, OSError):
            pass
        try:
            p.stdin.close()
        except OSError:
            pass

    if len(script) <= 32768:      # fits in the pipe buffer: no thread needed
        feed()
    else:
        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    out = p.stdout
    readinto = out.readinto
    while True:
        n = readinto(MV)
        if not n:
            break
        total += n
        if mode == "discard":
            continue
        chunk = MV[:n]
        if len(head) < strip:
            k = min(strip - len(head), n)
            head += chunk[:k]
            chunk = chunk[k:]
        if h is not None:
            h.update(chunk)
        elif kept is not None:
            kept.append(bytes(chunk))
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    rc = os.waitstatus_to_exitcode(status)
    p.returncode = rc
    cpu = ru.ru_utime + ru.ru_stime      # includes descendants it reaped (popa3d's child)
    if writer:
        writer.join()
    out.close()
    if errfile:
        err.close()
    if rc != 0:
        raise RunError("%s exited with status %d%s" % (cmd[0], rc, stderr_tail(errfile)))
    if mode != "discard" and bytes(head) != OK * (strip // 5):
        raise RunError("%s: unexpected login/greeting replies %r%s"
                       % (cmd[0], bytes(head[:60]), stderr_tail(errfile)))
    res = h.hexdigest() if h is not None else (b"".join(kept) if kept is not None else None)
    return t1 - t0, total, res, cpu


def stderr_tail(errfile):
    if not errfile:
        return ""
    try:
        with open(errfile, "rb") as f:
            data = f.read()[-400:]
    except OSError:
        return ""
    return ("; stderr: " + data.decode("utf-8", "replace").strip()) if data.strip() else ""


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError as e:
        log("  cold cache: cannot drop caches (%s); skipping cold figures" % e)
        return False


class Contention:
    """CPU time used on the machine by anything other than this harness and
    the processes it reaped, from /proc/stat, over the whole measurement."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), self.busy(), self.own()

    @staticmethod
    def busy():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    @staticmethod
    def own():
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def done(self):
        other = (self.busy() - self.busy0) - (self.own() - self.own0)
        return max(0.0, other), time.perf_counter() - self.t0


def wait_idle(limit):
    """Wait (at most `limit` s) until the machine has been idle for 5 s:
    less than 10% of one CPU busy."""
    t_end = time.time() + limit
    next_log = 0.0
    while True:
        b0 = Contention.busy()
        time.sleep(5)
        busy = (Contention.busy() - b0) / 5
        if busy < 0.10:
            log("machine idle (%.0f%% of one CPU busy over 5 s)" % (100 * busy))
            return
        if time.time() >= t_end:
            log("machine still busy after %d s (%.0f%% of one CPU); starting anyway" % (limit, 100 * busy))
            return
        if time.time() >= next_log:
            log("waiting for an idle machine: %.0f%% of one CPU busy" % (100 * busy))
            next_log = time.time() + 30


def med(xs):
    return statistics.median(xs) if xs else None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--popa3d", required=True)
    ap.add_argument("--ours", default="")
    ap.add_argument("--ours-status", default="")
    ap.add_argument("--spool", default="/var/mail/bob")
    ap.add_argument("--user", default="bob")
    ap.add_argument("--empty-user", default="empty")
    ap.add_argument("--password", default="bobpw")
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cold", type=int, default=1)
    ap.add_argument("--only", default="ab")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--json", default="")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--wait-idle", type=int, default=0)
    a = ap.parse_args()

    if a.nice:
        os.setpriority(os.PRIO_PROCESS, 0, a.nice)     # inherited by every server we spawn
    if a.wait_idle:
        wait_idle(a.wait_idle)

    W = a.workdir
    pop = [a.popa3d]
    user_uid = pwd.getpwnam(a.user).pw_uid
    empty_uid = pwd.getpwnam(a.empty_user).pw_uid
    empty_spool = os.path.join(os.path.dirname(a.spool), a.empty_user)
    size = os.stat(a.spool).st_size
    R = a.runs
    login = ("USER %s\r\nPASS %s\r\n" % (a.user, a.password)).encode()
    login_empty = ("USER %s\r\nPASS %s\r\n" % (a.empty_user, a.password)).encode()
    s_a = b"STAT\r\nUIDL\r\nQUIT\r\n"
    s_list = b"LIST\r\nUIDL\r\nQUIT\r\n"
    ours = a.ours or None
    results = {"machine": {}, "rows": [], "checks": {}}
    ours_note = a.ours_status or ("ours: %s" % ours if ours else "ours: not built yet")

    def ours_serve(mbox):
        return [ours, "serve", mbox]

    def err(name):
        return os.path.join(W, name + ".stderr")

    contention = Contention()
    log("machine: %d CPUs, %s; spool %s bytes; %d messages requested; %d runs per figure"
        % (os.cpu_count(), cpu_model(), size, a.messages, R))
    log(ours_note)

    # ---------------------------------------------------------------- (a) checks
    log("(a) verification / warm-up runs")
    try:
        _, _, pop_a, _ = run(pop, login + s_a, mode="keep", strip=15, errfile=err("popa3d-a"))
    except RunError as e:
        raise SystemExit("reference popa3d failed: %s" % e)
    stat_line = pop_a.split(b"\r\n", 1)[0].decode()
    log("  popa3d: %s" % stat_line)
    try:
        nmsg = int(stat_line.split()[1])
    except (IndexError, ValueError):
        raise SystemExit("popa3d did not answer STAT: %r" % pop_a[:200])
    if nmsg != a.messages:
        log("  WARNING: popa3d sees %d messages, generator wrote %d" % (nmsg, a.messages))
    results["checks"]["popa3d_stat"] = stat_line
    ok_serve = ok_scan = bool(ours)
    if ours:
        try:
            _, _, our_a, _ = run(ours_serve(a.spool), s_a, uid=user_uid, mode="keep", strip=5,
                              errfile=err("ours-a"))
            same = our_a == pop_a
            results["checks"]["a_stat_uidl"] = "MATCH" if same else "MISMATCH"
            log("  ours serve STAT+UIDL output vs popa3d: %s" % ("MATCH" if same else "MISMATCH"))
            if not same:
                log("    popa3d: %r\n    ours:   %r" % (pop_a[:120], our_a[:120]))
        except RunError as e:
            log("  ours serve failed: %s" % e)
            ok_serve = False
        try:
            _, _, pop_e, _ = run(pop, login_empty + s_a, mode="keep", strip=15, errfile=err("popa3d-e"))
            _, _, our_e, _ = run(ours_serve(empty_spool), s_a, uid=empty_uid, mode="keep", strip=5,
                              errfile=err("ours-e"))
            same = our_e == pop_e
            results["checks"]["a_empty"] = "MATCH" if same else "MISMATCH"
            log("  ours serve on the empty spool vs popa3d: %s" % ("MATCH" if same else "MISMATCH"))
            if not same:
                log("    popa3d: %r\n    ours:   %r" % (pop_e[:120], our_e[:120]))
        except RunError as e:
            log("  ours serve on the empty spool failed: %s" % e)
        try:
            _, _, pop_l, _ = run(pop, login + s_list, mode="keep", strip=15)
            # "+OK\r\n1 211\r\n...\r\n.\r\n+OK\r\n1 uidl\r\n...\r\n.\r\n+OK\r\n"
            secs = pop_l.split(b".\r\n")
            sizes = [ln.split() for ln in secs[0].split(b"\r\n")[1:] if ln]
            uidls = [ln.split() for ln in secs[1].split(b"\r\n")[1:] if ln]
            expect = b"".join(b"%s %s %s\n" % (s[0], s[1], u[1]) for s, u in zip(sizes, uidls))
            _, _, our_scan, _ = run([ours, "scan", a.spool], b"", uid=user_uid, mode="keep",
                                 errfile=err("ours-scan"))
            norm = our_scan.replace(b"\r\n", b"\n")
            same = norm == expect
            results["checks"]["scan"] = "MATCH" if same else "MISMATCH"
            log("  ours scan lines vs popa3d LIST+UIDL: %s" % ("MATCH" if same else "MISMATCH"))
            if not same:
                log("    expected: %r\n    ours:     %r" % (expect[:100], norm[:100]))
        except RunError as e:
            log("  ours scan failed: %s" % e)
            ok_scan = False

    rows = []

    def row(name, p_ms, o_ms, kind="time", target=None, note=""):
        rows.append({"name": name, "popa3d": p_ms, "ours": o_ms, "kind": kind,
                     "target": target, "note": note})

    cpu_times = {}

    def timed(fn, key=None):
        try:
            r_ = fn()
        except RunError as e:
            log("  run failed: %s" % e)
            return None
        if key:
            cpu_times.setdefault(key, []).append(r_[3])
        return r_[0]

    def interleave(jobs, runs):
        """One warm-up per job (a job whose warm-up fails is dropped), then
        `runs` rounds that run every job once, so drift hits both sides alike."""
        for k in list(jobs):
            if timed(jobs[k]) is None:
                log("  dropping %s" % k)
                del jobs[k]
        times = {k: [] for k in jobs}
        for _ in range(runs):
            for k, fn in jobs.items():
                t = timed(fn, k)
                if t is not None:
                    times[k].append(t)
        return times

    def show(times):
        for k, v in times.items():
            c = cpu_times.get(k, [])
            log("  %-9s wall ms: %s | median %.1f min %.1f | cpu median %.1f ms"
                % (k, " ".join("%.1f" % (x * 1000) for x in v), med(v) * 1000, min(v) * 1000,
                   (med(c) or 0) * 1000) if v else "  %-9s no successful runs" % k)
            results.setdefault("wall_ms", {})[k] = [x * 1000 for x in v]
            results.setdefault("cpu_ms", {})[k] = [x * 1000 for x in c]

    # ---------------------------------------------------------------- (a) timing
    if "a" in a.only:
        log("(a) timing: STAT+UIDL+QUIT, fresh process per run, warm cache, %d runs + 1 warm-up" % R)
        jobs = {
            "pop_full": lambda: run(pop, login + s_a, errfile=err("t-popa3d")),
            "pop_empty": lambda: run(pop, login_empty + s_a, errfile=err("t-popa3d")),
        }
        if ok_serve:
            jobs["our_full"] = lambda: run(ours_serve(a.spool), s_a, uid=user_uid, errfile=err("t-ours"))
            jobs["our_empty"] = lambda: run(ours_serve(empty_spool), s_a, uid=empty_uid,
                                            errfile=err("t-ours"))
        if ok_scan:
            jobs["our_scan"] = lambda: run([ours, "scan", a.spool], b"", uid=user_uid, errfile=err("t-ours"))
        times = interleave(jobs, R)
        m = {k: (med(v) * 1000 if v else None) for k, v in times.items()}
        show(times)
        row("(a) STAT+UIDL session, raw", m["pop_full"], m.get("our_full"), target=3.0,
            note="popa3d incl. USER/PASS (PAM)")
        row("(a) same session, empty spool", m["pop_empty"], m.get("our_empty"),
            note="login/start-up cost")
        sub_p = m["pop_full"] - m["pop_empty"]
        sub_o = (m["our_full"] - m["our_empty"]) if m.get("our_full") is not None and m.get("our_empty") is not None else None
        row("(a) open+STAT+UIDL, login-subtracted", sub_p, sub_o, target=3.0,
            note="raw minus empty-spool")
        row("(a) ours `scan` vs popa3d raw", m["pop_full"], m.get("our_scan"),
            note="scan = ours whole process")
        row("(a) ours `scan` vs popa3d login-subtracted", sub_p, m.get("our_scan"))

        if a.cold:
            log("(a) cold cache: one run each after sync + drop_caches")
            cold = {}
            for k in ("pop_full", "our_full", "our_scan"):
                if k in jobs and drop_caches():
                    cold[k] = timed(jobs[k])
                    if cold[k] is not None:
                        cold[k] *= 1000
                        log("  %-10s cold ms: %.1f" % (k, cold[k]))
                elif k not in jobs:
                    continue
                else:
                    break
            if cold.get("pop_full") is not None:
                row("(a) STAT+UIDL session, COLD cache (1 run)", cold.get("pop_full"),
                    cold.get("our_full"), note="single sample")
                if cold.get("our_scan") is not None:
                    row("(a) ours `scan`, COLD cache (1 run)", cold.get("pop_full"),
                        cold.get("our_scan"), note="single sample")
            # re-warm the cache for (b)
            with open(a.spool, "rb") as f:
                while f.readinto(MV):
                    pass

    # ---------------------------------------------------------------- (b)
    if "b" in a.only:
        retr = b"".join(b"RETR %d\r\n" % i for i in range(1, nmsg + 1)) + b"QUIT\r\n"
        log("(b) RETR 1..%d pipelined (%d-byte script), output drained through a pipe" % (nmsg, len(retr)))
        t, pop_bytes, pop_sha, _ = run(pop, login + retr, mode="hash", strip=15, errfile=err("popa3d-b"))
        log("  popa3d verification run: %d bytes in %.0f ms, sha256 %s" % (pop_bytes, t * 1000, pop_sha[:16]))
        ok_b = ok_serve
        our_bytes = None
        if ok_b:
            try:
                t, our_bytes, our_sha, _ = run(ours_serve(a.spool), retr, uid=user_uid, mode="hash",
                                            strip=5, errfile=err("ours-b"))
                verdict = "MATCH" if (our_sha == pop_sha and our_bytes - 5 == pop_bytes - 15) else "MISMATCH"
                results["checks"]["b_retr"] = verdict
                log("  ours   verification run: %d bytes in %.0f ms, sha256 %s" % (our_bytes, t * 1000, our_sha[:16]))
                log("  RETR output (minus login replies) ours vs popa3d: %s" % verdict)
            except RunError as e:
                log("  ours serve (RETR) failed: %s" % e)
                ok_b = False
        jobs = {"pop_b": lambda: run(pop, login + retr, errfile=err("t-popa3d"))}
        if ok_b:
            jobs["our_b"] = lambda: run(ours_serve(a.spool), retr, uid=user_uid, errfile=err("t-ours"))
        times = interleave(jobs, R)
        show(times)
        pb = med(times["pop_b"])
        ob = med(times.get("our_b", []))
        row("(b) RETR all, wall time", pb * 1000, ob * 1000 if ob else None, target=1.0,
            note="incl. login + open")
        row("(b) RETR all, output MB/s", pop_bytes / pb / 1e6,
            (our_bytes / ob / 1e6) if ob else None, kind="rate", target=1.0,
            note="%.0f MB output" % (pop_bytes / 1e6))
        if "a" in a.only and rows and rows[0]["popa3d"]:
            pa = rows[0]["popa3d"] / 1000
            oa = (rows[0]["ours"] / 1000) if rows[0]["ours"] else None
            row("(b) streaming MB/s, (a) time subtracted", pop_bytes / (pb - pa) / 1e6,
                (our_bytes / (ob - oa) / 1e6) if (ob and oa and ob > oa) else None, kind="rate",
                note="bytes / (t_b - t_a raw)")

    # ---------------------------------------------------------------- report
    other_cpu, elapsed = contention.done()
    log("")
    log("machine: nproc=%d, CPU: %s, kernel %s" % (os.cpu_count(), cpu_model(), platform.release()))
    log("spool:   %d bytes (%.2f GB), %d messages; page cache warm unless marked COLD; "
        "median of %d runs after 1 warm-up" % (size, size / 1e9, nmsg, R))
    log(ours_note)
    hdr = "%-44s %12s %12s %9s  %s" % ("measurement", "popa3d", "ours", "speedup", "target / note")
    log("")
    log(hdr)
    log("-" * len(hdr))
    for r_ in rows:
        unit = "ms" if r_["kind"] == "time" else "MB/s"
        p, o = r_["popa3d"], r_["ours"]
        ratio = None
        if p is not None and o is not None and p > 0 and o > 0:
            ratio = (p / o) if r_["kind"] == "time" else (o / p)
        r_["speedup"] = ratio
        tgt = ""
        if r_["target"]:
            tgt = ">=%gx" % r_["target"] if r_["target"] > 1 else ">1x"
            if ratio is not None:
                met = ratio >= r_["target"] if r_["target"] > 1 else ratio > 1
                tgt += " %s" % ("met" if met else "NOT MET")
        note = (tgt + "  " + r_["note"]).strip()
        fmt = (lambda v: "%9.1f %-4s" % (v, unit) if v is not None else "%14s" % "-")
        log("%-44s %s %s %9s  %s" % (r_["name"], fmt(p), fmt(o),
                                       ("%.2fx" % ratio) if ratio else "-", note))
    pairs = [("(a) session, spool", "pop_full", "our_full"),
             ("(a) session, empty spool", "pop_empty", "our_empty"),
             ("(a) ours scan vs popa3d session", "pop_full", "our_scan"),
             ("(b) RETR all", "pop_b", "our_b")]
    cpu_rows = []
    for name, pk, ok_ in pairs:
        pc, oc = med(cpu_times.get(pk, [])), med(cpu_times.get(ok_, []))
        if pc is None:
            continue
        cpu_rows.append({"name": name, "popa3d": pc * 1000, "ours": oc * 1000 if oc else None,
                         "speedup": (pc / oc) if oc else None})
    if cpu_rows:
        log("")
        log("CPU time of the server process tree (user+sys, median; less sensitive to other load):")
        for c in cpu_rows:
            log("%-44s %9.1f ms  %s %9s" % (c["name"], c["popa3d"],
                                            ("%9.1f ms" % c["ours"]) if c["ours"] else "%12s" % "-",
                                            ("%.2fx" % c["speedup"]) if c["speedup"] else "-"))
    results["cpu_rows"] = cpu_rows
    busy = other_cpu / elapsed if elapsed else 0
    log("")
    log("other processes used %.1f CPU-s during the %.0f s run (%.0f%% of one CPU)%s"
        % (other_cpu, elapsed, 100 * busy,
           "  ** machine was busy: wall-time figures are noisy **" if busy > 0.15 else ""))
    results["other_cpu_seconds"] = other_cpu
    for k, v in results["checks"].items():
        if v in ("MATCH", "MISMATCH"):
            log("check %-12s %s" % (k, v))
    results["rows"] = rows
    results["machine"] = {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                          "spool_bytes": size, "messages": nmsg, "runs": R}
    results["ours"] = ours_note
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
        log("results: %s" % a.json)
    if any(v == "MISMATCH" for v in results["checks"].values()):
        sys.exit(3)


if __name__ == "__main__":
    main()

"""What the scenario scripts of tests/activation.rs, tests/tls.rs and
tests/tls_isolation.rs share: the environment scripts/sysenv gives them, the facts they
record, and the processes they start and stop.

Environment: POPA3D_BIN (the server), OUT (where results go), DATA (this directory),
SYSENV_TMP and SYSENV_LOG (from scripts/sysenv).

Results: OUT/facts, one `key=value` per line (bytes escaped: `\\r`, `\\n`, `\\xNN`,
`\\\\`), for the Rust side to judge (sysenv/mod.rs reads them); other files in OUT by
name. Every process started with spawn() is stopped by stop_all(), by its pid, before
main() returns.
"""
import os
import signal
import socket
import subprocess
import sys
import time

POPA3D = os.environ["POPA3D_BIN"]
OUT = os.environ["OUT"]
DATA = os.environ["DATA"]
TMP = os.environ["SYSENV_TMP"]
SYSLOG = os.environ["SYSENV_LOG"]
HOST = "127.0.0.1"
# How long any one step may take before the scenario counts it as hung.
TIMEOUT = 10.0
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC"}

FACTS = []
STARTED = []


class ScenarioError(Exception):
    pass


# ---------------------------------------------------------------------------------
# Results.


def escape(data):
    out = []
    for c in data:
        if c == 0x5C:
            out.append("\\\\")
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x0D:
            out.append("\\r")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def fact(key, value):
    if isinstance(value, float):
        value = "%.3f" % value
    elif isinstance(value, bytes):
        value = escape(value)
    else:
        value = escape(str(value).encode())
    FACTS.append((key, value))


def write_facts():
    with open(os.path.join(OUT, "facts"), "w") as f:
        for key, value in FACTS:
            f.write("%s=%s\n" % (key, value))


def put(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def read_out(name):
    """OUT/NAME, or b'' if there is none."""
    try:
        with open(os.path.join(OUT, name), "rb") as f:
            return f.read()
    except OSError:
        return b""


def write_config(name, text):
    """The file in SYSENV_TMP, and a copy in OUT for whoever reads a failure."""
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    put(name, text.encode())
    return path


# ---------------------------------------------------------------------------------
# Processes.


def spawn(name, argv, env=None):
    """Starts argv with stdout and stderr in OUT/NAME.stderr; stopped at the end."""
    err = open(os.path.join(OUT, name + ".stderr"), "wb")
    p = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env or ENV
    )
    err.close()
    p.name = name
    STARTED.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=TIMEOUT):
    """Signals p (by its pid) unless it has exited, and returns its exit status; SIGKILL
    if it has not exited within timeout."""
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "killed"


def stop_all():
    for p in reversed(STARTED):
        if p.poll() is None:
            fact("leftover." + p.name, stop(p))


def stderr_of(name):
    return read_out(name + ".stderr")


def listening(port):
    """Whether a TCP socket listens on port (any address), from /proc/net/tcp: asking
    by connecting would start a session."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                return True
    return False


def wait_listening(port, p):
    deadline = time.monotonic() + TIMEOUT
    while not listening(port):
        if p.poll() is not None or time.monotonic() > deadline:
            raise ScenarioError(
                "%s is not listening on %d (exit %s): %r"
                % (p.name, port, p.poll(), stderr_of(p.name))
            )
        time.sleep(0.02)


def log_count(text, path=SYSLOG):
    with open(path, "rb") as f:
        return f.read().count(text.encode())


def wait_log(text, count=1, path=SYSLOG):
    """Waits until the log has text count times (sessions log after the client has its
    answer)."""
    deadline = time.monotonic() + TIMEOUT
    while log_count(text, path) < count:
        if time.monotonic() > deadline:
            raise ScenarioError("%r not logged %d times in %s" % (text, count, path))
        time.sleep(0.02)


# ---------------------------------------------------------------------------------
# Connections.


def drain(sock, timeout=TIMEOUT):
    """Reads until the peer closes: (bytes, how it ended, seconds)."""
    start = time.monotonic()
    data = b""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                end = "eof"
                break
            data += chunk
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    return data, end, time.monotonic() - start


# ---------------------------------------------------------------------------------


def main(scenarios):
    """Runs the scenario named by the one argument, then, however it ended, stops what
    it left running and writes the facts."""
    (name,) = sys.argv[1:]
    try:
        scenarios[name]()
    finally:
        stop_all()
        write_facts()

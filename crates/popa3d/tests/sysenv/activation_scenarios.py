#!/usr/bin/env python3
"""Scenarios of tests/activation.rs: the daemon (`popa3d -D`) under systemd socket
activation, under an inetd-style activator, and behind the PROXY protocol (headers built
here by the specification, and HAProxy). Run inside scripts/sysenv, as root:

    activation_scenarios.py SCENARIO

Environment: POPA3D_BIN (the server), OUT (where results go), DATA (this directory),
SYSENV_TMP and SYSENV_LOG (from scripts/sysenv).

This script only drives and observes; activation.rs judges. What it saw goes to
OUT/facts, one `key=value` per line (bytes escaped: `\\r`, `\\n`, `\\xNN`, `\\\\`),
message texts to OUT/KEY.retr1, each daemon's stderr to OUT/NAME.stderr. A failure to
drive (a daemon that never got ready, a client error where none may happen) is an
exception: exit status 1 with a traceback, which activation.rs shows.

Every process started here is stopped here, by its pid, before the script exits.
scenario_common.py has the helpers for facts and processes (tls_scenarios.py and
tls_isolation_scenarios.py use them too).

Headers by HAProxy's doc/proxy-protocol.txt: v1 (section 2.1) is the text line
`PROXY TCP4|TCP6 SRC DST SPORT DPORT\\r\\n`; v2 (2.2) is the 12-byte signature
`\\r\\n\\r\\n\\0\\r\\nQUIT\\n`, version/command (0x21 PROXY, 0x20 LOCAL), family/transport
(0x11 TCP over IPv4, 0x21 TCP over IPv6), a big-endian length, then source address,
destination address, source port, destination port, then optional TLVs (2.2.1).
"""
import ipaddress
import os
import poplib
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario_common import (  # noqa: E402
    DATA, ENV, HOST, OUT, POPA3D, TIMEOUT, TMP, ScenarioError, drain, fact, listening,
    log_count, main, put, spawn, stderr_of, stop, wait_listening, wait_log,
    write_config,
)


# ---------------------------------------------------------------------------------
# Processes.


def wait_no_children(p):
    """Waits until p has reaped every child: its sessions are over, as it sees them."""
    path = "/proc/%d/task/%d/children" % (p.pid, p.pid)
    deadline = time.monotonic() + TIMEOUT
    while True:
        with open(path) as f:
            if not f.read().split():
                return
        if time.monotonic() > deadline:
            raise ScenarioError("%s still has children" % p.name)
        time.sleep(0.02)


class Notify:
    """The receiving end of NOTIFY_SOCKET, as systemd's: a datagram socket that learns
    each sender's pid from SO_PASSCRED."""

    def __init__(self, name):
        self.path = os.path.join(TMP, "notify-" + name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)

    def next(self, timeout=TIMEOUT):
        """The next message and its sender's pid, or (None, None) after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("3i"))
            )
        except socket.timeout:
            return None, None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:12])[0]
        return data, pid


class SyslogReceiver:
    """A syslog socket of one daemon's own (config `syslog_socket`), copied line by line
    to OUT/NAME, so that the lines of two daemons can be told apart."""

    def __init__(self, name):
        self.path = os.path.join(TMP, name + ".sock")
        self.out = os.path.join(OUT, name)
        open(self.out, "wb").close()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(0.1)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        with open(self.out, "ab", buffering=0) as f:
            while True:
                try:
                    f.write(self.sock.recv(65536) + b"\n")
                except socket.timeout:
                    if self.done.is_set():
                        return

    def close(self):
        """Stops once what is queued has been read: call it after the daemon exited."""
        self.done.set()
        self.thread.join()


def start_daemon(name, config):
    """`popa3d -D -F -c FILE` with a NOTIFY_SOCKET; returns once it said READY=1."""
    path = write_config(name + ".toml", config)
    notify = Notify(name)
    p = spawn(name, [POPA3D, "-D", "-F", "-c", path], dict(ENV, NOTIFY_SOCKET=notify.path))
    msg, _ = notify.next()
    if msg is None or not msg.startswith(b"READY=1"):
        raise ScenarioError(
            "%s: no READY=1 (got %r, exit %s): %r"
            % (name, msg, p.poll(), stderr_of(name))
        )
    return p


# ---------------------------------------------------------------------------------
# Clients.


def v1(src, dst=None, sport=40000, dport=110):
    """A PROXY v1 line for a TCP connection from src."""
    six = ":" in src
    dst = dst or ("::1" if six else HOST)
    return ("PROXY %s %s %s %d %d\r\n" % ("TCP6" if six else "TCP4", src, dst, sport, dport)).encode()


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst=None, sport=40000, dport=110, tlvs=b""):
    """A PROXY v2 header, command PROXY, TCP over IPv4 or IPv6."""
    s = ipaddress.ip_address(src)
    d = ipaddress.ip_address(dst or ("::1" if s.version == 6 else HOST))
    family = 0x11 if s.version == 4 else 0x21
    block = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(block)) + block


def v2_local():
    """A PROXY v2 LOCAL header (what a proxy's health check sends): family UNSPEC, no
    addresses."""
    return V2_SIGNATURE + bytes([0x20, 0x00, 0x00, 0x00])


def connect(port, src=None, header=b""):
    s = socket.create_connection(
        (HOST, port), timeout=TIMEOUT, source_address=(src, 0) if src else None
    )
    if header:
        s.sendall(header)
    return s


def closed_fact(key, sock, timeout=TIMEOUT):
    """Records how a connection the server should close at once ended:
    `BYTES END SECONDS`, e.g. `0 eof 0.004`."""
    data, end, took = drain(sock, timeout)
    sock.close()
    fact(key, "%d %s %.3f" % (len(data), end, took))
    if data:
        fact(key + ".data", data)


def read_line(sock):
    """One reply line, or what came before the connection closed."""
    sock.settimeout(TIMEOUT)
    data = b""
    try:
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(1)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


class POP3On(poplib.POP3):
    """poplib on a socket that is already connected (and has sent its PROXY header)."""

    def __init__(self, sock):
        self._given = sock
        super().__init__(HOST, 0, timeout=TIMEOUT)

    def _create_socket(self, timeout):
        return self._given


def fetch(key, sock):
    """bob logs in, STAT, RETR 1, QUIT. Facts KEY.welcome, KEY.stat, KEY.quit and the
    message in OUT/KEY.retr1 (lines joined with LF, dot-unstuffed by poplib); KEY.error
    on any failure."""
    try:
        p = POP3On(sock)
        fact(key + ".welcome", p.welcome)
        p.user("bob")
        p.pass_("bobpw")
        count, size = p.stat()
        fact(key + ".stat", "%d %d" % (count, size))
        _, lines, _ = p.retr(1)
        put(key + ".retr1", b"".join(line + b"\n" for line in lines))
        fact(key + ".quit", p.quit())
    except (poplib.error_proto, OSError, EOFError) as e:
        fact(key + ".error", repr(e))
    finally:
        sock.close()


def timed_wrong_password(key, port, header):
    """One login with a wrong password through the proxy listener: KEY = seconds from
    PASS to its -ERR, KEY.reply = the reply."""
    sock = connect(port, header=header)
    try:
        greeting = read_line(sock)
        if not greeting.startswith(b"+OK"):
            raise ScenarioError("%s: greeting %r" % (key, greeting))
        sock.sendall(b"USER bob\r\n")
        read_line(sock)
        start = time.monotonic()
        sock.sendall(b"PASS wrong\r\n")
        reply = read_line(sock)
        fact(key, time.monotonic() - start)
        fact(key + ".reply", reply)
    finally:
        sock.close()


# ---------------------------------------------------------------------------------
# Scenarios.


def activate(p, port):
    """Makes systemd-socket-activate start its command: without -a it only listens, and
    execs the command when the first connection arrives (as systemd does). Returns that
    connection, which waits in the backlog for the daemon."""
    wait_listening(port, p)
    return connect(port)


def accept_no():
    """systemd, Accept=no: the daemon gets the listening socket (LISTEN_FDS=1, name
    pop3), stays in the foreground and notifies; the file has no [[listener]]."""
    conf = write_config("accept-no.toml", "shutdown_timeout = 2\n")
    notify = Notify("accept-no")
    # `-D` without -F: LISTEN_FDS must keep it in the foreground.
    p = spawn(
        "activate",
        [
            "systemd-socket-activate", "-l", "127.0.0.1:1110", "--fdname=pop3",
            "-E", "NOTIFY_SOCKET=" + notify.path,
            POPA3D, "-D", "-c", conf,
        ],
    )
    fact("pid", p.pid)
    first = activate(p, 1110)
    msg, pid = notify.next()
    fact("ready", msg)
    fact("ready.from_main", pid == p.pid)
    # Had it forked into the background, the process systemd watches would be gone.
    time.sleep(0.3)
    fact("running", p.poll() is None)
    # The activated socket only: nothing bound port 110 on the side.
    fact("port110", "listening" if listening(110) else "free")
    fetch("login", first)

    p.send_signal(signal.SIGHUP)
    for i in (1, 2):
        msg, pid = notify.next()
        fact("hup.%d" % i, msg)
        fact("hup.%d.from_main" % i, pid == p.pid)
    wait_log("configuration reloaded")
    fetch("after_hup", connect(1110))
    # `stopping: 0 sessions running` once the daemon has reaped them.
    wait_no_children(p)

    p.send_signal(signal.SIGTERM)
    msg, pid = notify.next()
    fact("term", msg)
    fact("term.from_main", pid == p.pid)
    fact("exit", stop(p))


def accept_no_settings():
    """systemd, Accept=no, two sockets: `pop3` on 1110 gets the [[listener]] of that
    name (whose own address differs), `other` on 1111 the [[listener]] with its address.
    Both say proxy_protocol = true: only a matched socket requires a header."""
    conf = write_config(
        "settings.toml",
        """shutdown_timeout = 2

[[listener]]
address = "127.0.0.1:9"
name = "pop3"
proxy_protocol = true
proxy_trusted = ["127.0.0.1"]

[[listener]]
address = "127.0.0.1:1111"
proxy_protocol = true
proxy_trusted = ["127.0.0.0/8"]

[[listener]]
address = "127.0.0.1:1112"
name = "unused"
""",
    )
    notify = Notify("settings")
    p = spawn(
        "activate",
        [
            "systemd-socket-activate", "-l", "127.0.0.1:1110", "-l", "127.0.0.1:1111",
            "--fdname=pop3:other", "-E", "NOTIFY_SOCKET=" + notify.path,
            POPA3D, "-D", "-c", conf,
        ],
    )
    first = activate(p, 1110)
    msg, _ = notify.next()
    fact("ready", msg)
    fact("port1112", "listening" if listening(1112) else "free")
    first.sendall(b"USER bob\r\n")
    closed_fact("plain.1110", first)
    closed_fact("plain.1111", connect(1111, header=b"USER bob\r\n"))
    fetch("proxied.1110", connect(1110, header=v1("203.0.113.50")))
    fetch("proxied.1111", connect(1111, header=v2("203.0.113.51")))
    wait_log("deleted, ", 2)
    fact("exit", stop(p))


def accept_no_unmatched():
    """systemd, Accept=no, a socket that no [[listener]] claims: start-up fails."""
    conf = write_config(
        "unmatched.toml",
        """[[listener]]
address = "127.0.0.1:9"
name = "imap"
""",
    )
    p = spawn(
        "activate",
        [
            "systemd-socket-activate", "-l", "127.0.0.1:1110", "--fdname=pop3",
            POPA3D, "-D", "-c", conf,
        ],
    )
    try:
        activate(p, 1110).close()
    except ConnectionError:
        # popa3d may already have exited and closed the socket under the handshake.
        pass
    try:
        fact("exit", p.wait(TIMEOUT))
    except subprocess.TimeoutExpired:
        fact("exit", "still running")
    fact("stderr", stderr_of("activate"))


def inetd():
    """systemd, Accept=yes: one `popa3d` (inetd mode, no -D) per connection, the
    connection on its stdin and stdout."""
    conf = write_config("inetd.toml", "timeout = 900\n")
    p = spawn(
        "activate",
        [
            "systemd-socket-activate", "--inetd", "-a", "-l", "127.0.0.1:1110",
            POPA3D, "-c", conf,
        ],
    )
    wait_listening(1110, p)
    fetch("first", connect(1110))
    fetch("second", connect(1110))
    wait_log("deleted, ", 2)
    fact("exit", stop(p))


def proxy_headers():
    """A proxy listener trusting 127.0.0.1: v1 and v2 headers name the client."""
    d = start_daemon(
        "daemon",
        """shutdown_timeout = 2

[[listener]]
address = "127.0.0.1:1110"
proxy_protocol = true
proxy_trusted = ["127.0.0.1"]
""",
    )
    fetch("v1", connect(1110, header=v1("203.0.113.7")))
    fetch("v1.tcp6", connect(1110, header=v1("2001:db8::6")))
    # PP2_TYPE_NOOP (0x04), which a receiver skips (2.2.1).
    fetch("v2.ipv4", connect(1110, header=v2("198.51.100.9", tlvs=b"\x04\x00\x03abc")))
    fetch("v2.ipv6", connect(1110, header=v2("2001:db8::5")))
    fetch("v2.local", connect(1110, header=v2_local()))
    # The header and the first command in one segment: the header reader must leave
    # the command in the stream.
    s = connect(1110, header=v1("203.0.113.8") + b"QUIT\r\n")
    fact("pipelined", drain(s)[0])
    s.close()
    wait_log("deleted, ", 5)
    fact("exit", stop(d))


def proxy_limits():
    """Flood control by the client the header names, not by the proxy."""
    d = start_daemon(
        "daemon",
        """shutdown_timeout = 2
max_per_source = 3

[[listener]]
address = "127.0.0.1:1110"
proxy_protocol = true
proxy_trusted = ["127.0.0.1"]
""",
    )
    held = []
    for i in range(1, 4):
        s = connect(1110, header=v1("203.0.113.7"))
        fact("held.%d" % i, read_line(s))
        held.append(s)
    closed_fact("fourth", connect(1110, header=v1("203.0.113.7")))
    s = connect(1110, header=v1("203.0.113.8"))
    fact("other", read_line(s))
    held.append(s)
    for s in held:
        s.close()

    timed_wrong_password("fail.20.1", 1110, v1("203.0.113.20"))
    timed_wrong_password("fail.20.2", 1110, v1("203.0.113.20"))
    timed_wrong_password("fail.21.1", 1110, v1("203.0.113.21"))
    wait_log("Authentication failed for bob", 3)
    fact("exit", stop(d))


def spoofing():
    """Who may not name a client: an untrusted peer, anyone on a plain listener, a
    trusted peer with a bad header or none."""
    d = start_daemon(
        "daemon",
        """shutdown_timeout = 2

[[listener]]
address = "127.0.0.1:1110"
proxy_protocol = true
proxy_trusted = ["127.0.0.1"]
proxy_timeout = 1

[[listener]]
address = "127.0.0.1:1111"
""",
    )
    # (a) A valid header from a peer the listener does not trust.
    closed_fact("untrusted.v1", connect(1110, src="127.0.0.2", header=v1("203.0.113.66")))
    closed_fact("untrusted.v2", connect(1110, src="127.0.0.3", header=v2("203.0.113.67")))

    # (b) Headers on a plain listener are POP3 commands.
    s = connect(1111, header=b"PROXY TCP4 1.2.3.4 127.0.0.1 5555 1111\r\n")
    fact("plain.v1.greeting", read_line(s))
    fact("plain.v1.reply", read_line(s))
    s.sendall(b"USER bob\r\n")
    fact("plain.v1.user", read_line(s))
    s.sendall(b"PASS bobpw\r\n")
    fact("plain.v1.pass", read_line(s))
    s.sendall(b"QUIT\r\n")
    fact("plain.v1.quit", read_line(s))
    s.close()
    s = connect(1111, header=v2("5.6.7.8"))
    data, end, _ = drain(s)
    fact("plain.v2", data)
    fact("plain.v2.end", end)
    s.close()

    # (c) A trusted peer that sends no valid header: closed, nothing sent.
    closed_fact("garbage", connect(1110, header=b"HELLO there\r\n"))
    closed_fact("bad.v1", connect(1110, header=b"PROXY TCP4 010.0.0.1 127.0.0.1 1 2\r\n"))
    closed_fact("truncated.v1", connect(1110, header=b"PROXY TCP4 203.0.113.9 127.0.0.1"))
    closed_fact("truncated.v2", connect(1110, header=v2("203.0.113.9")[:20]))
    closed_fact("nothing", connect(1110))
    wait_log("no valid PROXY header", 5)
    wait_log("deleted, ", 1)
    fact("exit", stop(d))


def haproxy():
    """HAProxy (mode tcp, roundrobin) in front of two daemons, one fed PROXY v2, the
    other v1; each daemon logs to a socket of its own (OUT/syslog-a, OUT/syslog-b)."""
    logs = {}
    daemons = {}
    for name, port in (("a", 1111), ("b", 1112)):
        logs[name] = SyslogReceiver("syslog-" + name)
        daemons[name] = start_daemon(
            "daemon-" + name,
            """shutdown_timeout = 2
max_per_source = 2
syslog_socket = "%s"

[[listener]]
address = "127.0.0.1:%d"
proxy_protocol = true
proxy_trusted = ["127.0.0.1"]
"""
            % (logs[name].path, port),
        )
    with open(os.path.join(DATA, "activation_haproxy.cfg")) as f:
        cfg = f.read()
    for k, v in (("@FRONT@", "1110"), ("@A@", "1111"), ("@B@", "1112")):
        cfg = cfg.replace(k, v)
    cfg_path = write_config("haproxy.cfg", cfg)
    h = spawn("haproxy", ["haproxy", "-f", cfg_path, "-db"])
    wait_listening(1110, h)

    for i in (10, 11, 12, 13):
        fetch("login.%d" % i, connect(1110, src="127.0.0.%d" % i))
    both = [logs["a"].out, logs["b"].out]
    deadline = time.monotonic() + TIMEOUT
    while sum(log_count("deleted, ", p) for p in both) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)

    # Roundrobin alternates: 1-4 take both backends' two places, 5 finds its full.
    held = []
    for i in range(1, 6):
        s = connect(1110, src="127.0.0.30")
        line = read_line(s)
        fact("held.%d" % i, "served" if line.startswith(b"+OK") else "closed %d bytes" % len(line))
        held.append(s)
    for s in held:
        s.close()
    fact("haproxy.exit", stop(h))
    for name in ("a", "b"):
        fact("exit." + name, stop(daemons[name]))
        logs[name].close()


SCENARIOS = {
    f.__name__: f
    for f in (
        accept_no,
        accept_no_settings,
        accept_no_unmatched,
        inetd,
        proxy_headers,
        proxy_limits,
        spoofing,
        haproxy,
    )
}


if __name__ == "__main__":
    poplib._MAXLINE = 1 << 20
    main(SCENARIOS)

#!/usr/bin/env python3
"""Scenarios of tests/tls.rs: popa3d's TLS (implicit TLS and STLS, RFC 2595) against
real clients (openssl s_client, curl, mpop, fetchmail, Python's ssl and poplib) and
against hand-made byte streams. Run inside scripts/sysenv, as root:

    tls_scenarios.py SCENARIO

Environment: POPA3D_BIN (the server), OUT (where results go), DATA (this directory),
SYSENV_TMP and SYSENV_LOG (from scripts/sysenv).

Each scenario first makes a throw-away PKI with the openssl command: a P-256 CA, a
P-256 and an RSA-2048 server certificate it signed (SAN DNS:localhost and
IP:127.0.0.1), and a second CA that signed nothing the server has. Key files are root's,
mode 0600. Then it starts `popa3d -D -F -c CONF` with the listeners below (or, for
`inetd`, systemd-socket-activate in inetd mode), plays its clients and stops every
process it started, by its pid.

This script only drives and observes; tls.rs judges. What it saw goes to OUT/facts, one
`key=value` per line (bytes escaped: `\\r`, `\\n`, `\\xNN`, `\\\\`), messages to
OUT/KEY.retr1 (lines joined with LF, dot-unstuffed), client output to OUT/NAME.log and
OUT/NAME.stderr. A failure to drive (a daemon that never got ready) is an exception:
exit status 1 with a traceback, which tls.rs shows. The helpers for facts and processes
are scenario_common.py's.
"""
import base64
import os
import poplib
import select
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scenario_common import (  # noqa: E402
    ENV, HOST, OUT, POPA3D, STARTED, TIMEOUT, TMP, ScenarioError, drain, fact, main,
    put, read_out, spawn, stderr_of, stop, wait_listening, wait_log, write_config,
)

# How long to wait for bytes that must not come.
QUIET = 0.5
# Clients get the sysenv's HOME (an empty directory of their own).
CLIENT_ENV = dict(ENV, HOME=os.environ.get("HOME", TMP))

# The daemon's listeners (DAEMON_CONF names the same ports).
IMPLICIT = 1995  # tls = "implicit", P-256
STLS = 1110  # tls = "stls" from the top level, P-256, plaintext_login by default
RSA_IMPLICIT = 1996  # tls = "implicit", RSA-2048
RSA_STLS = 1111  # tls = "stls", RSA-2048
ALWAYS = 1112  # tls = "stls", plaintext_login = "always"
PLAIN = 1113  # tls = "none"
NEVER = 1114  # tls = "stls", plaintext_login = "never"
# Not the daemon's: openssl s_server, the control for refused protocol versions.
CONTROL = 1998
# A source address that is not loopback (scenario `policy` adds it to lo).
REMOTE = "192.0.2.1"


# ---------------------------------------------------------------------------------
# The throw-away PKI.


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, env=ENV)
    if r.returncode != 0:
        raise ScenarioError("openssl %s: %r" % (" ".join(args), r.stderr))


def new_key(path, kind):
    if kind == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)


def make_pki():
    """Paths: ca (the CA's certificate), ec.chain/ec.key and rsa.chain/rsa.key (server
    certificate, then the CA: leaf first), other_ca (a CA that signed nothing here)."""
    d = os.path.join(TMP, "pki")
    os.makedirs(d, exist_ok=True)
    p = {}
    for ca in ("ca", "other_ca"):
        key = os.path.join(d, ca + ".key")
        new_key(key, "ec")
        p[ca] = os.path.join(d, ca + ".pem")
        openssl(
            "req", "-x509", "-new", "-key", key, "-out", p[ca], "-days", "2",
            "-subj", "/O=popa3d-rs tests/CN=throw-away %s" % ca,
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write(
            "basicConstraints=critical,CA:FALSE\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
        )
    for serial, kind in ((1, "ec"), (2, "rsa")):
        key = os.path.join(d, kind + ".key")
        new_key(key, kind)
        csr = os.path.join(d, kind + ".csr")
        leaf = os.path.join(d, kind + ".leaf.pem")
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=localhost")
        openssl(
            "x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", os.path.join(d, "ca.key"),
            "-set_serial", str(serial), "-days", "2", "-extfile", ext, "-out", leaf,
        )
        chain = os.path.join(d, kind + ".chain.pem")
        with open(chain, "wb") as out:
            for part in (leaf, p["ca"]):
                with open(part, "rb") as f:
                    out.write(f.read())
        p[kind + ".leaf"] = leaf
        p[kind + ".chain"] = chain
        p[kind + ".key"] = key
        st = os.stat(key)
        fact("pki.%s.key" % kind, "%o %d" % (st.st_mode & 0o7777, st.st_uid))
    return p


def context(cafile):
    """A client SSLContext that trusts only cafile and checks the host name."""
    return ssl.create_default_context(cafile=cafile)


# ---------------------------------------------------------------------------------
# Processes.


def run(name, argv, env=None, timeout=30):
    """Runs a client to its end: output in OUT/NAME.log, fact NAME.rc."""
    with open(os.path.join(OUT, name + ".log"), "wb") as log:
        try:
            rc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=env or CLIENT_ENV, timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    fact(name + ".rc", rc)
    return rc


def children(p):
    with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
        return set(f.read().split())


def wait_no_sessions(p):
    """Waits until p has reaped every child it forked for a session: its sessions are
    over, as it sees them. The children it had when it got ready (the key holder,
    forked before it accepts) stay."""
    deadline = time.monotonic() + TIMEOUT
    while not children(p) <= p.at_start:
        if time.monotonic() > deadline:
            raise ScenarioError(
                "%s still has children %s (at start: %s)" % (p.name, children(p), p.at_start)
            )
        time.sleep(0.02)


DAEMON_CONF = """shutdown_timeout = 2
tls_handshake_timeout = 2
tls = "stls"
tls_cert = "{ec.chain}"
tls_key = "{ec.key}"

[[listener]]
address = "127.0.0.1:1995"
tls = "implicit"

[[listener]]
address = "127.0.0.1:1110"

[[listener]]
address = "127.0.0.1:1996"
tls = "implicit"
tls_cert = "{rsa.chain}"
tls_key = "{rsa.key}"

[[listener]]
address = "127.0.0.1:1111"
tls = "stls"
tls_cert = "{rsa.chain}"
tls_key = "{rsa.key}"

[[listener]]
address = "127.0.0.1:1112"
tls = "stls"
plaintext_login = "always"

[[listener]]
address = "127.0.0.1:1113"
tls = "none"

[[listener]]
address = "127.0.0.1:1114"
tls = "stls"
plaintext_login = "never"
"""


def start_daemon(pki):
    """`popa3d -D -F -c FILE` with DAEMON_CONF; returns once it listens on every port."""
    conf = DAEMON_CONF
    for k, v in pki.items():
        conf = conf.replace("{%s}" % k, v)
    path = write_config("daemon.toml", conf)
    p = spawn("daemon", [POPA3D, "-D", "-F", "-c", path])
    for port in (IMPLICIT, STLS, RSA_IMPLICIT, RSA_STLS, ALWAYS, PLAIN, NEVER):
        wait_listening(port, p)
    p.at_start = children(p)
    fact("daemon.children", len(p.at_start))
    return p


def finish(d, sessions_ended=None):
    """Waits for the sessions to end (and, if given, for that log line count), then
    stops the daemon: fact exit."""
    if sessions_ended:
        try:
            wait_log(*sessions_ended)
        except ScenarioError as e:
            # Not fatal here: the facts show what went wrong.
            fact("wait_log", e)
    wait_no_sessions(d)
    fact("exit", stop(d))
    fact("daemon.stderr", stderr_of(d.name))


# ---------------------------------------------------------------------------------
# A POP3 client on a byte stream: a socket (plain or TLS) or an s_client's pipes.


class Conn:
    def __init__(self, src=None, port=STLS, timeout=TIMEOUT, sock=None):
        if sock is None:
            sock = socket.create_connection(
                (HOST, port), timeout=timeout, source_address=(src, 0) if src else None
            )
        self.sock = sock
        self.buf = b""

    # The byte stream.
    def recv(self, timeout):
        """Up to 64 KiB; b'' at EOF; None when nothing came within timeout."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return None
        except ConnectionResetError:
            return b""

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()

    # POP3.
    def line(self, timeout=TIMEOUT):
        """One line with its CRLF; what is left (maybe b'') at EOF or after timeout."""
        while b"\r\n" not in self.buf:
            data = self.recv(timeout)
            if not data:
                rest, self.buf = self.buf, b""
                return rest
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def cmd(self, command):
        self.send(command.encode() + b"\r\n")
        return self.line()

    def multi(self, command):
        """(status line, data) of a multi-line answer; data with LF line ends, unstuffed."""
        status = self.cmd(command)
        if not status.startswith(b"+OK"):
            return status, b""
        data = []
        while True:
            line = self.line()
            if line in (b".\r\n", b""):
                break
            line = line[:-2] if line.endswith(b"\r\n") else line
            if line.startswith(b"."):
                line = line[1:]
            data.append(line + b"\n")
        return status, b"".join(data)

    def unsolicited(self, wait=QUIET):
        """Whatever arrives within `wait` seconds without being asked for (plus what is
        already buffered)."""
        data, self.buf = self.buf, b""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return data
            chunk = self.recv(left)
            if not chunk:
                return data
            data += chunk

    def ending(self, timeout=TIMEOUT):
        """How the stream goes on after the last reply: `eof` when the peer closes
        without another byte, else `timeout` or `more: BYTES`."""
        data, self.buf = self.buf, b""
        deadline = time.monotonic() + timeout
        while True:
            chunk = self.recv(max(deadline - time.monotonic(), 0))
            if chunk is None:
                return "timeout" if not data else "more: %r" % data
            if not chunk:
                return "eof" if not data else "more: %r" % data
            data += chunk

    def starttls(self, ctx, hostname="localhost"):
        """The TLS handshake on this connection: None, or the error's text."""
        if self.buf:
            raise ScenarioError("bytes left unread before the handshake: %r" % self.buf)
        self.sock.settimeout(TIMEOUT)
        # A duplicate of the socket, to see how the connection ends if the handshake
        # fails (the SSLSocket takes the original over).
        raw = self.sock.dup()
        # Explicitly: wrap_socket skips the handshake, without an error, on a socket
        # that is no longer connected.
        tls = ctx.wrap_socket(self.sock, server_hostname=hostname, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            tls.close()
            self.sock = raw
            return "%s: %s" % (type(e).__name__, e)
        raw.close()
        self.sock = tls
        return None


def tls_connect(port, ctx, src=None, hostname="localhost"):
    """An implicit-TLS connection (Conn), or raises the handshake's error."""
    c = Conn(src, port)
    err = c.starttls(ctx, hostname)
    if err:
        c.close()
        raise ssl.SSLError(err)
    return c


def session(key, c, greeting=True, capa=True):
    """On an open connection: the greeting (if one is due), CAPA, bob's USER and PASS,
    STAT, RETR 1, QUIT and the close. Facts KEY.welcome, KEY.capa, KEY.user, KEY.pass,
    KEY.stat, KEY.retr, KEY.quit, KEY.end (KEY.error if the connection failed); the
    message in OUT/KEY.retr1."""
    try:
        if greeting:
            fact(key + ".welcome", c.line())
        if capa:
            fact(key + ".capa", c.multi("CAPA")[1])
        fact(key + ".user", c.cmd("USER bob"))
        fact(key + ".pass", c.cmd("PASS bobpw"))
        fact(key + ".stat", c.cmd("STAT"))
        status, data = c.multi("RETR 1")
        fact(key + ".retr", status)
        put(key + ".retr1", data)
        fact(key + ".quit", c.cmd("QUIT"))
        fact(key + ".end", c.ending())
    except (OSError, ssl.SSLError) as e:
        fact(key + ".error", repr(e))
    finally:
        c.close()


def closed_fact(key, c, timeout=TIMEOUT):
    """How a connection the server should close ended: KEY = `BYTES END SECONDS`, the
    bytes (with any c had buffered) in KEY.data."""
    data, c.buf = c.buf, b""
    rest, end, took = drain(c.sock, timeout)
    data += rest
    c.close()
    fact(key, "%d %s %.3f" % (len(data), end, took))
    fact(key + ".data", data)


# ---------------------------------------------------------------------------------
# openssl s_client.


class SClient(Conn):
    """`openssl s_client -brief` as a POP3 client: its stdin and stdout are the TLS
    connection's plaintext, its stderr (OUT/KEY.stderr) says what was negotiated."""

    def __init__(self, key, args):
        self.key = key
        self.err = os.path.join(OUT, key + ".stderr")
        with open(self.err, "wb") as err:
            self.p = subprocess.Popen(
                ["openssl", "s_client", "-brief", "-ign_eof", "-nocommands", *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=CLIENT_ENV,
            )
        self.p.name = key
        STARTED.append(self.p)
        self.buf = b""

    def recv(self, timeout):
        fd = self.p.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        return os.read(fd, 65536)

    def send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except BrokenPipeError:
            pass

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = "hung: " + str(stop(self.p))
        fact(self.key + ".rc", rc)
        with open(self.err, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                for name, label in (
                    ("protocol", "Protocol version: "),
                    ("cipher", "Ciphersuite: "),
                    ("verify", "Verification: "),
                    ("signature", "Signature type: "),
                    ("peer", "Peer certificate: "),
                ):
                    if line.startswith(label):
                        fact("%s.%s" % (self.key, name), line[len(label):])


def s_client_args(port, pki, starttls, verify):
    args = ["-connect", "%s:%d" % (HOST, port), "-CAfile", pki["ca"], "-verify_return_error"]
    if starttls:
        args += ["-starttls", "pop3"]
    if verify == "ip":
        args += ["-verify_ip", HOST]
    else:
        args += ["-verify_hostname", "localhost"]
    return args


def s_client_session(key, port, pki, starttls, *opts, verify="name"):
    """A whole POP3 session through s_client (implicit TLS, or STLS done by s_client)."""
    c = SClient(key, s_client_args(port, pki, starttls, verify) + list(opts))
    session(key, c, greeting=not starttls)


def s_client_handshake(key, port, pki, *opts, ca=None):
    """A handshake only (stdin at EOF: s_client ends after it): facts KEY.rc and what
    -brief said; KEY.alert, the alert s_client reports, if any."""
    args = ["-connect", "%s:%d" % (HOST, port), "-CAfile", ca or pki["ca"], "-verify_return_error"]
    with open(os.path.join(OUT, key + ".stderr"), "wb") as err:
        try:
            rc = subprocess.run(
                ["openssl", "s_client", "-brief", "-nocommands", *args, *opts],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=CLIENT_ENV,
                timeout=TIMEOUT,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    fact(key + ".rc", rc)
    text = stderr_of(key).decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("Protocol version: "):
            fact(key + ".protocol", line[len("Protocol version: "):])
        if "alert" in line:
            fact(key + ".alert", line[line.index("alert"):])
        if "no protocols available" in line or "no ciphers available" in line:
            fact(key + ".client_refused", line)


def control_server(pki, kind, *opts):
    """openssl s_server on CONTROL with kind's certificate, for one handshake: shows
    that the client can do what popa3d refuses."""
    p = spawn(
        "s_server",
        [
            "openssl", "s_server", "-accept", "%s:%d" % (HOST, CONTROL), "-naccept", "1",
            "-cert", pki[kind + ".leaf"], "-key", pki[kind + ".key"], "-quiet", *opts,
        ],
    )
    wait_listening(CONTROL, p)
    return p


# ---------------------------------------------------------------------------------
# Scenarios.


def openssl_scenario():
    """openssl s_client: STLS (-starttls pop3) and implicit TLS, TLS 1.3 and TLS 1.2 with
    ECDHE-ECDSA and ECDHE-RSA suites, the chain verified each time; TLS 1.1 and a
    non-ECDHE suite refused (each shown possible against openssl s_server), and the
    daemon serving the next client after each refusal."""
    pki = make_pki()
    d = start_daemon(pki)
    s_client_session("stls.tls13", STLS, pki, True, "-tls1_3")
    s_client_session("implicit.tls13", IMPLICIT, pki, False, "-tls1_3", verify="ip")
    s_client_session("implicit.tls12.ecdsa", IMPLICIT, pki, False, "-tls1_2",
                     "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    s_client_session("stls.tls12.ecdsa", STLS, pki, True, "-tls1_2",
                     "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    s_client_session("implicit.tls12.rsa", RSA_IMPLICIT, pki, False, "-tls1_2",
                     "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")
    # RSA PKCS#1 v1.5 signatures exist in TLS 1.2 only.
    s_client_session("stls.tls12.rsa_pkcs1", RSA_STLS, pki, True, "-tls1_2",
                     "-cipher", "ECDHE-RSA-CHACHA20-POLY1305", "-sigalgs", "RSA+SHA256")
    s_client_session("implicit.tls13.rsa", RSA_IMPLICIT, pki, False, "-tls1_3")

    # TLS 1.1: OpenSSL 3 allows it at security level 0 only.
    weak = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]
    s_client_handshake("tls11", IMPLICIT, pki, *weak)
    s_client_session("after.tls11", IMPLICIT, pki, False)
    s_client_handshake("tls11.stls", STLS, pki, "-starttls", "pop3", *weak)
    ctl = control_server(pki, "ec", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    s_client_handshake("tls11.control", CONTROL, pki, *weak)
    fact("tls11.control.exit", stop(ctl))
    # RSA key exchange (no forward secrecy).
    static = ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]
    s_client_handshake("rsa_kx", RSA_IMPLICIT, pki, *static)
    s_client_session("after.rsa_kx", RSA_IMPLICIT, pki, False)
    ctl = control_server(pki, "rsa", *static)
    s_client_handshake("rsa_kx.control", CONTROL, pki, *static)
    fact("rsa_kx.control.exit", stop(ctl))
    finish(d, ("deleted, ", 9))


def curl():
    """curl: pop3s:// (implicit TLS) and pop3:// --ssl-reqd (STLS), verified against
    the CA; --ssl-reqd against a listener without TLS, and the wrong CA, fail."""
    pki = make_pki()
    d = start_daemon(pki)
    base = ["curl", "-sS", "-v", "--cacert", pki["ca"]]
    run("implicit.list", base + ["-o", os.path.join(OUT, "implicit.list"),
                                 "pop3s://bob:bobpw@127.0.0.1:%d/" % IMPLICIT])
    for i in range(1, 6):
        run("implicit.%d" % i, base + ["-o", os.path.join(OUT, "implicit.%d" % i),
                                       "pop3s://bob:bobpw@127.0.0.1:%d/%d" % (IMPLICIT, i)])
        run("stls.%d" % i, base + [
            "--ssl-reqd", "--resolve", "localhost:%d:127.0.0.1" % STLS,
            "-o", os.path.join(OUT, "stls.%d" % i),
            "pop3://bob:bobpw@localhost:%d/%d" % (STLS, i),
        ])
    run("rsa.1", base + ["-o", os.path.join(OUT, "rsa.1"),
                         "pop3s://bob:bobpw@127.0.0.1:%d/1" % RSA_IMPLICIT])
    # Controls: no STLS to be had, and a server the client must not trust.
    run("plain.ssl_reqd", base + ["--ssl-reqd", "pop3://bob:bobpw@127.0.0.1:%d/1" % PLAIN])
    run("other_ca", ["curl", "-sS", "-v", "--cacert", pki["other_ca"],
                     "pop3s://bob:bobpw@127.0.0.1:%d/1" % IMPLICIT])
    for name in ["implicit.list", "rsa.1", "plain.ssl_reqd", "other_ca"] + [
        "%s.%d" % (m, i) for m in ("implicit", "stls") for i in range(1, 6)
    ]:
        for line in read_out(name + ".log").decode(errors="replace").splitlines():
            if line.startswith("* SSL connection using "):
                fact(name + ".tls", line[len("* SSL connection using "):])
    finish(d, ("deleted, ", 12))


def mpop():
    """mpop (GnuTLS): implicit TLS (tls_starttls off) and STLS, trusting the CA; the
    wrong CA fails."""
    pki = make_pki()
    d = start_daemon(pki)

    def fetch(name, port, *opts):
        dest = os.path.join(TMP, name)
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(dest, sub), exist_ok=True)
        run(name, [
            "mpop", "--host=127.0.0.1", "--port=%d" % port, "--tls=on", "--user=bob",
            "--passwordeval=echo bobpw", "--received-header=off", "--keep=on",
            "--only-new=off", "--uidls-file=" + os.path.join(TMP, name + ".uidls"),
            "--delivery=maildir," + dest, "--debug", *opts,
        ])
        subprocess.run(["cp", "-r", dest, os.path.join(OUT, name)], check=True)

    fetch("implicit", IMPLICIT, "--tls-starttls=off", "--auth=user",
          "--tls-trust-file=" + pki["ca"])
    fetch("stls", STLS, "--tls-starttls=on", "--auth=plain", "--tls-trust-file=" + pki["ca"])
    fetch("rsa", RSA_STLS, "--tls-starttls=on", "--auth=user", "--tls-trust-file=" + pki["ca"])
    fetch("other_ca", IMPLICIT, "--tls-starttls=off", "--auth=user",
          "--tls-trust-file=" + pki["other_ca"])
    for name in ("implicit", "stls", "rsa"):
        for line in read_out(name + ".log").decode(errors="replace").splitlines():
            if "STLS" in line and line.startswith("-->"):
                fact(name + ".sent_stls", line)
    finish(d, ("deleted, ", 3))


def fetchmail():
    """fetchmail (OpenSSL): --ssl on the implicit port, --sslproto tls1.2+ (STLS
    required) on the STLS port, both with --sslcertck against the CA; STLS required
    from a listener without TLS fails."""
    pki = make_pki()
    d = start_daemon(pki)

    def fetch(name, port, options):
        dest = os.path.join(TMP, name)
        os.makedirs(dest, exist_ok=True)
        rc = write_config(name + ".rc", (
            "set no syslog\n"
            "poll localhost protocol pop3 port %d uidl\n"
            '    user "bob" password "bobpw" is "root" here\n'
            '    options keep %s sslcertck sslcertfile "%s" no rewrite mda "%s/deliver %s"\n'
        ) % (port, options, pki["ca"], TMP, dest))
        os.chmod(rc, 0o600)
        run(name, [
            "fetchmail", "-f", rc, "--nodetach", "--invisible",
            "-i", os.path.join(TMP, name + ".ids"), "-v",
        ], env=dict(CLIENT_ENV, FETCHMAILHOME=TMP))
        subprocess.run(["cp", "-r", dest, os.path.join(OUT, name)], check=True)
        for line in read_out(name + ".log").decode(errors="replace").splitlines():
            if "SSL/TLS: using protocol" in line:
                fact(name + ".tls", line.split("SSL/TLS: ", 1)[1])
            if line.endswith("> STLS"):
                fact(name + ".sent_stls", line)

    fetch("implicit", IMPLICIT, "ssl")
    fetch("stls", STLS, "sslproto 'tls1.2+'")
    fetch("plain", PLAIN, "sslproto 'tls1.2+'")
    finish(d, ("deleted, ", 2))


def capa_names(caps):
    """poplib's capa() as sorted `NAME ARGS` strings."""
    return ",".join(sorted(" ".join([k] + v) for k, v in caps.items()))


def poplib_scenario():
    """Python's poplib: POP3_SSL with an SSLContext trusting the CA, and POP3.stls():
    CAPA before and after."""
    pki = make_pki()
    d = start_daemon(pki)
    ctx = context(pki["ca"])
    try:
        p = poplib.POP3_SSL(HOST, IMPLICIT, timeout=TIMEOUT, context=ctx)
        fact("ssl.welcome", p.getwelcome())
        fact("ssl.version", p.sock.version())
        fact("ssl.capa", capa_names(p.capa()))
        fact("ssl.user", p.user("bob"))
        fact("ssl.pass", p.pass_("bobpw"))
        count, size = p.stat()
        fact("ssl.stat", "%d %d" % (count, size))
        for i in range(1, count + 1):
            _, lines, _ = p.retr(i)
            put("ssl.retr%d" % i, b"".join(line + b"\n" for line in lines))
        fact("ssl.quit", p.quit())
    except (poplib.error_proto, OSError) as e:
        fact("ssl.error", repr(e))

    try:
        p = poplib.POP3(HOST, STLS, timeout=TIMEOUT)
        fact("stls.welcome", p.getwelcome())
        fact("stls.capa.before", capa_names(p.capa()))
        fact("stls.stls", p.stls(context(pki["ca"])))
        fact("stls.version", p.sock.version())
        fact("stls.capa.after", capa_names(p.capa()))
        fact("stls.user", p.user("bob"))
        fact("stls.pass", p.pass_("bobpw"))
        count, size = p.stat()
        fact("stls.stat", "%d %d" % (count, size))
        _, lines, _ = p.retr(1)
        put("stls.retr1", b"".join(line + b"\n" for line in lines))
        fact("stls.quit", p.quit())
    except (poplib.error_proto, OSError) as e:
        fact("stls.error", repr(e))
    finish(d, ("deleted, ", 2))


def injection():
    """Bytes sent in the same write as STLS never count as commands (RFC 2595 §4, the
    STARTTLS command-injection class), and STLS only where and when it may be used."""
    pki = make_pki()
    d = start_daemon(pki)
    ctx = context(pki["ca"])

    def inject(key, src, payload, after, split=False):
        """Greeting, then payload in one send (or STLS and the rest in two sends at
        once); what came in plaintext; the handshake; what came unasked inside TLS;
        then `after` (a list of commands) inside TLS."""
        c = Conn(src, STLS)
        fact(key + ".welcome", c.line())
        if split:
            first, rest = payload.split(b"\r\n", 1)
            c.send(first + b"\r\n")
            c.send(rest)
        else:
            c.send(payload)
        fact(key + ".plain", c.unsolicited())
        err = c.starttls(ctx)
        fact(key + ".handshake", err or "ok")
        if err:
            closed_fact(key + ".closed", c)
            return
        fact(key + ".early", c.unsolicited())
        for command in after:
            name = "%s.%s" % (key, command.lower())
            if command == "CAPA":
                status, data = c.multi(command)
                fact(name, status + data)
            else:
                fact(name, c.cmd(command))
        fact(key + ".rest", c.unsolicited())
        c.close()

    inject("capa", "127.0.0.65", b"STLS\r\nCAPA\r\n", ["CAPA", "QUIT"])
    inject("login", "127.0.0.66", b"STLS\r\nUSER bob\r\nPASS bobpw\r\n", ["STAT", "QUIT"])
    inject("split", "127.0.0.67", b"STLS\r\nUSER bob\r\nPASS bobpw\r\n", ["STAT", "QUIT"],
           split=True)

    # STLS only in AUTHORIZATION, before USER, once, and where TLS is configured.
    c = Conn("127.0.0.70", STLS)
    c.line()
    fact("after_user.user", c.cmd("USER bob"))
    fact("after_user.stls", c.cmd("STLS"))
    fact("after_user.pass", c.cmd("PASS bobpw"))
    fact("after_user.quit", c.cmd("QUIT"))
    c.close()
    c = Conn("127.0.0.71", STLS)
    c.line()
    fact("twice.stls", c.cmd("STLS"))
    fact("twice.handshake", c.starttls(ctx) or "ok")
    fact("twice.stls2", c.cmd("STLS"))
    fact("twice.quit", c.cmd("QUIT"))
    c.close()
    c = tls_connect(IMPLICIT, ctx, "127.0.0.72")
    c.line()
    fact("implicit.stls", c.cmd("STLS"))
    fact("implicit.quit", c.cmd("QUIT"))
    c.close()
    c = Conn("127.0.0.73", PLAIN)
    c.line()
    fact("plain.stls", c.cmd("STLS"))
    fact("plain.quit", c.cmd("QUIT"))
    c.close()
    # Loopback may log in without TLS; STLS is then too late.
    c = Conn("127.0.0.74", STLS)
    c.line()
    fact("transaction.user", c.cmd("USER bob"))
    fact("transaction.pass", c.cmd("PASS bobpw"))
    fact("transaction.stls", c.cmd("STLS"))
    fact("transaction.quit", c.cmd("QUIT"))
    c.close()

    # The control: the same login, sent after the handshake, is logged.
    c = Conn("127.0.0.75", STLS)
    c.line()
    fact("control.stls", c.cmd("STLS"))
    fact("control.handshake", c.starttls(ctx) or "ok")
    session("control", c, greeting=False, capa=False)
    finish(d, ("deleted, ", 3))


def policy():
    """plaintext_login: refused without TLS from a non-loopback address on an STLS
    listener (CAPA says so), accepted after STLS, from loopback, with `always`, and on a
    listener without TLS; `never` refuses loopback too."""
    pki = make_pki()
    r = subprocess.run(["ip", "addr", "add", REMOTE + "/32", "dev", "lo"],
                       capture_output=True, env=ENV)
    if r.returncode != 0:
        raise ScenarioError("ip addr add %s: %r" % (REMOTE, r.stderr))
    d = start_daemon(pki)
    ctx = context(pki["ca"])
    plain_ir = base64.b64encode(b"\0bob\0bobpw").decode()

    def refused(key, src, port):
        """CAPA, USER, PASS, AUTH PLAIN (with and without an initial response) without
        TLS; then STLS, CAPA and the login inside TLS."""
        c = Conn(src, port)
        fact(key + ".welcome", c.line())
        fact(key + ".capa", c.multi("CAPA")[1])
        fact(key + ".user", c.cmd("USER bob"))
        fact(key + ".pass", c.cmd("PASS bobpw"))
        fact(key + ".auth_ir", c.cmd("AUTH PLAIN " + plain_ir))
        reply = c.cmd("AUTH PLAIN")
        fact(key + ".auth", reply)
        if reply.startswith(b"+"):
            fact(key + ".auth.cancel", c.cmd("*"))
        fact(key + ".stls", c.cmd("STLS"))
        fact(key + ".handshake", c.starttls(ctx) or "ok")
        session(key + ".tls", c, greeting=False)

    def accepted(key, src, port):
        """CAPA and a login, all without TLS."""
        session(key, Conn(src, port))

    refused("remote", REMOTE, STLS)
    accepted("loopback", HOST, STLS)
    accepted("always", REMOTE, ALWAYS)
    accepted("none", REMOTE, PLAIN)
    refused("never", HOST, NEVER)
    # AUTH PLAIN is the same login: it works once TLS is up.
    c = Conn(REMOTE, STLS)
    c.line()
    fact("sasl.stls", c.cmd("STLS"))
    fact("sasl.handshake", c.starttls(ctx) or "ok")
    fact("sasl.auth", c.cmd("AUTH PLAIN " + plain_ir))
    fact("sasl.stat", c.cmd("STAT"))
    fact("sasl.quit", c.cmd("QUIT"))
    c.close()
    finish(d, ("deleted, ", 6))


def failures():
    """Handshakes that fail end the connection, without a plaintext POP3 byte; the
    daemon logs them and serves the next client."""
    pki = make_pki()
    d = start_daemon(pki)
    good = context(pki["ca"])

    c = Conn("127.0.0.80", IMPLICIT)
    fact("other_ca", c.starttls(context(pki["other_ca"])) or "connected")
    c.close()
    s_client_handshake("other_ca.s_client", IMPLICIT, pki, ca=pki["other_ca"])
    session("after_other_ca", tls_connect(IMPLICIT, good, "127.0.0.81"))

    c = Conn("127.0.0.82", IMPLICIT)
    c.send(b"USER bob\r\n")
    closed_fact("plaintext", c)
    c = Conn("127.0.0.83", IMPLICIT)
    closed_fact("silent", c)
    # The same after STLS: the handshake has the same deadline.
    c = Conn("127.0.0.84", STLS)
    c.line()
    fact("silent_stls.stls", c.cmd("STLS"))
    closed_fact("silent_stls", c)
    session("after_all", tls_connect(IMPLICIT, good, "127.0.0.85"))
    finish(d, ("deleted, ", 2))


def inetd():
    """inetd mode (systemd-socket-activate --inetd, one popa3d per connection) with
    top-level tls = "implicit"."""
    pki = make_pki()
    conf = write_config(
        "inetd.toml",
        'tls = "implicit"\ntls_cert = "%s"\ntls_key = "%s"\ntls_handshake_timeout = 2\n'
        % (pki["ec.chain"], pki["ec.key"]),
    )
    p = spawn("activate", [
        "systemd-socket-activate", "--inetd", "-a", "-l", "%s:%d" % (HOST, IMPLICIT),
        POPA3D, "-c", conf,
    ])
    wait_listening(IMPLICIT, p)
    ctx = context(pki["ca"])
    try:
        pop = poplib.POP3_SSL(HOST, IMPLICIT, timeout=TIMEOUT, context=ctx)
        fact("ssl.welcome", pop.getwelcome())
        fact("ssl.version", pop.sock.version())
        fact("ssl.user", pop.user("bob"))
        fact("ssl.pass", pop.pass_("bobpw"))
        count, size = pop.stat()
        fact("ssl.stat", "%d %d" % (count, size))
        _, lines, _ = pop.retr(1)
        put("ssl.retr1", b"".join(line + b"\n" for line in lines))
        fact("ssl.quit", pop.quit())
    except (poplib.error_proto, OSError) as e:
        fact("ssl.error", repr(e))
    c = Conn(None, IMPLICIT)
    c.send(b"USER bob\r\n")
    closed_fact("plaintext", c)
    wait_log("deleted, ", 1)
    fact("exit", stop(p))


def holder_restart():
    """The daemon's key holder killed: the daemon starts a new one at once and TLS goes
    on; killed again within 10 s: no new one (no fork loop), TLS connections are closed,
    until SIGHUP starts one."""
    pki = make_pki()
    d = start_daemon(pki)
    ctx = context(pki["ca"])

    def fetch(key):
        try:
            session(key, tls_connect(IMPLICIT, ctx))
        except (OSError, ssl.SSLError) as e:
            fact(key + ".error", repr(e))
        wait_no_sessions(d)

    def holder():
        (pid,) = d.at_start
        return int(pid)

    def replaced(old):
        """Waits until the daemon's only child is a new holder."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            now = children(d)
            if len(now) == 1 and now != {str(old)}:
                d.at_start = now
                return holder()
            if time.monotonic() > deadline:
                raise ScenarioError("no new key holder: children %s" % now)
            time.sleep(0.02)

    fetch("before")
    first = holder()
    os.kill(first, signal.SIGKILL)
    wait_log("started a new one")
    second = replaced(first)
    fact("second.new", second != first)
    fetch("after")
    os.kill(second, signal.SIGKILL)
    wait_log("again: TLS handshakes fail until a reload")
    d.at_start = set()
    fact("broken.children", len(children(d)))
    fetch("broken")
    d.send_signal(signal.SIGHUP)
    wait_log("configuration reloaded")
    third = replaced(second)
    fact("third.new", third not in (first, second))
    fetch("reloaded")
    finish(d)


SCENARIOS = {
    "openssl": openssl_scenario,
    "curl": curl,
    "mpop": mpop,
    "fetchmail": fetchmail,
    "poplib": poplib_scenario,
    "injection": injection,
    "policy": policy,
    "failures": failures,
    "inetd": inetd,
    "holder_restart": holder_restart,
}


if __name__ == "__main__":
    poplib._MAXLINE = 1 << 20
    main(SCENARIOS)

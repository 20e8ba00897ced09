#!/usr/bin/env python3
"""Scenarios of tests/tls_isolation.rs: issue #5's hard requirement, that no process
that handles a session can read the TLS private key file or holds the key in memory
(docs/tls-design.md, "Test plan" items 1, 2 and 7). Run inside scripts/sysenv, as root:

    tls_isolation_scenarios.py SCENARIO

Environment, results and process handling as in activation_scenarios.py (the helpers
are scenario_common.py's; read_line and start_daemon are activation_scenarios.py's):
facts in OUT/facts, one `key=value` per line; each daemon's stderr in OUT/NAME.stderr;
every process started here is stopped here, by its pid. This script drives and
observes; tls_isolation.rs judges.

Keys and certificates are made here with the openssl command-line tool: ECDSA P-256
keys in PKCS#8, RSA-2048 keys in PKCS#1, each file 0600 root; self-signed certificates
for localhost. memscan.py turns a key into the byte strings searched for.

Which process is which (all found through /proc):
  session root  the daemon's child (or, in inetd mode, the activator's) whose subtree
                holds the server's end of a client's TCP connection; found from the
                client's address and port in /proc/net/tcp, then the socket's inode in
                /proc/PID/fd. Its role is named by the stage: `root` (uid 0, waiting for
                the pre-auth process), `mailuser` (after a login), `failed` (after a
                wrong password, as popa3d in the chroot).
  relay         the one process that holds that TCP socket once TLS is set up.
  preauth       any other process of the session running as the `popa3d` account.
  helper        any other process of the session tree but the key side (none is
                expected once the session has settled).
  key side      popa3d processes that hold the far end of one of the relay's Unix
                sockets other than its plaintext socket to the session (`ss -xan` gives
                each socket's peer): the key holder's end of the signature channel. It
                is there until the relay's one signature request has been answered:
                the daemon's key holder (or a child it forked for the request), or in
                inetd mode the session's own key holder, a child of the root. So a
                session that has not sent its ClientHello yet has one: scanned, it must
                hold the key (the positive control, without which a clean scan proves
                nothing), and once the handshake is done there must be none.
  key holder    (daemon) a child of the daemon with no client TCP connection anywhere
                in its subtree; it must be the one child the daemon has before any
                client connects. Scanned too: it must hold both keys.
Every process of a session tree is scanned (memscan.py) and its /proc/PID/status Uid and
Gid lines, root directory and open descriptors are recorded; the key file is then opened
(`cat` under setpriv) with that process's uid, gid and groups.
"""
import hashlib
import os
import pwd
import select
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memscan  # noqa: E402
from activation_scenarios import read_line, start_daemon  # noqa: E402
from scenario_common import (  # noqa: E402
    DATA, ENV, HOST, POPA3D, SYSLOG, TIMEOUT, TMP, ScenarioError, fact, main, spawn,
    stderr_of, stop, wait_listening, write_config,
)

KEYDIR = os.path.join(TMP, "tls")
POPA3D_UID = pwd.getpwnam("popa3d").pw_uid


# ---------------------------------------------------------------------------------
# Keys and certificates.


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class Pair:
    """A private key (0600, root) and a self-signed certificate for it."""

    def __init__(self, name, kind):
        os.makedirs(KEYDIR, mode=0o755, exist_ok=True)
        self.name = name
        self.kind = kind
        self.key = os.path.join(KEYDIR, name + ".key")
        self.cert = os.path.join(KEYDIR, name + ".crt")
        old = os.umask(0o077)
        try:
            if kind == "ec":
                openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", self.key)
            else:
                tmp = self.key + ".pkcs8"
                openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", tmp)
                openssl("rsa", "-in", tmp, "-traditional", "-out", self.key)
                os.unlink(tmp)
        finally:
            os.umask(old)
        os.chmod(self.key, 0o600)
        openssl("req", "-x509", "-new", "-key", self.key, "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2",
                "-out", self.cert)
        os.chmod(self.cert, 0o644)
        with open(self.cert) as f:
            self.fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        kept, dropped = memscan.needles(self.key, self.cert)
        self.needles = [(name + ":" + n, v) for n, v in kept]
        fact("needles." + name, " ".join(n for n, _ in kept))
        fact("needles." + name + ".public", " ".join(dropped))

    def context(self):
        """A client context that trusts this certificate alone."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        return ctx

    def install(self, cert, key):
        """Copies this pair over the files cert and key (renamed into place)."""
        for src, dst, mode in ((self.cert, cert, 0o644), (self.key, key, 0o600)):
            with open(src, "rb") as f:
                data = f.read()
            tmp = dst + ".new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.rename(tmp, dst)


def listener(port, tls, pair):
    return '\n[[listener]]\naddress = "%s:%d"\ntls = "%s"\ntls_cert = "%s"\ntls_key = "%s"\n' % (
        HOST, port, tls, pair.cert, pair.key)


# ---------------------------------------------------------------------------------
# Processes, from /proc.


def status(pid):
    """/proc/PID/status as a dict (None if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        k, _, v = line.partition(":")
        out[k] = " ".join(v.split())
    return out


def uid_of(pid):
    st = status(pid)
    return int(st["Uid"].split()[1]) if st else None


def alive(pid):
    st = status(pid)
    return st is not None and not st["State"].startswith(("Z", "X"))


def parents():
    """{pid: ppid} of every live (not zombie) process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = status(int(entry))
            if st and not st["State"].startswith(("Z", "X")):
                out[int(entry)] = int(st["PPid"])
    return out


def children(pid, ppids=None):
    ppids = ppids if ppids is not None else parents()
    return sorted(p for p, pp in ppids.items() if pp == pid)


def subtree(pid, ppids=None):
    """pid and all its live descendants."""
    ppids = ppids if ppids is not None else parents()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p, ppids))
    return sorted(out)


def fd_targets(pid):
    """readlink of each of pid's descriptors."""
    out = []
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, n)))
        except OSError:
            pass
    return out


def tcp_connections(pid):
    """pid's descriptors on TCP sockets that are not listening (state 0A in
    /proc/net/tcp{,6}): client connections."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        inodes.update(r[9] for r in rows if r[3] != "0A")
    return {t for t in fd_targets(pid) if t.startswith("socket:[") and t[8:-1] in inodes}


def hex_addr(ip, port):
    """An IPv4 address and port as /proc/net/tcp writes them."""
    a = socket.inet_aton(ip)
    return "%08X:%04X" % (int.from_bytes(a, "little"), port)


def server_inode(sock):
    """The inode of the server's end of the client socket sock (IPv4)."""
    local, remote = sock.getsockname(), sock.getpeername()
    want_local, want_remote = hex_addr(*remote), hex_addr(*local)
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                return fields[9]
    return None


def holders_of(inode):
    target = "socket:[%s]" % inode
    return sorted(
        int(e) for e in os.listdir("/proc") if e.isdigit() and target in fd_targets(int(e))
    )


def key_holders(top):
    """The children of top without a client connection in their subtree: key
    holders."""
    ppids = parents()
    return [c for c in children(top, ppids)
            if not any(tcp_connections(p) for p in subtree(c, ppids))]


def wait_for(what, cond, timeout=TIMEOUT, step=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise ScenarioError("timed out waiting for " + what)
        time.sleep(step)


class Session:
    """The processes serving one client connection."""

    def __init__(self, top, sock):
        self.top = top
        self.sock = sock
        self.root = None
        self.relay = None
        self.tree = []
        self.keyside = []

    def look(self):
        """Finds the session's processes; False until the relay alone holds the TCP
        socket (the root has closed its copy)."""
        inode = server_inode(self.sock)
        if inode is None:
            return False
        holders = holders_of(inode)
        if len(holders) != 1:
            return False
        ppids = parents()
        p = holders[0]
        while p in ppids and ppids[p] != self.top:
            p = ppids[p]
        if p not in ppids:
            return False
        self.root, self.relay = p, holders[0]
        self.tree = subtree(p, ppids)
        self.keyside = key_side(self) if self.relay != self.root else []
        return self.relay != self.root

    def others(self):
        """The session's processes but its root, its relay and the key side."""
        return [p for p in self.tree if p not in [self.root, self.relay] + self.keyside]

    def settle(self, what, cond=lambda s: True, timeout=TIMEOUT):
        wait_for(what, lambda: self.look() and cond(self), timeout)


# ---------------------------------------------------------------------------------
# Observing a process.

EXAMINED = set()


OPENED = {}


def open_as(path, st):
    """`cat path` with the uid, gid and groups of status st: `rc=N TEXT`, where TEXT is
    cat's complaint or how many bytes it read (never the bytes). Tried once for each
    set of credentials."""
    uid, gid = st["Uid"].split()[1], st["Gid"].split()[1]
    groups = st.get("Groups", "").split()
    key = (path, uid, gid, tuple(groups))
    if key not in OPENED:
        argv = ["setpriv", "--reuid=" + uid, "--regid=" + gid]
        argv.append("--groups=" + ",".join(groups) if groups else "--clear-groups")
        r = subprocess.run(argv + ["cat", path], capture_output=True, env=ENV)
        text = r.stderr.decode(errors="replace").strip() or "read %d bytes" % len(r.stdout)
        OPENED[key] = "rc=%d %s" % (r.returncode, text)
    return OPENED[key]


def examine(prefix, pid, pairs, try_open=True):
    """Records what PREFIX.* says about pid: credentials, root directory, descriptors on
    a key file, and the scan for every key of pairs (PREFIX.hits, PREFIX.hits.NAME,
    PREFIX.numeric.NAME: hits on the in-memory number forms)."""
    EXAMINED.add(pid)
    st = status(pid) or {}
    fact(prefix + ".pid", pid)
    fact(prefix + ".uid", st.get("Uid", "gone"))
    fact(prefix + ".gid", st.get("Gid", "gone"))
    fact(prefix + ".groups", st.get("Groups", "gone"))
    try:
        fact(prefix + ".chroot", os.readlink("/proc/%d/root" % pid))
    except OSError as e:
        fact(prefix + ".chroot", "error " + e.strerror)
    keys = {p.key for p in pairs} | {os.path.realpath(p.key) for p in pairs}
    fds = fd_targets(pid)
    fact(prefix + ".key_fds", sum(1 for t in fds if t in keys))
    fact(prefix + ".fds", " ".join(sorted(fds)))
    needles = [n for p in pairs for n in p.needles]
    s = memscan.scan(pid, needles)
    fact(prefix + ".read", s.bytes_read)
    fact(prefix + ".gone", s.gone)
    unreadable = s.unexpected_unreadable()
    fact(prefix + ".unreadable", " ".join("%s:%s" % (m, e) for m, _, e in unreadable))
    fact(prefix + ".hits", s.total)
    for p in pairs:
        mine = {k: v for k, v in s.hits.items() if k.startswith(p.name + ":")}
        fact(prefix + ".hits." + p.name, sum(mine.values()))
        fact(prefix + ".numeric." + p.name,
             sum(v for k, v in mine.items() if k.split(":", 1)[1].startswith(p.kind + ".")))
    fact(prefix + ".found", " ".join("%s=%d" % (k, v) for k, v in s.hits.items() if v))
    fact(prefix + ".where", " ".join("%s@%x:%s" % w for w in s.where[:8]))
    if try_open and st:
        for p in pairs:
            fact(prefix + ".open." + p.name, open_as(p.key, st))


def unix_peers():
    """{inode: peer inode} of every Unix socket (`ss -xanH`: netid, state, queues,
    local address, local inode, peer address, peer inode)."""
    r = subprocess.run(["ss", "-xanH"], capture_output=True, text=True, env=ENV, check=True)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit() and f[7] != "0":
            out[f[5]] = f[7]
    return out


def socket_inodes(pid):
    return [t[8:-1] for t in fd_targets(pid) if t.startswith("socket:[")]


def key_side(session):
    """The popa3d processes at the far end of the relay's signature channel: of the
    relay's Unix sockets, every one but the plaintext socket to the session (whose far
    end is the root's fd 0). Someone is there until the one signature has been made:
    the daemon's key holder (or a child it forked for the request), or in inetd mode
    the session's own key holder (a child of the root, reparented if it exits first)."""
    peers = unix_peers()
    try:
        plain = peers.get(os.readlink("/proc/%d/fd/0" % session.root)[8:-1])
    except OSError:
        plain = None
    want = {
        "socket:[%s]" % peers[i]
        for i in socket_inodes(session.relay)
        if i in peers and i != plain
    }
    exe = os.path.realpath(POPA3D)
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) in (session.root, session.relay):
            continue
        try:
            if os.path.realpath("/proc/%s/exe" % e) != exe:
                continue
        except OSError:
            continue
        if want & set(fd_targets(int(e))):
            out.append(int(e))
    return sorted(out)


def examine_session(prefix, session, pairs, root_role, before_handshake=False):
    """Examines every process of session (PREFIX.roles lists their roles) and the key
    holder's side of its signature channel if there is one (PREFIX.keyside: pids). The
    key side shows up with the connection and goes once it has signed: waits a little
    for it to be there (before_handshake) or gone (after)."""
    try:
        wait_for(prefix + " key side",
                 lambda: session.look() and bool(session.keyside) == before_handshake, 3)
    except ScenarioError:
        pass
    roles = []
    for pid in [session.root, session.relay] + session.others():
        if pid == session.root:
            role = root_role
        elif pid == session.relay:
            role = "relay"
        elif uid_of(pid) == POPA3D_UID:
            role = "preauth"
        else:
            role = "helper"
        while role in roles:
            role += "+"
        roles.append(role)
        examine("%s.%s" % (prefix, role), pid, pairs)
    fact(prefix + ".roles", ",".join(sorted(roles)))
    fact(prefix + ".keyside", " ".join(map(str, session.keyside)))
    for i, pid in enumerate(session.keyside):
        name = prefix + ".keyside" + "+" * i
        fact(name + ".ppid", (status(pid) or {}).get("PPid", "gone"))
        examine(name, pid, pairs, try_open=False)


# ---------------------------------------------------------------------------------
# Clients.


def tcp(port, src=None):
    return socket.create_connection(
        (HOST, port), timeout=TIMEOUT, source_address=(src, 0) if src else None)


def tls(port, pair, src=None):
    """A TLS connection to an implicit-TLS port that trusts pair's certificate."""
    return pair.context().wrap_socket(tcp(port, src), server_hostname="localhost")


def command(sock, line):
    sock.sendall(line + b"\r\n")
    return read_line(sock)


def multiline(sock):
    data = read_line(sock)
    if data.startswith(b"+OK"):
        while True:
            line = read_line(sock)
            data += line
            if line in (b".\r\n", b""):
                break
    return data


def greeted(key, sock):
    fact(key + ".greeting", read_line(sock))
    return sock


def stls(port, pair, key):
    """Plaintext connection, CAPA, STLS, TLS handshake, CAPA again (RFC 2595 §4)."""
    s = greeted(key, tcp(port))
    s.sendall(b"CAPA\r\n")
    fact(key + ".capa.plain", multiline(s))
    fact(key + ".stls", command(s, b"STLS"))
    t = pair.context().wrap_socket(s, server_hostname="localhost")
    t.sendall(b"CAPA\r\n")
    fact(key + ".capa.tls", multiline(t))
    return t


def peer_fingerprint(sock):
    return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def stop_and_examine(prefix, session, pairs, root_role):
    """Stops the session's root (SIGSTOP) while the session is examined, so that a
    process that is about to exit (the failed-login wait or drain) is still there."""
    os.kill(session.root, signal.SIGSTOP)
    try:
        wait_for("stopped", lambda: (status(session.root) or {}).get("State", "").startswith("T"))
        # The pre-auth process and the verifier have exited by now.
        settle(session, prefix, [], 3)
        examine_session(prefix, session, pairs, root_role)
    finally:
        os.kill(session.root, signal.SIGCONT)


class HeldAtExit:
    """ptrace_tool.py hold-exit on pid: the process is stopped as it exits, with its
    memory, credentials and descriptors still there for /proc."""

    def __init__(self, pid):
        self.pid = pid
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(DATA, "ptrace_tool.py"), "hold-exit", str(pid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.p.stdout.readline().strip() != b"attached":
            release([self])
            raise ScenarioError("ptrace_tool.py hold-exit %d did not attach" % pid)


def first_to_exit(held, timeout=TIMEOUT):
    """The first of held to be stopped as it exits (or None after timeout)."""
    ready, _, _ = select.select([h.p.stdout for h in held], [], [], timeout)
    for h in held:
        if h.p.stdout in ready and h.p.stdout.readline().startswith(b"exiting "):
            return h
    return None


def release(held):
    """Lets them all go: every tool first (a held process may be what another one
    waits for), then waits for the tools."""
    for h in held:
        h.p.stdin.close()
    for h in held:
        h.p.wait(TIMEOUT)


def failed_login(prefix, top, port, pair, pairs, src, mode):
    """A wrong password: the session's root becomes popa3d in the chroot, logs, waits
    (the daemon's failed-login delay), answers -ERR, drains and exits. The daemon's
    delay is caught as the root's uid changes (the root is stopped while it is
    examined). inetd mode has no delay: the root and the relay are held by ptrace as
    they exit, and both are examined once one of them is held there (the root waits
    for the relay, so that is the relay). PREFIX.caught says which way."""
    sock = greeted(prefix, tls(port, pair, src))
    fact(prefix + ".user", command(sock, b"USER bob"))
    session = Session(top, sock)
    settle(session, prefix, ["preauth"])
    if mode == "daemon":
        sock.sendall(b"PASS wrong\r\n")
        wait_for(prefix + " failed-login process",
                 lambda: uid_of(session.root) == POPA3D_UID, step=0.002)
        fact(prefix + ".caught", "delay")
        stop_and_examine(prefix, session, pairs, "failed")
        fact(prefix + ".reply", read_line(sock))
    else:
        held = [HeldAtExit(session.root), HeldAtExit(session.relay)]
        try:
            sock.sendall(b"PASS wrong\r\n")
            fact(prefix + ".reply", read_line(sock))
            first = first_to_exit(held)
            fact(prefix + ".caught", "exit" if first else "nothing exited")
            fact(prefix + ".held", {None: "", session.root: "root"}.get(
                first and first.pid, "relay"))
            for role, pid in (("failed", session.root), ("relay", session.relay)):
                examine("%s.%s" % (prefix, role), pid, pairs)
            fact(prefix + ".roles", "failed,relay")
            fact(prefix + ".keyside", " ".join(map(str, key_side(session))))
        finally:
            release(held)
    sock.close()


def other_roles(session):
    """The roles of the session's processes besides its root and relay, sorted."""
    return sorted("preauth" if uid_of(p) == POPA3D_UID else "helper" for p in session.others())


def settle(session, what, want, timeout=TIMEOUT):
    """Waits until the session's other processes have exactly the roles `want`; after
    `timeout`, goes on with whatever is there (the roles are recorded and judged)."""
    want = sorted(want)
    try:
        session.settle(what, lambda s: other_roles(s) == want, timeout)
    except ScenarioError:
        session.settle(what)


def examine_stages(top, pair, port, pairs, mode):
    """Holds a session at each stage on pair's implicit-TLS port and examines it
    (every key of pairs is searched for):
      hello.K   TCP connected, no ClientHello yet: the key side waits for the request
      a.K       TLS up, USER bob answered: pre-auth waits for PASS
      b.K       logged in, STAT answered: the mail-user process in TRANSACTION
      c.K       a wrong password: the failed-login process (see failed_login: `mode` is
                "daemon" or "inetd")
    Returns the sockets still open."""
    held = []
    k = pair.name

    s = tcp(port)
    held.append(s)
    sess = Session(top, s)
    # The root forks the relay and the pre-auth process before any TLS byte arrives;
    # the key holder's side waits for the relay's one request.
    settle(sess, "hello." + k, ["preauth"], 3)
    examine_session("hello." + k, sess, pairs, "root", before_handshake=True)

    s = greeted("a." + k, tls(port, pair))
    held.append(s)
    fact("a.%s.version" % k, s.version())
    fact("a.%s.cipher" % k, s.cipher()[0])
    fact("a.%s.fingerprint" % k, peer_fingerprint(s) == pair.fingerprint)
    fact("a.%s.user" % k, command(s, b"USER bob"))
    sess = Session(top, s)
    settle(sess, "a." + k, ["preauth"])
    examine_session("a." + k, sess, pairs, "root")

    s = greeted("b." + k, tls(port, pair))
    held.append(s)
    fact("b.%s.user" % k, command(s, b"USER bob"))
    fact("b.%s.pass" % k, command(s, b"PASS bobpw"))
    fact("b.%s.stat" % k, command(s, b"STAT"))
    sess = Session(top, s)
    settle(sess, "b." + k, [])
    examine_session("b." + k, sess, pairs, "mailuser")

    # A source address of its own: the first failure from it, the shortest delay.
    failed_login("c." + k, top, port, pair, pairs, "127.0.0.%d" % (20 + pairs.index(pair)), mode)
    return held


def stls_stage(top, pair, port, pairs):
    """d.K: a session on an STLS port after STLS and the handshake, CAPA answered: the
    fresh pre-auth process waits for USER. Returns its socket."""
    k = pair.name
    s = stls(port, pair, "d." + k)
    sess = Session(top, s)
    settle(sess, "d." + k, ["preauth"])
    examine_session("d." + k, sess, pairs, "root")
    return s


def quit_all(held):
    for s in held:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()


# ---------------------------------------------------------------------------------
# Scenarios.


def daemon_isolation():
    """Standalone daemon: implicit TLS and STLS listeners, for an ECDSA P-256 key and an
    RSA-2048 key; a session at each stage on each."""
    ec, rsa = Pair("ec", "ec"), Pair("rsa", "rsa")
    pairs = [ec, rsa]
    ports = {"ec": (1995, 1110), "rsa": (1996, 1111)}
    conf = "shutdown_timeout = 2\n"
    for pair in pairs:
        conf += listener(ports[pair.name][0], "implicit", pair)
        conf += listener(ports[pair.name][1], "stls", pair)
    d = start_daemon("daemon", conf)
    fact("popa3d.uid", POPA3D_UID)
    fact("bob.uid", pwd.getpwnam("bob").pw_uid)
    # Before any client: the daemon's children are its key holder(s).
    first = children(d.pid)
    fact("holder.before_clients", " ".join(map(str, first)))
    held = []
    for pair in pairs:
        implicit, starttls = ports[pair.name]
        held += examine_stages(d.pid, pair, implicit, pairs, "daemon")
        held.append(stls_stage(d.pid, pair, starttls, pairs))

    holders = key_holders(d.pid)
    fact("holder.by_tcp_rule", " ".join(map(str, holders)))
    for i, h in enumerate(holders):
        examine("holder" if i == 0 else "holder%d" % i, h, pairs, try_open=False)
    examine("daemon", d.pid, pairs, try_open=False)
    # Every process under the daemon was looked at.
    fact("unexamined", " ".join(str(p) for p in subtree(d.pid) if p not in EXAMINED))

    quit_all(held)
    wait_for("sessions to end", lambda: children(d.pid) == holders)
    fact("exit", stop(d))
    time.sleep(0.2)
    fact("holder.after_exit", " ".join(str(h) for h in holders if alive(h)))


def inetd_isolation():
    """inetd mode (systemd-socket-activate --inetd, top-level `tls`): each session
    spawns a key holder of its own for its handshake. Implicit TLS for both keys, STLS
    for the P-256 key."""
    ec, rsa = Pair("ec", "ec"), Pair("rsa", "rsa")
    pairs = [ec, rsa]
    ports = {"ec": (1995, 1110), "rsa": (1996, None)}
    tops = []
    for pair in pairs:
        implicit, starttls = ports[pair.name]
        for port, mode in ((implicit, "implicit"), (starttls, "stls")):
            if port is None:
                continue
            conf = write_config(
                "inetd-%d.toml" % port,
                'tls = "%s"\ntls_cert = "%s"\ntls_key = "%s"\n' % (mode, pair.cert, pair.key))
            p = spawn("activate-%d" % port, ["systemd-socket-activate", "--inetd", "-a",
                                              "-l", "%s:%d" % (HOST, port), POPA3D, "-c", conf])
            wait_listening(port, p)
            tops.append((port, p))
    fact("popa3d.uid", POPA3D_UID)
    fact("bob.uid", pwd.getpwnam("bob").pw_uid)
    by_port = dict(tops)
    held = []
    for pair in pairs:
        implicit, starttls = ports[pair.name]
        held += examine_stages(by_port[implicit].pid, pair, implicit, pairs, "inetd")
        if starttls:
            held.append(stls_stage(by_port[starttls].pid, pair, starttls, pairs))
    unexamined = []
    for _, p in tops:
        unexamined += [q for q in subtree(p.pid) if q != p.pid and q not in EXAMINED]
    fact("unexamined", " ".join(map(str, unexamined)))
    quit_all(held)
    for port, p in tops:
        wait_for("sessions on %d to end" % port, lambda p=p: not children(p.pid))
        fact("exit.%d" % port, stop(p))


class Files:
    """A certificate and key path pair for listener(), not made here."""

    def __init__(self, cert, key):
        self.cert, self.key = cert, key


def log_lines():
    """(priority, pid, text) of every line logged so far."""
    with open(SYSLOG, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    out = []
    for line in data.splitlines():
        head, sep, text = line.partition("]: ")
        if not sep or not head.startswith("<") or "popa3d[" not in head:
            continue
        pri = int(head[1:head.index(">")])
        out.append((pri, int(head.rsplit("[", 1)[1]), text))
    return out


def log_since(mark, pid):
    """The lines pid logged after the first `mark` lines, as `<PRI>text` joined by LF."""
    return "\n".join("<%d>%s" % (pri, text) for pri, p, text in log_lines()[mark:] if p == pid)


def trusting(*pairs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for pair in pairs:
        ctx.load_verify_locations(pair.cert)
    return ctx


def served(port, pairs, sock=None):
    """The name of the pair whose certificate a new connection to port (or the
    connected sock, which has not started TLS) is served, and ` greeted` if it got
    +OK."""
    s = trusting(*pairs).wrap_socket(sock or tcp(port), server_hostname="localhost")
    fp = peer_fingerprint(s)
    greeting = read_line(s)
    s.close()
    names = [p.name for p in pairs if p.fingerprint == fp]
    return (names[0] if names else "unknown") + (" greeted" if greeting.startswith(b"+OK") else "")


def reload():
    """SIGHUP with a new certificate and key, then with a certificate that does not
    match its key (test plan item 7)."""
    a, b, c = Pair("a", "ec"), Pair("b", "ec"), Pair("c", "ec")
    pairs = [a, b, c]
    live = Files(os.path.join(KEYDIR, "live.crt"), os.path.join(KEYDIR, "live.key"))
    a.install(live.cert, live.key)
    d = start_daemon("daemon", "shutdown_timeout = 2\n" + listener(1995, "implicit", live))
    h1 = children(d.pid)
    fact("holder.1", " ".join(map(str, h1)))
    fact("served.1", served(1995, pairs))

    old = greeted("old", trusting(*pairs).wrap_socket(tcp(1995), server_hostname="localhost"))
    fact("old.user", command(old, b"USER bob"))
    fact("old.pass", command(old, b"PASS bobpw"))
    fact("old.stat", command(old, b"STAT"))

    # Connected before the reload, its ClientHello only after: its channel is to the
    # old holder, which must still sign for it.
    pending = tcp(1995)
    wait_for("the pending session's relay", Session(d.pid, pending).look)

    b.install(live.cert, live.key)
    mark = len(log_lines())
    os.kill(d.pid, signal.SIGHUP)
    wait_for("reload 1", lambda: log_since(mark, d.pid))
    time.sleep(0.1)
    fact("hup.1.log", log_since(mark, d.pid))
    try:
        h2 = wait_for("a new key holder", lambda: [h for h in key_holders(d.pid) if h not in h1])
    except ScenarioError:
        h2 = []
    fact("holder.2", " ".join(map(str, h2)))
    fact("served.2", served(1995, pairs))
    # The old holder may wait for the channels it was given (the pending session's)
    # or leave them to children of its own; once they are answered it must be gone.
    fact("served.pending", served(1995, pairs, pending))
    try:
        wait_for("the old key holder to exit", lambda: not any(alive(h) for h in h1))
        fact("holder.1.gone", True)
    except ScenarioError:
        fact("holder.1.gone", False)
    try:
        # The pending session is ending too; then the new holder alone is left.
        wait_for("only the new key holder", lambda: key_holders(d.pid) == h2)
    except ScenarioError:
        pass
    fact("holders.after_1", " ".join(map(str, key_holders(d.pid))))
    fact("old.stat.after", command(old, b"STAT"))
    fact("old.quit", command(old, b"QUIT"))
    old.close()
    for i, h in enumerate(h2):
        examine("holder.2" if i == 0 else "holder.2.%d" % i, h, pairs, try_open=False)

    # Certificate c with key b: refused, b's pair stays.
    with open(c.cert, "rb") as f:
        cert_c = f.read()
    with open(live.cert + ".new", "wb") as f:
        f.write(cert_c)
    os.rename(live.cert + ".new", live.cert)
    mark = len(log_lines())
    os.kill(d.pid, signal.SIGHUP)
    try:
        wait_for("a CRIT line", lambda: any(
            pri & 7 == 2 and p == d.pid for pri, p, _ in log_lines()[mark:]))
    except ScenarioError:
        pass
    time.sleep(0.1)
    fact("hup.2.log", log_since(mark, d.pid))
    try:
        wait_for("only the running key holder", lambda: key_holders(d.pid) == h2)
    except ScenarioError:
        pass
    fact("holders.after_2", " ".join(map(str, key_holders(d.pid))))
    fact("served.3", served(1995, pairs))
    examine("daemon", d.pid, pairs, try_open=False)
    wait_for("sessions to end", lambda: children(d.pid) == key_holders(d.pid))
    fact("exit", stop(d))


def startup_errors():
    """A key or certificate that cannot be used stops `popa3d -D -F` before it listens."""
    a, b = Pair("a", "ec"), Pair("b", "ec")
    os.mkdir(os.path.join(KEYDIR, "dir.crt"))
    empty = os.path.join(KEYDIR, "empty.crt")
    with open(empty, "w") as f:
        f.write("no certificate here\n")
    garbage = os.path.join(KEYDIR, "garbage.key")
    with open(os.open(garbage, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    cases = [
        ("missing_key", a.cert, os.path.join(KEYDIR, "missing.key")),
        ("missing_cert", os.path.join(KEYDIR, "missing.crt"), a.key),
        ("mismatch", a.cert, b.key),
        ("cert_dir", os.path.join(KEYDIR, "dir.crt"), a.key),
        ("cert_empty", empty, a.key),
        ("key_garbage", a.cert, garbage),
    ]
    # Without -F too: the daemon goes into the background before it starts its key
    # holder, and the process started here must still exit 1 after the error.
    cases += [
        ("background_" + name, cert, key)
        for name, cert, key in cases
        if name in ("missing_key", "mismatch")
    ]
    for name, cert, key in cases:
        conf = write_config(name + ".toml", listener(1995, "implicit", Files(cert, key)))
        fact(name + ".cert", cert)
        fact(name + ".key", key)
        mark = len(log_lines())
        foreground = [] if name.startswith("background_") else ["-F"]
        p = spawn(name, [POPA3D, "-D", *foreground, "-c", conf])
        try:
            fact(name + ".exit", p.wait(TIMEOUT))
        except subprocess.TimeoutExpired:
            fact(name + ".exit", "still running: %s" % stop(p))
        fact(name + ".stderr", stderr_of(name))
        # The logger writes its file a moment after the line was sent.
        deadline = time.monotonic() + TIMEOUT
        while len(log_lines()) == mark and time.monotonic() < deadline:
            time.sleep(0.02)
        # In the background the error is the daemon child's: every new line.
        fact(name + ".log", "\n".join(
            "<%d>%s" % (pri, text) for pri, pid, text in log_lines()[mark:]
            if foreground == [] or pid == p.pid
        ))


SCENARIOS = {
    f.__name__: f for f in (daemon_isolation, inetd_isolation, reload, startup_errors)
}


if __name__ == "__main__":
    main(SCENARIOS)

#!/usr/bin/env python3
"""Python poplib sessions for tests/interop.rs, run inside scripts/sysenv.

    poplib_session.py MODE HOST OUT

Writes what the server answered into the directory OUT, one small file per fact, for
interop.rs to compare byte for byte (no JSON: the tests have no dependencies).  Every
file holds raw bytes; replies are poplib's, i.e. without their CRLF; the lines of
multi-line answers are joined with LF, dot-unstuffed by poplib, and end with LF.

MODE:
  session   bob/bobpw: welcome, user, pass, stat, list, list 1, uidl, uidl 1, retr each,
            top 1 0 and top 3 2, noop, dele 1, stat, rset, stat, last, dele 2, quit.
  logins    one session per case in LOGINS, each USER+PASS then QUIT when that
            worked: the PASS reply or the error text goes to login.NAME.
  short     bob/bobpw: welcome, stat, uidl, quit (used over IPv6).
  fetch     bob/bobpw: welcome, stat, uidl, retr each, quit.
  capa      CAPA before and after an AUTH PLAIN login with an initial response
            (capa.auth, auth.ir, capa.tx, stat, quit); AUTH PLAIN with a `+ `
            continuation (cont.challenge, cont.login, quit); AUTH PLAIN with a wrong
            password (wrong); bare AUTH (auth.list). Errors are written as their text.
"""
import base64
import os
import poplib
import sys

LOGINS = [
    ("bob-wrong", "bob", "wrong"),
    ("unknown", "nosuchuser", "bobpw"),
    ("carol", "carol", "carolpw"),
    ("locked", "locked", "lockedpw"),
    ("expired", "expired", "expiredpw"),
    ("nopass-empty", "nopass", ""),
    ("nopass-any", "nopass", "anything"),
]


def main():
    # poplib refuses lines over 2048 bytes ("line too long"); RFC 5322 allows 998 but
    # mail has longer ones, and popa3d has no limit.
    poplib._MAXLINE = 1 << 20
    mode, host, out = sys.argv[1:4]

    def put(name, data):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    def lines(resp):
        return b"".join(line + b"\n" for line in resp[1])

    if mode == "logins":
        for name, user, password in LOGINS:
            p = poplib.POP3(host, 110, timeout=30)
            try:
                p.user(user)
                put("login." + name, p.pass_(password))
                p.quit()
            except poplib.error_proto as e:
                put("login." + name, e.args[0])
            finally:
                p.close()
        return

    if mode == "capa":
        def fact(name, f):
            try:
                put(name, f())
            except poplib.error_proto as e:
                put(name, e.args[0])

        def capa_text():
            return "".join(
                (k + " " + " ".join(v)).rstrip() + "\n" for k, v in p.capa().items()
            )

        plain = base64.b64encode(b"\0bob\0bobpw").decode()
        p = poplib.POP3(host, 110, timeout=30)
        fact("capa.auth", capa_text)
        fact("auth.list", lambda: lines(p._longcmd("AUTH")))
        fact("auth.ir", lambda: p._shortcmd("AUTH PLAIN " + plain))
        fact("capa.tx", capa_text)
        fact("stat", lambda: "%d %d\n" % p.stat())
        fact("quit", p.quit)
        p.close()
        p = poplib.POP3(host, 110, timeout=30)
        fact("cont.challenge", lambda: p._shortcmd("AUTH PLAIN"))
        fact("cont.login", lambda: p._shortcmd(plain))
        fact("cont.quit", p.quit)
        p.close()
        p = poplib.POP3(host, 110, timeout=30)
        wrong = base64.b64encode(b"bob\0bob\0wrong").decode()
        fact("wrong", lambda: p._shortcmd("AUTH PLAIN " + wrong))
        p.close()
        return

    p = poplib.POP3(host, 110, timeout=30)
    put("welcome", p.getwelcome())
    put("user", p.user("bob"))
    put("pass", p.pass_("bobpw"))
    count, size = p.stat()
    put("stat", "%d %d\n" % (count, size))
    put("uidl", lines(p.uidl()))
    if mode == "short":
        put("quit", p.quit())
        return
    if mode == "fetch":
        for i in range(1, count + 1):
            put("retr.%d" % i, lines(p.retr(i)))
        put("quit", p.quit())
        return
    put("list", lines(p.list()))
    put("list.1", p.list(1))
    put("uidl.1", p.uidl(1))
    for i in range(1, count + 1):
        put("retr.%d" % i, lines(p.retr(i)))
    put("top.1.0", lines(p.top(1, 0)))
    put("top.3.2", lines(p.top(3, 2)))
    put("noop", p.noop())
    put("dele.1", p.dele(1))
    count, size = p.stat()
    put("stat.after-dele", "%d %d\n" % (count, size))
    try:
        p.retr(1)
        put("retr-deleted", "no error")
    except poplib.error_proto as e:
        put("retr-deleted", e.args[0])
    put("rset", p.rset())
    count, size = p.stat()
    put("stat.after-rset", "%d %d\n" % (count, size))
    put("last", p._shortcmd("LAST"))
    put("dele.2", p.dele(2))
    put("quit", p.quit())


if __name__ == "__main__":
    main()

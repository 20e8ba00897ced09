#!/usr/bin/env python3
"""Print the client bytes of one of the compliance sessions on stdout.

    session-script.py N               standard session for a mailbox of N messages
    session-script.py --stat          USER, PASS, STAT, QUIT (finds N)
    session-script.py --dele M [M..]  USER, PASS, DELE M for each M in order, QUIT

Every command ends in CRLF; nothing else is sent.  The standard session is:

    USER bob
    PASS bobpw
    STAT
    LIST
    UIDL
    for n = 1 .. N:  LIST n, UIDL n, TOP n 0, TOP n 1, TOP n 3, RETR n
    LAST
    QUIT

compliance/README.md documents the same format for the Rust tests, which build
these scripts themselves; keep the two in step.
"""

import sys

LOGIN = ["USER bob", "PASS bobpw"]


def standard(n):
    cmds = LOGIN + ["STAT", "LIST", "UIDL"]
    for i in range(1, n + 1):
        cmds += [
            "LIST %d" % i,
            "UIDL %d" % i,
            "TOP %d 0" % i,
            "TOP %d 1" % i,
            "TOP %d 3" % i,
            "RETR %d" % i,
        ]
    return cmds + ["LAST", "QUIT"]


def main(argv):
    if argv == ["--stat"]:
        cmds = LOGIN + ["STAT", "QUIT"]
    elif len(argv) >= 2 and argv[0] == "--dele" and all(a.isdigit() for a in argv[1:]):
        cmds = LOGIN + ["DELE %d" % int(a) for a in argv[1:]] + ["QUIT"]
    elif len(argv) == 1 and argv[0].isdigit():
        cmds = standard(int(argv[0]))
    else:
        sys.stderr.write(__doc__)
        return 2
    sys.stdout.buffer.write("".join(c + "\r\n" for c in cmds).encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

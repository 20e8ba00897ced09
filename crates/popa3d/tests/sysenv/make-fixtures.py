#!/usr/bin/env python3
"""Write the mailboxes of the real-client interop tests (tests/interop.rs).

    python3 crates/popa3d/tests/sysenv/make-fixtures.py [--check]

interop.mbox: content that every client under test (curl, fetchmail, getmail6, mpop,
    Python poplib) delivers byte for byte with the options used in interop.rs: dot
    lines, mbox From quoting, a long body line, blank and whitespace-only lines, 8-bit
    UTF-8 and Latin-1 bodies, a folded header, a multipart message with a binary
    attachment, a message with no body.  Every message starts with Return-Path,
    because getmail6 always writes a Return-Path first.
edge.mbox: content that some clients change (interop.rs documents which): NUL bytes,
    lone CR and CRLF inside lines, a 100 000-byte line, a 300-byte header without
    spaces, a message without Return-Path, raw 8-bit header text, a very long header.

With --check, compare instead of writing, and exit 1 on a difference.
"""
import base64
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def mbox(messages):
    """An mbox as popa3d reads it: From_ line, message, one blank separator line."""
    out = b""
    for i, message in enumerate(messages):
        assert message.endswith(b"\n")
        out += b"From alice@example.org Mon Jan  1 00:%02d:00 2024\n" % i + message + b"\n"
    return out


def headers(n, subject, extra=b"", return_path=True):
    return (
        (b"Return-Path: <alice@example.org>\n" if return_path else b"")
        + b"Date: Mon, 1 Jan 2024 00:%02d:00 +0000\n" % n
        + b"From: Alice <alice@example.org>\n"
        + b"To: Bob <bob@example.org>\n"
        + b"Subject: " + subject + b"\n"
        + b"Message-ID: <interop-%d@example.org>\n" % n
        + extra
    )


def interop():
    m1 = (
        b"Return-Path: <alice@example.org>\n"
        b"Received: from mail.example.org (mail.example.org [192.0.2.1])\n"
        b"\tby mx.example.org with ESMTP id 4F2A1\n"
        b"\tfor <bob@example.org>; Mon, 1 Jan 2024 00:00:00 +0000\n"
        + headers(1, b"dots, blank lines and white space", return_path=False)
        + b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        b"Hello Bob,\n"
        b"\n"
        b".\n"
        b"..\n"
        b".. two dots\n"
        b".leading dot\n"
        b". dot space\n"
        b"\n"
        b"\n"
        b"trailing spaces   \n"
        b"trailing tab\t\n"
        b"\tleading tab\n"
        b"   \n"
        b"Gr\xc3\xbc\xc3\x9fe, na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 \xe2\x9c\x93\n"
        b"-- \n"
        b"Alice\n"
    )
    m2 = (
        headers(2, b"mbox From quoting")
        + b"\n"
        b"The next lines start with From, quoted or not:\n"
        b">From the mboxo quoting\n"
        b">>From the mboxrd quoting\n"
        b"From  the middle of a paragraph (not after a blank line)\n"
        b"From: not a header\n"
        b"\n"
        b">From after a blank line\n"
        b"end\n"
    )
    long_line = (b"A long line: " + b"0123456789abcdefghijklmnopqrstuvwxyz" * 60)[:2100] + b"\n"
    attachment = base64.encodebytes(bytes(range(256)) * 4)
    m3 = (
        headers(
            3,
            b"a long subject that is folded over several lines because it is\n"
            b" long, and a long line and an attachment in a multipart message",
            b"MIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="=-=-="\n',
        )
        + b"\n"
        b"This is a multi-part message in MIME format.\n"
        b"\n"
        b"--=-=-=\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n" + long_line + b"\n"
        b"--=-=-=\n"
        b'Content-Type: application/octet-stream; name="bytes.bin"\n'
        b"Content-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="bytes.bin"\n'
        b"\n" + attachment + b"--=-=-=--\n"
    )
    # No body: popa3d keeps the header-ending blank line.
    m4 = headers(4, b"no body") + b"\n"
    m5 = (
        headers(
            5,
            b"Latin-1 body",
            b"MIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=iso-8859-1\n"
            b"Content-Transfer-Encoding: 8bit\n",
        )
        + b"\n"
        b"Caf\xe9, na\xefve, \xa9 2024, \xff\n"
    )
    return mbox([m1, m2, m3, m4, m5])


def edge():
    return mbox(
        [
            headers(11, b"NUL bytes") + b"\nbefore\x00after\n\x00\nend\n",
            headers(12, b"CR bytes") + b"\nlone\rCR\nCRLF line\r\n\r\nend\n",
            headers(13, b"a 100000-byte line") + b"\n" + b"y" * 100_000 + b"\nend\n",
            headers(14, b"a 300-byte header", b"X-Long: " + b"x" * 300 + b"\n") + b"\nend\n",
            headers(15, b"no Return-Path", return_path=False) + b"\nend\n",
            headers(16, b"8-bit header: Gr\xc3\xbc\xc3\x9fe") + b"\nend\n",
            headers(17, b"control bytes") + b"\nesc\x1b del\x7f ff\x0c vt\x0b\nend\n",
        ]
    )


def main():
    check = sys.argv[1:] == ["--check"]
    bad = False
    for name, data in [("interop.mbox", interop()), ("edge.mbox", edge())]:
        path = HERE / name
        if check:
            if not path.exists() or path.read_bytes() != data:
                print(f"{path} is out of date: run {sys.argv[0]}", file=sys.stderr)
                bad = True
        else:
            path.write_bytes(data)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write every mbox fixture in compliance/fixtures/ from the definitions below.

The fixtures are test data for the differential tests against Debian's popa3d:
each one is small (apart from the deliberate 1 MB and 100 kB lines), named for
the single parser rule it exercises, and generated here so that anyone can see
exactly which bytes are in it and why.  The output is deterministic: running
this twice gives byte-identical files.  Python 3 standard library only.

    compliance/gen-fixtures.py            rewrite compliance/fixtures/*.mbox
    compliance/gen-fixtures.py --check    exit 1 if a fixture differs from what
                                          would be written, or if
                                          compliance/golden/MANIFEST lists other
                                          fixtures or other sha256 sums (the
                                          goldens then need re-recording)
    compliance/gen-fixtures.py --list     print "name<TAB>description" lines
    compliance/gen-fixtures.py --markdown print the fixture table for README.md

A fixture whose name starts with "rejected-" is one popa3d refuses to load
(`-ERR` after PASS).  The missing-spool case has no file; the harness spells it
`-` and the goldens call it `missing`.
"""

import hashlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
MANIFEST = HERE / "golden" / "MANIFEST"


def lines(*parts):
    """Join byte strings, each one a line, adding the LF terminator."""
    return b"".join(p + b"\n" for p in parts)


def from_(who, day=1):
    """A From_ line (with its LF) for sender `who`."""
    return b"From %s@example.org Mon Jan %2d 00:00:00 2024\n" % (who, day)


FIXTURE_LIST = []


def fixture(description):
    """Register the decorated function as the generator of one fixture."""

    def register(fn):
        name = fn.__name__.replace("_", "-")
        FIXTURE_LIST.append((name, description, fn))
        return fn

    return register


# --------------------------------------------------------------------------
# Reference mailboxes copied from the research notes


@fixture("The 389-byte bob mailbox of popa3d.md §9, verbatim (2 messages: 211 and 96 bytes).")
def basic():
    return (
        b"From alice@example.org Mon Jan  1 00:00:00 2024\n"
        b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Message-ID: <one@example.org>\n"
        b"Subject: first\n"
        b"\n"
        b"Hello bob.\n"
        b".leading dot line\n"
        b"..two dots\n"
        b">From escaped\n"
        b"last line\n"
        b"\n"
        b"From carol@example.org Tue Jan  2 00:00:00 2024\n"
        b"Date: Tue, 2 Jan 2024 00:00:00 +0000\n"
        b"Subject: second\n"
        b"\n"
        b"body2 line1\n"
        b"body2 line2\n"
        b"body2 line3\n"
        b"\n"
    )


@fixture("features.md Appendix A: TAB-continued Received:, `From ` in a body without a "
         "blank line before it, no trailing blank line (UIDLs 5799e1dc4014bc05, "
         "0c59bbe867e3dbaf; sizes 339, 176).")
def features_appendix_a():
    return (
        b"From alice@example.org Mon Jan  1 00:00:00 2024\n"
        b"Received: from mx.example.org (mx.example.org [192.0.2.1])\n"
        b"\tby mail.example.net with ESMTP id ABC123\n"
        b"\tfor <bob@example.net>; Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"From: Alice <alice@example.org>\n"
        b"To: bob@example.net\n"
        b"Message-ID: <msg1@example.org>\n"
        b"Subject: first\n"
        b"\n"
        b"Hello\n"
        b"From the body line\n"
        b".dot line\n"
        b"\n"
        b"From carol@example.org Mon Jan  1 00:01:00 2024\n"
        b"Date: Mon, 1 Jan 2024 00:01:00 +0000\n"
        b"From: Carol <carol@example.org>\n"
        b"Message-ID: <msg2@example.org>\n"
        b"Delivered-To: bob@example.net\n"
        b"Subject: second, no Received\n"
        b"\n"
        b"Body two\n"
    )


@fixture("One plain message with a body and the usual trailing blank line.")
def single():
    return from_(b"alice") + lines(
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000",
        b"Message-ID: <single@example.org>",
        b"Subject: single",
        b"",
        b"line 1",
        b"line 2",
        b"line 3",
        b"line 4",
        b"",
    )


# --------------------------------------------------------------------------
# Dot-stuffing and escaping


@fixture("Dot lines: `.`, `..`, `...`, `. `, `.x` in the body, a header starting with "
         "`.`, a body that is only `.`, and a last message whose last line is `.` (LF at EOF).")
def dot_lines():
    return (
        from_(b"alice")
        + lines(
            b"Subject: dots",
            b".X-Dotted: a header line that starts with a dot",
            b"",
            b".",
            b"..",
            b"...",
            b". space after dot",
            b".x",
            b"text between",
            b".",
            b"",
        )
        + from_(b"bob")
        + lines(b"Subject: body is a single dot", b"", b".", b"")
        + from_(b"carol")
        + lines(b"Subject: dot at EOF", b"", b"line", b".")
    )


@fixture("Last line of the file is `.` without a LF.")
def dot_eof_no_lf():
    return (
        from_(b"alice")
        + lines(b"Subject: first", b"", b"body", b"")
        + from_(b"bob")
        + lines(b"Subject: dot without LF", b"", b"line")
        + b"."
    )


@fixture("`>From ` and `>>From ` lines (never unescaped), at body start, mid-body, after a "
         "blank line, and as the last line.")
def from_escaped():
    return (
        from_(b"alice")
        + lines(
            b"Subject: escaped",
            b">From: a header-looking escaped line",
            b"",
            b">From the start of the body",
            b">>From double escaped",
            b"middle",
            b">From mid-body",
            b"",
            b">From after a blank line",
            b"",
        )
        + from_(b"bob")
        + lines(b"Subject: second", b"", b"body", b">From last line")
    )


# --------------------------------------------------------------------------
# Missing final LF


@fixture("popa3d.md §9.11 quirk: one message whose last line has no LF (LIST `1 41`, RETR "
         "sends 42 bytes).")
def no_final_lf():
    return b"From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody without final newline"


@fixture("Two messages; the last body line of the last one has no LF.")
def no_final_lf_2msg():
    return (
        from_(b"alice")
        + lines(b"Subject: first", b"Message-ID: <nolf1@example.org>", b"", b"body one", b"")
        + from_(b"bob")
        + lines(b"Subject: second", b"", b"body two")
        + b"last line without newline"
    )


@fixture("Two messages; the last one is header-only and its last header (a hashed "
         "Message-ID:) has no LF.")
def no_final_lf_header():
    return (
        from_(b"alice")
        + lines(b"Subject: first", b"", b"body one", b"")
        + from_(b"bob")
        + lines(b"Subject: header without newline")
        + b"Message-ID: <nolf@example.org>"
    )


# --------------------------------------------------------------------------
# Foreign line endings and bytes


@fixture("CRLF-format spool: CRLF lines are never blank, so the whole file is one "
         "message with no header/body split; the second `From ` and `Date:` fall in its "
         "header block.")
def crlf():
    return (
        b"From a@b Mon Jan  1 00:00:00 2024\r\n"
        b"Subject: crlf one\r\n"
        b"Message-ID: <crlf1@example.org>\r\n"
        b"\r\n"
        b"body one\r\n"
        b".dot\r\n"
        b"\r\n"
        b"From c@d Mon Jan  1 00:00:00 2024\r\n"
        b"Date: Tue, 2 Jan 2024 00:00:00 +0000\r\n"
        b"Subject: crlf two\r\n"
        b"\r\n"
        b"body two\r\n"
    )


@fixture("NUL bytes: in a From_ line, in header values and names, a header line "
         "starting with NUL, in a hashed Message-ID:, in body lines, a NUL-only line, "
         "NUL before `From`.")
def nul_bytes():
    return (
        from_(b"alice")
        + lines(
            b"Subject: nul\0in subject",
            b"Message-ID: <nul\0id@example.org>",
            b"X-Nul\0Name: value",
            b"\0leading NUL header line",
            b"",
            b"body\0line",
            b"\0",
            b"",
            b"\0From after a blank line is not a From_ line",
            b".\0dot then NUL",
            b"\0\0\0",
            b"",
        )
        + b"From bob\0nul@example.org Mon Jan  1 00:00:00 2024\n"
        + lines(b"\0Date: NUL first, not a Date: header", b"Date: real date", b"", b"\0")
    )


@fixture("Lone CR bytes in an LF spool: CR mid-line, CR-only header line, `\\r\\n` where "
         "the header/body blank line should be (not blank, so headers go on), 8-bit bytes.")
def cr_bytes():
    return (
        from_(b"alice")
        + lines(
            b"Subject: lone\rCR",
            b"\r",
            b"Date: after a CR-only line",
            b"\r",
            b"still headers",
            b"",
            b"body\r",
            b"\rstarts with CR",
            b"high bytes \x80\x9f\xa0\xff",
            b"",
        )
        + from_(b"bob")
        + lines(b"Subject: second", b"", b"body two\r", b"")
    )


# --------------------------------------------------------------------------
# Long lines and buffer boundaries


def pattern(n, first=b""):
    """n bytes: `first` then a repeating printable pattern (no LF, no CR)."""
    unit = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    body = (unit * (n // len(unit) + 1))[: n - len(first)]
    return first + body


@fixture("One message whose body is a single 1,000,000-byte line (crosses the 64 KiB "
         "parse blocks and the 32 KiB RETR chunks).")
def long_line_1mb():
    return (
        from_(b"alice")
        + lines(b"Subject: one long body line", b"")
        + pattern(1_000_000)
        + b"\n"
    )


@fixture("One message whose 2nd body line is 1,000,000 bytes starting with `.` (stuffed "
         "once); TOP n 1 stops just before it.")
def long_dot_line_1mb():
    return (
        from_(b"alice")
        + lines(b"Subject: long dot line", b"", b"first")
        + pattern(1_000_000, b".")
        + b"\n"
        + lines(b"last")
    )


@fixture("A 100,000-byte Received: header (LF included) starting 4 bytes before offset "
         "65536, so its name straddles the first 64 KiB block boundary and the line "
         "also spans the next one (131072); Date:/Message-ID: after it are not hashed.")
def long_received_100k():
    received_at = 65536 - 4
    msg1_head = from_(b"alice") + lines(
        b"Subject: padding before the long header",
        b"Message-ID: <pad@example.org>",
        b"",
    )
    msg2_from = from_(b"bob")
    # Pad message 1's body (LF-terminated lines, then the separator) to land exactly.
    pad_total = received_at - len(msg1_head) - len(b"\n") - len(msg2_from)
    line = pattern(71, b"pad ") + b"\n"
    body = line * (pad_total // len(line) - 1)
    body += pattern(pad_total - len(body) - 1, b"tail ") + b"\n"
    out = msg1_head + body + b"\n" + msg2_from
    assert len(out) == received_at, (len(out), received_at)
    received = pattern(100_000 - 1, b"Received: from relay by mx; ") + b"\n"
    out += received + lines(
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000",
        b"Message-ID: <long@example.org>",
        b"Received: the second one, not hashed",
        b"Delivered-To: bob@example.org",
        b"Subject: long received",
        b"",
        b"body two",
        b"",
    )
    assert len(out) - len(received) < 131072 < len(out)
    return out


# --------------------------------------------------------------------------
# Header and body shapes


@fixture("Message 2 is header-only (no blank line at all) and ends the file.")
def header_only():
    return (
        from_(b"alice")
        + lines(b"Subject: first", b"", b"body", b"")
        + from_(b"bob")
        + lines(b"Subject: header only", b"Date: Mon, 1 Jan 2024 00:00:00 +0000")
    )


@fixture("A single header-only message (no blank line) at EOF; TOP sends it whole.")
def header_only_single():
    return from_(b"alice") + lines(
        b"Subject: only headers",
        b"Message-ID: <ho@example.org>",
        b"X-Third: three",
        b"X-Fourth: four",
    )


@fixture("Messages with headers and the blank line but no body (the blank line is kept "
         "in the size), the last one at EOF.")
def no_body():
    return (
        from_(b"alice")
        + lines(b"Subject: no body 1", b"")
        + from_(b"bob")
        + lines(b"Subject: no body 2", b"Message-ID: <nb2@example.org>", b"")
        + from_(b"carol")
        + lines(b"Subject: no body 3", b"")
    )


@fixture("popa3d.md §9.11: a message made only of a blank line (LIST size 2), a normal "
         "one, and a last From_ line followed only by a blank line.")
def blank_only():
    return (
        from_(b"alice")
        + b"\n"
        + from_(b"bob")
        + lines(b"Subject: normal", b"", b"body", b"")
        + from_(b"carol")
        + b"\n"
    )


@fixture("The file ends with two blank lines after the last body line (only one is "
         "removed as separator).")
def two_trailing_blanks():
    return (
        from_(b"alice")
        + lines(b"Subject: first", b"", b"body one", b"")
        + from_(b"bob")
        + lines(b"Subject: second", b"", b"body two", b"", b"")
    )


@fixture("Body whose last line is blank before the separator; body whose last line is a "
         "CR-only line; last message ending `body\\n\\n` at EOF.")
def body_last_blank():
    return (
        from_(b"alice")
        + lines(b"Subject: blank last body line", b"", b"body", b"", b"")
        + from_(b"bob")
        + lines(b"Subject: CR-only last body line", b"", b"body", b"\r", b"")
        + from_(b"carol")
        + lines(b"Subject: blank at EOF", b"", b"body", b"")
    )


# --------------------------------------------------------------------------
# From_ line detection


@fixture("`From` lookalikes after blank lines that do NOT split (`From`, `From\\t`, "
         "`Fromage`, `from `, ` From `, `>From `), `From ` after a non-blank line, then a "
         "real `From ` after a blank line inside the body, which DOES split (2 messages).")
def from_lookalikes():
    return (
        from_(b"alice")
        + lines(
            b"Subject: lookalikes",
            b"",
            b"paragraph",
            b"",
            b"From",
            b"",
            b"From\ttab",
            b"",
            b"Fromage",
            b"",
            b"from lowercase@example.org Mon Jan  1 00:00:00 2024",
            b"",
            b" From leading-space@example.org Mon Jan  1 00:00:00 2024",
            b"",
            b">From escaped@example.org Mon Jan  1 00:00:00 2024",
            b"text",
            b"From mid-body after a non-blank line",
            b"",
            b"From body-split@example.org this line starts a new message",
            b"Subject: lines after the split are headers",
            b"",
            b"split body",
            b"",
        )
    )


@fixture("Odd but accepted From_ lines: `From ` alone, `From ` ending in CR, a 10,000-byte "
         "From_ line, `From` followed by two spaces.")
def from_line_variants():
    return (
        b"From \n"
        + lines(b"Subject: bare From_ line", b"", b"one", b"")
        + b"From cr@example.org Mon Jan  1 00:00:00 2024\r\n"
        + lines(b"Subject: From_ ends in CR", b"", b"two", b"")
        + b"From "
        + pattern(10_000 - 6, b"long@example.org ")
        + b"\n"
        + lines(b"Subject: long From_ line", b"", b"three", b"")
        + b"From  two-spaces@example.org\n"
        + lines(b"Subject: two spaces", b"", b"four", b"")
    )


# --------------------------------------------------------------------------
# Many messages


@fixture("1000 small messages of varied shape (hashed headers or none, dots, 0-4 body "
         "lines, header-only ones); one From_ line (message 476) is padded to start 2 "
         "bytes before offset 65536.")
def many_1000():
    msgs = []
    for i in range(1, 1001):
        msg = from_(b"sender%d" % i, 1 + i % 28)
        hdr = [b"Subject: message %d" % i]
        if i % 3 == 0:
            hdr.append(b"Message-ID: <m%d@example.org>" % i)
        if i % 5 == 0:
            hdr.insert(0, b"Received: from host%d by mx" % (i % 7))
        if i % 4 == 0:
            hdr.append(b"Date: Mon, 1 Jan 2024 00:%02d:00 +0000" % (i % 60))
        if i % 11 == 0:
            hdr.append(b"Delivered-To: bob@example.org")
        if i % 13 == 0:
            # Header-only: no blank line ends the headers; the blank line before the
            # next From_ does, and is kept.
            msgs.append(msg + lines(*hdr) + b"\n")
            continue
        body = [b"body line %d of %d" % (j, i) for j in range(1, i % 5 + 1)]
        if i % 9 == 0:
            body.append(b".dotted %d" % i)
        msgs.append(msg + lines(*hdr, b"", *body, b""))
    # Find the first message starting past 65534, then pad the body of the message
    # two before it so that the one just before it starts at exactly 65534.
    target = 65536 - 2
    start = 0
    for k, msg in enumerate(msgs):
        if start > target:
            break
        start += len(msg)
    starts = [sum(len(m) for m in msgs[:j]) for j in range(k + 1)]
    need = target - starts[k - 1]
    assert need >= 0 and msgs[k - 2].endswith(b"\n\n")
    pad = pattern(71, b"pad ") + b"\n"
    filler = pad * (need // len(pad))
    rest = need - len(filler)
    if rest:
        filler += pattern(rest - 1, b"pad") + b"\n" if rest > 1 else b"\n"
    msgs[k - 2] = msgs[k - 2][:-1] + filler + b"\n"
    out = b"".join(msgs)
    assert out[target:target + 5] == b"From ", out[target - 2:target + 5]
    return out


# --------------------------------------------------------------------------
# UIDL


@fixture("Duplicate UIDLs: two messages sharing only `Message-ID: <same@x>` "
         "(5db010289f5f659d), two byte-identical deliveries, four messages with none of "
         "the hashed headers (d98c1dd404b2008f), one with no headers at all.")
def uidl_duplicates():
    delivery = from_(b"twin") + lines(
        b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000",
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000",
        b"Message-ID: <twin@example.org>",
        b"Subject: identical delivery",
        b"",
        b"same body",
        b"",
    )
    return (
        from_(b"alice")
        + lines(b"Message-ID: <same@x>", b"Subject: first with same id", b"", b"one", b"")
        + from_(b"bob")
        + lines(b"Subject: second with same id", b"Message-ID: <same@x>", b"", b"two", b"")
        + delivery
        + delivery
        + from_(b"carol")
        + lines(b"Subject: no hashed headers", b"", b"five", b"")
        + from_(b"dave")
        + lines(b"Subject: no hashed headers either", b"To: bob@example.org", b"", b"six", b"")
        + from_(b"erin")
        + lines(b"From: Erin <erin@example.org>", b"X-Delivery: not the hashed name", b"",
                b"Date: in the body is not hashed", b"")
        + from_(b"frank")
        + lines(b"Subject: header only, no hashed headers")
        + b"\n"
        + from_(b"grace")
        + lines(b"", b"no headers at all", b"")
    )


@fixture("UIDL header selection (popa3d.md §4.3, §9.4): case rules, continuation lines, "
         "first Received: only, Date:/Message-ID: only before Received:, X-Delivery-ID: "
         "needs an uppercase X, every Delivered-To:, near-miss header names.")
def uidl_headers():
    return (
        # 1: the §9.4 experiment.
        from_(b"alice")
        + lines(
            b"DATE: Mon, 1 Jan 2024 00:00:00 +0000",
            b"message-id: <lower@example.org>",
            b" continued message-id",
            b"x-delivery-id: lower",
            b"X-DELIVERY-ID: upper",
            b"RECEIVED: first",
            b"\tcontinuation of the first received",
            b"Received: second",
            b"Date: after received",
            b"Message-ID: <after@received>",
            b"Delivered-To: one@example.org",
            b"Delivered-To: two@example.org",
            b"Subject: uidl 1",
            b"",
            b"body",
            b"",
        )
        # 2: lowercase first letters.
        + from_(b"bob")
        + lines(
            b"received: lowercase first received",
            b"date: not hashed, after received",
            b"delivered-to: lowercase delivered-to",
            b"mESSAGE-iD: <odd@case> not hashed, after received",
            b"",
            b"body",
            b"",
        )
        # 3: continuation inheritance.
        + from_(b"carol")
        + lines(
            b"Subject: not hashed",
            b" continuation of subject, not hashed",
            b"Date: hashed",
            b" space continuation of date",
            b"\ttab continuation of date",
            b"X-Other: not hashed",
            b"\tnot hashed either",
            b"X-Delivery-Id: <mixed case after uppercase X>",
            b"  two-space continuation",
            b"",
            b"body",
            b"",
        )
        # 4: near misses.
        + from_(b"dave")
        + lines(
            b"Date :space before colon",
            b"Dates: plural",
            b"Message-IDs: plural",
            b"Received-SPF: pass",
            b"X-Delivery-ID-Extra: longer name",
            b"Delivered-To-X: longer name",
            b"Date:no space after colon",
            b"Message-ID:<nospace@example.org>",
            b"",
            b"body",
            b"",
        )
        # 5: hashed names only in the body.
        + from_(b"erin")
        + lines(
            b"Subject: hashed names only in body",
            b"",
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000",
            b"Received: body",
            b"Message-ID: <body@example.org>",
            b"Delivered-To: body",
            b"",
        )
        # 6: a continuation line as the first header line.
        + from_(b"frank")
        + lines(b" leading continuation line", b"\tand another", b"Date: then a date", b"",
                b"body", b"")
        # 7: Date before Received, then a second Date and Message-ID.
        + from_(b"grace")
        + lines(
            b"Message-ID: <before@received>",
            b"Date: before received",
            b"Received: the first",
            b" its continuation",
            b"Received: the second",
            b" continuation of the second",
            b"Date: second date",
            b"X-Delivery-ID: after received",
            b"Delivered-To: after received",
            b"",
            b"body",
            b"",
        )
        # 8: whitespace-only header lines.
        + from_(b"heidi")
        + lines(b"Message-ID: <ws@example.org>", b" ", b"\t", b"Subject: s", b" ", b"",
                b"body", b"")
    )


# --------------------------------------------------------------------------
# Files popa3d refuses to load


@fixture("REJECTED: the file starts with a blank line before the first From_ line.")
def rejected_leading_lf():
    return b"\n" + from_(b"alice") + lines(b"Subject: x", b"", b"body", b"")


@fixture("REJECTED: no From_ line anywhere.")
def rejected_no_from():
    return lines(b"Subject: x", b"", b"body", b"")


@fixture("REJECTED: the first line is `from ` (lowercase), so there is no From_ line.")
def rejected_lowercase_from():
    return b"from alice@example.org Mon Jan  1 00:00:00 2024\n" + lines(
        b"Subject: x", b"", b"body", b""
    )


@fixture("REJECTED: two consecutive From_ lines at the start.")
def rejected_two_from():
    return from_(b"alice") + from_(b"bob") + lines(b"Subject: x", b"", b"body", b"")


@fixture("REJECTED: a valid message, then two consecutive From_ lines.")
def rejected_two_from_later():
    return (
        from_(b"alice")
        + lines(b"Subject: ok", b"", b"body", b"")
        + from_(b"bob")
        + from_(b"carol")
        + lines(b"Subject: x", b"", b"body", b"")
    )


@fixture("REJECTED: a From_ line (with LF) is the last line of the file.")
def rejected_from_last_line():
    return from_(b"alice") + lines(b"Subject: x", b"", b"body", b"") + from_(b"bob")


@fixture("REJECTED: a From_ line without LF is the last line of the file.")
def rejected_from_last_line_no_lf():
    return from_(b"alice") + lines(b"Subject: x", b"", b"body", b"") + from_(b"bob")[:-1]


@fixture("The empty (0-byte) spool: +OK 0 0.")
def empty():
    return b""


# --------------------------------------------------------------------------


def generate():
    return {name: fn() for name, _, fn in FIXTURE_LIST}


def manifest_entries():
    """golden/MANIFEST's fixture lines as {name: [sha256, N]}."""
    entries = {}
    for line in MANIFEST.read_text().splitlines() if MANIFEST.exists() else []:
        if line and not line.startswith("#"):
            fields = line.split()
            entries[fields[0]] = fields[1:]
    return entries


def manifest_counts():
    return {name: fields[1] for name, fields in manifest_entries().items()}


def manifest_problems(files):
    """Compare golden/MANIFEST's fixture lines with the generated files."""
    if not MANIFEST.exists():
        return ["%s does not exist (run compliance/record-goldens.sh)" % MANIFEST]
    listed = {name: fields[0] for name, fields in manifest_entries().items()}
    want = {name + ".mbox": hashlib.sha256(data).hexdigest() for name, data in files.items()}
    want["missing"] = "-"
    problems = []
    for name in sorted(set(want) | set(listed)):
        if name not in listed:
            problems.append("MANIFEST lacks %s" % name)
        elif name not in want:
            problems.append("MANIFEST lists %s, which is no fixture" % name)
        elif listed[name] != want[name]:
            problems.append("MANIFEST sha256 of %s is stale" % name)
    return problems


def main(argv):
    files = generate()
    if argv == ["--list"]:
        for name, description, _ in FIXTURE_LIST:
            print("%s\t%s" % (name, description))
        return 0
    if argv == ["--markdown"]:
        counts = manifest_counts()
        print("| Fixture | Bytes | N | What it covers |")
        print("|---|---:|---:|---|")
        for name, description, _ in FIXTURE_LIST:
            print("| `%s.mbox` | %d | %s | %s |"
                  % (name, len(files[name]), counts.get(name + ".mbox", "?"), description))
        print("| `-` (golden name `missing`) | - | %s | No spool file at all: +OK 0 0. |"
              % counts.get("missing", "?"))
        return 0
    if argv == ["--check"]:
        problems = []
        for name, data in files.items():
            path = FIXTURES / (name + ".mbox")
            if not path.exists() or path.read_bytes() != data:
                problems.append("%s differs from the generator" % path.relative_to(HERE.parent))
        extra = {p.stem for p in FIXTURES.glob("*.mbox")} - set(files)
        problems += ["%s.mbox is not generated" % name for name in sorted(extra)]
        problems += manifest_problems(files)
        for problem in problems:
            print("gen-fixtures: " + problem, file=sys.stderr)
        if problems:
            print("gen-fixtures: run compliance/gen-fixtures.py and compliance/record-goldens.sh",
                  file=sys.stderr)
        return 1 if problems else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    FIXTURES.mkdir(exist_ok=True)
    for stale in FIXTURES.glob("*.mbox"):
        if stale.stem not in files:
            stale.unlink()
    for name, data in files.items():
        path = FIXTURES / (name + ".mbox")
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

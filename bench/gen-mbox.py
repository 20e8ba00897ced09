#!/usr/bin/env python3
"""Deterministic, realistic mbox generator for the popa3d-rs benchmark.

Writes N messages totalling about B bytes to OUT (python3 standard library only).
Same arguments and seed give byte-identical output.

    bench/gen-mbox.py --messages 100000 --bytes 1000000000 bench-data/x/bob
    bench/gen-mbox.py --smoke OUT          # 2000 messages, ~20 MB

Layout of every message (LF line endings):

    From alice.smith@example.org Mon Jan  1 00:03:12 2024
    <header block, ~1-3 KB: Return-Path, Delivered-To, 2-5 folded Received:,
     Authentication-Results, DKIM-Signature (long, folded), Date, From, To,
     Subject, Message-ID (unique), References, MIME headers, X-Mailer, ...>
    <blank line>
    <body: text lines of 40-78 chars in paragraphs; some lines start with ".",
     ">From " or (never after a blank line) "From "; about 0.5% of messages are
     multipart/mixed with a 100 KB-1 MB base64 attachment in 76-char lines>
    <blank separator line>

Speed: a text corpus and a base64 corpus are generated once; message bodies are
line-aligned slices of them, so 1 GB takes a few seconds.
"""

import argparse
import base64
import bisect
import math
import os
import random
import sys
import time

WORDS = (
    "the of and to a in is it you that he was for on are with as I his they be "
    "at one have this from or had by hot word but what some we can out other "
    "were all there when up use your how said an each she which do their time "
    "if will way about many then them write would like so these her long make "
    "thing see him two has look more day could go come did number sound no most "
    "people my over know water than call first who may down side been now find "
    "server mailbox message spool header release build deploy patch review "
    "meeting agenda quarterly budget invoice attached please regards thanks "
    "schedule tomorrow afternoon project update status report draft version "
    "customer support ticket issue resolved pending question answer network "
    "latency backup restore migration database index query cache memory disk "
    "café naïve Grüße déjà señor Zürich résumé "
    "e.g. i.e. etc. (see below) [1] [2] -- 42 2024 10:30 100% 3.5 #123 $99"
).split()

FIRST = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj "
         "Olivia Peggy Rupert Sybil Trent Victor Walter Yolanda Zoe").split()
LAST = ("Smith Jones Brown Taylor Wilson Davies Evans Thomas Johnson Roberts "
        "Walker Wright Robinson Thompson White Hughes Edwards Green Hall Wood").split()
DOMAINS = ("example.org example.com example.net mail.example.org lists.example.com "
           "corp.example.com news.example.net example.edu").split()
RELAYS = ("mx1.example.net mx2.example.net mail-out.example.org smtp.example.com "
          "relay7.example.edu mail-wr1-f54.example.com outbound.example.org "
          "filter3.example.net").split()
MAILERS = ("Mozilla Thunderbird 115.6.0", "Mutt/2.2.9 (2022-11-12)",
           "Microsoft Outlook 16.0", "Apple Mail (2.3774.300.61.1.2)",
           "Roundcube Webmail/1.6.5", "Evolution 3.46.4-2", "aerc 0.16.0")
SUBJECTS = ("Quarterly report", "Meeting tomorrow", "Invoice #{n}", "Build failed on main",
            "Re: server migration plan", "Your order {n} has shipped",
            "Weekly status update", "Lunch on Friday?", "[announce] release {n}",
            "Backup job finished with warnings", "Fwd: slides from the talk",
            "Question about the budget", "Ticket #{n}: mailbox not loading",
            "Holiday schedule", "Draft agreement - please review")
DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def rfc_date(t):
    g = time.gmtime(t)
    return "%s, %d %s %d %02d:%02d:%02d +0000" % (
        DOW[g.tm_wday], g.tm_mday, MON[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec)


def text_line(rng, lo=40, hi=78):
    target = rng.randint(lo, hi)
    words = []
    n = -1
    choice = rng.choice
    while n < target:
        w = choice(WORDS)
        words.append(w)
        n += len(w) + 1
    line = " ".join(words)
    if len(line) > hi:
        line = line[:hi].rstrip()
    return line


def make_text_corpus(rng, size):
    """Paragraphs of 40-78 char lines with mbox/POP edge cases mixed in.

    Guarantees: no line starting with "From " follows a blank line; the corpus
    starts with a normal line and ends with a blank line.
    Returns (bytes, sorted offsets of lines where a body may start)."""
    out = []
    total = 0
    while total < size:
        kind = rng.random()
        nl = rng.randint(2, 9)
        para = []
        for j in range(nl):
            r = rng.random()
            if kind < 0.12:                        # quoted block
                if r < 0.05:
                    line = ">From " + text_line(rng, 30, 66)  # mboxrd-style escape
                else:
                    line = "> " + text_line(rng, 38, 76)
            elif r < 0.010:
                line = "." + text_line(rng, 39, 77)   # needs dot-stuffing
            elif r < 0.013:
                line = "."                            # lone dot: must become ".."
            elif r < 0.015:
                line = ".." + text_line(rng, 38, 76)
            elif r < 0.020:
                line = ">From " + text_line(rng, 34, 72)
            elif r < 0.025 and j > 0:
                line = "From " + text_line(rng, 35, 73)  # not after a blank line
            else:
                line = text_line(rng)
            para.append(line)
        if rng.random() < 0.01:
            para.append("-- ")
            para.append("%s %s, %s" % (rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)))
        chunk = ("\n".join(para) + "\n\n").encode("utf-8")
        out.append(chunk)
        total += len(chunk)
    data = b"".join(out)
    starts = []
    pos = 0
    find = data.find
    while pos < len(data):
        nxt = find(b"\n", pos) + 1
        if data[pos] != 0x0A and not data.startswith(b"From ", pos):
            starts.append(pos)
        pos = nxt
    return data, starts


class Corpus:
    def __init__(self, rng, text_size, b64_size):
        self.rng = rng
        self.text, self.starts = make_text_corpus(rng, text_size)
        self.tmv = memoryview(self.text)
        raw = rng.randbytes(b64_size // 4 * 3)
        self.b64 = base64.encodebytes(raw)           # 76-char lines + LF
        self.b64_lines = len(self.b64) // 77
        self.b64flat = base64.b64encode(raw[:60000]).decode("ascii")

    def text_slice(self, size, parts):
        """Append line-aligned text of about `size` bytes to parts."""
        rng = self.rng
        text = self.text
        while size > 0:
            s = self.starts[rng.randrange(len(self.starts))]
            e = text.find(b"\n", s + size)
            if e < 0:
                e = len(text) - 1
            e += 1
            while e - s > 1 and text[e - 2] == 0x0A:   # do not end on a blank line
                e -= 1
            parts.append(self.tmv[s:e])
            size -= e - s

    def b64_slice(self, size, parts):
        rng = self.rng
        nlines = max(1, size // 77)
        while nlines > 0:
            first = rng.randrange(self.b64_lines)
            take = min(nlines, self.b64_lines - first)
            parts.append(self.b64[first * 77:(first + take) * 77])
            nlines -= take
        tail = base64.b64encode(rng.randbytes(rng.choice((10, 20, 31, 44))))
        parts.append(tail + b"\n")

    def token(self, n):
        i = self.rng.randrange(len(self.b64flat) - n)
        return self.b64flat[i:i + n]


def gen(out, messages, total_bytes, seed, progress):
    rng = random.Random(seed)
    t0 = time.perf_counter()
    corpus = Corpus(rng, text_size=4 << 20, b64_size=1200 << 10)

    # Attachments: about 0.5% of messages (at least one if there are >= 20),
    # 100 KB - 1 MB log-uniform, capped to 5% of the requested total.
    amax = min(1_000_000, max(2000, total_bytes // 20))
    amin = min(100_000, amax // 2)
    att = {}
    for i in range(messages):
        if rng.random() < 0.005:
            att[i] = int(math.exp(rng.uniform(math.log(amin), math.log(amax))))
    if not att and messages >= 20:
        att[messages // 2] = int(math.exp(rng.uniform(math.log(amin), math.log(amax))))
    att_left = sum(att.values())

    tmp = out + ".tmp"
    f = open(tmp, "wb", buffering=8 << 20)
    written = 0
    hdr_total = 0
    t = 1704067200                      # 2024-01-01 00:00:00 UTC
    prev_ids = []
    next_report = 0.0
    sigma = 0.6
    for i in range(messages):
        t += rng.randint(1, 600)
        first = rng.choice(FIRST)
        last = rng.choice(LAST)
        dom = rng.choice(DOMAINS)
        addr = "%s.%s@%s" % (first.lower(), last.lower(), dom)
        msgid = "<%d.%d.%012x@%s>" % (t, i, rng.getrandbits(48), dom)
        h = []
        h.append("From %s %s\n" % (addr, time.asctime(time.gmtime(t))))
        h.append("Return-Path: <%s>\n" % addr)
        h.append("X-Original-To: bob@example.net\nDelivered-To: bob@example.net\n")
        nrecv = rng.randint(2, 5)
        rt = t
        for k in range(nrecv):
            src = rng.choice(RELAYS)
            ip = "%d.%d.%d.%d" % (rng.choice((192, 198, 203)), rng.randint(0, 255),
                                  rng.randint(0, 255), rng.randint(1, 254))
            if k == 0:
                h.append("Received: from %s (%s [%s])\n\tby mail.example.net (Postfix) with ESMTPS id %012X\n"
                         "\tfor <bob@example.net>; %s (UTC)\n" % (src, src, ip, rng.getrandbits(48), rfc_date(rt)))
            elif k == nrecv - 1:
                h.append("Received: from [10.%d.%d.%d] (unknown [10.0.0.%d])\n\t(Authenticated sender: %s)\n"
                         "\tby %s (Postfix) with ESMTPSA id %010X;\n\t%s\n"
                         % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254),
                            rng.randint(1, 254), addr, src, rng.getrandbits(40), rfc_date(rt)))
            else:
                h.append("Received: by %s with SMTP id %s;\n        %s\n"
                         % (src, corpus.token(24).lower().replace("+", "x").replace("/", "y"),
                            rfc_date(rt)))
            rt -= rng.randint(0, 5)
        if rng.random() < 0.8:
            h.append("Authentication-Results: mail.example.net;\n\tdkim=pass (2048-bit key; unprotected) "
                     "header.d=%s header.i=@%s header.b=\"%s\";\n\tspf=pass (mail.example.net: domain of %s "
                     "designates %s as permitted sender) smtp.mailfrom=%s;\n\tdmarc=pass (p=none dis=none) "
                     "header.from=%s\n" % (dom, dom, corpus.token(8), addr, ip, dom, dom))
            b = corpus.token(rng.choice((172, 344, 344, 512)))
            h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\n\ts=sel%d; t=%d; "
                     "x=%d;\n\th=from:to:cc:subject:date:message-id:reply-to:mime-version:\n\t"
                     " content-type:content-transfer-encoding;\n\tbh=%s=;\n\tb=%s\n"
                     % (dom, rng.randint(1, 9), t, t + 604800, corpus.token(43),
                        "\n\t ".join(b[j:j + 70] for j in range(0, len(b), 70))))
        if rng.random() < 0.3:
            h.append("X-Spam-Status: No, score=-%d.%d required=5.0 tests=BAYES_00,DKIM_SIGNED,\n"
                     "\tDKIM_VALID,DKIM_VALID_AU,RCVD_IN_DNSWL_NONE,SPF_HELO_NONE,SPF_PASS\n"
                     "\tautolearn=ham autolearn_force=no version=3.4.6\n" % (rng.randint(0, 9), rng.randint(0, 9)))
        h.append("Date: %s\n" % rfc_date(t))
        h.append("From: %s %s <%s>\n" % (first, last, addr))
        h.append("To: Bob Example <bob@example.net>\n")
        if rng.random() < 0.25:
            h.append("Cc: %s %s <%s.%s@%s>,\n %s %s <%s.%s@%s>\n" % (
                rng.choice(FIRST), rng.choice(LAST), "carol", "jones", rng.choice(DOMAINS),
                rng.choice(FIRST), rng.choice(LAST), "dave", "brown", rng.choice(DOMAINS)))
        subj = rng.choice(SUBJECTS).format(n=rng.randint(100, 99999))
        reply = prev_ids and rng.random() < 0.35
        if reply:
            subj = "Re: " + subj
        h.append("Subject: %s\n" % subj)
        h.append("Message-ID: %s\n" % msgid)
        if reply:
            refs = prev_ids[-rng.randint(1, len(prev_ids)):]
            h.append("In-Reply-To: %s\nReferences: %s\n" % (refs[-1], "\n ".join(refs)))
        prev_ids.append(msgid)
        if len(prev_ids) > 8:
            del prev_ids[0]
        if rng.random() < 0.2:
            lst = rng.choice(("dev", "announce", "users", "ops"))
            h.append("List-Id: %s list <%s.lists.example.com>\nList-Unsubscribe: "
                     "<mailto:%s-request@lists.example.com?subject=unsubscribe>,\n "
                     "<https://lists.example.com/mailman/options/%s>\nPrecedence: list\n"
                     % (lst, lst, lst, lst))
        if rng.random() < 0.5:
            h.append("User-Agent: %s\n" % rng.choice(MAILERS))
        else:
            h.append("X-Mailer: %s\n" % rng.choice(MAILERS))
        h.append("MIME-Version: 1.0\n")

        asize = att.get(i)
        boundary = "=_%08x%08x" % (i, rng.getrandbits(32))
        if asize:
            h.append('Content-Type: multipart/mixed;\n boundary="%s"\n\n' % boundary)
        else:
            h.append("Content-Type: text/plain; charset=utf-8; format=flowed\n"
                     "Content-Transfer-Encoding: 8bit\n\n")
        head = "".join(h).encode("utf-8")

        # Text size: spread the remaining budget over the remaining messages.
        left = messages - i
        hdr_avg = (hdr_total / i) if i else 2200.0
        per_msg = (total_bytes - written - att_left) / left - hdr_avg - 1
        f_ = min(4.0, max(0.2, rng.lognormvariate(-sigma * sigma / 2, sigma)))
        tsize = max(200, int(per_msg * f_))

        parts = [head]
        if asize:
            att_left -= asize
            fname = "%s-%d.pdf" % (rng.choice(("report", "scan", "slides", "invoice")), i)
            parts.append(("This is a multi-part message in MIME format.\n\n--%s\n"
                          "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                          % boundary).encode())
            corpus.text_slice(tsize, parts)
            parts.append(('\n--%s\nContent-Type: application/pdf; name="%s"\n'
                          'Content-Disposition: attachment; filename="%s"\n'
                          "Content-Transfer-Encoding: base64\n\n" % (boundary, fname, fname)).encode())
            corpus.b64_slice(asize, parts)
            parts.append(("\n--%s--\n" % boundary).encode())
        else:
            if rng.random() < 0.5:
                parts.append(("Hi Bob,\n\n").encode())
            corpus.text_slice(tsize, parts)
        parts.append(b"\n")                       # blank separator line
        blob = b"".join(parts)
        f.write(blob)
        written += len(blob)
        hdr_total += len(head)
        if progress and i >= next_report:
            el = time.perf_counter() - t0
            sys.stderr.write("\r  %d/%d messages, %.0f MB, %.1f s" % (i, messages, written / 1e6, el))
            next_report = i + max(1, messages // 50)
    f.close()
    os.replace(tmp, out)
    el = time.perf_counter() - t0
    if progress:
        sys.stderr.write("\r" + " " * 60 + "\r")
    return written, el, len(att), hdr_total / max(1, messages)


def parse_size(s):
    s = s.strip().lower()
    mult = 1
    for suf, m in (("gb", 10**9), ("g", 10**9), ("mb", 10**6), ("m", 10**6), ("kb", 10**3), ("k", 10**3)):
        if s.endswith(suf):
            s, mult = s[:-len(suf)], m
            break
    return int(float(s) * mult)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output mbox path (written via OUT.tmp, then renamed)")
    ap.add_argument("--messages", type=int, default=100000, help="number of messages (default 100000)")
    ap.add_argument("--bytes", type=parse_size, default=10**9,
                    help="approximate total size, e.g. 1000000000, 1G, 20M (default 1G)")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    ap.add_argument("--smoke", action="store_true", help="small spool: 2000 messages, 20 MB")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.messages, a.bytes = 2000, 20 * 10**6
    if a.messages < 1 or a.bytes < a.messages * 500:
        ap.error("need --messages >= 1 and --bytes >= 500 * messages")
    written, el, natt, havg = gen(a.out, a.messages, a.bytes, a.seed,
                                  not a.quiet and sys.stderr.isatty())
    if not a.quiet:
        print("wrote %s: %d messages, %d bytes (%.1f MB), %d with attachments, "
              "avg header %.0f B, %.1f s (%.0f MB/s)"
              % (a.out, a.messages, written, written / 1e6, natt, havg, el, written / 1e6 / el),
              file=sys.stderr)


if __name__ == "__main__":
    main()

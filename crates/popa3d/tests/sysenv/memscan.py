#!/usr/bin/env python3
"""Look for a TLS private key in the memory of live processes (tests/tls_isolation.rs).

    memscan.py needles KEY CERT            the byte strings searched for, one a line
    memscan.py scan KEY CERT PID...        per PID: `PID total=N NAME=COUNT...`

The key may sit in a process in many forms, and a scan for the PEM text alone would miss
the ones a crypto library keeps, so the needles are every secret form of KEY that this
test knows of, found with the openssl command-line tool (`openssl pkey -text`, DER
exports):

  pem.N            each line of the PEM body (the file as read)
  der.pkcs8        the PKCS#8 DER (RFC 5208), and the SEC1 (RFC 5915) or PKCS#1
  der.sec1           (RFC 8017 A.1.2) DER, whichever applies
  der.pkcs1
  ec.d             EC: the private scalar, big-endian, padded to the order's length
  ec.d_mont          the same times R = 2^256 (2^384) mod the group order: ring keeps
                     the scalar in Montgomery form (`d: Scalar<R>`, ring 0.17.14
                     src/ec/suite_b/ecdsa/signing.rs)
  rsa.d rsa.p rsa.q  RSA: the private exponent, the primes, the CRT exponents and the
  rsa.dp rsa.dq        coefficient, big-endian
  rsa.qinv
  rsa.qinv_mont      the coefficient in Montgomery form mod p (R = 2^(64 * limbs of p)),
                     as ring keeps it (`qInv: Elem<P, R>`, src/rsa/keypair.rs)
  X.le             each big-endian number above byte-reversed: little-endian 64-bit
                     limbs (ring, OpenSSL's BIGNUM) on a little-endian machine are
                     exactly the reversed byte string

A needle that also occurs in the certificate (PEM text or DER) is public and dropped: a
PEM line of an RSA key that holds only modulus bytes, for one.

A scan reads /proc/PID/maps and then every readable mapping through /proc/PID/mem (as
root: this needs ptrace access, which CAP_SYS_PTRACE gives even for a process that made
itself non-dumpable), in 4 MiB pieces that overlap by the longest needle, and counts each
needle's occurrences. A piece whose content (SHA-256) was searched before is not searched
again: most of every process is the same program and libraries. What could not be read
is reported, so that a caller can tell "nothing found" from "nothing read": only the
kernel's [vvar]/[vvar_vclock] pages and the legacy [vsyscall] page are expected there.

Checked by hand: a Python process that loaded both keys through `ssl` (found, OpenSSL's
BIGNUMs as `.le`), `openssl s_server` with the RSA key (`.le` forms), a small program
that loaded them with rustls/ring (`ec.d_mont.le`, `rsa.p.le`, `rsa.q.le`,
`rsa.qinv_mont.le`: ring's own copies), and a process without them (nothing).
"""
import base64
import hashlib
import os
import re
import subprocess
import sys

CHUNK = 4 << 20

# Group orders (SEC 2, FIPS 186-4 D.1.2): ring's Montgomery form is d * R mod n.
CURVE_ORDERS = {
    "P-256": (0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32),
    "P-384": (
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        48,
    ),
}

# Special mappings the kernel does not let /proc/PID/mem read (or that lie above what a
# file offset can express); they hold no process data.
SPECIAL = ("[vvar]", "[vvar_vclock]", "[vsyscall]")


def openssl(*args):
    return subprocess.run(
        ["openssl", *args], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ).stdout


def text_fields(text):
    """The hex-dump fields of `openssl pkey -text -noout` (`priv:`, `prime1:`, ...) as
    integers, and the other `Name: value` lines as strings."""
    numbers, other = {}, {}
    current = None
    for line in text.splitlines():
        if line.startswith(" ") and current is not None:
            numbers[current] += line.strip().replace(":", "")
            continue
        current = None
        m = re.match(r"^([A-Za-z0-9 ]+):\s*(.*)$", line)
        if not m:
            continue
        name, value = m.group(1), m.group(2)
        if value == "":
            current = name
            numbers[name] = ""
        else:
            other[name] = value
    return {k: int(v, 16) for k, v in numbers.items() if v}, other


def be(n, length=None):
    """n big-endian: `length` bytes, or as few as hold it."""
    length = length or max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(length, "big")


def pem_body(pem):
    """The base64 lines between the first BEGIN and its END line."""
    lines, inside = [], False
    for line in pem.decode("ascii", "replace").splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN "):
            inside = True
        elif line.startswith("-----END "):
            break
        elif inside and line and ":" not in line:  # skip RFC 1421 headers
            lines.append(line)
    return lines


def cert_bytes(cert_path):
    """The certificate file, and the DER of every certificate in it."""
    with open(cert_path, "rb") as f:
        pem = f.read()
    ders = []
    for block in re.findall(
        rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S
    ):
        ders.append(base64.b64decode(b"".join(block.split())))
    return pem, ders


def needles(key_path, cert_path):
    """[(name, bytes)]: every secret form of the key, none of which is in the
    certificate. Also returns the names dropped as public."""
    with open(key_path, "rb") as f:
        pem = f.read()
    numbers, other = text_fields(openssl("pkey", "-in", key_path, "-text", "-noout").decode())
    found = []
    for i, line in enumerate(pem_body(pem)):
        if len(line) >= 16:
            found.append(("pem.%d" % i, line.encode()))
    # `openssl pkey -outform DER` writes the algorithm's own format; PKCS#8 needs pkcs8.
    found.append(
        ("der.pkcs8", openssl("pkcs8", "-topk8", "-nocrypt", "-in", key_path, "-outform", "DER"))
    )
    big = []
    if "priv" in numbers:
        curve = other.get("NIST CURVE", "")
        order, size = CURVE_ORDERS.get(curve, (None, (numbers["priv"].bit_length() + 7) // 8))
        d = numbers["priv"]
        big.append(("ec.d", be(d, size)))
        if order is not None:
            big.append(("ec.d_mont", be(d * (1 << (8 * size)) % order, size)))
        found.append(("der.sec1", openssl("ec", "-in", key_path, "-outform", "DER")))
    elif "prime1" in numbers:
        p, q = numbers["prime1"], numbers["prime2"]
        for name, field in (
            ("rsa.d", "privateExponent"),
            ("rsa.p", "prime1"),
            ("rsa.q", "prime2"),
            ("rsa.dp", "exponent1"),
            ("rsa.dq", "exponent2"),
            ("rsa.qinv", "coefficient"),
        ):
            big.append((name, be(numbers[field])))
        limbs = (p.bit_length() + 63) // 64
        qinv_mont = numbers["coefficient"] * (1 << (64 * limbs)) % p
        big.append(("rsa.qinv_mont", be(qinv_mont, (p.bit_length() + 7) // 8)))
        found.append(
            ("der.pkcs1", openssl("rsa", "-in", key_path, "-outform", "DER", "-traditional"))
        )
    else:
        raise ValueError("%s: neither an EC nor an RSA private key" % key_path)
    for name, value in big:
        found.append((name, value))
        found.append((name + ".le", value[::-1]))

    cert_pem, cert_ders = cert_bytes(cert_path)
    public = [cert_pem] + cert_ders
    kept, dropped, seen = [], [], set()
    for name, value in found:
        forms = [value]
        if name.startswith("pem.") and len(value) % 4 == 0:
            forms.append(base64.b64decode(value))
        if any(form in blob for form in forms for blob in public):
            dropped.append(name)
        elif value not in seen:
            seen.add(value)
            kept.append((name, value))
    return kept, dropped


class Scan:
    """The outcome of scanning one process: hits per needle, where they were, how much
    was read and what could not be."""

    def __init__(self, pid):
        self.pid = pid
        self.hits = {}
        self.where = []  # (needle, address, mapping)
        self.bytes_read = 0
        self.unreadable = []  # (mapping, bytes, error)
        self.gone = False

    @property
    def total(self):
        return sum(self.hits.values())

    def unexpected_unreadable(self):
        return [u for u in self.unreadable if u[0] not in SPECIAL]


# Occurrences found in a piece of memory, by the piece's content: most of a process is
# its program and libraries, the same bytes in every process, searched once.
_SEEN = {}


def _occurrences(buf, needle_list, key):
    """[(needle name, index)] of every needle in buf."""
    digest = (key, hashlib.sha256(buf).digest())
    found = _SEEN.get(digest)
    if found is None:
        found = []
        for name, needle in needle_list:
            i = buf.find(needle)
            while i >= 0:
                found.append((name, i))
                i = buf.find(needle, i + 1)
        _SEEN[digest] = found
    return found


def scan(pid, needle_list):
    """Scans every readable mapping of pid for every needle."""
    result = Scan(pid)
    result.hits = {name: 0 for name, _ in needle_list}
    lengths = {name: len(v) for name, v in needle_list}
    longest = max(lengths.values())
    key = hashlib.sha256(b"".join(n.encode() + b"\0" + v for n, v in needle_list)).digest()
    try:
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read().splitlines()
        mem = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    except (FileNotFoundError, ProcessLookupError):
        result.gone = True
        return result
    try:
        for line in maps:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            mapping = fields[5] if len(fields) > 5 else "[anon:%x]" % start
            if fields[1][0] != "r":
                continue
            if mapping in SPECIAL:
                result.unreadable.append((mapping, end - start, "special"))
                continue
            addr, tail = start, b""
            while addr < end:
                try:
                    data = os.pread(mem, min(CHUNK, end - addr), addr)
                except (OSError, OverflowError) as e:
                    data, err = b"", getattr(e, "errno", None) or type(e).__name__
                else:
                    err = "EOF"
                if not data:
                    result.unreadable.append((mapping, end - addr, err))
                    break
                buf = tail + data
                base = addr - len(tail)
                for name, i in _occurrences(buf, needle_list, key):
                    # Count only occurrences that end in the new data: the rest were
                    # counted with the previous piece.
                    if i + lengths[name] > len(tail):
                        result.hits[name] += 1
                        if len(result.where) < 64:
                            result.where.append((name, base + i, mapping))
                result.bytes_read += len(data)
                tail = buf[-(longest - 1):] if longest > 1 else b""
                addr += len(data)
    finally:
        os.close(mem)
    if not os.path.exists("/proc/%d" % pid):
        result.gone = True
    return result


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "needles":
        kept, dropped = needles(sys.argv[2], sys.argv[3])
        for name, value in kept:
            print("%s %d %s" % (name, len(value), value[:16].hex()))
        for name in dropped:
            print("%s dropped (in the certificate)" % name)
    elif len(sys.argv) >= 5 and sys.argv[1] == "scan":
        kept, _ = needles(sys.argv[2], sys.argv[3])
        for pid in sys.argv[4:]:
            s = scan(int(pid), kept)
            counts = " ".join("%s=%d" % (k, v) for k, v in s.hits.items() if v)
            print(
                "%s total=%d read=%d unreadable=%s %s"
                % (pid, s.total, s.bytes_read, s.unexpected_unreadable(), counts)
            )
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

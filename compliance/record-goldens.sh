#!/usr/bin/env bash
# Re-record compliance/golden/ from the reference popa3d (Debian 1.0.3-1.1), as root.
#
#   compliance/record-goldens.sh
#
# 1. Rewrites compliance/fixtures/*.mbox with compliance/gen-fixtures.py.
# 2. For every fixture, and for the missing spool (`-`, golden name `missing`):
#    - runs `session-script.py --stat` to learn N, the message count STAT reports
#      (0 when the load is rejected);
#    - runs the standard session (`session-script.py N`) and saves
#      <name>.out (raw server bytes) and <name>.log (syslog, normalized);
#    - if N >= 2, runs the UPDATE sessions  dele-1 (DELE 1), dele-last (DELE N),
#      dele-middle (DELE (N+1)/2, only if N >= 3) and dele-all (DELE 1 .. N), each
#      followed by QUIT, and saves <name>.dele-<which>.out, .log and .mbox (the
#      spool after the session).
# 3. Writes compliance/golden/MANIFEST and replaces compliance/golden/ as a whole.
#
# Logs are normalized for comparison: the syslog timestamp is dropped and the pid
# becomes PID, so `<30>Nov 21 23:48:21 popa3d[6296]: text` is stored as
# `<30>popa3d[PID]: text`.
set -euo pipefail

prog=record-goldens
die() {
    echo "$prog: $*" >&2
    exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
comp=compliance
ref=scripts/ref-popa3d
bin=${REF_POPA3D:-target/reference/usr/sbin/popa3d}

[ "$(id -u)" = 0 ] || die "must run as root (scripts/ref-popa3d needs it)"
[ -x "$bin" ] || die "$bin is missing: run scripts/install-test-deps.sh first"

python3 "$comp/gen-fixtures.py"

mkdir -p target
new=$(mktemp -d "$repo/target/golden.XXXXXX")
scratch=$(mktemp -d "$repo/target/golden-scratch.XXXXXX")
trap 'rm -rf "$new" "$scratch"' EXIT

normalize_log() { # normalize_log RAW > NORMALIZED
    sed -E 's/^(<[0-9]+>)[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} /\1/; s/^(<[0-9]+>[A-Za-z0-9_.-]+)\[[0-9]+\]:/\1[PID]:/' "$1"
}

# run NAME MBOX SCRIPT [AFTER]: one session; NAME.out and NAME.log go to $new.
run() {
    local name=$1 mbox=$2 script=$3 after=${4-}
    REF_LOG=$scratch/raw.log "$ref" "$mbox" "$script" "$new/$name.out" ${after:+"$after"}
    normalize_log "$scratch/raw.log" >"$new/$name.log"
}

count_messages() { # count_messages MBOX: N as STAT reports it, 0 if rejected
    python3 "$comp/session-script.py" --stat >"$scratch/stat.script"
    "$ref" "$1" "$scratch/stat.script" "$scratch/stat.out"
    local n
    n=$(tr -d '\r' <"$scratch/stat.out" | sed -n '4s/^+OK \([0-9][0-9]*\) [0-9][0-9]*$/\1/p')
    echo "${n:-0}"
}

fixtures=()
for f in "$comp"/fixtures/*.mbox; do fixtures+=("$(basename "$f" .mbox)"); done
fixtures+=(missing)

version=$("$bin" -V)
{
    echo "# Goldens recorded by compliance/record-goldens.sh from the reference popa3d:"
    echo "# $version (Debian package $(dpkg-deb -f target/reference/popa3d_*.deb Package Version | paste -sd' ' | sed 's/Package: //; s/ Version: / /'))"
    echo "# binary sha256 $(sha256sum "$bin" | cut -d' ' -f1)"
    echo "# columns: fixture, sha256 of the fixture file (- for the missing spool), N (STAT)"
} >"$new/MANIFEST"

for name in "${fixtures[@]}"; do
    if [ "$name" = missing ]; then
        mbox=- sum=-
    else
        mbox=$comp/fixtures/$name.mbox
        sum=$(sha256sum "$mbox" | cut -d' ' -f1)
    fi
    n=$(count_messages "$mbox")
    echo "$name.mbox $sum $n" | sed 's/^missing\.mbox /missing /' >>"$new/MANIFEST"
    echo "$prog: $name ($n messages)" >&2

    python3 "$comp/session-script.py" "$n" >"$scratch/script"
    run "$name" "$mbox" "$scratch/script"

    [ "$n" -ge 2 ] || continue
    variants=("1:1" "last:$n")
    [ "$n" -lt 3 ] || variants+=("middle:$(((n + 1) / 2))")
    variants+=("all:$(seq -s ' ' 1 "$n")")
    for v in "${variants[@]}"; do
        which=${v%%:*}
        # shellcheck disable=SC2086 # the message numbers are meant to split
        python3 "$comp/session-script.py" --dele ${v#*:} >"$scratch/script"
        run "$name.dele-$which" "$mbox" "$scratch/script" "$new/$name.dele-$which.mbox"
    done
done

rm -rf "$comp/golden"
mv "$new" "$comp/golden"
chmod 0755 "$comp/golden"
echo "$prog: wrote $(find "$comp/golden" -type f | wc -l) files, $(du -sh "$comp/golden" | cut -f1) in $comp/golden" >&2

#!/usr/bin/env bash
# CPU per login session (connect, USER, PASS, STAT, QUIT): Debian's popa3d and ours,
# side by side, on the same accounts.  See bench/README.md, "Login CPU per session".
#
#   bench/login.sh                 # 200 sessions per server (about a minute)
#   bench/login.sh -n 50 --no-build
#
# Runs bench/login.py inside one scripts/sysenv (accounts, /var/mail, PAM, syslog; the
# host is not modified).  Needs root.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

usage() {
    cat <<USAGE
usage: bench/login.sh [options]
  -n, --sessions N   counted sessions per server (default 200)
  --warmup W         uncounted rounds before (default 5)
  --no-pam           skip the row for ours with auth = "pam"
  --no-build         do not run cargo build --release -p popa3d
  --popa3d PATH      Debian's popa3d (default target/reference/usr/sbin/popa3d)
  --ours PATH        our popa3d (default target/release/popa3d)
  --json PATH        every figure as JSON (default bench-data/login-result.json)
USAGE
}

SESSIONS=200 WARMUP=5 BUILD=1 NOPAM=()
POPA3D=$ROOT/target/reference/usr/sbin/popa3d
OURS=$ROOT/target/release/popa3d
JSON=$ROOT/bench-data/login-result.json
while [[ $# -gt 0 ]]; do
    case $1 in
    -n | --sessions) SESSIONS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --no-pam) NOPAM=(--no-pam); shift ;;
    --no-build) BUILD=0; shift ;;
    --popa3d) POPA3D=$(realpath "$2"); shift 2 ;;
    --ours) OURS=$(realpath -m "$2"); shift 2 ;;
    --json) JSON=$(realpath -m "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/login.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$SESSIONS" "$WARMUP"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench/login.sh: not a number: $n" >&2; exit 2; }
done
[[ $SESSIONS -ge 1 ]] || { echo "bench/login.sh: -n must be at least 1" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
    echo "bench/login.sh must run as root (scripts/sysenv: namespaces, mounts; the servers start as root)" >&2
    exit 1
fi

if [[ ! -x $POPA3D ]]; then
    echo "== reference popa3d missing; running scripts/install-test-deps.sh"
    "$ROOT/scripts/install-test-deps.sh"
    [[ -x $POPA3D ]] || { echo "bench/login.sh: no popa3d at $POPA3D" >&2; exit 1; }
fi
if [[ $BUILD -eq 1 ]]; then
    echo "== cargo build --release -p popa3d"
    (cd "$ROOT" && cargo build --release -p popa3d)
fi
[[ -x $OURS ]] || { echo "bench/login.sh: no popa3d at $OURS (build it, or pass --ours)" >&2; exit 1; }
mkdir -p "$(dirname "$JSON")"

echo "== $SESSIONS sessions per server, inside scripts/sysenv"
exec "$ROOT/scripts/sysenv" --timeout 1800 -- python3 "$BENCH_DIR/login.py" \
    --popa3d "$POPA3D" --ours "$OURS" --sessions "$SESSIONS" --warmup "$WARMUP" \
    --json "$JSON" ${NOPAM[@]+"${NOPAM[@]}"}

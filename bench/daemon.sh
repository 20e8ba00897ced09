#!/usr/bin/env bash
# The standalone daemon under load: Debian's `popa3d -D` and ours (`popa3d -D -F -c FILE`,
# auth = "pam" and auth = "shadow"), side by side.  See bench/README.md, "Standalone
# daemon".
#
#   bench/daemon.sh                  # both tests, every server (about 4 minutes)
#   bench/daemon.sh --quick          # 10 s windows (about 2 minutes)
#   bench/daemon.sh --only popa3d    # Debian's popa3d alone
#
# Runs bench/daemon_load.py inside one scripts/sysenv (accounts, /var/mail, PAM,
# syslog, and a private network namespace, where both servers bind 0.0.0.0:110 in
# turn; the host is not modified).  Needs root.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

usage() {
    cat <<USAGE
usage: bench/daemon.sh [options]
  --quick            1 s warm-up and 10 s windows instead of 3 s and 20 s
  --wait-idle S      before each run, wait up to S seconds for an idle machine
  --retry-noisy N    repeat a run up to N times while other processes were busy during it
  --repeat R         run everything R times; the table adds per-server medians
  --duration D       seconds counted per run (default 20)
  --warmup W         seconds of load before counting (default 3)
  --only WHICH       popa3d or ours: run only that server (ours = both auth rows)
  --tests LIST       rate, flood or rate,flood (default)
  --no-build         do not run cargo build --release -p popa3d
  --popa3d PATH      Debian's popa3d (default target/reference/usr/sbin/popa3d)
  --ours PATH        our popa3d (default $CARGO_TARGET_DIR or target, then release/popa3d)
  --json PATH        every figure as JSON (default bench-data/daemon-result.json)
USAGE
}

DURATION=20 WARMUP=3 ONLY=() TESTS=rate,flood BUILD=1 WAIT_IDLE=0 RETRY=0 REPEAT=1
POPA3D=$ROOT/target/reference/usr/sbin/popa3d
OURS=${CARGO_TARGET_DIR:-$ROOT/target}/release/popa3d
JSON=$ROOT/bench-data/daemon-result.json
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) DURATION=10 WARMUP=1; shift ;;
    --wait-idle) WAIT_IDLE=$2; shift 2 ;;
    --retry-noisy) RETRY=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --only) ONLY=(--only "$2"); shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --popa3d) POPA3D=$(realpath "$2"); shift 2 ;;
    --ours) OURS=$(realpath -m "$2"); shift 2 ;;
    --json) JSON=$(realpath -m "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/daemon.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$DURATION" "$WARMUP" "$WAIT_IDLE" "$RETRY" "$REPEAT"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench/daemon.sh: not a whole number of seconds: $n" >&2; exit 2; }
done
[[ $DURATION -ge 1 ]] || { echo "bench/daemon.sh: --duration must be at least 1" >&2; exit 2; }
[[ $REPEAT -ge 1 ]] || { echo "bench/daemon.sh: --repeat must be at least 1" >&2; exit 2; }
case ${ONLY[1]-} in
'' | popa3d | ours) ;;
*) echo "bench/daemon.sh: --only wants popa3d or ours, not '${ONLY[1]}'" >&2; exit 2 ;;
esac
if [[ $(id -u) -ne 0 ]]; then
    echo "bench/daemon.sh must run as root (scripts/sysenv: namespaces, mounts; the servers start as root)" >&2
    exit 1
fi

if [[ ${ONLY[1]-} != ours && ! -x $POPA3D ]]; then
    echo "== reference popa3d missing; running scripts/install-test-deps.sh"
    "$ROOT/scripts/install-test-deps.sh"
    [[ -x $POPA3D ]] || { echo "bench/daemon.sh: no popa3d at $POPA3D" >&2; exit 1; }
fi
if [[ ${ONLY[1]-} != popa3d ]]; then
    if [[ $BUILD -eq 1 ]]; then
        echo "== cargo build --release -p popa3d"
        (cd "$ROOT" && cargo build --release -p popa3d)
    fi
    [[ -x $OURS ]] || { echo "bench/daemon.sh: no popa3d at $OURS (build it, or pass --ours)" >&2; exit 1; }
fi
mkdir -p "$(dirname "$JSON")"

echo "== inside scripts/sysenv: ${TESTS//,/ then }, ${WARMUP} s warm-up + ${DURATION} s per run, $(nproc) CPUs"
exec "$ROOT/scripts/sysenv" --timeout 3600 -- python3 "$BENCH_DIR/daemon_load.py" suite \
    --popa3d "$POPA3D" --ours "$OURS" --tests "$TESTS" --warmup "$WARMUP" \
    --duration "$DURATION" --wait-idle "$WAIT_IDLE" --retry-noisy "$RETRY" --repeat "$REPEAT" --json "$JSON" ${ONLY[@]+"${ONLY[@]}"}

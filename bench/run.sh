#!/bin/bash
# popa3d-rs performance benchmark: ours vs Debian's popa3d 1.0.3 on the same spool.
# See bench/README.md.  Needs root (mount namespace, overlayfs, chroot, setuid).
#
#   bench/run.sh                      # 100000 messages, ~1 GB, 5 runs
#   bench/run.sh --smoke              # 2000 messages, ~20 MB, 3 runs
#   bench/run.sh --messages 50000 --bytes 500M --runs 7 --no-cold
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

usage() {
    cat <<EOF
usage: bench/run.sh [options]
  --messages N     messages in the generated spool (default 100000)
  --bytes B        approximate spool size, e.g. 1000000000, 1G, 500M (default 1G)
  --seed S         generator seed (default 1)
  --smoke          quick run: 2000 messages, 20 MB, 3 runs
  --runs R         timed runs per figure, after one warm-up (default 5)
  --only a|b       run only measurement (a) or (b)
  --no-cold        skip the cold-cache figure (it drops the host page cache)
  --no-build       do not run cargo build; use the existing release binary
  --popa3d PATH    reference popa3d binary (default target/reference/usr/sbin/popa3d)
  --ours PATH      our popa3d-admin binary (default target/release/popa3d-admin)
  --nice N         run the harness and both servers at nice N (e.g. -10 on a busy box)
  --wait-idle S    before timing, wait up to S seconds for the machine to go idle
EOF
}

# ------------------------------------------------------------------ inside the namespace
if [[ "${1:-}" == "__inside_ns" ]]; then
    shift
    SPOOL=$1 NSDIR=$2 POPA3D=$3; shift 3
    PAMFILE=$(dirname "$POPA3D")/../../etc/pam.d/popa3d
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$NSDIR/etc-u,workdir=$NSDIR/etc-w" /etc
    mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$NSDIR/lib-u,workdir=$NSDIR/lib-w" /var/lib
    mount -t tmpfs -o mode=0755 bench-mail /var/mail
    # keep syslog traffic away from the host, if it has a syslog socket
    if [[ -e /dev/log ]]; then mount --bind /dev/null /dev/log 2>/dev/null || true; fi
    for f in passwd group shadow gshadow; do
        if [[ -f /etc/$f ]]; then sed -i -E '/^(popa3d|bob|empty):/d' /etc/$f; fi
    done
    echo "popa3d:x:64101:64101:popa3d bench:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
    echo "bob:x:64102:64102:bench:/nonexistent:/bin/sh" >> /etc/passwd
    echo "empty:x:64103:64103:bench:/nonexistent:/bin/sh" >> /etc/passwd
    printf 'popa3d:x:64101:\nbob:x:64102:\nempty:x:64103:\n' >> /etc/group
    for u in bob empty; do
        echo "$u:$(openssl passwd -6 bobpw):19000:0:99999:7:::" >> /etc/shadow
    done
    if [[ ! -e /etc/pam.d/popa3d && -f $PAMFILE ]]; then cp "$PAMFILE" /etc/pam.d/popa3d; fi
    mkdir -p /var/lib/popa3d && chmod 755 /var/lib/popa3d
    # /var/mail/bob is the generated spool (bind mount); /var/mail/empty is 0 bytes
    : > /var/mail/bob
    mount --bind "$SPOOL" /var/mail/bob
    chown bob:bob /var/mail/bob && chmod 600 /var/mail/bob
    touch -d 2024-01-01 /var/mail/bob      # mtime in the past: no one-second sleep
    : > /var/mail/empty && chown empty:empty /var/mail/empty && chmod 600 /var/mail/empty
    touch -d 2024-01-01 /var/mail/empty
    exec "$PY" "$BENCH_DIR/harness.py" --popa3d "$POPA3D" --workdir "$NSDIR" "$@"
fi

# ------------------------------------------------------------------ outside
MESSAGES=100000 BYTES=1000000000 SEED=1 RUNS=5 ONLY=ab COLD=1 BUILD=1 NICE=0 WAIT_IDLE=0
POPA3D="$ROOT/target/reference/usr/sbin/popa3d"
OURS="$ROOT/target/release/popa3d-admin"
while [[ $# -gt 0 ]]; do
    case $1 in
        --messages) MESSAGES=$2; shift 2 ;;
        --bytes) BYTES=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --smoke) MESSAGES=2000 BYTES=20000000 RUNS=3; shift ;;
        --runs) RUNS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-cold) COLD=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --popa3d) POPA3D=$(realpath "$2"); shift 2 ;;
        --ours) OURS=$(realpath -m "$2"); shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --wait-idle) WAIT_IDLE=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case ${BYTES,,} in      # accept 1000000000, 1G, 1GB, 500M, 20MB, 800K
    *gb|*g) BYTES=$(( ${BYTES%[gG]*} * 1000000000 )) ;;
    *mb|*m) BYTES=$(( ${BYTES%[mM]*} * 1000000 )) ;;
    *kb|*k) BYTES=$(( ${BYTES%[kK]*} * 1000 )) ;;
esac
[[ $BYTES =~ ^[0-9]+$ && $MESSAGES =~ ^[0-9]+$ ]] || { echo "bad --bytes/--messages" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
    echo "bench/run.sh must run as root (private mount namespace, overlayfs, chroot)" >&2
    exit 1
fi
for tool in unshare openssl python3; do
    command -v $tool >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
PY=$(python3 -c 'import sys; print(sys.executable)')
export PY

# reference popa3d
if [[ ! -x $POPA3D ]]; then
    if [[ -x $ROOT/scripts/install-test-deps.sh ]]; then
        echo "== reference popa3d missing; running scripts/install-test-deps.sh"
        "$ROOT/scripts/install-test-deps.sh"
    fi
    if [[ ! -x $POPA3D ]]; then
        echo "reference popa3d not found at $POPA3D (run scripts/install-test-deps.sh or pass --popa3d)" >&2
        exit 1
    fi
fi

# spool (reused when parameters and generator are unchanged)
DATA="$ROOT/bench-data"
SPOOLDIR="$DATA/spool-$MESSAGES-$BYTES-s$SEED"
SPOOL="$SPOOLDIR/bob"
PARAMS="messages=$MESSAGES bytes=$BYTES seed=$SEED gen=$(sha256sum "$BENCH_DIR/gen-mbox.py" | cut -c1-16)"
mkdir -p "$SPOOLDIR"
if [[ -f $SPOOL && -f $SPOOL.params && "$(cat "$SPOOL.params")" == "$PARAMS" ]]; then
    echo "== reusing spool $SPOOL ($(stat -c %s "$SPOOL") bytes)"
else
    echo "== generating spool $SPOOL ($MESSAGES messages, ~$BYTES bytes)"
    rm -f "$SPOOL" "$SPOOL.params"
    "$PY" "$BENCH_DIR/gen-mbox.py" --messages "$MESSAGES" --bytes "$BYTES" --seed "$SEED" "$SPOOL"
    echo "$PARAMS" > "$SPOOL.params"
fi

# ours
OURS_STATUS=""
if [[ $BUILD -eq 1 ]]; then
    echo "== cargo build --release -p popa3d"
    if ! (cd "$ROOT" && cargo build --release -p popa3d); then
        OURS_STATUS="ours: cargo build failed; ours side skipped"
    fi
fi
if [[ -z $OURS_STATUS && ! -x $OURS ]]; then
    OURS_STATUS="ours: not built yet ($OURS missing); popa3d side only"
fi
OURS_ARG=()
if [[ -z $OURS_STATUS ]]; then
    OURS_ARG=(--ours "$OURS")
    OURS_STATUS="ours: $OURS"
fi
echo "== $OURS_STATUS"

NSDIR=$(mktemp -d /tmp/popa3d-bench.XXXXXX)
chmod 755 "$NSDIR"
mkdir -p "$NSDIR"/{etc-u,etc-w,lib-u,lib-w}
trap 'rm -rf "$NSDIR"' EXIT
mkdir -p "$DATA"
JSON="$DATA/result-$MESSAGES-$BYTES.json"
echo "== running inside a private mount namespace"
set +e
unshare -m --propagation private -- "$BENCH_DIR/run.sh" __inside_ns "$SPOOL" "$NSDIR" "$POPA3D" \
    "${OURS_ARG[@]}" --ours-status "$OURS_STATUS" --messages "$MESSAGES" --runs "$RUNS" \
    --cold "$COLD" --only "$ONLY" --nice "$NICE" --wait-idle "$WAIT_IDLE" --json "$JSON"
rc=$?
exit $rc

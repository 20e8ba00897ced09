#!/usr/bin/env bash
# What TLS costs in the standalone daemon: ours (`popa3d -D -F -c FILE`, implicit TLS and
# plaintext, auth = "shadow" and "pam") against Dovecot's POP3 server measured in the
# same run.  See bench/README.md, "TLS".
#
#   bench/tls.sh                  # every row, 20 s windows (about 7 minutes)
#   bench/tls.sh --quick          # 10 s windows, fewer samples (about 3 minutes)
#   bench/tls.sh --repeat 3       # everything three times, with medians (about 20 minutes)
#
# Runs bench/tls_load.py inside one scripts/sysenv (accounts, /var/mail, PAM, syslog, a
# private network namespace where each server in turn listens on 0.0.0.0:995 with
# implicit TLS or on 0.0.0.0:110 without; the host is not modified).  Installs Debian's
# dovecot-pop3d if it is missing, without letting the package start a service.  Needs
# root.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

usage() {
    cat <<USAGE
usage: bench/tls.sh [options]
  --quick            1 s warm-up, 10 s windows, 100 latency sessions, 2x2 large RETRs
  --repeat R         run everything R times; the tables add per-row medians
  --duration D       seconds counted per rate window (default 20)
  --warmup W         seconds of load before counting (default 3)
  --latency-n N      single-client sessions timed per row (default 300)
  --big-mb M         size of the large message in MB (default 20)
  --user U           the account of the rate and latency tests: bob (yescrypt, default)
                     or carol (sha512-crypt, a cheaper hash)
  --auth LIST        shadow, pam or shadow,pam (default): ours' auth and Dovecot's passdb
  --keys LIST        ec, rsa or ec,rsa (default): RSA-2048 rows use the first auth only
  --only WHICH       ours or dovecot
  --wait-idle S      before each row, wait up to S seconds for an idle machine
  --retry-noisy N    repeat a row up to N times while other processes were busy in it
  --no-build         do not run cargo build --release -p popa3d
  --ours PATH        our popa3d (default \$CARGO_TARGET_DIR or target, then release/popa3d)
  --dovecot PATH     Dovecot's master binary (default /usr/sbin/dovecot)
  --json PATH        every figure as JSON (default bench-data/tls-result.json)
USAGE
}

ARGS=() BUILD=1 ONLY=
OURS=${CARGO_TARGET_DIR:-$ROOT/target}/release/popa3d
DOVECOT=/usr/sbin/dovecot
JSON=$ROOT/bench-data/tls-result.json
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) ARGS+=(--quick); shift ;;
    --repeat | --duration | --warmup | --latency-n | --big-mb | --user | --auth | --keys | \
        --wait-idle | --retry-noisy)
        [[ $# -ge 2 ]] || { echo "bench/tls.sh: $1 needs a value" >&2; exit 2; }
        ARGS+=("$1" "$2"); shift 2 ;;
    --only)
        [[ $# -ge 2 ]] || { echo "bench/tls.sh: --only needs a value" >&2; exit 2; }
        ONLY=$2; ARGS+=(--only "$2"); shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --ours) OURS=$(realpath -m "$2"); shift 2 ;;
    --dovecot) DOVECOT=$(realpath -m "$2"); shift 2 ;;
    --json) JSON=$(realpath -m "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/tls.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $ONLY in
'' | ours | dovecot) ;;
*) echo "bench/tls.sh: --only wants ours or dovecot, not '$ONLY'" >&2; exit 2 ;;
esac
if [[ $(id -u) -ne 0 ]]; then
    echo "bench/tls.sh must run as root (scripts/sysenv: namespaces, mounts; the servers start as root)" >&2
    exit 1
fi

# Dovecot: Debian 12's dovecot-pop3d (and dovecot-core with it).  Its maintainer scripts
# would start a system-wide dovecot; a /usr/sbin/policy-rc.d that exits 101 forbids that
# (invoke-rc.d and deb-systemd-invoke honour it), and is removed however this script
# ends.  One that was already there is used as it is and never touched.
POLICY=/usr/sbin/policy-rc.d POLICY_OURS=0
remove_policy() {
    if [[ $POLICY_OURS -eq 1 ]]; then
        rm -f "$POLICY"
        POLICY_OURS=0
    fi
}
install_dovecot() {
    echo "== installing dovecot-pop3d (no service is started)"
    if [[ ! -e $POLICY && ! -L $POLICY ]]; then
        trap remove_policy EXIT
        trap 'remove_policy; exit 130' INT
        trap 'remove_policy; exit 143' TERM
        if (set -C && printf '#!/bin/sh\n# Written by bench/tls.sh while it installs dovecot-pop3d; removed after.\nexit 101\n' \
            >"$POLICY") 2>/dev/null; then
            POLICY_OURS=1
            chmod 0755 "$POLICY"
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends dovecot-pop3d >&2; then
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends dovecot-pop3d >&2
    fi
    remove_policy
}
if [[ $ONLY != ours && $DOVECOT == /usr/sbin/dovecot && ! -x $DOVECOT ]]; then
    install_dovecot
fi
if [[ $ONLY != ours ]]; then
    [[ -x $DOVECOT ]] || { echo "bench/tls.sh: no dovecot at $DOVECOT" >&2; exit 1; }
fi
if [[ $ONLY != dovecot ]]; then
    if [[ $BUILD -eq 1 ]]; then
        echo "== cargo build --release -p popa3d"
        (cd "$ROOT" && cargo build --release -p popa3d)
    fi
    [[ -x $OURS ]] || { echo "bench/tls.sh: no popa3d at $OURS (build it, or pass --ours)" >&2; exit 1; }
fi
for tool in openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench/tls.sh: $tool not found (scripts/install-test-deps.sh)" >&2; exit 1; }
done
mkdir -p "$(dirname "$JSON")"

echo "== inside scripts/sysenv, $(nproc) CPUs"
exec "$ROOT/scripts/sysenv" --timeout 7200 -- python3 "$BENCH_DIR/tls_load.py" suite \
    --ours "$OURS" --dovecot "$DOVECOT" --json "$JSON" ${ARGS[@]+"${ARGS[@]}"}

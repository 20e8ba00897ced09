#!/usr/bin/env bash
# Runs popa3d-rs on 127.0.0.1 so that a real POP3 client can log in and fetch at once:
#   curl pop3://demo:demo@127.0.0.1:1110/      (LIST)
#   curl pop3://demo:demo@127.0.0.1:1110/1     (RETR 1)
# This is the real server, the standalone daemon (`popa3d -D -F`) with its flood
# control, forking for each connection a confined pre-auth process, a password check
# against a generated passwd-file user, the switch to the mail user, the mbox maildrop. Everything lives in a temporary directory removed on
# exit; no account or file of the host is changed. Log lines are printed here.
# Usage (as root: the server switches users): scripts/demo.sh [PORT]   (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-1110}

if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: run as root: popa3d starts as root to switch users (docs/privsep.md)" >&2
  exit 1
fi
need() { command -v "$1" >/dev/null || { apt-get install -y -qq "$2" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }; }
need openssl openssl
echo "building popa3d (debug build: quicker to compile; scripts/test.sh and bench/ use the same code)..."
cargo build -q -p popa3d --bin popa3d
bin=$PWD/target/debug/popa3d

dir=$(mktemp -d /tmp/popa3d-demo.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -m 755 "$dir/empty"                       # the pre-auth process's chroot
uid=65533                                        # the demo mail user (no host account needed)
cat > "$dir/demo.mbox" <<'MBOX'
From alice@example.org Mon Jan  1 00:00:00 2024
Received: from mx.example.org by mail.example.net; Mon, 1 Jan 2024 00:00:00 +0000
Date: Mon, 1 Jan 2024 00:00:00 +0000
From: Alice <alice@example.org>
To: demo@example.net
Message-ID: <hello@example.org>
Subject: Welcome to popa3d-rs

Hello! This message came from an mbox spool through popa3d-rs.
.A line starting with a dot arrives intact (it is dot-stuffed on the wire).

From bob@example.org Tue Jan  2 00:00:00 2024
Date: Tue, 2 Jan 2024 00:00:00 +0000
From: Bob <bob@example.org>
Message-ID: <second@example.org>
Subject: A second message

Try: curl pop3://demo:demo@127.0.0.1:PORT/ -X UIDL
MBOX
sed -i "s/PORT/$port/" "$dir/demo.mbox"
chown "$uid:$uid" "$dir/demo.mbox"
chmod 600 "$dir/demo.mbox"
hash=$(openssl passwd -6 demo)
printf 'demo:{SHA512-CRYPT}%s:%s:%s::/nonexistent::userdb_mail=mbox:%s\n' "$hash" "$uid" "$uid" "$dir/demo.mbox" > "$dir/passwd"
chmod 600 "$dir/passwd"
cat > "$dir/popa3d.toml" <<EOF2
auth = "passwd-file"
passwd_file = "$dir/passwd"
user = "nobody"
chroot = "$dir/empty"
syslog_socket = "$dir/log"

[[listener]]
address = "127.0.0.1:$port"
EOF2
# A syslog socket of our own, printed to the terminal.
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print("  log:", s.recv(4096).decode(errors="replace"))
' "$dir/log" & pids+=($!)
for _ in $(seq 50); do [ -S "$dir/log" ] && break; sleep 0.1; done   # the daemon connects once
"$bin" -D -F -c "$dir/popa3d.toml" & pids+=($!)
for _ in $(seq 50); do
  grep -q ":$(printf '%04X' "$port") 00000000:0000 0A" /proc/net/tcp && break
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "demo.sh: popa3d did not start (see the log lines above)" >&2; exit 1; }
  sleep 0.1
done
echo "popa3d-rs demo on 127.0.0.1:$port: user demo, password demo"
echo "  list:   curl pop3://demo:demo@127.0.0.1:$port/"
echo "  fetch:  curl pop3://demo:demo@127.0.0.1:$port/1"
echo "  UIDLs:  curl pop3://demo:demo@127.0.0.1:$port/ -X UIDL"
echo "Ctrl-C to stop."
wait

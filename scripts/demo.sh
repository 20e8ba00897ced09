#!/usr/bin/env bash
# Serves a demo mailbox on 127.0.0.1 so that a real POP3 client can fetch from it at once:
#   curl pop3://127.0.0.1:1110/      (LIST)     curl pop3://127.0.0.1:1110/1   (RETR 1)
# Each connection runs `popa3d-admin serve`, the real TRANSACTION-state engine and mbox
# maildrop, behind socat as the inetd. Login (USER/PASS and the privilege-separated
# server) comes with the `popa3d` binary; until then this mode is pre-authenticated.
# Usage: scripts/demo.sh [PORT]     (Ctrl-C stops it)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-1110}

if ! command -v socat >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq socat >/dev/null || { apt-get update -qq && apt-get install -y -qq socat >/dev/null; }
  else
    echo "demo.sh: needs socat (apt-get install socat)" >&2
    exit 1
  fi
fi
cargo build --release -q -p popa3d --bin popa3d-admin
bin=$PWD/target/release/popa3d-admin

dir=$(mktemp -d /tmp/popa3d-demo.XXXXXX)
chmod 755 "$dir"
trap 'rm -rf "$dir"' EXIT
mbox=$dir/demo
cat > "$mbox" <<'MBOX'
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

Try: curl pop3://127.0.0.1:PORT/ -X UIDL
MBOX
sed -i "s/PORT/$port/" "$mbox"
# Run as root, `serve` becomes the mailbox's owner; give it an unprivileged one.
if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$mbox"; fi
chmod 600 "$mbox"

echo "popa3d-rs demo: serving $mbox on 127.0.0.1:$port (pre-authenticated TRANSACTION state)"
echo "  list:   curl pop3://127.0.0.1:$port/"
echo "  fetch:  curl pop3://127.0.0.1:$port/1"
echo "  UIDLs:  curl pop3://127.0.0.1:$port/ -X UIDL"
echo "Ctrl-C to stop."
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$bin serve $mbox"

#!/usr/bin/env bash
# Install what the test suite needs on Debian 12, as root.  Idempotent: a second run
# changes nothing and prints nothing but its last line.
#
#   - system tools used by scripts/ref-popa3d and compliance/: unshare and mount
#     (util-linux, mount), openssl, python3, dpkg-deb, PAM (pam_unix and
#     /etc/pam.d/common-*);
#   - for scripts/sysenv and the real-client interop tests (crates/popa3d/tests/
#     interop.rs): ip (iproute2, to bring up lo in a private network namespace) and
#     the POP3 clients curl, fetchmail, getmail6 and mpop (Python's poplib is in
#     python3);
#   - systemd-socket-activate (package systemd), which plays systemd in the socket
#     activation tests (crates/popa3d/tests/activation.rs);
#   - haproxy, the PROXY-protocol peer of the standalone daemon's tests.  Installing
#     it must not start it (its postinst would: a CI machine must not be left with a
#     running haproxy), so every package installs with a /usr/sbin/policy-rc.d that
#     forbids starting services (exit 101, honoured by invoke-rc.d and
#     deb-systemd-invoke); one already there is used as it is and never touched;
#   - the reference: Debian's popa3d 1.0.3-1.1, fetched with `apt-get download` into
#     target/reference/ and unpacked there (target/reference/usr/sbin/popa3d).  It is
#     never installed on the host: no service, no account, no /etc change.
#
# `apt-get update` runs only when a package or the .deb cannot be found otherwise.
set -euo pipefail

prog=install-test-deps
die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
refdir=$repo/target/reference
want_version='popa3d version 1.0.3 (2012/08/15)'
want_deb_version=1.0.3-1.1

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, and the reference popa3d runs as root)"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12 only"

export DEBIAN_FRONTEND=noninteractive
updated=no
apt_update() {
    if [ "$updated" = no ]; then
        note "running apt-get update"
        apt-get update -qq >&2 || die "apt-get update failed (are the Debian mirrors reachable?)"
        updated=yes
    fi
}

# Which packages are missing, judged by the files the tests use.
missing=()
need() { # need PACKAGE TEST...: add PACKAGE unless the test succeeds
    local pkg=$1
    shift
    "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
have_file_glob() { compgen -G "$1" >/dev/null; }
# pam_unix is in /lib or /usr/lib depending on merged /usr.
have_pam_unix() { have_file_glob '/usr/lib/*/security/pam_unix.so' || have_file_glob '/lib/*/security/pam_unix.so'; }
have_libpam() { have_file_glob '/usr/lib/*/libpam.so.0' || have_file_glob '/lib/*/libpam.so.0'; }
need util-linux command -v unshare
need mount command -v mount
need openssl command -v openssl
need python3 command -v python3
need dpkg command -v dpkg-deb
need coreutils command -v timeout
need libpam-modules have_pam_unix
need libpam-runtime test -e /etc/pam.d/common-auth
need libpam0g have_libpam
need iproute2 command -v ip
need curl command -v curl
need fetchmail command -v fetchmail
need getmail6 command -v getmail
need mpop command -v mpop
need haproxy test -x /usr/sbin/haproxy
need systemd command -v systemd-socket-activate
pkgs=("${missing[@]}")
# No service starts while we install (see the top).  Ours is removed on exit, however
# the script ends; someone else's policy-rc.d is left alone.
policy=/usr/sbin/policy-rc.d
policy_ours=no
remove_policy() {
    if [ "$policy_ours" = yes ]; then
        rm -f "$policy"
        policy_ours=no
    fi
}
forbid_service_starts() {
    [ ! -e "$policy" ] && [ ! -L "$policy" ] || return 0
    trap remove_policy EXIT
    trap 'remove_policy; exit 130' INT
    trap 'remove_policy; exit 143' TERM
    # noclobber: if one appeared meanwhile, it is not ours.
    (set -C && printf '#!/bin/sh\n# Written by %s while it installs packages; removed after.\nexit 101\n' \
        "$prog" >"$policy") 2>/dev/null || return 0
    policy_ours=yes
    chmod 0755 "$policy"
}
if [ ${#pkgs[@]} -gt 0 ]; then
    note "installing ${pkgs[*]}"
    forbid_service_starts
    if ! apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2; then
        apt_update
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 ||
            die "apt-get install ${pkgs[*]} failed"
    fi
    remove_policy
fi

# The reference popa3d.
bin=$refdir/usr/sbin/popa3d
if [ -x "$bin" ] && [ "$("$bin" -V 2>/dev/null || true)" = "$want_version" ]; then
    echo "$prog: ok ($want_version in ${bin#"$repo"/})"
    exit 0
fi
mkdir -p "$refdir"
rm -f "$refdir"/popa3d_*.deb
fetch() { (cd "$refdir" && apt-get download -qq -o APT::Sandbox::User=root "popa3d=$want_deb_version" >&2); }
if ! fetch; then
    apt_update
    fetch || die "apt-get download popa3d=$want_deb_version failed (is Debian 12 bookworm main in the apt sources?)"
fi
debs=("$refdir"/popa3d_*.deb)
deb=${debs[0]}
[ -e "$deb" ] || die "apt-get download left no popa3d_*.deb in $refdir"
dpkg-deb -x "$deb" "$refdir" || die "dpkg-deb -x $deb failed"
[ -x "$bin" ] || die "$deb did not contain usr/sbin/popa3d"
got=$("$bin" -V 2>&1) || die "$bin -V failed: $got"
[ "$got" = "$want_version" ] || die "$bin -V says '$got', expected '$want_version'"
echo "$prog: ok ($want_version in ${bin#"$repo"/})"

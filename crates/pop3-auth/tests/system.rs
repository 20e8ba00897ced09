//! The shadow and PAM backends against the real system databases and the real PAM
//! stack, without touching the host.
//!
//! `system_databases_in_a_private_namespace` (root) starts this test binary again under
//! `unshare -m --propagation private`, after a shell prologue that lays an overlay over
//! `/etc` (its writable layer on a tmpfs that only the namespace sees), creates the
//! accounts below, Debian's `/etc/pam.d/popa3d` (common-auth + common-account) and a
//! second service with a pam_access rule on the client address, and hides `/dev/log`
//! and nscd's socket (so pam_unix's failure lines stay out of the host's log and
//! lookups do not go to a host cache). The tests in `mod inside_namespace` then run in there; outside
//! it they return at once. Everything disappears with the namespace.
//!
//! | account    | stored password                          | expected            |
//! |------------|------------------------------------------|---------------------|
//! | alice      | yescrypt, set by `chpasswd -c YESCRYPT`  | in with `alice-pw`  |
//! | bob        | sha512-crypt, by `chpasswd -c SHA512`    | in with `bob-pw`    |
//! | carol      | bcrypt (vector)                          | in                  |
//! | dave       | md5-crypt (vector)                       | in                  |
//! | nopass     | empty                                    | refused, any pw     |
//! | locked     | `!` + a valid yescrypt hash              | refused             |
//! | starred    | `*`                                      | refused             |
//! | expired    | valid, sp_expire = 1 (1970)              | refused             |
//! | mustchange | valid, sp_lstchg = 0                     | refused             |
//! | aged       | valid, changed on day 1, sp_max = 30     | refused             |
//! | toor       | valid, uid 0                             | refused             |
//! | root       | valid (replaced in the overlay)          | refused             |
//! | noshadow   | passwd entry only                        | refused             |
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

/// Set (to the namespace's work directory) in the re-executed test binary.
const NS_ENV: &str = "POP3_AUTH_TEST_NAMESPACE";

// Hashes made by independent tools (mkpasswd from whois, openssl passwd); the password
// follows each.
const YESCRYPT: (&str, &str) = (
    "$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1",
    "yescrypt-secret",
);
const BCRYPT: (&str, &str) = (
    "$2b$05$4pZ6Y0moUj.ldsXL6LWrWOTjyfkd5U6Mw.GvA8Zsg5m1dPqFCqXXu",
    "bcrypt-secret",
);
const MD5: (&str, &str) = ("$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0", "md5-secret");

/// Runs inside the namespace, as root: `$1` is this test binary.
const SETUP: &str = r#"
set -eu
exe=$1
work=$POP3_AUTH_TEST_NAMESPACE
mount -t tmpfs -o mode=0700 pop3-auth-test "$work"
mkdir "$work/upper" "$work/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/upper,workdir=$work/work" /etc
# pam_unix logs every failure: not into the host's log. No host nscd cache either.
for sock in /dev/log /run/nscd/socket /var/run/nscd/socket; do
    if [ -S "$sock" ]; then mount --bind /dev/null "$sock"; fi
done

users="alice bob carol dave nopass locked starred expired mustchange aged toor noshadow"
for f in /etc/passwd /etc/shadow /etc/group /etc/gshadow; do
    [ -e "$f" ] || continue
    for u in $users popa3d-test; do sed -i "/^$u:/d" "$f"; done
done
gid=62000
while cut -d: -f3 /etc/group | grep -qx "$gid"; do gid=$((gid + 1)); done
echo "popa3d-test:x:$gid:" >>/etc/group
uid=62000
next_uid() {
    while cut -d: -f3 /etc/passwd | grep -qx "$uid"; do uid=$((uid + 1)); done
}
# account NAME HASH LAST-CHANGE MAX-DAYS EXPIRE [UID]
account() {
    if [ $# -ge 6 ]; then u=$6; else next_uid; u=$uid; fi
    printf '%s:x:%s:%s::/nonexistent:/bin/sh\n' "$1" "$u" "$gid" >>/etc/passwd
    printf '%s:%s:%s:0:%s:7::%s:\n' "$1" "$2" "$3" "$4" "$5" >>/etc/shadow
}
account alice '!' 19000 99999 ''
account bob '!' 19000 99999 ''
account carol "$V_BCRYPT" 19000 99999 ''
account dave "$V_MD5" 19000 99999 ''
account nopass '' 19000 99999 ''
account locked "!$V_YESCRYPT" 19000 99999 ''
account starred '*' 19000 99999 ''
account expired "$V_YESCRYPT" 19000 99999 1
account mustchange "$V_YESCRYPT" 0 99999 ''
account aged "$V_YESCRYPT" 1 30 ''
account toor "$V_YESCRYPT" 19000 99999 '' 0
next_uid
printf 'noshadow:x:%s:%s::/nonexistent:/bin/sh\n' "$uid" "$gid" >>/etc/passwd
sed -i "s|^root:[^:]*:|root:$V_YESCRYPT:|" /etc/shadow
# The way an administrator sets passwords on Debian 12.
printf 'alice:alice-pw\n' | chpasswd -c YESCRYPT
printf 'bob:bob-pw\n' | chpasswd -c SHA512
grep -q '^alice:\$y\$' /etc/shadow || { echo "chpasswd made no yescrypt hash" >&2; exit 1; }
grep -q '^bob:\$6\$' /etc/shadow || { echo "chpasswd made no sha512 hash" >&2; exit 1; }

mkdir -p /etc/pam.d /etc/security
printf '@include common-auth\n@include common-account\n' >/etc/pam.d/popa3d
printf '@include popa3d\naccount required pam_access.so accessfile=/etc/security/popa3d-test-access.conf\n' \
    >/etc/pam.d/popa3d-rhost
printf -- '-:ALL:192.0.2.66\n+:ALL:ALL\n' >/etc/security/popa3d-test-access.conf

exec "$exe" --include-ignored --test-threads 4 inside_namespace::
"#;

#[test]
#[ignore = "needs root: run scripts/test.sh"]
fn system_databases_in_a_private_namespace() {
    assert_eq!(
        pop3_sys::privileges::euid(),
        0,
        "this test must run as root (unshare, mount)"
    );
    let host_files =
        || ["/etc/passwd", "/etc/shadow", "/etc/group"].map(|f| std::fs::read(f).unwrap());
    let before = host_files();
    let work = std::env::temp_dir().join(format!("pop3-auth-ns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir(&work).unwrap();
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            SETUP,
            "setup",
        ])
        .arg(std::env::current_exe().unwrap())
        .env(NS_ENV, &work)
        .env("V_YESCRYPT", YESCRYPT.0)
        .env("V_BCRYPT", BCRYPT.0)
        .env("V_MD5", MD5.0)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&work);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- inside the namespace ---\n{stdout}\n{stderr}");
    assert!(out.status.success(), "the namespace tests failed");
    // The inner run must have run every test of `mod inside_namespace`, not filtered them away.
    let want = format!(
        "test result: ok. {} passed; 0 failed",
        inside_namespace::COUNT
    );
    assert!(stdout.contains(&want), "expected {want:?}");
    assert!(host_files() == before, "the host's /etc changed");
}

mod inside_namespace {
    use super::*;
    use pop3_auth::pam::Pam;
    use pop3_auth::shadow::Shadow;
    use pop3_auth::{hashes_computed, Account, Authenticator, Backend, Verdict};
    use pop3_sys::pam::{self as sys, PamCode, PamOutcome};
    use pop3_sys::shadow::getpwnam_full;

    /// The number of tests in this module (checked by the outer test).
    pub const COUNT: usize = 7;

    fn inside() -> bool {
        if std::env::var_os(NS_ENV).is_none() {
            return false;
        }
        assert_eq!(pop3_sys::privileges::euid(), 0);
        true
    }

    #[derive(Clone, Copy, Debug)]
    enum Want {
        Pass,
        Fail { known: bool },
    }

    /// Every case, for both backends.
    const CASES: &[(&str, &str, Want)] = &[
        ("alice", "alice-pw", Want::Pass),
        ("bob", "bob-pw", Want::Pass),
        ("carol", BCRYPT.1, Want::Pass),
        ("dave", MD5.1, Want::Pass),
        ("alice", "alice-pw ", Want::Fail { known: true }),
        ("alice", "Alice-pw", Want::Fail { known: true }),
        ("alice", "", Want::Fail { known: true }),
        ("bob", "alice-pw", Want::Fail { known: true }),
        ("carol", "wrong", Want::Fail { known: true }),
        ("nopass", "", Want::Fail { known: true }),
        ("nopass", "anything", Want::Fail { known: true }),
        ("locked", YESCRYPT.1, Want::Fail { known: true }),
        ("starred", "", Want::Fail { known: true }),
        ("starred", "*", Want::Fail { known: true }),
        ("expired", YESCRYPT.1, Want::Fail { known: true }),
        ("mustchange", YESCRYPT.1, Want::Fail { known: true }),
        ("aged", YESCRYPT.1, Want::Fail { known: true }),
        ("toor", YESCRYPT.1, Want::Fail { known: true }),
        ("root", YESCRYPT.1, Want::Fail { known: true }),
        ("noshadow", "", Want::Fail { known: true }),
        ("noshadow", "x", Want::Fail { known: true }),
        ("nosuchuser", "alice-pw", Want::Fail { known: false }),
        ("../root", YESCRYPT.1, Want::Fail { known: false }),
        ("alice\0", "alice-pw", Want::Fail { known: false }),
    ];

    fn expected(user: &str, want: Want) -> Verdict {
        match want {
            Want::Pass => {
                let pw = getpwnam_full(user).unwrap().unwrap();
                assert_ne!(pw.uid, 0);
                Verdict::Pass(Account {
                    name: user.to_owned(),
                    uid: pw.uid,
                    gid: pw.gid,
                    mailbox: None,
                })
            }
            Want::Fail { known } => Verdict::Fail { known },
        }
    }

    /// Runs every case in its own thread (PAM sleeps ~2 s on each failure) and checks
    /// the verdict and the number of hashes we computed for it.
    fn run_cases(make: fn() -> Box<dyn Authenticator>, hashes: fn(Want) -> u64) {
        std::thread::scope(|s| {
            let handles: Vec<_> = CASES
                .iter()
                .map(|&(user, password, want)| {
                    s.spawn(move || {
                        let auth = make();
                        let before = hashes_computed();
                        let got = auth.verify(user.as_bytes(), password.as_bytes());
                        let n = hashes_computed() - before;
                        (user, password, want, got, n)
                    })
                })
                .collect();
            let mut failures = Vec::new();
            for h in handles {
                let (user, password, want, got, n) = h.join().unwrap();
                let exp = expected(user, want);
                if got != exp || n != hashes(want) {
                    failures.push(format!(
                        "{user:?} / {password:?}: got {got:?} after {n} hashes, want {exp:?} after {}",
                        hashes(want)
                    ));
                }
            }
            assert!(failures.is_empty(), "\n{}", failures.join("\n"));
        });
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn shadow_verdicts_and_one_hash_each() {
        if !inside() {
            return;
        }
        // Every path, refused or not, known or not, computes exactly one hash.
        run_cases(|| Box::new(Shadow::new()), |_| 1);
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn pam_verdicts_and_a_dummy_for_unknown_users() {
        if !inside() {
            return;
        }
        // pam_unix hashes for known users (not counted: not ours) and computes nothing
        // for unknown ones, so there we add the dummy.
        run_cases(
            || Box::new(Pam::default()),
            |want| match want {
                Want::Fail { known: false } => 1,
                _ => 0,
            },
        );
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn pam_nullok_is_what_disallow_null_authtok_closes() {
        if !inside() {
            return;
        }
        // The control: without PAM_DISALLOW_NULL_AUTHTOK, Debian's common-auth (pam_unix
        // nullok) lets `nopass` in with any password, as Debian's popa3d does.
        let open =
            sys::authenticate_with_flags("popa3d", b"nopass", b"anything", None, sys::PAM_SILENT)
                .unwrap();
        assert_eq!(
            open,
            PamOutcome::Success {
                user: b"nopass".to_vec()
            }
        );
        // With our flags: refused, with any password and with none.
        for pw in [&b"anything"[..], b""] {
            assert_eq!(
                sys::authenticate("popa3d", b"nopass", pw, None).unwrap(),
                PamOutcome::AuthFailed(PamCode(sys::PAM_AUTH_ERR))
            );
        }
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn pam_outcomes_say_which_step_refused() {
        if !inside() {
            return;
        }
        let ask = |user: &str, pw: &str| {
            sys::authenticate("popa3d", user.as_bytes(), pw.as_bytes(), None).unwrap()
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| ask("expired", YESCRYPT.1));
            let b = s.spawn(|| ask("mustchange", YESCRYPT.1));
            let c = s.spawn(|| ask("root", YESCRYPT.1));
            let d = s.spawn(|| ask("locked", YESCRYPT.1));
            let e = s.spawn(|| ask("nosuchuser", "x"));
            // The password is right; pam_acct_mgmt refuses.
            // (pam_unix says PAM_ACCT_EXPIRED; common-account's `default=ignore` then
            // falls through to pam_deny, whose PAM_AUTH_ERR is what the stack returns.)
            assert_eq!(
                a.join().unwrap(),
                PamOutcome::AccountRefused(PamCode(sys::PAM_AUTH_ERR))
            );
            assert_eq!(
                b.join().unwrap(),
                PamOutcome::AccountRefused(PamCode(sys::PAM_NEW_AUTHTOK_REQD))
            );
            // PAM lets root in: refusing uid 0 is our job (checked in the table above).
            assert_eq!(
                c.join().unwrap(),
                PamOutcome::Success {
                    user: b"root".to_vec()
                }
            );
            assert!(matches!(d.join().unwrap(), PamOutcome::AuthFailed(_)));
            assert!(matches!(e.join().unwrap(), PamOutcome::AuthFailed(_)));
        });
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn pam_rhost_reaches_the_modules() {
        if !inside() {
            return;
        }
        let pam = |rhost: &str| {
            Backend::Pam {
                service: "popa3d-rhost".into(),
            }
            .authenticator(Some(rhost))
            .verify(b"alice", b"alice-pw")
        };
        std::thread::scope(|s| {
            let denied = s.spawn(|| pam("192.0.2.66"));
            let allowed = s.spawn(|| pam("192.0.2.1"));
            assert_eq!(denied.join().unwrap(), Verdict::Fail { known: true });
            assert_eq!(allowed.join().unwrap(), expected("alice", Want::Pass));
        });
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn the_backend_enum_builds_working_checkers() {
        if !inside() {
            return;
        }
        let shadow = Backend::Shadow.authenticator(None);
        assert_eq!(
            shadow.verify(b"alice", b"alice-pw"),
            expected("alice", Want::Pass)
        );
        let pam = Backend::Pam {
            service: pop3_auth::DEFAULT_PAM_SERVICE.into(),
        }
        .authenticator(Some("192.0.2.1"));
        assert_eq!(pam.verify(b"bob", b"bob-pw"), expected("bob", Want::Pass));
    }

    #[test]
    #[ignore = "runs inside the namespace of system_databases_in_a_private_namespace"]
    fn the_overlay_is_in_place() {
        if !inside() {
            return;
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            mounts
                .lines()
                .any(|l| l.contains(" /etc ") && l.contains("overlay")),
            "/etc is not an overlay in here"
        );
        let work = PathBuf::from(std::env::var_os(NS_ENV).unwrap());
        assert!(work.join("upper/shadow").exists());
    }
}

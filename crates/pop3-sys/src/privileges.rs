//! Switching to an unprivileged account for good.
//!
//! popa3d's `set_user`: supplementary groups become the account's primary group alone,
//! then the gid, then the uid. We set real, effective and saved ids together
//! (setresgid/setresuid), so nothing is kept to switch back with, and then prove it:
//! every id reads back as the target and `setuid(0)` fails (OpenSSH's
//! `permanently_set_uid` does the same check).

use std::io;

/// The calling process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Becomes `uid`/`gid` with no supplementary groups besides `gid`, irreversibly.
/// Refuses uid 0: root is never a target (popa3d refuses it the same way).
pub fn drop_to(uid: u32, gid: u32) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing to switch to uid 0",
        ));
    }
    let groups = [gid as libc::gid_t];
    // SAFETY: `groups` is a valid array of one gid_t for the duration of the call.
    if unsafe { libc::setgroups(1, groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain syscall on integer arguments.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain syscall on integer arguments.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    verify_dropped(uid, gid)
}

fn verify_dropped(uid: u32, gid: u32) -> io::Result<()> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: the three pointers refer to live, writable locals.
    if unsafe { libc::getresuid(&mut r, &mut e, &mut s) } != 0 || (r, e, s) != (uid, uid, uid) {
        return Err(io::Error::other("uid did not change"));
    }
    // SAFETY: as above.
    if unsafe { libc::getresgid(&mut r, &mut e, &mut s) } != 0 || (r, e, s) != (gid, gid, gid) {
        return Err(io::Error::other("gid did not change"));
    }
    // SAFETY: plain syscall; we expect it to fail.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other(
            "root could be regained after dropping privileges",
        ));
    }
    Ok(())
}

/// An account from the password database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Looks up `name` in the passwd database: `Ok(None)` if there is no such account.
/// Only the ids are kept; the rest of the entry (its password field wiped) is dropped.
pub fn lookup_user(name: &str) -> io::Result<Option<Account>> {
    Ok(crate::shadow::getpwnam_full(name)?.map(|pw| Account {
        uid: pw.uid,
        gid: pw.gid,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs in a child process started by `drop_is_permanent`: dropping in the test
    /// process itself would take every other test down with it.
    #[test]
    #[ignore = "the child half of drop_is_permanent, which runs it in its own process"]
    fn child_side_of_drop_test() {
        if std::env::var_os("POP3_SYS_DROP_CHILD").is_none() {
            return;
        }
        drop_to(65534, 65534).unwrap();
        assert_eq!(euid(), 65534);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            line("Uid:").split_whitespace().skip(1).collect::<Vec<_>>(),
            ["65534"; 4]
        );
        assert_eq!(
            line("Gid:").split_whitespace().skip(1).collect::<Vec<_>>(),
            ["65534"; 4]
        );
        assert_eq!(
            line("Groups:")
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>(),
            ["65534"]
        );
        std::process::exit(42);
    }

    #[test]
    #[ignore = "needs root: run scripts/test.sh"]
    fn drop_is_permanent() {
        assert_eq!(euid(), 0, "this test must run as root");
        assert!(drop_to(0, 0).is_err());
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "privileges::tests::child_side_of_drop_test",
                "--include-ignored",
                "--nocapture",
            ])
            .env("POP3_SYS_DROP_CHILD", "1")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(42),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn lookup_finds_root_and_not_a_stranger() {
        assert_eq!(
            lookup_user("root").unwrap(),
            Some(Account { uid: 0, gid: 0 })
        );
        assert_eq!(lookup_user("no-such-user-popa3d-rs").unwrap(), None);
    }
}

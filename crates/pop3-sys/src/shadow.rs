//! getspnam_r and getpwnam_r: reading one account from the shadow and passwd databases.
//!
//! Both go through NSS, so they see whatever `/etc/nsswitch.conf` configures, exactly as
//! popa3d and pam_unix do. The C functions write the strings of the entry into a buffer
//! we supply; we copy out what the caller needs and wipe the whole buffer before it is
//! freed, because it holds the password hash. Reading `/etc/shadow` needs root.

use std::ffi::{c_char, c_int, CStr, CString, OsString};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::crypt::{wipe, Secret};

/// One entry of the shadow database. Day counts are days since 1970-01-01 (UTC), as in
/// `/etc/shadow`; `None` stands for an empty field (-1 in `struct spwd`).
#[derive(Debug)]
pub struct ShadowEntry {
    /// The encrypted password field (`sp_pwdp`), wiped when dropped. May be empty,
    /// `!`-locked or `*`: judging it is the caller's job.
    pub hash: Secret,
    /// `sp_lstchg`: the day of the last password change; `Some(0)` means the password
    /// must be changed at the next login.
    pub last_change: Option<i64>,
    /// `sp_max`: days after the last change when the password must be changed.
    pub max_days: Option<i64>,
    /// `sp_inact`: days after the password expired when the account is disabled.
    pub inactive_days: Option<i64>,
    /// `sp_expire`: the day the account expires.
    pub expire: Option<i64>,
}

/// One entry of the passwd database.
#[derive(Debug)]
pub struct Passwd {
    pub name: OsString,
    /// The passwd-file password field: usually `x` (the hash is in shadow), wiped when
    /// dropped.
    pub passwd: Secret,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// The largest buffer we offer getpwnam_r/getspnam_r before giving up on ERANGE.
const MAX_BUF: usize = 1 << 20;

/// A buffer for the `_r` functions, wiped when dropped (it holds hashes).
struct Buf(Vec<c_char>);

impl Buf {
    fn grow(&mut self) -> bool {
        if self.0.len() >= MAX_BUF {
            return false;
        }
        let len = self.0.len() * 4;
        self.wipe();
        self.0 = vec![0; len];
        true
    }

    fn wipe(&mut self) {
        // SAFETY: c_char and u8 have the same size and alignment, and every bit pattern
        // is valid for both; the slice covers exactly the vector's initialised elements.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len())
        };
        wipe(bytes);
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        self.wipe();
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Copies a NUL-terminated string of an entry. A null pointer reads as empty.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid for the call.
unsafe fn copy_c(p: *const c_char) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
}

/// -1 (and any other negative value) is how `struct spwd` says "empty field".
#[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
fn days(v: libc::c_long) -> Option<i64> {
    (v >= 0).then(|| i64::from(v))
}

/// "Not found" as the `_r` functions may report it: glibc returns 0 with a null result,
/// some NSS modules an errno (getpwnam_r(3) lists these).
fn not_found(rc: c_int) -> bool {
    matches!(
        rc,
        0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM
    )
}

/// Looks `name` up in the shadow database with getspnam_r. `Ok(None)` if there is no
/// entry. Needs read access to `/etc/shadow` (root); without it the error is EACCES.
pub fn getspnam(name: &str) -> io::Result<Option<ShadowEntry>> {
    let cname = c_name(name)?;
    let mut buf = Buf(vec![0; 4096]);
    loop {
        // SAFETY: `spwd` is a plain C struct of pointers and integers, for which all-zero
        // is a valid value; getspnam_r fills it in.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::spwd = std::ptr::null_mut();
        // glibc's getspnam_r returns -1 and sets errno (not the error number itself) on
        // some paths; read errno in that case.
        // SAFETY: every pointer refers to live, writable memory of the stated size, and
        // `cname` is NUL-terminated.
        let rc = unsafe {
            libc::getspnam_r(
                cname.as_ptr(),
                &mut sp,
                buf.0.as_mut_ptr(),
                buf.0.len(),
                &mut result,
            )
        };
        let rc = if rc == -1 {
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        } else {
            rc
        };
        if rc == libc::ERANGE && buf.grow() {
            continue;
        }
        if result.is_null() {
            return if not_found(rc) {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(rc))
            };
        }
        // SAFETY: on success the string fields point into `buf` (or are null) and are
        // NUL-terminated; `buf` is alive until the end of this block.
        let hash = Secret::new(unsafe { copy_c(sp.sp_pwdp) });
        return Ok(Some(ShadowEntry {
            hash,
            last_change: days(sp.sp_lstchg),
            max_days: days(sp.sp_max),
            inactive_days: days(sp.sp_inact),
            expire: days(sp.sp_expire),
        }));
        // `buf`, which held the hash, is wiped on drop.
    }
}

/// Looks `name` up in the passwd database with getpwnam_r and returns the whole entry
/// (`privileges::lookup_user` returns only the ids). `Ok(None)` if there is no account.
pub fn getpwnam_full(name: &str) -> io::Result<Option<Passwd>> {
    let cname = c_name(name)?;
    let mut buf = Buf(vec![0; 16 * 1024]);
    loop {
        // SAFETY: plain data; getpwnam_r fills it in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, writable memory of the stated size, and
        // `cname` is NUL-terminated.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.0.as_mut_ptr(),
                buf.0.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.grow() {
            continue;
        }
        if result.is_null() {
            return if not_found(rc) {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(rc))
            };
        }
        // SAFETY: on success the string fields point into `buf` (or are null) and are
        // NUL-terminated; `buf` is alive until the end of this block.
        let name = unsafe { copy_c(pw.pw_name) };
        // SAFETY: as above.
        let passwd = Secret::new(unsafe { copy_c(pw.pw_passwd) });
        // SAFETY: as above.
        let home = unsafe { copy_c(pw.pw_dir) };
        // SAFETY: as above.
        let shell = unsafe { copy_c(pw.pw_shell) };
        return Ok(Some(Passwd {
            name: OsString::from_vec(name),
            passwd,
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: PathBuf::from(OsString::from_vec(home)),
            shell: PathBuf::from(OsString::from_vec(shell)),
        }));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn passwd_of_root_and_of_nobody() {
        let root = getpwnam_full("root").unwrap().unwrap();
        assert_eq!(root.name, "root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.home, PathBuf::from("/root"));
        assert!(!root.shell.as_os_str().is_empty());
        assert!(getpwnam_full("no-such-user-popa3d-rs").unwrap().is_none());
        assert!(getpwnam_full("").unwrap().is_none());
        assert_eq!(
            getpwnam_full("ro\0ot").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn shadow_of_root_or_permission_denied() {
        let root = crate::privileges::euid() == 0;
        match getspnam("root") {
            // As root: Debian's root entry from /etc/shadow (its hash may be `*`, `!` or
            // real, but the last-change day is always set).
            Ok(Some(e)) if root => {
                assert!(e.last_change.is_some(), "{e:?}");
                assert!(format!("{e:?}").contains("Secret("));
            }
            // Without root, /etc/shadow is unreadable and nss-systemd (nsswitch
            // `shadow: files systemd`) may answer with a synthesized, locked entry.
            Ok(Some(e)) => assert!(matches!(e.hash.as_bytes().first(), Some(b'!' | b'*'))),
            Ok(None) => panic!("root has no shadow entry"),
            Err(e) => {
                assert!(!root, "{e}");
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            }
        }
        if root {
            assert!(getspnam("no-such-user-popa3d-rs").unwrap().is_none());
        }
    }

    #[test]
    fn empty_fields_are_none() {
        assert_eq!(days(-1), None);
        assert_eq!(days(0), Some(0));
        assert_eq!(days(19000), Some(19000));
    }
}

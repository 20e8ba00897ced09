//! Authentication for popa3d-rs: one password check per login, in a short-lived process.
//!
//! The caller (the privileged side of a session) forks a verifier process that builds an
//! [`Authenticator`] from the configuration ([`Backend::authenticator`]), calls
//! [`Authenticator::verify`] once, sends the [`Verdict`] back and exits, so no shadow
//! data, password or PAM state outlives the check. Rules every backend keeps (issue #3,
//! research/popa3d.md §6):
//! - root (uid 0) is refused, under any name;
//! - an account with an empty or locked password is refused, whatever password is given
//!   (Debian's popa3d lets empty-password accounts in through PAM's `nullok`);
//! - an unknown user costs the same time as a wrong password (a dummy hash of the same
//!   kind) and gets the same verdict apart from `known`, which is only for the log;
//! - the password is never logged and is zeroized after use by the caller.
//!
//! "One hash per login" is checked, not just intended: every hash computed for a login
//! goes through one function that counts it ([`hashes_computed`]), and the tests assert
//! that a wrong password, an unknown user, a locked account and a malformed name each
//! cost exactly one. (Under PAM the hash of a known user is pam_unix's own and not
//! counted; ours is the dummy for an unknown one.)
//!
//! The backends:
//! - [`shadow::Shadow`]: getpwnam + getspnam + libxcrypt, popa3d's upstream default;
//! - [`pam::Pam`]: PAM service `popa3d`, as Debian builds popa3d;
//! - [`passwd_file::PasswdFile`]: virtual users in Dovecot's passwd-file format.
//!
//! Nothing here may panic on input (the user name, the password, the passwd-file); an
//! unusable configuration is a [`Verdict::Error`], which fails the login like a wrong
//! password and says what to fix in the log.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

mod hash;
pub mod pam;
pub mod passwd_file;
pub mod shadow;

pub use hash::hashes_computed;

/// The account a login maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account name (for PAM, the name PAM settled on).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The mailbox, when the backend says where it is (passwd-file's mail location).
    /// `None`: `<spool>/<user as typed>`, as popa3d does.
    pub mailbox: Option<PathBuf>,
}

/// The outcome of one password check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass(Account),
    /// `known`: the user exists (logged by name); otherwise logged as `UNKNOWN USER`.
    Fail {
        known: bool,
    },
    /// The check could not be made: the configuration is unusable or a system call
    /// failed. The login fails with the same reply as [`Verdict::Fail`]; the error is
    /// for the log (it never contains the password or a hash).
    Error(AuthError),
}

/// Why a check could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The passwd-file cannot be used. `line` is 1-based; `None` when the problem is the
    /// file as a whole (unreadable, writable by others, too large).
    PasswdFile {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A lookup or library call failed (getpwnam, getspnam, PAM).
    System(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::PasswdFile {
                path,
                line: Some(line),
                message,
            } => write!(f, "passwd-file {}:{line}: {message}", path.display()),
            AuthError::PasswdFile {
                path,
                line: None,
                message,
            } => write!(f, "passwd-file {}: {message}", path.display()),
            AuthError::System(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AuthError {}

/// A password checker.
pub trait Authenticator {
    /// Checks `password` for `user` (bytes as the client typed them).
    fn verify(&self, user: &[u8], password: &[u8]) -> Verdict;
}

/// The PAM service name Debian's popa3d uses (`/etc/pam.d/popa3d`).
pub const DEFAULT_PAM_SERVICE: &str = "popa3d";

/// Which backend checks passwords: the `auth` setting of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// System accounts: getpwnam + getspnam + libxcrypt (upstream popa3d's default).
    Shadow,
    /// System accounts through PAM (Debian's popa3d), with this service name.
    Pam { service: String },
    /// Virtual users from a Dovecot-style passwd-file, read afresh at each login.
    PasswdFile { path: PathBuf },
}

impl Backend {
    /// The checker for one login. `rhost`, the client's address, is given to PAM as
    /// PAM_RHOST; the other backends do not use it.
    pub fn authenticator(&self, rhost: Option<&str>) -> Box<dyn Authenticator> {
        match self {
            Backend::Shadow => Box::new(shadow::Shadow::new()),
            Backend::Pam { service } => {
                Box::new(pam::Pam::new(service.clone()).with_rhost(rhost.map(str::to_owned)))
            }
            Backend::PasswdFile { path } => Box::new(passwd_file::PasswdFile::new(path.clone())),
        }
    }
}

/// The longest user name accepted, in bytes (popa3d's limit).
pub const MAX_USER_NAME_LEN: usize = 40;

/// The typed user name, if it may be looked up at all: 1 to [`MAX_USER_NAME_LEN`]
/// bytes of UTF-8, no `/`, no white space or control character (NUL, space, TAB, CR,
/// LF ...), not starting with `.`. The mailbox path is built from the typed name (`<spool>/<user>`, `%u`), so
/// `..`, `.hidden` and `a/b` must never reach it; control characters have no place in
/// a name and would end up in the log. popa3d accepts TAB and other bytes: we do not.
pub fn user_name(user: &[u8]) -> Option<&str> {
    let name = std::str::from_utf8(user).ok()?;
    let ok = !name.is_empty()
        && name.len() <= MAX_USER_NAME_LEN
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then_some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        let ok: &[&[u8]] = &[
            b"alice",
            b"a",
            b"bob.smith",
            b"user@example.org",
            b"x-y_z",
            "j\u{f6}rg".as_bytes(),
            &[b'a'; MAX_USER_NAME_LEN],
        ];
        for n in ok {
            assert!(user_name(n).is_some(), "{:?}", String::from_utf8_lossy(n));
        }
        let bad: &[&[u8]] = &[
            b"",
            b".",
            b"..",
            b".hidden",
            b"../etc/passwd",
            b"a/b",
            b"/",
            b"al\0ice",
            b"al\tice",
            b"al ice",
            b" alice",
            b"alice\n",
            b"alice\r",
            b"\x7f",
            b"\xff\xfe",
            &[b'a'; MAX_USER_NAME_LEN + 1],
        ];
        for n in bad {
            assert!(user_name(n).is_none(), "{:?}", String::from_utf8_lossy(n));
        }
    }

    #[test]
    fn errors_name_the_place() {
        let e = AuthError::PasswdFile {
            path: "/etc/popa3d/users".into(),
            line: Some(12),
            message: "uid is not a number".into(),
        };
        assert_eq!(
            e.to_string(),
            "passwd-file /etc/popa3d/users:12: uid is not a number"
        );
        let e = AuthError::PasswdFile {
            path: "/x".into(),
            line: None,
            message: "is writable by group or others".into(),
        };
        assert_eq!(
            e.to_string(),
            "passwd-file /x: is writable by group or others"
        );
    }

    #[test]
    fn backends_build() {
        // Building never touches the system; only verify does.
        for b in [
            Backend::Shadow,
            Backend::Pam {
                service: DEFAULT_PAM_SERVICE.into(),
            },
            Backend::PasswdFile {
                path: "/nonexistent".into(),
            },
        ] {
            let _ = b.authenticator(Some("192.0.2.1"));
        }
    }
}

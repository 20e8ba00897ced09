//! Authentication for popa3d-rs: one password check per login, in a short-lived process.
//!
//! The caller (the privileged side of a session) forks a verifier process that builds an
//! [`Authenticator`] from the configuration, calls [`Authenticator::verify`] once, sends
//! the [`Verdict`] back and exits, so no shadow data, password or PAM state outlives the
//! check. Rules every backend keeps (issue #3, research/popa3d.md §6):
//! - root (uid 0) is refused, under any name;
//! - an account with an empty or locked password is refused, whatever password is given
//!   (Debian's popa3d lets empty-password accounts in through PAM's `nullok`);
//! - an unknown user costs the same time as a wrong password (a dummy hash of the same
//!   kind) and gets the same verdict apart from `known`, which is only for the log;
//! - the password is never logged and is zeroized after use by the caller.
#![forbid(unsafe_code)]

use std::path::PathBuf;

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
    Fail { known: bool },
}

/// A password checker.
pub trait Authenticator {
    /// Checks `password` for `user` (bytes as the client typed them).
    fn verify(&self, user: &[u8], password: &[u8]) -> Verdict;
}

//! The `pam` backend: system accounts through PAM, as Debian builds popa3d
//! (research/popa3d.md §6.1).
//!
//! Differences from Debian's popa3d:
//! - `PAM_DISALLOW_NULL_AUTHTOK` is passed, so pam_unix's `nullok` no longer lets an
//!   empty-password account in with any password;
//! - PAM_RHOST is set to the client's address when the caller knows it;
//! - the account PAM settled on (PAM_USER afterwards) is refused when its uid is 0,
//!   even if PAM said yes;
//! - pam_unix computes no hash for an unknown user (it only sleeps its fail delay), so
//!   we compute one dummy hash then, and an unknown user costs what a wrong password
//!   does.

use pop3_sys::pam::{self as sys, PamOutcome};
use pop3_sys::shadow::getpwnam_full;

use crate::hash::default_dummy;
use crate::{user_name, Account, AuthError, Authenticator, Verdict, DEFAULT_PAM_SERVICE};

/// The PAM backend: a service name and, optionally, the client's address.
#[derive(Clone, Debug)]
pub struct Pam {
    service: String,
    rhost: Option<String>,
}

impl Default for Pam {
    fn default() -> Self {
        Pam::new(DEFAULT_PAM_SERVICE)
    }
}

impl Pam {
    /// Checks passwords with `/etc/pam.d/<service>`.
    pub fn new(service: impl Into<String>) -> Self {
        Pam {
            service: service.into(),
            rhost: None,
        }
    }

    /// The client's address, given to PAM as PAM_RHOST.
    pub fn with_rhost(mut self, rhost: Option<String>) -> Self {
        self.rhost = rhost;
        self
    }
}

/// "Known", for the log: whether the typed name is an account at all.
fn exists(name: &str) -> Result<bool, AuthError> {
    getpwnam_full(name)
        .map(|pw| pw.is_some())
        .map_err(|e| AuthError::System(format!("getpwnam: {e}")))
}

impl Authenticator for Pam {
    fn verify(&self, user: &[u8], password: &[u8]) -> Verdict {
        let dummy = || default_dummy().check(password);
        let Some(name) = user_name(user) else {
            dummy();
            return Verdict::Fail { known: false };
        };
        let outcome = if password.contains(&0) {
            // PAM would see a shorter password than the one typed: never ask.
            None
        } else {
            match sys::authenticate(
                &self.service,
                name.as_bytes(),
                password,
                self.rhost.as_deref(),
            ) {
                Ok(outcome) => Some(outcome),
                Err(e) => {
                    dummy();
                    return Verdict::Error(AuthError::System(e.to_string()));
                }
            }
        };
        match outcome {
            Some(PamOutcome::Success { user }) => settled_account(&user),
            Some(PamOutcome::AuthFailed(_) | PamOutcome::AccountRefused(_)) | None => {
                match exists(name) {
                    Ok(true) => {
                        if outcome.is_none() {
                            dummy();
                        }
                        Verdict::Fail { known: true }
                    }
                    Ok(false) => {
                        dummy();
                        Verdict::Fail { known: false }
                    }
                    Err(e) => Verdict::Error(e),
                }
            }
        }
    }
}

/// The account PAM settled on, unless it is root or cannot be used.
fn settled_account(pam_user: &[u8]) -> Verdict {
    // PAM_USER may have been changed by a module; it becomes the account we switch to,
    // so it must pass the same checks as a typed name.
    let Some(name) = user_name(pam_user) else {
        return Verdict::Fail { known: true };
    };
    match getpwnam_full(name) {
        Ok(Some(pw)) if pw.uid != 0 => match pw.name.into_string() {
            Ok(name) => Verdict::Pass(Account {
                name,
                uid: pw.uid,
                gid: pw.gid,
                mailbox: None,
            }),
            Err(_) => Verdict::Fail { known: true },
        },
        // Root, or PAM vouched for a name the passwd database does not have.
        Ok(_) => Verdict::Fail { known: true },
        Err(e) => Verdict::Error(AuthError::System(format!("getpwnam: {e}"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::hashes_computed;

    // PAM itself is exercised against real accounts in tests/system.rs (root, private
    // mount namespace). What needs no PAM configuration is tested here.

    #[test]
    fn bad_names_never_reach_pam_and_cost_one_hash() {
        let before = hashes_computed();
        for user in [&b"../root"[..], b"", b".x", b"a\0b"] {
            assert_eq!(
                Pam::default().verify(user, b"pw"),
                Verdict::Fail { known: false }
            );
        }
        assert_eq!(hashes_computed() - before, 4);
    }

    #[test]
    fn root_settled_on_by_pam_is_refused() {
        assert_eq!(settled_account(b"root"), Verdict::Fail { known: true });
        assert_eq!(
            settled_account(b"no-such-user-popa3d-rs"),
            Verdict::Fail { known: true }
        );
        assert_eq!(settled_account(b"../x"), Verdict::Fail { known: true });
        // An ordinary system account (Debian always has `nobody`).
        match settled_account(b"nobody") {
            Verdict::Pass(a) => {
                assert_eq!(a.name, "nobody");
                assert_eq!(a.uid, 65534);
                assert_eq!(a.mailbox, None);
            }
            v => panic!("{v:?}"),
        }
    }
}

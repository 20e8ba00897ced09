//! The `shadow` backend: system accounts from getpwnam + getspnam, hashes checked by
//! libxcrypt (upstream popa3d's default, research/popa3d.md §6.2).
//!
//! Differences from popa3d: uid 0 is refused here rather than later; an account is
//! also refused when it has expired or its password must be changed (what pam_unix's
//! account check refuses under Debian's PAM configuration); and the dummy hash has
//! Debian's default scheme and cost instead of a fixed DES salt, so an unknown user
//! costs what a real one does. The passwd entry's own password field is never used:
//! an account without a shadow entry is refused.
//!
//! Runs as root (getspnam reads `/etc/shadow`); the hash is wiped after use.

use std::time::{SystemTime, UNIX_EPOCH};

use pop3_sys::shadow::{getpwnam_full, getspnam, Passwd, ShadowEntry};

use crate::hash::{default_dummy, StoredHash};
use crate::{user_name, Account, AuthError, Authenticator, Verdict};

/// The shadow backend. Holds nothing: every lookup happens in [`Authenticator::verify`].
#[derive(Clone, Debug, Default)]
pub struct Shadow {
    _private: (),
}

impl Shadow {
    pub fn new() -> Self {
        Shadow { _private: () }
    }
}

/// Why an existing account may not log in, whatever the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Root,
    NoShadowEntry,
    EmptyPassword,
    /// `!...` (passwd -l, usermod -L) or `*...` (no password ever set).
    Locked,
    /// sp_expire is today or earlier.
    AccountExpired,
    /// sp_lstchg is 0: the password must be changed first.
    MustChangePassword,
    /// More than sp_max days since sp_lstchg.
    PasswordExpired,
}

/// Days since 1970-01-01 UTC, as `/etc/shadow` counts them.
pub(crate) fn today() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

/// pam_unix's `check_shadow_expiry`, as Debian's common-account applies it: everything
/// but "success" refuses the login. An empty last-change field disables aging
/// (shadow(5)).
pub(crate) fn expiry(sp: &ShadowEntry, today: i64) -> Option<Refusal> {
    if sp.expire.is_some_and(|day| today >= day) {
        return Some(Refusal::AccountExpired);
    }
    match sp.last_change {
        Some(0) => Some(Refusal::MustChangePassword),
        Some(changed) if today >= changed => sp
            .max_days
            .is_some_and(|max| today - changed > max)
            .then_some(Refusal::PasswordExpired),
        _ => None,
    }
}

/// The refusal for a stored password field, if any (shared with passwd-file).
pub(crate) fn unusable_hash(hash: &[u8]) -> Option<Refusal> {
    match hash.first() {
        None => Some(Refusal::EmptyPassword),
        Some(b'!' | b'*') => Some(Refusal::Locked),
        Some(_) => None,
    }
}

fn judge(pw: &Passwd, sp: Option<&ShadowEntry>, today: i64) -> Result<(), Refusal> {
    if pw.uid == 0 {
        return Err(Refusal::Root);
    }
    let sp = sp.ok_or(Refusal::NoShadowEntry)?;
    if let Some(r) = unusable_hash(sp.hash.as_bytes()) {
        return Err(r);
    }
    expiry(sp, today).map_or(Ok(()), Err)
}

impl Authenticator for Shadow {
    fn verify(&self, user: &[u8], password: &[u8]) -> Verdict {
        let dummy = || default_dummy().check(password);
        let Some(name) = user_name(user) else {
            dummy();
            return Verdict::Fail { known: false };
        };
        let pw = match getpwnam_full(name) {
            Ok(Some(pw)) => pw,
            Ok(None) => {
                dummy();
                return Verdict::Fail { known: false };
            }
            Err(e) => {
                dummy();
                return Verdict::Error(AuthError::System(format!("getpwnam: {e}")));
            }
        };
        let sp = match getspnam(name) {
            Ok(sp) => sp,
            Err(e) => {
                dummy();
                return Verdict::Error(AuthError::System(format!("getspnam: {e}")));
            }
        };
        let allowed = judge(&pw, sp.as_ref(), today());
        let matched = match (&allowed, sp) {
            (Ok(()), Some(sp)) => StoredHash::Crypt(sp.hash).check(password),
            _ => {
                dummy();
                false
            }
        };
        if !matched {
            return Verdict::Fail { known: true };
        }
        match pw.name.into_string() {
            Ok(name) => Verdict::Pass(Account {
                name,
                uid: pw.uid,
                gid: pw.gid,
                mailbox: None,
            }),
            // A name that is not UTF-8 cannot be an Account; treat it as refused.
            Err(_) => Verdict::Fail { known: true },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use pop3_sys::crypt::Secret;

    fn entry(hash: &str) -> ShadowEntry {
        ShadowEntry {
            hash: Secret::new(hash.as_bytes().to_vec()),
            last_change: Some(19000),
            max_days: Some(99999),
            inactive_days: None,
            expire: None,
        }
    }

    fn passwd(uid: u32) -> Passwd {
        Passwd {
            name: "alice".into(),
            passwd: Secret::new(b"x".to_vec()),
            uid,
            gid: 100,
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    const TODAY: i64 = 20_000;

    #[test]
    fn refusals() {
        let good = "$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1";
        assert_eq!(judge(&passwd(1000), Some(&entry(good)), TODAY), Ok(()));
        assert_eq!(
            judge(&passwd(0), Some(&entry(good)), TODAY),
            Err(Refusal::Root)
        );
        assert_eq!(
            judge(&passwd(1000), None, TODAY),
            Err(Refusal::NoShadowEntry)
        );
        let cases = [
            ("", Refusal::EmptyPassword),
            ("!", Refusal::Locked),
            ("*", Refusal::Locked),
            ("!*", Refusal::Locked),
            (
                "!$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1",
                Refusal::Locked,
            ),
        ];
        for (hash, want) in cases {
            assert_eq!(
                judge(&passwd(1000), Some(&entry(hash)), TODAY),
                Err(want),
                "{hash:?}"
            );
        }
    }

    #[test]
    fn expiry_follows_pam_unix() {
        let base = entry("$6$x$y");
        let with = |f: &dyn Fn(&mut ShadowEntry)| {
            let mut e = entry("$6$x$y");
            f(&mut e);
            expiry(&e, TODAY)
        };
        assert_eq!(expiry(&base, TODAY), None);
        // Account expiry: the day itself counts as expired.
        assert_eq!(
            with(&|e| e.expire = Some(TODAY)),
            Some(Refusal::AccountExpired)
        );
        assert_eq!(with(&|e| e.expire = Some(1)), Some(Refusal::AccountExpired));
        assert_eq!(with(&|e| e.expire = Some(0)), Some(Refusal::AccountExpired));
        assert_eq!(with(&|e| e.expire = Some(TODAY + 1)), None);
        // Forced change.
        assert_eq!(
            with(&|e| e.last_change = Some(0)),
            Some(Refusal::MustChangePassword)
        );
        // Aging: max days since the last change.
        let aged = |changed: i64, max: Option<i64>| {
            with(&|e| {
                e.last_change = Some(changed);
                e.max_days = max;
            })
        };
        assert_eq!(aged(TODAY - 90, Some(90)), None);
        assert_eq!(aged(TODAY - 91, Some(90)), Some(Refusal::PasswordExpired));
        assert_eq!(aged(1, None), None);
        // Changed "in the future" (clock skew): pam_unix lets it pass.
        assert_eq!(aged(TODAY + 5, Some(1)), None);
        // Empty last-change field: no aging.
        assert_eq!(with(&|e| e.last_change = None), None);
    }

    #[test]
    fn today_is_plausible() {
        // 2024-01-01 is day 19723.
        assert!(today() > 19_723, "{}", today());
    }
}

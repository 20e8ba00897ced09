//! Stored password hashes, the one function that computes a hash, and the dummy.
//!
//! Every backend checks a password by calling [`StoredHash::check`] exactly once per
//! login: against the account's hash when the account may log in, against a dummy of
//! the same kind otherwise (unknown user, root, empty or locked password, expired
//! account, malformed name). The answer is then the same and costs the same.

use std::cell::Cell;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use pop3_sys::crypt::{self, Secret};
use zeroize::Zeroizing;

thread_local! {
    static HASHES: Cell<u64> = const { Cell::new(0) };
}

/// How many password hashes this thread has computed through pop3-auth so far,
/// dummies included. Per thread, so that parallel tests do not see each other; the
/// verifier is single-threaded, so there it is the process's count. A login costs
/// exactly one (PAM's own hashing is not counted: see the crate documentation).
pub fn hashes_computed() -> u64 {
    HASHES.with(Cell::get)
}

/// A stored password hash in a scheme we can check.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoredHash {
    /// A crypt(3) string, checked by libxcrypt: yescrypt, sha512-crypt, bcrypt ...
    /// Also a bare setting (`$y$j9T$salt`), which never matches: that is the dummy.
    Crypt(Secret),
    /// An Argon2i or Argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`),
    /// already checked to parse.
    Argon2(Zeroizing<String>),
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredHash::Crypt(_) => f.write_str("Crypt(..)"),
            StoredHash::Argon2(_) => f.write_str("Argon2(..)"),
        }
    }
}

impl StoredHash {
    /// Hashes `password` once against this hash and says whether it matches.
    ///
    /// A password crypt(3) cannot take (a NUL byte, more than libxcrypt's 511 bytes)
    /// still costs one hash, of its longest usable prefix, and never matches: such a
    /// refusal must not be faster than a wrong password.
    pub(crate) fn check(&self, password: &[u8]) -> bool {
        HASHES.with(|n| n.set(n.get() + 1));
        let (usable, pw) = usable_prefix(password, matches!(self, StoredHash::Crypt(_)));
        let matched = match self {
            StoredHash::Crypt(h) => crypt::verify(pw, h.as_bytes()),
            StoredHash::Argon2(phc) => argon2_verify(pw, phc),
        };
        matched && usable
    }
}

/// The part of `password` a hash function can take, and whether that is all of it.
fn usable_prefix(password: &[u8], crypt_limit: bool) -> (bool, &[u8]) {
    let mut end = password
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(password.len());
    if crypt_limit {
        end = end.min(crypt::MAX_PASSWORD_LEN);
    }
    (end == password.len(), &password[..end])
}

fn argon2_verify(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // Argon2::default() takes the algorithm, version and parameters from the PHC
        // string; the comparison inside is constant-time.
        Ok(h) => Argon2::default().verify_password(password, &h).is_ok(),
        Err(_) => false,
    }
}

/// Settings tried for the default dummy, best first: Debian 12's default (yescrypt at
/// the cost pam_unix and chpasswd use), then sha512-crypt for a libcrypt without
/// yescrypt. Fixed fallbacks for when no random salt can be had; any salt will do.
const DUMMY_PREFIXES: [&[u8]; 2] = [b"$y$", b"$6$"];
const DUMMY_FIXED: [&[u8]; 2] = [b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$", b"$6$popa3drsdummy$"];

/// The dummy for a system account that does not exist or may not log in: a crypt
/// setting of the system's default scheme and cost, made once per process.
pub(crate) fn default_dummy() -> &'static StoredHash {
    static DUMMY: OnceLock<StoredHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let setting = DUMMY_PREFIXES
            .iter()
            .find_map(|p| crypt::gensalt(p, 0))
            .or_else(|| {
                DUMMY_FIXED
                    .iter()
                    .find(|s| crypt::crypt(b"", s).is_some())
                    .map(|s| s.to_vec())
            })
            // With no yescrypt and no sha512-crypt, libcrypt can hash nothing we check
            // against anyway; DES keeps the cost of a call at least non-zero.
            .unwrap_or_else(|| b"po".to_vec());
        StoredHash::Crypt(Secret::new(setting))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn crypt_hash(s: &str) -> StoredHash {
        StoredHash::Crypt(Secret::new(s.as_bytes().to_vec()))
    }

    #[test]
    fn each_check_is_one_hash() {
        let h = crypt_hash("$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0");
        let before = hashes_computed();
        assert!(h.check(b"md5-secret"));
        assert!(!h.check(b"md5-secre"));
        assert!(!default_dummy().check(b"md5-secret"));
        assert_eq!(hashes_computed() - before, 3);
    }

    #[test]
    fn unusable_passwords_never_match_but_still_cost_a_hash() {
        let h = crypt_hash("$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0");
        let before = hashes_computed();
        // The prefix before the NUL is the right password: still no.
        assert!(!h.check(b"md5-secret\0tail"));
        let mut long = b"md5-secret".to_vec();
        long.resize(crypt::MAX_PASSWORD_LEN + 1, b'x');
        assert!(!h.check(&long));
        assert_eq!(hashes_computed() - before, 2);
        assert_eq!(usable_prefix(b"ab\0cd", true), (false, &b"ab"[..]));
        assert_eq!(usable_prefix(b"abcd", true), (true, &b"abcd"[..]));
        assert_eq!(usable_prefix(&long, false), (true, &long[..]));
    }

    #[test]
    fn the_dummy_is_debians_default_and_never_matches() {
        let StoredHash::Crypt(s) = default_dummy() else {
            panic!("not a crypt dummy");
        };
        assert!(s.as_bytes().starts_with(b"$y$j9T$"), "{s:?}");
        // The setting alone: the hash of any password is longer, so never equal.
        assert!(!default_dummy().check(b""));
        assert!(!default_dummy().check(b"x"));
        for fixed in DUMMY_FIXED {
            assert!(crypt::crypt(b"", fixed).is_some());
        }
    }

    #[test]
    fn argon2_reference_vectors() {
        // From the Argon2 reference implementation's test suite (src/test.c); the small
        // memory costs keep an unoptimised test build fast.
        for phc in [
            "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
            "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
            "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
        ] {
            let h = StoredHash::Argon2(Zeroizing::new(phc.to_owned()));
            assert!(h.check(b"password"), "{phc}");
            assert!(!h.check(b"passwore"), "{phc}");
            assert!(!h.check(b"password\0"), "{phc}");
        }
        // The same tag under the other variant does not verify.
        let swapped = StoredHash::Argon2(Zeroizing::new(
            "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8"
                .to_owned(),
        ));
        assert!(!swapped.check(b"password"));
    }
}

//! libxcrypt's crypt_r: password hashing for every crypt(3) scheme the system supports.
//!
//! Debian 12 hashes new passwords with yescrypt (`$y$`), which no pure-Rust crate covers,
//! so the shadow and passwd-file backends hash through the system's libcrypt: whatever
//! `/etc/shadow` can hold, we can check (yescrypt, sha512-crypt, bcrypt, md5-crypt ...).
//!
//! Every buffer that holds a password, or a hash computed from one, is wiped before it
//! is freed: the NUL-terminated copy of the password handed to C, and libxcrypt's 32 KiB
//! `struct crypt_data` (which holds the phrase, the setting and the result). Nothing here
//! logs or keeps a password.

use std::ffi::{c_char, c_int, c_ulong};
use std::fmt;

// libxcrypt's <crypt.h>.
const CRYPT_OUTPUT_SIZE: usize = 384;
const CRYPT_MAX_PASSPHRASE_SIZE: usize = 512;
const CRYPT_GENSALT_OUTPUT_SIZE: usize = 192;
const CRYPT_DATA_RESERVED_SIZE: usize = 767;
const CRYPT_DATA_INTERNAL_SIZE: usize = 30720;

/// The longest password libxcrypt accepts (longer ones make crypt_r fail with ERANGE).
pub const MAX_PASSWORD_LEN: usize = CRYPT_MAX_PASSPHRASE_SIZE - 1;

/// `struct crypt_data` from <crypt.h>, byte for byte (all `char`, so no padding).
#[repr(C)]
struct CryptData {
    output: [u8; CRYPT_OUTPUT_SIZE],
    setting: [u8; CRYPT_OUTPUT_SIZE],
    input: [u8; CRYPT_MAX_PASSPHRASE_SIZE],
    reserved: [u8; CRYPT_DATA_RESERVED_SIZE],
    initialized: u8,
    internal: [u8; CRYPT_DATA_INTERNAL_SIZE],
}

// libxcrypt documents the struct as exactly 32768 bytes; a mismatch would let crypt_r
// write past our allocation.
const _: () = assert!(std::mem::size_of::<CryptData>() == 32768);
const _: () = assert!(std::mem::align_of::<CryptData>() == 1);

#[link(name = "crypt")]
extern "C" {
    fn crypt_r(phrase: *const c_char, setting: *const c_char, data: *mut CryptData) -> *mut c_char;
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// Overwrites `buf` with zeros in a way the optimiser may not remove (explicit_bzero).
pub fn wipe(buf: &mut [u8]) {
    // SAFETY: `buf` is a live, writable slice of exactly `buf.len()` bytes.
    unsafe { libc::explicit_bzero(buf.as_mut_ptr().cast(), buf.len()) }
}

/// Bytes that are wiped when dropped: a password copy, a stored hash.
/// `Debug` never shows the contents; `==` takes constant time for equal lengths.
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// A copy of `bytes` with a NUL appended, allocated once so that no reallocation
    /// leaves an unwiped copy behind. `None` if `bytes` contains a NUL (C would see a
    /// shorter string than the caller meant).
    fn c_string(bytes: &[u8]) -> Option<Self> {
        if bytes.contains(&0) {
            return None;
        }
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        Some(Secret(v))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn as_c_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// A heap-allocated, zeroed `struct crypt_data`, wiped again when dropped.
struct Scratch(Vec<u8>);

impl Scratch {
    fn new() -> Self {
        // Zeroed, as crypt_r requires of a new `struct crypt_data` ("initialized" = 0).
        Scratch(vec![0u8; std::mem::size_of::<CryptData>()])
    }

    fn as_mut_ptr(&mut self) -> *mut CryptData {
        // CryptData has alignment 1 and the vector is exactly its size.
        self.0.as_mut_ptr().cast()
    }

    /// The NUL-terminated string crypt_r returned, if `p` points into `output`.
    fn result(&self, p: *const c_char) -> Option<&[u8]> {
        let output = &self.0[..CRYPT_OUTPUT_SIZE];
        if p.is_null() || p != output.as_ptr().cast() {
            return None;
        }
        let end = output.iter().position(|&b| b == 0)?;
        Some(&output[..end])
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Runs crypt_r and hands the result (never a failure token) to `f` while the
/// scratch area is still alive; the area is wiped afterwards.
fn with_crypt<T>(password: &[u8], setting: &[u8], f: impl FnOnce(Option<&[u8]>) -> T) -> T {
    let (Some(phrase), Some(setting)) = (Secret::c_string(password), Secret::c_string(setting))
    else {
        return f(None);
    };
    let mut scratch = Scratch::new();
    // SAFETY: `phrase` and `setting` are NUL-terminated and outlive the call; `scratch`
    // is a zeroed, writable buffer of exactly sizeof(struct crypt_data) bytes, which is
    // all crypt_r writes to. The result points into it (checked by `result`).
    let p = unsafe { crypt_r(phrase.as_c_ptr(), setting.as_c_ptr(), scratch.as_mut_ptr()) };
    // libxcrypt's failure token is "*0" or "*1"; a real hash never starts with '*'.
    let out = scratch.result(p).filter(|h| !h.is_empty() && h[0] != b'*');
    f(out)
}

/// crypt(3): hashes `password` with `setting` (a full hash or just its `$id$params$salt`
/// prefix). `None` when libxcrypt fails (unknown or malformed setting, a password
/// longer than [`MAX_PASSWORD_LEN`]) or either argument contains a NUL.
pub fn crypt(password: &[u8], setting: &[u8]) -> Option<Secret> {
    with_crypt(password, setting, |h| h.map(|h| Secret(h.to_vec())))
}

/// Hashes `password` with the setting of `stored` and compares the result with `stored`
/// in constant time, without copying the computed hash out of libxcrypt's scratch area.
/// A failing crypt (see [`crypt`]) never matches. Exactly one hash is computed unless
/// an argument contains a NUL.
pub fn verify(password: &[u8], stored: &[u8]) -> bool {
    with_crypt(password, stored, |h| h.is_some_and(|h| ct_eq(h, stored)))
}

/// A setting string for a new hash of scheme `prefix` (`b"$y$"`, `b"$6$"`, `b"$2b$"` ...)
/// with cost `count` (0: libxcrypt's default for the scheme, which for yescrypt is what
/// Debian's pam_unix and chpasswd use) and a random salt from the kernel.
/// `None` if the scheme is not supported or no random bytes could be had.
pub fn gensalt(prefix: &[u8], count: u64) -> Option<Vec<u8>> {
    let prefix = Secret::c_string(prefix)?;
    let mut out = [0u8; CRYPT_GENSALT_OUTPUT_SIZE];
    // SAFETY: `prefix` is NUL-terminated; a null `rbytes` with length 0 asks libxcrypt for
    // random bytes itself; `out` is writable for the size we pass.
    let p = unsafe {
        crypt_gensalt_rn(
            prefix.as_c_ptr(),
            count as c_ulong,
            std::ptr::null(),
            0,
            out.as_mut_ptr().cast(),
            CRYPT_GENSALT_OUTPUT_SIZE as c_int,
        )
    };
    if p.is_null() || p != out.as_ptr().cast_mut().cast() {
        return None;
    }
    let end = out.iter().position(|&b| b == 0)?;
    let s = &out[..end];
    (!s.is_empty() && s[0] != b'*').then(|| s.to_vec())
}

/// Compares two byte strings in time that depends only on their lengths (hash strings
/// of one scheme all have the same length, so that leaks nothing).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    // Vectors made by independent tools: `openssl passwd` (its own sha-crypt and md5-crypt
    // code) and `mkpasswd` (whois). The sha512 one is the example from Drepper's spec.
    const VECTORS: &[(&str, &str)] = &[
        (
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        ),
        (
            "sha256-secret",
            "$5$abcdefghijklmnop$K9dal0vqJAQ5ZGSuccJ6r3WgHXj0t.EcKlgZVEUZ3h7",
        ),
        ("md5-secret", "$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0"),
        (
            "yescrypt-secret",
            "$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1",
        ),
        (
            "bcrypt-secret",
            "$2b$05$4pZ6Y0moUj.ldsXL6LWrWOTjyfkd5U6Mw.GvA8Zsg5m1dPqFCqXXu",
        ),
    ];

    #[test]
    fn known_vectors() {
        for (pw, hash) in VECTORS {
            assert_eq!(
                crypt(pw.as_bytes(), hash.as_bytes()).unwrap().as_bytes(),
                hash.as_bytes(),
                "{hash}"
            );
            assert!(verify(pw.as_bytes(), hash.as_bytes()), "{hash}");
            assert!(!verify(b"wrong", hash.as_bytes()), "{hash}");
            // One changed byte in the password, and a prefix of it.
            let mut other = pw.as_bytes().to_vec();
            other[0] ^= 1;
            assert!(!verify(&other, hash.as_bytes()), "{hash}");
            assert!(!verify(&pw.as_bytes()[..pw.len() - 1], hash.as_bytes()));
        }
    }

    #[test]
    fn failures_are_none_not_tokens() {
        // Locked and disabled shadow fields, an empty setting, garbage.
        for setting in ["!$6$saltstring$x", "*", "*0", "!", "", "$9$nonsense", "$y$"] {
            assert_eq!(crypt(b"pw", setting.as_bytes()), None, "{setting:?}");
            assert!(!verify(b"pw", setting.as_bytes()), "{setting:?}");
        }
        // NUL in either argument: C would see something else, so refuse.
        assert_eq!(crypt(b"Hello\0world!", VECTORS[0].1.as_bytes()), None);
        assert_eq!(crypt(b"pw", b"$6$salt\0"), None);
        // libxcrypt's length limit.
        let long = vec![b'a'; MAX_PASSWORD_LEN + 1];
        assert_eq!(crypt(&long, VECTORS[0].1.as_bytes()), None);
        assert!(crypt(&long[..MAX_PASSWORD_LEN], VECTORS[0].1.as_bytes()).is_some());
    }

    #[test]
    fn an_empty_password_is_an_ordinary_input() {
        // Refusing empty *stored* hashes is the backends' job; an empty typed password
        // simply hashes.
        let setting = gensalt(b"$6$", 0).unwrap();
        let h = crypt(b"", &setting).unwrap();
        assert!(verify(b"", h.as_bytes()));
        assert!(!verify(b"x", h.as_bytes()));
    }

    #[test]
    fn gensalt_makes_settings_that_hash() {
        for prefix in ["$y$", "$6$", "$5$", "$2b$", "$1$"] {
            let s = gensalt(prefix.as_bytes(), 0).unwrap();
            assert!(s.starts_with(prefix.as_bytes()), "{s:?}");
            let h = crypt(b"pw", &s).unwrap();
            assert!(h.as_bytes().starts_with(&s[..prefix.len()]));
            assert!(verify(b"pw", h.as_bytes()));
        }
        // Default yescrypt cost is Debian's (pam_unix `yescrypt`, rounds 5): `j9T`.
        assert!(gensalt(b"$y$", 0).unwrap().starts_with(b"$y$j9T$"));
        // Two calls, two salts.
        assert_ne!(gensalt(b"$y$", 0), gensalt(b"$y$", 0));
        assert_eq!(gensalt(b"$nonsense$", 0), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"xbc", b"abc"));
    }

    #[test]
    fn secrets_are_wiped_and_not_shown() {
        let mut s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
        wipe(&mut s.0);
        assert_eq!(s.as_bytes(), &[0; 7]);
        let c = Secret::c_string(b"abc").unwrap();
        assert_eq!(c.as_bytes(), b"abc\0");
    }
}

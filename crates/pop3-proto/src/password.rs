//! The PASS argument, kept out of logs and wiped from memory when dropped.
//!
//! This module must never offer a way to print or clone the secret: the only view of
//! the bytes is [`Password::as_bytes`], for the code that checks them.

use zeroize::Zeroize;

/// A password exactly as the client typed it after `PASS ` (the rest of the command
/// line, spaces included), or decoded from an `AUTH PLAIN` response: at most
/// [`crate::params::MAX_PASSWORD`] bytes either way.
///
/// The bytes are zeroed on drop, and `Debug` prints `<redacted>` so that logging an
/// [`crate::Action`] by mistake cannot leak them.
#[derive(PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps bytes received from elsewhere (e.g. the pre-auth process).
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(bytes)
    }

    /// The secret itself, for the authenticator.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty (it never is when it comes from PASS or AUTH PLAIN).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        // Zeroize on Vec also wipes the spare capacity, where an earlier copy could sit.
        self.0.zeroize();
    }
}

impl core::fmt::Debug for Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn debug_is_redacted() {
        let p = Password::new(b"hunter2".to_vec());
        assert_eq!(format!("{p:?}"), "<redacted>");
        assert_eq!(p.as_bytes(), b"hunter2");
        assert_eq!(p.len(), 7);
        assert!(!p.is_empty());
    }
}

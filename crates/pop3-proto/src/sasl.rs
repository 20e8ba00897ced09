//! SASL PLAIN for `AUTH PLAIN` (RFC 5034, RFC 4616): a strict base64 decoder and the
//! split of the decoded message into user and password.
//!
//! Everything decoded here may hold a password, so every buffer is wiped on drop.

use crate::params::{MAX_ARG, MAX_PASSWORD};
use crate::password::Password;
use zeroize::{Zeroize, Zeroizing};

/// Why a base64 string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Error {
    /// The length is not a multiple of 4 (padding is required, RFC 4648 §3.2).
    Length,
    /// A byte outside the base64 alphabet, whitespace included (RFC 4648 §3.3: no
    /// line breaks or other characters in this use).
    Character,
    /// `=` anywhere but in the last one or two positions.
    Padding,
    /// The bits discarded by the padding are not zero, so the encoding is not the
    /// canonical one (RFC 4648 §3.5 lets a decoder refuse it; we do).
    TrailingBits,
}

impl core::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Base64Error::Length => "base64 length is not a multiple of 4",
            Base64Error::Character => "byte outside the base64 alphabet",
            Base64Error::Padding => "misplaced base64 padding",
            Base64Error::TrailingBits => "non-zero bits after the last base64 byte",
        })
    }
}

impl std::error::Error for Base64Error {}

/// The 6-bit value of a base64 alphabet byte (RFC 4648 §4, not the URL-safe one).
fn sextet(byte: u8) -> Option<u32> {
    let v = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard, padded, canonical base64 with nothing else in it. The result is
/// wiped on drop.
pub fn decode_base64(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, Base64Error> {
    if !text.len().is_multiple_of(4) {
        return Err(Base64Error::Length);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3));
    let groups = text.len() / 4;
    for (i, group) in text.chunks_exact(4).enumerate() {
        let last = i + 1 == groups;
        let pad = match group {
            [_, _, b'=', b'='] if last => 2,
            [_, _, _, b'='] if last => 1,
            _ => 0,
        };
        let data = group.get(..4 - pad).unwrap_or_default();
        let mut acc: u32 = 0;
        for &byte in data {
            if byte == b'=' {
                return Err(Base64Error::Padding);
            }
            acc = (acc << 6) | sextet(byte).ok_or(Base64Error::Character)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        let [_, b0, b1, b2] = bytes;
        match pad {
            0 => out.extend_from_slice(&[b0, b1, b2]),
            1 if b2 == 0 => out.extend_from_slice(&[b0, b1]),
            2 if b1 == 0 && b2 == 0 => out.push(b0),
            _ => return Err(Base64Error::TrailingBits),
        }
        acc.zeroize();
    }
    Ok(out)
}

/// Why an `AUTH PLAIN` response was refused. Only [`PlainError::Authzid`] is about
/// the credentials (and gets `[AUTH]`); the rest are malformed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlainError {
    Base64(Base64Error),
    /// Not `authzid NUL authcid NUL passwd` with exactly two NULs (RFC 4616 §2).
    Shape,
    /// Empty user or password (RFC 4616 requires both; PASS never takes an empty one).
    Empty,
    /// The user is over [`MAX_ARG`] bytes or the password over [`MAX_PASSWORD`]: the
    /// limits USER and PASS have.
    TooLong,
    /// An authorization identity other than the user: we never log one user in as
    /// another.
    Authzid,
}

/// Decodes a PLAIN response into what USER and PASS would have given.
pub(crate) fn decode_plain(text: &[u8]) -> Result<(Vec<u8>, Password), PlainError> {
    let message = decode_base64(text).map_err(PlainError::Base64)?;
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(PlainError::Shape);
    };
    if memchr::memchr(0, passwd).is_some() {
        return Err(PlainError::Shape);
    }
    if authcid.is_empty() || passwd.is_empty() {
        return Err(PlainError::Empty);
    }
    if authcid.len() > MAX_ARG || passwd.len() > MAX_PASSWORD {
        return Err(PlainError::TooLong);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(PlainError::Authzid);
    }
    Ok((authcid.to_vec(), Password::new(passwd.to_vec())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{decode_base64, decode_plain, Base64Error, PlainError};

    fn ok(text: &str) -> Vec<u8> {
        decode_base64(text.as_bytes()).unwrap().to_vec()
    }

    #[test]
    fn rfc4648_vectors() {
        assert_eq!(ok(""), b"");
        assert_eq!(ok("Zg=="), b"f");
        assert_eq!(ok("Zm8="), b"fo");
        assert_eq!(ok("Zm9v"), b"foo");
        assert_eq!(ok("Zm9vYg=="), b"foob");
        assert_eq!(ok("Zm9vYmE="), b"fooba");
        assert_eq!(ok("Zm9vYmFy"), b"foobar");
        assert_eq!(ok("+/+/"), [0xfb, 0xff, 0xbf]);
        assert_eq!(ok("AGJvYgBib2Jwdw=="), b"\0bob\0bobpw");
    }

    #[test]
    fn strictness() {
        let cases: &[(&str, Base64Error)] = &[
            ("Zg", Base64Error::Length),
            ("Zg=", Base64Error::Length),
            ("Zm9vY", Base64Error::Length),
            ("Zm 9", Base64Error::Character),
            ("Zm9v\r\n", Base64Error::Length),
            ("Zm9\t", Base64Error::Character),
            ("Zm9-", Base64Error::Character),
            ("Zm9_", Base64Error::Character),
            ("Zm\09", Base64Error::Character),
            ("Zm9v\u{e9}A=", Base64Error::Character),
            ("Zg==Zm9v", Base64Error::Padding),
            ("Z===", Base64Error::Padding),
            ("====", Base64Error::Padding),
            ("Zm=v", Base64Error::Padding),
            ("Zh==", Base64Error::TrailingBits),
            ("Zm9=", Base64Error::TrailingBits),
        ];
        for (text, want) in cases {
            assert_eq!(
                decode_base64(text.as_bytes()).map(|v| v.to_vec()),
                Err(*want),
                "{text:?}"
            );
        }
    }

    fn plain(raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PlainError> {
        let text = encode(raw);
        decode_plain(text.as_bytes()).map(|(u, p)| (u, p.as_bytes().to_vec()))
    }

    /// A plain encoder for the tests only.
    pub(crate) fn encode(raw: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in raw.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &b)| a | (u32::from(b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= c.len() {
                    s.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn plain_messages() {
        let ok = |u: &str, p: &str| Ok((u.as_bytes().to_vec(), p.as_bytes().to_vec()));
        assert_eq!(plain(b"\0bob\0bobpw"), ok("bob", "bobpw"));
        assert_eq!(plain(b"bob\0bob\0bobpw"), ok("bob", "bobpw"));
        assert_eq!(plain(b"\0bob\0pass word "), ok("bob", "pass word "));
        assert_eq!(plain(b"alice\0bob\0bobpw"), Err(PlainError::Authzid));
        assert_eq!(plain(b"Bob\0bob\0bobpw"), Err(PlainError::Authzid));
        assert_eq!(plain(b"bob\0bobpw"), Err(PlainError::Shape));
        assert_eq!(plain(b""), Err(PlainError::Shape));
        assert_eq!(plain(b"\0bob\0pw\0x"), Err(PlainError::Shape));
        assert_eq!(plain(b"\0\0bobpw"), Err(PlainError::Empty));
        assert_eq!(plain(b"\0bob\0"), Err(PlainError::Empty));
        let user40 = [b"\0".to_vec(), vec![b'u'; 40], b"\0p".to_vec()].concat();
        assert!(plain(&user40).is_ok());
        let user41 = [b"\0".to_vec(), vec![b'u'; 41], b"\0p".to_vec()].concat();
        assert_eq!(plain(&user41), Err(PlainError::TooLong));
        let pw = [b"\0u\0".to_vec(), vec![b'p'; 122]].concat();
        assert!(plain(&pw).is_ok());
        let pw = [b"\0u\0".to_vec(), vec![b'p'; 123]].concat();
        assert_eq!(plain(&pw), Err(PlainError::TooLong));
        assert_eq!(
            decode_plain(b"AGJvYgBib2Jwdw").map(|_| ()),
            Err(PlainError::Base64(Base64Error::Length))
        );
    }

    #[test]
    fn encoder_round_trips() {
        for n in 0..20u8 {
            let raw: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(ok(&encode(&raw)), raw);
        }
    }
}

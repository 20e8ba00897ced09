//! The byte layouts. All integers are big-endian; every variable field is preceded by its
//! length. There are no optional parts and no versions to negotiate: both ends are the
//! same binary.

use pop3_proto::params::{INPUT_BUFFER, MAX_ARG, MAX_LINE};
use pop3_proto::Password;

/// Why a message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The message does not start with the expected magic bytes.
    BadMagic,
    /// The message ended inside a field.
    Truncated,
    /// A length field exceeds its limit: (field, length, limit).
    TooLong(&'static str, usize, usize),
    /// Bytes follow the last field.
    TrailingBytes(usize),
    /// An unknown message kind.
    BadKind(u8),
    /// A field has a value it may not have (e.g. uid 0).
    Invalid(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::BadMagic => f.write_str("bad magic"),
            DecodeError::Truncated => f.write_str("truncated message"),
            DecodeError::TooLong(field, n, max) => write!(f, "{field} of {n} bytes exceeds {max}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the message"),
            DecodeError::BadKind(k) => write!(f, "unknown message kind {k}"),
            DecodeError::Invalid(what) => write!(f, "invalid {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn field(&mut self, name: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        if n > max {
            return Err(DecodeError::TooLong(name, n, max));
        }
        self.take(n)
    }
    fn end(&self) -> Result<(), DecodeError> {
        match self.data.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    // Callers check lengths against the limits, which are all far below u16::MAX.
    let n = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&field[..usize::from(n)]);
}

/// What the pre-auth process sends after USER and PASS.
#[derive(Debug, PartialEq, Eq)]
pub struct LoginRequest {
    /// The USER argument as typed (at most 40 bytes, RFC 1939's argument limit).
    pub user: Vec<u8>,
    /// The PASS parameter as typed.
    pub password: Password,
    /// Bytes the client sent after PASS, for the TRANSACTION state.
    pub pipelined: Vec<u8>,
}

const LOGIN_MAGIC: &[u8; 4] = b"P3L1";

/// The whole message of a pre-auth process that accepted STLS (and answered `+OK`):
/// the privileged side starts TLS on the connection and a fresh pre-auth process
/// behind it. Four bytes, distinct from every [`LoginRequest`] (other magic).
pub const START_TLS: &[u8; 4] = b"P3S1";
const VERDICT_MAGIC: &[u8; 4] = b"P3V1";

/// Longest password: what fits on one command line after `PASS `.
pub const MAX_PASSWORD: usize = MAX_LINE;

impl LoginRequest {
    /// The most bytes a valid request can have; read no more than this (plus one, to see
    /// that the sender stopped).
    pub const MAX_LEN: usize = 4 + 2 + MAX_ARG + 2 + MAX_PASSWORD + 2 + INPUT_BUFFER;

    /// The wire form. Returns `None` if a field is over its limit (an engine bug: the
    /// engine enforces the same limits).
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.user.len() > MAX_ARG
            || self.password.len() > MAX_PASSWORD
            || self.pipelined.len() > INPUT_BUFFER
        {
            return None;
        }
        let mut out = Vec::with_capacity(Self::MAX_LEN);
        out.extend_from_slice(LOGIN_MAGIC);
        put_field(&mut out, &self.user);
        put_field(&mut out, self.password.as_bytes());
        put_field(&mut out, &self.pipelined);
        Some(out)
    }

    /// Decodes a request, refusing anything but exactly one well-formed message. The
    /// caller should zeroize `data` afterwards: it holds the password.
    pub fn decode(data: &[u8]) -> Result<LoginRequest, DecodeError> {
        let mut r = Reader { data };
        if r.take(4)? != LOGIN_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let user = r.field("user name", MAX_ARG)?.to_vec();
        let password = Password::new(r.field("password", MAX_PASSWORD)?.to_vec());
        let pipelined = r.field("pipelined input", INPUT_BUFFER)?.to_vec();
        r.end()?;
        Ok(LoginRequest {
            user,
            password,
            pipelined,
        })
    }
}

/// What the verifier reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Switch to this account and serve this mailbox.
    Pass {
        /// The account name (for the log).
        name: Vec<u8>,
        uid: u32,
        gid: u32,
        /// Absolute path of the mailbox.
        mailbox: Vec<u8>,
    },
    /// Authentication failed; `known` says whether the user exists (for the log only).
    Fail { known: bool },
}

/// Longest account name and mailbox path accepted from the verifier.
const MAX_NAME: usize = 256;
const MAX_PATH: usize = 4096;

impl Verdict {
    pub const MAX_LEN: usize = 4 + 1 + 2 + MAX_NAME + 4 + 4 + 2 + MAX_PATH;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(VERDICT_MAGIC);
        match self {
            Verdict::Pass {
                name,
                uid,
                gid,
                mailbox,
            } => {
                out.push(1);
                put_field(&mut out, &name[..name.len().min(MAX_NAME)]);
                out.extend_from_slice(&uid.to_be_bytes());
                out.extend_from_slice(&gid.to_be_bytes());
                put_field(&mut out, &mailbox[..mailbox.len().min(MAX_PATH)]);
            }
            Verdict::Fail { known } => out.push(if *known { 2 } else { 3 }),
        }
        out
    }

    /// Decodes a verdict. A pass for uid 0, or with a mailbox path that is not absolute
    /// or contains a NUL, is refused: the privileged side never switches to root.
    pub fn decode(data: &[u8]) -> Result<Verdict, DecodeError> {
        let mut r = Reader { data };
        if r.take(4)? != VERDICT_MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let v = match r.u8()? {
            1 => {
                let name = r.field("account name", MAX_NAME)?.to_vec();
                let uid = r.u32()?;
                let gid = r.u32()?;
                let mailbox = r.field("mailbox path", MAX_PATH)?.to_vec();
                if uid == 0 {
                    return Err(DecodeError::Invalid("uid 0"));
                }
                if mailbox.first() != Some(&b'/') || mailbox.contains(&0) {
                    return Err(DecodeError::Invalid("mailbox path"));
                }
                Verdict::Pass {
                    name,
                    uid,
                    gid,
                    mailbox,
                }
            }
            2 => Verdict::Fail { known: true },
            3 => Verdict::Fail { known: false },
            k => return Err(DecodeError::BadKind(k)),
        };
        r.end()?;
        Ok(v)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(user: &[u8], pass: &[u8], pipe: &[u8]) -> LoginRequest {
        LoginRequest {
            user: user.to_vec(),
            password: Password::new(pass.to_vec()),
            pipelined: pipe.to_vec(),
        }
    }

    #[test]
    fn login_round_trip_and_limits() {
        let r = req(b"bob", b"secret with spaces", b"STAT\r\nQUIT\r\n");
        let b = r.encode().unwrap();
        assert!(b.len() <= LoginRequest::MAX_LEN);
        assert_eq!(LoginRequest::decode(&b).unwrap(), r);
        let max = req(
            &[b'u'; MAX_ARG],
            &[b'p'; MAX_PASSWORD],
            &[b'x'; INPUT_BUFFER],
        );
        assert_eq!(max.encode().unwrap().len(), LoginRequest::MAX_LEN);
        assert!(req(&[b'u'; MAX_ARG + 1], b"p", b"").encode().is_none());
        assert_eq!(
            LoginRequest::decode(&req(b"", b"p", b"").encode().unwrap())
                .unwrap()
                .user,
            b""
        );
    }

    #[test]
    fn hostile_login_requests_are_refused() {
        let good = req(b"bob", b"pw", b"").encode().unwrap();
        assert_eq!(LoginRequest::decode(b""), Err(DecodeError::Truncated));
        assert_eq!(
            LoginRequest::decode(b"P3L2\0\0\0\0\0\0"),
            Err(DecodeError::BadMagic)
        );
        for cut in 0..good.len() {
            assert!(LoginRequest::decode(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert_eq!(
            LoginRequest::decode(&extra),
            Err(DecodeError::TrailingBytes(1))
        );
        let mut twice = good.clone();
        twice.extend_from_slice(&good);
        assert!(LoginRequest::decode(&twice).is_err());
        let mut long_user = b"P3L1".to_vec();
        long_user.extend_from_slice(&41u16.to_be_bytes());
        long_user.extend_from_slice(&[b'a'; 41]);
        assert_eq!(
            LoginRequest::decode(&long_user),
            Err(DecodeError::TooLong("user name", 41, 40))
        );
        let mut huge = b"P3L1\xff\xff".to_vec();
        huge.extend_from_slice(&[0; 10]);
        assert_eq!(
            LoginRequest::decode(&huge),
            Err(DecodeError::TooLong("user name", 65535, 40))
        );
    }

    #[test]
    fn verdicts() {
        let pass = Verdict::Pass {
            name: b"bob".to_vec(),
            uid: 1002,
            gid: 1002,
            mailbox: b"/var/mail/bob".to_vec(),
        };
        for v in [
            pass.clone(),
            Verdict::Fail { known: true },
            Verdict::Fail { known: false },
        ] {
            assert_eq!(Verdict::decode(&v.encode()).unwrap(), v);
        }
        let root = Verdict::Pass {
            name: b"root".to_vec(),
            uid: 0,
            gid: 0,
            mailbox: b"/var/mail/root".to_vec(),
        };
        assert_eq!(
            Verdict::decode(&root.encode()),
            Err(DecodeError::Invalid("uid 0"))
        );
        let rel = Verdict::Pass {
            name: b"x".to_vec(),
            uid: 5,
            gid: 5,
            mailbox: b"mail/x".to_vec(),
        };
        assert_eq!(
            Verdict::decode(&rel.encode()),
            Err(DecodeError::Invalid("mailbox path"))
        );
        assert_eq!(Verdict::decode(b"P3V1\x09"), Err(DecodeError::BadKind(9)));
        let e = pass.encode();
        for cut in 0..e.len() {
            assert!(Verdict::decode(&e[..cut]).is_err());
        }
    }
}

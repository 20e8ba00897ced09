//! The key holder's side: the only process that holds a TLS private key.
//!
//! No process that handles a session (the TLS relay, pre-auth, the mail-user process) may
//! read the private key or hold it in memory (docs/tls-design.md). The relay's
//! [`RemoteSigningKey`](crate::remote::RemoteSigningKey) therefore sends the one
//! signature a full handshake needs to this side over a Unix socket, one channel per
//! session, and [`serve_channel`] answers it.
//!
//! A compromised relay could use the holder as a signing oracle. The holder cannot see
//! the handshake, but it can check that what it signs has the shape of a server
//! handshake signature, so the key never signs anything else:
//!
//! - TLS 1.3 CertificateVerify input (RFC 8446 §4.4.3): 64 × `0x20`, the context string
//!   `"TLS 1.3, server CertificateVerify"`, `0x00`, then the transcript hash (32, 48 or
//!   64 bytes). PKCS#1 v1.5 schemes are refused here (RFC 8446 §4.2.3).
//! - TLS 1.2 ServerKeyExchange input (RFC 5246 §7.4.3, RFC 8422 §5.4): client random
//!   (32), server random (32), then `ECParameters` and `ECPoint`: curve type 3
//!   (named_curve), a named group (u16) the holder knows, the point's length (u8) equal
//!   to that group's, the point, and nothing after it. The server random must end in the
//!   TLS 1.3 downgrade sentinel `"DOWNGRD\x01"` (RFC 8446 §4.1.3), which rustls writes
//!   whenever it negotiates TLS 1.2: a TLS 1.3-capable client rejects a TLS 1.2 handshake
//!   signed that way, so a forged TLS 1.2 signature is useless against it.
//!
//! A relay still gets one signature of its choosing per channel, so it could
//! impersonate the server to one client it already intercepts, but never take the key.
//! The daemon limits channels to one per connection; the holder closes a channel after
//! its first answer (`serve_channel` consumes the stream).
//!
//! # Wire format
//!
//! Every integer is big-endian. A request is either
//! `01 | scheme (u16) | length (u16) | message` (sign `message` with `scheme`, `length`
//! at most [`MAX_MESSAGE`]) or `02` (report the key's `SubjectPublicKeyInfo`, which the
//! daemon checks against the certificate before it pairs them). A response is
//! `00 | length (u16) | body` (the signature or the SPKI, `length` at most
//! [`MAX_RESPONSE`]) or one non-zero byte, a [`Refusal`] code.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::sign::SigningKey;
use rustls::{SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};

/// Longest message the holder accepts: a TLS 1.2 ServerKeyExchange input with a P-521
/// point is 64 + 4 + 133 = 201 bytes, a TLS 1.3 CertificateVerify input at most 162.
pub const MAX_MESSAGE: usize = 256;

/// Longest response body: an RSA-8192 signature is 1024 bytes, its SPKI a little more.
pub const MAX_RESPONSE: usize = 2048;

const TAG_SIGN: u8 = 1;
const TAG_PUBLIC_KEY: u8 = 2;
const STATUS_OK: u8 = 0;

const TLS13_PAD: u8 = 0x20;
const TLS13_PAD_LEN: usize = 64;
const TLS13_SERVER_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify";
const TLS12_RANDOMS_LEN: usize = 64;
const DOWNGRADE_SENTINEL: &[u8; 8] = b"DOWNGRD\x01";
const CURVE_TYPE_NAMED: u8 = 3;

/// A request from the relay, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Sign `message` (not hashed: the holder hashes) with `scheme`.
    Sign {
        /// The signature scheme the relay chose from the client's offer.
        scheme: SignatureScheme,
        /// The bytes to sign.
        message: Vec<u8>,
    },
    /// Report the key's `SubjectPublicKeyInfo` (DER).
    PublicKey,
}

/// Why request bytes are not a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// The first byte is no known request type.
    UnknownType(u8),
    /// The message length is zero or above [`MAX_MESSAGE`].
    BadLength(usize),
    /// Fewer bytes than the header announces.
    Truncated,
    /// Bytes after the end of the request.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty request"),
            DecodeError::UnknownType(t) => write!(f, "unknown request type {t}"),
            DecodeError::BadLength(n) => {
                write!(f, "message length {n} not in 1..={MAX_MESSAGE}")
            }
            DecodeError::Truncated => f.write_str("truncated request"),
            DecodeError::TrailingBytes => f.write_str("bytes after the request"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Request {
    /// The whole request's length in bytes, once `prefix` (its first bytes) shows it:
    /// `Ok(None)` means more bytes are needed to tell. Lets a reader take exactly one
    /// request off a stream and refuse an oversized one before reading its body.
    pub fn frame_len(prefix: &[u8]) -> Result<Option<usize>, DecodeError> {
        match prefix.first() {
            None => Ok(None),
            Some(&TAG_PUBLIC_KEY) => Ok(Some(1)),
            Some(&TAG_SIGN) => match prefix.get(3..5) {
                None => Ok(None),
                Some(len) => {
                    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                    if len == 0 || len > MAX_MESSAGE {
                        return Err(DecodeError::BadLength(len));
                    }
                    Ok(Some(5 + len))
                }
            },
            Some(&other) => Err(DecodeError::UnknownType(other)),
        }
    }

    /// Decodes exactly one request: `bytes` must hold it and nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let total = match Request::frame_len(bytes)? {
            Some(n) => n,
            None if bytes.is_empty() => return Err(DecodeError::Empty),
            None => return Err(DecodeError::Truncated),
        };
        match bytes.len().cmp(&total) {
            std::cmp::Ordering::Less => return Err(DecodeError::Truncated),
            std::cmp::Ordering::Greater => return Err(DecodeError::TrailingBytes),
            std::cmp::Ordering::Equal => {}
        }
        match bytes {
            [TAG_SIGN, s0, s1, _, _, message @ ..] => Ok(Request::Sign {
                scheme: SignatureScheme::from(u16::from_be_bytes([*s0, *s1])),
                message: message.to_vec(),
            }),
            _ => Ok(Request::PublicKey),
        }
    }

    /// The request's wire form. A message longer than [`MAX_MESSAGE`] is encoded all the
    /// same (its length field capped at `u16::MAX`): the holder refuses it from the
    /// header alone.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::PublicKey => vec![TAG_PUBLIC_KEY],
            Request::Sign { scheme, message } => {
                let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
                let mut out = Vec::with_capacity(5 + message.len());
                out.push(TAG_SIGN);
                out.extend_from_slice(&u16::from(*scheme).to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(message);
                out
            }
        }
    }
}

/// What a message to sign was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A TLS 1.3 server CertificateVerify input with a transcript hash of this length.
    Tls13CertificateVerify {
        /// 32, 48 or 64.
        hash_len: usize,
    },
    /// A TLS 1.2 ECDHE ServerKeyExchange input for this named group.
    Tls12ServerKeyExchange {
        /// The IANA named group code point.
        group: u16,
    },
}

/// Why the holder refused a request. [`Refusal::code`] is the response byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request bytes do not decode.
    Malformed(DecodeError),
    /// The message is neither a TLS 1.3 CertificateVerify nor a TLS 1.2
    /// ServerKeyExchange signature input.
    NotHandshakeMessage,
    /// The key does not support the scheme, or the scheme does not fit the message's
    /// TLS version.
    SchemeNotSupported(SignatureScheme),
    /// The signature operation itself failed.
    SigningFailed,
    /// The key cannot report its public key.
    NoPublicKey,
}

impl Refusal {
    /// The response byte for this refusal (never 0).
    pub fn code(&self) -> u8 {
        match self {
            Refusal::Malformed(_) => 1,
            Refusal::NotHandshakeMessage => 2,
            Refusal::SchemeNotSupported(_) => 3,
            Refusal::SigningFailed => 4,
            Refusal::NoPublicKey => 5,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "malformed request: {e}"),
            Refusal::NotHandshakeMessage => {
                f.write_str("message is not a TLS server handshake signature input")
            }
            Refusal::SchemeNotSupported(s) => {
                write!(
                    f,
                    "signature scheme {s:?} not supported for this key or message"
                )
            }
            Refusal::SigningFailed => f.write_str("signing failed"),
            Refusal::NoPublicKey => f.write_str("key cannot report its public key"),
        }
    }
}

impl std::error::Error for Refusal {}

/// The length of each known named group's ECDHE point (RFC 8422 §5.4, RFC 7748 §6):
/// uncompressed for the NIST curves, raw for X25519/X448.
fn point_len(group: u16) -> Option<usize> {
    match group {
        0x0017 => Some(65),  // secp256r1
        0x0018 => Some(97),  // secp384r1
        0x0019 => Some(133), // secp521r1
        0x001d => Some(32),  // x25519
        0x001e => Some(56),  // x448
        _ => None,
    }
}

/// Checks that `message` has the exact shape of a TLS server handshake signature input
/// (see the module documentation) and says which.
pub fn check_message(message: &[u8]) -> Option<MessageKind> {
    check_tls13(message).or_else(|| check_tls12(message))
}

fn check_tls13(message: &[u8]) -> Option<MessageKind> {
    let (pad, rest) = message.split_at_checked(TLS13_PAD_LEN)?;
    let (context, rest) = rest.split_at_checked(TLS13_SERVER_CONTEXT.len())?;
    let (&separator, hash) = rest.split_first()?;
    let shaped = pad.iter().all(|&b| b == TLS13_PAD)
        && context == TLS13_SERVER_CONTEXT
        && separator == 0
        && matches!(hash.len(), 32 | 48 | 64);
    shaped.then_some(MessageKind::Tls13CertificateVerify {
        hash_len: hash.len(),
    })
}

fn check_tls12(message: &[u8]) -> Option<MessageKind> {
    let (randoms, params) = message.split_at_checked(TLS12_RANDOMS_LEN)?;
    if !randoms.ends_with(DOWNGRADE_SENTINEL) {
        return None;
    }
    match params {
        [CURVE_TYPE_NAMED, g0, g1, len, point @ ..] => {
            let group = u16::from_be_bytes([*g0, *g1]);
            let expected = point_len(group)?;
            let nist = matches!(group, 0x0017..=0x0019);
            let shaped = usize::from(*len) == expected
                && point.len() == expected
                && (!nist || point.first() == Some(&4));
            shaped.then_some(MessageKind::Tls12ServerKeyExchange { group })
        }
        _ => None,
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A signature over a message of this kind.
    Signature {
        /// What was signed.
        kind: MessageKind,
        /// The scheme used.
        scheme: SignatureScheme,
        /// The signature bytes.
        signature: Vec<u8>,
    },
    /// The key's `SubjectPublicKeyInfo` (DER).
    PublicKey(Vec<u8>),
}

impl Answer {
    /// The response body.
    pub fn body(&self) -> &[u8] {
        match self {
            Answer::Signature { signature, .. } => signature,
            Answer::PublicKey(spki) => spki,
        }
    }
}

/// Encodes a response: `00 | length | body` for an answer, the refusal code otherwise.
/// A body longer than [`MAX_RESPONSE`] becomes a [`Refusal::SigningFailed`].
pub fn encode_response(answer: &Result<Answer, Refusal>) -> Vec<u8> {
    match answer {
        Ok(a) => match u16::try_from(a.body().len()) {
            Ok(len) if a.body().len() <= MAX_RESPONSE => {
                let mut out = Vec::with_capacity(3 + a.body().len());
                out.push(STATUS_OK);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(a.body());
                out
            }
            _ => vec![Refusal::SigningFailed.code()],
        },
        Err(r) => vec![r.code()],
    }
}

/// Why a private key could not be loaded.
#[derive(Debug)]
pub enum KeyError {
    /// No PEM private key (PKCS#8, PKCS#1 or SEC1) in the input, or the file is unreadable.
    Pem(rustls_pki_types::pem::Error),
    /// A key rustls' ring provider does not support: ECDSA P-256/P-384, RSA 2048 to
    /// 8192 bits and Ed25519 are.
    Unsupported(rustls::Error),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Pem(rustls_pki_types::pem::Error::Io(e)) => {
                f.write_str(&pop3_sys::errno::strerror(e))
            }
            KeyError::Pem(rustls_pki_types::pem::Error::NoItemsFound) => {
                f.write_str("no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file")
            }
            KeyError::Pem(e) => write!(f, "not a valid PEM private key ({e:?})"),
            KeyError::Unsupported(_) => f.write_str(
                "not a usable private key (supported: ECDSA P-256 or P-384, RSA of 2048 bits \
                 or more, Ed25519)",
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// A private key, as the holder keeps it.
#[derive(Debug)]
pub struct HolderKey {
    key: Arc<dyn SigningKey>,
}

impl HolderKey {
    /// Loads a PEM private key (ECDSA P-256/P-384, RSA of at least 2048 bits, which
    /// ring enforces, or Ed25519).
    pub fn from_pem(pem: &[u8]) -> Result<HolderKey, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(KeyError::Pem)?;
        HolderKey::from_der(&der)
    }

    /// Loads a PEM private key file: see [`HolderKey::from_pem`].
    pub fn from_pem_file(path: &Path) -> Result<HolderKey, KeyError> {
        let der = PrivateKeyDer::from_pem_file(path).map_err(KeyError::Pem)?;
        HolderKey::from_der(&der)
    }

    fn from_der(der: &PrivateKeyDer<'_>) -> Result<HolderKey, KeyError> {
        let key =
            rustls::crypto::ring::sign::any_supported_type(der).map_err(KeyError::Unsupported)?;
        Ok(HolderKey { key })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.key.algorithm()
    }

    /// The key's `SubjectPublicKeyInfo`, to check against the certificate's.
    pub fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'static>> {
        self.key.public_key().map(|k| k.into_owned())
    }

    /// Answers one decoded request, without any I/O.
    pub fn answer(&self, request: &Request) -> Result<Answer, Refusal> {
        match request {
            Request::PublicKey => self
                .public_key()
                .map(|spki| Answer::PublicKey(spki.as_ref().to_vec()))
                .ok_or(Refusal::NoPublicKey),
            Request::Sign { scheme, message } => {
                let kind = check_message(message).ok_or(Refusal::NotHandshakeMessage)?;
                let pkcs1 = matches!(
                    scheme,
                    SignatureScheme::RSA_PKCS1_SHA256
                        | SignatureScheme::RSA_PKCS1_SHA384
                        | SignatureScheme::RSA_PKCS1_SHA512
                );
                if pkcs1 && matches!(kind, MessageKind::Tls13CertificateVerify { .. }) {
                    return Err(Refusal::SchemeNotSupported(*scheme));
                }
                // The key's own choice from a one-element offer: `None` unless this key
                // signs with exactly this scheme (ring: ECDSA only with its own curve's
                // scheme, RSA only SHA-2 PKCS#1 and PSS).
                let signer = self
                    .key
                    .choose_scheme(&[*scheme])
                    .ok_or(Refusal::SchemeNotSupported(*scheme))?;
                let signature = signer.sign(message).map_err(|_| Refusal::SigningFailed)?;
                Ok(Answer::Signature {
                    kind,
                    scheme: *scheme,
                    signature,
                })
            }
        }
    }
}

/// What [`serve_channel`] did, for the caller's log (refusals deserve CRIT: only a
/// compromised or broken relay sends them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Answered with this.
    Answered(Answer),
    /// Refused for this reason (the refusal code was sent).
    Refused(Refusal),
}

/// Reads one request from `stream`, answers it and returns, closing the channel (the
/// stream is consumed): one request per channel. Set the stream's read and write
/// timeouts beforehand (the handshake deadline), so a relay that sends nothing cannot
/// hold the holder. An oversized request is refused before its body is read. An I/O
/// error, including end of file before a whole request, is returned as is.
pub fn serve_channel<S: Read + Write>(key: &HolderKey, mut stream: S) -> io::Result<Served> {
    let mut buf = Vec::with_capacity(5 + MAX_MESSAGE);
    let result = loop {
        match Request::frame_len(&buf) {
            Err(e) => break Err(Refusal::Malformed(e)),
            Ok(Some(total)) if buf.len() >= total => {
                break Request::decode(&buf)
                    .map_err(Refusal::Malformed)
                    .and_then(|req| key.answer(&req));
            }
            Ok(known) => {
                // Header bytes one at a time until the length is known, then the rest:
                // never a byte of a second request.
                let want = known.map_or(buf.len() + 1, |total| total);
                let start = buf.len();
                buf.resize(want, 0);
                stream.read_exact(&mut buf[start..])?;
            }
        }
    };
    stream.write_all(&encode_response(&result))?;
    stream.flush()?;
    Ok(match result {
        Ok(a) => Served::Answered(a),
        Err(r) => Served::Refused(r),
    })
}

/// Why a response could not be read.
#[derive(Debug)]
pub enum ResponseError {
    /// The holder refused, with this code.
    Refused(u8),
    /// The response announced a body longer than [`MAX_RESPONSE`].
    TooLong(usize),
    /// Reading failed (end of file, timeout, ...).
    Io(io::Error),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Refused(code) => write!(f, "key holder refused (code {code})"),
            ResponseError::TooLong(n) => write!(f, "key holder response too long ({n} bytes)"),
            ResponseError::Io(e) => write!(f, "key holder channel: {e}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Reads one response from `stream`: the body of an answer, or the refusal.
pub fn read_response<S: Read>(mut stream: S) -> Result<Vec<u8>, ResponseError> {
    let mut status = [0u8; 1];
    stream.read_exact(&mut status).map_err(ResponseError::Io)?;
    if status[0] != STATUS_OK {
        return Err(ResponseError::Refused(status[0]));
    }
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(ResponseError::Io)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_RESPONSE {
        return Err(ResponseError::TooLong(len));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).map_err(ResponseError::Io)?;
    Ok(body)
}

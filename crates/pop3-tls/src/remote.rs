//! The relay's side of the key: a rustls [`SigningKey`] whose one signature is made by
//! the key holder, and the server configuration that uses it.
//!
//! The relay never holds the private key (docs/tls-design.md): it knows the public key
//! (the `SubjectPublicKeyInfo` the holder reported) and a channel to the holder, over
//! which it may ask for exactly one signature, the one a full handshake needs. Session
//! resumption is off, so every handshake is a full one.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::crypto::ring;
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{ServerConfig, SignatureAlgorithm, SignatureScheme};
use rustls_pki_types::{alg_id, AlgorithmIdentifier, CertificateDer, SubjectPublicKeyInfoDer};

use crate::keyholder::{read_response, Request, ResponseError};

/// Schemes for each key type, in our order of preference. RSA: PSS first; rustls only
/// uses PKCS#1 v1.5 in TLS 1.2 (RFC 8446 §4.2.3).
const ECDSA_P256: &[SignatureScheme] = &[SignatureScheme::ECDSA_NISTP256_SHA256];
const ECDSA_P384: &[SignatureScheme] = &[SignatureScheme::ECDSA_NISTP384_SHA384];
const ED25519: &[SignatureScheme] = &[SignatureScheme::ED25519];
const RSA: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// Errors of the relay's side of the key.
#[derive(Debug)]
pub enum RemoteError {
    /// The public key is not ECDSA P-256/P-384, RSA or Ed25519, or not valid DER.
    UnsupportedKey,
    /// The certificate's public key is not the holder's (or the chain is empty or
    /// unparsable).
    KeyMismatch(rustls::Error),
    /// rustls refused the configuration.
    Tls(rustls::Error),
    /// The holder refused or the channel failed.
    Holder(ResponseError),
    /// Setting the channel's timeouts or writing the request failed.
    Io(io::Error),
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::UnsupportedKey => f.write_str("unsupported public key type"),
            RemoteError::KeyMismatch(e) => {
                write!(f, "certificate does not match the key holder's key: {e}")
            }
            RemoteError::Tls(e) => write!(f, "TLS configuration: {e}"),
            RemoteError::Holder(e) => write!(f, "{e}"),
            RemoteError::Io(e) => write!(f, "key holder channel: {e}"),
        }
    }
}

impl std::error::Error for RemoteError {}

/// Reads one DER TLV (definite length, at most 4 length bytes) off `input`: (tag,
/// content, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The algorithm and schemes for a `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), from its
/// AlgorithmIdentifier.
fn key_type(spki: &[u8]) -> Option<(SignatureAlgorithm, &'static [SignatureScheme])> {
    const SEQUENCE: u8 = 0x30;
    let (tag, body, rest) = der_tlv(spki)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (tag, alg, _) = der_tlv(body)?;
    if tag != SEQUENCE {
        return None;
    }
    let is = |id: AlgorithmIdentifier| alg == id.as_ref();
    if is(alg_id::ECDSA_P256) {
        Some((SignatureAlgorithm::ECDSA, ECDSA_P256))
    } else if is(alg_id::ECDSA_P384) {
        Some((SignatureAlgorithm::ECDSA, ECDSA_P384))
    } else if is(alg_id::RSA_ENCRYPTION) {
        Some((SignatureAlgorithm::RSA, RSA))
    } else if is(alg_id::ED25519) {
        Some((SignatureAlgorithm::ED25519, ED25519))
    } else {
        None
    }
}

/// Sets both timeouts of `channel` (a zero duration would mean "none" to std: use 1 ms).
fn set_timeouts(channel: &UnixStream, timeout: Duration) -> io::Result<()> {
    let t = Some(timeout.max(Duration::from_millis(1)));
    channel.set_read_timeout(t)?;
    channel.set_write_timeout(t)
}

/// Asks the holder at the other end of `channel` for its key's `SubjectPublicKeyInfo`,
/// waiting at most `timeout` for each read and write. Consumes the channel: the holder
/// answers one request per channel.
pub fn fetch_public_key(
    channel: UnixStream,
    timeout: Duration,
) -> Result<SubjectPublicKeyInfoDer<'static>, RemoteError> {
    set_timeouts(&channel, timeout).map_err(RemoteError::Io)?;
    let mut channel = channel;
    channel
        .write_all(&Request::PublicKey.encode())
        .map_err(RemoteError::Io)?;
    let spki = read_response(&channel).map_err(RemoteError::Holder)?;
    Ok(SubjectPublicKeyInfoDer::from(spki))
}

/// A [`SigningKey`] whose private half lives in the key holder. It signs at most once:
/// the first [`Signer::sign`] takes the channel, and any later one fails.
#[derive(Debug)]
pub struct RemoteSigningKey {
    algorithm: SignatureAlgorithm,
    schemes: &'static [SignatureScheme],
    public_key: SubjectPublicKeyInfoDer<'static>,
    channel: Arc<Mutex<Option<UnixStream>>>,
    timeout: Duration,
}

impl RemoteSigningKey {
    /// A key whose public half is `public_key` (the SPKI the holder reported, see
    /// [`fetch_public_key`]; [`server_config`] checks it against the certificate) and
    /// whose signature is asked for over `channel`, waiting at most `timeout` for each
    /// read and write.
    pub fn new(
        channel: UnixStream,
        public_key: SubjectPublicKeyInfoDer<'static>,
        timeout: Duration,
    ) -> Result<RemoteSigningKey, RemoteError> {
        let (algorithm, schemes) =
            key_type(public_key.as_ref()).ok_or(RemoteError::UnsupportedKey)?;
        set_timeouts(&channel, timeout).map_err(RemoteError::Io)?;
        Ok(RemoteSigningKey {
            algorithm,
            schemes,
            public_key,
            channel: Arc::new(Mutex::new(Some(channel))),
            timeout,
        })
    }

    /// How long each read and write on the channel may wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl SigningKey for RemoteSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = *self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(RemoteSigner {
            scheme,
            channel: Arc::clone(&self.channel),
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(self.public_key.clone())
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

#[derive(Debug)]
struct RemoteSigner {
    scheme: SignatureScheme,
    channel: Arc<Mutex<Option<UnixStream>>>,
}

impl RemoteSigner {
    fn remote_sign(&self, message: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let channel = match self.channel.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let mut channel = channel.ok_or_else(|| {
            RemoteError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "signature already requested on this channel",
            ))
        })?;
        let request = Request::Sign {
            scheme: self.scheme,
            message: message.to_vec(),
        };
        channel
            .write_all(&request.encode())
            .map_err(RemoteError::Io)?;
        read_response(&channel).map_err(RemoteError::Holder)
    }
}

impl Signer for RemoteSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.remote_sign(message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always the one certificate: a listener serves one certificate and key.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A server configuration for `cert_chain` (leaf first) with the holder's key: TLS 1.3
/// and 1.2 (ECDHE suites only, the ring provider's defaults), no client
/// authentication, and no resumption (no session cache, no tickets, no early data), so
/// every handshake makes exactly one signature. Fails if the leaf's public key is not
/// the key's, so a certificate is never paired with the wrong key.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    signing_key: RemoteSigningKey,
) -> Result<Arc<ServerConfig>, RemoteError> {
    let certified = CertifiedKey::new(cert_chain, Arc::new(signing_key));
    certified.keys_match().map_err(RemoteError::KeyMismatch)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(RemoteError::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCert(Arc::new(certified))));
    // Fork per connection makes a session cache useless, and a ticket key shared by the
    // relays would sit in every one of them.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_tlv_rejects_truncation_and_long_lengths() {
        assert_eq!(
            der_tlv(&[0x30, 0x01, 0xaa]),
            Some((0x30, &[0xaa][..], &[][..]))
        );
        assert_eq!(der_tlv(&[0x30, 0x02, 0xaa]), None);
        assert_eq!(der_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]), None);
        assert_eq!(der_tlv(&[0x30, 0x80]), None);
        assert_eq!(der_tlv(&[0x30]), None);
    }

    #[test]
    fn key_type_rejects_garbage() {
        assert!(key_type(&[]).is_none());
        assert!(key_type(&[0x30, 0x00]).is_none());
        assert!(key_type(&[0x30, 0x02, 0x30, 0x00]).is_none());
    }
}

//! Test keys and certificates, made at test time with rcgen.
#![allow(clippy::unwrap_used, dead_code)]

use pop3_tls::keyholder::HolderKey;
use rustls_pki_types::CertificateDer;

/// An RSA-2048 key for tests only: ring cannot generate RSA keys, so this one was made
/// once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`. The
/// certificate for it is still made at test time.
pub const RSA_TEST_KEY: &str = include_str!("../data/rsa2048-test-only.pem");

pub struct TestKey {
    pub pem: String,
    pub chain: Vec<CertificateDer<'static>>,
}

impl TestKey {
    pub fn holder(&self) -> HolderKey {
        HolderKey::from_pem(self.pem.as_bytes()).unwrap()
    }
}

fn certify(key: rcgen::KeyPair) -> TestKey {
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    TestKey {
        pem: key.serialize_pem(),
        chain: vec![cert.der().clone()],
    }
}

pub fn p256() -> TestKey {
    certify(rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap())
}

pub fn p384() -> TestKey {
    certify(rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap())
}

pub fn ed25519() -> TestKey {
    certify(rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap())
}

pub fn rsa() -> TestKey {
    certify(rcgen::KeyPair::from_pem(RSA_TEST_KEY).unwrap())
}

/// A TLS 1.3 server CertificateVerify input with a `hash_len`-byte transcript hash.
pub fn tls13_message(hash_len: usize) -> Vec<u8> {
    let mut m = vec![0x20; 64];
    m.extend_from_slice(b"TLS 1.3, server CertificateVerify");
    m.push(0);
    m.extend(std::iter::repeat_n(0xab, hash_len));
    m
}

/// A TLS 1.2 ServerKeyExchange signature input for `group` with a `point_len`-byte
/// point, the server random ending in the downgrade sentinel if `sentinel`.
pub fn tls12_message(group: u16, point_len: u8, sentinel: bool) -> Vec<u8> {
    let mut m = vec![0x11; 56];
    if sentinel {
        m.extend_from_slice(b"DOWNGRD\x01");
    } else {
        m.extend_from_slice(&[0x22; 8]);
    }
    m.push(3);
    m.extend_from_slice(&group.to_be_bytes());
    m.push(point_len);
    let mut point = vec![0x33; usize::from(point_len)];
    if let Some(first) = point.first_mut() {
        *first = 4;
    }
    m.extend_from_slice(&point);
    m
}

//! The key holder's protocol: what it signs, what it refuses, and a decoder that never
//! panics on random bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use common::{p256, p384, rsa, tls12_message, tls13_message};
use pop3_tls::keyholder::{
    check_message, serve_channel, Answer, DecodeError, HolderKey, MessageKind, Refusal, Request,
    Served, MAX_MESSAGE,
};
use rustls::SignatureScheme;

/// Runs `serve_channel` in a thread; returns our end and the thread.
fn holder(key: HolderKey) -> (UnixStream, thread::JoinHandle<std::io::Result<Served>>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    theirs
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = thread::spawn(move || serve_channel(&key, theirs));
    (ours, t)
}

fn sign(scheme: SignatureScheme, message: Vec<u8>) -> Vec<u8> {
    Request::Sign { scheme, message }.encode()
}

/// Reads until the holder has closed the channel. Closing a Unix socket with unread
/// bytes (an unanswered second request) makes the peer's next read after the queued
/// data fail with ECONNRESET instead of returning 0: both mean closed.
fn read_until_closed(stream: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Sends `request`, returns the whole response (up to end of file) and what the holder
/// says it did.
fn exchange(key: HolderKey, request: &[u8]) -> (Vec<u8>, Served) {
    let (mut ours, t) = holder(key);
    ours.write_all(request).unwrap();
    let response = read_until_closed(&mut ours);
    (response, t.join().unwrap().unwrap())
}

#[test]
fn signs_tls13_certificate_verify_input() {
    for hash_len in [32, 48, 64] {
        let (response, served) = exchange(
            p256().holder(),
            &sign(
                SignatureScheme::ECDSA_NISTP256_SHA256,
                tls13_message(hash_len),
            ),
        );
        assert_eq!(response[0], 0, "status");
        let len = usize::from(u16::from_be_bytes([response[1], response[2]]));
        assert_eq!(response.len(), 3 + len);
        match served {
            Served::Answered(Answer::Signature { kind, scheme, .. }) => {
                assert_eq!(kind, MessageKind::Tls13CertificateVerify { hash_len });
                assert_eq!(scheme, SignatureScheme::ECDSA_NISTP256_SHA256);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn signs_tls12_server_key_exchange_input() {
    for (group, len) in [(0x001d, 32), (0x0017, 65), (0x0018, 97)] {
        let (response, served) = exchange(
            rsa().holder(),
            &sign(
                SignatureScheme::RSA_PKCS1_SHA256,
                tls12_message(group, len, true),
            ),
        );
        assert_eq!(response[0], 0);
        assert_eq!(response.len(), 3 + 256, "RSA-2048 signature");
        assert!(matches!(
            served,
            Served::Answered(Answer::Signature {
                kind: MessageKind::Tls12ServerKeyExchange { group: g },
                ..
            }) if g == group
        ));
    }
}

#[test]
fn refuses_message_not_shaped_like_a_handshake_signature() {
    let cases = [
        b"hello world".to_vec(),
        tls13_message(20),
        tls13_message(33),
        {
            let mut m = tls13_message(32);
            m[70] = b'X'; // context string
            m
        },
        {
            let mut m = tls13_message(32);
            m[0] = 0x21;
            m
        },
        {
            let mut m = tls13_message(32);
            m[97] = 1; // separator
            m
        },
        tls12_message(0x001d, 32, false), // no downgrade sentinel
        tls12_message(0x001d, 31, true),  // wrong point length for X25519
        tls12_message(0x1234, 32, true),  // unknown group
        {
            let mut m = tls12_message(0x001d, 32, true);
            m.push(0); // trailing byte
            m
        },
        {
            let mut m = tls12_message(0x0017, 65, true);
            m[68] = 2; // compressed point
            m
        },
        {
            let mut m = tls12_message(0x0017, 65, true);
            m[64] = 1; // explicit_prime curve type
            m
        },
    ];
    for message in cases {
        assert_eq!(check_message(&message), None, "{message:02x?}");
        let (response, served) = exchange(
            p256().holder(),
            &sign(SignatureScheme::ECDSA_NISTP256_SHA256, message),
        );
        assert_eq!(response, [2]);
        assert_eq!(served, Served::Refused(Refusal::NotHandshakeMessage));
    }
}

#[test]
fn refuses_scheme_the_key_does_not_have() {
    let cases = [
        (p256(), SignatureScheme::RSA_PSS_SHA256, tls13_message(32)),
        (
            p256(),
            SignatureScheme::ECDSA_NISTP384_SHA384,
            tls13_message(48),
        ),
        (
            p384(),
            SignatureScheme::ECDSA_NISTP256_SHA256,
            tls13_message(32),
        ),
        (
            rsa(),
            SignatureScheme::ECDSA_NISTP256_SHA256,
            tls13_message(32),
        ),
        (
            rsa(),
            SignatureScheme::RSA_PKCS1_SHA1,
            tls12_message(0x1d, 32, true),
        ),
        // PKCS#1 v1.5 is not allowed in TLS 1.3 (RFC 8446 §4.2.3).
        (rsa(), SignatureScheme::RSA_PKCS1_SHA256, tls13_message(32)),
    ];
    for (key, scheme, message) in cases {
        let (response, served) = exchange(key.holder(), &sign(scheme, message));
        assert_eq!(response, [3], "{scheme:?}");
        assert_eq!(served, Served::Refused(Refusal::SchemeNotSupported(scheme)));
    }
}

#[test]
fn refuses_oversized_request_without_reading_its_body() {
    let (mut ours, t) = holder(p256().holder());
    // Header only: a 1000-byte message announced, never sent.
    ours.write_all(&[1, 0x04, 0x03, 0x03, 0xe8]).unwrap();
    let response = read_until_closed(&mut ours);
    assert_eq!(response, [1]);
    assert_eq!(
        t.join().unwrap().unwrap(),
        Served::Refused(Refusal::Malformed(DecodeError::BadLength(1000)))
    );
}

#[test]
fn refuses_unknown_request_type() {
    let (response, served) = exchange(p256().holder(), &[9, 9, 9]);
    assert_eq!(response, [1]);
    assert_eq!(
        served,
        Served::Refused(Refusal::Malformed(DecodeError::UnknownType(9)))
    );
}

#[test]
fn answers_one_request_per_channel() {
    let (mut ours, t) = holder(p256().holder());
    let one = sign(SignatureScheme::ECDSA_NISTP256_SHA256, tls13_message(32));
    let mut two = one.clone();
    two.extend_from_slice(&one);
    ours.write_all(&two).unwrap();
    let response = read_until_closed(&mut ours);
    assert!(matches!(t.join().unwrap().unwrap(), Served::Answered(_)));
    // Exactly one answer, then end of file: the second request was never answered.
    assert_eq!(response[0], 0);
    let len = usize::from(u16::from_be_bytes([response[1], response[2]]));
    assert_eq!(response.len(), 3 + len);
}

#[test]
fn reports_public_key() {
    let key = p256();
    let (response, served) = exchange(key.holder(), &Request::PublicKey.encode());
    let spki = key.holder().public_key().unwrap();
    assert_eq!(&response[3..], spki.as_ref());
    assert_eq!(
        served,
        Served::Answered(Answer::PublicKey(spki.as_ref().to_vec()))
    );
}

#[test]
fn end_of_file_before_a_whole_request_is_an_error() {
    let (mut ours, t) = holder(p256().holder());
    ours.write_all(&[1, 0x04, 0x03]).unwrap();
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn decode_is_strict() {
    let ok = sign(SignatureScheme::ECDSA_NISTP256_SHA256, vec![7; 10]);
    assert_eq!(
        Request::decode(&ok),
        Ok(Request::Sign {
            scheme: SignatureScheme::ECDSA_NISTP256_SHA256,
            message: vec![7; 10]
        })
    );
    assert_eq!(Request::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(Request::decode(&ok[..4]), Err(DecodeError::Truncated));
    assert_eq!(Request::decode(&ok[..14]), Err(DecodeError::Truncated));
    let mut long = ok.clone();
    long.push(0);
    assert_eq!(Request::decode(&long), Err(DecodeError::TrailingBytes));
    assert_eq!(Request::decode(&[2, 0]), Err(DecodeError::TrailingBytes));
    assert_eq!(Request::decode(&[2]), Ok(Request::PublicKey));
    assert_eq!(
        Request::decode(&[1, 4, 3, 0, 0]),
        Err(DecodeError::BadLength(0))
    );
    let max = sign(SignatureScheme::ECDSA_NISTP256_SHA256, vec![0; MAX_MESSAGE]);
    assert!(Request::decode(&max).is_ok());
    let over = sign(
        SignatureScheme::ECDSA_NISTP256_SHA256,
        vec![0; MAX_MESSAGE + 1],
    );
    assert_eq!(
        Request::decode(&over),
        Err(DecodeError::BadLength(MAX_MESSAGE + 1))
    );
}

#[test]
fn ed25519_key_loads_and_signs() {
    let (response, served) = exchange(
        common::ed25519().holder(),
        &sign(SignatureScheme::ED25519, tls13_message(32)),
    );
    assert_eq!(response[0], 0);
    assert_eq!(response.len(), 3 + 64);
    assert!(matches!(served, Served::Answered(_)));
}

#[test]
fn rejects_non_key_pem() {
    assert!(HolderKey::from_pem(b"not a key").is_err());
    let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(HolderKey::from_pem(pem.as_bytes()).is_err());
}

/// xorshift64: deterministic pseudo-random bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }
}

#[test]
fn random_requests_never_panic() {
    let key = p256().holder();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let templates = [
        sign(SignatureScheme::ECDSA_NISTP256_SHA256, tls13_message(32)),
        sign(
            SignatureScheme::ECDSA_NISTP256_SHA256,
            tls12_message(0x17, 65, true),
        ),
    ];
    let mut decoded = 0;
    for i in 0..20_000 {
        let bytes: Vec<u8> = if i % 2 == 0 {
            let len = (rng.next() % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            if let Some(first) = b.first_mut() {
                *first = [1, 2, rng.byte()][(rng.next() % 3) as usize];
            }
            b
        } else {
            // Mutate a valid request: flip bytes, truncate or extend.
            let mut b = templates[(rng.next() % 2) as usize].clone();
            for _ in 0..(rng.next() % 4) {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.byte();
            }
            match rng.next() % 4 {
                0 => b.truncate((rng.next() as usize) % (b.len() + 1)),
                1 => b.push(rng.byte()),
                _ => {}
            }
            b
        };
        let _ = Request::frame_len(&bytes);
        let _ = check_message(&bytes);
        if let Ok(request) = Request::decode(&bytes) {
            decoded += 1;
            let _ = key.answer(&request);
        }
    }
    assert!(decoded > 100, "the mutations reach the answering code");
}

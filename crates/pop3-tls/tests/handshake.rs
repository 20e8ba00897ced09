//! Real TLS handshakes over loopback TCP: a rustls client, the relay with the remote
//! key, the key holder in a thread, and a plaintext "session" on a socketpair.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::{p256, rsa, TestKey};
use pop3_tls::keyholder::{serve_channel, Answer, MessageKind, Served};
use pop3_tls::relay::{pump, Ended, RelayError};
use pop3_tls::remote::{fetch_public_key, server_config, RemoteError, RemoteSigningKey};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, ServerConfig};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Server {
    addr: std::net::SocketAddr,
    holder: JoinHandle<std::io::Result<Served>>,
    relay: JoinHandle<Result<Ended, RelayError>>,
    session: JoinHandle<Vec<String>>,
}

/// Asks a holder thread for the key's SPKI over its own channel, as the daemon does.
fn holder_spki(key: &TestKey) -> rustls_pki_types::SubjectPublicKeyInfoDer<'static> {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let holder = key.holder();
    let t = thread::spawn(move || serve_channel(&holder, theirs));
    let spki = fetch_public_key(ours, TIMEOUT).unwrap();
    assert!(matches!(t.join().unwrap().unwrap(), Served::Answered(_)));
    spki
}

/// The server side: holder thread, config with the remote key, relay thread on one
/// accepted loopback connection, and a POP3-like plaintext session: greeting, echo one
/// line, answer QUIT (or end of file), close.
fn start(key: &TestKey) -> Server {
    let spki = holder_spki(key);
    let (relay_end, holder_end) = UnixStream::pair().unwrap();
    holder_end.set_read_timeout(Some(TIMEOUT)).unwrap();
    let holder_key = key.holder();
    let holder = thread::spawn(move || serve_channel(&holder_key, holder_end));
    let signing = RemoteSigningKey::new(relay_end, spki, TIMEOUT).unwrap();
    let config = server_config(key.chain.clone(), signing).unwrap();
    start_relay(config, holder)
}

fn start_relay(config: Arc<ServerConfig>, holder: JoinHandle<std::io::Result<Served>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (plain_relay, plain_session) = UnixStream::pair().unwrap();
    let relay = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_write_timeout(Some(TIMEOUT)).unwrap();
        plain_relay.set_write_timeout(Some(TIMEOUT)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        pump(conn, tcp, plain_relay, Duration::from_secs(5))
    });
    let session = thread::spawn(move || {
        plain_session.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut out = plain_session.try_clone().unwrap();
        let mut lines = Vec::new();
        if out.write_all(b"+OK ready\r\n").is_err() {
            return lines;
        }
        let mut reader = BufReader::new(plain_session);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    lines.push("<eof>".to_string());
                    let _ = out.write_all(b"+OK bye after eof\r\n");
                    break;
                }
                Ok(_) => {}
            }
            lines.push(line.clone());
            if line == "QUIT\r\n" {
                out.write_all(b"+OK bye\r\n").unwrap();
                break;
            }
            out.write_all(format!("+OK {line}").as_bytes()).unwrap();
        }
        lines
    });
    Server {
        addr,
        holder,
        relay,
        session,
    }
}

fn client_config(
    key: &TestKey,
    version: &'static rustls::SupportedProtocolVersion,
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(key.chain[0].clone()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn connect(
    server: &Server,
    config: ClientConfig,
) -> rustls::StreamOwned<ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

fn read_line<R: Read>(r: &mut R) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let n = r.read(&mut byte).unwrap();
        assert_eq!(n, 1, "unexpected end of stream after {line:?}");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Full session: greeting, one echoed line, QUIT, then the server's close_notify.
fn full_session(
    key: &TestKey,
    version: &'static rustls::SupportedProtocolVersion,
    expect_version: ProtocolVersion,
) -> MessageKind {
    let server = start(key);
    let mut client = connect(&server, client_config(key, version));
    assert_eq!(read_line(&mut client), "+OK ready\r\n");
    assert_eq!(client.conn.protocol_version(), Some(expect_version));
    client.write_all(b"CAPA\r\n").unwrap();
    assert_eq!(read_line(&mut client), "+OK CAPA\r\n");
    client.write_all(b"QUIT\r\n").unwrap();
    assert_eq!(read_line(&mut client), "+OK bye\r\n");
    // The session closed its end: the relay sends close_notify, a clean end of stream.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());

    assert_eq!(server.session.join().unwrap(), ["CAPA\r\n", "QUIT\r\n"]);
    let ended = server.relay.join().unwrap().unwrap();
    assert!(!ended.client_close_notify);
    match server.holder.join().unwrap().unwrap() {
        Served::Answered(Answer::Signature { kind, .. }) => kind,
        other => panic!("holder: {other:?}"),
    }
}

#[test]
fn tls13_p256() {
    let kind = full_session(&p256(), &rustls::version::TLS13, ProtocolVersion::TLSv1_3);
    assert!(matches!(kind, MessageKind::Tls13CertificateVerify { .. }));
}

#[test]
fn tls12_p256() {
    let kind = full_session(&p256(), &rustls::version::TLS12, ProtocolVersion::TLSv1_2);
    assert!(matches!(kind, MessageKind::Tls12ServerKeyExchange { .. }));
}

#[test]
fn tls13_rsa() {
    let kind = full_session(&rsa(), &rustls::version::TLS13, ProtocolVersion::TLSv1_3);
    assert!(matches!(kind, MessageKind::Tls13CertificateVerify { .. }));
}

#[test]
fn tls12_rsa() {
    let kind = full_session(&rsa(), &rustls::version::TLS12, ProtocolVersion::TLSv1_2);
    assert!(matches!(kind, MessageKind::Tls12ServerKeyExchange { .. }));
}

#[test]
fn client_close_notify_reaches_session_as_end_of_file() {
    let key = p256();
    let server = start(&key);
    let mut client = connect(&server, client_config(&key, &rustls::version::TLS13));
    assert_eq!(read_line(&mut client), "+OK ready\r\n");
    client.write_all(b"NOOP\r\n").unwrap();
    assert_eq!(read_line(&mut client), "+OK NOOP\r\n");
    client.conn.send_close_notify();
    client.flush().unwrap();
    // TLS 1.3 half-closure: the session still answers after our close_notify.
    assert_eq!(read_line(&mut client), "+OK bye after eof\r\n");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(server.session.join().unwrap(), ["NOOP\r\n", "<eof>"]);
    assert!(server.relay.join().unwrap().unwrap().client_close_notify);
}

#[test]
fn large_transfer_both_ways() {
    let key = p256();
    let server = start(&key);
    let mut client = connect(&server, client_config(&key, &rustls::version::TLS13));
    assert_eq!(read_line(&mut client), "+OK ready\r\n");
    // 200 KiB in one line: more than rustls' and the relay's buffers hold.
    let mut line = vec![b'x'; 200 * 1024];
    line.extend_from_slice(b"\r\n");
    client.write_all(&line).unwrap();
    let echoed = read_line(&mut client);
    assert_eq!(echoed.len(), 4 + line.len());
    client.write_all(b"QUIT\r\n").unwrap();
    assert_eq!(read_line(&mut client), "+OK bye\r\n");
    server.session.join().unwrap();
    server.relay.join().unwrap().unwrap();
}

#[test]
fn tls11_client_is_refused() {
    let key = p256();
    let server = start(&key);
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    // A TLS 1.1 ClientHello (RFC 4346 §7.4.1.2): no supported_versions extension,
    // ECDHE-RSA and RSA CBC suites, null compression, and the extensions a TLS 1.2
    // server needs otherwise (supported_groups P-256, ec_point_formats uncompressed,
    // signature_algorithms ecdsa_secp256r1_sha256), so only the version is wrong.
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]);
    let extensions = [
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms
    ];
    body.extend_from_slice(&[0x00, extensions.len() as u8]);
    body.extend_from_slice(&extensions);
    let mut hello = vec![0x01, 0x00, 0x00, body.len() as u8];
    hello.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, hello.len() as u8];
    record.extend_from_slice(&hello);
    tcp.write_all(&record).unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).unwrap();
    // One fatal alert record and nothing else: level 2, protocol_version (70).
    assert_eq!(answer.len(), 7, "{answer:02x?}");
    assert_eq!(answer[0], 0x15, "alert record");
    assert_eq!(&answer[5..], [2, 70]);
    match server.relay.join().unwrap() {
        Err(RelayError::Tls(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))) => {}
        other => panic!("{other:?}"),
    }
    // No signature was asked for: the holder saw its channel close.
    assert!(server.holder.join().unwrap().is_err());
    server.session.join().unwrap();
}

#[test]
fn garbage_instead_of_client_hello_fails_the_handshake() {
    let key = p256();
    let server = start(&key);
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.write_all(b"USER root\r\nPASS x\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(matches!(
        server.relay.join().unwrap(),
        Err(RelayError::Tls(_))
    ));
    let lines = server.session.join().unwrap();
    assert!(
        lines.is_empty() || lines == ["<eof>"],
        "no byte reached the session: {lines:?}"
    );
    assert!(server.holder.join().unwrap().is_err());
}

#[test]
fn silent_client_hits_handshake_timeout() {
    let key = p256();
    let spki = holder_spki(&key);
    let (relay_end, holder_end) = UnixStream::pair().unwrap();
    let holder_key = key.holder();
    let holder = thread::spawn(move || serve_channel(&holder_key, holder_end));
    let config = server_config(
        key.chain.clone(),
        RemoteSigningKey::new(relay_end, spki, TIMEOUT).unwrap(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (plain_relay, _plain_session) = UnixStream::pair().unwrap();
    let relay = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        pump(conn, tcp, plain_relay, Duration::from_millis(200))
    });
    let _tcp = TcpStream::connect(addr).unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        relay.join().unwrap(),
        Err(RelayError::HandshakeTimeout)
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(holder.join().unwrap().is_err());
}

#[test]
fn certificate_must_match_holder_key() {
    let cert_key = p256();
    let other = rsa();
    let spki = holder_spki(&other);
    let (relay_end, _holder_end) = UnixStream::pair().unwrap();
    let signing = RemoteSigningKey::new(relay_end, spki, TIMEOUT).unwrap();
    assert!(matches!(
        server_config(cert_key.chain.clone(), signing),
        Err(RemoteError::KeyMismatch(_))
    ));
}

#[test]
fn remote_key_signs_only_once() {
    use rustls::sign::SigningKey;
    let key = p256();
    let spki = holder_spki(&key);
    let (relay_end, holder_end) = UnixStream::pair().unwrap();
    let holder_key = key.holder();
    let holder = thread::spawn(move || serve_channel(&holder_key, holder_end));
    let remote = RemoteSigningKey::new(relay_end, spki, TIMEOUT).unwrap();
    let signer = remote
        .choose_scheme(&[
            rustls::SignatureScheme::RSA_PSS_SHA256,
            rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
        ])
        .unwrap();
    assert_eq!(
        signer.scheme(),
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    );
    assert!(remote
        .choose_scheme(&[rustls::SignatureScheme::RSA_PSS_SHA256])
        .is_none());
    let message = common::tls13_message(32);
    assert!(!signer.sign(&message).unwrap().is_empty());
    assert!(signer.sign(&message).is_err(), "second signature refused");
    assert!(matches!(
        holder.join().unwrap().unwrap(),
        Served::Answered(_)
    ));
}

#[test]
fn remote_key_reports_holder_refusal() {
    use rustls::sign::SigningKey;
    let key = p256();
    let spki = holder_spki(&key);
    let (relay_end, holder_end) = UnixStream::pair().unwrap();
    let holder_key = key.holder();
    let holder = thread::spawn(move || serve_channel(&holder_key, holder_end));
    let remote = RemoteSigningKey::new(relay_end, spki, TIMEOUT).unwrap();
    let signer = remote
        .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
        .unwrap();
    let err = signer.sign(b"not a handshake message").unwrap_err();
    assert!(err.to_string().contains("refused (code 2)"), "{err}");
    assert!(matches!(
        holder.join().unwrap().unwrap(),
        Served::Refused(_)
    ));
}

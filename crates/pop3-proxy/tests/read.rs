//! `read_header`: reads one header and not one byte more, from any kind of reader.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{self, Read};

use pop3_proxy::{
    encode_v2, read_header, Header, ProxyError, ReadError, V1_MAX, V2_MAX, V2_SIGNATURE,
};

const SESSION: &[u8] = b"USER bob\r\n";

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
    }
}

/// Headers as a proxy may send them, with what they say.
fn headers() -> Vec<(Vec<u8>, Header)> {
    let tcp4 = proxied("192.0.2.1:56324", "198.51.100.2:110");
    let tcp6 = proxied("[2001:db8::1]:4660", "[2001:db8::2]:995");
    let mut v2_tlvs = encode_v2(&tcp4);
    v2_tlvs[15] += 10;
    v2_tlvs.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x02, 0, 0]);
    let mut v2_local_block = encode_v2(&tcp4);
    v2_local_block[12] = 0x20;
    vec![
        (
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n".to_vec(),
            tcp4,
        ),
        (
            b"PROXY TCP6 2001:db8::1 2001:db8::2 4660 995\r\n".to_vec(),
            tcp6,
        ),
        (b"PROXY UNKNOWN\r\n".to_vec(), Header::Local),
        (
            b"PROXY UNKNOWN 2001:db8::1 2001:db8::2 4660 995\r\n".to_vec(),
            Header::Local,
        ),
        (encode_v2(&tcp4), tcp4),
        (encode_v2(&tcp6), tcp6),
        (encode_v2(&Header::Local), Header::Local),
        (v2_tlvs, tcp4),
        (v2_local_block, Header::Local),
    ]
}

/// A reader over a slice that hands out at most `chunk` bytes per call, counts the
/// bytes it gave, and fails with `Interrupted` before every other successful read
/// when `interrupt` is set.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    given: usize,
    interrupt: bool,
    calls: usize,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8], chunk: usize) -> Self {
        Trickle {
            data,
            chunk,
            given: 0,
            interrupt: false,
            calls: 0,
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.interrupt && self.calls % 2 == 1 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.chunk).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given += n;
        Ok(n)
    }
}

fn proxy_err(r: Result<Header, ReadError>) -> ProxyError {
    match r {
        Err(ReadError::Proxy(e)) => e,
        other => panic!("expected a PROXY error, got {other:?}"),
    }
}

fn io_kind(r: Result<Header, ReadError>) -> io::ErrorKind {
    match r {
        Err(ReadError::Io(e)) => e.kind(),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn leaves_the_session_bytes_unread() {
    for (header, want) in headers() {
        let input = [&header[..], SESSION].concat();
        let mut r: &[u8] = &input;
        assert_eq!(read_header(&mut r).unwrap(), want, "{header:02x?}");
        assert_eq!(r, SESSION, "{header:02x?}");
    }
}

#[test]
fn one_byte_per_read_and_interrupted() {
    for (header, want) in headers() {
        let input = [&header[..], SESSION].concat();
        for chunk in [1, 2, 3, 5, 7, 11, 13, 16, 64] {
            for interrupt in [false, true] {
                let mut r = Trickle::new(&input, chunk);
                r.interrupt = interrupt;
                assert_eq!(read_header(&mut r).unwrap(), want, "{header:02x?} {chunk}");
                assert_eq!(r.given, header.len(), "{header:02x?} {chunk}");
                assert_eq!(r.data, SESSION);
            }
        }
    }
}

#[test]
fn eof_inside_the_header() {
    for (header, _) in headers() {
        for n in 0..header.len() {
            let mut r: &[u8] = &header[..n];
            assert_eq!(
                io_kind(read_header(&mut r)),
                io::ErrorKind::UnexpectedEof,
                "{:02x?}",
                &header[..n]
            );
            let mut r = Trickle::new(&header[..n], 1);
            assert_eq!(io_kind(read_header(&mut r)), io::ErrorKind::UnexpectedEof);
        }
    }
}

#[test]
fn other_read_errors_pass_through() {
    struct Then<'a>(&'a [u8], io::ErrorKind);
    impl Read for Then<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(self.1.into());
            }
            self.0.read(buf)
        }
    }
    for kind in [io::ErrorKind::TimedOut, io::ErrorKind::WouldBlock] {
        assert_eq!(io_kind(read_header(&mut Then(b"PROXY TCP4 1", kind))), kind);
        assert_eq!(io_kind(read_header(&mut Then(b"PRO", kind))), kind);
        assert_eq!(
            io_kind(read_header(&mut Then(&V2_SIGNATURE[..], kind))),
            kind
        );
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12, 1, 2]);
        assert_eq!(io_kind(read_header(&mut Then(&v2, kind))), kind);
    }
}

#[test]
fn v1_without_lf_stops_at_the_limit() {
    let mut input = b"PROXY TCP4 ".to_vec();
    input.resize(400, b'1');
    for chunk in [1, 12, 1000] {
        let mut r = Trickle::new(&input, chunk);
        assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V1TooLong);
        assert_eq!(r.given, V1_MAX, "chunk {chunk}");
    }
    // A CR alone does not end the line either.
    let mut input = b"PROXY UNKNOWN\r".to_vec();
    input.resize(400, b'\r');
    let mut r = Trickle::new(&input, 1);
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V1TooLong);
    assert_eq!(r.given, V1_MAX);
}

#[test]
fn v1_line_at_the_limit() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX - 2, b'x');
    line.extend_from_slice(b"\r\n");
    let input = [&line[..], SESSION].concat();
    let mut r: &[u8] = &input;
    assert_eq!(read_header(&mut r).unwrap(), Header::Local);
    assert_eq!(r, SESSION);
}

#[test]
fn v1_errors() {
    let mut r: &[u8] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n";
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V1LineEnd);
    // An LF among the first 12 bytes: no valid line is that short.
    let mut r: &[u8] = b"PROXY X\r\nUSER bob\r\n";
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V1Protocol);
    let mut r: &[u8] = b"PROXY \nUSER bob\r\n";
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V1LineEnd);
}

#[test]
fn not_proxy_is_refused_at_the_first_wrong_byte() {
    for (input, read) in [
        (&b"USER bob\r\n"[..], 1),
        (b"PROXY\tTCP4", 6),
        (b"PROXy", 5),
        (b"\r\n\r\n\0\r\nQUIT\r", 12),
        (b"\r\n\r\n\0\r\r", 7),
        (b"\r\n\r\n\0\r\nq", 8),
        (b"\x16\x03\x01\x00", 1),
    ] {
        let mut r = Trickle::new(input, 1);
        let e = proxy_err(read_header(&mut r));
        let ProxyError::NotProxy(s) = e else {
            panic!("{input:02x?}: {e:?}")
        };
        assert_eq!(r.given, read, "{input:02x?}");
        assert_eq!(s.as_bytes(), &input[..read.min(8)]);
    }
    // Whatever arrived in the first read is in the message, escaped and capped.
    let mut r: &[u8] = b"USER bob\r\nPASS secret\r\n";
    let e = read_header(&mut r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not a PROXY protocol header (begins \"USER bob\")"
    );
}

#[test]
fn v2_fixed_part_is_checked_before_reading_on() {
    for (ver_cmd_fam_len, want) in [
        ([0x21, 0x11, 0x04, 0x01], ProxyError::V2TooLong(1025)),
        ([0x21, 0x11, 0xff, 0xff], ProxyError::V2TooLong(65535)),
        ([0x11, 0x11, 0x00, 0x0c], ProxyError::V2Version(1)),
        ([0x22, 0x11, 0x00, 0x0c], ProxyError::V2Command(2)),
    ] {
        let mut input = V2_SIGNATURE.to_vec();
        input.extend_from_slice(&ver_cmd_fam_len);
        input.resize(2000, 0);
        let mut r = Trickle::new(&input, 1);
        assert_eq!(proxy_err(read_header(&mut r)), want);
        assert_eq!(r.given, 16);
    }
}

#[test]
fn v2_body_errors() {
    let mut input = V2_SIGNATURE.to_vec();
    input.extend_from_slice(&[0x21, 0x11, 0x00, 0x0d]);
    input.extend_from_slice(&[0; 13]);
    input.extend_from_slice(SESSION);
    let mut r: &[u8] = &input;
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V2Tlv);
    assert_eq!(r, SESSION);

    let mut input = V2_SIGNATURE.to_vec();
    input.extend_from_slice(&[0x21, 0x21, 0x00, 0x0c]);
    input.extend_from_slice(&[0; 12]);
    let mut r: &[u8] = &input;
    assert_eq!(
        proxy_err(read_header(&mut r)),
        ProxyError::V2AddressTooShort {
            family: 0x21,
            len: 12
        }
    );

    let mut input = V2_SIGNATURE.to_vec();
    input.extend_from_slice(&[0x21, 0x41, 0x00, 0x00]);
    let mut r: &[u8] = &input;
    assert_eq!(proxy_err(read_header(&mut r)), ProxyError::V2Family(0x41));
}

#[test]
fn largest_v2_header_is_read_whole() {
    let mut input = V2_SIGNATURE.to_vec();
    let len = V2_MAX - 16;
    input.extend_from_slice(&[0x21, 0x00]);
    input.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    input.extend_from_slice(&[0xe0]);
    input.extend_from_slice(&u16::try_from(len - 3).unwrap().to_be_bytes());
    input.resize(V2_MAX, b'z');
    input.extend_from_slice(SESSION);
    let mut r: &[u8] = &input;
    assert_eq!(read_header(&mut r).unwrap(), Header::Local);
    assert_eq!(r, SESSION);
}

/// A reader that reports more bytes than the buffer holds must not make the reader
/// index out of bounds.
#[test]
fn lying_reader_does_not_panic() {
    struct Liar;
    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'P');
            Ok(buf.len() + 5)
        }
    }
    assert!(matches!(
        read_header(&mut Liar),
        Err(ReadError::Proxy(ProxyError::NotProxy(_)))
    ));
}

#[test]
fn errors_display() {
    let mut r: &[u8] = b"PRO";
    let e = read_header(&mut r).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("reading the PROXY protocol header: "));
    assert!(std::error::Error::source(&e).is_some());
}

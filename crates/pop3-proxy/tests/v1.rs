//! Version 1 (§2.1): every rule of the crate documentation, accepted and refused.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;

use pop3_proxy::{parse_v1, Endpoint, Header, ProxyError, V1_MAX};

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
    }
}

fn err(line: &[u8]) -> ProxyError {
    match parse_v1(line) {
        Ok(h) => panic!("{:?} accepted as {h:?}", String::from_utf8_lossy(line)),
        Err(e) => e,
    }
}

#[test]
fn tcp4() {
    assert_eq!(
        parse_v1(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 110\r\n"),
        Ok(proxied("192.168.0.1:56324", "192.168.0.11:110"))
    );
    assert_eq!(
        parse_v1(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"),
        Ok(proxied("0.0.0.0:0", "255.255.255.255:65535"))
    );
    assert_eq!(
        parse_v1(b"PROXY TCP4 10.0.100.9 1.2.3.4 10 1\r\n"),
        Ok(proxied("10.0.100.9:10", "1.2.3.4:1"))
    );
}

#[test]
fn tcp6() {
    assert_eq!(
        parse_v1(b"PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 1024 995\r\n"),
        Ok(proxied("[2001:db8::1]:1024", "[2001:db8::2]:995"))
    );
    assert_eq!(
        parse_v1(b"PROXY TCP6 :: ::1 0 110\r\n"),
        Ok(proxied("[::]:0", "[::1]:110"))
    );
}

#[test]
fn tcp6_ipv4_mapped_becomes_ipv4() {
    let h = parse_v1(b"PROXY TCP6 ::ffff:192.0.2.7 ::FFFF:c000:0201 40000 110\r\n").unwrap();
    assert_eq!(h, proxied("192.0.2.7:40000", "192.0.2.1:110"));
    let Header::Proxied { source, .. } = h else {
        panic!()
    };
    assert!(matches!(source, SocketAddr::V4(_)));
}

#[test]
fn longest_tcp6_line_fits() {
    let line = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n";
    assert!(line.len() <= V1_MAX);
    assert!(matches!(parse_v1(line), Ok(Header::Proxied { .. })));
}

#[test]
fn unknown_ignores_the_rest() {
    assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n"), Ok(Header::Local));
    assert_eq!(
        parse_v1(b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
        Ok(Header::Local)
    );
    assert_eq!(
        parse_v1(b"PROXY UNKNOWN  \x00\x01\xff\x7f anything\tat all \r\n"),
        Ok(Header::Local)
    );
    assert_eq!(parse_v1(b"PROXY UNKNOWN \r\n"), Ok(Header::Local));
}

#[test]
fn length_limit() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(line.len(), 107);
    assert_eq!(parse_v1(&line), Ok(Header::Local));
    line.insert(20, b'x');
    assert_eq!(err(&line), ProxyError::V1TooLong);
}

#[test]
fn not_proxy() {
    assert!(matches!(err(b""), ProxyError::NotProxy(_)));
    assert!(matches!(err(b"USER bob\r\n"), ProxyError::NotProxy(_)));
    assert!(matches!(
        err(b"proxy TCP4 1.2.3.4 1.2.3.4 1 1\r\n"),
        ProxyError::NotProxy(_)
    ));
    assert!(matches!(err(b"PROXY\r\n"), ProxyError::NotProxy(_)));
    assert!(matches!(
        err(b" PROXY TCP4 1.2.3.4 1.2.3.4 1 1\r\n"),
        ProxyError::NotProxy(_)
    ));
    assert!(matches!(
        err(b"PROXY\tTCP4 1.2.3.4 1.2.3.4 1 1\r\n"),
        ProxyError::NotProxy(_)
    ));
    let ProxyError::NotProxy(s) = err(b"USER bob\r\n") else {
        panic!()
    };
    assert_eq!(s.as_bytes(), b"USER bob");
}

#[test]
fn line_end() {
    let ok = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2";
    let with = |end: &[u8]| [&ok[..], end].concat();
    assert!(parse_v1(&with(b"\r\n")).is_ok());
    assert_eq!(err(&with(b"")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\n")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\r")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\n\r")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\r\r\n")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\r\n\r\n")), ProxyError::V1LineEnd);
    assert_eq!(err(&with(b"\r\nUSER bob")), ProxyError::V1LineEnd);
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n"),
        ProxyError::V1LineEnd
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n"),
        ProxyError::V1LineEnd
    );
    assert_eq!(err(b"PROXY UNKNOWN\n"), ProxyError::V1LineEnd);
    assert_eq!(err(b"PROXY UNKNOWN x\ry\r\n"), ProxyError::V1LineEnd);
    assert_eq!(err(b"PROXY \r\n\r\n"), ProxyError::V1LineEnd);
}

#[test]
fn protocol() {
    assert_eq!(
        err(b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Protocol
    );
    assert_eq!(
        err(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Protocol
    );
    assert_eq!(
        err(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Protocol
    );
    assert_eq!(
        err(b"PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Protocol
    );
    assert_eq!(err(b"PROXY UNKNOWNX\r\n"), ProxyError::V1Protocol);
    assert_eq!(err(b"PROXY unknown\r\n"), ProxyError::V1Protocol);
    assert_eq!(err(b"PROXY UNKNOWN\t\r\n"), ProxyError::V1Protocol);
    assert_eq!(err(b"PROXY TCP\r\n"), ProxyError::V1Protocol);
}

#[test]
fn fields_and_spaces() {
    assert_eq!(err(b"PROXY \r\n"), ProxyError::V1Fields);
    assert_eq!(
        err(b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
        ProxyError::V1Fields
    );
    assert_eq!(err(b"PROXY TCP4 1.2.3.4\r\n"), ProxyError::V1Fields);
    assert_eq!(err(b"PROXY TCP4\r\n"), ProxyError::V1Fields);
    assert_eq!(err(b"PROXY TCP4 \r\n"), ProxyError::V1Fields);
    assert_eq!(err(b"PROXY TCP6 ::1 ::2 1\r\n"), ProxyError::V1Fields);
}

/// Bad source addresses for TCP4, each refused as such (and the same string as the
/// destination, refused as the destination).
#[test]
fn tcp4_addresses() {
    for bad in [
        "01.2.3.4",
        "1.2.3.04",
        "00.0.0.0",
        "1.2.3",
        "1.2.3.4.5",
        "1..3.4",
        ".1.2.3",
        "1.2.3.",
        "256.1.1.1",
        "1.2.3.1000",
        "-1.2.3.4",
        "+1.2.3.4",
        "0x1.2.3.4",
        "1.2.3.4a",
        "1.2.3.4/32",
        "::1",
        "::ffff:1.2.3.4",
        "4294967295",
        "１.2.3.4",
    ] {
        let src = format!("PROXY TCP4 {bad} 5.6.7.8 1 2\r\n");
        assert_eq!(
            err(src.as_bytes()),
            ProxyError::V1Address(Endpoint::Source),
            "{bad}"
        );
        let dst = format!("PROXY TCP4 5.6.7.8 {bad} 1 2\r\n");
        assert_eq!(
            err(dst.as_bytes()),
            ProxyError::V1Address(Endpoint::Destination),
            "{bad}"
        );
    }
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.\xff 5.6.7.8 1 2\r\n"),
        ProxyError::V1Address(Endpoint::Source)
    );
}

#[test]
fn tcp6_addresses() {
    for bad in [
        "1.2.3.4",
        "[::1]",
        "fe80::1%eth0",
        "fe80::1%1",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "1::2::3",
        "12345::1",
        "g::1",
        ":::",
        "::ffff:01.2.3.4",
        "::ffff:256.2.3.4",
    ] {
        let src = format!("PROXY TCP6 {bad} ::2 1 2\r\n");
        assert_eq!(
            err(src.as_bytes()),
            ProxyError::V1Address(Endpoint::Source),
            "{bad}"
        );
        let dst = format!("PROXY TCP6 ::2 {bad} 1 2\r\n");
        assert_eq!(
            err(dst.as_bytes()),
            ProxyError::V1Address(Endpoint::Destination),
            "{bad}"
        );
    }
    assert_eq!(
        err(b"PROXY TCP6 ::\xc3\xa9 ::2 1 2\r\n"),
        ProxyError::V1Address(Endpoint::Source)
    );
}

#[test]
fn ports() {
    for good in ["0", "1", "9", "10", "110", "65535"] {
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {good} {good}\r\n");
        let port: u16 = good.parse().unwrap();
        assert_eq!(
            parse_v1(line.as_bytes()),
            Ok(Header::Proxied {
                source: SocketAddr::from(([1, 2, 3, 4], port)),
                destination: SocketAddr::from(([5, 6, 7, 8], port)),
            })
        );
    }
    for bad in [
        "65536", "99999", "100000", "-1", "+1", "01", "00", "0110", "1a", "0x10", "1.0", "١",
    ] {
        let src = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {bad} 2\r\n");
        assert_eq!(
            err(src.as_bytes()),
            ProxyError::V1Port(Endpoint::Source),
            "{bad}"
        );
        let dst = format!("PROXY TCP6 ::1 ::2 1 {bad}\r\n");
        assert_eq!(
            err(dst.as_bytes()),
            ProxyError::V1Port(Endpoint::Destination),
            "{bad}"
        );
    }
}

/// The address is checked against the protocol: one IPv4 and one IPv6 is refused.
#[test]
fn mixed_families() {
    assert_eq!(
        err(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
        ProxyError::V1Address(Endpoint::Destination)
    );
    assert_eq!(
        err(b"PROXY TCP6 ::1 1.2.3.4 1 2\r\n"),
        ProxyError::V1Address(Endpoint::Destination)
    );
}

#[test]
fn display_is_escaped_and_short() {
    let ProxyError::NotProxy(s) = err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03") else {
        panic!()
    };
    assert_eq!(
        ProxyError::NotProxy(s).to_string(),
        r#"not a PROXY protocol header (begins "\x16\x03\x01\x02\x00\x01\x00\x01")"#
    );
    let ProxyError::NotProxy(s) = err(b"a\"b\\c\r\n") else {
        panic!()
    };
    assert_eq!(s.to_string(), r#"a\"b\\c\x0d\x0a"#);
    assert_eq!(
        ProxyError::V1Port(Endpoint::Destination).to_string(),
        "PROXY v1 destination port is invalid"
    );
}

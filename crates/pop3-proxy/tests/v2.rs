//! Version 2 (§2.2): every rule of the crate documentation, accepted and refused.
#![allow(clippy::unwrap_used, clippy::panic)]

use pop3_proxy::{parse_v2, Header, ProxyError, V2_MAX, V2_SIGNATURE};

/// A v2 header with the given version/command and family bytes whose length field
/// matches `body`.
fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap();
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[ver_cmd, family]);
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(body);
    h
}

const IPV4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 110];

fn ipv6_block(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    [&src[..], &dst[..], &[0x12, 0x34, 0x00, 0x6e]].concat()
}

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
    }
}

fn err(h: &[u8]) -> ProxyError {
    match parse_v2(h) {
        Ok(x) => panic!("{h:02x?} accepted as {x:?}"),
        Err(e) => e,
    }
}

#[test]
fn proxy_tcp4() {
    assert_eq!(
        parse_v2(&v2(0x21, 0x11, &IPV4_BLOCK)),
        Ok(proxied("192.0.2.1:56324", "198.51.100.2:110"))
    );
}

#[test]
fn proxy_tcp6() {
    let src = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let dst = "2001:db8::2"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert_eq!(
        parse_v2(&v2(0x21, 0x21, &ipv6_block(src, dst))),
        Ok(proxied("[2001:db8::1]:4660", "[2001:db8::2]:110"))
    );
}

#[test]
fn proxy_tcp6_ipv4_mapped_becomes_ipv4() {
    let src = std::net::Ipv4Addr::new(192, 0, 2, 9)
        .to_ipv6_mapped()
        .octets();
    let dst = std::net::Ipv6Addr::LOCALHOST.octets();
    assert_eq!(
        parse_v2(&v2(0x21, 0x21, &ipv6_block(src, dst))),
        Ok(proxied("192.0.2.9:4660", "[::1]:110"))
    );
}

#[test]
fn tlvs_are_walked_and_ignored() {
    let mut body = IPV4_BLOCK.to_vec();
    body.extend_from_slice(&[0x01, 0x00, 0x04, b'p', b'o', b'p', b'3']); // ALPN
    body.extend_from_slice(&[0x04, 0x00, 0x00]); // NOOP, empty
    body.extend_from_slice(&[0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]); // CRC32C, not checked
    body.extend_from_slice(&[0xee, 0x00, 0x02, 0x00, 0x00]); // custom type
    assert_eq!(
        parse_v2(&v2(0x21, 0x11, &body)),
        Ok(proxied("192.0.2.1:56324", "198.51.100.2:110"))
    );
}

#[test]
fn largest_header() {
    let mut body = IPV4_BLOCK.to_vec();
    let value = V2_MAX - 16 - body.len() - 3;
    body.extend_from_slice(&[0xe0]);
    body.extend_from_slice(&u16::try_from(value).unwrap().to_be_bytes());
    body.resize(V2_MAX - 16, 0xaa);
    let h = v2(0x21, 0x11, &body);
    assert_eq!(h.len(), V2_MAX);
    assert!(matches!(parse_v2(&h), Ok(Header::Proxied { .. })));
}

#[test]
fn local_ignores_family_and_block() {
    assert_eq!(parse_v2(&v2(0x20, 0x00, &[])), Ok(Header::Local));
    assert_eq!(parse_v2(&v2(0x20, 0x11, &IPV4_BLOCK)), Ok(Header::Local));
    assert_eq!(parse_v2(&v2(0x20, 0x11, &[])), Ok(Header::Local));
    assert_eq!(parse_v2(&v2(0x20, 0xff, &[1, 2, 3])), Ok(Header::Local));
    // Not a well-formed TLV after the IPv4 block: still LOCAL, the block is discarded.
    let mut body = IPV4_BLOCK.to_vec();
    body.extend_from_slice(&[0x01, 0xff]);
    assert_eq!(parse_v2(&v2(0x20, 0x11, &body)), Ok(Header::Local));
}

#[test]
fn families_not_routed_on_are_local() {
    assert_eq!(parse_v2(&v2(0x21, 0x00, &[])), Ok(Header::Local));
    assert_eq!(
        parse_v2(&v2(0x21, 0x00, &[0x04, 0x00, 0x00])),
        Ok(Header::Local)
    );
    assert_eq!(parse_v2(&v2(0x21, 0x12, &IPV4_BLOCK)), Ok(Header::Local));
    assert_eq!(
        parse_v2(&v2(0x21, 0x22, &ipv6_block([1; 16], [2; 16]))),
        Ok(Header::Local)
    );
    assert_eq!(parse_v2(&v2(0x21, 0x31, &[b'/'; 216])), Ok(Header::Local));
    assert_eq!(parse_v2(&v2(0x21, 0x32, &[0; 216])), Ok(Header::Local));
    let mut unix = vec![0; 216];
    unix.extend_from_slice(&[0x05, 0x00, 0x01, 0x42]);
    assert_eq!(parse_v2(&v2(0x21, 0x31, &unix)), Ok(Header::Local));
}

#[test]
fn not_proxy() {
    let mut h = v2(0x21, 0x11, &IPV4_BLOCK);
    for i in 0..12 {
        let mut bad = h.clone();
        bad[i] ^= 0x20;
        assert!(matches!(err(&bad), ProxyError::NotProxy(_)), "byte {i}");
    }
    assert!(matches!(
        err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        ProxyError::NotProxy(_)
    ));
    h.truncate(3);
    h.push(b'x');
    assert!(matches!(err(&h), ProxyError::NotProxy(_)));
}

#[test]
fn truncated() {
    let h = v2(0x21, 0x11, &IPV4_BLOCK);
    assert_eq!(err(&[]), ProxyError::V2Truncated);
    for n in 1..h.len() {
        assert_eq!(err(&h[..n]), ProxyError::V2Truncated, "{n} bytes");
    }
}

#[test]
fn trailing_bytes() {
    let mut h = v2(0x21, 0x11, &IPV4_BLOCK);
    h.push(0);
    assert_eq!(err(&h), ProxyError::V2TrailingBytes);
    let mut h = v2(0x20, 0x00, &[]);
    h.extend_from_slice(b"USER bob\r\n");
    assert_eq!(err(&h), ProxyError::V2TrailingBytes);
}

#[test]
fn version() {
    for (ver_cmd, ver) in [(0x11, 1), (0x01, 0), (0x31, 3), (0xf1, 15), (0x10, 1)] {
        assert_eq!(
            err(&v2(ver_cmd, 0x11, &IPV4_BLOCK)),
            ProxyError::V2Version(ver)
        );
    }
}

#[test]
fn command() {
    for cmd in 2..=15 {
        assert_eq!(
            err(&v2(0x20 | cmd, 0x11, &IPV4_BLOCK)),
            ProxyError::V2Command(cmd)
        );
    }
}

#[test]
fn length_limit() {
    let limit = V2_MAX - 16;
    assert_eq!(
        err(&v2(0x21, 0x00, &vec![0; limit + 1])),
        ProxyError::V2TooLong(limit + 1)
    );
    assert_eq!(
        err(&v2(0x20, 0x00, &vec![0; limit + 1])),
        ProxyError::V2TooLong(limit + 1)
    );
    // The length is checked before the bytes are counted.
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(err(&h), ProxyError::V2TooLong(65535));
}

#[test]
fn undefined_families() {
    for family in [
        0x01, 0x02, 0x10, 0x13, 0x1f, 0x20, 0x23, 0x30, 0x33, 0x40, 0x41, 0xf1, 0xff,
    ] {
        assert_eq!(
            err(&v2(0x21, family, &[0; 216])),
            ProxyError::V2Family(family),
            "{family:#x}"
        );
    }
}

#[test]
fn address_block_too_short() {
    for (family, need) in [
        (0x11, 12),
        (0x12, 12),
        (0x21, 36),
        (0x22, 36),
        (0x31, 216),
        (0x32, 216),
    ] {
        for len in [0, 1, need / 2, need - 1] {
            assert_eq!(
                err(&v2(0x21, family, &vec![0; len])),
                ProxyError::V2AddressTooShort { family, len },
                "family {family:#x} len {len}"
            );
        }
        assert!(parse_v2(&v2(0x21, family, &vec![0; need])).is_ok());
    }
}

#[test]
fn truncated_tlvs() {
    for tail in [
        &[0x01][..],
        &[0x01, 0x00],
        &[0x01, 0x00, 0x01],
        &[0x01, 0x00, 0x05, 1, 2, 3, 4],
        &[0x01, 0xff, 0xff, 0],
        &[0x04, 0x00, 0x00, 0x01],
        &[0x01, 0x00, 0x01, 0x61, 0x02, 0x00, 0x02, 0x62],
    ] {
        let body = [&IPV4_BLOCK[..], tail].concat();
        assert_eq!(
            err(&v2(0x21, 0x11, &body)),
            ProxyError::V2Tlv,
            "{tail:02x?}"
        );
        assert_eq!(err(&v2(0x21, 0x00, tail)), ProxyError::V2Tlv, "{tail:02x?}");
    }
}

#[test]
fn display() {
    for (e, text) in [
        (
            ProxyError::V2Version(1),
            "PROXY v2 header has version 1, not 2",
        ),
        (
            ProxyError::V2Family(0x13),
            "PROXY v2 family/transport 0x13 is undefined",
        ),
        (
            ProxyError::V2TooLong(65535),
            "PROXY v2 length 65535 exceeds the limit of 1024",
        ),
        (
            ProxyError::V2AddressTooShort {
                family: 0x21,
                len: 12,
            },
            "PROXY v2 length 12 is too short for the addresses of family 0x21",
        ),
    ] {
        assert_eq!(e.to_string(), text);
    }
    let ProxyError::NotProxy(s) = err(b"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00") else {
        panic!()
    };
    assert_eq!(s.to_string(), r"\x0d\x0a\x0d\x0a\x00\x0d\x0aQ");
}

//! Encoders, and parse(encode(h)) == h for fixed and many random headers.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pop3_proxy::{
    encode_v1, encode_v2, parse_v1, parse_v2, read_header, Header, V1_MAX, V2_MAX, V2_SIGNATURE,
};

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: src.parse().unwrap(),
        destination: dst.parse().unwrap(),
    }
}

#[test]
fn encode_v1_bytes() {
    assert_eq!(encode_v1(&Header::Local), b"PROXY UNKNOWN\r\n");
    assert_eq!(
        encode_v1(&proxied("192.0.2.1:56324", "198.51.100.2:110")),
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n"
    );
    assert_eq!(
        encode_v1(&proxied("[2001:db8::1]:0", "[::1]:65535")),
        b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n"
    );
    assert_eq!(
        encode_v1(&proxied("192.0.2.1:1", "[::1]:2")),
        b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n"
    );
}

#[test]
fn encode_v2_bytes() {
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    assert_eq!(encode_v2(&Header::Local), local);

    let mut tcp4 = V2_SIGNATURE.to_vec();
    tcp4.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
    tcp4.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x6e]);
    assert_eq!(
        encode_v2(&proxied("192.0.2.1:56324", "198.51.100.2:110")),
        tcp4
    );

    let mut tcp6 = V2_SIGNATURE.to_vec();
    tcp6.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]);
    tcp6.extend_from_slice(&Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped().octets());
    tcp6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    tcp6.extend_from_slice(&[0x00, 0x01, 0xff, 0xff]);
    assert_eq!(encode_v2(&proxied("192.0.2.1:1", "[::1]:65535")), tcp6);
}

#[test]
fn fixed_round_trips() {
    for h in [
        Header::Local,
        proxied("192.0.2.1:56324", "198.51.100.2:110"),
        proxied("0.0.0.0:0", "255.255.255.255:65535"),
        proxied("[2001:db8::1]:4660", "[2001:db8::2]:995"),
        proxied("[::]:0", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        proxied("192.0.2.1:1", "[::1]:2"),
        proxied("[fe80::1]:1", "10.0.0.1:2"),
    ] {
        assert_eq!(parse_v1(&encode_v1(&h)), Ok(h), "{h:?}");
        assert_eq!(parse_v2(&encode_v2(&h)), Ok(h), "{h:?}");
    }
}

/// xorshift64: a deterministic source of test cases, no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn port(&mut self) -> u16 {
        match self.below(4) {
            0 => 0,
            1 => 65535,
            _ => self.next() as u16,
        }
    }
    /// An address, with many zero groups (so that `::` appears) and the edge values;
    /// canonical, as parsed addresses are.
    fn ip(&mut self) -> IpAddr {
        if self.below(2) == 0 {
            let v = match self.below(4) {
                0 => 0,
                1 => u32::MAX,
                _ => self.next() as u32,
            };
            IpAddr::V4(Ipv4Addr::from(v))
        } else {
            let mut groups = [0u16; 8];
            for g in &mut groups {
                *g = match self.below(3) {
                    0 => 0,
                    1 => 0xffff,
                    _ => self.next() as u16,
                };
            }
            if self.below(8) == 0 {
                groups = [0, 0, 0, 0, 0, 0xffff, groups[6], groups[7]];
            }
            IpAddr::V6(Ipv6Addr::from(groups)).to_canonical()
        }
    }
    fn header(&mut self) -> Header {
        if self.below(8) == 0 {
            return Header::Local;
        }
        Header::Proxied {
            source: SocketAddr::new(self.ip(), self.port()),
            destination: SocketAddr::new(self.ip(), self.port()),
        }
    }
}

/// A one-byte-per-call reader.
struct Drip<'a>(&'a [u8]);

impl std::io::Read for Drip<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(out)) => {
                *out = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn random_headers_round_trip() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tail = b"USER bob\r\nPASS x\r\n";
    for i in 0..20_000 {
        let h = rng.header();
        let v1 = encode_v1(&h);
        let v2 = encode_v2(&h);
        assert!(v1.len() <= V1_MAX, "{h:?}");
        assert!(v2.len() <= V2_MAX, "{h:?}");
        assert_eq!(parse_v1(&v1), Ok(h), "{}", String::from_utf8_lossy(&v1));
        assert_eq!(parse_v2(&v2), Ok(h), "{v2:02x?}");
        for wire in [&v1, &v2] {
            let input = [&wire[..], tail].concat();
            let mut r: &[u8] = &input;
            assert_eq!(read_header(&mut r).unwrap(), h);
            assert_eq!(r, tail);
            if i % 16 == 0 {
                let mut r = Drip(&input);
                assert_eq!(read_header(&mut r).unwrap(), h);
                assert_eq!(r.0, tail);
            }
        }

        // The same header with random TLVs (within the limit) says the same.
        let mut with_tlvs = v2.clone();
        if let Header::Local = h {
            with_tlvs[13] = 0x00;
            with_tlvs[12] = 0x21;
        }
        for _ in 0..rng.below(5) {
            let n = rng.below(200) as usize;
            if with_tlvs.len() + 3 + n > V2_MAX {
                break;
            }
            with_tlvs.push(rng.next() as u8);
            with_tlvs.extend_from_slice(&(n as u16).to_be_bytes());
            with_tlvs.extend((0..n).map(|_| rng.next() as u8));
        }
        let len = (with_tlvs.len() - 16) as u16;
        with_tlvs[14..16].copy_from_slice(&len.to_be_bytes());
        assert_eq!(parse_v2(&with_tlvs), Ok(h), "{with_tlvs:02x?}");

        // A damaged header is refused or parses to something that round-trips.
        for wire in [&v1, &v2, &with_tlvs] {
            let mut bad = wire.to_vec();
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
            for p in [parse_v1(&bad), parse_v2(&bad)].into_iter().flatten() {
                assert_eq!(parse_v1(&encode_v1(&p)), Ok(p));
                assert_eq!(parse_v2(&encode_v2(&p)), Ok(p));
            }
        }
    }
}

//! Version 2: a binary header (§2.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::v1::as_v6;
use crate::{Header, ProxyError, Snippet};

/// The first 12 bytes of every v2 header (§2.2). It contains a NUL and `\r\n\r\n`, so
/// it can be neither a v1 line nor the start of any text protocol.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The largest v2 header accepted: the 16-byte fixed part and at most 1024 bytes of
/// addresses and TLVs. The length field allows 65535, but the largest address block
/// (two UNIX paths) is 216 bytes and what HAProxy and the cloud balancers add as TLVs
/// (ALPN, SNI, a unique id of at most 128 bytes, TLS details, a CRC, a VPC endpoint id)
/// stays well under the rest. The bound lets the header be read into a fixed buffer.
pub const V2_MAX: usize = 16 + 1024;

/// The length of the fixed part: signature, version/command, family, length.
pub(crate) const FIXED: usize = 16;

const CMD_LOCAL: u8 = 0x0;
const CMD_PROXY: u8 = 0x1;

/// Family and transport bytes (§2.2): high nibble address family, low nibble
/// transport.
const UNSPEC: u8 = 0x00;
const TCP4: u8 = 0x11;
const UDP4: u8 = 0x12;
const TCP6: u8 = 0x21;
const UDP6: u8 = 0x22;
const UNIX_STREAM: u8 = 0x31;
const UNIX_DGRAM: u8 = 0x32;

/// Checks the fixed part's version, command and length; returns the length of what
/// follows it. `fixed` starts with the signature.
pub(crate) fn check_fixed(fixed: &[u8; FIXED]) -> Result<usize, ProxyError> {
    let [.., ver_cmd, _family, len_hi, len_lo] = *fixed;
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let cmd = ver_cmd & 0x0f;
    if cmd != CMD_LOCAL && cmd != CMD_PROXY {
        return Err(ProxyError::V2Command(cmd));
    }
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if len > V2_MAX - FIXED {
        return Err(ProxyError::V2TooLong(len));
    }
    Ok(len)
}

/// Parses one whole v2 header (the 16-byte fixed part and exactly as many bytes as its
/// length field says).
pub fn parse_v2(header: &[u8]) -> Result<Header, ProxyError> {
    let head = &header[..header.len().min(V2_SIGNATURE.len())];
    if !V2_SIGNATURE.starts_with(head) {
        return Err(ProxyError::NotProxy(Snippet::new(header)));
    }
    let Some((fixed, rest)) = header.split_first_chunk::<FIXED>() else {
        return Err(ProxyError::V2Truncated);
    };
    let len = check_fixed(fixed)?;
    if rest.len() < len {
        return Err(ProxyError::V2Truncated);
    }
    if rest.len() > len {
        return Err(ProxyError::V2TrailingBytes);
    }
    // §2.2: for LOCAL the receiver must discard the block, family included.
    if fixed[12] & 0x0f == CMD_LOCAL {
        return Ok(Header::Local);
    }
    let family = fixed[13];
    let addr_len = match family {
        UNSPEC => 0,
        TCP4 | UDP4 => 12,
        TCP6 | UDP6 => 36,
        UNIX_STREAM | UNIX_DGRAM => 216,
        _ => return Err(ProxyError::V2Family(family)),
    };
    let Some((addr, tlvs)) = rest.split_at_checked(addr_len) else {
        return Err(ProxyError::V2AddressTooShort { family, len });
    };
    check_tlvs(tlvs)?;
    let short = ProxyError::V2AddressTooShort { family, len };
    Ok(match family {
        TCP4 => {
            let (s, d, sp, dp) = addresses::<4>(addr).ok_or(short)?;
            proxied(Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into(), sp, dp)
        }
        TCP6 => {
            let (s, d, sp, dp) = addresses::<16>(addr).ok_or(short)?;
            proxied(Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into(), sp, dp)
        }
        // UNSPEC, UNIX and datagrams: nothing a TCP server can use.
        _ => Header::Local,
    })
}

/// Source address, destination address, source port, destination port, in that order
/// (§2.2); `None` if the block is too short.
fn addresses<const N: usize>(block: &[u8]) -> Option<([u8; N], [u8; N], u16, u16)> {
    let (s, rest) = block.split_first_chunk::<N>()?;
    let (d, rest) = rest.split_first_chunk::<N>()?;
    let (sp, rest) = rest.split_first_chunk::<2>()?;
    let (dp, _) = rest.split_first_chunk::<2>()?;
    Some((*s, *d, u16::from_be_bytes(*sp), u16::from_be_bytes(*dp)))
}

fn proxied(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Header {
    Header::Proxied {
        source: SocketAddr::new(src.to_canonical(), sport),
        destination: SocketAddr::new(dst.to_canonical(), dport),
    }
}

/// Walks the TLVs (§2.2.1: type, 16-bit big-endian length, value) to check that each
/// ends inside the header. Their contents are not used.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyError> {
    while !tlvs.is_empty() {
        let Some(([_type, hi, lo], rest)) = tlvs.split_first_chunk::<3>() else {
            return Err(ProxyError::V2Tlv);
        };
        let n = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some((_value, rest)) = rest.split_at_checked(n) else {
            return Err(ProxyError::V2Tlv);
        };
        tlvs = rest;
    }
    Ok(())
}

/// The v2 header for `h`. `Local` becomes a `LOCAL` command with family `UNSPEC` and no
/// addresses. Two IPv4 addresses give `TCP over IPv4`; otherwise `TCP over IPv6`, with
/// an IPv4 address written IPv4-mapped (which [`parse_v2`] turns back into IPv4). IPv6
/// flow info and scope id are not carried. No TLVs.
pub fn encode_v2(h: &Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED + 36);
    out.extend_from_slice(V2_SIGNATURE);
    let Header::Proxied {
        source: s,
        destination: d,
    } = h
    else {
        out.extend_from_slice(&[0x20 | CMD_LOCAL, UNSPEC, 0, 0]);
        return out;
    };
    let (family, len): (u8, u16) = match (s.ip(), d.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (TCP4, 12),
        _ => (TCP6, 36),
    };
    out.extend_from_slice(&[0x20 | CMD_PROXY, family]);
    out.extend_from_slice(&len.to_be_bytes());
    match (s.ip(), d.ip()) {
        (IpAddr::V4(si), IpAddr::V4(di)) => {
            out.extend_from_slice(&si.octets());
            out.extend_from_slice(&di.octets());
        }
        (si, di) => {
            out.extend_from_slice(&as_v6(si).octets());
            out.extend_from_slice(&as_v6(di).octets());
        }
    }
    out.extend_from_slice(&s.port().to_be_bytes());
    out.extend_from_slice(&d.port().to_be_bytes());
    out
}

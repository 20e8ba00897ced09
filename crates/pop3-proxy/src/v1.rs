//! Version 1: one text line (§2.1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::{Endpoint, Header, ProxyError, Snippet};

/// The longest v1 line, CRLF included (§2.1: `PROXY TCP6` with two full-length IPv6
/// addresses and two five-digit ports). A receiver may refuse a line without a CRLF in
/// its first 107 bytes, and this one does.
pub const V1_MAX: usize = 107;

pub(crate) const PREFIX: &[u8; 6] = b"PROXY ";

/// Parses one v1 line, CRLF included, and nothing after it.
pub fn parse_v1(line: &[u8]) -> Result<Header, ProxyError> {
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return Err(ProxyError::NotProxy(Snippet::new(line)));
    };
    if line.len() > V1_MAX {
        return Err(ProxyError::V1TooLong);
    }
    let body = match rest.strip_suffix(b"\r\n") {
        Some(body) if !body.iter().any(|&b| b == b'\r' || b == b'\n') => body,
        _ => return Err(ProxyError::V1LineEnd),
    };
    let (protocol, args) = match body.iter().position(|&b| b == b' ') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let v6 = match protocol {
        // §2.1: after UNKNOWN the receiver must ignore everything up to the CRLF.
        b"UNKNOWN" => return Ok(Header::Local),
        b"TCP4" => false,
        b"TCP6" => true,
        b"" => return Err(ProxyError::V1Fields),
        _ => return Err(ProxyError::V1Protocol),
    };
    let mut fields = args.ok_or(ProxyError::V1Fields)?.split(|&b| b == b' ');
    let mut next = || match fields.next() {
        Some(f) if !f.is_empty() => Ok(f),
        _ => Err(ProxyError::V1Fields),
    };
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(ProxyError::V1Fields);
    }
    let ip = |field: &[u8], end| {
        let ip = if v6 {
            parse_ipv6(field).map(|a| IpAddr::V6(a).to_canonical())
        } else {
            parse_ipv4(field).map(IpAddr::V4)
        };
        ip.ok_or(ProxyError::V1Address(end))
    };
    let port = |field: &[u8], end| {
        parse_decimal(field, 5)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(ProxyError::V1Port(end))
    };
    let src = ip(src, Endpoint::Source)?;
    let dst = ip(dst, Endpoint::Destination)?;
    let sport = port(sport, Endpoint::Source)?;
    let dport = port(dport, Endpoint::Destination)?;
    Ok(Header::Proxied {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
    })
}

/// A decimal number of 1 to `max_digits` digits, without sign or leading zeros.
fn parse_decimal(s: &[u8], max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    s.iter().try_fold(0u32, |n, &b| {
        let d = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(d)
    })
}

/// A dotted quad: exactly four decimal octets, each at most 255, without leading zeros.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for o in &mut octets {
        *o = u8::try_from(parse_decimal(parts.next()?, 3)?).ok()?;
    }
    match parts.next() {
        Some(_) => None,
        None => Some(Ipv4Addr::from(octets)),
    }
}

/// RFC 4291 text form, as std parses it (hex groups, one `::`, a dotted quad at the
/// end; no zone id, no brackets).
fn parse_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The v1 line for `h`. `Local` becomes `PROXY UNKNOWN\r\n`. Two IPv4 addresses give
/// `TCP4`; otherwise `TCP6`, with an IPv4 address written IPv4-mapped (which
/// [`parse_v1`] turns back into IPv4). IPv6 flow info and scope id are not carried.
/// The line is never longer than [`V1_MAX`].
pub fn encode_v1(h: &Header) -> Vec<u8> {
    let Header::Proxied {
        source: s,
        destination: d,
    } = h
    else {
        return b"PROXY UNKNOWN\r\n".to_vec();
    };
    let line = match (s.ip(), d.ip()) {
        (IpAddr::V4(si), IpAddr::V4(di)) => {
            format!("PROXY TCP4 {si} {di} {} {}\r\n", s.port(), d.port())
        }
        (si, di) => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            as_v6(si),
            as_v6(di),
            s.port(),
            d.port()
        ),
    };
    line.into_bytes()
}

pub(crate) fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

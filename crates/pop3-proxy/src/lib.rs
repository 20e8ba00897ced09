//! A strict parser of the HAProxy PROXY protocol, versions 1 and 2, for the receiving
//! (server) side.
//!
//! A load balancer in front of the server opens the TCP connection itself, so the peer
//! address the kernel reports is the balancer's. With the PROXY protocol the balancer
//! sends one header before the client's first byte that names the real client; the
//! server logs that address and hands it to PAM. The specification is HAProxy's
//! `doc/proxy-protocol.txt` (version 2.9); section numbers below refer to it.
//!
//! The header is read by the privileged side before anything else, from a peer that is
//! trusted by configuration. A mistake here must still never be exploitable, and a
//! header the proxy would not send is a misconfiguration worth refusing loudly, so the
//! parser accepts exactly what the specification allows and nothing looser:
//!
//! **Version 1** (§2.1), one text line `PROXY <proto> <src> <dst> <sport> <dport>\r\n`:
//! - at most [`V1_MAX`] (107) bytes including the CRLF; the line ends at its only LF,
//!   which must be preceded by its only CR;
//! - fields are separated by exactly one space, with no leading or trailing space;
//! - `TCP4` needs two dotted-quad IPv4 addresses: four decimal octets of at most 255,
//!   without leading zeros (so `010.0.0.1` is not read as octal by one program and as
//!   decimal by another);
//! - `TCP6` needs two IPv6 addresses in RFC 4291 text form; an IPv4-mapped address
//!   (`::ffff:192.0.2.1`) is returned as the IPv4 address it stands for, so that the
//!   log and PAM see one spelling per client;
//! - ports are decimal 0..=65535 without sign or leading zeros;
//! - `UNKNOWN` may be followed by a space and anything up to the CRLF, which §2.1 says
//!   the receiver must ignore; the connection's own addresses apply.
//!
//! **Version 2** (§2.2), binary: the 12-byte signature [`V2_SIGNATURE`], a version and
//! command byte, a family and transport byte, and a big-endian length of what follows:
//! - the version nibble must be 2 and the command 0 (`LOCAL`) or 1 (`PROXY`); §2.2 says
//!   receivers must drop connections with any other value;
//! - the length may not exceed [`V2_MAX`] − 16 (see there why);
//! - `LOCAL` is a connection the proxy made on its own behalf (a health check): its
//!   family and address block are ignored, as §2.2 requires;
//! - `PROXY` with `TCP over IPv4` (0x11) or `TCP over IPv6` (0x21) names the client;
//!   `UNSPEC` (0x00), `UNIX stream` (0x31) and the datagram families (0x12, 0x22, 0x32)
//!   are defined but not something a POP3 server can route on, so they yield
//!   [`Header::Local`], which §2.2 allows for `UNSPEC` and which is the only useful
//!   reading of the others; every other family byte is undefined and refused, as §2.2
//!   requires;
//! - the length must cover the family's address block; what follows it is a sequence of
//!   TLVs (§2.2.1), each walked by its type and length and refused if it runs past the
//!   end, but whose contents are otherwise ignored.
//!
//! Anything that starts with neither `PROXY ` nor the v2 signature is
//! [`ProxyError::NotProxy`]: a client reached the server directly, or the proxy is not
//! configured to send the header. §2 is explicit that a receiver configured for the
//! protocol must not guess whether a header is present: if it did, any client that can
//! reach the port could claim any address.
//!
//! [`read_header`] reads one header from a stream and not one byte more, so the POP3
//! bytes behind it stay in the stream; [`parse_v1`] and [`parse_v2`] are the sans-IO
//! forms, and [`encode_v1`] / [`encode_v2`] write headers for tests and test tools.
//!
//! ```
//! use pop3_proxy::{read_header, Header};
//!
//! let mut conn: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\nUSER bob\r\n";
//! let header = read_header(&mut conn).unwrap();
//! assert_eq!(
//!     header,
//!     Header::Proxied {
//!         source: "192.0.2.1:56324".parse().unwrap(),
//!         destination: "198.51.100.2:110".parse().unwrap(),
//!     }
//! );
//! assert_eq!(conn, b"USER bob\r\n"); // left for the session
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;

mod error;
mod read;
mod v1;
mod v2;

pub use error::{Endpoint, ProxyError, ReadError, Snippet};
pub use read::read_header;
pub use v1::{encode_v1, parse_v1, V1_MAX};
pub use v2::{encode_v2, parse_v2, V2_MAX, V2_SIGNATURE};

/// What a PROXY protocol header says about the connection.
///
/// Parsed addresses are canonical: an IPv4-mapped IPv6 address comes back as IPv4, and
/// IPv6 socket addresses have flow info and scope id 0 (the protocol carries neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    /// v1 `TCP4`/`TCP6`, or v2 `PROXY` over TCP on IPv4 or IPv6: the real client
    /// (`source`) and the address it connected to (`destination`).
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v1 `UNKNOWN`, v2 `LOCAL`, or v2 `PROXY` with a family or transport the server
    /// does not route on (`UNSPEC`, `UNIX`, datagrams): the connection's own addresses
    /// apply. The proxy's health checks arrive like this.
    Local,
}

//! Why a header was refused.

use std::fmt;
use std::io;

/// Which address or port of a v1 line was invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Source,
    Destination,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::Source => "source",
            Endpoint::Destination => "destination",
        })
    }
}

/// The first few bytes of input that is not a PROXY protocol header, kept so that the
/// log can tell a client that connected directly (`USER`, `CAPA`, a TLS hello) from a
/// proxy speaking something else. Displayed escaped: printable ASCII as it is except
/// `\` and `"`, every other byte as `\xHH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snippet {
    bytes: [u8; Snippet::MAX],
    len: u8,
}

impl Snippet {
    /// At most this many bytes are kept.
    pub const MAX: usize = 8;

    pub(crate) fn new(data: &[u8]) -> Snippet {
        let mut bytes = [0; Snippet::MAX];
        let n = data.len().min(Snippet::MAX);
        bytes[..n].copy_from_slice(&data[..n]);
        Snippet {
            bytes,
            // n <= MAX = 8.
            len: u8::try_from(n).unwrap_or(0),
        }
    }

    /// The bytes kept (the first at most [`Snippet::MAX`] of the input).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            match b {
                b'\\' => f.write_str("\\\\")?,
                b'"' => f.write_str("\\\"")?,
                0x20..=0x7e => write!(f, "{}", char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

/// Why a PROXY protocol header was refused. Every one is fatal for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The input starts with neither `PROXY ` nor the v2 signature: the peer does not
    /// speak the PROXY protocol.
    NotProxy(Snippet),
    /// No LF within the first [`crate::V1_MAX`] bytes of a v1 line.
    V1TooLong,
    /// A v1 line that does not end in CRLF, or has another CR or LF inside.
    V1LineEnd,
    /// A v1 protocol other than `TCP4`, `TCP6` or `UNKNOWN`.
    V1Protocol,
    /// A v1 `TCP4`/`TCP6` line without exactly four fields after the protocol, each
    /// separated by one space.
    V1Fields,
    /// A v1 address that is not a valid address of the line's protocol.
    V1Address(Endpoint),
    /// A v1 port that is not a decimal number 0..=65535 without leading zeros.
    V1Port(Endpoint),
    /// Fewer bytes than the v2 header's length says (sans-IO form only).
    V2Truncated,
    /// More bytes than the v2 header's length says (sans-IO form only).
    V2TrailingBytes,
    /// A v2 version nibble other than 2.
    V2Version(u8),
    /// A v2 command nibble other than 0 (`LOCAL`) or 1 (`PROXY`).
    V2Command(u8),
    /// A v2 length over [`crate::V2_MAX`] − 16.
    V2TooLong(usize),
    /// A v2 family and transport byte that the specification does not define.
    V2Family(u8),
    /// A v2 length shorter than the address block of the family.
    V2AddressTooShort { family: u8, len: usize },
    /// A v2 TLV that runs past the end of the header.
    V2Tlv,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NotProxy(s) => {
                write!(f, "not a PROXY protocol header (begins \"{s}\")")
            }
            ProxyError::V1TooLong => {
                write!(f, "PROXY v1 line is longer than {} bytes", crate::V1_MAX)
            }
            ProxyError::V1LineEnd => f.write_str("PROXY v1 line does not end in a single CRLF"),
            ProxyError::V1Protocol => f.write_str("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN"),
            ProxyError::V1Fields => {
                f.write_str("PROXY v1 line does not have four fields separated by single spaces")
            }
            ProxyError::V1Address(e) => write!(f, "PROXY v1 {e} address is invalid"),
            ProxyError::V1Port(e) => write!(f, "PROXY v1 {e} port is invalid"),
            ProxyError::V2Truncated => f.write_str("PROXY v2 header is truncated"),
            ProxyError::V2TrailingBytes => f.write_str("bytes follow the PROXY v2 header"),
            ProxyError::V2Version(v) => write!(f, "PROXY v2 header has version {v}, not 2"),
            ProxyError::V2Command(c) => {
                write!(f, "PROXY v2 command {c} is neither LOCAL nor PROXY")
            }
            ProxyError::V2TooLong(n) => write!(
                f,
                "PROXY v2 length {n} exceeds the limit of {}",
                crate::V2_MAX - 16
            ),
            ProxyError::V2Family(b) => {
                write!(f, "PROXY v2 family/transport 0x{b:02x} is undefined")
            }
            ProxyError::V2AddressTooShort { family, len } => write!(
                f,
                "PROXY v2 length {len} is too short for the addresses of family 0x{family:02x}"
            ),
            ProxyError::V2Tlv => f.write_str("PROXY v2 TLV runs past the end of the header"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Why [`crate::read_header`] failed.
#[derive(Debug)]
pub enum ReadError {
    /// Reading failed, including `UnexpectedEof` (the stream ended inside the header)
    /// and whatever the reader's timeout produces (`TimedOut`, `WouldBlock`).
    Io(io::Error),
    /// The bytes are not a valid header.
    Proxy(ProxyError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "reading the PROXY protocol header: {e}"),
            ReadError::Proxy(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::Proxy(e) => Some(e),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

impl From<ProxyError> for ReadError {
    fn from(e: ProxyError) -> ReadError {
        ReadError::Proxy(e)
    }
}

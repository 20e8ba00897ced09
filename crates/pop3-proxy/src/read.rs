//! Reading one header from a stream without reading past it.

use std::io::{self, Read};

use crate::v1::PREFIX;
use crate::v2::{self, FIXED, V2_SIGNATURE};
use crate::{parse_v1, parse_v2, Header, ProxyError, ReadError, Snippet, V1_MAX, V2_MAX};

/// Both versions start with at least this many bytes: the v2 signature is 12, and the
/// shortest v1 line, `PROXY UNKNOWN\r\n`, is 15.
const START: usize = V2_SIGNATURE.len();

/// Reads exactly one header from `r` and not one byte more of a valid header: the
/// bytes after it belong to the POP3 session. No buffering reader is needed (or
/// wanted: it would read ahead).
///
/// It reads the first 12 bytes, refusing as soon as they can no longer begin either
/// version; then for v2 the rest of the 16-byte fixed part, checks version, command and
/// length, and reads exactly `length` more bytes; for v1 one byte at a time up to the
/// LF, at most [`V1_MAX`] bytes in all. A refused header may have consumed up to
/// [`V2_MAX`] bytes; the connection is to be closed then anyway.
///
/// `Interrupted` reads are retried; an end of stream inside the header is
/// `Io(UnexpectedEof)`, and every other error of `r` (a timeout) is passed through.
/// The caller bounds the time with a read timeout on `r`: a peer that sends 11 bytes
/// and stops holds this call until `r` gives up.
pub fn read_header<R: Read>(r: &mut R) -> Result<Header, ReadError> {
    let mut buf = [0u8; V2_MAX];
    let mut have = 0;
    while have < START {
        have += read_some(r, &mut buf[have..START])?;
        if !could_start(&buf[..have]) {
            return Err(ProxyError::NotProxy(Snippet::new(&buf[..have])).into());
        }
    }
    if buf[..START] == *V2_SIGNATURE {
        r.read_exact(&mut buf[START..FIXED])?;
        let mut fixed = [0u8; FIXED];
        fixed.copy_from_slice(&buf[..FIXED]);
        let len = v2::check_fixed(&fixed)?;
        r.read_exact(&mut buf[FIXED..FIXED + len])?;
        return Ok(parse_v2(&buf[..FIXED + len])?);
    }
    // v1. No valid line is as short as START, so an LF among the first bytes means a
    // line that parse_v1 refuses.
    let mut end = match buf[..START].iter().position(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => START,
    };
    while buf[end - 1] != b'\n' {
        if end == V1_MAX {
            return Err(ProxyError::V1TooLong.into());
        }
        r.read_exact(&mut buf[end..end + 1])?;
        end += 1;
    }
    Ok(parse_v1(&buf[..end])?)
}

/// Whether `head` can still be the start of a v1 or v2 header.
fn could_start(head: &[u8]) -> bool {
    V2_SIGNATURE.starts_with(head) || PREFIX.starts_with(&head[..head.len().min(PREFIX.len())])
}

/// One `read` into a non-empty `buf`, retried on `Interrupted`; 0 bytes is an error. A
/// reader that claims more than `buf.len()` is not believed.
fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

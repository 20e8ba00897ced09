//! Command-line assembly: client bytes in, one command line (or one refusal) out.
//!
//! Memory is bounded whatever the client sends: at most [`MAX_AUTH_LINE`] + 1 bytes of a
//! line are kept, the rest of an over-long line is only scanned for its LF and a NUL.
//! This module never interprets the line; the session decides which lines may be longer
//! than [`MAX_LINE`](crate::params::MAX_LINE) (only AUTH's), `command` parses them.

use crate::params::MAX_AUTH_LINE;
use zeroize::Zeroize;

/// Bytes kept per line: the longest line ever accepted plus the CR that may precede
/// its LF, so that such a line ended by CRLF is still whole.
const STORED: usize = MAX_AUTH_LINE + 1;

/// Why a finished line is not run as a command. Each gets one bare `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Longer than the limit for this line (DEVIATION: popa3d truncates and runs it).
    TooLong,
    /// A NUL somewhere on the line; popa3d's C strings make such a line empty.
    Nul,
}

/// Collects one physical line at a time.
pub(crate) struct LineAssembler {
    buf: [u8; STORED],
    len: usize,
    /// More than `STORED` bytes arrived before the LF.
    overflow: bool,
    nul: bool,
    /// At least one byte of the current line arrived: at EOF such a partial line is
    /// still run, as popa3d does (§9.10), while EOF at a line start ends the session.
    started: bool,
}

impl LineAssembler {
    pub(crate) fn new() -> LineAssembler {
        LineAssembler {
            buf: [0; STORED],
            len: 0,
            overflow: false,
            nul: false,
            started: false,
        }
    }

    /// Takes bytes up to and including the first LF of `input`. Returns how many were
    /// taken and whether they completed a line (then call [`Self::line`] and
    /// [`Self::clear`]).
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        match memchr::memchr(b'\n', input) {
            Some(at) => {
                self.absorb(input.get(..at).unwrap_or_default());
                (at + 1, true)
            }
            None => {
                self.absorb(input);
                (input.len(), false)
            }
        }
    }

    fn absorb(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.started = true;
        if memchr::memchr(0, bytes).is_some() {
            self.nul = true;
        }
        let room = STORED - self.len;
        let take = room.min(bytes.len());
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            bytes.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        if bytes.len() > room {
            self.overflow = true;
        }
    }

    /// Whether part of a line is waiting for its LF.
    pub(crate) fn is_started(&self) -> bool {
        self.started
    }

    /// The finished line, if at most `max` (≤ [`MAX_AUTH_LINE`]) bytes long. `terminated`
    /// says whether it ended with LF (rather than EOF): only then is one CR right before
    /// the LF dropped (§3.1), so `STAT\r\r\n` keeps a CR and fails.
    pub(crate) fn line(&self, terminated: bool, max: usize) -> Result<&[u8], LineError> {
        let mut content = self.buf.get(..self.len).unwrap_or_default();
        if terminated {
            if let Some(rest) = content.strip_suffix(b"\r") {
                content = rest;
            }
        }
        if self.overflow || content.len() > max.min(MAX_AUTH_LINE) {
            Err(LineError::TooLong)
        } else if self.nul {
            Err(LineError::Nul)
        } else {
            Ok(content)
        }
    }

    /// Forgets the line, wiping it: it may have been a PASS command.
    pub(crate) fn clear(&mut self) {
        if let Some(used) = self.buf.get_mut(..self.len) {
            used.zeroize();
        }
        self.len = 0;
        self.overflow = false;
        self.nul = false;
        self.started = false;
    }
}

impl Drop for LineAssembler {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{LineAssembler, LineError};
    use crate::params::{MAX_AUTH_LINE, MAX_LINE};

    /// Feeds one whole line (which must contain a LF) and returns what it became.
    fn one(input: &[u8]) -> Result<Vec<u8>, LineError> {
        let mut a = LineAssembler::new();
        let (used, done) = a.feed(input);
        assert!(done);
        assert_eq!(used, input.len());
        let r = a.line(true, MAX_LINE).map(<[u8]>::to_vec);
        a.clear();
        r
    }

    #[test]
    fn cr_handling() {
        assert_eq!(one(b"STAT\r\n"), Ok(b"STAT".to_vec()));
        assert_eq!(one(b"STAT\n"), Ok(b"STAT".to_vec()));
        assert_eq!(one(b"STAT\r\r\n"), Ok(b"STAT\r".to_vec()));
        assert_eq!(one(b"ST\rAT\r\n"), Ok(b"ST\rAT".to_vec()));
        assert_eq!(one(b"\r\n"), Ok(Vec::new()));
        assert_eq!(one(b"\n"), Ok(Vec::new()));
    }

    #[test]
    fn nul_anywhere() {
        assert_eq!(one(b"STAT\0\r\n"), Err(LineError::Nul));
        assert_eq!(one(b"\0\n"), Err(LineError::Nul));
        let mut long = b"NOOP".to_vec();
        long.extend_from_slice(&[b' '; 200]);
        long.extend_from_slice(b"\0\r\n");
        assert!(one(&long).is_err());
    }

    #[test]
    fn length_limit() {
        let exact = vec![b'x'; MAX_LINE];
        let mut l = exact.clone();
        l.extend_from_slice(b"\r\n");
        assert_eq!(one(&l), Ok(exact.clone()));
        l = exact.clone();
        l.push(b'\n');
        assert_eq!(one(&l), Ok(exact.clone()));
        l = exact.clone();
        l.extend_from_slice(b"x\n");
        assert_eq!(one(&l), Err(LineError::TooLong));
        l = exact.clone();
        l.extend_from_slice(b"x\r\n");
        assert_eq!(one(&l), Err(LineError::TooLong));
        l = exact.clone();
        l.extend_from_slice(b"\r\r\n");
        assert_eq!(one(&l), Err(LineError::TooLong));
        let mut l = vec![b'X'; 3000];
        l.extend_from_slice(b"\r\n");
        assert_eq!(one(&l), Err(LineError::TooLong));
    }

    #[test]
    fn split_feeding_and_eof() {
        let mut a = LineAssembler::new();
        assert!(!a.is_started());
        assert_eq!(a.feed(b"QU"), (2, false));
        assert!(a.is_started());
        assert_eq!(a.feed(b"IT\r"), (3, false));
        assert_eq!(a.line(false, MAX_LINE), Ok(&b"QUIT\r"[..]));
        assert_eq!(a.feed(b"\nNOOP\n"), (1, true));
        assert_eq!(a.line(true, MAX_LINE), Ok(&b"QUIT"[..]));
        a.clear();
        assert!(!a.is_started());
        assert_eq!(a.feed(b"NOOP\n"), (5, true));
        assert_eq!(a.line(true, MAX_LINE), Ok(&b"NOOP"[..]));
    }

    #[test]
    fn longer_limit_for_auth_lines() {
        let mut a = LineAssembler::new();
        let mut l = vec![b'A'; MAX_AUTH_LINE];
        l.extend_from_slice(b"\r\n");
        assert_eq!(a.feed(&l), (l.len(), true));
        assert_eq!(a.line(true, MAX_LINE), Err(LineError::TooLong));
        assert_eq!(
            a.line(true, MAX_AUTH_LINE).map(<[u8]>::len),
            Ok(MAX_AUTH_LINE)
        );
        // The limit never exceeds what is stored.
        assert_eq!(a.line(true, usize::MAX).map(<[u8]>::len), Ok(MAX_AUTH_LINE));
        a.clear();
        let mut l = vec![b'A'; MAX_AUTH_LINE + 1];
        l.push(b'\n');
        assert_eq!(a.feed(&l), (l.len(), true));
        assert_eq!(a.line(true, MAX_AUTH_LINE), Err(LineError::TooLong));
        assert_eq!(a.line(true, usize::MAX), Err(LineError::TooLong));
    }
}

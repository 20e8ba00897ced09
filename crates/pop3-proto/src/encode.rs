//! RETR/TOP message encoding (RFC 1939 §3 byte-stuffing, popa3d spec §4.5).
//!
//! Mailbox bytes in, wire bytes out: every LF becomes CRLF, a `.` starting a line is
//! doubled, every other byte (NUL and lone CR included) passes unchanged. The encoder
//! streams: its whole state is a few flags, so input may be split anywhere, even between
//! a CR and its LF, and the output is the same. It never sees the mbox From_ line.
//!
//! This is the hot path of the server (a RETR of a large message), so lines are found
//! with `memchr` and copied as runs; nothing here works a byte at a time.

/// TOP's line budget.
#[derive(Debug, Clone, Copy)]
struct Top {
    /// Set by the first empty line (the header/body separator).
    counting: bool,
    /// LFs still allowed once counting; starts at k + 1 because the separator's own LF
    /// is counted, so `TOP n 0` sends the headers and the blank line.
    remaining: u64,
}

/// Streams one message's data into RETR/TOP wire format.
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    /// The last byte encoded was a LF, or nothing has been encoded yet.
    line_start: bool,
    top: Option<Top>,
    done: bool,
}

impl MessageEncoder {
    /// An encoder for RETR (`top: None`) or for TOP with `top: Some(k)` body lines.
    pub fn new(top: Option<u32>) -> MessageEncoder {
        MessageEncoder {
            line_start: true,
            top: top.map(|lines| Top {
                counting: false,
                remaining: u64::from(lines) + 1,
            }),
            done: false,
        }
    }

    /// Encodes `input`, appending to `out`, and returns how many input bytes were used:
    /// all of them, except when TOP's limit is reached, where encoding stops right after
    /// the LF that used the last line and [`MessageEncoder::is_done`] becomes true.
    /// Output never exceeds twice the input used.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        if self.done {
            return 0;
        }
        // LF → CRLF and "." → ".." each at most double their byte: one reservation
        // covers the call, so the copies below never reallocate.
        out.reserve(input.len().saturating_mul(2));
        match &mut self.top {
            None => {
                self.line_start = encode_all(self.line_start, input, out);
                input.len()
            }
            Some(top) => {
                let (used, line_start, done) = encode_top(top, self.line_start, input, out);
                self.line_start = line_start;
                self.done = done;
                used
            }
        }
    }

    /// Whether TOP has sent all it should; further input is ignored. Never true for RETR.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Completes the reply: a CRLF if the message did not end with a LF (popa3d sends
    /// one, so the terminator is always on its own line), then the `.\r\n` terminator.
    /// An empty message gives just `.\r\n`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Copies one line (without its LF), dot-stuffed if it starts a line.
#[inline(always)]
fn push_line(line_start: bool, line: &[u8], out: &mut Vec<u8>) {
    if line_start && line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
}

/// RETR: everything. Returns whether the input ended at a line start.
fn encode_all(mut line_start: bool, input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut from = 0;
    for lf in memchr::memchr_iter(b'\n', input) {
        push_line(line_start, input.get(from..lf).unwrap_or_default(), out);
        out.extend_from_slice(b"\r\n");
        from = lf + 1;
        line_start = true;
    }
    let tail = input.get(from..).unwrap_or_default();
    if !tail.is_empty() {
        push_line(line_start, tail, out);
        line_start = false;
    }
    line_start
}

/// TOP: as [`encode_all`], counting LFs from the separator on. Returns the bytes used,
/// whether the output ends at a line start, and whether the limit was reached.
fn encode_top(
    top: &mut Top,
    mut line_start: bool,
    input: &[u8],
    out: &mut Vec<u8>,
) -> (usize, bool, bool) {
    let mut from = 0;
    for lf in memchr::memchr_iter(b'\n', input) {
        let line = input.get(from..lf).unwrap_or_default();
        push_line(line_start, line, out);
        out.extend_from_slice(b"\r\n");
        // Only a bare LF line separates headers from body: a CRLF line ("\r\n" in the
        // file) does not, so a CRLF-format message is sent whole.
        if !top.counting && line_start && line.is_empty() {
            top.counting = true;
        }
        from = lf + 1;
        line_start = true;
        if top.counting {
            top.remaining = top.remaining.saturating_sub(1);
            if top.remaining == 0 {
                return (from, true, true);
            }
        }
    }
    let tail = input.get(from..).unwrap_or_default();
    if !tail.is_empty() {
        push_line(line_start, tail, out);
        line_start = false;
    }
    (input.len(), line_start, false)
}

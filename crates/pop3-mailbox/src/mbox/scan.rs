//! The mbox parser: popa3d's message boundaries, sizes and UIDL digests, in one pass.
//!
//! It is push-based and never holds a line in memory, so lines have no length limit and
//! memory does not grow with message size. The caller hands it a window of the file;
//! it consumes as much as it can decide on and returns how far it got. The unconsumed
//! tail (never more than [`MAX_LOOKAHEAD`] bytes unless at EOF) must be presented again,
//! followed by more data.
//!
//! The rules (research/popa3d.md §4.2), which the tests check against a line-by-line
//! model:
//! - A line starting with `From ` (case-sensitive) starts a message when the line
//!   before it was blank (a lone LF; a CRLF line is not blank). The file starts "after a
//!   blank line", so it must begin with `From `.
//! - The From_ line is not part of the message. The line right after it must exist and
//!   must not be another From_ line.
//! - The headers run to the first blank line, which belongs to the message. A message has
//!   a body once any line follows that blank line.
//! - A message with a body loses the blank line before the next From_ line (the
//!   separator); at EOF only if its last line really is blank.
//! - The LIST size counts every LF as CRLF. A final line without LF is sent with CRLF
//!   appended, so it counts 2 more than its bytes (popa3d counts 1: see
//!   docs/differences-from-popa3d.md).

use md5::{Digest, Md5};

use super::md5x2;
use memchr::memmem;

use super::uidl::HeaderSelector;
use crate::params::MAX_MAILBOX_MESSAGES;

/// The most bytes the scanner may leave unconsumed before EOF: enough to classify a
/// header line by its name (`X-Delivery-ID:` is 14 bytes).
pub const MAX_LOOKAHEAD: usize = 14;

/// One message as found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Offset of the From_ line.
    pub raw_offset: u64,
    /// Offset of the first line after the From_ line.
    pub data_offset: u64,
    /// Bytes of message data to send (From_ line and separator excluded).
    pub data_len: u64,
    /// Bytes from the From_ line to the next From_ line or the end of the parsed range.
    pub raw_len: u64,
    /// LIST/STAT size.
    pub size: u64,
    /// MD5 of the header lines popa3d selects for UIDL.
    pub digest: [u8; 16],
    /// The message's last line has no LF (only possible for the last message).
    pub unterminated: bool,
}

/// Why a file is not a mailbox we load. popa3d refuses all of these with
/// "Failed or refused to load"; we also say which one it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The file does not start with a From_ line.
    NoFromLine,
    /// A From_ line is followed directly by another (at this offset).
    EmptyMessage(u64),
    /// The file ends inside or right after a From_ line (at this offset).
    TruncatedFromLine(u64),
    /// More than [`MAX_MAILBOX_MESSAGES`].
    TooManyMessages,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NoFromLine => f.write_str("does not start with a \"From \" line"),
            ParseError::EmptyMessage(o) => {
                write!(f, "two consecutive \"From \" lines (offset {o})")
            }
            ParseError::TruncatedFromLine(o) => {
                write!(f, "ends with a \"From \" line and no message (offset {o})")
            }
            ParseError::TooManyMessages => {
                write!(f, "more than {MAX_MAILBOX_MESSAGES} messages")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Offset 0: the file must begin with `From `.
    FileStart,
    /// Inside a From_ line.
    FromLine,
    /// At the first data line of a message.
    FirstLine,
    /// At the start of a header line.
    HeaderStart,
    /// Inside a header line; `true` if it is hashed for UIDL.
    Header(bool),
    /// Past the blank line that ends the headers. `prev_lf` in the scanner says whether
    /// the byte before the current position is a LF.
    Body,
}

/// The message being parsed.
struct Current {
    raw_offset: u64,
    data_offset: u64,
    /// Offset of the blank line ending the headers, once seen.
    header_end: Option<u64>,
    lf_count: u64,
    /// Set once this message's hashed header lines outgrow [`HASH_BUFFER`]: from then on
    /// they are hashed as they stream past, so memory never grows with header size.
    md5: Option<Md5>,
    select: HeaderSelector,
}

/// The incremental parser. See the module docs for the calling convention.
pub struct Scanner {
    state: State,
    /// File offset of the first byte of the next window.
    pos: u64,
    /// The byte just before `pos` is a LF.
    prev_lf: bool,
    /// The two bytes just before `pos` are both LF (the last line is blank).
    prev_blank: bool,
    cur: Option<Current>,
    entries: Vec<Entry>,
    /// The current message's hashed header lines (unless it streams; see `Current::md5`).
    hashed: Vec<u8>,
    /// A closed message whose digest waits for a partner, and its hashed lines.
    pending: Option<usize>,
    pending_hashed: Vec<u8>,
    finder: memmem::Finder<'static>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::starting_at(0)
    }

    /// A scanner for the part of a mailbox that starts at `offset`, which must be the
    /// start of a From_ line that follows a blank line (see [`find_boundary`]): such a
    /// line starts a message whatever came before, so the parts can be parsed
    /// independently and their entries concatenated.
    pub fn starting_at(offset: u64) -> Scanner {
        Scanner {
            state: State::FileStart,
            pos: offset,
            prev_lf: true,
            prev_blank: true,
            cur: None,
            entries: Vec::new(),
            hashed: Vec::with_capacity(HASH_BUFFER),
            pending: None,
            pending_hashed: Vec::with_capacity(HASH_BUFFER),
            finder: memmem::FinderBuilder::new()
                .build_forward_with_ranker(MailRanker, b"\n\nFrom "),
        }
    }

    /// Parses as much of `buf` (the file from offset `self.offset()`) as can be decided
    /// on and returns the number of bytes consumed. With `eof` set, `buf` runs to the end
    /// of the range being parsed and everything is consumed.
    pub fn scan(&mut self, buf: &[u8], eof: bool) -> Result<usize, ParseError> {
        let mut i = 0;
        loop {
            let rest = &buf[i..];
            if rest.is_empty()
                && matches!(self.state, State::FromLine | State::Header(_) | State::Body)
            {
                break;
            }
            let used = match self.state {
                State::FileStart => {
                    if rest.len() < 5 && !eof {
                        break;
                    }
                    if !rest.starts_with(b"From ") {
                        return Err(ParseError::NoFromLine);
                    }
                    self.begin_message(self.pos)?;
                    0
                }
                State::FromLine => match memchr::memchr(b'\n', rest) {
                    Some(j) => {
                        if let Some(cur) = self.cur.as_mut() {
                            cur.data_offset = self.pos + (j + 1) as u64;
                        }
                        self.state = State::FirstLine;
                        j + 1
                    }
                    None if eof => {
                        let raw = self.cur.as_ref().map_or(0, |c| c.raw_offset);
                        return Err(ParseError::TruncatedFromLine(raw));
                    }
                    None => rest.len(),
                },
                State::FirstLine => {
                    if rest.len() < 5 && !eof {
                        break;
                    }
                    let at = self.pos;
                    if rest.is_empty() {
                        return Err(ParseError::TruncatedFromLine(self.raw_offset()));
                    }
                    if rest.starts_with(b"From ") {
                        return Err(ParseError::EmptyMessage(at));
                    }
                    self.state = State::HeaderStart;
                    0
                }
                State::HeaderStart => {
                    let n = self.headers(rest, eof);
                    if n == 0 && self.state == State::HeaderStart {
                        break;
                    }
                    n
                }
                State::Header(hashed) => {
                    let (n, line_end) = match memchr::memchr(b'\n', rest) {
                        Some(j) => (j + 1, true),
                        None => (rest.len(), false),
                    };
                    if let Some(cur) = self.cur.as_mut() {
                        if hashed {
                            hash(cur, &mut self.hashed, &rest[..n]);
                        }
                        if line_end {
                            cur.lf_count += 1;
                        }
                    }
                    if line_end {
                        self.state = State::HeaderStart;
                    }
                    if n == 0 {
                        break;
                    }
                    n
                }
                State::Body => match self.body(rest, eof)? {
                    Some(n) => n,
                    None => break,
                },
            };
            if used > 0 {
                self.advance(&buf[i..i + used]);
                i += used;
            }
        }
        if eof {
            debug_assert_eq!(i, buf.len());
            self.finish_eof()?;
        }
        Ok(i)
    }

    fn raw_offset(&self) -> u64 {
        self.cur.as_ref().map_or(0, |c| c.raw_offset)
    }

    /// Moves past `bytes` (already accounted for), keeping track of the last two bytes.
    fn advance(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.pos += n as u64;
        match n {
            0 => {}
            1 => {
                self.prev_blank = self.prev_lf && bytes[0] == b'\n';
                self.prev_lf = bytes[0] == b'\n';
            }
            _ => {
                self.prev_lf = bytes[n - 1] == b'\n';
                self.prev_blank = self.prev_lf && bytes[n - 2] == b'\n';
            }
        }
    }

    /// Runs over whole header lines from a line start, in one loop (headers are most of
    /// the lines a mailbox has). Returns the bytes consumed. Stops at the blank line that
    /// ends the headers, leaving it unconsumed for the body search (which must see it as
    /// the first LF of "\n\nFrom "), in the Body state; inside a line that runs past the
    /// window, in the Header state; or where it needs more bytes to classify a line.
    fn headers(&mut self, rest: &[u8], eof: bool) -> usize {
        let Some(cur) = self.cur.as_mut() else {
            return 0;
        };
        let mut i = 0;
        loop {
            let line = &rest[i..];
            let Some(&first) = line.first() else { return i };
            if first == b'\n' {
                cur.header_end = Some(self.pos + i as u64);
                self.state = State::Body;
                return i;
            }
            let need = MAX_LOOKAHEAD.min(line.len());
            if need < MAX_LOOKAHEAD && !eof && !line[..need].contains(&b'\n') {
                return i;
            }
            let hashed = cur.select.classify(&line[..need]);
            match memchr::memchr(b'\n', line) {
                Some(j) => {
                    if hashed {
                        hash(cur, &mut self.hashed, &line[..=j]);
                    }
                    cur.lf_count += 1;
                    i += j + 1;
                }
                None => {
                    self.state = State::Header(hashed);
                    return i;
                }
            }
        }
    }

    /// The body search: finds the next blank line followed by `From `. Returns the bytes
    /// consumed, or `None` to wait for more input.
    fn body(&mut self, rest: &[u8], eof: bool) -> Result<Option<usize>, ParseError> {
        // The pattern is "\n\nFrom ": a LF ending a line, a blank line, `From `. When the
        // window starts right after a LF (always so on entry from the headers, where
        // `rest` begins with the header-ending blank line), the pattern may begin one
        // byte before the window.
        let at_start = self.prev_lf && rest.starts_with(b"\nFrom ");
        let found = if at_start {
            Some(0)
        } else {
            self.finder.find(rest).map(|q| q + 1)
        };
        if let Some(p) = found {
            // `p` is the blank line's LF; the From_ line starts after it.
            let n = p + 1;
            if let Some(cur) = self.cur.as_mut() {
                cur.lf_count += count_lf(&rest[..n]) as u64;
            }
            let next_from = self.pos + n as u64;
            self.close_message(next_from, true, false);
            self.begin_message(next_from)?;
            return Ok(Some(n));
        }
        if eof {
            if let Some(cur) = self.cur.as_mut() {
                cur.lf_count += count_lf(rest) as u64;
            }
            return Ok(Some(rest.len()));
        }
        // Keep the last 6 bytes: "\n\nFrom " may straddle the window's end.
        if rest.len() <= 6 {
            return Ok(None);
        }
        let n = rest.len() - 6;
        if let Some(cur) = self.cur.as_mut() {
            cur.lf_count += count_lf(&rest[..n]) as u64;
        }
        Ok(Some(n))
    }

    fn begin_message(&mut self, raw_offset: u64) -> Result<(), ParseError> {
        if self.entries.len() as u64 >= u64::from(MAX_MAILBOX_MESSAGES) {
            return Err(ParseError::TooManyMessages);
        }
        self.cur = Some(Current {
            raw_offset,
            data_offset: raw_offset,
            header_end: None,
            lf_count: 0,
            md5: None,
            select: HeaderSelector::default(),
        });
        self.state = State::FromLine;
        Ok(())
    }

    /// Closes the current message, which ends just before `end`.
    /// `at_from`: a From_ line follows (so the last line is blank).
    /// `unterminated`: EOF and the last line has no LF.
    fn close_message(&mut self, end: u64, at_from: bool, unterminated: bool) {
        let Some(cur) = self.cur.take() else { return };
        let data_len_raw = end - cur.data_offset;
        let has_body = match cur.header_end {
            Some(h) => end > h + 1,
            None => false,
        };
        let last_blank = at_from || (!unterminated && self.prev_blank);
        let separator = has_body && last_blank;
        let mut size = data_len_raw + cur.lf_count;
        if unterminated {
            size += 2;
        }
        let mut data_len = data_len_raw;
        if separator {
            size -= 2;
            data_len -= 1;
        }
        self.entries.push(Entry {
            raw_offset: cur.raw_offset,
            data_offset: cur.data_offset,
            data_len,
            raw_len: end - cur.raw_offset,
            size,
            digest: [0; 16],
            unterminated,
        });
        let index = self.entries.len() - 1;
        match cur.md5 {
            Some(md5) => self.entries[index].digest = md5.finalize().into(),
            None => self.digest_buffered(index),
        }
    }

    /// Hashes the buffered header lines of entry `index`. Digests are computed two
    /// messages at a time ([`md5x2`]): MD5 is one long dependency chain per block, and two
    /// independent chains run in the time of little more than one.
    fn digest_buffered(&mut self, index: usize) {
        match self.pending.take() {
            Some(other) => {
                let (a, b) = md5x2::md5_pair(&self.pending_hashed, &self.hashed);
                self.entries[other].digest = a;
                self.entries[index].digest = b;
                self.hashed.clear();
            }
            None => {
                std::mem::swap(&mut self.hashed, &mut self.pending_hashed);
                self.hashed.clear();
                self.pending = Some(index);
            }
        }
    }

    /// Computes the digest still waiting for a partner.
    fn flush_pending(&mut self) {
        if let Some(index) = self.pending.take() {
            self.entries[index].digest = md5x2::md5_one(&self.pending_hashed);
        }
    }

    fn finish_eof(&mut self) -> Result<(), ParseError> {
        match self.state {
            State::FileStart => Err(ParseError::NoFromLine),
            State::FromLine | State::FirstLine => {
                Err(ParseError::TruncatedFromLine(self.raw_offset()))
            }
            State::HeaderStart | State::Header(_) | State::Body => {
                let end = self.pos;
                let unterminated = !self.prev_lf;
                self.close_message(end, false, unterminated);
                Ok(())
            }
        }
    }

    /// Consumes the scanner, returning every message.
    pub fn into_entries(mut self) -> Vec<Entry> {
        self.flush_pending();
        self.entries
    }
}

/// Byte frequencies for mail, for memchr's substring search, which prefilters on the two
/// rarest bytes of the needle. Its default table (general text) makes it pick the two
/// LFs of "\n\nFrom ", and blank lines are everywhere in mail bodies; `F` and `m` three
/// bytes apart are far rarer, in text and in base64 alike.
struct MailRanker;

impl memchr::arch::all::packedpair::HeuristicFrequencyRank for MailRanker {
    fn rank(&self, byte: u8) -> u8 {
        match byte {
            b'\n' | b' ' => 255,
            b'o' | b'r' => 220,
            b'm' => 180,
            b'F' => 100,
            _ => 128,
        }
    }
}

/// Hashed header lines buffered per message before it switches to streaming MD5. Typical
/// messages hash a few hundred bytes (the first Received: line and Delivered-To:).
const HASH_BUFFER: usize = 4096;

/// Feeds hashed header bytes of the current message to its buffer or its MD5 stream.
fn hash(cur: &mut Current, buf: &mut Vec<u8>, bytes: &[u8]) {
    if cur.md5.is_none() && buf.len() + bytes.len() > HASH_BUFFER {
        let mut md5 = Md5::new();
        md5.update(&buf[..]);
        buf.clear();
        cur.md5 = Some(md5);
    }
    match cur.md5.as_mut() {
        Some(md5) => md5.update(bytes),
        None => buf.extend_from_slice(bytes),
    }
}

/// Finds the first message boundary in `buf`: the offset of a `From ` that follows a
/// blank line. A match at offset 0 or 1 cannot be confirmed (the bytes before `buf` are
/// unknown) and is not returned.
pub fn find_boundary(buf: &[u8]) -> Option<usize> {
    memmem::find(buf, b"\n\nFrom ").map(|q| q + 2)
}

/// Counts LF bytes. Written so that the compiler vectorises it: byte-wide counters in a
/// fixed-width block, summed every 255 rounds before they can overflow.
pub fn count_lf(s: &[u8]) -> usize {
    const W: usize = 32;
    let mut total = 0usize;
    let mut blocks = s.chunks_exact(W);
    loop {
        let mut acc = [0u8; W];
        let mut rounds = 0;
        for block in blocks.by_ref().take(255) {
            for (a, &b) in acc.iter_mut().zip(block) {
                *a += u8::from(b == b'\n');
            }
            rounds += 1;
        }
        total += acc.iter().map(|&a| usize::from(a)).sum::<usize>();
        if rounds < 255 {
            break;
        }
    }
    total + blocks.remainder().iter().filter(|&&b| b == b'\n').count()
}

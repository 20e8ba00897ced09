//! A slow, line-by-line statement of popa3d's mbox rules (research/popa3d.md §4.2),
//! written to be obviously right rather than fast. Tests and the fuzz target check the
//! real [`Scanner`](super::Scanner) against it on arbitrary input and chunkings.

use md5::{Digest, Md5};

use super::scan::{Entry, ParseError};
use super::uidl::HeaderSelector;
use crate::params::MAX_MAILBOX_MESSAGES;

struct Msg {
    raw: usize,
    data: usize,
    lines: usize,
    header_done: bool,
    header_end: Option<usize>,
    body: bool,
    lf: u64,
    md5: Md5,
    sel: HeaderSelector,
}

/// Parses a whole mailbox held in memory.
pub fn parse(data: &[u8]) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    let mut cur: Option<Msg> = None;
    let mut prev_blank = true;
    let mut last_has_lf = true;
    let mut start = 0;
    while start < data.len() {
        let (end, has_lf) = match data[start..].iter().position(|&b| b == b'\n') {
            Some(k) => (start + k, true),
            None => (data.len(), false),
        };
        let next = if has_lf { end + 1 } else { end };
        let line = &data[start..end];
        let with_lf = &data[start..next];
        last_has_lf = has_lf;
        if prev_blank && line.starts_with(b"From ") {
            if let Some(m) = cur.take() {
                if m.lines == 0 {
                    return Err(ParseError::EmptyMessage(start as u64));
                }
                out.push(close(m, start, true, false));
            }
            if out.len() >= MAX_MAILBOX_MESSAGES as usize {
                return Err(ParseError::TooManyMessages);
            }
            cur = Some(Msg {
                raw: start,
                data: next,
                lines: 0,
                header_done: false,
                header_end: None,
                body: false,
                lf: 0,
                md5: Md5::new(),
                sel: HeaderSelector::default(),
            });
            // The From_ line does not change the "previous line was blank" state.
            start = next;
            continue;
        }
        let Some(m) = cur.as_mut() else {
            return Err(ParseError::NoFromLine);
        };
        let blank = has_lf && line.is_empty();
        m.lines += 1;
        if m.header_done {
            m.body = true;
        } else if blank {
            m.header_done = true;
            m.header_end = Some(start);
        } else if m.sel.classify(with_lf) {
            m.md5.update(with_lf);
        }
        m.lf += u64::from(has_lf);
        prev_blank = blank;
        start = next;
    }
    match cur {
        None => Err(ParseError::NoFromLine),
        Some(m) if m.lines == 0 => Err(ParseError::TruncatedFromLine(m.raw as u64)),
        Some(m) => {
            let unterminated = !last_has_lf;
            out.push(close(m, data.len(), prev_blank, unterminated));
            Ok(out)
        }
    }
}

fn close(m: Msg, end: usize, last_blank: bool, unterminated: bool) -> Entry {
    let sep = m.body && last_blank;
    let len = (end - m.data) as u64;
    let size = len + m.lf + if unterminated { 2 } else { 0 } - if sep { 2 } else { 0 };
    let _ = m.header_end;
    Entry {
        raw_offset: m.raw as u64,
        data_offset: m.data as u64,
        data_len: len - u64::from(sep),
        raw_len: (end - m.raw) as u64,
        size,
        digest: m.md5.finalize().into(),
        unterminated,
    }
}

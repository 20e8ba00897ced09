//! UPDATE for mbox: removing deleted messages by compacting the file in place.
//!
//! This is popa3d's method: walk the kept messages in order and move each one down to a
//! write cursor, then move the mail appended during the session after them, truncate and
//! fsync. Data only ever moves towards the start of the file, so a forward copy is safe.
//! The owner, the mode and the inode stay as they were, and the spool directory is never
//! written.
//!
//! It is not crash-safe: a crash part-way leaves the file half-compacted. The [`Plan`]
//! says everything a replacement needs (which byte ranges survive, in order), so a
//! journalled or copy-and-rename version can take the same plan.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use crate::params::FILE_BUFFER;

/// What survives an UPDATE, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Raw byte ranges (From_ line to the next From_ line) of the kept messages.
    pub keep: Vec<Range<u64>>,
    /// Where the mailbox ended when it was loaded: everything from here to the current
    /// end of the file is mail delivered during the session, kept whole.
    pub appended_from: u64,
}

/// Carries out `plan` on `file`, whose current length is `end`; returns the new length.
/// The caller holds an exclusive lock and fsyncs afterwards.
pub fn compact_in_place(file: &File, plan: &Plan, end: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; FILE_BUFFER];
    let mut cursor = 0u64;
    let tail = plan.appended_from..end.max(plan.appended_from);
    for r in plan.keep.iter().chain(std::iter::once(&tail)) {
        if r.start == cursor {
            cursor = r.end;
            continue;
        }
        move_down(file, r.clone(), cursor, &mut buf)?;
        cursor += r.end - r.start;
    }
    file.set_len(cursor)?;
    Ok(cursor)
}

fn move_down(file: &File, src: Range<u64>, dst: u64, buf: &mut [u8]) -> io::Result<()> {
    debug_assert!(dst <= src.start);
    let start = src.start;
    read_chunks(file, src, buf, |chunk, at| {
        file.write_all_at(chunk, dst + (at - start))
    })
}

/// Reads `range` of `file` through `buf`, handing each chunk and its file offset to
/// `each`. A file that ends before `range` does is an `UnexpectedEof` error: the mailbox
/// shrank under us.
pub(crate) fn read_chunks(
    file: &File,
    range: Range<u64>,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8], u64) -> io::Result<()>,
) -> io::Result<()> {
    let mut at = range.start;
    while at < range.end {
        let want = usize::try_from(range.end - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "mailbox shrank",
            ));
        }
        each(&buf[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

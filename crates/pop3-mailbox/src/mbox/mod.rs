//! The mbox maildrop (`/var/mail/USER`), with popa3d's parsing, UIDLs, locking, change
//! detection and UPDATE.
//!
//! Locking and change detection follow popa3d (research/popa3d.md §4.6, §4.7): a shared
//! fcntl lock while parsing or re-checking, an exclusive one while rewriting, and no lock
//! while a message is being sent. Before and after each RETR/TOP the file is compared
//! with what was loaded. We compare the full-resolution mtime and ctime, the size, the
//! inode and the path's current inode, where popa3d compares whole-second mtimes only; if
//! anything differs, the first `loaded size` bytes are parsed again and must give the same
//! messages. So mail appended by an MTA passes, and anything else another MUA did
//! ends the session without touching the file.

pub mod md5x2;
pub mod scan;
pub mod uidl;
pub mod update;

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use pop3_proto::Listing;
use pop3_sys::lock::{self, LockKind};

use crate::maildrop::{DropError, Maildrop};
use crate::params::{
    FILE_BUFFER, MAX_MAILBOX_MESSAGES, MAX_MAILBOX_OPEN_BYTES, MAX_MAILBOX_WORK_BYTES,
};
pub use scan::{Entry, ParseError, Scanner};
use uidl::Uidls;

/// What identifies one state of the mailbox file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// An mbox loaded for one session.
#[derive(Debug)]
pub struct Mbox {
    path: PathBuf,
    /// `None` when the mailbox is missing or empty: nothing to read, nothing to update.
    file: Option<File>,
    entries: Vec<Entry>,
    uidls: Uidls,
    /// The file as it was when loaded (or last re-checked).
    stamp: Option<Stamp>,
    /// Bytes parsed at login; anything beyond is mail delivered since.
    loaded_size: u64,
    stale: bool,
}

fn refused(why: impl std::fmt::Display) -> DropError {
    DropError::Refused(why.to_string())
}

/// Takes the shared lock, retrying every 10 ms (then up to every 100 ms) until `limit`
/// has passed. An MDA holds its lock for milliseconds; one held for `limit` is stuck or
/// busy with something long, and the client is better told `[IN-USE]` than left
/// waiting.
fn lock_within(file: &File, limit: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(10);
    loop {
        if lock::try_lock(file, LockKind::Shared)? {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "locked by another program",
            ));
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

impl Mbox {
    fn empty(path: &Path) -> Mbox {
        Mbox {
            path: path.to_owned(),
            file: None,
            entries: Vec::new(),
            uidls: Uidls::default(),
            stamp: None,
            loaded_size: 0,
            stale: false,
        }
    }

    /// Loads the mailbox at `path` for a session, as the calling user: opened for
    /// reading and writing (UPDATE rewrites it in place, as popa3d does). A missing or
    /// empty file is an empty maildrop; anything that is not a regular file, or not an
    /// mbox, is refused.
    pub fn open(path: &Path) -> Result<Mbox, DropError> {
        Self::open_within(path, None)
    }

    /// [`Mbox::open`], giving up when another program holds a conflicting lock for longer
    /// than `lock_timeout` (`None`: wait as long as it takes, as popa3d does). Giving up
    /// is `DropError::Io` of kind `WouldBlock`, which the server answers with `-ERR
    /// [IN-USE]` (RFC 2449 §8.1.1).
    pub fn open_within(path: &Path, lock_timeout: Option<Duration>) -> Result<Mbox, DropError> {
        let file = Self::open_file(path, true)?;
        Self::load_within(path, file, lock_timeout)
    }

    /// Opens the mailbox file without parsing it: `Ok(None)` for a missing or empty one.
    /// With `writable` unset it is opened read-only, for tools that only list it; such a
    /// maildrop refuses UPDATE. Split from [`Mbox::load`] so that a privileged caller can
    /// open first and parse after giving up its privileges.
    pub fn open_file(path: &Path, writable: bool) -> Result<Option<File>, DropError> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !meta.file_type().is_file() {
            return Err(refused("not a regular file"));
        }
        if meta.len() == 0 {
            return Ok(None);
        }
        if meta.len() > MAX_MAILBOX_OPEN_BYTES {
            return Err(refused(format!(
                "larger than {MAX_MAILBOX_OPEN_BYTES} bytes"
            )));
        }
        let file = match File::options()
            .read(true)
            .write(writable)
            .custom_flags(pop3_sys::MAILBOX_OPEN_FLAGS)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(pop3_sys::ELOOP) => {
                return Err(refused("not a regular file"))
            }
            Err(e) => return Err(e.into()),
        };
        let m = file.metadata()?;
        if !m.file_type().is_file() || m.dev() != meta.dev() || m.ino() != meta.ino() {
            return Err(refused("replaced while being opened"));
        }
        Ok(Some(file))
    }

    /// Parses a mailbox opened by [`Mbox::open_file`] under a shared lock.
    pub fn load(path: &Path, file: Option<File>) -> Result<Mbox, DropError> {
        Self::load_within(path, file, None)
    }

    /// [`Mbox::load`] with the lock wait of [`Mbox::open_within`].
    pub fn load_within(
        path: &Path,
        file: Option<File>,
        lock_timeout: Option<Duration>,
    ) -> Result<Mbox, DropError> {
        let Some(file) = file else {
            return Ok(Mbox::empty(path));
        };
        match lock_timeout {
            None => lock::lock_wait(&file, LockKind::Shared)?,
            Some(limit) => lock_within(&file, limit)?,
        }
        let loaded = Self::load_locked(&file);
        let unlocked = lock::unlock(&file);
        let (entries, uidls, stamp) = loaded?;
        unlocked?;
        let loaded_size = stamp.size;
        Ok(Mbox {
            path: path.to_owned(),
            file: Some(file),
            entries,
            uidls,
            stamp: Some(stamp),
            loaded_size,
            stale: false,
        })
    }

    fn load_locked(file: &File) -> Result<(Vec<Entry>, Uidls, Stamp), DropError> {
        let m = file.metadata()?;
        let size = m.len();
        if size > MAX_MAILBOX_OPEN_BYTES {
            return Err(refused(format!(
                "larger than {MAX_MAILBOX_OPEN_BYTES} bytes"
            )));
        }
        let entries = match parse_file(file, size) {
            Ok(e) => e,
            Err(ParseFailure::Format(p)) => return Err(refused(p)),
            Err(ParseFailure::Io(e)) => return Err(e.into()),
        };
        let digests: Vec<[u8; 16]> = entries.iter().map(|e| e.digest).collect();
        let mut buf = Vec::new();
        let uidls = Uidls::assign(&digests, |i| {
            // Only messages whose popa3d UIDL repeats get here, usually none.
            buf.resize(64 * 1024, 0);
            content_md5(file, &entries[i], &mut buf)
        })?;
        settle(&m);
        Ok((entries, uidls, Stamp::of(&m)))
    }

    /// popa3d's own UIDL for message `index` (which ours equals unless it repeats).
    pub fn popa3d_uidl(&self, index: u32) -> Option<[u8; 16]> {
        self.entries
            .get(index as usize)
            .map(|e| uidl::popa3d_uidl(&e.digest))
    }

    /// popa3d's LIST size for message `index`: one less than ours when the mailbox's
    /// last line has no LF (docs/differences-from-popa3d.md).
    pub fn popa3d_size(&self, index: u32) -> Option<u64> {
        self.entries
            .get(index as usize)
            .map(|e| e.size - u64::from(e.unterminated))
    }

    /// The messages as parsed.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size when it was loaded.
    pub fn loaded_size(&self) -> u64 {
        self.loaded_size
    }

    /// Whether the mailbox still is what was loaded. `locked` means the caller (UPDATE)
    /// holds the exclusive lock; otherwise a shared one is taken for a re-parse.
    fn check_inner(&mut self, locked: bool) -> Result<(), DropError> {
        if self.stale {
            return Err(DropError::Stale);
        }
        let (Some(file), Some(stamp)) = (self.file.as_ref(), self.stamp) else {
            return Ok(());
        };
        let now = Stamp::of(&file.metadata()?);
        // A file renamed over the mailbox is another program's rewrite, even though our
        // descriptor still sees the old inode unchanged. Messages read meanwhile come from
        // the loaded inode and are what the client was promised; only UPDATE (always
        // `locked`) must not compact a file nobody will see again.
        if locked {
            let same_path = match std::fs::symlink_metadata(&self.path) {
                Ok(p) => p.dev() == now.dev && p.ino() == now.ino,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            };
            if !same_path {
                self.stale = true;
                return Err(DropError::Stale);
            }
        }
        if now == stamp {
            return Ok(());
        }
        if !locked {
            lock::lock_wait(file, LockKind::Shared)?;
        }
        let r = self.reparse(file);
        if !locked {
            lock::unlock(file)?;
        }
        match r {
            Ok(stamp) => {
                self.stamp = Some(stamp);
                Ok(())
            }
            Err(DropError::Stale) => {
                self.stale = true;
                Err(DropError::Stale)
            }
            Err(e) => Err(e),
        }
    }

    fn reparse(&self, file: &File) -> Result<Stamp, DropError> {
        let m = file.metadata()?;
        if m.len() < self.loaded_size {
            return Err(DropError::Stale);
        }
        if m.len() > MAX_MAILBOX_WORK_BYTES {
            return Err(DropError::Io(io::Error::other(format!(
                "mailbox grew past {MAX_MAILBOX_WORK_BYTES} bytes"
            ))));
        }
        match parse_file(file, self.loaded_size) {
            Ok(entries) if entries == self.entries => {
                settle(&m);
                Ok(Stamp::of(&m))
            }
            Ok(_) | Err(ParseFailure::Format(_)) => Err(DropError::Stale),
            Err(ParseFailure::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(DropError::Stale)
            }
            Err(ParseFailure::Io(e)) => Err(e.into()),
        }
    }
}

impl Listing for Mbox {
    fn count(&self) -> u32 {
        self.entries.len() as u32
    }
    fn size(&self, index: u32) -> u64 {
        self.entries.get(index as usize).map_or(0, |e| e.size)
    }
    fn uidl(&self, index: u32) -> &[u8] {
        if (index as usize) < self.uidls.len() {
            self.uidls.get(index as usize)
        } else {
            &[]
        }
    }
}

impl Maildrop for Mbox {
    fn check(&mut self) -> Result<(), DropError> {
        self.check_inner(false)
    }

    fn data_len(&self, index: u32) -> u64 {
        self.entries.get(index as usize).map_or(0, |e| e.data_len)
    }

    fn read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, DropError> {
        let (Some(file), Some(e)) = (self.file.as_ref(), self.entries.get(index as usize)) else {
            return Ok(0);
        };
        if offset >= e.data_len {
            return Ok(0);
        }
        let want = usize::try_from(e.data_len - offset)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], e.data_offset + offset)?;
        if n == 0 && want > 0 {
            // The file is shorter than what we loaded: someone truncated it.
            self.check_inner(false)?;
            return Err(DropError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read from mailbox",
            )));
        }
        Ok(n)
    }

    fn update(&mut self, deleted: &[bool]) -> Result<(), DropError> {
        if !deleted.iter().any(|&d| d) {
            return Ok(());
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let file = file.try_clone()?;
        lock::lock_wait(&file, LockKind::Exclusive)?;
        let r = self.update_locked(&file, deleted);
        let unlocked = lock::unlock(&file);
        r?;
        unlocked?;
        Ok(())
    }
}

impl Mbox {
    fn update_locked(&mut self, file: &File, deleted: &[bool]) -> Result<(), DropError> {
        self.check_inner(true)?;
        let plan = update::Plan {
            keep: self
                .entries
                .iter()
                .enumerate()
                .filter(|(i, _)| !deleted.get(*i).copied().unwrap_or(false))
                .map(|(_, e)| e.raw_offset..e.raw_offset + e.raw_len)
                .collect(),
            appended_from: self.loaded_size,
        };
        // popa3d blocks signals so that an administrator's SIGTERM cannot stop the
        // rewrite half-way.
        let _blocked = pop3_sys::signals::BlockedSignals::block_all()?;
        let end = file.metadata()?.len();
        update::compact_in_place(file, &plan, end)?;
        file.sync_all()?;
        self.stamp = None;
        self.file = None;
        Ok(())
    }
}

/// Why a parse failed.
pub enum ParseFailure {
    Format(ParseError),
    Io(io::Error),
}

/// Parses the first `len` bytes of `file`. A file shorter than that is an
/// `UnexpectedEof` I/O error.
///
/// A large mailbox is parsed in two halves on two threads. A blank line followed by
/// `From ` always starts a message, whatever came before, so splitting there gives
/// exactly the entries of a single pass (the tests check this); the first error in file
/// order wins, as it would in one pass.
pub fn parse_file(file: &File, len: u64) -> Result<Vec<Entry>, ParseFailure> {
    parse_file_split(file, len, PARALLEL_PARSE_MIN)
}

/// [`parse_file`] with the size from which to split as a parameter, for the tests.
#[doc(hidden)]
pub fn parse_file_split(
    file: &File,
    len: u64,
    split_from: u64,
) -> Result<Vec<Entry>, ParseFailure> {
    if len >= split_from.max(1) {
        if let Some(split) = find_split(file, len / 2, len).map_err(ParseFailure::Io)? {
            let halves = std::thread::scope(|s| {
                let second = std::thread::Builder::new()
                    .name("mbox-parse".into())
                    .spawn_scoped(s, || parse_range(file, split, len));
                let first = parse_range(file, 0, split);
                match second {
                    Ok(handle) => Some((first, handle.join())),
                    Err(_) => None,
                }
            });
            match halves {
                Some((first, Ok(second))) => {
                    let mut entries = first?;
                    let second = second?;
                    if entries.len() + second.len() > MAX_MAILBOX_MESSAGES as usize {
                        return Err(ParseFailure::Format(ParseError::TooManyMessages));
                    }
                    entries.extend(second);
                    return Ok(entries);
                }
                // No thread to be had (a tight RLIMIT_NPROC, say): one pass will do.
                None => {}
                Some((_, Err(_))) => {
                    return Err(ParseFailure::Io(io::Error::other("parser thread failed")))
                }
            }
        }
    }
    parse_range(file, 0, len)
}

/// Mailboxes at least this large are parsed on two threads.
const PARALLEL_PARSE_MIN: u64 = 32 * 1024 * 1024;

/// The first message boundary at or after `from` (and before `len`), if any.
fn find_split(file: &File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; 64 * 1024];
    // Start two bytes early so that a boundary right at `from` is seen with its "\n\n".
    let mut at = from.saturating_sub(2);
    while at < len {
        let want = usize::try_from(len - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(k) = scan::find_boundary(&buf[..n]) {
            return Ok(Some(at + k as u64));
        }
        if at + (n as u64) >= len {
            return Ok(None);
        }
        // Overlap by the pattern's length less one, so no boundary straddles two reads.
        at += (n as u64).saturating_sub(6).max(1);
    }
    Ok(None)
}

/// Parses `start..end` of `file`, where `start` is 0 or a message boundary.
fn parse_range(file: &File, start: u64, end: u64) -> Result<Vec<Entry>, ParseFailure> {
    let mut scanner = Scanner::starting_at(start);
    let mut buf = vec![0u8; FILE_BUFFER];
    let mut filled = 0usize;
    let mut off = start;
    loop {
        let want = usize::try_from(end - off)
            .unwrap_or(usize::MAX)
            .min(buf.len() - filled);
        if want > 0 {
            let n = match file.read_at(&mut buf[filled..filled + want], off) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseFailure::Io(e)),
            };
            if n == 0 {
                return Err(ParseFailure::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "mailbox shrank while being read",
                )));
            }
            filled += n;
            off += n as u64;
        }
        let eof = off == end;
        let used = scanner
            .scan(&buf[..filled], eof)
            .map_err(ParseFailure::Format)?;
        buf.copy_within(used..filled, 0);
        filled -= used;
        if eof {
            return Ok(scanner.into_entries());
        }
    }
}

/// MD5 of a message as stored (From_ line and data, separator excluded): what tells
/// apart messages whose popa3d UIDLs collide.
fn content_md5(file: &File, e: &Entry, buf: &mut [u8]) -> io::Result<[u8; 16]> {
    let mut md5 = Md5::new();
    let range = e.raw_offset..e.data_offset + e.data_len;
    update::read_chunks(file, range, buf, |chunk, _| {
        md5.update(chunk);
        Ok(())
    })?;
    Ok(md5.finalize().into())
}

/// Holds the caller (and its lock) until any later change to the file is certain to show
/// a different timestamp. popa3d sleeps a second whenever the mtime is the current
/// second; with nanosecond timestamps only a change within the same clock tick could
/// repeat one, so we wait out at most 10 ms (a tick at HZ=100). A filesystem that stores
/// whole seconds (nanoseconds 0) gets popa3d's rule.
fn settle(m: &Metadata) {
    let stamp = |s: i64, ns: i64| {
        UNIX_EPOCH + Duration::from_secs(s.max(0) as u64) + Duration::from_nanos(ns.max(0) as u64)
    };
    let mtime = stamp(m.mtime(), m.mtime_nsec());
    let ctime = stamp(m.ctime(), m.ctime_nsec());
    let latest = mtime.max(ctime);
    let whole_seconds = m.mtime_nsec() == 0 && m.ctime_nsec() == 0;
    let safe_after = if whole_seconds {
        latest + Duration::from_secs(1)
    } else {
        latest + Duration::from_millis(10)
    };
    if let Ok(wait) = safe_after.duration_since(SystemTime::now()) {
        std::thread::sleep(wait.min(Duration::from_secs(1)));
    }
}

#[doc(hidden)]
pub mod model;

#[cfg(test)]
mod tests;

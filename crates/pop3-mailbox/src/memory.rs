//! An in-memory maildrop, for tests of the protocol driver.

use crate::maildrop::{DropError, Maildrop};
use pop3_proto::Listing;

/// A maildrop whose messages live in memory. `update` removes the deleted messages from
/// `messages`; `stale` makes the next `check` fail as if another MUA had been active.
#[derive(Clone, Debug, Default)]
pub struct MemoryDrop {
    /// Message data as RETR would read it (LF line ends).
    pub messages: Vec<Vec<u8>>,
    pub uidls: Vec<Vec<u8>>,
    pub stale: bool,
    pub updates: u32,
    sizes: Vec<u64>,
}

impl MemoryDrop {
    /// Builds a maildrop; sizes count each LF as CRLF, UIDLs are `m1`, `m2`, ...
    pub fn new(messages: Vec<Vec<u8>>) -> MemoryDrop {
        let sizes = messages.iter().map(|m| wire_size(m)).collect();
        let uidls = (1..=messages.len())
            .map(|i| format!("m{i}").into_bytes())
            .collect();
        MemoryDrop {
            messages,
            uidls,
            stale: false,
            updates: 0,
            sizes,
        }
    }
}

/// RFC 1939 octet count of `data` sent with CRLF line ends (no dot-stuffing), with CRLF
/// added after a final line that lacks one.
pub fn wire_size(data: &[u8]) -> u64 {
    let lf = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let tail = if data.last().is_some_and(|&b| b != b'\n') {
        2
    } else {
        0
    };
    data.len() as u64 + lf + tail
}

impl Listing for MemoryDrop {
    fn count(&self) -> u32 {
        self.sizes.len() as u32
    }
    fn size(&self, index: u32) -> u64 {
        self.sizes.get(index as usize).copied().unwrap_or(0)
    }
    fn uidl(&self, index: u32) -> &[u8] {
        self.uidls.get(index as usize).map_or(&[], |u| &u[..])
    }
}

impl Maildrop for MemoryDrop {
    fn check(&mut self) -> Result<(), DropError> {
        if self.stale {
            Err(DropError::Stale)
        } else {
            Ok(())
        }
    }
    fn data_len(&self, index: u32) -> u64 {
        self.messages
            .get(index as usize)
            .map_or(0, |m| m.len() as u64)
    }
    fn read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, DropError> {
        let m = self
            .messages
            .get(index as usize)
            .map_or(&[][..], |m| &m[..]);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(m.len());
        let n = buf.len().min(m.len() - start);
        buf[..n].copy_from_slice(&m[start..start + n]);
        Ok(n)
    }
    fn update(&mut self, deleted: &[bool]) -> Result<(), DropError> {
        self.check()?;
        self.updates += 1;
        let mut i = 0;
        self.messages.retain(|_| {
            let keep = !deleted.get(i).copied().unwrap_or(false);
            i += 1;
            keep
        });
        Ok(())
    }
}

//! The interface between the TRANSACTION/UPDATE states and a mailbox format.

use pop3_proto::Listing;
use std::fmt;
use std::io;

/// What can go wrong with a maildrop. Each variant maps to one of popa3d's outcomes.
#[derive(Debug)]
pub enum DropError {
    /// Another program changed the mailbox under us (other than appending mail). popa3d
    /// logs "Another MUA active, giving up" and ends the session without a reply, so the
    /// client never sees a falsely complete message.
    Stale,
    /// The mailbox cannot be loaded as it is (not an mbox, over a limit, not a regular
    /// file). popa3d logs "Failed or refused to load"; the string says why.
    Refused(String),
    /// An I/O error: popa3d's "Server failure accessing".
    Io(io::Error),
}

impl fmt::Display for DropError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropError::Stale => f.write_str("the mailbox was changed by another program"),
            DropError::Refused(why) => f.write_str(why),
            DropError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DropError {}

impl From<io::Error> for DropError {
    fn from(e: io::Error) -> Self {
        DropError::Io(e)
    }
}

/// A loaded maildrop. The message list ([`Listing`]) is fixed at load time; mail that
/// arrives later stays invisible until the next session and survives UPDATE.
pub trait Maildrop: Listing {
    /// Makes sure the loaded messages are still what the mailbox holds (popa3d re-checks
    /// before and after every RETR/TOP). Mail appended meanwhile is fine.
    fn check(&mut self) -> Result<(), DropError>;

    /// Length of message `index`'s data: the bytes RETR sends before CRLF conversion and
    /// dot-stuffing.
    fn data_len(&self, index: u32) -> u64;

    /// Reads message data at `offset` (0 = its first byte) into `buf`; returns the number
    /// of bytes read, 0 only at the end of the message.
    fn read(&mut self, index: u32, offset: u64, buf: &mut [u8]) -> Result<usize, DropError>;

    /// UPDATE: removes exactly the messages marked in `deleted` (indexed like the
    /// listing) and keeps everything else, including mail appended during the session.
    fn update(&mut self, deleted: &[bool]) -> Result<(), DropError>;
}

/// What the TRANSACTION state needs to know about a maildrop: how many messages there
/// are, and each one's LIST size and UIDL.
///
/// Message indexes here are 0-based (`0..count()`); message *numbers* on the wire are
/// 1-based. The listing is fixed for the whole session (RFC 1939 §5: numbers never change
/// within a session, and mail delivered meanwhile stays invisible).
pub trait Listing {
    /// Number of messages loaded at login.
    fn count(&self) -> u32;
    /// The LIST/STAT size of message `index`: octets as sent by RETR, CRLF line ends,
    /// before dot-stuffing and without the terminating `.` line.
    fn size(&self, index: u32) -> u64;
    /// The UIDL of message `index`: 1 to 70 bytes in 0x21..=0x7E (RFC 1939 §7).
    fn uidl(&self, index: u32) -> &[u8];
}

/// A maildrop with no messages: what to pass to [`crate::Session::poll`] in
/// AUTHORIZATION, where no maildrop is open, and what a missing or empty mailbox looks
/// like (popa3d: `+OK 0 0`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyListing;

impl Listing for EmptyListing {
    fn count(&self) -> u32 {
        0
    }

    fn size(&self, _index: u32) -> u64 {
        0
    }

    fn uidl(&self, _index: u32) -> &[u8] {
        b""
    }
}

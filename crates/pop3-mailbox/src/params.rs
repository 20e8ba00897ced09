//! Mailbox limits, each with popa3d's value and the reason for it.
//!
//! They exist so that one huge mailbox cannot take the service down (popa3d DESIGN,
//! "DoS attacks" 2): memory grows with the message count, time with the byte count.

/// Most messages loaded from one mailbox; one more makes the load fail. popa3d's
/// `MAX_MAILBOX_MESSAGES` (2^21): about 150 MB of index at ~72 bytes per message.
pub const MAX_MAILBOX_MESSAGES: u32 = 2_097_152;

/// Largest mailbox file accepted at login. popa3d's `MAX_MAILBOX_OPEN_BYTES` (2^31 - 1,
/// the C `int` limit of its era). Also bounds the time one login may spend parsing.
pub const MAX_MAILBOX_OPEN_BYTES: u64 = 2_147_483_647;

/// Largest file size accepted when the mailbox is re-checked later in the session (mail
/// may have been delivered since login). popa3d's `MAX_MAILBOX_WORK_BYTES`.
pub const MAX_MAILBOX_WORK_BYTES: u64 = 2_147_483_647;

/// Read size while parsing and while copying during UPDATE. popa3d reads 64 KiB; a
/// larger block means fewer system calls and still fits in a core's L2 cache.
pub const FILE_BUFFER: usize = 256 * 1024;

//! Protocol limits, each with its reason. Mailbox limits live in
//! `pop3_mailbox::params`.

/// Longest command line stored, in bytes, not counting the LF that ends it nor one CR
/// right before that LF. popa3d stores 127 bytes (its 128-byte line buffer less the NUL)
/// and silently truncates the rest; we refuse a longer line with exactly one `-ERR` and
/// never run its remainder (see docs/differences-from-popa3d.md).
pub const MAX_LINE: usize = 127;

/// Longest argument (RFC 1939 §3: "arguments may be up to 40 characters long"). popa3d
/// treats a longer argument as missing.
pub const MAX_ARG: usize = 40;

/// Size of the client input buffer. Input is read only into free space of this buffer, so
/// the bytes a client pipelines after PASS, which the pre-auth process hands to the
/// privileged side, are bounded by it. popa3d's is 128 bytes.
pub const INPUT_BUFFER: usize = 1024;

/// Queued output at which [`crate::Session::poll`] stops running pipelined commands and
/// asks the driver to write it out first ([`crate::Action::Flush`]). popa3d gets the same
/// bound for free from stdio blocking on a full socket; without it, one kilobyte of
/// pipelined `LIST` lines could queue hundreds of complete listings in memory.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// Longest password PASS can carry: the rest of a [`MAX_LINE`] line after `PASS `.
/// `AUTH PLAIN` is held to the same bound, so both paths hand the verifier the same
/// sizes.
pub const MAX_PASSWORD: usize = MAX_LINE - 5;

/// Longest `AUTH` command line, and longest SASL response line after a `+ `
/// continuation, in bytes (CRLF not counted). A PLAIN response carrying a
/// [`MAX_ARG`]-byte user (twice, as authorization and authentication identity) and a
/// [`MAX_PASSWORD`]-byte password is 272 base64 characters, which [`MAX_LINE`] cannot
/// hold; RFC 2449 §4 allows commands of 255 octets and RFC 5034 §4 does not bound the
/// response lines, so this bound is ours: room for the largest valid PLAIN message
/// plus `AUTH PLAIN `, with margin. Every other command keeps [`MAX_LINE`].
pub const MAX_AUTH_LINE: usize = 512;

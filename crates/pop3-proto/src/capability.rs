//! What a connection offers, and the CAPA reply that says so (RFC 2449).
//!
//! CAPA lists only what is true on this connection in this state: a client that
//! believes a capability will use it, and a false one breaks the session.

/// Per-connection options of the engine. [`Options::default`] is what popa3d-rs can do
/// today on a plain TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Offer and accept `STLS` (RFC 2595 §4): set only by a driver that can start TLS
    /// on this connection and has not done so yet. Default `false`: CAPA leaves it out
    /// and the `STLS` command gets `-ERR`.
    pub stls: bool,
    /// Accept USER/PASS and AUTH PLAIN on this connection. When `false` (TLS
    /// configured, connection not under TLS and not from loopback), they are refused
    /// with `-ERR [AUTH] Plaintext authentication disallowed without TLS`, and CAPA
    /// leaves out `USER` and `SASL PLAIN` (RFC 2449 §6.2: `USER` only where it can be
    /// used). Default `true`.
    pub plaintext_login: bool,
    /// The `IMPLEMENTATION` capability's text (RFC 2449 §6.9). Must be printable
    /// ASCII without CR or LF. Default `popa3d-rs`, without a version: less for a
    /// scanner to fingerprint.
    pub implementation: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stls: false,
            plaintext_login: true,
            implementation: "popa3d-rs",
        }
    }
}

/// The `SASL` capability's mechanisms, also listed by a bare `AUTH`.
pub(crate) const MECHANISMS: &[u8] = b"PLAIN";

/// Writes the CAPA reply for AUTHORIZATION (`authorization`) or TRANSACTION.
///
/// - `TOP`, `UIDL`: both commands exist (RFC 2449 §6.1, §6.8).
/// - `RESP-CODES`: `[` after `-ERR ` always starts a response code (§6.4): no reply
///   of ours has free text starting with `[`.
/// - `AUTH-RESP-CODE`: `[AUTH]` is only used for credential problems (RFC 3206 §6).
/// - `PIPELINING`: commands are read from a buffer and answered strictly in order,
///   however many arrive at once (§6.6).
/// - `USER`, `SASL PLAIN`: AUTHORIZATION only, and only where they would be accepted;
///   after login they mean nothing.
/// - `STLS`: AUTHORIZATION only (RFC 2595 §4), only where offered.
/// - No `LOGIN-DELAY` or `EXPIRE`: neither is enforced, and both are promises.
pub(crate) fn write_capa(options: &Options, authorization: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    if authorization {
        if options.plaintext_login {
            out.extend_from_slice(b"USER\r\nSASL ");
            out.extend_from_slice(MECHANISMS);
            out.extend_from_slice(b"\r\n");
        }
        if options.stls {
            out.extend_from_slice(b"STLS\r\n");
        }
    }
    let text = options.implementation.as_bytes();
    // Never let a bad option break the reply framing.
    if !text.is_empty() && text.iter().all(|b| (0x20..0x7f).contains(b)) {
        out.extend_from_slice(b"IMPLEMENTATION ");
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

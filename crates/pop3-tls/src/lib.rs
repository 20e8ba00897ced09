//! TLS for popa3d-rs (RFC 8314 implicit TLS, RFC 2595 STLS) with the private key kept
//! out of every process that handles a session (docs/tls-design.md).
//!
//! - [`keyholder`]: the key holder's side, which alone loads the key and answers one
//!   signature request per channel, refusing anything that is not a TLS server
//!   handshake signature input.
//! - [`holder`]: the key holder process itself: forked before it loads the keys,
//!   confined, answering each channel in a child of its own.
//! - [`remote`]: the relay's [`rustls::sign::SigningKey`] that asks the holder, and the
//!   server configuration (TLS 1.2 and 1.3, ring, no resumption).
//! - [`relay`]: the relay loop between the client's TLS connection and the plaintext
//!   socket to the POP3 processes.

#![forbid(unsafe_code)]

pub mod holder;
pub mod keyholder;
pub mod relay;
pub mod remote;

//! Sans-IO POP3 engine for popa3d-rs.
//!
//! Bytes from the client go in ([`Session::input_space`] / [`Session::input_filled`]),
//! replies come out ([`Session::output`]) and everything that needs the outside world
//! (checking a password, reading a message, rewriting the maildrop) is returned as an
//! [`Action`] for the caller to carry out. This crate never touches a socket or a file,
//! has no `unsafe` and no dependency that does I/O, so every byte of its behaviour can be
//! unit-tested and fuzzed.
//!
//! The behaviour is Openwall popa3d 1.0.3's, byte for byte, except where
//! `docs/differences-from-popa3d.md` says otherwise. The differences here: a command
//! line longer than [`params::MAX_LINE`] bytes is answered with one `-ERR` and never run,
//! where popa3d truncates it and runs the first 127 bytes; and CAPA (RFC 2449) and
//! AUTH PLAIN (RFC 5034) are answered where popa3d says `-ERR`, as [`Options`] allow.
//!
//! # Driving a session
//!
//! ```
//! use pop3_proto::{Action, EmptyListing, Session};
//!
//! let mut session = Session::authorization(); // "+OK\r\n" is queued
//! let mut client: &[u8] = b"USER bob\r\nPASS secret\r\nSTAT\r\n";
//! let mut wire = Vec::new();
//! let login = loop {
//!     match session.poll(&EmptyListing) {
//!         Action::NeedInput => {
//!             // Flush, then read (here from a slice; really from the socket).
//!             wire.extend_from_slice(session.output());
//!             let n = session.output().len();
//!             session.consume_output(n);
//!             let space = session.input_space();
//!             let n = space.len().min(client.len());
//!             space[..n].copy_from_slice(&client[..n]);
//!             client = &client[n..];
//!             session.input_filled(n);
//!             if n == 0 {
//!                 session.input_eof();
//!             }
//!         }
//!         Action::Login { user, password, pipelined } => break (user, password, pipelined),
//!         other => unreachable!("{other:?}"),
//!     }
//! };
//! assert_eq!(wire, b"+OK\r\n");
//! assert_eq!(session.output(), b"+OK\r\n"); // the USER reply, not yet flushed
//! assert_eq!(login.0, b"bob");
//! assert_eq!(login.1.as_bytes(), b"secret");
//! assert_eq!(login.2, b"STAT\r\n");
//! // After checking the password and loading the maildrop (elsewhere):
//! let mut tx = Session::try_transaction(&EmptyListing, &login.2).unwrap();
//! assert_eq!(tx.poll(&EmptyListing), Action::NeedInput);
//! assert_eq!(tx.output(), b"+OK\r\n+OK 0 0\r\n");
//! ```
//!
//! The loop, in AUTHORIZATION (pass [`EmptyListing`]) and TRANSACTION (pass the
//! maildrop's [`Listing`]) alike:
//!
//! - [`Action::NeedInput`]: write out [`Session::output`] (then
//!   [`Session::consume_output`]), read into [`Session::input_space`] and report it with
//!   [`Session::input_filled`], or call [`Session::input_eof`] at end of input.
//! - [`Action::Flush`]: write out [`Session::output`] and poll again (the client
//!   pipelined commands faster than it reads their replies).
//! - [`Action::Login`]: AUTHORIZATION is over. Check the password; on success build
//!   [`Session::try_transaction`] with the maildrop's listing and the `pipelined` bytes.
//! - [`Action::StartTls`]: flush the `+OK`, start TLS, and go on with
//!   [`Session::authorization_after_tls`] over the TLS connection.
//! - [`Action::Retrieve`]: re-check the maildrop, [`Session::retrieve_begin`], feed the
//!   message data (without its From_ line) to a [`MessageEncoder`] writing into
//!   [`Session::output_mut`], flushing whenever the output exceeds the driver's
//!   threshold; stop feeding once [`MessageEncoder::is_done`]; re-check, then
//!   [`MessageEncoder::finish`] and poll again.
//! - [`Action::Update`]: commit the deletions, then [`Session::update_done`] and poll.
//! - [`Action::Close`]: flush and close.
//!
//! The session only ever appends whole replies to the output, so the driver may flush
//! at any point without splitting a status line.
#![forbid(unsafe_code)]

pub mod params;

mod authorization;
mod capability;
mod command;
mod encode;
mod line;
mod listing;
mod password;
mod reply;
mod sasl;
mod session;
mod transaction;

#[doc(hidden)]
pub mod fuzz_targets;

pub use capability::Options;
pub use encode::MessageEncoder;
pub use listing::{EmptyListing, Listing};
pub use password::Password;
pub use sasl::{decode_base64, Base64Error};
pub use session::{Action, CloseReason, PipelinedTooLong, Session};
pub use transaction::Totals;

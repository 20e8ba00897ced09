//! The messages that cross process boundaries in a popa3d-rs session.
//!
//! Two channels, each a pipe that carries at most one message and is then closed:
//!
//! - **pre-auth → privileged side** ([`LoginRequest`]): the unprivileged, chrooted,
//!   seccomp-confined process that spoke AUTHORIZATION hands over the user name, the
//!   password and whatever the client pipelined after PASS. That process parsed hostile
//!   input and may be compromised, so the privileged side decodes its message as hostile
//!   too (or [`START_TLS`], four bytes, when the client asked for STLS): one fixed layout, every length checked against popa3d's limits, the whole
//!   message accepted once, and anything else (a short read, a bad magic, a length over a
//!   limit, trailing bytes, a second message) is fatal for the session.
//! - **verifier → privileged side** ([`Verdict`]): the short-lived process that checked
//!   the password reports the account to switch to, or a failure.
//!
//! Everything here is pure: encode to bytes, decode from bytes. The reading side must not
//! read more than [`LoginRequest::MAX_LEN`] / [`Verdict::MAX_LEN`] bytes.
#![forbid(unsafe_code)]

mod wire;

pub use wire::{DecodeError, LoginRequest, Verdict, START_TLS};

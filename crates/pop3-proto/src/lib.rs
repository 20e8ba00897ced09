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
//! `docs/differences-from-popa3d.md` says otherwise.
#![forbid(unsafe_code)]

pub mod params;

mod listing;
pub use listing::Listing;

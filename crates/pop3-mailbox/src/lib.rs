//! Maildrops for popa3d-rs: the [`Maildrop`] trait and the mbox maildrop whose message
//! boundaries, sizes and UIDLs are Openwall popa3d's.
//!
//! This crate opens and rewrites the user's mailbox, so it runs with the mail user's
//! rights only; it never needs root and must never be handed a path it did not build
//! from the spool and the user name (that is the caller's job).
#![forbid(unsafe_code)]

pub mod maildrop;
pub mod mbox;
pub mod memory;
pub mod params;

pub use maildrop::{DropError, Maildrop};
pub use mbox::Mbox;
pub use memory::MemoryDrop;

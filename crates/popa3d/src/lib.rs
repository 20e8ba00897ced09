//! popa3d-rs: the server and its admin tool, as a library so that the tests drive
//! exactly the code the binaries run.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod driver;
pub mod flood;
pub mod messages;
pub mod server;
pub mod syslog;
pub mod systemd;
pub mod tls;

//! The one crate of popa3d-rs that contains `unsafe` code and calls libc directly.
//!
//! Every other crate has `#![forbid(unsafe_code)]` and reaches the kernel only through
//! the small safe wrappers here. Each `unsafe` block carries a `// SAFETY:` line saying
//! why the call cannot violate memory safety; keep them that small.

pub mod lock;
pub mod privileges;
pub mod signals;

// Process model and confinement (pre-auth child, verifier, session).
pub mod net;
pub mod poll;
pub mod process;
pub mod sandbox;

// Authentication: libxcrypt, shadow, PAM.
pub mod crypt;
pub mod pam;
pub mod shadow;

/// Flags added to `O_RDWR` when a mailbox is opened: no controlling terminal, never
/// block on a FIFO swapped in behind our back (popa3d uses both), never follow a
/// symlink (popa3d only checks with lstat first, which races), close on exec.
pub const MAILBOX_OPEN_FLAGS: i32 =
    libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// `ELOOP`: what open(2) returns for a symlink under `O_NOFOLLOW`.
pub const ELOOP: i32 = libc::ELOOP;

/// errno values the daemon tells apart: an address family or address the host does not
/// have (no IPv6), and running out of descriptors, buffers or memory in accept(2).
pub mod errno {
    pub const EAFNOSUPPORT: i32 = libc::EAFNOSUPPORT;
    pub const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
    pub const EMFILE: i32 = libc::EMFILE;
    pub const ENFILE: i32 = libc::ENFILE;
    pub const ENOBUFS: i32 = libc::ENOBUFS;
    pub const ENOMEM: i32 = libc::ENOMEM;

    /// The OS's sentence for an I/O error, without std's " (os error N)" suffix:
    /// "No such file or directory", as C's strerror and popa3d's log lines have it.
    pub fn strerror(e: &std::io::Error) -> String {
        let text = e.to_string();
        match e.raw_os_error() {
            Some(code) => text
                .strip_suffix(&format!(" (os error {code})"))
                .map_or(text.clone(), str::to_owned),
            None => text,
        }
    }
}

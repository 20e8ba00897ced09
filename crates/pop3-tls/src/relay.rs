//! The TLS relay's loop: TLS records on the client connection, plaintext on a Unix
//! socket to the pre-auth and session processes (docs/tls-design.md, "Why a relay").
//!
//! Single-threaded and blocking: it waits until either descriptor is readable, then
//! moves what is there. Reads only happen on a readable descriptor, so they do not block;
//! writes block at most for the descriptors' write timeouts. Buffers are bounded: one
//! [`CHUNK`] of plaintext is read at a time, and only once rustls' TLS output has been
//! written out, and all plaintext rustls decrypts is written out before the next read.
//! During the handshake only the client side is read, and only until the deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pop3_sys::poll::wait_any_readable;
use rustls::ServerConnection;

/// Plaintext moved per read: one maximal TLS record (RFC 8446 §5.1).
pub const CHUNK: usize = 16 * 1024;

/// Why the relay stopped before a clean end.
#[derive(Debug)]
pub enum RelayError {
    /// The handshake did not complete within the deadline.
    HandshakeTimeout,
    /// A TLS error: a bad record, a failed handshake, an alert from the client. rustls
    /// has sent the client an alert where it could.
    Tls(rustls::Error),
    /// Reading or writing either side failed.
    Io(io::Error),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            RelayError::Tls(e) => write!(f, "TLS: {e}"),
            RelayError::Io(e) => write!(f, "relay I/O: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<io::Error> for RelayError {
    fn from(e: io::Error) -> Self {
        RelayError::Io(e)
    }
}

/// How the session ended, when it ended cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The client sent close_notify (false: it closed the connection without one, which
    /// the plaintext side sees as a plain end of file all the same).
    pub client_close_notify: bool,
}

/// Writes all of rustls' pending TLS output to `net`.
fn flush_tls<N: Write>(tls: &mut ServerConnection, net: &mut N) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(net)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    net.flush()
}

/// Relays between the client connection `net` (TLS records) and `plain` (plaintext)
/// until both directions have ended, and returns how.
///
/// `net` should bound its writes (a `TcpStream` with a write timeout, or
/// `pop3_sys::poll::TimedFd`), and so should `plain` (`set_write_timeout`): a peer that
/// stops reading then ends the relay with an error instead of holding it. Nothing is
/// read from `plain` until the handshake is done (the greeting waits in the socket), and
/// the handshake must finish within `handshake_timeout`.
///
/// Ends: the client's close_notify or end of file shuts down `plain`'s write side (the
/// session reads end of file, and may still answer); the session's end of file sends
/// close_notify to the client, which ends the relay.
pub fn pump<N>(
    tls: ServerConnection,
    net: N,
    plain: UnixStream,
    handshake_timeout: Duration,
) -> Result<Ended, RelayError>
where
    N: Read + Write + AsFd,
{
    pump_with(tls, net, plain, handshake_timeout, |_| {})
}

/// [`pump`], calling `established` once, when the handshake has completed (for the
/// log: protocol version and cipher suite).
pub fn pump_with<N, F>(
    mut tls: ServerConnection,
    mut net: N,
    mut plain: UnixStream,
    handshake_timeout: Duration,
    established: F,
) -> Result<Ended, RelayError>
where
    N: Read + Write + AsFd,
    F: FnOnce(&ServerConnection),
{
    let mut established = Some(established);
    let deadline = Instant::now().checked_add(handshake_timeout);
    let mut buf = vec![0u8; CHUNK];
    // Whether the client may still send: false after its close_notify or end of file.
    // Writing to it goes on (TLS 1.3 allows half-closure, RFC 8446 §6.1) until the
    // session ends or a write fails.
    let mut net_open = true;
    let mut client_close_notify = false;
    loop {
        // Decrypted plaintext to the session, then our TLS output to the client.
        let mut client_done = false;
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => {
                    client_close_notify = true;
                    client_done = true;
                    break;
                }
                Ok(n) => plain.write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // End of file without close_notify: a truncation rustls reports; the
                // session sees end of file either way.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    client_done = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        flush_tls(&mut tls, &mut net)?;
        if client_done && net_open {
            net_open = false;
            // The session may already be gone; its end of file comes next either way.
            let _ = plain.shutdown(Shutdown::Write);
        }

        let handshaking = tls.is_handshaking();
        if !handshaking {
            if let Some(f) = established.take() {
                f(&tls);
            }
        }
        if handshaking && !net_open {
            return Err(RelayError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let timeout = if handshaking {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Err(RelayError::HandshakeTimeout);
            }
            left
        } else {
            None
        };

        let ready = if handshaking {
            let r = wait_any_readable(&[net.as_fd()], timeout)?;
            vec![r.first().copied().unwrap_or(false), false]
        } else if net_open {
            wait_any_readable(&[net.as_fd(), plain.as_fd()], timeout)?
        } else {
            let r = wait_any_readable(&[plain.as_fd()], timeout)?;
            vec![false, r.first().copied().unwrap_or(false)]
        };

        if ready.first().copied().unwrap_or(false) && net_open {
            match tls.read_tls(&mut net) {
                Ok(0) => {
                    net_open = false;
                    let _ = plain.shutdown(Shutdown::Write);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = tls.process_new_packets() {
                // rustls queued an alert for the client: best effort.
                let _ = flush_tls(&mut tls, &mut net);
                return Err(RelayError::Tls(e));
            }
            if !net_open && tls.is_handshaking() {
                return Err(RelayError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }

        if ready.get(1).copied().unwrap_or(false) {
            let n = match plain.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                // The session is done: close_notify (RFC 8446 §6.1) and stop.
                tls.send_close_notify();
                flush_tls(&mut tls, &mut net)?;
                return Ok(Ended {
                    client_close_notify,
                });
            }
            write_plaintext(&mut tls, &mut net, &buf[..n])?;
        }
    }
}

/// Encrypts `data` and writes it to `net`, flushing whenever rustls' buffer is full.
fn write_plaintext<N: Write>(
    tls: &mut ServerConnection,
    net: &mut N,
    mut data: &[u8],
) -> io::Result<()> {
    while !data.is_empty() {
        let n = tls.writer().write(data)?;
        data = data.get(n..).unwrap_or_default();
        flush_tls(tls, net)?;
    }
    Ok(())
}

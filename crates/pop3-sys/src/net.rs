//! Listening sockets for the standalone daemon, sockets handed over by systemd, and the
//! packet channel between the daemon and its sessions.
//!
//! std's `TcpListener::bind` offers neither the backlog nor `IPV6_V6ONLY`. popa3d listens
//! with a backlog of 5, which under load leaves clients waiting for SYN retries (a
//! second or more) instead of being served or refused; the daemon asks for a large
//! backlog and empties it at once. IPv6 listeners are IPv6-only, so that `0.0.0.0:110`
//! and `[::]:110` can both be bound and every IPv4 client shows up with its IPv4 address.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live int and the length passed is its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and writable; the kernel writes at most `len`
    // bytes into `value`.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// The C form of `addr`, and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data for which all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A TCP socket listening on `addr` with `SO_REUSEADDR` (as popa3d), `IPV6_V6ONLY` for an
/// IPv6 address, close-on-exec and non-blocking (the daemon accepts until `EAGAIN`). The
/// kernel caps `backlog` at `net.core.somaxconn`.
pub fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket has no memory-safety preconditions.
    let raw = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: socket just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if family == libc::AF_INET6 {
        set_int_option(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (storage, len) = sockaddr(&addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this family.
    cvt(unsafe { libc::bind(raw, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen has no memory-safety preconditions.
    cvt(unsafe { libc::listen(raw, backlog) })?;
    Ok(TcpListener::from(fd))
}

/// Changes the backlog of a socket that is already listening (listen(2) again, which
/// Linux allows): a reload with a new `backlog` keeps the socket and its queue.
pub fn set_backlog(listener: &TcpListener, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: listen has no memory-safety preconditions; the descriptor is borrowed.
    cvt(unsafe { libc::listen(listener.as_raw_fd(), backlog) }).map(drop)
}

/// Takes over descriptor `raw`, inherited from systemd (`LISTEN_FDS`), after checking
/// that it is a listening TCP socket (IPv4 or IPv6); it becomes close-on-exec and
/// non-blocking. Anything else is an error and the descriptor is left alone.
///
/// The caller must own `raw`: nothing else in the process may use or close it.
pub fn adopt_listener(raw: RawFd) -> io::Result<TcpListener> {
    if raw < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is not an inherited socket"),
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; an unknown number gives EBADF.
    let flags = cvt(unsafe { libc::fcntl(raw, libc::F_GETFD) })?;
    let domain = get_int_option(raw, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let kind = get_int_option(raw, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let listening = get_int_option(raw, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
    if !matches!(domain, libc::AF_INET | libc::AF_INET6)
        || kind != libc::SOCK_STREAM
        || listening == 0
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is not a listening TCP socket"),
        ));
    }
    // SAFETY: only sets the close-on-exec flag of a descriptor checked to be open.
    cvt(unsafe { libc::fcntl(raw, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: the caller owns `raw` (documented contract) and it is an open socket.
    let listener = unsafe { TcpListener::from_raw_fd(raw) };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A connected pair of `SOCK_SEQPACKET` Unix sockets, close-on-exec: one message per
/// `write`, one per `read` (a longer message is cut to the buffer), and end of file
/// when the other side is closed (its process exited). The daemon keeps one end per
/// session; std's [`UnixStream`] reads and writes them.
pub fn packet_pair() -> io::Result<(UnixStream, UnixStream)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair requires.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded: two open descriptors that nothing else owns.
    let pair = unsafe {
        (
            UnixStream::from(OwnedFd::from_raw_fd(fds[0])),
            UnixStream::from(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    Ok(pair)
}

/// The peer address of a connected TCP socket, or `None` for anything else (a pipe, a
/// Unix socket: inetd mode run by hand or by a test).
pub fn tcp_peer(fd: &impl AsRawFd) -> Option<SocketAddr> {
    let raw = fd.as_raw_fd();
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes; getpeername writes at most that.
    let rc = unsafe { libc::getpeername(raw, storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, and getpeername filled in what it had.
    let storage = unsafe { storage.assume_init() };
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn listens_with_ipv6_only_and_reports_peers() {
        let l4 = listen("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
        let addr = l4.local_addr().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        // Non-blocking: poll until the connection is there.
        let (s, peer) = loop {
            match l4.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(tcp_peer(&s), Some(peer));
        assert_eq!(tcp_peer(&s), Some(c.local_addr().unwrap()));
        if let Ok(l6) = listen("[::1]:0".parse().unwrap(), 16) {
            assert_eq!(
                get_int_option(l6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap(),
                1
            );
        }
        // A pipe is not a TCP socket.
        let (r, _w) = crate::process::pipe().unwrap();
        assert_eq!(tcp_peer(&r), None);
    }

    #[test]
    fn backlog_can_change_while_listening() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        set_backlog(&l, 2048).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap());
        assert!(c.is_ok());
    }

    #[test]
    fn adopt_checks_the_descriptor() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(l);
        let l = adopt_listener(raw).unwrap();
        assert!(l.local_addr().is_ok());
        let (a, _b) = packet_pair().unwrap();
        assert!(adopt_listener(a.as_raw_fd()).is_err());
        let connected = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(adopt_listener(connected.as_raw_fd()).is_err());
        assert!(adopt_listener(1).is_err());
    }

    #[test]
    fn packets_keep_their_boundaries_and_end_with_eof() {
        let (mut a, mut b) = packet_pair().unwrap();
        a.write_all(b"one").unwrap();
        a.write_all(b"second").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).unwrap(), 3);
        assert_eq!(b.read(&mut buf).unwrap(), 6);
        drop(a);
        assert_eq!(b.read(&mut buf).unwrap(), 0);
    }
}

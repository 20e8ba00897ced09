//! Listening sockets for the standalone daemon, sockets handed over by systemd, the
//! packet channel between the daemon and its sessions, and descriptor passing
//! (`SCM_RIGHTS`) to the TLS key holder.
//!
//! std's `TcpListener::bind` offers neither the backlog nor `IPV6_V6ONLY`. popa3d listens
//! with a backlog of 5, which under load leaves clients waiting for SYN retries (a
//! second or more) instead of being served or refused; the daemon asks for a large
//! backlog and empties it at once. IPv6 listeners are IPv6-only, so that `0.0.0.0:110`
//! and `[::]:110` can both be bound and every IPv4 client shows up with its IPv4 address.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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

// ---------------------------------------------------------------------------------------
// Descriptor passing (unix(7), cmsg(3)).

const FD_SIZE: usize = size_of::<libc::c_int>();

/// Descriptors [`recv_fd`] has room for in one message. One is expected; a few more are
/// received and closed; more than this sets `MSG_CTRUNC` (the kernel closes those that
/// did not fit) and is an error.
const RECV_FDS: usize = 8;

/// The most descriptors one `SCM_RIGHTS` message may carry (`SCM_MAX_FD` in the kernel).
const SCM_MAX_FD: usize = 253;

// SAFETY: CMSG_SPACE only computes a size from its argument.
const RECV_SPACE: usize =
    unsafe { libc::CMSG_SPACE((RECV_FDS * FD_SIZE) as libc::c_uint) } as usize;

/// A control buffer for [`recv_fd`], aligned for `struct cmsghdr` (whose first field is
/// a `size_t`).
#[repr(C, align(8))]
struct RecvControl([u8; RECV_SPACE]);

/// Sends `data` (not empty: a stream socket carries descriptors only with at least one
/// byte) and one descriptor (`SCM_RIGHTS`) in one `sendmsg`, with `MSG_NOSIGNAL` (a
/// closed peer is an `EPIPE` error, never a SIGPIPE). The receiver gets its own
/// descriptor for the same open file; `fd` stays open here. Meant for short messages:
/// a partial send is an error. The socket's send timeout applies.
pub fn send_fd(sock: &UnixStream, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    send_fds(sock, data, &[fd])
}

/// [`send_fd`] with any number of descriptors (1 to `SCM_MAX_FD`), for tests of the
/// receiving side.
fn send_fds(sock: &UnixStream, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if data.is_empty() || fds.is_empty() || fds.len() > SCM_MAX_FD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "send_fd: needs a non-empty payload and 1 to 253 descriptors",
        ));
    }
    let payload = fds.len() * FD_SIZE;
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(payload as libc::c_uint) } as usize;
    // u64 elements: aligned for struct cmsghdr.
    let mut control = vec![0u64; space.div_ceil(size_of::<u64>())];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain data for which all-zero is valid (null pointers, zero
    // lengths, and on musl zero padding).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `control`, `space` bytes long, which holds at least one
    // header, so CMSG_FIRSTHDR returns a pointer to its start.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(io::Error::other("send_fd: no room for the control message"));
    }
    // SAFETY: `cmsg` points to the start of `control`, aligned and large enough for a
    // header followed by `payload` bytes (CMSG_SPACE); every write stays inside it. The
    // descriptor numbers are written unaligned, as cmsg(3) recommends.
    unsafe {
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as libc::c_uint) as _;
        let data = libc::CMSG_DATA(cmsg);
        for (i, fd) in fds.iter().enumerate() {
            std::ptr::write_unaligned(data.add(i * FD_SIZE).cast::<libc::c_int>(), fd.as_raw_fd());
        }
    }
    loop {
        // SAFETY: `msg` points to `iov` (which points to `data`) and to `control`, all
        // alive for the call; sendmsg only reads them.
        let rc = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if rc >= 0 {
            if rc as usize == data.len() {
                return Ok(());
            }
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "sendmsg sent only part of the message",
            ));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one message into `buf` (not empty) with `recvmsg`, and the descriptor it
/// carries: `(payload length, descriptor)`. A length of 0 is end of file. The descriptor
/// is `Some` only if exactly one came; if several came, all are closed and it is `None`.
/// Received descriptors are close-on-exec from the start (`MSG_CMSG_CLOEXEC`). A message
/// with more descriptors than fit (`MSG_CTRUNC`) is an `InvalidData` error, and every
/// descriptor that did arrive is closed: nothing received is ever left open unowned. On
/// a `SOCK_SEQPACKET` socket a longer message is cut to `buf`. The socket's receive
/// timeout applies.
pub fn recv_fd(sock: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "recv_fd: empty buffer (end of file could not be told apart)",
        ));
    }
    let mut control = RecvControl([0; RECV_SPACE]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data for which all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = RECV_SPACE as _;
    let n = loop {
        // SAFETY: `msg` points to `iov` (which points to `buf`, writable for its length)
        // and to `control`, writable for RECV_SPACE bytes; all outlive the call. On an
        // error the kernel has received nothing and leaves `msg` unchanged.
        let rc = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut fds = received_fds(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(fds);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "recvmsg: control data truncated (too many descriptors); closed them",
        ));
    }
    let fd = if fds.len() == 1 { fds.pop() } else { None };
    drop(fds);
    Ok((n, fd))
}

/// Takes ownership of every descriptor in the `SCM_RIGHTS` messages of `msg`, which
/// recvmsg just filled in. Other control messages (credentials, if someone set
/// SO_PASSCRED) are skipped.
// msg_controllen and cmsg_len are size_t with glibc but socklen_t with musl.
#[allow(clippy::unnecessary_cast)]
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    let start = msg.msg_control as usize;
    let end = start + msg.msg_controllen as usize;
    // SAFETY: `msg` describes our control buffer and the length the kernel wrote;
    // CMSG_FIRSTHDR returns null or a pointer to a whole header inside it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR and CMSG_NXTHDR return only pointers to a whole, aligned
        // header inside the buffer.
        let (level, kind, len) = unsafe {
            (
                (*cmsg).cmsg_level,
                (*cmsg).cmsg_type,
                (*cmsg).cmsg_len as usize,
            )
        };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: pointer arithmetic inside the header just checked.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            // SAFETY: CMSG_LEN only computes a size.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            // The kernel's length, but never past the end of the buffer.
            let count = len
                .saturating_sub(header)
                .min(end.saturating_sub(data as usize))
                / FD_SIZE;
            for i in 0..count {
                // SAFETY: descriptor `i` lies inside the buffer (bounded above); read
                // unaligned, as cmsg(3) recommends.
                let raw = unsafe {
                    std::ptr::read_unaligned(data.add(i * FD_SIZE).cast::<libc::c_int>())
                };
                if raw >= 0 {
                    // SAFETY: the kernel just installed this descriptor for us with the
                    // message; nothing else in the process knows its number.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        // SAFETY: `cmsg` is a header inside the buffer `msg` describes; CMSG_NXTHDR
        // returns the next whole header or null.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    fds
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsFd;

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

    /// Reads `r` to its end: it returns only once every write end of the pipe is closed.
    fn read_all(r: OwnedFd) -> Vec<u8> {
        let mut got = Vec::new();
        std::fs::File::from(r).read_to_end(&mut got).unwrap();
        got
    }

    fn cloexec(fd: &OwnedFd) -> bool {
        // SAFETY: F_GETFD on a descriptor we own; integer arguments only.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        flags != -1 && flags & libc::FD_CLOEXEC != 0
    }

    #[test]
    fn a_descriptor_crosses_a_packet_socket_with_its_payload() {
        let (a, b) = packet_pair().unwrap();
        let (r, w) = crate::process::pipe().unwrap();
        send_fd(&a, &[7], w.as_fd()).unwrap();
        drop(w);
        let mut buf = [0u8; 4];
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], [7]);
        let fd = fd.unwrap();
        assert!(cloexec(&fd), "received descriptor is not close-on-exec");
        std::fs::File::from(fd).write_all(b"through").unwrap();
        assert_eq!(read_all(r), b"through");

        // A message without a descriptor, then end of file.
        (&a).write_all(b"xy").unwrap();
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fd.is_none()), (&b"xy"[..], true));
        drop(a);
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((n, fd.is_none()), (0, true));
    }

    #[test]
    fn a_descriptor_crosses_a_stream_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = crate::process::pipe().unwrap();
        send_fd(&a, b"k", w.as_fd()).unwrap();
        drop(w);
        let mut buf = [0u8; 1];
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((n, buf[0]), (1, b'k'));
        std::fs::File::from(fd.unwrap()).write_all(b"s").unwrap();
        assert_eq!(read_all(r), b"s");
    }

    #[test]
    fn send_fd_refuses_an_empty_payload_and_a_closed_peer() {
        let (a, b) = packet_pair().unwrap();
        let (_r, w) = crate::process::pipe().unwrap();
        let e = send_fd(&a, b"", w.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(recv_fd(&b, &mut []).is_err());
        drop(b);
        // EPIPE, not a SIGPIPE (which would end this test process).
        let e = send_fd(&a, b"x", w.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }

    /// Several descriptors: none is handed out, and every one is closed (the pipes see
    /// end of file once the sender's copies are gone too).
    #[test]
    fn extra_descriptors_are_closed() {
        let (a, b) = packet_pair().unwrap();
        let pipes: Vec<_> = (0..3).map(|_| crate::process::pipe().unwrap()).collect();
        let ws: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        send_fds(&a, b"3", &ws).unwrap();
        let mut buf = [0u8; 4];
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((n, fd.is_none()), (1, true));
        for (r, w) in pipes {
            drop(w);
            assert_eq!(read_all(r), b"");
        }
    }

    /// More descriptors than the buffer holds: MSG_CTRUNC is an error, and both those
    /// that arrived and those the kernel dropped are closed.
    #[test]
    fn truncated_control_data_is_an_error_and_leaks_nothing() {
        let (a, b) = packet_pair().unwrap();
        let pipes: Vec<_> = (0..RECV_FDS + 4)
            .map(|_| crate::process::pipe().unwrap())
            .collect();
        let ws: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        send_fds(&a, b"many", &ws).unwrap();
        let mut buf = [0u8; 8];
        let e = recv_fd(&b, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        for (r, w) in pipes {
            drop(w);
            assert_eq!(read_all(r), b"");
        }
        // The socket still works.
        (&a).write_all(b"next").unwrap();
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fd.is_none()), (&b"next"[..], true));
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

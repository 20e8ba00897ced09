//! Waiting for a descriptor to become readable or writable, with a timeout.
//!
//! popa3d arms a SIGALRM around each read of client input and protects no write, so a
//! client that stops reading holds a process forever (research/popa3d.md §10). Here every
//! read and write on the client connection goes through [`TimedFd`], which never blocks
//! longer than its timeout: the descriptor is polled, and the data is moved with a call
//! that cannot block. No signals, no alarms, nothing global.
//!
//! Uses only ppoll, recvfrom/sendto (sockets) or read/write (anything else), and
//! clock_gettime, which the pre-auth seccomp filter allows; a [`TimedFd`] may be created
//! before confinement and used after it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Waits until `fd` is readable or `timeout` has passed (`None`: no limit). `Ok(false)`
/// means the time ran out. End of file, a hang-up and an error condition count as
/// readable: the read that follows reports them.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLIN, deadline(timeout))
}

/// Waits until `fd` is writable or `timeout` has passed (`None`: no limit). `Ok(false)`
/// means the time ran out. A hang-up or an error condition counts as writable: the write
/// that follows reports it.
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLOUT, deadline(timeout))
}

/// Waits until at least one of `fds` is ready, or `timeout` has passed (`None`: no
/// limit), for the daemon's loop over its listeners, its signalfd and its sessions.
/// Returns, for each descriptor in order, whether it is readable (end of file, hang-up
/// and error conditions count: the read that follows reports them). All `false` means
/// the time ran out or a signal interrupted the wait; the caller just goes round again.
pub fn wait_any_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds, `ts_ptr` is null or
    // points to `ts`, which outlives the call, and a null mask leaves the mask unchanged.
    let rc = unsafe {
        libc::ppoll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if rc == -1 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
        return Ok(vec![false; pfds.len()]);
    }
    let ready = libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    Ok(pfds.iter().map(|p| p.revents & ready != 0).collect())
}

/// `d` for ppoll, capped at the largest `time_t`.
fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// `None` waits forever; so does a timeout too large to add to the clock.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

fn wait_for(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
) -> io::Result<bool> {
    let ready = events | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = remaining.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd, `ts_ptr` is null or points to `ts`, which
        // outlives the call, and a null signal mask leaves the mask unchanged.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
        match rc {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
                // A signal: go round again with whatever time is left.
            }
            0 => {
                // The kernel may wake us a hair early; only report a timeout once the
                // deadline has really passed.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            _ => {
                if pfd.revents & ready != 0 {
                    return Ok(true);
                }
            }
        }
    }
}

/// How a [`TimedFd`] moves bytes without blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Not tried yet.
    Unknown,
    /// recv/send with MSG_DONTWAIT: non-blocking per call, the open file is untouched.
    Socket,
    /// A pipe (or a terminal): read after POLLIN, and write at most PIPE_BUF bytes after
    /// POLLOUT, which a pipe always has room for. Correct as long as no other process
    /// reads or writes the same pipe at the same moment, which popa3d-rs never does.
    Stream,
}

/// A descriptor whose reads and writes give up with [`io::ErrorKind::TimedOut`] after
/// waiting longer than their timeout (`None`: wait forever). The timeout applies to each
/// call: `write_all` of a large buffer to a client that keeps reading slowly takes as
/// long as it takes, but a client that stops reading for a whole timeout ends it.
///
/// For the client connection: in inetd mode descriptors 0 and 1, which may be one socket
/// or two pipes; wrap a duplicate of each (`io::stdin().as_fd().try_clone_to_owned()`).
/// The open file's flags are never changed, so other holders of the same connection (a
/// parent, a later stage) see it exactly as inetd left it. Writes to a socket never raise
/// SIGPIPE; a write to a pipe without reader does unless SIGPIPE is ignored, as Rust's
/// runtime and popa3d both do.
#[derive(Debug)]
pub struct TimedFd {
    fd: OwnedFd,
    kind: Kind,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl TimedFd {
    /// Wraps `fd`. Nothing is checked or changed yet; whether it is a socket is found
    /// out by the first read or write.
    pub fn new(
        fd: OwnedFd,
        read_timeout: Option<Duration>,
        write_timeout: Option<Duration>,
    ) -> TimedFd {
        TimedFd {
            fd,
            kind: Kind::Unknown,
            read_timeout,
            write_timeout,
        }
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write_timeout = timeout;
    }

    /// Gives the descriptor back.
    pub fn into_inner(self) -> OwnedFd {
        self.fd
    }

    /// One attempt that never blocks for a socket (and, after POLLIN, not for a pipe
    /// either). `WouldBlock` means: wait and try again.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        if self.kind != Kind::Stream {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
            let n =
                unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            match result(n) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => self.kind = Kind::Stream,
                r => {
                    self.kind = Kind::Socket;
                    return r;
                }
            }
        }
        if !wait_readable(self.fd.as_fd(), Some(Duration::ZERO))? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // SAFETY: as above.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        result(n)
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        if self.kind != Kind::Stream {
            // MSG_NOSIGNAL: a closed connection is an EPIPE error, never a SIGPIPE.
            let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
            // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
            let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
            match result(n) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => self.kind = Kind::Stream,
                r => {
                    self.kind = Kind::Socket;
                    return r;
                }
            }
        }
        if !wait_writable(self.fd.as_fd(), Some(Duration::ZERO))? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let chunk = &buf[..buf.len().min(libc::PIPE_BUF)];
        // SAFETY: `chunk` is valid for reads of `chunk.len()` bytes for the whole call.
        let n = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        result(n)
    }
}

fn result(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl io::Read for TimedFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = deadline(self.read_timeout);
        loop {
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if !wait_for(self.fd.as_fd(), libc::POLLIN, deadline)? {
                return Err(timed_out("read"));
            }
        }
    }
}

impl io::Write for TimedFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = deadline(self.write_timeout);
        loop {
            match self.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if !wait_for(self.fd.as_fd(), libc::POLLOUT, deadline)? {
                return Err(timed_out("write"));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for TimedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::process::pipe;
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    const SHORT: Duration = Duration::from_millis(200);
    /// Generous upper bound: this is a functional check, not a benchmark.
    const SLACK: Duration = Duration::from_secs(3);

    /// Runs `f` on a thread and fails if it has not finished within a generous bound, so
    /// that a read or write that blocks for good fails the test instead of hanging it.
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(SLACK * 3) {
            Ok(v) => v,
            Err(_) => panic!("blocked for more than {:?}", SLACK * 3),
        }
    }

    fn assert_waited(start: Instant, timeout: Duration) {
        let took = start.elapsed();
        assert!(took >= timeout, "gave up early: {took:?} < {timeout:?}");
        assert!(took < timeout + SLACK, "gave up late: {took:?}");
    }

    #[test]
    fn wait_readable_times_out_then_sees_data_and_hangup() {
        within(wait_readable_times_out_then_sees_data_and_hangup_body);
    }

    fn wait_readable_times_out_then_sees_data_and_hangup_body() {
        let (r, w) = pipe().unwrap();
        let start = Instant::now();
        assert!(!wait_readable(r.as_fd(), Some(SHORT)).unwrap());
        assert_waited(start, SHORT);

        std::fs::File::from(w.try_clone().unwrap())
            .write_all(b"x")
            .unwrap();
        assert!(wait_readable(r.as_fd(), Some(SHORT)).unwrap());
        assert!(wait_readable(r.as_fd(), None).unwrap());

        let (r2, w2) = pipe().unwrap();
        drop(w2); // no writer left: POLLHUP, and read() will report EOF
        assert!(wait_readable(r2.as_fd(), Some(Duration::ZERO)).unwrap());
        drop(w);
    }

    #[test]
    fn wait_writable_on_empty_and_full_pipe() {
        within(wait_writable_on_empty_and_full_pipe_body);
    }

    fn wait_writable_on_empty_and_full_pipe_body() {
        let (r, w) = pipe().unwrap();
        assert!(wait_writable(w.as_fd(), Some(Duration::ZERO)).unwrap());
        fill(&w);
        let start = Instant::now();
        assert!(!wait_writable(w.as_fd(), Some(SHORT)).unwrap());
        assert_waited(start, SHORT);
        drop(r); // no reader left: POLLERR, and write() will report EPIPE
        assert!(wait_writable(w.as_fd(), Some(Duration::ZERO)).unwrap());
    }

    /// Fills a pipe through a TimedFd with a zero timeout, which also exercises the
    /// chunked pipe write path.
    fn fill(w: &OwnedFd) {
        let mut t = TimedFd::new(w.try_clone().unwrap(), None, Some(Duration::ZERO));
        let block = [b'x'; 65536];
        loop {
            match t.write(&block) {
                Ok(n) => assert!(n > 0 && n <= libc::PIPE_BUF),
                Err(e) if e.kind() == ErrorKind::TimedOut => return,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn pipe_read_times_out() {
        within(pipe_read_times_out_body);
    }

    fn pipe_read_times_out_body() {
        let (r, _w) = pipe().unwrap();
        let mut t = TimedFd::new(r, Some(SHORT), None);
        let start = Instant::now();
        let err = t.read(&mut [0; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_waited(start, SHORT);
    }

    #[test]
    fn pipe_write_to_full_pipe_times_out() {
        within(pipe_write_to_full_pipe_times_out_body);
    }

    fn pipe_write_to_full_pipe_times_out_body() {
        let (_r, w) = pipe().unwrap();
        fill(&w);
        let mut t = TimedFd::new(w, None, Some(SHORT));
        let start = Instant::now();
        let err = t.write_all(b"more").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_waited(start, SHORT);
    }

    #[test]
    fn pipe_round_trip_eof_and_epipe() {
        within(pipe_round_trip_eof_and_epipe_body);
    }

    fn pipe_round_trip_eof_and_epipe_body() {
        let (r, w) = pipe().unwrap();
        let mut tr = TimedFd::new(r, Some(SHORT), None);
        let mut tw = TimedFd::new(w, None, Some(SHORT));
        let big = vec![7u8; 3 * libc::PIPE_BUF + 5];
        let writer = std::thread::spawn(move || {
            tw.write_all(&big).unwrap();
            tw
        });
        let mut got = Vec::new();
        let mut buf = [0; 1000];
        while got.len() < 3 * libc::PIPE_BUF + 5 {
            let n = tr.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.iter().all(|&b| b == 7));
        let tw = writer.join().unwrap();
        drop(tw);
        assert_eq!(tr.read(&mut buf).unwrap(), 0, "EOF once the writer is gone");

        let (r, w) = pipe().unwrap();
        drop(r);
        let mut tw = TimedFd::new(w, None, Some(SHORT));
        assert_eq!(
            tw.write(b"x").unwrap_err().raw_os_error(),
            Some(libc::EPIPE)
        );
    }

    #[test]
    fn socket_round_trip_and_timeouts() {
        within(socket_round_trip_and_timeouts_body);
    }

    fn socket_round_trip_and_timeouts_body() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut ta = TimedFd::new(OwnedFd::from(a), Some(SHORT), Some(SHORT));
        let mut b = b;
        b.write_all(b"USER bob\r\n").unwrap();
        let mut buf = [0; 64];
        let n = ta.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"USER bob\r\n");
        ta.write_all(b"+OK\r\n").unwrap();
        let mut reply = [0; 5];
        b.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+OK\r\n");
        assert_eq!(ta.kind, Kind::Socket);

        // Nothing to read: times out.
        let start = Instant::now();
        assert_eq!(ta.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        assert_waited(start, SHORT);

        // The peer stops reading: writes fill the socket buffer, then one times out.
        let block = [b'y'; 65536];
        let start = Instant::now();
        let err = loop {
            match ta.write(&block) {
                Ok(_) => {}
                Err(e) => break e,
            }
            assert!(start.elapsed() < SLACK, "the socket buffer never filled");
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut);

        // The peer goes away with our bytes unread: the read reports a reset (or EOF),
        // and the write an error instead of SIGPIPE.
        drop(b);
        let start = Instant::now();
        match ta.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected EOF or a reset, got {other:?}"),
        }
        assert!(
            start.elapsed() < SHORT,
            "a closed peer must not wait for the timeout"
        );
        assert!(ta.write(b"x").is_err());
    }

    #[test]
    fn no_timeout_waits_for_data() {
        within(no_timeout_waits_for_data_body);
    }

    fn no_timeout_waits_for_data_body() {
        let (r, w) = pipe().unwrap();
        let mut t = TimedFd::new(r, None, None);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(SHORT);
            std::fs::File::from(w).write_all(b"late").unwrap();
        });
        let mut buf = [0; 8];
        let n = t.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
        writer.join().unwrap();
    }

    extern "C" fn ignore_signal(_: libc::c_int) {}

    /// A signal that interrupts ppoll must neither end the wait early nor restart it with
    /// the whole timeout again.
    #[test]
    fn interrupted_wait_keeps_its_deadline() {
        // SAFETY: plain data; every field we rely on is set below.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installs a handler that does nothing, which is async-signal-safe; no
        // SA_RESTART, so ppoll really returns EINTR. SIGUSR2 is used by nothing else in
        // this test binary.
        let rc = unsafe { libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()) };
        assert_eq!(rc, 0);
        let (r, _w) = pipe().unwrap();
        let timeout = Duration::from_millis(600);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            tx.send(unsafe { libc::pthread_self() }).unwrap();
            let start = Instant::now();
            let ready = wait_readable(r.as_fd(), Some(timeout)).unwrap();
            (ready, start.elapsed())
        });
        let thread = rx.recv().unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: the waiter thread is still alive: it sleeps until `timeout`, well
            // after these three signals, and we join it only below.
            unsafe { libc::pthread_kill(thread, libc::SIGUSR2) };
        }
        let (ready, took) = waiter.join().unwrap();
        assert!(!ready);
        assert!(took >= timeout, "interrupted wait ended early: {took:?}");
        assert!(took < timeout + SLACK, "{took:?}");
    }
}

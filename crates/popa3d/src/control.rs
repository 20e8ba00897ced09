//! The channel between the standalone daemon and one of its sessions: a
//! `SOCK_SEQPACKET` pair, one end kept by the daemon, the other by the session's root
//! process (never by the pre-auth process, the verifier or the mail user's process).
//!
//! The daemon needs to hear from a session twice at most: the client's real address
//! when a trusted proxy sent a PROXY header (so that limits apply to the client, not to
//! the proxy), and how the login went (so that failures from one source are answered
//! more and more slowly). Each question gets one answer. The daemon never waits on a
//! session: it reads only when poll says a message is there, and answers at once.
//!
//! Messages are a tag byte and a fixed payload; anything else is refused. The session
//! is our own code running as root, but the daemon still treats what it reads as input
//! to check.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The longest message in either direction.
pub const MAX_MESSAGE: usize = 17;

/// How long a session waits for the daemon's answer. The daemon answers as soon as it
/// reads, so only a daemon that is gone (or stopped in a debugger) makes this run out.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// From a session to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToDaemon {
    /// The PROXY header named this client. Answered with [`ToSession::Admit`] or
    /// [`ToSession::Refuse`].
    Source(IpAddr),
    /// The password check failed. Answered with [`ToSession::Delay`].
    LoginFailed,
    /// The login succeeded. Not answered.
    LoginPassed,
}

/// From the daemon to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToSession {
    /// Go on.
    Admit,
    /// A limit is reached for this client: close the connection without a word.
    Refuse,
    /// Wait this long before answering the failed login.
    Delay(Duration),
}

/// Why a message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadMessage(pub &'static str);

impl std::fmt::Display for BadMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl ToDaemon {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToDaemon::Source(IpAddr::V4(a)) => [&b"4"[..], &a.octets()].concat(),
            ToDaemon::Source(IpAddr::V6(a)) => [&b"6"[..], &a.octets()].concat(),
            ToDaemon::LoginFailed => b"F".to_vec(),
            ToDaemon::LoginPassed => b"P".to_vec(),
        }
    }

    pub fn decode(m: &[u8]) -> Result<ToDaemon, BadMessage> {
        match m.split_first() {
            Some((b'4', rest)) => <[u8; 4]>::try_from(rest)
                .map(|a| ToDaemon::Source(IpAddr::V4(Ipv4Addr::from(a))))
                .map_err(|_| BadMessage("bad IPv4 source")),
            Some((b'6', rest)) => <[u8; 16]>::try_from(rest)
                .map(|a| ToDaemon::Source(IpAddr::V6(Ipv6Addr::from(a))))
                .map_err(|_| BadMessage("bad IPv6 source")),
            Some((b'F', [])) => Ok(ToDaemon::LoginFailed),
            Some((b'P', [])) => Ok(ToDaemon::LoginPassed),
            _ => Err(BadMessage("unknown message")),
        }
    }
}

impl ToSession {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToSession::Admit => b"A".to_vec(),
            ToSession::Refuse => b"R".to_vec(),
            ToSession::Delay(d) => {
                let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
                [&b"D"[..], &ms.to_be_bytes()].concat()
            }
        }
    }

    pub fn decode(m: &[u8]) -> Result<ToSession, BadMessage> {
        match m.split_first() {
            Some((b'A', [])) => Ok(ToSession::Admit),
            Some((b'R', [])) => Ok(ToSession::Refuse),
            Some((b'D', rest)) => <[u8; 4]>::try_from(rest)
                .map(|ms| ToSession::Delay(Duration::from_millis(u32::from_be_bytes(ms).into())))
                .map_err(|_| BadMessage("bad delay")),
            _ => Err(BadMessage("unknown message")),
        }
    }
}

/// The session's end of the channel.
#[derive(Debug)]
pub struct SessionEnd {
    socket: UnixStream,
}

impl SessionEnd {
    pub fn new(socket: UnixStream) -> SessionEnd {
        SessionEnd { socket }
    }

    /// The descriptor, to keep it open when closing inherited descriptors.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    /// Sends `m` without waiting for an answer.
    pub fn tell(&mut self, m: ToDaemon) -> io::Result<()> {
        self.socket.write_all(&m.encode())
    }

    /// Sends `m` and waits up to [`ANSWER_TIMEOUT`] for the answer.
    pub fn ask(&mut self, m: ToDaemon) -> io::Result<ToSession> {
        self.tell(m)?;
        self.socket.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let mut buf = [0u8; MAX_MESSAGE + 1];
        let n = self.socket.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the channel",
            ));
        }
        ToSession::decode(buf.get(..n).unwrap_or_default())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for m in [
            ToDaemon::Source("192.0.2.1".parse().unwrap()),
            ToDaemon::Source("2001:db8::7".parse().unwrap()),
            ToDaemon::LoginFailed,
            ToDaemon::LoginPassed,
        ] {
            assert!(m.encode().len() <= MAX_MESSAGE);
            assert_eq!(ToDaemon::decode(&m.encode()), Ok(m));
        }
        for m in [
            ToSession::Admit,
            ToSession::Refuse,
            ToSession::Delay(Duration::from_millis(15_000)),
        ] {
            assert_eq!(ToSession::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            &b""[..],
            b"4\x01\x02\x03",
            b"6\x00",
            b"FF",
            b"P\n",
            b"X",
            b"4\x01\x02\x03\x04\x05",
        ] {
            assert!(ToDaemon::decode(bad).is_err(), "{bad:?}");
        }
        for bad in [&b""[..], b"AA", b"D\x00\x00\x01", b"R ", b"Z"] {
            assert!(ToSession::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ask_gets_the_answer_and_reports_a_closed_daemon() {
        let (a, mut b) = pop3_sys::net::packet_pair().unwrap();
        let mut session = SessionEnd::new(a);
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 32];
            let n = b.read(&mut buf).unwrap();
            assert_eq!(ToDaemon::decode(&buf[..n]), Ok(ToDaemon::LoginFailed));
            b.write_all(&ToSession::Delay(Duration::from_secs(2)).encode())
                .unwrap();
            let n = b.read(&mut buf).unwrap();
            assert_eq!(ToDaemon::decode(&buf[..n]), Ok(ToDaemon::LoginPassed));
            drop(b);
        });
        assert_eq!(
            session.ask(ToDaemon::LoginFailed).unwrap(),
            ToSession::Delay(Duration::from_secs(2))
        );
        session.tell(ToDaemon::LoginPassed).unwrap();
        t.join().unwrap();
        assert!(session.ask(ToDaemon::LoginFailed).is_err());
    }
}

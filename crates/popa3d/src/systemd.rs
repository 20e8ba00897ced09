//! The two systemd interfaces the daemon uses, without libsystemd: readiness
//! notification (sd_notify(3)) and socket activation (sd_listen_fds(3)). Both are plain
//! protocols over the environment and a datagram socket, so std is enough and no C
//! library is loaded into a process that runs as root.
//!
//! This module only parses and sends. Adopting the inherited descriptors (checking that
//! each is a listening TCP socket, setting close-on-exec) is privileged plumbing and
//! lives in pop3-sys.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use crate::syslog::escape;

/// The first inherited descriptor: sd_listen_fds(3)'s `SD_LISTEN_FDS_START`.
pub const LISTEN_FDS_START: i32 = 3;

/// The most descriptors accepted from `LISTEN_FDS`. systemd sets no such limit, but a
/// POP3 server with more than a thousand listening sockets is a broken environment,
/// not a configuration.
pub const MAX_LISTEN_FDS: u32 = 1024;

/// The longest `FileDescriptorName=`, as systemd.socket(5) limits it.
pub const MAX_FD_NAME_LEN: usize = 255;

/// How much of a bad environment value an error message quotes.
const QUOTE_MAX: usize = 64;

/// Sends `state` (e.g. `"READY=1\nSTATUS=listening on 127.0.0.1:110"`) to
/// `$NOTIFY_SOCKET` as one datagram. `Ok(false)` when `NOTIFY_SOCKET` is unset: not
/// started by systemd with `Type=notify`, nothing to tell.
///
/// The variable is left in the environment; a daemon that forks sessions should clear it
/// for them (with `NotifyAccess=main` systemd ignores their messages anyway).
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        None => Ok(false),
        Some(socket) => notify_to(&socket, state).map(|()| true),
    }
}

/// Sends `state` as one datagram to `socket`, written as systemd writes
/// `NOTIFY_SOCKET`: an absolute path (`/run/systemd/notify`) or an abstract name
/// (`@name`). A relative path, an empty value or another address family (newer systemd
/// may pass `vsock:...` to virtual machines) is an `InvalidInput` error. The receiver
/// learns our pid from the socket itself (`SO_PASSCRED`), so no credentials are sent.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    if state.is_empty() {
        return Err(invalid("an empty systemd notification".to_owned()));
    }
    let bytes = socket.as_bytes();
    let addr = match bytes.split_first() {
        None => return Err(invalid("NOTIFY_SOCKET is set but empty".to_owned())),
        Some((b'/', _)) => SocketAddr::from_pathname(Path::new(socket)),
        Some((b'@', [])) => {
            return Err(invalid(
                "NOTIFY_SOCKET=\"@\": an abstract socket needs a name after the @".to_owned(),
            ))
        }
        Some((b'@', name)) => SocketAddr::from_abstract_name(name),
        Some(_) => {
            return Err(invalid(format!(
                "NOTIFY_SOCKET=\"{}\": neither an absolute path nor an abstract socket name \
                 (@name)",
                escape(bytes, QUOTE_MAX)
            )))
        }
    }
    .map_err(|e| {
        invalid(format!(
            "NOTIFY_SOCKET=\"{}\": {e}",
            escape(bytes, QUOTE_MAX)
        ))
    })?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        // Datagrams go whole or not at all; a short count would be a kernel surprise.
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "systemd notification cut to {sent} of {} bytes",
                state.len()
            ),
        ));
    }
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One socket passed by systemd (`Accept=no`): its descriptor number and its
/// `FileDescriptorName=` if `LISTEN_FDNAMES` gave one.
///
/// systemd always sets a name: without `FileDescriptorName=` it is the socket unit's
/// name (`popa3d.socket`). An empty name counts as none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inherited {
    /// The descriptor: `LISTEN_FDS_START` for the first, then consecutive.
    pub fd: i32,
    /// Its `FileDescriptorName=`, printable ASCII without `:`, at most 255 bytes.
    pub name: Option<String>,
}

/// What is wrong with the socket-activation variables. The values are quoted escaped
/// and cut short, so a message is one printable line whatever the environment holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenFdsError {
    /// `LISTEN_PID` is not a process id.
    Pid(String),
    /// `LISTEN_FDS` is not a count from 1 to [`MAX_LISTEN_FDS`].
    Count(String),
    /// `LISTEN_FDNAMES` does not have one name per descriptor.
    NameCount {
        /// The descriptors, from `LISTEN_FDS`.
        fds: u32,
        /// The names, `:`-separated.
        names: usize,
    },
    /// A name that systemd would not have set.
    Name {
        /// Which one, from 1.
        position: usize,
        /// The name, escaped.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl fmt::Display for ListenFdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenFdsError::Pid(v) => write!(
                f,
                "socket activation: LISTEN_PID=\"{v}\" is not a process id"
            ),
            ListenFdsError::Count(v) => write!(
                f,
                "socket activation: LISTEN_FDS=\"{v}\" is not a number of sockets from 1 to \
                 {MAX_LISTEN_FDS}"
            ),
            ListenFdsError::NameCount { fds, names } => write!(
                f,
                "socket activation: LISTEN_FDNAMES has {names} names for LISTEN_FDS={fds} \
                 sockets"
            ),
            ListenFdsError::Name {
                position,
                name,
                why,
            } => write!(
                f,
                "socket activation: name {position} in LISTEN_FDNAMES, \"{name}\", {why}"
            ),
        }
    }
}

impl std::error::Error for ListenFdsError {}

/// The sockets systemd passed to this process, from the three variables of
/// sd_listen_fds(3), given explicitly so that the rules can be tested without touching
/// the environment:
///
/// - `LISTEN_FDS` unset: no sockets, `Ok(None)`.
/// - `LISTEN_PID` unset or another process's id: the variables were meant for someone
///   else (a parent that did not clear them) and are ignored, `Ok(None)`, as
///   sd_listen_fds(3) does. Only then is `LISTEN_FDS` read, so another process's
///   variables are never an error of ours.
/// - Otherwise descriptors `3 .. 3 + LISTEN_FDS`, named in order by the `:`-separated
///   `LISTEN_FDNAMES` when it is set.
///
/// Anything malformed is an error rather than "not activated": a daemon that ignored a
/// garbled `LISTEN_FDS` would bind port 110 itself while systemd holds it.
pub fn listen_fds_from(
    pid: Option<&OsStr>,
    fds: Option<&OsStr>,
    names: Option<&OsStr>,
    my_pid: u32,
) -> Result<Option<Vec<Inherited>>, ListenFdsError> {
    let Some(fds) = fds else {
        return Ok(None);
    };
    let Some(pid) = pid else {
        return Ok(None);
    };
    let pid_value = decimal(pid.as_bytes())
        .filter(|&p| p >= 1 && p <= i32::MAX as u64)
        .ok_or_else(|| ListenFdsError::Pid(escape(pid.as_bytes(), QUOTE_MAX)))?;
    if pid_value != u64::from(my_pid) {
        return Ok(None);
    }
    let count = decimal(fds.as_bytes())
        .filter(|&n| n >= 1 && n <= u64::from(MAX_LISTEN_FDS))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ListenFdsError::Count(escape(fds.as_bytes(), QUOTE_MAX)))?;

    let mut out: Vec<Inherited> = (0..count)
        .map(|i| Inherited {
            // count <= MAX_LISTEN_FDS, so this cannot overflow.
            fd: LISTEN_FDS_START.saturating_add_unsigned(i),
            name: None,
        })
        .collect();
    if let Some(names) = names {
        let given: Vec<&[u8]> = names.as_bytes().split(|&b| b == b':').collect();
        if given.len() != out.len() {
            return Err(ListenFdsError::NameCount {
                fds: count,
                names: given.len(),
            });
        }
        for (i, (slot, name)) in out.iter_mut().zip(given).enumerate() {
            slot.name = fd_name(i + 1, name)?;
        }
    }
    Ok(Some(out))
}

/// One `LISTEN_FDNAMES` entry checked against systemd.socket(5)'s rule for
/// `FileDescriptorName=`: ASCII without control characters (and without `:`, the
/// separator), at most 255 bytes. Empty means no name.
fn fd_name(position: usize, name: &[u8]) -> Result<Option<String>, ListenFdsError> {
    let bad = |why| ListenFdsError::Name {
        position,
        name: escape(name, QUOTE_MAX),
        why,
    };
    if name.len() > MAX_FD_NAME_LEN {
        return Err(bad("is longer than 255 bytes"));
    }
    if !name.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad("is not printable ASCII"));
    }
    if name.is_empty() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(name).into_owned()))
}

/// A non-empty run of ASCII digits as a number; `u64::MAX` when it does not fit (still
/// out of every range checked above). No sign, space or other character is allowed.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s.iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .unwrap_or(u64::MAX),
    )
}

/// [`listen_fds_from`] on this process's environment, which it then clears of
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` whatever the outcome, as
/// sd_listen_fds(3) does with `unset_environment` set: sessions forked later must not
/// take the daemon's sockets for their own. Changing the environment is only sound
/// while the process has one thread, so call it first thing at start-up.
pub fn listen_fds(my_pid: u32) -> Result<Option<Vec<Inherited>>, ListenFdsError> {
    let pid = std::env::var_os("LISTEN_PID");
    let fds = std::env::var_os("LISTEN_FDS");
    let names = std::env::var_os("LISTEN_FDNAMES");
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    listen_fds_from(pid.as_deref(), fds.as_deref(), names.as_deref(), my_pid)
}

/// Whether systemd started us in a way that implies staying in the foreground:
/// `NOTIFY_SOCKET` set (`Type=notify`), or `LISTEN_FDS` set for this very process
/// (socket activation; another process's `LISTEN_PID` does not count, as in
/// [`listen_fds_from`]). Call it before [`listen_fds`], which clears `LISTEN_FDS`.
pub fn under_systemd() -> bool {
    under_systemd_from(
        std::env::var_os("NOTIFY_SOCKET").as_deref(),
        std::env::var_os("LISTEN_PID").as_deref(),
        std::env::var_os("LISTEN_FDS").as_deref(),
        std::process::id(),
    )
}

fn under_systemd_from(
    notify: Option<&OsStr>,
    listen_pid: Option<&OsStr>,
    listen_fds: Option<&OsStr>,
    my_pid: u32,
) -> bool {
    let for_us = listen_pid
        .and_then(|p| decimal(p.as_bytes()))
        .is_some_and(|p| p == u64::from(my_pid));
    notify.is_some() || (listen_fds.is_some() && for_us)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Serialises the tests that change the process environment.
    static ENV: Mutex<()> = Mutex::new(());

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    /// A fresh private directory under the system's temporary directory.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "popa3d-systemd-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn receive(sock: &UnixDatagram) -> Vec<u8> {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn notify_to_a_path_sends_one_datagram() {
        let dir = TempDir::new("path");
        let path = dir.0.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let state = "READY=1\nSTATUS=listening on 127.0.0.1:110";
        notify_to(path.as_os_str(), state).unwrap();
        notify_to(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(receive(&rx), state.as_bytes());
        assert_eq!(receive(&rx), b"STOPPING=1");
    }

    #[test]
    fn notify_to_an_abstract_name() {
        let name = format!("popa3d-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(os(&format!("@{name}")), "READY=1").unwrap();
        assert_eq!(receive(&rx), b"READY=1");
    }

    #[test]
    fn notify_to_refuses_what_is_not_a_socket_address() {
        for bad in ["", "run/systemd/notify", "notify", "@", "vsock:2:1234"] {
            let e = notify_to(os(bad), "READY=1").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {e}");
            assert!(e.to_string().contains("NOTIFY_SOCKET"), "{bad:?}: {e}");
        }
        let e = notify_to(os("run/notify"), "READY=1").unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
        // Too long for sockaddr_un.
        let long = format!("/{}", "x".repeat(200));
        let e = notify_to(os(&long), "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        // A path nobody listens on: the send fails, not silently succeeds.
        let dir = TempDir::new("absent");
        assert!(notify_to(dir.0.join("nobody").as_os_str(), "READY=1").is_err());
        // Nothing to say is a caller's mistake.
        let rx_path = dir.0.join("rx");
        let _rx = UnixDatagram::bind(&rx_path).unwrap();
        let e = notify_to(rx_path.as_os_str(), "").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn notify_to_escapes_the_value_it_quotes() {
        let e = notify_to(os("rel\n\x1b[1m"), "READY=1").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("rel\\x0a\\x1b[1m"), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains('\x1b'), "{msg}");
    }

    fn fds(list: &[(i32, Option<&str>)]) -> Vec<Inherited> {
        list.iter()
            .map(|&(fd, name)| Inherited {
                fd,
                name: name.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn listen_fds_for_us() {
        let got = listen_fds_from(Some(os("4242")), Some(os("2")), None, 4242).unwrap();
        assert_eq!(got, Some(fds(&[(3, None), (4, None)])));
        let got = listen_fds_from(
            Some(os("4242")),
            Some(os("3")),
            Some(os("pop3:popa3d.socket:")),
            4242,
        )
        .unwrap();
        assert_eq!(
            got,
            Some(fds(&[
                (3, Some("pop3")),
                (4, Some("popa3d.socket")),
                (5, None)
            ]))
        );
        let got = listen_fds_from(Some(os("7")), Some(os("1")), Some(os("a b ~!")), 7).unwrap();
        assert_eq!(got, Some(fds(&[(3, Some("a b ~!"))])));
        let names = vec!["n"; 1024].join(":");
        let got = listen_fds_from(Some(os("7")), Some(os("1024")), Some(os(&names)), 7)
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1024);
        assert_eq!(got[1023].fd, 1026);
        let name = "x".repeat(255);
        let got = listen_fds_from(Some(os("7")), Some(os("1")), Some(os(&name)), 7).unwrap();
        assert_eq!(got, Some(fds(&[(3, Some(&name))])));
    }

    #[test]
    fn listen_fds_not_for_us() {
        // Not socket-activated at all.
        assert_eq!(listen_fds_from(None, None, None, 1).unwrap(), None);
        assert_eq!(
            listen_fds_from(Some(os("1")), None, Some(os("x")), 1).unwrap(),
            None
        );
        // Meant for another process: ignored, even when the rest is garbage.
        assert_eq!(
            listen_fds_from(Some(os("4243")), Some(os("2")), None, 4242).unwrap(),
            None
        );
        assert_eq!(
            listen_fds_from(Some(os("4243")), Some(os("x")), Some(os(":::")), 4242).unwrap(),
            None
        );
        // No LISTEN_PID: sd_listen_fds(3) does not take the sockets either.
        assert_eq!(
            listen_fds_from(None, Some(os("2")), None, 4242).unwrap(),
            None
        );
    }

    #[test]
    fn listen_fds_garbage_is_an_error() {
        for pid in [
            "",
            "x",
            "-1",
            "+42",
            " 42",
            "42 ",
            "0",
            "2147483648",
            "99999999999999999999999",
        ] {
            let e = listen_fds_from(Some(os(pid)), Some(os("1")), None, 42).unwrap_err();
            assert!(matches!(e, ListenFdsError::Pid(_)), "{pid:?}: {e:?}");
            assert!(e.to_string().contains("LISTEN_PID"), "{e}");
        }
        for count in [
            "",
            "x",
            "0",
            "-1",
            "+1",
            " 1",
            "1x",
            "1025",
            "4294967297",
            "99999999999999999999999",
        ] {
            let e = listen_fds_from(Some(os("42")), Some(os(count)), None, 42).unwrap_err();
            assert_eq!(e, ListenFdsError::Count(count.to_owned()), "{count:?}");
            assert!(e.to_string().contains("from 1 to 1024"), "{e}");
        }
        let e = listen_fds_from(Some(os("42")), Some(os("2")), Some(os("pop3")), 42).unwrap_err();
        assert_eq!(e, ListenFdsError::NameCount { fds: 2, names: 1 });
        assert_eq!(
            e.to_string(),
            "socket activation: LISTEN_FDNAMES has 1 names for LISTEN_FDS=2 sockets"
        );
        let e = listen_fds_from(Some(os("42")), Some(os("1")), Some(os("a:b")), 42).unwrap_err();
        assert_eq!(e, ListenFdsError::NameCount { fds: 1, names: 2 });
        let e = listen_fds_from(Some(os("42")), Some(os("2")), Some(os("")), 42).unwrap_err();
        assert_eq!(e, ListenFdsError::NameCount { fds: 2, names: 1 });

        for (name, why) in [
            ("tab\there", "not printable ASCII"),
            ("nl\n", "not printable ASCII"),
            ("del\x7f", "not printable ASCII"),
            ("caf\u{e9}", "not printable ASCII"),
        ] {
            let names = format!("ok:{name}");
            let e =
                listen_fds_from(Some(os("42")), Some(os("2")), Some(os(&names)), 42).unwrap_err();
            let ListenFdsError::Name { position, .. } = &e else {
                panic!("{name:?}: {e:?}");
            };
            assert_eq!(*position, 2);
            let msg = e.to_string();
            assert!(msg.contains(why), "{msg}");
            assert!(msg.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{msg:?}");
        }
        let long = "x".repeat(256);
        let e = listen_fds_from(Some(os("42")), Some(os("1")), Some(os(&long)), 42).unwrap_err();
        assert!(e.to_string().contains("longer than 255"), "{e}");
        // Quoted values are cut short.
        assert!(e.to_string().len() < 200, "{e}");

        // Not UTF-8 at all.
        use std::os::unix::ffi::OsStringExt;
        let raw = OsString::from_vec(b"\xff\xfe".to_vec());
        let e = listen_fds_from(Some(os("42")), Some(os("1")), Some(&raw), 42).unwrap_err();
        assert!(e.to_string().contains("\\xff\\xfe"), "{e}");
        let e = listen_fds_from(Some(&raw), Some(os("1")), None, 42).unwrap_err();
        assert!(matches!(e, ListenFdsError::Pid(_)));
    }

    #[test]
    fn under_systemd_rules() {
        assert!(!under_systemd_from(None, None, None, 5));
        assert!(under_systemd_from(
            Some(os("/run/systemd/notify")),
            None,
            None,
            5
        ));
        assert!(under_systemd_from(None, Some(os("5")), Some(os("1")), 5));
        assert!(!under_systemd_from(None, Some(os("6")), Some(os("1")), 5));
        assert!(!under_systemd_from(None, None, Some(os("1")), 5));
        assert!(!under_systemd_from(None, Some(os("5")), None, 5));
    }

    /// The environment-reading wrappers, in one test under the lock: the process
    /// environment is shared by every test thread.
    #[test]
    fn environment_wrappers() {
        let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let vars = [
            "NOTIFY_SOCKET",
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
        ];
        let saved: Vec<Option<OsString>> = vars.iter().map(std::env::var_os).collect();
        for v in vars {
            std::env::remove_var(v);
        }
        let me = std::process::id();

        assert!(!notify("READY=1").unwrap());
        assert!(!under_systemd());
        assert_eq!(listen_fds(me).unwrap(), None);

        let dir = TempDir::new("env");
        let path = dir.0.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(under_systemd());
        assert!(notify("READY=1\nSTATUS=ok").unwrap());
        assert_eq!(receive(&rx), b"READY=1\nSTATUS=ok");
        std::env::set_var("NOTIFY_SOCKET", "relative");
        assert_eq!(
            notify("READY=1").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        std::env::remove_var("NOTIFY_SOCKET");

        std::env::set_var("LISTEN_PID", me.to_string());
        std::env::set_var("LISTEN_FDS", "2");
        std::env::set_var("LISTEN_FDNAMES", "pop3:pop3s");
        assert!(under_systemd());
        assert_eq!(
            listen_fds(me).unwrap(),
            Some(fds(&[(3, Some("pop3")), (4, Some("pop3s"))]))
        );
        for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            assert_eq!(std::env::var_os(v), None, "{v} left in the environment");
        }
        assert!(!under_systemd());
        assert_eq!(listen_fds(me).unwrap(), None);

        // Cleared even when they are garbage, and even when meant for another process.
        std::env::set_var("LISTEN_PID", me.to_string());
        std::env::set_var("LISTEN_FDS", "0");
        assert_eq!(
            listen_fds(me).unwrap_err(),
            ListenFdsError::Count("0".into())
        );
        assert_eq!(std::env::var_os("LISTEN_FDS"), None);
        std::env::set_var("LISTEN_PID", (me + 1).to_string());
        std::env::set_var("LISTEN_FDS", "1");
        assert!(!under_systemd());
        assert_eq!(listen_fds(me).unwrap(), None);
        assert_eq!(std::env::var_os("LISTEN_PID"), None);

        for (v, value) in vars.iter().zip(saved) {
            match value {
                Some(value) => std::env::set_var(v, value),
                None => std::env::remove_var(v),
            }
        }
    }
}

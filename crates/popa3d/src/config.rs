//! The configuration file (`popa3d -c FILE`), in TOML. docs/configuration.md documents
//! every setting.
//!
//! popa3d has no configuration file: everything is fixed at compile time in `params.h`
//! (research/popa3d.md §1). Every setting here is optional and defaults to what popa3d
//! does, so no file is needed and an empty file means the defaults.
//!
//! The file is read as root, before anything else happens, and everything in it is
//! checked here: unknown keys, wrong types, relative paths and out-of-range numbers are
//! errors that name the file and line, so that a typo stops the server at start-up
//! instead of silently meaning a default. This module never panics on any input, and
//! never reads more than [`MAX_FILE_SIZE`] bytes.
//!
//! Settings of the whole server are top-level keys; each address the standalone daemon
//! (`-D`) listens on is a `[[listener]]` table with its own settings (the PROXY protocol
//! now, TLS next). Inetd mode reads the same file and ignores the daemon's settings.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::flood::mask;

/// A configuration file larger than this is refused (a real one is under 1 KiB; the
/// limit only stops `-c /dev/zero` from eating memory).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// The longest `timeout` or `write_timeout` accepted, in seconds (one day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// RFC 1939 §3: an idle timer "MUST be of at least 10 minutes' duration".
pub const RFC1939_MIN_TIMEOUT_SECS: u64 = 600;

/// The largest `max_sessions`: the daemon scans its session table on every connection
/// and holds a descriptor per session.
pub const MAX_SESSIONS: u32 = 65_536;

/// The most `[[listener]]` tables (and sockets passed by systemd).
pub const MAX_LISTENERS: usize = 64;

/// The standalone daemon's settings (top-level keys). [`Daemon::default`] is popa3d's
/// flood control (`params.h`: MAX_SESSIONS 500, MAX_SESSIONS_PER_SOURCE 50, MIN_DELAY
/// 10 s) plus what popa3d lacks, at values that never refuse what popa3d would accept
/// from one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// `max_sessions`: sessions in total, counted while running and for `flood_window`
    /// after they start. Default 500.
    pub max_sessions: u32,
    /// `max_per_source`: the same, per client address. Default 50.
    pub max_per_source: u32,
    /// `max_per_network`: the same, per IPv4 /`network_prefix_ipv4` and IPv6
    /// /`network_prefix_ipv6`. Default 100.
    pub max_per_network: u32,
    /// `network_prefix_ipv4`: default 24.
    pub network_prefix_ipv4: u8,
    /// `network_prefix_ipv6`: default 64 (one site or host: a host can use any address
    /// in its /64).
    pub network_prefix_ipv6: u8,
    /// `flood_window`: default 10 s.
    pub flood_window: Duration,
    /// `login_failure_delay`: the wait before the `-ERR` of the first failed login from a
    /// source; it doubles with each further failure from that source. 0 turns it off.
    /// Default 1 s.
    pub login_failure_delay: Duration,
    /// `login_failure_delay_max`: the cap of that delay. Default 15 s.
    pub login_failure_delay_max: Duration,
    /// `shutdown_timeout`: after SIGTERM, how long running sessions may go on before
    /// they are sent SIGTERM. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for Daemon {
    fn default() -> Daemon {
        Daemon {
            max_sessions: 500,
            max_per_source: 50,
            max_per_network: 100,
            network_prefix_ipv4: 24,
            network_prefix_ipv6: 64,
            flood_window: Duration::from_secs(10),
            login_failure_delay: Duration::from_secs(1),
            login_failure_delay_max: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// An address or network in `proxy_trusted`: `127.0.0.1`, `10.0.0.0/8`, `::1`,
/// `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is inside. An IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == mask(self.addr, self.prefix)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether and how a connection uses TLS (`tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// `"none"`: plain POP3, as popa3d. The default.
    None,
    /// `"stls"`: plain POP3 that offers STLS (RFC 2595), usually on port 110.
    Stls,
    /// `"implicit"`: TLS from the first byte (RFC 8314), usually on port 995.
    Implicit,
}

impl TlsMode {
    /// The spelling in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Stls => "stls",
            TlsMode::Implicit => "implicit",
        }
    }
}

/// Where USER/PASS and AUTH PLAIN are accepted on a connection that is not under TLS
/// (`plaintext_login`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaintextLogin {
    /// `"always"`: popa3d's behaviour; the default without TLS.
    Always,
    /// `"loopback"`: only from 127.0.0.0/8 and ::1; the default with TLS (as Dovecot's
    /// `disable_plaintext_auth`).
    Loopback,
    /// `"never"`: only under TLS.
    Never,
}

impl PlaintextLogin {
    /// The spelling in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaintextLogin::Always => "always",
            PlaintextLogin::Loopback => "loopback",
            PlaintextLogin::Never => "never",
        }
    }
}

/// The TLS settings of a listener, or of inetd mode (the top-level keys, which are also
/// every listener's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `tls`. Default [`TlsMode::None`].
    pub mode: TlsMode,
    /// `tls_cert`: the certificate chain (PEM, leaf first). Required with TLS.
    pub cert: Option<PathBuf>,
    /// `tls_key`: the private key (PEM). Required with TLS. Only the key holder process
    /// ever opens it (docs/privsep.md).
    pub key: Option<PathBuf>,
    /// `plaintext_login`. Default [`PlaintextLogin::Always`] without TLS,
    /// [`PlaintextLogin::Loopback`] with it.
    pub plaintext_login: PlaintextLogin,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            mode: TlsMode::None,
            cert: None,
            key: None,
            plaintext_login: PlaintextLogin::Always,
        }
    }
}

impl Tls {
    /// The certificate and key files, when TLS is on (checked at load: both are set).
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (self.mode, &self.cert, &self.key) {
            (TlsMode::None, _, _) => None,
            (_, Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }

    /// Whether a plaintext login from `peer` is accepted on a connection not (yet) under
    /// TLS. An unknown peer (not a TCP socket) is not loopback.
    pub fn allows_plaintext_login(&self, peer: Option<IpAddr>) -> bool {
        match self.plaintext_login {
            PlaintextLogin::Always => true,
            PlaintextLogin::Never => false,
            PlaintextLogin::Loopback => peer.is_some_and(|ip| ip.to_canonical().is_loopback()),
        }
    }
}

/// One `[[listener]]` table: an address the daemon accepts connections on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// `address`: `"0.0.0.0:110"`, `"[::1]:1110"`. Required.
    pub address: SocketAddr,
    /// `name`: matches systemd's `FileDescriptorName=` when sockets are passed in.
    pub name: Option<String>,
    /// `backlog`: listen(2)'s backlog. Default 1024 (popa3d: 5).
    pub backlog: u32,
    /// `proxy_protocol`: every connection must begin with a PROXY v1 or v2 header from
    /// an address in `proxy_trusted`. Default false.
    pub proxy_protocol: bool,
    /// `proxy_trusted`: who may send that header. Default none.
    pub proxy_trusted: Vec<Network>,
    /// `proxy_timeout`: how long to wait for the header. Default 3 s.
    pub proxy_timeout: Duration,
    /// `tls`, `tls_cert`, `tls_key`, `plaintext_login`: default the top-level keys.
    pub tls: Tls,
}

impl Listener {
    /// A listener on `address` with every other setting at its default.
    pub fn on(address: SocketAddr) -> Listener {
        Listener {
            address,
            name: None,
            backlog: 1024,
            proxy_protocol: false,
            proxy_trusted: Vec::new(),
            proxy_timeout: Duration::from_secs(3),
            tls: Tls::default(),
        }
    }

    /// popa3d's port 110 on IPv4 (all it listens on) and on IPv6: the listeners of a
    /// configuration without `[[listener]]`.
    pub fn defaults() -> Vec<Listener> {
        vec![
            Listener::on(SocketAddr::from(([0, 0, 0, 0], 110))),
            Listener::on(SocketAddr::from(([0u16; 8], 110))),
        ]
    }

    /// Whether `peer` may send a PROXY header here.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.proxy_trusted.iter().any(|n| n.contains(peer))
    }
}

/// How a user's password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// `getspnam` and `crypt`: upstream popa3d's default (`AUTH_SHADOW`).
    Shadow,
    /// PAM, service [`Config::pam_service`]: Debian's build (`AUTH_PAM`).
    Pam,
    /// Virtual users in a Dovecot-style passwd-file, [`Config::passwd_file`].
    PasswdFile,
}

impl AuthKind {
    /// The spelling in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Shadow => "shadow",
            AuthKind::Pam => "pam",
            AuthKind::PasswdFile => "passwd-file",
        }
    }
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server's settings. [`Config::default`] is popa3d's behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `auth`: the authentication backend. Default `shadow`, as upstream popa3d.
    pub auth: AuthKind,
    /// `pam_service`: the PAM service name, used with `auth = "pam"`. Default `popa3d`,
    /// as Debian's build (`/etc/pam.d/popa3d`).
    pub pam_service: String,
    /// `passwd_file`: the passwd-file, used with `auth = "passwd-file"`, where the file
    /// must name it. The default value here (`/etc/popa3d/passwd`) is never used.
    pub passwd_file: PathBuf,
    /// `spool`: the mailbox of user U is `spool/U`. Default `/var/mail`.
    pub spool: PathBuf,
    /// `user`: the unprivileged user of the pre-auth process. Default `popa3d`.
    pub user: String,
    /// `chroot`: the empty, root-owned directory the pre-auth process chroots into.
    /// Default `/var/lib/popa3d` (Debian's; upstream's is `/var/empty`).
    pub chroot: PathBuf,
    /// `timeout`: idle time allowed in AUTHORIZATION and TRANSACTION. Default 600 s.
    pub timeout: Duration,
    /// `write_timeout`: how long a client may stop reading before we give up. Default
    /// 600 s. popa3d has none.
    pub write_timeout: Duration,
    /// `syslog_socket`: where log lines go. Default `/dev/log`.
    pub syslog_socket: PathBuf,
    /// `lock_timeout`: how long loading the mailbox at login waits for another program's
    /// lock before answering `-ERR [IN-USE]`; `None` (`lock_timeout = 0`) waits as long
    /// as it takes, as popa3d does. Default 30 s.
    pub lock_timeout: Option<Duration>,
    /// The standalone daemon's limits and timers.
    pub daemon: Daemon,
    /// `[[listener]]` tables, in file order. Empty: [`Listener::defaults`], with the
    /// top-level TLS settings.
    pub listeners: Vec<Listener>,
    /// The top-level `tls`, `tls_cert`, `tls_key`, `plaintext_login`: inetd mode's, and
    /// the defaults of every listener.
    pub tls: Tls,
    /// `tls_handshake_timeout`: how long a client has to complete the TLS handshake.
    /// Default 30 s.
    pub tls_handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            auth: AuthKind::Shadow,
            pam_service: "popa3d".to_owned(),
            passwd_file: PathBuf::from("/etc/popa3d/passwd"),
            spool: PathBuf::from("/var/mail"),
            user: "popa3d".to_owned(),
            chroot: PathBuf::from("/var/lib/popa3d"),
            timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(600),
            syslog_socket: PathBuf::from(crate::syslog::DEFAULT_SOCKET),
            lock_timeout: Some(Duration::from_secs(30)),
            daemon: Daemon::default(),
            listeners: Vec::new(),
            tls: Tls::default(),
            tls_handshake_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// The listeners of the standalone daemon: the `[[listener]]` tables, or
    /// [`Listener::defaults`] with the top-level TLS settings.
    pub fn effective_listeners(&self) -> Vec<Listener> {
        if !self.listeners.is_empty() {
            return self.listeners.clone();
        }
        let mut defaults = Listener::defaults();
        for l in &mut defaults {
            l.tls = self.tls.clone();
        }
        defaults
    }
}

/// Why a configuration file was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, error: io::Error },
    /// The file was read but is not a valid configuration. `line` is 1-based, `None`
    /// when the problem is not on one line.
    Invalid {
        origin: String,
        line: Option<usize>,
        message: String,
    },
}

impl ConfigError {
    /// The line the problem is on, if there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// What is wrong, without the file name and line.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Read { error, .. } => error.to_string(),
            ConfigError::Invalid { message, .. } => message.clone(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ConfigError::Invalid {
                origin,
                line: Some(line),
                message,
            } => write!(f, "{origin}:{line}: {message}"),
            ConfigError::Invalid {
                origin,
                line: None,
                message,
            } => write!(f, "{origin}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { error, .. } => Some(error),
            ConfigError::Invalid { .. } => None,
        }
    }
}

/// The file as TOML gives it to us: every key optional, with its position for error
/// messages. Checked and turned into a [`Config`] by [`Raw::check`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    auth: Option<Spanned<String>>,
    pam_service: Option<Spanned<String>>,
    passwd_file: Option<Spanned<String>>,
    spool: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    chroot: Option<Spanned<String>>,
    timeout: Option<Spanned<Seconds>>,
    write_timeout: Option<Spanned<Seconds>>,
    syslog_socket: Option<Spanned<String>>,
    lock_timeout: Option<Spanned<Seconds>>,
    max_sessions: Option<Spanned<i64>>,
    max_per_source: Option<Spanned<i64>>,
    max_per_network: Option<Spanned<i64>>,
    network_prefix_ipv4: Option<Spanned<i64>>,
    network_prefix_ipv6: Option<Spanned<i64>>,
    flood_window: Option<Spanned<Seconds>>,
    login_failure_delay: Option<Spanned<Seconds>>,
    login_failure_delay_max: Option<Spanned<Seconds>>,
    shutdown_timeout: Option<Spanned<Seconds>>,
    tls: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    plaintext_login: Option<Spanned<String>>,
    tls_handshake_timeout: Option<Spanned<Seconds>>,
    listener: Option<Spanned<Vec<Spanned<RawListener>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    backlog: Option<Spanned<i64>>,
    proxy_protocol: Option<Spanned<bool>>,
    proxy_trusted: Option<Spanned<Vec<Spanned<String>>>>,
    proxy_timeout: Option<Spanned<Seconds>>,
    tls: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    plaintext_login: Option<Spanned<String>>,
}

/// The TLS keys of the top level or of one `[[listener]]`, as written.
struct RawTls<'a> {
    tls: &'a Option<Spanned<String>>,
    tls_cert: &'a Option<Spanned<String>>,
    tls_key: &'a Option<Spanned<String>>,
    plaintext_login: &'a Option<Spanned<String>>,
}

impl RawTls<'_> {
    /// These keys over `defaults` (the top level's, for a listener); `whole` is the
    /// table's span, for errors about a key that is missing.
    /// `inherited`: the top level's `plaintext_login` if it was written there.
    /// `for_listeners`: these are top-level keys and `[[listener]]` tables exist, which
    /// they are defaults for (so `plaintext_login = "never"` without TLS here is no
    /// mistake: it is meant for listeners with TLS).
    fn check(
        &self,
        defaults: &Tls,
        inherited: Option<PlaintextLogin>,
        whole: Option<Range<usize>>,
        for_listeners: bool,
    ) -> Result<Tls, CheckError> {
        let mode = match self.tls {
            None => defaults.mode,
            Some(v) => match v.get_ref().as_str() {
                "none" => TlsMode::None,
                "stls" => TlsMode::Stls,
                "implicit" => TlsMode::Implicit,
                other => {
                    return Err((
                        Some(v.span()),
                        format!(
                            "tls = \"{}\": expected \"none\", \"stls\" or \"implicit\"",
                            crate::syslog::escape(other.as_bytes(), 64)
                        ),
                    ))
                }
            },
        };
        let cert = match self.tls_cert {
            Some(p) => Some(absolute_path("tls_cert", p)?),
            None => defaults.cert.clone(),
        };
        let key = match self.tls_key {
            Some(p) => Some(absolute_path("tls_key", p)?),
            None => defaults.key.clone(),
        };
        let plaintext_login = match self.plaintext_login {
            None if mode == TlsMode::None => PlaintextLogin::Always,
            // An explicit top-level value, else the TLS default.
            None => inherited.unwrap_or(PlaintextLogin::Loopback),
            Some(v) => match v.get_ref().as_str() {
                "always" => PlaintextLogin::Always,
                "loopback" => PlaintextLogin::Loopback,
                // Only a mistake where this table's own connections use it: the top level
                // may set it for the listeners when they have TLS and it has none.
                "never" if mode == TlsMode::None && !for_listeners => {
                    return Err((
                        Some(v.span()),
                        "plaintext_login = \"never\" without TLS would refuse every login; set tls = \"stls\" or \"implicit\"".to_owned(),
                    ))
                }
                "never" => PlaintextLogin::Never,
                other => {
                    return Err((
                        Some(v.span()),
                        format!(
                            "plaintext_login = \"{}\": expected \"always\", \"loopback\" or \"never\"",
                            crate::syslog::escape(other.as_bytes(), 64)
                        ),
                    ))
                }
            },
        };
        if mode != TlsMode::None {
            let span = self.tls.as_ref().map(Spanned::span).or(whole);
            if cert.is_none() {
                return Err((
                    span,
                    format!(
                        "tls = \"{}\" needs tls_cert = \"/path/to/fullchain.pem\"",
                        mode.as_str()
                    ),
                ));
            }
            if key.is_none() {
                return Err((
                    span,
                    format!(
                        "tls = \"{}\" needs tls_key = \"/path/to/privkey.pem\"",
                        mode.as_str()
                    ),
                ));
            }
        }
        Ok(Tls {
            mode,
            cert,
            key,
            plaintext_login,
        })
    }
}

impl Config {
    /// Reads and checks the configuration file at `path` (at most [`MAX_FILE_SIZE`]
    /// bytes of UTF-8).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |error| ConfigError::Read {
            path: path.to_owned(),
            error,
        };
        let origin = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(ConfigError::Invalid {
                origin,
                line: None,
                message: format!("larger than {MAX_FILE_SIZE} bytes; not a configuration file"),
            });
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            ConfigError::Invalid {
                origin: origin.clone(),
                line: Some(1 + valid.iter().filter(|&&b| b == b'\n').count()),
                message: "not valid UTF-8".to_owned(),
            }
        })?;
        Config::parse(text, &origin)
    }

    /// Checks configuration `text`; `origin` (a file name) starts each error message.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim_end().to_owned(),
        })?;
        raw.check().map_err(|(span, message)| ConfigError::Invalid {
            origin: origin.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        })
    }

    /// Settings that are allowed but unwise, one sentence each, for the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let secs = self.timeout.as_secs();
        if secs < RFC1939_MIN_TIMEOUT_SECS {
            warnings.push(format!(
                "timeout = {secs} is below RFC 1939's 10-minute minimum (600 seconds); \
                 some clients may be cut off while the user reads a message"
            ));
        }
        warnings
    }
}

/// A TOML integer meant as seconds; range-checked later, with its line.
struct Seconds(i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of seconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_i64(Visitor)
    }
}

type CheckError = (Option<Range<usize>>, String);

impl Raw {
    fn check(self) -> Result<Config, CheckError> {
        let defaults = Config::default();
        let daemon = self.daemon(&defaults.daemon)?;
        let tls = RawTls {
            tls: &self.tls,
            tls_cert: &self.tls_cert,
            tls_key: &self.tls_key,
            plaintext_login: &self.plaintext_login,
        }
        .check(&Tls::default(), None, None, self.listener.is_some())?;
        let inherited = self
            .plaintext_login
            .is_some()
            .then_some(tls.plaintext_login);
        let listeners = match &self.listener {
            None => Vec::new(),
            Some(tables) => check_listeners(tables, &tls, inherited)?,
        };
        let auth = match &self.auth {
            None => defaults.auth,
            Some(a) => match a.get_ref().as_str() {
                "shadow" => AuthKind::Shadow,
                "pam" => AuthKind::Pam,
                "passwd-file" => AuthKind::PasswdFile,
                other => {
                    return Err((
                        Some(a.span()),
                        format!(
                            "auth = \"{}\": unknown backend; expected \"shadow\", \"pam\" or \"passwd-file\"",
                            crate::syslog::escape(other.as_bytes(), 64)
                        ),
                    ))
                }
            },
        };
        let passwd_file = match (&self.passwd_file, &self.auth) {
            (Some(p), _) => absolute_path("passwd_file", p)?,
            (None, Some(a)) if auth == AuthKind::PasswdFile => {
                return Err((
                    Some(a.span()),
                    "auth = \"passwd-file\" needs passwd_file = \"/path/to/passwd\"".to_owned(),
                ))
            }
            (None, _) => defaults.passwd_file,
        };
        Ok(Config {
            auth,
            pam_service: match &self.pam_service {
                Some(s) => name("pam_service", s, &['/'])?,
                None => defaults.pam_service,
            },
            passwd_file,
            spool: optional_path("spool", &self.spool, defaults.spool)?,
            user: match &self.user {
                Some(s) => name("user", s, &['/', ':'])?,
                None => defaults.user,
            },
            chroot: optional_path("chroot", &self.chroot, defaults.chroot)?,
            timeout: optional_timeout("timeout", &self.timeout, defaults.timeout)?,
            write_timeout: optional_timeout(
                "write_timeout",
                &self.write_timeout,
                defaults.write_timeout,
            )?,
            syslog_socket: optional_path(
                "syslog_socket",
                &self.syslog_socket,
                defaults.syslog_socket,
            )?,
            lock_timeout: {
                let t = optional_seconds(
                    "lock_timeout",
                    &self.lock_timeout,
                    0,
                    MAX_TIMEOUT_SECS,
                    defaults.lock_timeout.unwrap_or(Duration::ZERO),
                )?;
                (!t.is_zero()).then_some(t)
            },
            daemon,
            listeners,
            tls,
            tls_handshake_timeout: optional_seconds(
                "tls_handshake_timeout",
                &self.tls_handshake_timeout,
                1,
                600,
                defaults.tls_handshake_timeout,
            )?,
        })
    }

    fn daemon(&self, d: &Daemon) -> Result<Daemon, CheckError> {
        let max_sessions = optional_int(
            "max_sessions",
            &self.max_sessions,
            1,
            MAX_SESSIONS.into(),
            d.max_sessions.into(),
        )?;
        let per = |key, v: &Option<Spanned<i64>>, default: u32| {
            optional_int(key, v, 1, max_sessions, default.into())
        };
        let delay = optional_seconds(
            "login_failure_delay",
            &self.login_failure_delay,
            0,
            3600,
            d.login_failure_delay,
        )?;
        let delay_max = optional_seconds(
            "login_failure_delay_max",
            &self.login_failure_delay_max,
            0,
            3600,
            d.login_failure_delay_max,
        )?;
        if delay > delay_max {
            let span = self.login_failure_delay.as_ref().map(Spanned::span);
            return Err((
                span,
                format!(
                    "login_failure_delay = {} is more than login_failure_delay_max = {}",
                    delay.as_secs(),
                    delay_max.as_secs()
                ),
            ));
        }
        Ok(Daemon {
            max_sessions: max_sessions as u32,
            max_per_source: per(
                "max_per_source",
                &self.max_per_source,
                d.max_per_source.min(max_sessions as u32),
            )? as u32,
            max_per_network: per(
                "max_per_network",
                &self.max_per_network,
                d.max_per_network.min(max_sessions as u32),
            )? as u32,
            network_prefix_ipv4: optional_int(
                "network_prefix_ipv4",
                &self.network_prefix_ipv4,
                0,
                32,
                d.network_prefix_ipv4.into(),
            )? as u8,
            network_prefix_ipv6: optional_int(
                "network_prefix_ipv6",
                &self.network_prefix_ipv6,
                0,
                128,
                d.network_prefix_ipv6.into(),
            )? as u8,
            flood_window: optional_seconds(
                "flood_window",
                &self.flood_window,
                0,
                3600,
                d.flood_window,
            )?,
            login_failure_delay: delay,
            login_failure_delay_max: delay_max,
            shutdown_timeout: optional_seconds(
                "shutdown_timeout",
                &self.shutdown_timeout,
                0,
                MAX_TIMEOUT_SECS,
                d.shutdown_timeout,
            )?,
        })
    }
}

fn check_listeners(
    tables: &Spanned<Vec<Spanned<RawListener>>>,
    tls: &Tls,
    plaintext_login: Option<PlaintextLogin>,
) -> Result<Vec<Listener>, CheckError> {
    if tables.get_ref().len() > MAX_LISTENERS {
        return Err((
            Some(tables.span()),
            format!("more than {MAX_LISTENERS} [[listener]] tables"),
        ));
    }
    let mut out: Vec<Listener> = Vec::new();
    for table in tables.get_ref() {
        let raw = table.get_ref();
        let Some(address) = &raw.address else {
            return Err((
                Some(table.span()),
                "[[listener]] needs address = \"IP:PORT\", e.g. \"0.0.0.0:110\" or \"[::]:110\""
                    .to_owned(),
            ));
        };
        let addr: SocketAddr = address.get_ref().parse().map_err(|_| {
            (Some(address.span()), format!(
                "address = \"{}\": not an IP address and port, e.g. \"127.0.0.1:110\" or \"[::1]:110\"",
                crate::syslog::escape(address.get_ref().as_bytes(), 64)
            ))
        })?;
        let mut listener = Listener::on(addr);
        if let Some(other) = out.iter().find(|l| l.address == addr) {
            return Err((
                Some(address.span()),
                format!("address = \"{}\": listed twice", other.address),
            ));
        }
        if let Some(n) = &raw.name {
            let name = name("name", n, &[':'])?;
            if out.iter().any(|l| l.name.as_deref() == Some(name.as_str())) {
                return Err((
                    Some(n.span()),
                    format!("name = \"{name}\": used by two listeners"),
                ));
            }
            listener.name = Some(name);
        }
        listener.backlog =
            optional_int("backlog", &raw.backlog, 1, 65_535, listener.backlog.into())? as u32;
        listener.proxy_protocol = raw.proxy_protocol.as_ref().is_some_and(|p| *p.get_ref());
        if let Some(list) = &raw.proxy_trusted {
            for entry in list.get_ref() {
                listener.proxy_trusted.push(parse_network(entry)?);
            }
        }
        if listener.proxy_protocol && listener.proxy_trusted.is_empty() {
            let span = raw.proxy_protocol.as_ref().map(Spanned::span);
            return Err((span, "proxy_protocol = true needs proxy_trusted = [\"ADDRESS\" or \"NETWORK/LEN\", ...]: the proxies allowed to send the header".to_owned()));
        }
        listener.proxy_timeout = optional_seconds(
            "proxy_timeout",
            &raw.proxy_timeout,
            1,
            60,
            listener.proxy_timeout,
        )?;
        listener.tls = RawTls {
            tls: &raw.tls,
            tls_cert: &raw.tls_cert,
            tls_key: &raw.tls_key,
            plaintext_login: &raw.plaintext_login,
        }
        .check(tls, plaintext_login, Some(table.span()), false)?;
        out.push(listener);
    }
    Ok(out)
}

/// `"10.0.0.0/8"`, `"127.0.0.1"` (a /32), `"::1"` (a /128). Host bits must be zero, so
/// that a typo such as `10.0.0.1/8` does not silently mean more than it says.
fn parse_network(v: &Spanned<String>) -> Result<Network, CheckError> {
    let s = v.get_ref();
    let bad = |why: &str| {
        (
            Some(v.span()),
            format!(
                "proxy_trusted: \"{}\": {why}",
                crate::syslog::escape(s.as_bytes(), 64)
            ),
        )
    };
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.as_str(), None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad("not an IP address or ADDRESS/LEN network"))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => l
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| bad("prefix length out of range"))?,
        Some(_) => return Err(bad("prefix length is not a number")),
    };
    let host_bits_zero = mask(addr, prefix) == addr;
    if !host_bits_zero {
        return Err(bad(
            "address has bits set beyond the prefix length (did you mean the network address?)",
        ));
    }
    Ok(Network { addr, prefix })
}

fn optional_int(
    key: &str,
    value: &Option<Spanned<i64>>,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, CheckError> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err((
            Some(v.span()),
            format!("{key} = {}: must be from {min} to {max}", v.get_ref()),
        )),
    }
}

fn optional_seconds(
    key: &str,
    value: &Option<Spanned<Seconds>>,
    min: u64,
    max: u64,
    default: Duration,
) -> Result<Duration, CheckError> {
    let Some(v) = value else {
        return Ok(default);
    };
    let secs = v.get_ref().0;
    match u64::try_from(secs) {
        Ok(s) if (min..=max).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err((
            Some(v.span()),
            format!("{key} = {secs}: must be a number of seconds from {min} to {max}"),
        )),
    }
}

fn optional_path(
    key: &str,
    value: &Option<Spanned<String>>,
    default: PathBuf,
) -> Result<PathBuf, CheckError> {
    match value {
        Some(v) => absolute_path(key, v),
        None => Ok(default),
    }
}

/// An absolute path: the server chroots and changes users, so a path relative to
/// wherever it was started from would mean different things at different times.
fn absolute_path(key: &str, value: &Spanned<String>) -> Result<PathBuf, CheckError> {
    let s = value.get_ref();
    let problem = if s.is_empty() {
        Some("must not be empty")
    } else if s.contains('\0') {
        Some("must not contain a NUL character")
    } else if !s.starts_with('/') {
        Some("must be an absolute path (starting with /)")
    } else {
        None
    };
    match problem {
        Some(p) => Err((
            Some(value.span()),
            format!(
                "{key} = \"{}\": {p}",
                crate::syslog::escape(s.as_bytes(), 256)
            ),
        )),
        None => Ok(PathBuf::from(s)),
    }
}

/// A user or service name: non-empty, printable, no white space, none of `forbidden`.
fn name(key: &str, value: &Spanned<String>, forbidden: &[char]) -> Result<String, CheckError> {
    let s = value.get_ref();
    let bad = s
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || forbidden.contains(c));
    let problem = match bad {
        _ if s.is_empty() => "must not be empty".to_owned(),
        _ if s.len() > 256 => "is too long".to_owned(),
        Some(c) => format!("must not contain {:?}", c),
        None => return Ok(s.clone()),
    };
    Err((
        Some(value.span()),
        format!(
            "{key} = \"{}\": {problem}",
            crate::syslog::escape(s.as_bytes(), 64)
        ),
    ))
}

fn optional_timeout(
    key: &str,
    value: &Option<Spanned<Seconds>>,
    default: Duration,
) -> Result<Duration, CheckError> {
    optional_seconds(key, value, 1, MAX_TIMEOUT_SECS, default)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

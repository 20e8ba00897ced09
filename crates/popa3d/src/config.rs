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
//! Room to grow: the settings above are top-level keys. Standalone mode (`-D`) will add
//! `[[listener]]` tables, which TOML places after the top-level keys, so files written
//! now stay valid. Until then `[[listener]]` is refused with a message saying why.

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

/// A configuration file larger than this is refused (a real one is under 1 KiB; the
/// limit only stops `-c /dev/zero` from eating memory).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// The longest `timeout` or `write_timeout` accepted, in seconds (one day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// RFC 1939 §3: an idle timer "MUST be of at least 10 minutes' duration".
pub const RFC1939_MIN_TIMEOUT_SECS: u64 = 600;

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
        }
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
    /// Reserved for standalone mode, so that it gets a better message than
    /// "unknown field".
    listener: Option<Spanned<IgnoredAny>>,
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
        if let Some(listener) = self.listener {
            return Err((
                Some(listener.span()),
                "[[listener]] sections are for standalone mode (-D), which this version \
                 does not have yet"
                    .to_owned(),
            ));
        }
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
        })
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
    let Some(v) = value else {
        return Ok(default);
    };
    let secs = v.get_ref().0;
    match u64::try_from(secs) {
        Ok(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err((
            Some(v.span()),
            format!("{key} = {secs}: must be a number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
        )),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

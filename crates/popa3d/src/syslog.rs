//! Logging to syslog with our own client, not libc's `syslog(3)`.
//!
//! The lines are byte for byte what glibc's `openlog("popa3d", LOG_PID, LOG_DAEMON)`
//! sends (research/popa3d.md §7): `<PRI>Mmm dd hh:mm:ss popa3d[PID]: message`, one
//! datagram per line, no trailing newline or NUL. Existing fail2ban filters and log
//! scanners for popa3d keep matching.
//!
//! Why not libc: [`Syslog::open`] connects a datagram socket to `/dev/log` (and reads
//! the time zone) once, as root, before the process chroots. The connected socket keeps
//! working inside the empty chroot, where `/dev/log` and `/etc/localtime` do not exist,
//! and logging needs only `getpid`, `clock_gettime` and `sendto` afterwards, which the
//! pre-auth child's seccomp filter allows. libc's syslog would try to reconnect by path
//! (and `localtime` to re-read the zone file) at awkward moments.
//!
//! This module must never: let a byte the client sent reach the log unescaped (every
//! such field goes through [`escape`], and [`Syslog::log`] escapes control characters
//! in the whole line as a second line of defence); open a file or a socket after
//! [`Syslog::open`]; fail loudly. Like libc's syslog, a missing or dead log socket makes
//! logging silently do nothing ([`Syslog::connected`] tells).

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tz::{TimeZone, TimeZoneSettings};

pub use crate::messages::Level;

/// The ident in every line. popa3d's `SYSLOG_IDENT`; log filters match on it.
pub const IDENT: &str = "popa3d";

/// Where glibc's syslog sends its datagrams.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// `LOG_DAEMON` (3), shifted into place (popa3d's `SYSLOG_FACILITY`).
const FACILITY_DAEMON: u8 = 3 << 3;

/// A message longer than this is cut (with `...`). Ours are short; this only bounds a
/// caller's mistake, so that one line cannot grow without limit.
const MAX_MESSAGE: usize = 2048;

/// A time zone file larger than this is refused (TZif files are a few KiB). `TZ` could
/// name any file, `/dev/zero` included.
const MAX_TZ_FILE: u64 = 1 << 20;

impl Level {
    /// The syslog severity: `LOG_CRIT` 2, `LOG_NOTICE` 5, `LOG_INFO` 6.
    pub fn severity(self) -> u8 {
        match self {
            Level::Crit => 2,
            Level::Notice => 5,
            Level::Info => 6,
        }
    }

    /// The `<PRI>` number with facility `LOG_DAEMON`: CRIT 26, NOTICE 29, INFO 30.
    pub fn priority(self) -> u8 {
        FACILITY_DAEMON | self.severity()
    }
}

/// A connection to the system logger, made before the process chroots.
#[derive(Debug)]
pub struct Syslog {
    socket: Option<UnixDatagram>,
    zone: TimeZone,
    /// Where the socket was connected, for [`Syslog::set_reconnect`].
    path: PathBuf,
    /// Whether a send refused by a restarted logger may reconnect by path.
    reconnect: AtomicBool,
}

impl Syslog {
    /// Connects to the datagram socket at `socket_path` (normally [`DEFAULT_SOCKET`])
    /// and loads the local time zone as glibc would: from the `TZ` environment variable
    /// if it is set (a POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3`, or a zone name
    /// such as `Europe/Berlin` or `:Europe/Berlin`; an empty `TZ` means UTC), else from
    /// `/etc/localtime`; UTC if that fails. Call it before `chroot`. Never fails: if
    /// the socket is missing or refuses, logging does nothing, as with libc.
    pub fn open(socket_path: &Path) -> Syslog {
        Syslog {
            socket: connect(socket_path),
            zone: local_zone(std::env::var_os("TZ").as_deref().map(|tz| tz.to_str())),
            path: socket_path.to_owned(),
            reconnect: AtomicBool::new(false),
        }
    }

    /// [`Syslog::open`] with the time zone given in `TZ` syntax instead of taken from
    /// the environment. A zone that cannot be loaded means UTC.
    pub fn open_with_timezone(socket_path: &Path, tz: &str) -> Syslog {
        Syslog {
            socket: connect(socket_path),
            zone: local_zone(Some(Some(tz))),
            path: socket_path.to_owned(),
            reconnect: AtomicBool::new(false),
        }
    }

    /// A logger that logs nothing (timestamps in UTC), for tests and for tools that
    /// must not log.
    pub fn disabled() -> Syslog {
        Syslog {
            socket: None,
            zone: TimeZone::utc(),
            path: PathBuf::new(),
            reconnect: AtomicBool::new(false),
        }
    }

    /// Whether the socket was connected. After a syslog daemon restart the datagrams
    /// may still be lost: inside a chroot we could not reconnect, so we never try.
    pub fn connected(&self) -> bool {
        self.socket.is_some()
    }

    /// The socket's descriptor, to keep it open when closing inherited descriptors.
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.socket.as_ref().map(|s| s.as_raw_fd())
    }

    /// Allows (or forbids) reconnecting by path when the logger has gone away (a
    /// restarted rsyslog recreates /dev/log; the old connection is then refused). Only
    /// for the long-running standalone daemon, which is neither chrooted nor under
    /// seccomp: it sets this after start-up, and each session clears it first thing,
    /// since a confined process must never call connect(2). The same descriptor is
    /// reconnected, so its number (kept open in every session) never changes. Off by
    /// default.
    pub fn set_reconnect(&self, on: bool) {
        self.reconnect.store(on, Ordering::Relaxed);
    }

    /// Sends one line at `level`. Errors are ignored, as libc's syslog ignores them.
    pub fn log(&self, level: Level, msg: &str) {
        if let Some(socket) = &self.socket {
            let line = self.encode(level, msg, SystemTime::now(), std::process::id());
            // A full receive queue blocks, as with glibc; any other error drops the line,
            // unless reconnecting is allowed and the logger looks restarted.
            if let Err(e) = socket.send(&line) {
                let gone = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::NotConnected
                        | std::io::ErrorKind::NotFound
                );
                if gone
                    && self.reconnect.load(Ordering::Relaxed)
                    && socket.connect(&self.path).is_ok()
                {
                    let _ = socket.send(&line);
                }
            }
        }
    }

    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    pub fn notice(&self, msg: &str) {
        self.log(Level::Notice, msg);
    }

    pub fn crit(&self, msg: &str) {
        self.log(Level::Crit, msg);
    }

    /// The datagram [`Syslog::log`] sends at time `now` from process `pid`:
    /// `<30>Jan  5 14:03:07 popa3d[1234]: message`, the timestamp in this logger's local
    /// time zone. Control characters in `msg` become `\xHH`; a message over 2048 bytes
    /// is cut and ends in `...`.
    pub fn encode(&self, level: Level, msg: &str, now: SystemTime, pid: u32) -> Vec<u8> {
        let mut line = Vec::with_capacity(32 + IDENT.len() + msg.len());
        line.push(b'<');
        push_decimal(&mut line, u64::from(level.priority()));
        line.push(b'>');
        line.extend_from_slice(&self.timestamp(now));
        line.push(b' ');
        line.extend_from_slice(IDENT.as_bytes());
        line.push(b'[');
        push_decimal(&mut line, u64::from(pid));
        line.extend_from_slice(b"]: ");
        let cut = msg.len() > MAX_MESSAGE;
        let body = if cut {
            // Cut on a character boundary, so the line stays UTF-8.
            let end = (0..=MAX_MESSAGE)
                .rev()
                .find(|&i| msg.is_char_boundary(i))
                .unwrap_or(0);
            msg.get(..end).unwrap_or_default()
        } else {
            msg
        };
        for &b in body.as_bytes() {
            if b < 0x20 || b == 0x7f {
                push_hex_escape(&mut line, b);
            } else {
                line.push(b);
            }
        }
        if cut {
            line.extend_from_slice(b"...");
        }
        line
    }

    /// `Mmm dd hh:mm:ss` in local time, the day padded with a space (`%h %e %T`, what
    /// glibc's syslog writes).
    fn timestamp(&self, now: SystemTime) -> [u8; 15] {
        let unix = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
        };
        // Keep the arithmetic below far from overflow (±2^52 s, 140 million years).
        let unix = unix.clamp(-(1 << 52), 1 << 52);
        let offset = self
            .zone
            .find_local_time_type(unix)
            .map_or(0, |t| i64::from(t.ut_offset()));
        bsd_timestamp(unix + offset)
    }
}

fn connect(path: &Path) -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(path).ok()?;
    Some(socket)
}

/// `tz`: `None` if `TZ` is unset, `Some(None)` if it is not UTF-8.
fn local_zone(tz: Option<Option<&str>>) -> TimeZone {
    let settings = TimeZoneSettings::new(TimeZoneSettings::DEFAULT_DIRECTORIES, read_small_file);
    let zone = match tz {
        None => settings.parse_local(),
        Some(Some("")) | Some(None) => return TimeZone::utc(),
        Some(Some(tz)) => settings.parse_posix_tz(tz),
    };
    zone.unwrap_or_else(|_| TimeZone::utc())
}

fn read_small_file(
    path: &str,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync + 'static>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TZ_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TZ_FILE {
        return Err("time zone file too large".into());
    }
    Ok(bytes)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Mmm dd hh:mm:ss` for `local` seconds since 1970-01-01 00:00:00 (local time).
fn bsd_timestamp(local: i64) -> [u8; 15] {
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (month, day) = month_day(days);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = *b"Jan  1 00:00:00";
    if let Some(name) = MONTHS.get(month.saturating_sub(1) as usize) {
        out[..3].copy_from_slice(*name);
    }
    out[4] = if day >= 10 { digit(day / 10) } else { b' ' };
    out[5] = digit(day % 10);
    for (i, v) in [(7, h), (10, m), (13, s)] {
        out[i] = digit(v / 10);
        out[i + 1] = digit(v % 10);
    }
    out
}

fn digit(v: i64) -> u8 {
    b'0' + v.rem_euclid(10) as u8
}

/// Month (1..=12) and day of month (1..=31) of `days` since 1970-01-01, in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn month_day(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (month, day)
}

fn push_decimal(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 0xf)],
    ]);
}

/// A field the client sent (a user name), made safe for a log line: printable ASCII
/// stays as it is except `\`, which becomes `\\`; every other byte (control
/// characters, DEL, bytes over 0x7f) becomes `\xHH` in lower-case hex. At most `max`
/// bytes of `field` are used; when it is longer, the result ends in `...`.
///
/// The result is printable ASCII, so a client cannot start a new log line, inject
/// terminal escapes into an administrator's `tail`, or pass for another field.
pub fn escape(field: &[u8], max: usize) -> String {
    let (head, cut) = match field.get(..max) {
        Some(head) if field.len() > max => (head, true),
        _ => (field, false),
    };
    let mut out = String::with_capacity(head.len() + 3);
    for &b in head {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    if cut {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts(local: i64) -> String {
        String::from_utf8(bsd_timestamp(local).to_vec()).unwrap()
    }

    #[test]
    fn timestamps_match_strftime() {
        // `date -u -d @N '+%h %e %T'`
        assert_eq!(ts(0), "Jan  1 00:00:00");
        assert_eq!(ts(951_782_400), "Feb 29 00:00:00"); // 2000, a 400-year leap year
        assert_eq!(ts(1_709_251_199), "Feb 29 23:59:59"); // 2024
        assert_eq!(ts(1_709_251_200), "Mar  1 00:00:00");
        assert_eq!(ts(1_704_459_787), "Jan  5 13:03:07");
        assert_eq!(ts(1_735_689_599), "Dec 31 23:59:59");
        assert_eq!(ts(4_107_542_400), "Mar  1 00:00:00"); // 2100 is not a leap year
        assert_eq!(ts(-1), "Dec 31 23:59:59");
    }

    #[test]
    fn every_day_of_a_leap_cycle_is_consecutive() {
        let mut prev = (12, 31);
        for d in 0..(4 * 365 + 1) {
            let (m, day) = month_day(d);
            let next_ok = (m == prev.0 && day == prev.1 + 1) || (day == 1 && m != prev.0);
            assert!(next_ok, "day {d}: {m}/{day} after {prev:?}");
            prev = (m, day);
        }
        assert_eq!(prev, (12, 31));
    }

    #[test]
    fn unusable_tz_values_mean_utc() {
        for tz in [Some(None), Some(Some("")), Some(Some("Not/A_Zone"))] {
            let zone = local_zone(tz);
            assert_eq!(zone.find_local_time_type(0).unwrap().ut_offset(), 0);
            assert_eq!(
                zone.find_local_time_type(1_720_000_000)
                    .unwrap()
                    .ut_offset(),
                0
            );
        }
        // A file that is not a zone file, and one that never ends.
        for tz in ["/etc/hostname", "/dev/zero"] {
            let zone = local_zone(Some(Some(tz)));
            assert_eq!(zone.find_local_time_type(0).unwrap().ut_offset(), 0);
        }
    }

    #[test]
    fn priorities() {
        assert_eq!(Level::Info.priority(), 30);
        assert_eq!(Level::Notice.priority(), 29);
        assert_eq!(Level::Crit.priority(), 26);
    }
}

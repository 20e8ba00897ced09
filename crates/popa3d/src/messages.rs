//! popa3d's log message texts, byte for byte (research/popa3d.md §7). Existing fail2ban
//! filters and log scanners match on them, so they are kept in one place and tested.

use pop3_proto::Totals;

use crate::driver::TransactionOutcome;

/// Syslog severities popa3d uses (research/popa3d.md §7): INFO `<30>`, NOTICE `<29>`,
/// CRIT `<26>` with facility LOG_DAEMON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Notice,
    Crit,
}

/// The log line for how TRANSACTION/UPDATE ended, as popa3d writes it, followed by our
/// reason where popa3d gives none.
pub fn transaction_outcome(o: &TransactionOutcome, mailbox: &str) -> (Level, String) {
    match o {
        TransactionOutcome::Quit(t) => (Level::Info, quit(t)),
        TransactionOutcome::UpdateFailed(e) => {
            (Level::Crit, format!("{}: {e}", update_failed(mailbox)))
        }
        TransactionOutcome::Stale => (Level::Info, STALE.to_owned()),
        TransactionOutcome::ServerFailure(e) => {
            (Level::Crit, format!("{}: {e}", server_failure(mailbox)))
        }
        TransactionOutcome::Disconnected => (Level::Info, PREMATURE_DISCONNECT.to_owned()),
        TransactionOutcome::TimedOut => (Level::Info, TIMED_OUT.to_owned()),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "2 messages (307 bytes) loaded"; the "s" goes when the count is exactly 1.
pub fn loaded(count: u32, bytes: u64) -> String {
    format!(
        "{count} message{} ({bytes} byte{}) loaded",
        plural(u64::from(count)),
        plural(bytes)
    )
}

/// "1 (211) deleted, 1 (96) left".
pub fn quit(t: &Totals) -> String {
    format!(
        "{} ({}) deleted, {} ({}) left",
        t.deleted, t.deleted_size, t.left, t.left_size
    )
}

pub const DIDNT_AUTHENTICATE: &str = "Didn't attempt authentication";
pub const PREMATURE_DISCONNECT: &str = "Premature disconnect";
pub const TIMED_OUT: &str = "Connection timed out";
pub const STALE: &str = "Another MUA active, giving up";

/// "Failed or refused to load /var/mail/bob".
pub fn load_failed(mailbox: &str) -> String {
    format!("Failed or refused to load {mailbox}")
}

/// "Failed to update /var/mail/bob".
pub fn update_failed(mailbox: &str) -> String {
    format!("Failed to update {mailbox}")
}

/// "Server failure accessing /var/mail/bob".
pub fn server_failure(mailbox: &str) -> String {
    format!("Server failure accessing {mailbox}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_popa3d() {
        assert_eq!(loaded(2, 307), "2 messages (307 bytes) loaded");
        assert_eq!(loaded(1, 31), "1 message (31 bytes) loaded");
        assert_eq!(loaded(0, 0), "0 messages (0 bytes) loaded");
        assert_eq!(loaded(3, 1), "3 messages (1 byte) loaded");
        let t = Totals {
            deleted: 1,
            deleted_size: 211,
            left: 1,
            left_size: 96,
        };
        assert_eq!(quit(&t), "1 (211) deleted, 1 (96) left");
        assert_eq!(
            load_failed("/var/mail/bob"),
            "Failed or refused to load /var/mail/bob"
        );
    }
}

/// An error as popa3d prints one (`strerror`): std's text without its ` (os error N)`
/// suffix, so `bind: 0.0.0.0:110: Address already in use` reads as popa3d's lines do.
pub fn strerror(e: &std::io::Error) -> String {
    pop3_sys::errno::strerror(e)
}

#[cfg(test)]
mod strerror_tests {
    #[test]
    fn drops_only_the_os_error_suffix() {
        let e = std::io::Error::from_raw_os_error(98);
        assert_eq!(super::strerror(&e), "Address already in use");
        let other = std::io::Error::other("no such user (os error 5)");
        assert_eq!(super::strerror(&other), "no such user (os error 5)");
    }
}

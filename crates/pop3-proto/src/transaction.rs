//! The TRANSACTION state (RFC 1939 §5): the listing commands, deletion marks and LAST,
//! plus CAPA (RFC 2449).
//!
//! Messages keep their numbers for the whole session; a message marked deleted stays
//! numbered but is invisible to every command until RSET (popa3d, spec §3.4). Nothing
//! here touches the maildrop: RETR/TOP and QUIT come back to the caller as actions.

use crate::capability::{self, Options};
use crate::command::{parse_transaction, TransCommand};
use crate::listing::Listing;
use crate::reply;
use crate::session::Step;

/// Deletion marks and the totals derived from them, for the STAT reply and the
/// end-of-session log line `D (DS) deleted, L (LS) left`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Messages marked deleted.
    pub deleted: u32,
    /// Sum of their LIST sizes.
    pub deleted_size: u64,
    /// Messages not marked deleted (what STAT reports).
    pub left: u32,
    /// Sum of their LIST sizes.
    pub left_size: u64,
}

/// Per-session TRANSACTION data.
pub(crate) struct Transaction {
    count: u32,
    total_size: u64,
    deleted: Vec<bool>,
    deleted_count: u32,
    deleted_size: u64,
    /// RFC 1460 LAST as popa3d computes it: the highest number RETR'd or DELE'd since
    /// login or the last RSET.
    last: u32,
}

impl Transaction {
    /// No maildrop yet (AUTHORIZATION).
    pub(crate) fn empty() -> Transaction {
        Transaction {
            count: 0,
            total_size: 0,
            deleted: Vec::new(),
            deleted_count: 0,
            deleted_size: 0,
            last: 0,
        }
    }

    /// The count is taken once: numbers must not change within a session (RFC 1939 §5).
    pub(crate) fn new(listing: &dyn Listing) -> Transaction {
        let count = listing.count();
        let total_size =
            (0..count).fold(0u64, |sum, index| sum.saturating_add(listing.size(index)));
        Transaction {
            count,
            total_size,
            deleted: vec![false; count as usize],
            ..Transaction::empty()
        }
    }

    pub(crate) fn deleted(&self) -> &[bool] {
        &self.deleted
    }

    pub(crate) fn deleted_indexes(&self) -> Vec<u32> {
        (0..self.count)
            .zip(&self.deleted)
            .filter_map(|(index, &gone)| gone.then_some(index))
            .collect()
    }

    pub(crate) fn totals(&self) -> Totals {
        Totals {
            deleted: self.deleted_count,
            deleted_size: self.deleted_size,
            left: self.count.saturating_sub(self.deleted_count),
            left_size: self.total_size.saturating_sub(self.deleted_size),
        }
    }

    /// The 0-based index of message number `number`, if it exists and is not marked
    /// deleted.
    fn visible(&self, number: u32) -> Option<u32> {
        let index = number.checked_sub(1)?;
        match self.deleted.get(index as usize) {
            Some(false) => Some(index),
            _ => None,
        }
    }

    /// Runs one command line.
    pub(crate) fn handle_line(
        &mut self,
        line: &[u8],
        listing: &dyn Listing,
        options: &Options,
        out: &mut Vec<u8>,
    ) -> Step {
        let Ok(command) = parse_transaction(line) else {
            reply::err(out);
            return Step::Continue;
        };
        match command {
            TransCommand::Stat => self.handle_stat(out),
            TransCommand::List(None) => self.handle_list_all(listing, out),
            TransCommand::List(Some(number)) => self.handle_list(number, listing, out),
            TransCommand::Uidl(None) => self.handle_uidl_all(listing, out),
            TransCommand::Uidl(Some(number)) => self.handle_uidl(number, listing, out),
            TransCommand::Retr(number) => return self.handle_retr(number, out),
            TransCommand::Top(number, lines) => return self.handle_top(number, lines, out),
            TransCommand::Dele(number) => self.handle_dele(number, listing, out),
            TransCommand::Noop => reply::ok(out),
            TransCommand::Rset => self.handle_rset(out),
            TransCommand::Last => reply::ok_number(out, u64::from(self.last)),
            TransCommand::Quit => return Step::Update,
            TransCommand::Capa => capability::write_capa(options, false, out),
        }
        Step::Continue
    }

    fn handle_stat(&self, out: &mut Vec<u8>) {
        let totals = self.totals();
        reply::ok_numbers(out, u64::from(totals.left), totals.left_size);
    }

    fn handle_list_all(&self, listing: &dyn Listing, out: &mut Vec<u8>) {
        reply::ok(out);
        for (index, _) in (0..self.count)
            .zip(&self.deleted)
            .filter(|(_, &gone)| !gone)
        {
            reply::number_pair(out, u64::from(index) + 1, listing.size(index));
        }
        out.extend_from_slice(b".\r\n");
    }

    fn handle_list(&self, number: u32, listing: &dyn Listing, out: &mut Vec<u8>) {
        match self.visible(number) {
            Some(index) => reply::ok_numbers(out, u64::from(number), listing.size(index)),
            None => reply::err(out),
        }
    }

    fn handle_uidl_all(&self, listing: &dyn Listing, out: &mut Vec<u8>) {
        reply::ok(out);
        for (index, _) in (0..self.count)
            .zip(&self.deleted)
            .filter(|(_, &gone)| !gone)
        {
            reply::number_word(out, u64::from(index) + 1, listing.uidl(index));
        }
        out.extend_from_slice(b".\r\n");
    }

    fn handle_uidl(&self, number: u32, listing: &dyn Listing, out: &mut Vec<u8>) {
        match self.visible(number) {
            Some(index) => {
                out.extend_from_slice(b"+OK ");
                reply::number_word(out, u64::from(number), listing.uidl(index));
            }
            None => reply::err(out),
        }
    }

    /// LAST is raised now rather than after the transfer: a failed transfer ends the
    /// session (popa3d aborts without a reply), so nobody can observe the difference.
    fn handle_retr(&mut self, number: u32, out: &mut Vec<u8>) -> Step {
        match self.visible(number) {
            Some(index) => {
                self.last = self.last.max(number);
                Step::Retrieve { index, top: None }
            }
            None => {
                reply::err(out);
                Step::Continue
            }
        }
    }

    /// TOP leaves LAST alone (popa3d; RFC 1460 only counts RETR and DELE).
    fn handle_top(&mut self, number: u32, lines: u32, out: &mut Vec<u8>) -> Step {
        match self.visible(number) {
            Some(index) => Step::Retrieve {
                index,
                top: Some(lines),
            },
            None => {
                reply::err(out);
                Step::Continue
            }
        }
    }

    fn handle_dele(&mut self, number: u32, listing: &dyn Listing, out: &mut Vec<u8>) {
        let Some(index) = self.visible(number) else {
            reply::err(out);
            return;
        };
        if let Some(mark) = self.deleted.get_mut(index as usize) {
            *mark = true;
            self.deleted_count += 1;
            self.deleted_size = self.deleted_size.saturating_add(listing.size(index));
            self.last = self.last.max(number);
        }
        reply::ok(out);
    }

    /// RSET undeletes everything and, as in popa3d, also resets LAST to 0.
    fn handle_rset(&mut self, out: &mut Vec<u8>) {
        self.deleted.fill(false);
        self.deleted_count = 0;
        self.deleted_size = 0;
        self.last = 0;
        reply::ok(out);
    }
}

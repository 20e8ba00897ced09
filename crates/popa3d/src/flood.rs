//! Flood control for the standalone daemon (`-D`): who may open a session, and how long a
//! failed login waits before its `-ERR`.
//!
//! This module is the listener's bookkeeping only: no I/O, no clock reads, no logging.
//! Every call takes `now`, so the tests drive it with a fake clock, and the caller writes
//! the NOTICE lines it returns.
//!
//! # popa3d's rules (research/popa3d.md §5), kept
//!
//! - A session is *active* while its process runs **or** for [`Limits::window`] (popa3d's
//!   MIN_DELAY, 10 s) after it started, even if it has ended. A client that connects and
//!   hangs up at once still holds its place for 10 s, so a reconnect loop cannot turn
//!   over more than `max_per_source` sessions per 10 s. Observed: 50 sessions closed, a new
//!   one at 8.5 s is refused, at 11.7 s accepted (`popa3d_observed_window` below).
//! - At most [`Limits::max_per_source`] (50) active sessions per source address and
//!   [`Limits::max_sessions`] (500) in all. The connection is refused with popa3d's texts
//!   `<ip>: per source limit reached` (at most once per [`Limits::log_interval`], 10 s,
//!   per source address) and `<ip>: sessions limit reached` (at most once per interval
//!   for the whole server); either is logged again at once if the clock went backwards.
//!
//! # What we add
//!
//! - A per-network limit, [`Limits::max_per_network`], over the IPv4 /24 and the IPv6 /64
//!   of the source. popa3d knew only IPv4 addresses; an IPv6 host usually owns a whole
//!   /64 (SLAAC, privacy addresses) and would otherwise get 50 sessions per address.
//! - Slots for connections from a trusted proxy whose real source is not known until its
//!   PROXY header is read ([`Table::admit_pending`], [`Table::set_source`]).
//! - A delay before answering a failed login ([`Table::login_failed`]): 1 s, doubling
//!   with every further failure from the same source up to 15 s, forgotten 10 minutes
//!   after that source's last failure.
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) count as their IPv4 address
//!   everywhere, so a dual-stack socket cannot give one client two sets of counters.
//!
//! # Why refuse at once instead of queueing
//!
//! A refused connection is closed with no bytes sent, as popa3d does. A queue would keep
//! the connection and memory for it, hand the attacker control over how long legitimate
//! clients wait, and delay everyone behind a flood; a client that is refused simply
//! retries later, when the flood's slots have aged out. The listener is single-threaded:
//! deciding must cost little and never wait.
//!
//! # Order of the checks
//!
//! Per source, then per network, then global. popa3d counts the source while scanning
//! and declares the server full only when the scan found no free slot, so when a source at
//! its limit meets a full server it logs the per-source line: we do the same, so the line
//! a fail2ban filter bans on still names the flooding address. The most specific cause
//! names the culprit; the global line only says that the server is busy.
//!
//! # Failed logins, and why they cannot lock out a user
//!
//! Failures are keyed by source, never by account: keyed by account, anyone could slow
//! down or lock out any user by guessing his name. The key is the address for IPv4 and
//! the /[`Limits::ipv6_prefix`] network for IPv6, since a host can pick any address in
//! its /64 and would otherwise start a fresh record with every address. The delay only
//! comes before the `-ERR` of a *failed* login; a correct password is answered at once
//! and never delayed. So an attacker elsewhere cannot slow a user down; at worst an
//! attacker behind the same IPv4 address (a NAT) or in the same /64 lengthens the wait
//! after the user's own typing mistakes.
//!
//! A correct login does not reset the count: an attacker with one valid account could
//! otherwise log in with it between guesses and keep every guess at the shortest delay.
//! A source's record is forgotten [`Limits::failure_memory`] after its last failure (not
//! per failure, a sliding window would need every failure's time): that takes one entry
//! of constant size per source and never gives a shorter delay than a sliding window.
//!
//! # Memory and cost
//!
//! The slot table holds at most [`Limits::max_sessions`] entries (more only after
//! [`Table::set_limits`] lowered it, until the extra slots age out); free slots are
//! reused. A decision scans it once, O(max_sessions), as popa3d does; the configuration
//! caps max_sessions at 65536 (`config::MAX_SESSIONS`). The log rate-limit and failure
//! records are hash maps of at most [`MAX_RECORDS`] entries each, with std's randomly
//! seeded hasher, so addresses an attacker picks cannot be made to collide; when one is
//! full, the entry touched longest ago is dropped, found by a scan, O(MAX_RECORDS), only
//! when full.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The most entries each of the per-source and per-network log tables and the failure
/// table holds.
pub const MAX_RECORDS: usize = 16_384;

/// The figures of flood control. [`Limits::default`] gives popa3d's (research/popa3d.md
/// §5) and ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Active sessions in total (popa3d's MAX_SESSIONS, 500).
    pub max_sessions: u32,
    /// Active sessions per source address (popa3d's MAX_SESSIONS_PER_SOURCE, 50).
    pub max_per_source: u32,
    /// Active sessions per IPv4 /`ipv4_prefix` and IPv6 /`ipv6_prefix` network (ours, 100).
    pub max_per_network: u32,
    /// The network length of an IPv4 source, 0 to 32 (a larger value counts as 32).
    pub ipv4_prefix: u8,
    /// The network length of an IPv6 source, 0 to 128 (a larger value counts as 128).
    pub ipv6_prefix: u8,
    /// A session counts while it runs or for this long after it started (popa3d's
    /// MIN_DELAY, 10 s).
    pub window: Duration,
    /// Each limit's log line is written at most once per this (popa3d: 10 s).
    pub log_interval: Duration,
    /// The delay before answering a source's first failed login (ours, 1 s); zero turns
    /// delays off.
    pub failure_delay: Duration,
    /// The delay doubles with each further failure up to this (15 s).
    pub failure_delay_max: Duration,
    /// A source's failures are forgotten this long after its last one (600 s).
    pub failure_memory: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_sessions: 500,
            max_per_source: 50,
            max_per_network: 100,
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            window: Duration::from_secs(10),
            log_interval: Duration::from_secs(10),
            failure_delay: Duration::from_secs(1),
            failure_delay_max: Duration::from_secs(15),
            failure_memory: Duration::from_secs(600),
        }
    }
}

/// A reserved slot. It names one reservation only: once the slot is released and reused,
/// the old id matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    index: usize,
    serial: u64,
}

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// [`Limits::max_per_source`].
    PerSource,
    /// [`Limits::max_per_network`].
    PerNetwork,
    /// [`Limits::max_sessions`].
    Global,
}

/// A refused connection: close it without sending anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The limit that was reached.
    pub reason: Refusal,
    /// The NOTICE line to write, or `None` when this limit was logged less than
    /// [`Limits::log_interval`] ago.
    pub log: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not in use: may be reused.
    Free,
    /// Reserved, no process yet.
    Reserved,
    /// The session process runs.
    Running(i32),
    /// The session process has exited.
    Exited(i32),
}

#[derive(Clone, Debug)]
struct Slot {
    state: State,
    serial: u64,
    /// `None` for a pending proxied connection.
    source: Option<IpAddr>,
    start: Instant,
}

impl Slot {
    /// Running, or reserved/started less than `window` ago. A start in the future (the
    /// clock went backwards) counts as just started.
    fn is_active(&self, now: Instant, window: Duration) -> bool {
        match self.state {
            State::Free => false,
            State::Running(_) => true,
            State::Reserved | State::Exited(_) => {
                now.saturating_duration_since(self.start) < window
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// What one scan of the slot table found.
struct Counts {
    source: u32,
    network: u32,
    total: u32,
    free: Option<usize>,
}

/// The flood-control state of the listener.
#[derive(Debug)]
pub struct Table {
    limits: Limits,
    slots: Vec<Slot>,
    next_serial: u64,
    source_logs: HashMap<IpAddr, Instant>,
    network_logs: HashMap<(IpAddr, u8), Instant>,
    global_log: Option<Instant>,
    failures: HashMap<IpAddr, Failures>,
}

impl Table {
    /// An empty table.
    pub fn new(limits: Limits) -> Table {
        Table {
            limits,
            slots: Vec::new(),
            next_serial: 0,
            source_logs: HashMap::new(),
            network_logs: HashMap::new(),
            global_log: None,
            failures: HashMap::new(),
        }
    }

    /// The figures in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// New figures (SIGHUP). They apply from the next decision; slots, log times and
    /// failure records are kept. Lowering `max_sessions` below the slots in use refuses
    /// new connections until enough of them age out.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// A new connection from `source`. Checks the per-source, per-network and global
    /// limits, in that order (see the module documentation), and on success reserves a
    /// slot, active from `now`. Call [`Table::started`] or [`Table::cancel`] right after
    /// the fork: a reservation without a process counts for [`Limits::window`] only.
    pub fn admit(&mut self, now: Instant, source: IpAddr) -> Result<SlotId, Refused> {
        let source = source.to_canonical();
        self.shrink(now);
        let counts = self.scan(now, Some(source), None);
        self.check_source(now, source, &counts)?;
        if counts.total >= self.limits.max_sessions {
            return Err(self.refuse_global(now, source));
        }
        self.reserve(now, counts.free, Some(source))
            .ok_or_else(|| self.refuse_global(now, source))
    }

    /// A connection from a trusted proxy, real source not yet known: only the global
    /// limit is checked, and the slot counts toward it alone until [`Table::set_source`].
    /// `peer` (the proxy) only goes into the log line.
    pub fn admit_pending(&mut self, now: Instant, peer: IpAddr) -> Result<SlotId, Refused> {
        let peer = peer.to_canonical();
        self.shrink(now);
        let counts = self.scan(now, None, None);
        if counts.total >= self.limits.max_sessions {
            return Err(self.refuse_global(now, peer));
        }
        self.reserve(now, counts.free, None)
            .ok_or_else(|| self.refuse_global(now, peer))
    }

    /// The real source of a pending slot, from the PROXY header: the per-source and
    /// per-network limits are checked against the other active slots. On refusal the
    /// slot is released. A slot that was already released (or has been reused) is
    /// refused as [`Refusal::Global`] with no log line: its connection is no longer
    /// counted, so it must not go on.
    pub fn set_source(
        &mut self,
        now: Instant,
        slot: SlotId,
        source: IpAddr,
    ) -> Result<(), Refused> {
        let source = source.to_canonical();
        if self.live_slot(slot).is_none() {
            return Err(Refused {
                reason: Refusal::Global,
                log: None,
            });
        }
        let counts = self.scan(now, Some(source), Some(slot.index));
        if let Err(refused) = self.check_source(now, source, &counts) {
            self.cancel(slot);
            return Err(refused);
        }
        if let Some(s) = self.live_slot(slot) {
            s.source = Some(source);
        }
        Ok(())
    }

    /// The session process of `slot` is `pid`. Ignored unless the slot is still reserved
    /// by this id (not cancelled, reused or already started).
    pub fn started(&mut self, slot: SlotId, pid: i32) {
        if let Some(s) = self.live_slot(slot) {
            if s.state == State::Reserved {
                s.state = State::Running(pid);
            }
        }
    }

    /// Releases `slot` (its fork failed): it stops counting at once. Ignored for a slot
    /// that was released or reused since.
    pub fn cancel(&mut self, slot: SlotId) {
        if let Some(s) = self.live_slot(slot) {
            s.state = State::Free;
            s.source = None;
        }
    }

    /// The session process `pid` exited: its slot still counts until [`Limits::window`]
    /// after its start. False, and nothing changed, if no running session has this pid.
    pub fn exited(&mut self, pid: i32) -> bool {
        match self
            .slots
            .iter_mut()
            .find(|s| s.state == State::Running(pid))
        {
            Some(s) => {
                s.state = State::Exited(pid);
                true
            }
            None => false,
        }
    }

    /// The source of session `pid`: the running one, else the latest exited one still in
    /// the table. `None` if unknown or not yet known (pending).
    pub fn source_of(&self, pid: i32) -> Option<IpAddr> {
        if let Some(s) = self.slots.iter().find(|s| s.state == State::Running(pid)) {
            return s.source;
        }
        self.slots
            .iter()
            .filter(|s| s.state == State::Exited(pid))
            .max_by_key(|s| s.start)
            .and_then(|s| s.source)
    }

    /// Running sessions (started and not exited).
    pub fn running(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::Running(_)))
            .count()
    }

    /// A failed login in session `pid`: records it against the session's source and
    /// returns how long to wait before answering `-ERR`: `failure_delay * 2^(n-1)`, at
    /// most `failure_delay_max`, where n counts this source's failures since it last went
    /// `failure_memory` without one, this one included. IPv6 sources are keyed by their
    /// /`ipv6_prefix` network. Zero if `failure_delay` is zero. A session whose source is
    /// unknown gets the first delay and records nothing.
    pub fn login_failed(&mut self, now: Instant, pid: i32) -> Duration {
        if self.limits.failure_delay.is_zero() {
            return Duration::ZERO;
        }
        let n = match self.source_of(pid) {
            Some(source) => {
                let key = self.failure_key(source);
                self.record_failure(now, key)
            }
            None => 1,
        };
        self.delay(n)
    }

    /// The delay for the `n`th failure (n ≥ 1).
    fn delay(&self, n: u32) -> Duration {
        let max = self.limits.failure_delay_max;
        let shift = n.saturating_sub(1).min(31);
        self.limits
            .failure_delay
            .checked_mul(1u32 << shift)
            .map_or(max, |d| d.min(max))
    }

    /// IPv4: the address; IPv6: its network.
    fn failure_key(&self, source: IpAddr) -> IpAddr {
        match source {
            IpAddr::V4(_) => source,
            IpAddr::V6(a) => IpAddr::V6(mask_v6(a, self.limits.ipv6_prefix)),
        }
    }

    /// Counts a failure for `key` and returns the count, this one included.
    fn record_failure(&mut self, now: Instant, key: IpAddr) -> u32 {
        let memory = self.limits.failure_memory;
        if let Some(f) = self.failures.get_mut(&key) {
            f.count = if now.saturating_duration_since(f.last) >= memory {
                1
            } else {
                f.count.saturating_add(1)
            };
            f.last = now;
            return f.count;
        }
        insert_bounded(
            &mut self.failures,
            key,
            Failures {
                count: 1,
                last: now,
            },
            |f| f.last,
        );
        1
    }

    /// The slot `id` names, unless it was released or reused since.
    fn live_slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index)
            .filter(|s| s.serial == id.serial && s.state != State::Free)
    }

    /// Drops inactive slots from the end of a table longer than `max_sessions` (after
    /// [`Table::set_limits`] lowered it), so that memory follows the new figure.
    fn shrink(&mut self, now: Instant) {
        let max = usize::try_from(self.limits.max_sessions).unwrap_or(usize::MAX);
        while self.slots.len() > max {
            match self.slots.last() {
                Some(s) if !s.is_active(now, self.limits.window) => {
                    self.slots.pop();
                }
                _ => break,
            }
        }
    }

    /// One pass over the slots: active ones in all, from `source` and from its network
    /// (not counting slot `skip`), and the first inactive slot.
    fn scan(&self, now: Instant, source: Option<IpAddr>, skip: Option<usize>) -> Counts {
        let window = self.limits.window;
        let net = source.map(|a| self.network(a));
        let mut c = Counts {
            source: 0,
            network: 0,
            total: 0,
            free: None,
        };
        for (i, s) in self.slots.iter().enumerate() {
            if !s.is_active(now, window) {
                if c.free.is_none() {
                    c.free = Some(i);
                }
                continue;
            }
            c.total = c.total.saturating_add(1);
            if skip == Some(i) {
                continue;
            }
            if let (Some(this), Some(other)) = (source, s.source) {
                if this == other {
                    c.source = c.source.saturating_add(1);
                }
                if net == Some(self.network(other)) {
                    c.network = c.network.saturating_add(1);
                }
            }
        }
        c
    }

    /// The per-source and per-network checks.
    fn check_source(&mut self, now: Instant, source: IpAddr, c: &Counts) -> Result<(), Refused> {
        if c.source >= self.limits.max_per_source {
            let log = rate_limit(&mut self.source_logs, source, now, self.limits.log_interval)
                .then(|| format!("{source}: per source limit reached"));
            return Err(Refused {
                reason: Refusal::PerSource,
                log,
            });
        }
        if c.network >= self.limits.max_per_network {
            let (net, len) = self.network(source);
            let log = rate_limit(
                &mut self.network_logs,
                (net, len),
                now,
                self.limits.log_interval,
            )
            .then(|| format!("{net}/{len}: per network limit reached"));
            return Err(Refused {
                reason: Refusal::PerNetwork,
                log,
            });
        }
        Ok(())
    }

    fn refuse_global(&mut self, now: Instant, peer: IpAddr) -> Refused {
        let log = if may_log(self.global_log, now, self.limits.log_interval) {
            self.global_log = Some(now);
            Some(format!("{peer}: sessions limit reached"))
        } else {
            None
        };
        Refused {
            reason: Refusal::Global,
            log,
        }
    }

    /// Takes slot `free`, or a new one if the table is shorter than `max_sessions`.
    fn reserve(
        &mut self,
        now: Instant,
        free: Option<usize>,
        source: Option<IpAddr>,
    ) -> Option<SlotId> {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let slot = Slot {
            state: State::Reserved,
            serial,
            source,
            start: now,
        };
        let index = match free {
            Some(i) => {
                *self.slots.get_mut(i)? = slot;
                i
            }
            None => {
                let max = usize::try_from(self.limits.max_sessions).unwrap_or(usize::MAX);
                if self.slots.len() >= max {
                    return None;
                }
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        Some(SlotId { index, serial })
    }

    /// The network of `addr` and its length.
    fn network(&self, addr: IpAddr) -> (IpAddr, u8) {
        match addr {
            IpAddr::V4(a) => {
                let len = self.limits.ipv4_prefix.min(32);
                (IpAddr::V4(mask_v4(a, len)), len)
            }
            IpAddr::V6(a) => {
                let len = self.limits.ipv6_prefix.min(128);
                (IpAddr::V6(mask_v6(a, len)), len)
            }
        }
    }
}

/// `ip` with every bit after the first `prefix` cleared (`prefix` beyond the address's
/// length keeps it whole).
pub(crate) fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(mask_v4(a, prefix)),
        IpAddr::V6(a) => IpAddr::V6(mask_v6(a, prefix)),
    }
}

fn mask_v4(a: Ipv4Addr, len: u8) -> Ipv4Addr {
    let len = u32::from(len.min(32));
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

fn mask_v6(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let len = u32::from(len.min(128));
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    Ipv6Addr::from(u128::from(a) & mask)
}

/// popa3d's rule: log if never logged, if the last line is `interval` old, or if the
/// clock went backwards.
pub(crate) fn may_log(last: Option<Instant>, now: Instant, interval: Duration) -> bool {
    match last {
        None => true,
        Some(last) => now
            .checked_duration_since(last)
            .is_none_or(|d| d >= interval),
    }
}

/// [`may_log`] for `key`, recording `now` when it says yes.
fn rate_limit<K: Hash + Eq + Copy>(
    logs: &mut HashMap<K, Instant>,
    key: K,
    now: Instant,
    interval: Duration,
) -> bool {
    if !may_log(logs.get(&key).copied(), now, interval) {
        return false;
    }
    insert_bounded(logs, key, now, |t| *t);
    true
}

/// Inserts into a map of at most [`MAX_RECORDS`] entries, first dropping the entry whose
/// `time` is oldest if a new key would exceed it.
fn insert_bounded<K: Hash + Eq + Copy, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    time: impl Fn(&V) -> Instant,
) {
    if map.len() >= MAX_RECORDS && !map.contains_key(&key) {
        let oldest = map.iter().min_by_key(|(_, v)| time(v)).map(|(k, _)| *k);
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// A fake clock: `at(base, n)` is n seconds (fractions allowed) after `base`.
    fn at(base: Instant, secs: f64) -> Instant {
        base + Duration::from_secs_f64(secs)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn small(max_sessions: u32, per_source: u32, per_network: u32) -> Limits {
        Limits {
            max_sessions,
            max_per_source: per_source,
            max_per_network: per_network,
            ..Limits::default()
        }
    }

    #[test]
    fn defaults_are_popa3d_and_ours() {
        let l = Limits::default();
        assert_eq!(
            (l.max_sessions, l.max_per_source, l.max_per_network),
            (500, 50, 100)
        );
        assert_eq!((l.ipv4_prefix, l.ipv6_prefix), (24, 64));
        assert_eq!(l.window, Duration::from_secs(10));
        assert_eq!(l.log_interval, Duration::from_secs(10));
        assert_eq!(l.failure_delay, Duration::from_secs(1));
        assert_eq!(l.failure_delay_max, Duration::from_secs(15));
        assert_eq!(l.failure_memory, Duration::from_secs(600));
        assert_eq!(Table::new(l.clone()).limits(), &l);
    }

    /// research/popa3d.md §5.6: 50 sessions from one address are served; the 51st to 53rd
    /// are refused with a single log line; after all 50 end, a connection at 8.5 s is still
    /// refused and one at 11.7 s accepted.
    #[test]
    fn popa3d_observed_window() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        let lo = ip("127.0.0.1");
        for pid in 1..=50 {
            let slot = t.admit(t0, lo).unwrap();
            t.started(slot, pid);
        }
        assert_eq!(t.running(), 50);
        let logs: Vec<_> = (0..3u8)
            .map(|i| {
                let r = t.admit(at(t0, 0.1 * f64::from(i)), lo).unwrap_err();
                assert_eq!(r.reason, Refusal::PerSource);
                r.log
            })
            .collect();
        assert_eq!(
            logs,
            [
                Some("127.0.0.1: per source limit reached".to_owned()),
                None,
                None
            ]
        );
        for pid in 1..=50 {
            assert!(t.exited(pid));
        }
        assert_eq!(t.running(), 0);
        let r = t.admit(at(t0, 8.5), lo).unwrap_err();
        assert_eq!(r.reason, Refusal::PerSource);
        assert_eq!(r.log, None, "logged less than 10 s ago");
        assert!(t.admit(at(t0, 11.7), lo).is_ok());
    }

    #[test]
    fn running_session_counts_after_window() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 1, 10));
        let a = ip("192.0.2.1");
        let slot = t.admit(t0, a).unwrap();
        t.started(slot, 7);
        assert_eq!(
            t.admit(at(t0, 3600.0), a).unwrap_err().reason,
            Refusal::PerSource
        );
        assert!(t.exited(7));
        assert!(t.admit(at(t0, 3600.0), a).is_ok());
    }

    #[test]
    fn reservation_without_process_ages_out() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 1, 10));
        let a = ip("192.0.2.1");
        t.admit(t0, a).unwrap();
        assert!(t.admit(at(t0, 9.9), a).is_err());
        assert!(t.admit(at(t0, 10.0), a).is_ok());
    }

    #[test]
    fn clock_going_backwards_counts_as_just_started() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 1, 10));
        let a = ip("192.0.2.1");
        let slot = t.admit(at(t0, 1000.0), a).unwrap();
        t.started(slot, 1);
        assert!(t.exited(1));
        let r = t.admit(at(t0, 1001.0), a).unwrap_err();
        assert_eq!(r.reason, Refusal::PerSource);
        assert!(r.log.is_some());
        assert!(t.admit(at(t0, 1002.0), a).unwrap_err().log.is_none());
        // Earlier than the slot's start and the last log line: the slot still counts,
        // and the line is logged again at once. No panic.
        let r = t.admit(at(t0, 500.0), a).unwrap_err();
        assert_eq!(r.reason, Refusal::PerSource);
        assert!(r.log.is_some(), "earlier than the last log line");
        assert!(t.admit(at(t0, 501.0), a).unwrap_err().log.is_none());
        // Global log clock too.
        let mut g = Table::new(small(0, 1, 1));
        assert!(g.admit(at(t0, 1000.0), a).unwrap_err().log.is_some());
        assert!(g.admit(at(t0, 1001.0), a).unwrap_err().log.is_none());
        assert!(g.admit(at(t0, 999.0), a).unwrap_err().log.is_some());
        assert!(t.admit(at(t0, 1010.0), a).is_ok());
    }

    #[test]
    fn exactly_max_per_source_admitted() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 3, 100));
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            t.admit(t0, a).unwrap();
        }
        assert_eq!(t.admit(t0, a).unwrap_err().reason, Refusal::PerSource);
        // Another address in the same /24 is not affected by the per-source limit.
        assert!(t.admit(t0, ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn zero_limits_refuse_everything() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 0, 10));
        assert_eq!(
            t.admit(t0, ip("192.0.2.1")).unwrap_err().reason,
            Refusal::PerSource
        );
        let mut t = Table::new(small(0, 10, 10));
        assert_eq!(
            t.admit(t0, ip("192.0.2.1")).unwrap_err().reason,
            Refusal::Global
        );
        assert_eq!(
            t.admit_pending(t0, ip("192.0.2.1")).unwrap_err().reason,
            Refusal::Global
        );
        assert!(t.slots.is_empty());
    }

    #[test]
    fn per_network_ipv4() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 50, 3));
        for a in ["192.0.2.1", "192.0.2.2", "192.0.2.254"] {
            t.admit(t0, ip(a)).unwrap();
        }
        let r = t.admit(t0, ip("192.0.2.77")).unwrap_err();
        assert_eq!(r.reason, Refusal::PerNetwork);
        assert_eq!(
            r.log.as_deref(),
            Some("192.0.2.0/24: per network limit reached")
        );
        assert!(t.admit(t0, ip("192.0.3.1")).is_ok());
        assert!(t.admit(t0, ip("::ffff:192.0.4.1")).is_ok());
    }

    #[test]
    fn per_network_ipv6() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 50, 2));
        t.admit(t0, ip("2001:db8::1")).unwrap();
        t.admit(t0, ip("2001:db8::ffff:ffff:ffff:ffff")).unwrap();
        let r = t.admit(t0, ip("2001:db8::abcd")).unwrap_err();
        assert_eq!(r.reason, Refusal::PerNetwork);
        assert_eq!(
            r.log.as_deref(),
            Some("2001:db8::/64: per network limit reached")
        );
        assert!(t.admit(t0, ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn prefixes_at_non_byte_boundaries() {
        let t0 = Instant::now();
        let limits = Limits {
            ipv4_prefix: 20,
            ipv6_prefix: 61,
            ..small(100, 50, 1)
        };
        let mut t = Table::new(limits);
        t.admit(t0, ip("10.1.31.200")).unwrap(); // 10.1.16.0/20
        let r = t.admit(t0, ip("10.1.16.1")).unwrap_err();
        assert_eq!(
            r.log.as_deref(),
            Some("10.1.16.0/20: per network limit reached")
        );
        assert!(t.admit(t0, ip("10.1.32.1")).is_ok(), "next /20");
        t.admit(t0, ip("2001:db8:0:7::1")).unwrap(); // 2001:db8::/61 holds :0: to :7:
        let r = t.admit(t0, ip("2001:db8::1")).unwrap_err();
        assert_eq!(
            r.log.as_deref(),
            Some("2001:db8::/61: per network limit reached")
        );
        assert!(t.admit(t0, ip("2001:db8:0:8::1")).is_ok(), "next /61");
    }

    #[test]
    fn masks() {
        let a = "203.0.113.77".parse().unwrap();
        assert_eq!(mask_v4(a, 0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(mask_v4(a, 32), a);
        assert_eq!(mask_v4(a, 200), a);
        assert_eq!(mask_v4(a, 25), Ipv4Addr::new(203, 0, 113, 0));
        assert_eq!(mask_v4(a, 26), Ipv4Addr::new(203, 0, 113, 64));
        assert_eq!(mask_v4(a, 1), Ipv4Addr::new(128, 0, 0, 0));
        let b: Ipv6Addr = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert_eq!(mask_v6(b, 0), Ipv6Addr::UNSPECIFIED);
        assert_eq!(mask_v6(b, 128), b);
        assert_eq!(mask_v6(b, 255), b);
        assert_eq!(
            mask_v6(b, 127),
            "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(
            mask_v6(b, 36),
            "2001:db8:f000::".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn prefix_zero_and_oversized() {
        let t0 = Instant::now();
        let limits = Limits {
            ipv4_prefix: 0,
            ipv6_prefix: 200,
            ..small(100, 50, 1)
        };
        let mut t = Table::new(limits);
        t.admit(t0, ip("192.0.2.1")).unwrap();
        let r = t.admit(t0, ip("198.51.100.1")).unwrap_err();
        assert_eq!(
            r.log.as_deref(),
            Some("0.0.0.0/0: per network limit reached")
        );
        t.admit(t0, ip("2001:db8::1")).unwrap();
        assert!(
            t.admit(t0, ip("2001:db8::2")).is_ok(),
            "/128: each address its own"
        );
        let r = t.admit(t0, ip("2001:db8::1")).unwrap_err();
        assert_eq!(
            r.log.as_deref(),
            Some("2001:db8::1/128: per network limit reached")
        );
    }

    #[test]
    fn global_limit_and_its_log() {
        let t0 = Instant::now();
        let mut t = Table::new(small(3, 50, 100));
        for i in 1..=3 {
            t.admit(t0, ip(&format!("192.0.2.{i}"))).unwrap();
        }
        let logs: Vec<_> = (0..3)
            .map(|_| {
                let r = t.admit(at(t0, 1.0), ip("198.51.100.9")).unwrap_err();
                assert_eq!(r.reason, Refusal::Global);
                r.log
            })
            .collect();
        assert_eq!(
            logs,
            [
                Some("198.51.100.9: sessions limit reached".to_owned()),
                None,
                None
            ]
        );
        // One timestamp for the whole server: another address is not logged either.
        assert_eq!(
            t.admit(at(t0, 5.0), ip("203.0.113.1")).unwrap_err().log,
            None
        );
        assert_eq!(
            t.admit_pending(at(t0, 5.0), ip("203.0.113.1"))
                .unwrap_err()
                .log,
            None
        );
        // Logged again 10 s after the last line, not before.
        let mut t2 = Table::new(small(1, 50, 100));
        let s = t2.admit(t0, ip("192.0.2.1")).unwrap();
        t2.started(s, 1);
        assert!(t2.admit(t0, ip("192.0.2.2")).unwrap_err().log.is_some());
        assert!(t2
            .admit(at(t0, 9.9), ip("192.0.2.2"))
            .unwrap_err()
            .log
            .is_none());
        assert_eq!(
            t2.admit(at(t0, 10.0), ip("192.0.2.2"))
                .unwrap_err()
                .log
                .as_deref(),
            Some("192.0.2.2: sessions limit reached")
        );
        assert_eq!(t.slots.len(), 3);
    }

    #[test]
    fn per_source_log_rate_limited_per_address() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 1, 100));
        let (a, b) = (ip("192.0.2.1"), ip("198.51.100.1"));
        let sa = t.admit(t0, a).unwrap();
        let sb = t.admit(t0, b).unwrap();
        t.started(sa, 1);
        t.started(sb, 2);
        let logs: Vec<_> = (0..3u8)
            .map(|i| t.admit(at(t0, f64::from(i)), a).unwrap_err().log)
            .collect();
        assert_eq!(logs.iter().filter(|l| l.is_some()).count(), 1);
        assert!(logs[0].is_some());
        // b has its own timestamp.
        assert_eq!(
            t.admit(at(t0, 3.0), b).unwrap_err().log.as_deref(),
            Some("198.51.100.1: per source limit reached")
        );
        assert!(t.admit(at(t0, 9.9), a).unwrap_err().log.is_none());
        assert!(t.admit(at(t0, 10.0), a).unwrap_err().log.is_some());
        assert!(t.admit(at(t0, 10.5), a).unwrap_err().log.is_none());
    }

    #[test]
    fn per_network_log_rate_limited_per_network() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 50, 1));
        let s = t.admit(t0, ip("192.0.2.1")).unwrap();
        t.started(s, 1);
        let logs: Vec<_> = (2..5)
            .map(|i| {
                t.admit(at(t0, 1.0), ip(&format!("192.0.2.{i}")))
                    .unwrap_err()
                    .log
            })
            .collect();
        assert_eq!(logs.iter().filter(|l| l.is_some()).count(), 1);
        assert!(t
            .admit(at(t0, 11.0), ip("192.0.2.9"))
            .unwrap_err()
            .log
            .is_some());
    }

    #[test]
    fn checks_in_order_source_network_global() {
        let t0 = Instant::now();
        // Every limit reached at once by the same source: per source wins, as in popa3d.
        let mut t = Table::new(small(2, 2, 2));
        let a = ip("192.0.2.1");
        t.admit(t0, a).unwrap();
        t.admit(t0, a).unwrap();
        assert_eq!(t.admit(t0, a).unwrap_err().reason, Refusal::PerSource);
        // Its network and the server full: per network before global.
        assert_eq!(
            t.admit(t0, ip("192.0.2.2")).unwrap_err().reason,
            Refusal::PerNetwork
        );
        assert_eq!(
            t.admit(t0, ip("192.0.3.2")).unwrap_err().reason,
            Refusal::Global
        );
    }

    #[test]
    fn ipv4_mapped_counts_as_ipv4() {
        let t0 = Instant::now();
        let mut t = Table::new(small(100, 2, 100));
        let s = t.admit(t0, ip("::ffff:192.0.2.1")).unwrap();
        t.started(s, 10);
        assert_eq!(t.source_of(10), Some(ip("192.0.2.1")));
        t.admit(t0, ip("192.0.2.1")).unwrap();
        let r = t.admit(t0, ip("::ffff:192.0.2.1")).unwrap_err();
        assert_eq!(r.reason, Refusal::PerSource);
        assert_eq!(
            r.log.as_deref(),
            Some("192.0.2.1: per source limit reached")
        );
        // Failures too: the mapped and the plain address share a record.
        let s = t.admit(at(t0, 20.0), ip("192.0.2.1")).unwrap();
        t.started(s, 11);
        let now = at(t0, 20.0);
        assert_eq!(t.login_failed(now, 10), Duration::from_secs(1));
        assert_eq!(t.login_failed(now, 11), Duration::from_secs(2));
    }

    #[test]
    fn pending_slots_count_globally_only() {
        let t0 = Instant::now();
        let mut t = Table::new(small(3, 1, 1));
        let proxy = ip("192.0.2.100");
        let p1 = t.admit_pending(t0, proxy).unwrap();
        let p2 = t.admit_pending(t0, proxy).unwrap();
        t.started(p1, 1);
        t.started(p2, 2);
        assert_eq!(t.source_of(1), None);
        // Not counted per source or network for the proxy's own address.
        t.admit(t0, proxy).unwrap();
        let r = t.admit_pending(t0, proxy).unwrap_err();
        assert_eq!(r.reason, Refusal::Global);
        assert_eq!(
            r.log.as_deref(),
            Some("192.0.2.100: sessions limit reached")
        );
        // The real source: per source is checked against the others.
        t.set_source(t0, p1, ip("198.51.100.1")).unwrap();
        assert_eq!(t.source_of(1), Some(ip("198.51.100.1")));
        let r = t.set_source(t0, p2, ip("::ffff:198.51.100.1")).unwrap_err();
        assert_eq!(r.reason, Refusal::PerSource);
        assert_eq!(
            r.log.as_deref(),
            Some("198.51.100.1: per source limit reached")
        );
        // Refused: released at once, so another connection fits.
        assert!(!t.exited(2));
        assert_eq!(t.running(), 1);
        let p3 = t.admit_pending(t0, proxy).unwrap();
        // Per network, against the others.
        let r = t.set_source(t0, p3, ip("198.51.100.2")).unwrap_err();
        assert_eq!(r.reason, Refusal::PerNetwork);
        // A released id is refused without a log line.
        let r = t.set_source(t0, p3, ip("203.0.113.1")).unwrap_err();
        assert_eq!(
            r,
            Refused {
                reason: Refusal::Global,
                log: None
            }
        );
    }

    #[test]
    fn set_source_does_not_count_its_own_slot() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 1, 1));
        let p = t.admit_pending(t0, ip("192.0.2.100")).unwrap();
        t.set_source(t0, p, ip("198.51.100.1")).unwrap();
        // Setting the same source again still finds only itself.
        t.set_source(t0, p, ip("198.51.100.1")).unwrap();
        assert_eq!(
            t.admit(t0, ip("198.51.100.1")).unwrap_err().reason,
            Refusal::PerSource
        );
    }

    #[test]
    fn cancel_releases_at_once() {
        let t0 = Instant::now();
        let mut t = Table::new(small(1, 1, 1));
        let a = ip("192.0.2.1");
        let s = t.admit(t0, a).unwrap();
        assert!(t.admit(t0, a).is_err());
        t.cancel(s);
        assert!(t.admit(t0, a).is_ok());
    }

    #[test]
    fn slot_ids_not_confused_after_reuse() {
        let t0 = Instant::now();
        let mut t = Table::new(small(1, 5, 5));
        let old = t.admit(t0, ip("192.0.2.1")).unwrap();
        t.cancel(old);
        let new = t.admit(t0, ip("192.0.2.2")).unwrap();
        assert_eq!(new.index, old.index, "the slot was reused");
        assert_ne!(new, old);
        t.started(old, 100); // cancelled: ignored
        assert_eq!(t.running(), 0);
        assert!(!t.exited(100));
        t.cancel(old); // must not release the new reservation
        assert_eq!(
            t.admit(t0, ip("192.0.2.3")).unwrap_err().reason,
            Refusal::Global
        );
        assert!(t.set_source(t0, old, ip("192.0.2.9")).is_err());
        assert_eq!(t.slots[0].source, Some(ip("192.0.2.2")));
        t.started(new, 200);
        assert_eq!(t.running(), 1);
        assert_eq!(t.source_of(200), Some(ip("192.0.2.2")));
        t.started(new, 300); // already started: ignored
        assert!(!t.exited(300));
        assert!(t.exited(200));
    }

    #[test]
    fn exited_unknown_pid_changes_nothing() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 10, 10));
        let s = t.admit(t0, ip("192.0.2.1")).unwrap();
        t.started(s, 5);
        assert!(!t.exited(6));
        assert_eq!(t.running(), 1);
        assert!(t.exited(5));
        assert!(!t.exited(5), "already exited");
        assert_eq!(t.running(), 0);
        // Still known after exit, for the log.
        assert_eq!(t.source_of(5), Some(ip("192.0.2.1")));
        assert_eq!(t.source_of(6), None);
    }

    #[test]
    fn table_never_grows_beyond_max_sessions() {
        let t0 = Instant::now();
        let mut t = Table::new(small(4, 50, 100));
        for i in 0..100u32 {
            let now = at(t0, 3.0 * f64::from(i));
            match t.admit(now, ip(&format!("10.0.{}.{}", i / 256, i % 256))) {
                Ok(s) => {
                    t.started(s, i32::try_from(i).unwrap() + 1);
                    assert!(t.exited(i32::try_from(i).unwrap() + 1));
                }
                Err(r) => assert_eq!(r.reason, Refusal::Global),
            }
            assert!(t.slots.len() <= 4);
        }
        assert_eq!(t.slots.len(), 4);
    }

    #[test]
    fn lowering_max_sessions() {
        let t0 = Instant::now();
        let mut t = Table::new(small(10, 50, 100));
        for pid in 1..=10 {
            let s = t.admit(t0, ip(&format!("192.0.2.{pid}"))).unwrap();
            t.started(s, pid);
        }
        t.set_limits(small(3, 50, 100));
        assert_eq!(t.limits().max_sessions, 3);
        let r = t.admit(at(t0, 1.0), ip("198.51.100.1")).unwrap_err();
        assert_eq!(r.reason, Refusal::Global);
        for pid in 1..=8 {
            assert!(t.exited(pid));
        }
        // 2 still running, 8 exited but within the window: still full.
        assert!(t.admit(at(t0, 9.0), ip("198.51.100.1")).is_err());
        // After the window: 2 active < 3, admitted; the table shrinks back.
        assert!(t.admit(at(t0, 20.0), ip("198.51.100.1")).is_ok());
        assert!(t.admit(at(t0, 20.0), ip("198.51.100.2")).is_err());
        assert!(t.exited(9));
        assert!(t.exited(10));
        assert!(t.admit(at(t0, 40.0), ip("198.51.100.3")).is_ok());
        assert!(t.slots.len() <= 3, "len {}", t.slots.len());
        // Raising it again takes effect at once.
        t.set_limits(small(10, 50, 100));
        assert!(t.admit(at(t0, 40.0), ip("198.51.100.4")).is_ok());
    }

    fn running_session(t: &mut Table, now: Instant, source: &str, pid: i32) {
        let s = t.admit(now, ip(source)).unwrap();
        t.started(s, pid);
    }

    #[test]
    fn failure_delays_double_up_to_the_cap() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        running_session(&mut t, t0, "192.0.2.1", 1);
        let delays: Vec<_> = (0..7u8)
            .map(|i| t.login_failed(at(t0, f64::from(i)), 1).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 15, 15, 15]);
        // Another session from the same address continues the count.
        running_session(&mut t, t0, "192.0.2.1", 2);
        assert_eq!(t.login_failed(at(t0, 10.0), 2), Duration::from_secs(15));
    }

    #[test]
    fn failures_are_per_source() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        running_session(&mut t, t0, "192.0.2.1", 1);
        running_session(&mut t, t0, "192.0.2.2", 2);
        for _ in 0..10 {
            t.login_failed(t0, 1);
        }
        assert_eq!(t.login_failed(t0, 1), Duration::from_secs(15));
        assert_eq!(
            t.login_failed(t0, 2),
            Duration::from_secs(1),
            "same /24, other address"
        );
    }

    #[test]
    fn ipv6_failures_keyed_by_network() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        running_session(&mut t, t0, "2001:db8::1", 1);
        running_session(&mut t, t0, "2001:db8::ffff:2", 2);
        running_session(&mut t, t0, "2001:db8:0:1::1", 3);
        assert_eq!(t.login_failed(t0, 1), Duration::from_secs(1));
        assert_eq!(t.login_failed(t0, 2), Duration::from_secs(2), "same /64");
        assert_eq!(t.login_failed(t0, 3), Duration::from_secs(1), "other /64");
    }

    #[test]
    fn failures_forgotten_after_memory() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        running_session(&mut t, t0, "192.0.2.1", 1);
        for _ in 0..4 {
            t.login_failed(t0, 1);
        }
        assert_eq!(t.login_failed(at(t0, 599.0), 1), Duration::from_secs(15));
        // 600 s after the last failure: forgotten.
        assert_eq!(t.login_failed(at(t0, 1199.0), 1), Duration::from_secs(1));
        // A clock going backwards keeps the record (age zero).
        assert_eq!(t.login_failed(at(t0, 10.0), 1), Duration::from_secs(2));
    }

    #[test]
    fn failure_delay_edge_cases() {
        let t0 = Instant::now();
        let off = Limits {
            failure_delay: Duration::ZERO,
            ..Limits::default()
        };
        let mut t = Table::new(off);
        running_session(&mut t, t0, "192.0.2.1", 1);
        assert_eq!(t.login_failed(t0, 1), Duration::ZERO);
        assert!(t.failures.is_empty());
        // Unknown pid: the first delay, nothing recorded.
        let mut t = Table::new(Limits::default());
        assert_eq!(t.login_failed(t0, 99), Duration::from_secs(1));
        assert!(t.failures.is_empty());
        // Huge counts and delays saturate at the cap.
        let big = Limits {
            failure_delay: Duration::from_secs(u64::MAX / 4),
            failure_delay_max: Duration::from_secs(15),
            ..Limits::default()
        };
        let t = Table::new(big);
        assert_eq!(t.delay(1), Duration::from_secs(15));
        let t = Table::new(Limits::default());
        assert_eq!(t.delay(u32::MAX), Duration::from_secs(15));
        assert_eq!(t.delay(0), Duration::from_secs(1));
    }

    #[test]
    fn failure_table_is_bounded() {
        let t0 = Instant::now();
        let mut t = Table::new(Limits::default());
        let key = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        // Record 0 failed twice, at the start; record 1 failed at the start and again
        // at the end, so it is the most recent one.
        assert_eq!(t.record_failure(t0, key(0)), 1);
        assert_eq!(t.record_failure(t0, key(0)), 2);
        let n = u32::try_from(MAX_RECORDS).unwrap();
        for i in 1..n {
            t.record_failure(at(t0, 1.0), key(i));
        }
        assert_eq!(t.record_failure(at(t0, 2.0), key(1)), 2);
        assert_eq!(t.failures.len(), MAX_RECORDS);
        // Full: a new source drops the entry with the oldest last failure, key 0.
        assert_eq!(t.record_failure(at(t0, 3.0), key(n)), 1);
        assert_eq!(t.failures.len(), MAX_RECORDS);
        assert!(!t.failures.contains_key(&key(0)));
        assert_eq!(t.record_failure(at(t0, 4.0), key(1)), 3, "kept");
        assert_eq!(t.failures.len(), MAX_RECORDS);
    }

    #[test]
    fn log_tables_are_bounded() {
        let t0 = Instant::now();
        let mut logs = HashMap::new();
        let interval = Duration::from_secs(10);
        for i in 0..MAX_RECORDS + 10 {
            assert!(rate_limit(&mut logs, i, at(t0, i as f64), interval));
            assert!(logs.len() <= MAX_RECORDS);
        }
        assert!(!logs.contains_key(&0));
        assert!(!rate_limit(
            &mut logs,
            MAX_RECORDS + 9,
            at(t0, (MAX_RECORDS + 9) as f64),
            interval
        ));
    }
}

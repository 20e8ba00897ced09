//! UIDLs: popa3d's, bit for bit, made unique.
//!
//! popa3d's UIDL is the MD5 of a few raw header lines (the header selection below),
//! printed as 16 hex digits: digest bytes 3,2,1,0,7,6,5,4. It repeats whenever two
//! messages share those lines: every message without any of them gets
//! `d98c1dd404b2008f` (MD5 of nothing), and identical deliveries collide. RFC 1939 §7
//! requires a UIDL to be unique in the maildrop, and a repeated one makes clients skip
//! mail, so we keep popa3d's value wherever it can be kept and disambiguate the rest:
//!
//! 1. The first message (in file order) with a given popa3d UIDL `P` shows `P`. So where
//!    popa3d's UIDL is unique, ours is identical, and mail appended later never changes
//!    the UIDL of mail already there.
//! 2. A later message with the same `P` shows `P-H`, where `H` is 16 hex digits of the
//!    MD5 of the whole message as stored (From_ line and data, separator excluded). It
//!    depends only on the message itself, not on unrelated messages.
//! 3. Later messages that are byte-identical to another one shown as `P-H` (the same
//!    From_ line too, so delivered in the same second) show `P-H-2`, `P-H-3`, ... in file
//!    order.
//!
//! A UIDL changes only when an earlier message of its own group is deleted: the next
//! one then becomes the group's first and shows `P`. docs/uidl.md has the rationale.

use std::collections::{HashMap, HashSet};
use std::io;

/// popa3d's header selection for one message, fed the start of each header line.
#[derive(Default)]
pub struct HeaderSelector {
    received_seen: bool,
    prev_hashed: bool,
}

fn has_prefix_ci(line: &[u8], name: &[u8]) -> bool {
    line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

impl HeaderSelector {
    /// Decides whether the header line starting with `head` is hashed. `head` holds at
    /// least the line's first 14 bytes, or the whole line if shorter (it may run past the
    /// line's LF; no header name contains one).
    pub fn classify(&mut self, head: &[u8]) -> bool {
        // Dispatch on the first byte: most header lines (Subject, From, To, Content-*,
        // DKIM-*) fail here without any string comparison.
        let hashed = match head.first() {
            // A continuation line inherits its header's decision.
            Some(b' ') | Some(b'\t') => self.prev_hashed,
            // Only the first Received: line, which the local MTA wrote.
            Some(b'R') | Some(b'r') if has_prefix_ci(head, b"Received:") => {
                !std::mem::replace(&mut self.received_seen, true)
            }
            Some(b'D') | Some(b'd') if has_prefix_ci(head, b"Delivered-To:") => true,
            // Date: and Message-ID: only count before any Received: line.
            Some(b'D') | Some(b'd') if has_prefix_ci(head, b"Date:") => !self.received_seen,
            Some(b'M') | Some(b'm') if has_prefix_ci(head, b"Message-ID:") => !self.received_seen,
            // popa3d compares the first byte case-sensitively here.
            Some(b'X') => has_prefix_ci(head, b"X-Delivery-ID:"),
            _ => false,
        };
        self.prev_hashed = hashed;
        hashed
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut Vec<u8>, bytes: impl IntoIterator<Item = u8>) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// popa3d's 16-digit UIDL of a header digest.
pub fn popa3d_uidl(digest: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (k, i) in [3, 2, 1, 0, 7, 6, 5, 4].into_iter().enumerate() {
        out[2 * k] = HEX[usize::from(digest[i] >> 4)];
        out[2 * k + 1] = HEX[usize::from(digest[i] & 15)];
    }
    out
}

/// Every message's UIDL, stored end to end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uidls {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Uidls {
    pub fn get(&self, index: usize) -> &[u8] {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        let end = self.ends.get(index).map_or(start, |&e| e as usize);
        &self.bytes[start..end]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Assigns UIDLs by the rules in the module docs. `digests` are the popa3d header
    /// digests in file order; `content_md5(i)` hashes message `i` as stored and is called
    /// only for messages whose popa3d UIDL repeats an earlier one.
    pub fn assign(
        digests: &[[u8; 16]],
        mut content_md5: impl FnMut(usize) -> io::Result<[u8; 16]>,
    ) -> io::Result<Uidls> {
        let mut first: HashSet<[u8; 16]> = HashSet::with_capacity(digests.len());
        let mut seen_full: HashMap<([u8; 16], [u8; 16]), u32> = HashMap::new();
        let mut out = Uidls {
            bytes: Vec::with_capacity(digests.len() * 16),
            ends: Vec::with_capacity(digests.len()),
        };
        for (i, d) in digests.iter().enumerate() {
            let p = popa3d_uidl(d);
            out.bytes.extend_from_slice(&p);
            // Keyed on the printed 64 bits, since that is what would repeat on the wire.
            let mut key = [0u8; 16];
            key.copy_from_slice(&p);
            if !first.insert(key) {
                let h = content_md5(i)?;
                out.bytes.push(b'-');
                hex_into(&mut out.bytes, h[..8].iter().copied());
                let n = seen_full.entry((key, h)).or_insert(0);
                *n += 1;
                if *n > 1 {
                    out.bytes.push(b'-');
                    out.bytes.extend_from_slice(n.to_string().as_bytes());
                }
            }
            out.ends.push(out.bytes.len() as u32);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn md5(b: &[u8]) -> [u8; 16] {
        Md5::digest(b).into()
    }

    #[test]
    fn empty_digest_is_popa3ds_famous_uidl() {
        assert_eq!(&popa3d_uidl(&md5(b"")), b"d98c1dd404b2008f");
    }

    #[test]
    fn byte_order_matches_popa3d() {
        // research/popa3d.md §9.4: MD5 59c3d9fe1c344c4b... prints fed9c3594b4c341c.
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&[0x59, 0xc3, 0xd9, 0xfe, 0x1c, 0x34, 0x4c, 0x4b]);
        assert_eq!(&popa3d_uidl(&d), b"fed9c3594b4c341c");
    }

    #[test]
    fn selection_rules() {
        let mut s = HeaderSelector::default();
        let lines: &[(&[u8], bool)] = &[
            (b"DATE: x\n", true),
            (b"message-id: <a>\n", true),
            (b"\tcontinued\n", true),
            (b"x-delivery-id: lower\n", false),
            (b"X-DELIVERY-ID: upper\n", true),
            (b"Subject: s\n", false),
            (b" cont of subject\n", false),
            (b"RECEIVED: first\n", true),
            (b" cont\n", true),
            (b"Received: second\n", false),
            (b"Date: after received\n", false),
            (b"Message-ID: <after@received>\n", false),
            (b"Delivered-To: a\n", true),
            (b"Delivered-To: b\n", true),
            (b"Date\n", false),
            (b"Received\n", false),
        ];
        for (line, want) in lines {
            assert_eq!(s.classify(line), *want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn unique_values_kept_and_repeats_disambiguated() {
        let a = md5(b"a");
        let e = md5(b"");
        let digests = [e, a, e, e, e];
        // messages 2 and 3 (0-based) are byte-identical; 4 differs.
        let content = [
            md5(b"m0"),
            md5(b"m1"),
            md5(b"same"),
            md5(b"same"),
            md5(b"m4"),
        ];
        let mut asked = vec![];
        let u = Uidls::assign(&digests, |i| {
            asked.push(i);
            Ok(content[i])
        })
        .unwrap();
        assert_eq!(asked, vec![2, 3, 4]);
        assert_eq!(u.get(0), b"d98c1dd404b2008f");
        assert_eq!(u.get(1), &popa3d_uidl(&a)[..]);
        let h = |c: [u8; 16]| {
            let mut v = b"d98c1dd404b2008f-".to_vec();
            hex_into(&mut v, c[..8].iter().copied());
            v
        };
        assert_eq!(u.get(2), &h(content[2])[..]);
        let mut third = h(content[3]);
        third.extend_from_slice(b"-2");
        assert_eq!(u.get(3), &third[..]);
        assert_eq!(u.get(4), &h(content[4])[..]);
        let all: std::collections::HashSet<_> = (0..5).map(|i| u.get(i)).collect();
        assert_eq!(all.len(), 5);
        for i in 0..5 {
            let v = u.get(i);
            assert!(!v.is_empty() && v.len() <= 70 && v.iter().all(|b| (0x21..=0x7e).contains(b)));
        }
    }
}

//! MD5 (RFC 1321) of two independent inputs at once.
//!
//! One MD5 block is a single chain of 64 dependent steps, so a lone MD5 leaves most of
//! the CPU's execution units idle while it waits on the previous step. Here two inputs
//! are hashed in lockstep: each step of the compression function is done for both
//! states, whose chains do not depend on each other, so the CPU overlaps them. Block
//! pairs are processed while both inputs have blocks left, then the rest of the longer
//! input alone. Nothing is allocated: each input's padded end (one or two blocks) is
//! built in a 128-byte array on the stack.
//!
//! Written from RFC 1321; the results are checked against the `md-5` crate in the tests.

/// The initial state: words A, B, C, D (RFC 1321 §3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The table T[1..64] of RFC 1321 §3.4: `floor(abs(sin(i)) * 2^32)`.
#[rustfmt::skip]
static K: [u32; 64] = [
    0xd76a_a478, 0xe8c7_b756, 0x2420_70db, 0xc1bd_ceee,
    0xf57c_0faf, 0x4787_c62a, 0xa830_4613, 0xfd46_9501,
    0x6980_98d8, 0x8b44_f7af, 0xffff_5bb1, 0x895c_d7be,
    0x6b90_1122, 0xfd98_7193, 0xa679_438e, 0x49b4_0821,
    0xf61e_2562, 0xc040_b340, 0x265e_5a51, 0xe9b6_c7aa,
    0xd62f_105d, 0x0244_1453, 0xd8a1_e681, 0xe7d3_fbc8,
    0x21e1_cde6, 0xc337_07d6, 0xf4d5_0d87, 0x455a_14ed,
    0xa9e3_e905, 0xfcef_a3f8, 0x676f_02d9, 0x8d2a_4c8a,
    0xfffa_3942, 0x8771_f681, 0x6d9d_6122, 0xfde5_380c,
    0xa4be_ea44, 0x4bde_cfa9, 0xf6bb_4b60, 0xbebf_bc70,
    0x289b_7ec6, 0xeaa1_27fa, 0xd4ef_3085, 0x0488_1d05,
    0xd9d4_d039, 0xe6db_99e5, 0x1fa2_7cf8, 0xc4ac_5665,
    0xf429_2244, 0x432a_ff97, 0xab94_23a7, 0xfc93_a039,
    0x655b_59c3, 0x8f0c_cc92, 0xffef_f47d, 0x8584_5dd1,
    0x6fa8_7e4f, 0xfe2c_e6e0, 0xa301_4314, 0x4e08_11a1,
    0xf753_7e82, 0xbd3a_f235, 0x2ad7_d2bb, 0xeb86_d391,
];

/// The left-rotation amount of each step (RFC 1321 §3.4).
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, //
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, //
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, //
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, //
];

/// The message word X[k] used by each step (RFC 1321 §3.4): `i`, `1 + 5i`, `5 + 3i`
/// and `7i` (mod 16) in rounds 1 to 4.
const M: [usize; 64] = {
    let mut m = [0; 64];
    let mut i = 0;
    while i < 16 {
        m[i] = i;
        m[16 + i] = (1 + 5 * i) % 16;
        m[32 + i] = (5 + 3 * i) % 16;
        m[48 + i] = (7 * i) % 16;
        i += 1;
    }
    m
};

// The four auxiliary functions, written so that the newest word (`x`, which is B and was
// computed by the previous step) comes in as late as possible: the parts that only use
// C and D can be computed while the previous step is still running.

/// F(X,Y,Z) = XY v not(X) Z.
#[inline(always)]
fn f(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}

/// G(X,Y,Z) = XZ v Y not(Z). The two terms have no bit in common, so `|` is `+`.
#[inline(always)]
fn g(x: u32, y: u32, z: u32) -> u32 {
    (y & !z).wrapping_add(x & z)
}

/// H(X,Y,Z) = X xor Y xor Z.
#[inline(always)]
fn h(x: u32, y: u32, z: u32) -> u32 {
    x ^ (y ^ z)
}

/// I(X,Y,Z) = Y xor (X v not(Z)).
#[inline(always)]
fn i(x: u32, y: u32, z: u32) -> u32 {
    y ^ (x | !z)
}

/// One step, `a = b + ((a + fn(b,c,d) + X[k] + T[i]) <<< s)`, for each lane, with `T`
/// read from `$k`. A lane is `[a b c d x]`: the state variables in this step's order, and
/// the message words.
macro_rules! step {
    ($k:ident, $fun:ident, $i:expr; $([$a:ident $b:ident $c:ident $d:ident $x:ident])+) => {
        $(
            $a = $b.wrapping_add(
                $a.wrapping_add($k[$i])
                    .wrapping_add($x[M[$i]])
                    .wrapping_add($fun($b, $c, $d))
                    .rotate_left(S[$i]),
            );
        )+
    };
}

/// Four steps, with the state variables rotating as in RFC 1321: [abcd], [dabc], [cdab],
/// [bcda].
macro_rules! four {
    ($k:ident, $fun:ident, $i:expr; $([$a:ident $b:ident $c:ident $d:ident $x:ident])+) => {
        step!($k, $fun, $i; $([$a $b $c $d $x])+);
        step!($k, $fun, $i + 1; $([$d $a $b $c $x])+);
        step!($k, $fun, $i + 2; $([$c $d $a $b $x])+);
        step!($k, $fun, $i + 3; $([$b $c $d $a $x])+);
    };
}

/// All 64 steps of one block, for each lane, with `T` read from `$k`.
macro_rules! rounds {
    ($k:ident; $($lane:tt)+) => {
        four!($k, f, 0; $($lane)+);
        four!($k, f, 4; $($lane)+);
        four!($k, f, 8; $($lane)+);
        four!($k, f, 12; $($lane)+);
        four!($k, g, 16; $($lane)+);
        four!($k, g, 20; $($lane)+);
        four!($k, g, 24; $($lane)+);
        four!($k, g, 28; $($lane)+);
        four!($k, h, 32; $($lane)+);
        four!($k, h, 36; $($lane)+);
        four!($k, h, 40; $($lane)+);
        four!($k, h, 44; $($lane)+);
        four!($k, i, 48; $($lane)+);
        four!($k, i, 52; $($lane)+);
        four!($k, i, 56; $($lane)+);
        four!($k, i, 60; $($lane)+);
    };
}

/// The table T, read through [`std::hint::black_box`] so that the compiler does not see
/// the constants. It only changes the order of the additions: with known constants LLVM
/// reassociates `a + T[i] + X[k] + fn(b,c,d)` to add the constant last, after the
/// function of B, which puts one more addition on the dependency chain of every step.
/// Loaded from memory, `a + T[i] + X[k]` is computed ahead, off the chain: roughly
/// 10-20% faster here, for one lane and for two.
#[inline(always)]
fn table() -> &'static [u32; 64] {
    std::hint::black_box(&K)
}

/// The sixteen little-endian message words of a block.
#[inline(always)]
fn words(block: &[u8; 64]) -> [u32; 16] {
    let mut x = [0u32; 16];
    for (w, c) in x.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    x
}

/// Adds one block to one state.
fn compress1(s: &mut [u32; 4], block: &[u8; 64]) {
    let x0 = words(block);
    let [mut a0, mut b0, mut c0, mut d0] = *s;
    let k = table();
    rounds!(k; [a0 b0 c0 d0 x0]);
    s[0] = s[0].wrapping_add(a0);
    s[1] = s[1].wrapping_add(b0);
    s[2] = s[2].wrapping_add(c0);
    s[3] = s[3].wrapping_add(d0);
}

/// Adds one block to each of two states, step by step in lockstep.
fn compress2(s0: &mut [u32; 4], block0: &[u8; 64], s1: &mut [u32; 4], block1: &[u8; 64]) {
    let x0 = words(block0);
    let x1 = words(block1);
    let [mut a0, mut b0, mut c0, mut d0] = *s0;
    let [mut a1, mut b1, mut c1, mut d1] = *s1;
    let k = table();
    rounds!(k; [a0 b0 c0 d0 x0] [a1 b1 c1 d1 x1]);
    s0[0] = s0[0].wrapping_add(a0);
    s0[1] = s0[1].wrapping_add(b0);
    s0[2] = s0[2].wrapping_add(c0);
    s0[3] = s0[3].wrapping_add(d0);
    s1[0] = s1[0].wrapping_add(a1);
    s1[1] = s1[1].wrapping_add(b1);
    s1[2] = s1[2].wrapping_add(c1);
    s1[3] = s1[3].wrapping_add(d1);
}

/// The blocks of one padded input: its whole 64-byte blocks, borrowed from the input,
/// then the one or two blocks of its padded end, held in a caller's array.
struct Blocks<'a> {
    cur: &'a [u8],
    next: &'a [u8],
}

impl<'a> Blocks<'a> {
    /// Pads `data` (RFC 1321 §3.1, §3.2), building its end in `end`.
    fn new(data: &'a [u8], end: &'a mut [u8; 128]) -> Blocks<'a> {
        let (whole, rest) = data.split_at(data.len() - data.len() % 64);
        end[..rest.len()].copy_from_slice(rest);
        end[rest.len()] = 0x80;
        // The 8-byte length must fit after the 0x80 in the same block.
        let n = if rest.len() < 56 { 64 } else { 128 };
        let bits = (data.len() as u64).wrapping_mul(8);
        end[n - 8..n].copy_from_slice(&bits.to_le_bytes());
        let end: &'a [u8; 128] = end;
        Blocks {
            cur: whole,
            next: &end[..n],
        }
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8; 64];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8; 64]> {
        if self.cur.is_empty() {
            self.cur = std::mem::take(&mut self.next);
        }
        let (block, rest) = self.cur.split_first_chunk::<64>()?;
        self.cur = rest;
        Some(block)
    }
}

/// The digest bytes of a final state: A, B, C, D, each little-endian.
fn digest(s: [u32; 4]) -> [u8; 16] {
    let mut d = [0u8; 16];
    for (o, w) in d.chunks_exact_mut(4).zip(s) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    d
}

/// MD5 of `a` and of `b`, computed in lockstep.
pub fn md5_pair(a: &[u8], b: &[u8]) -> ([u8; 16], [u8; 16]) {
    let (mut end_a, mut end_b) = ([0u8; 128], [0u8; 128]);
    let mut blocks_a = Blocks::new(a, &mut end_a);
    let mut blocks_b = Blocks::new(b, &mut end_b);
    let (mut sa, mut sb) = (INIT, INIT);
    loop {
        match (blocks_a.next(), blocks_b.next()) {
            (Some(x), Some(y)) => compress2(&mut sa, x, &mut sb, y),
            (Some(x), None) => {
                compress1(&mut sa, x);
                blocks_a.for_each(|x| compress1(&mut sa, x));
                break;
            }
            (None, Some(y)) => {
                compress1(&mut sb, y);
                blocks_b.for_each(|y| compress1(&mut sb, y));
                break;
            }
            (None, None) => break,
        }
    }
    (digest(sa), digest(sb))
}

/// MD5 of one input with the same code (for an odd one out).
pub fn md5_one(a: &[u8]) -> [u8; 16] {
    let mut end = [0u8; 128];
    let mut s = INIT;
    Blocks::new(a, &mut end).for_each(|x| compress1(&mut s, x));
    digest(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn reference(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    /// Deterministic pseudo-random bytes (xorshift64).
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn md5x2_table_is_rfc_sine() {
        for (i, &k) in K.iter().enumerate() {
            let t = (((i + 1) as f64).sin().abs() * 4_294_967_296.0).floor() as u32;
            assert_eq!(k, t, "T[{}]", i + 1);
        }
    }

    #[test]
    fn md5x2_rfc1321_vectors() {
        let vectors: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in vectors {
            assert_eq!(hex(md5_one(input.as_bytes())), want, "{input:?}");
            for (other, other_want) in vectors {
                let (x, y) = md5_pair(input.as_bytes(), other.as_bytes());
                assert_eq!(hex(x), want, "{input:?} with {other:?}");
                assert_eq!(hex(y), other_want, "{other:?} with {input:?}");
            }
        }
    }

    #[test]
    fn md5x2_all_lengths_against_md5_crate() {
        let others = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 100_000];
        let others: Vec<Vec<u8>> = others
            .iter()
            .map(|&n| random_bytes(n, 0x9e37_79b9 + n as u64))
            .collect();
        let others_want: Vec<[u8; 16]> = others.iter().map(|o| reference(o)).collect();
        for len in 0..=300 {
            let data = random_bytes(len, len as u64 + 1);
            let want = reference(&data);
            assert_eq!(md5_one(&data), want, "one, len {len}");
            for (o, o_want) in others.iter().zip(&others_want) {
                let (x, y) = md5_pair(&data, o);
                assert_eq!(x, want, "len {len} paired with {}", o.len());
                assert_eq!(y, *o_want, "len {} paired with {len}", o.len());
                let (y, x) = md5_pair(o, &data);
                assert_eq!(x, want, "len {len} paired (second) with {}", o.len());
                assert_eq!(y, *o_want, "len {} paired (first) with {len}", o.len());
            }
        }
    }

    #[test]
    fn md5x2_constant_contents() {
        // Bytes 0x00 and 0xff, and the padding byte itself, at block-boundary lengths.
        for fill in [0x00u8, 0x80, 0xff] {
            for len in [0, 55, 56, 57, 63, 64, 65, 127, 128, 129, 4096] {
                let data = vec![fill; len];
                let (x, y) = md5_pair(&data, &data[..len / 2]);
                assert_eq!(x, reference(&data), "fill {fill:#x} len {len}");
                assert_eq!(
                    y,
                    reference(&data[..len / 2]),
                    "fill {fill:#x} len {}",
                    len / 2
                );
            }
        }
    }

    #[test]
    fn md5x2_random_pairs() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let la = (next() % 700) as usize;
            let lb = (next() % 700) as usize;
            let a = random_bytes(la, next());
            let b = random_bytes(lb, next());
            let (da, db) = md5_pair(&a, &b);
            assert_eq!(da, reference(&a), "round {round}, a len {la}");
            assert_eq!(db, reference(&b), "round {round}, b len {lb}");
        }
    }

    #[test]
    fn md5x2_large_input() {
        let big = random_bytes(3 << 20, 7);
        let small = random_bytes(222, 8);
        let (x, y) = md5_pair(&big, &small);
        assert_eq!(x, reference(&big));
        assert_eq!(y, reference(&small));
        let (x, y) = md5_pair(&big[1..], &big[..big.len() - 1]);
        assert_eq!(x, reference(&big[1..]));
        assert_eq!(y, reference(&big[..big.len() - 1]));
        assert_eq!(md5_one(&big), reference(&big));
    }
}

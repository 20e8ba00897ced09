//! Times MD5 of 800,000 inputs of 222 bytes (400,000 pairs): the `md-5` crate one after
//! the other, `md5_one` one after the other, and `md5_pair`. Run with `--release`; each
//! figure is the best of several passes.
use std::hint::black_box;
use std::time::Instant;

use md5::{Digest, Md5};
use pop3_mailbox::mbox::md5x2::{md5_one, md5_pair};

const LEN: usize = 222;
const INPUTS: usize = 800_000;
const POOL: usize = 4096;
const PASSES: usize = 15;

fn main() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let pool: Vec<Vec<u8>> = (0..POOL)
        .map(|_| {
            (0..LEN)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        })
        .collect();
    let input = |i: usize| black_box(&pool[i % POOL][..]);

    let crate_seq = || {
        let mut acc = 0u8;
        for i in 0..INPUTS {
            let d: [u8; 16] = Md5::digest(input(i)).into();
            acc ^= d[i % 16];
        }
        acc
    };
    let one_seq = || {
        let mut acc = 0u8;
        for i in 0..INPUTS {
            acc ^= md5_one(input(i))[i % 16];
        }
        acc
    };
    let pair = || {
        let mut acc = 0u8;
        for i in (0..INPUTS).step_by(2) {
            let (a, b) = md5_pair(input(i), input(i + 1));
            acc ^= a[i % 16] ^ b[(i + 1) % 16];
        }
        acc
    };
    let methods: [&dyn Fn() -> u8; 3] = [&crate_seq, &one_seq, &pair];
    // The passes interleave the methods, so that a busy spell on a noisy machine does not
    // fall on one method only.
    let mut best = [f64::INFINITY; 3];
    let mut checks = [0u8; 3];
    for _ in 0..PASSES {
        for (m, f) in methods.iter().enumerate() {
            let t = Instant::now();
            checks[m] = f();
            best[m] = best[m].min(t.elapsed().as_secs_f64() * 1e9 / INPUTS as f64);
        }
    }
    let [crate_ns, one_ns, pair_ns] = best;
    let [c1, c2, c3] = checks;
    if c1 != c2 || c1 != c3 {
        eprintln!("digests differ: {c1} {c2} {c3}");
        std::process::exit(1);
    }
    println!("{INPUTS} inputs of {LEN} bytes, best of {PASSES} passes:");
    println!("  md-5 crate, sequential: {crate_ns:6.1} ns/input");
    println!("  md5_one, sequential:    {one_ns:6.1} ns/input");
    println!("  md5_pair:               {pair_ns:6.1} ns/input");
    println!("  md-5 / md5_pair:        {:6.2}x", crate_ns / pair_ns);
    println!("  md5_one / md5_pair:     {:6.2}x", one_ns / pair_ns);
}

//! Times loading an mbox: `cargo run --release -p pop3-mailbox --example parse -- MBOX [RUNS]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pop3_mailbox::Mbox;
use pop3_proto::Listing;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let runs: usize = args.get(2).map_or(5, |r| r.parse().unwrap());
    let mut best = f64::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        let file = Mbox::open_file(path, false).unwrap();
        let m = Mbox::load(path, file).unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        best = best.min(ms);
        eprintln!("{} messages, {:.1} ms", m.count(), ms);
    }
    eprintln!("best {best:.1} ms");
}

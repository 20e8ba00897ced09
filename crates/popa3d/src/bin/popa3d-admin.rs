//! `popa3d-admin`: see `popa3d::admin` and `popa3d-admin --help`.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    if let Err(f) = popa3d::admin::main(&args, &mut out) {
        eprint!("popa3d-admin: {}", f.message);
        if !f.message.ends_with('\n') {
            eprintln!();
        }
        std::process::exit(f.status);
    }
}

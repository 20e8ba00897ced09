//! fcntl(2) record locks over a whole file, as popa3d takes them on a mailbox.
//!
//! popa3d locks with fcntl only (Debian's build: no flock, no dot-lock): a shared lock
//! while parsing or re-checking, an exclusive one while rewriting. We do the same, so
//! popa3d and popa3d-rs exclude each other, and MDAs that use fcntl (procmail, postfix
//! local, exim with `use_fcntl_lock`) exclude us. fcntl locks belong to the process and
//! are released when *any* descriptor of the file is closed by it; callers keep exactly
//! one descriptor per mailbox for that reason.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Which lock to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// A read lock: other readers may hold one too; a writer waits.
    Shared,
    /// A write lock: nobody else may hold any lock.
    Exclusive,
}

fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers, for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // 0 = to the end of the file, however far it grows
    fl
}

fn setlk(file: &File, cmd: libc::c_int, fl: &libc::flock) -> io::Result<()> {
    loop {
        // SAFETY: the descriptor is valid for the life of `file`, and `fl` points to a
        // properly initialised `struct flock` that fcntl only reads.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *const libc::flock) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Takes a whole-file lock, waiting for as long as another process holds a conflicting
/// one (F_SETLKW). An interrupted wait is retried.
pub fn lock_wait(file: &File, kind: LockKind) -> io::Result<()> {
    let t = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    setlk(file, libc::F_SETLKW, &whole_file(t as libc::c_short))
}

/// Tries to take a whole-file lock without waiting. `Ok(false)` means another process
/// holds a conflicting lock.
pub fn try_lock(file: &File, kind: LockKind) -> io::Result<bool> {
    let t = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    match setlk(file, libc::F_SETLK, &whole_file(t as libc::c_short)) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases this process's lock on the whole file.
pub fn unlock(file: &File) -> io::Result<()> {
    setlk(
        file,
        libc::F_SETLK,
        &whole_file(libc::F_UNLCK as libc::c_short),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// fcntl locks never conflict within one process, so the other holder must be a
    /// separate process: python's `fcntl.lockf` takes the same kind of lock.
    #[test]
    fn locks_conflict_with_another_process() {
        let path = std::env::temp_dir().join(format!("pop3-sys-lock-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();

        let mut holder = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); \
                 print('locked', flush=True); sys.stdin.read()",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        assert!(!try_lock(&f, LockKind::Shared).unwrap());
        assert!(!try_lock(&f, LockKind::Exclusive).unwrap());
        drop(holder.stdin.take()); // let it exit, which releases its lock
        holder.wait().unwrap();
        assert!(try_lock(&f, LockKind::Exclusive).unwrap());
        unlock(&f).unwrap();
        lock_wait(&f, LockKind::Shared).unwrap();
        unlock(&f).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}

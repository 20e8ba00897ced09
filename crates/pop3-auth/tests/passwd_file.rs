//! The passwd-file backend end to end: real files, every scheme, the verdicts, the
//! one-hash rule, and the file checks. Needs no root.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pop3_auth::passwd_file::PasswdFile;
use pop3_auth::{hashes_computed, Account, AuthError, Authenticator, Backend, Verdict};

// Test vectors made by independent tools (openssl passwd, mkpasswd from whois, the
// Argon2 reference implementation's test suite); the password follows each hash.
const YESCRYPT: (&str, &str) = (
    "$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1",
    "yescrypt-secret",
);
const SHA512: (&str, &str) = (
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    "Hello world!",
);
const SHA256: (&str, &str) = (
    "$5$abcdefghijklmnop$K9dal0vqJAQ5ZGSuccJ6r3WgHXj0t.EcKlgZVEUZ3h7",
    "sha256-secret",
);
const BCRYPT: (&str, &str) = (
    "$2b$05$4pZ6Y0moUj.ldsXL6LWrWOTjyfkd5U6Mw.GvA8Zsg5m1dPqFCqXXu",
    "bcrypt-secret",
);
const MD5: (&str, &str) = ("$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0", "md5-secret");
const ARGON2ID: (&str, &str) = (
    "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
    "password",
);
const ARGON2I: (&str, &str) = (
    "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
    "password",
);

/// A private directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pop3-auth-passwd-file-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn users_file() -> String {
    format!(
        "# popa3d-rs virtual users\n\
         \n\
         alice:{{CRYPT}}{}:5000:5000::/srv/mail/alice::userdb_mail=mbox:/srv/mail/%u/inbox\n\
         bob:{{SHA512-CRYPT}}{}:5001:5000:Bob:/home/bob:/bin/false:mail=mbox:~/mail:INBOX=/var/spool/mail/%u\n\
         sam:{{SHA256-CRYPT}}{}:5002:5000\n\
         carol:{{BLF-CRYPT}}{}:5003:5000::/home/carol\n\
         dave:{{MD5-CRYPT}}{}:5004:5000\n\
         erin:{{ARGON2ID}}{}:5005:5000\n\
         frank:{{ARGON2I}}{}:5006:5000\n\
         bare:{}:5007:5000\n\
         nopass::5008:5000\n\
         locked:!{}:5009:5000\n\
         starred:*:5010:5000\n\
         closed:{}:5011:5000:::: nologin\n\
         toor:{}:0:0\n\
         user@example.org:{}:5012:5000::::userdb_mail=mbox:/var/vmail/%d/%n\n",
        YESCRYPT.0,
        SHA512.0,
        SHA256.0,
        BCRYPT.0,
        MD5.0,
        ARGON2ID.0,
        ARGON2I.0,
        YESCRYPT.0,
        YESCRYPT.0,
        YESCRYPT.0,
        YESCRYPT.0,
        SHA512.0,
    )
}

fn account(name: &str, uid: u32, mailbox: Option<&str>) -> Verdict {
    Verdict::Pass(Account {
        name: name.into(),
        uid,
        gid: 5000,
        mailbox: mailbox.map(PathBuf::from),
    })
}

/// Verifies and checks that exactly one hash was computed.
fn verify(auth: &dyn Authenticator, user: &[u8], password: &[u8]) -> Verdict {
    let before = hashes_computed();
    let v = auth.verify(user, password);
    assert_eq!(
        hashes_computed() - before,
        1,
        "{} with {:?}: not exactly one hash",
        String::from_utf8_lossy(user),
        v
    );
    v
}

#[test]
fn every_scheme_logs_in_with_its_password_only() {
    let dir = TempDir::new();
    let path = dir.write("users", &users_file(), 0o600);
    let auth = PasswdFile::new(&path);
    let cases: &[(&str, &str, Verdict)] = &[
        (
            "alice",
            YESCRYPT.1,
            account("alice", 5000, Some("/srv/mail/alice/inbox")),
        ),
        (
            "bob",
            SHA512.1,
            account("bob", 5001, Some("/var/spool/mail/bob")),
        ),
        ("sam", SHA256.1, account("sam", 5002, None)),
        ("carol", BCRYPT.1, account("carol", 5003, None)),
        ("dave", MD5.1, account("dave", 5004, None)),
        ("erin", ARGON2ID.1, account("erin", 5005, None)),
        ("frank", ARGON2I.1, account("frank", 5006, None)),
        ("bare", YESCRYPT.1, account("bare", 5007, None)),
        (
            "user@example.org",
            SHA512.1,
            account(
                "user@example.org",
                5012,
                Some("/var/vmail/example.org/user"),
            ),
        ),
    ];
    for (user, password, want) in cases {
        assert_eq!(
            &verify(&auth, user.as_bytes(), password.as_bytes()),
            want,
            "{user}"
        );
        // Wrong, empty, and one byte too many.
        for wrong in ["wrong", "", &format!("{password}x")] {
            assert_eq!(
                verify(&auth, user.as_bytes(), wrong.as_bytes()),
                Verdict::Fail { known: true },
                "{user} with {wrong:?}"
            );
        }
    }
    // The Backend enum builds the same thing.
    let b = Backend::PasswdFile { path }.authenticator(None);
    assert_eq!(
        verify(b.as_ref(), b"carol", BCRYPT.1.as_bytes()),
        account("carol", 5003, None)
    );
}

#[test]
fn refused_accounts_and_unknown_users_cost_one_hash_and_fail() {
    let dir = TempDir::new();
    let auth = PasswdFile::new(dir.write("users", &users_file(), 0o600));
    let known = Verdict::Fail { known: true };
    let unknown = Verdict::Fail { known: false };
    let cases: &[(&[u8], &str, &Verdict)] = &[
        // Empty stored password: nothing gets in, the empty password least of all.
        (b"nopass", "", &known),
        (b"nopass", "anything", &known),
        // Locked with the right password behind the `!`.
        (b"locked", YESCRYPT.1, &known),
        (b"starred", "*", &known),
        (b"starred", "", &known),
        (b"closed", YESCRYPT.1, &known),
        // uid 0 with the right password.
        (b"toor", YESCRYPT.1, &known),
        (b"nosuchuser", YESCRYPT.1, &unknown),
        (b"Alice", YESCRYPT.1, &unknown),
        // Names that never reach the file.
        (b"../alice", YESCRYPT.1, &unknown),
        (b".alice", YESCRYPT.1, &unknown),
        (b"", YESCRYPT.1, &unknown),
        (b"alice\0", YESCRYPT.1, &unknown),
        (b"# popa3d-rs virtual users", "", &unknown),
        // A password C cannot take: the prefix before the NUL is right.
        (b"alice", "yescrypt-secret\0x", &known),
    ];
    for (user, password, want) in cases {
        assert_eq!(
            &&verify(&auth, user, password.as_bytes()),
            want,
            "{}",
            String::from_utf8_lossy(user)
        );
    }
}

#[test]
fn the_file_is_read_at_every_login() {
    let dir = TempDir::new();
    let path = dir.write("users", &format!("alice:{}:5000:5000\n", MD5.0), 0o600);
    let auth = PasswdFile::new(&path);
    assert!(matches!(
        verify(&auth, b"alice", MD5.1.as_bytes()),
        Verdict::Pass(_)
    ));
    fs::write(&path, format!("alice:!{}:5000:5000\n", MD5.0)).unwrap();
    assert_eq!(
        verify(&auth, b"alice", MD5.1.as_bytes()),
        Verdict::Fail { known: true }
    );
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        verify(&auth, b"alice", MD5.1.as_bytes()),
        Verdict::Error(AuthError::PasswdFile { line: None, .. })
    ));
}

#[test]
fn configuration_errors_name_file_and_line_and_fail_every_login() {
    let dir = TempDir::new();
    let text = format!(
        "alice:{}:5000:5000\n# comment\nbob:{{PLAIN}}hunter2:5001:5000\n",
        YESCRYPT.0
    );
    let path = dir.write("users", &text, 0o600);
    let v = verify(&PasswdFile::new(&path), b"alice", YESCRYPT.1.as_bytes());
    let Verdict::Error(e) = v else {
        panic!("{v:?}")
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "passwd-file {}:3: scheme {{PLAIN}} stores the password in plaintext",
            path.display()
        )),
        "{msg}"
    );
    // The error never quotes the line (it may hold a password).
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn unsafe_files_are_refused() {
    let dir = TempDir::new();
    let text = format!("alice:{}:5000:5000\n", MD5.0);
    for (mode, want) in [
        (0o666, "is writable by group or others"),
        (0o620, "is writable by group or others"),
        (0o602, "is writable by group or others"),
    ] {
        let path = dir.write("users", &text, mode);
        let v = verify(&PasswdFile::new(&path), b"alice", MD5.1.as_bytes());
        assert_eq!(
            v,
            Verdict::Error(AuthError::PasswdFile {
                path,
                line: None,
                message: want.into()
            }),
            "mode {mode:o}"
        );
    }
    // Readable by others is fine (the hashes are the admin's business).
    let path = dir.write("users", &text, 0o644);
    assert!(matches!(
        verify(&PasswdFile::new(&path), b"alice", MD5.1.as_bytes()),
        Verdict::Pass(_)
    ));
    let v = verify(&PasswdFile::new(dir.0.as_path()), b"alice", b"x");
    assert!(matches!(v, Verdict::Error(_)), "{v:?}");
    // Owned by someone else: only root can set that up.
    if pop3_sys::privileges::euid() == 0 {
        let path = dir.write("users", &text, 0o600);
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert_eq!(
            verify(&PasswdFile::new(&path), b"alice", MD5.1.as_bytes()),
            Verdict::Error(AuthError::PasswdFile {
                path: path.clone(),
                line: None,
                message: "belongs to uid 65534, not root".into()
            })
        );
    }
}

#[test]
fn the_dummy_has_the_cost_of_the_first_usable_entry() {
    // A functional check, not a timing one: an unknown user with the right password of
    // the first usable entry still fails (the dummy is that entry's hash), and exactly
    // one hash is computed, as for a wrong password.
    let dir = TempDir::new();
    let text = format!(
        "locked:!:1000:1000\nerin:{{ARGON2ID}}{}:1001:1000\n",
        ARGON2ID.0
    );
    let auth = PasswdFile::new(dir.write("users", &text, 0o600));
    assert_eq!(
        verify(&auth, b"nobody-here", ARGON2ID.1.as_bytes()),
        Verdict::Fail { known: false }
    );
    assert_eq!(
        verify(&auth, b"erin", b"wrong"),
        Verdict::Fail { known: true }
    );
    // With no usable entry at all, the system default dummy is used.
    let auth = PasswdFile::new(dir.write("empty", "# nobody\n", 0o600));
    assert_eq!(verify(&auth, b"x", b"y"), Verdict::Fail { known: false });
}

#[test]
fn no_panic_on_odd_files() {
    let dir = TempDir::new();
    let odd: &[&[u8]] = &[
        b"",
        b"\n\n\n",
        b":",
        b"::::::::::::::::::::",
        b"a:b:c:d:e:f:g:h:i:j",
        b"\xff\xfe\xfd",
        b"a:{",
        b"a:{}:1:1",
        b"a:{}}:1:1",
        b"a:$:1:1",
        b"a:$$:1:1",
        b"a:{ARGON2ID}$argon2id$:1:1",
        b"a:{ARGON2ID}$argon2id$v=19$m=0,t=0,p=0$$:1:1",
        b"a:$6$:1:1:::: mail=mbox:%",
        b"\0:\0:\0:\0",
    ];
    for text in odd {
        let p = dir.0.join("odd");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let _ = verify(&PasswdFile::new(&p), b"a", b"b");
        let _ = pop3_auth::passwd_file::parse(text);
    }
    assert!(Path::new(&dir.0).exists());
}

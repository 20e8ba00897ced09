//! The `passwd-file` backend: virtual users in Dovecot's passwd-file format.
//!
//! ```text
//! # user:password:uid:gid:gecos:home:shell:extra_fields
//! alice:{CRYPT}$y$j9T$...:5000:5000::/srv/mail/alice::userdb_mail=mbox:/srv/mail/%u
//! bob:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$...:5001:5000
//! carol:$2b$05$...:5002:5000::/home/carol
//! ```
//!
//! - Fields after `gid` may be left out. `#` starts a comment line; blank lines are
//!   skipped. The extra fields (the rest of the line, so it may contain `:`) are
//!   space-separated `key=value` or `key`.
//! - The password is `{SCHEME}hash` or a bare crypt(3) string (scheme CRYPT). Schemes
//!   (case-insensitive): CRYPT, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT (checked
//!   by libxcrypt; yescrypt is written `{CRYPT}$y$...`, as in Dovecot), ARGON2I and
//!   ARGON2ID (PHC strings). PLAIN and the other plaintext-equivalent schemes, and the
//!   unsalted or obsolete ones Dovecot also knows, are configuration errors: this file
//!   must never hold something that logs a user in when stolen.
//! - uid and gid are required (the session switches to them); uid 0 is refused at login.
//! - An empty password, or one starting with `!` or `*`, locks the account, and so
//!   does the `nologin` extra field.
//! - `userdb_mail=mbox:PATH` (or `mail=mbox:PATH`) sets the mailbox. In Dovecot PATH is
//!   the mail root and the inbox is given by `:INBOX=FILE`; a POP3 server serves the
//!   inbox, so `INBOX=FILE` wins when present, else PATH itself is the mailbox file.
//!   `%u` (the user), `%n` (the part before `@`), `%d` (after `@`), `%h` (home), `%%`
//!   and a leading `~/` (home) are expanded; the result must be absolute. Other
//!   formats (maildir:) are refused. Without it, the mailbox is the spool default.
//! - Extra fields that would log users in without a password or change who they become
//!   (`nopassword`, `allow_nets`, `userdb_uid`, `userdb_gid`, `uid`, `gid`) are refused
//!   as errors rather than silently ignored; all other extra fields are ignored.
//!
//! The file is read afresh at every login (the verifier lives for one login), parsed
//! whole, and any malformed line makes every login fail with `file:line: what`: a
//! half-read user database is worse than none. The file must not be writable by group
//! or others and must belong to root or to us. Parsing never panics.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHash;
use pop3_sys::crypt::Secret;
use zeroize::Zeroizing;

use crate::hash::{default_dummy, StoredHash};
use crate::shadow::{unusable_hash, Refusal};
use crate::{user_name, Account, AuthError, Authenticator, Verdict};

/// The largest passwd-file we read.
const MAX_FILE_SIZE: u64 = 16 << 20;

/// The largest Argon2 memory cost we accept, in KiB (1 GiB): the verifier allocates it.
const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;

/// The passwd-file backend.
#[derive(Clone, Debug)]
pub struct PasswdFile {
    path: PathBuf,
}

impl PasswdFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PasswdFile { path: path.into() }
    }
}

/// One user of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub user: String,
    /// The hash, or why the account is locked.
    password: Result<StoredHash, Refusal>,
    pub uid: u32,
    pub gid: u32,
    pub home: Option<PathBuf>,
    /// The mailbox path before expansion of `%u` & co.
    mailbox: Option<String>,
    nologin: bool,
}

impl Entry {
    /// Why this account may not log in, whatever the password.
    fn refusal(&self) -> Option<Refusal> {
        if self.uid == 0 {
            return Some(Refusal::Root);
        }
        if self.nologin {
            return Some(Refusal::Locked);
        }
        self.password.as_ref().err().copied()
    }

    /// The mailbox path for this user, expanded.
    pub fn mailbox(&self) -> Option<PathBuf> {
        let template = self.mailbox.as_deref()?;
        expand(template, &self.user, self.home.as_deref()).ok()
    }
}

/// A malformed line: its number and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole passwd-file. The first error wins.
pub fn parse(text: &[u8]) -> Result<Vec<Entry>, ParseError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let err = |message: String| ParseError { line, message };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(s) = std::str::from_utf8(raw) else {
            return Err(err("not valid UTF-8".into()));
        };
        let trimmed = s.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_line(s).map_err(err)?;
        if entries.iter().any(|e| e.user == entry.user) {
            return Err(err(format!("user {} is listed twice", entry.user)));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<Entry, String> {
    let mut fields = line.splitn(8, ':');
    let user = fields.next().unwrap_or_default();
    if user_name(user.as_bytes()).is_none() {
        return Err(
            "invalid user name (1 to 40 bytes, no '/', no white space or control characters, not starting with '.')"
                .into(),
        );
    }
    let Some(password) = fields.next() else {
        return Err("no password field".into());
    };
    let password = parse_password(password)?;
    let uid = parse_id(fields.next(), "uid")?;
    let gid = parse_id(fields.next(), "gid")?;
    let _gecos = fields.next();
    let home = fields.next().filter(|h| !h.is_empty()).map(PathBuf::from);
    let _shell = fields.next();
    let mut entry = Entry {
        user: user.to_owned(),
        password,
        uid,
        gid,
        home,
        mailbox: None,
        nologin: false,
    };
    if let Some(extra) = fields.next() {
        parse_extra(extra, &mut entry)?;
    }
    Ok(entry)
}

fn parse_id(field: Option<&str>, what: &str) -> Result<u32, String> {
    match field {
        None | Some("") => Err(format!("no {what} (required: the session runs as it)")),
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| format!("{what} {s} is out of range"))
        }
        Some(_) => Err(format!("{what} is not a number")),
    }
}

/// What a `{SCHEME}` prefix means to us.
enum Scheme {
    /// crypt(3); the hash must start with one of these (empty: anything).
    Crypt(&'static [&'static str]),
    Argon2(&'static str),
}

fn scheme(name: &str) -> Result<Scheme, String> {
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "CRYPT" => Scheme::Crypt(&[]),
        "SHA512-CRYPT" => Scheme::Crypt(&["$6$"]),
        "SHA256-CRYPT" => Scheme::Crypt(&["$5$"]),
        "BLF-CRYPT" => Scheme::Crypt(&["$2a$", "$2b$", "$2y$"]),
        "MD5-CRYPT" => Scheme::Crypt(&["$1$"]),
        "ARGON2I" => Scheme::Argon2("argon2i"),
        "ARGON2ID" => Scheme::Argon2("argon2id"),
        "PLAIN" | "CLEAR" | "CLEARTEXT" | "PLAIN-TRUNC" | "CRAM-MD5" | "HMAC-MD5"
        | "DIGEST-MD5" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "LANMAN" | "NTLM" | "RPA" | "OTP"
        | "SKEY" | "PLAIN-MD4" | "PLAIN-MD5" | "LDAP-MD5" => {
            return Err(format!(
                "scheme {{{upper}}} stores the password in plaintext or an equivalent; \
                 refused (use {{CRYPT}} with yescrypt, {{BLF-CRYPT}} or {{ARGON2ID}})"
            ))
        }
        _ => {
            return Err(format!(
                "unsupported scheme {{{upper}}} (supported: CRYPT, SHA512-CRYPT, \
                 SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT, ARGON2I, ARGON2ID)"
            ))
        }
    })
}

/// A bare crypt(3) string: `$id$...`, or traditional DES (13 characters of `./0-9A-Za-z`).
/// Anything else is most likely a plaintext password written without a scheme.
fn looks_like_crypt(hash: &str) -> bool {
    let des = hash.len() == 13
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    let modular = hash.len() > 3
        && hash.starts_with('$')
        && hash[1..].contains('$')
        && !hash.bytes().any(|b| b.is_ascii_whitespace());
    des || modular
}

fn parse_password(field: &str) -> Result<Result<StoredHash, Refusal>, String> {
    let (scheme_name, hash) = match field.strip_prefix('{') {
        Some(rest) => match rest.split_once('}') {
            Some((name, hash)) => (Some(name), hash),
            None => return Err("password scheme has no closing '}'".into()),
        },
        None => (None, field),
    };
    let scheme = match scheme_name {
        Some(name) => scheme(name)?,
        None => Scheme::Crypt(&[]),
    };
    // Locked or empty: fine as configuration, refused at login.
    if let Some(refusal) = unusable_hash(hash.as_bytes()) {
        return Ok(Err(refusal));
    }
    match scheme {
        Scheme::Crypt(prefixes) => {
            if !prefixes.is_empty() && !prefixes.iter().any(|p| hash.starts_with(p)) {
                return Err(format!(
                    "{{{}}} hash does not start with {}",
                    scheme_name.unwrap_or("CRYPT").to_ascii_uppercase(),
                    prefixes.join(" or ")
                ));
            }
            if !looks_like_crypt(hash) {
                return Err(if scheme_name.is_some() {
                    "not a crypt(3) hash".into()
                } else {
                    "password is not a crypt(3) hash (plaintext? give a {SCHEME})".into()
                });
            }
            Ok(Ok(StoredHash::Crypt(Secret::new(hash.as_bytes().to_vec()))))
        }
        Scheme::Argon2(algorithm) => {
            check_argon2(hash, algorithm)?;
            Ok(Ok(StoredHash::Argon2(Zeroizing::new(hash.to_owned()))))
        }
    }
}

fn check_argon2(phc: &str, algorithm: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("not an Argon2 PHC string: {e}"))?;
    if h.algorithm.as_str() != algorithm {
        return Err(format!(
            "{{{}}} hash is ${}$",
            algorithm.to_ascii_uppercase(),
            h.algorithm.as_str()
        ));
    }
    let params = argon2::Params::try_from(&h).map_err(|e| format!("bad Argon2 parameters: {e}"))?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return Err(format!(
            "Argon2 memory cost m={} is over the limit of {MAX_ARGON2_MEMORY_KIB} KiB",
            params.m_cost()
        ));
    }
    if h.salt.is_none() || h.hash.is_none() {
        return Err("Argon2 hash has no salt or no output".into());
    }
    Ok(())
}

fn parse_extra(extra: &str, entry: &mut Entry) -> Result<(), String> {
    for field in extra.split_ascii_whitespace() {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "userdb_mail" | "mail" => {
                let template = parse_mail(value)?;
                // Check the template now, with this entry's home, so that a login never
                // finds it broken.
                expand(&template, &entry.user, entry.home.as_deref())?;
                entry.mailbox = Some(template);
            }
            "nologin" | "userdb_nologin" => entry.nologin = true,
            "nopassword" | "allow_nets" | "userdb_uid" | "userdb_gid" | "uid" | "gid" => {
                return Err(format!(
                    "extra field {key} is not supported (it would let users in without a \
                     password or change who they log in as)"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The mailbox file of a Dovecot mbox mail location, unexpanded.
fn parse_mail(location: &str) -> Result<String, String> {
    let Some(rest) = location.strip_prefix("mbox:") else {
        let format = location.split(':').next().unwrap_or_default();
        return Err(format!(
            "mail location format {format:?} is not supported (only mbox:PATH)"
        ));
    };
    let mut parts = rest.split(':');
    let root = parts.next().unwrap_or_default();
    let inbox = parts.find_map(|p| p.strip_prefix("INBOX="));
    let path = inbox.unwrap_or(root);
    if path.is_empty() {
        return Err("mail location has no path".into());
    }
    Ok(path.to_owned())
}

/// Expands `%u`, `%n`, `%d`, `%h`, `%%` and a leading `~/` in a mailbox template.
fn expand(template: &str, user: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    let home_str = || {
        home.and_then(Path::to_str)
            .ok_or_else(|| "mail location uses the home directory, but there is none".to_owned())
    };
    let (local, domain) = user.split_once('@').unwrap_or((user, ""));
    let mut out = String::new();
    let mut rest = template;
    if let Some(r) = rest.strip_prefix("~/") {
        out.push_str(home_str()?.trim_end_matches('/'));
        out.push('/');
        rest = r;
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(user),
            Some('n') => out.push_str(local),
            Some('d') => out.push_str(domain),
            Some('h') => out.push_str(home_str()?),
            Some('%') => out.push('%'),
            Some(v) => return Err(format!("mail location has an unknown variable %{v}")),
            None => return Err("mail location ends with a lone %".into()),
        }
    }
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err("mail location is not an absolute path".into());
    }
    Ok(path)
}

impl PasswdFile {
    fn error(&self, line: Option<usize>, message: impl Into<String>) -> AuthError {
        AuthError::PasswdFile {
            path: self.path.clone(),
            line,
            message: message.into(),
        }
    }

    /// Reads and parses the file, refusing one that others could have written.
    pub fn load(&self) -> Result<Vec<Entry>, AuthError> {
        let file = File::open(&self.path).map_err(|e| self.error(None, e.to_string()))?;
        let meta = file
            .metadata()
            .map_err(|e| self.error(None, e.to_string()))?;
        if !meta.is_file() {
            return Err(self.error(None, "is not a regular file"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(self.error(None, "is writable by group or others"));
        }
        let euid = pop3_sys::privileges::euid();
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(self.error(None, format!("belongs to uid {}, not root", meta.uid())));
        }
        let mut text = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut text)
            .map_err(|e| self.error(None, e.to_string()))?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(self.error(None, format!("is larger than {MAX_FILE_SIZE} bytes")));
        }
        parse(&text).map_err(|e| self.error(Some(e.line), e.message))
    }
}

impl Authenticator for PasswdFile {
    fn verify(&self, user: &[u8], password: &[u8]) -> Verdict {
        let entries = match self.load() {
            Ok(entries) => entries,
            Err(e) => {
                default_dummy().check(password);
                return Verdict::Error(e);
            }
        };
        // The dummy is the first usable entry's own hash: same scheme, same cost.
        let dummy = entries
            .iter()
            .find(|e| e.refusal().is_none())
            .and_then(|e| e.password.as_ref().ok())
            .unwrap_or(default_dummy());
        let entry = user_name(user).and_then(|name| entries.iter().find(|e| e.user == name));
        let Some(entry) = entry else {
            dummy.check(password);
            return Verdict::Fail { known: false };
        };
        let matched = match (entry.refusal(), &entry.password) {
            (None, Ok(hash)) => hash.check(password),
            _ => {
                dummy.check(password);
                false
            }
        };
        if !matched {
            return Verdict::Fail { known: true };
        }
        Verdict::Pass(Account {
            name: entry.user.clone(),
            uid: entry.uid,
            gid: entry.gid,
            mailbox: entry.mailbox(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const YESCRYPT: &str =
        "$y$j9T$QpB5uh4KC4IN6rPjRygEu1$wuzXKsFxFN6hKEOt5yndHwyeZPRl3HZexUKQlM8mGg1";
    const SHA512: &str = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    const BCRYPT: &str = "$2b$05$4pZ6Y0moUj.ldsXL6LWrWOTjyfkd5U6Mw.GvA8Zsg5m1dPqFCqXXu";
    const ARGON2ID: &str =
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";

    fn one(line: &str) -> Result<Entry, ParseError> {
        parse(line.as_bytes()).map(|mut v| {
            assert_eq!(v.len(), 1, "{line}");
            v.remove(0)
        })
    }

    fn err(text: &str) -> (usize, String) {
        match parse(text.as_bytes()) {
            Err(e) => (e.line, e.message),
            Ok(v) => panic!("{text:?} parsed: {v:?}"),
        }
    }

    #[test]
    fn good_lines() {
        let e = one(&format!("alice:{{CRYPT}}{YESCRYPT}:5000:5001")).unwrap();
        assert_eq!((e.user.as_str(), e.uid, e.gid), ("alice", 5000, 5001));
        assert_eq!(e.home, None);
        assert_eq!(e.mailbox(), None);
        assert!(matches!(e.password, Ok(StoredHash::Crypt(_))));
        assert_eq!(e.refusal(), None);

        let e = one(&format!(
            "bob@example.org:{{argon2id}}{ARGON2ID}:5001:5000:Bob B:/home/bob:/bin/false:\
             userdb_quota_rule=*:storage=1G userdb_mail=mbox:~/mail:INBOX=/var/mail/%n"
        ))
        .unwrap();
        assert!(matches!(e.password, Ok(StoredHash::Argon2(_))));
        assert_eq!(e.home, Some("/home/bob".into()));
        assert_eq!(e.mailbox(), Some("/var/mail/bob".into()));

        // A bare crypt string is CRYPT; the mail location may use ~ and %u.
        let e = one(&format!(
            "carol:{BCRYPT}:5002:5000::/srv/carol::mail=mbox:~/inbox-%u"
        ))
        .unwrap();
        assert_eq!(e.mailbox(), Some("/srv/carol/inbox-carol".into()));

        // Comments, blank lines, CRLF and a trailing newline.
        let text = format!(
            "# users\n\n   \n  # indented comment\r\nd:{{SHA512-CRYPT}}{SHA512}:1:1\r\ne:{{blf-crypt}}{BCRYPT}:2:2\n"
        );
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(
            v.iter().map(|e| e.user.as_str()).collect::<Vec<_>>(),
            ["d", "e"]
        );
        assert_eq!(parse(b"").unwrap(), []);
    }

    #[test]
    fn locked_lines_parse_and_refuse() {
        let refusal = |line: &str| one(line).unwrap().refusal();
        assert_eq!(refusal("a::1:1"), Some(Refusal::EmptyPassword));
        assert_eq!(
            refusal("a:{SHA512-CRYPT}:1:1"),
            Some(Refusal::EmptyPassword)
        );
        assert_eq!(refusal("a:!:1:1"), Some(Refusal::Locked));
        assert_eq!(refusal("a:*:1:1"), Some(Refusal::Locked));
        assert_eq!(
            refusal(&format!("a:{{CRYPT}}!{YESCRYPT}:1:1")),
            Some(Refusal::Locked)
        );
        assert_eq!(
            refusal(&format!("a:{{ARGON2ID}}!{ARGON2ID}:1:1")),
            Some(Refusal::Locked)
        );
        assert_eq!(
            refusal(&format!("root:{YESCRYPT}:0:0")),
            Some(Refusal::Root)
        );
        assert_eq!(
            refusal(&format!("a:{YESCRYPT}:1:1:::: nologin")),
            Some(Refusal::Locked)
        );
    }

    #[test]
    fn malformed_lines() {
        let cases: &[(&str, &str)] = &[
            ("alice", "no password field"),
            (&format!("alice:{YESCRYPT}"), "no uid"),
            (&format!("alice:{YESCRYPT}:"), "no uid"),
            (&format!("alice:{YESCRYPT}:5000"), "no gid"),
            (&format!("alice:{YESCRYPT}:x:1"), "uid is not a number"),
            (&format!("alice:{YESCRYPT}:-1:1"), "uid is not a number"),
            (&format!("alice:{YESCRYPT}:1: 1"), "gid is not a number"),
            (&format!("alice:{YESCRYPT}:4294967296:1"), "uid 4294967296 is out of range"),
            (&format!(":{YESCRYPT}:1:1"), "invalid user name"),
            (&format!(".alice:{YESCRYPT}:1:1"), "invalid user name"),
            (&format!("a/b:{YESCRYPT}:1:1"), "invalid user name"),
            (&format!("{}:{YESCRYPT}:1:1", "a".repeat(41)), "invalid user name"),
            ("alice:{PLAIN}secret:1:1", "scheme {PLAIN} stores the password in plaintext"),
            ("alice:{plain}secret:1:1", "scheme {PLAIN} stores the password in plaintext"),
            ("alice:{CLEAR}secret:1:1", "scheme {CLEAR} stores the password in plaintext"),
            ("alice:{CRAM-MD5}abc:1:1", "scheme {CRAM-MD5} stores the password in plaintext"),
            ("alice:{SSHA512}abc:1:1", "unsupported scheme {SSHA512}"),
            ("alice:{SHA512-CRYPT.b64}abc:1:1", "unsupported scheme {SHA512-CRYPT.B64}"),
            ("alice:{CRYPT:1:1", "password scheme has no closing '}'"),
            ("alice:secret:1:1", "password is not a crypt(3) hash (plaintext?"),
            ("alice:{CRYPT}secret:1:1", "not a crypt(3) hash"),
            (&format!("alice:{{SHA512-CRYPT}}{YESCRYPT}:1:1"), "{SHA512-CRYPT} hash does not start with $6$"),
            (&format!("alice:{{BLF-CRYPT}}{SHA512}:1:1"), "{BLF-CRYPT} hash does not start with $2a$ or $2b$ or $2y$"),
            (&format!("alice:{{MD5-CRYPT}}{SHA512}:1:1"), "{MD5-CRYPT} hash does not start with $1$"),
            (&format!("alice:{{ARGON2I}}{ARGON2ID}:1:1"), "{ARGON2I} hash is $argon2id$"),
            (&format!("alice:{{ARGON2ID}}{YESCRYPT}:1:1"), "not an Argon2 PHC string"),
            ("alice:{ARGON2ID}$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4:1:1", "Argon2 memory cost m=4194304 is over the limit"),
            ("alice:{ARGON2ID}$argon2id$v=19$m=256,t=2,p=1:1:1", "Argon2 hash has no salt or no output"),
            (&format!("alice:{YESCRYPT}:1:1:::: nopassword"), "extra field nopassword is not supported"),
            (&format!("alice:{YESCRYPT}:1:1:::: allow_nets=10.0.0.0/8"), "extra field allow_nets is not supported"),
            (&format!("alice:{YESCRYPT}:1:1:::: userdb_uid=0"), "extra field userdb_uid is not supported"),
            (&format!("alice:{YESCRYPT}:1:1:::: userdb_mail=maildir:~/Maildir"), "mail location format \"maildir\" is not supported"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:"), "mail location has no path"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:relative/%u"), "mail location is not an absolute path"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:~/mbox"), "mail location uses the home directory, but there is none"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:/var/mail/%h"), "mail location uses the home directory, but there is none"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:/var/mail/%x"), "mail location has an unknown variable %x"),
            (&format!("alice:{YESCRYPT}:1:1:::: mail=mbox:/var/mail/%"), "mail location ends with a lone %"),
        ];
        for (line, want) in cases {
            let (n, message) = err(line);
            assert_eq!(n, 1, "{line}");
            assert!(
                message.starts_with(want),
                "{line}\n  got:  {message}\n  want: {want}"
            );
        }
        // Line numbers count comments and blank lines; the first error wins.
        let text = format!("# c\n\nalice:{YESCRYPT}:1:1\nbob:{{PLAIN}}x:2:2\nbad\n");
        assert_eq!(err(&text).0, 4);
        let text = format!("alice:{YESCRYPT}:1:1\nalice:{SHA512}:2:2\n");
        assert_eq!(err(&text), (2, "user alice is listed twice".into()));
        let (n, m) = err(&format!("ok:{YESCRYPT}:1:1\n\u{0}:x:1:1"));
        assert_eq!((n, m.starts_with("invalid user name")), (2, true));
        // Not UTF-8.
        match parse(b"ok:$6$a$b:1:1\n\xff\xfe:x:1:1\n") {
            Err(e) => assert_eq!((e.line, e.message.as_str()), (2, "not valid UTF-8")),
            Ok(v) => panic!("{v:?}"),
        }
    }

    #[test]
    fn scheme_dispatch() {
        let kind = |line: &str| match one(line).unwrap().password {
            Ok(StoredHash::Crypt(_)) => "crypt",
            Ok(StoredHash::Argon2(_)) => "argon2",
            Err(_) => "refused",
        };
        assert_eq!(kind(&format!("a:{YESCRYPT}:1:1")), "crypt");
        assert_eq!(kind(&format!("a:{{CRYPT}}{YESCRYPT}:1:1")), "crypt");
        assert_eq!(kind(&format!("a:{{Sha512-Crypt}}{SHA512}:1:1")), "crypt");
        assert_eq!(kind("a:{SHA256-CRYPT}$5$abcdefghijklmnop$K9dal0vqJAQ5ZGSuccJ6r3WgHXj0t.EcKlgZVEUZ3h7:1:1"), "crypt");
        assert_eq!(
            kind("a:{MD5-CRYPT}$1$abcdefgh$oQj35cyv.Q8dkIXyNJ01A0:1:1"),
            "crypt"
        );
        assert_eq!(kind("a:{CRYPT}abJnggxhB/yWI:1:1"), "crypt");
        assert_eq!(kind(&format!("a:{{BLF-CRYPT}}{BCRYPT}:1:1")), "crypt");
        assert_eq!(kind(&format!("a:{{ARGON2ID}}{ARGON2ID}:1:1")), "argon2");
        assert_eq!(
            kind("a:{ARGON2I}$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8:1:1"),
            "argon2"
        );
        assert_eq!(kind("a:{ARGON2I}!:1:1"), "refused");
    }

    #[test]
    fn expansion() {
        let home = Some(Path::new("/home/u/"));
        let ex = |t: &str, u: &str| expand(t, u, home);
        assert_eq!(ex("/m/%u", "a@b.c"), Ok("/m/a@b.c".into()));
        assert_eq!(ex("/m/%d/%n", "a@b.c"), Ok("/m/b.c/a".into()));
        assert_eq!(ex("/m/%d/%n", "a"), Ok("/m//a".into()));
        assert_eq!(ex("~/mbox", "a"), Ok("/home/u/mbox".into()));
        assert_eq!(ex("%h/mbox", "a"), Ok("/home/u//mbox".into()));
        assert_eq!(ex("/100%%/%u", "a"), Ok("/100%/a".into()));
        assert_eq!(
            parse_mail("mbox:/r:INBOX=/var/mail/%u:LAYOUT=fs"),
            Ok("/var/mail/%u".into())
        );
        assert_eq!(parse_mail("mbox:/var/mail/%u"), Ok("/var/mail/%u".into()));
    }
}

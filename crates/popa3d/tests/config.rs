//! The configuration file: defaults, every key, every error with its message and line,
//! and malformed input of every kind (never a panic).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use popa3d::config::{
    AuthKind, Config, ConfigError, Daemon, Listener, Network, PlaintextLogin, Tls, TlsMode,
};

const ORIGIN: &str = "/etc/popa3d/popa3d.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, ORIGIN)
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_popa3d() {
    let c = Config::default();
    assert_eq!(c.auth, AuthKind::Shadow);
    assert_eq!(c.pam_service, "popa3d");
    assert_eq!(c.spool, Path::new("/var/mail"));
    assert_eq!(c.user, "popa3d");
    assert_eq!(c.chroot, Path::new("/var/lib/popa3d"));
    assert_eq!(c.timeout, Duration::from_secs(600));
    assert_eq!(c.write_timeout, Duration::from_secs(600));
    assert_eq!(c.syslog_socket, Path::new("/dev/log"));
    assert!(c.warnings().is_empty());
}

#[test]
fn an_empty_file_or_only_comments_means_the_defaults() {
    for text in ["", "\n\n", "# nothing here\n", "   \t\n# auth = \"pam\"\n"] {
        assert_eq!(parse(text).unwrap(), Config::default(), "{text:?}");
    }
}

#[test]
fn every_key() {
    let text = r#"
# A full file.
auth = "passwd-file"
pam_service = "pop3"
passwd_file = "/etc/popa3d/users"
spool = "/var/spool/mail"
user = "pop3-unpriv"
chroot = "/var/empty"
timeout = 900
write_timeout = 120
syslog_socket = "/run/systemd/journal/dev-log"
lock_timeout = 5
max_sessions = 2000
max_per_source = 20
max_per_network = 40
network_prefix_ipv4 = 22
network_prefix_ipv6 = 56
flood_window = 30
login_failure_delay = 2
login_failure_delay_max = 60
shutdown_timeout = 120
tls = "stls"
tls_cert = "/etc/popa3d/fullchain.pem"
tls_key = "/etc/popa3d/privkey.pem"
plaintext_login = "never"
tls_handshake_timeout = 20

[[listener]]
address = "[::1]:1110"
name = "pop3"
backlog = 64
tls = "implicit"
tls_key = "/etc/popa3d/other.pem"
plaintext_login = "always"

[[listener]]
address = "127.0.0.1:110"
proxy_protocol = true
proxy_trusted = ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]
proxy_timeout = 5
"#;
    let c = parse(text).unwrap();
    let tls = Tls {
        mode: TlsMode::Stls,
        cert: Some(PathBuf::from("/etc/popa3d/fullchain.pem")),
        key: Some(PathBuf::from("/etc/popa3d/privkey.pem")),
        plaintext_login: PlaintextLogin::Never,
    };
    assert_eq!(
        c,
        Config {
            auth: AuthKind::PasswdFile,
            pam_service: "pop3".to_owned(),
            passwd_file: PathBuf::from("/etc/popa3d/users"),
            spool: PathBuf::from("/var/spool/mail"),
            user: "pop3-unpriv".to_owned(),
            chroot: PathBuf::from("/var/empty"),
            timeout: Duration::from_secs(900),
            write_timeout: Duration::from_secs(120),
            syslog_socket: PathBuf::from("/run/systemd/journal/dev-log"),
            lock_timeout: Some(Duration::from_secs(5)),
            daemon: Daemon {
                max_sessions: 2000,
                max_per_source: 20,
                max_per_network: 40,
                network_prefix_ipv4: 22,
                network_prefix_ipv6: 56,
                flood_window: Duration::from_secs(30),
                login_failure_delay: Duration::from_secs(2),
                login_failure_delay_max: Duration::from_secs(60),
                shutdown_timeout: Duration::from_secs(120),
            },
            listeners: vec![
                Listener {
                    address: "[::1]:1110".parse().unwrap(),
                    name: Some("pop3".to_owned()),
                    backlog: 64,
                    tls: Tls {
                        mode: TlsMode::Implicit,
                        key: Some(PathBuf::from("/etc/popa3d/other.pem")),
                        plaintext_login: PlaintextLogin::Always,
                        ..tls.clone()
                    },
                    ..Listener::on("[::1]:1110".parse().unwrap())
                },
                Listener {
                    proxy_protocol: true,
                    proxy_trusted: vec![
                        Network {
                            addr: "127.0.0.1".parse().unwrap(),
                            prefix: 32
                        },
                        Network {
                            addr: "10.0.0.0".parse().unwrap(),
                            prefix: 8
                        },
                        Network {
                            addr: "2001:db8::".parse().unwrap(),
                            prefix: 32
                        },
                    ],
                    proxy_timeout: Duration::from_secs(5),
                    tls: tls.clone(),
                    ..Listener::on("127.0.0.1:110".parse().unwrap())
                },
            ],
            tls: tls.clone(),
            tls_handshake_timeout: Duration::from_secs(20),
        }
    );
    assert!(c.warnings().is_empty());
    let trusted = &c.listeners[1];
    assert!(trusted.trusts("10.200.3.4".parse().unwrap()));
    assert!(trusted.trusts("::ffff:10.0.0.1".parse().unwrap()));
    assert!(trusted.trusts("2001:db8:ffff::1".parse().unwrap()));
    assert!(!trusted.trusts("127.0.0.2".parse().unwrap()));
    assert!(!trusted.trusts("11.0.0.1".parse().unwrap()));
    assert!(!trusted.trusts("2001:db9::1".parse().unwrap()));
    assert!(!c.listeners[0].trusts("::1".parse().unwrap()));
}

#[test]
fn daemon_defaults_are_popa3ds() {
    let d = Config::default().daemon;
    assert_eq!((d.max_sessions, d.max_per_source), (500, 50));
    assert_eq!(d.flood_window, Duration::from_secs(10));
    assert!(Config::default().listeners.is_empty());
    let l = Listener::defaults();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].address, "0.0.0.0:110".parse().unwrap());
    assert_eq!(l[1].address, "[::]:110".parse().unwrap());
    assert!(l.iter().all(|l| !l.proxy_protocol && l.backlog == 1024));
    assert_eq!(
        Config::default().lock_timeout,
        Some(Duration::from_secs(30))
    );
    // lock_timeout = 0 waits as popa3d does.
    assert_eq!(parse("lock_timeout = 0").unwrap().lock_timeout, None);
    // A small max_sessions lowers the per-source and per-network defaults with it.
    let c = parse("max_sessions = 10").unwrap();
    assert_eq!(
        (c.daemon.max_per_source, c.daemon.max_per_network),
        (10, 10)
    );
}

#[test]
fn each_key_alone_changes_only_itself() {
    let d = Config::default();
    let cases: &[(&str, Config)] = &[
        (
            "auth = \"shadow\"",
            Config {
                auth: AuthKind::Shadow,
                ..d.clone()
            },
        ),
        (
            "auth = \"pam\"",
            Config {
                auth: AuthKind::Pam,
                ..d.clone()
            },
        ),
        (
            "auth = \"pam\"\npam_service = \"dovecot\"",
            Config {
                auth: AuthKind::Pam,
                pam_service: "dovecot".to_owned(),
                ..d.clone()
            },
        ),
        (
            "auth = 'passwd-file'\npasswd_file = '/etc/p'",
            Config {
                auth: AuthKind::PasswdFile,
                passwd_file: PathBuf::from("/etc/p"),
                ..d.clone()
            },
        ),
        (
            "spool = \"/srv/mail\"",
            Config {
                spool: PathBuf::from("/srv/mail"),
                ..d.clone()
            },
        ),
        (
            "user = \"_popa3d\"",
            Config {
                user: "_popa3d".to_owned(),
                ..d.clone()
            },
        ),
        (
            "chroot = \"/var/empty\"",
            Config {
                chroot: PathBuf::from("/var/empty"),
                ..d.clone()
            },
        ),
        (
            "timeout = 86400",
            Config {
                timeout: Duration::from_secs(86_400),
                ..d.clone()
            },
        ),
        (
            "timeout = 1",
            Config {
                timeout: Duration::from_secs(1),
                ..d.clone()
            },
        ),
        (
            "write_timeout = 30",
            Config {
                write_timeout: Duration::from_secs(30),
                ..d.clone()
            },
        ),
        (
            "syslog_socket = \"/tmp/log\"",
            Config {
                syslog_socket: PathBuf::from("/tmp/log"),
                ..d.clone()
            },
        ),
        (
            // TOML's other ways to write the same values.
            "timeout = 0x258\nspool = \"\"\"/var/mail\"\"\"",
            d.clone(),
        ),
        (
            "timeout = 1_200",
            Config {
                timeout: Duration::from_secs(1200),
                ..d.clone()
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&parse(text).unwrap(), want, "{text:?}");
    }
}

#[test]
fn a_short_timeout_is_allowed_with_a_warning() {
    let c = parse("timeout = 60").unwrap();
    assert_eq!(c.timeout, Duration::from_secs(60));
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("timeout = 60 is below RFC 1939's 10-minute minimum"),
        "{w:?}"
    );
    assert!(parse("timeout = 599").unwrap().warnings().len() == 1);
    assert!(parse("timeout = 600").unwrap().warnings().is_empty());
    // The write timeout is ours, not the RFC's idle timer.
    assert!(parse("write_timeout = 5").unwrap().warnings().is_empty());
}

#[test]
fn errors_name_the_file_the_line_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        // Unknown keys, including near misses and tables.
        (
            "auth = \"pam\"\ntimout = 600\n",
            "/etc/popa3d/popa3d.toml:2: unknown field `timout`, expected one of",
        ),
        ("[server]\nuser = \"x\"\n", "/etc/popa3d/popa3d.toml:1: unknown field `server`"),
        ("Auth = \"pam\"", "/etc/popa3d/popa3d.toml:1: unknown field `Auth`"),
        // Wrong types.
        ("timeout = \"600\"", "/etc/popa3d/popa3d.toml:1: invalid type: string \"600\", expected a whole number of seconds"),
        ("timeout = 600.0", "/etc/popa3d/popa3d.toml:1: invalid type: floating point `600.0`, expected a whole number of seconds"),
        ("timeout = true", "/etc/popa3d/popa3d.toml:1: invalid type: boolean `true`, expected a whole number of seconds"),
        ("\n\nspool = 5", "/etc/popa3d/popa3d.toml:3: invalid type: integer `5`, expected a string"),
        ("user = [\"a\"]", "/etc/popa3d/popa3d.toml:1: invalid type: sequence, expected a string"),
        ("auth = { kind = \"pam\" }", "/etc/popa3d/popa3d.toml:1: invalid type: map, expected a string"),
        // Out of range.
        ("timeout = 0", "/etc/popa3d/popa3d.toml:1: timeout = 0: must be a number of seconds from 1 to 86400"),
        ("\ntimeout = 86401", "/etc/popa3d/popa3d.toml:2: timeout = 86401: must be a number of seconds from 1 to 86400"),
        ("timeout = -5", "/etc/popa3d/popa3d.toml:1: timeout = -5: must be a number of seconds from 1 to 86400"),
        ("write_timeout = 0", "/etc/popa3d/popa3d.toml:1: write_timeout = 0: must be a number of seconds from 1 to 86400"),
        ("write_timeout = 9223372036854775807", "/etc/popa3d/popa3d.toml:1: write_timeout = 9223372036854775807: must be"),
        ("timeout = 99999999999999999999", "/etc/popa3d/popa3d.toml:1: "),
        // auth.
        ("auth = \"ldap\"", "/etc/popa3d/popa3d.toml:1: auth = \"ldap\": unknown backend; expected \"shadow\", \"pam\" or \"passwd-file\""),
        ("auth = \"PAM\"", "/etc/popa3d/popa3d.toml:1: auth = \"PAM\": unknown backend"),
        ("auth = \"\\u001b[2J\"", "/etc/popa3d/popa3d.toml:1: auth = \"\\x1b[2J\": unknown backend"),
        ("# virtual users\n\nauth = \"passwd-file\"\n", "/etc/popa3d/popa3d.toml:3: auth = \"passwd-file\" needs passwd_file = \"/path/to/passwd\""),
        // Paths.
        ("spool = \"var/mail\"", "/etc/popa3d/popa3d.toml:1: spool = \"var/mail\": must be an absolute path (starting with /)"),
        ("chroot = \"\"", "/etc/popa3d/popa3d.toml:1: chroot = \"\": must not be empty"),
        ("syslog_socket = \"./log\"", "/etc/popa3d/popa3d.toml:1: syslog_socket = \"./log\": must be an absolute path"),
        ("passwd_file = \"passwd\"", "/etc/popa3d/popa3d.toml:1: passwd_file = \"passwd\": must be an absolute path"),
        ("spool = \"/var/mail\\u0000x\"", "/etc/popa3d/popa3d.toml:1: spool = \"/var/mail\\x00x\": must not contain a NUL character"),
        ("spool = \"~/mail\"", "/etc/popa3d/popa3d.toml:1: spool = \"~/mail\": must be an absolute path"),
        // Names.
        ("user = \"\"", "/etc/popa3d/popa3d.toml:1: user = \"\": must not be empty"),
        ("user = \"pop 3\"", "/etc/popa3d/popa3d.toml:1: user = \"pop 3\": must not contain ' '"),
        ("user = \"a:b\"", "/etc/popa3d/popa3d.toml:1: user = \"a:b\": must not contain ':'"),
        ("user = \"../root\"", "/etc/popa3d/popa3d.toml:1: user = \"../root\": must not contain '/'"),
        ("pam_service = \"../../etc/passwd\"", "/etc/popa3d/popa3d.toml:1: pam_service = \"../../etc/passwd\": must not contain '/'"),
        ("pam_service = \"a\\tb\"", "/etc/popa3d/popa3d.toml:1: pam_service = \"a\\x09b\": must not contain '\\t'"),
        // Syntax.
        ("auth = pam", "/etc/popa3d/popa3d.toml:1: "),
        ("timeout = 600\ntimeout = 700", "/etc/popa3d/popa3d.toml:2: duplicate key"),
        ("spool = \"/var/mail", "/etc/popa3d/popa3d.toml:1: "),
        ("\n\n\nuser = 'a' 'b'", "/etc/popa3d/popa3d.toml:4: "),
        ("lock_timeout = -1", "/etc/popa3d/popa3d.toml:1: lock_timeout = -1: must be a number of seconds from 0 to 86400"),
        // The daemon's settings.
        ("max_sessions = 0", "/etc/popa3d/popa3d.toml:1: max_sessions = 0: must be from 1 to 65536"),
        ("max_sessions = 100000", "/etc/popa3d/popa3d.toml:1: max_sessions = 100000: must be from 1 to 65536"),
        ("max_sessions = 100\nmax_per_source = 101", "/etc/popa3d/popa3d.toml:2: max_per_source = 101: must be from 1 to 100"),
        ("max_per_network = -1", "/etc/popa3d/popa3d.toml:1: max_per_network = -1: must be from 1 to 500"),
        ("network_prefix_ipv4 = 33", "/etc/popa3d/popa3d.toml:1: network_prefix_ipv4 = 33: must be from 0 to 32"),
        ("network_prefix_ipv6 = 129", "/etc/popa3d/popa3d.toml:1: network_prefix_ipv6 = 129: must be from 0 to 128"),
        ("flood_window = \"10s\"", "/etc/popa3d/popa3d.toml:1: "),
        ("login_failure_delay = 20", "/etc/popa3d/popa3d.toml:1: login_failure_delay = 20 is more than login_failure_delay_max = 15"),
        ("shutdown_timeout = -5", "/etc/popa3d/popa3d.toml:1: shutdown_timeout = -5: must be a number of seconds from 0 to 86400"),
        // Listeners.
        ("[[listener]]\nname = \"x\"", "/etc/popa3d/popa3d.toml:1: [[listener]] needs address = \"IP:PORT\""),
        ("[[listener]]\naddress = \"localhost:110\"", "/etc/popa3d/popa3d.toml:2: address = \"localhost:110\": not an IP address and port"),
        ("[[listener]]\naddress = \"0.0.0.0\"", "/etc/popa3d/popa3d.toml:2: address = \"0.0.0.0\": not an IP address and port"),
        ("[[listener]]\naddress = \"[::]:110\"\n[[listener]]\naddress = \"[::]:110\"", "/etc/popa3d/popa3d.toml:4: address = \"[::]:110\": listed twice"),
        ("[[listener]]\naddress = \"[::]:110\"\nname = \"a\"\n[[listener]]\naddress = \"[::]:111\"\nname = \"a\"", "/etc/popa3d/popa3d.toml:6: name = \"a\": used by two listeners"),
        ("[[listener]]\naddress = \"[::]:110\"\nport = 110", "/etc/popa3d/popa3d.toml:3: unknown field `port`"),
        ("[[listener]]\naddress = \"[::]:110\"\nbacklog = 0", "/etc/popa3d/popa3d.toml:3: backlog = 0: must be from 1 to 65535"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_protocol = true", "/etc/popa3d/popa3d.toml:3: proxy_protocol = true needs proxy_trusted"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_trusted = [\"10.0.0.1/8\"]", "/etc/popa3d/popa3d.toml:3: proxy_trusted: \"10.0.0.1/8\": address has bits set beyond the prefix length"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_trusted = [\"10.0.0.0/33\"]", "/etc/popa3d/popa3d.toml:3: proxy_trusted: \"10.0.0.0/33\": prefix length out of range"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_trusted = [\"10.0.0.0/+8\"]", "/etc/popa3d/popa3d.toml:3: proxy_trusted: \"10.0.0.0/+8\": prefix length is not a number"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_trusted = [\"haproxy.local\"]", "/etc/popa3d/popa3d.toml:3: proxy_trusted: \"haproxy.local\": not an IP address"),
        ("[[listener]]\naddress = \"[::]:110\"\nproxy_timeout = 0", "/etc/popa3d/popa3d.toml:3: proxy_timeout = 0: must be a number of seconds from 1 to 60"),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(
            got.starts_with(want),
            "{text:?}\n got: {got}\nwant: {want}..."
        );
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
}

#[test]
fn error_accessors() {
    let e = parse("\n\ntimeout = 0").unwrap_err();
    assert_eq!(e.line(), Some(3));
    assert_eq!(
        e.message(),
        "timeout = 0: must be a number of seconds from 1 to 86400"
    );
    assert!(matches!(e, ConfigError::Invalid { .. }));
}

fn temp_file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popa3d-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn load_reads_a_file() {
    let p = temp_file("ok.toml", b"auth = \"pam\"\ntimeout = 900\n");
    let c = Config::load(&p).unwrap();
    assert_eq!(c.auth, AuthKind::Pam);
    assert_eq!(c.timeout, Duration::from_secs(900));

    let p = temp_file("bad.toml", b"auth = \"pam\"\n\nfoo = 1\n");
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:3: unknown field `foo`", p.display())),
        "{e}"
    );
}

#[test]
fn load_errors() {
    let missing = std::env::temp_dir().join("popa3d-config-test-no-such-file.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let dir = std::env::temp_dir();
    let e = Config::load(&dir).unwrap_err().to_string();
    assert!(e.starts_with("cannot read "), "{e}");

    let p = temp_file("latin1.toml", b"# ok\nuser = \"j\xf6rg\"\n");
    assert_eq!(
        Config::load(&p).unwrap_err().to_string(),
        format!("{}:2: not valid UTF-8", p.display())
    );

    let p = temp_file("huge.toml", &vec![b'#'; 2 << 20]);
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.ends_with("larger than 1048576 bytes; not a configuration file"),
        "{e}"
    );

    // A device that never ends is read only up to the limit.
    if Path::new("/dev/zero").exists() {
        let e = Config::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FULL: &str = r#"auth = "passwd-file"
pam_service = "popa3d"
passwd_file = "/etc/popa3d/passwd"
spool = "/var/mail"
user = "popa3d"
chroot = "/var/lib/popa3d"
timeout = 600
write_timeout = 600
syslog_socket = "/dev/log"
"#;

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    // Every truncation of a valid file: an error or a valid prefix, never a panic.
    for n in 0..=FULL.len() {
        let _ = parse(&FULL[..n]);
    }
    // Deep nesting must not overflow the stack.
    for open in ["[", "{a=", "[{a="] {
        let text = format!("user = {}", open.repeat(100_000));
        assert!(parse(&text).is_err());
    }
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let alphabet = b"=\"'[]{}.,#\n\r\t \\0123456789-+_eE:aut_hspoolimr/\x00\x7f";
    for round in 0..20_000 {
        let text: String = match round % 3 {
            // Random bytes (lossily made UTF-8).
            0 => {
                let len = rng.below(200);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            // TOML-ish soup.
            1 => {
                let len = rng.below(120);
                (0..len)
                    .map(|_| char::from(alphabet[rng.below(alphabet.len())]))
                    .collect()
            }
            // The valid file with a few bytes changed, inserted or removed.
            _ => {
                let mut bytes = FULL.as_bytes().to_vec();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                        1 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                        _ => {
                            bytes.remove(at);
                        }
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        match parse(&text) {
            Ok(c) => {
                // Whatever got through is still a checked configuration.
                assert!(c.spool.is_absolute() && c.chroot.is_absolute());
                assert!(c.timeout >= Duration::from_secs(1));
                assert!(c.timeout <= Duration::from_secs(86_400));
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with(ORIGIN), "{msg}");
                if let Some(line) = e.line() {
                    assert!(
                        line >= 1 && line <= text.lines().count().max(1) + 1,
                        "{line} in {text:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn tls_settings_and_their_defaults() {
    // No TLS: popa3d's behaviour, plaintext logins everywhere.
    let c = parse("").unwrap();
    assert_eq!(c.tls, Tls::default());
    assert!(c
        .tls
        .allows_plaintext_login(Some("192.0.2.1".parse().unwrap())));
    assert_eq!(c.tls_handshake_timeout, Duration::from_secs(30));

    // TLS at the top: plaintext logins from loopback only, by default; the default
    // listeners take the top-level settings.
    let c = parse("tls = 'stls'\ntls_cert = '/c.pem'\ntls_key = '/k.pem'\n").unwrap();
    assert_eq!(c.tls.plaintext_login, PlaintextLogin::Loopback);
    assert!(c
        .tls
        .allows_plaintext_login(Some("127.0.0.1".parse().unwrap())));
    assert!(c.tls.allows_plaintext_login(Some("::1".parse().unwrap())));
    assert!(c
        .tls
        .allows_plaintext_login(Some("::ffff:127.0.0.2".parse().unwrap())));
    assert!(!c
        .tls
        .allows_plaintext_login(Some("192.0.2.1".parse().unwrap())));
    assert!(!c.tls.allows_plaintext_login(None));
    let l = c.effective_listeners();
    assert_eq!(l.len(), 2);
    assert!(l.iter().all(|l| l.tls == c.tls));

    // A listener overrides key by key; without TLS of its own it is popa3d's again.
    let c = parse(
        "tls_cert = '/c.pem'\ntls_key = '/k.pem'\n\
         [[listener]]\naddress = '127.0.0.1:995'\ntls = 'implicit'\n\
         [[listener]]\naddress = '127.0.0.1:110'\ntls = 'stls'\nplaintext_login = 'never'\n\
         [[listener]]\naddress = '127.0.0.1:1110'\n",
    )
    .unwrap();
    assert_eq!(c.listeners[0].tls.mode, TlsMode::Implicit);
    assert_eq!(
        c.listeners[0].tls.files(),
        Some((Path::new("/c.pem"), Path::new("/k.pem")))
    );
    assert_eq!(c.listeners[0].tls.plaintext_login, PlaintextLogin::Loopback);
    assert_eq!(c.listeners[1].tls.plaintext_login, PlaintextLogin::Never);
    assert!(!c.listeners[1]
        .tls
        .allows_plaintext_login(Some("127.0.0.1".parse().unwrap())));
    assert_eq!(c.listeners[2].tls.mode, TlsMode::None);
    assert_eq!(c.listeners[2].tls.files(), None);
    assert_eq!(c.listeners[2].tls.plaintext_login, PlaintextLogin::Always);

    // A top-level plaintext_login is every TLS listener's default, even without TLS at
    // the top; listeners without TLS stay popa3d's.
    let c = parse(
        "plaintext_login = 'never'\ntls_cert = '/c.pem'\ntls_key = '/k.pem'\n\
         [[listener]]\naddress = '127.0.0.1:110'\ntls = 'stls'\n\
         [[listener]]\naddress = '127.0.0.1:1110'\n",
    )
    .unwrap();
    assert_eq!(c.listeners[0].tls.plaintext_login, PlaintextLogin::Never);
    assert_eq!(c.listeners[1].tls.plaintext_login, PlaintextLogin::Always);
    let c = parse(
        "plaintext_login = 'always'\ntls_cert = '/c.pem'\ntls_key = '/k.pem'\n\
         [[listener]]\naddress = '127.0.0.1:110'\ntls = 'stls'\n",
    )
    .unwrap();
    assert_eq!(c.listeners[0].tls.plaintext_login, PlaintextLogin::Always);
}

#[test]
fn tls_errors_say_what_is_missing() {
    for (text, want) in [
        ("tls = 'yes'", "/etc/popa3d/popa3d.toml:1: tls = \"yes\": expected \"none\", \"stls\" or \"implicit\""),
        ("tls = 'stls'", "/etc/popa3d/popa3d.toml:1: tls = \"stls\" needs tls_cert = \"/path/to/fullchain.pem\""),
        (
            "tls = 'implicit'\ntls_cert = '/c.pem'",
            "/etc/popa3d/popa3d.toml:1: tls = \"implicit\" needs tls_key = \"/path/to/privkey.pem\"",
        ),
        ("tls_cert = 'c.pem'", "/etc/popa3d/popa3d.toml:1: tls_cert = \"c.pem\": must be an absolute path (starting with /)"),
        (
            "plaintext_login = 'never'",
            "/etc/popa3d/popa3d.toml:1: plaintext_login = \"never\" without TLS would refuse every login; set tls = \"stls\" or \"implicit\"",
        ),
        (
            "plaintext_login = 'sometimes'",
            "/etc/popa3d/popa3d.toml:1: plaintext_login = \"sometimes\": expected \"always\", \"loopback\" or \"never\"",
        ),
        ("tls_handshake_timeout = 0", "/etc/popa3d/popa3d.toml:1: tls_handshake_timeout = 0: must be a number of seconds from 1 to 600"),
        (
            "\n[[listener]]\naddress = '127.0.0.1:995'\ntls = 'implicit'",
            "/etc/popa3d/popa3d.toml:4: tls = \"implicit\" needs tls_cert = \"/path/to/fullchain.pem\"",
        ),
    ] {
        assert_eq!(error(text), want, "{text:?}");
    }
}

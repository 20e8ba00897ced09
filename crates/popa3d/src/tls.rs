//! TLS for sessions (RFC 8314 implicit TLS, RFC 2595 STLS), laid out so that no process
//! that handles a session ever holds the private key (docs/privsep.md, "TLS"):
//!
//! ```text
//!  key holder: loads the key after fork, confined; one signature per channel
//!     ▲ one channel per connection (daemon: made by the daemon; inetd: by the session)
//!  TLS relay (uid popa3d, chroot, seccomp): client socket ⇄ rustls ⇄ plaintext socket
//!     ▲ fds 0/1 of the session: pre-auth, verifier and mail-user process as without TLS
//! ```
//!
//! The daemon and the sessions hold only public material: certificate chains and the
//! key's `SubjectPublicKeyInfo`, reported by the holder and checked against the chain's
//! leaf before any connection uses the pair.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pop3_sys::poll::TimedFd;
use pop3_sys::process::Pid;
use pop3_sys::sandbox::{self, Confinement};
use pop3_tls::holder::Holder;
use pop3_tls::relay::{self, RelayError};
use pop3_tls::remote::{self, RemoteError, RemoteSigningKey};
use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};

use crate::config::{self, Config, TlsMode};
use crate::messages::{strerror, Level};
use crate::syslog::{escape, Syslog};

/// The most certificates read from one `tls_cert` file (a real chain has 2–4).
const MAX_CHAIN: usize = 16;

/// The largest `tls_cert` file read.
const MAX_CERT_FILE: u64 = 1 << 20;

/// A certificate chain, leaf first.
pub type Chain = Vec<CertificateDer<'static>>;

/// Why TLS could not be set up. The text names the file or the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Reads the certificate chain in `path` (PEM, leaf first). Public data: the daemon and
/// the session processes may read it; only the key file is kept from them.
pub fn load_chain(path: &Path) -> Result<Chain, TlsError> {
    let bad = |why: String| TlsError(format!("tls_cert {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(strerror(&e)))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".to_owned()));
    }
    if meta.len() > MAX_CERT_FILE {
        return Err(bad(format!("larger than {MAX_CERT_FILE} bytes")));
    }
    let mut chain = Vec::new();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(pem_error(e)))?;
    for cert in certs {
        chain.push(cert.map_err(|e| bad(pem_error(e)))?);
        if chain.len() > MAX_CHAIN {
            return Err(bad(format!("more than {MAX_CHAIN} certificates")));
        }
    }
    if chain.is_empty() {
        return Err(bad("no PEM certificate in the file".to_owned()));
    }
    Ok(chain)
}

/// A PEM reading error as a sentence.
fn pem_error(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(e) => strerror(&e),
        other => format!("not a valid PEM file ({other:?})"),
    }
}

/// The public half of a certificate and key pair, checked to match.
#[derive(Clone, Debug)]
pub struct Material {
    pub chain: Arc<Chain>,
    pub public_key: SubjectPublicKeyInfoDer<'static>,
}

/// A server configuration for `chain` whose one signature is asked for on `channel`;
/// fails if the holder's key is not the leaf certificate's.
fn server_config(
    chain: &Chain,
    public_key: SubjectPublicKeyInfoDer<'static>,
    channel: UnixStream,
    timeout: Duration,
) -> Result<Arc<ServerConfig>, TlsError> {
    let key = RemoteSigningKey::new(channel, public_key, timeout)
        .map_err(|e| TlsError(format!("tls_key: {e}")))?;
    remote::server_config(chain.clone(), key).map_err(|e| match e {
        RemoteError::KeyMismatch(_) => TlsError(
            "the certificate is not for this key (its public key differs from the key's)"
                .to_owned(),
        ),
        other => TlsError(other.to_string()),
    })
}

/// How a session reaches the key for its one handshake.
#[derive(Debug)]
pub enum KeyAccess {
    /// Standalone daemon: the pair's public half, and a channel to the daemon's key
    /// holder made for this connection.
    Daemon {
        material: Material,
        channel: UnixStream,
    },
    /// inetd mode: the files; the session spawns a key holder of its own when TLS
    /// starts, and that holder reads the key.
    Files { cert: PathBuf, key: PathBuf },
}

/// A session's TLS: its mode and how it gets its signature.
#[derive(Debug)]
pub struct SessionTls {
    pub mode: TlsMode,
    pub key: KeyAccess,
    pub handshake_timeout: Duration,
}

impl SessionTls {
    /// The descriptor a forked session must keep open: the channel to the holder.
    pub fn raw_fd(&self) -> Option<RawFd> {
        match &self.key {
            KeyAccess::Daemon { channel, .. } => Some(channel.as_raw_fd()),
            KeyAccess::Files { .. } => None,
        }
    }

    /// inetd mode's TLS, from the top-level settings; `None` without TLS.
    pub fn for_inetd(config: &Config) -> Option<SessionTls> {
        let (cert, key) = config.tls.files()?;
        Some(SessionTls {
            mode: config.tls.mode,
            key: KeyAccess::Files {
                cert: cert.to_owned(),
                key: key.to_owned(),
            },
            handshake_timeout: config.tls_handshake_timeout,
        })
    }

    /// The rustls configuration for this session's handshake. inetd mode: reads the
    /// chain, spawns a key holder, asks it for the public key, takes the signature
    /// channel and lets the holder go (it exits once it has answered both), returning
    /// its pid for the caller to reap.
    pub fn server_config(self) -> Result<(Arc<ServerConfig>, Option<Pid>), TlsError> {
        let timeout = self.handshake_timeout;
        match self.key {
            KeyAccess::Daemon { material, channel } => Ok((
                server_config(&material.chain, material.public_key, channel, timeout)?,
                None,
            )),
            KeyAccess::Files { cert, key } => {
                let chain = load_chain(&cert)?;
                let holder = Holder::spawn(std::slice::from_ref(&key), timeout)
                    .map_err(|e| TlsError(e.to_string()))?;
                let public_key = holder
                    .public_key(0, timeout)
                    .map_err(|e| TlsError(format!("tls_key {}: {e}", key.display())))?;
                let channel = holder
                    .channel(0)
                    .map_err(|e| TlsError(format!("key holder: {}", strerror(&e))))?;
                let pid = holder.into_pid();
                Ok((
                    server_config(&chain, public_key, channel, timeout)?,
                    Some(pid),
                ))
            }
        }
    }
}

/// One certificate and key pair of the daemon, by file names.
#[derive(Debug)]
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    /// The key's index in the holder.
    key_index: usize,
    material: Material,
}

/// The standalone daemon's TLS: one key holder for every key of every listener, and the
/// checked public half of each pair. Replaced whole at SIGHUP.
#[derive(Debug, Default)]
pub struct DaemonTls {
    holder: Option<Holder>,
    pairs: Vec<Pair>,
    handshake_timeout: Duration,
}

impl DaemonTls {
    /// Spawns the key holder for the keys of `config`'s listeners (the `[[listener]]`
    /// tables, or the default listeners and systemd's sockets with the top-level
    /// settings) and checks each certificate against its key. Nothing is spawned when
    /// there is no TLS. The caller must be single-threaded (the holder is forked).
    pub fn start(config: &Config) -> Result<DaemonTls, TlsError> {
        let handshake_timeout = config.tls_handshake_timeout;
        let listeners = config.effective_listeners();
        let settings = listeners.iter().map(|l| &l.tls);
        let mut keys: Vec<PathBuf> = Vec::new();
        let mut wanted: Vec<(PathBuf, PathBuf, usize)> = Vec::new();
        for tls in settings {
            let Some((cert, key)) = tls.files() else {
                continue;
            };
            if wanted.iter().any(|(c, k, _)| c == cert && k == key) {
                continue;
            }
            let index = match keys.iter().position(|k| k == key) {
                Some(i) => i,
                None => {
                    keys.push(key.to_owned());
                    keys.len() - 1
                }
            };
            wanted.push((cert.to_owned(), key.to_owned(), index));
        }
        if wanted.is_empty() {
            return Ok(DaemonTls {
                handshake_timeout,
                ..DaemonTls::default()
            });
        }
        // Public halves first: a bad certificate file needs no holder.
        let mut chains = Vec::new();
        for (cert, _, _) in &wanted {
            chains.push(load_chain(cert)?);
        }
        let holder =
            Holder::spawn(&keys, handshake_timeout).map_err(|e| TlsError(e.to_string()))?;
        let mut public_keys = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let spki = holder
                .public_key(i, handshake_timeout)
                .map_err(|e| TlsError(format!("tls_key {}: {e}", key.display())))?;
            public_keys.push(spki);
        }
        let mut pairs = Vec::new();
        for ((cert, key, key_index), chain) in wanted.into_iter().zip(chains) {
            let public_key = public_keys
                .get(key_index)
                .cloned()
                .ok_or_else(|| TlsError("key holder: key index out of range".to_owned()))?;
            // The same check every session's configuration makes, once now, so that a
            // mismatch stops the start (or the reload) instead of every handshake.
            let channel = holder
                .channel(key_index)
                .map_err(|e| TlsError(format!("key holder: {}", strerror(&e))))?;
            server_config(&chain, public_key.clone(), channel, handshake_timeout).map_err(|e| {
                TlsError(format!(
                    "tls_cert {} and tls_key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            pairs.push(Pair {
                cert,
                key,
                key_index,
                material: Material {
                    chain: Arc::new(chain),
                    public_key,
                },
            });
        }
        Ok(DaemonTls {
            holder: Some(holder),
            pairs,
            handshake_timeout,
        })
    }

    /// Forgets a key holder that has died: new TLS connections are then refused with
    /// "no key holder" until a new one is started.
    pub fn forget_holder(&mut self) {
        self.holder = None;
    }

    /// The key holder's pid, while there is one.
    pub fn holder_pid(&self) -> Option<Pid> {
        self.holder.as_ref().map(Holder::pid)
    }

    /// The TLS of a new connection on a listener with settings `tls`: the pair's public
    /// half and a fresh channel to the holder. `Ok(None)` without TLS.
    pub fn session(&self, tls: &config::Tls) -> Result<Option<SessionTls>, TlsError> {
        let Some((cert, key)) = tls.files() else {
            return Ok(None);
        };
        let pair = self
            .pairs
            .iter()
            .find(|p| p.cert == cert && p.key == key)
            .ok_or_else(|| TlsError(format!("no key loaded for tls_cert {}", cert.display())))?;
        let holder = self
            .holder
            .as_ref()
            .ok_or_else(|| TlsError("no key holder (it ended: see the line before)".to_owned()))?;
        let channel = holder
            .channel(pair.key_index)
            .map_err(|e| TlsError(format!("key holder: {}", strerror(&e))))?;
        Ok(Some(SessionTls {
            mode: tls.mode,
            key: KeyAccess::Daemon {
                material: pair.material.clone(),
                channel,
            },
            handshake_timeout: self.handshake_timeout,
        }))
    }
}

/// "TLS 1.3" for the log.
fn version_name(conn: &ServerConnection) -> &'static str {
    match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    }
}

/// The relay process's work, after the fork: confine, then move bytes between the
/// client (fds 0/1) and `plain` until the session ends. Returns the exit status.
pub fn relay(
    config: &Config,
    syslog: &Syslog,
    uid: u32,
    gid: u32,
    server_config: Arc<ServerConfig>,
    plain: UnixStream,
    handshake_timeout: Duration,
) -> i32 {
    let mut net = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => TimedFd::new(fd, None, Some(config.write_timeout)),
        Err(_) => return 1,
    };
    if plain.set_write_timeout(Some(config.write_timeout)).is_err() {
        return 1;
    }
    // The same confinement as the pre-auth process: the relay parses TLS records from
    // the network for the whole session.
    let confinement = Confinement::new(config.chroot.clone(), uid, gid);
    if let Err(e) = sandbox::confine(&confinement) {
        syslog.log(
            Level::Crit,
            &format!("confining the TLS relay process: {e}"),
        );
        return 1;
    }
    let conn = match ServerConnection::new(server_config) {
        Ok(c) => c,
        Err(e) => {
            syslog.log(Level::Crit, &format!("TLS: {e}"));
            return 1;
        }
    };
    let mut established = false;
    let result = relay::pump_with(conn, &mut net, plain, handshake_timeout, |c| {
        established = true;
        let suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        syslog.log(
            Level::Info,
            &format!(
                "{} session, {}",
                version_name(c),
                escape(suite.as_bytes(), 64)
            ),
        );
    });
    match result {
        Ok(_) => {
            crate::server::shut_down_and_drain(net.into_inner());
            0
        }
        Err(e) => {
            let text = match &e {
                RelayError::Tls(e) => e.to_string(),
                RelayError::HandshakeTimeout => "timed out".to_owned(),
                RelayError::Io(e) => strerror(e),
            };
            let text = escape(text.as_bytes(), 200);
            if established {
                syslog.log(Level::Info, &format!("TLS session ended: {text}"));
            } else {
                let level = match e {
                    RelayError::Io(_) => Level::Info,
                    _ => Level::Notice,
                };
                syslog.log(level, &format!("TLS handshake failed: {text}"));
            }
            1
        }
    }
}

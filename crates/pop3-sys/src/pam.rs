//! The PAM client: pam_start/authenticate/acct_mgmt/end with a password conversation.
//!
//! popa3d's sequence (research/popa3d.md §6.1), with two changes: PAM_RHOST is set when
//! the caller knows the client's address (host-based rules and pam_unix's log lines can
//! then see it), and both calls carry `PAM_DISALLOW_NULL_AUTHTOK | PAM_SILENT`. The
//! first flag overrides pam_unix's `nullok`, which in Debian's common-auth lets an
//! account with an empty password in with *any* password; the second keeps modules
//! from sending text to a client that never sees it.
//!
//! libpam is loaded at run time with `dlopen("libpam.so.0")` rather than linked:
//! - building needs no libpam0g-dev (only the runtime library, which every Debian
//!   system has because login and su need it);
//! - the binary starts, and the shadow and passwd-file backends work, on a system
//!   without libpam at all; only choosing the `pam` backend then fails, with a clear
//!   message;
//! - it is no more fragile than linking: libpam itself dlopens every module, and the six
//!   prototypes below are the stable Linux-PAM ABI (soname `.0` since 1999).
//!
//! The library is loaded once per process and never closed: the verifier is a
//! short-lived process, and modules may keep pointers into libpam until exit.
//!
//! The conversation answers an echo-off prompt with the password and an echo-on prompt
//! with the user name, returns an empty success for error and info messages, and fails
//! on anything else (binary prompts, radio buttons). Replies are `malloc`ed because PAM
//! frees them; when the conversation fails it wipes and frees what it had built.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::sync::OnceLock;

// <security/_pam_types.h> (Linux-PAM).
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_SYSTEM_ERR: c_int = 4;
pub const PAM_BUF_ERR: c_int = 5;
pub const PAM_PERM_DENIED: c_int = 6;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_CRED_INSUFFICIENT: c_int = 8;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_USER_UNKNOWN: c_int = 10;
pub const PAM_MAXTRIES: c_int = 11;
pub const PAM_NEW_AUTHTOK_REQD: c_int = 12;
pub const PAM_ACCT_EXPIRED: c_int = 13;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_AUTHTOK_EXPIRED: c_int = 27;
pub const PAM_ABORT: c_int = 26;

const PAM_USER: c_int = 2;
const PAM_RHOST: c_int = 4;

/// Flags: do not send informational messages.
pub const PAM_SILENT: c_int = 0x8000;
/// Flags: fail if the stored password is empty, whatever the module's `nullok` says.
pub const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
/// What [`authenticate`] passes to pam_authenticate and pam_acct_mgmt.
pub const DEFAULT_FLAGS: c_int = PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// Linux-PAM's limit on messages per conversation call.
const PAM_MAX_NUM_MSG: c_int = 32;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

/// `pam_handle_t`, opaque.
#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

type StartFn = unsafe extern "C" fn(
    service: *const c_char,
    user: *const c_char,
    conv: *const PamConv,
    pamh: *mut *mut PamHandle,
) -> c_int;
type EndFn = unsafe extern "C" fn(pamh: *mut PamHandle, status: c_int) -> c_int;
type FlagsFn = unsafe extern "C" fn(pamh: *mut PamHandle, flags: c_int) -> c_int;
type SetItemFn =
    unsafe extern "C" fn(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
type GetItemFn = unsafe extern "C" fn(
    pamh: *const PamHandle,
    item_type: c_int,
    item: *mut *const c_void,
) -> c_int;

/// The entry points of libpam.so.0 we use.
struct Lib {
    start: StartFn,
    end: EndFn,
    authenticate: FlagsFn,
    acct_mgmt: FlagsFn,
    set_item: SetItemFn,
    get_item: GetItemFn,
}

const LIBPAM: &CStr = c"libpam.so.0";

fn dlerror_text() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl*
    // call on this thread; we copy it at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        return "unknown error".to_owned();
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Looks up `name` in `handle` and returns it as a function pointer of type `F`.
///
/// # Safety
/// `F` must be a function pointer type matching the symbol's C prototype.
unsafe fn symbol<F: Copy>(handle: *mut c_void, name: &CStr) -> Result<F, String> {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>()) };
    // SAFETY: `handle` came from a successful dlopen and is never closed; `name` is
    // NUL-terminated.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if p.is_null() {
        return Err(format!(
            "{}: no symbol {}: {}",
            LIBPAM.to_string_lossy(),
            name.to_string_lossy(),
            dlerror_text()
        ));
    }
    // SAFETY: `p` is the non-null address of the function `name` in libpam, and the
    // caller guarantees that `F` is a function pointer with its prototype (same size,
    // checked above).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

fn load() -> Result<Lib, String> {
    // SAFETY: LIBPAM is NUL-terminated. Loading runs libpam's initialisers, which have
    // no preconditions; the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(LIBPAM.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!(
            "cannot load {}: {} (is libpam0g installed?)",
            LIBPAM.to_string_lossy(),
            dlerror_text()
        ));
    }
    // SAFETY: for each symbol, the type is the Linux-PAM prototypes of these symbols
    // (<security/pam_appl.h>, <security/_pam_types.h>).
    unsafe {
        Ok(Lib {
            start: symbol(handle, c"pam_start")?,
            end: symbol(handle, c"pam_end")?,
            authenticate: symbol(handle, c"pam_authenticate")?,
            acct_mgmt: symbol(handle, c"pam_acct_mgmt")?,
            set_item: symbol(handle, c"pam_set_item")?,
            get_item: symbol(handle, c"pam_get_item")?,
        })
    }
}

fn lib() -> Result<&'static Lib, PamError> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|e| PamError::Unavailable(e.clone()))
}

/// A PAM return code, with Linux-PAM's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamCode(pub c_int);

impl fmt::Display for PamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            PAM_SUCCESS => "PAM_SUCCESS",
            PAM_SERVICE_ERR => "PAM_SERVICE_ERR",
            PAM_SYSTEM_ERR => "PAM_SYSTEM_ERR",
            PAM_BUF_ERR => "PAM_BUF_ERR",
            PAM_PERM_DENIED => "PAM_PERM_DENIED",
            PAM_AUTH_ERR => "PAM_AUTH_ERR",
            PAM_CRED_INSUFFICIENT => "PAM_CRED_INSUFFICIENT",
            PAM_AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
            PAM_USER_UNKNOWN => "PAM_USER_UNKNOWN",
            PAM_MAXTRIES => "PAM_MAXTRIES",
            PAM_NEW_AUTHTOK_REQD => "PAM_NEW_AUTHTOK_REQD",
            PAM_ACCT_EXPIRED => "PAM_ACCT_EXPIRED",
            PAM_CONV_ERR => "PAM_CONV_ERR",
            PAM_ABORT => "PAM_ABORT",
            PAM_AUTHTOK_EXPIRED => "PAM_AUTHTOK_EXPIRED",
            _ => return write!(f, "PAM error {}", self.0),
        };
        f.write_str(name)
    }
}

/// What PAM decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PamOutcome {
    /// pam_authenticate and pam_acct_mgmt both returned PAM_SUCCESS. `user` is the
    /// PAM_USER item afterwards: the account PAM settled on, which a module may have
    /// changed from the name typed.
    Success { user: Vec<u8> },
    /// pam_authenticate refused: wrong password, unknown user, locked account ...
    AuthFailed(PamCode),
    /// The password was right but pam_acct_mgmt refused: expired account, password
    /// change required, access rules ...
    AccountRefused(PamCode),
}

/// PAM could not be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PamError {
    /// libpam.so.0 or one of its symbols could not be loaded.
    Unavailable(String),
    /// The service, user or host name contains a NUL byte.
    Nul(&'static str),
    /// pam_start failed (no usable configuration, out of memory).
    Start(PamCode),
    /// pam_set_item(PAM_RHOST) failed.
    SetRhost(PamCode),
    /// pam_get_item(PAM_USER) failed or returned nothing after a success.
    NoUser(PamCode),
}

impl fmt::Display for PamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PamError::Unavailable(e) => write!(f, "PAM unavailable: {e}"),
            PamError::Nul(what) => write!(f, "PAM: the {what} contains a NUL byte"),
            PamError::Start(c) => write!(f, "pam_start failed: {c}"),
            PamError::SetRhost(c) => write!(f, "pam_set_item(PAM_RHOST) failed: {c}"),
            PamError::NoUser(c) => write!(f, "pam_get_item(PAM_USER) failed: {c}"),
        }
    }
}

impl std::error::Error for PamError {}

/// What the conversation answers with. Raw parts rather than slices: it is reached
/// through a `void *` from C.
struct ConvData {
    user: *const u8,
    user_len: usize,
    password: *const u8,
    password_len: usize,
}

/// A `malloc`ed, NUL-terminated copy of `bytes` (PAM frees replies with `free`).
/// Null if `bytes` contains a NUL or memory is short.
fn c_reply(bytes: &[u8]) -> *mut c_char {
    if bytes.contains(&0) {
        return std::ptr::null_mut();
    }
    // SAFETY: malloc has no preconditions; the result is checked for null.
    let p = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` is a fresh allocation of len + 1 bytes that cannot overlap `bytes`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            *p.add(bytes.len()) = 0;
        }
    }
    p.cast()
}

/// Wipes and frees the first `n` replies and then the array.
///
/// # Safety
/// `replies` is a `calloc`ed array of at least `n` responses whose `resp` fields are
/// null or `malloc`ed NUL-terminated strings.
unsafe fn drop_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: i < n, within the array by the caller's contract.
        let r = unsafe { &mut *replies.add(i) };
        if !r.resp.is_null() {
            // SAFETY: `resp` is a live malloc'ed NUL-terminated string; we wipe its bytes
            // and free it exactly once, then forget the pointer.
            unsafe {
                libc::explicit_bzero(r.resp.cast(), libc::strlen(r.resp));
                libc::free(r.resp.cast());
            }
            r.resp = std::ptr::null_mut();
        }
    }
    // SAFETY: the array came from calloc and is freed once.
    unsafe { libc::free(replies.cast()) };
}

/// The conversation function (Linux-PAM convention: `msg` is an array of `num_msg`
/// pointers). It never unwinds: nothing in it can panic.
unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if resp.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: `resp` is non-null and points to the caller's result slot.
    unsafe { *resp = std::ptr::null_mut() };
    if num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg.is_null() || appdata_ptr.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: `appdata_ptr` is the `ConvData` that `authenticate` put in the pam_conv;
    // it outlives the PAM handle, and PAM calls us only during our own PAM calls.
    let data = unsafe { &*appdata_ptr.cast::<ConvData>() };
    // SAFETY: the pointers and lengths were made from live slices in `authenticate`,
    // which outlive every conversation call.
    let (user, password) = unsafe {
        (
            std::slice::from_raw_parts(data.user, data.user_len),
            std::slice::from_raw_parts(data.password, data.password_len),
        )
    };
    let n = num_msg as usize;
    // SAFETY: calloc has no preconditions; zeroed responses have null `resp` fields.
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: PAM passes `num_msg` valid message pointers (checked for null).
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            // SAFETY: `replies` holds `n` responses built by this function.
            unsafe { drop_replies(replies, n) };
            return PAM_CONV_ERR;
        }
        // SAFETY: non-null pointer to a message PAM owns for the call.
        let style = unsafe { (*m).msg_style };
        let answer = match style {
            PAM_PROMPT_ECHO_OFF => password,
            PAM_PROMPT_ECHO_ON => user,
            PAM_ERROR_MSG | PAM_TEXT_INFO => continue,
            _ => {
                // SAFETY: as above.
                unsafe { drop_replies(replies, n) };
                return PAM_CONV_ERR;
            }
        };
        let p = c_reply(answer);
        if p.is_null() {
            // SAFETY: as above.
            unsafe { drop_replies(replies, n) };
            return PAM_CONV_ERR;
        }
        // SAFETY: i < n, within the array.
        unsafe { (*replies.add(i)).resp = p };
    }
    // SAFETY: `resp` is non-null; PAM now owns (and frees) the array and its strings.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// A started PAM transaction; pam_end runs when it is dropped, with the last status.
struct Transaction {
    lib: &'static Lib,
    pamh: *mut PamHandle,
    status: c_int,
}

impl Transaction {
    fn call(&mut self, f: FlagsFn, flags: c_int) -> c_int {
        // SAFETY: `pamh` is a live handle from pam_start, not yet ended.
        self.status = unsafe { f(self.pamh, flags) };
        self.status
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `pamh` is a live handle from pam_start; it is ended exactly once.
        unsafe { (self.lib.end)(self.pamh, self.status) };
    }
}

/// Asks PAM whether `password` is right for `user` under `service`, and whether the
/// account may log in now (pam_authenticate, then pam_acct_mgmt), with
/// [`DEFAULT_FLAGS`]. `rhost` becomes PAM_RHOST. A password containing a NUL is given
/// to PAM as its prefix before the NUL would be: refuse such passwords before calling.
pub fn authenticate(
    service: &str,
    user: &[u8],
    password: &[u8],
    rhost: Option<&str>,
) -> Result<PamOutcome, PamError> {
    authenticate_with_flags(service, user, password, rhost, DEFAULT_FLAGS)
}

/// [`authenticate`] with explicit flags for pam_authenticate and pam_acct_mgmt; for
/// tests that show what [`DEFAULT_FLAGS`] changes. Use [`authenticate`].
pub fn authenticate_with_flags(
    service: &str,
    user: &[u8],
    password: &[u8],
    rhost: Option<&str>,
    flags: c_int,
) -> Result<PamOutcome, PamError> {
    let lib = lib()?;
    let c_service = CString::new(service).map_err(|_| PamError::Nul("service name"))?;
    let c_user = CString::new(user).map_err(|_| PamError::Nul("user name"))?;
    let c_rhost = rhost
        .map(CString::new)
        .transpose()
        .map_err(|_| PamError::Nul("host name"))?;
    if password.contains(&0) {
        return Err(PamError::Nul("password"));
    }
    let data = ConvData {
        user: user.as_ptr(),
        user_len: user.len(),
        password: password.as_ptr(),
        password_len: password.len(),
    };
    let conv = PamConv {
        conv: Some(converse),
        appdata_ptr: (&data as *const ConvData).cast_mut().cast(),
    };
    let mut pamh: *mut PamHandle = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated; `conv` (copied by libpam) and `data`
    // (reached through it) outlive the transaction, which ends when `tx` is dropped
    // before this function returns.
    let rc = unsafe { (lib.start)(c_service.as_ptr(), c_user.as_ptr(), &conv, &mut pamh) };
    if rc != PAM_SUCCESS || pamh.is_null() {
        if !pamh.is_null() {
            // SAFETY: a handle pam_start returned; ended once.
            unsafe { (lib.end)(pamh, rc) };
        }
        return Err(PamError::Start(PamCode(rc)));
    }
    let mut tx = Transaction {
        lib,
        pamh,
        status: PAM_SUCCESS,
    };
    if let Some(rhost) = &c_rhost {
        // SAFETY: live handle; PAM copies the NUL-terminated string.
        let rc = unsafe { (lib.set_item)(tx.pamh, PAM_RHOST, rhost.as_ptr().cast()) };
        if rc != PAM_SUCCESS {
            tx.status = rc;
            return Err(PamError::SetRhost(PamCode(rc)));
        }
    }
    let rc = tx.call(lib.authenticate, flags);
    if rc != PAM_SUCCESS {
        return Ok(PamOutcome::AuthFailed(PamCode(rc)));
    }
    let rc = tx.call(lib.acct_mgmt, flags);
    if rc != PAM_SUCCESS {
        return Ok(PamOutcome::AccountRefused(PamCode(rc)));
    }
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: live handle; `item` is a writable pointer slot.
    let rc = unsafe { (lib.get_item)(tx.pamh, PAM_USER, &mut item) };
    if rc != PAM_SUCCESS || item.is_null() {
        tx.status = if rc == PAM_SUCCESS {
            PAM_SYSTEM_ERR
        } else {
            rc
        };
        return Err(PamError::NoUser(PamCode(rc)));
    }
    // SAFETY: PAM_USER is a NUL-terminated string owned by the handle, alive until
    // pam_end; we copy it before `tx` is dropped.
    let user = unsafe { CStr::from_ptr(item.cast::<c_char>()) }
        .to_bytes()
        .to_vec();
    Ok(PamOutcome::Success { user })
}

/// Sets libc's syslog identity to popa3d's (`openlog("popa3d", LOG_PID, LOG_DAEMON)`).
/// PAM modules log through libc's `syslog()`; without this, pam_unix's lines carry the
/// default ident without a PID and can no longer be matched to our own
/// `Authentication failed` line, as they can with Debian's popa3d. Call it in the
/// process that runs PAM, before `authenticate`.
pub fn set_module_log_ident() {
    static IDENT: &std::ffi::CStr = c"popa3d";
    // SAFETY: IDENT is a static NUL-terminated string, so the pointer libc keeps stays
    // valid for the life of the process; the flags are libc's constants.
    unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Calls `converse` the way libpam does, with one message per style given.
    fn run_conv(styles: &[c_int], user: &[u8], password: &[u8]) -> (c_int, Vec<Option<Vec<u8>>>) {
        let data = ConvData {
            user: user.as_ptr(),
            user_len: user.len(),
            password: password.as_ptr(),
            password_len: password.len(),
        };
        let msgs: Vec<PamMessage> = styles
            .iter()
            .map(|&s| PamMessage {
                msg_style: s,
                msg: c"Prompt: ".as_ptr(),
            })
            .collect();
        let mut ptrs: Vec<*const PamMessage> = msgs.iter().map(|m| m as *const _).collect();
        let mut resp: *mut PamResponse = std::ptr::NonNull::dangling().as_ptr();
        // SAFETY: the arguments are valid as libpam would pass them.
        let rc = unsafe {
            converse(
                styles.len() as c_int,
                ptrs.as_mut_ptr(),
                &mut resp,
                (&data as *const ConvData).cast_mut().cast(),
            )
        };
        let mut out = Vec::new();
        if rc == PAM_SUCCESS {
            assert!(!resp.is_null());
            for i in 0..styles.len() {
                // SAFETY: `converse` built `styles.len()` responses.
                let r = unsafe { &*resp.add(i) };
                assert_eq!(r.resp_retcode, 0);
                out.push((!r.resp.is_null()).then(|| {
                    // SAFETY: malloc'ed NUL-terminated reply.
                    unsafe { CStr::from_ptr(r.resp) }.to_bytes().to_vec()
                }));
            }
            // SAFETY: we own the replies now, as PAM would.
            unsafe { drop_replies(resp, styles.len()) };
        } else {
            assert!(
                resp.is_null(),
                "a failed conversation must not return replies"
            );
        }
        (rc, out)
    }

    #[test]
    fn conversation_answers_prompts() {
        let (rc, out) = run_conv(
            &[
                PAM_TEXT_INFO,
                PAM_PROMPT_ECHO_ON,
                PAM_ERROR_MSG,
                PAM_PROMPT_ECHO_OFF,
            ],
            b"alice",
            b"s3cret",
        );
        assert_eq!(rc, PAM_SUCCESS);
        assert_eq!(
            out,
            [
                None,
                Some(b"alice".to_vec()),
                None,
                Some(b"s3cret".to_vec())
            ]
        );
        // An empty password is an empty reply, not a missing one.
        let (rc, out) = run_conv(&[PAM_PROMPT_ECHO_OFF], b"alice", b"");
        assert_eq!(rc, PAM_SUCCESS);
        assert_eq!(out, [Some(Vec::new())]);
    }

    #[test]
    fn conversation_fails_on_other_styles_and_frees_what_it_built() {
        // A radio button (5) and a binary prompt (7) after an answered prompt: the
        // answer is wiped and freed (run under valgrind/ASan to see no leak).
        for style in [5, 7, 0, -1] {
            let (rc, _) = run_conv(&[PAM_PROMPT_ECHO_OFF, style], b"alice", b"s3cret");
            assert_eq!(rc, PAM_CONV_ERR, "style {style}");
        }
        // Too many messages, and none.
        let (rc, _) = run_conv(&[PAM_TEXT_INFO; 33], b"a", b"b");
        assert_eq!(rc, PAM_CONV_ERR);
        let (rc, _) = run_conv(&[], b"a", b"b");
        assert_eq!(rc, PAM_CONV_ERR);
        // A password with a NUL cannot be answered faithfully.
        let (rc, _) = run_conv(&[PAM_PROMPT_ECHO_OFF], b"alice", b"a\0b");
        assert_eq!(rc, PAM_CONV_ERR);
    }

    #[test]
    fn libpam_loads() {
        assert!(lib().is_ok(), "{:?}", lib().err());
    }

    #[test]
    fn nul_bytes_are_refused_before_pam() {
        let e = authenticate("popa3d", b"al\0ice", b"pw", None).unwrap_err();
        assert_eq!(e, PamError::Nul("user name"));
        let e = authenticate("popa3d", b"alice", b"p\0w", None).unwrap_err();
        assert_eq!(e, PamError::Nul("password"));
        let e = authenticate("pop\0a3d", b"alice", b"pw", None).unwrap_err();
        assert_eq!(e, PamError::Nul("service name"));
        let e = authenticate("popa3d", b"alice", b"pw", Some("1.2.3.4\0")).unwrap_err();
        assert_eq!(e, PamError::Nul("host name"));
    }

    #[test]
    fn codes_have_names() {
        assert_eq!(PamCode(PAM_AUTH_ERR).to_string(), "PAM_AUTH_ERR");
        assert_eq!(PamCode(PAM_ACCT_EXPIRED).to_string(), "PAM_ACCT_EXPIRED");
        assert_eq!(PamCode(999).to_string(), "PAM error 999");
    }
}

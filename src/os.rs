//! Facts the operating system keeps: the password database, home directories, random
//! numbers. Thin wrappers at the ground floor, so configuration, filters and the servers
//! all ask the same way.

/// Python's `os.path.expanduser` for `path`, HOME read through `getenv`.
pub fn expanduser_with(path: &str, getenv: impl Fn(&str) -> Option<String>) -> String {
    if !path.starts_with('~') {
        return path.to_string();
    }
    let end = path.find('/').unwrap_or(path.len());
    let user = &path[1..end];
    let home = if user.is_empty() {
        // SAFETY: getuid has no preconditions and cannot fail.
        getenv("HOME").or_else(|| home_of_uid(unsafe { libc::getuid() }))
    } else {
        home_of_user(user)
    };
    match home {
        Some(h) => {
            let h = if h.len() > 1 {
                h.trim_end_matches('/')
            } else {
                h.as_str()
            };
            format!("{h}{}", &path[end..])
        }
        None => path.to_string(),
    }
}

/// Python's `os.path.expanduser` with the process's own environment.
pub fn expanduser(path: &str) -> String {
    expanduser_with(path, |n| std::env::var(n).ok())
}

/// Home directory of a user from the password database.
pub fn home_of_user(user: &str) -> Option<String> {
    let name = std::ffi::CString::new(user).ok()?;
    passwd_field(
        // SAFETY: `name` is NUL-terminated and outlives the call; passwd_field passes valid
        // out-pointers and a buffer of `len` bytes.
        |pw, buf, len, res| unsafe { libc::getpwnam_r(name.as_ptr(), pw, buf, len, res) },
        |pw| pw.pw_dir,
    )
}

/// Home directory of a uid from the password database.
pub fn home_of_uid(uid: libc::uid_t) -> Option<String> {
    passwd_field(
        // SAFETY: passwd_field passes valid out-pointers and a buffer of `len` bytes.
        |pw, buf, len, res| unsafe { libc::getpwuid_r(uid, pw, buf, len, res) },
        |pw| pw.pw_dir,
    )
}

/// Run a `getpw*_r` lookup and hand the entry to `read` while its strings (which point
/// into the lookup's buffer) are alive; `None` if there is no such entry.
pub fn passwd_entry<T>(
    lookup: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
    read: impl FnOnce(&libc::passwd) -> Option<T>,
) -> Option<T> {
    let mut buf = vec![0 as libc::c_char; 16384];
    // SAFETY: passwd is plain old data; getpw*_r fills it and points into `buf`.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc = lookup(&mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
    if rc != 0 || res.is_null() {
        return None;
    }
    read(&pw)
}

/// A string field of a passwd entry, copied (`None` for a null pointer).
///
/// # Safety
/// `p` is null or a string field of the entry [`passwd_entry`] hands to its `read`,
/// used inside `read` (its buffer is alive then).
pub unsafe fn passwd_string(p: *const libc::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: by the contract above, a NUL-terminated string in a live buffer.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Run a `getpw*_r` lookup and copy one string field out of the result.
pub fn passwd_field(
    lookup: impl Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int,
    field: impl Fn(&libc::passwd) -> *mut libc::c_char,
) -> Option<String> {
    // SAFETY: `field` gives a string field of the entry, read inside passwd_entry.
    passwd_entry(lookup, |pw| unsafe { passwd_string(field(pw)) })
}

/// 64 random bits from the kernel (the clock's nanoseconds if getrandom fails, which
/// only matters for uniqueness, never for secrets).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 8 {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_ne_bytes(b)
}

/// The machine's name as `gethostname(2)` gives it (Python's `socket.gethostname()`),
/// `None` if it cannot be read.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

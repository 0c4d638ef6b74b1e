//! When AF_XDP cannot be used: the reason, said once, and the decision to fall back.
//!
//! [`open_or_fallback`] tries to bring the stack up. If it cannot (no privilege, no AF_XDP in the
//! kernel, memlock, the queue busy after a bounded retry, an unknown interface), the caller runs the
//! same endpoints over kernel TCP and the log says why, once per process; with `fallback = false`
//! the reason becomes the error.

use std::io;
use std::sync::{Arc, Mutex};

use super::umem::{has_capability, CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN};
use super::{SharedSteering, XdpConfig, XdpStack};

/// Why the XDP path is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// A capability is missing (named).
    Privilege(&'static str),
    /// The interface does not exist (or the queue does not).
    NoInterface(String),
    /// The kernel has no AF_XDP or refuses XDP on this interface.
    NotSupported(String),
    /// The UMEM does not fit the locked-memory limit.
    Memlock(String),
    /// Another socket or program holds the queue or the interface.
    Busy(String),
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Privilege(cap) => write!(f, "missing privilege: {cap}"),
            Unavailable::NoInterface(m) => write!(f, "unknown interface: {m}"),
            Unavailable::NotSupported(m) => write!(f, "AF_XDP not supported: {m}"),
            Unavailable::Memlock(m) => write!(f, "locked memory: {m}"),
            Unavailable::Busy(m) => write!(f, "queue busy: {m}"),
            Unavailable::Other(m) => f.write_str(m),
        }
    }
}

/// The capabilities AF_XDP with a BPF link needs, or the first one missing.
pub fn missing_capability() -> Option<&'static str> {
    if !has_capability(CAP_NET_RAW) {
        return Some("CAP_NET_RAW (AF_XDP sockets)");
    }
    if !has_capability(CAP_BPF) && !has_capability(CAP_SYS_ADMIN) {
        return Some("CAP_BPF (loading the steering program)");
    }
    if !has_capability(CAP_NET_ADMIN) {
        return Some("CAP_NET_ADMIN (attaching XDP to the interface)");
    }
    None
}

/// Sorts an error from [`XdpStack::open`] into a reason.
pub fn classify(e: &io::Error) -> Unavailable {
    let text = e.to_string();
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) => Unavailable::NoInterface(text),
        (io::ErrorKind::InvalidInput, _) if text.contains("queue") => {
            Unavailable::NoInterface(text)
        }
        (io::ErrorKind::OutOfMemory, _) => Unavailable::Memlock(text),
        (_, Some(libc::ENOBUFS | libc::ENOMEM)) => Unavailable::Memlock(text),
        (_, Some(libc::EPERM | libc::EACCES)) => Unavailable::Privilege("permission denied"),
        (_, Some(libc::EBUSY | libc::EEXIST)) => Unavailable::Busy(text),
        (_, Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)) => {
            Unavailable::NotSupported(text)
        }
        _ if text.contains("busy") => Unavailable::Busy(text),
        _ => Unavailable::Other(text),
    }
}

/// What was already said, so each (interface, queue) explains its fallback once.
static REPORTED: Mutex<Vec<(String, Option<u32>)>> = Mutex::new(Vec::new());

/// With `fallback`: logs why AF_XDP on `interface` (`queue`, or all queues) is not used, once, and
/// returns `Ok(None)`; without: the reason as the error.
fn fall_back<T>(
    interface: &str,
    queue: Option<u32>,
    reason: Unavailable,
    fallback: bool,
) -> io::Result<Option<T>> {
    let what = match queue {
        Some(q) => format!("AF_XDP on {interface} queue {q}"),
        None => format!("AF_XDP on {interface}"),
    };
    if !fallback {
        return Err(io::Error::other(format!(
            "{what} is unavailable ({reason}) and fallback is off"
        )));
    }
    let mut said = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
    let key = (interface.to_owned(), queue);
    if !said.contains(&key) {
        log::warn!("{what} is unavailable ({reason}); using kernel TCP");
        said.push(key);
    }
    Ok(None)
}

/// Opens the stack for `cfg`. On failure: with `fallback`, logs the reason (once per interface and
/// queue) and returns `Ok(None)` so the caller uses kernel TCP; without, returns the reason as the
/// error.
pub fn open_or_fallback(cfg: &XdpConfig, fallback: bool) -> io::Result<Option<XdpStack>> {
    let reason = match missing_capability() {
        Some(cap) => Unavailable::Privilege(cap),
        None => match XdpStack::open(cfg) {
            Ok(stack) => return Ok(Some(stack)),
            Err(e) => classify(&e),
        },
    };
    fall_back(&cfg.interface, Some(cfg.queue), reason, fallback)
}

/// Attaches the steering program shared by several stacks ([`SharedSteering::attach`]). On
/// failure every thread falls back: with `fallback`, logs the reason once and returns `Ok(None)`;
/// without, returns it as the error.
pub fn attach_or_fallback(
    interface: &str,
    ips: &[std::net::Ipv4Addr],
    mode: super::SteerMode,
    kernel_arp: bool,
    attach: super::AttachMode,
    frags: bool,
    fallback: bool,
) -> io::Result<Option<Arc<SharedSteering>>> {
    let reason = match missing_capability() {
        Some(cap) => Unavailable::Privilege(cap),
        None => match SharedSteering::attach(interface, ips, mode, kernel_arp, attach, frags) {
            Ok(s) => return Ok(Some(Arc::new(s))),
            Err(e) => classify(&e),
        },
    };
    fall_back(interface, None, reason, fallback)
}

/// Opens one stack of several under `steering` ([`XdpStack::open_with`]). A failure here (the
/// queue busy or missing, memlock) concerns this thread only: with `fallback` it logs the reason
/// once and returns `Ok(None)` (this thread uses kernel TCP, the others keep AF_XDP); without, it
/// is the error.
pub fn open_with_or_fallback(
    cfg: &XdpConfig,
    steering: Arc<SharedSteering>,
    fallback: bool,
) -> io::Result<Option<XdpStack>> {
    let reason = match XdpStack::open_with(cfg, steering) {
        Ok(stack) => return Ok(Some(stack)),
        Err(e) => classify(&e),
    };
    fall_back(&cfg.interface, Some(cfg.queue), reason, fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_sort_into_reasons() {
        let os = |code| io::Error::from_raw_os_error(code);
        assert!(matches!(
            classify(&os(libc::EPERM)),
            Unavailable::Privilege(_)
        ));
        assert!(matches!(classify(&os(libc::EBUSY)), Unavailable::Busy(_)));
        assert!(matches!(
            classify(&os(libc::ENOBUFS)),
            Unavailable::Memlock(_)
        ));
        assert!(matches!(
            classify(&os(libc::EOPNOTSUPP)),
            Unavailable::NotSupported(_)
        ));
        let missing = io::Error::new(io::ErrorKind::NotFound, "no interface named \"x\"");
        assert!(matches!(classify(&missing), Unavailable::NoInterface(_)));
    }
}

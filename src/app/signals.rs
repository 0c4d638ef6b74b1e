//! SIGINT / SIGTERM → an orderly shutdown flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Installs the handlers (idempotent). After this, Ctrl-C and SIGTERM set [`terminated`].
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` is async-signal-safe (one atomic store) and lives for the whole program.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// `true` once SIGINT or SIGTERM arrived (after [`install`]).
pub fn terminated() -> bool {
    TERMINATE.load(Ordering::Relaxed)
}

/// Installs the handlers and sleeps until a termination signal arrives.
pub fn wait_for_termination() {
    install();
    while !terminated() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

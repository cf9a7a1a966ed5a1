//! Ctrl-C: the first one asks the run to stop after the current iteration (it then writes a
//! checkpoint and exits with status 130, printing how to resume); a second one aborts at
//! once, as Ctrl-C usually does.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The exit status of a process stopped by SIGINT (128 + 2), as shells report it.
pub const EXIT_STATUS: i32 = 130;

/// The error a run returns when Ctrl-C stopped it; `main` turns it into exit status 130.
#[derive(Debug, thiserror::Error)]
#[error(
    "interrupted after iteration {iteration}; a checkpoint was written. Resume with `{resume}`"
)]
pub struct Interrupted {
    pub iteration: usize,
    pub resume: String,
}

/// Installs the handler (once; later calls do nothing). Without it, Ctrl-C kills the process
/// as usual.
pub fn install() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            extern "C" fn on_sigint(_: libc::c_int) {
                // Only async-signal-safe calls here: an atomic swap and _exit.
                if REQUESTED.swap(true, Ordering::SeqCst) {
                    unsafe { libc::_exit(EXIT_STATUS) };
                }
            }
            unsafe {
                libc::signal(
                    libc::SIGINT,
                    on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
            }
        });
    }
}

/// Whether Ctrl-C was pressed since the handler was installed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

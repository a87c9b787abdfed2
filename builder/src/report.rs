//! Progress reporting: the engine calls a [`Reporter`]; the command line gives it one that
//! writes to stderr (an indicatif bar for downloads on a terminal, plain lines otherwise).

use std::io::IsTerminal as _;
use std::sync::Mutex;

/// Where the engine's progress goes.
pub trait Reporter: Sync {
    /// A step (`libgreet: build()`, `cache hit …`).
    fn info(&self, msg: &str);
    /// Something abuild would warn about; the build goes on.
    fn warn(&self, msg: &str) {
        self.info(&format!("WARNING: {msg}"));
    }
    /// One line of a phase's output.
    fn output(&self, phase: &str, line: &str);
    /// Download progress.
    fn progress(&self, what: &str, done: u64, total: Option<u64>);
}

/// Writes to stderr.
pub struct Stderr {
    quiet: bool,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
    last: Mutex<u64>,
}

impl Stderr {
    /// `quiet`: only errors (the engine's own errors are returned, not reported).
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
            last: Mutex::new(0),
        }
    }
}

impl Reporter for Stderr {
    fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!(">>> {msg}");
        }
    }

    fn output(&self, _phase: &str, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn progress(&self, what: &str, done: u64, total: Option<u64>) {
        if self.quiet {
            return;
        }
        if self.tty {
            let mut bar = self
                .bar
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let b = bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::new(total.unwrap_or(0));
                b.set_message(what.to_string());
                b
            });
            b.set_position(done);
            if total.is_some_and(|t| done >= t) {
                b.finish_and_clear();
                *bar = None;
            }
        } else {
            // Plain lines, one per 4 MiB and at the end.
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let done_mib = done >> 22;
            if done_mib != *last || total == Some(done) {
                *last = done_mib;
                match total {
                    Some(t) => eprintln!("    {what}: {done}/{t} bytes"),
                    None => eprintln!("    {what}: {done} bytes"),
                }
            }
        }
    }
}

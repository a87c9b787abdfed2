//! The binary's [`Reporter`]: status lines to stderr, command output to stdout, and transfer
//! progress as an indicatif bar on a terminal or as plain lines (one every few seconds and a
//! summary) when stderr is a pipe or a CI job log.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

use assembler::build::Reporter;
use assembler::commands::build::ProgressMode;
use assembler::progress::{Progress, human_bytes};

/// How often a plain-line transfer prints its state.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Prints progress to stderr and command output as it comes.
pub struct Printer {
    tty: bool,
    /// `--quiet`: only warnings, errors and the result.
    quiet: bool,
}

impl Printer {
    /// Draws bars per `--progress` (`auto`: when stderr is a terminal); `quiet` shows only
    /// warnings, errors and the result.
    pub fn new(mode: ProgressMode, quiet: bool) -> Self {
        let tty = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Plain => false,
            ProgressMode::Tty => true,
        };
        Self { tty, quiet }
    }
}

fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

impl Reporter for Printer {
    fn line(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn output(&self, bytes: &[u8]) {
        if !self.quiet {
            write_stdout(bytes);
        }
    }

    fn notice(&self, line: &str) {
        eprintln!("{line}");
    }

    fn result(&self, line: &str) {
        write_stdout(format!("{line}\n").as_bytes());
    }

    fn progress(&self, what: &str, total: Option<u64>) -> Box<dyn Progress> {
        if self.quiet {
            return Box::new(assembler::progress::Silent);
        }
        if self.tty {
            let bar = match total {
                Some(t) => indicatif::ProgressBar::new(t).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{wide_bar}] {bytes}/{total_bytes} {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => indicatif::ProgressBar::new_spinner().with_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {msg} {bytes} {bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            };
            bar.set_message(what.to_string());
            Box::new(Bar {
                bar,
                what: what.to_string(),
                start: Instant::now(),
            })
        } else {
            Box::new(Plain {
                what: what.to_string(),
                total,
                done: 0,
                start: Instant::now(),
                last: Instant::now(),
            })
        }
    }
}

struct Bar {
    bar: indicatif::ProgressBar,
    what: String,
    start: Instant,
}

impl Progress for Bar {
    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&mut self) {
        self.bar.finish_and_clear();
        eprintln!(
            "{}: {} in {:.1}s",
            self.what,
            human_bytes(self.bar.position()),
            self.start.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

struct Plain {
    what: String,
    total: Option<u64>,
    done: u64,
    start: Instant,
    last: Instant,
}

impl Progress for Plain {
    fn advance(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed() >= PLAIN_EVERY {
            self.last = Instant::now();
            match self.total {
                Some(t) if t > 0 => eprintln!(
                    "{}: {} / {} ({}%)",
                    self.what,
                    human_bytes(self.done),
                    human_bytes(t),
                    self.done * 100 / t
                ),
                _ => eprintln!("{}: {}", self.what, human_bytes(self.done)),
            }
        }
    }
    fn finish(&mut self) {
        eprintln!(
            "{}: {} in {:.1}s",
            self.what,
            human_bytes(self.done),
            self.start.elapsed().as_secs_f64()
        );
    }
}

//! Progress of long stages: a bar per stage on stderr (what, how far, rate, time left) when a person
//! watches, and a record in the log either way (each stage's start and end, and every tenth of its
//! way at debug level), so `run.log` tells what ran and how long it took.
//!
//! The bars are drawn only when stderr is a terminal and the program is not quiet ([`Progress::new`]);
//! [`Progress::hidden`] counts without drawing (tests, library use). Stages can be advanced from any
//! thread.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where stages draw their bars.
#[derive(Clone, Debug)]
pub struct Progress {
    multi: MultiProgress,
}

impl Progress {
    /// Bars on stderr when `visible`, else none.
    pub fn new(visible: bool) -> Progress {
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// No bars (stages are still counted and logged).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    /// Whether bars are drawn.
    pub fn is_visible(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// Runs `f` with the bars cleared, so that what it writes to stderr is not drawn over.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// A stage of `total` steps of `unit` (`iterations`, `chips`, `samples`, `rows`).
    pub fn stage(&self, what: impl Into<String>, total: u64, unit: &'static str) -> Stage {
        let what = what.into();
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix:.bold}} [{{bar:28.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} {{msg}} ({{rate}}/s, {{eta}} left)"
            ))
            .map(|style| {
                // The rate to three significant figures ("2290/s", "12.5/s"), not indicatif's four
                // decimals.
                style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let r = state.per_sec();
                        let _ = if r >= 100.0 {
                            write!(w, "{r:.0}")
                        } else if r >= 10.0 {
                            write!(w, "{r:.1}")
                        } else {
                            write!(w, "{r:.2}")
                        };
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(what.clone());
        tracing::info!("{what}: {total} {unit}");
        Stage {
            bar,
            what,
            unit,
            total,
            started: Instant::now(),
            next_log: Arc::new(AtomicU64::new(total / 10)),
        }
    }

    /// A stage whose length is unknown: a spinner with the time spent.
    pub fn spinner(&self, what: impl Into<String>) -> Stage {
        let what = what.into();
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{prefix:.bold} {spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.clone());
        if self.is_visible() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        tracing::debug!("{what} ...");
        Stage {
            bar,
            what,
            unit: "",
            total: 0,
            started: Instant::now(),
            next_log: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

/// One stage's bar (clones advance the same bar).
#[derive(Clone, Debug)]
pub struct Stage {
    bar: ProgressBar,
    what: String,
    unit: &'static str,
    total: u64,
    started: Instant,
    /// The position at which the next tenth is logged.
    next_log: Arc<AtomicU64>,
}

impl Stage {
    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        let pos = self.bar.position();
        let next = self.next_log.load(Ordering::Relaxed);
        if pos >= next
            && self.total > 0
            && self
                .next_log
                .compare_exchange(
                    next,
                    next + self.total.div_ceil(10),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::debug!(
                "{}: {pos}/{} {} after {:.1} s",
                self.what,
                self.total,
                self.unit,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// Sets the position (a resumed stage starts where it stopped).
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// Sets the text after the bar (the latest loss, the current row).
    pub fn set_message(&self, msg: impl Into<Cow<'static, str>>) {
        self.bar.set_message(msg);
    }

    /// Ends the stage: clears its bar and logs what it did and how long it took (a person sees it
    /// when it took a second or more; the log always has it).
    pub fn finish(&self) {
        let secs = self.started.elapsed().as_secs_f64();
        let text = if self.total > 0 {
            format!(
                "{}: {} {} in {secs:.1} s",
                self.what,
                self.bar.position(),
                self.unit
            )
        } else {
            format!("{}: done in {secs:.1} s", self.what)
        };
        if secs >= 1.0 {
            tracing::info!("{text}");
        } else {
            tracing::debug!("{text}");
        }
        self.bar.finish_and_clear();
    }
}

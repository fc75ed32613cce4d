//! Logs: messages on stderr at the chosen verbosity (drawn around the progress bars), and everything
//! at debug level in `run.log` of the output folder once a command names it ([`RunLog::open`]; the
//! lines logged before are kept and written first). `run.log` is appended to, a line at a time, so a
//! crash leaves the record of what happened up to it (the one file not written atomically, on
//! purpose), and each run starts with a header naming the program, its version and its arguments.

use dynap_train::progress::Progress;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// How much goes to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// What each stage does (the default).
    Normal,
    /// And debug messages (`-v`).
    Debug,
    /// And traces (`-vv`).
    Trace,
}

/// The target of events meant for `run.log` only (the final error, which stderr gets in its own words).
const LOG_ONLY: &str = "dynap::run_log";

/// Sets up the logs for the whole process; returns the run log commands open in their folder.
pub(crate) fn init(verbosity: Verbosity, progress: &Progress) -> RunLog {
    let stderr_level = match verbosity {
        Verbosity::Quiet => LevelFilter::ERROR,
        Verbosity::Normal => LevelFilter::INFO,
        Verbosity::Debug => LevelFilter::DEBUG,
        Verbosity::Trace => LevelFilter::TRACE,
    };
    let file_level = if verbosity == Verbosity::Trace {
        LevelFilter::TRACE
    } else {
        LevelFilter::DEBUG
    };
    let run_log = RunLog::default();
    let stderr = tracing_subscriber::fmt::layer()
        .event_format(Plain {
            ansi: std::io::stderr().is_terminal(),
        })
        .with_writer(Stderr(progress.clone()))
        .with_filter(stderr_level)
        .with_filter(filter_fn(|m| m.target() != LOG_ONLY));
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(run_log.clone())
        .with_filter(file_level);
    // Only this process sets a subscriber; a second attempt (never) would keep the first.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    run_log
}

/// stderr's lines as a person reads them: the message alone for information, prefixed with
/// `warning:`, `error:`, `debug:` or `trace:` otherwise (bold when stderr is a terminal).
struct Plain {
    ansi: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        let prefix = match level {
            tracing::Level::ERROR => "error: ",
            tracing::Level::WARN => "warning: ",
            tracing::Level::INFO => "",
            tracing::Level::DEBUG => "debug: ",
            tracing::Level::TRACE => "trace: ",
        };
        if self.ansi && !prefix.is_empty() {
            write!(writer, "\x1b[1m{prefix}\x1b[0m")?;
        } else {
            write!(writer, "{prefix}")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Writes stderr lines with the progress bars cleared and redrawn around them.
#[derive(Clone)]
struct Stderr(Progress);

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;
    fn make_writer(&'a self) -> Stderr {
        self.clone()
    }
}

/// `run.log` of the output folder: closed until a command opens it; what is logged before is kept.
#[derive(Clone, Default)]
pub(crate) struct RunLog(Arc<Mutex<LogState>>);

#[derive(Default)]
struct LogState {
    file: Option<File>,
    early: Vec<u8>,
}

impl RunLog {
    /// Opens (appends to) `path`, writes a header for this run and the lines logged so far.
    pub(crate) fn open(&self, path: &Path) -> Result<(), dynap_train::Error> {
        let io = |source| dynap_train::Error::Io {
            path: path.to_owned(),
            action: "write",
            source,
        };
        if let Some(dir) = path.parent() {
            dynap_train::files::create_dir(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let args: Vec<String> = std::env::args().collect();
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(
            file,
            "=== dynap {} ({}): {}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            args.join(" ")
        )
        .and_then(|()| file.write_all(&state.early))
        .map_err(io)?;
        state.early.clear();
        state.file = Some(file);
        Ok(())
    }

    /// Records a command's failure in the log only (stderr gets the message from `main`).
    pub(crate) fn record_failure(&self, command: &str, e: &dynap_train::Error) {
        tracing::error!(target: LOG_ONLY, "dynap {command} failed: {e}");
    }
}

/// One event's lines, written to the file (or kept) when the event is complete.
pub(crate) struct LogLine {
    log: RunLog,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let mut state = self.log.0.lock().unwrap_or_else(PoisonError::into_inner);
        let LogState { file, early } = &mut *state;
        match file {
            // A log that cannot be written must not stop the work it records.
            Some(f) => {
                let _ = f.write_all(&self.buf);
            }
            None => early.extend_from_slice(&self.buf),
        }
    }
}

impl<'a> MakeWriter<'a> for RunLog {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine {
            log: self.clone(),
            buf: Vec::new(),
        }
    }
}

//! The `dynap` command-line program: one module per subcommand in `commands/`, the arguments typed by
//! clap (closed sets are enums, listed with their defaults in each subcommand's `--help`), progress bars
//! and logs set up here. Exit codes: 0 success, 1 failure (with a message), 2 bad arguments (with
//! usage); never a panic on input.
//!
//! The doc comments of the argument types are the program's `--help` text, printed as written: plain
//! text with `<run>`-style placeholders and brackets, not Markdown, hence the two lints allowed here.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod commands;
mod logging;

use clap::{ArgAction, Parser, Subcommand};
use dynap_train::progress::Progress;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Hardware-aware training and deployment of spiking neural networks on DYNAP-SE2.
///
/// Trains networks of DYNAP-SE2 neurons by gradient descent through a differentiable model of the
/// chip's circuits (Rockpool's DynapSim, or the chip's own four-dendrite model), makes them robust to
/// the chip's mismatch, quantizes them to its 4-bit weights, maps them onto cores, CAMs, SRAMs and
/// bias generators (samna's configuration format), and runs them on a device: the built-in digital
/// twin, or a board through samna.
#[derive(Parser, Debug)]
#[command(
    name = "dynap",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print only errors: no progress bars, no tables.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail on stderr: -v for debug messages, -vv for traces (run.log always has debug).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Train(commands::train::Args),
    Deploy(commands::deploy::Args),
    Eval(commands::eval::Args),
    Quantize(commands::quantize::Args),
    Map(commands::map::Args),
    Unmap(commands::unmap::Args),
    #[command(subcommand)]
    Nir(commands::nir::Command),
    #[command(subcommand)]
    Config(commands::config::Command),
    Golden(commands::golden::Args),
    Bench(commands::bench::Args),
    Devices(commands::devices::Args),
    Calibrate(commands::calibrate::Args),
    #[command(subcommand)]
    Emulator(commands::emulator::Command),
    Completions(commands::completions::Args),
    /// One benchmark row in this process, as one JSON line (used by `dynap bench`).
    #[command(hide = true)]
    BenchRow(commands::bench::RowArgs),
    /// The chip variant against the rockpool variant (kernels only).
    #[command(hide = true)]
    BenchVariants(commands::bench::VariantArgs),
    /// Training iterations per second on the frozen-noise network.
    #[command(hide = true)]
    BenchTrain(commands::bench::TrainArgs),
    /// Training samples per second of a dataset experiment (the Yin-Yang example by default).
    #[command(hide = true)]
    BenchDataset(commands::bench::DatasetArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Train(_) => "train",
            Command::Deploy(_) => "deploy",
            Command::Eval(_) => "eval",
            Command::Quantize(_) => "quantize",
            Command::Map(_) => "map",
            Command::Unmap(_) => "unmap",
            Command::Nir(_) => "nir",
            Command::Config(_) => "config",
            Command::Golden(_) => "golden",
            Command::Bench(_) => "bench",
            Command::Devices(_) => "devices",
            Command::Calibrate(_) => "calibrate",
            Command::Emulator(_) => "emulator",
            Command::Completions(_) => "completions",
            Command::BenchRow(_) => "bench-row",
            Command::BenchVariants(_) => "bench-variants",
            Command::BenchTrain(_) => "bench-train",
            Command::BenchDataset(_) => "bench-dataset",
        }
    }
}

/// What every command gets: where progress is drawn, whether to print results, and the run log.
pub(crate) struct Context {
    pub(crate) progress: Progress,
    pub(crate) quiet: bool,
    pub(crate) log: logging::RunLog,
}

impl Context {
    /// Prints a result line on stdout (tables, "wrote ...") unless quiet, without tearing a bar.
    pub(crate) fn say(&self, text: impl std::fmt::Display) {
        if !self.quiet {
            self.progress.suspend(|| println!("{text}"));
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors exit 2 with the usage; --help and --version print and exit 0.
        Err(e) => e.exit(),
    };
    let progress = Progress::new(!cli.quiet && std::io::stderr().is_terminal());
    let verbosity = if cli.quiet {
        logging::Verbosity::Quiet
    } else {
        match cli.verbose {
            0 => logging::Verbosity::Normal,
            1 => logging::Verbosity::Debug,
            _ => logging::Verbosity::Trace,
        }
    };
    let log = logging::init(verbosity, &progress);
    let cx = Context {
        progress,
        quiet: cli.quiet,
        log,
    };
    let name = cli.command.name();
    let result = match cli.command {
        Command::Train(a) => commands::train::run(a, &cx),
        Command::Deploy(a) => commands::deploy::run(a, &cx),
        Command::Eval(a) => commands::eval::run(a, &cx),
        Command::Quantize(a) => commands::quantize::run(a, &cx),
        Command::Map(a) => commands::map::run(a, &cx),
        Command::Unmap(a) => commands::unmap::run(a, &cx),
        Command::Nir(c) => commands::nir::run(c, &cx),
        Command::Config(c) => commands::config::run(c, &cx),
        Command::Golden(a) => commands::golden::run(a, &cx),
        Command::Bench(a) => commands::bench::run(a, &cx),
        Command::Devices(a) => commands::devices::run(a, &cx),
        Command::Calibrate(a) => commands::calibrate::run(a, &cx),
        Command::Emulator(c) => commands::emulator::run(c, &cx),
        Command::Completions(a) => commands::completions::run(a, Cli::command_for_completions()),
        Command::BenchRow(a) => commands::bench::row(a),
        Command::BenchVariants(a) => commands::bench::variants(a),
        Command::BenchTrain(a) => commands::bench::train_rate(a),
        Command::BenchDataset(a) => commands::bench::dataset_rate(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cx.log.record_failure(name, &e);
            cx.progress.suspend(|| eprintln!("dynap {name}: {e}"));
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    fn command_for_completions() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
    }
}

/// Tells glibc's allocator to keep freed memory for reuse instead of returning it to the kernel.
///
/// Simulations and gradients allocate their outputs and tapes afresh on every call (megabytes to
/// hundreds of megabytes). By default glibc serves each from a new `mmap` and unmaps it on free, so every
/// call paid a page fault and a page clear per 4 KiB: 14 % of the time of a training step at N = 256.
/// Served from the heap and never trimmed, the pages are faulted in once; the peak resident memory is
/// the same (the high-water mark was resident anyway).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_MAX: i32 = -4;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` only changes the allocator's tuning; it is called before any other thread
    // exists. A refused setting (return 0) leaves the default, which is correct, only slower.
    unsafe {
        mallopt(M_MMAP_MAX, 0);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

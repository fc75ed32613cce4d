//! `dynap bench` (and `cargo xtask bench`): our timings against Rockpool's, in the same run; and the
//! hidden `bench-row`, `bench-variants` and `bench-train` it runs in processes of their own.

use crate::Context;
use dynap_train::rockpool::{self, Baseline};
use dynap_train::{Error, bench, files};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

/// Time the simulator and its gradient, optionally against Rockpool 3.1.0 in the same run.
///
/// Rows: N in {16, 64, 256} x batch {1, 8}, and one full chip (N = 1024, batch 1); T = 1000 steps, 60
/// inputs, recurrent, f32. Each row: the forward pass (fwd), the value and gradient of a spike-count
/// MSE w.r.t. both weight matrices (fwdbwd), and the peak memory of a process that ran only that row.
/// With --rockpool-python, Rockpool's rows run right before ours, group by group, and the ratios are
/// printed with the targets; --rounds R repeats that R times and reports medians and the medians of
/// the rounds' paired ratios. Also: the chip variant against the rockpool variant, training speed on
/// the paper's network, 4-bit quantization against Rockpool's autoencoder, and a full board's mapping.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Also write the rows as JSON: a list of {n, batch, steps, fwd_ms, fwdbwd_ms, peak_rss_mb, ...}.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// A Python with Rockpool 3.1.0 and JAX, for the baseline.
    #[arg(long, value_name = "PATH")]
    rockpool_python: Option<PathBuf>,
    /// The folder of Rockpool's reference scripts (default: benches/reference of this checkout).
    #[arg(long, value_name = "DIR")]
    reference_dir: Option<PathBuf>,
    /// Timed repetitions per row (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// The Yin-Yang example whose training speed is measured (default: examples/yinyang.toml of this
    /// checkout).
    #[arg(long, value_name = "FILE.toml")]
    yinyang: Option<PathBuf>,
    /// Interleaved rounds of every row (medians over rounds, paired ratios).
    #[arg(long, value_name = "R", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Only these sections, comma-separated (default: all): `rows` (the simulator rows), `fanin`
    /// (a full chip and a full board with 64 connections into each neuron), `variants`,
    /// `training` (the frozen-noise network), `yinyang`, `quantization`, `board`.
    #[arg(long, value_name = "SECTIONS", value_delimiter = ',', value_parser = SECTIONS)]
    only: Vec<String>,
}

/// The sections of `dynap bench`, for `--only`.
const SECTIONS: [&str; 7] = [
    "rows",
    "fanin",
    "variants",
    "training",
    "yinyang",
    "quantization",
    "board",
];

/// `dynap bench-row N BATCH REPS [THREADS]`.
#[derive(clap::Args, Debug)]
pub(crate) struct RowArgs {
    n: usize,
    batch: usize,
    reps: usize,
    #[arg(default_value_t = 0)]
    threads: usize,
    /// Connections into each neuron (the sparse rows); without it, the dense rows' network.
    #[arg(long)]
    fanin: Option<usize>,
    /// Also time the forward pass that records every trace (`fwd_rec_ms`, after the row: its peak
    /// memory then includes the traces), as a Python `simulate` call does.
    #[arg(long)]
    record: bool,
}

/// `dynap bench-variants N BATCH`.
#[derive(clap::Args, Debug)]
pub(crate) struct VariantArgs {
    n: usize,
    batch: usize,
}

/// `dynap bench-train ITERATIONS`.
#[derive(clap::Args, Debug)]
pub(crate) struct TrainArgs {
    iterations: usize,
}

/// `dynap bench-dataset [FILE.toml] [--steps S] [--blocks B] [--threads T]`.
#[derive(clap::Args, Debug)]
pub(crate) struct DatasetArgs {
    /// The experiment (default: examples/yinyang.toml of this checkout).
    config: Option<PathBuf>,
    /// Minibatch steps per timed block.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Timed blocks (the median is printed).
    #[arg(long, default_value_t = 5)]
    blocks: usize,
    /// Threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Prints the training samples per second of a dataset experiment.
pub(crate) fn dataset_rate(a: DatasetArgs) -> Result<(), Error> {
    let path = a.config.unwrap_or_else(rockpool::default_yinyang_example);
    let config = files::read_experiment(&path)?;
    let prep = dynap_train::fit::prepare(&config, &dynap_train::fit::config_dir(Some(&path)))?;
    let rate = dynap_train::fit::training_rate(&config, &prep, a.steps, a.blocks, a.threads)?;
    println!("{rate:.1}");
    Ok(())
}

/// One row in this process, printed as one JSON line, so that its peak memory is that row's alone.
pub(crate) fn row(a: RowArgs) -> Result<(), Error> {
    let row = match a.fanin {
        None => bench::time_forward(a.n, a.batch, a.reps, a.threads),
        Some(k) => bench::time_forward_fanin(a.n, k, a.batch, a.reps, a.threads),
    };
    let mut line = json!({
        "n": row.n,
        "batch": row.batch,
        "steps": row.steps,
        "fwd_ms": row.fwd.as_secs_f64() * 1e3,
        "fwdbwd_ms": row.fwdbwd.as_secs_f64() * 1e3,
        "peak_rss_mb": bench::peak_rss_mb(),
        "spikes": row.spikes,
    });
    if let Some(k) = a.fanin {
        line["fanin"] = json!(k);
    }
    if a.record {
        let net = match a.fanin {
            None => bench::bench_network(a.n, 0),
            Some(k) => bench::bench_network_fanin(a.n, k, 0),
        };
        let t = bench::time_forward_recorded(&net, a.batch, a.reps, a.threads);
        line["fwd_rec_ms"] = json!(t.as_secs_f64() * 1e3);
        line["peak_rss_mb"] = json!(bench::peak_rss_mb());
    }
    println!("{line}");
    Ok(())
}

pub(crate) fn variants(a: VariantArgs) -> Result<(), Error> {
    println!("{:?}", bench::time_variants(a.n, a.batch, 21));
    Ok(())
}

pub(crate) fn train_rate(a: TrainArgs) -> Result<(), Error> {
    println!("{:.1}", bench::training_rate(a.iterations, 1));
    Ok(())
}

/// The groups of rows Rockpool's script runs, one process each (`--sizes`, `--batches`); our rows run
/// right after their group's, so that both sides of a ratio are measured within seconds.
const GROUPS: [(&str, &str); 4] = [("16,64", "1,8"), ("256", "1"), ("256", "8"), ("1024", "1")];

/// Whether the row `(n, batch)` belongs to the group `(sizes, batches)`.
fn in_group(n: usize, batch: usize, (sizes, batches): (&str, &str)) -> bool {
    sizes.split(',').any(|s| s == n.to_string())
        && batches.split(',').any(|b| b == batch.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => v[k / 2],
        k => (v[k / 2 - 1] + v[k / 2]) / 2.0,
    }
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        path: PathBuf::from("dynap"),
        action: "find",
        source,
    })?;
    let baseline = a.rockpool_python.as_ref().map(|python| Baseline {
        python: python.clone(),
        scripts: a
            .reference_dir
            .clone()
            .unwrap_or_else(rockpool::default_script_dir),
    });
    let (reps, rounds) = (a.reps as usize, a.rounds as usize);
    let wanted = |section: &str| a.only.is_empty() || a.only.iter().any(|s| s == section);
    let groups: &[(&str, &str)] = if wanted("rows") { &GROUPS } else { &[] };
    let bench_rows: &[(usize, usize)] = if wanted("rows") {
        &bench::BENCH_ROWS
    } else {
        &[]
    };
    // Rounds: each group of Rockpool's rows, then ours of that group; every row's figures are the
    // medians over the rounds and its speedups the medians of the rounds' paired ratios (this machine's
    // speed drifts by tens of percent within minutes).
    let mut ours_by_round: Vec<Vec<Value>> = Vec::new();
    let mut theirs_by_round: Vec<rockpool::Rows> = Vec::new();
    let per_round = bench_rows.len() + if baseline.is_some() { groups.len() } else { 0 };
    // (No stage when `--only` leaves the simulator rows out.)
    let stage = (per_round > 0).then(|| {
        cx.progress
            .stage("benchmark rows", (rounds * per_round) as u64, "runs")
    });
    let rows_rounds = if stage.is_some() { rounds } else { 0 };
    for round in 0..rows_rounds {
        let Some(stage) = stage.as_ref() else { break };
        let mut ours = Vec::new();
        let mut theirs = rockpool::Rows::default();
        for &group in groups {
            if let Some(b) = &baseline {
                stage.set_message(format!(
                    "round {}/{rounds}: Rockpool, N = {}, batch {}",
                    round + 1,
                    group.0,
                    group.1
                ));
                // The process that runs only N = 256, batch 8 is measured for its peak memory.
                let r = b.rows(group.0, group.1, reps, group == ("256", "8"))?;
                theirs.rows.extend(r.rows);
                theirs.peak_rss_mb = theirs.peak_rss_mb.or(r.peak_rss_mb);
                stage.inc(1);
            }
            for &(n, batch) in bench_rows {
                if !in_group(n, batch, group) {
                    continue;
                }
                stage.set_message(format!(
                    "round {}/{rounds}: ours, N = {n}, batch {batch}",
                    round + 1
                ));
                let out = Command::new(&exe)
                    .args([
                        "bench-row",
                        &n.to_string(),
                        &batch.to_string(),
                        &reps.to_string(),
                    ])
                    .output();
                match out
                    .as_ref()
                    .ok()
                    .filter(|o| o.status.success())
                    .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
                {
                    Some(v) => ours.push(v),
                    None => {
                        return Err(Error::Mismatch(format!(
                            "the row N = {n}, batch = {batch} failed: {out:?}"
                        )));
                    }
                }
                stage.inc(1);
            }
        }
        ours_by_round.push(ours);
        theirs_by_round.push(theirs);
    }
    stage.iter().for_each(|s| s.finish());
    let have_baseline = baseline.is_some();
    let mut rows = Vec::new();
    if wanted("rows") {
        cx.say(
        "forward pass (fwd) and value + gradient of a spike-count MSE w.r.t. both weight matrices (fwdbwd),",
    );
        cx.say(format_args!(
        "f32, T = {} steps, 60 inputs, recurrent; medians of {reps} runs{}; peak memory of a process running only that row",
        bench::BENCH_STEPS,
        if rounds > 1 {
            format!(", then over {rounds} rounds (speedups: medians of the rounds' paired ratios)")
        } else {
            String::new()
        }
    ));
        cx.say(format_args!(
            "{:>5} {:>5} {:>9} {:>12} {:>7} {:>10} {:>15} {:>7} {:>8} {:>7}",
            "N",
            "batch",
            "fwd_ms",
            "rockpool_fwd",
            "speedup",
            "fwdbwd_ms",
            "rockpool_fwdbwd",
            "speedup",
            "peak_mb",
            "spikes"
        ));
        for (n, batch) in bench::BENCH_ROWS {
            let mine: Vec<&Value> = ours_by_round
                .iter()
                .filter_map(|r| r.iter().find(|v| v["n"] == n && v["batch"] == batch))
                .collect();
            let theirs: Vec<Option<&rockpool::Row>> = theirs_by_round
                .iter()
                .map(|r| r.rows.iter().find(|x| x.n == n && x.batch == batch))
                .collect();
            let field = |k: &str| {
                median(
                    mine.iter()
                        .map(|v| v[k].as_f64().unwrap_or(f64::NAN))
                        .collect(),
                )
            };
            let fwd = field("fwd_ms");
            let fwdbwd = field("fwdbwd_ms");
            let peak_ours = field("peak_rss_mb");
            let spikes = field("spikes");
            let rp_fwd = median(theirs.iter().flatten().map(|r| r.fwd_ms).collect());
            let rp_vg = median(theirs.iter().flatten().map(|r| r.vg_ms).collect());
            let paired = |theirs_of: &dyn Fn(&rockpool::Row) -> f64, k: &str| {
                median(
                    mine.iter()
                        .zip(&theirs)
                        .filter_map(|(m, t)| Some(theirs_of((*t)?) / m[k].as_f64()?))
                        .collect(),
                )
            };
            let fwd_ratio = paired(&|r| r.fwd_ms, "fwd_ms");
            let vg_ratio = paired(&|r| r.vg_ms, "fwdbwd_ms");
            let mut row = json!({
                "n": n,
                "batch": batch,
                "steps": bench::BENCH_STEPS,
                "fwd_ms": fwd,
                "fwdbwd_ms": fwdbwd,
                "peak_rss_mb": peak_ours,
                "spikes": spikes,
            });
            let have_rp = have_baseline && rp_fwd.is_finite();
            if let (true, Some(obj)) = (have_rp, row.as_object_mut()) {
                obj.insert("rockpool_fwd_ms".into(), json!(rp_fwd));
                obj.insert("rockpool_fwdbwd_ms".into(), json!(rp_vg));
                obj.insert("fwd_speedup".into(), json!(fwd_ratio));
                obj.insert("fwdbwd_speedup".into(), json!(vg_ratio));
            }
            let rp_peak = median(
                theirs_by_round
                    .iter()
                    .filter_map(|r| r.peak_rss_mb)
                    .collect(),
            );
            let rp_peak = (rp_peak.is_finite() && (n, batch) == (256, 8)).then_some(rp_peak);
            if let (Some(peak), Some(obj)) = (rp_peak, row.as_object_mut()) {
                obj.insert("rockpool_peak_rss_mb".into(), json!(peak));
            }
            let ms = |v: f64| {
                if have_rp {
                    format!("{v:.3}")
                } else {
                    "-".into()
                }
            };
            let ratio = |r: f64| {
                if have_rp {
                    format!("{r:.1}x")
                } else {
                    "-".into()
                }
            };
            cx.say(format_args!(
            "{n:>5} {batch:>5} {fwd:>9.3} {:>12} {:>7} {fwdbwd:>10.3} {:>15} {:>7} {peak_ours:>8.1} {spikes:>7}",
            ms(rp_fwd),
            ratio(fwd_ratio),
            ms(rp_vg),
            ratio(vg_ratio),
        ));
            if let Some(peak) = rp_peak {
                cx.say(format_args!(
                "      peak memory at N = 256, batch 8: ours {peak_ours:.0} MiB, Rockpool's process {peak:.0} MiB ({:.1}x less)",
                peak / peak_ours
            ));
            }
            if n == 1024 {
                let simulated_ms = bench::BENCH_STEPS as f64 * 1.0;
                cx.say(format_args!(
                "      one full chip (1024 neurons): 1 s of activity in {fwd:.1} ms = {:.0}x faster than real time",
                simulated_ms / fwd
            ));
            }
            rows.push(row);
        }
    }
    if wanted("fanin") {
        rows.extend(fanin_rows(&exe, baseline.as_ref(), reps, cx)?);
    }
    if wanted("variants") {
        let spinner = cx
            .progress
            .spinner("the chip variant against the rockpool variant");
        for (n, batch) in [(16, 1), (256, 8)] {
            let v = bench::time_variants(n, batch, reps.max(10));
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            cx.say(format_args!(
            "chip variant, N = {n}, batch {batch}: forward {:.2} ms ({:.1}x the rockpool variant's {:.2} ms), forward + backward {:.2} ms ({:.1}x its {:.2} ms)",
            ms(v.chip.0),
            ms(v.chip.0) / ms(v.rockpool.0),
            ms(v.rockpool.0),
            ms(v.chip.1),
            ms(v.chip.1) / ms(v.rockpool.1),
            ms(v.rockpool.1),
        ));
        }
        spinner.finish();
    }
    let mut training_ratio = None;
    if wanted("training") {
        // Training speed on the paper's network, one core (the other core is left idle). Five blocks of
        // 400 steps, the median rate: as `train_rockpool.py` times Rockpool (five blocks of 200 jitted
        // steps). Paired over the rounds like the rows: ours, then Rockpool's, each round.
        let (mut ours_rates, mut theirs_rates, mut training_ratios) =
            (Vec::new(), Vec::new(), Vec::new());
        let stage = cx.progress.stage("training speed", rounds as u64, "rounds");
        for _ in 0..rounds {
            let ours = bench::training_rate(400, 5);
            ours_rates.push(ours);
            if let Some(b) = &baseline {
                let r = b.training_rate()?;
                theirs_rates.push(r);
                training_ratios.push(ours / r);
            }
            stage.inc(1);
        }
        stage.finish();
        let ours = median(ours_rates);
        training_ratio = (!training_ratios.is_empty()).then(|| median(training_ratios));
        cx.say(format_args!(
        "training the frozen-noise network (60 -> 2 recurrent, 2 patterns x 500 steps, Adam), one core: {ours:.0} it/s{}",
        training_ratio.map_or(String::new(), |x| format!(
            ", Rockpool {:.0} it/s ({x:.1}x)",
            median(theirs_rates.clone())
        ))
    ));
    }
    let mut yinyang = Value::Null;
    if wanted("yinyang") {
        yinyang = yinyang_row(&a, baseline.as_ref(), rounds, cx)?;
        rows.push(yinyang.clone());
    }
    if wanted("quantization") {
        let spinner = cx.progress.spinner("4-bit quantization");
        let q = bench::time_quantize(reps.min(5));
        let rp_quant = baseline.as_ref().map(Baseline::quantization).transpose()?;
        spinner.finish();
        cx.say(format_args!(
        "4-bit quantization, 60x256 input + 256x256 recurrent weights (dense), one core: {:.0} ms, relative RMS error {:.2}% ({:.2}% after snapping to the bias generator)",
        q.alternating.as_secs_f64() * 1e3,
        q.alternating_error.0 * 100.0,
        q.alternating_error.1 * 100.0,
    ));
        cx.say(format_args!(
        "      Rockpool's autoencoder (our port, 3000 epochs at step 1e-3): {:.0} ms, relative RMS error {:.2}%",
        q.autoencoder.as_secs_f64() * 1e3,
        q.autoencoder_error * 100.0
    ));
        if let Some((seconds, err)) = rp_quant {
            cx.say(format_args!(
            "      Rockpool's autoencoder (Rockpool itself, same weights and settings): {:.0} ms, relative RMS error {:.2}%; our default quantizer is {:.0}x faster",
            seconds * 1e3,
            err * 100.0,
            seconds / q.alternating.as_secs_f64()
        ));
        }
    }
    if wanted("board") {
        let spinner = cx.progress.spinner("mapping a full board");
        let b = bench::time_board(reps.min(5));
        spinner.finish();
        cx.say(format_args!(
        "full board (4 chips x 1024 neurons, ~14 connections each): map {:.0} ms, samna JSON {:.0} ms ({:.1} MB), binary {:.0} ms ({:.1} MB); total {:.0} ms",
        b.map.as_secs_f64() * 1e3,
        b.json.as_secs_f64() * 1e3,
        b.json_bytes as f64 / 1e6,
        b.binary.as_secs_f64() * 1e3,
        b.binary_bytes as f64 / 1e6,
        (b.map + b.json + b.binary).as_secs_f64() * 1e3
    ));
    }
    if have_baseline {
        print_targets(cx, &rows, training_ratio);
        speed_line(
            cx,
            "Yin-Yang training samples per second",
            yinyang["speedup"].as_f64(),
            20.0,
        );
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
        files::write_atomic(path, text.as_bytes())?;
        cx.say(format_args!("wrote {}", path.display()));
    }
    Ok(())
}

/// The speed and memory targets of DESIGN.md (and the training target), each with this run's figure
/// and whether it is met.
fn print_targets(cx: &Context, rows: &[Value], training_ratio: Option<f64>) {
    let row = |n: u64, b: u64| rows.iter().find(|r| r["n"] == n && r["batch"] == b);
    let ratio = |n: u64, b: u64, theirs: &str, ours: &str| {
        row(n, b).and_then(|r| Some(r[theirs].as_f64()? / r[ours].as_f64()?))
    };
    // The paired speedup of the rounds when the row has one.
    let speedup = |n: u64, b: u64, key: &str| row(n, b).and_then(|r| r[key].as_f64());
    let speed = |what: &str, got: Option<f64>, goal: f64| speed_line(cx, what, got, goal);
    cx.say("targets, this run:");
    speed(
        "forward, N = 256, batch 8",
        speedup(256, 8, "fwd_speedup"),
        5.0,
    );
    speed(
        "forward + backward, N = 256, batch 8",
        speedup(256, 8, "fwdbwd_speedup"),
        10.0,
    );
    speed(
        "forward + backward, N = 16, batch 1",
        speedup(16, 1, "fwdbwd_speedup"),
        20.0,
    );
    speed(
        "less peak memory, N = 256, batch 8",
        ratio(256, 8, "rockpool_peak_rss_mb", "peak_rss_mb"),
        5.0,
    );
    speed(
        "faster than real time, N = 1024",
        row(1024, 1)
            .and_then(|r| r["fwd_ms"].as_f64())
            .map(|ms| bench::BENCH_STEPS as f64 / ms),
        10.0,
    );
    speed("training iterations per second", training_ratio, 20.0);
}

/// The sparse rows ([`bench::FANIN_ROWS`]): ours, each in a process of its own (its peak memory), and
/// Rockpool's dense model of the same network right before, with at most 3 repetitions each (a full
/// board is seconds per run); `{"n", "fanin", "batch", "steps", "fwd_ms", "fwdbwd_ms",
/// "peak_rss_mb", ...}` with Rockpool's figures and the ratios when it ran.
fn fanin_rows(
    exe: &std::path::Path,
    baseline: Option<&Baseline>,
    reps: usize,
    cx: &Context,
) -> Result<Vec<Value>, Error> {
    let reps = reps.clamp(1, 3);
    let mut out = Vec::new();
    let stage = cx
        .progress
        .stage("fan-in 64 rows", bench::FANIN_ROWS.len() as u64, "rows");
    for (n, k) in bench::FANIN_ROWS {
        stage.set_message(format!("N = {n}, fan-in {k}"));
        let theirs = match baseline {
            Some(b) => b
                .rows_with_fanin(&n.to_string(), "1", reps, false, k)?
                .rows
                .into_iter()
                .next(),
            None => None,
        };
        let o = Command::new(exe)
            .args([
                "bench-row",
                &n.to_string(),
                "1",
                &reps.to_string(),
                "0",
                "--fanin",
                &k.to_string(),
            ])
            .output();
        let mut row = o
            .as_ref()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
            .ok_or_else(|| Error::Mismatch(format!("the row N = {n}, fan-in {k} failed: {o:?}")))?;
        let (fwd, fwdbwd) = (
            row["fwd_ms"].as_f64().unwrap_or(f64::NAN),
            row["fwdbwd_ms"].as_f64().unwrap_or(f64::NAN),
        );
        let versus = match &theirs {
            Some(t) => {
                row["rockpool_fwd_ms"] = json!(t.fwd_ms);
                row["rockpool_fwdbwd_ms"] = json!(t.vg_ms);
                row["fwd_speedup"] = json!(t.fwd_ms / fwd);
                row["fwdbwd_speedup"] = json!(t.vg_ms / fwdbwd);
                format!(
                    "; Rockpool's dense model {:.1} ms and {:.1} ms ({:.1}x, {:.1}x)",
                    t.fwd_ms,
                    t.vg_ms,
                    t.fwd_ms / fwd,
                    t.vg_ms / fwdbwd
                )
            }
            None => String::new(),
        };
        cx.say(format_args!(
            "N = {n}, fan-in {k}, batch 1, {} steps: forward {fwd:.1} ms, forward + backward {fwdbwd:.1} ms, peak {:.0} MiB{versus}",
            bench::BENCH_STEPS,
            row["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
        ));
        out.push(row);
        stage.inc(1);
    }
    stage.finish();
    Ok(out)
}

/// One target's line: this run's figure and whether it meets the goal.
fn speed_line(cx: &Context, what: &str, got: Option<f64>, goal: f64) {
    match got {
        Some(x) => cx.say(format_args!(
            "  {what}: {x:.1}x (target {goal:.0}x) {}",
            if x >= goal { "met" } else { "NOT met" }
        )),
        None => cx.say(format_args!("  {what}: not measured")),
    }
}

/// The Yin-Yang training row: ours (the example's network, encoding and batch, every core) against
/// `yinyang_rockpool.py`, paired per round; `{"workload": "yinyang_train", "samples_per_s",
/// "rockpool_samples_per_s", "speedup"}`.
fn yinyang_row(
    a: &Args,
    baseline: Option<&Baseline>,
    rounds: usize,
    cx: &Context,
) -> Result<Value, Error> {
    let path = a
        .yinyang
        .clone()
        .unwrap_or_else(rockpool::default_yinyang_example);
    let config = files::read_experiment(&path)?;
    let dir = dynap_train::fit::config_dir(Some(&path));
    let spinner = cx.progress.spinner("Yin-Yang: loading the example");
    let prep = dynap_train::fit::prepare(&config, &dir)?;
    spinner.finish();
    let train_file = config
        .data
        .as_ref()
        .and_then(|d| d.train.as_ref())
        .map(|t| dir.join(t));
    let outputs = prep.architecture.readout_range().len();
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let stage = cx
        .progress
        .stage("Yin-Yang training speed", rounds as u64, "rounds");
    for _ in 0..rounds {
        let r = dynap_train::fit::training_rate(&config, &prep, 20, 5, 0)?;
        ours.push(r);
        if let (Some(b), Some(t)) = (baseline, &train_file) {
            let x = b.yinyang_rate(t, outputs)?;
            theirs.push(x);
            ratios.push(r / x);
        }
        stage.inc(1);
    }
    stage.finish();
    let ours = median(ours);
    let mut row = json!({"workload": "yinyang_train", "samples_per_s": ours});
    if !theirs.is_empty() {
        let (t, x) = (median(theirs), median(ratios));
        row["rockpool_samples_per_s"] = json!(t);
        row["speedup"] = json!(x);
    }
    cx.say(format_args!(
        "training the Yin-Yang example ({} neurons in {} populations, batch {}, {} steps): {ours:.0} samples/s{}",
        prep.architecture.neurons(),
        prep.architecture.populations().len(),
        config.training.batch_size,
        prep.encoding.steps,
        row["rockpool_samples_per_s"]
            .as_f64()
            .map_or(String::new(), |t| format!(
                ", Rockpool {t:.0} samples/s ({:.1}x)",
                row["speedup"].as_f64().unwrap_or(f64::NAN)
            ))
    ));
    Ok(row)
}

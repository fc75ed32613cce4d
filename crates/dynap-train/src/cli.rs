//! The `dynap` command line: argument parsing and the commands, each returning an exit code
//! (0 success, 1 failure with a message, 2 bad arguments with usage).

use crate::{bench, golden};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: dynap <command> [options]

commands:
  train [--config FILE.toml] [--out DIR] [--resume] [--variant rockpool|chip] [--quiet]
                      the paper's frozen-noise experiment: trains the network twice (`plain`, and
                      `noise` with mismatch injected), evaluates each on 100 simulated chips per
                      mismatch level, writes DIR (default runs/train): metrics.json, config.toml,
                      <run>/network.json, loss.png, <run>/raster.png, checkpoints;
                      --variant chip: the chip's own model (four dendrites, inhibition that inhibits)
  bench [--json FILE] [--rockpool-python PATH] [--reps N] [--rounds R]
                      time the forward pass at N in {16, 64, 256} x batch {1, 8} and one full chip
                      (N = 1024, batch 1), T = 1000, 60 inputs, recurrent; with a Python that has
                      Rockpool 3.1.0, time Rockpool's baseline in the same run and print the ratios;
                      --rounds R: R interleaved rounds, medians and paired ratios over them
  quantize IN OUT [--method alternating|autoencoder] [--no-snap] [--seed N]
                      4-bit weight quantization per core: IN is a network JSON (w_in, w_rec, optional
                      core_map, iscale, method); OUT gets masks, signs, dendrites, the base currents
                      Iw_0..3 of every core (snapped to the bias generator unless --no-snap) and the
                      relative RMS weight error per core before and after snapping
  map IN --out DIR [--tags FILE]
                      map a quantize output (or a network JSON, clustered by parameters and quantized
                      first) onto DYNAP-SE2 cores: DIR/config.json (samna format), config.bin,
                      mapping.json; --tags gives per-core tag allow-lists {\"chip:core\": [tags]}
  unmap DIR --out NET.json [--iscale A]
                      reverse mapping: the network a configuration implements (mapping.json, when
                      present, restores neuron and channel order, iscale, dt and the variant)
  config validate FILE          every hardware-limit violation of a configuration (.json or .bin)
  config convert IN OUT         JSON <-> binary, by extension
  config inspect FILE [--json]  cores, neurons, synapses per dendrite, biases as codes and currents
  golden <DIR>        check every *.json golden case in DIR against Rockpool 3.1.0's numbers;
                      one line per case, then 'N passed, M failed'; exit 1 if any failed
  deploy [--from DIR] [--run plain|noise] [--device emulator|usb|samna] [--out DIR]
         [--mismatch F] [--seed S] [--python PY] [--quiet]
                      a trained network (default runs/train, run noise) quantized, mapped and run on a
                      device (default: the emulator, a digital twin with 10 % frozen mismatch); writes
                      DIR (default runs/deploy): config.json, config.bin, mapping.json, metrics.json
                      (stages float, quantized, reverse_mapped, device), raster_<stage>.png;
                      --device samna drives a real board through samna (--python: the Python with it)
  devices [--python PY]
                      the DYNAP-SE2 boards visible on USB (Opal Kelly vendor id 151f) and through samna
  help                this text

Status: simulation (Rockpool's model and the chip's four-dendrite model), gradients, mismatch,
training, quantization, the chip configuration (samna JSON, binary, validation, mapping and reverse
mapping), the bias generator, parameter translation and the golden harness, the emulator, USB
discovery, the samna bridge and deployment are built (the board's USB protocol is not public: on USB a
board can be found, not driven; samna drives it).";

/// Runs the program with `args` (without the program name).
pub fn run(args: &[String]) -> ExitCode {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `--help` anywhere (`dynap train --help`) prints the usage and does nothing else.
    if args.iter().any(|a| matches!(*a, "--help" | "-h")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match args.as_slice() {
        ["bench", rest @ ..] => match BenchArgs::parse(rest) {
            Ok(a) => run_bench(&a),
            Err(e) => usage_error(&e),
        },
        ["bench-row", n, batch, reps] => run_bench_row(n, batch, reps, "0"),
        ["bench-row", n, batch, reps, threads] => run_bench_row(n, batch, reps, threads),
        ["bench-variants", n, batch] => match (n.parse::<usize>(), batch.parse::<usize>()) {
            (Ok(n), Ok(batch)) => {
                let v = bench::time_variants(n, batch, 21);
                println!("{v:?}");
                ExitCode::SUCCESS
            }
            _ => usage_error("bench-variants N BATCH"),
        },
        ["bench-train", iterations] => match iterations.parse::<usize>() {
            Ok(i) => {
                println!("{:.1}", bench::training_rate(i, 1));
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&format!("bench-train: iterations {iterations:?}: {e}")),
        },
        ["golden", dir] => run_golden(dir),
        ["config" | "map" | "unmap", ..] => match crate::configcmd::run(&args) {
            Ok(code) => code,
            Err(e) => usage_error(&e),
        },
        ["quantize", rest @ ..] => match crate::quantize::run(rest) {
            Ok(code) => code,
            Err(e) => usage_error(&e),
        },
        ["train", rest @ ..] => run_train(rest),
        ["deploy", rest @ ..] => match crate::deploy::run(rest) {
            Ok(code) => code,
            Err(e) => usage_error(&e),
        },
        ["devices"] => run_devices("python3"),
        ["devices", "--python", py] => run_devices(py),
        ["help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error(&format!("bad arguments: {}", args.join(" "))),
    }
}

fn run_devices(python: &str) -> ExitCode {
    match dynap_hw::list_boards(dynap_hw::OPAL_KELLY_VID, None) {
        Err(e) => println!("usb: none ({e})"),
        Ok(boards) if boards.is_empty() => println!(
            "usb: none (no device with the Opal Kelly vendor id 151f: plugged in and powered? on Linux, the udev \
             rule SUBSYSTEM==\"usb\", ATTRS{{idVendor}}==\"151f\", MODE=\"0666\" gives access)"
        ),
        Ok(boards) => {
            for b in boards {
                println!(
                    "usb: {b} (found; driving it needs the vendor's protocol: use --device samna)"
                );
            }
        }
    }
    match dynap_hw::SamnaBridge::start(&dynap_hw::BridgeOptions {
        python: PathBuf::from(python),
        timeout: std::time::Duration::from_secs(10),
        ..dynap_hw::BridgeOptions::default()
    }) {
        Ok(b) => println!("samna: {}", dynap_hw::Transport::name(&b)),
        Err(e) => println!("samna: none ({e})"),
    }
    println!("emulator: always available (dynap deploy --device emulator)");
    ExitCode::SUCCESS
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("dynap: {problem}\n\n{USAGE}");
    ExitCode::from(2)
}

fn run_golden(dir: &str) -> ExitCode {
    let outcomes = match golden::check_dir(std::path::Path::new(dir)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dynap golden: {e}");
            println!("0 passed, 1 failed");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for o in &outcomes {
        match &o.result {
            Ok(()) => println!("PASS {}", o.name),
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", o.name);
            }
        }
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_train(args: &[&str]) -> ExitCode {
    match crate::report::TrainArgs::parse(args) {
        Ok(a) => crate::report::run(&a),
        Err(e) => usage_error(&e),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename, so a crash
/// never leaves half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

const ROCKPOOL_SCRIPT: &str = include_str!("../../../benches/reference/bench_rockpool.py");
const ROCKPOOL_TRAIN_SCRIPT: &str = include_str!("../../../benches/reference/train_rockpool.py");

/// Rockpool's training iterations per second on the frozen-noise network (`train_rockpool.py`).
fn rockpool_training_rate(python: &Path) -> Result<f64, String> {
    let script =
        std::env::temp_dir().join(format!("dynap-train-rockpool-{}.py", std::process::id()));
    write_atomic(&script, ROCKPOOL_TRAIN_SCRIPT.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    eprintln!(
        "running Rockpool's training loop with {} ...",
        python.display()
    );
    let out = Command::new(python)
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()));
    let _ = std::fs::remove_file(&script);
    let out = out?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("iterations_per_second ")
                .and_then(|v| v.trim().parse().ok())
        })
        .ok_or_else(|| {
            format!(
                "train_rockpool.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        })
}

const ROCKPOOL_QUANT_SCRIPT: &str = include_str!("../../../benches/reference/quant_rockpool.py");

/// Rockpool's autoencoder on the benchmark's quantization workload: (seconds, relative RMS error).
fn rockpool_quantization(python: &Path) -> Result<(f64, f64), String> {
    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let script = tmp.join(format!("dynap-quant-rockpool-{pid}.py"));
    let weights = tmp.join(format!("dynap-quant-weights-{pid}.json"));
    let (w_in, w_rec) = bench::quant_workload(0);
    let rows = |m: &dynap_model::Matrix| -> Vec<Vec<f64>> {
        (0..m.rows()).map(|r| m.row(r).to_vec()).collect()
    };
    let net = json!({"w_in": rows(&w_in), "w_rec": rows(&w_rec)});
    write_atomic(&script, ROCKPOOL_QUANT_SCRIPT.as_bytes())
        .and_then(|()| write_atomic(&weights, net.to_string().as_bytes()))
        .map_err(|e| format!("cannot write to {}: {e}", tmp.display()))?;
    eprintln!(
        "running Rockpool's autoencoder quantization with {} ...",
        python.display()
    );
    let out = Command::new(python).arg(&script).arg(&weights).output();
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&weights);
    let out = out.map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        let mut it = text.split_whitespace();
        it.find(|w| *w == name)?;
        it.next()?.parse().ok()
    };
    match (field("autoencoder_seconds"), field("relative_rms_error")) {
        (Some(t), Some(e)) => Ok((t, e)),
        _ => Err(format!(
            "quant_rockpool.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

struct BenchArgs {
    json: Option<PathBuf>,
    python: Option<PathBuf>,
    reps: usize,
    rounds: usize,
}

impl BenchArgs {
    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        let mut a = BenchArgs {
            json: None,
            python: None,
            reps: 10,
            rounds: 1,
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || {
                it.next()
                    .copied()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            let count = |v: &str| {
                v.parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or(format!("{flag} {v}: expected a count > 0"))
            };
            match flag {
                "--json" => a.json = Some(PathBuf::from(value()?)),
                "--rockpool-python" => a.python = Some(PathBuf::from(value()?)),
                "--reps" => a.reps = count(value()?)?,
                "--rounds" => a.rounds = count(value()?)?,
                other => return Err(format!("bench: unknown option {other}")),
            }
        }
        Ok(a)
    }
}

/// `dynap bench-row N BATCH REPS`: one row in this process, printed as one JSON line, so that its peak
/// memory is that row's alone.
fn run_bench_row(n: &str, batch: &str, reps: &str, threads: &str) -> ExitCode {
    let parse = |s: &str| s.parse::<usize>().ok();
    let (Some(n), Some(batch), Some(reps), Some(threads)) =
        (parse(n), parse(batch), parse(reps), parse(threads))
    else {
        return usage_error("bench-row: N, BATCH, REPS and THREADS must be counts");
    };
    let row = bench::time_forward(n, batch, reps, threads);
    let line = json!({
        "n": row.n,
        "batch": row.batch,
        "steps": row.steps,
        "fwd_ms": row.fwd.as_secs_f64() * 1e3,
        "fwdbwd_ms": row.fwdbwd.as_secs_f64() * 1e3,
        "peak_rss_mb": bench::peak_rss_mb(),
        "spikes": row.spikes,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

/// The speed and memory targets of DESIGN.md (and the training target of the training issue), each with
/// this run's figure and whether it is met.
fn print_targets(rows: &[Value], training_ratio: Option<f64>) {
    let row = |n: u64, b: u64| rows.iter().find(|r| r["n"] == n && r["batch"] == b);
    let ratio = |n: u64, b: u64, theirs: &str, ours: &str| {
        row(n, b).and_then(|r| Some(r[theirs].as_f64()? / r[ours].as_f64()?))
    };
    // The paired speedup of the rounds when the row has one.
    let speedup = |n: u64, b: u64, key: &str| row(n, b).and_then(|r| r[key].as_f64());
    let speed = |what: &str, got: Option<f64>, goal: f64| match got {
        Some(x) => println!(
            "  {what}: {x:.1}x (target {goal:.0}x) {}",
            if x >= goal { "met" } else { "NOT met" }
        ),
        None => println!("  {what}: not measured"),
    };
    println!("targets, this run:");
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

/// Rockpool's medians for one (N, batch), from `bench_rockpool.py`'s table.
struct RockpoolRow {
    n: usize,
    batch: usize,
    fwd_ms: f64,
    vg_ms: f64,
}

/// Rockpool's rows, and the peak resident memory (MiB) of the process that ran only N = 256, batch 8
/// (measured with `/usr/bin/time -v`, where it exists).
struct RockpoolRun {
    rows: Vec<RockpoolRow>,
    peak_rss_256_8_mb: Option<f64>,
}

/// The groups of rows Rockpool's script runs, one process each (`--sizes`, `--batches`); our rows run
/// right after their group's, so that both sides of a ratio are measured within seconds.
const ROCKPOOL_GROUPS: [(&str, &str); 4] =
    [("16,64", "1,8"), ("256", "1"), ("256", "8"), ("1024", "1")];

/// Whether the row `(n, batch)` belongs to the group `(sizes, batches)`.
fn in_group(n: usize, batch: usize, (sizes, batches): (&str, &str)) -> bool {
    sizes.split(',').any(|s| s == n.to_string())
        && batches.split(',').any(|b| b == batch.to_string())
}

fn run_rockpool(
    python: &Path,
    reps: usize,
    groups: &[(&str, &str)],
) -> Result<RockpoolRun, String> {
    let script =
        std::env::temp_dir().join(format!("dynap-bench-rockpool-{}.py", std::process::id()));
    write_atomic(&script, ROCKPOOL_SCRIPT.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let mut rows = Vec::new();
    let mut peak = None;
    let time_v = Path::new("/usr/bin/time");
    for &(sizes, batches) in groups {
        eprintln!(
            "running Rockpool's baseline (sizes {sizes}, batches {batches}) with {} ...",
            python.display()
        );
        // The process that runs only N = 256, batch 8 is measured for its peak memory (DESIGN.md).
        let measure = sizes == "256" && batches == "8" && time_v.exists();
        let mut cmd = if measure {
            let mut c = Command::new(time_v);
            c.arg("-v").arg(python);
            c
        } else {
            Command::new(python)
        };
        let out = cmd
            .arg(&script)
            .args([
                "--sizes",
                sizes,
                "--batches",
                batches,
                "--reps",
                &reps.to_string(),
            ])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&script);
            return Err(format!(
                "{} {} failed: {}",
                python.display(),
                script.display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ));
        }
        if measure {
            peak = String::from_utf8_lossy(&out.stderr)
                .lines()
                .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|kb| kb / 1024.0);
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with('#') || f.len() < 11 || f[0] == "N" {
                continue;
            }
            let num = |i: usize| {
                f[i].parse::<f64>()
                    .map_err(|_| format!("unexpected Rockpool output line: {line}"))
            };
            rows.push(RockpoolRow {
                n: num(0)? as usize,
                batch: num(1)? as usize,
                fwd_ms: num(4)? * 1e3,
                vg_ms: num(8)? * 1e3,
            });
        }
    }
    let _ = std::fs::remove_file(&script);
    Ok(RockpoolRun {
        rows,
        peak_rss_256_8_mb: peak,
    })
}

fn run_bench(a: &BenchArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("dynap bench: cannot find this program: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Rounds: each group of Rockpool's rows, then ours of that group; every row's figures are the
    // medians over the rounds and its speedups the medians of the rounds' paired ratios (this machine's
    // speed drifts by tens of percent within minutes).
    let mut ours_by_round: Vec<Vec<Value>> = Vec::new();
    let mut theirs_by_round: Vec<RockpoolRun> = Vec::new();
    for round in 0..a.rounds {
        let mut ours = Vec::new();
        let mut theirs = RockpoolRun {
            rows: Vec::new(),
            peak_rss_256_8_mb: None,
        };
        for group in ROCKPOOL_GROUPS {
            if let Some(p) = &a.python {
                match run_rockpool(p, a.reps, &[group]) {
                    Ok(r) => {
                        theirs.rows.extend(r.rows);
                        theirs.peak_rss_256_8_mb = theirs.peak_rss_256_8_mb.or(r.peak_rss_256_8_mb);
                    }
                    Err(e) => {
                        eprintln!("dynap bench: Rockpool baseline: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            for (n, batch) in bench::BENCH_ROWS {
                if !in_group(n, batch, group) {
                    continue;
                }
                if a.rounds > 1 {
                    eprintln!(
                        "round {}/{}: our row N = {n}, batch {batch}",
                        round + 1,
                        a.rounds
                    );
                }
                let out = Command::new(&exe)
                    .args([
                        "bench-row",
                        &n.to_string(),
                        &batch.to_string(),
                        &a.reps.to_string(),
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
                        eprintln!("dynap bench: the row N = {n}, batch = {batch} failed: {out:?}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        ours_by_round.push(ours);
        theirs_by_round.push(theirs);
    }
    let median = |mut v: Vec<f64>| -> f64 {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            k if k % 2 == 1 => v[k / 2],
            k => (v[k / 2 - 1] + v[k / 2]) / 2.0,
        }
    };
    let rockpool = a.python.as_ref().map(|_| ());
    println!(
        "forward pass (fwd) and value + gradient of a spike-count MSE w.r.t. both weight matrices (fwdbwd),"
    );
    println!(
        "f32, T = {} steps, 60 inputs, recurrent; medians of {} runs{}; peak memory of a process running only that row",
        bench::BENCH_STEPS,
        a.reps,
        if a.rounds > 1 {
            format!(
                ", then over {} rounds (speedups: medians of the rounds' paired ratios)",
                a.rounds
            )
        } else {
            String::new()
        }
    );
    println!(
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
    );
    let mut rows = Vec::new();
    for (n, batch) in bench::BENCH_ROWS {
        let mine: Vec<&Value> = ours_by_round
            .iter()
            .filter_map(|r| r.iter().find(|v| v["n"] == n && v["batch"] == batch))
            .collect();
        let theirs: Vec<Option<&RockpoolRow>> = theirs_by_round
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
        let paired = |theirs_of: &dyn Fn(&RockpoolRow) -> f64, k: &str| {
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
        let have_rp = rockpool.is_some() && rp_fwd.is_finite();
        if let (true, Some(obj)) = (have_rp, row.as_object_mut()) {
            obj.insert("rockpool_fwd_ms".into(), json!(rp_fwd));
            obj.insert("rockpool_fwdbwd_ms".into(), json!(rp_vg));
            obj.insert("fwd_speedup".into(), json!(fwd_ratio));
            obj.insert("fwdbwd_speedup".into(), json!(vg_ratio));
        }
        let rp_peak = median(
            theirs_by_round
                .iter()
                .filter_map(|r| r.peak_rss_256_8_mb)
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
        println!(
            "{n:>5} {batch:>5} {fwd:>9.3} {:>12} {:>7} {fwdbwd:>10.3} {:>15} {:>7} {peak_ours:>8.1} {spikes:>7}",
            ms(rp_fwd),
            ratio(fwd_ratio),
            ms(rp_vg),
            ratio(vg_ratio),
        );
        if let Some(peak) = rp_peak {
            println!(
                "      peak memory at N = 256, batch 8: ours {peak_ours:.0} MiB, Rockpool's process {peak:.0} MiB ({:.1}x less)",
                peak / peak_ours
            );
        }
        if n == 1024 {
            let simulated_ms = bench::BENCH_STEPS as f64 * 1.0;
            println!(
                "      one full chip (1024 neurons): 1 s of activity in {fwd:.1} ms = {:.0}x faster than real time",
                simulated_ms / fwd
            );
        }
        rows.push(row);
    }
    // The chip variant against the rockpool variant, same network and input, kernels only.
    for (n, batch) in [(16, 1), (256, 8)] {
        let v = bench::time_variants(n, batch, a.reps.max(10));
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "chip variant, N = {n}, batch {batch}: forward {:.2} ms ({:.1}x the rockpool variant's {:.2} ms), forward + backward {:.2} ms ({:.1}x its {:.2} ms)",
            ms(v.chip.0),
            ms(v.chip.0) / ms(v.rockpool.0),
            ms(v.rockpool.0),
            ms(v.chip.1),
            ms(v.chip.1) / ms(v.rockpool.1),
            ms(v.rockpool.1),
        );
    }
    // Training speed on the paper's network, one core (the other core is left idle).
    // Five blocks of 400 steps, the median rate: as `train_rockpool.py` times Rockpool (five blocks of
    // 200 jitted steps).
    // Paired over the rounds like the rows: ours, then Rockpool's, each round.
    let (mut ours_rates, mut theirs_rates, mut training_ratios) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let ours = bench::training_rate(400, 5);
        ours_rates.push(ours);
        if let Some(p) = &a.python {
            match rockpool_training_rate(p) {
                Ok(r) => {
                    theirs_rates.push(r);
                    training_ratios.push(ours / r);
                }
                Err(e) => {
                    eprintln!("dynap bench: Rockpool training baseline: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let ours = median(ours_rates);
    let training_ratio = (!training_ratios.is_empty()).then(|| median(training_ratios));
    println!(
        "training the frozen-noise network (60 -> 2 recurrent, 2 patterns x 500 steps, Adam), one core: {ours:.0} it/s{}",
        training_ratio.map_or(String::new(), |x| format!(
            ", Rockpool {:.0} it/s ({x:.1}x)",
            median(theirs_rates.clone())
        ))
    );
    let q = bench::time_quantize(a.reps.min(5));
    println!(
        "4-bit quantization, 60x256 input + 256x256 recurrent weights (dense), one core: {:.0} ms, relative RMS error {:.2}% ({:.2}% after snapping to the bias generator)",
        q.alternating.as_secs_f64() * 1e3,
        q.alternating_error.0 * 100.0,
        q.alternating_error.1 * 100.0,
    );
    println!(
        "      Rockpool's autoencoder (our port, 3000 epochs at step 1e-3): {:.0} ms, relative RMS error {:.2}%",
        q.autoencoder.as_secs_f64() * 1e3,
        q.autoencoder_error * 100.0
    );
    if let Some(p) = &a.python {
        match rockpool_quantization(p) {
            Ok((seconds, err)) => println!(
                "      Rockpool's autoencoder (Rockpool itself, same weights and settings): {:.0} ms, relative RMS error {:.2}%; our default quantizer is {:.0}x faster",
                seconds * 1e3,
                err * 100.0,
                seconds / q.alternating.as_secs_f64()
            ),
            Err(e) => {
                eprintln!("dynap bench: Rockpool quantization baseline: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let b = bench::time_board(a.reps.min(5));
    println!(
        "full board (4 chips x 1024 neurons, ~14 connections each): map {:.0} ms, samna JSON {:.0} ms ({:.1} MB), binary {:.0} ms ({:.1} MB); total {:.0} ms",
        b.map.as_secs_f64() * 1e3,
        b.json.as_secs_f64() * 1e3,
        b.json_bytes as f64 / 1e6,
        b.binary.as_secs_f64() * 1e3,
        b.binary_bytes as f64 / 1e6,
        (b.map + b.json + b.binary).as_secs_f64() * 1e3
    );
    if rockpool.is_some() {
        print_targets(&rows, training_ratio);
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
        if let Err(e) = write_atomic(path, text.as_bytes()) {
            eprintln!("dynap bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

//! `dynap train`: runs the experiment (both runs, every seed, in parallel), evaluates, and writes the
//! output folder (`metrics.json`, `config.toml`, each run's `network.json`, plots, checkpoints) and a
//! table that shows what noise injection buys.

use crate::config::Config;
use crate::experiment::{self, Evaluation, Progress, Run, Trained};
use crate::plot;
use crate::task::Raster;
use dynap_autodiff::Loss;
use dynap_model::{Network, Param};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The arguments of `dynap train`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainArgs {
    /// `--config FILE.toml`.
    pub config: Option<PathBuf>,
    /// `--out DIR` (default `runs/train`).
    pub out: PathBuf,
    /// `--resume`: continue from the checkpoints in `out`.
    pub resume: bool,
    /// `--variant`.
    pub variant: Option<String>,
    /// `--quiet`: no progress, no table.
    pub quiet: bool,
}

impl TrainArgs {
    /// Parses the arguments after `train`.
    pub fn parse(args: &[&str]) -> Result<TrainArgs, String> {
        let mut a = TrainArgs {
            config: None,
            out: PathBuf::from("runs/train"),
            resume: false,
            variant: None,
            quiet: false,
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || {
                it.next()
                    .copied()
                    .ok_or_else(|| format!("train: {flag} needs a value"))
            };
            match flag {
                "--config" => a.config = Some(PathBuf::from(value()?)),
                "--out" => a.out = PathBuf::from(value()?),
                "--variant" => a.variant = Some(value()?.to_owned()),
                "--resume" => a.resume = true,
                "--quiet" => a.quiet = true,
                other => return Err(format!("train: unknown option {other}")),
            }
        }
        Ok(a)
    }
}

/// A network in the network JSON format of DESIGN.md (`w_in [Nin][N]`, `w_rec [N][N]`, `iscale`, `dt`,
/// `variant`, per-neuron parameters by Rockpool's names).
pub fn network_json(net: &Network) -> Value {
    let rows = |m: &dynap_model::Matrix| -> Vec<Vec<f64>> {
        (0..m.rows()).map(|r| m.row(r).to_vec()).collect()
    };
    let mut v = json!({
        "w_in": net.w_in.as_ref().map(rows),
        "w_rec": rows(&net.w_rec),
        "iscale": net.i_scale,
        "dt": net.dt,
        "variant": net.variant.name(),
    });
    if let Some(obj) = v.as_object_mut() {
        for p in Param::ALL {
            obj.insert(p.rockpool_name().into(), json!(net.params.get(p)));
        }
        if net.variant == dynap_model::Variant::Chip {
            let defaults;
            let chip = match &net.chip {
                Some(c) => c,
                None => {
                    defaults = dynap_model::ChipSynapses::defaults(net.neurons());
                    &defaults
                }
            };
            for (name, d) in [
                ("nmda", &chip.nmda),
                ("gaba", &chip.gaba),
                ("shunt", &chip.shunt),
            ] {
                obj.insert(format!("Itau_{name}"), json!(d.i_tau));
                obj.insert(format!("Igain_{name}"), json!(d.i_gain));
                obj.insert(format!("C_{name}"), json!(d.c));
            }
            let n = net.neurons();
            let flags = |t: &[dynap_model::SynapseChoice],
                         f: fn(&dynap_model::SynapseChoice) -> bool| {
                t.chunks(n.max(1))
                    .map(|row| row.iter().map(|c| u8::from(f(c))).collect::<Vec<u8>>())
                    .collect::<Vec<_>>()
            };
            for (key, types) in [("w_in", &chip.w_in_types), ("w_rec", &chip.w_rec_types)] {
                if let Some(t) = types {
                    obj.insert(format!("{key}_nmda"), json!(flags(t, |c| c.nmda)));
                    obj.insert(format!("{key}_shunt"), json!(flags(t, |c| c.shunt)));
                }
            }
        }
    }
    v
}

/// The `chip` variant's dendrites from a network JSON object (the keys [`network_json`] writes:
/// `Itau_nmda`, `Igain_gaba`, `C_shunt`, ... per neuron, and optional `w_in_nmda`, `w_rec_shunt`, ...
/// 0/1 matrices); absent keys keep their defaults. Errors name the key and the entry.
pub fn chip_synapses_from(
    v: &serde_json::Map<String, Value>,
    n: usize,
    n_in: usize,
) -> Result<dynap_model::ChipSynapses, String> {
    let mut chip = dynap_model::ChipSynapses::defaults(n);
    let numbers = |key: &str, len: usize| -> Result<Option<Vec<f64>>, String> {
        let Some(x) = v.get(key) else {
            return Ok(None);
        };
        let a = x
            .as_array()
            .ok_or_else(|| format!("{key}: expected an array of {len} numbers"))?;
        if a.len() != len {
            return Err(format!("{key}: {} values, expected {len}", a.len()));
        }
        a.iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_f64()
                    .ok_or_else(|| format!("{key}[{i}]: {e} is not a number"))
            })
            .collect::<Result<Vec<f64>, String>>()
            .map(Some)
    };
    for (name, d) in [
        ("nmda", &mut chip.nmda),
        ("gaba", &mut chip.gaba),
        ("shunt", &mut chip.shunt),
    ] {
        if let Some(x) = numbers(&format!("Itau_{name}"), n)? {
            d.i_tau = x;
        }
        if let Some(x) = numbers(&format!("Igain_{name}"), n)? {
            d.i_gain = x;
        }
        if let Some(x) = numbers(&format!("C_{name}"), n)? {
            d.c = x;
        }
    }
    for (key, rows) in [("w_in", n_in), ("w_rec", n)] {
        let flat = |suffix: &str| -> Result<Option<Vec<bool>>, String> {
            let k = format!("{key}_{suffix}");
            let Some(x) = v.get(&k) else {
                return Ok(None);
            };
            let bad = || format!("{k}: expected {rows} rows of {n} 0/1 values");
            let r = x.as_array().ok_or_else(bad)?;
            if r.len() != rows {
                return Err(bad());
            }
            let mut out = Vec::with_capacity(rows * n);
            for (i, row) in r.iter().enumerate() {
                let row = row.as_array().filter(|a| a.len() == n).ok_or_else(bad)?;
                for (j, e) in row.iter().enumerate() {
                    match e.as_u64() {
                        Some(0) => out.push(false),
                        Some(1) => out.push(true),
                        _ => return Err(format!("{k}[{i}][{j}]: {e} is not 0 or 1")),
                    }
                }
            }
            Ok(Some(out))
        };
        let (nm, sh) = (flat("nmda")?, flat("shunt")?);
        if nm.is_some() || sh.is_some() {
            let types = (0..rows * n)
                .map(|k| dynap_model::SynapseChoice {
                    nmda: nm.as_ref().is_some_and(|f| f[k]),
                    shunt: sh.as_ref().is_some_and(|f| f[k]),
                })
                .collect();
            if key == "w_in" {
                chip.w_in_types = Some(types);
            } else {
                chip.w_rec_types = Some(types);
            }
        }
    }
    chip.validate(n, Some(n_in)).map_err(|e| e.to_string())?;
    Ok(chip)
}

/// One seed's results.
struct SeedResult {
    trained: Trained,
    evaluation: Evaluation,
    final_loss: f64,
    quantized: QuantResult,
    /// `chip` variant only: the nominal metrics with every negative (inhibitory) weight set to 0, to
    /// show what the trained inhibition does.
    without_inhibition: Option<crate::task::Metrics>,
}

/// The nominal metrics of `net` with its negative weights removed (`chip` variant: no GABA or SHUNT
/// input at all).
fn without_inhibition(
    net: &dynap_model::Network,
    raster: &crate::task::Raster,
) -> Result<crate::task::Metrics, String> {
    let mut excitatory = net.clone();
    let clear = |m: &mut dynap_model::Matrix| {
        m.as_mut_slice().iter_mut().for_each(|w| *w = w.max(0.0));
    };
    if let Some(w) = excitatory.w_in.as_mut() {
        clear(w);
    }
    clear(&mut excitatory.w_rec);
    let spikes =
        crate::experiment::simulate_patterns(&excitatory, raster).map_err(|e| e.to_string())?;
    Ok(crate::task::metrics(
        &spikes,
        raster.samples,
        raster.steps,
        net.neurons(),
    ))
}

/// The trained network after 4-bit quantization (the default quantizer, snapped to the bias
/// generator), evaluated like the float one, and Rockpool's autoencoder on the same weights.
struct QuantResult {
    quantized: dynap_quant::Quantized,
    evaluation: Evaluation,
    final_loss: f64,
    /// Relative RMS weight error and nominal classification with Rockpool's autoencoder (its
    /// defaults: early stopping, f32, unsnapped), when compared.
    autoencoder: Option<(f64, bool)>,
}

fn quantize_seed(
    config: &Config,
    raster: &Raster,
    net: &Network,
    seed: u64,
) -> Result<QuantResult, String> {
    let options = dynap_quant::Options {
        method: dynap_quant::Method::Alternating,
        snap: config
            .quantization
            .snap
            .then(dynap_model::BiasGenerator::dynapse2),
    };
    let (quantized, qnet) = crate::quantize::quantize_network(net, &options)?;
    let evaluation = experiment::evaluate(config, &qnet, raster, 0).map_err(|e| e.to_string())?;
    let final_loss = nominal_loss(config, raster, &evaluation.spikes, qnet.neurons());
    let autoencoder = if config.quantization.compare_autoencoder {
        let ae_options = dynap_quant::AutoencoderOptions {
            seed,
            ..Default::default()
        };
        let ae = dynap_quant::Options {
            method: dynap_quant::Method::Autoencoder {
                options: ae_options,
                init: Default::default(),
            },
            snap: None,
        };
        let (ae_q, ae_net) = crate::quantize::quantize_network(net, &ae)?;
        let spikes = experiment::simulate_patterns(&ae_net, raster).map_err(|e| e.to_string())?;
        let metrics = crate::task::metrics(&spikes, raster.samples, raster.steps, ae_net.neurons());
        Some((ae_q.relative_rms_error, metrics.correct))
    } else {
        None
    };
    Ok(QuantResult {
        quantized,
        evaluation,
        final_loss,
        autoencoder,
    })
}

/// The configured loss of the nominal network's outputs (the `final_loss` of a seed).
fn nominal_loss(config: &Config, raster: &Raster, spikes: &[f64], n: usize) -> f64 {
    let classes: Vec<usize> = (0..raster.samples).collect();
    let loss = match config.training.loss.as_str() {
        "count_mse" => {
            let rate = config.training.target_rate_hz * config.network.dt * raster.steps as f64;
            // Per-pattern count MSE: each pattern against its own one-hot count target.
            let mut total = 0.0;
            for &c in &classes {
                let mut target = vec![0.0; n];
                target[c] = rate;
                let s = &spikes[c * raster.steps * n..(c + 1) * raster.steps * n];
                total += Loss::CountMse { target }
                    .value_and_gradient(s, 1, raster.steps, n)
                    .map_or(f64::NAN, |v| v.0);
            }
            return total / classes.len() as f64;
        }
        "rate_cross_entropy" => Loss::RateCrossEntropy { class: classes },
        _ => {
            let mut target = vec![0.0; raster.samples * raster.steps * n];
            for c in 0..raster.samples {
                for t in 0..raster.steps {
                    target[(c * raster.steps + t) * n + c] = 1.0;
                }
            }
            Loss::RasterMse { target }
        }
    };
    loss.value_and_gradient(spikes, raster.samples, raster.steps, n)
        .map_or(f64::NAN, |v| v.0)
}

/// `{"5": f(5), "10": f(10), ...}` over the configured levels.
fn by_level(config: &Config, f: impl Fn(u32) -> f64) -> Value {
    Value::Object(
        config
            .evaluation
            .percents
            .iter()
            .map(|&p| (p.to_string(), json!(f(p))))
            .collect(),
    )
}

fn robustness_at(r: &SeedResult, p: u32) -> f64 {
    robustness_of(&r.evaluation, p)
}

fn robustness_of(e: &Evaluation, p: u32) -> f64 {
    e.robustness
        .iter()
        .find(|x| x.0 == p)
        .map_or(f64::NAN, |x| x.1)
}

/// One seed's evaluation as JSON: the task metrics, its loss, robustness and training speed.
fn seed_json(
    config: &Config,
    r: &SeedResult,
    e: &Evaluation,
    final_loss: f64,
) -> serde_json::Map<String, Value> {
    let mut o = crate::task::metrics_json(&e.nominal);
    o.insert("seed".into(), json!(r.trained.seed));
    o.insert("final_loss".into(), json!(final_loss));
    o.insert(
        "robustness".into(),
        by_level(config, |p| robustness_of(e, p)),
    );
    o.insert(
        "iterations_per_second".into(),
        json!(r.trained.iterations_per_second),
    );
    o
}

/// A stage over all seeds (`R` of DESIGN.md): mean loss, the first seed's counts, whether every seed
/// classifies, robustness over all chips, training speed; `stage` picks the evaluation and loss.
fn summary_json(
    config: &Config,
    results: &[SeedResult],
    stage: &dyn Fn(&SeedResult) -> (&Evaluation, f64),
) -> serde_json::Map<String, Value> {
    let mean = |f: &dyn Fn(&SeedResult) -> f64| {
        results.iter().map(f).sum::<f64>() / results.len().max(1) as f64
    };
    let mut o = serde_json::Map::new();
    o.insert("final_loss".into(), json!(mean(&|r| stage(r).1)));
    o.insert(
        "counts".into(),
        json!(results.first().map(|r| stage(r).0.nominal.counts.clone())),
    );
    o.insert(
        "correct".into(),
        json!(results.iter().all(|r| stage(r).0.nominal.correct)),
    );
    // Every seed evaluates the same number of chips, so the mean over seeds is the share over all.
    o.insert(
        "robustness".into(),
        by_level(config, |p| mean(&|r| robustness_of(stage(r).0, p))),
    );
    o.insert(
        "iterations_per_second".into(),
        json!(mean(&|r| r.trained.iterations_per_second)),
    );
    o
}

fn run_json(config: &Config, results: &[SeedResult]) -> Value {
    fn float(r: &SeedResult) -> (&Evaluation, f64) {
        (&r.evaluation, r.final_loss)
    }
    fn quant(r: &SeedResult) -> (&Evaluation, f64) {
        (&r.quantized.evaluation, r.quantized.final_loss)
    }
    let mean = |f: &dyn Fn(&SeedResult) -> f64| {
        results.iter().map(f).sum::<f64>() / results.len().max(1) as f64
    };
    let mut run = summary_json(config, results, &float);
    run.insert(
        "seeds".into(),
        results
            .iter()
            .map(|r| Value::Object(seed_json(config, r, &r.evaluation, r.final_loss)))
            .collect(),
    );
    let mut q = summary_json(config, results, &quant);
    q.insert(
        "method".into(),
        json!(if config.quantization.snap {
            "alternating, snapped to the bias generator"
        } else {
            "alternating, not snapped"
        }),
    );
    q.insert(
        "relative_rms_error".into(),
        json!(mean(&|r| r.quantized.quantized.relative_rms_error)),
    );
    q.insert(
        "autoencoder".into(),
        json!(config.quantization.compare_autoencoder.then(|| json!({
            "relative_rms_error": mean(&|r| r.quantized.autoencoder.map_or(f64::NAN, |a| a.0)),
            "correct": results.iter().all(|r| r.quantized.autoencoder.is_some_and(|a| a.1)),
        }))),
    );
    q.insert(
        "seeds".into(),
        results
            .iter()
            .map(|r| {
                let qr = &r.quantized;
                let mut o = seed_json(config, r, &qr.evaluation, qr.final_loss);
                o.insert(
                    "relative_rms_error".into(),
                    json!(qr.quantized.relative_rms_error),
                );
                o.insert(
                    "cores".into(),
                    qr.quantized
                        .cores
                        .iter()
                        .map(|c| {
                            json!({
                                "core": c.core,
                                "iw": c.iw,
                                "error_before_snap": c.error_before_snap,
                                "error_after_snap": c.error_after_snap,
                            })
                        })
                        .collect(),
                );
                o.insert(
                    "autoencoder".into(),
                    json!(
                        qr.autoencoder
                            .map(|(e, c)| json!({"relative_rms_error": e, "correct": c}))
                    ),
                );
                Value::Object(o)
            })
            .collect(),
    );
    run.insert("quantized".into(), Value::Object(q));
    if results.iter().any(|r| r.without_inhibition.is_some()) {
        run.insert(
            "without_inhibition".into(),
            json!({
                "correct": results
                    .iter()
                    .all(|r| r.without_inhibition.as_ref().is_some_and(|m| m.correct)),
                "seeds": results
                    .iter()
                    .map(|r| {
                        let mut o = r
                            .without_inhibition
                            .as_ref()
                            .map(crate::task::metrics_json)
                            .unwrap_or_default();
                        o.insert("seed".into(), json!(r.trained.seed));
                        Value::Object(o)
                    })
                    .collect::<Vec<Value>>(),
            }),
        );
    }
    Value::Object(run)
}

/// Shows progress on stderr until `done` reaches `total` or `stop` is set.
fn progress_display(
    progress: Arc<Progress>,
    total: usize,
    stop: Arc<Mutex<bool>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let tty = std::io::stderr().is_terminal();
        let start = Instant::now();
        let mut last_print = Instant::now() - Duration::from_secs(60);
        loop {
            let done = progress.done.load(Ordering::Relaxed);
            let finished = stop.lock().map_or(true, |s| *s) || done >= total;
            let interval = if tty {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(10)
            };
            if finished || last_print.elapsed() >= interval {
                last_print = Instant::now();
                let loss = f32::from_bits(progress.last_loss_bits.load(Ordering::Relaxed) as u32);
                let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
                let width = 30;
                let filled = (done * width)
                    .checked_div(total)
                    .unwrap_or(width)
                    .min(width);
                let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
                let line =
                    format!("[{bar}] {done}/{total} iterations, loss {loss:.4}, {rate:.0} it/s");
                if tty {
                    eprint!("\r{line}  ");
                } else {
                    eprintln!("{line}");
                }
            }
            if finished {
                if tty {
                    eprintln!();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Runs `dynap train`.
pub fn run(a: &TrainArgs) -> ExitCode {
    match train_all(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dynap train: {e}");
            ExitCode::FAILURE
        }
    }
}

fn train_all(a: &TrainArgs) -> Result<(), String> {
    let mut config = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = &a.variant {
        config.network.variant = v.clone();
        config.validate().map_err(|e| e.to_string())?;
    }
    let raster = experiment::rasters(&config);
    let out = &a.out;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    crate::cli::write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", out.join("config.toml").display()))?;
    let jobs: Vec<(Run, u64)> = [Run::Plain, Run::Noise]
        .iter()
        .flat_map(|&r| config.training.seeds.iter().map(move |&s| (r, s)))
        .collect();
    if !a.quiet {
        eprintln!(
            "training plain/noise x {} seeds, {} iterations each, on {} patterns x {} steps x {} channels (Iscale {:e} A)",
            config.training.seeds.len(),
            config.training.iterations,
            raster.samples,
            raster.steps,
            raster.channels,
            config.network.iscale
        );
    }
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(Mutex::new(false));
    let display = (!a.quiet).then(|| {
        progress_display(
            Arc::clone(&progress),
            jobs.len() * config.training.iterations,
            Arc::clone(&stop),
        )
    });
    let workers = dynap_model::cores().min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Trained, String>>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(run, seed)) = jobs.get(k) else {
                        break;
                    };
                    let dir = out.join(run.name());
                    let ckpt = dir.join(format!("seed{seed}.checkpoint.json"));
                    let r = std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
                        .and_then(|()| {
                            experiment::train(
                                &config,
                                &raster,
                                run,
                                seed,
                                Some(&ckpt),
                                a.resume,
                                &progress,
                            )
                            .map_err(|e| e.to_string())
                        });
                    if let Ok(mut slots) = results.lock() {
                        slots[k] = Some(r);
                    }
                }
            });
        }
    });
    if let Ok(mut s) = stop.lock() {
        *s = true;
    }
    if let Some(d) = display {
        let _ = d.join();
    }
    let trained: Vec<Trained> = results
        .into_inner()
        .map_err(|_| "a training thread failed".to_string())?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("a training did not run".into())))
        .collect::<Result<_, _>>()?;
    if !a.quiet {
        eprintln!(
            "evaluating on {} simulated chips per mismatch level ...",
            config.evaluation.chips
        );
    }
    let mut per_run: Vec<(Run, Vec<SeedResult>)> = Vec::new();
    for run in [Run::Plain, Run::Noise] {
        let mut rs = Vec::new();
        for (t, &(r, _)) in trained.iter().zip(&jobs) {
            if r != run {
                continue;
            }
            let evaluation =
                experiment::evaluate(&config, &t.network, &raster, 0).map_err(|e| e.to_string())?;
            let final_loss =
                nominal_loss(&config, &raster, &evaluation.spikes, t.network.neurons());
            let quantized = quantize_seed(&config, &raster, &t.network, t.seed)?;
            let without_inhibition = (t.network.variant == dynap_model::Variant::Chip)
                .then(|| without_inhibition(&t.network, &raster))
                .transpose()?;
            rs.push(SeedResult {
                trained: t.clone(),
                evaluation,
                final_loss,
                quantized,
                without_inhibition,
            });
        }
        per_run.push((run, rs));
    }
    write_outputs(&config, out, &raster, &per_run)?;
    if !a.quiet {
        print_table(&config, &per_run);
        println!("wrote {}", out.display());
    }
    Ok(())
}

fn write_outputs(
    config: &Config,
    out: &Path,
    raster: &Raster,
    per_run: &[(Run, Vec<SeedResult>)],
) -> Result<(), String> {
    let w = |path: PathBuf, bytes: &[u8]| {
        crate::cli::write_atomic(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let mut runs = serde_json::Map::new();
    let mut curves = Vec::new();
    for (run, results) in per_run {
        runs.insert(run.name().into(), run_json(config, results));
        let dir = out.join(run.name());
        if let Some(first) = results.first() {
            w(
                dir.join("network.json"),
                serde_json::to_string_pretty(&network_json(&first.trained.network))
                    .unwrap_or_default()
                    .as_bytes(),
            )?;
            let n = first.trained.network.neurons();
            plot::raster_with_dt(
                &dir.join("raster.png"),
                &format!(
                    "{} run, seed {}: output spikes",
                    run.name(),
                    first.trained.seed
                ),
                &first.evaluation.spikes,
                raster.samples,
                raster.steps,
                n,
                first.trained.network.dt,
            )
            .map_err(|e| format!("cannot write {}: {e}", dir.join("raster.png").display()))?;
        }
        for r in results {
            let seed_dir = dir.join(format!("seed{}", r.trained.seed));
            w(
                seed_dir.join("network.json"),
                serde_json::to_string_pretty(&network_json(&r.trained.network))
                    .unwrap_or_default()
                    .as_bytes(),
            )?;
            // The quantize output format (`dynap quantize`), with dt, variant and the currents.
            let mut passthrough = network_json(&r.trained.network)
                .as_object()
                .cloned()
                .unwrap_or_default();
            for k in ["w_in", "w_rec", "iscale"] {
                passthrough.remove(k);
            }
            w(
                seed_dir.join("quantized.json"),
                serde_json::to_string_pretty(&crate::quantize::output_json(
                    &r.quantized.quantized,
                    &dynap_quant::Method::Alternating,
                    &passthrough,
                ))
                .unwrap_or_default()
                .as_bytes(),
            )?;
            curves.push((
                format!("{} seed {}", run.name(), r.trained.seed),
                r.trained.losses.clone(),
            ));
        }
    }
    plot::loss_curves(&out.join("loss.png"), "training loss", &curves)
        .map_err(|e| format!("cannot write {}: {e}", out.join("loss.png").display()))?;
    let metrics = json!({ "runs": Value::Object(runs) });
    w(
        out.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// A table row: run, seed, loss, counts, correct, robustness per level.
fn table_row(run: &str, seed: &str, final_loss: f64, e: &Evaluation) -> String {
    let counts: Vec<String> = e
        .nominal
        .counts
        .iter()
        .map(|c| format!("{:?}", c.iter().map(|&x| x as i64).collect::<Vec<_>>()))
        .collect();
    format!(
        "{run:<6} {seed:>5} {final_loss:>10.4} {:<18} {:>8} {}",
        counts.join(""),
        if e.nominal.correct { "yes" } else { "no" },
        e.robustness
            .iter()
            .map(|(_, f)| format!("{:>5.0}%", f * 100.0))
            .collect::<String>()
    )
}

fn print_table(config: &Config, per_run: &[(Run, Vec<SeedResult>)]) {
    let levels: Vec<String> = config
        .evaluation
        .percents
        .iter()
        .map(|p| format!("{p}%"))
        .collect();
    println!();
    println!(
        "{:<6} {:>5} {:>10} {:<18} {:>8} {}  {:>8}",
        "run",
        "seed",
        "final loss",
        "counts",
        "correct",
        levels.iter().map(|l| format!("{l:>6}")).collect::<String>(),
        "it/s"
    );
    for (run, results) in per_run {
        for r in results {
            println!(
                "{}  {:>8.0}",
                table_row(
                    run.name(),
                    &r.trained.seed.to_string(),
                    r.final_loss,
                    &r.evaluation
                ),
                r.trained.iterations_per_second
            );
            let q = &r.quantized;
            println!(
                "{}  weight error {:.1}%{}",
                table_row(" 4-bit", "", q.final_loss, &q.evaluation),
                q.quantized.relative_rms_error * 100.0,
                q.autoencoder.map_or(String::new(), |(e, c)| format!(
                    " (Rockpool's autoencoder: {:.1}%, {})",
                    e * 100.0,
                    if c { "classifies" } else { "does not classify" }
                ))
            );
            if let Some(m) = &r.without_inhibition {
                let counts: Vec<String> = m
                    .counts
                    .iter()
                    .map(|c| format!("{:?}", c.iter().map(|&x| x as i64).collect::<Vec<_>>()))
                    .collect();
                println!(
                    " no inh {:>16} {:<18} {:>8}  (negative weights set to 0)",
                    "",
                    counts.join(""),
                    if m.correct { "yes" } else { "no" }
                );
            }
        }
    }
    println!();
    println!(
        "robustness = share of {} simulated chips per level (frozen mismatch, sigma = level / 3) on which every pattern is classified correctly",
        config.evaluation.chips
    );
    for (run, results) in per_run {
        let fractions = |p: u32| results.iter().map(move |r| robustness_at(r, p));
        let levels = &config.evaluation.percents;
        let all: Vec<String> = levels
            .iter()
            .map(|&p| {
                format!(
                    "{p}%: {:.0}%",
                    fractions(p).sum::<f64>() / results.len().max(1) as f64 * 100.0
                )
            })
            .collect();
        let worst: Vec<String> = levels
            .iter()
            .map(|&p| format!("{:.0}%", fractions(p).fold(1.0, f64::min) * 100.0))
            .collect();
        println!(
            "{:<6} mean over seeds {}; worst seed {}",
            run.name(),
            all.join(", "),
            worst.join(" / ")
        );
        let q_all: Vec<String> = levels
            .iter()
            .map(|&p| {
                let sum: f64 = results
                    .iter()
                    .map(|r| robustness_of(&r.quantized.evaluation, p))
                    .sum();
                format!("{p}%: {:.0}%", sum / results.len().max(1) as f64 * 100.0)
            })
            .collect();
        println!("{:<6} 4-bit, mean over seeds {}", "", q_all.join(", "));
    }
}

//! The frozen-noise experiment end to end (what `dynap train` runs): both runs (`plain`, and `noise`
//! with mismatch injected) for every seed, in parallel; each trained network evaluated on simulated
//! chips, quantized to the chip's 4-bit weights and evaluated again, beside Rockpool's autoencoder on
//! the same weights; then the output folder (`metrics.json`, `config.toml`, each run's `network.json`,
//! per-seed networks and quantize outputs, plots with their data, checkpoints) and a table of what
//! noise injection buys.

use crate::config::{Config, LossKind};
use crate::error::Error;
use crate::experiment::{self, Evaluation, Run, Trained};
use crate::files;
use crate::plot;
use crate::progress::Progress;
use crate::quantization;
use crate::task::{self, Raster};
use dynap_autodiff::Loss;
use dynap_config::format::{NetworkFile, QuantMethod, write_network, write_quantized};
use dynap_model::Network;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One seed's results.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The trained network and its training.
    pub trained: Trained,
    /// Its evaluation (nominal and over simulated chips).
    pub evaluation: Evaluation,
    /// The configured loss of the nominal network.
    pub final_loss: f64,
    /// After 4-bit quantization.
    pub quantized: QuantResult,
    /// `chip` variant only: the nominal metrics with every negative (inhibitory) weight set to 0, to
    /// show what the trained inhibition does.
    pub without_inhibition: Option<task::Metrics>,
}

/// The trained network after 4-bit quantization (the default quantizer, snapped to the bias
/// generator), evaluated like the float one, and Rockpool's autoencoder on the same weights.
#[derive(Clone, Debug)]
pub struct QuantResult {
    /// The quantization.
    pub quantized: dynap_quant::Quantized,
    /// The quantized network's evaluation.
    pub evaluation: Evaluation,
    /// Its configured loss.
    pub final_loss: f64,
    /// Relative RMS weight error and nominal classification with Rockpool's autoencoder (its
    /// defaults: early stopping, f32, unsnapped), when compared.
    pub autoencoder: Option<(f64, bool)>,
}

/// Both runs of the experiment, each with its seeds in order.
#[derive(Clone, Debug)]
pub struct Runs {
    /// `(run, results per seed)`, `plain` then `noise`.
    pub runs: Vec<(Run, Vec<SeedResult>)>,
    /// The task's stimuli.
    pub raster: Raster,
}

/// The nominal metrics of `net` with its negative weights removed (`chip` variant: no GABA or SHUNT
/// input at all).
fn without_inhibition(net: &Network, raster: &Raster) -> Result<task::Metrics, Error> {
    let mut excitatory = net.clone();
    let clear = |m: &mut dynap_model::Matrix| {
        m.as_mut_slice().iter_mut().for_each(|w| *w = w.max(0.0));
    };
    if let Some(w) = excitatory.w_in.as_mut() {
        clear(w);
    }
    clear(&mut excitatory.w_rec);
    let spikes = experiment::simulate_patterns(&excitatory, raster)?;
    Ok(task::metrics(
        &spikes,
        raster.samples,
        raster.steps,
        net.neurons(),
    ))
}

fn quantize_seed(
    config: &Config,
    raster: &Raster,
    net: &Network,
    seed: u64,
) -> Result<QuantResult, Error> {
    let options = quantization::options(QuantMethod::Alternating, None, config.quantization.snap);
    let (quantized, qnet) = quantization::quantize_network(net, &options)?;
    let evaluation = experiment::evaluate(config, &qnet, raster, 0)?;
    let final_loss = nominal_loss(config, raster, &evaluation.spikes, qnet.neurons());
    let autoencoder = if config.quantization.compare_autoencoder {
        let ae = quantization::options(QuantMethod::Autoencoder, Some(seed), false);
        let (ae_q, ae_net) = quantization::quantize_network(net, &ae)?;
        let spikes = experiment::simulate_patterns(&ae_net, raster)?;
        let metrics = task::metrics(&spikes, raster.samples, raster.steps, ae_net.neurons());
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
    let loss = match config.training.loss {
        LossKind::CountMse => {
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
        LossKind::RateCrossEntropy => Loss::RateCrossEntropy { class: classes },
        LossKind::CountCrossEntropy => Loss::CountCrossEntropy {
            class: classes,
            readout: 0..config.task.classes,
            classes: config.task.classes,
            temperature: config.training.temperature,
            activity: None,
        },
        // (`count_regression` needs regression data: `Config::validate` refuses it here.)
        LossKind::RasterMse | LossKind::CountRegression => {
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

/// Trains every run and seed of `config` (in parallel, one core each), evaluates and quantizes the
/// trained networks. Writes `out/config.toml` first, and checkpoints to `out/<run>/seed<k>.checkpoint`
/// as training goes; with `resume`, continues from them.
pub fn train(
    config: &Config,
    out: &Path,
    resume: bool,
    progress: &Progress,
) -> Result<Runs, Error> {
    let raster = experiment::rasters(config);
    files::create_dir(out)?;
    files::write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    let jobs: Vec<(Run, u64)> = [Run::Plain, Run::Noise]
        .iter()
        .flat_map(|&r| config.training.seeds.iter().map(move |&s| (r, s)))
        .collect();
    tracing::info!(
        "training plain/noise x {} seeds, {} iterations each, on {} patterns x {} steps x {} channels (Iscale {:e} A)",
        config.training.seeds.len(),
        config.training.iterations,
        raster.samples,
        raster.steps,
        raster.channels,
        config.network.iscale
    );
    let stage = progress.stage(
        "training",
        (jobs.len() * config.training.iterations) as u64,
        "iterations",
    );
    let workers = dynap_model::cores().min(jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Trained, Error>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(run, seed)) = jobs.get(k) else {
                        break;
                    };
                    let dir = out.join(run.name());
                    let ckpt = dir.join(format!("seed{seed}.checkpoint"));
                    let r = files::create_dir(&dir).and_then(|()| {
                        experiment::train(config, &raster, run, seed, Some(&ckpt), resume, &stage)
                    });
                    if let Ok(mut slots) = results.lock() {
                        slots[k] = Some(r);
                    }
                }
            });
        }
    });
    stage.finish();
    let trained: Vec<Trained> = results
        .into_inner()
        .map_err(|_| Error::Mismatch("a training thread failed".into()))?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Mismatch("a training did not run".into()))))
        .collect::<Result<_, _>>()?;
    let evaluating = progress.stage(
        format!(
            "evaluating on {} chips per level, float and 4-bit",
            config.evaluation.chips
        ),
        trained.len() as u64,
        "networks",
    );
    let mut runs: Vec<(Run, Vec<SeedResult>)> = Vec::new();
    for run in [Run::Plain, Run::Noise] {
        let mut rs = Vec::new();
        for (t, &(r, _)) in trained.iter().zip(&jobs) {
            if r != run {
                continue;
            }
            evaluating.set_message(format!("{} seed {}", run.name(), t.seed));
            let evaluation = experiment::evaluate(config, &t.network, &raster, 0)?;
            let final_loss = nominal_loss(config, &raster, &evaluation.spikes, t.network.neurons());
            let quantized = quantize_seed(config, &raster, &t.network, t.seed)?;
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
            evaluating.inc(1);
        }
        runs.push((run, rs));
    }
    evaluating.finish();
    Ok(Runs { runs, raster })
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
    let mut o = task::metrics_json(&e.nominal);
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
                            .map(task::metrics_json)
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

impl Runs {
    /// `metrics.json`: `{"runs": {"plain": R, "noise": R}}` (DESIGN.md's contract).
    pub fn metrics_json(&self, config: &Config) -> Value {
        let runs: serde_json::Map<String, Value> = self
            .runs
            .iter()
            .map(|(run, results)| (run.name().to_owned(), run_json(config, results)))
            .collect();
        json!({ "runs": Value::Object(runs) })
    }

    /// Writes the output folder: `metrics.json`, each run's `network.json` (the first seed's) and
    /// `raster.png`, per seed `seed<k>/network.json` and `seed<k>/quantized.json` (the quantize output
    /// format), and `loss.png`; every plot with its data beside it.
    pub fn write(&self, config: &Config, out: &Path) -> Result<(), Error> {
        let mut curves = Vec::new();
        for (run, results) in &self.runs {
            let dir = out.join(run.name());
            if let Some(first) = results.first() {
                let net = &first.trained.network;
                files::write_atomic(
                    &dir.join("network.json"),
                    write_network(&NetworkFile::new(net.clone())).as_bytes(),
                )?;
                let path = dir.join("raster.png");
                plot::raster_with_dt(
                    &path,
                    &format!(
                        "{} run, seed {}: output spikes",
                        run.name(),
                        first.trained.seed
                    ),
                    &first.evaluation.spikes,
                    self.raster.samples,
                    self.raster.steps,
                    net.neurons(),
                    net.dt,
                )
                .map_err(files::write_error(&path))?;
            }
            for r in results {
                let seed_dir = dir.join(format!("seed{}", r.trained.seed));
                let net = &r.trained.network;
                files::write_atomic(
                    &seed_dir.join("network.json"),
                    write_network(&NetworkFile::new(net.clone())).as_bytes(),
                )?;
                let q = quantization::quantized_file(
                    &r.quantized.quantized,
                    QuantMethod::Alternating,
                    net,
                );
                files::write_atomic(
                    &seed_dir.join("quantized.json"),
                    write_quantized(&q).as_bytes(),
                )?;
                curves.push((
                    format!("{} seed {}", run.name(), r.trained.seed),
                    r.trained.losses.clone(),
                ));
            }
        }
        let path = out.join("loss.png");
        plot::loss_curves(&path, "training loss", &curves).map_err(files::write_error(&path))?;
        files::write_atomic(
            &out.join("metrics.json"),
            serde_json::to_string_pretty(&self.metrics_json(config))
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The results for people: per seed the loss, counts, classification and robustness, float and
    /// 4-bit, then the robustness over seeds.
    pub fn table(&self, config: &Config) -> String {
        let mut s = String::new();
        let levels: Vec<String> = config
            .evaluation
            .percents
            .iter()
            .map(|p| format!("{p}%"))
            .collect();
        s.push_str(&format!(
            "\n{:<6} {:>5} {:>10} {:<18} {:>8} {}  {:>8}\n",
            "run",
            "seed",
            "final loss",
            "counts",
            "correct",
            levels.iter().map(|l| format!("{l:>6}")).collect::<String>(),
            "it/s"
        ));
        for (run, results) in &self.runs {
            for r in results {
                s.push_str(&format!(
                    "{}  {:>8.0}\n",
                    table_row(
                        run.name(),
                        &r.trained.seed.to_string(),
                        r.final_loss,
                        &r.evaluation
                    ),
                    r.trained.iterations_per_second
                ));
                let q = &r.quantized;
                s.push_str(&format!(
                    "{}  weight error {:.1}%{}\n",
                    table_row(" 4-bit", "", q.final_loss, &q.evaluation),
                    q.quantized.relative_rms_error * 100.0,
                    q.autoencoder.map_or(String::new(), |(e, c)| format!(
                        " (Rockpool's autoencoder: {:.1}%, {})",
                        e * 100.0,
                        if c { "classifies" } else { "does not classify" }
                    ))
                ));
                if let Some(m) = &r.without_inhibition {
                    let counts: Vec<String> = m
                        .counts
                        .iter()
                        .map(|c| format!("{:?}", c.iter().map(|&x| x as i64).collect::<Vec<_>>()))
                        .collect();
                    s.push_str(&format!(
                        " no inh {:>16} {:<18} {:>8}  (negative weights set to 0)\n",
                        "",
                        counts.join(""),
                        if m.correct { "yes" } else { "no" }
                    ));
                }
            }
        }
        s.push_str(&format!(
            "\nrobustness = share of {} simulated chips per level (frozen mismatch, sigma = level / 3) on which every pattern is classified correctly\n",
            config.evaluation.chips
        ));
        for (run, results) in &self.runs {
            let fractions = |p: u32| results.iter().map(move |r| robustness_of(&r.evaluation, p));
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
            s.push_str(&format!(
                "{:<6} mean over seeds {}; worst seed {}\n",
                run.name(),
                all.join(", "),
                worst.join(" / ")
            ));
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
            s.push_str(&format!(
                "{:<6} 4-bit, mean over seeds {}\n",
                "",
                q_all.join(", ")
            ));
        }
        s
    }
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

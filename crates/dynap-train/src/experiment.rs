//! The paper's frozen-noise experiment, end to end: rasters, network initialisation, mismatch-aware
//! training with Adam on dfdx's tape, checkpoints that resume bit for bit, and evaluation (counts,
//! classification, firing-rate ratio, MSE, and robustness over many simulated chips).

use crate::checkpoint::{self, Checkpoint};
use crate::config::{Config, LossKind};
use crate::error::Error;
use crate::files;
use crate::progress::Stage;
use crate::task::{self, Metrics, Raster};
use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer, WeightFactors};
use dynap_mismatch::{Mismatch, monte_carlo};
use dynap_model::{ChipSynapses, Input, Matrix, Network, RunOptions, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;

/// The two runs of the default experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// Without noise injection.
    Plain,
    /// With the configured noise injection.
    Noise,
}

impl Run {
    /// The run's name in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Run::Plain => "plain",
            Run::Noise => "noise",
        }
    }
}

/// The task's input rasters (one pattern per class) for a configuration.
pub fn rasters(config: &Config) -> Raster {
    let t = &config.task;
    if t.raster == crate::config::RasterSource::Seed2022 {
        return task::seed2022().raster;
    }
    // Poisson counts with mean rate * dt per bin (Knuth's method: the rates here are small).
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let lambda = t.rate_hz * config.network.dt;
    let limit = (-lambda).exp();
    let data = (0..t.classes * t.steps * t.channels)
        .map(|_| {
            let (mut k, mut p) = (0u32, 1.0f64);
            loop {
                p *= rng.r#gen::<f64>();
                if p <= limit {
                    break f64::from(k);
                }
                k += 1;
            }
        })
        .collect();
    Raster {
        samples: t.classes,
        steps: t.steps,
        channels: t.channels,
        data,
    }
}

/// The untrained network of a seed: Rockpool's defaults, `Iscale` and `dt` from the configuration, and
/// Kaiming-uniform weights (`U(-sqrt(6/fan_in), +sqrt(6/fan_in))`, Rockpool's initialisation).
pub fn initial_network(config: &Config, seed: u64) -> Network {
    let (n, n_in) = (config.neurons(), config.task.channels);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut uniform = |rows: usize, cols: usize, fan_in: usize| {
        let b = (6.0 / fan_in as f64).sqrt();
        let data = (0..rows * cols)
            .map(|_| f64::from(((rng.r#gen::<f64>() * 2.0 - 1.0) * b) as f32))
            .collect();
        Matrix::from_vec(rows, cols, data).expect("shape")
    };
    let mut net = Network::with_defaults(n);
    if config.network.variant == crate::config::ModelVariant::Chip {
        net.variant = Variant::Chip;
        net.chip = Some(ChipSynapses::defaults(n));
    }
    net.w_in = Some(uniform(n_in, n, n_in));
    net.w_rec = if config.network.recurrent {
        uniform(n, n, n)
    } else {
        Matrix::zeros(n, n)
    };
    net.i_scale = config.network.iscale;
    net.dt = config.network.dt;
    if config.training.bias_codes {
        crate::fit::snap_currents(&mut net);
    }
    net
}

/// How training differentiates a spike (`training.surrogate`).
pub fn spike_function(config: &Config) -> dynap_model::SpikeFunction {
    match config.training.surrogate {
        crate::config::Surrogate::Rockpool => dynap_model::SpikeFunction::Rockpool,
        crate::config::Surrogate::FastSigmoid => dynap_model::SpikeFunction::FastSigmoid {
            k: config.training.surrogate_steepness,
        },
    }
}

/// The loss of a batch of patterns (`classes[b]` is pattern b's class).
fn loss_for(config: &Config, classes: &[usize], steps: usize, n: usize) -> Loss {
    match config.training.loss {
        LossKind::CountMse => {
            // One target per neuron, so every pattern of the batch shares it: used with one class per
            // step, a batch of several patterns averages their targets (documented in the README).
            let rate = config.training.target_rate_hz * config.network.dt * steps as f64;
            let mut target = vec![0.0; n];
            for &c in classes {
                target[c] += rate / classes.len() as f64;
            }
            Loss::CountMse { target }
        }
        LossKind::RateCrossEntropy => Loss::RateCrossEntropy {
            class: classes.to_vec(),
        },
        // Neuron c is class c's.
        LossKind::CountCrossEntropy => Loss::CountCrossEntropy {
            class: classes.to_vec(),
            readout: 0..config.task.classes,
            classes: config.task.classes,
            temperature: config.training.temperature,
            activity: config
                .training
                .activity
                .as_ref()
                .map(|a| dynap_autodiff::Activity {
                    min: a.min,
                    max: a.max,
                    weight: a.weight,
                }),
        },
        // (`count_regression` needs regression data: `Config::validate` refuses it here.)
        LossKind::RasterMse | LossKind::CountRegression => {
            let mut target = vec![0.0; classes.len() * steps * n];
            for (b, &c) in classes.iter().enumerate() {
                for t in 0..steps {
                    target[(b * steps + t) * n + c] = 1.0;
                }
            }
            Loss::RasterMse { target }
        }
    }
}

/// One trained seed.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The seed.
    pub seed: u64,
    /// The trained network.
    pub network: Network,
    /// Loss of every iteration.
    pub losses: Vec<f64>,
    /// Iterations per second of this training (iterations of this session only, when resumed).
    pub iterations_per_second: f64,
}

/// The frozen-mismatch chip seed of redraw block `block` of a training seed (independent of the
/// evaluation chips, which start at `evaluation.seed`).
fn noise_seed(seed: u64, block: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (block as u64).wrapping_add(0x5851_F42D_4C95_7F2D)
}

/// Trains one seed of one run. With `checkpoint`, writes the state there every
/// `training.checkpoint_every` iterations (atomically) and, when `resume` is set and the file exists,
/// continues from it (refusing a damaged checkpoint or one of another configuration, naming the
/// key); the result is then bit-identical to an uninterrupted training. `stage` advances by one per
/// iteration and shows the latest loss.
pub fn train(
    config: &Config,
    raster: &Raster,
    run: Run,
    seed: u64,
    checkpoint: Option<&Path>,
    resume: bool,
    stage: &Stage,
) -> Result<Trained, Error> {
    let base = initial_network(config, seed);
    let n = base.neurons();
    let steps = raster.steps;
    let mut trainer = Trainer::<f32>::new(
        base.clone(),
        CurrentTraining::none(),
        config.training.learning_rate,
    )?
    .with_threads(1)
    .with_spike_function(spike_function(config));
    let mut losses = Vec::with_capacity(config.training.iterations);
    let mut start_iteration = 0;
    if let (Some(path), true) = (checkpoint, resume)
        && path.exists()
    {
        let refuse = |error| Error::Checkpoint {
            path: path.to_owned(),
            error,
        };
        let c = checkpoint::decode(&files::read_bytes(path)?).map_err(refuse)?;
        checkpoint::check_belongs(&c, run.name(), seed, config).map_err(refuse)?;
        trainer.restore(c.state)?;
        losses = c.losses;
        start_iteration = c.iteration;
        stage.inc(start_iteration as u64);
        tracing::info!(
            "{} seed {seed}: resumed at iteration {start_iteration} from {}",
            run.name(),
            path.display()
        );
    } else if resume {
        tracing::warn!(
            "{} seed {seed}: no checkpoint to resume from, training from the start",
            run.name()
        );
    }
    let all: Vec<usize> = (0..raster.samples).collect();
    let batch = if config.training.batch_size == 0 {
        raster.samples
    } else {
        config.training.batch_size
    };
    let noise = run == Run::Noise;
    let full = SpikeInput::new(
        raster.data.iter().map(|&v| v as f32).collect(),
        raster.samples,
        steps,
        raster.channels,
    )?;
    let started = Instant::now();
    let mut block = usize::MAX;
    let q_start = config
        .training
        .iterations
        .saturating_sub(config.training.quantized_iterations);
    let core_map = crate::quantization::default_core_map(n);
    for it in start_iteration..config.training.iterations {
        // Frozen mismatch of the simulation parameters, redrawn every `redraw_every` iterations: the
        // forward pass runs on that chip, the gradients reach the clean weights.
        if noise && config.noise.frozen_percent > 0.0 && it / config.noise.redraw_every != block {
            block = it / config.noise.redraw_every;
            let chip =
                Mismatch::new(config.noise.frozen_percent).frozen(&base, noise_seed(seed, block));
            trainer.simulate_on(Some(&chip))?;
        }
        // The patterns of this step: all of them, or a minibatch drawn from (seed, iteration).
        let classes: Vec<usize> = if batch == raster.samples {
            all.clone()
        } else {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (it as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut pool = all.clone();
            (0..batch)
                .map(|_| pool.swap_remove(rng.r#gen_range(0..pool.len())))
                .collect()
        };
        // The full batch is the same input every step (held once); a minibatch is gathered.
        let gathered;
        let x = if batch == raster.samples {
            &full
        } else {
            let len = steps * raster.channels;
            let data = classes
                .iter()
                .flat_map(|&c| {
                    raster.data[c * len..(c + 1) * len]
                        .iter()
                        .map(|&v| v as f32)
                })
                .collect();
            gathered = SpikeInput::new(data, classes.len(), steps, raster.channels)?;
            &gathered
        };
        let loss = loss_for(config, &classes, steps, n);
        // Dynamic weight noise, every iteration: forward with w (1 + sigma z), d/dw = factor d/dw'.
        let factors = if noise && config.noise.dynamic_percent > 0.0 {
            let (_, f_in, f_rec) = Mismatch::new(config.noise.dynamic_percent)
                .dynamic(&trainer.simulated_network(), noise_seed(seed, it) ^ 1);
            Some(WeightFactors {
                w_in: f_in.unwrap_or_default(),
                w_rec: f_rec,
            })
        } else {
            None
        };
        // The loss fused into the layer's pass (the same bits as `loss_on_tape` on its output); the
        // last `quantized_iterations` through the chip's 4-bit weights.
        let loss_value = if it >= q_start {
            crate::fit::quantized_step(&mut trainer, &core_map, x, &loss, factors.as_ref())?
        } else {
            trainer.step(x, &loss, factors.as_ref())?
        };
        losses.push(loss_value);
        stage.inc(1);
        if it % 64 == 0 {
            stage.set_message(format!("loss {loss_value:.4}"));
        }
        let every = config.training.checkpoint_every;
        if let Some(path) = checkpoint
            && every > 0
            && ((it + 1) % every == 0 || it + 1 == config.training.iterations)
        {
            let c = Checkpoint {
                run: run.name().to_owned(),
                seed,
                iteration: it + 1,
                state: trainer.state(),
                losses: losses.clone(),
                config: config.to_toml(),
                extra: String::new(),
            };
            files::write_atomic(path, &checkpoint::encode(&c))?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = config.training.iterations - start_iteration;
    Ok(Trained {
        seed,
        // The trained weights on the nominal (mismatch-free) network.
        network: trainer.network(),
        losses,
        iterations_per_second: if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        },
    })
}

/// A network's task metrics on the nominal chip, and the fraction of simulated chips on which every
/// pattern is classified correctly, per mismatch level.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Metrics on the nominal network (counts, correct, FRR, MSE).
    pub nominal: Metrics,
    /// Output spikes of the nominal network `[class, step, neuron]`.
    pub spikes: Vec<f64>,
    /// `(percent, fraction of chips correct)`.
    pub robustness: Vec<(u32, f64)>,
}

/// Simulates `net` (f32, as trained, either variant) on every pattern and returns the spikes
/// `[class, step, neuron]`.
pub fn simulate_patterns(net: &Network, raster: &Raster) -> Result<Vec<f64>, dynap_model::Error> {
    let data: Vec<f32> = raster.data.iter().map(|&v| v as f32).collect();
    let input = Input::Spikes {
        data: &data,
        batch: raster.samples,
        steps: raster.steps,
    };
    let spikes = dynap_model::simulate_spikes(
        net,
        input,
        &RunOptions {
            threads: 1,
            ..RunOptions::default()
        },
    )?;
    Ok(spikes.iter().map(|&s| f64::from(s)).collect())
}

/// Evaluates a trained network: nominal metrics, and robustness over `evaluation.chips` simulated
/// chips at each level (chip `k` is seed `evaluation.seed + k`, the same chips for every network).
pub fn evaluate(
    config: &Config,
    net: &Network,
    raster: &Raster,
    threads: usize,
) -> Result<Evaluation, dynap_model::Error> {
    let n = net.neurons();
    let spikes = simulate_patterns(net, raster)?;
    let nominal = task::metrics(&spikes, raster.samples, raster.steps, n);
    let mut robustness = Vec::new();
    for &percent in &config.evaluation.percents {
        let m = Mismatch::new(f64::from(percent) / 100.0);
        let correct = monte_carlo(config.evaluation.chips, threads, |k| {
            let chip = m.frozen(net, config.evaluation.seed + k as u64);
            simulate_patterns(&chip, raster)
                .map(|s| task::metrics(&s, raster.samples, raster.steps, n).correct)
        });
        let ok = correct.into_iter().collect::<Result<Vec<bool>, _>>()?;
        let frac = ok.iter().filter(|&&c| c).count() as f64 / ok.len().max(1) as f64;
        robustness.push((percent, frac));
    }
    Ok(Evaluation {
        nominal,
        spikes,
        robustness,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(iterations: usize) -> Config {
        let mut c = Config::default();
        c.task.raster = crate::config::RasterSource::Generated;
        c.task.steps = 120;
        c.task.channels = 20;
        c.training.iterations = iterations;
        c.training.checkpoint_every = 10;
        c.noise.redraw_every = 15;
        c.noise.dynamic_percent = 0.1;
        c
    }

    #[test]
    fn a_resumed_training_ends_bit_identical_to_an_uninterrupted_one() {
        let dir = std::env::temp_dir().join(format!("dynap-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raster = rasters(&small(40));
        let progress = crate::progress::Progress::hidden().stage("test", 0, "iterations");
        let whole = train(&small(40), &raster, Run::Noise, 3, None, false, &progress).unwrap();
        // "Killed" after 20 iterations: the checkpoint holds iteration 20; then resumed to 40.
        let ckpt = dir.join("seed3.checkpoint");
        train(
            &small(20),
            &raster,
            Run::Noise,
            3,
            Some(&ckpt),
            false,
            &progress,
        )
        .unwrap();
        let bytes = std::fs::read(&ckpt).unwrap();
        assert_eq!(checkpoint::decode(&bytes).unwrap().iteration, 20);
        let resumed = train(
            &small(40),
            &raster,
            Run::Noise,
            3,
            Some(&ckpt),
            true,
            &progress,
        )
        .unwrap();
        assert_eq!(resumed.network, whole.network);
        assert_eq!(resumed.losses, whole.losses);
        // A checkpoint of another configuration is refused with a reason.
        let mut other = small(40);
        other.task.channels = 10;
        let e = train(
            &other,
            &rasters(&other),
            Run::Noise,
            3,
            Some(&ckpt),
            true,
            &progress,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Checkpoint { error: checkpoint::CheckpointError::Differs { key, .. }, .. } if key == "task.channels"),
            "{e}"
        );
        // A corrupted checkpoint is refused, never a silent restart.
        let mut bytes = std::fs::read(&ckpt).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&ckpt, &bytes).unwrap();
        let e = train(
            &small(40),
            &raster,
            Run::Noise,
            3,
            Some(&ckpt),
            true,
            &progress,
        )
        .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Checkpoint {
                    error: checkpoint::CheckpointError::Checksum { .. },
                    ..
                }
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_bits() {
        let raster = rasters(&small(12));
        let p = crate::progress::Progress::hidden().stage("test", 0, "iterations");
        let a = train(&small(12), &raster, Run::Plain, 5, None, false, &p).unwrap();
        let b = train(&small(12), &raster, Run::Plain, 5, None, false, &p).unwrap();
        assert_eq!(a.network, b.network);
        assert_ne!(
            a.network,
            initial_network(&small(12), 5),
            "training moved the weights"
        );
    }

    #[test]
    fn the_chip_variant_trains_to_discriminate_and_its_inhibition_matters() {
        let mut c = small(400);
        c.network.variant = crate::config::ModelVariant::Chip;
        let raster = rasters(&c);
        let p = crate::progress::Progress::hidden().stage("test", 0, "iterations");
        let t = train(&c, &raster, Run::Plain, 0, None, false, &p).unwrap();
        assert_eq!(t.network.variant, dynap_model::Variant::Chip);
        let spikes = simulate_patterns(&t.network, &raster).unwrap();
        let m = task::metrics(&spikes, raster.samples, raster.steps, t.network.neurons());
        assert!(m.correct, "{:?}", m.counts);
        // The trained network has inhibitory weights, and they do work: the other neuron's
        // count rises when they are removed.
        let mut excitatory = t.network.clone();
        for w in excitatory
            .w_rec
            .as_mut_slice()
            .iter_mut()
            .chain(excitatory.w_in.as_mut().unwrap().as_mut_slice().iter_mut())
        {
            *w = w.max(0.0);
        }
        let loose = simulate_patterns(&excitatory, &raster).unwrap();
        let lm = task::metrics(&loose, raster.samples, raster.steps, t.network.neurons());
        let others = |m: &Metrics| m.counts[0][1] + m.counts[1][0];
        assert!(
            others(&lm) > others(&m),
            "{:?} vs {:?}",
            lm.counts,
            m.counts
        );
    }
}

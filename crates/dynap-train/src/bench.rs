//! The benchmark workload shared by `dynap bench` (and so `cargo xtask bench`) and the criterion
//! benches: the setting of `benches/reference/bench_rockpool.py`, Rockpool's timing baseline.
//!
//! `LinearJax(60 -> N, no bias) + DynapSim(N, recurrent)`, default currents, dt = 1 ms, T = 1000,
//! `w_in ~ N(0, 0.5)` at 30 % density, `w_rec ~ N(0, 0.3)` at 10 % density, Bernoulli(0.05) input
//! spikes. The draws come from our own seeded ChaCha stream (NumPy's cannot be reproduced), so the
//! networks are statistically, not numerically, the same as Rockpool's.

use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
use dynap_model::{Input, Matrix, Network, Recording, RunOptions, Simulator};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// Input channels of the benchmark.
pub const BENCH_INPUTS: usize = 60;
/// Time steps of the benchmark.
pub const BENCH_STEPS: usize = 1000;
/// The benchmark's rows `(N, batch)`: N in {16, 64, 256} x batch {1, 8}, and one full chip.
pub const BENCH_ROWS: [(usize, usize); 7] = [
    (16, 1),
    (16, 8),
    (64, 1),
    (64, 8),
    (256, 1),
    (256, 8),
    (1024, 1),
];

/// The sparse rows `(N, fan-in)`: a full chip and a full board, every neuron with 64 connections
/// (the chip's CAM entries), batch 1.
pub const FANIN_ROWS: [(usize, usize); 2] = [(1024, 64), (4096, 64)];

/// The benchmark network with `n` neurons and `fanin` connections into each neuron, drawn without
/// replacement from the 60 inputs and the `n` neurons (inputs `N(0, 0.5)`, recurrent `N(0, 0.3)`), as
/// `bench_rockpool.py --fanin` draws it; seeded.
pub fn bench_network_fanin(n: usize, fanin: usize, seed: u64) -> Network {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(n as u64) ^ 0xFA41);
    let sources = BENCH_INPUTS + n;
    let mut w_in = vec![0.0; BENCH_INPUTS * n];
    let mut w_rec = vec![0.0; n * n];
    let mut pool: Vec<usize> = Vec::with_capacity(sources);
    for j in 0..n {
        pool.clear();
        pool.extend(0..sources);
        for _ in 0..fanin.min(sources) {
            let s = pool.swap_remove(rng.r#gen_range(0..pool.len()));
            if s < BENCH_INPUTS {
                w_in[s * n + j] = f64::from((normal(&mut rng) * 0.5) as f32);
            } else {
                w_rec[(s - BENCH_INPUTS) * n + j] = f64::from((normal(&mut rng) * 0.3) as f32);
            }
        }
    }
    let mut net = Network::with_defaults(n);
    net.w_in = Some(Matrix::from_vec(BENCH_INPUTS, n, w_in).expect("shape"));
    net.w_rec = Matrix::from_vec(n, n, w_rec).expect("shape");
    net
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; one of the pair is enough here.
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The benchmark network with `n` neurons, seeded.
pub fn bench_network(n: usize, seed: u64) -> Network {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(n as u64));
    let mut sparse = |rows: usize, cols: usize, sigma: f64, density: f64| {
        let data = (0..rows * cols)
            .map(|_| {
                let w = normal(&mut rng) * sigma;
                if rng.r#gen::<f64>() < density {
                    f64::from(w as f32)
                } else {
                    0.0
                }
            })
            .collect();
        Matrix::from_vec(rows, cols, data).expect("shape is consistent")
    };
    let w_in = sparse(BENCH_INPUTS, n, 0.5, 0.3);
    let w_rec = sparse(n, n, 0.3, 0.1);
    let mut net = Network::with_defaults(n);
    net.w_in = Some(w_in);
    net.w_rec = w_rec;
    net
}

/// Bernoulli(0.05) input spikes `[batch, steps, 60]`, seeded.
pub fn bench_input(batch: usize, steps: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    (0..batch * steps * BENCH_INPUTS)
        .map(|_| f32::from(u8::from(rng.r#gen::<f64>() < 0.05)))
        .collect()
}

/// One measured row.
#[derive(Clone, Debug, PartialEq)]
pub struct RowTiming {
    /// Neurons.
    pub n: usize,
    /// Batch size.
    pub batch: usize,
    /// Time steps.
    pub steps: usize,
    /// Median forward time over the repetitions.
    pub fwd: Duration,
    /// Median time of the value and gradient (forward, loss, backward) over the repetitions.
    pub fwdbwd: Duration,
    /// Output spikes of one forward run (a sanity figure: the network is neither silent nor saturated).
    pub spikes: f64,
}

/// Runs `f` once, then again until [`WARM_UP`] has passed, before anything is timed: Rockpool's timings
/// are taken after compiling the function and one call, seconds of work that leave the processor's
/// caches, branch predictors and clock warm; a small network's single call (well under a millisecond)
/// does not.
fn warm_up(f: &mut dyn FnMut()) {
    let start = Instant::now();
    f();
    while start.elapsed() < WARM_UP {
        f();
    }
}

/// How long `warm_up` runs a timed function before timing it.
pub const WARM_UP: Duration = Duration::from_millis(200);

/// Times the forward pass (f32, spikes only, as Rockpool's `record=False`) `reps` times after a
/// warm-up (see `warm_up`), on `threads` threads (0: one per core), and returns the median.
pub fn time_forward(n: usize, batch: usize, reps: usize, threads: usize) -> RowTiming {
    time_forward_of(&bench_network(n, 0), batch, reps, threads, false)
}

/// [`time_forward`] of the network with `fanin` connections into each neuron
/// ([`bench_network_fanin`]).
pub fn time_forward_fanin(
    n: usize,
    fanin: usize,
    batch: usize,
    reps: usize,
    threads: usize,
) -> RowTiming {
    time_forward_of(
        &bench_network_fanin(n, fanin, 0),
        batch,
        reps,
        threads,
        true,
    )
}

/// `masked`: the value and gradient train the network's connections only (its non-zero weights are
/// the masks, as a fan-in-limited chip network's are), not every entry of the dense matrices.
fn time_forward_of(
    net: &Network,
    batch: usize,
    reps: usize,
    threads: usize,
    masked: bool,
) -> RowTiming {
    let n = net.neurons();
    let input = bench_input(batch, BENCH_STEPS, n as u64);
    let (fwd, spikes) = time_runs(net, &input, batch, reps, threads, Recording::Spikes);
    let fwdbwd = time_value_and_grad(net, &input, batch, reps, threads, masked);
    RowTiming {
        n,
        batch,
        steps: BENCH_STEPS,
        fwd,
        fwdbwd,
        spikes,
    }
}

/// The median forward time of `net` on the benchmark input with every trace recorded, after a
/// warm-up (as `time_runs` times it).
pub fn time_forward_recorded(net: &Network, batch: usize, reps: usize, threads: usize) -> Duration {
    let input = bench_input(batch, BENCH_STEPS, net.neurons() as u64);
    time_runs(net, &input, batch, reps, threads, Recording::Full).0
}

/// The median time of `reps` forward runs of `net` on `input` (f32, recording `recording`) after a
/// warm-up (see `warm_up`), and the output spikes of one run. Each call writes into the previous
/// call's output memory, as a simulation loop does (Rockpool's outputs come from XLA's allocator,
/// which does not clear them either); that memory is freed on return.
fn time_runs(
    net: &Network,
    input: &[f32],
    batch: usize,
    reps: usize,
    threads: usize,
    recording: Recording,
) -> (Duration, f64) {
    let sim = Simulator::<f32>::new(net).expect("the benchmark network is valid");
    let options = RunOptions { threads, recording };
    let kept = std::cell::RefCell::new(None);
    let run = || {
        let reuse = kept.borrow_mut().take();
        let trace = sim
            .run_reusing(
                Input::Spikes {
                    data: input,
                    batch,
                    steps: BENCH_STEPS,
                },
                None,
                &options,
                reuse,
            )
            .expect("the benchmark input fits");
        *kept.borrow_mut() = Some(std::hint::black_box(trace));
    };
    run();
    let spikes = kept
        .borrow()
        .as_ref()
        .map_or(0.0, |t| t.spikes.iter().map(|&s| f64::from(s)).sum());
    warm_up(&mut || run());
    let mut times: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], spikes)
}

/// What `bench_rockpool.py` times as `vg`: the value and gradient of
/// `mean over b, n of (sum_t s[b,t,n] - 5)^2` with respect to both weight matrices, here through the
/// training path (the dfdx layer, its fused adjoint and the loss on the tape). Median of `reps` after
/// a warm-up (see `warm_up`). `masked`: with the network's non-zero weights as the trainer's masks.
fn time_value_and_grad(
    net: &Network,
    input: &[f32],
    batch: usize,
    reps: usize,
    threads: usize,
    masked: bool,
) -> Duration {
    let mut trainer = Trainer::<f32>::new(net.clone(), CurrentTraining::none(), 1e-2)
        .expect("the benchmark network is valid")
        .with_threads(threads);
    if masked {
        let support = |w: &[f64]| w.iter().map(|&v| v != 0.0).collect();
        trainer = trainer
            .with_masks(dynap_model::Masks {
                w_in: net
                    .w_in
                    .as_ref()
                    .map_or(Vec::new(), |m| support(m.as_slice())),
                w_rec: support(net.w_rec.as_slice()),
            })
            .expect("the network's own support holds it");
    }
    // The input is held once, as a training loop holds its data set (and as Rockpool's benchmark passes
    // one device array to every call).
    let x = SpikeInput::new(input.to_vec(), batch, BENCH_STEPS, BENCH_INPUTS)
        .expect("the benchmark input fits");
    let loss = Loss::CountMse {
        target: vec![5.0; net.neurons()],
    };
    let once = || {
        std::hint::black_box(
            trainer
                .value_and_gradient(&x, &loss)
                .expect("the benchmark input and target fit"),
        )
    };
    warm_up(&mut || {
        once();
    });
    let mut times: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`); `None` elsewhere.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Training iterations per second of the paper's frozen-noise network (the default experiment's `plain`
/// run, one seed, on one core): Adam steps of forward, loss and backward through the dfdx layer. Measured
/// as `train_rockpool.py` measures Rockpool: the median rate of `blocks` timed blocks of `iterations`
/// steps each.
pub fn training_rate(iterations: usize, blocks: usize) -> f64 {
    let mut config = crate::config::Config::default();
    config.training.iterations = iterations;
    config.training.seeds = vec![0];
    config.training.checkpoint_every = 0;
    let raster = crate::experiment::rasters(&config);
    let progress = crate::progress::Progress::hidden().stage("bench-train", 0, "iterations");
    let mut rates: Vec<f64> = (0..blocks.max(1))
        .map(|_| {
            crate::experiment::train(
                &config,
                &raster,
                crate::experiment::Run::Plain,
                0,
                None,
                false,
                &progress,
            )
            .map_or(f64::NAN, |t| t.iterations_per_second)
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The quantization workload of DESIGN.md: a dense 60 x 256 input matrix and a dense 256 x 256
/// recurrent matrix (N(0, 1) weights, like trained networks), all 256 neurons on one core, seeded.
pub fn quant_workload(seed: u64) -> (Matrix, Matrix) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dense = |rows: usize, cols: usize| {
        let data = (0..rows * cols)
            .map(|_| f64::from(normal(&mut rng) as f32))
            .collect();
        Matrix::from_vec(rows, cols, data).expect("shape is consistent")
    };
    (dense(BENCH_INPUTS, 256), dense(256, 256))
}

/// Timing and quality of the quantizers on [`quant_workload`].
#[derive(Clone, Debug, PartialEq)]
pub struct QuantTiming {
    /// Median time of the default quantizer (alternating, snapped).
    pub alternating: Duration,
    /// Its relative RMS weight error before and after snapping.
    pub alternating_error: (f64, f64),
    /// Time of Rockpool's autoencoder (our faithful port; 3000 epochs at step 1e-3, as the golden
    /// cases; its default early stopping needs tens of thousands of epochs).
    pub autoencoder: Duration,
    /// Its relative RMS weight error (unsnapped).
    pub autoencoder_error: f64,
}

/// Times the quantizers on [`quant_workload`] (`reps` runs of the default one).
pub fn time_quantize(reps: usize) -> QuantTiming {
    let (w_in, w_rec) = quant_workload(0);
    let map = vec![0; 256];
    let mut times = Vec::new();
    let mut q = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        q = Some(
            dynap_quant::quantize(
                Some(&w_in),
                Some(&w_rec),
                &map,
                1e-8,
                &dynap_quant::Options::default(),
            )
            .expect("valid workload"),
        );
        times.push(t.elapsed());
    }
    times.sort();
    let q = q.expect("one run");
    let options = dynap_quant::AutoencoderOptions {
        fixed_epoch: true,
        num_epoch: 3000,
        step_size: 1e-3,
        ..Default::default()
    };
    let t = Instant::now();
    let ae = dynap_quant::quantize(
        Some(&w_in),
        Some(&w_rec),
        &map,
        1e-8,
        &dynap_quant::Options {
            method: dynap_quant::Method::Autoencoder {
                options,
                init: Default::default(),
            },
            snap: None,
        },
    )
    .expect("valid workload");
    let autoencoder = t.elapsed();
    QuantTiming {
        alternating: times[times.len() / 2],
        alternating_error: (q.cores[0].error_before_snap, q.cores[0].error_after_snap),
        autoencoder,
        autoencoder_error: ae.relative_rms_error,
    }
}

/// A full board: 4 chips x 1024 neurons, all used, 60 input channels; each neuron receives about 12
/// connections from its own core and the next one and about 2 from the inputs. Seeded.
pub fn board_workload(seed: u64) -> (dynap_model::QuantizedWeights, dynap_model::NeuronParams) {
    use dynap_model::{QuantMatrix, QuantizedWeights, WeightMatrix};
    let n = 4096;
    let cores = 16;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let core_map: Vec<usize> = (0..n).map(|j| j / 256).collect();
    let mut w_in = (vec![0u8; BENCH_INPUTS * n], vec![0i8; BENCH_INPUTS * n]);
    let mut w_rec = (vec![0u8; n * n], vec![0i8; n * n]);
    for (post, &g) in core_map.iter().enumerate() {
        for _ in 0..2 {
            let i = rng.gen_range(0..BENCH_INPUTS) * n + post;
            w_in.0[i] = rng.gen_range(1..16);
            w_in.1[i] = if rng.r#gen::<bool>() { 1 } else { -1 };
        }
        for _ in 0..12 {
            let src_core = if rng.r#gen::<bool>() {
                g
            } else {
                (g + cores - 1) % cores
            };
            let pre = src_core * 256 + rng.gen_range(0..256);
            let i = pre * n + post;
            w_rec.0[i] = rng.gen_range(1..16);
            w_rec.1[i] = if rng.r#gen::<bool>() { 1 } else { -1 };
        }
    }
    let q = QuantizedWeights::new(
        core_map,
        vec![[1e-9, 2e-9, 4e-9, 8e-9]; cores],
        Some(
            QuantMatrix::new(WeightMatrix::Input, BENCH_INPUTS, n, w_in.0, w_in.1).expect("valid"),
        ),
        QuantMatrix::new(WeightMatrix::Recurrent, n, n, w_rec.0, w_rec.1).expect("valid"),
        1e-8,
    )
    .expect("valid workload");
    (q, dynap_model::NeuronParams::defaults(n))
}

/// Mapping and encoding [`board_workload`].
#[derive(Clone, Debug, PartialEq)]
pub struct BoardTiming {
    /// Mapping (placement, tags, CAM, SRAM, biases, validation).
    pub map: Duration,
    /// samna JSON encoding.
    pub json: Duration,
    /// Binary encoding.
    pub binary: Duration,
    /// JSON size (bytes).
    pub json_bytes: usize,
    /// Binary size (bytes).
    pub binary_bytes: usize,
}

/// Times mapping and encoding a full board (medians of `reps`).
pub fn time_board(reps: usize) -> BoardTiming {
    let (q, p) = board_workload(0);
    let opts = dynap_config::MapOptions::default();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut m, mut j, mut b) = (Vec::new(), Vec::new(), Vec::new());
    let (mut json_bytes, mut binary_bytes) = (0, 0);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let mapped = dynap_config::map(&q, &p, 1e-3, dynap_model::Variant::Rockpool, &opts)
            .expect("the workload fits");
        m.push(t.elapsed());
        let t = Instant::now();
        json_bytes = dynap_config::to_json(&mapped.config).len();
        j.push(t.elapsed());
        let t = Instant::now();
        binary_bytes = dynap_config::to_binary(&mapped.config).len();
        b.push(t.elapsed());
    }
    BoardTiming {
        map: median(m),
        json: median(j),
        binary: median(b),
        json_bytes,
        binary_bytes,
    }
}

/// Medians of the two model variants on the same network and input (the benchmark's, N neurons,
/// batch, T = 1000): forward, and forward + backward (the gradient of a spike-count MSE through the
/// model crate's fused passes, without the dfdx layer, so that only the kernels differ).
#[derive(Clone, Debug, PartialEq)]
pub struct VariantTiming {
    /// `rockpool` forward, forward + backward.
    pub rockpool: (Duration, Duration),
    /// `chip` forward, forward + backward.
    pub chip: (Duration, Duration),
}

/// Times both variants (see [`VariantTiming`]), `reps` repetitions after a warm-up each (see
/// `warm_up`).
pub fn time_variants(n: usize, batch: usize, reps: usize) -> VariantTiming {
    use dynap_model::{
        ChipOutputGradients, ChipSimulator, GradientOptions, OutputGradients, Variant,
    };
    let net = bench_network(n, 0);
    let mut chip_net = net.clone();
    chip_net.variant = Variant::Chip;
    let input = bench_input(batch, BENCH_STEPS, n as u64);
    let x = Input::Spikes {
        data: &input,
        batch,
        steps: BENCH_STEPS,
    };
    let options = RunOptions::default();
    let median = |f: &mut dyn FnMut()| {
        warm_up(f);
        let mut t: Vec<Duration> = (0..reps.max(1))
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed()
            })
            .collect();
        t.sort();
        t[t.len() / 2]
    };
    // d loss / d spikes of mean((count - 5)^2), the same for both.
    let grad = |spikes: &[f32]| -> Vec<f32> {
        let mut g = vec![0.0f32; spikes.len()];
        for b in 0..batch {
            for j in 0..n {
                let c: f32 = (0..BENCH_STEPS)
                    .map(|t| spikes[(b * BENCH_STEPS + t) * n + j])
                    .sum();
                let d = 2.0 * (c - 5.0) / (batch * n) as f32;
                for t in 0..BENCH_STEPS {
                    g[(b * BENCH_STEPS + t) * n + j] = d;
                }
            }
        }
        g
    };
    let rp = Simulator::<f32>::new(&net).expect("valid");
    let ch = ChipSimulator::<f32>::new(&chip_net).expect("valid");
    let rockpool = (
        median(&mut || {
            std::hint::black_box(rp.run(x, None, &options).expect("fits"));
        }),
        median(&mut || {
            let (trace, tape) = rp.run_taped(x, None, &options, 1).expect("fits");
            let g = grad(&trace.spikes);
            let outs = OutputGradients {
                spikes: Some(&g),
                ..Default::default()
            };
            // The chip variant computes the currents' gradients regardless: both do, for a like
            // comparison.
            let opts = GradientOptions {
                threads: 0,
                input: false,
                currents: true,
            };
            std::hint::black_box(rp.gradient(&tape, x, &outs, &opts).expect("fits"));
        }),
    );
    let chip = (
        median(&mut || {
            std::hint::black_box(ch.run(x, None, &options).expect("fits"));
        }),
        median(&mut || {
            let (trace, tape) = ch.run_taped(x, None, &options).expect("fits");
            let g = grad(&trace.spikes);
            let outs = ChipOutputGradients {
                spikes: Some(&g),
                ..Default::default()
            };
            // The chip variant computes the currents' gradients regardless: both do, for a like
            // comparison.
            let opts = GradientOptions {
                threads: 0,
                input: false,
                currents: true,
            };
            std::hint::black_box(ch.gradient(&tape, x, &outs, &opts).expect("fits"));
        }),
    );
    VariantTiming { rockpool, chip }
}

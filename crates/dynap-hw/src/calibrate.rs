//! Calibration: a chip's neurons measured through their spikes, with only what a board offers.
//!
//! The protocol ([`calibrate`]) goes through a [`Transport`], so it runs on the twin and on a board
//! alike. Every probe is a whole configuration of the cores being calibrated (all their neurons at
//! once, all cores in parallel): the cores' bias codes, the DC latches, one CAM entry per neuron
//! listening to one input tag, and a monitor route per neuron to the host. Stimuli are input events
//! through that tag; measurements are the output spikes' times. Nothing else is read: no analog
//! readout, no register of the chip.
//!
//! In a probe the membrane is a clean integrator (its gain current far above the currents it
//! reaches, its leak at the floor, no spike-frequency adaptation), and the probes follow:
//!
//! 1. **refractory**: a strong DC current and three refractory settings (10, 20 and 40 ms
//!    nominal): the interspike interval grows by the refractory time, so its slope against the
//!    nominal setting is the neuron's `t_ref` factor (a straight-line fit per neuron);
//! 2. **dc**: six DC currents (5 to 60 pA): the interspike intervals are fitted by the model
//!    ([`dynap_model`]'s simulator, the nominal neuron with the measured `t_ref`) with two factors,
//!    on `Idc` (`dc_gain`) and a nuisance factor the intervals also depend on: `Io` (the dark
//!    current, which offsets a weak drive) in Rockpool's model, `kappa_n` (the feedback's exponent)
//!    in the chip's;
//! 3. **synapse**: no DC, input spikes through the CAM every 1, 2 and 4 ms at a fixed weight: the
//!    intervals are fitted with one factor, on `Igain_syn` (`syn_gain`);
//! 4. **inhibition** (the chip's model, whose negative weights reach the GABA dendrite): a 100 pA
//!    DC drive slowed by inhibitory input spikes every 4, 8 and 16 ms: one factor, on the GABA
//!    dendrite's `Igain_gaba` (`gaba_gain`);
//! 5. **leak**: the membrane's leak at 10 pA instead of the floor, DC 25, 40 and 70 pA: one factor,
//!    on `Itau_mem` (`tau_mem`).
//!
//! The derived factors are products of the fitted ones ([`dynap_mismatch::Derived::factor`]); the
//! nuisance factor is written to the profile by its parameter's name but not claimed as measured.
//!
//! The fits are Gauss-Newton on the logarithm of the intervals, with Jacobians by finite differences
//! of the simulator; each step and each uncertainty is a small least-squares problem (faer's QR).
//! The uncertainty of a factor is its standard error from the fit's residual.
//!
//! The time resolution is the probe's step (`step_us`, 100 µs by default, a tenth of the training
//! step): spike times are quantized to it, so intervals of 5 to 100 ms are measured to 0.1 to 2 %.
//! A board's timestamps are 1 µs; the twin simulates at the probe's step.

use crate::error::{HwError, HwProblem};
use crate::host::{PlayOptions, play_spikes};
use crate::transport::Transport;
use dynap_config::format::{ChipProfile, NeuronFactors};
use dynap_config::{CORES, MAX_CHIPS, NEURONS};
use dynap_mismatch::{Derived, Factors, Knob};
use dynap_model::{
    AnySimulator, BiasGenerator, Input, Network, NeuronParams, Param, QuantMatrix,
    QuantizedWeights, RunOptions, Variant, WeightMatrix,
};
use faer::Mat;
use faer::linalg::solvers::{Solve, SolveLstsq};

/// How to calibrate.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    /// The cores to calibrate, as `chip * 4 + core` (every neuron of each).
    pub cores: Vec<usize>,
    /// The probes' time step (µs): the resolution of the spike times.
    pub step_us: u32,
    /// The bias generator that makes the probe currents (the built-in table or a user's own).
    pub generator: BiasGenerator,
    /// Weight scale current (A).
    pub iscale: f64,
    /// The device's neuron model.
    pub variant: Variant,
    /// Gauss-Newton iterations per fit.
    pub iterations: usize,
}

impl CalibrateOptions {
    /// Every core of `chips` chips, 100 µs probes, the built-in bias table, `rockpool` neurons.
    pub fn chips(chips: usize) -> CalibrateOptions {
        CalibrateOptions {
            cores: (0..chips * CORES).collect(),
            step_us: 100,
            generator: BiasGenerator::dynapse2(),
            iscale: dynap_model::DEFAULT_ISCALE,
            variant: Variant::Rockpool,
            iterations: 6,
        }
    }
}

/// What a calibration found.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The chip profile.
    pub profile: ChipProfile,
    /// Root mean square of the fits' residuals (relative interspike interval), per probe.
    pub residuals: Vec<(&'static str, f64)>,
    /// Neurons a probe could not measure (fewer than three spikes in every setting of it): their
    /// factors stay 1, with no uncertainty given.
    pub unmeasured: Vec<(&'static str, usize)>,
}

/// The probe's membrane: a clean integrator (see the module documentation).
const PROBE_CURRENTS: [(Param, f64); 4] = [
    (Param::IgainMem, 1e-7),
    (Param::ItauMem, 1e-13),
    (Param::Ispkthr, 5e-10),
    (Param::IwAhp, 1e-13),
];
/// The refractory probe's DC current (A) and nominal refractory times (s).
const REFRACTORY_DC: f64 = 2e-10;
const REFRACTORY_TIMES: [f64; 3] = [0.01, 0.02, 0.04];
const REFRACTORY_SECONDS: f64 = 0.4;
/// The DC probe's currents (A).
const DC_LEVELS: [f64; 6] = [5e-12, 8e-12, 1.2e-11, 2e-11, 3.5e-11, 6e-11];
const DC_SECONDS: f64 = 0.6;
/// The synapse probe's input periods (s) and base weight current (A, weight 0.02 at Iscale 10 nA).
const SYNAPSE_PERIODS: [f64; 3] = [0.001, 0.002, 0.004];
const SYNAPSE_BASE: f64 = 2e-10;
const SYNAPSE_SECONDS: f64 = 0.6;
/// The inhibition probe's DC drive (A), which the GABA input slows, and its input periods (s).
const INHIBITION_DC: f64 = 1e-10;
const INHIBITION_PERIODS: [f64; 3] = [0.004, 0.008, 0.016];
/// The leak probe's membrane leak (A) and DC currents (A).
const LEAK: f64 = 1e-11;
const LEAK_DC: [f64; 3] = [2.5e-11, 4e-11, 7e-11];
/// How far ahead of the device clock each stimulus starts (µs).
const LEAD_US: u32 = 100_000;
/// The finite-difference step of the fits (in log factor).
const FD: f64 = 0.02;

/// One probe setting: the currents that differ from the probe's membrane, the input period (none:
/// no input), the duration.
struct Setting {
    idc: f64,
    iref: Option<f64>,
    period: Option<f64>,
    /// Input spikes at irregular times (a fixed pseudo-random pattern of the mean `period`).
    irregular: bool,
    /// The input goes to the inhibitory (GABA) channel instead of the excitatory one.
    inhibitory: bool,
    /// The membrane's leak (`Itau_mem`, A) instead of the floor.
    leak: Option<f64>,
    /// The input weights' 4-bit mask (1: the base weight; 15: four times it).
    mask: u8,
    seconds: f64,
}

/// A fixed pseudo-random number of step `k` (SplitMix64's finaliser).
fn scramble(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The nominal `Iref` of a refractory time (`t_ref = Vth C_ref / Iref`).
fn iref_for(t: f64) -> f64 {
    Param::Vth.default_value() * Param::CRef.default_value() / t
}

/// A configured probe: the network its configuration implements (nominal, in the mapping's order),
/// the input raster, and the measured interspike intervals (s; NaN: fewer than three spikes).
struct Measured {
    nominal: Network,
    input: Vec<f32>,
    steps: usize,
    isi: Vec<f64>,
    /// The measured spikes `[steps, N]` when asked for (`keep_spikes`); empty otherwise.
    counts: Vec<f32>,
}

/// Interspike intervals from `(step, neuron)` spikes: the mean interval from each neuron's second
/// spike to its last (the first may come from any state), NaN with fewer than three.
fn intervals(spikes: impl Iterator<Item = (usize, usize)>, n: usize, dt: f64) -> Vec<f64> {
    let mut first = vec![usize::MAX; n];
    let mut second = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let mut count = vec![0usize; n];
    for (step, j) in spikes {
        count[j] += 1;
        match count[j] {
            1 => first[j] = step,
            2 => second[j] = step,
            _ => {}
        }
        last[j] = last[j].max(step);
    }
    (0..n)
        .map(|j| {
            if count[j] < 3 {
                f64::NAN
            } else {
                (last[j] - second[j]) as f64 * dt / (count[j] - 2) as f64
            }
        })
        .collect()
}

/// Runs one probe setting on the device.
fn measure(
    device: &mut dyn Transport,
    options: &CalibrateOptions,
    setting: &Setting,
    name: &str,
    keep_spikes: bool,
) -> Result<Measured, HwError> {
    let n = options.cores.len() * NEURONS;
    let core_map: Vec<usize> = options
        .cores
        .iter()
        .flat_map(|&g| std::iter::repeat_n(g, NEURONS))
        .collect();
    let mut params = NeuronParams::defaults(n);
    for (p, v) in PROBE_CURRENTS {
        params.get_mut(p).iter_mut().for_each(|x| *x = v);
    }
    params.i_dc.iter_mut().for_each(|x| *x = setting.idc);
    if let Some(iref) = setting.iref {
        params.i_ref.iter_mut().for_each(|x| *x = iref);
    }
    if let Some(leak) = setting.leak {
        params.i_tau_mem.iter_mut().for_each(|x| *x = leak);
    }
    // Two input channels reaching every neuron through base weight 0 (mask 1): channel 0
    // excitatory (AMPA), channel 1 inhibitory (GABA in the chip's model).
    let w_in = QuantMatrix::new(
        WeightMatrix::Input,
        2,
        n,
        vec![setting.mask; 2 * n],
        [vec![1; n], vec![-1; n]].concat(),
    )
    .map_err(HwProblem::Model)?;
    let cores_used = options.cores.iter().max().map_or(0, |&g| g + 1);
    let weights = QuantizedWeights::new(
        core_map,
        vec![[SYNAPSE_BASE; 4]; cores_used],
        Some(w_in),
        QuantMatrix::zeros(n, n),
        options.iscale,
    )
    .map_err(HwProblem::Model)?;
    let dt = f64::from(options.step_us) * 1e-6;
    let refused = |e: dynap_config::MapError| HwProblem::ProbeNotMapped {
        probe: name.to_owned(),
        error: e.to_string(),
    };
    let mapped = dynap_config::map(
        &weights,
        &params,
        dt,
        options.variant,
        &dynap_config::MapOptions {
            generator: options.generator.clone(),
            ..dynap_config::MapOptions::default()
        },
    )
    .map_err(refused)?;
    // The network the configuration implements: the currents the generator makes, the latches.
    let nominal = dynap_config::unmap(
        &mapped.config,
        Some(&mapped.mapping),
        options.iscale,
        dt,
        &options.generator,
    )
    .map_err(refused)?
    .network;
    device.apply(&mapped.config)?;
    device.reset()?;
    let steps = (setting.seconds / dt).round() as usize;
    let input: Vec<f32> = (0..steps)
        .flat_map(|k| {
            let spike = match setting.period {
                Some(p) => {
                    let every = (p / dt).round().max(1.0) as usize;
                    let hit = if setting.irregular {
                        scramble(k as u64).is_multiple_of(every as u64)
                    } else {
                        k % every == 0
                    };
                    f32::from(u8::from(hit))
                }
                None => 0.0,
            };
            if setting.inhibitory {
                [0.0, spike]
            } else {
                [spike, 0.0]
            }
        })
        .collect();
    let raster: Vec<f64> = input.iter().map(|&x| f64::from(x)).collect();
    let played = play_spikes(
        device,
        &mapped.mapping,
        &raster,
        steps,
        &PlayOptions {
            step_us: options.step_us,
            lead_us: LEAD_US,
            ..PlayOptions::default()
        },
    )?;
    let isi = intervals(
        played.spikes.iter().map(|&(s, j)| (s as usize, j as usize)),
        n,
        dt,
    );
    let counts = if keep_spikes {
        let mut c = vec![0.0f32; steps * n];
        for &(s, j) in &played.spikes {
            c[s as usize * n + j as usize] += 1.0;
        }
        c
    } else {
        Vec::new()
    };
    Ok(Measured {
        nominal,
        input,
        steps,
        isi,
        counts,
    })
}

/// The model's spikes `[steps, N]` for `m`'s probe when neuron `j` is multiplied by `factors[j]`
/// (nominal where `factors` is empty).
fn model_spikes(m: &Measured, factors: &[Factors]) -> Result<Vec<f32>, HwError> {
    let mut net = m.nominal.clone();
    for (j, f) in factors.iter().enumerate() {
        f.apply(&mut net, j);
    }
    let sim = AnySimulator::<f32>::new(&net).map_err(HwProblem::Model)?;
    let trace = sim
        .run(
            Input::Spikes {
                data: &m.input,
                batch: 1,
                steps: m.steps,
            },
            None,
            &RunOptions {
                threads: 1,
                ..RunOptions::default()
            },
        )
        .map_err(HwProblem::Model)?;
    Ok(trace.spikes().to_vec())
}

/// The interspike intervals the model gives for `m`'s probe with `factors` ([`model_spikes`]).
fn model_intervals(m: &Measured, factors: &[Factors]) -> Result<Vec<f64>, HwError> {
    let n = m.nominal.neurons();
    let spikes = &model_spikes(m, factors)?;
    Ok(intervals(
        (0..m.steps).flat_map(|k| {
            (0..n)
                .flat_map(move |j| std::iter::repeat_n((k, j), spikes[k * n + j].max(0.0) as usize))
        }),
        n,
        m.nominal.dt,
    ))
}

/// A least-squares solution `x` of `a x = b` (`a` is `rows x cols`, row-major) and the standard
/// error of each `x` from the residual (NaN without spare rows).
fn least_squares(a: &[f64], b: &[f64], cols: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = b.len();
    let am = Mat::<f64>::from_fn(rows, cols, |i, j| a[i * cols + j]);
    let bm = Mat::<f64>::from_fn(rows, 1, |i, _| b[i]);
    let x = am.qr().solve_lstsq(&bm);
    let xs: Vec<f64> = (0..cols).map(|j| x[(j, 0)]).collect();
    let rss: f64 = (0..rows)
        .map(|i| {
            let fit: f64 = (0..cols).map(|j| a[i * cols + j] * xs[j]).sum();
            (b[i] - fit).powi(2)
        })
        .sum();
    let se = if rows > cols {
        let s2 = rss / (rows - cols) as f64;
        let ata = am.transpose() * &am;
        let inv = ata.partial_piv_lu().solve(Mat::<f64>::identity(cols, cols));
        (0..cols)
            .map(|j| (s2 * inv[(j, j)]).max(0.0).sqrt())
            .collect()
    } else {
        vec![f64::NAN; cols]
    };
    (xs, se)
}

/// A fit's outcome: per neuron the fitted factors (the knobs multiplied into the given ones) and the
/// standard error of each knob's logarithm (NaN: not fitted), and the RMS relative residual.
struct Fitted {
    factors: Vec<Factors>,
    se: Vec<Vec<f64>>,
    rms: f64,
}

/// Fits, per neuron, log factors on `knobs` (on top of `start`) so the model's log intervals match
/// the measured ones over the probe's settings (Gauss-Newton, Jacobians by finite differences).
/// Neurons with fewer usable settings than knobs keep `start`.
fn gauss_newton(
    probe: &[Measured],
    knobs: &[Knob],
    start: &[Factors],
    iterations: usize,
) -> Result<Fitted, HwError> {
    let n = probe[0].isi.len();
    let k = knobs.len();
    let mut theta = vec![vec![0.0; k]; n];
    let mut se = vec![vec![f64::NAN; n]; k];
    let with = |theta: &[Vec<f64>], nudge: Option<usize>| -> Vec<Factors> {
        start
            .iter()
            .zip(theta)
            .map(|(f, t)| {
                let mut f = *f;
                for (q, (&knob, &x)) in knobs.iter().zip(t).enumerate() {
                    let x = if nudge == Some(q) { x + FD } else { x };
                    *f.get_mut(knob) *= x.exp();
                }
                f
            })
            .collect()
    };
    let mut rms = f64::NAN;
    for _ in 0..iterations {
        // The model at theta and with each factor nudged, for every setting.
        let mut base = Vec::with_capacity(probe.len());
        let mut nudged = vec![Vec::with_capacity(probe.len()); k];
        for m in probe {
            base.push(model_intervals(m, &with(&theta, None))?);
            for (q, out) in nudged.iter_mut().enumerate() {
                out.push(model_intervals(m, &with(&theta, Some(q)))?);
            }
        }
        let (mut sum, mut count) = (0.0, 0usize);
        for j in 0..n {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for (s, m) in probe.iter().enumerate() {
                let (y, y0) = (m.isi[j], base[s][j]);
                let row: Vec<f64> = (0..k).map(|q| (nudged[q][s][j] / y0).ln() / FD).collect();
                if y.is_finite() && y0.is_finite() && row.iter().all(|x| x.is_finite()) {
                    let r = (y / y0).ln();
                    sum += r * r;
                    count += 1;
                    a.extend(row);
                    b.push(r);
                }
            }
            if b.len() < k {
                continue;
            }
            let (step, err) = least_squares(&a, &b, k);
            if step.iter().any(|x| !x.is_finite()) {
                continue; // a degenerate neuron (no sensitivity): it keeps its factors
            }
            for q in 0..k {
                theta[j][q] += step[q].clamp(-0.3, 0.3);
                se[q][j] = err[q];
            }
        }
        rms = (sum / count.max(1) as f64).sqrt();
    }
    Ok(Fitted {
        factors: with(&theta, None),
        se,
        rms,
    })
}

/// Calibrates the cores of `options` on `device`: runs the probes, fits every neuron, and returns
/// the chip profile (the factors of the quantities [`dynap_mismatch::Derived::of`] the model, with
/// their uncertainty, and the nuisance factor the fit needs, which the profile does not claim as
/// measured). `report` receives a line per probe setting.
pub fn calibrate(
    device: &mut dyn Transport,
    options: &CalibrateOptions,
    report: &mut dyn FnMut(&str),
) -> Result<Calibration, HwError> {
    let mut seen = Vec::new();
    for &g in &options.cores {
        if g >= MAX_CHIPS * CORES {
            return Err(HwProblem::BadCore {
                core: g,
                why: "a board has 4 chips of 4 cores: cores 0 to 15 (chip * 4 + core)",
            }
            .into());
        }
        if seen.contains(&g) {
            return Err(HwProblem::BadCore {
                core: g,
                why: "listed twice",
            }
            .into());
        }
        seen.push(g);
    }
    if options.cores.is_empty() {
        return Err(HwProblem::BadCore {
            core: 0,
            why: "no core to calibrate",
        }
        .into());
    }
    let n = options.cores.len() * NEURONS;
    let mut chip_time = 0.0;
    let mut run = |device: &mut dyn Transport,
                   setting: Setting,
                   name: &str,
                   what: String|
     -> Result<Measured, HwError> {
        report(&format!("{name} probe: {what}"));
        chip_time += setting.seconds + f64::from(LEAD_US) * 1e-6;
        measure(device, options, &setting, name, false)
    };
    let mut residuals = Vec::new();
    let mut unmeasured = Vec::new();
    // 1. Refractory time: the interval's slope against the nominal refractory time.
    let mut refractory = Vec::new();
    for t in REFRACTORY_TIMES {
        refractory.push(run(
            device,
            Setting {
                idc: REFRACTORY_DC,
                iref: Some(iref_for(t)),
                period: None,
                irregular: false,
                inhibitory: false,
                leak: None,
                mask: 1,
                seconds: REFRACTORY_SECONDS,
            },
            "refractory",
            format!("t_ref {:.0} ms", t * 1e3),
        )?);
    }
    let mut factors = vec![Factors::ONE; n];
    let mut t_ref_se = vec![f64::NAN; n];
    let (mut missing, mut sum, mut count) = (0usize, 0.0, 0usize);
    for j in 0..n {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for m in &refractory {
            // The nominal refractory time the configuration implements.
            let p = &m.nominal.params;
            if m.isi[j].is_finite() {
                a.extend([1.0, p.v_th[j] * p.c_ref[j] / p.i_ref[j]]);
                b.push(m.isi[j]);
            }
        }
        if b.len() < 2 {
            missing += 1;
            continue;
        }
        let (x, se) = least_squares(&a, &b, 2);
        if x[1] > 0.0 && x[1].is_finite() {
            // The model's refractory time is Vth C_ref / Iref: the factor goes on Iref, inverted.
            *factors[j].get_mut(Knob::Param(Param::Iref)) = 1.0 / x[1];
            t_ref_se[j] = se[1] / x[1];
            for (i, &y) in b.iter().enumerate() {
                let r = (y - a[2 * i] * x[0] - a[2 * i + 1] * x[1]) / y;
                sum += r * r;
                count += 1;
            }
        } else {
            missing += 1;
        }
    }
    unmeasured.push(("refractory", missing));
    residuals.push(("refractory", (sum / count.max(1) as f64).sqrt()));
    let mut errors: Vec<(Knob, Vec<f64>)> = vec![(Knob::Param(Param::Iref), t_ref_se)];
    // Each later probe: its settings, then a fit of its knobs on top of what is known.
    let mut stage = |device: &mut dyn Transport,
                     factors: &mut Vec<Factors>,
                     name: &'static str,
                     settings: Vec<(Setting, String)>,
                     knobs: &[Knob]|
     -> Result<(), HwError> {
        let mut measured = Vec::new();
        for (setting, what) in settings {
            measured.push(run(device, setting, name, what)?);
        }
        let fitted = gauss_newton(&measured, knobs, factors, options.iterations)?;
        residuals.push((name, fitted.rms));
        unmeasured.push((name, fitted.se[0].iter().filter(|x| x.is_nan()).count()));
        *factors = fitted.factors;
        errors.extend(knobs.iter().copied().zip(fitted.se));
        Ok(())
    };
    // 2. DC: Idc, with the nuisance factor beside it that moves the intervals most in this model
    // (measured against the twin, all parameters mismatched): the dark current in Rockpool's model,
    // whose floors offset a weak drive; kappa in the chip's, which sets its feedback's exponent.
    let nuisance = match options.variant {
        Variant::Rockpool => Param::Io,
        Variant::Chip => Param::KappaN,
    };
    let dc = |level: f64| Setting {
        idc: level,
        iref: None,
        period: None,
        irregular: false,
        inhibitory: false,
        leak: None,
        mask: 1,
        seconds: DC_SECONDS,
    };
    stage(
        device,
        &mut factors,
        "dc",
        DC_LEVELS
            .iter()
            .map(|&l| (dc(l), format!("Idc {:.0} pA", l * 1e12)))
            .collect(),
        &[Knob::Param(Param::Idc), Knob::Param(nuisance)],
    )?;
    // 3. Synapse: input spikes through the excitatory CAM entry, no DC.
    let train = |period: f64, idc: f64, inhibitory: bool| Setting {
        idc,
        iref: None,
        period: Some(period),
        irregular: false,
        inhibitory,
        leak: None,
        mask: 1,
        seconds: SYNAPSE_SECONDS,
    };
    stage(
        device,
        &mut factors,
        "synapse",
        SYNAPSE_PERIODS
            .iter()
            .map(|&p| {
                (
                    train(p, 0.0, false),
                    format!("an input spike every {:.0} ms", p * 1e3),
                )
            })
            .collect(),
        &[Knob::Param(Param::IgainSyn)],
    )?;
    // 4. Inhibition (the chip's model): a DC drive slowed by spikes on the GABA dendrite.
    if options.variant == Variant::Chip {
        stage(
            device,
            &mut factors,
            "inhibition",
            INHIBITION_PERIODS
                .iter()
                .map(|&p| {
                    (
                        train(p, INHIBITION_DC, true),
                        format!(
                            "Idc {:.0} pA, an inhibitory spike every {:.0} ms",
                            INHIBITION_DC * 1e12,
                            p * 1e3
                        ),
                    )
                })
                .collect(),
            &[Knob::Dendrite(4)],
        )?;
    }
    // 5. Leak: a leaky membrane (Itau_mem 10 pA) under DC; the leak subtracts from the drive in
    // proportion to kappa Itau_mem / (Ut C_mem), the inverse of the membrane's time constant.
    let leaky = |idc: f64| Setting {
        idc,
        iref: None,
        period: None,
        irregular: false,
        inhibitory: false,
        leak: Some(LEAK),
        mask: 1,
        seconds: SYNAPSE_SECONDS,
    };
    stage(
        device,
        &mut factors,
        "leak",
        LEAK_DC
            .iter()
            .map(|&l| {
                (
                    leaky(l),
                    format!("Itau_mem {:.0} pA, Idc {:.0} pA", LEAK * 1e12, l * 1e12),
                )
            })
            .collect(),
        &[Knob::Param(Param::ItauMem)],
    )?;
    // The profile: the derived quantities from the fitted factors (each one's standard error its
    // carrier's), then the nuisance factor.
    let se_of = |j: usize, k: Knob| {
        errors
            .iter()
            .find(|(q, _)| *q == k)
            .map_or(f64::NAN, |(_, e)| e[j])
    };
    let derived: Vec<&Derived> = Derived::of(options.variant).collect();
    let mut neurons = Vec::with_capacity(n);
    for (c, &g) in options.cores.iter().enumerate() {
        for k in 0..NEURONS {
            let j = c * NEURONS + k;
            let f = &factors[j];
            let mut pairs: Vec<(&str, f64, f64)> = derived
                .iter()
                .map(|d| (d.name, d.factor(f), se_of(j, d.carrier)))
                .collect();
            let knob = Knob::Param(nuisance);
            pairs.push((knob.name(), f.get(knob), se_of(j, knob)));
            neurons.push(NeuronFactors {
                chip: g / CORES,
                core: g % CORES,
                neuron: k,
                factors: pairs.iter().map(|&(k, f, _)| (k.to_owned(), f)).collect(),
                uncertainty: pairs
                    .iter()
                    .filter(|p| p.2.is_finite())
                    .map(|&(k, _, e)| (k.to_owned(), e))
                    .collect(),
            });
        }
    }
    // The spread the profile leaves: each parameter's own mismatch, estimated from the refractory
    // time's spread (a product of three independent factors), as a Rockpool mismatch level (3 sigma).
    let logs: Vec<f64> = factors
        .iter()
        .map(|f| -f.get(Knob::Param(Param::Iref)).ln())
        .collect();
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    let sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
    let residual = 3.0 * sd / 3f64.sqrt();
    Ok(Calibration {
        profile: ChipProfile {
            device: device.name(),
            identifiable: derived.iter().map(|d| d.name.to_owned()).collect(),
            chip_time_s: chip_time,
            residual,
            neurons,
        },
        residuals,
        unmeasured,
    })
}

/// How well a profile predicts a device on stimuli its calibration did not use.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Per stimulus: its description, the relative RMS error over neurons of the firing rate the
    /// profile predicts, and of the rate the nominal neuron predicts (no profile).
    pub stimuli: Vec<(String, f64, f64)>,
}

/// Plays stimuli that no probe of [`calibrate`] uses (DC currents between and beyond its levels, a
/// regular input period it skipped, irregular input trains, another leak, and in the chip's model
/// irregular inhibition) on the cores of `options`, and compares each neuron's firing rate with the rate the
/// model predicts with `profile`'s factors ([`dynap_mismatch::hold`] on the nominal neuron) and
/// without them.
pub fn predict_held_out(
    device: &mut dyn Transport,
    options: &CalibrateOptions,
    profile: &ChipProfile,
    report: &mut dyn FnMut(&str),
) -> Result<Prediction, HwError> {
    let n = options.cores.len() * NEURONS;
    let mut factors = vec![Factors::ONE; n];
    for (c, &g) in options.cores.iter().enumerate() {
        for k in 0..NEURONS {
            if let Some(found) = profile.at(g / CORES, g % CORES, k) {
                dynap_mismatch::hold(
                    &mut factors[c * NEURONS + k],
                    found.factors.iter().map(|(k, f)| (k.as_str(), *f)),
                );
            }
        }
    }
    // (name, DC, input period, irregular, inhibitory, leak)
    type Stimulus = (&'static str, f64, Option<f64>, bool, bool, Option<f64>);
    let mut held_out: Vec<Stimulus> = vec![
        ("DC 10 pA", 1e-11, None, false, false, None),
        ("DC 45 pA", 4.5e-11, None, false, false, None),
        ("DC 100 pA", 1e-10, None, false, false, None),
        ("input every 3 ms", 0.0, Some(0.003), false, false, None),
        (
            "irregular input, mean period 1.5 ms",
            0.0,
            Some(0.0015),
            true,
            false,
            None,
        ),
        (
            "irregular input, mean period 3 ms",
            0.0,
            Some(0.003),
            true,
            false,
            None,
        ),
        (
            "leak 15 pA, DC 55 pA",
            5.5e-11,
            None,
            false,
            false,
            Some(1.5e-11),
        ),
    ];
    if options.variant == Variant::Chip {
        held_out.push((
            "DC 100 pA, irregular inhibition every 6 ms",
            1e-10,
            Some(0.006),
            true,
            true,
            None,
        ));
    }
    let mut stimuli = Vec::new();
    for (name, idc, period, irregular, inhibitory, leak) in held_out {
        report(&format!("held-out stimulus: {name}"));
        let setting = Setting {
            idc,
            iref: None,
            period,
            irregular,
            inhibitory,
            leak,
            mask: 1,
            seconds: 1.0,
        };
        let m = measure(device, options, &setting, "held-out", true)?;
        let rate = |spikes: &[f32]| -> Vec<f64> {
            let mut r = vec![0.0; n];
            for k in 0..m.steps {
                for (j, x) in r.iter_mut().enumerate() {
                    *x += f64::from(spikes[k * n + j]);
                }
            }
            r.iter().map(|c| c / setting.seconds).collect()
        };
        let measured = rate(&m.counts);
        let predicted = rate(&model_spikes(&m, &factors)?);
        let nominal = rate(&model_spikes(&m, &[])?);
        let error = |pred: &[f64]| {
            let (mut s, mut c) = (0.0, 0usize);
            for (p, y) in pred.iter().zip(&measured) {
                if *y > 0.0 {
                    s += ((p - y) / y).powi(2);
                    c += 1;
                }
            }
            (s / c.max(1) as f64).sqrt()
        };
        stimuli.push((name.to_owned(), error(&predicted), error(&nominal)));
    }
    Ok(Prediction { stimuli })
}

//! # dynap-quant: per-core 4-bit weight quantization
//!
//! Quantize float weights to the chip's format, core by core:
//!
//! ```
//! use dynap_model::Matrix;
//! use dynap_quant::{Options, quantize};
//!
//! let w_rec = Matrix::from_vec(3, 3, vec![0.0, 1.2, -0.4, 0.8, 0.0, 2.5, -1.1, 0.3, 0.0]).unwrap();
//! let core_map = [0, 0, 0];
//! let q = quantize(None, Some(&w_rec), &core_map, 1e-8, &Options::default())?;
//! println!("Iw = {:?} A, error {:.1} %", q.cores[0].iw, q.relative_rms_error * 100.0);
//! let (_, decoded) = q.weights.decode(); // the weights the chip realises
//! assert_eq!(decoded.get(1, 2).signum(), 1.0);
//! # Ok::<(), dynap_quant::Error>(())
//! ```
//!
//! The chip gives every core four base weight currents `Iw_0..Iw_3`, shared by all synapses of its
//! neurons, and every connection a 4-bit mask choosing which of them add up; the sign chooses an
//! excitatory or inhibitory synapse (model.md section 6.1). [`quantize`] turns float weights into that
//! format ([`dynap_model::QuantizedWeights`]), core by core, with one of two methods:
//!
//! * [`Method::Alternating`], the default: the base currents and masks that minimise the squared
//!   reconstruction error of the core's weights, by alternating exact steps (nearest of the 16 subset
//!   sums; non-negative least squares for the four currents) from several starts, including the
//!   binary-weighted 1:2:4:8 one. Deterministic; the error never increases along the alternation.
//! * [`Method::Autoencoder`]: Rockpool 3.1.0's `autoencoder_quantization`, faithful (its loss,
//!   straight-through estimator, Adam with the restarting step index, early stopping; the quirks are a
//!   compatibility mode, on by default), with a fused loss-and-gradient pass checked against dfdx's tape
//!   (`dynap_autodiff::BitAutoencoder`); kept to reproduce the paper's pipeline.
//!
//! Then, unless disabled, every base current is snapped to a current its bias generator
//! (`SYAM_W0_P..SYAM_W3_P`) can make and the masks are refit, so the result is exactly what the chip
//! will use. [`Quantized::cores`] reports the relative RMS weight error of every core before and after
//! snapping.
//!
//! Invariants:
//! * the output decodes (sign x sum of selected base currents / Iscale, see
//!   [`dynap_model::QuantizedWeights::decode`]) to the weights the errors are reported for;
//! * quantizing decoded weights again with the same base currents gives the same values;
//! * deterministic: the same weights, options and seed give the same bits, whatever the thread count;
//! * a core without non-zero weights gets zero masks and zero base currents (where Rockpool crashes);
//! * signs are Rockpool's: `sign(w)` for every weight; a connection exists on the chip only where the
//!   mask is non-zero.

mod alternating;
pub mod autoencoder;
mod error;

pub use autoencoder::{AutoencoderInit, AutoencoderOptions, AutoencoderRun};
pub use error::Error;

use dynap_model::{
    BASE_WEIGHTS, BiasGenerator, Matrix, QuantMatrix, QuantizedWeights, WeightMatrix, mask_levels,
};
use std::collections::BTreeMap;

/// Arithmetic precision of the autoencoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// `f32`, as Rockpool.
    #[default]
    F32,
    /// `f64`.
    F64,
}

/// How the base currents and masks are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// Alternating nearest-sum masks and non-negative least-squares currents (the default).
    Alternating,
    /// Rockpool's autoencoder; `init` optionally gives each core's initial encoder and decoder (by
    /// core number), otherwise they are drawn from `options.seed`.
    Autoencoder {
        /// Options (Rockpool's defaults by default).
        options: AutoencoderOptions,
        /// Initial weights per core.
        init: BTreeMap<usize, AutoencoderInit>,
    },
}

impl Method {
    /// The name used in files and on the command line: `alternating` or `autoencoder`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Alternating => "alternating",
            Method::Autoencoder { .. } => "autoencoder",
        }
    }

    /// The method of a name, with default options.
    pub fn from_name(name: &str) -> Option<Method> {
        match name {
            "alternating" => Some(Method::Alternating),
            "autoencoder" => Some(Method::Autoencoder {
                options: AutoencoderOptions::default(),
                init: BTreeMap::new(),
            }),
            _ => None,
        }
    }
}

/// What [`quantize`] does.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The method.
    pub method: Method,
    /// The bias generator to snap base currents to; `None` keeps them as fitted.
    pub snap: Option<BiasGenerator>,
}

impl Default for Options {
    /// The alternating method, snapped to the built-in DYNAP-SE2 bias generator.
    fn default() -> Options {
        Options {
            method: Method::Alternating,
            snap: Some(BiasGenerator::dynapse2()),
        }
    }
}

/// One core's result.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreReport {
    /// The core.
    pub core: usize,
    /// Number of non-zero weights into the core's neurons.
    pub weights: usize,
    /// Base currents as fitted, before snapping (A).
    pub iw_fitted: [f64; BASE_WEIGHTS],
    /// Base currents used (A): snapped to the bias generator unless snapping is off.
    pub iw: [f64; BASE_WEIGHTS],
    /// Relative RMS error `||W^ - W|| / ||W||` over the core's columns, with the fitted currents.
    pub error_before_snap: f64,
    /// The same with the currents used (equal to `error_before_snap` without snapping).
    pub error_after_snap: f64,
    /// The autoencoder's record, for [`Method::Autoencoder`].
    pub autoencoder: Option<AutoencoderRun>,
}

/// The quantized network and its report.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    /// The hardware weight format.
    pub weights: QuantizedWeights,
    /// One report per core that has neurons, in core order.
    pub cores: Vec<CoreReport>,
    /// `||W^ - W||_F / ||W||_F` over both matrices (0 when every weight is zero).
    pub relative_rms_error: f64,
}

/// One connection's place: matrix, flat index.
#[derive(Clone, Copy, Debug)]
struct Entry {
    matrix: WeightMatrix,
    index: usize,
}

fn check_matrix(m: &Matrix, matrix: WeightMatrix, cols: usize) -> Result<(), Error> {
    if m.cols() != cols {
        return Err(dynap_model::Error::WeightShape {
            matrix,
            expected: (m.rows(), cols),
            found: (m.rows(), m.cols()),
        }
        .into());
    }
    if let Some(i) = m.as_slice().iter().position(|w| !w.is_finite()) {
        return Err(dynap_model::Error::NonFiniteWeight {
            matrix,
            pre: i / cols,
            post: i % cols,
            value: m.as_slice()[i],
        }
        .into());
    }
    Ok(())
}

/// Quantizes `w_in` `[Nin, N]` and `w_rec` `[N, N]` (either may be absent; an absent `w_rec` is all
/// zeros) for neurons on the cores `core_map` `[N]`, with weights in units of `i_scale` (A).
pub fn quantize(
    w_in: Option<&Matrix>,
    w_rec: Option<&Matrix>,
    core_map: &[usize],
    i_scale: f64,
    options: &Options,
) -> Result<Quantized, Error> {
    let n = core_map.len();
    for (m, which) in [
        (w_in, WeightMatrix::Input),
        (w_rec, WeightMatrix::Recurrent),
    ] {
        if let Some(m) = m
            && m.cols() != n
        {
            return Err(Error::CoreMapLength {
                neurons: m.cols(),
                found: n,
            });
        }
        if let Some(m) = m {
            check_matrix(m, which, n)?;
        }
    }
    if n == 0 {
        return Err(Error::NoNeurons);
    }
    if let Some(m) = w_rec
        && m.rows() != n
    {
        return Err(dynap_model::Error::WeightShape {
            matrix: WeightMatrix::Recurrent,
            expected: (n, n),
            found: (m.rows(), m.cols()),
        }
        .into());
    }
    if !(i_scale.is_finite() && i_scale > 0.0) {
        return Err(dynap_model::Error::Iscale { value: i_scale }.into());
    }
    let zeros = Matrix::zeros(n, n);
    let w_rec_m = w_rec.unwrap_or(&zeros);
    let cores = core_map.iter().max().map_or(0, |&c| c + 1);

    // Every core's non-zero weights in Rockpool's order: rows of vstack(w_in, w_rec), row-major.
    let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); cores];
    let mut magnitudes: Vec<Vec<f64>> = vec![Vec::new(); cores];
    for (m, matrix) in [
        (w_in, WeightMatrix::Input),
        (Some(w_rec_m), WeightMatrix::Recurrent),
    ] {
        let Some(m) = m else { continue };
        for (index, &w) in m.as_slice().iter().enumerate() {
            if w != 0.0 {
                let core = core_map[index % n];
                entries[core].push(Entry { matrix, index });
                magnitudes[core].push(w.abs());
            }
        }
    }

    let mut base = vec![[0.0; BASE_WEIGHTS]; cores];
    let mut masks: Vec<Vec<u8>> = vec![Vec::new(); cores];
    let mut reports = Vec::new();
    for core in 0..cores {
        if !core_map.contains(&core) {
            continue;
        }
        let w = &magnitudes[core];
        let (iw_fitted, fitted_masks, run) = fit_core(core, w, i_scale, &options.method)?;
        let error_before = relative_error(w, &fitted_masks, &iw_fitted, i_scale);
        let (iw, core_masks) = match &options.snap {
            Some(generator) if !w.is_empty() => snap(generator, w, &iw_fitted, i_scale),
            _ => (iw_fitted, fitted_masks),
        };
        let error_after = relative_error(w, &core_masks, &iw, i_scale);
        base[core] = iw;
        masks[core] = core_masks;
        reports.push(CoreReport {
            core,
            weights: w.len(),
            iw_fitted,
            iw,
            error_before_snap: error_before,
            error_after_snap: error_after,
            autoencoder: run,
        });
    }

    let mut mask_in = w_in.map(|m| vec![0u8; m.rows() * n]);
    let mut mask_rec = vec![0u8; n * n];
    for core in 0..cores {
        for (e, &q) in entries[core].iter().zip(&masks[core]) {
            match e.matrix {
                WeightMatrix::Input => {
                    mask_in.as_mut().expect("input entries come from w_in")[e.index] = q;
                }
                WeightMatrix::Recurrent => mask_rec[e.index] = q,
            }
        }
    }
    let sign = |m: &Matrix| -> Vec<i8> {
        m.as_slice()
            .iter()
            .map(|&w| {
                if w > 0.0 {
                    1
                } else if w < 0.0 {
                    -1
                } else {
                    0
                }
            })
            .collect()
    };
    let q_in = match (w_in, mask_in) {
        (Some(m), Some(mask)) => Some(QuantMatrix::new(
            WeightMatrix::Input,
            m.rows(),
            n,
            mask,
            sign(m),
        )?),
        _ => None,
    };
    let q_rec = QuantMatrix::new(WeightMatrix::Recurrent, n, n, mask_rec, sign(w_rec_m))?;
    let weights = QuantizedWeights::new(core_map.to_vec(), base, q_in, q_rec, i_scale)?;

    let (d_in, d_rec) = weights.decode();
    let (mut diff, mut norm) = (0.0, 0.0);
    for (orig, dec) in [(w_in, d_in.as_ref()), (Some(w_rec_m), Some(&d_rec))] {
        if let (Some(o), Some(d)) = (orig, dec) {
            for (a, b) in o.as_slice().iter().zip(d.as_slice()) {
                diff += (a - b) * (a - b);
                norm += a * a;
            }
        }
    }
    let relative_rms_error = if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        0.0
    };
    Ok(Quantized {
        weights,
        cores: reports,
        relative_rms_error,
    })
}

type CoreFit = ([f64; BASE_WEIGHTS], Vec<u8>, Option<AutoencoderRun>);

fn fit_core(core: usize, w: &[f64], i_scale: f64, method: &Method) -> Result<CoreFit, Error> {
    if w.is_empty() {
        // Rockpool divides by zero here; an empty core simply has nothing to represent.
        return Ok(([0.0; BASE_WEIGHTS], Vec::new(), None));
    }
    match method {
        Method::Alternating => {
            let fit = alternating::fit(w);
            let iw = fit.base.map(|b| b * i_scale);
            let levels = mask_levels(&iw, i_scale);
            let masks = w
                .iter()
                .map(|&v| alternating::nearest_mask(v, &levels))
                .collect();
            Ok((iw, masks, None))
        }
        Method::Autoencoder { options, init } => {
            let drawn;
            let init = match init.get(&core) {
                Some(i) => {
                    let want = w.len() * BASE_WEIGHTS;
                    if i.encoder.len() != want || i.decoder.len() != want {
                        return Err(Error::AutoencoderInit {
                            core,
                            problem: format!(
                                "encoder has {} and decoder {} values; the core has {} non-zero weights, so both need {want}",
                                i.encoder.len(),
                                i.decoder.len(),
                                w.len()
                            ),
                        });
                    }
                    i
                }
                None => {
                    drawn = AutoencoderInit::draw(w.len(), options.seed, core);
                    &drawn
                }
            };
            let run = autoencoder::train(w, init, i_scale, options);
            // The chip cannot make a negative current: a negative code becomes 0 A.
            let iw = run.iw.map(|i| i.max(0.0));
            Ok((iw, run.masks.clone(), Some(run)))
        }
    }
}

/// `||W^ - W|| / ||W||` over one core's magnitudes.
fn relative_error(w: &[f64], masks: &[u8], iw: &[f64; BASE_WEIGHTS], i_scale: f64) -> f64 {
    let levels = mask_levels(iw, i_scale);
    let (mut diff, mut norm) = (0.0, 0.0);
    for (&v, &q) in w.iter().zip(masks) {
        let e = levels[q as usize] - v;
        diff += e * e;
        norm += v * v;
    }
    if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        0.0
    }
}

/// The names of the chip biases of the four base weights.
pub const BASE_WEIGHT_BIASES: [&str; BASE_WEIGHTS] =
    ["SYAM_W0_P", "SYAM_W1_P", "SYAM_W2_P", "SYAM_W3_P"];

/// Snaps every base current to the nearest current its bias generator makes, then improves by moving
/// one current at a time to a neighbouring achievable current while the error falls; the masks are
/// refit (nearest sum) at every trial, so the result is never worse than the nearest snap.
fn snap(
    generator: &BiasGenerator,
    w: &[f64],
    iw: &[f64; BASE_WEIGHTS],
    i_scale: f64,
) -> ([f64; BASE_WEIGHTS], Vec<u8>) {
    let sorted = alternating::Sorted::new(w.to_vec());
    let achievable: Vec<Vec<f64>> = BASE_WEIGHT_BIASES
        .iter()
        .map(|name| {
            let mut v: Vec<f64> = dynap_model::BiasCode::all()
                .map(|c| {
                    generator
                        .current_from_code(name, c)
                        .expect("the base weight biases are known")
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        })
        .collect();
    let mut pos: [usize; BASE_WEIGHTS] = std::array::from_fn(|k| {
        let code = generator
            .code_from_current(BASE_WEIGHT_BIASES[k], iw[k])
            .expect("the base weight biases are known");
        let current = generator
            .current_from_code(BASE_WEIGHT_BIASES[k], code)
            .expect("the base weight biases are known");
        achievable[k]
            .iter()
            .position(|&c| c == current)
            .expect("the current is in the list")
    });
    let currents = |pos: &[usize; BASE_WEIGHTS]| -> [f64; BASE_WEIGHTS] {
        std::array::from_fn(|k| achievable[k][pos[k]])
    };
    let error = |pos: &[usize; BASE_WEIGHTS]| -> f64 {
        let levels = mask_levels(&currents(pos), i_scale);
        sorted.sse(&levels, &sorted.groups(&levels))
    };
    let mut best = error(&pos);
    for _ in 0..1000 {
        let mut improved = false;
        for k in 0..BASE_WEIGHTS {
            for step in [-1isize, 1] {
                let Some(p) = pos[k].checked_add_signed(step) else {
                    continue;
                };
                if p >= achievable[k].len() {
                    continue;
                }
                let mut trial = pos;
                trial[k] = p;
                let e = error(&trial);
                if e < best {
                    (best, pos, improved) = (e, trial, true);
                }
            }
        }
        if !improved {
            break;
        }
    }
    let iw = currents(&pos);
    let levels = mask_levels(&iw, i_scale);
    let masks = w
        .iter()
        .map(|&v| alternating::nearest_mask(v, &levels))
        .collect();
    (iw, masks)
}

#[cfg(test)]
mod tests;

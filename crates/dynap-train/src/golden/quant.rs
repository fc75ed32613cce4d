//! Golden `quant` cases: Rockpool's `autoencoder_quantization` (golden README sections 2.5 and 3).
//!
//! A case is one quantization problem (`weights_in`, `weights_rec`, `core_map`, hyperparameters) or a
//! list of `subcases` of them. For every precision it has results for, the case is quantized with our
//! faithful autoencoder, starting from the case's recorded initial encoder and decoder when it has
//! them (`init`), and checked:
//! * our run succeeds, also where Rockpool failed (`{"ok": false}`), and a cluster without non-zero
//!   weights gets zero masks and zero base currents;
//! * signs exactly; Rockpool's masks, signs and `Iw` decode with our decoder to its reconstructions;
//! * with `init`: magnitudes and scale exactly (f32), the loss trajectory (epochs 0-15 rtol 1e-4,
//!   0-250 rtol 1e-2), and decoding Rockpool's final encoder and decoder gives its bit masks and masks
//!   exactly and its code and `Iw` to 1e-5; the final reconstruction error within 25 % of Rockpool's
//!   f32 or f64 end state (the end state after thousands of epochs is not reproducible across
//!   precisions, README section 3: Rockpool's own two runs of a case can end 40 % apart).

use super::{first_difference, ints, matrix};
use crate::json::{J, JResult};
use dynap_model::{Matrix, Tolerance, mask_levels};
use dynap_quant::{AutoencoderInit, AutoencoderOptions, Method, Options, Precision};
use std::collections::BTreeMap;

pub(super) fn check_quant(c: &J) -> JResult<()> {
    match c.opt("subcases") {
        Some(subs) => {
            let n = subs.array()?.len();
            if n == 0 {
                return Err("`subcases` is empty".into());
            }
            for i in 0..n {
                let sub = subs.at(i)?;
                let label = sub
                    .opt("label")
                    .and_then(|l| l.str().ok().map(str::to_owned))
                    .unwrap_or_else(|| format!("subcase {i}"));
                check_one(c, &sub).map_err(|e| format!("{label}: {e}"))?;
            }
            Ok(())
        }
        None => check_one(c, c),
    }
}

/// A matrix that may be absent, `null` or `[]` (README: `weights_in`/`weights_rec` may be `null`).
fn optional_matrix(case: &J, key: &str) -> JResult<Option<Matrix>> {
    match case.opt(key) {
        Some(m) if m.array()?.is_empty() => Ok(None),
        Some(m) => Ok(Some(matrix(&m)?)),
        None => Ok(None),
    }
}

/// The positions (row of vstack(w_in, w_rec), column) of a cluster's non-zero weights, in Rockpool's
/// order, and their magnitudes.
fn cluster_entries(
    w_in: Option<&Matrix>,
    w_rec: Option<&Matrix>,
    core_map: &[usize],
    cluster: usize,
) -> Vec<(usize, usize, f64)> {
    let mut out = Vec::new();
    let mut row0 = 0;
    for m in [w_in, w_rec].into_iter().flatten() {
        for r in 0..m.rows() {
            for (j, &core) in core_map.iter().enumerate() {
                let w = m.get(r, j);
                if core == cluster && w != 0.0 {
                    out.push((row0 + r, j, w.abs()));
                }
            }
        }
        row0 += m.rows();
    }
    out
}

fn check_one(top: &J, case: &J) -> JResult<()> {
    let i_scale = match case.opt("Iscale").or_else(|| top.opt("Iscale")) {
        Some(v) => v.f64()?,
        None => 1e-8,
    };
    let core_map = ints(&case.get("core_map")?)?;
    let w_in = optional_matrix(case, "weights_in")?;
    let w_rec = optional_matrix(case, "weights_rec")?;
    let n_cluster = match case.opt("n_cluster") {
        Some(v) => v.f64()? as usize,
        None => core_map.iter().max().map_or(0, |m| m + 1),
    };
    let hyper = top.opt("hyperparameters");
    let h = |key: &str, default: f64| -> JResult<f64> {
        match hyper.as_ref().and_then(|h| h.opt(key)) {
            Some(v) => v.f64(),
            None => Ok(default),
        }
    };
    let fixed = match hyper.as_ref().and_then(|h| h.opt("fixed_epoch")) {
        Some(v) => v.bool()?,
        None => false,
    };
    let mut init = BTreeMap::new();
    if let Some(inits) = case.opt("init") {
        for (c, entry) in inits.array()?.iter().enumerate() {
            if entry.is_null() {
                continue;
            }
            let e = inits.at(c)?;
            let cluster = match e.opt("cluster") {
                Some(v) => v.f64()? as usize,
                None => c,
            };
            init.insert(
                cluster,
                AutoencoderInit {
                    encoder: e.get("w_en_init")?.tensor()?.1,
                    decoder: e.get("w_dec_init")?.tensor()?.1,
                },
            );
        }
    }
    // Rockpool's end states (reconstruction error after training), over both precisions.
    let end_states: Vec<f64> = ["outputs_f32", "result_f32", "outputs_f64", "result_f64"]
        .iter()
        .filter_map(|k| case.opt(k))
        .filter_map(|o| o.opt("reconstruction_rel_rmse"))
        .map(|v| v.f64())
        .collect::<JResult<_>>()?;
    let mut checked = 0;
    for (precision, keys) in [
        (Precision::F32, ["outputs_f32", "result_f32"]),
        (Precision::F64, ["outputs_f64", "result_f64"]),
    ] {
        let Some((key, out)) = keys.iter().find_map(|k| case.opt(k).map(|o| (*k, o))) else {
            continue;
        };
        let options = AutoencoderOptions {
            fixed_epoch: fixed,
            num_epoch: h("num_epoch", 1e7)? as usize,
            step_size: h("step_size", 1e-4)?,
            penalty: h("f_penalty", 1e3)?,
            precision,
            ..AutoencoderOptions::default()
        };
        let q = dynap_quant::quantize(
            w_in.as_ref(),
            w_rec.as_ref(),
            &core_map,
            i_scale,
            &Options {
                method: Method::Autoencoder {
                    options,
                    init: init.clone(),
                },
                snap: None,
            },
        )
        .map_err(|e| format!("{key}: our quantizer failed: {e}"))?;
        // A cluster with nothing to represent: zero masks and zero currents, whatever Rockpool did.
        for report in &q.cores {
            if report.weights == 0 && report.iw != [0.0; 4] {
                return Err(format!(
                    "{key}: cluster {} has no non-zero weight but Iw = {:?}",
                    report.core, report.iw
                ));
            }
        }
        let rockpool_ok = out.opt("ok").map(|v| v.bool()).transpose()?.unwrap_or(true);
        if let Some(raw) = out.opt("raw").filter(|_| rockpool_ok) {
            check_raw(key, &raw, &q)?;
        } else if rockpool_ok {
            check_against_rockpool(
                key,
                &out,
                &q,
                case,
                &core_map,
                n_cluster,
                &w_in,
                &w_rec,
                i_scale,
                precision,
                &end_states,
            )?;
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("the case has no `outputs_f32`/`outputs_f64` (or `result_*`)".into());
    }
    Ok(())
}

/// Rockpool's `{ok: true, raw: {...}}` result (nothing to quantize): per output a list with one entry
/// per cluster, `Iw_0..Iw_3` numbers and the rest `null`. Our currents must equal its `Iw_k` (zero), and
/// every mask of ours must be zero.
fn check_raw(key: &str, raw: &J, q: &dynap_quant::Quantized) -> JResult<()> {
    for k in 0..4 {
        let name = format!("Iw_{k}");
        let theirs = raw.get(&name)?;
        for (c, v) in theirs.array()?.iter().enumerate() {
            let value = v
                .as_f64()
                .ok_or_else(|| format!("{key}: `{}[{c}]` is {v}, not a number", theirs.path()))?;
            let ours = q
                .cores
                .iter()
                .find(|r| r.core == c)
                .map_or(0.0, |r| r.iw[k]);
            if ours != value {
                return Err(format!(
                    "{key}: raw result, cluster {c}: our {name} is {ours:e} A, Rockpool's {value:e} A"
                ));
            }
        }
    }
    let masks = q
        .weights
        .w_in()
        .into_iter()
        .chain([q.weights.w_rec()])
        .flat_map(|m| m.masks().iter());
    if let Some(i) = masks.clone().position(|&m| m != 0) {
        return Err(format!(
            "{key}: raw result (nothing to quantize), but our mask entry {i} is non-zero"
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_against_rockpool(
    key: &str,
    out: &J,
    q: &dynap_quant::Quantized,
    case: &J,
    core_map: &[usize],
    n_cluster: usize,
    w_in: &Option<Matrix>,
    w_rec: &Option<Matrix>,
    i_scale: f64,
    precision: Precision,
    end_states: &[f64],
) -> JResult<()> {
    let n = core_map.len();
    let clusters = out.get("clusters")?;
    let n_out = clusters.array()?.len();
    if n_out != n_cluster {
        return Err(format!(
            "{key}: {n_out} clusters in the results, n_cluster = {n_cluster}"
        ));
    }
    let rel5 = Tolerance::relative(1e-5);
    for c in 0..n_cluster {
        let cl = clusters.at(c)?;
        let what = |s: &str| format!("{key}: cluster {c}: {s}");
        let iw_r = cl.get("Iw")?.tensor()?.1;
        if iw_r.len() != 4 {
            return Err(what("Iw does not have 4 values"));
        }
        let iw_r: [f64; 4] = std::array::from_fn(|k| iw_r[k]);
        // Signs are deterministic: sign of the weight inside the cluster, 0 elsewhere.
        for (mkey, skey, ours, orig) in [
            (
                "weights_in_mask",
                "sign_in",
                q.weights.w_in(),
                w_in.as_ref(),
            ),
            (
                "weights_rec_mask",
                "sign_rec",
                Some(q.weights.w_rec()),
                w_rec.as_ref(),
            ),
        ] {
            let (Some(sign_j), Some(mask_j)) = (cl.opt(skey), cl.opt(mkey)) else {
                continue;
            };
            let (shape, signs) = sign_j.tensor()?;
            if signs.is_empty() {
                continue;
            }
            let Some(ours) = ours.filter(|_| orig.is_some()) else {
                return Err(what(&format!(
                    "Rockpool has `{skey}`, the case no such matrix"
                )));
            };
            let ours_signs: Vec<f64> = ours
                .signs()
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    if core_map[i % n] == c {
                        f64::from(s)
                    } else {
                        0.0
                    }
                })
                .collect();
            first_difference(&what(skey), &ours_signs, &signs, &shape, Tolerance::EXACT)?;
            // Rockpool's masks, signs and Iw decode with our decoder to its reconstruction.
            let masks = mask_j.tensor()?.1;
            let rkey = if skey == "sign_in" {
                "reconstructed_w_in"
            } else {
                "reconstructed_w_rec"
            };
            if let Some(recon) = cl.opt(rkey) {
                // Rockpool's Iw as they are (an unconverged autoencoder can leave one negative), through
                // the level table our decoder uses.
                let levels = mask_levels(&iw_r, i_scale);
                let mut decoded = Vec::with_capacity(masks.len());
                for (i, (&m, &sg)) in masks.iter().zip(&signs).enumerate() {
                    if !(0.0..16.0).contains(&m) || m.fract() != 0.0 {
                        return Err(what(&format!("{mkey}: entry {i} is {m}, not a 4-bit mask")));
                    }
                    decoded.push(sg * levels[m as usize]);
                }
                first_difference(
                    &what(&format!("{rkey} decoded from Rockpool's masks")),
                    &decoded,
                    &recon.tensor()?.1,
                    &shape,
                    Tolerance {
                        rtol: 1e-5,
                        atol: 1e-12,
                    },
                )?;
            }
        }
        let ours = q.cores.iter().find(|r| r.core == c);
        let entries = cluster_entries(w_in.as_ref(), w_rec.as_ref(), core_map, c);
        if entries.is_empty() {
            if iw_r.iter().any(|&i| i != 0.0) {
                return Err(what(&format!("no weights, but Rockpool's Iw is {iw_r:?}")));
            }
            continue;
        }
        let (Some(ours), Some(init)) = (ours, case.opt("init").and_then(|i| i.at(c).ok())) else {
            continue;
        };
        let run = ours
            .autoencoder
            .as_ref()
            .ok_or_else(|| what("no autoencoder record"))?;
        // Magnitudes and scale.
        let g_flat = init.get("w_flat")?.tensor()?.1;
        let exact = match precision {
            Precision::F32 => Tolerance::EXACT,
            Precision::F64 => Tolerance::relative(1e-7),
        };
        let round = |v: f64| match precision {
            Precision::F32 => f64::from(v as f32),
            Precision::F64 => v,
        };
        let g_flat_r: Vec<f64> = g_flat.iter().map(|&v| round(v)).collect();
        first_difference(
            &what("w_flat"),
            &run.w_flat,
            &g_flat_r,
            &[g_flat.len()],
            exact,
        )?;
        // The cases store `1 / (max - min + 1)` evaluated in f64 on the magnitudes; Rockpool's f32 run
        // evaluates the same expression in f32 (which may differ from the rounded f64 value by an ulp).
        let g_scale = init.get("scale_factor")?.f64()?;
        let (max, min) = g_flat
            .iter()
            .fold((f64::NEG_INFINITY, f64::INFINITY), |(a, b), &v| {
                (a.max(v), b.min(v))
            });
        let s64 = 1.0 / (max - min + 1.0);
        if s64 != g_scale {
            return Err(what(&format!(
                "scale_factor: 1/(max - min + 1) of the case's w_flat is {s64:e}, the case says {g_scale:e}"
            )));
        }
        let expected = match precision {
            Precision::F32 => f64::from(1.0f32 / (max as f32 - min as f32 + 1.0f32)),
            Precision::F64 => s64,
        };
        if run.scale != expected {
            return Err(what(&format!(
                "scale_factor ours {:e}, expected {expected:e} (1/(max - min + 1) in the run's precision)",
                run.scale
            )));
        }
        // Loss trajectory.
        if let Some(trace) = out.opt("trace").and_then(|t| t.at(c).ok()) {
            let g_loss = trace.get("loss_per_epoch")?.tensor()?.1;
            for (upto, rtol) in [(16usize, 1e-4), (251, 1e-2)] {
                let m = upto.min(g_loss.len()).min(run.loss.len());
                first_difference(
                    &what(&format!("loss_per_epoch (epochs 0..{upto})")),
                    &run.loss[..m],
                    &g_loss[..m],
                    &[m],
                    Tolerance::relative(rtol),
                )?;
            }
            // Decoding Rockpool's final weights is deterministic.
            let enc = trace.get("w_en_final")?.tensor()?.1;
            let dec = trace.get("w_dec_final")?.tensor()?.1;
            let d = dynap_quant::autoencoder::decode(&g_flat, &enc, &dec, i_scale, precision);
            let (bshape, bits) = trace.get("bit_mask_final")?.tensor()?;
            let size = g_flat.len();
            let our_bits: Vec<f64> = (0..4 * size)
                .map(|i| f64::from(d.masks[i % size] >> (i / size) & 1))
                .collect();
            first_difference(
                &what("bit_mask_final decoded from Rockpool's final weights"),
                &our_bits,
                &bits,
                &bshape,
                Tolerance::EXACT,
            )?;
            let code = trace.get("code_final")?.tensor()?.1;
            first_difference(&what("code_final"), &d.code, &code, &[4], rel5)?;
            first_difference(&what("Iw"), &d.iw, &iw_r, &[4], rel5)?;
            // The masks of Rockpool's final weights, placed in the matrices, are its masks.
            let n_in = w_in.as_ref().map_or(0, Matrix::rows);
            for (k, &(row, col, _)) in entries.iter().enumerate() {
                let (mkey, r) = if row < n_in {
                    ("weights_in_mask", row)
                } else {
                    ("weights_rec_mask", row - n_in)
                };
                let theirs = cl.get(mkey)?.at(r)?.at(col)?.f64()?;
                if f64::from(d.masks[k]) != theirs {
                    return Err(what(&format!(
                        "{mkey}[{r}][{col}]: decoded {} but Rockpool's mask is {theirs}",
                        d.masks[k]
                    )));
                }
            }
        }
    }
    // End state: quality only. After thousands of epochs the run has forgotten rounding differences in
    // its own way; Rockpool's f32 and f64 runs of one case can end 40 % apart. Either of its end states
    // is a reference: ours must be within 25 % of one of them.
    if !end_states.is_empty() {
        let ours = q.relative_rms_error;
        if !end_states.iter().any(|&g| (ours - g).abs() <= 0.25 * g) {
            return Err(format!(
                "{key}: reconstruction relative RMS error ours {ours:.4}, Rockpool {end_states:.4?} (must be within 25 % of one of them)"
            ));
        }
    }
    Ok(())
}

//! Golden `mapping` cases (golden README "What mapping cases check", section 2.6).
//!
//! With the case's `core_map` (Rockpool's clustering): the per-cluster mean currents (rtol 1e-6) and
//! their `(coarse, fine)` codes (exact). Rockpool's quantized masks, signs and `Iw` go through our
//! allocator: the configuration must pass validation and reverse-map to exactly that quantized network
//! (masks and signs exact, base weights as the bias generator makes them, decoded weights as
//! `expected_roundtrip`, per-neuron currents as Rockpool's reverse mapping reads them). With one cluster,
//! the CAM, SRAM and input channel contents must in addition equal Rockpool's allocator's.

use super::{first_difference, ints, matrix};
use crate::json::{J, JResult};
use dynap_config::{Dendrite, Destination, MapOptions, map, unmap};
use dynap_model::{
    BiasGenerator, Param, QuantMatrix, QuantizedWeights, Tolerance, Variant, WeightMatrix,
};

fn bools(j: &J) -> JResult<u8> {
    let a = j.array()?;
    if a.len() != 4 {
        return Err(format!("`{}`: expected 4 booleans", j.path()));
    }
    let mut bits = 0;
    for (k, v) in a.iter().enumerate() {
        match v.as_bool() {
            Some(b) => bits |= u8::from(b) << k,
            None => return Err(format!("`{}[{k}]`: expected true or false", j.path())),
        }
    }
    Ok(bits)
}

fn dest_of(j: &J) -> JResult<(u8, i64, i64, i64)> {
    Ok((
        bools(&j.get("core")?)?,
        j.get("x_hop")?.f64()? as i64,
        j.get("y_hop")?.f64()? as i64,
        j.get("tag")?.f64()? as i64,
    ))
}

fn ours_dest(d: &Destination) -> (u8, i64, i64, i64) {
    (
        d.core.bits(),
        i64::from(d.x_hop.get()),
        i64::from(d.y_hop.get()),
        i64::from(d.tag.get()),
    )
}

pub(super) fn check_mapping(c: &J) -> JResult<()> {
    let net = c.get("network")?;
    let spec = c.get("mapper_spec")?;
    let core_map = ints(&spec.get("core_map")?)?;
    let n = core_map.len();
    let n_cluster = spec.get("n_cluster")?.f64()? as usize;
    let w_in = match net.opt("w_in") {
        Some(w) => Some(matrix(&w)?),
        None => None,
    };
    let n_in = w_in.as_ref().map_or(0, |m| m.rows());
    let params = params_from(&net, n)?;
    let i_scale = spec.get("Iscale")?.f64()?;

    // Cluster means.
    let rel6 = Tolerance::relative(1e-6);
    for p in Param::CURRENTS {
        let Some(theirs) = spec.opt(p.rockpool_name()) else {
            continue;
        };
        let (_, theirs) = theirs.tensor()?;
        for (cl, &t) in theirs.iter().enumerate().take(n_cluster) {
            let members: Vec<usize> = (0..n).filter(|&j| core_map[j] == cl).collect();
            if members.is_empty() {
                continue;
            }
            let mean =
                members.iter().map(|&j| params.get(p)[j]).sum::<f64>() / members.len() as f64;
            if !rel6.close(mean, t) {
                return Err(format!(
                    "mapper_spec.{}[{cl}]: our cluster mean {mean:e}, Rockpool {t:e}",
                    p.rockpool_name()
                ));
            }
        }
    }

    // Rockpool's quantization, combined over clusters.
    let clusters = c.get("quantization")?.get("clusters")?;
    let cores = core_map.iter().max().map_or(1, |m| m + 1);
    let mut base = vec![[0.0; 4]; cores];
    let mut in_mask = vec![0u8; n_in * n];
    let mut in_sign = vec![0i8; n_in * n];
    let mut rec_mask = vec![0u8; n * n];
    let mut rec_sign = vec![0i8; n * n];
    #[allow(clippy::needless_range_loop)] // `cl` is also the cluster id in messages and `base`
    for cl in 0..clusters.array()?.len() {
        let q = clusters.at(cl)?;
        let iw = q.get("Iw")?.tensor()?.1;
        if iw.len() != 4 || cl >= cores {
            return Err(format!("quantization.clusters[{cl}]: malformed"));
        }
        // Negative currents (an unconverged quantizer) map to the smallest code, as in Rockpool.
        base[cl] = std::array::from_fn(|k| iw[k].max(0.0));
        for (mkey, skey, masks, signs) in [
            ("weights_in_mask", "sign_in", &mut in_mask, &mut in_sign),
            ("weights_rec_mask", "sign_rec", &mut rec_mask, &mut rec_sign),
        ] {
            let (Some(m), Some(s)) = (q.opt(mkey), q.opt(skey)) else {
                continue;
            };
            let (m, s) = (m.tensor()?.1, s.tensor()?.1);
            if m.len() != masks.len() || s.len() != masks.len() {
                return Err(format!(
                    "quantization.clusters[{cl}].{mkey}: {} values, expected {}",
                    m.len(),
                    masks.len()
                ));
            }
            for i in 0..m.len() {
                if m[i] != 0.0 || s[i] != 0.0 {
                    masks[i] = m[i] as u8;
                    signs[i] = s[i] as i8;
                }
            }
        }
    }
    let to_s = |e: dynap_model::Error| e.to_string();
    let q_in = (n_in > 0)
        .then(|| QuantMatrix::new(WeightMatrix::Input, n_in, n, in_mask, in_sign))
        .transpose()
        .map_err(to_s)?;
    let q_rec =
        QuantMatrix::new(WeightMatrix::Recurrent, n, n, rec_mask, rec_sign).map_err(to_s)?;
    let quantized =
        QuantizedWeights::new(core_map.clone(), base, q_in, q_rec, i_scale).map_err(to_s)?;
    let mapped = map(
        &quantized,
        &params,
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )
    .map_err(|e| format!("our mapping failed: {e}"))?;

    // Codes.
    let allocs = c.get("allocator_no_samna")?;
    for a in 0..allocs.array()?.len() {
        let alloc = allocs.at(a)?;
        let cl = match alloc.opt("cluster") {
            Some(v) => v.f64()? as usize,
            None => a,
        };
        if alloc.opt("ok").map(|v| v.bool()).transpose()? == Some(false) {
            continue;
        }
        let Some(exported) = alloc.opt("exported_coarse_fine") else {
            continue;
        };
        let core = &mapped.config.chips[cl / 4].cores[cl % 4];
        for (name, code) in exported.entries()? {
            let (_, v) = code.tensor()?;
            let ours = dynap_config::get_param(&core.parameters, name)
                .ok_or_else(|| format!("cluster {cl}: we wrote no {name}"))?;
            if v.len() < 2 || (f64::from(ours.coarse), f64::from(ours.fine)) != (v[0], v[1]) {
                return Err(format!(
                    "cluster {cl}: {name} ours ({}, {}), Rockpool {v:?}",
                    ours.coarse, ours.fine
                ));
            }
        }
        if n_cluster == 1 {
            compare_memories(&alloc, &mapped)?;
        }
    }

    // Back.
    let back = unmap(
        &mapped.config,
        Some(&mapped.mapping),
        i_scale,
        1e-3,
        &BiasGenerator::dynapse2(),
    )
    .map_err(|e| format!("our reverse mapping failed: {e}"))?;
    // A connection is a non-zero mask with a sign; a zero mask is no connection whatever its sign
    // (Rockpool keeps sign(w) where a weight quantized to 0).
    let connections = |m: Option<&QuantMatrix>| -> Vec<(u8, i8)> {
        m.map(|m| {
            m.masks()
                .iter()
                .zip(m.signs())
                .map(|(&q, &s)| if q > 0 && s != 0 { (q, s) } else { (0, 0) })
                .collect()
        })
        .unwrap_or_default()
    };
    for (what, ours, theirs) in [
        ("w_in", back.weights.w_in(), quantized.w_in()),
        ("w_rec", Some(back.weights.w_rec()), Some(quantized.w_rec())),
    ] {
        let (a, b) = (connections(ours), connections(theirs));
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            return Err(format!(
                "reverse mapping, {what} entry {i} (pre {}, post {}): (mask, sign) ours {:?}, quantized {:?}",
                i / n,
                i % n,
                a.get(i),
                b.get(i)
            ));
        }
    }
    // Whatever Rockpool's own reverse mapping did: the base weights and every neuron's currents come
    // back as its cluster's exported codes make them.
    let generator = BiasGenerator::dynapse2();
    for a in 0..allocs.array()?.len() {
        let alloc = allocs.at(a)?;
        let cl = match alloc.opt("cluster") {
            Some(v) => v.f64()? as usize,
            None => a,
        };
        let Some(exported) = alloc.opt("exported_coarse_fine") else {
            continue;
        };
        for (name, code) in exported.entries()? {
            let (_, v) = code.tensor()?;
            let code = dynap_model::BiasCode::new(v[0] as u8, v[1] as u8)
                .ok_or_else(|| format!("`{}`: not a code", code.path()))?;
            let current = generator
                .current_from_code(name, code)
                .map_err(|e| e.to_string())?;
            let Some(sim) = dynap_model::sim_from_chip_bias(name) else {
                continue;
            };
            let ours: Vec<(String, f64)> = if let Some(k) = sim
                .strip_prefix("Iw_")
                .and_then(|k| k.parse::<usize>().ok())
            {
                back.weights
                    .base_currents()
                    .get(cl)
                    .map(|b| vec![(format!("Iw_{k}"), b[k])])
                    .unwrap_or_default()
            } else {
                let param = match sim {
                    "Igain_ampa" => Some(Param::IgainSyn),
                    "Itau_ampa" => Some(Param::ItauSyn),
                    other => Param::from_name(other),
                };
                match param {
                    Some(p) => (0..n)
                        .filter(|&j| core_map[j] == cl)
                        .filter(|&j| {
                            // Unlatched neurons get no DC (checked against Rockpool's currents below).
                            let place = back.neurons[j];
                            p != Param::Idc
                                || mapped
                                    .config
                                    .neuron(place.chip, place.core, place.neuron)
                                    .is_some_and(|nn| nn.latches[0])
                        })
                        .map(|j| {
                            (
                                format!("{sim} of neuron {j}"),
                                back.network.params.get(p)[j],
                            )
                        })
                        .collect(),
                    None => Vec::new(),
                }
            };
            for (what, v) in ours {
                if !Tolerance::relative(1e-12).close(v, current) {
                    return Err(format!(
                        "reverse mapping, cluster {cl}: {what} is {v:e} A; {name} code ({}, {}) makes {current:e} A",
                        code.coarse(),
                        code.fine()
                    ));
                }
            }
        }
    }
    if let Some(from_config) = c.opt("dynapsim_net_from_config") {
        if let Some(expected) = from_config.opt("expected_roundtrip") {
            if let Some(iw) = expected.opt("Iw_after_biasgen") {
                let (_, iw) = iw.tensor()?;
                let ours: Vec<f64> = back
                    .weights
                    .base_currents()
                    .iter()
                    .flatten()
                    .copied()
                    .take(iw.len())
                    .collect();
                first_difference(
                    "Iw_after_biasgen",
                    &ours,
                    &iw,
                    &[iw.len()],
                    Tolerance::relative(1e-12),
                )?;
            }
            let tol = Tolerance {
                rtol: 1e-9,
                atol: 1e-15,
            };
            if let (Some(w), Some(ours)) = (expected.opt("w_in"), &back.network.w_in) {
                let (shape, w) = w.tensor()?;
                first_difference("expected_roundtrip.w_in", ours.as_slice(), &w, &shape, tol)?;
            }
            if let Some(w) = expected.opt("w_rec") {
                let (shape, w) = w.tensor()?;
                first_difference(
                    "expected_roundtrip.w_rec",
                    back.network.w_rec.as_slice(),
                    &w,
                    &shape,
                    tol,
                )?;
            }
        }
        if let Some(currents) = from_config.opt("currents") {
            for (name, v) in currents.entries()? {
                let Some(p) = Param::from_name(name) else {
                    continue;
                };
                let (_, mut v) = v.tensor()?;
                if p == Param::Idc {
                    // Rockpool's reverse mapping ignores the DC latch; the chip injects Idc only into
                    // latched neurons, and so does ours: there, 0 exactly.
                    for (j, place) in back.neurons.iter().enumerate() {
                        let latched = mapped
                            .config
                            .neuron(place.chip, place.core, place.neuron)
                            .is_some_and(|n| n.latches[0]);
                        if !latched && j < v.len() {
                            v[j] = 0.0;
                        }
                    }
                }
                first_difference(
                    &format!("dynapsim_net_from_config.currents.{name}"),
                    back.network.params.get(p),
                    &v,
                    &[v.len()],
                    Tolerance::relative(1e-6),
                )?;
            }
        }
    }
    Ok(())
}

/// One cluster on chip 0 core 0: CAM, SRAM and input channels equal Rockpool's allocator's.
fn compare_memories(alloc: &J, mapped: &dynap_config::Mapped) -> JResult<()> {
    let core = &mapped.config.chips[0].cores[0];
    let cam = alloc.get("CAM")?;
    for (key, entries) in cam.entries()? {
        let neuron: usize = key
            .parse()
            .map_err(|_| format!("CAM key {key:?} is not a neuron"))?;
        let ours: Vec<(i64, u8, i64)> = core.neurons[neuron]
            .synapses
            .iter()
            .filter(|s| s.is_active())
            .map(|s| (s.dendrite.value(), s.weight.bits(), i64::from(s.tag.get())))
            .collect();
        let mut theirs = Vec::new();
        for i in 0..entries.array()?.len() {
            let e = entries.at(i)?;
            theirs.push((
                e.get("dendrite")?.f64()? as i64,
                bools(&e.get("weight")?)?,
                e.get("tag")?.f64()? as i64,
            ));
        }
        if ours != theirs {
            return Err(format!(
                "CAM of neuron {neuron}: ours {ours:?}, Rockpool {theirs:?} (dendrite {}/{} = AMPA/GABA, weight bits, tag)",
                Dendrite::Ampa.value(),
                Dendrite::Gaba.value()
            ));
        }
    }
    let sram = alloc.get("SRAM")?;
    for (key, entries) in sram.entries()? {
        let neuron: usize = key
            .parse()
            .map_err(|_| format!("SRAM key {key:?} is not a neuron"))?;
        let ours: Vec<_> = core.neurons[neuron]
            .destinations
            .iter()
            .filter(|d| d.is_used())
            .map(ours_dest)
            .collect();
        let mut theirs = Vec::new();
        for i in 0..entries.array()?.len() {
            theirs.push(dest_of(&entries.at(i)?)?);
        }
        if ours != theirs {
            return Err(format!(
                "SRAM of neuron {neuron}: ours {ours:?}, Rockpool {theirs:?} (core mask, x_hop, y_hop, tag)"
            ));
        }
    }
    let inputs = alloc.get("input_channel_map")?;
    for (key, entries) in inputs.entries()? {
        let ch: usize = key
            .parse()
            .map_err(|_| format!("input channel {key:?} is not a number"))?;
        let ours: Vec<_> = mapped
            .mapping
            .inputs
            .get(ch)
            .map(|d| d.iter().map(ours_dest).collect())
            .unwrap_or_default();
        let mut theirs = Vec::new();
        for i in 0..entries.array()?.len() {
            theirs.push(dest_of(&entries.at(i)?)?);
        }
        if ours != theirs {
            return Err(format!(
                "input channel {ch}: ours {ours:?}, Rockpool {theirs:?}"
            ));
        }
    }
    Ok(())
}

/// The per-neuron parameters of a case's network (Rockpool's names; a number for all neurons or one
/// per neuron), defaults for the others.
fn params_from(net: &J, n: usize) -> JResult<dynap_model::NeuronParams> {
    let mut p = dynap_model::NeuronParams::defaults(n);
    for param in Param::ALL {
        if let Some(j) = net.opt(param.rockpool_name()) {
            let (shape, data) = j.tensor()?;
            *p.get_mut(param) = match (shape.len(), data.len()) {
                (0, 1) => vec![data[0]; n],
                (1, len) if len == n => data,
                _ => {
                    return Err(format!(
                        "`{}`: expected {n} values (one per neuron) or one, found shape {shape:?}",
                        j.path()
                    ));
                }
            };
        }
    }
    p.validate(n).map_err(|e| e.to_string())?;
    Ok(p)
}

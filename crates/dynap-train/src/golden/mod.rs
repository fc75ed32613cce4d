//! The golden harness: checks reference cases produced by running Rockpool 3.1.0 (the schema and the
//! tolerances of the golden README, copied into `tests/fixtures/golden/README.md`).
//!
//! Every `*.json` file of a folder is one case; the harness dispatches on its `kind`. Nothing depends on
//! file names or on particular networks: cases with other sizes, parameters and weights of the same kinds
//! are checked the same way. A kind the harness does not know, or whose capability is not built yet, is a
//! failure, never a skip.

mod mapping;
mod quant;

use crate::json::{J, JResult};
use dynap_autodiff::Loss;
use dynap_model::translation::{gain_current, gain_ratio, pulse_converter, tau_converter};
use dynap_model::{
    BiasCode, BiasGenerator, CoreParams, GradientOptions, Input, Matrix, Network, NeuronParams,
    OutputGradients, Param, Real, Recording, RunOptions, Simulator, Tolerance, Variant,
    chip_bias_from_sim,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseOutcome {
    /// The case's name (its file stem).
    pub name: String,
    /// `Ok` when it passed, otherwise the first difference found.
    pub result: Result<(), String>,
}

/// Why a folder could not be checked at all.
#[derive(Debug)]
pub enum GoldenError {
    /// The folder cannot be listed.
    Unreadable {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder holds no `*.json` case.
    NoCases {
        /// The folder.
        dir: PathBuf,
    },
}

impl std::fmt::Display for GoldenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoldenError::Unreadable { dir, source } => {
                write!(f, "cannot read {}: {source}", dir.display())
            }
            GoldenError::NoCases { dir } => write!(f, "{} holds no *.json case", dir.display()),
        }
    }
}

impl std::error::Error for GoldenError {}

/// Checks every `*.json` case in `dir`, in file-name order.
pub fn check_dir(dir: &Path) -> Result<Vec<CaseOutcome>, GoldenError> {
    Ok(case_files(dir)?.iter().map(|p| check_file(p)).collect())
}

/// The `*.json` case files of `dir`, in file-name order; an error if there is none.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, GoldenError> {
    let unreadable = |source| GoldenError::Unreadable {
        dir: dir.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(GoldenError::NoCases {
            dir: dir.to_owned(),
        });
    }
    Ok(files)
}

/// Checks one case file; the outcome is named by the file stem.
pub fn check_file(path: &Path) -> CaseOutcome {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|text| check_case(&text));
    CaseOutcome { name, result }
}

/// Checks one case given as JSON text.
pub fn check_case(text: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let c = J::root(&value);
    let kind = c.get("kind")?.str()?;
    match kind {
        "sim" => check_sim(&c),
        "biasgen_forward" => check_biasgen_forward(&c),
        "biasgen_reverse" => check_biasgen_reverse(&c),
        "translation" => check_translation(&c),
        "translation_updates" => check_translation_updates(&c),
        "grad" => check_grad(&c),
        "mismatch" => check_mismatch(&c),
        "quant" => quant::check_quant(&c),
        "mapping" => mapping::check_mapping(&c),
        other => Err(format!("unknown kind `{other}`")),
    }
}

// ---------------------------------------------------------------------------------------------------
// Simulation

/// The tolerances of the golden README, section 3.
struct SimTolerances {
    current: Tolerance,
    vmem: Tolerance,
    timer: Tolerance,
}

const F32_TOL: SimTolerances = SimTolerances {
    current: Tolerance {
        rtol: 2e-3,
        atol: 1e-13,
    },
    vmem: Tolerance::absolute(1e-3),
    timer: Tolerance {
        rtol: 2e-3,
        atol: 1e-9,
    },
};

// An f64 implementation against Rockpool's f64 run: rtol 1e-8, atol 1e-20 A (README). vmem and the
// timer get the same relative part, with an absolute floor in their own unit for values near zero.
const F64_TOL: SimTolerances = SimTolerances {
    current: Tolerance {
        rtol: 1e-8,
        atol: 1e-20,
    },
    vmem: Tolerance {
        rtol: 1e-8,
        atol: 1e-12,
    },
    timer: Tolerance {
        rtol: 1e-8,
        atol: 1e-15,
    },
};

/// A network from a `sim` or `grad` case: `params`, `w_in` (or null), `w_rec`, `Iscale`, `dt`.
pub(crate) fn network_from_case(c: &J) -> JResult<Network> {
    let model = c.get("model")?;
    let n = model.get("N")?.f64()? as usize;
    let params_j = c.get("params")?;
    let mut params = NeuronParams::defaults(n);
    for p in Param::ALL {
        if let Some(v) = params_j.opt(p.rockpool_name()) {
            let (shape, data) = v.tensor()?;
            *params.get_mut(p) = match shape.len() {
                0 => vec![data[0]; n],
                1 if data.len() == n => data,
                _ => {
                    return Err(format!(
                        "`{}`: expected {n} values, found shape {shape:?}",
                        v.path()
                    ));
                }
            };
        }
    }
    let w_in = match c.opt("w_in") {
        Some(w) => Some(matrix(&w)?),
        None => None,
    };
    let w_rec = match c.opt("w_rec") {
        Some(w) => matrix(&w)?,
        None => Matrix::zeros(n, n),
    };
    let net = Network {
        params,
        w_in,
        w_rec,
        i_scale: c.get("Iscale")?.f64()?,
        dt: c.get("dt")?.f64()?,
        variant: Variant::Rockpool,
        chip: None,
    };
    net.validate()
        .map_err(|e| format!("the case's network is invalid: {e}"))?;
    Ok(net)
}

/// Non-negative integers (core maps, masks) from a numeric array.
fn ints(j: &J) -> JResult<Vec<usize>> {
    j.indices(usize::MAX)
}

fn matrix(j: &J) -> JResult<Matrix> {
    let (shape, data) = j.tensor_rank(2)?;
    let (r, c) = (shape[0], shape.get(1).copied().unwrap_or(0));
    Matrix::from_vec(r, c, data).ok_or_else(|| format!("`{}`: malformed matrix", j.path()))
}

/// A run's outputs widened to f64: spikes and traces `[B, T, N]`, final state `[B, N]`.
pub(crate) struct Run {
    pub(crate) spikes: Vec<f64>,
    traces: [Vec<f64>; 4],
    final_state: [Vec<f64>; 6],
}

const TRACE_NAMES: [&str; 4] = ["imem", "isyn", "iahp", "vmem"];
const FINAL_NAMES: [&str; 6] = ["imem", "isyn", "iahp", "spikes", "timer_ref", "vmem"];

pub(crate) fn simulate<T: Real>(
    net: &Network,
    input: &[f64],
    batch: usize,
    steps: usize,
) -> Result<Run, String> {
    let sim = Simulator::<T>::new(net).map_err(|e| e.to_string())?;
    let data: Vec<T> = input.iter().map(|&x| T::from_f64(x)).collect();
    let input = if net.w_in.is_some() {
        Input::Spikes {
            data: &data,
            batch,
            steps,
        }
    } else {
        Input::Weighted {
            data: &data,
            batch,
            steps,
        }
    };
    let options = RunOptions {
        recording: Recording::Full,
        threads: 0,
    };
    let tr = sim.run(input, None, &options).map_err(|e| e.to_string())?;
    let w = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let st = tr.records.as_ref().ok_or("the run recorded no states")?;
    let f = &tr.final_state;
    Ok(Run {
        spikes: w(&tr.spikes),
        traces: [w(&st.imem), w(&st.isyn), w(&st.iahp), w(&st.vmem)],
        final_state: [
            w(&f.imem),
            w(&f.isyn),
            w(&f.iahp),
            w(&f.spikes),
            w(&f.timer_ref),
            w(&f.vmem),
        ],
    })
}

/// The first index where two arrays of shape `shape` differ beyond `tol`, as a message.
fn first_difference(
    what: &str,
    ours: &[f64],
    theirs: &[f64],
    shape: &[usize],
    tol: Tolerance,
) -> Result<(), String> {
    if ours.len() != theirs.len() {
        return Err(format!(
            "{what}: we have {} values, Rockpool {}",
            ours.len(),
            theirs.len()
        ));
    }
    match ours
        .iter()
        .zip(theirs)
        .position(|(&a, &b)| !tol.close(a, b))
    {
        None => Ok(()),
        Some(i) => {
            let mut idx = Vec::with_capacity(shape.len());
            let mut rem = i;
            for d in shape.iter().rev() {
                idx.push(rem % d.max(&1));
                rem /= d.max(&1);
            }
            idx.reverse();
            Err(format!(
                "{what}{idx:?}: ours {:e}, Rockpool {:e} (tolerance rtol {:e}, atol {:e})",
                ours[i], theirs[i], tol.rtol, tol.atol
            ))
        }
    }
}

fn check_sim(c: &J) -> JResult<()> {
    let net = network_from_case(c)?;
    let input = c.get("input")?.get("data")?;
    let (shape, data) = input.tensor_rank(3)?;
    let (batch, steps, channels) = (shape[0], shape[1], shape[2]);
    if channels != net.input_channels() {
        return Err(format!(
            "`input.data` has {channels} channels, the network takes {}",
            net.input_channels()
        ));
    }
    let mut checked = 0;
    for (key, f64_mode) in [("outputs_f32", false), ("outputs_f64", true)] {
        let Some(out) = c.opt(key) else { continue };
        let run = if f64_mode {
            simulate::<f64>(&net, &data, batch, steps)?
        } else {
            simulate::<f32>(&net, &data, batch, steps)?
        };
        let tol = if f64_mode { &F64_TOL } else { &F32_TOL };
        compare_run(&out, key, &run, &[batch, steps, net.neurons()], tol)?;
        checked += 1;
    }
    if checked == 0 {
        return Err("the case has neither `outputs_f32` nor `outputs_f64`".into());
    }
    Ok(())
}

fn compare_run(out: &J, key: &str, run: &Run, shape: &[usize], tol: &SimTolerances) -> JResult<()> {
    let (_, spikes) = out.get("spikes")?.tensor_rank(3)?;
    first_difference(
        &format!("{key}: spikes"),
        &run.spikes,
        &spikes,
        shape,
        Tolerance::EXACT,
    )?;
    for (name, ours) in TRACE_NAMES.iter().zip(&run.traces) {
        let Some(theirs) = out.opt(name) else {
            continue;
        };
        let (_, theirs) = theirs.tensor_rank(3)?;
        let t = if *name == "vmem" {
            tol.vmem
        } else {
            tol.current
        };
        first_difference(&format!("{key}: {name}"), ours, &theirs, shape, t)?;
    }
    if let Some(fs) = out.opt("final_state") {
        for (name, ours) in FINAL_NAMES.iter().zip(&run.final_state) {
            let Some(theirs) = fs.opt(name) else { continue };
            let (_, theirs) = theirs.tensor()?;
            let t = match *name {
                "vmem" => tol.vmem,
                "timer_ref" => tol.timer,
                "spikes" => Tolerance::EXACT,
                _ => tol.current,
            };
            first_difference(
                &format!("{key}: final_state.{name}"),
                ours,
                &theirs,
                &shape[..1]
                    .iter()
                    .chain(&shape[2..])
                    .copied()
                    .collect::<Vec<_>>(),
                t,
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Bias generator

const BIASGEN_FORWARD: Tolerance = Tolerance::relative(1e-15);

fn code(j: &J, coarse: &str, fine: &str) -> JResult<BiasCode> {
    let c = j.get(coarse)?.f64()?;
    let f = j.get(fine)?.f64()?;
    code_from_pair(c, f, j.path())
}

fn code_from_pair(c: f64, f: f64, path: &str) -> JResult<BiasCode> {
    if c.fract() != 0.0 || f.fract() != 0.0 || !(0.0..=255.0).contains(&f) {
        return Err(format!("`{path}`: ({c}, {f}) is not a bias code"));
    }
    BiasCode::new(c as u8, f as u8).ok_or_else(|| format!("`{path}`: coarse {c} is not in 0..=5"))
}

fn check_names(dev: &str, entry: &J, generator: &BiasGenerator) -> JResult<()> {
    if let Some(sim) = entry.opt("sim_name") {
        let sim = sim.str()?;
        if chip_bias_from_sim(sim) != Some(dev) {
            return Err(format!(
                "{dev}: Rockpool maps it from {sim}, we map {sim} to {:?}",
                chip_bias_from_sim(sim)
            ));
        }
    }
    if let Some(s) = entry.opt("scale_factor") {
        let ours = generator.scale(dev).map_err(|e| e.to_string())?;
        if ours != s.f64()? {
            return Err(format!(
                "{dev}: scale factor ours {ours}, Rockpool {}",
                s.f64()?
            ));
        }
    }
    Ok(())
}

fn check_biasgen_forward(c: &J) -> JResult<()> {
    let generator = BiasGenerator::dynapse2();
    if let Some(table) = c.opt("paramgen_se2") {
        for (t, rows) in table.entries()? {
            let ttype = dynap_model::TransistorType::of_bias(t)
                .ok_or_else(|| format!("unknown transistor type {t}"))?;
            for (coarse, row) in rows.entries()? {
                let (_, values) = row.tensor_rank(1)?;
                for (fine, &v) in values.iter().enumerate() {
                    let code = code_from_pair(
                        coarse.parse::<f64>().unwrap_or(f64::NAN),
                        fine as f64,
                        row.path(),
                    )?;
                    let ours = generator.table().raw_current(ttype, code);
                    if ours != v {
                        return Err(format!(
                            "paramgen_se2.{t}.{coarse}[{fine}]: ours {ours:e}, Rockpool {v:e}"
                        ));
                    }
                }
            }
        }
    }
    if let Some(scales) = c.opt("scale_factor_se2") {
        for (name, s) in scales.entries()? {
            let ours = generator.scale(name).map_err(|e| e.to_string())?;
            if ours != s.f64()? {
                return Err(format!(
                    "scale_factor_se2.{name}: ours {ours}, Rockpool {}",
                    s.f64()?
                ));
            }
        }
    }
    if let Some(map) = c.opt("sim2device") {
        for (sim, dev) in map.entries()? {
            let dev = dev.str()?;
            if chip_bias_from_sim(sim) != Some(dev) {
                return Err(format!(
                    "sim2device.{sim}: Rockpool {dev}, ours {:?}",
                    chip_bias_from_sim(sim)
                ));
            }
        }
    }
    let per = c.get("per_parameter")?;
    for (dev, entry) in per.entries()? {
        check_names(dev, &entry, &generator)?;
        let (shape, currents) = entry.get("current")?.tensor_rank(2)?;
        let fine_levels = shape[1];
        for (i, &theirs) in currents.iter().enumerate() {
            let code = code_from_pair(
                (i / fine_levels) as f64,
                (i % fine_levels) as f64,
                entry.path(),
            )?;
            let ours = generator
                .current_from_code(dev, code)
                .map_err(|e| e.to_string())?;
            if !BIASGEN_FORWARD.close(ours, theirs) {
                return Err(format!(
                    "per_parameter.{dev}.current[{}][{}]: ours {ours:e}, Rockpool {theirs:e}",
                    code.coarse(),
                    code.fine()
                ));
            }
        }
    }
    Ok(())
}

fn check_biasgen_reverse(c: &J) -> JResult<()> {
    let generator = BiasGenerator::dynapse2();
    let per = c.get("per_parameter")?;
    let mut checked = 0;
    for (dev, entry) in per.entries()? {
        check_names(dev, &entry, &generator)?;
        let results = entry.get("results")?;
        for i in 0..results.array()?.len() {
            let r = results.at(i)?;
            let target = r.get("target")?.f64()?;
            let want = code(&r, "coarse", "fine")?;
            let got = generator
                .code_from_current(dev, target)
                .map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!(
                    "{}: target {target:e} A gives ({}, {}) here, Rockpool ({}, {})",
                    r.path(),
                    got.coarse(),
                    got.fine(),
                    want.coarse(),
                    want.fine()
                ));
            }
            if let Some(cur) = r.opt("current") {
                let ours = generator
                    .current_from_code(dev, got)
                    .map_err(|e| e.to_string())?;
                if !BIASGEN_FORWARD.close(ours, cur.f64()?) {
                    return Err(format!(
                        "{}: current ours {ours:e}, Rockpool {:e}",
                        r.path(),
                        cur.f64()?
                    ));
                }
            }
            checked += 1;
        }
    }
    if checked == 0 {
        return Err("the case has no reverse results".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Translation

const TRANSLATION: Tolerance = Tolerance::relative(1e-12);

fn scalar(j: &J) -> JResult<f64> {
    let (_, data) = j.tensor()?;
    match data.as_slice() {
        [x] => Ok(*x),
        _ => Err(format!("`{}`: expected one number", j.path())),
    }
}

fn compare_core(what: &str, ours: &CoreParams, theirs: &J) -> JResult<()> {
    for (name, v) in theirs.entries()? {
        let ours_v = ours
            .get(name)
            .ok_or_else(|| format!("{what}: Rockpool has a field `{name}` we do not know"))?;
        let theirs_v = scalar(&v)?;
        if !TRANSLATION.close(ours_v, theirs_v) {
            return Err(format!(
                "{what}.{name}: ours {ours_v:e}, Rockpool {theirs_v:e}"
            ));
        }
    }
    Ok(())
}

fn compare_optional(what: &str, ours: Option<f64>, theirs: &Value) -> JResult<()> {
    match (ours, theirs.as_f64()) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if TRANSLATION.close(a, b) => Ok(()),
        (a, _) => Err(format!("{what}: ours {a:?}, Rockpool {theirs}")),
    }
}

fn check_translation(c: &J) -> JResult<()> {
    let mut inputs = Vec::new();
    if let Some(i) = c.opt("inputs") {
        for (name, v) in i.entries()? {
            inputs.push((name, scalar(&v)?));
        }
    }
    let core = CoreParams::from_specification(&inputs).map_err(|e| e.to_string())?;
    compare_core("core", &core, &c.get("core")?)?;
    if let Some(t) = c.opt("time_from_core") {
        let ours = core.time_constants();
        for (name, v) in t.entries()? {
            let o = ours
                .iter()
                .find(|x| x.0 == name)
                .ok_or_else(|| format!("unknown time constant {name}"))?;
            compare_optional(&format!("time_from_core.{name}"), o.1, v.v)?;
        }
    }
    if let Some(g) = c.opt("gain_from_core") {
        let ours = core.gain_ratios();
        for (name, v) in g.entries()? {
            let o = ours
                .iter()
                .find(|x| x.0 == name)
                .ok_or_else(|| format!("unknown gain ratio {name}"))?;
            compare_optional(&format!("gain_from_core.{name}"), o.1, v.v)?;
        }
    }
    let generator = BiasGenerator::dynapse2();
    if let Some(e) = c.opt("exported_coarse_fine") {
        let ours = core.bias_codes(&generator).map_err(|e| e.to_string())?;
        let mut theirs = Vec::new();
        for (dev, pair) in e.entries()? {
            let want = code_from_pair(pair.at(0)?.f64()?, pair.at(1)?.f64()?, pair.path())?;
            let got = ours
                .iter()
                .find(|x| x.0 == dev)
                .ok_or_else(|| format!("we export no bias {dev}"))?
                .1;
            if got != want {
                return Err(format!(
                    "exported_coarse_fine.{dev}: ours ({}, {}), Rockpool ({}, {})",
                    got.coarse(),
                    got.fine(),
                    want.coarse(),
                    want.fine()
                ));
            }
            theirs.push((dev, want));
        }
        if let Some(back) = c.opt("core_from_exported") {
            let restored =
                CoreParams::from_bias_codes(&generator, &theirs).map_err(|e| e.to_string())?;
            compare_core("core_from_exported", &restored, &back)?;
        }
    }
    Ok(())
}

fn apply_update(core: &CoreParams, key: &str, value: f64) -> JResult<CoreParams> {
    let (kind, attr) = key
        .split_once(':')
        .ok_or_else(|| format!("update key {key:?} is not kind:attr"))?;
    match kind {
        "time" => core.with_time_constant(attr, value),
        "gain" => core.with_gain_ratio(attr, value),
        "current" => core.with_value(attr, value),
        _ => return Err(format!("update kind {kind:?} in {key:?}")),
    }
    .map_err(|e| e.to_string())
}

fn check_translation_updates(c: &J) -> JResult<()> {
    let base = CoreParams::defaults();
    if let Some(b) = c.opt("base_core") {
        compare_core("base_core", &base, &b)?;
    }
    let mut fast_inputs = Vec::new();
    if let Some(i) = c.opt("fast_core_inputs") {
        for (name, v) in i.entries()? {
            fast_inputs.push((name, scalar(&v)?));
        }
    }
    let fast = CoreParams::from_specification(&fast_inputs).map_err(|e| e.to_string())?;
    if let Some(f) = c.opt("fast_core") {
        compare_core("fast_core", &fast, &f)?;
    }
    for (key, start) in [("updates", &base), ("updates_on_fast_core", &fast)] {
        let Some(u) = c.opt(key) else { continue };
        for (name, entry) in u.entries()? {
            let updated = apply_update(start, name, entry.get("value")?.f64()?)?;
            compare_core(&format!("{key}.{name}.core"), &updated, &entry.get("core")?)?;
        }
    }
    if let Some(conv) = c.opt("converters") {
        for i in 0..conv.array()?.len() {
            let r = conv.at(i)?;
            let x = r.get("tau")?.f64()?;
            let cap = r.get("C")?.f64()?;
            let ut = r.opt("Ut").map(|v| v.f64()).transpose()?.unwrap_or(0.025);
            let kappa = r
                .opt("kappa")
                .map(|v| v.f64())
                .transpose()?
                .unwrap_or((0.75 + 0.66) / 2.0);
            let vth = r.opt("Vth").map(|v| v.f64()).transpose()?.unwrap_or(0.7);
            compare_optional(
                &format!("{}.tau_converter", r.path()),
                tau_converter(x, ut, kappa, cap),
                r.get("tau_converter")?.v,
            )?;
            compare_optional(
                &format!("{}.pw_converter", r.path()),
                pulse_converter(x, vth, cap),
                r.get("pw_converter")?.v,
            )?;
        }
    }
    if let Some(g) = c.opt("gain_current") {
        for i in 0..g.array()?.len() {
            let r = g.at(i)?;
            let opt = |k: &str| r.opt(k).map(|v| v.f64()).transpose();
            let ours = gain_current(opt("r_gain")?, r.get("Itau")?.f64()?, opt("Igain")?);
            compare_optional(&format!("{}.out", r.path()), ours, r.get("out")?.v)?;
        }
    }
    if let Some(g) = c.opt("ratio_gain") {
        for i in 0..g.array()?.len() {
            let r = g.at(i)?;
            let ours = gain_ratio(r.get("Igain")?.f64()?, r.get("Itau")?.f64()?);
            compare_optional(&format!("{}.out", r.path()), ours, r.get("out")?.v)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Gradients

/// The loss of a `grad` case (`loss.type`: `count_mse` or `filtered_mse`), in working precision `dt`.
fn case_loss<T: Real>(c: &J, dt: f64) -> JResult<Loss> {
    let l = c.get("loss")?;
    let (_, target) = c.get("target")?.tensor()?;
    match l.get("type")?.str()? {
        "count_mse" => Ok(Loss::CountMse { target }),
        "filtered_mse" => {
            let tau = l.get("tau_f")?.f64()?;
            // a = exp(-dt/tau_f), computed in the working precision.
            let decay = (-(T::from_f64(dt) / T::from_f64(tau))).exp().to_f64();
            Ok(Loss::FilteredMse { decay, target })
        }
        other => Err(format!("unknown loss type `{other}`")),
    }
}

/// Our value and gradients for a `grad` case in precision `T`.
struct GradRun {
    loss: f64,
    spikes: Vec<f64>,
    w_in: Option<Vec<f64>>,
    w_rec: Vec<f64>,
    currents: Vec<(Param, Vec<f64>)>,
}

fn grad_run<T: Real>(
    c: &J,
    net: &Network,
    data: &[f64],
    batch: usize,
    steps: usize,
) -> JResult<GradRun> {
    let sim = Simulator::<T>::new(net).map_err(|e| e.to_string())?;
    let x: Vec<T> = data.iter().map(|&v| T::from_f64(v)).collect();
    let input = if net.w_in.is_some() {
        Input::Spikes {
            data: &x,
            batch,
            steps,
        }
    } else {
        Input::Weighted {
            data: &x,
            batch,
            steps,
        }
    };
    let (trace, tape) = sim
        .run_taped(input, None, &RunOptions::default(), 1)
        .map_err(|e| e.to_string())?;
    let spikes: Vec<f64> = trace.spikes.iter().map(|s| s.to_f64()).collect();
    let loss = case_loss::<T>(c, net.dt)?;
    let (value, grad) = loss
        .value_and_gradient(&spikes, batch, steps, net.neurons())
        .map_err(|e| e.to_string())?;
    let grad_t: Vec<T> = grad.iter().map(|&g| T::from_f64(g)).collect();
    let outs = OutputGradients {
        spikes: Some(&grad_t),
        ..Default::default()
    };
    let g = sim
        .gradient(
            &tape,
            input,
            &outs,
            &GradientOptions {
                threads: 0,
                input: false,
                currents: true,
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(GradRun {
        loss: value,
        spikes,
        w_in: g.w_in.as_ref().map(|m| m.as_slice().to_vec()),
        w_rec: g.w_rec.as_slice().to_vec(),
        currents: Param::CURRENTS
            .iter()
            .map(|&p| (p, g.current(p).unwrap_or_default().to_vec()))
            .collect(),
    })
}

/// `max|a - b| <= 1e-3 max|b|` (golden README section 3); exactly zero where Rockpool's gradient is
/// structurally zero.
fn compare_gradient(what: &str, ours: &[f64], theirs: &[f64], exact_zero: bool) -> JResult<()> {
    if ours.len() != theirs.len() {
        return Err(format!(
            "{what}: we have {} values, Rockpool {}",
            ours.len(),
            theirs.len()
        ));
    }
    let max_ref = theirs.iter().fold(0f64, |a, b| a.max(b.abs()));
    if (exact_zero || max_ref == 0.0)
        && let Some(i) = ours.iter().position(|&v| v != 0.0)
    {
        return Err(format!(
            "{what}[{i}]: ours {:e}, but it must be exactly 0",
            ours[i]
        ));
    }
    if max_ref == 0.0 {
        return Ok(());
    }
    let (i, diff) = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0f64),
            |best, (i, d)| if d > best.1 { (i, d) } else { best },
        );
    if diff > 1e-3 * max_ref {
        return Err(format!(
            "{what}: max |difference| {diff:e} at [{i}] (ours {:e}, Rockpool {:e}) exceeds 1e-3 x max|Rockpool| = {:e}",
            ours[i],
            theirs[i],
            1e-3 * max_ref
        ));
    }
    Ok(())
}

fn check_grad(c: &J) -> JResult<()> {
    let net = network_from_case(c)?;
    let (shape, data) = c.get("input")?.get("data")?.tensor_rank(3)?;
    let (batch, steps) = (shape[0], shape[1]);
    if shape[2] != net.input_channels() {
        return Err(format!(
            "`input.data` has {} channels, the network takes {}",
            shape[2],
            net.input_channels()
        ));
    }
    let mut checked = 0;
    for (key, f64_mode) in [("outputs_f32", false), ("outputs_f64", true)] {
        let Some(out) = c.opt(key) else { continue };
        let ours = if f64_mode {
            grad_run::<f64>(c, &net, &data, batch, steps)?
        } else {
            grad_run::<f32>(c, &net, &data, batch, steps)?
        };
        let shape = [batch, steps, net.neurons()];
        let (_, spikes) = out.get("spikes")?.tensor_rank(3)?;
        first_difference(
            &format!("{key}: spikes"),
            &ours.spikes,
            &spikes,
            &shape,
            Tolerance::EXACT,
        )?;
        let loss = out.get("loss")?.f64()?;
        if !Tolerance::relative(1e-5).close(ours.loss, loss) {
            return Err(format!(
                "{key}: loss ours {:e}, Rockpool {loss:e}",
                ours.loss
            ));
        }
        if let (Some(theirs), Some(w)) = (out.opt("grad_w_in"), &ours.w_in) {
            compare_gradient(&format!("{key}: grad_w_in"), w, &theirs.tensor()?.1, false)?;
        }
        if let Some(theirs) = out.opt("grad_w_rec") {
            compare_gradient(
                &format!("{key}: grad_w_rec"),
                &ours.w_rec,
                &theirs.tensor()?.1,
                false,
            )?;
        }
        if let Some(gc) = out.opt("grad_currents") {
            for (name, theirs) in gc.entries()? {
                let p = Param::from_name(name)
                    .ok_or_else(|| format!("{key}: unknown current `{name}`"))?;
                let ours_p = &ours
                    .currents
                    .iter()
                    .find(|(q, _)| *q == p)
                    .ok_or_else(|| format!("{name} is not a current"))?
                    .1;
                // Structurally zero: If_nmda is unused, Iref only sets the non-differentiable refractory
                // gate, and the surrogate passes nothing to Ispkthr.
                let exact_zero = matches!(p, Param::IfNmda | Param::Iref | Param::Ispkthr);
                compare_gradient(
                    &format!("{key}: grad_currents.{name}"),
                    ours_p,
                    &theirs.tensor()?.1,
                    exact_zero,
                )?;
            }
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("the case has neither `outputs_f32` nor `outputs_f64`".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Mismatch

/// Mean and standard deviation of `x`.
fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The golden README's statistical test: mean ratio 1 +- 4 sigma / sqrt(n), std within 10 % of sigma.
fn check_ratios(what: &str, ratios: &[f64], sigma: f64) -> JResult<()> {
    let (mean, sd) = mean_sd(ratios);
    let band = 4.0 * sigma / (ratios.len() as f64).sqrt();
    if (mean - 1.0).abs() > band {
        return Err(format!(
            "{what}: mean ratio {mean} is outside 1 +- {band:e} (4 sigma / sqrt(n))"
        ));
    }
    if (sd / sigma - 1.0).abs() > 0.10 {
        return Err(format!(
            "{what}: ratio std {sd} is not within 10 % of sigma = {sigma}"
        ));
    }
    Ok(())
}

fn check_mismatch(c: &J) -> JResult<()> {
    let pct = c.get("percent_deviation")?.f64()?;
    let rule = c
        .opt("sigma_rule")
        .map(|v| v.f64())
        .transpose()?
        .unwrap_or(3.0);
    let m = dynap_mismatch::Mismatch {
        percent: pct,
        sigma_rule: rule,
        truncated: false,
    };
    let sigma = m.sigma();
    if let Some(s) = c.opt("sigma_eff")
        && !Tolerance::relative(1e-12).close(sigma, s.f64()?)
    {
        return Err(format!("sigma_eff: ours {sigma}, Rockpool {}", s.f64()?));
    }
    // The affected set, exactly.
    let ours: std::collections::BTreeSet<&str> = dynap_mismatch::FROZEN
        .iter()
        .map(|p| p.rockpool_name())
        .collect();
    if let Some(a) = c.opt("affected_parameters") {
        let theirs: std::collections::BTreeSet<&str> =
            a.array()?.iter().filter_map(|v| v.as_str()).collect();
        if theirs != ours {
            return Err(format!(
                "affected parameters: ours {ours:?}, Rockpool {theirs:?}"
            ));
        }
    }
    let n_draws = c
        .opt("n_draws")
        .map(|v| v.f64())
        .transpose()?
        .unwrap_or(1000.0) as usize;
    // Draws over chips of a 1-neuron network: one seed per draw.
    if let Some(stats) = c.opt("stats_over_draws") {
        let mut base = Network::with_defaults(1);
        let mut affected = Vec::new();
        // Network-level values (Iscale, dt, w_rec) are checked below; Rockpool never perturbs them.
        let network_level = |name: &str| matches!(name, "Iscale" | "dt" | "w_rec" | "weight");
        for (name, st) in stats.entries()? {
            let affected_here = st.get("affected")?.v.as_bool() == Some(true);
            if network_level(name) {
                if affected_here {
                    return Err(format!(
                        "stats_over_draws.{name}: Rockpool perturbs it, we never do"
                    ));
                }
                continue;
            }
            let p = Param::from_name(name)
                .ok_or_else(|| format!("stats_over_draws: unknown parameter `{name}`"))?;
            base.params.get_mut(p)[0] = st.get("base")?.f64()?;
            if affected_here {
                affected.push(p);
            }
        }
        let chips: Vec<Network> = (0..n_draws as u64)
            .map(|seed| m.frozen(&base, seed))
            .collect();
        for (name, _) in stats.entries()? {
            let Some(p) = Param::from_name(name) else {
                continue;
            };
            let b = base.params.get(p)[0];
            let ratios: Vec<f64> = chips.iter().map(|chip| chip.params.get(p)[0] / b).collect();
            if affected.contains(&p) {
                check_ratios(&format!("stats_over_draws.{name}"), &ratios, sigma)?;
            } else if ratios.iter().any(|&r| r != 1.0) {
                return Err(format!(
                    "stats_over_draws.{name}: Rockpool leaves it alone, we perturb it"
                ));
            }
        }
        // Iscale, dt and the weights are never touched.
        if chips.iter().any(|chip| {
            chip.i_scale != base.i_scale || chip.dt != base.dt || chip.w_rec != base.w_rec
        }) {
            return Err("frozen mismatch changed Iscale, dt or w_rec".into());
        }
    }
    // One chip of many neurons: statistics over the neurons.
    if let Some(stats) = c.opt("stats_1000_neurons_single_key") {
        let base = Network::with_defaults(1000);
        let chip = m.frozen(&base, 123);
        for (name, _) in stats.entries()? {
            let p = Param::from_name(name)
                .ok_or_else(|| format!("stats_1000_neurons_single_key: unknown `{name}`"))?;
            let ratios: Vec<f64> = chip
                .params
                .get(p)
                .iter()
                .zip(base.params.get(p))
                .map(|(a, b)| a / b)
                .collect();
            check_ratios(
                &format!("stats_1000_neurons_single_key.{name}"),
                &ratios,
                sigma,
            )?;
        }
    }
    // The prototypes: which leaves of LinearJax + DynapSim each kind of mismatch selects.
    for (key, dynamic) in [
        ("frozen_prototype_LinearJax_DynapSim_rec", false),
        ("dynamic_prototype_LinearJax_DynapSim_rec", true),
    ] {
        let Some(proto) = c.opt(key) else { continue };
        for (_, module) in proto.entries()? {
            for (leaf, selected) in module.entries()? {
                let theirs = selected
                    .v
                    .as_bool()
                    .ok_or_else(|| format!("{key}.{leaf}: expected a bool"))?;
                let ours = if dynamic {
                    dynap_mismatch::DYNAMIC_NAMES.contains(&leaf)
                } else {
                    Param::from_name(leaf).is_some_and(|p| dynap_mismatch::FROZEN.contains(&p))
                };
                if ours != theirs {
                    return Err(format!(
                        "{key}.{leaf}: Rockpool selects it: {theirs}, we: {ours}"
                    ));
                }
            }
        }
    }
    Ok(())
}

//! `dynap.Network`: a DynapSim population behind its input weights (Rockpool's
//! `Sequential(LinearJax, DynapSim)`), its simulation and its gradients.

use crate::arrays::{self, Floats};
use dynap_autodiff::{AUTO_CHECKPOINT_BYTES, AUTO_CHECKPOINT_EVERY, Loss, SpikeGradient};
use dynap_model::{
    ChipOutputGradients, ChipSimulator, DEFAULT_DT, DEFAULT_ISCALE, GradientOptions, Input, Matrix,
    Network, OutputGradients, Param, Real, Recording, Records, RunOptions, Simulator, SpikeEvents,
    Tape, Variant,
};
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Mutex;

/// A Rust error as Python's `ValueError`, with its message.
pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A population of DynapSim neurons with input weights `w_in` `[Nin, N]` and recurrent weights
/// `w_rec` `[N, N]` (pre, post), in units of `iscale`.
#[pyclass(name = "Network", module = "dynap")]
pub(crate) struct PyNetwork {
    pub(crate) net: Network,
    /// The populations and connections the network came with (a network JSON's `architecture`, a
    /// NIR graph's nodes), written back by `to_json` and `to_nir` while the weights still fit it.
    architecture: Option<dynap_model::Architecture>,
    /// The `rockpool` variant's simulators of this (immutable) network, with the last tape and
    /// input events, kept for the next call: a training loop then converts no parameters and
    /// allocates no tape per step. A call that finds them taken (another thread) makes its own.
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    f32: Option<Kit<f32>>,
    f64: Option<Kit<f64>>,
}

struct Kit<T: Real> {
    sim: Simulator<T>,
    tape: Option<Tape<T>>,
    events: Option<SpikeEvents<T>>,
}

/// The precisions a network runs in: each has its slot in the cache and its buffer pool.
trait Precision: Real + arrays::Pooled {
    fn slot(c: &mut Cache) -> &mut Option<Kit<Self>>;
}

impl Precision for f32 {
    fn slot(c: &mut Cache) -> &mut Option<Kit<f32>> {
        &mut c.f32
    }
}

impl Precision for f64 {
    fn slot(c: &mut Cache) -> &mut Option<Kit<f64>> {
        &mut c.f64
    }
}

impl PyNetwork {
    pub(crate) fn from_network(net: Network) -> PyNetwork {
        PyNetwork {
            net,
            architecture: None,
            cache: Mutex::default(),
        }
    }

    /// A network with the architecture of its file.
    pub(crate) fn from_file(file: dynap_config::format::NetworkFile) -> PyNetwork {
        let mut py = PyNetwork::from_network(file.network);
        py.architecture = file.architecture;
        py
    }

    /// The network as a file, with its architecture when the weights still fit it (sizes, and no
    /// weight outside its blocks).
    pub(crate) fn file(&self) -> dynap_config::format::NetworkFile {
        let mut file = dynap_config::format::NetworkFile::new(self.net.clone());
        if let Some(arch) = &self.architecture {
            let n = self.net.neurons();
            let fits = arch.neurons() == n
                && self
                    .net
                    .w_in
                    .as_ref()
                    .is_some_and(|w| w.rows() == arch.inputs())
                && {
                    let masks = arch.masks();
                    let outside =
                        |w: &[f64], m: &[bool]| w.iter().zip(m).any(|(w, m)| *w != 0.0 && !m);
                    !self
                        .net
                        .w_in
                        .as_ref()
                        .is_some_and(|w| outside(w.as_slice(), &masks.w_in))
                        && !outside(self.net.w_rec.as_slice(), &masks.w_rec)
                };
            if fits {
                file.architecture = Some(arch.clone());
            }
        }
        file
    }

    /// The kept simulator of precision `T`, or a new one.
    fn kit<T: Precision>(&self) -> Result<Kit<T>, dynap_model::Error> {
        let kept = self
            .cache
            .lock()
            .ok()
            .and_then(|mut c| T::slot(&mut c).take());
        match kept {
            Some(k) => Ok(k),
            None => Ok(Kit {
                sim: Simulator::new(&self.net)?,
                tape: None,
                events: None,
            }),
        }
    }

    fn keep<T: Precision>(&self, kit: Kit<T>) {
        if let Ok(mut c) = self.cache.lock() {
            T::slot(&mut c).get_or_insert(kit);
        }
    }
}

/// The names of the 24 DynapSim parameters, in Rockpool's order (the 13 currents first among them).
#[pyfunction]
pub(crate) fn parameter_names() -> Vec<&'static str> {
    Param::ALL.iter().map(|p| p.rockpool_name()).collect()
}

fn matrix(data: Vec<f64>, shape: &[usize]) -> Matrix {
    Matrix::from_vec(shape[0], shape[1], data).expect("the shape was read from the array")
}

fn array_of<'py>(py: Python<'py>, m: &Matrix) -> PyResult<Bound<'py, PyAny>> {
    arrays::to_array(py, m.as_slice().to_vec(), &[m.rows(), m.cols()])
}

#[pymethods]
impl PyNetwork {
    #[new]
    #[pyo3(signature = (w_in, w_rec=None, *, iscale=DEFAULT_ISCALE, dt=DEFAULT_DT, variant="rockpool", **currents))]
    fn new(
        w_in: Option<&Bound<'_, PyAny>>,
        w_rec: Option<&Bound<'_, PyAny>>,
        iscale: f64,
        dt: f64,
        variant: &str,
        currents: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyNetwork> {
        let w_in = w_in
            .map(|w| -> PyResult<_> {
                let (data, shape) = arrays::read_f64(w, "w_in")?;
                arrays::check_rank(&shape, 2, "w_in", "[Nin, N]")?;
                Ok((data, shape))
            })
            .transpose()?;
        let w_rec = w_rec
            .map(|w| -> PyResult<_> {
                let (data, shape) = arrays::read_f64(w, "w_rec")?;
                arrays::check_rank(&shape, 2, "w_rec", "[N, N]")?;
                Ok((data, shape))
            })
            .transpose()?;
        let n = match (&w_in, &w_rec) {
            (Some((_, s)), _) => s[1],
            (None, Some((_, s))) => s[0],
            (None, None) => {
                return Err(PyValueError::new_err(
                    "Network needs w_in [Nin, N] or w_rec [N, N] (or both)",
                ));
            }
        };
        if n == 0 {
            return Err(PyValueError::new_err(
                "Network: the network has no neurons (N = 0)",
            ));
        }
        if let Some((_, s)) = &w_rec
            && (s[0], s[1]) != (n, n)
        {
            return Err(PyValueError::new_err(format!(
                "w_rec: shape {s:?}; expected [{n}, {n}] (N = {n}{})",
                if w_in.is_some() {
                    ", the columns of w_in"
                } else {
                    ""
                }
            )));
        }
        let variant = Variant::from_name(variant).ok_or_else(|| {
            PyValueError::new_err(format!(
                "variant {variant:?}: expected \"rockpool\" or \"chip\""
            ))
        })?;
        let mut net = Network::with_defaults(n);
        net.w_in = w_in.map(|(d, s)| matrix(d, &s));
        if let Some((d, s)) = w_rec {
            net.w_rec = matrix(d, &s);
        }
        net.i_scale = iscale;
        net.dt = dt;
        net.variant = variant;
        if let Some(kw) = currents {
            for (key, value) in kw.iter() {
                let name: String = key.extract()?;
                let p = Param::from_name(&name).ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "Network() got an unknown parameter {name:?}; the parameters are {}",
                        parameter_names().join(", ")
                    ))
                })?;
                let (data, shape) = arrays::read_f64(&value, &name)?;
                let values = match shape.as_slice() {
                    [] => vec![data[0]; n],
                    [m] if *m == n => data,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "{name}: shape {shape:?}; expected a scalar or [N] = [{n}]"
                        )));
                    }
                };
                *net.params.get_mut(p) = values;
            }
        }
        net.validate().map_err(value_error)?;
        Ok(PyNetwork::from_network(net))
    }

    /// A network from a Rockpool `Sequential(LinearJax, DynapSim)`, a `DynapSim` alone, or the
    /// specification dict Rockpool's mapper returns (see `dynap.rockpool`); needs Rockpool for the
    /// modules.
    #[staticmethod]
    fn from_rockpool<'py>(
        py: Python<'py>,
        module: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        py.import("dynap.rockpool")?
            .call_method1("from_rockpool", (module,))
    }

    /// The Rockpool module of this network (`Sequential(LinearJax, DynapSim)`); needs Rockpool.
    fn to_rockpool<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("dynap.rockpool")?
            .call_method1("to_rockpool", (slf,))
    }

    /// Writes the network JSON that the `dynap` command line reads (`dynap quantize`, `dynap map`),
    /// atomically.
    fn to_json(&self, path: std::path::PathBuf) -> PyResult<()> {
        let text = dynap_config::format::write_network(&self.file());
        dynap_train::files::write_atomic(&path, text.as_bytes())
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
    }

    /// Reads a network JSON (`dynap` writes them: `train`'s networks, `unmap`'s output); every
    /// problem is named with the key and the path.
    #[staticmethod]
    fn from_json(path: std::path::PathBuf) -> PyResult<PyNetwork> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("cannot read {}: {e}", path.display()))
        })?;
        let file = dynap_config::format::read_network(&text)
            .map_err(|e| PyValueError::new_err(format!("{}: {e}", path.display())))?;
        Ok(PyNetwork::from_file(file))
    }

    /// A network from a NIR graph: a `.nir` file's path, its bytes, or a `nir.NIRGraph` (written
    /// with the `nir` package). `dt` (s): NIR graphs carry none. Time constants translate exactly,
    /// each population's weight scale and inhibition are fitted (docs/nir.md); a graph written by
    /// `to_nir` comes back exactly. What DYNAP-SE2 cannot run raises `ValueError` naming the node;
    /// what the translation changes is a `UserWarning`. `average=True`: a time constant that differs
    /// between a node's neurons takes their mean instead of raising.
    #[staticmethod]
    #[pyo3(signature = (source, *, dt = 1e-3, variant = "chip", iscale = DEFAULT_ISCALE, average = false))]
    fn from_nir(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        dt: f64,
        variant: &str,
        iscale: f64,
        average: bool,
    ) -> PyResult<PyNetwork> {
        let variant = Variant::from_name(variant).ok_or_else(|| {
            PyValueError::new_err(format!(
                "variant '{variant}': expected 'rockpool' or 'chip'"
            ))
        })?;
        if !(dt.is_finite() && dt > 0.0) {
            return Err(PyValueError::new_err(format!(
                "dt = {dt}: expected a time step > 0 (s)"
            )));
        }
        if !(iscale.is_finite() && iscale > 0.0) {
            return Err(PyValueError::new_err(format!(
                "iscale = {iscale}: expected a current > 0 (A)"
            )));
        }
        let (bytes, place) = if let Ok(b) = source.cast::<pyo3::types::PyBytes>() {
            (b.as_bytes().to_vec(), "the bytes".to_string())
        } else if let Ok(path) = source.extract::<std::path::PathBuf>() {
            let bytes = std::fs::read(&path).map_err(|e| {
                pyo3::exceptions::PyOSError::new_err(format!("cannot read {}: {e}", path.display()))
            })?;
            (bytes, path.display().to_string())
        } else if source.hasattr("nodes")? && source.hasattr("edges")? {
            let buffer = py.import("io")?.call_method0("BytesIO")?;
            py.import("nir")
                .map_err(|_| {
                    pyo3::exceptions::PyImportError::new_err(
                        "writing a nir.NIRGraph needs the nir package: pip install nir==1.0.8",
                    )
                })?
                .call_method1("write", (&buffer, source))?;
            let value = buffer.call_method0("getvalue")?;
            (value.extract::<Vec<u8>>()?, "the graph".to_string())
        } else {
            return Err(PyTypeError::new_err(
                "from_nir takes a path, the bytes of a .nir file, or a nir.NIRGraph",
            ));
        };
        let graph = dynap_config::nir::read_nir(&bytes)
            .map_err(|e| PyValueError::new_err(format!("{place}: {e}")))?;
        let options = dynap_config::nir::ImportOptions {
            dt,
            variant,
            iscale,
            average,
        };
        let imported = py
            .detach(|| dynap_config::nir::import(&graph, &options))
            .map_err(|e| PyValueError::new_err(format!("{place}: {e}")))?;
        let warnings = py.import("warnings")?;
        for w in &imported.report.warnings {
            warnings.call_method1("warn", (w.as_str(),))?;
        }
        Ok(PyNetwork::from_file(imported.file))
    }

    /// Writes the network as a NIR graph: one `Linear` per block of weights and one `CubaLIF` per
    /// population approximating the DPI neuron, with the exact DynapSim values in the metadata
    /// (`from_nir` gives this network back exactly; `nir.read` reads it).
    fn to_nir(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let file = self.file();
        let bytes = py
            .detach(|| {
                dynap_config::nir::export(&file).and_then(|g| dynap_config::nir::write_nir(&g))
            })
            .map_err(value_error)?;
        dynap_train::files::write_atomic(&path, &bytes)
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
    }

    /// Number of neurons `N`.
    #[getter]
    fn n(&self) -> usize {
        self.net.neurons()
    }

    /// Number of input channels `Nin` (the rows of `w_in`; `N` without input weights, whose input
    /// is then already weighted per neuron).
    #[getter]
    fn n_in(&self) -> usize {
        self.net.input_channels()
    }

    /// The input weights `[Nin, N]`, or `None`.
    #[getter]
    fn w_in<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.net.w_in.as_ref().map(|m| array_of(py, m)).transpose()
    }

    /// The recurrent weights `[N, N]` (pre, post).
    #[getter]
    fn w_rec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array_of(py, &self.net.w_rec)
    }

    /// The weight scale current `Iscale` (A).
    #[getter]
    fn iscale(&self) -> f64 {
        self.net.i_scale
    }

    /// The time step (s).
    #[getter]
    fn dt(&self) -> f64 {
        self.net.dt
    }

    /// The model variant, `"rockpool"` or `"chip"`.
    #[getter]
    fn variant(&self) -> &'static str {
        self.net.variant.name()
    }

    /// The 13 bias currents by Rockpool's names, each `[N]` (A).
    #[getter]
    fn currents<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for p in Param::CURRENTS {
            d.set_item(p.rockpool_name(), self.param(py, p)?)?;
        }
        Ok(d)
    }

    /// All 24 parameters by Rockpool's names, each `[N]` (SI units).
    #[getter]
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for p in Param::ALL {
            d.set_item(p.rockpool_name(), self.param(py, p)?)?;
        }
        Ok(d)
    }

    /// A parameter by its Rockpool name (`net.Itau_mem`), `[N]`.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match Param::from_name(name) {
            Some(p) => self.param(py, p),
            None => Err(PyAttributeError::new_err(format!(
                "'Network' object has no attribute {name:?}"
            ))),
        }
    }

    /// Replaces the weights (`net.w_in = ...`, `net.w_rec = ...`, the same shapes) or a parameter
    /// by its Rockpool name (a scalar or `[N]`), checked as the constructor checks them: a training
    /// loop updates its network in place, and the kept simulators keep their converted parameters
    /// when only the weights change.
    fn __setattr__(&mut self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = self.net.neurons();
        let mut net = self.net.clone();
        let weights = match name {
            "w_in" | "w_rec" => {
                let (data, shape) = arrays::read_f64(value, name)?;
                let want = match (name, &net.w_in) {
                    ("w_in", Some(w)) => (w.rows(), n),
                    ("w_in", None) => {
                        return Err(PyValueError::new_err(
                            "w_in: this network has no input weights (its input is weighted per neuron)",
                        ));
                    }
                    _ => (n, n),
                };
                if shape != [want.0, want.1] {
                    return Err(PyValueError::new_err(format!(
                        "{name}: shape {shape:?}; this network's is [{}, {}]",
                        want.0, want.1
                    )));
                }
                let m = matrix(data, &shape);
                if name == "w_in" {
                    net.w_in = Some(m);
                } else {
                    net.w_rec = m;
                }
                true
            }
            _ => {
                let p = Param::from_name(name).ok_or_else(|| {
                    PyAttributeError::new_err(format!(
                        "'Network' object has no attribute {name:?} to set (w_in, w_rec or a parameter: {})",
                        parameter_names().join(", ")
                    ))
                })?;
                let (data, shape) = arrays::read_f64(value, name)?;
                *net.params.get_mut(p) = match shape.as_slice() {
                    [] => vec![data[0]; n],
                    [m] if *m == n => data,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "{name}: shape {shape:?}; expected a scalar or [N] = [{n}]"
                        )));
                    }
                };
                false
            }
        };
        net.validate().map_err(value_error)?;
        let cache = self.cache.get_mut().map_err(|_| {
            PyValueError::new_err("the network's simulators were poisoned by a crash")
        })?;
        if weights {
            // The converted parameters stay; only the weights are replaced.
            if let Some(k) = cache.f32.as_mut() {
                k.sim
                    .set_weights(net.w_in.as_ref(), &net.w_rec)
                    .map_err(value_error)?;
            }
            if let Some(k) = cache.f64.as_mut() {
                k.sim
                    .set_weights(net.w_in.as_ref(), &net.w_rec)
                    .map_err(value_error)?;
            }
        } else {
            *cache = Cache::default();
        }
        self.net = net;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "Network(N={}, Nin={}, variant={:?}, iscale={:e}, dt={:e})",
            self.net.neurons(),
            self.net.w_in.as_ref().map_or(0, Matrix::rows),
            self.net.variant.name(),
            self.net.i_scale,
            self.net.dt
        )
    }

    /// Runs the network on input spikes `x` `[batch, steps, Nin]` (counts; float32 runs in
    /// float32, anything else in float64) and records every trace, as Rockpool's `evolve` does
    /// (`record=False`: spikes only).
    #[pyo3(signature = (x, *, record=true))]
    fn simulate(&self, py: Python<'_>, x: &Bound<'_, PyAny>, record: bool) -> PyResult<Simulation> {
        let x = arrays::read_floats(x, "x")?;
        let (batch, steps) = self.check_input(x.shape())?;
        let options = RunOptions {
            recording: if record {
                Recording::Full
            } else {
                Recording::Spikes
            },
            threads: 0,
        };
        match x {
            Floats::F32(data, _) => {
                let out = py
                    .detach(|| self.run(&data, batch, steps, &options))
                    .map_err(value_error)?;
                out.into_python(py)
            }
            Floats::F64(data, _) => {
                let out = py
                    .detach(|| self.run(&data, batch, steps, &options))
                    .map_err(value_error)?;
                out.into_python(py)
            }
        }
    }

    /// The loss of the output spikes of `x` against `target` and its gradient: `(loss, grads)`,
    /// `grads` keyed `w_in`, `w_rec` and the 13 currents' Rockpool names (per neuron). Losses:
    /// `raster_mse` (target `[batch, steps, N]`, the mean of `(spikes - target)^2`), `count_mse`
    /// (target `[N]` spike counts), `filtered_mse` (target `[steps, N]`, with `decay`),
    /// `rate_cross_entropy` (target: one class per batch element). `currents=False` leaves out the
    /// currents' gradients (less work; the weights' are the same bits). The `chip` variant adds its
    /// other dendrites' currents (`Itau_nmda`, `Igain_nmda`, `Itau_gaba`, ..., `Igain_shunt`).
    #[pyo3(signature = (x, target, loss="raster_mse", *, decay=None, currents=true))]
    fn value_and_grad<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        target: &Bound<'py, PyAny>,
        loss: &str,
        decay: Option<f64>,
        currents: bool,
    ) -> PyResult<(f64, Bound<'py, PyDict>)> {
        let x = arrays::read_floats(x, "x")?;
        let (batch, steps) = self.check_input(x.shape())?;
        let loss = self.loss(target, loss, decay, batch, steps)?;
        let (value, g) = match x {
            Floats::F32(data, _) => {
                py.detach(|| self.value_and_grad_of(&data, batch, steps, &loss, currents))
            }
            Floats::F64(data, _) => {
                py.detach(|| self.value_and_grad_of(&data, batch, steps, &loss, currents))
            }
        }
        .map_err(value_error)?;
        let d = PyDict::new(py);
        if let Some(w) = &g.w_in {
            d.set_item("w_in", array_of(py, w)?)?;
        }
        d.set_item("w_rec", array_of(py, &g.w_rec)?)?;
        let names = Param::CURRENTS.iter().map(|p| p.rockpool_name());
        for (name, v) in names.zip(g.currents).chain(g.dendrites) {
            let len = v.len();
            d.set_item(name, arrays::to_array(py, v, &[len])?)?;
        }
        Ok((value, d))
    }
}

impl PyNetwork {
    fn param<'py>(&self, py: Python<'py>, p: Param) -> PyResult<Bound<'py, PyAny>> {
        let v = self.net.params.get(p).to_vec();
        let len = v.len();
        arrays::to_array(py, v, &[len])
    }

    /// `(batch, steps)` of an input of shape `shape`, refused unless it is `[batch, steps, Nin]`.
    fn check_input(&self, shape: &[usize]) -> PyResult<(usize, usize)> {
        let n_in = self.net.input_channels();
        arrays::check_rank(shape, 3, "x", &format!("[batch, steps, Nin = {n_in}]"))?;
        if shape[2] != n_in {
            return Err(PyValueError::new_err(format!(
                "x: shape {shape:?}; the network has {n_in} input channels (x is [batch, steps, {n_in}])"
            )));
        }
        Ok((shape[0], shape[1]))
    }

    fn loss(
        &self,
        target: &Bound<'_, PyAny>,
        name: &str,
        decay: Option<f64>,
        batch: usize,
        steps: usize,
    ) -> PyResult<Loss> {
        let n = self.net.neurons();
        let (data, shape) = arrays::read_f64(target, "target")?;
        let want = |expected: &[usize], layout: &str| -> PyResult<()> {
            if shape == expected {
                Ok(())
            } else {
                Err(PyValueError::new_err(format!(
                    "target: shape {shape:?}; the {name} loss needs {layout} = {expected:?}"
                )))
            }
        };
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "target: value {} at flat index {k} is not finite",
                data[k]
            )));
        }
        Ok(match name {
            "raster_mse" => {
                want(&[batch, steps, n], "[batch, steps, N]")?;
                Loss::RasterMse { target: data }
            }
            "count_mse" => {
                want(&[n], "[N]")?;
                Loss::CountMse { target: data }
            }
            "filtered_mse" => {
                want(&[steps, n], "[steps, N]")?;
                let decay = decay.ok_or_else(|| {
                    PyValueError::new_err(
                        "the filtered_mse loss needs decay = exp(-dt / tau), in (0, 1)",
                    )
                })?;
                if !(decay > 0.0 && decay < 1.0) {
                    return Err(PyValueError::new_err(format!(
                        "decay = {decay}: it must be in (0, 1) (exp(-dt / tau))"
                    )));
                }
                Loss::FilteredMse {
                    decay,
                    target: data,
                }
            }
            "rate_cross_entropy" => {
                want(&[batch], "one class per batch element, [batch]")?;
                let class = data
                    .iter()
                    .enumerate()
                    .map(|(b, &c)| {
                        if c.fract() == 0.0 && c >= 0.0 && (c as usize) < n {
                            Ok(c as usize)
                        } else {
                            Err(PyValueError::new_err(format!(
                                "target[{b}] = {c}: a class must be a whole number in 0..{n}"
                            )))
                        }
                    })
                    .collect::<PyResult<Vec<usize>>>()?;
                Loss::RateCrossEntropy { class }
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "loss {other:?}: expected raster_mse, count_mse, filtered_mse or rate_cross_entropy"
                )));
            }
        })
    }
}

/// What a simulation returns: every array `[batch, steps, N]`; the traces are `None` when the run
/// did not record them.
#[pyclass(module = "dynap", frozen)]
pub(crate) struct Simulation {
    /// Output spike counts.
    #[pyo3(get)]
    spikes: Py<PyAny>,
    /// Membrane current (A).
    #[pyo3(get)]
    imem: Option<Py<PyAny>>,
    /// Synaptic current (A); the AMPA dendrite's in the `chip` variant.
    #[pyo3(get)]
    isyn: Option<Py<PyAny>>,
    /// Adaptation current (A).
    #[pyo3(get)]
    iahp: Option<Py<PyAny>>,
    /// Membrane voltage (V).
    #[pyo3(get)]
    vmem: Option<Py<PyAny>>,
}

#[pymethods]
impl Simulation {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shape = self.spikes.bind(py).getattr("shape")?;
        Ok(format!(
            "Simulation(spikes {shape}, traces: {})",
            if self.imem.is_some() { "True" } else { "False" }
        ))
    }

    /// The fields as a dict (`spikes`, and the traces recorded).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("spikes", &self.spikes)?;
        for (k, v) in [
            ("imem", &self.imem),
            ("isyn", &self.isyn),
            ("iahp", &self.iahp),
            ("vmem", &self.vmem),
        ] {
            if let Some(v) = v {
                d.set_item(k, v)?;
            }
        }
        Ok(d)
    }

    /// The names of the fields.
    #[classattr]
    fn fields(py: Python<'_>) -> PyResult<Py<PyList>> {
        Ok(PyList::new(py, ["spikes", "imem", "isyn", "iahp", "vmem"])?.unbind())
    }
}

/// A run's outputs in Rust, before they become arrays.
struct Run<T> {
    shape: [usize; 3],
    spikes: Vec<T>,
    traces: Option<[Vec<T>; 4]>,
}

impl<T: arrays::Pooled> Run<T> {
    fn into_python(self, py: Python<'_>) -> PyResult<Simulation> {
        let a = |v: Vec<T>| -> PyResult<Py<PyAny>> {
            Ok(arrays::to_pooled_array(py, v, &self.shape)?.unbind())
        };
        let spikes = a(self.spikes)?;
        let [imem, isyn, iahp, vmem] = match self.traces {
            Some([imem, isyn, iahp, vmem]) => [
                Some(a(imem)?),
                Some(a(isyn)?),
                Some(a(iahp)?),
                Some(a(vmem)?),
            ],
            None => [None, None, None, None],
        };
        Ok(Simulation {
            spikes,
            imem,
            isyn,
            iahp,
            vmem,
        })
    }
}

fn input<'a, T: Real>(net: &Network, data: &'a [T], batch: usize, steps: usize) -> Input<'a, T> {
    if net.w_in.is_some() {
        Input::Spikes { data, batch, steps }
    } else {
        Input::Weighted { data, batch, steps }
    }
}

/// A gradient of either variant, as the Python dict reports it.
struct Grads {
    w_in: Option<Matrix>,
    w_rec: Matrix,
    currents: Vec<Vec<f64>>,
    /// The `chip` variant's other dendrites' currents, by their bias names (`Itau_nmda`, ...).
    dendrites: Vec<(&'static str, Vec<f64>)>,
}

/// An error of the run or of the loss's target.
enum GradError {
    Model(dynap_model::Error),
    Target(dynap_autodiff::TargetShape),
}

impl std::fmt::Display for GradError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GradError::Model(e) => e.fmt(f),
            GradError::Target(e) => e.fmt(f),
        }
    }
}

impl From<dynap_model::Error> for GradError {
    fn from(e: dynap_model::Error) -> GradError {
        GradError::Model(e)
    }
}

/// `(spikes, spikes_every_step)` of a loss's spike gradient.
fn split<T>(g: &SpikeGradient<T>) -> (Option<&[T]>, Option<&[T]>) {
    match g {
        SpikeGradient::EveryStep(rows) => (None, Some(&rows[..])),
        SpikeGradient::PerStep(raster) => (Some(&raster[..]), None),
    }
}

impl PyNetwork {
    /// A run of `x` (`[batch, steps, channels]`) into pooled buffers, with the kept simulator (the
    /// `rockpool` variant) or a new one (the `chip` variant).
    fn run<T: Precision>(
        &self,
        data: &[T],
        batch: usize,
        steps: usize,
        options: &RunOptions,
    ) -> Result<Run<T>, dynap_model::Error> {
        let net = &self.net;
        let shape = [batch, steps, net.neurons()];
        let x = input(net, data, batch, steps);
        if net.variant == Variant::Chip {
            let trace = ChipSimulator::<T>::new(net)?.run(x, None, options)?;
            return Ok(Run {
                shape,
                spikes: trace.spikes,
                traces: trace.records.map(|r| {
                    let [ampa, ..] = r.dendrites;
                    [r.imem, ampa, r.iahp, r.vmem]
                }),
            });
        }
        let len = shape.iter().product();
        let records = (options.recording == Recording::Full).then(|| Records {
            imem: arrays::pooled(len),
            isyn: arrays::pooled(len),
            iahp: arrays::pooled(len),
            vmem: arrays::pooled(len),
        });
        let kit = self.kit::<T>()?;
        let trace = kit
            .sim
            .run_into(x, None, options, arrays::pooled(len), records);
        self.keep(kit);
        let trace = trace?;
        Ok(Run {
            shape,
            spikes: trace.spikes,
            traces: trace.records.map(|r| [r.imem, r.isyn, r.iahp, r.vmem]),
        })
    }

    fn value_and_grad_of<T: Precision>(
        &self,
        data: &[T],
        batch: usize,
        steps: usize,
        loss: &Loss,
        currents: bool,
    ) -> Result<(f64, Grads), GradError> {
        let net = &self.net;
        let n = net.neurons();
        let run_options = RunOptions::default();
        let options = GradientOptions {
            threads: 0,
            input: false,
            currents,
        };
        if net.variant == Variant::Chip {
            let x = input(net, data, batch, steps);
            let sim = ChipSimulator::<T>::new(net)?;
            let (trace, tape) = sim.run_taped(x, None, &run_options)?;
            let (value, g) = loss
                .value_and_spike_gradient(&trace.spikes, &trace.spike_counts(), batch, steps, n)
                .map_err(GradError::Target)?;
            let (spikes, spikes_every_step) = split(&g);
            let outs = ChipOutputGradients {
                spikes,
                spikes_every_step,
                ..Default::default()
            };
            let gr = sim.gradient(&tape, x, &outs, &options)?;
            return Ok((
                value,
                Grads {
                    w_in: gr.w_in,
                    w_rec: gr.w_rec,
                    // The chip's reverse pass computes them regardless.
                    currents: if currents { gr.currents } else { Vec::new() },
                    dendrites: if currents {
                        let [(tn, gn), (tg, gg), (ts, gs)] = gr.dendrites;
                        vec![
                            ("Itau_nmda", tn),
                            ("Igain_nmda", gn),
                            ("Itau_gaba", tg),
                            ("Igain_gaba", gg),
                            ("Itau_shunt", ts),
                            ("Igain_shunt", gs),
                        ]
                    } else {
                        Vec::new()
                    },
                },
            ));
        }
        let mut kit = self.kit::<T>()?;
        let result = (|| {
            // Input spikes become events once, for both passes.
            let events = match &net.w_in {
                Some(_) => {
                    let channels = data.len() / (batch * steps).max(1);
                    Some(match kit.events.take() {
                        Some(mut ev) => {
                            ev.refill_from_dense(data, batch, steps, channels)?;
                            ev
                        }
                        None => SpikeEvents::from_dense(data, batch, steps, channels)?,
                    })
                }
                None => None,
            };
            let x = match &events {
                Some(ev) => Input::Events(ev),
                None => Input::Weighted { data, batch, steps },
            };
            // The full tape unless it is large (then checkpoints, as the training layer does).
            let every = if kit.sim.tape_bytes(batch, steps, 1) > AUTO_CHECKPOINT_BYTES {
                AUTO_CHECKPOINT_EVERY
            } else {
                1
            };
            let (trace, tape) =
                kit.sim
                    .run_taped_reusing(x, None, &run_options, every, kit.tape.take())?;
            let (value, g) = loss
                .value_and_spike_gradient(&trace.spikes, &trace.spike_counts(), batch, steps, n)
                .map_err(GradError::Target)?;
            let (spikes, spikes_every_step) = split(&g);
            let outs = OutputGradients {
                spikes,
                spikes_every_step,
                ..Default::default()
            };
            let gr = kit.sim.gradient(&tape, x, &outs, &options);
            kit.tape = Some(tape);
            let gr = gr?;
            Ok::<_, GradError>((
                (
                    value,
                    Grads {
                        w_in: gr.w_in,
                        w_rec: gr.w_rec,
                        currents: gr.currents,
                        dendrites: Vec::new(),
                    },
                ),
                events,
            ))
        })();
        let out = result.map(|(out, events)| {
            kit.events = events;
            out
        });
        self.keep(kit);
        out
    }
}

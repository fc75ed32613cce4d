//! From a trained network to the chip: `quantize`, `map`, the samna `Configuration` and the
//! `Mapping` beside it, `unmap`, the `Emulator` (the digital twin), and `train` (a whole experiment).

use crate::arrays;
use crate::network::{PyNetwork, value_error};
use dynap_config::{Configuration, Mapping};
use dynap_hw::Transport;
use dynap_model::{BiasGenerator, Network};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// A `dynap_train` error as the Python exception of its kind: `OSError` for files, `ValueError`
/// for everything else.
fn train_error(e: dynap_train::Error) -> PyErr {
    match e {
        dynap_train::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

fn read_text(path: &Path) -> PyResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| PyOSError::new_err(format!("cannot read {}: {e}", path.display())))
}

fn write_text(path: &Path, text: &str) -> PyResult<()> {
    dynap_train::files::write_atomic(path, text.as_bytes()).map_err(train_error)
}

/// A network quantized to the chip's 4-bit weights (per core: four base weights, a 4-bit mask and
/// a sign per connection), with the network whose weights are the decoded 4-bit ones.
#[pyclass(name = "Quantized", module = "dynap", frozen)]
pub(crate) struct PyQuantized {
    q: dynap_quant::Quantized,
    /// The quantized network (decoded weights; currents as the original's).
    net: Network,
}

#[pymethods]
impl PyQuantized {
    /// The network with the decoded 4-bit weights.
    #[getter]
    fn network(&self) -> PyNetwork {
        PyNetwork::from_network(self.net.clone())
    }

    /// The relative RMS error of the quantized weights over the network.
    #[getter]
    fn relative_rms_error(&self) -> f64 {
        self.q.relative_rms_error
    }

    fn __repr__(&self) -> String {
        format!(
            "Quantized(N={}, cores={}, relative_rms_error={:.4})",
            self.net.neurons(),
            self.q.cores.len(),
            self.q.relative_rms_error
        )
    }
}

/// Quantizes `net`'s weights to the chip's 4-bit format (cores of 256 consecutive neurons; base
/// weights snapped to what the bias generator makes).
#[pyfunction]
pub(crate) fn quantize(py: Python<'_>, net: PyRef<'_, PyNetwork>) -> PyResult<PyQuantized> {
    let net = net.net.clone();
    let (q, decoded) = py
        .detach(|| dynap_train::quantization::quantize_network(&net, &Default::default()))
        .map_err(train_error)?;
    Ok(PyQuantized { q, net: decoded })
}

/// A DYNAP-SE2 configuration (samna's `Dynapse2Configuration`): cores' biases, neurons' CAMs and
/// SRAMs.
#[pyclass(name = "Configuration", module = "dynap", frozen)]
pub(crate) struct PyConfiguration {
    config: Configuration,
}

#[pymethods]
impl PyConfiguration {
    /// Writes samna's JSON to `path` (atomically: a temporary file, then a rename).
    fn to_json(&self, path: PathBuf) -> PyResult<()> {
        write_text(&path, &dynap_config::to_json(&self.config))
    }

    /// samna's JSON as a string.
    fn to_json_string(&self) -> String {
        dynap_config::to_json(&self.config)
    }

    /// Reads samna's JSON from `path`; every problem is named by its JSON path.
    #[staticmethod]
    fn from_json(path: PathBuf) -> PyResult<PyConfiguration> {
        let text = read_text(&path)?;
        let config = dynap_config::from_json(&text).map_err(|problems| {
            PyValueError::new_err(format!(
                "{}: {}",
                path.display(),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        Ok(PyConfiguration { config })
    }

    /// The chip's rules this configuration breaks, each naming its place (chip, core, neuron,
    /// synapse); empty when it is valid. With `mapping`, its input routes are checked too.
    #[pyo3(signature = (mapping=None))]
    fn validate(&self, mapping: Option<PyRef<'_, PyMapping>>) -> Vec<String> {
        let inputs = mapping.as_ref().map(|m| &m.mapping.inputs[..]);
        dynap_config::validate(&self.config, inputs)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("Configuration(chips={})", self.config.chips.len())
    }
}

/// Where each network neuron sits on the chips and where each input channel's events go, with the
/// network's `iscale`, `dt` and variant: what reads a configuration back as the network.
#[pyclass(name = "Mapping", module = "dynap", frozen)]
pub(crate) struct PyMapping {
    mapping: Mapping,
}

#[pymethods]
impl PyMapping {
    /// Writes the mapping's JSON to `path` (atomically).
    fn to_json(&self, path: PathBuf) -> PyResult<()> {
        write_text(&path, &dynap_config::format::write_mapping(&self.mapping))
    }

    /// Reads a mapping written by `to_json` (or by `dynap map`).
    #[staticmethod]
    fn from_json(path: PathBuf) -> PyResult<PyMapping> {
        let text = read_text(&path)?;
        let mapping = dynap_config::format::read_mapping(&text)
            .map_err(|e| PyValueError::new_err(format!("{}: {e}", path.display())))?;
        Ok(PyMapping { mapping })
    }

    /// Number of network neurons.
    #[getter]
    fn neurons(&self) -> usize {
        self.mapping.neurons.len()
    }

    /// Number of input channels.
    #[getter]
    fn inputs(&self) -> usize {
        self.mapping.inputs.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Mapping(neurons={}, inputs={}, variant={:?})",
            self.mapping.neurons.len(),
            self.mapping.inputs.len(),
            self.mapping.variant.name()
        )
    }
}

/// Maps a quantized network onto the chip: `(config, mapping)`. A network that does not fit (more
/// than 64 synapses into a neuron, tags, routes) is refused with every problem and its place.
#[pyfunction]
pub(crate) fn map(
    py: Python<'_>,
    quantized: PyRef<'_, PyQuantized>,
) -> PyResult<(PyConfiguration, PyMapping)> {
    let q: &PyQuantized = &quantized;
    let mapped = py
        .detach(|| dynap_train::deployment::map_quantized(&q.q.weights, &q.net))
        .map_err(train_error)?;
    Ok((
        PyConfiguration {
            config: mapped.config,
        },
        PyMapping {
            mapping: mapped.mapping,
        },
    ))
}

/// Reads a configuration back as the network it configures (4-bit weights decoded, currents as the
/// bias generator makes them), with the mapping's neuron order, `iscale`, `dt` and variant.
#[pyfunction]
pub(crate) fn unmap(
    config: PyRef<'_, PyConfiguration>,
    mapping: PyRef<'_, PyMapping>,
) -> PyResult<PyNetwork> {
    let m = &mapping.mapping;
    let back = dynap_config::unmap(
        &config.config,
        Some(m),
        m.iscale,
        m.dt,
        &BiasGenerator::dynapse2(),
    )
    .map_err(value_error)?;
    Ok(PyNetwork::from_network(back.network))
}

/// The digital twin of a DYNAP-SE2 board, configured with `config`: its own frozen mismatch
/// (`mismatch`, a fraction, drawn from `seed`), input events through the CAM tags of `mapping`,
/// output spikes read back in the network's neuron order.
#[pyclass(name = "Emulator", module = "dynap")]
pub(crate) struct PyEmulator {
    device: dynap_hw::Emulator,
    mapping: Mapping,
}

#[pymethods]
impl PyEmulator {
    #[new]
    #[pyo3(signature = (config, mapping, mismatch=0.1, seed=0))]
    fn new(
        config: PyRef<'_, PyConfiguration>,
        mapping: PyRef<'_, PyMapping>,
        mismatch: f64,
        seed: u64,
    ) -> PyResult<PyEmulator> {
        if !(mismatch.is_finite() && mismatch >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "mismatch = {mismatch}: a fraction >= 0 (0.1 is 10 %)"
            )));
        }
        let m = mapping.mapping.clone();
        let mut device = dynap_hw::Emulator::new(dynap_hw::EmulatorOptions {
            mismatch,
            seed,
            dt: m.dt,
            iscale: m.iscale,
            variant: m.variant,
            ..Default::default()
        });
        device.apply(&config.config).map_err(value_error)?;
        Ok(PyEmulator { device, mapping: m })
    }

    /// Plays input spike counts `x` `[batch, steps, Nin]` (whole numbers >= 0), one sample after
    /// the other from a reset device, and returns the output spikes `[batch, steps, N]`.
    fn run<'py>(&mut self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (data, shape) = arrays::read_f64(x, "x")?;
        let n_in = self.mapping.inputs.len();
        arrays::check_rank(&shape, 3, "x", &format!("[batch, steps, Nin = {n_in}]"))?;
        let (batch, steps) = (shape[0], shape[1]);
        if shape[2] != n_in {
            return Err(PyValueError::new_err(format!(
                "x: shape {shape:?}; the mapping has {n_in} input channels"
            )));
        }
        let step_us = self.mapping.dt * 1e6;
        if !(step_us >= 1.0 && step_us.fract() == 0.0 && step_us <= f64::from(u32::MAX)) {
            return Err(PyValueError::new_err(format!(
                "dt = {} s: the device plays whole microseconds (>= 1 us) per step",
                self.mapping.dt
            )));
        }
        let n = self.mapping.neurons.len();
        let (device, mapping) = (&mut self.device, &self.mapping);
        let out = py
            .detach(|| -> Result<Vec<f64>, dynap_hw::HwError> {
                let per = steps * n_in;
                let mut out = Vec::with_capacity(batch * steps * n);
                for b in 0..batch {
                    device.reset()?;
                    let played = dynap_hw::play(
                        device,
                        mapping,
                        &data[b * per..(b + 1) * per],
                        steps,
                        &dynap_hw::PlayOptions {
                            step_us: step_us as u32,
                            ..Default::default()
                        },
                    )?;
                    out.extend(played.raster);
                }
                Ok(out)
            })
            .map_err(value_error)?;
        arrays::to_array(py, out, &[batch, steps, n])
    }
}

/// Runs a whole experiment (`dynap train`): `config` is the path of an experiment TOML file or a
/// dict of the same keys (relative data paths then count from the working folder); the run's files
/// go to `out_dir`. Returns the metrics (`metrics.json`) as a dict.
#[pyfunction]
#[pyo3(signature = (config, out_dir, *, resume=false, progress=false))]
pub(crate) fn train<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    out_dir: PathBuf,
    resume: bool,
    progress: bool,
) -> PyResult<Bound<'py, PyAny>> {
    use dynap_train::config::Config;
    let (mut cfg, dir) = if let Ok(d) = config.cast::<PyDict>() {
        let json: String = py
            .import("json")?
            .call_method1("dumps", (d,))
            .map_err(|e| PyTypeError::new_err(format!("config: not JSON-like ({e})")))?
            .extract()?;
        let value: serde_json::Value = serde_json::from_str(&json).map_err(value_error)?;
        let toml = toml::Value::try_from(value)
            .and_then(|v| toml::to_string(&v))
            .map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
        let cfg =
            Config::from_toml(&toml).map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
        (cfg, PathBuf::from("."))
    } else {
        let path: PathBuf = config.extract().map_err(|_| {
            PyTypeError::new_err("config: a path to an experiment TOML file, or a dict")
        })?;
        let cfg = dynap_train::files::read_experiment(&path).map_err(train_error)?;
        (cfg, dynap_train::fit::config_dir(Some(&path)))
    };
    let metrics = py
        .detach(|| -> Result<serde_json::Value, dynap_train::Error> {
            let p = dynap_train::progress::Progress::new(progress);
            std::fs::create_dir_all(&out_dir).map_err(|source| dynap_train::Error::Io {
                path: out_dir.clone(),
                action: "create",
                source,
            })?;
            if cfg.data.is_some() {
                dynap_train::fit::resolve_data_paths(&mut cfg, &dir);
                let run = dynap_train::fit::train(
                    &cfg,
                    &dir,
                    &out_dir,
                    resume,
                    &dynap_train::evaluation::JudgeOptions::default(),
                    &p,
                )?;
                run.write(&out_dir)?;
                Ok(run.metrics_json())
            } else {
                let runs = dynap_train::runs::train(&cfg, &out_dir, resume, &p)?;
                runs.write(&cfg, &out_dir)?;
                Ok(runs.metrics_json(&cfg))
            }
        })
        .map_err(train_error)?;
    py.import("json")?
        .call_method1("loads", (metrics.to_string(),))
}

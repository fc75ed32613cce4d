//! A trained network on a device, stage by stage (what `dynap deploy` and `cargo xtask deploy` run).
//!
//! From a train output folder it takes `<run>/network.json` and the experiment's `config.toml` (the
//! task's stimuli), then:
//! 1. `float`: simulates the trained network;
//! 2. `quantized`: quantizes it (default quantizer, snapped to the bias generator) and simulates that;
//! 3. maps it onto the chip (`config.json` for samna, `config.bin`, `mapping.json`);
//! 4. `reverse_mapped`: restores the network from the configuration and simulates it;
//! 5. `device`: applies the configuration to the device (the emulator, a digital twin with its own
//!    frozen mismatch; `usb`, which finds a board and says what is missing; or `samna`, a real board
//!    through the vendor's samna with our bridge), plays each stimulus as timed events and reads the
//!    output events back into a raster.

use crate::config::Config;
use crate::error::Error;
use crate::experiment;
use crate::files;
use crate::progress::Progress;
use crate::task::{self, Metrics};
use dynap_hw::{PlayOptions, Transport};
use dynap_model::Network;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The two runs of the frozen-noise experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunName {
    /// Trained without noise injection.
    Plain,
    /// Trained with noise injection.
    Noise,
}

impl RunName {
    /// The run's folder name.
    pub fn name(self) -> &'static str {
        match self {
            RunName::Plain => "plain",
            RunName::Noise => "noise",
        }
    }
}

/// Which device runs the last stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Device {
    /// The digital twin, with its frozen mismatch (a fraction) and seed.
    Emulator {
        /// Mismatch (0.1 is 10 %).
        mismatch: f64,
        /// The twin's seed.
        seed: u64,
    },
    /// A board on USB: found and identified, not driven (the protocol is the vendor's).
    Usb,
    /// A board through samna, with the Python that has it.
    Samna {
        /// The Python interpreter.
        python: PathBuf,
        /// The FPGA bitstream to upload when the board opens (`Dynapse2Stack.bit`), if any.
        bitfile: Option<PathBuf>,
        /// Chips on the board, which the resets reach.
        chips: usize,
    },
}

/// What to deploy, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployOptions {
    /// The train output folder.
    pub from: PathBuf,
    /// The run of it.
    pub run: RunName,
    /// The device.
    pub device: Device,
}

/// One stage's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Output spikes `[pattern, step, neuron]`.
    pub spikes: Vec<f64>,
    /// Task metrics.
    pub metrics: Metrics,
}

/// Everything a deployment produced.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// `float`, `quantized`, `reverse_mapped`, `device`, in that order.
    pub stages: Vec<(&'static str, Stage)>,
    /// Relative RMS weight error of the quantization.
    pub weight_error: f64,
    /// Output events that did not decode to a mapped neuron.
    pub unexpected_events: usize,
    /// The device's description.
    pub device: String,
    /// The configuration and its mapping.
    pub mapped: dynap_config::Mapped,
    /// The task's stimuli.
    pub raster: task::Raster,
    /// The network's time step, s (the raster plots' time axis).
    pub dt: f64,
}

/// Runs the deployment (see the module documentation). Nothing is written.
pub fn deploy(o: &DeployOptions, progress: &Progress) -> Result<Deployed, Error> {
    let config_path = o.from.join("config.toml");
    let config = if config_path.exists() {
        files::read_experiment(&config_path)?
    } else {
        Config::default()
    };
    let net_path = o.from.join(o.run.name()).join("network.json");
    if !net_path.exists() {
        return Err(Error::Mismatch(format!(
            "{} does not exist: run `cargo xtask train` first, or give --from the output folder of a training",
            net_path.display()
        )));
    }
    let net = dynap_config::format::read_network(&files::read_text(&net_path)?)
        .map_err(|error| Error::Format {
            path: net_path.clone(),
            error,
        })?
        .network;
    let raster = experiment::rasters(&config);
    if raster.channels != net.input_channels() {
        return Err(Error::Mismatch(format!(
            "{}: the network takes {} input channels, the task's stimuli have {}",
            net_path.display(),
            net.input_channels(),
            raster.channels
        )));
    }
    let n = net.neurons();
    let stages = progress.stage("deploy", 4, "stages");
    let simulate = |net: &Network| -> Result<Stage, Error> {
        let spikes = experiment::simulate_patterns(net, &raster)?;
        let metrics = task::metrics(&spikes, raster.samples, raster.steps, n);
        Ok(Stage { spikes, metrics })
    };
    stages.set_message("float");
    let float = simulate(&net)?;
    stages.inc(1);
    stages.set_message("quantized");
    let (q, qnet) = crate::quantization::quantize_network(&net, &dynap_quant::Options::default())?;
    let quantized = simulate(&qnet)?;
    stages.inc(1);
    stages.set_message("mapping, reverse_mapped");
    let mapped = map_quantized(&q.weights, &net)?;
    let back = dynap_config::unmap(
        &mapped.config,
        Some(&mapped.mapping),
        net.i_scale,
        net.dt,
        &dynap_model::BiasGenerator::dynapse2(),
    )?;
    let reverse = simulate(&back.network)?;
    stages.inc(1);
    stages.set_message("device");
    let mut device = crate::evaluation::open_device(&o.device, net.dt, net.i_scale, net.variant)?;
    let fail = |device: &dyn Transport| {
        let name = device.name();
        move |error| Error::Device {
            device: name.clone(),
            error,
        }
    };
    device
        .apply(&mapped.config)
        .map_err(fail(device.as_ref()))?;
    let step_us = (net.dt * 1e6).round();
    if !((1.0..1e9).contains(&step_us) && (step_us - net.dt * 1e6).abs() < 1e-6) {
        return Err(Error::Mismatch(format!(
            "dt = {} s: a device plays steps of whole microseconds (the board's clock), at least 1 µs",
            net.dt
        )));
    }
    let step_us = step_us as u32;
    let mut spikes = Vec::with_capacity(raster.samples * raster.steps * n);
    let mut unexpected = 0;
    let per = raster.steps * raster.channels;
    for c in 0..raster.samples {
        device.reset().map_err(fail(device.as_ref()))?;
        let played = dynap_hw::play(
            device.as_mut(),
            &mapped.mapping,
            &raster.data[c * per..(c + 1) * per],
            raster.steps,
            &PlayOptions {
                step_us,
                ..PlayOptions::default()
            },
        )
        .map_err(fail(device.as_ref()))?;
        unexpected += played.unexpected;
        spikes.extend(played.raster);
    }
    stages.inc(1);
    stages.finish();
    let metrics = task::metrics(&spikes, raster.samples, raster.steps, n);
    let dev = Stage { spikes, metrics };
    Ok(Deployed {
        stages: vec![
            ("float", float),
            ("quantized", quantized),
            ("reverse_mapped", reverse),
            ("device", dev),
        ],
        weight_error: q.relative_rms_error,
        unexpected_events: unexpected,
        device: device.name(),
        mapped,
        raster,
        dt: net.dt,
    })
}

impl Deployed {
    /// `metrics.json`: `{"stages": {"float", "quantized", "reverse_mapped", "device"}}` (each with
    /// `counts`, `correct`, `frr`, `mse`), the device, the quantization's weight error, whether the
    /// device equals the reverse-mapped simulation spike for spike, and unexpected events.
    pub fn metrics_json(&self) -> Value {
        let mut stages = serde_json::Map::new();
        for (name, s) in &self.stages {
            stages.insert(
                (*name).into(),
                Value::Object(task::metrics_json(&s.metrics)),
            );
        }
        let spikes = |name: &str| {
            self.stages
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| &s.spikes)
        };
        json!({
            "stages": Value::Object(stages),
            "device": self.device,
            "quantization_relative_rms_error": self.weight_error,
            "device_equals_reverse_mapped": spikes("reverse_mapped") == spikes("device"),
            "unexpected_events": self.unexpected_events,
        })
    }

    /// Writes `out`: `config.json` (samna), `config.bin`, `mapping.json`, `metrics.json` and a raster
    /// plot per stage (`raster_<stage>.png`, with `.svg` and its data as `.csv`).
    pub fn write(&self, out: &Path) -> Result<(), Error> {
        files::create_dir(out)?;
        write_configuration(out, &self.mapped)?;
        for (name, s) in &self.stages {
            let n = s.metrics.counts.first().map_or(0, Vec::len);
            let path = out.join(format!("raster_{name}.png"));
            crate::plot::raster_with_dt(
                &path,
                &format!("{name}: output spikes"),
                &s.spikes,
                self.raster.samples,
                self.raster.steps,
                n,
                self.dt,
            )
            .map_err(files::write_error(&path))?;
        }
        files::write_atomic(
            &out.join("metrics.json"),
            serde_json::to_string_pretty(&self.metrics_json())
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// The stages side by side, for people.
    pub fn table(&self) -> String {
        let mut s = format!("{:<16} {:<24} {:>8}\n", "stage", "counts", "correct");
        for (name, st) in &self.stages {
            let counts: Vec<String> = st
                .metrics
                .counts
                .iter()
                .map(|c| format!("{:?}", c.iter().map(|&x| x as i64).collect::<Vec<_>>()))
                .collect();
            s.push_str(&format!(
                "{name:<16} {:<24} {:>8}\n",
                counts.join(""),
                if st.metrics.correct { "yes" } else { "no" }
            ));
        }
        s
    }
}

/// A dataset run's best network (`RUN_DIR/network.json`) deployed: mapped, and judged at every stage
/// on a split it never trained on.
#[derive(Clone, Debug)]
pub struct DatasetDeployed {
    /// The configuration and its mapping.
    pub mapped: dynap_config::Mapped,
    /// Relative RMS weight error of the quantization.
    pub weight_error: f64,
    /// What it was judged on, for people.
    pub data: String,
    /// The stages.
    pub judged: crate::evaluation::Judged,
    /// The device's description.
    pub device: String,
    /// What the samples judged should give.
    pub truth: crate::evaluation::Truth,
}

/// Maps `weights` (the 4-bit weights of `net`) onto the chip with `net`'s parameters, time step,
/// variant and dendrites: the one mapping every stage and deployment uses (and the Python package's
/// `dynap.map`).
pub fn map_quantized(
    weights: &dynap_model::QuantizedWeights,
    net: &Network,
) -> Result<dynap_config::Mapped, Error> {
    Ok(dynap_config::map(
        weights,
        &net.params,
        net.dt,
        net.variant,
        &dynap_config::MapOptions {
            chip: net.chip.clone(),
            ..dynap_config::MapOptions::default()
        },
    )?)
}

/// Writes a deployment's configuration into `out`: `config.json` (samna), `config.bin` and
/// `mapping.json`.
fn write_configuration(out: &Path, mapped: &dynap_config::Mapped) -> Result<(), Error> {
    files::write_atomic(
        &out.join("config.json"),
        dynap_config::to_json(&mapped.config).as_bytes(),
    )?;
    files::write_atomic(
        &out.join("config.bin"),
        &dynap_config::to_binary(&mapped.config),
    )?;
    files::write_atomic(
        &out.join("mapping.json"),
        dynap_config::format::write_mapping(&mapped.mapping).as_bytes(),
    )?;
    Ok(())
}

/// Deploys a dataset run (a folder with `encoding.json`): its best network on `device`, judged on
/// `data`, else the run's test split, else its validation split.
pub fn deploy_dataset(
    from: &Path,
    device: &Device,
    data: Option<&Path>,
    progress: &Progress,
) -> Result<DatasetDeployed, Error> {
    let config_path = from.join("config.toml");
    let config = files::read_experiment(&config_path)?;
    let net_path = from.join("network.json");
    let file =
        dynap_config::format::read_network(&files::read_text(&net_path)?).map_err(|error| {
            Error::Format {
                path: net_path.clone(),
                error,
            }
        })?;
    let architecture = file.architecture.clone().ok_or_else(|| {
        Error::Mismatch(format!(
            "{}: the network has no `architecture`; a dataset run's networks keep theirs",
            net_path.display()
        ))
    })?;
    let net = file.network.clone();
    let encoding = crate::eval::read_encoding(from, net.dt)?;
    let (samples, what) =
        crate::eval::dataset_samples(from, &config, &encoding, net.dt, data, true)?;
    let core_map = file
        .core_map
        .clone()
        .unwrap_or_else(|| architecture.core_map());
    let mut qfile = dynap_config::format::NetworkFile::new(net.clone());
    qfile.core_map = Some(core_map.clone());
    let q = crate::quantization::quantize_file(&qfile, &dynap_quant::Options::default())?;
    let mapped = map_quantized(&q.weights, &net)?;
    let device_name = match device {
        Device::Emulator { mismatch, seed } => format!(
            "emulator (digital twin, {:.0} % mismatch, seed {seed})",
            mismatch * 100.0
        ),
        Device::Usb => "usb".into(),
        Device::Samna { .. } => "samna".into(),
    };
    let options = crate::evaluation::JudgeOptions {
        device: device.clone(),
        ..crate::evaluation::JudgeOptions::default()
    };
    let readout = encoding.readout(&architecture)?;
    let judged = crate::evaluation::judge(
        &[(0, net)],
        &readout,
        Some(&core_map),
        &samples,
        encoding.classes,
        &options,
        progress,
        &what,
    )?;
    Ok(DatasetDeployed {
        mapped,
        weight_error: q.relative_rms_error,
        data: what,
        judged,
        device: device_name,
        truth: samples.truth,
    })
}

impl DatasetDeployed {
    /// `metrics.json`: `{"data", "samples", "device", "quantization_relative_rms_error", "stages":
    /// {stage: {"accuracy", "confusion"}}}` (a regression: `rmse` and `r2`).
    pub fn metrics_json(&self) -> Value {
        json!({
            "data": self.data,
            "samples": self.judged.samples,
            "device": self.device,
            "quantization_relative_rms_error": self.weight_error,
            "stages": self.judged.to_json(),
        })
    }

    /// Writes `out`: `config.json` (samna), `config.bin`, `mapping.json`, `metrics.json`, and the
    /// device stage's confusion matrix (`confusion.png`, `.svg`, `.csv`; a regression's predictions
    /// against the targets, `prediction.png`).
    pub fn write(&self, out: &Path) -> Result<(), Error> {
        files::create_dir(out)?;
        write_configuration(out, &self.mapped)?;
        files::write_atomic(
            &out.join("metrics.json"),
            serde_json::to_string_pretty(&self.metrics_json())
                .unwrap_or_default()
                .as_bytes(),
        )?;
        if let Some((stage, o)) = self.judged.last_stage(0) {
            crate::fit::outcome_plot(
                out,
                &format!("{}, {stage} stage", self.data),
                o,
                &self.truth,
            )?;
        }
        Ok(())
    }
}

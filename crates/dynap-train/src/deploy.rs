//! `dynap deploy`: a trained network to a device, compared stage by stage.
//!
//! From a train output folder (`--from`, default `runs/train`) it takes `<run>/network.json` (`--run`,
//! default `noise`) and the experiment's `config.toml` (the task's stimuli), then:
//! 1. `float`: simulates the trained network;
//! 2. `quantized`: quantizes it (default quantizer, snapped to the bias generator) and simulates that;
//! 3. maps it onto the chip and writes `config.json` (samna), `config.bin`, `mapping.json`;
//! 4. `reverse_mapped`: restores the network from the configuration and simulates it;
//! 5. `device`: applies the configuration to the device (`--device emulator`, the default, with its own
//!    frozen mismatch, `--mismatch` 0.1 and `--seed` 0; `usb` finds the board and says what is missing;
//!    `samna` drives a real board through the vendor's samna package with our bridge, `--python` the
//!    Python that has it), plays each stimulus as timed events and reads the output events back into a
//!    raster.
//!
//! Writes `--out` (default `runs/deploy`): the configurations, `metrics.json` = `{"stages": {"float",
//! "quantized", "reverse_mapped", "device"}}` (each with `counts`, `correct`, `frr`, `mse`), raster plots
//! per stage (`raster_<stage>.png`, with `.svg` and the data as `.csv`, see `plot`), and prints the
//! stages side by side.

use crate::cli::write_atomic;
use crate::config::Config;
use crate::configcmd::mapping_json;
use crate::experiment;
use crate::task::{self, Metrics};
use dynap_hw::{Emulator, EmulatorOptions, PlayOptions, Transport};
use dynap_model::{Network, Variant};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// `dynap deploy` options.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployArgs {
    /// Train output folder.
    pub from: PathBuf,
    /// `plain` or `noise`.
    pub run: String,
    /// `emulator`, `usb` or `samna`.
    pub device: String,
    /// Output folder.
    pub out: PathBuf,
    /// The emulator's frozen mismatch (fraction).
    pub mismatch: f64,
    /// The emulator's seed.
    pub seed: u64,
    /// Print nothing.
    pub quiet: bool,
    /// The Python that has samna, for `--device samna`.
    pub python: PathBuf,
}

impl DeployArgs {
    /// Parses the command line after `deploy`.
    pub fn parse(args: &[&str]) -> Result<DeployArgs, String> {
        let mut a = DeployArgs {
            from: PathBuf::from("runs/train"),
            run: "noise".into(),
            device: "emulator".into(),
            out: PathBuf::from("runs/deploy"),
            mismatch: 0.1,
            seed: 0,
            quiet: false,
            python: PathBuf::from("python3"),
        };
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || {
                it.next()
                    .copied()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--from" => a.from = PathBuf::from(value()?),
                "--run" => {
                    a.run = value()?.to_owned();
                    if !matches!(a.run.as_str(), "plain" | "noise") {
                        return Err(format!("--run {}: expected plain or noise", a.run));
                    }
                }
                "--device" => {
                    a.device = value()?.to_owned();
                    if !matches!(a.device.as_str(), "emulator" | "usb" | "samna") {
                        return Err(format!(
                            "--device {}: expected emulator, usb or samna",
                            a.device
                        ));
                    }
                }
                "--out" => a.out = PathBuf::from(value()?),
                "--mismatch" => {
                    let v = value()?;
                    a.mismatch = v
                        .parse()
                        .ok()
                        .filter(|m: &f64| (0.0..3.0).contains(m))
                        .ok_or(format!(
                            "--mismatch {v}: expected a fraction in [0, 3), e.g. 0.1 for 10 %"
                        ))?;
                }
                "--seed" => {
                    let v = value()?;
                    a.seed = v
                        .parse()
                        .map_err(|_| format!("--seed {v}: expected an integer"))?;
                }
                "--quiet" => a.quiet = true,
                "--python" => a.python = PathBuf::from(value()?),
                other => return Err(format!("deploy: unknown option {other}")),
            }
        }
        Ok(a)
    }
}

/// A network JSON (as `dynap train` writes it) read back.
pub fn read_network(text: &str) -> Result<Network, String> {
    let q = crate::quantize::read_input(text)?;
    let v = Value::Object(q.passthrough.clone());
    let n = q.core_map.len();
    let params = crate::configcmd::params_from(&v, n)?;
    let mut net = Network {
        params,
        w_in: q.w_in,
        w_rec: q.w_rec.unwrap_or_else(|| dynap_model::Matrix::zeros(n, n)),
        i_scale: q.iscale,
        dt: v
            .get("dt")
            .and_then(Value::as_f64)
            .unwrap_or(dynap_model::DEFAULT_DT),
        variant: v
            .get("variant")
            .and_then(Value::as_str)
            .and_then(Variant::from_name)
            .unwrap_or_default(),
        chip: None,
    };
    if net.variant == Variant::Chip {
        let n_in = net.w_in.as_ref().map_or(0, |m| m.rows());
        net.chip = Some(crate::report::chip_synapses_from(&q.passthrough, n, n_in)?);
    }
    net.validate().map_err(|e| e.to_string())?;
    Ok(net)
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
#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    /// `float`, `quantized`, `reverse_mapped`, `device`, in that order.
    pub stages: Vec<(&'static str, Stage)>,
    /// Relative RMS weight error of the quantization.
    pub weight_error: f64,
    /// Output events that did not decode to a mapped neuron.
    pub unexpected_events: usize,
    /// The device's description.
    pub device: String,
    /// The network's time step, s (the raster plots' time axis).
    pub dt: f64,
}

/// Runs the deployment (see the module documentation); writes nothing but the configurations until
/// every stage has run.
pub fn deploy(a: &DeployArgs) -> Result<Deployed, String> {
    let config = match std::fs::read_to_string(a.from.join("config.toml")) {
        Ok(text) => Config::from_toml(&text)
            .map_err(|e| format!("{}: {e}", a.from.join("config.toml").display()))?,
        Err(_) => Config::default(),
    };
    let net_path = a.from.join(&a.run).join("network.json");
    let text = std::fs::read_to_string(&net_path).map_err(|e| {
        format!(
            "cannot read {}: {e} (run `cargo xtask train` first, or give --from the output folder of a training)",
            net_path.display()
        )
    })?;
    let net = read_network(&text).map_err(|e| format!("{}: {e}", net_path.display()))?;
    let raster = experiment::rasters(&config);
    if raster.channels != net.input_channels() {
        return Err(format!(
            "the network takes {} input channels, the task's stimuli have {}",
            net.input_channels(),
            raster.channels
        ));
    }
    let n = net.neurons();
    let simulate = |net: &Network| -> Result<Stage, String> {
        let spikes = experiment::simulate_patterns(net, &raster).map_err(|e| e.to_string())?;
        let metrics = task::metrics(&spikes, raster.samples, raster.steps, n);
        Ok(Stage { spikes, metrics })
    };
    let float = simulate(&net)?;
    let (q, qnet) = crate::quantize::quantize_network(&net, &dynap_quant::Options::default())?;
    let quantized = simulate(&qnet)?;
    let mapped = dynap_config::map(
        &q.weights,
        &net.params,
        net.dt,
        net.variant,
        &dynap_config::MapOptions {
            chip: net.chip.clone(),
            ..dynap_config::MapOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| format!("cannot create {}: {e}", a.out.display()))?;
    let w = |name: &str, bytes: &[u8]| {
        write_atomic(&a.out.join(name), bytes)
            .map_err(|e| format!("cannot write {}: {e}", a.out.join(name).display()))
    };
    w(
        "config.json",
        dynap_config::to_json(&mapped.config).as_bytes(),
    )?;
    w("config.bin", &dynap_config::to_binary(&mapped.config))?;
    w(
        "mapping.json",
        serde_json::to_string_pretty(&mapping_json(&mapped.mapping))
            .unwrap_or_default()
            .as_bytes(),
    )?;
    let back = dynap_config::unmap(
        &mapped.config,
        Some(&mapped.mapping),
        net.i_scale,
        net.dt,
        &dynap_model::BiasGenerator::dynapse2(),
    )
    .map_err(|e| e.to_string())?;
    let reverse = simulate(&back.network)?;

    let mut device: Box<dyn Transport> = match a.device.as_str() {
        "emulator" => Box::new(Emulator::new(EmulatorOptions {
            mismatch: a.mismatch,
            seed: a.seed,
            dt: net.dt,
            iscale: net.i_scale,
            variant: net.variant,
            ..EmulatorOptions::default()
        })),
        "usb" => match dynap_hw::usb_transport(dynap_hw::OPAL_KELLY_VID, None) {
            Err(e) => return Err(format!("--device usb: {e}")),
            Ok(never) => match never {},
        },
        _ => Box::new(
            dynap_hw::SamnaBridge::start(&dynap_hw::BridgeOptions {
                python: a.python.clone(),
                ..dynap_hw::BridgeOptions::default()
            })
            .map_err(|e| format!("--device samna: {e}"))?,
        ),
    };
    device
        .apply(&mapped.config)
        .map_err(|e| format!("{}: {e}", device.name()))?;
    let step_us = (net.dt * 1e6).round();
    if !((1.0..1e9).contains(&step_us) && (step_us - net.dt * 1e6).abs() < 1e-6) {
        return Err(format!(
            "dt = {} s: a device plays steps of whole microseconds (the board's clock), at least 1 µs",
            net.dt
        ));
    }
    let step_us = step_us as u32;
    let mut spikes = Vec::with_capacity(raster.samples * raster.steps * n);
    let mut unexpected = 0;
    let per = raster.steps * raster.channels;
    for c in 0..raster.samples {
        device
            .reset()
            .map_err(|e| format!("{}: {e}", device.name()))?;
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
        .map_err(|e| format!("{}: {e}", device.name()))?;
        unexpected += played.unexpected;
        spikes.extend(played.raster);
    }
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
        dt: net.dt,
    })
}

fn write_outputs(a: &DeployArgs, d: &Deployed, raster: &task::Raster) -> Result<(), String> {
    let mut stages = serde_json::Map::new();
    for (name, s) in &d.stages {
        stages.insert(
            (*name).into(),
            Value::Object(task::metrics_json(&s.metrics)),
        );
        let n = s.metrics.counts.first().map_or(0, Vec::len);
        let path = a.out.join(format!("raster_{name}.png"));
        crate::plot::raster_with_dt(
            &path,
            &format!("{name}: output spikes"),
            &s.spikes,
            raster.samples,
            raster.steps,
            n,
            d.dt,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let reverse = &d.stages[2].1.spikes;
    let device = &d.stages[3].1.spikes;
    let metrics = json!({
        "stages": Value::Object(stages),
        "device": d.device,
        "quantization_relative_rms_error": d.weight_error,
        "device_equals_reverse_mapped": reverse == device,
        "unexpected_events": d.unexpected_events,
    });
    write_atomic(
        &a.out.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| format!("cannot write {}: {e}", a.out.join("metrics.json").display()))
}

/// `dynap deploy [...]`.
pub fn run(args: &[&str]) -> Result<ExitCode, String> {
    let a = DeployArgs::parse(args)?;
    let result = deploy(&a).and_then(|d| {
        let config = std::fs::read_to_string(a.from.join("config.toml"))
            .ok()
            .and_then(|t| Config::from_toml(&t).ok())
            .unwrap_or_default();
        write_outputs(&a, &d, &experiment::rasters(&config))?;
        Ok(d)
    });
    match result {
        Err(e) => {
            eprintln!("dynap deploy: {e}");
            Ok(ExitCode::FAILURE)
        }
        Ok(d) => {
            if !a.quiet {
                println!(
                    "deployed {}/{} to {} (quantization weight error {:.1} %)",
                    a.from.display(),
                    a.run,
                    d.device,
                    d.weight_error * 100.0
                );
                println!("{:<16} {:<24} {:>8}", "stage", "counts", "correct");
                for (name, s) in &d.stages {
                    let counts: Vec<String> = s
                        .metrics
                        .counts
                        .iter()
                        .map(|c| format!("{:?}", c.iter().map(|&x| x as i64).collect::<Vec<_>>()))
                        .collect();
                    println!(
                        "{name:<16} {:<24} {:>8}",
                        counts.join(""),
                        if s.metrics.correct { "yes" } else { "no" }
                    );
                }
                println!("wrote {}", a.out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

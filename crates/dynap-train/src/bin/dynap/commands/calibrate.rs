//! `dynap calibrate`: a chip's neurons measured through their spikes, written as a chip profile.

use super::deploy::DeviceArg;
use crate::Context;
use dynap_train::calibration;
use dynap_train::{Error, files};
use std::path::PathBuf;

/// Measure a chip's neurons through their spikes and write its chip profile.
///
/// Probes whole cores at once with only what a board offers (bias codes, DC latches, input spikes
/// through CAM tags, output spikes): refractory, DC, synapse, inhibition (chip model) and leak
/// probes, then fits every neuron. The profile (--out, JSON, version 1) lists each neuron's factors relative to the
/// nominal neuron: t_ref (the refractory time), dc_gain (membrane charging by the DC current),
/// syn_gain (membrane charging per input spike), gaba_gain (discharging per inhibitory spike, chip
/// model) and tau_mem (the membrane's time constant), which spikes reveal, with their uncertainty, and the
/// nuisance factor the fit needs (Io for --variant rockpool, kappa_n for chip), which they do not pin
/// down. Then, unless --no-check, held-out stimuli that
/// no probe used check how well the profile predicts each neuron's firing rate.
///
/// On the twin (--device emulator, the default), --mismatch and --seed choose the chip; the twin
/// keeps its mismatch hidden from the procedure (`dynap emulator check` compares afterwards).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Emulator)]
    device: DeviceArg,
    /// Where to write the chip profile.
    #[arg(long, value_name = "CHIP.json")]
    out: PathBuf,
    /// The twin's frozen mismatch, a fraction (0.1 is 10 %).
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = super::deploy::mismatch)]
    mismatch: f64,
    /// The twin's seed (its chip).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Chips to calibrate, every core of each (1 to 4).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4))]
    chips: u64,
    /// Only these cores, as CHIP:CORE or chip * 4 + core (e.g. 0:0,0:1 or 0,1); overrides --chips.
    #[arg(long, value_name = "CORES", value_delimiter = ',', value_parser = core)]
    cores: Vec<usize>,
    /// A measured bias-generator table (CSV with the built-in table's columns) the probe currents
    /// are coded with, and the twin makes its currents with.
    #[arg(long, value_name = "FILE.csv")]
    bias_table: Option<PathBuf>,
    /// The probes' time step in µs: the resolution of the spike times.
    #[arg(long, value_name = "US", default_value_t = 100, value_parser = clap::value_parser!(u32).range(10..=1000))]
    step_us: u32,
    /// The twin's neuron model (a board is the chip).
    #[arg(long, value_enum, default_value_t = super::VariantArg::Rockpool)]
    variant: super::VariantArg,
    /// Skip the held-out check of the profile's predictions.
    #[arg(long)]
    no_check: bool,
    /// The Python that has samna, for --device samna.
    #[arg(long, value_name = "PY", default_value = "python3")]
    python: PathBuf,
    /// For --device samna: the FPGA bitstream to upload when the board opens (Dynapse2Stack.bit,
    /// in Rockpool's source tree under rockpool/devices/dynapse/hardware/bitfiles/).
    #[arg(long, value_name = "FILE.bit")]
    bitfile: Option<PathBuf>,
}

fn core(s: &str) -> Result<usize, String> {
    let bad = || format!("{s}: expected CHIP:CORE (chip 0-3, core 0-3) or a core number 0-15");
    match s.split_once(':') {
        Some((h, c)) => {
            let (h, c): (usize, usize) =
                (h.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
            (h < 4 && c < 4).then_some(h * 4 + c).ok_or_else(bad)
        }
        None => s.parse().ok().filter(|&g: &usize| g < 16).ok_or_else(bad),
    }
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let generator = calibration::bias_generator(a.bias_table.as_deref())?;
    let mut device = a
        .device
        .device(a.mismatch, a.seed, &a.python, a.bitfile.as_deref());
    if let dynap_train::deployment::Device::Samna { chips, .. } = &mut device {
        // The resets reach every chip calibrated.
        *chips = a
            .cores
            .iter()
            .map(|g| g / 4 + 1)
            .max()
            .unwrap_or(a.chips as usize);
    }
    let variant: dynap_model::Variant = dynap_train::config::ModelVariant::from(a.variant).into();
    let options = dynap_hw::CalibrateOptions {
        cores: if a.cores.is_empty() {
            (0..a.chips as usize * 4).collect()
        } else {
            a.cores.clone()
        },
        step_us: a.step_us,
        generator: generator.clone(),
        variant,
        ..dynap_hw::CalibrateOptions::chips(1)
    };
    let mut twin = calibration::open_device(&device, a.step_us, &generator, variant)?;
    let name = twin.name();
    let failed = |error| Error::Device {
        device: name.clone(),
        error,
    };
    let settings = 12 + if a.no_check { 0 } else { 6 };
    let stage = cx
        .progress
        .stage(format!("calibrating {name}"), settings, "probes");
    let started = std::time::Instant::now();
    let found = dynap_hw::calibrate(twin.as_mut(), &options, &mut |line| {
        tracing::debug!("{line}");
        stage.set_message(line.to_owned());
        stage.inc(1);
    })
    .map_err(failed)?;
    files::write_atomic(
        &a.out,
        dynap_config::format::write_profile(&found.profile).as_bytes(),
    )?;
    let p = &found.profile;
    cx.say(format_args!(
        "calibrated {} neurons of {name}: {:.1} s of chip time ({:.1} s of computing)",
        p.neurons.len(),
        p.chip_time_s,
        started.elapsed().as_secs_f64()
    ));
    let names: Vec<String> = p
        .neurons
        .first()
        .map(|n| n.factors.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    for name in &names {
        let mut u: Vec<f64> = p
            .neurons
            .iter()
            .filter_map(|n| n.uncertainty.iter().find(|(k, _)| k == name).map(|x| x.1))
            .collect();
        u.sort_by(f64::total_cmp);
        let median = u.get(u.len() / 2).copied().unwrap_or(f64::NAN);
        let claimed = if p.identifiable.contains(name) {
            "measured"
        } else {
            "fitted, not identifiable"
        };
        cx.say(format_args!(
            "  {name:<9} {claimed:<25} median standard error {:.2} %",
            median * 100.0
        ));
    }
    for (probe, rms) in &found.residuals {
        cx.say(format_args!(
            "  {probe} probe: the fit leaves {:.2} % RMS of the interspike intervals",
            rms * 100.0
        ));
    }
    for (probe, count) in found.unmeasured.iter().filter(|(_, c)| *c > 0) {
        cx.say(format_args!(
            "  {probe} probe: {count} neurons fired too little to be measured (factor 1 kept)"
        ));
    }
    cx.say(format_args!(
        "  residual mismatch of the parameters not measured, estimated: {:.1} %",
        p.residual * 100.0
    ));
    if !a.no_check {
        let check = dynap_hw::predict_held_out(twin.as_mut(), &options, p, &mut |line| {
            stage.set_message(line.to_owned());
            stage.inc(1);
        })
        .map_err(failed)?;
        cx.say("held-out stimuli (not used by the fit): relative RMS error of each neuron's rate");
        for (what, with, without) in &check.stimuli {
            cx.say(format_args!(
                "  {what:<38} {:>6.2} % with the profile, {:>6.2} % with the nominal neuron",
                with * 100.0,
                without * 100.0
            ));
        }
    }
    stage.finish();
    cx.say(format_args!("wrote {}", a.out.display()));
    Ok(())
}

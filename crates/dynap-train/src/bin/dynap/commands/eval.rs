//! `dynap eval`: a training output folder's networks judged at every stage on data they never saw.

use super::deploy::DeviceArg;
use crate::Context;
use dynap_train::eval::{self, EvalOptions};
use dynap_train::evaluation::{JudgeOptions, STAGES};
use dynap_train::{Error, files};
use std::path::PathBuf;

/// Judge a trained run at every stage: float, quantized, reverse_mapped, device.
///
/// RUN_DIR is the output folder of `dynap train`, self-contained. A dataset run is judged on --data
/// (an NPZ with `x` and `y`, or a folder of x.npy and y.npy; features are encoded as training encoded
/// them) or, without it, on the run's test split; a frozen-noise run on its own task (the networks of
/// --run). Every stage classifies by the same rule on the output population's spikes: the neuron with
/// the most spikes, a tie broken by the first spike. `float` is the network as trained; `quantized`,
/// its 4-bit weights per core; `reverse_mapped`, the network its chip configuration implements;
/// `device`, that configuration on the device (the digital twin with --mismatch and --seed); with a
/// chip profile (--profile), `predicted` comes before it: the device stage predicted. With
/// --robustness, the float, quantized and reverse_mapped stages are also judged on --chips simulated
/// chips per mismatch level (reverse_mapped on simulated chips is the twin's network on many chips).
///
/// Writes --json (default RUN_DIR/eval.json): {"samples": n, "stages": {stage: {"accuracy",
/// "confusion", "per_seed", "robustness"}}}, accuracy a fraction (the mean over the run's seeds),
/// confusion[true][predicted] with a last column for samples without an output spike.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The training output folder.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,
    /// The data (NPZ, or a folder of x.npy and y.npy); default: the run's test split (dataset
    /// runs), the task (frozen-noise runs).
    #[arg(long, value_name = "FILE.npz")]
    data: Option<PathBuf>,
    /// Where to write the results (default: RUN_DIR/eval.json).
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// The device of the device stage.
    #[arg(long, value_enum, default_value_t = DeviceArg::Emulator)]
    device: DeviceArg,
    /// The twin's frozen mismatch, a fraction (0.1 is 10 %).
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = super::deploy::mismatch)]
    mismatch: f64,
    /// The twin's seed (its chip).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Mismatch levels in percent at which the float, quantized and reverse_mapped stages are also
    /// judged on simulated chips, e.g. 5,10,20,30.
    #[arg(long, value_name = "LEVELS", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(0..=300))]
    robustness: Vec<u32>,
    /// Simulated chips per robustness level.
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    chips: u64,
    /// Which run of a frozen-noise folder.
    #[arg(long, value_enum, default_value_t = super::deploy::RunArg::Noise)]
    run: super::deploy::RunArg,
    /// The Python that has samna, for --device samna.
    #[arg(long, value_name = "PY", default_value = "python3")]
    python: PathBuf,
    /// For --device samna: the FPGA bitstream to upload when the board opens (Dynapse2Stack.bit,
    /// in Rockpool's source tree under rockpool/devices/dynapse/hardware/bitfiles/).
    #[arg(long, value_name = "FILE.bit")]
    bitfile: Option<PathBuf>,
    /// A chip profile (`dynap calibrate --out`): adds the stage `predicted`, the reverse-mapped
    /// network on the profiled chip (each neuron with the factors measured where the mapping puts
    /// it), the device stage predicted before running it. Default: the run's own
    /// `training.chip_profile`, if it has one.
    #[arg(long, value_name = "CHIP.json")]
    profile: Option<PathBuf>,
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let profile = match &a.profile {
        Some(path) => Some(dynap_train::calibration::read_profile(path)?),
        None => {
            let config = a.run_dir.join("config.toml");
            match config
                .exists()
                .then(|| files::read_experiment(&config))
                .transpose()?
                .and_then(|c| c.training.chip_profile)
            {
                Some(path) => Some(dynap_train::calibration::read_profile(&path)?),
                None => None,
            }
        }
    };
    let options = EvalOptions {
        data: a.data.clone(),
        run: a.run.name(),
        judge: JudgeOptions {
            stages: STAGES.to_vec(),
            device: a
                .device
                .device(a.mismatch, a.seed, &a.python, a.bitfile.as_deref()),
            robustness: a.robustness.clone(),
            chips: a.chips as usize,
            profile,
            ..JudgeOptions::default()
        },
    };
    let evaluated = eval::eval(&a.run_dir, &options, &cx.progress)?;
    let out = a.json.unwrap_or_else(|| a.run_dir.join("eval.json"));
    files::write_atomic(
        &out,
        serde_json::to_string_pretty(&evaluated.to_json())
            .expect("plain data serialises")
            .as_bytes(),
    )?;
    cx.say(evaluated.judged.table(&evaluated.data).trim_end());
    cx.say(format_args!("wrote {}", out.display()));
    Ok(())
}

//! `dynap deploy`: a trained network quantized, mapped and run on a device, stage by stage.

use crate::Context;
use dynap_train::deployment::{self, DeployOptions, Device, RunName};
use dynap_train::{Error, files};
use std::path::PathBuf;

/// Quantize, map and run a trained network on a device, and compare every stage.
///
/// Takes <run>/network.json and config.toml (the task's stimuli) of a train output folder, and runs
/// the stages float, quantized, reverse_mapped (the network the configuration implements) and device.
/// Writes --out: config.json (samna's format), config.bin, mapping.json, metrics.json (the stages with
/// counts and correct), raster_<stage>.png with its .csv, and run.log.
///
/// A dataset run (a folder of a configuration with [data]): its best network (network.json), judged
/// at every stage on --data, else the run's test split, else its validation split; metrics.json has
/// each stage's accuracy and confusion matrix, confusion.png the device's.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The train output folder.
    #[arg(long, value_name = "DIR", default_value = "runs/train")]
    from: PathBuf,
    /// Which run of it.
    #[arg(long, value_enum, default_value_t = RunArg::Noise)]
    run: RunArg,
    /// The device: the digital twin, a board on USB (found, not driven: the protocol is the
    /// vendor's), or a board through samna.
    #[arg(long, value_enum, default_value_t = DeviceArg::Emulator)]
    device: DeviceArg,
    /// The output folder.
    #[arg(long, value_name = "DIR", default_value = "runs/deploy")]
    out: PathBuf,
    /// The twin's frozen mismatch, a fraction (0.1 is 10 %).
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = mismatch)]
    mismatch: f64,
    /// The twin's seed (its chip).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// The Python that has samna, for --device samna.
    #[arg(long, value_name = "PY", default_value = "python3")]
    python: PathBuf,
    /// For --device samna: the FPGA bitstream to upload when the board opens (Dynapse2Stack.bit,
    /// in Rockpool's source tree under rockpool/devices/dynapse/hardware/bitfiles/).
    #[arg(long, value_name = "FILE.bit")]
    bitfile: Option<PathBuf>,
    /// A dataset run's data to judge the stages on (NPZ, or a folder of x.npy and y.npy); default:
    /// the run's test split, else its validation split.
    #[arg(long, value_name = "FILE.npz")]
    data: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunArg {
    /// Trained without noise injection.
    Plain,
    /// Trained with mismatch injected.
    Noise,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeviceArg {
    /// The digital twin (its mismatch: --mismatch, --seed).
    Emulator,
    /// A board on USB.
    Usb,
    /// A board through the vendor's samna (--python).
    Samna,
}

impl DeviceArg {
    /// The device, with the twin's `mismatch` and `seed` and samna's `python` and `bitfile`.
    pub(crate) fn device(
        self,
        mismatch: f64,
        seed: u64,
        python: &std::path::Path,
        bitfile: Option<&std::path::Path>,
    ) -> Device {
        match self {
            DeviceArg::Emulator => Device::Emulator { mismatch, seed },
            DeviceArg::Usb => Device::Usb,
            DeviceArg::Samna => Device::Samna {
                python: python.to_path_buf(),
                bitfile: bitfile.map(std::path::Path::to_path_buf),
                chips: 1,
            },
        }
    }
}

impl RunArg {
    /// The run it names.
    pub(crate) fn name(self) -> RunName {
        match self {
            RunArg::Plain => RunName::Plain,
            RunArg::Noise => RunName::Noise,
        }
    }
}

pub(crate) fn mismatch(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|m| (0.0..3.0).contains(m))
        .ok_or_else(|| format!("{s}: expected a fraction in [0, 3), e.g. 0.1 for 10 %"))
}

pub(crate) fn run(a: Args, cx: &Context) -> Result<(), Error> {
    let options = DeployOptions {
        from: a.from.clone(),
        run: a.run.name(),
        device: a
            .device
            .device(a.mismatch, a.seed, &a.python, a.bitfile.as_deref()),
    };
    if a.from.join("encoding.json").exists() {
        files::create_dir(&a.out)?;
        cx.log.open(&a.out.join("run.log"))?;
        let d =
            deployment::deploy_dataset(&a.from, &options.device, a.data.as_deref(), &cx.progress)?;
        d.write(&a.out)?;
        cx.say(format_args!(
            "deployed {} to {} (quantization weight error {:.1} %)",
            a.from.join("network.json").display(),
            d.device,
            d.weight_error * 100.0
        ));
        cx.say(d.judged.table(&d.data).trim_end());
        cx.say(format_args!("wrote {}", a.out.display()));
        return Ok(());
    }
    let network = a.from.join(options.run.name()).join("network.json");
    if !network.exists() {
        // Nothing to deploy: say so before anything is created.
        return Err(Error::Mismatch(format!(
            "{} does not exist: run `cargo xtask train` first, or give --from the output folder of a training",
            network.display()
        )));
    }
    files::create_dir(&a.out)?;
    cx.log.open(&a.out.join("run.log"))?;
    let d = deployment::deploy(&options, &cx.progress)?;
    d.write(&a.out)?;
    cx.say(format_args!(
        "deployed {}/{} to {} (quantization weight error {:.1} %)",
        a.from.display(),
        options.run.name(),
        d.device,
        d.weight_error * 100.0
    ));
    cx.say(d.table().trim_end());
    cx.say(format_args!("wrote {}", a.out.display()));
    Ok(())
}

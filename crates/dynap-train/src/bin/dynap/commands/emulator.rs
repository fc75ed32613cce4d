//! `dynap emulator`: the digital twin's hidden truth, for checks.

use crate::Context;
use dynap_train::{Error, calibration};
use std::path::PathBuf;

/// The digital twin's own mismatch, which calibration must find.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    Describe(DescribeArgs),
    Check(CheckArgs),
}

/// Print the twin's true factors as JSON on stdout, and nothing else.
///
/// {"neurons": [{"chip", "core", "neuron", "factors": {NAME: factor}}]}, every neuron of --chips
/// chips: the factor of each of the 24 simulation parameters (Rockpool's names) relative to its
/// nominal value, and of each quantity spikes reveal (t_ref, dc_gain, syn_gain), computed from them
/// as calibration defines them. A neuron's factors depend only on (seed, chip, core, neuron,
/// parameter), never on the configuration the twin runs.
#[derive(clap::Args, Debug)]
pub(crate) struct DescribeArgs {
    #[command(flatten)]
    twin: Twin,
    /// Chips to describe (1 to 4).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4))]
    chips: u64,
    /// JSON output (the only output; accepted for scripts that ask for it).
    #[arg(long)]
    json: bool,
}

/// Compare a chip profile with the twin's truth: the relative RMS error of each quantity the
/// profile calls identifiable, beside the truth's own spread.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The chip profile (`dynap calibrate --out`).
    #[arg(value_name = "CHIP.json")]
    profile: PathBuf,
    #[command(flatten)]
    twin: Twin,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Which twin: the flags `describe` and `check` share.
#[derive(clap::Args, Debug)]
pub(crate) struct Twin {
    /// The twin's frozen mismatch, a fraction (0.1 is 10 %).
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = super::deploy::mismatch)]
    mismatch: f64,
    /// The twin's seed (its chip).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// The twin's neuron model (the chip's also draws its dendrites: Itau_gaba, ...).
    #[arg(long, value_enum, default_value_t = super::VariantArg::Rockpool)]
    variant: super::VariantArg,
}

impl Twin {
    fn options(&self) -> dynap_hw::EmulatorOptions {
        dynap_hw::EmulatorOptions {
            mismatch: self.mismatch,
            seed: self.seed,
            variant: dynap_train::config::ModelVariant::from(self.variant).into(),
            ..dynap_hw::EmulatorOptions::default()
        }
    }
}

pub(crate) fn run(c: Command, cx: &Context) -> Result<(), Error> {
    match c {
        Command::Describe(a) => {
            let _ = a.json;
            let options = a.twin.options();
            let truth = dynap_hw::describe(&options, a.chips as usize);
            stdout(&dynap_config::format::write_neurons(&truth))
        }
        Command::Check(a) => {
            let profile = calibration::read_profile(&a.profile)?;
            let chips = profile
                .neurons
                .iter()
                .map(|n| n.chip + 1)
                .max()
                .unwrap_or(1);
            let options = a.twin.options();
            let truth = dynap_hw::describe(&options, chips);
            let errors = calibration::compare(&profile, &truth)?;
            if a.json {
                let rows: Vec<serde_json::Value> = errors
                    .iter()
                    .map(|e| serde_json::json!({"name": e.name, "relative_rms_error": e.error, "truth_spread": e.spread, "neurons": e.neurons}))
                    .collect();
                let mut text = serde_json::to_string_pretty(
                    &serde_json::json!({"mismatch": a.twin.mismatch, "seed": a.twin.seed, "quantities": rows}),
                )
                .expect("plain data serialises");
                text.push('\n');
                stdout(&text)?;
            } else {
                cx.say(format_args!(
                    "{} against the twin (mismatch {:.0} %, seed {}):",
                    a.profile.display(),
                    a.twin.mismatch * 100.0,
                    a.twin.seed
                ));
                for e in &errors {
                    cx.say(format_args!(
                        "  {:<9} relative RMS error {:>5.2} %   (the truth spreads {:>5.2} %; {} neurons)",
                        e.name,
                        e.error * 100.0,
                        e.spread * 100.0,
                        e.neurons
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn stdout(text: &str) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "<stdout>".into(),
            action: "write",
            source: e,
        }),
        _ => Ok(()),
    }
}

//! A chip measured and trained for: calibration on a device, chip profiles, and a network as one
//! chip makes it.
//!
//! `dynap calibrate` runs [`dynap_hw::calibrate`] on the twin or a board and writes the chip profile;
//! `dynap emulator describe` prints the twin's truth; [`compare`] measures a profile against it.
//! [`on_chip`] gives a network each neuron's measured factors at the place the mapping puts it: the
//! frozen mismatch of `[training] chip_profile` and the `predicted` stage of `dynap eval --profile`.

use crate::deployment::Device;
use crate::error::Error;
use crate::files;
use dynap_config::NeuronPlace;
use dynap_config::format::{ChipProfile, NeuronFactors};
use dynap_hw::Transport;
use dynap_model::{BiasGenerator, BiasTable, Network, Variant};
use std::path::Path;

/// The bias generator of a user's measured table (CSV, the built-in table's columns), or the
/// built-in one.
pub fn bias_generator(table: Option<&Path>) -> Result<BiasGenerator, Error> {
    match table {
        None => Ok(BiasGenerator::dynapse2()),
        Some(path) => {
            let text = files::read_text(path)?;
            let table = BiasTable::from_csv(&text).map_err(|error| Error::BiasTable {
                path: path.to_path_buf(),
                error,
            })?;
            Ok(BiasGenerator::with_table(table))
        }
    }
}

/// Opens `device` for calibration: the twin simulates at the probes' step (`step_us`) with the
/// bias generator `generator` and neurons of `variant`; a board through samna takes its own.
pub fn open_device(
    device: &Device,
    step_us: u32,
    generator: &BiasGenerator,
    variant: Variant,
) -> Result<Box<dyn Transport>, Error> {
    match device {
        Device::Emulator { mismatch, seed } => Ok(Box::new(dynap_hw::Emulator::new(
            dynap_hw::EmulatorOptions {
                mismatch: *mismatch,
                seed: *seed,
                dt: f64::from(step_us) * 1e-6,
                generator: generator.clone(),
                variant,
                ..dynap_hw::EmulatorOptions::default()
            },
        ))),
        other => crate::evaluation::open_device(
            other,
            f64::from(step_us) * 1e-6,
            dynap_model::DEFAULT_ISCALE,
            variant,
        ),
    }
}

/// Reads a chip profile.
pub fn read_profile(path: &Path) -> Result<ChipProfile, Error> {
    dynap_config::format::read_profile(&files::read_text(path)?).map_err(|error| Error::Format {
        path: path.to_path_buf(),
        error,
    })
}

/// How well a profile found one quantity: the relative RMS error over the neurons both list, and
/// the truth's own relative RMS spread (what an uncalibrated guess of 1 would miss by).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantityError {
    /// The quantity.
    pub name: String,
    /// Relative RMS error of the profile's factors.
    pub error: f64,
    /// Relative RMS deviation of the true factors from 1.
    pub spread: f64,
    /// Neurons compared.
    pub neurons: usize,
}

/// The profile's error on each quantity it calls identifiable, against `truth` (`dynap emulator
/// describe`); a neuron of the profile that the truth does not list is an error naming it.
pub fn compare(
    profile: &ChipProfile,
    truth: &[NeuronFactors],
) -> Result<Vec<QuantityError>, Error> {
    let index: std::collections::HashMap<usize, &NeuronFactors> =
        truth.iter().map(|n| (n.slot(), n)).collect();
    let mut out = Vec::new();
    for name in &profile.identifiable {
        let (mut err, mut spread, mut count) = (0.0, 0.0, 0usize);
        for n in &profile.neurons {
            let t = index.get(&n.slot()).ok_or_else(|| {
                Error::Mismatch(format!(
                    "the truth does not list chip {} core {} neuron {} of the profile: describe as many chips as the profile covers (--chips)",
                    n.chip, n.core, n.neuron
                ))
            })?;
            let (Some(f), Some(x)) = (n.factor(name), t.factor(name)) else {
                return Err(Error::Mismatch(format!(
                    "chip {} core {} neuron {}: the truth has no factor `{name}`",
                    n.chip, n.core, n.neuron
                )));
            };
            err += (f / x - 1.0).powi(2);
            spread += (x - 1.0).powi(2);
            count += 1;
        }
        let c = count.max(1) as f64;
        out.push(QuantityError {
            name: name.clone(),
            error: (err / c).sqrt(),
            spread: (spread / c).sqrt(),
            neurons: count,
        });
    }
    Ok(out)
}

/// The places the mapper gives a network with `core_map` (neuron `j` on core `core_map[j]`, the
/// neurons of a core in order): where each neuron will run.
pub fn places(core_map: &[usize]) -> Vec<NeuronPlace> {
    let mut count = std::collections::HashMap::new();
    core_map
        .iter()
        .map(|&g| {
            let k = count.entry(g).or_insert(0usize);
            *k += 1;
            NeuronPlace {
                chip: g / dynap_config::CORES,
                core: g % dynap_config::CORES,
                neuron: *k - 1,
            }
        })
        .collect()
}

/// `net` as the profiled chip makes it: each neuron's parameters multiplied by the factors the
/// profile measured at its place (each quantity on its carrier, [`dynap_mismatch::hold`]). A place
/// the profile does not cover is an error naming it.
pub fn on_chip(
    net: &Network,
    places: &[NeuronPlace],
    profile: &ChipProfile,
) -> Result<Network, Error> {
    on_chip_with(net, places, profile, None)
}

/// [`on_chip`] with the mismatch the profile does not measure drawn at `residual` (`(level, seed)`:
/// Rockpool's mismatch of every parameter, network neuron `j` drawing slot `j` of `seed`), each
/// measured product held at its profiled value ([`dynap_mismatch::hold`]).
pub fn on_chip_with(
    net: &Network,
    places: &[NeuronPlace],
    profile: &ChipProfile,
    residual: Option<(f64, u64)>,
) -> Result<Network, Error> {
    let n = net.neurons();
    if places.len() != n {
        return Err(Error::Mismatch(format!(
            "{} places for a network of {n} neurons",
            places.len()
        )));
    }
    let index: std::collections::HashMap<usize, &NeuronFactors> =
        profile.neurons.iter().map(|n| (n.slot(), n)).collect();
    let slots: Vec<usize> = (0..n).collect();
    let draws = match residual {
        Some((level, seed)) if level > 0.0 => {
            dynap_mismatch::Mismatch::new(level).factors_at(seed, &slots)
        }
        _ => vec![dynap_mismatch::Factors::ONE; n],
    };
    let mut out = net.clone();
    for ((j, p), mut raw) in places.iter().enumerate().zip(draws) {
        let found = index.get(&dynap_hw::slot(p.chip, p.core, p.neuron)).ok_or_else(|| {
            Error::Mismatch(format!(
                "network neuron {j} runs at chip {} core {} neuron {}, which the chip profile does not cover: calibrate that core (dynap calibrate --cores)",
                p.chip, p.core, p.neuron
            ))
        })?;
        dynap_mismatch::hold(
            &mut raw,
            found.factors.iter().map(|(k, f)| (k.as_str(), *f)),
        );
        raw.apply(&mut out, j);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_the_mapper() {
        let p = places(&[0, 0, 5, 0, 5]);
        let got: Vec<(usize, usize, usize)> =
            p.iter().map(|p| (p.chip, p.core, p.neuron)).collect();
        assert_eq!(got, [(0, 0, 0), (0, 0, 1), (1, 1, 0), (0, 0, 2), (1, 1, 1)]);
    }

    #[test]
    fn a_network_on_a_profiled_chip() {
        let profile = ChipProfile {
            device: "test".into(),
            identifiable: vec!["t_ref".into()],
            chip_time_s: 1.0,
            residual: 0.0,
            neurons: vec![NeuronFactors {
                chip: 0,
                core: 1,
                neuron: 0,
                factors: vec![("t_ref".into(), 2.0), ("syn_gain".into(), 1.5)],
                uncertainty: Vec::new(),
            }],
        };
        let net = Network::with_defaults(1);
        let chip = on_chip(&net, &places(&[1]), &profile).unwrap();
        assert_eq!(chip.params.i_ref[0], net.params.i_ref[0] / 2.0);
        assert_eq!(chip.params.i_gain_syn[0], net.params.i_gain_syn[0] * 1.5);
        let e = on_chip(&net, &places(&[2]), &profile)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chip 0 core 2 neuron 0"), "{e}");
    }
}

//! Plays input spikes through the DYNAP-SE2 emulator (the digital twin) with `dynap-hw` alone: a
//! quantized network mapped onto a core, the configuration applied to the twin with 10 % mismatch, a
//! raster played as timed events through the mapping's input routes, and the output events read back.
//!
//! Run: `cargo run -p dynap-hw --example emulator`

use dynap_config::{MapOptions, map};
use dynap_hw::{Emulator, EmulatorOptions, PlayOptions, Transport, play};
use dynap_model::{NeuronParams, QuantMatrix, QuantizedWeights, Variant, WeightMatrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One input channel driving two neurons (masks 3 and 5: the sums of two base currents).
    let w_in = QuantMatrix::new(WeightMatrix::Input, 1, 2, vec![3, 5], vec![1, 1])?;
    let weights = QuantizedWeights::new(
        vec![0, 0],
        vec![[2e-9, 4e-9, 8e-9, 1.6e-8]],
        Some(w_in),
        QuantMatrix::zeros(2, 2),
        1e-8,
    )?;
    let mapped = map(
        &weights,
        &NeuronParams::defaults(2),
        1e-3,
        Variant::Rockpool,
        &MapOptions::default(),
    )?;
    let steps = 200;
    // The input channel spikes every 4th step.
    let raster: Vec<f64> = (0..steps)
        .map(|t| f64::from(u8::from(t % 4 == 0)))
        .collect();
    for mismatch in [0.0, 0.1, 0.3] {
        let mut twin = Emulator::new(EmulatorOptions {
            mismatch,
            seed: 7,
            ..EmulatorOptions::default()
        });
        twin.apply(&mapped.config)?;
        let played = play(
            &mut twin,
            &mapped.mapping,
            &raster,
            steps,
            &PlayOptions::default(),
        )?;
        let counts: Vec<f64> = (0..2)
            .map(|j| (0..steps).map(|t| played.raster[t * 2 + j]).sum())
            .collect();
        println!(
            "{}: output spikes per neuron in {steps} ms: {counts:?} ({} unexpected events)",
            twin.name(),
            played.unexpected
        );
    }
    Ok(())
}

//! Quantizes a network's weights to DYNAP-SE2's 4-bit format with `dynap-quant` alone: per core four
//! base currents (snapped to the bias generator) and a 4-bit mask and a sign per connection; compares
//! the default quantizer with Rockpool's autoencoder on the same weights.
//!
//! Run: `cargo run -p dynap-quant --example quantize`

use dynap_model::Matrix;
use dynap_quant::{AutoencoderOptions, Method, Options, quantize};

fn main() -> Result<(), dynap_quant::Error> {
    // 8 input channels into 12 neurons on two cores, and recurrent weights; values like a trained
    // network's (a deterministic pattern instead of random numbers).
    let weight = |k: usize| {
        ((k * 37 % 101) as f64 / 50.0 - 1.0) * if k.is_multiple_of(3) { 0.0 } else { 2.0 }
    };
    let w_in = Matrix::from_vec(8, 12, (0..96).map(weight).collect()).expect("8 x 12");
    let w_rec = Matrix::from_vec(12, 12, (100..244).map(weight).collect()).expect("12 x 12");
    let core_map: Vec<usize> = (0..12).map(|j| j / 6).collect();
    let q = quantize(
        Some(&w_in),
        Some(&w_rec),
        &core_map,
        1e-8,
        &Options::default(),
    )?;
    for c in &q.cores {
        println!(
            "core {}: {} weights, Iw = {:.3?} nA, error {:.1} % ({:.1} % after snapping)",
            c.core,
            c.weights,
            c.iw.map(|i| i * 1e9),
            c.error_before_snap * 100.0,
            c.error_after_snap * 100.0
        );
    }
    println!(
        "masks of w_rec, row 1: {:?}",
        &q.weights.w_rec().masks()[12..24]
    );
    println!(
        "signs of w_rec, row 1: {:?}",
        &q.weights.w_rec().signs()[12..24]
    );
    let ae = quantize(
        Some(&w_in),
        Some(&w_rec),
        &core_map,
        1e-8,
        &Options {
            method: Method::Autoencoder {
                options: AutoencoderOptions {
                    fixed_epoch: true,
                    num_epoch: 2000,
                    ..AutoencoderOptions::default()
                },
                init: Default::default(),
            },
            snap: None,
        },
    )?;
    println!(
        "relative RMS weight error: default quantizer {:.1} %, Rockpool's autoencoder {:.1} %",
        q.relative_rms_error * 100.0,
        ae.relative_rms_error * 100.0
    );
    Ok(())
}

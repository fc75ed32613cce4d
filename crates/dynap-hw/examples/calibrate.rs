//! Calibrates a digital twin's core and compares what the calibration found with the twin's truth.
//!
//! `cargo run --release -p dynap-hw --example calibrate -- [MISMATCH] [SEED] [CORES]`
//! (defaults: 0.2, 0, 1 core).

use dynap_hw::{
    CalibrateOptions, Emulator, EmulatorOptions, calibrate, describe, predict_held_out,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mismatch: f64 = args.first().map_or(Ok(0.2), |s| s.parse())?;
    let seed: u64 = args.get(1).map_or(Ok(0), |s| s.parse())?;
    let cores: usize = args.get(2).map_or(Ok(1), |s| s.parse())?;
    let variant = match args.get(3).map(String::as_str) {
        Some("chip") => dynap_model::Variant::Chip,
        _ => dynap_model::Variant::Rockpool,
    };
    let options = CalibrateOptions {
        cores: (0..cores).collect(),
        variant,
        ..CalibrateOptions::chips(1)
    };
    let twin_options = EmulatorOptions {
        mismatch,
        seed,
        dt: f64::from(options.step_us) * 1e-6,
        variant,
        ..EmulatorOptions::default()
    };
    let mut twin = Emulator::new(twin_options.clone());
    let start = std::time::Instant::now();
    let found = calibrate(&mut twin, &options, &mut |line| eprintln!("{line}"))?;
    eprintln!(
        "calibrated in {:.1} s of computer time",
        start.elapsed().as_secs_f64()
    );
    let truth = describe(&twin_options, cores.div_ceil(4));
    println!(
        "mismatch {:.0} %, seed {seed}, {} neurons, chip time {:.1} s, residuals {:?}, unmeasured {:?}",
        mismatch * 100.0,
        found.profile.neurons.len(),
        found.profile.chip_time_s,
        found.residuals,
        found.unmeasured
    );
    for name in found.profile.identifiable.iter().map(String::as_str) {
        let (mut sum, mut spread, mut n) = (0.0, 0.0, 0);
        for got in &found.profile.neurons {
            let t = &truth[got.slot()];
            let (f, x) = (
                got.factor(name).unwrap_or(1.0),
                t.factor(name).unwrap_or(1.0),
            );
            sum += (f / x - 1.0).powi(2);
            spread += (x - 1.0).powi(2);
            n += 1;
        }
        println!(
            "{name:>9}: relative RMS error {:.2} % (the truth spreads {:.2} %)",
            100.0 * (sum / n as f64).sqrt(),
            100.0 * (spread / n as f64).sqrt()
        );
    }
    let p = predict_held_out(&mut twin, &options, &found.profile, &mut |_| {})?;
    for (name, with, without) in p.stimuli {
        println!(
            "{name:>38}: rate error {:.2} % with the profile, {:.2} % without",
            with * 100.0,
            without * 100.0
        );
    }
    Ok(())
}

//! How a network varies from chip to chip: one DC-driven neuron simulated on 200 simulated chips with
//! 10 % and 30 % frozen mismatch (Rockpool's model: every current and capacitance `p (1 + z pct/3)`),
//! with `dynap-mismatch` alone.
//!
//! Run: `cargo run -p dynap-mismatch --example chips`

use dynap_mismatch::{Mismatch, monte_carlo};
use dynap_model::{Input, Network, RunOptions, Simulator};

fn main() -> Result<(), dynap_model::Error> {
    let mut net = Network::with_defaults(1);
    net.params.i_dc = vec![2e-10];
    let steps = 500;
    let input = vec![0.0f64; steps];
    let count = |net: &Network| -> Result<f64, dynap_model::Error> {
        let trace = Simulator::<f64>::new(net)?.run(
            Input::Weighted {
                data: &input,
                batch: 1,
                steps,
            },
            None,
            &RunOptions::default(),
        )?;
        Ok(trace.spikes.iter().sum())
    };
    println!("nominal chip: {} spikes in {steps} ms", count(&net)?);
    for percent in [0.1, 0.3] {
        let m = Mismatch::new(percent);
        let counts = monte_carlo(200, 0, |chip| count(&m.frozen(&net, chip as u64)));
        let counts = counts.into_iter().collect::<Result<Vec<f64>, _>>()?;
        let mean = counts.iter().sum::<f64>() / counts.len() as f64;
        let sd =
            (counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / counts.len() as f64).sqrt();
        let (lo, hi) = counts.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
        println!(
            "{:>2.0} % mismatch, 200 chips: {mean:.1} +- {sd:.1} spikes (from {lo} to {hi})",
            percent * 100.0
        );
    }
    Ok(())
}

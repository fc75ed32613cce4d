//! Simulates DYNAP-SE2 neurons with `dynap-model` alone: a population of 4 neurons behind 8 input
//! channels of Poisson-like spikes, in both model variants (Rockpool's DynapSim and the chip's
//! four-dendrite circuits), with the membrane traces recorded; then one step of the reverse pass.
//!
//! Run: `cargo run -p dynap-model --example simulate`

use dynap_model::{
    AnySimulator, Input, Matrix, Network, OutputGradients, Recording, RunOptions, Simulator,
    Variant,
};

fn main() -> Result<(), dynap_model::Error> {
    let (n, n_in, steps) = (4, 8, 300);
    let mut net = Network::with_defaults(n);
    net.w_in = Matrix::from_vec(
        n_in,
        n,
        (0..n_in * n).map(|k| 4.0 + (k % 5) as f64).collect(),
    );
    // Neuron 3 inhibits neuron 0 (only the chip variant's GABA synapse can act on it).
    net.w_rec = Matrix::from_vec(
        n,
        n,
        (0..n * n)
            .map(|k| if k == 3 * n { -8.0 } else { 0.0 })
            .collect(),
    )
    .expect("n x n");
    // Input spikes `[batch, steps, channels]`: channel c spikes every (7 + c) steps.
    let x: Vec<f64> = (0..steps * n_in)
        .map(|k| f64::from(u8::from((k / n_in) % (7 + k % n_in) == 0)))
        .collect();
    let input = Input::Spikes {
        data: &x,
        batch: 1,
        steps,
    };
    let options = RunOptions {
        recording: Recording::Full,
        ..RunOptions::default()
    };
    for variant in [Variant::Rockpool, Variant::Chip] {
        let mut net = net.clone();
        net.variant = variant;
        let trace = AnySimulator::<f64>::new(&net)?.run(input, None, &options)?;
        let imem = trace.imem().expect("recorded");
        let peak = imem.iter().fold(0.0f64, |m, &i| m.max(i));
        println!(
            "{:<8} spikes per neuron in {steps} ms: {:?}, peak membrane current {peak:.3e} A",
            variant.name(),
            trace.spike_counts()
        );
    }
    // The reverse pass: d(total spikes of neuron 0) / d(w_in), through the hand-derived adjoint.
    let sim = Simulator::<f64>::new(&net)?;
    let (trace, tape) = sim.run_taped(input, None, &RunOptions::default(), 1)?;
    let mut g_spikes = vec![0.0; trace.spikes.len()];
    for t in 0..steps {
        g_spikes[t * n] = 1.0;
    }
    let g = sim.gradient(
        &tape,
        input,
        &OutputGradients {
            spikes: Some(&g_spikes),
            ..OutputGradients::default()
        },
        &Default::default(),
    )?;
    let w_in = g.w_in.expect("spike input");
    println!(
        "d(spikes of neuron 0)/d(w_in[0][0]) = {:.3e}, d/d(w_in[0][1]) = {:.3e} (Rockpool's surrogate)",
        w_in.get(0, 0),
        w_in.get(0, 1)
    );
    Ok(())
}

//! Trains a small DynapSim network with `dynap-autodiff` alone: three input channels into two neurons,
//! Adam on a spike-count loss, until neuron 0 fires 6 times in 100 ms and neuron 1 stays silent.
//!
//! Run: `cargo run -p dynap-autodiff --example train`

use dynap_autodiff::{CurrentTraining, Loss, SpikeInput, Trainer};
use dynap_model::{Matrix, Network};

fn main() -> Result<(), dynap_autodiff::Error> {
    // Two neurons with Rockpool's default currents, input weights to train.
    let mut net = Network::with_defaults(2);
    net.w_in = Matrix::from_vec(3, 2, vec![2.0, 2.0, 1.0, 1.0, 0.5, 0.5]);
    // One input pattern: 100 steps of 1 ms, each channel spiking every few steps.
    let x: Vec<f32> = (0..100 * 3)
        .map(|k| f32::from(u8::from((k / 3) % (2 + k % 3) == 0)))
        .collect();
    let x = SpikeInput::new(x, 1, 100, 3)?;
    let loss = Loss::CountMse {
        target: vec![6.0, 0.0],
    };
    let mut trainer = Trainer::<f32>::new(net, CurrentTraining::none(), 0.05)?;
    for step in 0..=200 {
        let value = trainer.step(&x, &loss, None)?;
        if step % 50 == 0 {
            println!("step {step:>3}: loss {value:.3}");
        }
    }
    let trained = trainer.network();
    let w = trained
        .w_in
        .as_ref()
        .expect("the network has input weights");
    println!("trained input weights (pre x post): {:?}", w.as_slice());
    Ok(())
}

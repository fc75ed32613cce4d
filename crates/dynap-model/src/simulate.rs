//! Simulating a network of either model variant.

use crate::chip::ChipSimulator;
use crate::error::Error;
use crate::network::{Network, Variant};
use crate::real::Real;
use crate::run::{Input, Recording, RunOptions};

/// The output spikes `[batch, steps, N]` of a network of either variant: [`crate::Simulator`] for
/// `rockpool`, [`ChipSimulator`] for `chip` (a new simulator per call; keep one for repeated runs).
pub fn simulate_spikes<T: Real>(
    net: &Network,
    input: Input<'_, T>,
    options: &RunOptions,
) -> Result<Vec<T>, Error> {
    let options = RunOptions {
        recording: Recording::Spikes,
        ..*options
    };
    match net.variant {
        Variant::Rockpool => Ok(crate::Simulator::<T>::new(net)?
            .run(input, None, &options)?
            .spikes),
        Variant::Chip => Ok(ChipSimulator::<T>::new(net)?
            .run(input, None, &options)?
            .spikes),
    }
}

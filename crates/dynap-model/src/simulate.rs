//! Simulating a network of either model variant: one simulator chosen by the network's [`Variant`],
//! with what the runs of both variants have in common, for callers that run a network whatever its
//! variant (evaluation, the emulator). Taped runs and gradients differ between the variants and stay
//! with each variant's simulator.

use crate::chip::{ChipSimulator, ChipState, ChipTrace};
use crate::error::Error;
use crate::network::{Network, Variant};
use crate::real::Real;
use crate::rockpool::{Simulator, State, Trace};
use crate::run::{Input, Recording, RunOptions};

/// The simulator of a network of either variant (each boxed: they differ in size).
#[derive(Clone, Debug)]
pub enum AnySimulator<T: Real> {
    /// A `rockpool` network's.
    Rockpool(Box<Simulator<T>>),
    /// A `chip` network's.
    Chip(Box<ChipSimulator<T>>),
}

/// The state of a run of either variant, to continue from.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyState<T> {
    /// The state of a `rockpool` run.
    Rockpool(State<T>),
    /// The state of a `chip` run.
    Chip(ChipState<T>),
}

/// What a run of either variant returns.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyTrace<T> {
    /// A `rockpool` run's trace.
    Rockpool(Trace<T>),
    /// A `chip` run's trace.
    Chip(ChipTrace<T>),
}

impl<T: Real> AnySimulator<T> {
    /// The simulator of the network's variant: [`Simulator::new`] or [`ChipSimulator::new`].
    pub fn new(net: &Network) -> Result<AnySimulator<T>, Error> {
        Ok(match net.variant {
            Variant::Rockpool => AnySimulator::Rockpool(Box::new(Simulator::new(net)?)),
            Variant::Chip => AnySimulator::Chip(Box::new(ChipSimulator::new(net)?)),
        })
    }

    /// The variant it runs.
    pub fn variant(&self) -> Variant {
        match self {
            AnySimulator::Rockpool(_) => Variant::Rockpool,
            AnySimulator::Chip(_) => Variant::Chip,
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        match self {
            AnySimulator::Rockpool(sim) => sim.neurons(),
            AnySimulator::Chip(sim) => sim.neurons(),
        }
    }

    /// Runs the network on `input` from `initial` (or the variant's initial state), as the variant's
    /// own `run` does, with the same bits.
    ///
    /// Errors as that `run` does, and when `initial` is the state of the other variant.
    pub fn run(
        &self,
        input: Input<'_, T>,
        initial: Option<&AnyState<T>>,
        options: &RunOptions,
    ) -> Result<AnyTrace<T>, Error> {
        match (self, initial) {
            (AnySimulator::Rockpool(sim), None) => {
                Ok(AnyTrace::Rockpool(sim.run(input, None, options)?))
            }
            (AnySimulator::Rockpool(sim), Some(AnyState::Rockpool(s))) => {
                Ok(AnyTrace::Rockpool(sim.run(input, Some(s), options)?))
            }
            (AnySimulator::Chip(sim), None) => Ok(AnyTrace::Chip(sim.run(input, None, options)?)),
            (AnySimulator::Chip(sim), Some(AnyState::Chip(s))) => {
                Ok(AnyTrace::Chip(sim.run(input, Some(s), options)?))
            }
            (_, Some(state)) => Err(Error::StateVariant {
                simulator: self.variant().name(),
                state: state.variant().name(),
            }),
        }
    }
}

impl<T> AnyState<T> {
    /// The variant whose state it is.
    pub fn variant(&self) -> Variant {
        match self {
            AnyState::Rockpool(_) => Variant::Rockpool,
            AnyState::Chip(_) => Variant::Chip,
        }
    }
}

impl<T: Real> AnyTrace<T> {
    /// Output spikes `[batch, steps, N]` (counts in the `rockpool` variant, 0 or 1 in the `chip`
    /// variant).
    pub fn spikes(&self) -> &[T] {
        match self {
            AnyTrace::Rockpool(t) => &t.spikes,
            AnyTrace::Chip(t) => &t.spikes,
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        match self {
            AnyTrace::Rockpool(t) => t.batch,
            AnyTrace::Chip(t) => t.batch,
        }
    }

    /// Time steps.
    pub fn steps(&self) -> usize {
        match self {
            AnyTrace::Rockpool(t) => t.steps,
            AnyTrace::Chip(t) => t.steps,
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        match self {
            AnyTrace::Rockpool(t) => t.neurons,
            AnyTrace::Chip(t) => t.neurons,
        }
    }

    /// Total spikes per batch element and neuron, `[batch, N]`: `0.0 + s_0 + s_1 + ...` in `f64`, in
    /// step order ([`Trace::spike_counts`], [`ChipTrace::spike_counts`]).
    pub fn spike_counts(&self) -> Vec<f64> {
        match self {
            AnyTrace::Rockpool(t) => t.spike_counts(),
            AnyTrace::Chip(t) => t.spike_counts(),
        }
    }

    /// The membrane current `[batch, steps, N]` after each step's reset (A), when recorded
    /// ([`Recording::Full`]).
    pub fn imem(&self) -> Option<&[T]> {
        match self {
            AnyTrace::Rockpool(t) => t.records.as_ref().map(|r| &r.imem[..]),
            AnyTrace::Chip(t) => t.records.as_ref().map(|r| &r.imem[..]),
        }
    }

    /// The membrane voltage `[batch, steps, N]` (V), when recorded: before each step's reset in the
    /// `rockpool` variant, after it in the `chip` variant.
    pub fn vmem(&self) -> Option<&[T]> {
        match self {
            AnyTrace::Rockpool(t) => t.records.as_ref().map(|r| &r.vmem[..]),
            AnyTrace::Chip(t) => t.records.as_ref().map(|r| &r.vmem[..]),
        }
    }

    /// The adaptation current `[batch, steps, N]` (A), when recorded.
    pub fn iahp(&self) -> Option<&[T]> {
        match self {
            AnyTrace::Rockpool(t) => t.records.as_ref().map(|r| &r.iahp[..]),
            AnyTrace::Chip(t) => t.records.as_ref().map(|r| &r.iahp[..]),
        }
    }

    /// The spikes and the state after the last step (to continue from), taken out of the trace.
    pub fn into_spikes_and_state(self) -> (Vec<T>, AnyState<T>) {
        match self {
            AnyTrace::Rockpool(t) => (t.spikes, AnyState::Rockpool(t.final_state)),
            AnyTrace::Chip(t) => (t.spikes, AnyState::Chip(t.final_state)),
        }
    }
}

/// The output spikes `[batch, steps, N]` of a network of either variant: [`Simulator`] for
/// `rockpool`, [`ChipSimulator`] for `chip` (a new simulator per call; keep an [`AnySimulator`] for
/// repeated runs).
pub fn simulate_spikes<T: Real>(
    net: &Network,
    input: Input<'_, T>,
    options: &RunOptions,
) -> Result<Vec<T>, Error> {
    let options = RunOptions {
        recording: Recording::Spikes,
        ..*options
    };
    Ok(AnySimulator::<T>::new(net)?
        .run(input, None, &options)?
        .into_spikes_and_state()
        .0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chip::{ChipSynapses, SynapseChoice};
    use crate::network::Matrix;

    /// A recurrent network of 5 neurons and 3 input channels, with weights of both signs, that spikes
    /// in either variant, and an input of 2 elements of 300 steps.
    fn net_and_input(variant: Variant) -> (Network, Vec<f32>) {
        let mut net = Network::with_defaults(5);
        net.variant = variant;
        net.w_in = Matrix::from_vec(
            3,
            5,
            (0..15)
                .map(|k| ((k * 7) % 11) as f64 / 11.0 * 8.0 - 2.0)
                .collect(),
        );
        net.w_rec = Matrix::from_vec(
            5,
            5,
            (0..25).map(|k| ((k * 5) % 7) as f64 * 0.3 - 0.7).collect(),
        )
        .unwrap();
        for j in 0..5 {
            net.params.i_dc[j] = 2e-10 * (j + 1) as f64;
        }
        if variant == Variant::Chip {
            let mut chip = ChipSynapses::defaults(5);
            chip.w_rec_types = Some(
                (0..25)
                    .map(|k| SynapseChoice {
                        nmda: k % 3 == 0,
                        shunt: k % 2 == 0,
                    })
                    .collect(),
            );
            net.chip = Some(chip);
        }
        let x = (0..2 * 300 * 3usize)
            .map(|k| f32::from(u8::from((k * 2654435761) % 13 == 0)))
            .collect();
        (net, x)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn input(x: &[f32], steps: usize) -> Input<'_, f32> {
        Input::Spikes {
            data: x,
            batch: x.len() / (steps * 3),
            steps,
        }
    }

    const FULL: RunOptions = RunOptions {
        recording: Recording::Full,
        threads: 2,
    };

    /// The dispatcher's run is the variant's own run, bit for bit, records included; its accessors
    /// read that run.
    #[test]
    fn the_dispatcher_gives_the_direct_simulators_bits() {
        for variant in [Variant::Rockpool, Variant::Chip] {
            let (net, x) = net_and_input(variant);
            let sim = AnySimulator::<f32>::new(&net).unwrap();
            assert_eq!(sim.variant(), variant);
            assert_eq!(sim.neurons(), 5);
            let any = sim.run(input(&x, 300), None, &FULL).unwrap();
            // (spikes, imem, vmem, iahp, spike counts) of the variant's own simulator.
            let direct = match variant {
                Variant::Rockpool => {
                    let t = Simulator::<f32>::new(&net)
                        .unwrap()
                        .run(input(&x, 300), None, &FULL)
                        .unwrap();
                    let r = t.records.clone().unwrap();
                    assert_eq!(any, AnyTrace::Rockpool(t.clone()));
                    (t.spikes.clone(), r.imem, r.vmem, r.iahp, t.spike_counts())
                }
                Variant::Chip => {
                    let t = ChipSimulator::<f32>::new(&net)
                        .unwrap()
                        .run(input(&x, 300), None, &FULL)
                        .unwrap();
                    let r = t.records.clone().unwrap();
                    assert_eq!(any, AnyTrace::Chip(t.clone()));
                    (t.spikes.clone(), r.imem, r.vmem, r.iahp, t.spike_counts())
                }
            };
            assert!(direct.0.iter().sum::<f32>() > 20.0, "{variant:?} spikes");
            assert_eq!((any.batch(), any.steps(), any.neurons()), (2, 300, 5));
            assert_eq!(bits(any.spikes()), bits(&direct.0));
            assert_eq!(bits(any.imem().unwrap()), bits(&direct.1));
            assert_eq!(bits(any.vmem().unwrap()), bits(&direct.2));
            assert_eq!(bits(any.iahp().unwrap()), bits(&direct.3));
            let counts: Vec<u64> = any.spike_counts().iter().map(|c| c.to_bits()).collect();
            let expected: Vec<u64> = direct.4.iter().map(|c| c.to_bits()).collect();
            assert_eq!(counts, expected);
            assert_eq!(
                bits(&simulate_spikes(&net, input(&x, 300), &FULL).unwrap()),
                bits(&direct.0)
            );
            // Without full recording there are no records.
            let spikes_only = sim
                .run(input(&x, 300), None, &RunOptions::default())
                .unwrap();
            assert!(spikes_only.imem().is_none() && spikes_only.vmem().is_none());
            assert!(spikes_only.iahp().is_none());
            assert_eq!(bits(spikes_only.spikes()), bits(&direct.0));
        }
    }

    /// A run continued from the dispatcher's final state equals the whole run; a state of the other
    /// variant is refused by name.
    #[test]
    fn a_run_continues_from_its_final_state_and_refuses_the_other_variants() {
        // A state of one element of each variant.
        let state_of = |variant: Variant| {
            AnySimulator::<f32>::new(&net_and_input(variant).0)
                .unwrap()
                .run(input(&[0.0; 30], 10), None, &FULL)
                .unwrap()
                .into_spikes_and_state()
                .1
        };
        for (variant, other) in [
            (Variant::Rockpool, Variant::Chip),
            (Variant::Chip, Variant::Rockpool),
        ] {
            let (net, x) = net_and_input(variant);
            let x = &x[..300 * 3];
            let sim = AnySimulator::<f32>::new(&net).unwrap();
            let whole = sim.run(input(x, 300), None, &FULL).unwrap();
            let (first, state) = sim
                .run(input(&x[..120 * 3], 120), None, &FULL)
                .unwrap()
                .into_spikes_and_state();
            assert_eq!(state.variant(), variant);
            let second = sim
                .run(input(&x[120 * 3..], 180), Some(&state), &FULL)
                .unwrap();
            let joined: Vec<f32> = first.iter().chain(second.spikes()).copied().collect();
            assert_eq!(bits(&joined), bits(whole.spikes()));
            assert_eq!(
                sim.run(input(x, 300), Some(&state_of(other)), &FULL),
                Err(Error::StateVariant {
                    simulator: variant.name(),
                    state: other.name(),
                })
            );
        }
    }
}

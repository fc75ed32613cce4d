//! # dynap-model: the circuit equations of DYNAP-SE2
//!
//! Units, parameters and defaults, high-level <-> current translation, the bias generator (measured
//! table and its inverse), network descriptions, and the DynapSim simulator.
//!
//! Invariants of this crate:
//! * every stored value is in SI base units (A, F, V, s); weights are dimensionless multiples of `Iscale`;
//! * no I/O: parsers take bytes or text, the caller reads files;
//! * no randomness and no global state: the same inputs give the same bits, whatever the thread count
//!   (threads split the batch; each batch element is computed by one thread in a fixed order);
//! * the per-time-step loop does not allocate;
//! * bad input is an [`Error`] naming the parameter and the neuron, never a panic.
//!
//! ## Parameters
//!
//! | symbol | field | Rockpool name | unit | meaning | default |
//! |---|---|---|---|---|---|
//! | I_dc | `i_dc` | `Idc` | A | DC current into the membrane | 5e-13 |
//! | I_f,nmda | `i_f_nmda` | `If_nmda` | A | NMDA gate cut-off (unused by `rockpool`) | 5e-13 |
//! | I_gain,ahp | `i_gain_ahp` | `Igain_ahp` | A | AHP DPI gain | 2.8369e-11 |
//! | I_gain,mem | `i_gain_mem` | `Igain_mem` | A | membrane DPI gain | 2.1277e-11 |
//! | I_gain,syn | `i_gain_syn` | `Igain_syn` | A | synapse DPI gain | 8.6879e-9 |
//! | I_pulse,ahp | `i_pulse_ahp` | `Ipulse_ahp` | A | AHP pulse width current | 3.5e-7 |
//! | I_pulse | `i_pulse` | `Ipulse` | A | synaptic pulse width current | 3.5e-8 |
//! | I_ref | `i_ref` | `Iref` | A | refractory period current | 1.05e-9 |
//! | I_spkthr | `i_spkthr` | `Ispkthr` | A | spike threshold on I_mem | 1e-7 |
//! | I_tau,ahp | `i_tau_ahp` | `Itau_ahp` | A | AHP leak | 2.8369e-11 |
//! | I_tau,mem | `i_tau_mem` | `Itau_mem` | A | membrane leak | 5.3191e-12 |
//! | I_tau,syn | `i_tau_syn` | `Itau_syn` | A | synapse leak | 8.6879e-11 |
//! | I_w,ahp | `i_w_ahp` | `Iw_ahp` | A | AHP jump per own spike | 5e-13 |
//! | C_ahp | `c_ahp` | `C_ahp` | F | AHP capacitance | 40e-12 |
//! | C_syn | `c_syn` | `C_syn` | F | synapse capacitance (Rockpool uses C_ampa) | 24.5e-12 |
//! | C_pulse,ahp | `c_pulse_ahp` | `C_pulse_ahp` | F | AHP pulse capacitance | 0.5e-12 |
//! | C_pulse | `c_pulse` | `C_pulse` | F | synaptic pulse capacitance | 0.5e-12 |
//! | C_ref | `c_ref` | `C_ref` | F | refractory capacitance | 1.5e-12 |
//! | C_mem | `c_mem` | `C_mem` | F | membrane capacitance | 3e-12 |
//! | I_0 | `i_o` | `Io` | A | dark current, floor and reset value | 5e-13 |
//! | kappa_n | `kappa_n` | `kappa_n` | - | n-type slope factor | 0.75 |
//! | kappa_p | `kappa_p` | `kappa_p` | - | p-type slope factor | 0.66 |
//! | U_T | `u_t` | `Ut` | V | thermal voltage | 0.025 |
//! | V_th | `v_th` | `Vth` | V | pulse-width cut-off voltage | 0.7 |
//! | I_scale | [`Network::i_scale`] | `Iscale` | A | current of a unit weight | 1e-8 |
//! | dt | [`Network::dt`] | `dt` | s | time step | 1e-3 |
//!
//! ## Key types
//! * [`Network`], [`NeuronParams`], [`Param`], [`Matrix`]: what is simulated;
//! * [`QuantizedWeights`], [`QuantMatrix`], [`mask_levels`]: the chip's 4-bit weight format (per-core
//!   base currents, masks, signs), decoded to the float weights the simulator runs;
//! * [`Simulator`]: a network converted to `f32` or `f64`, run on an [`Input`] with [`RunOptions`],
//!   returning a [`Trace`] whose final [`State`] continues the next run (the `rockpool` variant);
//! * [`ChipSimulator`]: the same for the `chip` variant (four dendrites per neuron, inhibition that
//!   inhibits; its equations and every difference from Rockpool are in its module documentation),
//!   with [`ChipSynapses`] for its dendrites' parameters and each connection's synapse type;
//! * [`BiasGenerator`], [`BiasTable`], [`BiasCode`]: bias currents <-> (coarse, fine) codes;
//! * [`CoreParams`] and the converters of [`translation`]: high-level values <-> currents;
//! * [`read_npy`]: NumPy arrays, for weights saved by Python tools;
//! * [`Tolerance`]: relative + absolute comparison of numbers.

#[macro_use]
mod isa;
mod adjoint;
mod aligned;
mod biasgen;
mod chip;
mod dynapsim;
mod error;
mod events;
mod hwweights;
mod network;
mod npy;
mod param;
mod real;
mod tolerance;
mod transcendental;
pub mod translation;

pub use adjoint::{GradientOptions, Gradients, OutputGradients, Tape};
pub use biasgen::{
    BIAS_NAMES, BiasCode, BiasGenerator, BiasName, BiasTable, COARSE_LEVELS, FINE_LEVELS,
    TransistorType, chip_bias_from_sim, sim_from_chip_bias,
};
pub use chip::{
    ChipGradients, ChipOutputGradients, ChipRecords, ChipSimulator, ChipState, ChipSynapses,
    ChipTape, ChipTrace, DENDRITES, DendriteParams, SynapseChoice, dendrite_index, simulate_spikes,
};
pub use dynapsim::{
    Input, Recording, RunOptions, Simulator, SpikeFunction, State, StateTraces, Trace,
};
pub use error::{Error, WeightMatrix};
pub use events::SpikeEvents;
pub use hwweights::{
    BASE_WEIGHTS, Dendrite, MASK_LEVELS, QuantMatrix, QuantizedWeights, mask_levels,
};
pub use network::{Matrix, Network, Variant};
pub use npy::{NpyArray, read_npy};
pub use param::{DEFAULT_DT, DEFAULT_ISCALE, NeuronParams, Param, Quantity};
pub use real::Real;
pub use tolerance::Tolerance;
pub use translation::CoreParams;

/// The number of worker threads that `threads: 0` means: one per core this process may use. Read from
/// the operating system once (on Linux that reads cgroup files, tens of microseconds, which a small
/// network's whole run can cost) and remembered.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |x| x.get()))
}

/// Calls `work(&mut state, i, &mut items[i])` for every item, on `threads` threads (the calling thread
/// among them). Each thread takes the next item nobody has taken yet, so that uneven items (batch
/// elements with more spikes than others) do not leave a thread idle while another still has several
/// to do; each makes its `state` (scratch buffers) once with `init`. The items are independent, so the
/// results do not depend on the number of threads or on which thread ran which item.
pub(crate) fn for_each_item<I: Send, S>(
    items: &mut [I],
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize, &mut I) + Sync,
) {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        let mut state = init();
        for (i, item) in items.iter_mut().enumerate() {
            work(&mut state, i, item);
        }
        return;
    }
    let queue = std::sync::Mutex::new(items.iter_mut().enumerate());
    let run = || {
        let mut state = init();
        loop {
            // A worker that panicked poisons the lock; the scope re-raises its panic anyway.
            let next = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .next();
            let Some((i, item)) = next else { break };
            work(&mut state, i, item);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(run);
        }
        run();
    });
}

/// Calls `work(&mut state, i, part, &mut items[i])` for every item and each of its `parts` parts in
/// order (part `p + 1` of an item only after its part `p` has returned), on `threads` threads (the
/// calling thread among them). A free thread takes, among the items not running, one with the fewest
/// parts done (the lowest index among those), so every item's first part is handed out before any
/// second part and a thread never waits while another part is ready. With parts smaller than items,
/// threads of unequal speed finish within a part of each other. Each item's parts run one at a time, in
/// order, so the results do not depend on the number of threads or on which thread ran which part.
pub(crate) fn for_each_part<I: Send, S>(
    items: &mut [I],
    parts: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize, usize, &mut I) + Sync,
) {
    use std::sync::{Condvar, Mutex, PoisonError};
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 || parts <= 1 {
        for_each_item(items, threads, init, |state, i, item| {
            for p in 0..parts {
                work(state, i, p, item);
            }
        });
        return;
    }
    // Per item: its next part (`parts` when done) and the item itself while nobody runs it.
    let slots: Mutex<Vec<(usize, Option<&mut I>)>> =
        Mutex::new(items.iter_mut().map(|item| (0, Some(item))).collect());
    let changed = Condvar::new();
    let run = || {
        let mut state = init();
        let mut slots_guard = slots.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let ready = slots_guard
                .iter()
                .enumerate()
                .filter(|(_, (p, item))| *p < parts && item.is_some())
                .min_by_key(|(i, (p, _))| (*p, *i))
                .map(|(i, _)| i);
            let Some(i) = ready else {
                if slots_guard.iter().all(|(p, _)| *p == parts) {
                    break;
                }
                // Every remaining part waits for its item's part running elsewhere.
                slots_guard = changed
                    .wait(slots_guard)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let p = slots_guard[i].0;
            let item = slots_guard[i].1.take().expect("a ready item is held here");
            drop(slots_guard);
            // Should `work` panic, its item is marked done so that no thread waits for it forever
            // (the scope then re-raises the panic).
            let mut abandoned = Abandoned {
                slots: &slots,
                changed: &changed,
                i,
                parts,
                armed: true,
            };
            work(&mut state, i, p, item);
            abandoned.armed = false;
            slots_guard = slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots_guard[i] = (p + 1, Some(item));
            changed.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(run);
        }
        run();
    });
}

/// See [`for_each_part`]: marks item `i` done if dropped while armed (by a panic in `work`).
struct Abandoned<'a, 'b, I> {
    slots: &'a std::sync::Mutex<Vec<(usize, Option<&'b mut I>)>>,
    changed: &'a std::sync::Condvar,
    i: usize,
    parts: usize,
    armed: bool,
}

impl<I> Drop for Abandoned<'_, '_, I> {
    fn drop(&mut self) {
        if self.armed {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots[self.i].0 = self.parts;
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every item's parts run exactly once and in order, whatever the threads, even when some parts
    /// take longer than others (so that threads overtake each other).
    #[test]
    fn every_part_runs_once_in_order() {
        for threads in 1..=4 {
            for parts in 1..=5 {
                for n in [0, 1, 3, 8] {
                    let mut items: Vec<Vec<usize>> = vec![Vec::new(); n];
                    super::for_each_part(
                        &mut items,
                        parts,
                        threads,
                        || (),
                        |(), i, p, item| {
                            if (i + p) % 3 == 0 {
                                std::thread::sleep(std::time::Duration::from_micros(300));
                            }
                            item.push(p);
                        },
                    );
                    for (i, item) in items.iter().enumerate() {
                        assert_eq!(
                            *item,
                            (0..parts).collect::<Vec<_>>(),
                            "item {i} of {n}, {parts} parts, {threads} threads"
                        );
                    }
                }
            }
        }
    }
}

//! A software DYNAP-SE2: a digital twin that holds a configuration and behaves like the board.
//!
//! * Applying a configuration builds the routing the chips implement: for every (chip, core, tag), the
//!   neurons whose CAM listens to it, with the synapse's weight (the sum of the core's base currents the
//!   mask selects over `Iscale`, signed by the dendrite); for every neuron, where its SRAM entries send
//!   its spikes (hops relative to its chip, core masks); the neurons' parameters from their core's
//!   biases through the bias generator (the DC current only where the DC latch is set). A frozen mismatch
//!   of its own (one seed, one chip) is drawn unless switched off: each neuron's factors depend only on
//!   (seed, chip, core, neuron, parameter) ([`slot`]), never on the configuration, and [`describe`]
//!   reports them.
//! * Input events enter the grid at chip 0 with their destination; they are held until their time.
//!   Every (target chip, core, tag) is one input line of the twin; an event with several cores in its
//!   mask reaches each.
//! * Time advances in steps of `dt` (1 ms by default) on a 64-bit microsecond clock whose low 32 bits are
//!   the board's timestamps (so they wrap like the board's). Step `k` covers `[k dt, (k + 1) dt)`.
//! * Neurons are simulated with `dynap-model` (the configuration's `rockpool` variant). A spike leaves
//!   through every used SRAM entry: to another core (one step later, as the simulator's recurrence) or
//!   off the grid to the host, where it arrives with the hop rewriting the board shows: each hop
//!   westward adds one to `x_hop` (a monitor route sent with `x_hop = -7` from chip `h` arrives with
//!   `h - 6`). Output events carry the end of their step as timestamp.
//! * Control events (tag 2047, core mask all, hops -7/-7) come back at their time with `x_hop = -6`.

use crate::error::{HwError, HwProblem};
use crate::event::Event;
use crate::transport::Transport;
use dynap_config::{
    CONTROL_TAG, CORES, Configuration, Destination, Hop, NEURONS, NeuronPlace, chip_position,
    target_chip,
};
use dynap_model::{
    AnySimulator, AnyState, BiasGenerator, ChipSynapses, Input, Matrix, Network, NeuronParams,
    RunOptions, SynapseChoice, Variant, mask_levels,
};
use std::collections::BTreeMap;

/// How the twin differs from the configuration's nominal network.
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatorOptions {
    /// Frozen mismatch of the simulation parameters, as a fraction (0.1 = 10 %, sigma 3.3 %); 0 for none.
    pub mismatch: f64,
    /// The twin's seed (which chip it is).
    pub seed: u64,
    /// Simulation step (s).
    pub dt: f64,
    /// Weight scale current (A) the synapses' currents are expressed in.
    pub iscale: f64,
    /// The clock at power-up (µs), to exercise the 32-bit wrap.
    pub clock_start_us: u64,
    /// Fault injection: drop every n-th output event (0: none).
    pub drop_every: usize,
    /// The model the twin's neurons follow: `rockpool` (one synapse per neuron, Rockpool's DynapSim)
    /// or `chip` (four dendrites per neuron from each core's DEAM, DENM, DEGA and DESC biases, each
    /// CAM entry on its own dendrite type).
    pub variant: Variant,
    /// The bias generator that turns the cores' bias codes into currents (the built-in measured
    /// table, or a user's own measurement of their board).
    pub generator: BiasGenerator,
}

impl Default for EmulatorOptions {
    fn default() -> EmulatorOptions {
        EmulatorOptions {
            mismatch: 0.1,
            seed: 0,
            dt: 1e-3,
            iscale: dynap_model::DEFAULT_ISCALE,
            clock_start_us: 0,
            drop_every: 0,
            variant: Variant::Rockpool,
            generator: BiasGenerator::dynapse2(),
        }
    }
}

/// The slot of a neuron on a board, `(chip * 4 + core) * 256 + neuron`: a neuron's mismatch is drawn
/// by its slot, so it depends only on (seed, chip, core, neuron, parameter).
pub fn slot(chip: usize, core: usize, neuron: usize) -> usize {
    (chip * CORES + core) * NEURONS + neuron
}

/// The twin's hidden truth: every neuron of the first `chips` chips, with the frozen factor of each
/// of the 24 simulation parameters (by Rockpool's name), of each dendrite value in the `chip` model
/// ([`dynap_mismatch::DENDRITE_NAMES`]), and of each quantity spikes reveal
/// ([`dynap_mismatch::Derived::of`] the twin's model, computed from them): exactly the factors the
/// twin applies to any configuration's neuron at that place.
pub fn describe(
    options: &EmulatorOptions,
    chips: usize,
) -> Vec<dynap_config::format::NeuronFactors> {
    let places: Vec<(usize, usize, usize)> = (0..chips)
        .flat_map(|h| (0..CORES).flat_map(move |c| (0..NEURONS).map(move |k| (h, c, k))))
        .collect();
    let slots: Vec<usize> = places.iter().map(|&(h, c, k)| slot(h, c, k)).collect();
    let table = if options.mismatch > 0.0 {
        dynap_mismatch::Mismatch::new(options.mismatch).factors_at(options.seed, &slots)
    } else {
        vec![dynap_mismatch::Factors::ONE; slots.len()]
    };
    places
        .iter()
        .zip(table)
        .map(|(&(chip, core, neuron), f)| {
            let mut factors: Vec<(String, f64)> = dynap_mismatch::FROZEN
                .iter()
                .zip(f.params)
                .map(|(p, x)| (p.rockpool_name().to_owned(), x))
                .collect();
            if options.variant == Variant::Chip {
                factors.extend(
                    dynap_mismatch::DENDRITE_NAMES
                        .iter()
                        .zip(f.dendrites)
                        .map(|(k, x)| ((*k).to_owned(), x)),
                );
            }
            factors.extend(
                dynap_mismatch::Derived::of(options.variant)
                    .map(|d| (d.name.to_owned(), d.factor(&f))),
            );
            dynap_config::format::NeuronFactors {
                chip,
                core,
                neuron,
                factors,
                uncertainty: Vec::new(),
            }
        })
        .collect()
}

/// Spikes `[steps, N]` of one batch element from `state` (the resting state if `None` or of the
/// other variant), and the state after.
fn run_board(
    sim: &AnySimulator<f32>,
    raster: &[f32],
    steps: usize,
    state: Option<&AnyState<f32>>,
) -> Result<(Vec<f32>, AnyState<f32>), dynap_model::Error> {
    let input = Input::Spikes {
        data: raster,
        batch: 1,
        steps,
    };
    let options = RunOptions {
        threads: 1,
        ..RunOptions::default()
    };
    let state = state.filter(|s| s.variant() == sim.variant());
    Ok(sim.run(input, state, &options)?.into_spikes_and_state())
}

/// What a configuration becomes inside the twin.
struct Board {
    /// (chip, core, neuron) of every simulated neuron, in that order.
    places: Vec<(usize, usize, usize)>,
    /// Input lines: (chip, core, tag), sorted.
    lines: Vec<(usize, usize, u16)>,
    /// The simulator of the twin's variant.
    sim: AnySimulator<f32>,
    /// Per neuron, its used SRAM entries.
    routes: Vec<Vec<Destination>>,
    chips: usize,
}

/// The emulator.
pub struct Emulator {
    options: EmulatorOptions,
    board: Option<Board>,
    /// The state the next run continues from (`None`: at rest).
    state: Option<AnyState<f32>>,
    /// Time of the next step to simulate (µs, 64-bit).
    now_us: u64,
    /// The 64-bit time of the newest event written, to unwrap the next timestamps.
    last_written_us: u64,
    pending: Vec<(u64, Destination)>,
    output_count: usize,
    late: usize,
}

impl Emulator {
    /// A powered-up twin without a configuration.
    pub fn new(options: EmulatorOptions) -> Emulator {
        let now = options.clock_start_us;
        Emulator {
            options,
            board: None,
            state: None,
            now_us: now,
            last_written_us: now,
            pending: Vec::new(),
            output_count: 0,
            late: 0,
        }
    }

    /// Input events that arrived after their time had passed (delivered at once), since power-up.
    pub fn late_events(&self) -> usize {
        self.late
    }

    fn step_us(&self) -> u64 {
        (self.options.dt * 1e6).round().max(1.0) as u64
    }

    /// What the twin simulates for `config`: its network (with the twin's mismatch), the neurons'
    /// places, the input lines and the routes.
    fn build(&self, config: &Configuration) -> Result<Board, HwError> {
        let generator = &self.options.generator;
        let chips = config.chips.len();
        // Cores in use: any parameter set or any active synapse.
        let mut places = Vec::new();
        for (h, chip) in config.chips.iter().enumerate() {
            for (c, core) in chip.cores.iter().enumerate() {
                let used = !core.parameters.is_empty()
                    || core
                        .neurons
                        .iter()
                        .any(|n| n.synapses.iter().any(|s| s.is_active()));
                if used {
                    places.extend((0..NEURONS).map(|k| (h, c, k)));
                }
            }
        }
        let n = places.len();
        // Parameters per neuron from its core.
        let mut params = NeuronParams::defaults(n);
        // Each used core's biases, decoded once.
        let mut cores: BTreeMap<(usize, usize), (dynap_config::CoreBiases, [f64; 16])> =
            BTreeMap::new();
        for &(h, c, _) in &places {
            cores.entry((h, c)).or_insert_with(|| {
                let b = dynap_config::core_biases(&config.chips[h].cores[c], generator);
                let levels = mask_levels(&b.base, self.options.iscale);
                (b, levels)
            });
        }
        for (i, &(h, c, k)) in places.iter().enumerate() {
            for &(p, v) in &cores[&(h, c)].0.currents {
                params.get_mut(p)[i] = v;
            }
            if !config.chips[h].cores[c].neurons[k].latches[0] {
                params.i_dc[i] = 0.0;
            }
        }
        let core_levels: BTreeMap<(usize, usize), [f64; 16]> = cores
            .iter()
            .map(|(&key, (_, levels))| (key, *levels))
            .collect();
        // Input lines: every (chip, core, tag) some CAM listens to.
        let mut lines: Vec<(usize, usize, u16)> = places
            .iter()
            .flat_map(|&(h, c, k)| {
                config.chips[h].cores[c].neurons[k]
                    .synapses
                    .iter()
                    .filter(|s| s.is_active())
                    .map(move |s| (h, c, s.tag.get()))
            })
            .collect();
        lines.sort_unstable();
        lines.dedup();
        let line_index: BTreeMap<(usize, usize, u16), usize> =
            lines.iter().enumerate().map(|(i, &l)| (l, i)).collect();
        let mut w_in = Matrix::zeros(lines.len(), n);
        // The dendrite type of every line's connection to every neuron (the `chip` variant's).
        let mut in_types = vec![SynapseChoice::default(); lines.len() * n];
        for (post, &(h, c, k)) in places.iter().enumerate() {
            let levels = core_levels[&(h, c)];
            for s in config.chips[h].cores[c].neurons[k]
                .synapses
                .iter()
                .filter(|s| s.is_active())
            {
                let row = line_index[&(h, c, s.tag.get())];
                let w = f64::from(s.dendrite.sign()) * levels[s.weight.bits() as usize];
                w_in.as_mut_slice()[row * n + post] += w;
                in_types[row * n + post] = SynapseChoice {
                    nmda: s.dendrite == dynap_config::Dendrite::Nmda,
                    shunt: s.dendrite == dynap_config::Dendrite::Shunt,
                };
            }
        }
        // Recurrence: a neuron's routes reach lines of other cores; the simulator's recurrent matrix is
        // the composition (route -> line -> weights), so a spike reaches its targets one step later.
        let mut routes = vec![Vec::new(); n];
        let mut w_rec = Matrix::zeros(n, n);
        let mut rec_types = vec![SynapseChoice::default(); n * n];
        for (pre, &(h, c, k)) in places.iter().enumerate() {
            for d in config.chips[h].cores[c].neurons[k]
                .destinations
                .iter()
                .filter(|d| d.is_used())
            {
                routes[pre].push(*d);
                let Some(t) = target_chip(h, d, chips) else {
                    continue;
                };
                for core in (0..CORES).filter(|&q| d.core.contains(q)) {
                    let Some(&row) = line_index.get(&(t, core, d.tag.get())) else {
                        continue;
                    };
                    for post in 0..n {
                        let w = w_in.as_slice()[row * n + post];
                        if w != 0.0 {
                            let k = pre * n + post;
                            let t = in_types[row * n + post];
                            if w_rec.as_slice()[k] != 0.0 && rec_types[k] != t {
                                let place = |i: usize| {
                                    let (chip, core, neuron) = places[i];
                                    NeuronPlace { chip, core, neuron }
                                };
                                return Err(HwProblem::MixedSynapseTypes {
                                    pre: place(pre),
                                    post: place(post),
                                }
                                .into());
                            }
                            w_rec.as_mut_slice()[k] += w;
                            rec_types[k] = t;
                        }
                    }
                }
            }
        }
        let mut net = Network {
            params,
            w_in: Some(w_in),
            w_rec,
            i_scale: self.options.iscale,
            dt: self.options.dt,
            variant: self.options.variant,
            chip: None,
        };
        if self.options.variant == Variant::Chip {
            // Each neuron's dendrites from its core's DENM, DEGA and DESC biases.
            let mut chip = ChipSynapses::defaults(n);
            for (i, &(h, c, _)) in places.iter().enumerate() {
                for &(sim, v) in &cores[&(h, c)].0.dendrites {
                    chip.current_mut(sim).expect("a dendrite current")[i] = v;
                }
            }
            chip.w_in_types = Some(in_types);
            chip.w_rec_types = Some(rec_types);
            net.chip = Some(chip);
        }
        if self.options.mismatch > 0.0 {
            // Each neuron by its place on the board, whatever else the configuration uses.
            let slots: Vec<usize> = places.iter().map(|&(h, c, k)| slot(h, c, k)).collect();
            net = dynap_mismatch::Mismatch::new(self.options.mismatch).frozen_at(
                &net,
                self.options.seed,
                &slots,
            );
        }
        let refused = |e: dynap_model::Error| HwError::from(HwProblem::Model(e));
        let sim = AnySimulator::<f32>::new(&net).map_err(refused)?;
        Ok(Board {
            places,
            lines,
            sim,
            routes,
            chips,
        })
    }

    /// Steps of one 2^32 µs epoch of the 32-bit clock: boundaries at multiples of the step in the
    /// 32-bit timestamps the host sees (the last step of an epoch is shorter).
    fn per_epoch(&self) -> u64 {
        (1u64 << 32).div_ceil(self.step_us())
    }

    fn step_of(&self, t: u64) -> u64 {
        (t >> 32) * self.per_epoch() + (t & 0xFFFF_FFFF) / self.step_us()
    }

    fn step_start(&self, id: u64) -> u64 {
        let (epoch, bin) = (id / self.per_epoch(), id % self.per_epoch());
        (epoch << 32) + bin * self.step_us()
    }

    fn step_end(&self, id: u64) -> u64 {
        let epoch_end = ((id / self.per_epoch()) + 1) << 32;
        (self.step_start(id) + self.step_us()).min(epoch_end) - 1
    }

    /// Simulates the steps before step `last` (exclusive), delivering the pending events that fall in
    /// them.
    fn run_until(&mut self, last: u64) -> Result<Vec<Event>, HwError> {
        let first = self.step_of(self.now_us);
        let mut out = Vec::new();
        // Control events bounce back at their time, whatever is configured.
        let (due, keep): (Vec<_>, Vec<_>) = self
            .pending
            .iter()
            .copied()
            .partition(|&(t, _)| self.step_of(t) < last);
        self.pending = keep;
        let mut delivered = Vec::new();
        for (t, d) in due {
            if d.tag.get() == CONTROL_TAG && d.x_hop.get() == -7 {
                out.push(Event {
                    destination: Destination {
                        x_hop: Hop::new(-6).expect("in range"),
                        ..d
                    },
                    timestamp: t as u32,
                });
            } else {
                delivered.push((t, d));
            }
        }
        // Late events still need a step to be delivered in.
        let last = if delivered.is_empty() {
            last
        } else {
            last.max(first + 1)
        };
        let Some(board) = &self.board else {
            self.now_us = self.now_us.max(self.step_start(last));
            return Ok(out);
        };
        if last <= first {
            return Ok(out);
        }
        let steps = last - first;
        const MAX_STEPS: u64 = 100_000_000;
        if steps > MAX_STEPS {
            return Err(HwProblem::TooFarAhead {
                steps,
                limit: MAX_STEPS,
            }
            .into());
        }
        let steps = steps as usize;
        let n_lines = board.lines.len();
        // Each input event's step and line.
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for (t, d) in delivered {
            // A late event (its step already simulated) is delivered in the next step, as the FPGA
            // forwards an event whose time has passed at once; it is counted.
            let k = match self.step_of(t).checked_sub(first) {
                Some(k) => k as usize,
                None => {
                    self.late += 1;
                    0
                }
            };
            // Input events enter at chip 0.
            let Some(chip) = target_chip(0, &d, board.chips) else {
                continue;
            };
            for core in (0..CORES).filter(|&q| d.core.contains(q)) {
                if let Ok(line) = board.lines.binary_search(&(chip, core, d.tag.get())) {
                    hits.push((k, line));
                }
            }
        }
        hits.sort_unstable();
        // Simulate in chunks, carrying the state, so memory stays bounded however long the stimulus.
        const CHUNK: usize = 4096;
        let n = board.places.len();
        let mut timed: Vec<(u64, Event)> = Vec::new();
        let mut next_hit = 0;
        let mut chunk_start = 0;
        while chunk_start < steps {
            let len = CHUNK.min(steps - chunk_start);
            let mut raster = vec![0.0f32; len * n_lines];
            while next_hit < hits.len() && hits[next_hit].0 < chunk_start + len {
                let (k, line) = hits[next_hit];
                raster[(k - chunk_start) * n_lines + line] += 1.0;
                next_hit += 1;
            }
            let (spikes, state) = run_board(&board.sim, &raster, len, self.state.as_ref())
                .map_err(HwProblem::Model)?;
            for k in 0..len {
                let end = self.step_end(first + (chunk_start + k) as u64);
                for i in 0..n {
                    let count = spikes[k * n + i] as usize;
                    if count == 0 {
                        continue;
                    }
                    let (h, _, _) = board.places[i];
                    for d in &board.routes[i] {
                        if target_chip(h, d, board.chips).is_some() {
                            continue; // on the grid: already in the simulator's recurrence
                        }
                        // Off the grid to the host: every hop west of chip h towards the FPGA adds one.
                        let (x, _) = chip_position(h);
                        let arrived = i64::from(d.x_hop.get()) + x;
                        let Ok(x_hop) = Hop::new(arrived) else {
                            continue;
                        };
                        for _ in 0..count {
                            self.output_count += 1;
                            if self.options.drop_every > 0
                                && self.output_count.is_multiple_of(self.options.drop_every)
                            {
                                continue;
                            }
                            timed.push((
                                end,
                                Event {
                                    destination: Destination { x_hop, ..*d },
                                    timestamp: end as u32,
                                },
                            ));
                        }
                    }
                }
            }
            self.state = Some(state);
            chunk_start += len;
        }
        self.now_us = self.step_start(last);
        // In time order on the 64-bit clock (the 32-bit timestamps may have wrapped), after the control
        // events.
        timed.sort_by_key(|&(t, _)| t);
        out.extend(timed.into_iter().map(|(_, e)| e));
        Ok(out)
    }
}

impl Transport for Emulator {
    fn name(&self) -> String {
        format!(
            "emulator (mismatch {:.0} %, seed {})",
            self.options.mismatch * 100.0,
            self.options.seed
        )
    }

    fn reset(&mut self) -> Result<(), HwError> {
        self.state = None;
        self.pending.clear();
        Ok(())
    }

    fn apply(&mut self, config: &Configuration) -> Result<(), HwError> {
        let violations = dynap_config::validate(config, None);
        if !violations.is_empty() {
            return Err(HwProblem::RulesBroken { violations }.into());
        }
        self.board = Some(self.build(config)?);
        self.state = None;
        Ok(())
    }

    fn write_events(&mut self, events: &[Event]) -> Result<(), HwError> {
        for e in events {
            let t = crate::event::unwrap_time(self.last_written_us, e.timestamp);
            self.last_written_us = self.last_written_us.max(t);
            self.pending.push((t, e.destination));
        }
        Ok(())
    }

    fn read_events(&mut self) -> Result<Vec<Event>, HwError> {
        // The twin runs as fast as it can: through the step of the newest event written.
        let last = self
            .pending
            .iter()
            .map(|&(t, _)| self.step_of(t) + 1)
            .max()
            .unwrap_or(0)
            .max(self.step_of(self.now_us));
        self.run_until(last)
    }

    fn time_us(&mut self) -> Result<u32, HwError> {
        Ok(self.now_us as u32)
    }
}

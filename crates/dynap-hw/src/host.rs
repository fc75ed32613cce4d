//! The host's side of a run: an input raster becomes timed events through the mapping's input routes,
//! the output events become a raster with the network's neuron order.

use crate::error::{HwError, HwProblem};
use crate::event::Event;
use crate::transport::Transport;
use dynap_config::{CONTROL_TAG, CoreMask, Destination, Hop, Mapping, NEURONS, Tag};

/// How a raster is played.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayOptions {
    /// Duration of one raster step (µs).
    pub step_us: u32,
    /// How far in the future of the device clock the stimulus starts (µs), so that no event is late.
    pub lead_us: u32,
    /// How many reads without the end marker before giving up.
    pub max_reads: usize,
}

impl Default for PlayOptions {
    fn default() -> PlayOptions {
        PlayOptions {
            step_us: 1000,
            lead_us: 100_000,
            max_reads: 10_000,
        }
    }
}

/// What came back from a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Played {
    /// Output spikes `[step, neuron]` in the network's neuron order.
    pub raster: Vec<f64>,
    /// Output events that did not decode to a mapped neuron or came after the stimulus.
    pub unexpected: usize,
}

/// The control event marking the end of a stimulus (tag 2047, all cores, hops -7/-7).
pub fn control_event(timestamp: u32) -> Event {
    Event {
        destination: Destination {
            core: CoreMask::ALL,
            x_hop: Hop::new(-7).expect("in range"),
            y_hop: Hop::new(-7).expect("in range"),
            tag: Tag::new(i64::from(CONTROL_TAG)).expect("in range"),
        },
        timestamp,
    }
}

/// Where the neuron behind a monitor event sits, (chip, core, neuron): monitor routes are sent with
/// `x_hop = -7` and arrive with `chip - 6`; the mapper's tag is `core * 256 + neuron`.
pub fn monitor_place(e: &Event) -> Option<(usize, usize, usize)> {
    let chip = i64::from(e.destination.x_hop.get()) + 6;
    let tag = usize::from(e.destination.tag.get());
    ((0..4).contains(&chip) && tag / NEURONS < dynap_config::CORES).then_some((
        chip as usize,
        tag / NEURONS,
        tag % NEURONS,
    ))
}

fn is_control(e: &Event) -> bool {
    e.destination.tag.get() == CONTROL_TAG && e.destination.y_hop.get() == -7
}

/// Plays `raster` `[steps, channels]` (spike counts) on a configured device and reads the output back
/// into `[steps, neurons]`, neurons in `mapping` order (monitor routes decoded by the mapper's scheme:
/// chip from the hop residue, tag = core * 256 + neuron).
pub fn play(
    device: &mut dyn Transport,
    mapping: &Mapping,
    raster: &[f64],
    steps: usize,
    options: &PlayOptions,
) -> Result<Played, HwError> {
    let spikes = play_spikes(device, mapping, raster, steps, options)?;
    let n = mapping.neurons.len();
    let mut out = vec![0.0; steps * n];
    for &(step, neuron) in &spikes.spikes {
        out[step as usize * n + neuron as usize] += 1.0;
    }
    Ok(Played {
        raster: out,
        unexpected: spikes.unexpected,
    })
}

/// What came back from a run, spike by spike.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayedSpikes {
    /// `(step, neuron)` of every output spike, neurons in the mapping's order, in arrival order.
    pub spikes: Vec<(u32, u32)>,
    /// Output events that did not decode to a mapped neuron or came after the stimulus.
    pub unexpected: usize,
}

/// [`play`], returning the spikes as a list instead of a raster (for long runs of many neurons).
pub fn play_spikes(
    device: &mut dyn Transport,
    mapping: &Mapping,
    raster: &[f64],
    steps: usize,
    options: &PlayOptions,
) -> Result<PlayedSpikes, HwError> {
    let channels = mapping.inputs.len();
    if raster.len() != steps * channels {
        return Err(HwProblem::RasterSize {
            values: raster.len(),
            steps,
            channels,
        }
        .into());
    }
    let step = options.step_us;
    if step == 0 {
        return Err(HwProblem::ZeroStep.into());
    }
    let now = device.time_us()?;
    // Start on a step boundary, `lead` in the future; boundaries are multiples of the step in the
    // 32-bit clock, and a start past the wrap is the wrap itself (the next epoch's first boundary).
    let start64 = (u64::from(now) + u64::from(options.lead_us)) / u64::from(step) * u64::from(step)
        + u64::from(step);
    let start = if start64 >= 1 << 32 {
        0
    } else {
        start64 as u32
    };
    let mut events = Vec::new();
    for k in 0..steps {
        let bin = start.wrapping_add(step.wrapping_mul(k as u32));
        let mut rank = 0u32;
        for (i, dests) in mapping.inputs.iter().enumerate() {
            let count = raster[k * channels + i];
            if !(count.is_finite()
                && count >= 0.0
                && count.fract() == 0.0
                && count <= f64::from(step))
            {
                return Err(HwProblem::NotASpikeCount {
                    step: k,
                    channel: i,
                    value: count,
                }
                .into());
            }
            for _ in 0..count as usize {
                for d in dests {
                    if rank >= step {
                        return Err(HwProblem::TooManyEvents {
                            step: k,
                            step_us: step,
                        }
                        .into());
                    }
                    events.push(Event {
                        destination: *d,
                        timestamp: bin.wrapping_add(rank),
                    });
                    rank += 1;
                }
            }
        }
    }
    // The end marker at the start of the last step, as Rockpool stamps it: the device runs no step
    // beyond the stimulus.
    let end = start.wrapping_add(step.wrapping_mul(steps.saturating_sub(1) as u32));
    events.extend((0..3).map(|_| control_event(end)));
    device.write_events(&events)?;

    // Network index of every place, looked up once per output event.
    let places: std::collections::HashMap<(usize, usize, usize), usize> = mapping
        .neurons
        .iter()
        .enumerate()
        .map(|(j, p)| ((p.chip, p.core, p.neuron), j))
        .collect();
    let index =
        |chip: usize, core: usize, neuron: usize| places.get(&(chip, core, neuron)).copied();
    let mut out = Vec::new();
    let mut unexpected = 0;
    let mut ended = false;
    for _ in 0..options.max_reads {
        for e in device.read_events()? {
            if is_control(&e) {
                // Only this stimulus's end marker ends it (a board may still return older ones).
                ended |= e.timestamp == end;
                continue;
            }
            let bin = (e.timestamp.wrapping_sub(start) / step) as usize;
            let neuron = monitor_place(&e).and_then(|(h, c, k)| index(h, c, k));
            match neuron {
                Some(j) if bin < steps => out.push((bin as u32, j as u32)),
                _ => unexpected += 1,
            }
        }
        if ended {
            return Ok(PlayedSpikes {
                spikes: out,
                unexpected,
            });
        }
    }
    Err(HwProblem::NoEndMarker {
        reads: options.max_reads,
        device: device.name(),
    }
    .into())
}

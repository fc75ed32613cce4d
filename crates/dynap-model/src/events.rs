//! Input spikes held as events: for every batch element and time step, the channels that carry a
//! non-zero count, in channel order, and their counts.
//!
//! Input rasters are sparse (the paper's task: 60 channels at 50 Hz, 5 % of the entries are spikes).
//! The kernels add one row of `w_in` per event; scanning the dense raster for its non-zero entries at
//! every step, in the forward and again in the reverse pass, cost as much as the neurons of a small
//! network. A caller that runs the same input many times (a training loop) converts it once.

use crate::error::Error;
use crate::real::Real;

/// Input spike counts `[batch, steps, channels]` as events (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeEvents<T> {
    batch: usize,
    steps: usize,
    channels: usize,
    /// `starts[b * steps + t]..starts[b * steps + t + 1]` are the events of element `b`, step `t`.
    starts: Vec<usize>,
    /// The channel of each event.
    channel: Vec<u32>,
    /// The (non-zero) count of each event.
    count: Vec<T>,
}

impl<T: Real> SpikeEvents<T> {
    /// The events of the dense counts `data` `[batch, steps, channels]`, row-major. Errors name the
    /// first entry that is not finite, or the shape that does not agree.
    pub fn from_dense(
        data: &[T],
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Result<SpikeEvents<T>, Error> {
        Self::check_dense(data, batch, steps, channels)?;
        let mut events = SpikeEvents {
            batch,
            steps,
            channels,
            starts: Vec::with_capacity(batch * steps + 1),
            channel: Vec::new(),
            count: Vec::new(),
        };
        let _ = events.fill_from_dense(data, batch, steps, channels);
        Ok(events)
    }

    /// [`SpikeEvents::from_dense`] into the memory of `self` (a loop over inputs then allocates
    /// nothing); on an error `self` is left as it was.
    pub fn refill_from_dense(
        &mut self,
        data: &[T],
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Result<(), Error> {
        Self::check_dense(data, batch, steps, channels)?;
        (self.batch, self.steps, self.channels) = (batch, steps, channels);
        let _ = self.fill_from_dense(data, batch, steps, channels);
        Ok(())
    }

    /// Makes `self` the events of the dense counts `data`, reusing its memory, and returns the index of
    /// the first value that is not finite, if any (which the caller turns into an error: such a value
    /// is not zero, so the scan visits it anyway).
    pub(crate) fn fill_from_dense(
        &mut self,
        data: &[T],
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Option<usize> {
        let rows = batch * steps;
        let (starts, channel, count) = (&mut self.starts, &mut self.channel, &mut self.count);
        starts.clear();
        channel.clear();
        count.clear();
        starts.push(0);
        // One scan of the whole raster (rows of a few dozen channels would each end in a short
        // remainder loop), following the row boundaries as the events come in order.
        let mut row_start = 0;
        let mut bad = None;
        crate::run::for_each_nonzero(data, |i, v| {
            if !v.is_finite() && bad.is_none() {
                bad = Some(i);
            }
            while i >= row_start + channels {
                starts.push(channel.len());
                row_start += channels;
            }
            channel.push((i - row_start) as u32);
            count.push(v);
        });
        starts.resize(rows + 1, channel.len());
        (self.batch, self.steps, self.channels) = (batch, steps, channels);
        bad
    }

    /// Checks a dense raster `[batch, steps, channels]`: its length, and that every value is finite
    /// (the error names the first that is not).
    pub(crate) fn check_dense(
        data: &[T],
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Result<(), Error> {
        Self::check_dense_shape(data, batch, steps, channels)?;
        // A branch-free pass first (it vectorises); the position only when something is wrong.
        let all_finite = data.iter().fold(true, |ok, x| ok & x.is_finite());
        if !all_finite && let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteInput {
                batch: i / (steps * channels),
                step: (i / channels) % steps,
                channel: i % channels,
            });
        }
        Ok(())
    }

    /// Checks a dense raster's length only (its values are checked as it is converted: see
    /// [`SpikeEvents::fill_from_dense`]).
    pub(crate) fn check_dense_shape(
        data: &[T],
        batch: usize,
        steps: usize,
        channels: usize,
    ) -> Result<(), Error> {
        if data.len() != batch * steps * channels || u32::try_from(channels).is_err() {
            return Err(Error::InputShape {
                batch,
                steps,
                channels,
                found_len: data.len(),
            });
        }
        Ok(())
    }

    /// The dense counts `[batch, steps, channels]`.
    pub fn to_dense(&self) -> Vec<T> {
        let mut out = vec![T::ZERO; self.batch * self.steps * self.channels];
        for row in 0..self.batch * self.steps {
            for e in self.starts[row]..self.starts[row + 1] {
                out[row * self.channels + self.channel[e] as usize] = self.count[e];
            }
        }
        out
    }
}

impl<T> SpikeEvents<T> {
    /// No events (a buffer for [`SpikeEvents::fill_from_dense`]).
    pub(crate) fn empty() -> SpikeEvents<T> {
        SpikeEvents {
            batch: 0,
            steps: 0,
            channels: 0,
            starts: vec![0],
            channel: Vec::new(),
            count: Vec::new(),
        }
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Time steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Input channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Number of events (non-zero counts).
    pub fn len(&self) -> usize {
        self.channel.len()
    }

    /// Whether there is no event at all.
    pub fn is_empty(&self) -> bool {
        self.channel.is_empty()
    }

    /// The events of batch element `b`.
    pub(crate) fn element(&self, b: usize) -> ElementEvents<'_, T> {
        ElementEvents {
            starts: &self.starts[b * self.steps..(b + 1) * self.steps + 1],
            channel: &self.channel,
            count: &self.count,
        }
    }
}

/// The events of one batch element: `starts` has one offset per step and one more (offsets into the
/// whole set's `channel` and `count`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElementEvents<'a, T> {
    starts: &'a [usize],
    channel: &'a [u32],
    count: &'a [T],
}

impl<'a, T: Copy> ElementEvents<'a, T> {
    /// The events of steps `from..from + steps`, as an element of their own.
    pub(crate) fn steps(self, from: usize, steps: usize) -> ElementEvents<'a, T> {
        ElementEvents {
            starts: &self.starts[from..from + steps + 1],
            ..self
        }
    }

    /// Calls `f(channel, count)` for every event of step `t`, in channel order.
    #[inline(always)]
    pub(crate) fn for_each(self, t: usize, mut f: impl FnMut(usize, T)) {
        let (lo, hi) = (self.starts[t], self.starts[t + 1]);
        for (&k, &v) in self.channel[lo..hi].iter().zip(&self.count[lo..hi]) {
            f(k as usize, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Dense -> events -> dense is the identity, and every event is a non-zero entry.
        #[test]
        fn events_round_trip_the_dense_counts(
            batch in 1usize..4,
            steps in 1usize..9,
            channels in 1usize..40,
            seed in any::<u64>(),
        ) {
            let data: Vec<f64> = (0..batch * steps * channels)
                .map(|i| {
                    let h = (i as u64 ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
                    if h < 3 { h as f64 } else { 0.0 }
                })
                .collect();
            let ev = SpikeEvents::from_dense(&data, batch, steps, channels).unwrap();
            prop_assert_eq!(ev.to_dense(), data.clone());
            prop_assert_eq!(ev.len(), data.iter().filter(|&&v| v != 0.0).count());
            for b in 0..batch {
                for t in 0..steps {
                    let mut seen = Vec::new();
                    ev.element(b).for_each(t, |k, v| seen.push((k, v)));
                    let want: Vec<(usize, f64)> = (0..channels)
                        .map(|k| (k, data[(b * steps + t) * channels + k]))
                        .filter(|&(_, v)| v != 0.0)
                        .collect();
                    prop_assert_eq!(seen, want);
                }
            }
        }
    }

    #[test]
    fn bad_counts_are_errors_that_say_where() {
        let mut data = vec![0.0f32; 2 * 3 * 4];
        data[(3 + 2) * 4 + 1] = f32::NAN;
        let err = SpikeEvents::from_dense(&data, 2, 3, 4).unwrap_err();
        assert_eq!(
            err,
            Error::NonFiniteInput {
                batch: 1,
                step: 2,
                channel: 1
            }
        );
        assert!(matches!(
            SpikeEvents::from_dense(&data[1..], 2, 3, 4),
            Err(Error::InputShape { .. })
        ));
    }
}

//! A run of either model variant: its input, its options and what it records, and the operations
//! the kernels of both variants share (the scan of sparse spikes, sums of matrix rows, JAX's
//! derivative of a floor).

use crate::events::SpikeEvents;
use crate::real::Real;

/// Which per-step values a run keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Recording {
    /// Output spikes only (what Rockpool returns with `record=False`).
    #[default]
    Spikes,
    /// Spikes and the state records: [`crate::Records`] (`imem`, `isyn`, `iahp`, `vmem`) or
    /// [`crate::ChipRecords`] (`imem`, `vmem`, `iahp` and the four dendrites).
    Full,
}

/// How to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// What to record.
    pub recording: Recording,
    /// Worker threads for the batch (each batch element runs on one thread); 0 means one per core.
    /// The result is bit-identical whatever the count.
    pub threads: usize,
}

/// The input of a run: `[batch, steps, channels]`, row-major.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a, T> {
    /// Weighted input per neuron (channels = N), dimensionless in units of `Iscale`: what Rockpool's
    /// `LinearJax` feeds `DynapSim`.
    Weighted {
        /// `batch * steps * N` values.
        data: &'a [T],
        /// Batch size.
        batch: usize,
        /// Time steps.
        steps: usize,
    },
    /// Input spike counts (channels = Nin), weighted by the network's `w_in`.
    Spikes {
        /// `batch * steps * Nin` counts.
        data: &'a [T],
        /// Batch size.
        batch: usize,
        /// Time steps.
        steps: usize,
    },
    /// Input spike counts held as events (channels = Nin), weighted by the network's `w_in`: the same
    /// run as [`Input::Spikes`] with the same counts, without scanning the raster (for an input that is
    /// run many times).
    Events(&'a SpikeEvents<T>),
}

impl<T: Real> Input<'_, T> {
    /// `(batch, steps)`.
    pub fn dims(&self) -> (usize, usize) {
        match *self {
            Input::Weighted { batch, steps, .. } | Input::Spikes { batch, steps, .. } => {
                (batch, steps)
            }
            Input::Events(ev) => (ev.batch(), ev.steps()),
        }
    }
}

/// How to run the reverse pass.
#[derive(Clone, Copy, Debug)]
pub struct GradientOptions {
    /// Worker threads (each batch element runs on one thread); 0 means one per core. The result is
    /// bit-identical whatever the count.
    pub threads: usize,
    /// Also compute the gradient with respect to the input.
    pub input: bool,
    /// Also compute the gradients with respect to the 13 bias currents. Without them (a network that
    /// trains only its weights) the `rockpool` variant's reverse pass skips the per-neuron constants'
    /// adjoints and [`Gradients::currents`](crate::Gradients::currents) is empty; the weight gradients are the same bits. (The
    /// `chip` variant computes them regardless.)
    pub currents: bool,
}

impl Default for GradientOptions {
    fn default() -> Self {
        GradientOptions {
            threads: 0,
            input: true,
            currents: true,
        }
    }
}

/// Total spikes per batch element and neuron of `spikes` (`[batch, steps, neurons]`), `[batch *
/// neurons]`: `0.0 + s_0 + s_1 + ...` in `f64`, in step order.
pub(crate) fn spike_totals<T: Real>(
    spikes: &[T],
    batch: usize,
    steps: usize,
    neurons: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; batch * neurons];
    let per = steps * neurons;
    for (o, spikes) in out
        .chunks_exact_mut(neurons.max(1))
        .zip(spikes.chunks_exact(per.max(1)))
    {
        count_spikes(spikes, o);
    }
    out
}

/// `0.0 + s_0 + s_1 + ...` over the steps of one element's spikes `[steps, n]`, into `out` (`n`).
pub(crate) fn count_spikes<T: Real>(spikes: &[T], out: &mut [f64]) {
    out.fill(0.0);
    for row in spikes.chunks_exact(out.len().max(1)) {
        for (o, s) in out.iter_mut().zip(row) {
            *o += s.to_f64();
        }
    }
}

/// `jnp.clip(x, lo)`: `lo` when `x < lo`, otherwise `x`. A NaN passes through, as XLA's `max` does.
#[inline(always)]
pub(crate) fn clip_lo<T: Real>(x: T, lo: T) -> T {
    if x < lo { lo } else { x }
}

/// `d max(x, lo) / dx` with JAX's tie rule: 1 above, 0.5 at a tie, 0 below.
#[inline(always)]
pub(crate) fn d_clip<T: Real>(x: T, lo: T) -> T {
    let half = T::ONE / (T::ONE + T::ONE);
    if x > lo {
        T::ONE
    } else if x == lo {
        half
    } else {
        T::ZERO
    }
}

/// `SpikeFunction::FastSigmoid`'s surrogate, the same in both variants: d count / d imem at the
/// membrane current `imem` with the threshold `thr` and the steepness `k`,
/// `(1 / thr) / (1 + k |imem / thr - 1|)^2`.
#[inline(always)]
pub(crate) fn fast_sigmoid_slope<T: Real>(imem: T, thr: T, k: T) -> T {
    let d = imem / thr - T::ONE;
    let g = T::ONE + k * (if d < T::ZERO { T::ZERO - d } else { d });
    T::ONE / (thr * g * g)
}

/// Calls `f(k, v)` for every non-zero `v = xs[k]`, in order. Input spikes are sparse: a bit mask per
/// 16 values (one vector compare) skips silent channels and visits the non-zero ones by their set bits,
/// without a data-dependent branch per value.
#[inline(always)]
pub(crate) fn for_each_nonzero<T: Real>(xs: &[T], mut f: impl FnMut(usize, T)) {
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        let mut mask = chunk
            .iter()
            .enumerate()
            .fold(0u32, |m, (k, &v)| m | (u32::from(v != T::ZERO) << k));
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            f(c * 16 + k, chunk[k]);
            mask &= mask - 1;
        }
    }
    let base = xs.len() - rest.len();
    for (k, &v) in rest.iter().enumerate() {
        if v != T::ZERO {
            f(base + k, v);
        }
    }
}

/// The recurrent weights whose gradient a caller needs: a training that holds every other weight at
/// 0 (the blocks an architecture declares, a fan-in limit's connections) sets it on the simulator
/// ([`Simulator::with_gradient_mask`](crate::Simulator::with_gradient_mask)), whose
/// [`Simulator::gradient`](crate::Simulator::gradient) then reports exactly 0 outside it, and, when at
/// most an eighth of the matrix is inside ([`GradientMask::is_sparse`]), computes and sums over the
/// batch only the entries inside it: a fan-in of 64 over 1024 neurons is 6 % of the dense `N x N`
/// per-element gradient. The entries it computes are the dense gradient's, bit for bit.
///
/// ```
/// use dynap_model::GradientMask;
/// // Two neurons: only neuron 0's connection to neuron 1 trains.
/// let mask = GradientMask::new(2, &[false, true, false, false]).unwrap();
/// assert_eq!(mask.len(), 1);
/// assert!(GradientMask::new(2, &[true; 3]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradientMask {
    n: usize,
    /// Row `i`'s allowed columns are `idx[ptr[i]..ptr[i + 1]]`, in order.
    ptr: Vec<u32>,
    idx: Vec<u32>,
}

impl GradientMask {
    /// The mask of an `n x n` matrix from one flag per entry (row-major, `[pre][post]` as `w_rec`):
    /// `true` where the gradient is needed. Refused when `flags` is not `n * n` long.
    pub fn new(n: usize, flags: &[bool]) -> Result<GradientMask, crate::Error> {
        if flags.len() != n * n || u32::try_from(n * n).is_err() {
            return Err(crate::Error::GradientMask {
                neurons: n,
                found: flags.len(),
            });
        }
        let mut ptr = Vec::with_capacity(n + 1);
        let mut idx = Vec::new();
        ptr.push(0);
        for row in flags.chunks_exact(n.max(1)) {
            idx.extend((0..n).filter(|&j| row[j]).map(|j| j as u32));
            ptr.push(idx.len() as u32);
        }
        Ok(GradientMask { n, ptr, idx })
    }

    /// The matrix's side (neurons).
    pub fn neurons(&self) -> usize {
        self.n
    }

    /// The number of entries inside the mask.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether no entry is inside the mask.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// Whether the gradient is computed over the mask's entries only (at most an eighth of the
    /// matrix), not as the dense matrix with the rest zeroed.
    pub fn is_sparse(&self) -> bool {
        self.idx.len() * 8 <= self.n * self.n
    }

    /// The positions (into the mask's entries) and columns of row `i`'s entries.
    #[inline(always)]
    pub(crate) fn row(&self, i: usize) -> (std::ops::Range<usize>, &[u32]) {
        let (a, b) = (self.ptr[i] as usize, self.ptr[i + 1] as usize);
        (a..b, &self.idx[a..b])
    }

    /// The dense `n x n` matrix with `values` (one per entry, in the mask's order) inside the mask
    /// and 0 outside.
    pub(crate) fn to_dense(&self, values: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            let (range, cols) = self.row(i);
            for (&j, &v) in cols.iter().zip(&values[range]) {
                out[i * n + j as usize] = v;
            }
        }
        out
    }

    /// Sets every entry of the dense `n x n` matrix `m` outside the mask to 0.
    pub(crate) fn zero_outside(&self, m: &mut [f64]) {
        let n = self.n;
        for (i, row) in m.chunks_exact_mut(n.max(1)).enumerate() {
            let (_, cols) = self.row(i);
            let mut next = cols.iter().map(|&j| j as usize).peekable();
            for (j, v) in row.iter_mut().enumerate() {
                if next.peek() == Some(&j) {
                    next.next();
                } else {
                    *v = 0.0;
                }
            }
        }
    }
}

/// The non-zero entries of a square matrix `[rows][cols]`, row by row in column order (compressed
/// sparse rows): what a sum of scaled rows reads instead of the whole matrix once it is sparse enough
/// ([`SparseRows::worth_it`]) that the dense rows would be streamed from memory for mostly zeros.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SparseRows<T> {
    /// Row `i`'s entries are `idx[ptr[i]..ptr[i + 1]]`, `val[..]`.
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<T>,
}

impl<T: Real> SparseRows<T> {
    /// The non-zero entries of `m` (`n x n`, row-major).
    #[cfg(test)]
    pub(crate) fn of(m: &[T], n: usize) -> SparseRows<T> {
        let mut s = SparseRows::default();
        s.rebuild(m, n);
        s
    }

    /// Replaces the entries by `m`'s, reusing the memory.
    pub(crate) fn rebuild(&mut self, m: &[T], n: usize) {
        self.ptr.clear();
        self.idx.clear();
        self.val.clear();
        self.ptr.push(0);
        for row in m.chunks_exact(n.max(1)) {
            for (j, &w) in row.iter().enumerate() {
                if w != T::ZERO {
                    self.idx.push(j as u32);
                    self.val.push(w);
                }
            }
            self.ptr.push(self.idx.len() as u32);
        }
    }

    /// Replaces the entries by those of the transpose of the matrix whose entries `rows` holds
    /// (`n x n`), reusing the memory: the same as [`SparseRows::of`] the dense transpose (each row's
    /// entries in column order), sorted from the entries alone.
    pub(crate) fn transpose_of(&mut self, rows: &SparseRows<T>, n: usize) {
        let nnz = rows.idx.len();
        self.ptr.clear();
        self.ptr.resize(n + 1, 0);
        for &j in &rows.idx {
            self.ptr[j as usize + 1] += 1;
        }
        for j in 0..n {
            self.ptr[j + 1] += self.ptr[j];
        }
        self.idx.clear();
        self.idx.resize(nnz, 0);
        self.val.clear();
        self.val.resize(nnz, T::ZERO);
        // Rows in order: each column receives its entries in row order.
        let mut next: Vec<u32> = self.ptr[..n].to_vec();
        for i in 0..rows.ptr.len().saturating_sub(1) {
            let (a, b) = (rows.ptr[i] as usize, rows.ptr[i + 1] as usize);
            for (&j, &w) in rows.idx[a..b].iter().zip(&rows.val[a..b]) {
                let at = &mut next[j as usize];
                self.idx[*at as usize] = i as u32;
                self.val[*at as usize] = w;
                *at += 1;
            }
        }
    }

    /// Whether a sum of rows should read these entries rather than the dense `n x n` matrix: at
    /// most a sixteenth of it non-zero, and the dense matrix larger than 1 MiB (below that the dense
    /// rows stream from cache in whole vectors and win; at N = 1024 and 10 % density both take the
    /// same time, at 6 % the entries are 15 % faster, and at N = 4096 and 1.5 % ten times).
    pub(crate) fn worth_it(&self, n: usize) -> bool {
        let dense = n * n;
        self.val.len() * 16 <= dense && dense * std::mem::size_of::<T>() > 1 << 20
    }

    /// `out[k] = mul_add(m[i][k], coef(i), out[k])` over the non-zero `m[i][k]` of every row `i` of
    /// `rows`, in that order: [`add_rows`] with this step without its zero terms (the same values; a
    /// zero `out[k]` may keep its sign). The entries of one row go to different `k`, so their
    /// updates do not wait for each other.
    #[inline(always)]
    pub(crate) fn add_rows(&self, out: &mut [T], rows: &[usize], coef: impl Fn(usize) -> T) {
        self.add_rows_unit(
            out,
            rows,
            coef,
            |o, w, d| w.mul_add(d, o),
            |_| false,
            |o, _| o,
        );
    }

    /// [`add_rows_unit`] over the non-zero entries: `out[k] = step(out[k], m[i][k], coef(i))`, or
    /// `unit(out[k], m[i][k])` for the rows whose coefficient passes `is_unit`.
    #[inline(always)]
    pub(crate) fn add_rows_unit<C: Copy>(
        &self,
        out: &mut [T],
        rows: &[usize],
        coef: impl Fn(usize) -> C,
        step: impl Fn(T, T, C) -> T,
        is_unit: impl Fn(C) -> bool,
        unit: impl Fn(T, T) -> T,
    ) {
        for &i in rows {
            let d = coef(i);
            let (a, b) = (self.ptr[i] as usize, self.ptr[i + 1] as usize);
            let entries = self.idx[a..b].iter().zip(&self.val[a..b]);
            if is_unit(d) {
                for (&k, &w) in entries {
                    let o = &mut out[k as usize];
                    *o = unit(*o, w);
                }
            } else {
                for (&k, &w) in entries {
                    let o = &mut out[k as usize];
                    *o = step(*o, w, d);
                }
            }
        }
    }
}

/// `out[k] = step(out[k], m[i][k], coef(i))` (a coefficient of any copyable type) for every row `i` of
/// `rows`, in that order, where `m` has
/// rows of `out.len()` values: a sum of scaled matrix rows, with the same operations per value as the
/// plain row-by-row loop, so the same bits.
///
/// Column blocks of 128, 64, 32 and 16 values are accumulated in registers over all the rows before
/// being stored once, instead of loading and storing `out` again for every row (which bound the
/// row-by-row loop on the processor's stores); the rest is done row by row.
#[inline(always)]
pub(crate) fn add_rows<T: Real, C: Copy>(
    out: &mut [T],
    rows: &[usize],
    coef: impl Fn(usize) -> C,
    m: &[T],
    step: impl Fn(T, T, C) -> T,
) {
    add_rows_unit(out, rows, coef, m, step, |_| false, |o, _| o);
}

/// [`add_rows`], where the rows whose coefficient passes `is_unit` take `unit(out, m)` instead of
/// `step(out, m, coef)`: a cheaper form of the same operation, chosen once per row, not per value.
#[inline(always)]
pub(crate) fn add_rows_unit<T: Real, C: Copy>(
    out: &mut [T],
    rows: &[usize],
    coef: impl Fn(usize) -> C,
    m: &[T],
    step: impl Fn(T, T, C) -> T,
    is_unit: impl Fn(C) -> bool,
    unit: impl Fn(T, T) -> T,
) {
    let n = out.len();
    let mut c = 0;
    let f = (&coef, &step, &is_unit, &unit);
    c = add_rows_blocks::<T, C, 128>(out, c, rows, m, f);
    c = add_rows_blocks::<T, C, 64>(out, c, rows, m, f);
    c = add_rows_blocks::<T, C, 32>(out, c, rows, m, f);
    c = add_rows_blocks::<T, C, 16>(out, c, rows, m, f);
    if c < n {
        for &i in rows {
            let a = coef(i);
            let row = out[c..].iter_mut().zip(&m[i * n + c..(i + 1) * n]);
            if is_unit(a) {
                row.for_each(|(o, &w)| *o = unit(*o, w));
            } else {
                row.for_each(|(o, &w)| *o = step(*o, w, a));
            }
        }
    }
}

/// The blocks of `B` columns of [`add_rows`] from column `c` on, while a whole block fits; returns the
/// first column not done.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn add_rows_blocks<T: Real, C: Copy, const B: usize>(
    out: &mut [T],
    mut c: usize,
    rows: &[usize],
    m: &[T],
    (coef, step, is_unit, unit): (
        &impl Fn(usize) -> C,
        &impl Fn(T, T, C) -> T,
        &impl Fn(C) -> bool,
        &impl Fn(T, T) -> T,
    ),
) -> usize {
    let n = out.len();
    while c + B <= n {
        let block: &mut [T; B] = (&mut out[c..c + B]).try_into().expect("B values");
        let mut acc = *block;
        for &i in rows {
            let a = coef(i);
            let w: &[T; B] = m[i * n + c..i * n + c + B].try_into().expect("B values");
            if is_unit(a) {
                for k in 0..B {
                    acc[k] = unit(acc[k], w[k]);
                }
            } else {
                for k in 0..B {
                    acc[k] = step(acc[k], w[k], a);
                }
            }
        }
        *block = acc;
        c += B;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_nonzero_scan_visits_exactly_the_nonzero_values_in_order(
            picks in prop::collection::vec(0usize..6, 0..70),
        ) {
            // Zeros (both signs) dominate; the rest are counts, a NaN and a negative value.
            let values = [0.0f32, -0.0, 0.0, 1.0, f32::NAN, -2.5];
            let xs: Vec<f32> = picks.iter().map(|&p| values[p]).collect();
            let mut seen = Vec::new();
            for_each_nonzero(&xs, |k, v| seen.push((k, v.to_bits())));
            let expected: Vec<(usize, u32)> = xs
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(k, v)| (k, v.to_bits()))
                .collect();
            prop_assert_eq!(seen, expected);
        }
    }
}

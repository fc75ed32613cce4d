//! The default quantizer: for one core's weight magnitudes, the four base weights and the masks that
//! minimise the squared reconstruction error, by alternating two exact steps from several starts.
//!
//! * Masks for given base weights: each magnitude takes the nearest of the 16 subset sums
//!   ([`dynap_model::mask_levels`]); ties go to the smaller sum.
//! * Base weights for given masks: the non-negative least-squares problem
//!   `min_{b >= 0} sum_j (sum_k bit_k(q_j) b_k - w_j)^2`, four unknowns. Its normal equations only need,
//!   per mask, the count and the sum of the magnitudes, so it is solved exactly by trying every active
//!   set (16 small systems) and keeping the best feasible one.
//!
//! Neither step can increase the error, and a step is only taken if the error it computes does not
//! increase, so the error trajectory of a start never goes up (recorded in [`Fit::history`]). The
//! magnitudes are sorted once; then each step costs O(16 log n) with prefix sums, so many starts are
//! cheap. Starts: the binary-weighted 1:2:4:8 and other ratios, each scaled so that the largest sum
//! reaches the largest magnitude or an upper quantile. Everything is in a fixed order: deterministic.

use dynap_model::{BASE_WEIGHTS, MASK_LEVELS, mask_levels};

/// Most alternations per start (each start usually converges in a few dozen).
const MAX_ITERATIONS: usize = 200;

/// Ratios of the base weights tried as starts.
const START_RATIOS: [[f64; BASE_WEIGHTS]; 10] = [
    [1.0, 2.0, 4.0, 8.0],
    [1.0, 1.0, 2.0, 4.0],
    [1.0, 2.0, 2.0, 4.0],
    [1.0, 1.0, 1.0, 1.0],
    [1.0, 1.0, 2.0, 2.0],
    [1.0, 2.0, 3.0, 4.0],
    [1.0, 1.0, 1.0, 2.0],
    [2.0, 3.0, 4.0, 5.0],
    [1.0, 2.0, 4.0, 4.0],
    [1.0, 2.0, 3.0, 5.0],
];

/// Quantiles of the magnitudes the largest subset sum is scaled to in the starts.
const START_QUANTILES: [f64; 6] = [1.0, 0.99, 0.95, 0.9, 0.75, 0.5];

/// Magnitudes sorted ascending, with prefix sums of the values and of their squares.
#[derive(Clone, Debug)]
pub(crate) struct Sorted {
    w: Vec<f64>,
    p1: Vec<f64>,
    p2: Vec<f64>,
}

/// For each mask `q`, the range of sorted magnitudes assigned to it.
pub(crate) type Groups = [(usize, usize); MASK_LEVELS];

impl Sorted {
    pub(crate) fn new(mut w: Vec<f64>) -> Sorted {
        w.sort_by(f64::total_cmp);
        let mut p1 = Vec::with_capacity(w.len() + 1);
        let mut p2 = Vec::with_capacity(w.len() + 1);
        let (mut s1, mut s2) = (0.0, 0.0);
        p1.push(0.0);
        p2.push(0.0);
        for &v in &w {
            s1 += v;
            s2 += v * v;
            p1.push(s1);
            p2.push(s2);
        }
        Sorted { w, p1, p2 }
    }

    fn len(&self) -> usize {
        self.w.len()
    }

    fn quantile(&self, f: f64) -> f64 {
        let i = ((self.len() - 1) as f64 * f).floor() as usize;
        self.w[i.min(self.len() - 1)]
    }

    /// Assigns every magnitude to its nearest level (ties to the smaller level, then the smaller mask).
    pub(crate) fn groups(&self, levels: &[f64; MASK_LEVELS]) -> Groups {
        let order = level_order(levels);
        let mut groups = [(0, 0); MASK_LEVELS];
        let mut start = 0;
        let mut r = 0;
        while r < MASK_LEVELS {
            let q = order[r];
            let la = levels[q];
            // Masks with the same level as q get nothing (ties go to the first); the boundary is with
            // the next larger level.
            let mut next = r + 1;
            while next < MASK_LEVELS && levels[order[next]] == la {
                next += 1;
            }
            let end = if next < MASK_LEVELS {
                let lb = levels[order[next]];
                start + self.w[start..].partition_point(|&v| (v - la).abs() <= (lb - v).abs())
            } else {
                self.len()
            };
            groups[q] = (start, end);
            for &dup in &order[r + 1..next] {
                groups[dup] = (end, end);
            }
            start = end;
            r = next;
        }
        groups
    }

    /// Sum of squared errors of an assignment at `levels`.
    pub(crate) fn sse(&self, levels: &[f64; MASK_LEVELS], groups: &Groups) -> f64 {
        let mut total = 0.0;
        for (q, &(s, e)) in groups.iter().enumerate() {
            if e > s {
                let m = (e - s) as f64;
                let (s1, s2) = (self.p1[e] - self.p1[s], self.p2[e] - self.p2[s]);
                let l = levels[q];
                total += (s2 - 2.0 * l * s1 + m * l * l).max(0.0);
            }
        }
        total
    }

    /// The non-negative least-squares base weights for an assignment. Bits no magnitude uses keep
    /// their value from `previous` (they do not change the error).
    #[allow(clippy::needless_range_loop)] // indices mirror the normal equations
    fn nnls(&self, groups: &Groups, previous: &[f64; BASE_WEIGHTS]) -> [f64; BASE_WEIGHTS] {
        let mut g = [[0.0; BASE_WEIGHTS]; BASE_WEIGHTS];
        let mut h = [0.0; BASE_WEIGHTS];
        for (q, &(s, e)) in groups.iter().enumerate().skip(1) {
            if e == s {
                continue;
            }
            let m = (e - s) as f64;
            let s1 = self.p1[e] - self.p1[s];
            for k in 0..BASE_WEIGHTS {
                if q >> k & 1 == 1 {
                    h[k] += s1;
                    for l in 0..BASE_WEIGHTS {
                        if q >> l & 1 == 1 {
                            g[k][l] += m;
                        }
                    }
                }
            }
        }
        let used: usize = (0..BASE_WEIGHTS)
            .filter(|&k| g[k][k] > 0.0)
            .map(|k| 1 << k)
            .sum();
        let mut best = ([0.0; BASE_WEIGHTS], 0.0); // the empty active set: all zero, objective 0
        for set in 1..MASK_LEVELS {
            if set & !used != 0 {
                continue;
            }
            let Some(b) = solve_subset(&g, &h, set) else {
                continue;
            };
            if b.iter().any(|&v| v < 0.0) {
                continue;
            }
            let mut obj = 0.0;
            for k in 0..BASE_WEIGHTS {
                obj -= 2.0 * h[k] * b[k];
                for l in 0..BASE_WEIGHTS {
                    obj += b[k] * g[k][l] * b[l];
                }
            }
            if obj < best.1 {
                best = (b, obj);
            }
        }
        let mut out = *previous;
        for k in 0..BASE_WEIGHTS {
            if used >> k & 1 == 1 {
                out[k] = best.0[k];
            }
        }
        out
    }
}

/// Level indices sorted by level, ties by index.
fn level_order(levels: &[f64; MASK_LEVELS]) -> [usize; MASK_LEVELS] {
    let mut order: [usize; MASK_LEVELS] = std::array::from_fn(|i| i);
    order.sort_by(|&a, &b| levels[a].total_cmp(&levels[b]));
    order
}

/// The mask whose level is nearest to `w`, with the same tie rule as [`Sorted::groups`].
pub(crate) fn nearest_mask(w: f64, levels: &[f64; MASK_LEVELS]) -> u8 {
    let order = level_order(levels);
    let mut best = order[0];
    for &q in &order[1..] {
        if (w - levels[q]).abs() < (w - levels[best]).abs() {
            best = q;
        }
    }
    best as u8
}

/// Solves `g[P][P] b = h[P]` for the variables in `set` (Gaussian elimination, partial pivoting);
/// `None` if singular.
#[allow(clippy::needless_range_loop)] // indices mirror the elimination
fn solve_subset(
    g: &[[f64; BASE_WEIGHTS]; BASE_WEIGHTS],
    h: &[f64; BASE_WEIGHTS],
    set: usize,
) -> Option<[f64; BASE_WEIGHTS]> {
    let idx: Vec<usize> = (0..BASE_WEIGHTS).filter(|&k| set >> k & 1 == 1).collect();
    let p = idx.len();
    let mut a = [[0.0; BASE_WEIGHTS + 1]; BASE_WEIGHTS];
    for (r, &k) in idx.iter().enumerate() {
        for (c, &l) in idx.iter().enumerate() {
            a[r][c] = g[k][l];
        }
        a[r][p] = h[k];
    }
    let scale = idx.iter().map(|&k| g[k][k]).fold(0.0, f64::max);
    for col in 0..p {
        let piv = (col..p).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[piv][col].abs() <= 1e-12 * scale {
            return None;
        }
        a.swap(col, piv);
        for r in 0..p {
            if r != col {
                let f = a[r][col] / a[col][col];
                for c in col..=p {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
    let mut b = [0.0; BASE_WEIGHTS];
    for (r, &k) in idx.iter().enumerate() {
        b[k] = a[r][p] / a[r][r];
    }
    Some(b)
}

/// The result of fitting one core.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fit {
    /// Base weights in weight units (multiply by `Iscale` for amperes).
    pub(crate) base: [f64; BASE_WEIGHTS],
    /// Sum of squared errors after each alternation of the winning start (never increasing).
    pub(crate) history: Vec<f64>,
}

/// Alternates from one start until the assignment stops changing; returns the error trajectory.
pub(crate) fn alternate(sorted: &Sorted, start: [f64; BASE_WEIGHTS]) -> Fit {
    let mut base = start;
    let mut levels = mask_levels(&base, 1.0);
    let mut groups = sorted.groups(&levels);
    let mut err = sorted.sse(&levels, &groups);
    let mut history = vec![err];
    for _ in 0..MAX_ITERATIONS {
        let next = sorted.nnls(&groups, &base);
        let next_levels = mask_levels(&next, 1.0);
        if sorted.sse(&next_levels, &groups) > err {
            break; // rounding only: the exact step cannot increase the error
        }
        let next_groups = sorted.groups(&next_levels);
        let next_err = sorted.sse(&next_levels, &next_groups);
        if next_err > err {
            break;
        }
        let converged = next_groups == groups && next == base;
        (base, levels, groups, err) = (next, next_levels, next_groups, next_err);
        history.push(err);
        if converged {
            break;
        }
    }
    let _ = levels;
    Fit { base, history }
}

/// Fits one core's magnitudes (all `> 0`, in weight units) from every start; the lowest error wins,
/// the earlier start on ties. An empty core gives zero base weights.
pub(crate) fn fit(magnitudes: &[f64]) -> Fit {
    if magnitudes.is_empty() {
        return Fit {
            base: [0.0; BASE_WEIGHTS],
            history: vec![0.0],
        };
    }
    let sorted = Sorted::new(magnitudes.to_vec());
    let mut best: Option<Fit> = None;
    for &q in &START_QUANTILES {
        let top = sorted.quantile(q);
        for ratio in &START_RATIOS {
            let total: f64 = ratio.iter().sum();
            let start = ratio.map(|r| r * top / total);
            let f = alternate(&sorted, start);
            let better = best.as_ref().is_none_or(|b| {
                f.history.last().expect("one entry") < b.history.last().expect("one entry")
            });
            if better {
                best = Some(f);
            }
        }
    }
    best.expect("at least one start")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn direct_sse(w: &[f64], base: &[f64; 4]) -> f64 {
        let levels = mask_levels(base, 1.0);
        w.iter()
            .map(|&v| (v - levels[nearest_mask(v, &levels) as usize]).powi(2))
            .sum()
    }

    #[test]
    fn exact_binary_weights_are_recovered() {
        let w: Vec<f64> = (1..=15).map(|q| 0.25 * q as f64).collect();
        let f = fit(&w);
        assert!(*f.history.last().unwrap() < 1e-20, "{f:?}");
        let mut b = f.base;
        b.sort_by(f64::total_cmp);
        for (got, want) in b.iter().zip([0.25, 0.5, 1.0, 2.0]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn equal_levels_do_not_swallow_larger_magnitudes() {
        // 1 + 2 == 3 exactly: masks 3 and 4 share a level; 0.001 must still reach the top level.
        let sorted = Sorted::new(vec![0.001, 0.00031]);
        let levels = mask_levels(&[0.0001, 0.0002, 0.0001 + 0.0002, 0.0004], 1.0);
        assert_eq!(levels[3], levels[4]);
        let groups = sorted.groups(&levels);
        assert_eq!(groups[15], (1, 2));
        assert_eq!(groups[3], (0, 1));
        assert_eq!(groups[4], (1, 1));
        assert_eq!(nearest_mask(0.00031, &levels), 3);
    }

    #[test]
    fn nnls_matches_brute_force_on_a_small_case() {
        let sorted = Sorted::new(vec![0.1, 0.2, 0.9, 1.1, 2.0, 2.2, 3.1]);
        let levels = mask_levels(&[0.2, 1.0, 2.0, 0.0], 1.0);
        let groups = sorted.groups(&levels);
        let b = sorted.nnls(&groups, &[0.2, 1.0, 2.0, 0.0]);
        let e = sorted.sse(&mask_levels(&b, 1.0), &groups);
        // A grid around the optimum never does better with the same assignment.
        for dx in [-0.01, 0.0, 0.01] {
            for dy in [-0.01, 0.0, 0.01] {
                for dz in [-0.01, 0.0, 0.01] {
                    let c = [
                        (b[0] + dx).max(0.0),
                        (b[1] + dy).max(0.0),
                        (b[2] + dz).max(0.0),
                        b[3],
                    ];
                    assert!(sorted.sse(&mask_levels(&c, 1.0), &groups) >= e - 1e-12);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn the_error_never_increases_and_is_what_it_says(
            w in prop::collection::vec(1e-3f64..10.0, 1..200),
            r in prop::sample::select(START_RATIOS.to_vec()),
        ) {
            let sorted = Sorted::new(w.clone());
            let max = w.iter().copied().fold(0.0, f64::max);
            let f = alternate(&sorted, r.map(|x| x * max / r.iter().sum::<f64>()));
            for pair in f.history.windows(2) {
                prop_assert!(pair[1] <= pair[0], "{:?}", f.history);
            }
            let direct = direct_sse(&w, &f.base);
            let norm: f64 = w.iter().map(|v| v * v).sum();
            prop_assert!((direct - f.history.last().unwrap()).abs() <= 1e-9 * norm);
        }

        #[test]
        fn grouped_assignment_equals_the_nearest_level(
            w in prop::collection::vec(0.0f64..10.0, 1..100),
            base in prop::array::uniform4(0.0f64..4.0),
        ) {
            let sorted = Sorted::new(w);
            let levels = mask_levels(&base, 1.0);
            let groups = sorted.groups(&levels);
            for (q, &(s, e)) in groups.iter().enumerate() {
                for &v in &sorted.w[s..e] {
                    let n = nearest_mask(v, &levels) as usize;
                    prop_assert_eq!(levels[n], levels[q]);
                }
            }
        }
    }
}

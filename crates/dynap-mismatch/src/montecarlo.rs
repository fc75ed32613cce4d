//! Monte-Carlo evaluation: a function of each of many simulated chips, in parallel, in chip order.

/// `f(chip)` for `chip` in `0..chips`, on `threads` threads (0: one per core), returned in chip order.
/// `f` must depend only on its argument (a chip is a seed), so the result does not depend on the
/// threads.
pub fn monte_carlo<R: Send>(chips: usize, threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let threads = match threads {
        0 => dynap_model::cores(),
        t => t,
    }
    .clamp(1, chips.max(1));
    if threads == 1 {
        return (0..chips).map(f).collect();
    }
    let per = chips.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                scope.spawn(move || {
                    (t * per..((t + 1) * per).min(chips))
                        .map(f)
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_chip_order_whatever_the_threads() {
        let one = monte_carlo(37, 1, |c| c * c);
        for t in [2, 3, 8, 100] {
            assert_eq!(monte_carlo(37, t, |c| c * c), one);
        }
        assert!(monte_carlo(0, 2, |c| c).is_empty());
    }
}

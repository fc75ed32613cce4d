//! The worker threads of a run: how many `threads: 0` means, and the two ways the simulators hand
//! batch elements to threads, so that the same input gives the same bits whatever the thread count.
//!
//! [`for_each_item`] gives each thread the next whole element from a shared queue (the forward runs).
//! [`for_each_part`] gives a free thread the ready part of the element with the fewest parts done
//! (the `rockpool` reverse pass, whose elements run in up to four consecutive parts): the threads then
//! end within a part of each other even when one core runs slower (with whole elements they ended
//! 2-5 ms apart of about 27). Either way each element is computed in a fixed order, one part at a
//! time.

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

/// The sum over `items`, in their order, of the `len` values `f(item)` gives, in `f64`: the result
/// cut into ranges of `chunk` values, each range summed whole by one of `threads` threads, so the
/// bits do not depend on the thread count (the batch sums of the reverse passes).
pub(crate) fn sum_in_order<I: Sync, T: crate::real::Real>(
    items: &[I],
    len: usize,
    chunk: usize,
    threads: usize,
    f: &(dyn Fn(&I) -> &[T] + Sync),
) -> Vec<f64> {
    let mut out = vec![0.0; len];
    let mut parts: Vec<(usize, &mut [f64])> = out
        .chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(k, c)| (k * chunk.max(1), c))
        .collect();
    for_each_item(
        &mut parts,
        threads,
        || (),
        |(), _, (at, part)| {
            for item in items {
                let src = &f(item)[*at..*at + part.len()];
                for (o, v) in part.iter_mut().zip(src) {
                    *o += v.to_f64();
                }
            }
        },
    );
    out
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

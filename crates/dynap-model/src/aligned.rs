//! Vectors whose first value sits on a 64-byte boundary: one cache line, one AVX-512 vector.
//!
//! The kernels run whole vectors of `LANES` values (`rockpool/params.rs`) over per-neuron arrays. The system
//! allocator aligns a `Vec<f32>` to 16 bytes only, so a 64-byte vector load from one usually straddles
//! two cache lines, which costs a second access on every load and store. Which arrays were straddling
//! depended on where the allocator put them, so the same run was 20-40 % slower in some processes
//! than in others (N = 16: 0.15 or 0.23 ms per forward pass). These vectors over-allocate by one
//! alignment's worth and start at the first aligned value, without `unsafe`.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// The alignment, in bytes.
pub(crate) const ALIGN: usize = 64;

/// A fixed-length vector whose values start on an [`ALIGN`]-byte boundary (see the module
/// documentation). Dereferences to a slice; moving it keeps the alignment (the values stay where they
/// are), and a clone is aligned afresh.
pub(crate) struct Aligned<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Clone> Aligned<T> {
    /// `len` copies of `value`.
    pub(crate) fn filled(len: usize, value: T) -> Aligned<T> {
        let size = std::mem::size_of::<T>().max(1);
        let buf = vec![value; len + ALIGN / size];
        // The allocator's alignment is a multiple of the value's size, so the distance to the next
        // boundary is a whole number of values (otherwise, start unaligned: slower, still correct).
        let gap = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN;
        let start = if gap.is_multiple_of(size) {
            gap / size
        } else {
            0
        };
        Aligned { buf, start, len }
    }

    /// A copy of `values`.
    pub(crate) fn from_slice(values: &[T]) -> Aligned<T> {
        match values.first() {
            None => Aligned {
                buf: Vec::new(),
                start: 0,
                len: 0,
            },
            Some(first) => {
                let mut out = Aligned::filled(values.len(), first.clone());
                out.clone_from_slice(values);
                out
            }
        }
    }

    /// Changes the length to `len`; new values are `value`, the kept ones keep theirs. Reuses the
    /// memory when it is large enough.
    pub(crate) fn resize(&mut self, len: usize, value: T) {
        if self.start + len <= self.buf.len() {
            let old = self.len;
            self.len = len;
            if len > old {
                self[old..].fill(value);
            }
        } else {
            let mut out = Aligned::filled(len, value);
            out[..self.len].clone_from_slice(self);
            *self = out;
        }
    }
}

impl<T> Default for Aligned<T> {
    fn default() -> Self {
        Aligned {
            buf: Vec::new(),
            start: 0,
            len: 0,
        }
    }
}

impl<T> Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl<'a, T> IntoIterator for &'a Aligned<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Aligned<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl<T: Clone> Clone for Aligned<T> {
    fn clone(&self) -> Self {
        Aligned::from_slice(self)
    }
}

impl<T: fmt::Debug> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Aligned<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn aligned<T>(a: &Aligned<T>) -> bool {
        a.is_empty() || (a.as_ptr() as usize).is_multiple_of(ALIGN)
    }

    proptest! {
        /// Whatever the lengths and the order of operations, the values are those of a `Vec` doing the
        /// same, and they start on the boundary.
        #[test]
        fn behaves_as_a_vec_and_stays_aligned(
            first in 0usize..70,
            resizes in prop::collection::vec((0usize..200, any::<f32>()), 0..6),
        ) {
            let init: Vec<f32> = (0..first).map(|k| k as f32 * 0.5).collect();
            let mut a = Aligned::from_slice(&init);
            let mut v = init.clone();
            prop_assert!(aligned(&a));
            prop_assert_eq!(&*a, &v[..]);
            for (len, value) in resizes {
                a.resize(len, value);
                v.resize(len, value);
                prop_assert!(aligned(&a));
                prop_assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
                let b = a.clone();
                prop_assert!(aligned(&b));
                prop_assert!(b == a || a.iter().any(|x| x.is_nan()));
            }
            let f = Aligned::filled(first, 2.0f64);
            prop_assert!(aligned(&f));
            prop_assert_eq!(&*f, &vec![2.0f64; first][..]);
        }
    }
}

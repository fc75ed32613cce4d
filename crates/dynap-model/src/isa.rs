//! The instruction sets the kernels are compiled for, and the one place that dispatches to them.
//!
//! Each kernel is an `#[inline(always)]` method compiled three times by [`isa_kernel!`]: for the
//! target's baseline, with AVX2 and FMA, and with AVX-512. All compile the same operations (IEEE-exact
//! adds, multiplies, divisions, selects and explicit fused multiply-adds; Rust never contracts a
//! multiply and an add by itself), so they give the same bits; AVX2 does 8 `f32` lanes per instruction
//! instead of 4, AVX-512 16.
//!
//! Everything in a kernel's loop must be inlined into the entry point: a closure or an
//! `array::from_fn` left as a call is compiled without the instruction set (and `mul_add` then becomes
//! a library call). The slices a loop writes are separate parameters of a free function, so the
//! compiler knows they do not alias, and `let_cut!` re-cuts every slice to its length, so no bounds
//! check stays in a vector loop.

/// The instruction set chosen once per simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2 and FMA, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 (F, VL, BW, DQ) with AVX2 and FMA, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The best instruction set this CPU has.
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            if avx2 && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Every instruction set this CPU can run, baseline first (for the tests that compare them).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                out.push(Isa::Avx2);
            }
            if Isa::detect() == Isa::Avx512 {
                out.push(Isa::Avx512);
            }
        }
        out
    }
}

/// `let_cut!(n; [a, b, ...] = inputs)` binds the slices of the array `inputs`, each re-cut to exactly
/// `n` values, and `let_cut!(mut n; a, b, ...)` re-cuts mutable slices in place. One by one, so that the
/// compiler sees every length and drops every bounds check: a check left in a kernel's loop keeps a
/// scalar remainder loop alive.
macro_rules! let_cut {
    (mut $n:expr; $($v:ident),* $(,)?) => {
        $(let $v = &mut $v[..$n];)*
    };
    ($n:expr; [$($v:ident),* $(,)?] = $inputs:expr) => {
        let [$($v),*] = $inputs;
        $(let $v = &$v[..$n];)*
    };
}

/// `isa_kernel!(name => body(arg: Type, ...))` defines `fn name<T: Real>(sim: &Simulator<T>, isa: Isa,
/// args...)`, which runs the inline method `sim.body(args...)` compiled for `isa`.
macro_rules! isa_kernel {
    ($name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        isa_kernel!(Simulator: $name => $body($($arg: $ty),*));
    };
    ($recv:ident : $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        #[allow(clippy::too_many_arguments)]
        fn $name<T: Real>(sim: &$recv<T>, isa: Isa, $($arg: $ty),*) {
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn baseline<T: Real>(sim: &$recv<T>, $($arg: $ty),*) {
                sim.$body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn avx2<T: Real>(sim: &$recv<T>, $($arg: $ty),*) {
                sim.$body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn avx512<T: Real>(sim: &$recv<T>, $($arg: $ty),*) {
                sim.$body($($arg),*)
            }
            match isa {
                Isa::Baseline => baseline(sim, $($arg),*),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2` is only ever produced by `Isa::detect`, after the CPU reported AVX2
                // and FMA, which is all `avx2` requires. The unit tests
                // `every_instruction_set_gives_the_same_bits` and
                // `every_instruction_set_gives_the_same_gradients` check this path against the baseline.
                #[allow(unsafe_code)]
                Isa::Avx2 => unsafe { avx2(sim, $($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above: `Isa::Avx512` comes only from `Isa::detect`, after the CPU reported
                // every feature `avx512` enables. The same tests check it against the other sets.
                #[allow(unsafe_code)]
                Isa::Avx512 => unsafe { avx512(sim, $($arg),*) },
            }
        }
    };
}

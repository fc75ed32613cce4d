#!/usr/bin/env python
"""
bench_python.py -- dynap called from Python (the `dynap` package, crates/dynap-python) against the
Rust benchmark (`dynap bench-row`, the same row as `cargo xtask bench`) and against Rockpool 3.1.0
called from the same Python process, in the same run.

Row: N = 256, batch 8, 1000 steps, 60 inputs, the network and input of bench_rockpool.py's `build`
(LinearJax(60 -> N) + DynapSim(N, has_rec=True), w_in 30 % N(0, 0.5), w_rec 10 % N(0, 0.3),
Bernoulli(0.05) input), float32.

Timed (median of --reps calls after a warm-up), in milliseconds:
  * simulate      : net.simulate(x), which records every trace (as Rockpool's evolve does)
  * simulate_spk  : net.simulate(x, record=False), spikes only: the Rust row's `fwd_ms`
  * vg            : net.value_and_grad(x, 5, "count_mse", currents=False): the loss
                    mean_{b,n}(sum_t s - 5)^2 and its gradient w.r.t. w_in and w_rec, the Rust row's
                    `fwdbwd_ms` and Rockpool's vg
  * rust_fwd, rust_fwd_rec, rust_fwdbwd : `dynap bench-row N BATCH REPS --record` (its own
                    network, drawn with the same distributions by the Rust benchmark; `fwd_rec` records
                    every trace, as `simulate` does)
  * rockpool_fwd_rec, rockpool_vg : Rockpool's jitted evolve with record=True, and value_and_grad

Every figure is measured in each of --rounds rounds (ours, then the Rust row or Rockpool's, so that a
slow spell of this shared machine hits both); the JSON gives each figure's median over the rounds and
each ratio's median of its per-round ratios. The rounds against the Rust row run first, before JAX is
imported: once JAX has run, its thread pool keeps threads spinning in the process, which slows
whatever runs next on a 2-core machine (ours by about 10 %).

Prints one JSON object. Usage (a venv with dynap installed, and Rockpool for its columns):
    python benches/reference/bench_python.py [--reps 10] [--rounds 3] [--rust target/release/dynap] [--no-rockpool]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

import dynap  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def draw(N, B, T=1000, Nin=60, seed=0):
    """bench_rockpool.py's `build` draws, as NumPy arrays."""
    rng = np.random.default_rng(seed + N)
    w_in = (rng.normal(0.0, 0.5, (Nin, N)) * (rng.random((Nin, N)) < 0.3)).astype(np.float32)
    w_rec = (rng.normal(0.0, 0.3, (N, N)) * (rng.random((N, N)) < 0.1)).astype(np.float32)
    x = (rng.random((B, T, Nin)) < 0.05).astype(np.float32)
    return w_in, w_rec, x


def timed(fn, reps, warm_s=0.3):
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < warm_s:
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rust", default=str(HERE.parents[1] / "target" / "release" / "dynap"))
    ap.add_argument("--no-rockpool", action="store_true")
    a = ap.parse_args()

    w_in, w_rec, x = draw(a.n, a.batch)
    net = dynap.Network(w_in.astype(np.float64), w_rec.astype(np.float64))
    target = np.full(a.n, 5.0)
    def ours(r):
        r["simulate_ms"] = timed(lambda: net.simulate(x), a.reps)
        r["simulate_spk_ms"] = timed(lambda: net.simulate(x, record=False), a.reps)
        r["vg_ms"] = timed(lambda: net.value_and_grad(x, target, "count_mse", currents=False), a.reps)

    rounds = []
    if os.path.exists(a.rust):
        for _ in range(a.rounds):
            r = {}
            ours(r)
            out = subprocess.run([a.rust, "bench-row", str(a.n), str(a.batch), str(a.reps), "--record"],
                                 capture_output=True, text=True, check=True).stdout
            rust = json.loads(out.strip().splitlines()[-1])
            r["rust_fwd_ms"], r["rust_fwdbwd_ms"] = rust["fwd_ms"], rust["fwdbwd_ms"]
            r["rust_fwd_rec_ms"] = rust["fwd_rec_ms"]
            r["rust_spikes"] = rust["spikes"]
            r["simulate_over_rust"] = r["simulate_ms"] / rust["fwd_rec_ms"]
            r["simulate_spk_over_rust"] = r["simulate_spk_ms"] / rust["fwd_ms"]
            r["vg_over_rust"] = r["vg_ms"] / rust["fwdbwd_ms"]
            rounds.append(r)
    rockpool = None
    if not a.no_rockpool:
        try:
            import jax
            import jax.numpy as jnp
            from rockpool.devices.dynapse import DynapSim
            from rockpool.nn.combinators import Sequential
            from rockpool.nn.modules import LinearJax
        except ImportError as e:
            print(f"# no Rockpool ({e}); its columns are left out", file=sys.stderr)
        else:
            mod = Sequential(
                LinearJax((x.shape[2], a.n), weight=w_in, has_bias=False),
                DynapSim(a.n, has_rec=True, w_rec=w_rec, dt=1e-3, rng_key=jax.random.PRNGKey(0)),
            )
            params = mod.parameters()
            xj = jnp.asarray(x)

            def fwd(p, x, record):
                out, _, rec = mod.set_attributes(p)(x, record=record)
                return out, rec

            def loss(p, x):
                return jnp.mean((fwd(p, x, False)[0].sum(axis=1) - 5.0) ** 2)

            f_rec = jax.jit(lambda p, x: fwd(p, x, True))
            vg = jax.jit(jax.value_and_grad(loss))
            rockpool = (lambda: jax.block_until_ready(f_rec(params, xj)),
                        lambda: jax.block_until_ready(vg(params, xj)),
                        float(np.asarray(f_rec(params, xj)[0]).sum()))

    if rockpool is not None:
        for k in range(a.rounds):
            if k >= len(rounds):
                rounds.append({})
            r = rounds[k]
            theirs = {}
            ours(theirs)
            theirs["rockpool_fwd_rec_ms"] = timed(rockpool[0], a.reps)
            theirs["rockpool_vg_ms"] = timed(rockpool[1], a.reps)
            r["rockpool_fwd_rec_ms"] = theirs["rockpool_fwd_rec_ms"]
            r["rockpool_vg_ms"] = theirs["rockpool_vg_ms"]
            r["rockpool_spikes"] = rockpool[2]
            r["simulate_with_jax_ms"] = theirs["simulate_ms"]
            r["vg_with_jax_ms"] = theirs["vg_ms"]
            r["simulate_speedup"] = theirs["rockpool_fwd_rec_ms"] / theirs["simulate_ms"]
            r["vg_speedup"] = theirs["rockpool_vg_ms"] / theirs["vg_ms"]
    if not rounds:
        rounds = [{}]
        ours(rounds[0])
    row = {"n": a.n, "batch": a.batch, "steps": x.shape[1], "rounds": a.rounds,
           "spikes": float(net.simulate(x, record=False).spikes.sum())}
    for k in rounds[0]:
        row[k] = statistics.median(r[k] for r in rounds)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

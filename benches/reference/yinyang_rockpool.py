#!/usr/bin/env python
"""
yinyang_rockpool.py -- Rockpool's training speed on the Yin-Yang example (`examples/yinyang.toml`), for
comparison with `dynap bench` in the same run. Our own script, on Rockpool 3.1.0's public API.

The same network, encoding and batch as the example: the published train split (`--data`, an NPZ with
`x` [5000, 4] and `y`), each feature latency-coded into one spike between steps 5 (value 1) and 55
(value 0) of 100 (1 ms steps), scaled by the split's range, plus a bias channel spiking at step 25;
LinearJax(5 -> 60) + DynapSim(60) + LinearJax(60 -> --outputs) + DynapSim(--outputs), no recurrence
(Rockpool's layered form of the example's two populations; spike threshold 1 nA as in the example);
the readout's spike-count cross-entropy (counts averaged per class group, temperature 2); Adam
(jax.example_libraries) at 5e-3; minibatches of 50 drawn in order from a fixed shuffle.

Prints one line: `samples_per_second X` (median over --reps timed blocks of --iters jitted training
steps each, compile time excluded).

Usage: python yinyang_rockpool.py --data train.npz [--outputs 60] [--iters 20] [--reps 5]
"""

import argparse
import logging
import statistics
import time
import warnings

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.example_libraries import optimizers  # noqa: E402

from rockpool.devices.dynapse import DynapSim  # noqa: E402
from rockpool.nn.modules import LinearJax  # noqa: E402
from rockpool.nn.combinators import Sequential  # noqa: E402

STEPS, T_MIN, T_MAX, BIAS_STEP = 100, 5, 55, 25
CLASSES, BATCH, HIDDEN, TEMPERATURE = 3, 50, 60, 2.0


def encode(x):
    lo, hi = x.min(axis=0), x.max(axis=0)
    v = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    t = np.rint(T_MIN + (1.0 - v) * (T_MAX - T_MIN)).astype(int)
    s = np.zeros((x.shape[0], STEPS, x.shape[1] + 1), np.float32)
    for f in range(x.shape[1]):
        s[np.arange(x.shape[0]), t[:, f], f] = 1.0
    s[:, BIAS_STEP, -1] = 1.0
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--outputs", type=int, default=60)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()

    d = np.load(a.data)
    x, y = encode(np.asarray(d["x"], np.float64)), np.asarray(d["y"], np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = jnp.asarray(x[order]), jnp.asarray(y[order])
    group = a.outputs // CLASSES
    net = Sequential(
        LinearJax((x.shape[2], HIDDEN), has_bias=False),
        DynapSim((HIDDEN, HIDDEN), Ispkthr=1e-9, rng_key=jax.random.PRNGKey(0)),
        LinearJax((HIDDEN, a.outputs), has_bias=False),
        DynapSim((a.outputs, a.outputs), Ispkthr=1e-9, rng_key=jax.random.PRNGKey(1)),
    )

    def loss(p, xb, yb):
        out, _, _ = net.set_attributes(p)(xb, record=False)
        counts = out.sum(axis=1).reshape(xb.shape[0], CLASSES, group).mean(axis=2)
        logits = counts / TEMPERATURE
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(xb.shape[0]), yb])

    opt_init, opt_update, get_params = optimizers.adam(5e-3)
    vg = jax.value_and_grad(loss)

    @jax.jit
    def step(i, state, xb, yb):
        value, grads = vg(get_params(state), xb, yb)
        return value, opt_update(i, grads, state)

    batches = len(y) // BATCH

    def batch(i):
        k = i % batches
        return x[k * BATCH:(k + 1) * BATCH], y[k * BATCH:(k + 1) * BATCH]

    state = opt_init(net.parameters())
    value, state = step(0, state, *batch(0))  # compile
    jax.block_until_ready(value)
    rates = []
    i = 1
    for _ in range(a.reps):
        t = time.perf_counter()
        for _ in range(a.iters):
            value, state = step(i, state, *batch(i))
            i += 1
        jax.block_until_ready(value)
        rates.append(a.iters * BATCH / (time.perf_counter() - t))
    print(f"samples_per_second {statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()

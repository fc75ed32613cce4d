#!/usr/bin/env python
"""
train_rockpool.py -- Rockpool's training speed on the paper's frozen-noise network, for comparison with
`dynap bench` in the same run. Our own script: it drives Rockpool 3.1.0's public API the way the paper's
notebook trains (jax.example_libraries Adam, lr 1e-2, full batch, MSE against the one-hot target held at
every step).

Network: LinearJax(60 -> 2, no bias) + DynapSim(2, has_rec=True, Iscale=1e-8); input: 2 frozen Poisson
patterns (rate 0.05 per 1 ms bin, 500 bins, 60 channels). Prints one line: `iterations_per_second X`
(median over --reps timed blocks of --iters jitted training steps each, compile time excluded).

Usage: python train_rockpool.py [--iters 200] [--reps 5]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()

    rng = np.random.default_rng(2022)
    raster = jnp.asarray(rng.poisson(0.05, (2, 500, 60)).astype(np.float32))
    target = np.zeros((2, 500, 2), np.float32)
    target[0, :, 0] = 1.0
    target[1, :, 1] = 1.0
    target = jnp.asarray(target)
    net = Sequential(
        LinearJax((60, 2), has_bias=False),
        DynapSim((2, 2), has_rec=True, Iscale=1e-8, rng_key=jax.random.PRNGKey(0)),
    )

    def loss(p):
        out, _, _ = net.set_attributes(p)(raster, record=False)
        return jnp.mean((out - target) ** 2)

    opt_init, opt_update, get_params = optimizers.adam(1e-2)
    vg = jax.value_and_grad(loss)

    @jax.jit
    def step(i, state):
        value, grads = vg(get_params(state))
        return value, opt_update(i, grads, state)

    state = opt_init(net.parameters())
    value, state = step(0, state)  # compile
    jax.block_until_ready(value)
    rates = []
    i = 1
    for _ in range(a.reps):
        t = time.perf_counter()
        for _ in range(a.iters):
            value, state = step(i, state)
            i += 1
        jax.block_until_ready(value)
        rates.append(a.iters / (time.perf_counter() - t))
    print(f"iterations_per_second {statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()

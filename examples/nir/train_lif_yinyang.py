#!/usr/bin/env python3
"""Train a two-layer spiking LIF network on Yin-Yang outside dynap and export it to NIR.

This script plays "a network trained in another tool": it trains a current-based LIF network with
JAX (surrogate gradients, hand-written Adam, no other ML library), writes it as a NIR graph with the
official `nir` package (1.0.8), reads the file back and re-runs it with a plain NumPy simulator to
show that the file alone reproduces the network. dynap can then import the `.nir` file.

Data: the Yin-Yang splits shipped with dynap (`train.npz`, `validation.npz`; arrays `x` [samples, 4]
and `y` [samples]). Training uses the train split only; the validation accuracy is reported once,
at the end, and never used to choose anything.

Input encoding (dynap's latency encoder with its Yin-Yang defaults, `examples/yinyang.toml`):
feature j is scaled by the train split's range, v = clip((x - min_j) / (max_j - min_j), 0, 1), and
spikes once in step round(5 + (1 - v) * 50) (rounding half away from zero) of channel j; channel 4,
the bias, spikes once in step 25. 100 steps of dt = 1 ms.

Network (NIR node names):

    input (5) -> w_hidden [60, 5] -> hidden CubaLIF (60)
              -> w_output [30, 60] -> output CubaLIF (30) -> out

No biases, no recurrent weights. Output neurons 10c .. 10c + 9 vote for class c.

Discretised CubaLIF, per neuron, at step t with weighted input x_t (the exact semantics of dynap's
reference simulator):

    I <- I - (dt / tau_syn) * I + (w_in / tau_syn) * x_t
    v <- v + (dt / tau_mem) * (v_leak - v + r * I)
    s  = v > v_threshold                      (strictly greater)
    v <- v_reset where s

with I = 0 and v = v_leak before step 0. The hidden layer's x_t = w_hidden @ input(t); the output
layer's x_t = w_output @ hidden_spikes(t - 1): every edge leaving a neuron population is delayed by
one step, as on the chip (no spikes before step 0). Parameters, the same for both layers:
tau_syn = 5 ms, tau_mem = 20 ms, r = 1, w_in = 1, v_leak = v_reset = 0, v_threshold = 1.

Training: the spike's Heaviside gets a fast-sigmoid surrogate derivative 1 / (1 + k |v - thr|)^2
with k = 10; the reset is detached (no gradient flows through "v <- v_reset where s"). Loss:
softmax cross-entropy of logits = (mean spike count of each class's group) / temperature. Adam with
a cosine learning-rate decay, minibatches of 100, a fixed number of epochs.

Prediction: the class whose group fires the most spikes over the 100 steps; ties go to the group
with the earliest first spike, then to the lower class.

Usage:

    python examples/nir/train_lif_yinyang.py --out yinyang_lif.nir [--epochs E] [--seed S]
        [--data-dir crates/dynap-train/data/yinyang] [--json metrics.json]
"""

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import nir
import numpy as np

# Encoding (dynap's latency encoder, Yin-Yang defaults).
STEPS = 100
DT = 1e-3
T_MIN_STEP, T_MAX_STEP, BIAS_STEP = 5, 55, 25

# Network.
N_IN, N_HIDDEN, N_CLASSES, PER_CLASS = 5, 60, 3, 10
N_OUT = N_CLASSES * PER_CLASS
TAU_SYN, TAU_MEM, R, W_IN = 5e-3, 2e-2, 1.0, 1.0
V_LEAK, V_RESET, V_THRESHOLD = 0.0, 0.0, 1.0

# Training.
SURROGATE_K = 10.0
TEMPERATURE = 2.0
BATCH = 100
LEARNING_RATE = 2e-3
# Initial weights ~ N(0, gain^2). One input spike through a weight w lifts the membrane to 33 w at
# its peak (w_in / tau_syn = 200 per unit weight), so with gain 0.04 the hidden layer starts with a
# few spikes per neuron and sample (about 1.7), the output layer with about 5.
INIT_GAIN_HIDDEN = 0.04
INIT_GAIN_OUTPUT = 0.02


# -------------------------------------------------------------------------------------------------
# Data


def round_half_away_from_zero(t):
    """Rust's f64::round for non-negative t (NumPy's round goes half to even)."""
    whole = np.trunc(t)
    return whole + (t - whole >= 0.5)


def encode(x, lo, hi):
    """Latency raster [samples, STEPS, 5] (float32 0/1) of features x [samples, 4]."""
    v = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    t = round_half_away_from_zero(T_MIN_STEP + (1.0 - v) * (T_MAX_STEP - T_MIN_STEP)).astype(int)
    raster = np.zeros((len(x), STEPS, N_IN), np.float32)
    rows = np.arange(len(x))
    for j in range(x.shape[1]):
        raster[rows, t[:, j], j] = 1.0
    raster[:, BIAS_STEP, N_IN - 1] = 1.0
    return raster


def load(data_dir):
    train, validation = (np.load(Path(data_dir) / f"{s}.npz") for s in ("train", "validation"))
    lo, hi = train["x"].min(axis=0), train["x"].max(axis=0)  # train split's range, for every split
    return (
        (encode(train["x"], lo, hi), train["y"].astype(np.int32)),
        (encode(validation["x"], lo, hi), validation["y"].astype(np.int32)),
    )


# -------------------------------------------------------------------------------------------------
# The JAX model (training)


@jax.custom_jvp
def spike_fn(u):
    """Heaviside(u) (u = v - threshold, strictly positive spikes) with a fast-sigmoid surrogate."""
    return (u > 0).astype(u.dtype)


@spike_fn.defjvp
def _spike_jvp(primals, tangents):
    (u,), (du,) = primals, tangents
    return spike_fn(u), du / (1.0 + SURROGATE_K * jnp.abs(u)) ** 2


def lif_step(state, x):
    """One CubaLIF step of the equations above; the reset is detached from the gradient."""
    i, v = state
    i = i - (DT / TAU_SYN) * i + (W_IN / TAU_SYN) * x
    v = v + (DT / TAU_MEM) * (V_LEAK - v + R * i)
    s = spike_fn(v - V_THRESHOLD)
    v = jnp.where(jax.lax.stop_gradient(s) > 0, V_RESET, v)
    return (i, v), s


def run(params, raster):
    """Spikes of both layers, [STEPS, batch, n], for a raster [batch, STEPS, 5]."""
    w_h, w_o = params["w_hidden"], params["w_output"]
    batch = raster.shape[0]
    x_hidden = jnp.einsum("bti,hi->tbh", raster, w_h)  # the input edge adds no delay

    def step(carry, x_h):
        hidden, output, s_h_prev = carry
        hidden, s_h = lif_step(hidden, x_h)
        output, s_o = lif_step(output, s_h_prev @ w_o.T)  # hidden -> output: one step late
        return (hidden, output, s_h), (s_h, s_o)

    def rest(n):
        return jnp.zeros((batch, n)), jnp.full((batch, n), V_LEAK)

    init = (rest(N_HIDDEN), rest(N_OUT), jnp.zeros((batch, N_HIDDEN)))
    _, (s_h, s_o) = jax.lax.scan(step, init, x_hidden)
    return s_h, s_o


def group_counts(s_o):
    """Mean spike count of each class's output group [batch, classes] from spikes [T, batch, 30]."""
    return s_o.sum(axis=0).reshape(-1, N_CLASSES, PER_CLASS).mean(axis=-1)


def loss_fn(params, raster, y):
    _, s_o = run(params, raster)
    logits = group_counts(s_o) / TEMPERATURE
    log_p = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()


def adam_init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.int32)}


def adam_update(params, grads, opt, lr, b1=0.9, b2=0.999, eps=1e-8):
    t = opt["t"] + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, opt["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, opt["v"], grads)
    scale = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
    return params, {"m": m, "v": v, "t": t}


@jax.jit
def train_step(params, opt, raster, y, lr):
    loss, grads = jax.value_and_grad(loss_fn)(params, raster, y)
    params, opt = adam_update(params, grads, opt, lr)
    return params, opt, loss


@jax.jit
def forward(params, raster):
    s_h, s_o = run(params, raster)
    return s_h.transpose(1, 0, 2), s_o.transpose(1, 0, 2)  # [batch, T, n]


def simulate_jax(params, raster, chunk=1000):
    """Hidden and output spike rasters [samples, T, n] (NumPy) from the JAX model."""
    starts = range(0, len(raster), chunk)
    parts = [forward(params, jnp.asarray(raster[i : i + chunk])) for i in starts]
    return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(2))


# -------------------------------------------------------------------------------------------------
# Prediction and a plain NumPy simulator of a NIR graph (no JAX)


def predict(s_o):
    """Class per sample from output spikes [samples, T, 30]: most group spikes, then earliest first
    spike, then lower class."""
    # Spikes per step of each group, [samples, T, classes].
    groups = s_o.reshape(len(s_o), STEPS, N_CLASSES, PER_CLASS).sum(axis=-1)
    counts = groups.sum(axis=1)
    fired = groups > 0
    first = np.where(fired.any(axis=1), fired.argmax(axis=1), STEPS)  # STEPS = never
    # Larger count first, then earlier first spike, then lower class (argmax takes the first)
    key = counts * (STEPS + 1) + (STEPS - first)
    return key.argmax(axis=1)


def simulate_numpy(graph, raster):
    """Hidden and output spike rasters [samples, T, n] of a NIR graph's chain
    input -> w_hidden -> hidden -> w_output -> output, in float32 NumPy, from the graph's arrays
    only."""

    def layer(name, n):
        node = graph.nodes[name]
        p = {k: np.broadcast_to(np.asarray(getattr(node, k), np.float32), (n,))
             for k in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")}
        dt = np.float32(DT)
        i = np.zeros((len(raster), n), np.float32)
        v = np.broadcast_to(p["v_leak"], (len(raster), n)).copy()

        def step(x):
            nonlocal i, v
            i = i - (dt / p["tau_syn"]) * i + (p["w_in"] / p["tau_syn"]) * x
            v = v + (dt / p["tau_mem"]) * (p["v_leak"] - v + p["r"] * i)
            s = (v > p["v_threshold"]).astype(np.float32)
            v = np.where(s > 0, p["v_reset"], v)
            return s

        return step

    w_h = np.asarray(graph.nodes["w_hidden"].weight, np.float32)
    w_o = np.asarray(graph.nodes["w_output"].weight, np.float32)
    hidden, output = layer("hidden", len(w_h)), layer("output", len(w_o))
    s_h_all = np.zeros((len(raster), STEPS, len(w_h)), np.float32)
    s_o_all = np.zeros((len(raster), STEPS, len(w_o)), np.float32)
    s_h = np.zeros((len(raster), len(w_h)), np.float32)  # no hidden spikes before step 0
    for t in range(STEPS):
        s_o_all[:, t] = output(s_h @ w_o.T)  # the previous step's hidden spikes: one step late
        s_h = s_h_all[:, t] = hidden(raster[:, t] @ w_h.T)
    return s_h_all, s_o_all


# -------------------------------------------------------------------------------------------------
# NIR export


def to_nir(params):
    def cuba(n):
        full = lambda value: np.full(n, value, np.float32)  # noqa: E731
        return nir.CubaLIF(
            tau_syn=full(TAU_SYN), tau_mem=full(TAU_MEM), r=full(R), v_leak=full(V_LEAK),
            v_threshold=full(V_THRESHOLD), v_reset=full(V_RESET), w_in=full(W_IN))

    nodes = {
        "input": nir.Input(input_type=np.array([N_IN])),
        "w_hidden": nir.Linear(weight=np.asarray(params["w_hidden"], np.float32)),
        "hidden": cuba(N_HIDDEN),
        "w_output": nir.Linear(weight=np.asarray(params["w_output"], np.float32)),
        "output": cuba(N_OUT),
        "out": nir.Output(output_type=np.array([N_OUT])),
    }
    edges = [("input", "w_hidden"), ("w_hidden", "hidden"), ("hidden", "w_output"),
             ("w_output", "output"), ("output", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"trained_by": "examples/nir/train_lif_yinyang.py", "dt": DT})


# -------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="the NIR file to write")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="crates/dynap-train/data/yinyang")
    parser.add_argument("--json", help="write the metrics here")
    args = parser.parse_args()
    start = time.time()

    (x_train, y_train), (x_val, y_val) = load(args.data_dir)
    key_h, key_o = jax.random.split(jax.random.PRNGKey(args.seed))
    params = {
        "w_hidden": INIT_GAIN_HIDDEN * jax.random.normal(key_h, (N_HIDDEN, N_IN)),
        "w_output": INIT_GAIN_OUTPUT * jax.random.normal(key_o, (N_OUT, N_HIDDEN)),
    }
    rng = np.random.default_rng(args.seed)

    def report(label):
        s_h, s_o = simulate_jax(params, x_train)
        acc = float((predict(s_o) == y_train).mean())
        hidden, output = float(s_h.sum(axis=(1, 2)).mean()), float(s_o.sum(axis=(1, 2)).mean())
        print(f"{label}: train accuracy {acc:.4f}, spikes per sample: hidden {hidden:.1f}, "
              f"output {output:.1f}", flush=True)
        return acc, hidden, output

    report("init")
    opt = adam_init(params)
    batches = len(x_train) // BATCH
    total = args.epochs * batches
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        losses = []
        for b in range(batches):
            idx = order[b * BATCH : (b + 1) * BATCH]
            progress = (epoch * batches + b) / total
            lr = LEARNING_RATE * 0.5 * (1 + np.cos(np.pi * progress))
            params, opt, loss = train_step(params, opt, x_train[idx], y_train[idx], np.float32(lr))
            losses.append(loss)
        if (epoch + 1) % 10 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}: loss {float(np.mean(losses)):.4f}", flush=True)

    train_acc, hidden_spikes, output_spikes = report("trained")
    s_o_val = simulate_jax(params, x_val)[1]
    val_acc = float((predict(s_o_val) == y_val).mean())
    print(f"validation accuracy (JAX): {val_acc:.4f}")

    nir.write(args.out, to_nir(params))
    graph = nir.read(args.out)
    s_o_nir = simulate_numpy(graph, x_val)[1]
    val_acc_nir = float((predict(s_o_nir) == y_val).mean())
    same = int((s_o_nir == s_o_val).all(axis=(1, 2)).sum())
    print(f"validation accuracy (NumPy, from {args.out}): {val_acc_nir:.4f}; "
          f"identical output rasters: {same} of {len(x_val)} samples")

    seconds = time.time() - start
    print(f"{seconds:.1f} s")
    if args.json:
        metrics = {"seed": args.seed, "epochs": args.epochs, "validation_accuracy": val_acc,
                   "train_accuracy": train_acc, "hidden_mean_spikes": hidden_spikes,
                   "output_mean_spikes": output_spikes, "seconds": seconds}
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()

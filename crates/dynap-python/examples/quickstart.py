"""dynap from Python, top to bottom: build a network, simulate it, train it a few steps, quantize it
to the chip's 4-bit weights, map it onto DYNAP-SE2, write samna's JSON, run it on the emulator (the
digital twin, 10 % mismatch), and plot the three rasters.

    pip install crates/dynap-python matplotlib
    python crates/dynap-python/examples/quickstart.py [OUT_DIR]

A Rockpool user keeps their notebook: `dynap.Network.from_rockpool(module)` reads a
`Sequential(LinearJax, DynapSim)`, and the currents go by Rockpool's names.
"""

import pathlib
import sys

import numpy as np

import dynap

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart_out")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# 1. A network: 16 input channels, 32 neurons, sparse recurrent weights, Rockpool's currents.
n_in, n, steps = 16, 32, 200
net = dynap.Network(
    rng.normal(0, 2.0, (n_in, n)),
    rng.normal(0, 0.3, (n, n)) * (rng.random((n, n)) < 0.1),
    Itau_mem=1e-11,
)
x = (rng.random((4, steps, n_in)) < 0.05).astype(np.float32)
sim = net.simulate(x)
print(f"{net}: {int(sim.spikes.sum())} spikes, imem {sim.imem.shape}")

# 2. A few steps of gradient descent (Adam) on the spike counts: every neuron towards 4 spikes.
target = np.full(n, 4.0)
w_in, w_rec = net.w_in, net.w_rec
m = {k: 0.0 for k in ("w_in", "w_rec")}
v = {k: 0.0 for k in ("w_in", "w_rec")}
for step in range(1, 31):
    loss, g = net.value_and_grad(x, target, loss="count_mse", currents=False)
    for k in ("w_in", "w_rec"):
        m[k] = 0.9 * m[k] + 0.1 * g[k]
        v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
    lr = 0.05
    w_in = w_in - lr * (m["w_in"] / (1 - 0.9**step)) / (np.sqrt(v["w_in"] / (1 - 0.999**step)) + 1e-8)
    # The recurrent weights keep their connections (the chip's fan-in).
    step_rec = lr * (m["w_rec"] / (1 - 0.9**step)) / (np.sqrt(v["w_rec"] / (1 - 0.999**step)) + 1e-8)
    w_rec = np.where(net.w_rec != 0, w_rec - step_rec, 0.0)
    net.w_in, net.w_rec = w_in, w_rec  # in place: the network keeps its converted parameters
    if step % 10 == 0:
        print(f"step {step}: loss {loss:.3f}")

# 3. Quantize, map, write samna's JSON and the mapping beside it.
q = dynap.quantize(net)
config, mapping = dynap.map(q)
assert config.validate(mapping) == [], config.validate(mapping)
config.to_json(out / "config.json")
mapping.to_json(out / "mapping.json")
print(f"{q}; wrote {out / 'config.json'}")

# 4. The configuration read back, and played on the emulator with 10 % mismatch.
back = dynap.unmap(dynap.Configuration.from_json(out / "config.json"), mapping)
device = dynap.Emulator(config, mapping, mismatch=0.1, seed=0).run(x)
stages = {
    "float": net.simulate(x).spikes,
    "reverse-mapped": back.simulate(x).spikes,
    "device (10 % mismatch)": device,
}
for name, s in stages.items():
    counts = s.sum(axis=1).mean(axis=0)
    moved = int((s != stages["reverse-mapped"]).sum())
    print(f"{name:>24}: mean count {counts.mean():.2f} (target 4), {int(s.sum())} spikes, "
          f"{moved} raster entries differ from the reverse-mapped network's")

# 5. The rasters of the first sample, stage by stage.
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(no matplotlib: pip install matplotlib for the raster plot)")
else:
    fig, axes = plt.subplots(len(stages), 1, sharex=True, figsize=(7, 6))
    for ax, (name, s) in zip(axes, stages.items()):
        t, j = np.nonzero(s[0])
        ax.scatter(t, j, s=2, c="k")
        ax.set_ylabel("neuron")
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("step (1 ms)")
    fig.tight_layout()
    fig.savefig(out / "rasters.png", dpi=120)
    print(f"wrote {out / 'rasters.png'}")

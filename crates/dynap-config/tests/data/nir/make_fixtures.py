"""Writes the NIR fixtures of dynap-config's tests with the official `nir` package.

    python -m venv venv && venv/bin/pip install nir==1.0.8 numpy
    venv/bin/python crates/dynap-config/tests/data/nir/make_fixtures.py

Each file is a graph as another tool would export it; `expected.json` records, per file, what a test
checks (node types, weights) so the Rust tests compare against the values written here.
"""

import json
import pathlib

import nir
import numpy as np

HERE = pathlib.Path(__file__).parent
rng = np.random.default_rng(2024)


def cuba(n, tau_syn=5e-3, tau_mem=2e-2, thr=1.0, **kw):
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn),
        tau_mem=np.full(n, tau_mem),
        r=np.full(n, kw.get("r", 1.0)),
        v_leak=np.full(n, kw.get("v_leak", 0.0)),
        v_threshold=np.full(n, thr),
        v_reset=np.full(n, kw.get("v_reset", 0.0)),
        w_in=np.full(n, kw.get("w_in", 1.0)),
    )


def lif(n, tau=2e-2, thr=1.0, v_leak=0.0):
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.ones(n),
        v_leak=np.full(n, v_leak),
        v_threshold=np.full(n, thr),
        v_reset=np.zeros(n),
    )


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges)


expected = {}


def save(name, g, **extra):
    nir.write(HERE / name, g)
    expected[name] = {
        "nodes": {k: type(v).__name__ for k, v in g.nodes.items()},
        "edges": [list(e) for e in g.edges],
        **extra,
    }


# Feed-forward: input 3 -> Linear (float32) -> CubaLIF 4 -> Affine (zero bias) -> LIF 2 -> Output.
w1 = (rng.normal(size=(4, 3)) * 0.02).astype(np.float32)
w2 = rng.normal(size=(2, 4)) * 0.05
save(
    "feedforward.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([3])),
            "fc1": nir.Linear(weight=w1),
            "lif1": cuba(4, w_in=2.0, thr=2.0),
            "fc2": nir.Affine(weight=w2, bias=np.zeros(2)),
            "lif2": lif(2),
            "output": nir.Output(output_type=np.array([2])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    ),
    fc1=w1.astype(np.float64).tolist(),
    fc2=w2.tolist(),
)

# Recurrent: input 2 -> Linear -> CubaLIF 5 with a recurrent Linear (a cycle) -> Output.
w_in = rng.normal(size=(5, 2)) * 0.03
w_rec = rng.normal(size=(5, 5)) * 0.01
save(
    "recurrent.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([2])),
            "w_in": nir.Linear(weight=w_in),
            "rnn": cuba(5, tau_syn=1e-2, tau_mem=1e-2),
            "w_rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type=np.array([5])),
        },
        [("input", "w_in"), ("w_in", "rnn"), ("rnn", "w_rec"), ("w_rec", "rnn"), ("rnn", "output")],
    ),
    w_in=w_in.tolist(),
    w_rec=w_rec.tolist(),
)

# The other node types: Scale, IF, Threshold and an LI readout.
save(
    "kinds.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([2])),
            "fc": nir.Linear(weight=np.array([[0.5, 0.0], [0.0, 0.5], [0.25, 0.25]])),
            "gain": nir.Scale(scale=np.array([2.0, 2.0, 2.0])),
            "if": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
            "fc2": nir.Linear(weight=np.ones((2, 3))),
            "thr": nir.Threshold(threshold=np.full(2, 0.5)),
            "fc3": nir.Linear(weight=np.eye(2) * 0.01),
            "li": nir.LI(tau=np.full(2, 2e-2), r=np.ones(2), v_leak=np.zeros(2)),
            "output": nir.Output(output_type=np.array([2])),
        },
        [
            ("input", "fc"),
            ("fc", "gain"),
            ("gain", "if"),
            ("if", "fc2"),
            ("fc2", "thr"),
            ("thr", "fc3"),
            ("fc3", "li"),
            ("li", "output"),
        ],
    ),
)


# A recurrent layer as a nested graph (how snnTorch exports RSynaptic): input 3 -> Linear -> rnn
# {Input -> CubaLIF 4 <-> Linear, CubaLIF -> Output} -> Output.
w_nested_in = rng.normal(size=(4, 3)) * 0.02
w_nested_rec = rng.normal(size=(4, 4)) * 0.01
save(
    "nested.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([3])),
            "fc": nir.Linear(weight=w_nested_in),
            "rnn": graph(
                {
                    "input": nir.Input(input_type=np.array([4])),
                    "lif": cuba(4),
                    "w_rec": nir.Linear(weight=w_nested_rec),
                    "output": nir.Output(output_type=np.array([4])),
                },
                [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            ),
            "output": nir.Output(output_type=np.array([4])),
        },
        [("input", "fc"), ("fc", "rnn"), ("rnn", "output")],
    ),
    fc=w_nested_in.tolist(),
    w_rec=w_nested_rec.tolist(),
)


def simple(neuron, weight=None, extra_nodes=None, edges=None):
    weight = np.full((neuron_size(neuron), 2), 0.01) if weight is None else weight
    nodes = {
        "input": nir.Input(input_type=np.array([weight.shape[1]])),
        "fc": nir.Linear(weight=weight),
        "lif": neuron,
        "output": nir.Output(output_type=np.array([weight.shape[0]])),
    }
    nodes.update(extra_nodes or {})
    return graph(
        nodes, edges or [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    )


def neuron_size(node):
    return len(node.v_threshold)


# What DYNAP-SE2 cannot run, each named by the import.
save(
    "bad_bias.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([2])),
            "fc": nir.Affine(weight=np.full((3, 2), 0.01), bias=np.array([0.0, 0.5, 0.0])),
            "lif": cuba(3),
            "output": nir.Output(output_type=np.array([3])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    ),
)
save("bad_leak.nir", simple(cuba(3, v_leak=-0.5)))
save("bad_fan_in.nir", simple(cuba(2), weight=np.full((2, 70), 0.01)))
mixed = cuba(3)
mixed.tau_mem = np.array([2e-2, 2e-2, 3e-2])
save("bad_mixed_tau.nir", simple(mixed))
save(
    "bad_node.nir",
    graph(
        {
            "input": nir.Input(input_type=np.array([2])),
            "fc": nir.Linear(weight=np.full((3, 2), 0.01)),
            "delay": nir.Delay(delay=np.full(3, 2e-3)),
            "lif": cuba(3),
            "output": nir.Output(output_type=np.array([3])),
        },
        [("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "output")],
    ),
)

(HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
print("wrote", ", ".join(sorted(expected)))

"""NIR interoperability against the official `nir` package (pinned in CI: nir==1.0.8).

Graphs written by `nir.write` import, simulate, quantize, map and run on the twin; ours are read by
`nir.read` with the node types and weights we wrote; export then import is exact; and a LIF network
trained outside dynap (examples/nir/train_lif_yinyang.py, JAX) imports with a behaviour close to its
NIR reference and fine-tunes back on the device stage.
"""

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import dynap

nir = pytest.importorskip("nir")


def cuba(n, tau_syn=5e-3, tau_mem=2e-2, thr=1.0):
    return nir.CubaLIF(
        tau_syn=np.full(n, tau_syn),
        tau_mem=np.full(n, tau_mem),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, thr),
        v_reset=np.zeros(n),
        w_in=np.ones(n),
    )


def lif(n, tau=2e-2):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))


def feedforward(rng, n_in=8, n1=12, n2=4):
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            "fc1": nir.Linear(weight=rng.uniform(-0.2, 1.0, (n1, n_in)).astype(np.float32) * 0.01),
            "lif1": lif(n1),
            "fc2": nir.Linear(weight=rng.uniform(-0.2, 1.0, (n2, n1)) * 0.02),
            "lif2": cuba(n2),
            "output": nir.Output(output_type=np.array([n2])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )


def recurrent(rng, n_in=6, n=10):
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            "w_in": nir.Linear(weight=rng.uniform(0, 1, (n, n_in)) * 0.01),
            "rnn": cuba(n, tau_syn=1e-2, tau_mem=1e-2),
            "w_rec": nir.Linear(weight=rng.normal(0, 0.005, (n, n))),
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "w_in"), ("w_in", "rnn"), ("rnn", "w_rec"), ("w_rec", "rnn"), ("rnn", "output")],
    )


def nested(rng, n_in=5, n=8):
    """A recurrent layer as a nested graph, as snnTorch exports RSynaptic."""
    rnn = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n])),
            "lif": cuba(n),
            "w_rec": nir.Linear(weight=rng.normal(0, 0.005, (n, n))),
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            "fc": nir.Linear(weight=rng.uniform(0, 1, (n, n_in)) * 0.01),
            "rnn": rnn,
            "output": nir.Output(output_type=np.array([n])),
        },
        edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")],
    )


def quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return f(*a, **k)


@pytest.mark.parametrize("make", [feedforward, recurrent, nested])
def test_official_graphs_import_simulate_quantize_map_and_run_on_the_twin(make, tmp_path):
    rng = np.random.default_rng(1)
    graph = make(rng)
    nir.write(tmp_path / "g.nir", graph)
    for source in [tmp_path / "g.nir", str(tmp_path / "g.nir"), (tmp_path / "g.nir").read_bytes(), graph]:
        net = quiet(dynap.Network.from_nir, source)
        assert net.variant == "chip"
    n_in = graph.nodes["input"].input_type["input"][0]
    x = (rng.random((2, 200, n_in)) < 0.1).astype(np.float32)
    out = net.simulate(x)
    assert out.spikes.shape == (2, 200, net.n)
    assert out.spikes.sum() > 0, "the imported network fires"
    q = dynap.quantize(net)
    config, mapping = dynap.map(q)
    assert config.validate(mapping) == []
    twin = dynap.Emulator(config, mapping, mismatch=0.1, seed=0).run(x)
    assert twin.shape == (2, 200, net.n)
    assert twin.sum() > 0


def test_recurrent_edges_become_a_recurrent_population(tmp_path):
    graph = recurrent(np.random.default_rng(2))
    net = quiet(dynap.Network.from_nir, graph)
    w_rec = graph.nodes["w_rec"].weight
    # w_rec[pre, post] = s * weight[post, pre]: the same pattern, one positive scale.
    ratio = net.w_rec / w_rec.T
    assert np.allclose(ratio, ratio[0, 0]) and ratio[0, 0] > 0


def test_our_graphs_are_read_by_nir_with_the_types_and_weights_we_wrote(tmp_path):
    rng = np.random.default_rng(3)
    net = dynap.Network(rng.normal(0, 1, (4, 6)), rng.normal(0, 0.3, (6, 6)), variant="chip")
    net.to_nir(tmp_path / "ours.nir")
    g = nir.read(tmp_path / "ours.nir")
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert sorted(kinds.values()) == ["CubaLIF", "Input", "Linear", "Linear", "Output"]
    pop = [k for k, v in kinds.items() if v == "CubaLIF"][0]
    w_in = g.nodes[f"w_input_{pop}"]
    w_rec = g.nodes[f"w_{pop}_{pop}"]
    assert (f"w_{pop}_{pop}", pop) in g.edges and (pop, f"w_{pop}_{pop}") in g.edges, "a cycle"
    np.testing.assert_array_equal(w_in.metadata["dynap_weight"], net.w_in.T)
    np.testing.assert_array_equal(w_rec.metadata["dynap_weight"], net.w_rec.T)
    scale = g.nodes[pop].metadata["dynap_lif_scale"]
    np.testing.assert_allclose(w_in.weight, net.w_in.T / scale, rtol=1e-15)
    node = g.nodes[pop]
    np.testing.assert_array_equal(node.metadata["dynap_Itau_mem"], net.Itau_mem)
    assert node.metadata["dynap_variant"] == "chip"
    # The CubaLIF's time constants are the DPI's.
    kappa = (0.75 + 0.66) / 2
    np.testing.assert_allclose(node.tau_mem, 0.025 / kappa * 3e-12 / net.Itau_mem, rtol=1e-12)


def test_export_then_import_is_exact(tmp_path):
    rng = np.random.default_rng(4)
    for variant in ["rockpool", "chip"]:
        net = dynap.Network(
            rng.normal(0, 1, (3, 5)),
            rng.normal(0, 0.3, (5, 5)),
            variant=variant,
            iscale=2e-9,
            dt=5e-4,
            Itau_mem=rng.uniform(3e-12, 8e-12, 5),
            Ispkthr=1e-9,
        )
        net.to_nir(tmp_path / "n.nir")
        back = dynap.Network.from_nir(tmp_path / "n.nir")
        net.to_json(tmp_path / "a.json")
        back.to_json(tmp_path / "b.json")
        assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_what_the_chip_cannot_run_is_named_with_the_node(tmp_path):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "dense": nir.Affine(weight=np.full((3, 2), 0.01), bias=np.array([0.0, 0.2, 0.0])),
            "lif": cuba(3),
            "output": nir.Output(output_type=np.array([3])),
        },
        edges=[("input", "dense"), ("dense", "lif"), ("lif", "output")],
    )
    with pytest.raises(ValueError, match=r"node 'dense': bias\[1\] = 0.2"):
        dynap.Network.from_nir(g)
    big = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([80])),
            "fc": nir.Linear(weight=np.full((2, 80), 0.01)),
            "lif": cuba(2),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    with pytest.raises(ValueError, match="node 'lif': neuron 0 has 80 synapses"):
        dynap.Network.from_nir(big)
    mixed = cuba(3)
    mixed.tau_mem = np.array([2e-2, 2e-2, 3e-2])
    g_mixed = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.full((3, 2), 0.01)),
               "lif": mixed, "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    with pytest.raises(ValueError, match="node 'lif': 'tau_mem' differs between its neurons"):
        dynap.Network.from_nir(g_mixed)
    with pytest.warns(UserWarning, match="'tau_mem' varies between its neurons"):
        dynap.Network.from_nir(g_mixed, average=True)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        dynap.Network.from_nir(b"garbage")
    with pytest.raises(TypeError):
        dynap.Network.from_nir(42)
    with pytest.raises(ValueError, match="variant"):
        dynap.Network.from_nir(big, variant="lif")
    with pytest.raises(OSError):
        dynap.Network.from_nir(tmp_path / "missing.nir")


def dynap_exe(repo):
    exe = repo / "target" / "release" / "dynap"
    if not exe.exists():
        exe = shutil.which("dynap")
    if exe is None:
        pytest.skip("no dynap binary built (cargo build --release -p dynap-train)")
    return str(exe)


def test_the_command_line_and_python_import_alike_and_export_for_nir(repo, tmp_path):
    exe = dynap_exe(repo)
    nir.write(tmp_path / "g.nir", feedforward(np.random.default_rng(5)))
    r = subprocess.run([exe, "-q", "nir", "import", str(tmp_path / "g.nir"), "--out", str(tmp_path / "cli.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    quiet(dynap.Network.from_nir, tmp_path / "g.nir").to_json(tmp_path / "py.json")
    assert (tmp_path / "cli.json").read_bytes() == (tmp_path / "py.json").read_bytes()
    r = subprocess.run([exe, "-q", "nir", "export", str(tmp_path / "cli.json"), "--out", str(tmp_path / "back.nir")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    back = nir.read(tmp_path / "back.nir")
    assert {type(v).__name__ for v in back.nodes.values()} == {"Input", "Linear", "CubaLIF", "Output"}
    # A bad file: exit 1 and the node named.
    nir.write(tmp_path / "bad.nir", nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "d": nir.Delay(delay=np.ones(2)),
               "lif": cuba(2), "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "d"), ("d", "lif"), ("lif", "output")]))
    r = subprocess.run([exe, "nir", "import", str(tmp_path / "bad.nir"), "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert r.returncode == 1 and "node 'd': a Delay node has no DYNAP-SE2 counterpart" in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_lif_network_trained_elsewhere_imports_close_and_fine_tunes_on_the_twin(repo, tmp_path):
    """Yin-Yang: a CubaLIF network trained by the JAX script, exported with `nir`, imported, compared
    with its NIR reference on the validation split, then fine-tuned and deployed on the twin."""
    pytest.importorskip("jax")
    exe = dynap_exe(repo)
    lif_nir = tmp_path / "lif.nir"
    r = subprocess.run(
        [sys.executable, str(repo / "examples" / "nir" / "train_lif_yinyang.py"), "--out", str(lif_nir),
         "--epochs", "20", "--json", str(tmp_path / "lif.json")],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    trained = json.loads((tmp_path / "lif.json").read_text())
    assert trained["validation_accuracy"] > 0.9
    # A short fine-tuning of the example's configuration, its data by absolute paths.
    toml = (repo / "examples" / "nir" / "yinyang_finetune.toml").read_text()
    data = repo / "crates" / "dynap-train" / "data" / "yinyang"
    toml = toml.replace("../../crates/dynap-train/data/yinyang", str(data))
    toml = toml.replace("epochs = 30", "epochs = 8").replace("quantized_epochs = 5", "quantized_epochs = 2")
    toml = toml.replace("prune_epochs = 5", "prune_epochs = 2")
    (tmp_path / "ft.toml").write_text(toml)
    r = subprocess.run(
        [exe, "-q", "nir", "import", str(lif_nir), "--out", str(tmp_path / "imported.json"),
         "--finetune", str(tmp_path / "ft.toml"), "--finetune-out", str(tmp_path / "ft")],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [exe, "-q", "nir", "compare", str(lif_nir), str(tmp_path / "imported.json"),
         "--config", str(tmp_path / "ft.toml"), "--json", str(tmp_path / "cmp.json")],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    # The LIF reference in Rust gives the JAX script's accuracy (the same equations).
    assert abs(cmp["reference_accuracy"] - trained["validation_accuracy"]) <= 0.005
    print("imported:", cmp)
    assert cmp["correlation"] > 0.6
    assert cmp["network_accuracy"] > 0.7
    # Fine-tuning recovers what the translation lost, through quantization and the twin (measured:
    # imported 77.6 %, fine-tuned float 89.5 %, device 89.0 %).
    stages = json.loads((tmp_path / "ft" / "metrics.json").read_text())["splits"]["validation"]
    print("fine-tuned:", {k: v["accuracy"] for k, v in stages.items()})
    assert stages["device"]["accuracy"] > max(0.8, cmp["network_accuracy"])

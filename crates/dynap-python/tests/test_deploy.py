"""quantize -> map -> samna JSON -> unmap and the emulator, their round trips and their errors; and
a whole training run from a dict."""

import json

import numpy as np
import pytest

import dynap


def network(seed=1, n_in=5, n=12):
    rng = np.random.default_rng(seed)
    w_rec = rng.normal(0, 0.5, (n, n)) * (rng.random((n, n)) < 0.3)
    return dynap.Network(rng.normal(0, 3, (n_in, n)), w_rec, Itau_mem=1e-11), rng


def test_the_configuration_round_trips_and_reads_back_as_the_quantized_network(tmp_path):
    net, _ = network()
    q = dynap.quantize(net)
    assert 0 < q.relative_rms_error < 0.5
    cfg, mapping = dynap.map(q)
    assert cfg.validate() == [] and cfg.validate(mapping) == []
    assert (mapping.neurons, mapping.inputs) == (12, 5)
    cfg.to_json(tmp_path / "config.json")
    mapping.to_json(tmp_path / "mapping.json")
    cfg2 = dynap.Configuration.from_json(tmp_path / "config.json")
    mapping2 = dynap.Mapping.from_json(tmp_path / "mapping.json")
    assert cfg2.to_json_string() == cfg.to_json_string()
    back = dynap.unmap(cfg2, mapping2)
    # The 4-bit weights come back exactly; the currents as the bias generator makes them.
    np.testing.assert_array_equal(back.w_in, q.network.w_in)
    np.testing.assert_array_equal(back.w_rec, q.network.w_rec)
    np.testing.assert_allclose(back.Itau_mem, net.Itau_mem, rtol=0.1)
    assert (back.iscale, back.dt, back.variant) == (net.iscale, net.dt, net.variant)
    # No temporary file is left beside the written ones.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "mapping.json"]


def test_the_emulator_without_mismatch_runs_the_reverse_mapped_network():
    net, rng = network()
    cfg, mapping = dynap.map(dynap.quantize(net))
    x = (rng.random((3, 150, 5)) < 0.1).astype(np.float64)
    emu = dynap.Emulator(cfg, mapping, mismatch=0.0, seed=0)
    out = emu.run(x)
    assert out.shape == (3, 150, 12)
    want = dynap.unmap(cfg, mapping).simulate(x).spikes
    assert out.sum() > 0
    np.testing.assert_array_equal(out, want)
    # Mismatch changes the device; the same seed gives the same chip.
    a = dynap.Emulator(cfg, mapping, mismatch=0.2, seed=7).run(x)
    b = dynap.Emulator(cfg, mapping, mismatch=0.2, seed=7).run(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, out)


def test_deployment_errors_name_the_problem(tmp_path):
    net, _ = network()
    cfg, mapping = dynap.map(dynap.quantize(net))
    emu = dynap.Emulator(cfg, mapping)
    with pytest.raises(ValueError, match="5 input channels"):
        emu.run(np.zeros((1, 10, 4)))
    with pytest.raises(ValueError):
        emu.run(np.full((1, 10, 5), -1.0))
    with pytest.raises(ValueError, match="mismatch"):
        dynap.Emulator(cfg, mapping, mismatch=-0.1)
    with pytest.raises(OSError, match="nothing.json"):
        dynap.Configuration.from_json(tmp_path / "nothing.json")
    (tmp_path / "bad.json").write_text('{"chips": 3}')
    with pytest.raises(ValueError, match="bad.json"):
        dynap.Configuration.from_json(tmp_path / "bad.json")
    (tmp_path / "bad_mapping.json").write_text("[]")
    with pytest.raises(ValueError, match="bad_mapping.json"):
        dynap.Mapping.from_json(tmp_path / "bad_mapping.json")
    # More than 64 synapses into a neuron: refused with the place.
    dense = dynap.Network(np.ones((80, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="64|fan-in|CAM"):
        dynap.map(dynap.quantize(dense))


def test_train_runs_an_experiment_from_a_dict(tmp_path):
    config = {
        "data": {
            "generator": "randman",
            "train_samples": 60,
            "validation_samples": 20,
            "test_samples": 20,
            "seed": 0,
            "randman": {"classes": 2, "units": 8, "steps": 30, "manifold_dim": 1},
        },
        "network": {
            "readout": "output",
            "population": [{"name": "output", "size": 4}],
            "connection": [{"from": "input", "to": "output"}],
        },
        "training": {"epochs": 2, "seeds": [0]},
    }
    metrics = dynap.train(config, tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").exists()
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics == on_disk
    with pytest.raises(ValueError, match="training.epochs|epochs"):
        dynap.train({**config, "training": {"epochs": -1}}, tmp_path / "bad")
    with pytest.raises(OSError):
        dynap.train(tmp_path / "missing.toml", tmp_path / "bad")

"""The binding against Rockpool 3.1.0's reference numbers (the golden cases the Rust harness checks,
tests/fixtures/golden): the same kernels give the same results through Python."""

import json

import numpy as np
import pytest

import dynap


def cases(repo, kind):
    out = []
    for d in ("golden", "golden_generated"):
        for f in sorted((repo / "tests" / "fixtures" / d).glob("*.json")):
            case = json.loads(f.read_text())
            if case.get("kind") == kind and case.get("outputs_f64") is not None:
                out.append((f.name, case))
    return out


def network(case, variant="rockpool"):
    w_in = None if case["w_in"] is None else np.array(case["w_in"], dtype=np.float64)
    w_rec = np.array(case["w_rec"], dtype=np.float64) if case["w_rec"] is not None else None
    if w_rec is None:
        w_rec = np.zeros((case["model"]["N"],) * 2)
    return dynap.Network(w_in, w_rec, iscale=case["Iscale"], dt=case["dt"], variant=variant,
                         **{k: np.array(v, dtype=np.float64) for k, v in case["params"].items()})


def case_input(case):
    data = case["input"]["data"]
    if data is None:
        return np.zeros(case["input"]["shape"])
    return np.array(data, dtype=np.float64).reshape(case["input"]["shape"])


def close(name, got, want, rtol, atol):
    got, want = np.asarray(got), np.asarray(want, dtype=np.float64)
    bad = np.abs(got - want) > rtol * np.abs(want) + atol
    assert not bad.any(), f"{name}: first difference at {np.argwhere(bad)[0]}: {got[bad][0]} vs {want[bad][0]}"


@pytest.mark.parametrize("seed", [0])
def test_simulation_equals_rockpools_float64_reference(repo, seed):
    found = cases(repo, "sim")
    assert len(found) >= 5
    for name, case in found:
        if not isinstance(case["initial_state"]["imem"], str):
            continue  # the binding starts from Rockpool's initial state only
        net = network(case)
        x = case_input(case)
        sim = net.simulate(x)
        ref = case["outputs_f64"]
        shape = sim.spikes.shape
        np.testing.assert_array_equal(sim.spikes, np.array(ref["spikes"]).reshape(shape), err_msg=name)
        for field in ("imem", "isyn", "iahp"):
            close(f"{name} {field}", getattr(sim, field), np.array(ref[field]).reshape(shape), 1e-8, 1e-20)
        close(f"{name} vmem", sim.vmem, np.array(ref["vmem"]).reshape(shape), 1e-8, 1e-12)


def test_gradients_equal_rockpools_float64_reference(repo):
    found = cases(repo, "grad")
    assert found
    for name, case in found:
        if case["loss"]["type"] != "count_mse":
            continue
        net = network(case)
        x = case_input(case)
        ref = case["outputs_f64"]
        loss, g = net.value_and_grad(x, np.array(case["target"]), loss="count_mse")
        assert loss == pytest.approx(ref["loss"], rel=1e-5), name
        for key, want in [("w_in", ref["grad_w_in"]), ("w_rec", ref["grad_w_rec"])] + [
            (k, v) for k, v in ref["grad_currents"].items()
        ]:
            want = np.array(want, dtype=np.float64).reshape(g[key].shape)
            scale = np.max(np.abs(want))
            assert np.max(np.abs(g[key] - want)) <= 1e-3 * scale, (name, key)


def test_quantize_and_map_give_the_command_lines_bytes(repo, tmp_path):
    """Python's configuration is the `dynap map` command's, byte for byte (the same Rust API)."""
    import shutil
    import subprocess

    exe = repo / "target" / "release" / "dynap"
    if not exe.exists():
        exe = shutil.which("dynap")
    if exe is None:
        pytest.skip("no dynap binary built (cargo build --release -p dynap-train)")
    rng = np.random.default_rng(3)
    net = dynap.Network(rng.normal(0, 2, (5, 12)), rng.normal(0, 0.5, (12, 12)) * (rng.random((12, 12)) < 0.3))
    q = dynap.quantize(net)
    cfg, mapping = dynap.map(q)
    cfg.to_json(tmp_path / "py.json")
    # The same network through the command line: its network JSON, `dynap quantize`, `dynap map`.
    net.to_json(tmp_path / "net.json")
    back = dynap.Network.from_json(tmp_path / "net.json")
    np.testing.assert_array_equal(back.w_rec, net.w_rec)
    run = lambda *a: subprocess.run([str(exe), "-q", *a], capture_output=True, text=True)
    r = run("quantize", str(tmp_path / "net.json"), str(tmp_path / "q.json"))
    assert r.returncode == 0, r.stderr
    r = run("map", str(tmp_path / "q.json"), "--out", str(tmp_path / "cli"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli" / "config.json").read_bytes()
    mapping.to_json(tmp_path / "mapping.json")
    assert (tmp_path / "mapping.json").read_bytes() == (tmp_path / "cli" / "mapping.json").read_bytes()

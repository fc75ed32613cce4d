"""Against Rockpool 3.1.0 itself, on random networks: the module conversions both ways, the same
spikes, currents within the golden tolerances (tests/fixtures/golden/README.md section 3), the same
gradients. JAX's x64 mode and float64 input; Rockpool's DynapSim still holds its parameters in float32
(and computes part of its step with them), so each comparison simulates the network read back from
the module (`from_rockpool`, the float32 values exactly) and allows the golden float32 tolerances."""

import numpy as np
import pytest

rockpool = pytest.importorskip("rockpool", reason="Rockpool 3.1.0 is not installed")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import dynap  # noqa: E402


def random_network(seed, n_in=6, n=10):
    rng = np.random.default_rng(seed)
    w_in = rng.normal(0, 3, (n_in, n))
    w_rec = rng.normal(0, 0.8, (n, n)) * (rng.random((n, n)) < 0.4)
    currents = {
        "Itau_mem": rng.uniform(0.5, 2, n) * 1e-11,
        "Igain_syn": rng.uniform(0.5, 2, n) * 8e-9,
        "Iw_ahp": rng.uniform(0, 2, n) * 1e-12,
        "Idc": rng.uniform(0, 1, n) * 1e-12,
    }
    x = (rng.random((2, 300, n_in)) < 0.08).astype(np.float64)
    return dynap.Network(w_in, w_rec, **currents), x


def rockpool_run(mod, x):
    out, _, rec = mod(jnp.asarray(x), record=True)
    return np.asarray(out), rec


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulation_equals_rockpool_on_random_networks(seed):
    net, x = random_network(seed)
    mod = net.to_rockpool()
    out, rec = rockpool_run(mod, x)
    sim = dynap.Network.from_rockpool(mod).simulate(x)
    assert sim.spikes.sum() > 10
    np.testing.assert_array_equal(sim.spikes, out)
    dyn = [k for k in rec if k.endswith("DynapSim")][0]
    for name, ours in [("imem", sim.imem), ("isyn", sim.isyn), ("iahp", sim.iahp)]:
        theirs = np.asarray(rec[dyn][name])
        bad = np.abs(ours - theirs) > 2e-3 * np.abs(theirs) + 1e-13
        assert not bad.any(), (name, np.argwhere(bad)[0])
    assert np.all(np.abs(sim.vmem - np.asarray(rec[dyn]["vmem"])) <= 1e-3)


def test_from_rockpool_reads_the_module_and_the_mappers_specification():
    net, x = random_network(5)
    mod = net.to_rockpool()
    back = dynap.Network.from_rockpool(mod)
    np.testing.assert_array_equal(back.w_in, net.w_in)
    # Rockpool holds w_rec and the parameters in float32 (LinearJax's weight as given).
    np.testing.assert_array_equal(back.w_rec, net.w_rec.astype(np.float32).astype(np.float64))
    # Rockpool holds its parameters in float32: they come back rounded to it, exactly.
    for k, v in net.parameters.items():
        np.testing.assert_array_equal(getattr(back, k), v.astype(np.float32).astype(np.float64), err_msg=k)
    spec = rockpool.devices.dynapse.mapper(mod.as_graph())
    from_spec = dynap.Network.from_rockpool(spec)
    np.testing.assert_allclose(from_spec.w_in, net.w_in, rtol=1e-6)
    # The mapper's specification holds one value per cluster (a core): here one, the mean.
    np.testing.assert_allclose(from_spec.Itau_mem, np.full(10, net.Itau_mem.mean()), rtol=1e-6)
    with pytest.raises(ValueError, match="Sequential"):
        dynap.Network.from_rockpool(rockpool.nn.modules.LinearJax((2, 3)))


def test_gradients_equal_rockpools_on_a_random_network():
    net, x = random_network(3)
    mod = net.to_rockpool()
    net = dynap.Network.from_rockpool(mod)
    target = np.zeros((2, 300, 10))
    target[:, ::7, :3] = 1.0

    params = mod.parameters()

    def loss(p):
        m = mod.set_attributes(p)
        out, _, _ = m(jnp.asarray(x))
        return jnp.mean((out - target) ** 2)

    value, grads = jax.value_and_grad(loss)(params)
    ours, g = net.value_and_grad(x, target, loss="raster_mse")
    assert ours == pytest.approx(float(value), rel=1e-5)
    lin, dyn = [k for k in grads if k.endswith("LinearJax")][0], [k for k in grads if k.endswith("DynapSim")][0]
    pairs = [("w_in", grads[lin]["weight"]), ("w_rec", grads[dyn]["w_rec"])]
    pairs += [(k, grads[dyn][k]) for k in dynap.parameter_names()[:13] if k in grads[dyn]]
    # Rockpool trains the weights only (its currents are simulation parameters).
    assert [k for k, _ in pairs[:2]] == ["w_in", "w_rec"]
    for key, theirs in pairs:
        theirs = np.asarray(theirs, dtype=np.float64).reshape(g[key].shape)
        scale = np.max(np.abs(theirs))
        assert np.max(np.abs(g[key] - theirs)) <= 1e-3 * max(scale, 1e-300), key

"""dynap.Network: construction, reading back, simulation and gradients, and bad input."""

import numpy as np
import pytest

import dynap


def small(seed=0, n_in=4, n=6):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(0, 2, (n_in, n)),
        rng.normal(0, 0.5, (n, n)),
        (rng.random((2, 120, n_in)) < 0.1),
    )


def test_construction_reads_back_weights_and_rockpool_names():
    w_in, w_rec, _ = small()
    itau = np.linspace(1e-12, 2e-11, 6)
    net = dynap.Network(w_in, w_rec, iscale=2e-8, dt=5e-4, Itau_mem=itau, C_mem=4e-12)
    assert (net.n, net.n_in, net.variant) == (6, 4, "rockpool")
    np.testing.assert_array_equal(net.w_in, w_in)
    np.testing.assert_array_equal(net.w_rec, w_rec)
    np.testing.assert_array_equal(net.Itau_mem, itau)
    np.testing.assert_array_equal(net.currents["Itau_mem"], itau)
    np.testing.assert_array_equal(net.C_mem, np.full(6, 4e-12))
    assert set(net.currents) == set(dynap.parameter_names()[:13])
    assert len(net.parameters) == 24
    assert (net.iscale, net.dt) == (2e-8, 5e-4)
    # Rockpool's defaults for everything not given.
    assert net.Ispkthr[0] == 1e-7


def test_simulate_records_every_trace_in_the_input_precision():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    for dtype in (np.float32, np.float64):
        sim = net.simulate(x.astype(dtype))
        for name in ("spikes", "imem", "isyn", "iahp", "vmem"):
            a = getattr(sim, name)
            assert a.shape == (2, 120, 6) and a.dtype == dtype, name
        assert sim.spikes.sum() > 0
    only = net.simulate(x.astype(np.float64), record=False)
    assert only.imem is None
    np.testing.assert_array_equal(only.spikes, net.simulate(x.astype(np.float64)).spikes)


def test_integer_bool_and_strided_inputs_are_read_as_their_values():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    want = net.simulate(x.astype(np.float64)).spikes
    for v in (x, x.astype(np.int64), x.astype(np.uint8), x.astype(np.int32)):
        np.testing.assert_array_equal(net.simulate(v).spikes, want)
    # A non-contiguous view (every other step of a longer array) and a Fortran-ordered copy.
    long = np.repeat(x.astype(np.float64), 2, axis=1)
    np.testing.assert_array_equal(net.simulate(long[:, ::2]).spikes, want)
    np.testing.assert_array_equal(net.simulate(np.asfortranarray(x.astype(np.float64))).spikes, want)


def test_raster_mse_gradient_matches_finite_differences_of_a_smooth_direction():
    # The loss is the mean of (spikes - target)^2; its value is checked directly, and the gradient
    # keys and shapes are those of the Rust API.
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    x = x.astype(np.float64)
    target = np.zeros((2, 120, 6))
    target[:, ::10, 0] = 1
    loss, g = net.value_and_grad(x, target)
    s = net.simulate(x).spikes
    assert loss == pytest.approx(np.mean((s - target) ** 2), rel=1e-12)
    assert g["w_in"].shape == (4, 6) and g["w_rec"].shape == (6, 6)
    for name in dynap.parameter_names()[:13]:
        assert g[name].shape == (6,)
    assert np.any(g["w_in"] != 0)
    # Structurally zero (model.md): no gradient reaches If_nmda, Iref or Ispkthr.
    for name in ("If_nmda", "Iref", "Ispkthr"):
        assert np.all(g[name] == 0), name


def test_the_other_losses_by_their_rust_names():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    x = x.astype(np.float32)
    loss, g = net.value_and_grad(x, np.full(6, 3.0), loss="count_mse")
    counts = net.simulate(x).spikes.sum(axis=1)
    assert loss == pytest.approx(np.mean((counts - 3.0) ** 2), rel=1e-6)
    loss, _ = net.value_and_grad(x, np.zeros((120, 6)), loss="filtered_mse", decay=0.9)
    assert loss > 0
    loss, _ = net.value_and_grad(x, np.array([0, 5]), loss="rate_cross_entropy")
    assert loss > 0


def test_the_chip_variant_simulates_and_differentiates():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, variant="chip", Itau_mem=1e-11)
    sim = net.simulate(x.astype(np.float64))
    assert sim.spikes.shape == (2, 120, 6) and sim.isyn.shape == (2, 120, 6)
    loss, g = net.value_and_grad(x.astype(np.float64), np.full(6, 2.0), loss="count_mse")
    assert np.isfinite(loss) and g["w_rec"].shape == (6, 6)
    # The chip's other dendrites' currents too, by their bias names.
    for name in ("Itau_nmda", "Igain_nmda", "Itau_gaba", "Igain_gaba", "Itau_shunt", "Igain_shunt"):
        assert g[name].shape == (6,) and np.all(np.isfinite(g[name])), name
    _, g = net.value_and_grad(x.astype(np.float64), np.full(6, 2.0), loss="count_mse", currents=False)
    assert sorted(g) == ["w_in", "w_rec"]


def test_a_network_without_input_weights_takes_weighted_input_per_neuron():
    net = dynap.Network(None, np.zeros((3, 3)), Idc=1e-10)
    assert net.w_in is None and net.n_in == 3
    sim = net.simulate(np.zeros((1, 300, 3)))
    assert sim.spikes.sum() > 0  # the DC current alone makes it fire


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: dynap.Network(np.zeros(3)), ValueError, ["w_in", "[3]", "[Nin, N]"]),
        (lambda: dynap.Network(np.zeros((2, 3)), np.zeros((2, 2))), ValueError, ["w_rec", "[3, 3]"]),
        (lambda: dynap.Network(None), ValueError, ["w_in", "w_rec"]),
        (lambda: dynap.Network(np.zeros((2, 3)), Itau_men=1e-12), TypeError, ["Itau_men", "Itau_mem"]),
        (lambda: dynap.Network(np.zeros((2, 3)), Itau_mem=np.ones(4)), ValueError, ["Itau_mem", "[4]", "[3]"]),
        (lambda: dynap.Network(np.zeros((2, 3)), Itau_mem=-1.0), ValueError, ["Itau_mem", "neuron"]),
        (lambda: dynap.Network(np.full((2, 3), np.nan)), ValueError, ["w_in", "finite"]),
        (lambda: dynap.Network(np.zeros((2, 3)), variant="silicon"), ValueError, ["silicon", "chip"]),
        (lambda: dynap.Network(np.array([["a", "b"]])), TypeError, ["w_in", "dtype"]),
        (lambda: dynap.Network(np.zeros((2, 3)), dt=0.0), ValueError, ["dt"]),
    ],
)
def test_bad_networks_are_named_errors(call, error, words):
    with pytest.raises(error) as e:
        call()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_inputs_and_targets_are_named_errors():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec)
    with pytest.raises(ValueError, match=r"x: shape \[2, 120\]"):
        net.simulate(x[..., 0])
    with pytest.raises(ValueError, match="4 input channels"):
        net.simulate(np.zeros((1, 10, 5)))
    with pytest.raises(ValueError, match="finite"):
        net.simulate(np.full((1, 10, 4), np.nan))
    with pytest.raises(ValueError, match=r"raster_mse loss needs \[batch, steps, N\]"):
        net.value_and_grad(x, np.zeros((2, 120)))
    with pytest.raises(ValueError, match="expected raster_mse"):
        net.value_and_grad(x, np.zeros((2, 120, 6)), loss="hinge")
    with pytest.raises(ValueError, match=r"target\[1\] = 9"):
        net.value_and_grad(x, np.array([0, 9]), loss="rate_cross_entropy")
    with pytest.raises(ValueError, match="decay"):
        net.value_and_grad(x, np.zeros((120, 6)), loss="filtered_mse")
    with pytest.raises(TypeError, match="x"):
        net.simulate("spikes")


def test_without_current_gradients_the_weight_gradients_are_the_same_bits():
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    x = x.astype(np.float32)
    for loss, target in [("count_mse", np.full(6, 2.0)), ("raster_mse", np.zeros((2, 120, 6)))]:
        v1, g1 = net.value_and_grad(x, target, loss=loss)
        v2, g2 = net.value_and_grad(x, target, loss=loss, currents=False)
        assert v1 == v2 and sorted(g2) == ["w_in", "w_rec"]
        np.testing.assert_array_equal(g1["w_in"], g2["w_in"])
        np.testing.assert_array_equal(g1["w_rec"], g2["w_rec"])


def test_kernels_release_the_gil():
    """Another Python thread runs while a long simulation runs."""
    import threading
    import time

    rng = np.random.default_rng(0)
    net = dynap.Network(rng.normal(0, 2, (20, 256)), rng.normal(0, 0.1, (256, 256)))
    x = (rng.random((8, 20000, 20)) < 0.05).astype(np.float32)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    net.simulate(x, record=False)
    end = time.perf_counter()
    done.set()
    t.join()
    during = [s for s in ticks if start < s < end]
    assert end - start > 0.02, "the run should be long enough to tell"
    assert len(during) >= 3, f"{len(during)} ticks in {end - start:.3f} s: the GIL was held"


def test_rockpool_conversions_say_what_to_install_without_rockpool(monkeypatch):
    import sys

    for name in list(sys.modules):
        if name == "rockpool" or name.startswith("rockpool."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rockpool", None)
    net = dynap.Network(np.ones((2, 3)))
    with pytest.raises(ImportError, match="pip install rockpool==3.1.0"):
        net.to_rockpool()
    with pytest.raises(ImportError, match="pip install rockpool"):
        dynap.Network.from_rockpool(object())


def test_result_arrays_stay_valid_while_later_runs_reuse_freed_memory():
    """Results are written into memory that earlier, freed results held; memory still held by a
    result or by a view of it is never reused."""
    w_in, w_rec, x = small()
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    x1 = x.astype(np.float32)
    x2 = np.roll(x1, 7, axis=1)
    first = net.simulate(x1)
    kept = {k: v.copy() for k, v in first.as_dict().items()}
    view = first.imem[1, 5:]  # a view outlives its Simulation
    view_copy = view.copy()
    del first
    for _ in range(5):
        other = net.simulate(x2)
        del other
    second = net.simulate(x1)
    for k, v in second.as_dict().items():
        np.testing.assert_array_equal(v, kept[k], err_msg=k)
    np.testing.assert_array_equal(view, view_copy)
    # Writable, independent arrays: changing one changes no other.
    second.spikes[:] = -1
    third = net.simulate(x1)
    np.testing.assert_array_equal(third.spikes, kept["spikes"])


def test_weights_and_parameters_set_in_place_give_a_new_networks_results():
    w_in, w_rec, x = small()
    x = x.astype(np.float32)
    rng = np.random.default_rng(9)
    net = dynap.Network(w_in, w_rec, Itau_mem=1e-11)
    net.simulate(x)  # keeps its simulators
    net.value_and_grad(x, np.full(6, 2.0), loss="count_mse")
    w_in2, w_rec2 = w_in + rng.normal(0, 0.5, w_in.shape), w_rec * 0.5
    net.w_in, net.w_rec = w_in2, w_rec2
    fresh = dynap.Network(w_in2, w_rec2, Itau_mem=1e-11)
    np.testing.assert_array_equal(net.simulate(x).imem, fresh.simulate(x).imem)
    a, ga = net.value_and_grad(x, np.full(6, 2.0), loss="count_mse")
    b, gb = fresh.value_and_grad(x, np.full(6, 2.0), loss="count_mse")
    assert a == b
    np.testing.assert_array_equal(ga["w_rec"], gb["w_rec"])
    net.Itau_mem = 2e-11
    fresh = dynap.Network(w_in2, w_rec2, Itau_mem=2e-11)
    np.testing.assert_array_equal(net.Itau_mem, np.full(6, 2e-11))
    np.testing.assert_array_equal(net.simulate(x).vmem, fresh.simulate(x).vmem)
    with pytest.raises(ValueError, match=r"w_rec: shape \[5, 5\]; this network's is \[6, 6\]"):
        net.w_rec = np.zeros((5, 5))
    with pytest.raises(ValueError, match="finite"):
        net.w_in = np.full((4, 6), np.inf)
    with pytest.raises(AttributeError, match="w_out"):
        net.w_out = 1
    # A refused value changes nothing.
    np.testing.assert_array_equal(net.w_rec, w_rec2)

"""Conversions between ``dynap.Network`` and Rockpool 3.1.0's ``devices.dynapse`` modules.

Rockpool is imported only when one of these is called; without it they raise an ``ImportError``
that says what to install.
"""

import numpy as np

_INSTALL = "this needs Rockpool: pip install rockpool==3.1.0 jax==0.10.2 jaxlib==0.10.2"


def _rockpool():
    try:
        from rockpool.devices.dynapse import DynapSim
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LinearJax
    except ImportError as e:  # pragma: no cover - exercised without Rockpool
        raise ImportError(f"{_INSTALL} ({e})") from e
    return DynapSim, LinearJax, Sequential


def _scalar(v, what):
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: empty")
    if not np.all(a == a[0]):
        raise ValueError(f"{what}: {a.tolist()} differ; dynap takes one value for the network")
    return float(a[0])


def _from_spec(spec):
    from . import Network, parameter_names

    for key in ("weights_in", "weights_rec", "Iscale", "core_map"):
        if key not in spec:
            raise ValueError(f"the specification has no key {key!r} (Rockpool's mapper writes it)")
    core_map = np.asarray(spec["core_map"], dtype=np.int64)
    currents = {}
    for name in parameter_names():
        if name in spec:
            per_cluster = np.asarray(spec[name], dtype=np.float64).ravel()
            if core_map.size and core_map.max() >= per_cluster.size:
                raise ValueError(
                    f"{name}: {per_cluster.size} values, but core_map names cluster {core_map.max()}"
                )
            currents[name] = per_cluster[core_map]
    w_in = spec["weights_in"]
    return Network(
        None if w_in is None else np.asarray(w_in, dtype=np.float64),
        np.asarray(spec["weights_rec"], dtype=np.float64),
        iscale=_scalar(spec["Iscale"], "Iscale"),
        dt=_scalar(spec.get("dt", 1e-3), "dt"),
        **currents,
    )


def from_rockpool(module):
    """A ``dynap.Network`` from a Rockpool ``Sequential(LinearJax, DynapSim)``, a ``DynapSim`` alone
    (no input weights: its input is weighted per neuron), or the specification dict Rockpool's
    ``devices.dynapse.mapper`` returns."""
    from . import Network, parameter_names

    if isinstance(module, dict):
        return _from_spec(module)
    DynapSim, LinearJax, _ = _rockpool()
    if isinstance(module, DynapSim):
        linear, dyn = None, module
    else:
        mods = list(module.modules().values()) if hasattr(module, "modules") else []
        if len(mods) != 2 or not isinstance(mods[0], LinearJax) or not isinstance(mods[1], DynapSim):
            kinds = [type(m).__name__ for m in mods]
            raise ValueError(
                f"expected Sequential(LinearJax, DynapSim) or DynapSim; got {type(module).__name__}"
                f" of {kinds}"
            )
        linear, dyn = mods
        if getattr(linear, "bias", None) is not None and np.any(np.asarray(linear.bias) != 0):
            raise ValueError("the LinearJax has a bias; DYNAP-SE2 synapses have none")
    n = int(dyn.size_out)
    params = {name: np.broadcast_to(np.asarray(getattr(dyn, name), dtype=np.float64), (n,)).copy()
              for name in parameter_names()}
    w_rec = np.asarray(dyn.w_rec, dtype=np.float64) if getattr(dyn, "w_rec", None) is not None \
        else np.zeros((n, n))
    w_in = None if linear is None else np.asarray(linear.weight, dtype=np.float64)
    return Network(
        w_in,
        w_rec,
        iscale=_scalar(dyn.Iscale, "Iscale"),
        dt=_scalar(dyn.dt, "dt"),
        **params,
    )


def to_rockpool(net):
    """The Rockpool ``Sequential(LinearJax, DynapSim)`` of a network (a ``DynapSim`` alone when it
    has no input weights). Only the ``rockpool`` variant has a Rockpool twin."""
    if net.variant != "rockpool":
        raise ValueError(f"a {net.variant!r} network has no Rockpool module; Rockpool's DynapSim is the rockpool variant")
    DynapSim, LinearJax, Sequential = _rockpool()
    params = {k: np.asarray(v, dtype=np.float64) for k, v in net.parameters.items()}
    w_rec = np.asarray(net.w_rec, dtype=np.float64)
    dyn = DynapSim(
        net.n,
        w_rec=w_rec,
        has_rec=bool(np.any(w_rec != 0)),
        Iscale=net.iscale,
        dt=net.dt,
        **params,
    )
    if net.w_in is None:
        return dyn
    w_in = np.asarray(net.w_in, dtype=np.float64)
    return Sequential(LinearJax(w_in.shape, weight=w_in, has_bias=False), dyn)

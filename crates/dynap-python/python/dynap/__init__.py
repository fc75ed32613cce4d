"""dynap: train spiking networks for the DYNAP-SE2 chip, from NumPy.

The kernels are dynap's Rust ones (the same bits as the ``dynap`` command line), called on NumPy
arrays with the GIL released. Names follow Rockpool's ``devices.dynapse``: currents and layout values
are ``Itau_mem``, ``Igain_syn``, ``C_mem``, ...; weights are ``[pre, post]`` in units of ``iscale``.

    >>> import numpy as np, dynap
    >>> net = dynap.Network(np.full((2, 3), 2.0), Itau_mem=1e-11)
    >>> sim = net.simulate(np.ones((1, 10, 2), dtype=np.float32))
    >>> sim.spikes.shape
    (1, 10, 3)

Pipeline: ``dynap.quantize(net)`` -> ``dynap.map(quantized)`` -> ``(config, mapping)`` ->
``config.to_json(path)`` (samna's JSON) -> ``dynap.Emulator(config, mapping).run(x)``;
``dynap.unmap(config, mapping)`` reads a configuration back as a network; ``dynap.train(config,
out_dir)`` runs a whole experiment.
"""

from ._native import (
    Configuration,
    Emulator,
    Mapping,
    Network,
    Quantized,
    Simulation,
    __version__,
    map,
    parameter_names,
    quantize,
    train,
    unmap,
)

__all__ = [
    "Configuration",
    "Emulator",
    "Mapping",
    "Network",
    "Quantized",
    "Simulation",
    "map",
    "parameter_names",
    "quantize",
    "train",
    "unmap",
]
